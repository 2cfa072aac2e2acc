"""The committed JSON Schemas are exactly what the models generate now."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job
from bucketscribe.domain.transcript import Segment, Transcript, Word
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.render import render

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_schemas.py"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_schemas", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_are_current(generator: ModuleType) -> None:
    stale = generator.stale_files()
    assert stale == [], f"run: python scripts/generate_schemas.py  (stale: {stale})"
    assert generator.main(["--check"]) == 0


def test_check_notices_a_stale_or_missing_schema(generator: ModuleType, tmp_path: Path) -> None:
    assert generator.main(["--check", "--dir", str(tmp_path)]) == 1
    assert generator.main(["--dir", str(tmp_path)]) == 0
    assert generator.main(["--check", "--dir", str(tmp_path)]) == 0
    job_schema = tmp_path / "job.schema.json"
    job_schema.write_text(job_schema.read_text(encoding="utf-8").replace('"ACCEPTED"', '"NEW"'))
    assert generator.stale_files(tmp_path) == [job_schema]
    assert generator.main(["--check", "--dir", str(tmp_path)]) == 1


def test_schema_files_are_sorted_indented_and_end_with_a_newline(generator: ModuleType) -> None:
    for name in ("transcript.schema.json", "job.schema.json"):
        text = (generator.SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_rendered_transcript_and_job_validate_against_their_schemas(generator: ModuleType) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    source = ObjectRef(bucket="b", key="incoming/a.wav", etag='"abc"', size=10)
    transcript = Transcript(
        provider="sis",
        source=source,
        segments=[
            Segment(
                start_ms=0,
                end_ms=500,
                text="hi",
                speaker="A",
                words=[Word(start_ms=0, end_ms=500, text="hi")],
            )
        ],
    )
    transcript_schema = json.loads(
        (generator.SCHEMA_DIR / "transcript.schema.json").read_text(encoding="utf-8")
    )
    jsonschema.validate(json.loads(render(transcript, "json")), transcript_schema)
    job_schema = json.loads((generator.SCHEMA_DIR / "job.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(
        json.loads(
            Job.for_upload(
                source, profile="default", provider="sis", model=None, now=utc_now()
            ).model_dump_json()
        ),
        job_schema,
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"provider": "sis", "segments": [{"start_ms": -1}]}, transcript_schema)
