#!/usr/bin/env bash
# Generates Python stubs from proto/ (grpcio-tools, in a cached venv with
# pyarrow and duckdb) and runs one example against a running gateway.
# --example enrollment (default), export or feed; --data DIR fetches a token for
# the example's department from that demo data directory; other arguments
# go to the script.
#   examples/python/run.sh --gateway 127.0.0.1:50051 --data popbase-data
#   examples/python/run.sh --example export --gateway 127.0.0.1:50051 --data popbase-data
#   examples/python/run.sh --example feed --gateway 127.0.0.1:50051 --data popbase-data
#   examples/python/run.sh --example subscribe --gateway 127.0.0.1:50051 --data popbase-data
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${POPBASE_CACHE_DIR:-$HOME/.cache/popbase}/venv-examples"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import grpc_tools, pyarrow.flight, duckdb, prometheus_client" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    grpcio==1.76.0 grpcio-tools==1.76.0 pyarrow==26.0.1 duckdb==1.5.6 prometheus-client==0.26.0
fi
stubs="$(mktemp -d)"
trap 'rm -rf "$stubs"' EXIT
(cd "$root/proto" && find popbase -name '*.proto' -print0 | xargs -0 "$venv/bin/python" -m grpc_tools.protoc -I . --python_out="$stubs" --grpc_python_out="$stubs")
find "$stubs/popbase" -type d -exec touch {}/__init__.py \;

example=enrollment
args=()
data=""
while (($#)); do
  case "$1" in
    --example) example="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$example" in
  enrollment) script=enrollment_check.py; department=education ;;
  export) script=export_check.py; department=big_data ;;
  feed) script=feed_upload.py; department=medical_insurance ;;
  subscribe) script=subscribe_roster.py; department=hrss ;;
  metrics) script=metrics_check.py; department="" ;;
  *) echo "run.sh: unknown example '$example' (enrollment, export, feed, subscribe or metrics)" >&2; exit 2 ;;
esac
if [ -n "$data" ] && [ -n "$department" ]; then
  popbase="${POPBASE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/popbase}"
  args+=(--token "$("$popbase" token --data "$data" --department "$department")")
  if [ "$example" != feed ]; then
    # The household office's token: the enrollment example finds a demo family
    # through its export, the export example changes an address with it.
    args+=(--police-token "$("$popbase" token --data "$data" --department public_security)")
  fi
fi
PYTHONPATH="$stubs" "$venv/bin/python" "$root/examples/python/$script" "${args[@]}"
