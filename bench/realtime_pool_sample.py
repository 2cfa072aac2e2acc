"""The service's own way to run many files through the real-time API, as its Python sample does it.

DashScope's sample for "batch files through the real-time API" (gummy) gives each file its own
process: ``multiprocessing.Pool(cpu_count())``, one ``TranslationRecognizerRealtime`` per file, the
audio sent in 3200-byte (100 ms) frames, ``Transcript ==>`` / ``Translate ==>`` printed from the
callback and the request id with the first- and last-package delays at the end. This is that
approach, written for the benchmark (``bench/realtime.py``): the same SDK calls and process
layout; each worker also hands its figures back, printed as one JSON line per file at the end.

Run: ``python bench/realtime_pool_sample.py [--processes N] [--pace realtime|fast] FILE...`` with
``DASHSCOPE_API_KEY`` and ``DASHSCOPE_WEBSOCKET_URL`` set (the emulator's).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
import wave
from typing import Any

import dashscope
from dashscope.audio.asr import TranslationRecognizerCallback, TranslationRecognizerRealtime

FRAME_BYTES = 3200  # 100 ms of 16 kHz 16-bit mono


class Callback(TranslationRecognizerCallback):
    def __init__(self, name: str) -> None:
        self.name = name
        self.first_result_at: float | None = None

    def on_event(
        self, request_id: Any, transcription_result: Any, translation_result: Any, usage: Any
    ) -> None:
        if self.first_result_at is None:
            self.first_result_at = time.time()
        if transcription_result is not None and transcription_result.is_sentence_end:
            print(f"[{self.name}] Transcript ==> {transcription_result.text}", flush=True)
        if translation_result is not None:
            english = translation_result.get_translation("en")
            if english is not None and english.is_sentence_end:
                print(f"[{self.name}] Translate ==> {english.text}", flush=True)

    def on_error(self, message: Any) -> None:
        print(f"[{self.name}] error: {message}", flush=True)


def process_file(job: tuple[str, str, float]) -> dict[str, Any]:
    path, pace, run_started = job
    name = os.path.basename(path)
    callback = Callback(name)
    recognizer = TranslationRecognizerRealtime(
        model="gummy-realtime-v1",
        format="pcm",
        sample_rate=16000,
        transcription_enabled=True,
        translation_enabled=True,
        translation_target_languages=["en"],
        callback=callback,
    )
    with wave.open(path, "rb") as reader:
        pcm = reader.readframes(reader.getnframes())
    started = time.time()
    recognizer.start()
    for offset in range(0, len(pcm), FRAME_BYTES):
        recognizer.send_audio_frame(pcm[offset : offset + FRAME_BYTES])
        if pace == "realtime":
            time.sleep(0.1)
    recognizer.stop()
    first, last = recognizer.get_first_package_delay(), recognizer.get_last_package_delay()
    print(
        f"[Metric] requestId: {recognizer.get_last_request_id()}, first package delay ms: {first}, "
        f"last package delay ms: {last}",
        flush=True,
    )
    return {
        "file": name,
        "request_id": recognizer.get_last_request_id(),
        "first_package_ms": first,
        "last_package_ms": last,
        "started_after_s": started - run_started,
        "first_result_after_s": None
        if callback.first_result_at is None
        else callback.first_result_at - run_started,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--processes", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--pace", choices=["realtime", "fast"], default="realtime")
    args = parser.parse_args()
    dashscope.api_key = os.environ["DASHSCOPE_API_KEY"]
    dashscope.base_websocket_api_url = os.environ["DASHSCOPE_WEBSOCKET_URL"]
    run_started = time.time()
    with multiprocessing.Pool(processes=args.processes) as pool:
        figures = pool.map(process_file, [(path, args.pace, run_started) for path in args.files])
    # For the benchmark: each file's figures, printed by this one process (workers' lines interleave).
    for row in figures:
        print("FIGURES " + json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
