#!/usr/bin/env bash
# CI check of the Python example: starts `popbase demo` with a small city on
# ephemeral ports, runs examples/python/run.sh against it and checks the answers.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
popbase="${POPBASE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/popbase}"
work="$(mktemp -d)"
out="$work/demo.out"
"$popbase" --data "$work/data" demo --persons 3000 \
  --household-addr 127.0.0.1:0 --residence-addr 127.0.0.1:0 --feeds-addr 127.0.0.1:0 \
  --gateway-addr 127.0.0.1:0 --ledger-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --console-addr 127.0.0.1:0 >"$out" 2>"$work/demo.err" &
demo=$!
trap 'kill $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do
  grep -q '^popbase ready' "$out" && break
  kill -0 $demo 2>/dev/null || { cat "$work/demo.err" >&2; exit 1; }
  sleep 0.2
done
addr() { sed -n "s/^popbase serving role=$1 addr=//p" "$out"; }
# --intake: a city's 100,000 applications on one stream, one HTTP/2 frame
# each as grpcio sends them; every answer must arrive, in order.
result="$(POPBASE_BIN="$popbase" "$root/examples/python/run.sh" --gateway "$(addr gateway)" --data "$work/data" \
  --intake "${POPBASE_CHECK_INTAKE:-100000}")"
echo "$result"
grep -q '^basis: ENROLLMENT_BASIS_CHILD_AND_GUARDIAN_REGISTERED_IN_DISTRICT' <<<"$result"
grep -q '^intake py-bad: refused child_id_number' <<<"$result"
grep -q '^no purpose: INVALID_ARGUMENT' <<<"$result"
grep -q '^bulk intake: [0-9]* answered in order' <<<"$result"
echo "python example: enrollment check against popbase demo passed"

# The demo's internal ports are in its mesh: plaintext, no certificate, and
# a certificate the household role does not admit for Ops are all refused.
household="$(addr household)"
if "$popbase" stats --target "http://$household" >/dev/null 2>&1; then
  echo "check: the demo's household port answered a plaintext client" >&2; exit 1
fi
mesh="$work/data/mesh"
if POPBASE_MESH_CA="$mesh/ca.pem" POPBASE_MESH_CERT="$mesh/gateway.pem" POPBASE_MESH_KEY="$mesh/gateway.key" \
  "$popbase" checkpoint --label gateway-try --target "http://$household" >/dev/null 2>&1; then
  echo "check: the demo's household port let the gateway identity take a checkpoint" >&2; exit 1
fi
POPBASE_MESH_CA="$mesh/ca.pem" POPBASE_MESH_CERT="$mesh/backup.pem" POPBASE_MESH_KEY="$mesh/backup.key" \
  "$popbase" stats --target "http://$household" | grep -q '^role=household'
echo "demo mesh: the household port takes checkpoints for the backup identity only, over mTLS"

# A department's feed through the gateway (DepartmentFeeds.Submit): its own
# records land (again: all duplicates), another department's kind is refused.
fed="$(POPBASE_BIN="$popbase" "$root/examples/python/run.sh" --example feed --gateway "$(addr gateway)" --data "$work/data")"
echo "$fed"
grep -q '^feed: received=2000 .* rejected=0 ' <<<"$fed"
grep -q '^again: received=2000 duplicates=2000$' <<<"$fed"
grep -q '^pension: PERMISSION_DENIED KIND_NOT_APPROVED$' <<<"$fed"
echo "python example: feed upload through the gateway against popbase demo passed"

# The pension fund's roster subscription to deaths: acknowledge, hang up,
# resume; every death on the roster arrives, none off it.
subscribed="$(POPBASE_BIN="$popbase" "$root/examples/python/run.sh" --example subscribe --gateway "$(addr gateway)" --data "$work/data")"
echo "$subscribed"
grep -q '^unapproved field: PERMISSION_DENIED NOT_APPROVED$' <<<"$subscribed"
grep -q '^subscription: deaths=7 delivered=7 missing=0 outside_roster=0 unacknowledged_again=True$' <<<"$subscribed"
echo "python example: roster subscription with resume against popbase demo passed"

# What Prometheus sees: hostile request paths, then a scrape parsed by a real
# text-format parser (prometheus_client).
POPBASE_BIN="$popbase" "$root/examples/python/run.sh" --example metrics --gateway "$(addr gateway)" \
  --metrics "$(sed -n 's/^popbase metrics addr=//p' "$out")"

# Bulk export: `popbase export` writes Parquet and Arrow files through the
# gateway; pyarrow.flight and DuckDB check them (export_check.py).
token="$("$popbase" token --data "$work/data" --department big_data)"
mkdir -p "$work/exports"
for dataset in persons medical_insurance; do
  "$popbase" export --gateway "http://$(addr gateway)" --token "$token" --dataset "$dataset" \
    --out "$work/exports/$dataset.parquet" 2>&1 | tail -1
done
"$popbase" export --gateway "http://$(addr gateway)" --token "$token" --dataset persons --format arrow \
  --out "$work/exports/persons.arrow" 2>&1 | tail -1
"$popbase" export --gateway "http://$(addr gateway)" --token "$token" --dataset persons --columns sex,id_number \
  --out "$work/exports/persons-narrow.parquet" 2>&1 | tail -1
exported="$(POPBASE_BIN="$popbase" "$root/examples/python/run.sh" --example export --gateway "$(addr gateway)" \
  --parquet-dir "$work/exports" --data "$work/data")"
echo "$exported"
grep -q '^export check passed' <<<"$exported"
echo "python example: flight export, parquet and arrow files against popbase demo passed"
