"""Word error rate the way the demo, the tests and the benchmarks all count it.

Case and punctuation do not count (Whisper punctuates, scripts may not); words do.
"""

from __future__ import annotations


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    normalise = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
            jiwer.ReduceToListOfListOfWords(),
        ]
    )
    return float(
        jiwer.wer(reference, hypothesis, reference_transform=normalise, hypothesis_transform=normalise)
    )
