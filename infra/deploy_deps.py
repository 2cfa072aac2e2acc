"""Install the deployed functions' dependencies from the hashed locks in infra/requirements, for a
target CPU and Python, and trim what the functions never load. Shared by infra/build_layer.sh
(the AWS Lambda layer) and infra/huawei/build_package.py (the FunctionGraph code package).

    python infra/deploy_deps.py layer --out DIR [--arch aarch64] [--python 3.12] [--mode full|core]

Wheels only, for the target: pip gets ``--platform`` for every manylinux tag from
``manylinux_2_28_<arch>`` down to ``manylinux2014_<arch>`` (current PyAV publishes
``manylinux_2_28`` wheels only; given ``manylinux2014`` alone pip silently falls back to av 14 /
numpy 2.2, environment.md §10), ``--only-binary=:all:`` so nothing is compiled for the host, and
``--require-hashes --no-deps`` so only what the lock names, byte for byte, goes in.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "infra" / "requirements"
AWS_LOCK = LOCKS / "aws-layer.txt"
FUNCTIONGRAPH_LOCK = LOCKS / "functiongraph.txt"
NO_DEPS_LOCK = LOCKS / "no-deps.txt"
ARCHES = ("aarch64", "x86_64")
# The oldest glibc a tag may ask for is 2.17 (manylinux2014); the newest we accept is 2.28, which
# Lambda's python3.12 (Amazon Linux 2023, glibc 2.34) satisfies.
NEWEST_GLIBC_MINOR = 28
OLDEST_GLIBC_MINOR = 17
# The Lambda layer without the provider SDKs or media, for quick packaging checks only.
CORE_ROOTS = ("pydantic", "aws-lambda-powertools")
# The Lambda Python runtime provides these; a second copy only costs size and cold-start reads.
LAMBDA_RUNTIME_PROVIDES = ("boto3", "botocore", "s3transfer")


def platform_tags(arch: str) -> list[str]:
    """Every manylinux tag a wheel for ``arch`` may carry and still load on the targets."""
    if arch not in ARCHES:
        raise SystemExit(f"deploy_deps.py: arch must be one of {ARCHES}, not {arch!r}")
    newest_first = range(NEWEST_GLIBC_MINOR, OLDEST_GLIBC_MINOR - 1, -1)
    # pip widens manylinux2014 to manylinux2010/manylinux1 by itself; the 2_x tags it takes literally.
    return [f"manylinux_2_{minor}_{arch}" for minor in newest_first] + [f"manylinux2014_{arch}"]


# -- the locks ------------------------------------------------------------------------------------


@dataclass
class Locked:
    """One requirement of a uv/pip-compile lock: its lines as written and who asked for it."""

    name: str
    lines: list[str]
    wanted_by: set[str] = field(default_factory=set)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, Locked]:
    """A hashed lock, by canonical name, with its ``# via`` annotations (who depends on it)."""
    entries: dict[str, Locked] = {}
    current: Locked | None = None
    in_via = False
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if requirement:
            current = Locked(_canonical(requirement.group(1)), [line])
            entries[current.name] = current
            in_via = False
        elif current is not None and line.startswith("    --hash="):
            current.lines.append(line)
        elif current is not None and line.strip().startswith("# via"):
            in_via = True
            rest = line.split("# via", 1)[1].strip()
            if rest:
                current.wanted_by.add(_canonical(rest))
        elif current is not None and in_via and line.startswith("    #   "):
            current.wanted_by.add(_canonical(line.strip("# ").strip()))
    return entries


def closure(lock: dict[str, Locked], roots: Iterable[str]) -> set[str]:
    """``roots`` and everything they need, following the lock's ``# via`` links downwards."""
    wanted = {_canonical(root) for root in roots}
    missing = wanted - lock.keys()
    if missing:
        raise SystemExit(f"deploy_deps.py: not in the lock: {sorted(missing)}")
    while True:
        more = {name for name, entry in lock.items() if entry.wanted_by & wanted} - wanted
        if not more:
            return wanted
        wanted |= more


def write_subset(lock: dict[str, Locked], names: Iterable[str], destination: Path) -> Path:
    """A requirements file with only ``names`` of the lock, hashes included."""
    chosen = sorted(set(names))
    lines = [line for name in chosen for line in lock[name].lines]
    destination.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return destination


# -- pip ------------------------------------------------------------------------------------------


def pip(*args: str, python: str = sys.executable) -> None:
    """Run pip quietly; show what it said only when it fails (setuptools is chatty)."""
    done = subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"deploy_deps.py: pip {args[0]} failed ({done.returncode})")


