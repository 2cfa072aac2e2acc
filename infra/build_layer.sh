#!/usr/bin/env bash
# Build the Lambda layer for the AWS deploy: the `bucketscribe` core package plus its runtime
# dependencies, as cp312 manylinux aarch64 wheels, laid out the way Lambda expects
# (<layer>/python/<package>). serverless.yml zips .build/layer as the `core` layer.
#
# Usage: infra/build_layer.sh [OUT_DIR]        (default: <repo>/.build/layer)
#   PYTHON=...                     interpreter whose pip does the work (default: .venv/bin/python,
#                                  else python3). Its own version does not matter: the
#                                  --platform/--python-version flags pick the Lambda wheels.
#   BUCKETSCRIBE_LAYER_MODE=full   (default) everything the AWS functions import.
#   BUCKETSCRIBE_LAYER_MODE=core   only pydantic, pydantic-settings and powertools, for quick
#                                  packaging checks; the layer cannot call SIS or DashScope.
#   BUCKETSCRIBE_LAYER_PLATFORM=   pip platform tag (default manylinux2014_aarch64, what the
#                                  functions run on). The tests build a host-platform copy
#                                  to import the handlers with a local python3.12.
#
# Left out on purpose:
#   boto3/botocore    the python3.12 Lambda runtime ships them; bundling would add ~30 MB.
#   esdk-obs-python   the Huawei OBS SDK is only for the FunctionGraph + OBS deploy. It is also
#                     sdist-only (as is its dependency crcmod), so an --only-binary cross-platform
#                     install cannot fetch it; on AWS the storage adapter is boto3 S3.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-$repo_root/.build/layer}"
mode="${BUCKETSCRIBE_LAYER_MODE:-full}"
platform="${BUCKETSCRIBE_LAYER_PLATFORM:-manylinux2014_aarch64}"

if [[ -n "${PYTHON:-}" ]]; then
  python="$PYTHON"
elif [[ -x "$repo_root/.venv/bin/python" ]]; then
  python="$repo_root/.venv/bin/python"
else
  python="python3"
fi

core_requirements=(
  "pydantic>=2.7"
  "pydantic-settings>=2.3"
  "aws-lambda-powertools>=3.0"
)
provider_requirements=(
  "huaweicloudsdksis>=3.1"
  "dashscope>=1.20"
)
case "$mode" in
  full) requirements=("${core_requirements[@]}" "${provider_requirements[@]}") ;;
  core) requirements=("${core_requirements[@]}") ;;
  *) echo "build_layer.sh: BUCKETSCRIBE_LAYER_MODE must be 'full' or 'core', not '$mode'" >&2; exit 2 ;;
esac

site_dir="$out_dir/python"
rm -rf "$out_dir"
mkdir -p "$site_dir"

pip=("$python" -m pip --disable-pip-version-check --no-input --quiet)

# Third-party wheels for the Lambda platform. --only-binary is required by pip with --platform,
# and it guarantees no host-compiled (x86_64) extension slips into an arm64 layer.
"${pip[@]}" install \
  --target "$site_dir" \
  --platform "$platform" \
  --implementation cp \
  --python-version 3.12 \
  --only-binary=:all: \
  --upgrade \
  "${requirements[@]}"

# Our own package is pure Python; --no-deps because its dependencies came from the step above.
# Build in a scratch copy so the build leaves no build/ or egg-info in the working tree.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src/shared"
cp "$repo_root/pyproject.toml" "$scratch/src/"
if [[ -f "$repo_root/README.md" ]]; then cp "$repo_root/README.md" "$scratch/src/"; fi
cp -R "$repo_root/shared/bucketscribe" "$scratch/src/shared/"
# The build backend is chatty (deprecation notices); show its output only if it fails.
if ! "${pip[@]}" install --target "$site_dir" --no-deps --upgrade "$scratch/src" >"$scratch/pip.log" 2>&1; then
  cat "$scratch/pip.log" >&2
  exit 1
fi

# The runtime provides these; a second copy only costs size and cold-start disk reads.
rm -rf "$site_dir"/boto3 "$site_dir"/boto3-* "$site_dir"/botocore "$site_dir"/botocore-* \
  "$site_dir"/s3transfer "$site_dir"/s3transfer-* "$site_dir"/bin
find "$site_dir" -type d -name __pycache__ -prune -exec rm -rf {} +

size_kb="$(du -sk "$out_dir" | cut -f1)"
echo "build_layer.sh: mode=$mode platform=$platform layer=$out_dir size=$((size_kb / 1024)) MiB"
