"""Local files are checked by their content, and against what their profile needs, before any work."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from bucketscribe_local.inputs import check_inputs, unique_labels, unique_output_names
from bucketscribe_local.samples import sample

from bucketscribe.domain.profile import Profile
from bucketscribe.providers import registry
from tests.audio import tone_wav
from tests.profiles import profile

pytestmark = pytest.mark.unit

CALLS = profile(name="calls", prefix="calls/", sis={"channel": "LEFT_AGENT"})


def reasons(files: list[tuple[Path, Profile]]) -> dict[Path, str]:
    _, refused = check_inputs(files)
    return {r.path: r.reason for r in refused}


def test_what_is_not_a_readable_media_file_is_refused_with_its_reason(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("meeting notes, not a recording\n", encoding="utf-8")
    binary = tmp_path / "blob.mp3"
    binary.write_bytes(bytes(range(256)) * 4)
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    # Looks like WAV to the sniffer (RIFF/WAVE), but its format chunk is garbage.
    broken = tmp_path / "broken.wav"
    fmt = b"fmt " + struct.pack("<I", 16) + b"\xff" * 16
    broken.write_bytes(
        b"RIFF" + struct.pack("<I", 4000) + b"WAVE" + fmt + b"data" + struct.pack("<I", 8) + bytes(8)
    )
    files = [(p, profile()) for p in (text, binary, empty, folder, tmp_path / "missing.wav", broken)]
    found = reasons(files)
    assert found[text].startswith("is not audio or video")
    assert found[binary].startswith("is not audio or video")
    assert found[empty] == "is empty (0 bytes)"
    assert found[folder].startswith("is a directory")
    assert found[tmp_path / "missing.wav"] == "no such file"
    assert found[broken] == "cannot be decoded (invalid data found when processing input)"


def test_an_object_store_address_gets_a_hint_not_no_such_file() -> None:
    # The shell passes "s3://bucket/key"; as a Path it reads "s3:/bucket/key".
    found = reasons([(Path("s3://bucket/calls/a.wav"), Profile()), (Path("obs://bucket/b.mp3"), Profile())])
    assert [reason.split(",")[0] for reason in found.values()] == [
        "is a s3:// address",
        "is a obs:// address",
    ]
    assert all("not a local file" in reason and "download it first" in reason for reason in found.values())


def test_a_recording_with_a_header_and_no_samples_is_refused(tmp_path: Path) -> None:
    header_only = tmp_path / "header_only.wav"
    header_only.write_bytes(tone_wav(0))  # RIFF/WAVE, a format chunk, an empty data chunk
    stereo_header_only = tmp_path / "stereo_header_only.wav"
    stereo_header_only.write_bytes(tone_wav(0, channels=2, rate=8000))
    one_second = tmp_path / "one_second.wav"
    one_second.write_bytes(tone_wav(1))

    found = reasons([(p, profile()) for p in (header_only, stereo_header_only, one_second)])

    assert found[header_only] == "has no audio samples (0 s of audio): nothing to transcribe"
    assert found[stereo_header_only] == found[header_only]
    assert one_second not in found


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: permissions cannot be tested as root")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked.wav"
    locked.write_bytes(tone_wav(1))
    locked.chmod(0)
    assert reasons([(locked, profile())]) == {locked: "cannot be read (permission denied)"}


def test_a_profile_that_needs_stereo_refuses_mono_and_says_what_it_expects(tmp_path: Path) -> None:
    mono = tmp_path / "call.wav"
    mono.write_bytes(tone_wav(1))
    stereo = tmp_path / "stereo.wav"
    stereo.write_bytes(tone_wav(1, channels=2))
    usable, refused = check_inputs([(mono, CALLS), (stereo, CALLS), (mono, profile())])
    assert [item.path for item in usable] == [stereo, mono]
    (refusal,) = refused
    assert refusal.reason == (
        "is mono, but profile 'calls' expects stereo audio with the agent on the left channel and the "
        "customer on the right; give a stereo recording or choose another profile"
    )


def channels(made: Profile) -> tuple[int, str]:
    return registry.plugin(made.provider).channels(made)


def test_channel_needs_follow_the_profiles_options() -> None:
    assert channels(profile())[0] == 1
    assert channels(CALLS)[0] == 2
    right = profile(name="r", sis={"channel": "RIGHT_AGENT"})
    assert "agent on the right channel" in channels(right)[1]
    tracks = profile(name="d", provider="dashscope", dashscope={"channel_id": [0, 2]})
    assert channels(tracks)[0] == 3


def test_usable_files_carry_their_length_channels_and_type() -> None:
    call = sample("call_stereo.wav").path
    video = sample("demo_video.mp4").path
    usable, refused = check_inputs([(call, CALLS), (video, profile())])
    assert refused == []
    first, second = usable
    assert first.channels == 2 and first.duration_ms and first.content_type == "audio/x-wav"
    assert second.duration_ms and second.content_type == "video/mp4"


def test_labels_are_the_paths_as_given_and_a_repeated_one_is_numbered() -> None:
    paths = [Path("a/x.wav"), Path("b/x.wav"), Path("a/x.wav")]
    assert unique_labels(paths) == ["a/x.wav", "b/x.wav", "a/x.wav (2)"]


def test_output_names_never_collide_with_a_name_a_file_already_has() -> None:
    # The second a.wav must not become a-2.wav: the third file is called that.
    names = unique_output_names([Path("x/a.wav"), Path("y/a.wav"), Path("a-2.wav")])
    assert names == ["a.wav", "a-3.wav", "a-2.wav"]
    assert unique_output_names([Path("a-2.wav"), Path("x/a.wav"), Path("y/a.wav")]) == [
        "a-2.wav",
        "a.wav",
        "a-3.wav",
    ]


def test_a_label_never_collides_with_a_path_given_as_it_is() -> None:
    paths = [Path("x.wav"), Path("x.wav"), Path("x.wav (2)")]
    assert unique_labels(paths) == ["x.wav", "x.wav (3)", "x.wav (2)"]
