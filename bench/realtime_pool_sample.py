"""The service's own way to run many files through the real-time API, as its Python sample does it.

DashScope's sample for "batch files through the real-time API" (gummy) gives each file its own
process: ``multiprocessing.Pool(cpu_count())``, one ``TranslationRecognizerRealtime`` per file, the
audio sent in 3200-byte (100 ms) frames, ``Transcript ==>`` / ``Translate ==>`` printed from the
callback and the request id with the first- and last-package delays at the end. This is that
approach, written for the benchmark (``bench/realtime.py``): the same SDK calls and process
layout; each worker also hands its figures back, printed as one JSON line per file at the end.

Two differences from the sample, so that a benchmark's baseline does not crash under load:

- ``start()`` raising ``InvalidTask`` ("task create failed") is tried again, twice at most, with a
  new recognizer, and counted (``start_retries``). It is the SDK's own race (dashscope 2.0.2): the
  recognizer is marked running only after its worker thread has started, and a worker that
  reaches the service before the starting thread gets the CPU back finds it not running, sends
  finish-task without audio, and ends; ``start()`` then sees a dead worker. A loaded machine (load
  average 5-10 on 2 cores) is where the starting thread waits for the CPU that long, which is
  when the benchmark crashed. ``tests/integration/test_realtime_stream.py`` reproduces it.
- A file that still fails (a third ``InvalidTask``, an ``on_error``) is a failed row with its
  error, not a traceback that takes the whole pool down; the exit code is then 1.

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
from dashscope.common.error import InvalidTask

FRAME_BYTES = 3200  # 100 ms of 16 kHz 16-bit mono
START_RETRIES = 2  # see the module docstring


class Callback(TranslationRecognizerCallback):
    def __init__(self, name: str) -> None:
        self.name = name
        self.first_result_at: float | None = None
        self.error: str | None = None

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
        self.error = f"{getattr(message, 'code', '')}: {getattr(message, 'message', message)}"
        print(f"[{self.name}] error: {message}", flush=True)


def process_file(job: tuple[str, str, float]) -> dict[str, Any]:
    path, pace, run_started = job
    name = os.path.basename(path)
    try:
        return stream_file(path, name, pace, run_started)
    except Exception as error:  # the sample would crash the pool here: report the file as failed
        print(f"[{name}] failed: {type(error).__name__}: {error}", flush=True)
        return {"file": name, "error": f"{type(error).__name__}: {error}", "first_package_ms": None}


def new_recognizer(callback: Callback) -> TranslationRecognizerRealtime:
    return TranslationRecognizerRealtime(
        model="gummy-realtime-v1",
        format="pcm",
        sample_rate=16000,
        transcription_enabled=True,
        translation_enabled=True,
        translation_target_languages=["en"],
        callback=callback,
    )


def stream_file(path: str, name: str, pace: str, run_started: float) -> dict[str, Any]:
    callback = Callback(name)
    recognizer = new_recognizer(callback)
    with wave.open(path, "rb") as reader:
        pcm = reader.readframes(reader.getnframes())
    started = time.time()
    retries = 0
    while True:
        try:
            recognizer.start()
            break
        except InvalidTask:
            if retries == START_RETRIES:
                raise
            retries += 1
            recognizer = new_recognizer(callback)
    for offset in range(0, len(pcm), FRAME_BYTES):
        recognizer.send_audio_frame(pcm[offset : offset + FRAME_BYTES])
        if pace == "realtime":
            time.sleep(0.1)
    recognizer.stop()
    elapsed = time.time() - started
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
        "audio_s": len(pcm) / 2 / 16000,
        "elapsed_s": elapsed,
        "error": callback.error,
        "start_retries": retries,
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
    return 1 if any(row.get("error") for row in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