def install_wheels(site: Path, requirements: Path, *, arch: str, python_version: str) -> None:
    """Install exactly the hashed ``requirements`` as ``arch``/CPython ``python_version`` wheels."""
    target = ["--target", str(site), "--implementation", "cp", "--python-version", python_version]
    for tag in platform_tags(arch):
        target += ["--platform", tag]
    pip(
        "install",
        *target,
        "--only-binary=:all:",
        "--require-hashes",
        "--no-deps",
        "--no-compile",
        "--upgrade",
        "-r",
        str(requirements),
    )


def install_project(site: Path, scratch: Path) -> None:
    """Our own package (pure Python), built from a scratch copy so no build/ is left behind."""
    source = scratch / "src"
    (source / "shared").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    # The CLI (and the dev kit, a package of its own) are for people at a terminal: no deployed
    # function imports them, so they stay out of the artifacts.
    shutil.copytree(
        REPO / "shared" / "bucketscribe",
        source / "shared" / "bucketscribe",
        ignore=_outside_the_artifact,
    )
    pip("install", "--target", str(site), "--no-deps", "--no-compile", "--upgrade", str(source))


def _outside_the_artifact(folder: str, names: list[str]) -> set[str]:
    here = Path(folder)
    return {
        name
        for name in names
        if name == "__pycache__" or (name == "cli" and here == REPO / "shared" / "bucketscribe")
    }


# -- trimming -------------------------------------------------------------------------------------


def trim(site: Path) -> int:
    """Remove what no deployed function loads; return the bytes removed.

    Bytecode caches (Lambda and FunctionGraph cannot write them back anyway), type stubs, test
    suites shipped inside packages (numpy's alone is ~18 MB), console scripts. Package metadata
    (*.dist-info) stays: importlib.metadata reads versions from it at run time.
    """
    removed = 0

    def drop(path: Path) -> None:
        nonlocal removed
        if path.is_dir():
            removed += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path)
        elif path.exists():
            removed += path.stat().st_size
            path.unlink()

    for cache in list(site.rglob("__pycache__")):
        drop(cache)
    for pattern in ("*.pyc", "*.pyi"):
        for path in list(site.rglob(pattern)):
            drop(path)
    for tests in sorted(site.glob("*/**/tests"), key=lambda p: len(p.parts)):
        # Only test suites inside a package; a top-level "tests" would be a package of its own.
        if tests.is_dir() and tests.parent != site:
            drop(tests)
    drop(site / "bin")
    return removed


def size_of(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


# -- the AWS layer --------------------------------------------------------------------------------


def build_layer(out_dir: Path, *, arch: str, python_version: str, mode: str) -> Path:
    """The Lambda layer: <out_dir>/python/<package>, as Lambda mounts it under /opt/python."""
    if mode not in ("full", "core"):
        raise SystemExit(f"deploy_deps.py: mode must be 'full' or 'core', not {mode!r}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    site = out_dir / "python"
    site.mkdir(parents=True)
    lock = read_lock(AWS_LOCK)
    names = set(lock) if mode == "full" else closure(lock, CORE_ROOTS)
    provided = set(LAMBDA_RUNTIME_PROVIDES) & names
    if provided:
        raise SystemExit(
            f"deploy_deps.py: the Lambda runtime provides {sorted(provided)}; drop them from the lock"
        )
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        install_wheels(
            site, write_subset(lock, names, scratch / "layer.txt"), arch=arch, python_version=python_version
        )
        if mode == "full":
            no_deps = read_lock(NO_DEPS_LOCK)
            install_wheels(
                site,
                write_subset(no_deps, ["dashscope"], scratch / "no-deps.txt"),
                arch=arch,
                python_version=python_version,
            )
        install_project(site, scratch)
    trim(site)
    return site


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    layer = commands.add_parser("layer", help="build the AWS Lambda layer")
    layer.add_argument("--out", type=Path, default=REPO / ".build" / "layer")
    layer.add_argument("--arch", default="aarch64", choices=ARCHES)
    layer.add_argument("--python", default="3.12", help="target CPython version, e.g. 3.12")
    layer.add_argument("--mode", default="full", choices=("full", "core"))
    options = parser.parse_args()
    site = build_layer(options.out, arch=options.arch, python_version=options.python, mode=options.mode)
    print(
        f"deploy_deps.py: layer {options.out} mode={options.mode} arch={options.arch} "
        f"python={options.python} {size_of(site) / 2**20:.1f} MiB unpacked"
    )


if __name__ == "__main__":
    main()
