"""``bucketscribe up --state-dir DIR``: the bucket and the job records kept in a folder between runs.

moto server holds everything in memory. The stack copies its state out through the same S3 and
DynamoDB APIs a user would call when it stops, and back in when it starts:

- ``DIR/objects/<sha-256 of the key>``: each object's bytes; ``DIR/objects.json``: key → file,
  content type, ETag (unchanged objects are not downloaded again);
- ``DIR/jobs.jsonl``: the jobs table's items (job records and the provider tasks' file lists),
  one per line, as DynamoDB returns them.

Objects come back with the bucket's notifications switched off, so nothing finished is submitted
again; their ETags are the content's MD5 again, so job ids stay the same. A job that was still
at the speech service when the stack stopped cannot be finished (the emulator's memory is gone):
its record is dropped and its upload is put once more with notifications on, so it runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bucketscribe.domain.job import JobState

ClientFactory = Callable[[str], Any]
FORMAT_VERSION = 1


class StoredObject(BaseModel):
    file: str
    etag: str
    content_type: str = "application/octet-stream"


class Manifest(BaseModel):
    format: int = FORMAT_VERSION
    objects: dict[str, StoredObject] = {}


class StateCounts(BaseModel):
    objects: int = 0
    jobs: int = 0
    rerun: int = 0
    """Uploads whose jobs were unfinished: put again so they run again (restore only)."""


class StateDir:
    def __init__(self, folder: Path, *, bucket: str, jobs_table: str) -> None:
        self.folder = folder
        self._bucket = bucket
        self._jobs_table = jobs_table

    @property
    def _manifest_path(self) -> Path:
        return self.folder / "objects.json"

    @property
    def _jobs_path(self) -> Path:
        return self.folder / "jobs.jsonl"

    @property
    def exists(self) -> bool:
        return self._manifest_path.is_file()

    def save(self, client: ClientFactory) -> StateCounts:
        """Copy every object and job record into the folder (each file replaced whole)."""
        s3, dynamodb = client("s3"), client("dynamodb")
        objects_dir = self.folder / "objects"
        objects_dir.mkdir(parents=True, exist_ok=True)
        previous = self._read_manifest().objects
        manifest = Manifest()
        for key, etag in self._listed(s3):
            kept = previous.get(key)
            target = objects_dir / _file_name(key)
            if kept is None or kept.etag != etag or not target.is_file():
                response = s3.get_object(Bucket=self._bucket, Key=key)
                _write_whole(target, response["Body"].read())
                kept = StoredObject(
                    file=target.name,
                    etag=etag,
                    content_type=response.get("ContentType") or "application/octet-stream",
                )
            manifest.objects[key] = kept
        items = list(self._scanned(dynamodb))
        _write_whole(self._jobs_path, "".join(json.dumps(item) + "\n" for item in items).encode())
        _write_whole(self._manifest_path, manifest.model_dump_json(indent=1).encode())
        jobs = sum(1 for item in items if "state" in item)
        stale = {p.name for p in objects_dir.iterdir()} - {o.file for o in manifest.objects.values()}
        for name in stale:
            (objects_dir / name).unlink()
        return StateCounts(objects=len(manifest.objects), jobs=jobs)

    def restore(self, client: ClientFactory) -> StateCounts:
        """Put the saved objects and finished job records back into a freshly provisioned stack."""
        if not self.exists:
            return StateCounts()
        s3, dynamodb = client("s3"), client("dynamodb")
        manifest = self._read_manifest()
        rerun: list[str] = []
        jobs = 0
        for item in self._saved_items():
            if "state" not in item:  # another key space of the table (a provider task's files)
                dynamodb.put_item(TableName=self._jobs_table, Item=item)
            elif JobState(item["state"]["S"]).is_final:
                dynamodb.put_item(TableName=self._jobs_table, Item=item)
                jobs += 1
            else:
                rerun.append(json.loads(item["doc"]["S"])["source"]["key"])
        notifications = s3.get_bucket_notification_configuration(Bucket=self._bucket)
        notifications.pop("ResponseMetadata", None)
        s3.put_bucket_notification_configuration(Bucket=self._bucket, NotificationConfiguration={})
        try:
            for key, stored in manifest.objects.items():
                self._put(s3, key, stored)
        finally:
            s3.put_bucket_notification_configuration(
                Bucket=self._bucket, NotificationConfiguration=notifications
            )
        for key in rerun:
            if key in manifest.objects:
                self._put(s3, key, manifest.objects[key])
        return StateCounts(objects=len(manifest.objects), jobs=jobs, rerun=len(rerun))

    def _put(self, s3: Any, key: str, stored: StoredObject) -> None:
        body = (self.folder / "objects" / stored.file).read_bytes()
        s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=stored.content_type)

    def _listed(self, s3: Any) -> Iterator[tuple[str, str]]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket):
            for entry in page.get("Contents", []):
                yield entry["Key"], entry["ETag"].strip('"')

    def _scanned(self, dynamodb: Any) -> Iterator[dict[str, Any]]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=self._jobs_table, ConsistentRead=True):
            yield from page.get("Items", [])

    def _read_manifest(self) -> Manifest:
        if not self.exists:
            return Manifest()
        manifest = Manifest.model_validate_json(self._manifest_path.read_text(encoding="utf-8"))
        if manifest.format != FORMAT_VERSION:
            raise ValueError(
                f"{self.folder} holds state format {manifest.format}; this version reads {FORMAT_VERSION}"
            )
        return manifest

    def _saved_items(self) -> Iterator[dict[str, Any]]:
        if not self._jobs_path.is_file():
            return
        with self._jobs_path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)


def _file_name(key: str) -> str:
    # Keys may hold any character and be 1 024 bytes long: name files by a digest instead.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _write_whole(path: Path, data: bytes) -> None:
    """Write to a temporary name and rename, so a crash never leaves half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_bytes(data)
    partial.replace(path)
