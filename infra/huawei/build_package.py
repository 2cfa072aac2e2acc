"""Build the FunctionGraph code package: one zip with the handlers at its root, ``bucketscribe``
and every runtime dependency, as CPython 3.12 manylinux x86_64 wheels (FunctionGraph's Python
3.12 runtime), uploaded by infra/huawei/storage.tf and run by all three functions.

    .venv/bin/python infra/huawei/build_package.py [--out DIR] [--arch x86_64] [--python 3.12]
                                                   [--profiles-file config/profiles.json]

The dependencies come from the hashed locks in infra/requirements (functiongraph.txt: the AWS
layer's set, PyAV and numpy included, plus boto3 for GeminiDB's DynamoDB API and the CSMS SDK),
installed and trimmed by infra/deploy_deps.py exactly as for the Lambda layer. Three are
installed from no-deps.txt without their declared dependencies:

- ``dashscope``: its metadata pulls server and CLI frameworks the functions never import;
- ``esdk-obs-python``: sdist-only (environment.md §1); ``pip wheel`` turns the hashed sdist into a
  ``py3-none-any`` wheel, which is then installed as is;
- ``crcmod``: sdist-only too; its pure-Python package (``python3/crcmod``, which it falls back to
  without its C extension) is copied in, so no host-built (wrong ABI) extension reaches the zip.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "infra"))
import deploy_deps  # noqa: E402 - infra/ is not a package; its module is shared with build_layer.sh

PACKAGE_NAME = "bucketscribe-functiongraph.zip"
PYTHON_VERSION = "3.12"
# A fixed timestamp makes the zip, and so its MD5 (the object key), depend on content alone.
ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)


def install_dependencies(site: Path, scratch: Path, *, arch: str, python_version: str) -> None:
    lock = deploy_deps.read_lock(deploy_deps.FUNCTIONGRAPH_LOCK)
    wheels = deploy_deps.write_subset(lock, list(lock), scratch / "functiongraph.txt")
    deploy_deps.install_wheels(site, wheels, arch=arch, python_version=python_version)
    no_deps = deploy_deps.read_lock(deploy_deps.NO_DEPS_LOCK)
    dashscope = deploy_deps.write_subset(no_deps, ["dashscope"], scratch / "dashscope.txt")
    deploy_deps.install_wheels(site, dashscope, arch=arch, python_version=python_version)

    obs_sdk = deploy_deps.write_subset(no_deps, ["esdk-obs-python"], scratch / "obs.txt")
    built = scratch / "built"
    deploy_deps.pip("wheel", "--no-deps", "--require-hashes", "--wheel-dir", str(built), "-r", str(obs_sdk))
    (obs_wheel,) = built.glob("esdk_obs_python-*.whl")
    deploy_deps.pip("install", "--target", str(site), "--no-deps", "--no-compile", str(obs_wheel))

    crcmod = deploy_deps.write_subset(no_deps, ["crcmod"], scratch / "crcmod.txt")
    sdists = scratch / "sdists"
    deploy_deps.pip(
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--require-hashes",
        "--dest",
        str(sdists),
        "-r",
        str(crcmod),
    )
    (archive,) = sdists.glob("crcmod-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(scratch / "crcmod", filter="data")
    (source,) = (scratch / "crcmod").glob("crcmod-*/python3/crcmod")
    shutil.copytree(source, site / "crcmod", ignore=shutil.ignore_patterns("test.py"))


def install_profiles(site: Path, profiles_file: Path) -> str:
    """A profiles file (too large for the 4096 characters of environment FunctionGraph allows)
    into the package, at its path relative to the repository, as the AWS function zip carries it;
    the Terraform variable profiles_file names that path."""
    source = profiles_file if profiles_file.is_absolute() else REPO / profiles_file
    relative = source.resolve().relative_to(REPO).as_posix()
    (site / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, site / relative)
    return relative


def install_project(site: Path, scratch: Path) -> None:
    """Our own package, and the FunctionGraph handler modules at the package root."""
    deploy_deps.install_project(site, scratch)
    # FunctionGraph imports handlers from the package root: the FunctionGraph modules of
    # functions/ that infra/functions.toml names go there (the Lambda ones are of no use).
    for module in handler_modules():
        shutil.copy(REPO / "functions" / f"{module}.py", site / f"{module}.py")


def handler_modules() -> list[str]:
    manifest = tomllib.loads((REPO / "infra" / "functions.toml").read_text(encoding="utf-8"))
    return sorted({spec["huawei_handler"].rsplit(".", 1)[0] for spec in manifest["functions"].values()})


def write_zip(site: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(site).as_posix(), date_time=ZIP_TIMESTAMP)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def build(
    out_dir: Path,
    *,
    arch: str = "x86_64",
    python_version: str = PYTHON_VERSION,
    profiles_file: Path | None = None,
) -> Path:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        site = scratch / "site"
        site.mkdir()
        install_dependencies(site, scratch, arch=arch, python_version=python_version)
        install_project(site, scratch)
        if profiles_file is not None:
            install_profiles(site, profiles_file)
        deploy_deps.trim(site)
        destination = out_dir / PACKAGE_NAME
        write_zip(site, destination)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / ".build" / "huawei")
    parser.add_argument("--arch", default="x86_64", choices=deploy_deps.ARCHES, help="the runtime's CPU")
    parser.add_argument("--python", default=PYTHON_VERSION, help="the runtime's CPython version")
    parser.add_argument(
        "--profiles-file",
        type=Path,
        help="a profiles JSON file in this repository to ship in the package (Terraform: profiles_file)",
    )
    options = parser.parse_args()
    package = build(
        options.out, arch=options.arch, python_version=options.python, profiles_file=options.profiles_file
    )
    with zipfile.ZipFile(package) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    print(
        f"build_package.py: {package} {package.stat().st_size / 2**20:.1f} MiB zipped, "
        f"{unpacked / 2**20:.1f} MiB unpacked, {options.arch}, CPython {options.python}"
    )


if __name__ == "__main__":
    main()
