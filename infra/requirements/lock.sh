#!/usr/bin/env bash
# Regenerate the deploy locks (aws-layer.txt, functiongraph.txt, no-deps.txt) from the *.in files:
# exact versions and the sha256 of every file PyPI has for them, so one lock serves every target
# (Lambda arm64 cp312, FunctionGraph x86_64 cp312, and the host build the tests run) and pip's
# --require-hashes refuses anything else. Run it after changing a *.in file; commit all of them.
#
#   infra/requirements/lock.sh
#
# uv resolves for every platform and Python >= 3.11 at once (--universal), which pip-compile
# cannot do from one machine. It is installed into .build/uv-venv on first use.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
uv_version="0.13.9"
uv_venv="$repo_root/.build/uv-venv"
if [[ ! -x "$uv_venv/bin/uv" ]] || [[ "$("$uv_venv/bin/uv" --version | cut -d' ' -f2)" != "$uv_version" ]]; then
  python3 -m venv --clear "$uv_venv"
  "$uv_venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
fi

compile=("$uv_venv/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes
  --custom-compile-command "infra/requirements/lock.sh")
cd "$here"
"${compile[@]}" aws-layer.in -o aws-layer.txt
"${compile[@]}" functiongraph.in -o functiongraph.txt
"${compile[@]}" --no-deps no-deps.in -o no-deps.txt
echo "lock.sh: wrote $(cd "$repo_root" && ls infra/requirements/*.txt | tr '\n' ' ')"
