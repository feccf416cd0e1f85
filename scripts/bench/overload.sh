#!/usr/bin/env bash
# Overload: the consent-checked person query driven open loop at three
# times the capacity a closed loop measured, against this build (which
# sheds past its limits) and, side by side, BASELINE_BIN (an older build,
# when given). Reports admitted p50/p99, the shed fraction and the
# server's peak RSS; writes JSON and logs to $BENCH_OUT.
#
#   PERSONS=200000 DURATION=20 BASELINE_BIN=/path/to/old/popbase scripts/bench/overload.sh
#
# The load tester must be able to start three times what the server
# answers, or its own lateness is measured as the server's latency: on a
# machine of two cores it cannot when the server has a core of its own. So
# the server runs in a CPU cgroup limited to SERVER_CPU_SHARE of one core
# (default 0.3; cgroup v1 `cpu` controller, needs root), the tester on the
# rest; the table's last column (the tester's schedule lag) shows whether
# the tester kept up. Without a writable cgroup the server is pinned to
# core 0 and the tester to core 1 instead.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
factor="${FACTOR:-3}"
share="${SERVER_CPU_SHARE:-0.3}"
cgroup=/sys/fs/cgroup/cpu/popbase-bench
pin_server=(taskset -c 0)
pin_client=(taskset -c 1)
quota="$(python3 -c "print(round($share * 10000))")"
if mkdir -p "$cgroup" 2>/dev/null && echo 10000 >"$cgroup/cpu.cfs_period_us" 2>/dev/null &&
  echo "$quota" >"$cgroup/cpu.cfs_quota_us" 2>/dev/null; then
  pin_server=()
  pin_client=()
  echo "overload bench: server limited to $share of a core (cgroup $cgroup)"
else
  cgroup=""
  echo "overload bench: no writable cpu cgroup; server on core 0, tester on core 1"
fi
name=overload
source scripts/bench/common.sh

# One build all-in-one on a fresh copy of the city: capacity (closed
# loop), then the open loop at $factor times it. Prints one table row.
measure() {
  local tag="$1" server="$2"
  serve_city "$tag" "$server" "${pin_server[@]}"
  local gateway household
  gateway="http://$(addr gateway)"
  household="http://$(addr household)"
  local tokens=(--token "hrss=$("$server" --data "$work" token --department hrss)"
    --token "service_platform=$("$server" --data "$work" token --department service_platform)")
  "${pin_client[@]}" "$bin/popbase-loadtest" run --gateway "$gateway" --household "$household" "${tokens[@]}" --scenario person \
    --concurrency 32 --warmup 5 --duration 10 --out "$out/$tag-capacity.json" >/dev/null
  local capacity rate
  capacity="$(python3 -c "import json;print(json.load(open('$out/$tag-capacity.json'))['calls_per_s'])")"
  rate="$(python3 -c "print(round($capacity * $factor))")"
  # Enough connections that the client's HTTP/2 stream limits queue nothing:
  # every call the schedule starts reaches the server.
  "${pin_client[@]}" "$bin/popbase-loadtest" run --gateway "$gateway" --household "$household" "${tokens[@]}" --scenario person \
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
lag = r.get("schedule_lag") or {"p99_ms": float("nan")}
print(f"| {tag} | {float(capacity):,.0f} | {int(rate):,} | {r['calls_per_s']:,.0f} | {admitted['p50_ms']:.1f} | "
      f"{admitted['p99_ms']:.1f} | {100 * r.get('shed', 0) / attempted:.1f} % | {100 * (r['errors'] - r.get('shed', 0)) / attempted:.1f} % | "
      f"{int(rss) / 1024:,.0f} | {lag['p99_ms']:.1f} |")
PY
}

rows=()
if [ -n "${BASELINE_BIN:-}" ]; then rows+=("$(measure base "$BASELINE_BIN")"); fi
rows+=("$(measure new "$bin/popbase")")
echo "| build | capacity calls/s (closed, 32) | offered calls/s (open) | answered calls/s | admitted p50 ms | admitted p99 ms | shed | other errors | server peak RSS MiB | tester lag p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
