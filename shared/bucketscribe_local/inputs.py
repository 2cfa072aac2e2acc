"""Local files checked before any work starts: each must be a readable media file its profile can take.

The content decides, not the name: the first bytes go through the same ``sniff`` the submit
function uses, then PyAV reads the container's header for the length and the channel count
(a profile like ``calls`` needs stereo). A file that fails any check is refused with one
reason, so ``transcribe`` can say everything that is wrong before it starts the stack.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from bucketscribe.domain.media_sniff import SNIFF_BYTES, sniff
from bucketscribe.domain.profile import Profile
from bucketscribe.providers import registry as providers


class LocalInput(BaseModel):
    """A file that passed every check, with what the progress display and the upload need."""

    path: Path
    label: str
    """How progress and messages name the file: the path as given, made unique."""
    profile: Profile
    size: int
    duration_ms: int | None = None
    channels: int | None = None
    content_type: str = "application/octet-stream"


class RefusedInput(BaseModel):
    path: Path
    reason: str


def check_inputs(files: list[tuple[Path, Profile]]) -> tuple[list[LocalInput], list[RefusedInput]]:
    """Every (file, profile) pair checked; returns the usable files and the refusals, in input order."""
    usable: list[LocalInput] = []
    refused: list[RefusedInput] = []
    for (path, profile), label in zip(files, unique_labels([p for p, _ in files]), strict=True):
        reason = _problem(path)
        if reason is None:
            checked, reason = _described(path, label, profile)
            if checked is not None:
                usable.append(checked)
        if reason is not None:
            refused.append(RefusedInput(path=path, reason=reason))
    return usable, refused


def unique_labels(paths: list[Path]) -> list[str]:
    """The paths as the user typed them; the same path given twice gets ``(2)``, ``(3)``…"""
    return made_unique([str(path) for path in paths], lambda text, n: f"{text} ({n})")


def unique_output_names(paths: list[Path]) -> list[str]:
    """The files' names for outputs in one folder: ``a.wav``, then ``a-2.wav``, ``a-3.wav``…"""
    return made_unique(
        [path.name for path in paths], lambda name, n: f"{Path(name).stem}-{n}{Path(name).suffix}"
    )


def made_unique(names: list[str], variant: Callable[[str, int], str]) -> list[str]:
    """``names`` with every repeat renamed to ``variant(name, n)``, n = 2, 3… skipping any name
    that is taken: by an earlier one, or by a later one that has it as its own (a file named
    ``a-2.wav`` keeps its name, the second ``a.wav`` becomes ``a-3.wav``)."""
    own = set(names)
    taken: set[str] = set()
    unique = []
    for name in names:
        chosen, n = name, 2
        while chosen in taken or (chosen != name and chosen in own):
            chosen, n = variant(name, n), n + 1
        taken.add(chosen)
        unique.append(chosen)
    return unique


# An object-store or web address once it went through Path ("s3://b/k" reads "s3:/b/k"): the
# user meant the object, and "no such file" would not say why.
_REMOTE = re.compile(r"^(s3|obs|oss|gs|https?):/+", re.IGNORECASE)


def _problem(path: Path) -> str | None:
    """Why ``path`` is not a media file, from what is on disk and its first bytes; None if it looks fine."""
    remote = _REMOTE.match(str(path))
    if remote and not path.exists():
        scheme = remote.group(1).lower()
        return (
            f"is a {scheme}:// address, not a local file (this command reads local files): download "
            "it first (aws s3 cp, obsutil cp), or upload it to a running `bucketscribe up` stack and "
            "follow it with `bucketscribe status`"
        )
    if path.is_dir():
        return "is a directory, not a recording (name the files inside it)"
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        size = path.stat().st_size
    except FileNotFoundError:
        return "no such file"
    except PermissionError:
        return "cannot be read (permission denied)"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if size == 0:
        return "is empty (0 bytes)"
    if sniff(head, total_size=size) is None:
        return "is not audio or video (its first bytes are not a media container bucketscribe knows)"
    return None


def _wav_header_facts(path: Path) -> tuple[int, int] | None:
    """(channels, duration in ms) where the file's first bytes say them (a WAV header)."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    sniffed = sniff(head, total_size=path.stat().st_size)
    if sniffed is None or sniffed.container != "wav" or not (sniffed.codec or "").startswith("pcm_"):
        return None  # not a WAV whose PCM the header describes: a decoder has to say
    if not sniffed.channels or not sniffed.sample_rate or sniffed.duration_ms is None:
        return None
    return sniffed.channels, sniffed.duration_ms


def _decodes_a_frame(path: Path) -> bool:
    """Whether the first audio stream yields at least one decoded frame (a container whose header
    gives no duration may still hold audio)."""
    import av

    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            for packet in container.demux(container.streams.audio[0]):
                if packet.decode():
                    return True
    except (av.FFmpegError, IndexError):
        return False
    return False


def _described(path: Path, label: str, profile: Profile) -> tuple[LocalInput | None, str | None]:
    from bucketscribe.media.transcode import probe
    from bucketscribe.ports.media_tools import MediaError

    facts = _wav_header_facts(path)
    if facts is not None:  # a WAV header says all: no decoder is opened (nor loaded)
        channels, duration_ms = facts
    else:
        try:
            info = probe(path)
        except MediaError as error:
            # PyAV says "... [Errno N] Invalid data found when processing input: '<path>'": keep the words.
            words = re.search(r"\] ([^:]+)", str(error))
            return None, f"cannot be decoded ({words.group(1).lower() if words else error})"
        if not info.has_audio:
            return None, "has no audio track"
        channels, duration_ms = info.channels, info.duration_ms
    if duration_ms == 0 and (facts is not None or not _decodes_a_frame(path)):
        # A WAV header with no samples after it (or a container with nothing that decodes): refused
        # here, not by the speech service minutes later (SIS.0535, "Audio format is invalid").
        return None, "has no audio samples (0 s of audio): nothing to transcribe"
    needed, expected = providers.plugin(profile.provider).channels(profile)
    if channels < needed:
        layout = "mono" if channels == 1 else f"{channels}-channel"
        return None, (
            f"is {layout}, but profile {profile.name!r} expects {expected}; "
            "give a stereo recording or choose another profile"
        )
    return (
        LocalInput(
            path=path,
            label=label,
            profile=profile,
            size=path.stat().st_size,
            duration_ms=duration_ms or None,
            channels=channels,
            content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        ),
        None,
    )
