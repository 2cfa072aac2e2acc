#!/usr/bin/env bash
# Build the Lambda layer for the AWS deploy: the `bucketscribe` core package plus its runtime
# dependencies (PyAV and numpy included, so the functions convert and split media as the local
# stack does), installed from the hashed lock infra/requirements/aws-layer.txt and laid out the
# way Lambda expects (<layer>/python/<package>). serverless.yml zips .build/layer as `core`.
#
# Usage: infra/build_layer.sh [OUT_DIR]        (default: <repo>/.build/layer)
#   PYTHON=...                        interpreter whose pip does the work (default: .venv/bin/python,
#                                     else python3). Its own version and CPU do not matter.
#   BUCKETSCRIBE_LAYER_ARCH=aarch64   target CPU: aarch64 (default, what serverless.yml deploys:
#                                     arm64) or x86_64. The tests build for the host's CPU.
#   BUCKETSCRIBE_LAYER_PYTHON=3.12    target CPython (default 3.12, the functions' runtime). The
#                                     tests build for the interpreter that runs them.
#   BUCKETSCRIBE_LAYER_MODE=full      (default) everything the AWS functions import.
#   BUCKETSCRIBE_LAYER_MODE=core      only pydantic, pydantic-settings and powertools, for quick
#                                     packaging checks; the layer cannot call SIS or DashScope.
#
# The work (platform tags, hashes, dashscope without its server frameworks, trimming) is in
# infra/deploy_deps.py, shared with the FunctionGraph package build. Left out on purpose:
#   boto3/botocore    the python3.12 Lambda runtime ships them; bundling would add ~30 MB.
#   esdk-obs-python   the Huawei OBS SDK is only for the FunctionGraph + OBS deploy; on AWS the
#                     storage adapter is boto3 S3.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-$repo_root/.build/layer}"

if [[ -n "${PYTHON:-}" ]]; then
  python="$PYTHON"
elif [[ -x "$repo_root/.venv/bin/python" ]]; then
  python="$repo_root/.venv/bin/python"
else
  python="python3"
fi

exec "$python" "$repo_root/infra/deploy_deps.py" layer \
  --out "$out_dir" \
  --arch "${BUCKETSCRIBE_LAYER_ARCH:-aarch64}" \
  --python "${BUCKETSCRIBE_LAYER_PYTHON:-3.12}" \
  --mode "${BUCKETSCRIBE_LAYER_MODE:-full}"
