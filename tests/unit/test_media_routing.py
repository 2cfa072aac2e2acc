"""What each provider is sent for each kind of upload: one row per (provider, input) pair, with the
providers' own declarations (SisProvider / DashScopeProvider.media_requirements)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from bucketscribe.domain.media_routing import (
    OPUS_BITRATE,
    AudioTarget,
    MediaProbe,
    MediaRefused,
    MediaRequirements,
    Route,
    RouteDecision,
    decide_route,
)
from bucketscribe.domain.profile import Profile
from bucketscribe.ports.provider import Provider
from bucketscribe.providers.dashscope.files import DashScopeConfig, DashScopeProvider
from bucketscribe.providers.dashscope.options import DashScopeOptions
from bucketscribe.providers.sis.adapter import SisCredentials, SisProvider
from bucketscribe.providers.sis.options import SisOptions
from tests.profiles import profile as make_profile

pytestmark = pytest.mark.unit

HOUR_MS = 3_600_000
SIS = SisProvider(SisCredentials(ak="ak", sk=SecretStr("sk"), project_id="p"))
LOCAL_SIS = SisProvider(SisCredentials(ak="ak", sk=SecretStr("sk"), project_id="p"), decodes_any_media=True)
DASHSCOPE = DashScopeProvider(DashScopeConfig(api_key=SecretStr("k")))

SIS_16K = make_profile(name="media")  # chinese_16k_media, mono
SIS_8K_CALLS = make_profile(name="calls", sis=SisOptions(property="chinese_8k_general", channel="LEFT_AGENT"))
DASHSCOPE_V2 = make_profile(name="ds", provider="dashscope")
DASHSCOPE_TWO_TRACKS = make_profile(
    name="ds-calls", provider="dashscope", dashscope=DashScopeOptions(channel_id=[0, 1])
)


def probe(
    container: str, codec: str, rate: int, channels: int = 1, *, minutes: float = 1, **more: Any
) -> MediaProbe:
    duration_ms = round(minutes * 60_000)
    size = more.pop("size_bytes", None) or duration_ms * rate * channels * 2 // 1000
    return MediaProbe(
        container=container,
        codec=codec,
        sample_rate=rate,
        channels=channels,
        duration_ms=duration_ms,
        size_bytes=size,
        **more,
    )


def target_of(decision: RouteDecision) -> AudioTarget:
    assert decision.target is not None, decision.reason
    return decision.target


WAV_16K_MONO = probe("wav", "pcm_s16le", 16000)
WAV_44K_STEREO = probe("wav", "pcm_s16le", 44100, 2)
WAV_8K_MONO = probe("wav", "pcm_s16le", 8000)
CALL_8K_STEREO_ULAW = probe("wav", "pcm_mulaw", 8000, 2)
MP4_AAC_16K_VIDEO = probe("mp4", "aac", 16000, has_video=True, audio_bit_rate=36_000, size_bytes=500_000)
M4A_AAC_16K = probe("mp4", "aac", 16000, audio_bit_rate=36_000, size_bytes=300_000)
MP3_16K = probe("mp3", "mp3", 16000, size_bytes=240_000)
MP3_44K_STEREO = probe("mp3", "mp3", 44100, 2, size_bytes=960_000)
OGG_VORBIS_16K = probe("ogg", "vorbis", 16000, size_bytes=200_000)
WEBM_OPUS = probe("matroska", "opus", 48000, size_bytes=200_000)
OGG_OPUS = probe("ogg", "opus", 48000, size_bytes=200_000)
FLAC_16K = probe("flac", "flac", 16000, size_bytes=1_000_000)


# (provider, profile, upload) → (route, container of what is sent, codec it is written with)
ROWS: list[tuple[Provider, Profile, MediaProbe, Route, str | None, str | None]] = [
    # SIS: what audio_format "auto" decodes, at the model's rate, passes; the rest is changed.
    (SIS, SIS_16K, WAV_16K_MONO, Route.PASS_THROUGH, None, None),
    (SIS, SIS_16K, MP3_16K, Route.PASS_THROUGH, None, None),
    (SIS, SIS_16K, M4A_AAC_16K, Route.PASS_THROUGH, None, None),
    (SIS, SIS_16K, OGG_OPUS, Route.PASS_THROUGH, None, None),
    (SIS, SIS_16K, MP4_AAC_16K_VIDEO, Route.REMUX, "ipod", None),  # the measured WER 0.28 case
    (SIS, SIS_16K, WEBM_OPUS, Route.REMUX, "ogg", None),
    (SIS, SIS_16K, WAV_44K_STEREO, Route.TRANSCODE, "wav", "pcm_s16le"),
    (SIS, SIS_16K, WAV_8K_MONO, Route.TRANSCODE, "wav", "pcm_s16le"),
    (SIS, SIS_16K, MP3_44K_STEREO, Route.TRANSCODE, "wav", "pcm_s16le"),
    (SIS, SIS_16K, OGG_VORBIS_16K, Route.TRANSCODE, "wav", "pcm_s16le"),
    (SIS, SIS_16K, FLAC_16K, Route.TRANSCODE, "wav", "pcm_s16le"),
    (SIS, SIS_8K_CALLS, CALL_8K_STEREO_ULAW, Route.PASS_THROUGH, None, None),
    (SIS, SIS_8K_CALLS, WAV_44K_STEREO, Route.TRANSCODE, "wav", "pcm_s16le"),
    # DashScope decodes every container of its table, any rate and channel count.
    (DASHSCOPE, DASHSCOPE_V2, MP4_AAC_16K_VIDEO, Route.PASS_THROUGH, None, None),
    (DASHSCOPE, DASHSCOPE_V2, WAV_44K_STEREO, Route.PASS_THROUGH, None, None),
    (DASHSCOPE, DASHSCOPE_V2, OGG_VORBIS_16K, Route.PASS_THROUGH, None, None),
    (DASHSCOPE, DASHSCOPE_V2, WEBM_OPUS, Route.PASS_THROUGH, None, None),
    (DASHSCOPE, DASHSCOPE_V2, FLAC_16K, Route.PASS_THROUGH, None, None),
    # A local engine (the emulators) decodes whatever ffmpeg reads: always the original.
    (LOCAL_SIS, SIS_16K, MP4_AAC_16K_VIDEO, Route.PASS_THROUGH, None, None),
    (LOCAL_SIS, SIS_16K, OGG_VORBIS_16K, Route.PASS_THROUGH, None, None),
    (LOCAL_SIS, SIS_16K, WAV_44K_STEREO, Route.PASS_THROUGH, None, None),
]


@pytest.mark.parametrize(
    ("provider", "profile", "upload", "route", "muxer", "codec"),
    ROWS,
    ids=[
        f"{p.name}{'-local' if p is LOCAL_SIS else ''}-{f.name}-{u.codec}-{u.sample_rate}"
        for p, f, u, *_ in ROWS
    ],
)
def test_each_provider_gets_the_original_unless_it_cannot_decode_it(
    provider: Provider,
    profile: Profile,
    upload: MediaProbe,
    route: Route,
    muxer: str | None,
    codec: str | None,
) -> None:
    decision = decide_route(upload, provider.media_requirements(profile))
    assert decision.route is route, decision.reason
    assert (decision.target.muxer if decision.target else None) == muxer
    assert (decision.target.codec if decision.target else None) == codec
    assert decision.part_ms is None


def test_a_re_encode_keeps_two_channels_for_per_channel_recognition_and_the_models_rate() -> None:
    decision = decide_route(WAV_44K_STEREO, SIS.media_requirements(SIS_8K_CALLS))
    assert (target_of(decision).channels, target_of(decision).sample_rate) == (2, 8000)
    mono = decide_route(WAV_44K_STEREO, SIS.media_requirements(SIS_16K))
    assert (target_of(mono).channels, target_of(mono).sample_rate) == (1, 16000)
    assert "16-bit PCM WAV, 16 kHz mono" in mono.reason and "44100 Hz" in mono.reason


@pytest.mark.parametrize(
    ("provider", "profile", "expected"),
    [
        (SIS, SIS_8K_CALLS, "stereo audio with the agent on the left channel and the customer on the right"),
        (DASHSCOPE, DASHSCOPE_TWO_TRACKS, "audio with at least 2 channels"),
        (LOCAL_SIS, SIS_8K_CALLS, "stereo audio with the agent on the left channel"),
    ],
)
def test_a_profile_that_recognises_two_channels_refuses_a_mono_upload_itself(
    provider: Provider, profile: Profile, expected: str
) -> None:
    with pytest.raises(MediaRefused) as refused:
        decide_route(WAV_8K_MONO, provider.media_requirements(profile))
    assert refused.value.code == "TOO_FEW_CHANNELS"
    message = str(refused.value)
    assert f"profile {profile.name!r}" in message and expected in message and "1 channel (mono)" in message


def test_the_profile_can_ask_for_a_compact_track_or_for_no_conversion_at_all() -> None:
    needs = SIS.media_requirements(SIS_16K)
    always = decide_route(WAV_16K_MONO, needs, mode="always")
    assert always.route is Route.TRANSCODE and target_of(always).codec == "libopus"
    assert target_of(always).bit_rate == OPUS_BITRATE
    assert decide_route(WAV_16K_MONO, needs, mode="never").route is Route.PASS_THROUGH
    with pytest.raises(MediaRefused, match="extract_audio: never") as refused:
        decide_route(OGG_VORBIS_16K, needs, mode="never")
    assert refused.value.code == "UNSUPPORTED_MEDIA" and "does not decode vorbis in ogg" in str(refused.value)


def test_without_a_decoder_only_what_passes_as_it_is_goes() -> None:
    needs = SIS.media_requirements(SIS_16K)
    assert decide_route(MP3_16K, needs, can_convert=False).route is Route.PASS_THROUGH
    with pytest.raises(MediaRefused, match="PyAV is not installed"):
        decide_route(MP4_AAC_16K_VIDEO, needs, can_convert=False)


def test_what_the_header_does_not_say_does_not_block_passing_through() -> None:
    header_only = MediaProbe(container="mp3", size_bytes=100_000, read_by="header")
    assert decide_route(header_only, SIS.media_requirements(SIS_16K)).route is Route.PASS_THROUGH


# ----- over the limits: parts --------------------------------------------------------------------


def test_six_hours_of_8k_wav_under_an_8k_sis_profile_go_in_two_parts_of_the_same_samples() -> None:
    long_call = probe("wav", "pcm_s16le", 8000, minutes=6 * 60)  # 346 MB, over 5 h and 300 MB
    profile = make_profile(name="calls8k", sis=SisOptions(property="chinese_8k_general"))
    decision = decide_route(long_call, SIS.media_requirements(profile))
    assert decision.route is Route.PASS_THROUGH and target_of(decision).muxer == "wav"
    # The parts hold the same samples: the same codec, rate and channels, cut to the sample.
    assert (target_of(decision).codec, target_of(decision).sample_rate) == ("pcm_s16le", 8000)
    assert decision.part_ms is not None and 4.5 * HOUR_MS < decision.part_ms < 5 * HOUR_MS
    assert "2 parts" in decision.reason


def test_a_file_over_the_size_limit_only_is_cut_by_size() -> None:
    # 4 h of 44.1 kHz stereo for DashScope: 2.5 GB, over its 2 GB though far under its 12 h.
    big = probe("wav", "pcm_s16le", 44100, 2, minutes=4 * 60)
    decision = decide_route(big, DASHSCOPE.media_requirements(DASHSCOPE_V2))
    assert decision.route is Route.PASS_THROUGH
    assert decision.part_ms is not None
    assert decision.part_ms > 3 * HOUR_MS and decision.part_ms * 44.1 * 2 * 2 < 2 * 1024**3
    assert "2 parts" in decision.reason


def test_what_a_function_makes_is_capped_where_its_scratch_space_is_tighter() -> None:
    """BUCKETSCRIBE_MAX_PART_BYTES: parts and tracks go through the function's /tmp (512 MB on
    FunctionGraph), so what it makes stays under the cap; an upload passed on as it is is not."""
    profile = make_profile(name="calls8k", sis=SisOptions(property="chinese_8k_general"))
    needs = SIS.media_requirements(profile).model_copy(update={"made_max_bytes": 100 * 2**20})
    assert needs.made_limit == 100 * 2**20
    four_and_a_half_hours = probe("wav", "pcm_s16le", 8000, minutes=270)  # 259 MB: one SIS job
    assert decide_route(four_and_a_half_hours, needs).part_ms is None
    six_hours = decide_route(probe("wav", "pcm_s16le", 8000, minutes=6 * 60), needs)  # 346 MB
    assert six_hours.part_ms is not None and six_hours.part_ms * 16 < 100 * 2**20
    assert "4 parts" in six_hours.reason and "kept under 100 MB" in six_hours.reason


def test_a_re_encode_is_pcm_unless_opus_saves_a_cut() -> None:
    needs = SIS.media_requirements(SIS_16K)
    # 1 h of 44.1 kHz stereo: 16 kHz mono PCM is 115 MB, one job: PCM.
    one_hour = decide_route(probe("wav", "pcm_s16le", 44100, 2, minutes=60), needs)
    assert target_of(one_hour).codec == "pcm_s16le"
    # 4 h: PCM would be 461 MB (two jobs), Opus one job: Opus.
    four_hours = decide_route(probe("wav", "pcm_s16le", 44100, 2, minutes=240), needs)
    assert target_of(four_hours).codec == "libopus" and four_hours.part_ms is None


def test_without_a_decoder_an_upload_over_the_limit_is_refused_with_the_limit() -> None:
    long_call = probe("wav", "pcm_s16le", 16000, minutes=6 * 60)
    with pytest.raises(MediaRefused) as refused:
        decide_route(long_call, SIS.media_requirements(SIS_16K), can_convert=False)
    assert refused.value.code == "AUDIO_TOO_LONG"
    assert "sis takes at most 5 h and 300 MB in one job" in str(refused.value)


def test_the_limits_are_the_providers() -> None:
    sis, dashscope = SIS.media_requirements(SIS_16K), DASHSCOPE.media_requirements(DASHSCOPE_V2)
    assert (sis.max_duration_ms, sis.max_bytes) == (5 * HOUR_MS, 300 * 2**20)
    assert (dashscope.max_duration_ms, dashscope.max_bytes) == (12 * HOUR_MS, 2 * 2**30)
    assert isinstance(sis, MediaRequirements) and sis.sample_rate == 16000


def test_an_endpoint_backed_by_a_local_engine_is_a_setting_not_a_special_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bucketscribe.ports.secrets import NoSecretStore
    from bucketscribe.providers import registry
    from bucketscribe.settings import Settings

    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "ak")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk")
    monkeypatch.setenv("BUCKETSCRIBE_SIS_PROJECT_ID", "p")
    monkeypatch.setenv("BUCKETSCRIBE_DASHSCOPE_API_KEY", "k")
    documented = Settings()
    local = documented.model_copy(update={"provider_decodes": "any"})

    def built(name: str, settings: Settings) -> Provider:
        return registry.plugin(name).build(settings, NoSecretStore())

    assert built("sis", documented).media_requirements(SIS_16K).decodes is not None
    for provider in (built("sis", local), built("dashscope", local)):
        needs = provider.media_requirements(SIS_16K)
        assert needs.decodes is None and needs.sample_rate is None
        assert decide_route(MP4_AAC_16K_VIDEO, needs).route is Route.PASS_THROUGH
