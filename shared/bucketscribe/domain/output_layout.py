"""Where the results for an upload go: ``<output prefix><key below the input prefix>.<suffix>``.

``incoming/calls/a.wav`` → ``transcripts/calls/a.wav.json``, ``.txt``, ``.srt``, ``.vtt``,
``.<provider>.json`` (the raw provider result) or ``.error.json`` when it failed.
"""

from __future__ import annotations

from pydantic import BaseModel


class OutputLayout(BaseModel):
    input_prefix: str = "incoming/"
    output_prefix: str = "transcripts/"

    def is_output(self, key: str) -> bool:
        return bool(self.output_prefix) and key.startswith(self.output_prefix)

    def is_input(self, key: str) -> bool:
        return key.startswith(self.input_prefix) and not self.is_output(key)

    def relative(self, key: str) -> str:
        return key[len(self.input_prefix) :] if key.startswith(self.input_prefix) else key

    def output_key(self, source_key: str, suffix: str) -> str:
        return f"{self.output_prefix}{self.relative(source_key)}.{suffix}"
