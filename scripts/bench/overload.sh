#!/usr/bin/env bash
# Overload: the consent-checked person query driven open loop at three
# times the capacity a closed loop measured, against this build (which
# sheds past its limits) and, side by side, BASELINE_BIN (an older build,
# when given). Reports admitted p50/p99, the shed fraction and the
# server's peak RSS; writes JSON and logs to $BENCH_OUT.
#
#   PERSONS=200000 DURATION=20 BASELINE_BIN=/path/to/old/popbase scripts/bench/overload.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/rocksdb.sh
persons="${PERSONS:-200000}"
duration="${DURATION:-20}"
factor="${FACTOR:-3}"
cache="${POPBASE_CACHE_DIR:-$HOME/.cache/popbase}"
out="${BENCH_OUT:-$cache/bench/overload-$(date +%Y%m%d-%H%M%S)}"
city="$cache/bench/city-$persons"
work="$cache/bench/overload-work"
mkdir -p "$out"
echo "overload bench: results in $out"

cargo build --release -q -p popbase -p popbase-loadtest
bin="${CARGO_TARGET_DIR:-$root/target}/release"
if [ ! -f "$city/household/CURRENT" ]; then
  "$bin/popbase" --data "$city" gen --city 3703 --persons "$persons" --seed 2021
fi
sed -E 's/^daily_quota = .*/daily_quota = 1000000000/; s/^per_second = .*/per_second = 10000000/' \
  data/catalogue/zibo.toml >"$out/catalogue.toml"
export POPBASE_GATEWAY_CATALOGUE="$out/catalogue.toml"

pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap stop EXIT

# One build all-in-one on a fresh copy of the city: capacity (closed
# loop), then the open loop at $factor times it. Prints one table row.
measure() {
  local tag="$1" server="$2"
  rm -rf "$work" && cp -r "$city" "$work"
  "$server" --data "$work" serve --role all --household-addr 127.0.0.1:0 --residence-addr 127.0.0.1:0 \
    --feeds-addr 127.0.0.1:0 --gateway-addr 127.0.0.1:0 --ledger-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
    >"$out/$tag.out" 2>"$out/$tag.err" &
  pid=$!
  for _ in $(seq 1 600); do grep -q '^popbase ready' "$out/$tag.out" && break; sleep 0.1; done
  local gateway household
  gateway="http://$(sed -n 's/^popbase serving role=gateway addr=//p' "$out/$tag.out")"
  household="http://$(sed -n 's/^popbase serving role=household addr=//p' "$out/$tag.out")"
  local tokens=(--token "hrss=$("$server" --data "$work" token --department hrss)"
    --token "service_platform=$("$server" --data "$work" token --department service_platform)")
  "$bin/popbase-loadtest" run --gateway "$gateway" --household "$household" "${tokens[@]}" --scenario person \
    --concurrency 32 --warmup 5 --duration 10 --out "$out/$tag-capacity.json" >/dev/null
  local capacity rate
  capacity="$(python3 -c "import json;print(json.load(open('$out/$tag-capacity.json'))['calls_per_s'])")"
  rate="$(python3 -c "print(round($capacity * $factor))")"
  # Enough connections that the client's HTTP/2 stream limits queue nothing:
  # every call the schedule starts reaches the server.
  "$bin/popbase-loadtest" run --gateway "$gateway" --household "$household" "${tokens[@]}" --scenario person \
    --rate "$rate" --concurrency 8000 --connections 64 --warmup 2 --duration "$duration" \
    --out "$out/$tag-overload.json" >/dev/null
  local rss
  rss="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
  stop
  python3 - "$tag" "$capacity" "$rate" "$rss" "$out/$tag-overload.json" <<'PY'
import json, sys
tag, capacity, rate, rss, path = sys.argv[1:]
r = json.load(open(path))
attempted = max(r["calls"] + r["errors"], 1)
admitted = r.get("admitted_latency") or {"p50_ms": float("nan"), "p99_ms": float("nan")}
print(f"| {tag} | {float(capacity):,.0f} | {int(rate):,} | {r['calls_per_s']:,.0f} | {admitted['p50_ms']:.1f} | "
      f"{admitted['p99_ms']:.1f} | {100 * r.get('shed', 0) / attempted:.1f} % | {100 * (r['errors'] - r.get('shed', 0)) / attempted:.1f} % | {int(rss) / 1024:,.0f} |")
PY
}

rows=()
if [ -n "${BASELINE_BIN:-}" ]; then rows+=("$(measure base "$BASELINE_BIN")"); fi
rows+=("$(measure new "$bin/popbase")")
echo "| build | capacity calls/s (closed, 32) | offered calls/s (open) | answered calls/s | admitted p50 ms | admitted p99 ms | shed | other errors | server peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
