"""How streamed results become sentences: interims are heard but never kept, a resent final replaces."""

from types import SimpleNamespace
from typing import Any

import pytest

from bucketscribe.providers.dashscope.realtime import Sentence, _Collector

pytestmark = pytest.mark.unit


def result(sentence_id: int, text: str, *, final: bool, start: int = 0, end: int = 900) -> SimpleNamespace:
    words = [
        SimpleNamespace(text=w, begin_time=start + i * 100, end_time=start + i * 100 + 90, _raw_data={})
        for i, w in enumerate(text.split())
    ]
    return SimpleNamespace(
        sentence_id=sentence_id,
        text=text,
        begin_time=start,
        end_time=end,
        words=words,
        is_sentence_end=final,
        language="en",
    )


class Translations:
    def __init__(self, translated: SimpleNamespace) -> None:
        self.translated = translated

    def get_translation(self, language: str) -> SimpleNamespace | None:
        return self.translated if language == "en" else None

    def get_language_list(self) -> list[str]:
        return ["en"]


def test_interims_reach_the_listener_only_finals_are_kept_and_a_resent_final_replaces() -> None:
    heard: list[Sentence] = []
    collector = _Collector(target_language="en", listener=heard.append, speaker="Agent", channel=0)
    collector.on_gummy(result(0, "hel", final=False), Translations(result(0, "he", final=False)))
    assert collector.transcription == {} and collector.translation == {}
    collector.on_gummy(
        result(0, "hello world", final=True), Translations(result(0, "hello world", final=True))
    )
    collector.on_gummy(result(1, "second", final=False, start=1000), None)
    collector.on_gummy(
        result(0, "hello, world.", final=True), Translations(result(0, "hello, world.", final=True))
    )

    assert [(s.text, s.final, s.translation) for s in heard] == [
        ("hel", False, "he"),
        ("hello world", True, "hello world"),
        ("second", False, None),
        ("hello, world.", True, "hello, world."),
    ]
    assert {(s.speaker, s.channel) for s in heard} == {("Agent", 0)}
    assert [s.text for s in collector.transcription.values()] == ["hello, world."]
    assert [w.text for w in collector.transcription[0].words] == ["hello,", "world."]
    transcript = collector.transcript("gummy-realtime-v1", None, 2000)
    assert [(s.text, s.speaker, s.channel) for s in transcript.segments] == [("hello, world.", "Agent", 0)]
    assert [(t.language, [s.text for s in t.segments]) for t in transcript.translations] == [
        ("en", ["hello, world."])
    ]


def test_a_translation_arriving_alone_is_told_as_the_translation_of_the_sentence_before() -> None:
    heard: list[Sentence] = []
    collector = _Collector(target_language="en", listener=heard.append)
    collector.on_gummy(result(3, "bonjour", final=True), None)
    collector.on_gummy(None, Translations(result(3, "good morning", final=True)))
    assert [(s.sentence_id, s.text, s.translation, s.translation_only) for s in heard] == [
        (3, "bonjour", None, False),
        (3, "bonjour", "good morning", True),
    ]
    assert [s.text for s in collector.transcription.values()] == ["bonjour"]  # one sentence, kept once
    assert collector.translation[3].translation == "good morning"
    transcript = collector.transcript("gummy-realtime-v1", "fr", 900)
    assert [s.text for s in transcript.segments] == ["bonjour"]
    assert [s.text for s in transcript.translations[0].segments] == ["good morning"]


def test_no_translation_is_kept_when_none_was_asked_for() -> None:
    collector = _Collector(target_language=None)
    collector.on_gummy(result(0, "hola", final=True), Translations(result(0, "hello", final=True)))
    assert collector.translation == {} and collector.transcription[0].text == "hola"
    assert collector.transcript("gummy-realtime-v1", "es", 900).translations == []


class ParaformerResult:
    def __init__(self, sentence: dict[str, Any]) -> None:
        self.sentence = sentence

    def get_sentence(self) -> dict[str, Any]:
        return self.sentence


def test_paraformer_sentences_are_final_once_they_have_an_end_time() -> None:
    heard: list[Sentence] = []
    collector = _Collector(target_language=None, listener=heard.append)
    words = [{"begin_time": 100, "end_time": 500, "text": "hello", "punctuation": ","}]
    collector.on_paraformer(
        ParaformerResult({"sentence_id": 1, "begin_time": 100, "end_time": None, "text": "hel"})
    )
    collector.on_paraformer(
        ParaformerResult({"heartbeat": True, "sentence_id": 1, "end_time": None, "text": ""})
    )
    collector.on_paraformer(
        ParaformerResult(
            {"sentence_id": 1, "begin_time": 100, "end_time": 900, "text": "hello, you", "words": words}
        )
    )
    assert [(s.text, s.final) for s in heard] == [("hel", False), ("hello, you", True)]
    assert [w.text for w in collector.transcription[1].words] == ["hello,"]
    assert collector.transcript("paraformer-realtime-v2", None, 1000).segments[0].end_ms == 900


def test_a_failed_task_keeps_the_services_code_and_message() -> None:
    collector = _Collector(target_language=None)
    collector.on_error(SimpleNamespace(code="InvalidParameter", message="bad language"), "task-1")
    assert collector.completed.is_set()
    assert collector.error is not None
    assert (collector.error.code, collector.error.message, collector.error.task_id) == (
        "InvalidParameter",
        "bad language",
        "task-1",
    )
    assert not collector.error.retryable


def test_the_transcript_says_the_language_it_was_given_or_heard_and_none_when_nobody_says() -> None:
    from bucketscribe.domain.job import StreamMetrics
    from bucketscribe.domain.transcript import LANGUAGES_DIFFER, MULTIPLE_LANGUAGES, Transcript
    from bucketscribe.ports.provider import StreamedRecording
    from bucketscribe.providers.dashscope.realtime import merge_channels

    def heard(language: str | None) -> _Collector:
        collector = _Collector(target_language=None)
        sentence = result(0, "hallo", final=True)
        sentence._raw_data = {"language": language} if language else {}  # the emulator's extension
        collector.on_gummy(sentence, None)
        return collector

    assert heard("de").transcript("gummy-realtime-v1", None, 1000).language == "de"
    assert heard("de").transcript("gummy-realtime-v1", "en", 1000).language == "en"  # given wins
    assert heard(None).transcript("gummy-realtime-v1", None, 1000).language is None  # DashScope's way

    def recording(transcript: Transcript) -> StreamedRecording:
        return StreamedRecording(transcript=transcript, task_id="t", metrics=StreamMetrics(audio_ms=1000))

    both = [recording(heard(language).transcript("m", None, 1000)) for language in ("en", "de")]
    merged = merge_channels(both, ["Agent", "Customer"]).transcript
    assert merged.language == MULTIPLE_LANGUAGES
    assert [w.code for w in merged.warnings] == [LANGUAGES_DIFFER]
    assert "channel 0 en, channel 1 de" in merged.warnings[0].message
    same = [recording(heard("en").transcript("m", None, 1000)) for _ in range(2)]
    assert merge_channels(same, ["Agent", "Customer"]).transcript.language == "en"
