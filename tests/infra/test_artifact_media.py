"""The deployed submit function, run from the deploy artifacts, converts and splits media as the
local stack does, and SIS gets what it documents it takes.

The Lambda layer is built by infra/build_layer.sh for this machine (its CPU and CPython) and the
function code is the zip `serverless package` made. A fresh interpreter with nothing but the layer,
the runtime's boto3 and the unpacked function zip on its path (-I -S) runs ``functions/submit.handler``
on an SQS batch that moto's S3 notifications produced, with the packaged template's environment
(deploy-time references replaced by stand-ins) pointed at a moto server (S3, SQS, DynamoDB,
Secrets Manager) and the local SIS emulator. ``provider_decodes`` keeps its default,
"documented", so the real conversion path runs: the emulator records each submission, and the
audio behind each ``data_url`` is fetched and read back with PyAV.

Uploads: a 48 kHz stereo WAV (SIS's default property needs 16 kHz), an MP4 video (SIS takes audio
only) and a 5.2-hour MP3 (over SIS's 5 h; generated here as one encoded minute repeated, 19 MB).
"""

from __future__ import annotations

import io
import json
import subprocess
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import boto3
import numpy as np
import pytest
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.sis_server import SisEmulator
from bucketscribe_local.speech import FixedSpeechEngine
from moto.server import ThreadedMotoServer

from bucketscribe.clouds.aws.job_store import jobs_table_definition
from bucketscribe.providers.sis.adapter import SIS_MAX_BYTES, SIS_MAX_DURATION_MS
from tests.audio import tone_wav
from tests.infra.aws_package import REGION, STAGE, HostLayer, Packaged, function_id, lambda_env
from tests.waiting import wait_until

pytestmark = pytest.mark.infra

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "bucketscribe_local" / "samples"
BUCKET = f"bucketscribe-{STAGE}-123456789012-{REGION}"
LONG_MINUTES = 313  # 5.22 h: over SIS's 5 h, under two parts of 4.85 h
UPLOADS = {
    "wav": "incoming/meeting 48k.wav",
    "mp4": "incoming/demo video.mp4",
    "mp3": "incoming/all-day.mp3",
}
# Runs in the artifact's interpreter: the handler, called as Lambda calls it.
RUNNER = """
import json, sys, time, uuid
sys.path[:0] = json.loads(sys.argv[1])
event = json.loads(open(sys.argv[2], encoding="utf-8").read())
deadline = time.monotonic() + float(sys.argv[3])

class Context:
    function_name = "bucketscribe-ci-submit"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:bucketscribe-ci-submit"
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/bucketscribe-ci-submit"
    log_stream_name = "artifact-test"
    def get_remaining_time_in_millis(self):
        return max(0, int((deadline - time.monotonic()) * 1000))

from functions.submit import handler
import bucketscribe
started = time.perf_counter()
response = handler(event, Context())
print(json.dumps({"response": response, "seconds": round(time.perf_counter() - started, 2),
                  "core": bucketscribe.__file__}))
"""


@dataclass(frozen=True)
class Heard:
    """What one SIS submission carried, and the audio its data_url serves."""

    key: str
    config: dict[str, Any]
    container: str
    codec: str
    sample_rate: int
    channels: int
    duration_ms: int
    size: int
    has_video: bool


