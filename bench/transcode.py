"""The provider best practice, measured: send speech services 16 kHz mono Opus, not the upload.

For three inputs, (a) a 60 s 44.1 kHz stereo speech WAV (spoken by espeak-ng), (b) the bundled
``demo_video.mp4`` and (c) a 30 s 720p H.264 test-pattern video with a speech track,
this measures ``to_speech_opus`` at 24 kb/s: bytes in and out, size ratio, transcode time,
and the time to put each version into a local moto S3 bucket. For the speech clip it also
recognises the original and the Opus output with the offline Whisper base engine in the same
run and scores both against the script (WER), to show what the compression costs in accuracy.
The same script is also spoken by two more espeak-ng voices and the WER pooled, because
Whisper base on one synthetic voice moves by a few words from any change to the samples.

It then reports what the media router (``bucketscribe.domain.media_routing``) sends each provider for
the speech clip in seven upload formats (WAV, FLAC, MP3, M4A and MKV with AAC, WebM with Opus),
and Whisper base's word error rate on the original, on what SIS is sent (pass-through, the
audio copied into another container, or 16-bit PCM), and on the 24 kb/s Opus every upload used
to be re-encoded to.

Every resample, encode and mux goes through PyAV (a dependency already), so no ``ffmpeg`` or
``sox`` binary is needed; without espeak-ng, clip (a) is a mix of tones and there is no WER.

Run: ``.venv/bin/python bench/transcode.py [--quick]`` (``--quick``: 20 s clip, 10 s video,
one voice, only 24 kb/s recognised, one timing repeat instead of three).
"""

from __future__ import annotations

import argparse
import faulthandler
import math
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from results_file import publish  # bench/ is on sys.path when run as a script

BITRATE = 24_000

# Plain words only: no digits or hyphens, whose spelling Whisper may choose differently.
SCRIPT = (
    "Every recording that lands in the bucket starts a small chain of events. "
    "The storage service sends a notification to a queue, and a short function picks it up. "
    "The function checks that the file really is audio or video, and then it asks the speech "
    "service to transcribe it. "
    "When the service has finished, it calls back with the result, and a second function writes "
    "the transcript next to the recording. "
    "Subtitles are written too, so a video can be watched with captions on the same afternoon. "
    "Large files are converted first. "
    "The speech track is taken out of the video, mixed down to one channel, and compressed with "
    "a codec made for voice. "
    "This keeps the upload small and fast, and the service hears the same words as before. "
    "Nothing needs to be installed by hand, and the whole chain can run on a laptop without a "
    "cloud account. "
    "The results are the same on a laptop and in the cloud, which makes testing simple and cheap. "
    "When something goes wrong, the job records the reason in words that a person can act on."
)
QUICK_SCRIPT = ". ".join(SCRIPT.split(". ")[:4]) + "."
# Opus bitrates recognised next to the default, to show whether accuracy follows the bitrate.
SWEEP_BITRATES = (16_000, BITRATE, 32_000)
RANDOM_SEED = 0
VOICES = ("en-us", "en-gb-x-rp", "en-us+f3")  # espeak-ng voices; the first one makes clip (a)


# ----- making the inputs ---------------------------------------------------------------------


def speech_synthesis_available() -> bool:
    """Whether clip (a) can be real speech: espeak-ng is the one outside tool this script uses."""
    return shutil.which("espeak-ng") is not None


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def speech_wav(dest: Path, text: str, seconds: float, work: Path, *, voice: str = VOICES[0]) -> None:
    """Speak ``text`` with espeak-ng, fitted into ``seconds``, as 44.1 kHz stereo 16-bit PCM."""
    raw = work / "espeak.wav"
    speed = 175  # espeak-ng's default words per minute

    def speak() -> None:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)

    # Fill the slot with speech by choosing the speaking rate: a long silent tail makes Whisper
    # invent text (it repeats earlier sentences), and cutting words would break the reference.
    target = seconds - 0.5
    speak()
    for _ in range(8):
        spoken = wav_seconds(raw)
        if target - 1.5 <= spoken <= target:
            break
        speed = max(80, round(speed * spoken / (target - 0.5)) + (1 if spoken > target else 0))
        speak()
    else:
        if wav_seconds(raw) > target:
            raise RuntimeError(f"espeak-ng cannot fit the script into {seconds} s with voice {voice}")
    # Resample to CD rate, duplicate to stereo, pad with silence and cut to the exact length.
    # No dither (swresample's default for s16 → s16): Whisper base's output moves by many words
    # on random noise, so the clip must be repeatable.
    resample_wav(raw, dest, rate=44_100, layout="stereo", seconds=seconds)


