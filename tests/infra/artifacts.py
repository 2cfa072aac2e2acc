"""What the deploy artifacts (the Lambda layer zip, the FunctionGraph package) must hold, read from
the artifacts themselves: wheel tags from each distribution's WHEEL file, what was trimmed, and a
probe that imports what the functions import at run time from the artifact alone."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

# dashscope 2.x declares these, and none of them is imported by `dashscope.audio.asr`: the
# artifacts install dashscope without its dependencies (infra/requirements/no-deps.in).
SERVER_FRAMEWORKS = (
    "fastapi",
    "uvicorn",
    "starlette",
    "typer",
    "rich",
    "tiktoken",
    "opentelemetry",
)
# The newest glibc a wheel may need: Lambda's python3.12 runs Amazon Linux 2023 (glibc 2.34);
# the locks and infra/deploy_deps.py accept manylinux_2_28 at most.
NEWEST_GLIBC_MINOR = 28
_LEGACY_MANYLINUX = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}


def wheel_tags(archive: zipfile.ZipFile, prefix: str = "") -> dict[str, list[str]]:
    """``{distribution-version: [Tag, ...]}`` from every ``*.dist-info/WHEEL`` under ``prefix``."""
    tags: dict[str, list[str]] = {}
    for name in archive.namelist():
        match = re.fullmatch(re.escape(prefix) + r"([^/]+)\.dist-info/WHEEL", name)
        if match:
            text = archive.read(name).decode("utf-8")
            tags[match.group(1)] = re.findall(r"^Tag: (\S+)$", text, flags=re.MULTILINE)
    return tags


def wrong_tags(tags: dict[str, list[str]], *, arch: str, python: str) -> list[str]:
    """Distributions whose wheel would not load on ``arch`` CPython ``python`` (e.g. ``3.12``) with
    glibc 2.28: another CPU, another CPython ABI, or a newer glibc."""
    major, minor = (int(part) for part in python.split("."))
    problems = []
    for distribution, its_tags in sorted(tags.items()):
        if not its_tags:
            problems.append(f"{distribution}: no Tag in its WHEEL file")
        for tag in its_tags:
            interpreter, abi, platform = tag.split("-")
            if platform != "any" and not _platform_loads(platform, arch):
                glibc = f"glibc <= 2.{NEWEST_GLIBC_MINOR}"
                problems.append(f"{distribution}: {tag} is not for {arch} with {glibc}")
            if abi == "abi3":
                built_for = int(interpreter.removeprefix("cp")[1:])
                if not interpreter.startswith("cp3") or built_for > minor:
                    problems.append(f"{distribution}: {tag} needs a newer CPython than {python}")
            elif abi != "none" and interpreter != f"cp{major}{minor}":
                problems.append(f"{distribution}: {tag} is for another CPython than {python}")
    return problems


def _platform_loads(platform: str, arch: str) -> bool:
    for single in platform.split("."):  # compressed tag sets: manylinux_2_17_x86_64.manylinux2014_x86_64
        legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", single)
        modern = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", single)
        if legacy and legacy.group(2) == arch:
            return True
        if modern and modern.group(2) == arch and int(modern.group(1)) <= NEWEST_GLIBC_MINOR:
            return True
    return False


def trimmed_leftovers(names: Iterable[str]) -> list[str]:
    """Files the builds trim (infra/deploy_deps.py: trim) that are still there."""
    return sorted(
        name
        for name in names
        if "__pycache__/" in name
        or name.endswith((".pyc", ".pyi"))
        or re.search(r"^(python/)?[^/]+/(.+/)?tests/", name)
    )


def server_frameworks_in(names: Iterable[str], prefix: str = "") -> list[str]:
    tops = {name.removeprefix(prefix).split("/", 1)[0] for name in names if name.startswith(prefix)}
    return sorted(top for top in tops if top in SERVER_FRAMEWORKS or top.split("-")[0] in SERVER_FRAMEWORKS)


def unpacked_bytes(archive_path: Path) -> int:
    with zipfile.ZipFile(archive_path) as archive:
        return sum(info.file_size for info in archive.infolist())


# Imports, from the artifact alone, everything the deployed functions may import at run time
# (media, both providers' SDKs, the handlers) and reports where each module came from, the media
# libraries' versions and encoders, and whether any server framework was imported on the way.
# argv: JSON list of paths to put first on sys.path, JSON list of extra modules to import.
RUNTIME_PROBE = """
import importlib, json, sys
sys.path[:0] = json.loads(sys.argv[1])
modules = [
    "bucketscribe.media.transcode", "bucketscribe.media.silence", "bucketscribe.media.bucket",
    "bucketscribe.providers.sis.adapter", "bucketscribe.providers.dashscope.files",
    "bucketscribe.providers.dashscope.realtime",
    "av", "numpy", "huaweicloudsdksis.v1", "huaweicloudsdkcore.auth.credentials",
    "dashscope.audio.asr", "dashscope.common.error",
] + json.loads(sys.argv[2])
files = {name: getattr(importlib.import_module(name), "__file__", None) for name in modules}
from dashscope.audio.asr import (Recognition, RecognitionCallback, Transcription,
                                 TranslationRecognizerCallback, TranslationRecognizerRealtime)
import av, av.codec, numpy
def has(name, mode):
    try:
        av.codec.Codec(name, mode)
    except Exception:
        return False
    return True
print(json.dumps({
    "files": files,
    "av": av.__version__,
    "numpy": numpy.__version__,
    "encoders": {n: has(n, "w") for n in ("pcm_s16le", "libopus", "aac", "libmp3lame", "flac")},
    "decoders": {n: has(n, "r") for n in ("aac", "mp3float", "opus", "vorbis", "flac", "pcm_mulaw", "h264")},
    "server_frameworks": sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[3]))),
}))
"""
