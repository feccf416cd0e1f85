#!/usr/bin/env bash
# Generates Python stubs from proto/ (grpcio-tools, in a cached venv) and runs
# the enrollment check against a running gateway. Arguments go to the script;
# --data DIR fetches an education token from that demo data directory.
#   examples/python/run.sh --gateway 127.0.0.1:50051 --household 127.0.0.1:50061 --data popbase-data
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${POPBASE_CACHE_DIR:-$HOME/.cache/popbase}/venv-examples"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import grpc_tools" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check grpcio==1.76.0 grpcio-tools==1.76.0
fi
stubs="$(mktemp -d)"
trap 'rm -rf "$stubs"' EXIT
(cd "$root/proto" && find popbase -name '*.proto' -print0 | xargs -0 "$venv/bin/python" -m grpc_tools.protoc -I . --python_out="$stubs" --grpc_python_out="$stubs")
find "$stubs/popbase" -type d -exec touch {}/__init__.py \;

args=()
while (($#)); do
  if [ "$1" = "--data" ]; then
    popbase="${POPBASE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/popbase}"
    args+=(--token "$("$popbase" token --data "$2" --department education)")
    shift 2
  else
    args+=("$1")
    shift
  fi
done
PYTHONPATH="$stubs" "$venv/bin/python" "$root/examples/python/enrollment_check.py" "${args[@]}"