def resample_wav(source: Path, dest: Path, *, rate: int, layout: str, seconds: float | None = None) -> None:
    """``source``'s audio as 16-bit PCM WAV at ``rate`` (mono or stereo), padded or cut to ``seconds``."""
    import av
    import numpy as np

    channels = 2 if layout == "stereo" else 1
    resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
    chunks: list[Any] = []
    with av.open(str(source)) as container:
        for frame in container.decode(audio=0):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    samples = np.concatenate(chunks)  # packed s16: channels interleaved
    if seconds is not None:
        wanted = round(seconds * rate) * channels
        samples = np.pad(samples[:wanted], (0, max(wanted - len(samples), 0)))
    with wave.open(str(dest), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())


def tone_wav(dest: Path, seconds: float) -> None:
    """The fallback without espeak-ng: a 44.1 kHz stereo mix of a few tones (no words)."""
    rate = 44_100
    with wave.open(str(dest), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        frames = bytearray()
        for i in range(int(seconds * rate)):
            t = i / rate
            value = 0.2 * math.sin(2 * math.pi * 220 * t) + 0.15 * math.sin(2 * math.pi * 330 * t)
            value += 0.1 * math.sin(2 * math.pi * 1250 * t) * (0.5 + 0.5 * math.sin(2 * math.pi * 3 * t))
            sample = int(value * 32767)
            frames += struct.pack("<hh", sample, sample)
        wav.writeframes(bytes(frames))


VIDEO_SIZE = (1280, 720)
VIDEO_FPS = 25


def test_video(dest: Path, audio: Path | None, seconds: float) -> None:
    """A 720p 25 fps H.264 test pattern with AAC audio: ``audio``'s start, or a 440 Hz tone without it.

    The pattern (colour bars, a moving square, a frame counter strip) moves in every frame, so
    the encoder has real work, as with ffmpeg's testsrc.
    """
    import av
    import numpy as np

    width, height = VIDEO_SIZE
    bars = np.array(
        [[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0], [192, 0, 192], [192, 0, 0], [0, 0, 192]],
        dtype=np.uint8,
    )
    base = np.repeat(bars, -(-width // len(bars)), axis=0)[:width][np.newaxis, :, :].repeat(height, axis=0)
    frames = round(seconds * VIDEO_FPS)
    with av.open(str(dest), mode="w", format="mp4") as output:
        video = output.add_stream("libx264", rate=VIDEO_FPS, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = output.add_stream("aac", rate=44_100, layout="stereo")
        sound.bit_rate = 128_000
        for index in range(frames):
            picture = base.copy()
            x = (index * 16) % (width - 160)
            picture[280:440, x : x + 160] = 255
            picture[height - 40 :, :] = np.uint8((index * 7) % 256)  # changes every frame
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        for frame in _aac_frames(audio, seconds):
            output.mux(sound.encode(frame))
        output.mux(sound.encode(None))


def _aac_frames(audio: Path | None, seconds: float) -> Any:
    """``seconds`` of 44.1 kHz stereo planar float frames of 1 024 samples (AAC's frame size)."""
    import av
    import numpy as np

    rate, size = 44_100, 1024
    total = round(seconds * rate)
    if audio is None:
        mono = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / rate)).astype(np.float32)
        planes = np.stack([mono, mono])
    else:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
        parts: list[Any] = []
        with av.open(str(audio)) as container:
            for decoded in container.decode(audio=0):
                parts += [f.to_ndarray() for f in resampler.resample(decoded)]
        parts += [f.to_ndarray() for f in resampler.resample(None)]
        planes = np.concatenate(parts, axis=1)[:, :total]
    for start in range(0, planes.shape[1], size):
        chunk = np.ascontiguousarray(planes[:, start : start + size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        yield frame


# ----- measuring -----------------------------------------------------------------------------


def median_time(action: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times: list[float] = []
    result: Any = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def wer(reference: str, hypothesis: str) -> float:
    from bucketscribe_local.scoring import word_error_rate

    return word_error_rate(reference, hypothesis)


class LocalS3:
    """A moto server on 127.0.0.1 with one bucket, to time put_object of each version."""

    def __init__(self) -> None:
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.client = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        self.client.create_bucket(Bucket="bench")

    def put_seconds(self, body: bytes, key: str, repeats: int) -> float:
        seconds, _ = median_time(lambda: self.client.put_object(Bucket="bench", Key=key, Body=body), repeats)
        return seconds

    def stop(self) -> None:
        self._server.stop()


def measure_file(
    name: str, source: Path, work: Path, s3: LocalS3, repeats: int, put_repeats: int
) -> dict[str, Any]:
    from bucketscribe.media.transcode import probe, to_speech_opus

    dest = work / f"{source.stem}.opus.ogg"
    seconds, result = median_time(lambda: to_speech_opus(source, dest, bitrate=BITRATE), repeats)
    info = probe(source)
    original, opus = source.read_bytes(), dest.read_bytes()
    put_original = s3.put_seconds(original, f"original/{source.name}", put_repeats)
    put_opus = s3.put_seconds(opus, f"opus/{dest.name}", put_repeats)
    return {
        "name": name,
        "file": source.name,
        "duration_s": round(info.duration_ms / 1000, 2),
        "input": f"{info.codec}, {info.sample_rate} Hz, {info.channels} ch"
        + (", video" if info.has_video else ""),
        "input_bytes": result.input_bytes,
        "output_bytes": result.output_bytes,
        "ratio": round(result.ratio, 1),
        "output_kbps": round(result.output_bytes * 8 / max(result.duration_ms, 1), 1),
        "transcode_s": round(seconds, 3),
        "transcode_x_realtime": round(info.duration_ms / 1000 / seconds, 1),
        "put_original_s": round(put_original, 4),
        "put_opus_s": round(put_opus, 4),
        "put_speedup": round(put_original / put_opus, 1),
        "opus_path": str(dest),
    }


def recognition_check(
    clip: Path, script: str, seconds: float, work: Path, voices: tuple[str, ...], bitrates: tuple[int, ...]
) -> dict[str, Any]:
    """Whisper base on each voice's original, a lossless control and Opus outputs: same model, same run.

    The control (the original resampled to 16 kHz mono PCM, no codec) shows how much WER moves
    from any change to the samples at all. Whisper base on one synthetic voice swings by a few
    words from such changes, so the figures are pooled over several espeak-ng voices.
    """
    from bucketscribe_local.whisper_engine import WhisperSettings

    from bucketscribe.media.transcode import to_speech_opus

    labels = ["original 44.1 kHz stereo PCM", "control 16 kHz mono PCM"]
    labels += [f"opus {b // 1000} kb/s" + (" (default)" if b == BITRATE else "") for b in bitrates]
    files: dict[str, list[Path]] = {label: [] for label in labels}
    for index, voice in enumerate(voices):
        original = clip if index == 0 else work / f"speech_{voice}.wav"
        if index:
            speech_wav(original, script, seconds, work, voice=voice)
        control = work / f"control_{voice}.wav"
        resample_wav(original, control, rate=16_000, layout="mono")
        files[labels[0]].append(original)
        files[labels[1]].append(control)
        for label, bitrate in zip(labels[2:], bitrates, strict=True):
            opus = work / f"opus_{voice}_{bitrate // 1000}k.ogg"
            to_speech_opus(original, opus, bitrate=bitrate)
            files[label].append(opus)

    settings = WhisperSettings()  # the product's defaults (or BUCKETSCRIBE_WHISPER_* if set)
    engine = warm_engine()
    reference_words = len(script.split())
    rows = []
    for label, paths in files.items():
        errors: list[int] = []
        texts: list[str] = []
        elapsed = 0.0
        for path in paths:
            count, text, seconds = word_errors(engine, path, script)
            errors.append(count)
            texts.append(text)
            elapsed += seconds
        rows.append(
            {
                "variant": label,
                "bytes_first_voice": paths[0].stat().st_size,
                "word_errors_per_voice": errors,
                "wer_pooled": round(sum(errors) / (reference_words * len(paths)), 4),
                "recognise_s_total": round(elapsed, 2),
                "texts": texts,
            }
        )
    return {
        "engine": f"{engine.device}/{engine.compute_type}, beam {settings.beam_size}",
        "model_load_s": round(engine.load_seconds or 0.0, 2),
        "voices": list(voices),
        "reference_words": reference_words,
        "rows": rows,
    }


def warm_engine() -> Any:
    """The product's offline engine (Whisper base, the process-wide one), loaded and warmed up."""
    from bucketscribe_local.samples import sample
    from bucketscribe_local.whisper_engine import shared_engine

    engine = shared_engine()
    engine.load()
    engine.recognize(sample("hello_en.wav").path, language="en")  # the first call pays extra
    return engine


def word_errors(engine: Any, path: Path, script: str) -> tuple[int, str, float]:
    """(word errors against ``script``, the text, seconds to recognise) for one file."""
    import ctranslate2

    # faster-whisper may fall back to sampling on hard passages, which draws from CTranslate2's
    # process-wide generator: reseed so no result can hang on the order.
    ctranslate2.set_random_seed(RANDOM_SEED)
    started = time.perf_counter()
    recognition = engine.recognize(path, language="en")
    seconds = time.perf_counter() - started
    text = " ".join(segment.text for segment in recognition.segments)
    return round(wer(script, text) * len(script.split())), text, seconds


# ----- the router: what each provider is sent, per input format ------------------------------

# (name, muxer, extension, encoder, rate, channels, bit rate): the speech clip in formats that
# uploads come in; each is routed as the pipeline would route it for SIS (chinese_16k_media) and
# DashScope (paraformer-v2).
ROUTER_INPUTS: tuple[tuple[str, str, str, str, int, int, int | None], ...] = (
    ("WAV PCM 16 kHz mono", "wav", "wav", "pcm_s16le", 16_000, 1, None),
    ("FLAC 16 kHz mono", "flac", "flac", "flac", 16_000, 1, None),
    ("MP3 44.1 kHz stereo 128 kb/s", "mp3", "mp3", "libmp3lame", 44_100, 2, 128_000),
    ("M4A AAC 16 kHz mono 32 kb/s", "ipod", "m4a", "aac", 16_000, 1, 32_000),
    ("MKV AAC 16 kHz mono 32 kb/s", "matroska", "mkv", "aac", 16_000, 1, 32_000),
    ("WebM Opus 32 kb/s mono", "webm", "webm", "libopus", 16_000, 1, 32_000),
)


def router_report(
    clip: Path, script: str, seconds: float, work: Path, voices: tuple[str, ...]
) -> dict[str, Any]:
    """Per input format: what the router sends SIS and DashScope, and Whisper base's word errors on
    the original, on what SIS is sent, and on the 24 kb/s Opus every upload used to be turned into.

    Pass-through sends the very file, so its errors are the original's (not recognised twice).
    """
    from pydantic import SecretStr

    from bucketscribe.domain.media_routing import AudioTarget, Route, decide_route
    from bucketscribe.media.transcode import probe_media, to_speech_opus, write_audio
    from bucketscribe.providers.dashscope.files import DashScopeConfig, DashScopeProvider
    from bucketscribe.providers.registry import load_profiles
    from bucketscribe.providers.sis.adapter import SisCredentials, SisProvider

    sis_profile, dashscope_profile = load_profiles([{}, {"name": "ds", "provider": "dashscope"}]).profiles
    sis = SisProvider(SisCredentials(ak="-", sk=SecretStr("-"), project_id="-")).media_requirements(
        sis_profile
    )
    dashscope = DashScopeProvider(DashScopeConfig(api_key=SecretStr("-"))).media_requirements(
        dashscope_profile
    )
    originals = [clip if index == 0 else work / f"speech_{voice}.wav" for index, voice in enumerate(voices)]
    for voice, original in zip(voices, originals, strict=True):
        if not original.exists():
            speech_wav(original, script, seconds, work, voice=voice)
    engine = warm_engine()
    rows = []
    inputs = [("WAV PCM 44.1 kHz stereo", "", "wav", "", 0, 0, None), *ROUTER_INPUTS]
    for name, muxer, extension, codec, rate, channels, bit_rate in inputs:
        row: dict[str, Any] = {"input": name, "original": [], "sis": [], "old_opus_24k": []}
        for voice, original in zip(voices, originals, strict=True):
            upload = original
            if muxer:
                upload = work / f"router_{voice}_{extension}_{rate}.{extension}"
                target = AudioTarget(
                    muxer=muxer,
                    extension=extension,
                    codec=codec,
                    sample_rate=rate,
                    channels=channels,
                    bit_rate=bit_rate,
                )
                write_audio(original, upload, target)
            found = probe_media(upload, size_bytes=upload.stat().st_size)
            to_sis, to_dashscope = decide_route(found, sis), decide_route(found, dashscope)
            row["sis_route"] = f"{to_sis.route.value}" + (
                f" → {to_sis.target.extension}"
                + (f" {to_sis.target.codec}" if to_sis.target.codec else " (copied)")
                if to_sis.target
                else ""
            )
            row["dashscope_route"] = to_dashscope.route.value
            errors, _, _ = word_errors(engine, upload, script)
            row["original"].append(errors)
            if to_sis.route is Route.PASS_THROUGH or to_sis.target is None:
                row["sis"].append(errors)
            else:
                sent = work / f"sent_{voice}_{extension}.{to_sis.target.extension}"
                write_audio(upload, sent, to_sis.target)
                row["sis"].append(word_errors(engine, sent, script)[0])
            old = work / f"old_{voice}_{extension}.ogg"
            to_speech_opus(upload, old, bitrate=BITRATE)
            row["old_opus_24k"].append(word_errors(engine, old, script)[0])
        words = len(script.split()) * len(voices)
        for key in ("original", "sis", "old_opus_24k"):
            row[f"{key}_wer"] = round(sum(row[key]) / words, 4)
        rows.append(row)
    return {"voices": list(voices), "reference_words": len(script.split()), "rows": rows}


def print_router(report: dict[str, Any]) -> None:
    print(
        f"\nThe router, per input format: what SIS (chinese_16k_media) and DashScope (paraformer-v2) are "
        f"sent, and Whisper base's WER pooled over {len(report['voices'])} voice(s) "
        f"({report['reference_words']} words each):"
    )
    print(
        f"  {'input':<30} {'SIS gets':<28} {'DashScope':<12} {'WER original':>12} {'WER SIS gets':>12} "
        f"{'WER old Opus 24k':>16}"
    )
    for row in report["rows"]:
        print(
            f"  {row['input']:<30} {row['sis_route']:<28} {row['dashscope_route']:<12} "
            f"{row['original_wer']:>12.3f} {row['sis_wer']:>12.3f} {row['old_opus_24k_wer']:>16.3f}"
        )
    print("  (DashScope decodes every one of these: it gets the original, so its WER is the original's)")


def print_table(result: dict[str, Any]) -> None:
    print(
        f"to_speech_opus at {BITRATE // 1000} kb/s (16 kHz mono Ogg Opus); transcode: median of "
        f"{result['repeats']}, put_object to local moto S3: median of {result['put_repeats']}"
    )
    if not result["speech_is_real"]:
        print("  NOTE: espeak-ng is missing: clip (a) is a synthetic multi-tone WAV, so no WER.")
    header = (
        f"  {'input':<34} {'dur s':>6} {'in bytes':>11} {'out bytes':>10} {'ratio':>6} "
        f"{'kb/s':>5} {'enc s':>6} {'×RT':>5} {'put orig s':>10} {'put opus s':>10} {'×faster':>7}"
    )
    print(header)
    for row in result["files"]:
        print(
            f"  {row['name']:<34} {row['duration_s']:>6.1f} "
            f"{row['input_bytes']:>11,} {row['output_bytes']:>10,} "
            f"{row['ratio']:>5.1f}× {row['output_kbps']:>5.1f} {row['transcode_s']:>6.3f} "
            f"{row['transcode_x_realtime']:>5.0f} {row['put_original_s']:>10.4f} {row['put_opus_s']:>10.4f} "
            f"{row['put_speedup']:>6.1f}×"
        )
    for row in result["files"]:
        print(f"    {row['name']}: {row['input']}")
    check = result.get("recognition")
    if check:
        print(
            f"\nWhisper base ({check['engine']}), {check['reference_words']}-word script spoken by "
            f"{len(check['voices'])} espeak-ng voices, same model, same run (load {check['model_load_s']} s):"
        )
        voices = check["voices"]
        columns = " ".join(f"{voice:>11}" for voice in voices)
        print(f"  {'variant':<30} {'bytes (a)':>11} {columns} {'pooled WER':>10} {'recognise s':>11}")
        for row in check["rows"]:
            errors = " ".join(f"{count:>11}" for count in row["word_errors_per_voice"])
            print(
                f"  {row['variant']:<30} {row['bytes_first_voice']:>11,} {errors} {row['wer_pooled']:>10.3f} "
                f"{row['recognise_s_total']:>11.2f}"
            )
        print("  (per voice: word errors out of the reference words; pooled WER over all voices)")
    if result.get("router"):
        print_router(result["router"])
    print(f"peak RSS of the process: {result['peak_rss_mb']:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s clip, 10 s video, one voice, one repeat")
    parser.add_argument("--keep", type=Path, help="copy the generated inputs and outputs into this folder")
    parser.add_argument(
        "--watchdog", type=float, default=600.0, help="dump the stacks and exit after this many seconds"
    )
    args = parser.parse_args()
    # Whisper can, rarely, decode for a very long time; a benchmark must end, and say where it was.
    faulthandler.dump_traceback_later(args.watchdog, exit=True)
    clip_s, video_s, repeats = (20.0, 10.0, 1) if args.quick else (60.0, 30.0, 3)
    # A put takes milliseconds on loopback and jitters more than a transcode: take more of them.
    put_repeats = 1 if args.quick else 7
    script = QUICK_SCRIPT if args.quick else SCRIPT

    from bucketscribe_local.samples import sample

    speech_is_real = speech_synthesis_available()
    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp:
        work = Path(tmp)
        clip = work / "speech_44k_stereo.wav"
        if speech_is_real:
            speech_wav(clip, script, clip_s, work)
        else:
            tone_wav(clip, clip_s)
        video = work / "testsrc_720p.mp4"
        test_video(video, clip, video_s)

        s3 = LocalS3()
        try:
            inputs = [
                (f"(a) {'speech' if speech_is_real else 'tones'} WAV 44.1k stereo", clip),
                ("(b) bundled demo_video.mp4", sample("demo_video.mp4").path),
                (f"(c) 720p H.264 + AAC, {video_s:.0f} s", video),
            ]
            rows = [measure_file(name, path, work, s3, repeats, put_repeats) for name, path in inputs]
        finally:
            s3.stop()
        result: dict[str, Any] = {
            "bitrate": BITRATE,
            "repeats": repeats,
            "put_repeats": put_repeats,
            "speech_is_real": speech_is_real,
        }
        if speech_is_real:
            voices = VOICES[:1] if args.quick else VOICES
            bitrates = (BITRATE,) if args.quick else SWEEP_BITRATES
            result["recognition"] = recognition_check(clip, script, clip_s, work, voices, bitrates)
            result["router"] = router_report(clip, script, clip_s, work, voices)
            result["script"] = script
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in [clip, video, *(Path(row["opus_path"]) for row in rows)]:
                shutil.copy2(path, args.keep / path.name)
    for row in rows:
        del row["opus_path"]
    result["files"] = rows
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    publish("transcode", result, quick=bool(args.quick), show=print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
