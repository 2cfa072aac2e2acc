"""Build the FunctionGraph code package: one zip with the handlers at its root, ``bucketscribe``
and every runtime dependency, as CPython 3.12 manylinux x86_64 wheels (FunctionGraph's Python
3.12 runtime), uploaded by infra/huawei/storage.tf and run by all three functions.

    .venv/bin/python infra/huawei/build_package.py [--out DIR] [--platform TAG]

The dependencies are the project's own (pyproject.toml: ``dependencies`` plus the ``aws``, ``sis``,
``dashscope``, ``obs`` and ``csms`` extras): boto3 talks to GeminiDB's DynamoDB API here, as the
FunctionGraph runtime ships no SDK. Two of them publish no wheels at all (environment.md §1):

- ``esdk-obs-python``: ``pip wheel`` turns its sdist into a ``py3-none-any`` wheel, which the
  cross-platform install then accepts from ``--find-links``;
- ``crcmod``: its sdist carries a pure-Python package (``python3/crcmod``) next to an optional C
  extension it falls back from; that package is copied in as is, so no host-built (wrong ABI)
  extension can end up in the zip.

Left out on purpose, as in the AWS layer: PyAV (speech-track extraction is skipped without it).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE_NAME = "bucketscribe-functiongraph.zip"
EXTRAS = ("aws", "sis", "dashscope", "obs", "csms")
NO_WHEELS = ("esdk-obs-python", "crcmod")
PYTHON_VERSION = "3.12"
# A fixed timestamp makes the zip, and so its MD5 (the object key), depend on content alone.
ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)


def requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in EXTRAS:
        wanted += project["optional-dependencies"][extra]
    return wanted


def _name(requirement: str) -> str:
    for separator in "<>=!~[; ":
        requirement = requirement.split(separator, 1)[0]
    return requirement.strip().lower()


def _pip(*args: str) -> None:
    """Run pip quietly; show what it said only when it fails (setuptools is chatty)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"build_package.py: pip {args[0]} failed ({done.returncode})")


def install_dependencies(site: Path, scratch: Path, platform: str) -> None:
    wheels, sdists = scratch / "wheels", scratch / "sdists"
    wanted = requirements()
    obs_sdk = next(r for r in wanted if _name(r) == "esdk-obs-python")
    _pip("wheel", "--no-deps", "--wheel-dir", str(wheels), obs_sdk)
    _pip("download", "--no-deps", "--no-binary", ":all:", "--dest", str(sdists), "crcmod")
    # esdk-obs-python's other dependencies (it declares crcmod, pycryptodome and requests).
    with_obs_deps = [r for r in wanted if _name(r) not in NO_WHEELS] + ["pycryptodome", "requests"]
    target = ["--target", str(site), "--platform", platform, "--implementation", "cp"]
    target += ["--python-version", PYTHON_VERSION, "--only-binary=:all:", "--upgrade"]
    _pip("install", *target, *with_obs_deps)
    _pip("install", *target, "--no-deps", "--find-links", str(wheels), obs_sdk)
    (archive,) = sdists.glob("crcmod-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(scratch / "crcmod", filter="data")
    (source,) = (scratch / "crcmod").glob("crcmod-*/python3/crcmod")
    shutil.copytree(source, site / "crcmod", ignore=shutil.ignore_patterns("test.py"))


def install_project(site: Path, scratch: Path) -> None:
    """Our own package (pure Python), built from a scratch copy so no build/ is left behind."""
    source = scratch / "src"
    (source / "shared").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(REPO / "shared" / "bucketscribe", source / "shared" / "bucketscribe")
    _pip("install", "--target", str(site), "--no-deps", "--upgrade", str(source))
    # FunctionGraph imports handlers from the package root: the FunctionGraph modules of
    # functions/ that infra/functions.toml names go there (the Lambda ones are of no use).
    for module in handler_modules():
        shutil.copy(REPO / "functions" / f"{module}.py", site / f"{module}.py")


def handler_modules() -> list[str]:
    manifest = tomllib.loads((REPO / "infra" / "functions.toml").read_text(encoding="utf-8"))
    return sorted({spec["huawei_handler"].rsplit(".", 1)[0] for spec in manifest["functions"].values()})


def prune(site: Path) -> None:
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(site / "bin", ignore_errors=True)


def write_zip(site: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(site).as_posix(), date_time=ZIP_TIMESTAMP)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def build(out_dir: Path, platform: str) -> Path:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        site = scratch / "site"
        install_dependencies(site, scratch, platform)
        install_project(site, scratch)
        prune(site)
        destination = out_dir / PACKAGE_NAME
        write_zip(site, destination)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / ".build" / "huawei")
    parser.add_argument("--platform", default="manylinux2014_x86_64", help="pip platform tag of the runtime")
    options = parser.parse_args()
    package = build(options.out, options.platform)
    with zipfile.ZipFile(package) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    print(
        f"build_package.py: {package} {package.stat().st_size / 2**20:.1f} MiB zipped, "
        f"{unpacked / 2**20:.1f} MiB unpacked, platform {options.platform}, CPython {PYTHON_VERSION}"
    )


if __name__ == "__main__":
    main()
