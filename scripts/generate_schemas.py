"""Write the JSON Schemas of the canonical models, or check that the committed ones are current.

    python scripts/generate_schemas.py           # rewrite shared/bucketscribe/schemas/*.schema.json
    python scripts/generate_schemas.py --check   # exit 1 if any committed schema is stale

The schemas are generated, never edited by hand: a model change is followed by a
run of this script, and the unit tests fail until it has been run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from bucketscribe.domain.job import Job
from bucketscribe.domain.job_events import EventPayload
from bucketscribe.domain.transcript import Transcript

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "shared" / "bucketscribe" / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
MODELS: dict[str, type[BaseModel]] = {
    "transcript.schema.json": Transcript,
    "job.schema.json": Job,
    # The body of every webhook delivery (and the bus events' document, less its id).
    "transcript_event.schema.json": EventPayload,
}


def schema_text(model: type[BaseModel]) -> str:
    """The schema file's exact text: sorted keys, two-space indent, trailing newline."""
    schema = {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema()}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_files(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Schema files that are missing or differ from what the models generate now."""
    stale = []
    for name, model in MODELS.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != schema_text(model):
            stale.append(path)
    return stale


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema that is stale; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = stale_files(directory)
    for path in written:
        path.write_text(schema_text(MODELS[path.name]), encoding="utf-8")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if a schema is stale")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema folder (default: the package's)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.dir)
        for path in stale:
            print(f"stale: {path} (run scripts/generate_schemas.py)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas(args.dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