def long_mp3(minutes: int) -> bytes:
    """A 16 kHz mono CBR MP3 at 8 kb/s: one encoded minute (20 s of tone, 10 s of quiet, twice),
    repeated. No Xing/ID3 header, so a demuxer takes the length from size and bitrate, as it does
    for any header-less CBR MP3, and the concatenation is one valid stream."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3", options={"write_xing": "0", "id3v2_version": "0"}) as out:
        stream = out.add_stream("libmp3lame", rate=16_000, layout="mono")
        stream.bit_rate = 8_000
        seconds = np.arange(16_000 * 60) / 16_000
        signal = (0.3 * np.sin(2 * np.pi * 440 * seconds) * ((seconds % 30) < 20)).astype(np.float32)
        for start in range(0, signal.size, 1152):
            frame = av.AudioFrame.from_ndarray(
                signal[None, start : start + 1152], format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = 16_000, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue() * minutes


def read_back(url: str) -> tuple[dict[str, Any], int]:
    """The media behind a URL, as the provider would download it, described by PyAV."""
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    with av.open(io.BytesIO(body)) as container:
        audio = container.streams.audio[0]
        duration_ms = round(container.duration / 1000) if container.duration else 0
        info = {
            "container": container.format.name.split(",")[0],
            "codec": audio.codec_context.name,
            "sample_rate": audio.codec_context.sample_rate,
            "channels": audio.codec_context.channels,
            "duration_ms": duration_ms,
            "has_video": bool(container.streams.video),
        }
    return info, len(body)


@pytest.fixture
def moto() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def sis() -> Iterator[tuple[SisEmulator, list[dict[str, Any]]]]:
    """The SIS emulator, recording every submission body it accepts. Jobs wait an hour before they
    start, so the emulator does no work of its own while the test reads the submissions."""
    received: list[dict[str, Any]] = []
    with SisEmulator(engine=FixedSpeechEngine(), faults=FaultPlan(processing_delay_s=3600)) as emulator:
        accept = emulator.backend.submit

        def recording(payload: object) -> Any:
            acceptance = accept(payload)
            assert isinstance(payload, dict)
            received.append(payload)
            return acceptance

        emulator.backend.submit = recording
        yield emulator, received


def aws(service: str, endpoint: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIDARTIFACTTEST",
        aws_secret_access_key="artifact-test-secret",
    )


def sqs_batch(endpoint: str, queue_url: str, expected: int) -> dict[str, Any]:
    """The queue's messages as Lambda's SQS poller hands them to the function."""
    sqs = aws("sqs", endpoint)
    messages: list[dict[str, Any]] = []

    def collected() -> bool:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        messages.extend(got.get("Messages", []))
        return len(messages) >= expected

    wait_until(collected, timeout_s=30, what=f"{expected} bucket notifications in the queue")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for message in messages
        ]
    }


def test_submit_from_the_artifacts_sends_sis_what_it_takes(
    packaged: Packaged,
    host_layer: HostLayer,
    moto: str,
    sis: tuple[SisEmulator, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    emulator, received = sis
    env = lambda_env(packaged, "submit")
    env.update(
        {
            # Every AWS call of the function (S3, DynamoDB, Secrets Manager) goes to moto.
            "AWS_ENDPOINT_URL": moto,
            "BUCKETSCRIBE_AWS_ENDPOINT_URL": moto,
            "AWS_ACCESS_KEY_ID": "AKIDARTIFACTTEST",
            "AWS_SECRET_ACCESS_KEY": "artifact-test-secret",
            "BUCKETSCRIBE_SIS_ENDPOINT": emulator.url,
        }
    )
    assert "BUCKETSCRIBE_PROVIDER_DECODES" not in env, "the documented formats, not 'any'"

    # The stack's resources, by the names the function's environment gives them.
    secrets = aws("secretsmanager", moto)
    secrets.create_secret(Name=env["BUCKETSCRIBE_CALLBACK_SECRET_NAME"], SecretString="c" * 48)
    sis_credentials = {"ak": emulator.ak, "sk": emulator.sk, "project_id": emulator.project_id}
    secrets.create_secret(
        Name=env["BUCKETSCRIBE_SIS_CREDENTIALS_SECRET_NAME"], SecretString=json.dumps(sis_credentials)
    )
    aws("dynamodb", moto).create_table(**jobs_table_definition(env["BUCKETSCRIBE_JOBS_TABLE"]))
    s3, sqs = aws("s3", moto), aws("sqs", moto)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    # The upload queue as the template makes it: the function reads its visibility timeout at its
    # cold start and refuses to run with a claim lease that outlives it.
    visibility = packaged.resources["UploadQueue"]["Properties"]["VisibilityTimeout"]
    queue_url = sqs.create_queue(QueueName="uploads", Attributes={"VisibilityTimeout": str(visibility)})[
        "QueueUrl"
    ]
    env["BUCKETSCRIBE_UPLOAD_QUEUE_URL"] = queue_url
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [{"Name": "prefix", "Value": env["BUCKETSCRIBE_INPUT_PREFIX"]}]
                        }
                    },
                }
            ]
        },
    )
    long_audio = long_mp3(LONG_MINUTES)
    s3.put_object(Bucket=BUCKET, Key=UPLOADS["wav"], Body=tone_wav(3.0, rate=48_000, channels=2))
    s3.put_object(Bucket=BUCKET, Key=UPLOADS["mp4"], Body=(SAMPLES / "demo_video.mp4").read_bytes())
    s3.put_object(Bucket=BUCKET, Key=UPLOADS["mp3"], Body=long_audio)
    # Three uploads and the s3:TestEvent S3 sends when the notification is configured.
    event = sqs_batch(moto, queue_url, expected=4)
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")

    task_dir = tmp_path / "task"  # what Lambda unpacks the function zip into
    with zipfile.ZipFile(packaged.out_dir / "bucketscribe.zip") as archive:
        archive.extractall(task_dir)
    paths = [str(host_layer.site_dir), str(host_layer.runtime_dir), str(task_dir)]
    timeout_s = packaged.props(function_id("submit"))["Timeout"]
    done = host_layer_run(host_layer, paths, event_path, timeout_s, env, cwd=task_dir)
    assert Path(done["core"]).is_relative_to(host_layer.site_dir), "bucketscribe must come from the layer"
    assert done["response"] == {"batchItemFailures": []}

    # What SIS got: one job for each short upload, two parts for the long one, all under the
    # default profile's property and with a per-job callback URL.
    heard = []
    for payload in received:
        info, size = read_back(payload["data_url"])
        # The audio made for SIS sits under the output prefix, named after the upload's key.
        url = urllib.parse.unquote(payload["data_url"])
        key = next(
            name
            for name, upload in UPLOADS.items()
            if f"/transcripts/{upload.removeprefix('incoming/')}." in url
        )
        heard.append(Heard(key=key, config=payload["config"], size=size, **info))
    assert sorted(h.key for h in heard) == ["mp3", "mp3", "mp4", "wav"]
    for submission in heard:
        assert submission.config["property"] == "chinese_16k_media"
        assert submission.config["callback_url"].startswith(
            env["BUCKETSCRIBE_CALLBACK_BASE_URL"] + "/callbacks/sis/"
        )
        assert submission.size <= SIS_MAX_BYTES and submission.duration_ms <= SIS_MAX_DURATION_MS
        assert (submission.sample_rate, submission.channels, submission.has_video) == (16_000, 1, False)

    (wav,) = (h for h in heard if h.key == "wav")
    # 48 kHz stereo → 16-bit PCM at 16 kHz mono (the property's rate), the whole 3 s.
    assert (wav.container, wav.codec) == ("wav", "pcm_s16le")
    assert abs(wav.duration_ms - 3000) <= 20
    (video,) = (h for h in heard if h.key == "mp4")
    # The video's 16 kHz mono AAC copied out into an M4A: no video track, not re-encoded.
    assert (video.container, video.codec) == ("mov", "aac")
    assert abs(video.duration_ms - 6355) <= 100
    parts = sorted((h for h in heard if h.key == "mp3"), key=lambda h: h.duration_ms)
    # Cut into two parts SIS takes, the MP3 frames copied as they are, together the whole file.
    assert all(part.container == "mp3" and part.codec in ("mp3", "mp3float") for part in parts)
    total_ms = len(long_audio) * 8 // 8  # 8 kb/s CBR: one byte a millisecond (the encoder pads a little)
    assert abs(sum(part.duration_ms for part in parts) - total_ms) <= 2_000
    # Copied, not re-encoded: the parts hold the upload's bytes (plus each part's own header).
    assert abs(sum(part.size for part in parts) - len(long_audio)) <= 4096 * len(parts)

    elapsed = time.monotonic() - started
    print(f"artifact run: handler {done['seconds']} s, test {elapsed:.1f} s (artifacts built by fixtures)")


def host_layer_run(
    layer: HostLayer, paths: list[str], event_path: Path, timeout_s: float, env: dict[str, str], *, cwd: Path
) -> dict[str, Any]:
    done = subprocess.run(
        layer.command("-c", RUNNER, json.dumps(paths), str(event_path), str(timeout_s)),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
