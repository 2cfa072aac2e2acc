"""How streamed results become sentences: interim results never count, a resent final replaces."""

from types import SimpleNamespace

import pytest

from bucketscribe.providers.realtime import _Collector

pytestmark = pytest.mark.unit


def result(sentence_id: int, text: str, *, final: bool, start: int = 0, end: int = 900):
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
    def __init__(self, translated):
        self.translated = translated

    def get_translation(self, language):
        return self.translated if language == "en" else None

    def get_language_list(self):
        return ["en"]


def test_interim_results_are_ignored_and_finals_replace_by_sentence_id():
    collector = _Collector(target_language="en")
    collector.on_event(result(0, "hel", final=False), Translations(result(0, "he", final=False)))
    assert collector.transcription == {} and collector.translation == {}
    collector.on_event(
        result(0, "hello world", final=True), Translations(result(0, "hello world", final=True))
    )
    collector.on_event(result(1, "second", final=False, start=1000), None)
    collector.on_event(
        result(0, "hello, world.", final=True), Translations(result(0, "hello, world.", final=True))
    )
    assert [s.text for s in collector.transcription.values()] == ["hello, world."]
    assert [w.text for w in collector.transcription[0].words] == ["hello,", "world."]
    assert collector.translation_language == "en" and collector.translation[0].text == "hello, world."


def test_no_translation_is_kept_when_none_was_asked_for():
    collector = _Collector(target_language=None)
    collector.on_event(result(0, "hola", final=True), Translations(result(0, "hello", final=True)))
    assert collector.translation == {} and collector.transcription[0].text == "hola"
