#!/usr/bin/env bash
# The cost of the mesh: the consent-checked person query (closed loop, and
# open loops at 2,000 and 5,000 calls/s), the full Flight export, the
# Parquet file `popbase export` writes, and the feed ingest, all-in-one
# beside split roles (each role its own process, every internal hop mutual
# TLS), on the same city, alternating rounds so the machine's drift falls
# on both alike. Prints a table and writes JSON and logs to $BENCH_OUT.
#
#   PERSONS=200000 DURATION=20 ROUNDS=2 scripts/bench/split.sh
#
# FEEDS=0 leaves out the two feed re-sends (about 3 minutes a run at Zibo's
# size).
# PLAIN=1 adds split roles without the mesh ("plain": mesh.plaintext), to
# tell the cost of TLS from the cost of the process hops.
# BASELINE_BIN=/path/to/older/popbase adds an all-in-one run of that binary
# each round ("base": person query and direct ingest; it may predate the
# gateway's write path), so a change's cost on all-in-one shows side by side.
#
# Feed ingest is measured two ways: through the gateway as the departments
# send it (DepartmentFeeds.Submit, one submission per department) and
# straight into the feeds role (Feeds.Ingest, as the gateway forwards it;
# split: over mTLS as the gateway). Each run starts from a fresh copy of
# the city and re-sends its whole feeds one second newer (match, history,
# upsert).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
name=split
source scripts/bench/common.sh
source scripts/bench/timing.sh
for identity in household residence feeds ledger gateway; do
  "$bin/popbase" pki --dir "$out/mesh" --identity "$identity" --host 127.0.0.1 >/dev/null
done

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap stop EXIT

# Starts `popbase serve` (logs under $1; then NAME=value environment, then
# serve's arguments) and waits for ready.
start() {
  local log="$1"; shift
  local envs=()
  while [[ "$1" == *=* ]]; do envs+=("$1"); shift; done
  env "${envs[@]}" "$server" --data "$work" serve "$@" --metrics-addr 127.0.0.1:0 >"$log.out" 2>"$log.err" &
  pids+=($!)
  for _ in $(seq 1 600); do
    grep -qs '^popbase ready' "$log.out" && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "split bench: $log did not start" >&2
  exit 1
}
mesh_env() {
  if [ "$mode" = plain ]; then
    echo "POPBASE_MESH_PLAINTEXT=true"
  else
    echo "POPBASE_MESH_CA=$out/mesh/ca.pem POPBASE_MESH_CERT=$out/mesh/$1.pem POPBASE_MESH_KEY=$out/mesh/$1.key"
  fi
}
tok() { "$server" --data "$work" token --department "$1"; }

ports=(household=127.0.0.1:57161 residence=127.0.0.1:57162 feeds=127.0.0.1:57163 ledger=127.0.0.1:57164)
upstreams=(POPBASE_UPSTREAM_HOUSEHOLD=http://127.0.0.1:57161 POPBASE_UPSTREAM_RESIDENCE=http://127.0.0.1:57162
  POPBASE_UPSTREAM_FEEDS=http://127.0.0.1:57163 POPBASE_UPSTREAM_LEDGER=http://127.0.0.1:57164)

run() {
  local mode="$1" round="$2" tag="$1-$2" gateway household mesh_args=()
  rm -rf "$work" && cp -r "$city" "$work"
  server="$bin/popbase"
  if [ "$mode" = base ]; then server="$BASELINE_BIN"; fi
  if [ "$mode" = base ] || [ "$mode" = all ]; then
    start "$out/$tag-all" --role all --household-addr 127.0.0.1:0 --residence-addr 127.0.0.1:0 \
      --feeds-addr 127.0.0.1:0 --gateway-addr 127.0.0.1:0 --ledger-addr 127.0.0.1:0
    addr() { sed -n "s/^popbase serving role=$1 addr=//p" "$out/$tag-all.out"; }
    gateway="http://$(addr gateway)" household="http://$(addr household)" feeds="http://$(addr feeds)"
    direct_env=()
  else
    for spec in "${ports[@]}"; do
      role="${spec%%=*}"
      # shellcheck disable=SC2046
      start "$out/$tag-$role" "${upstreams[@]}" $(mesh_env "$role") --role "$role" "--$role-addr" "${spec#*=}"
    done
    # shellcheck disable=SC2046
    start "$out/$tag-gateway" "${upstreams[@]}" $(mesh_env gateway) --role gateway --gateway-addr 127.0.0.1:0
    gateway="http://$(sed -n 's/^popbase serving role=gateway addr=//p' "$out/$tag-gateway.out")"
    household="http://127.0.0.1:57161" feeds="http://127.0.0.1:57163"
    if [ "$mode" = split ]; then
      mesh_args=(--mesh-ca "$out/mesh/ca.pem" --mesh-cert "$out/mesh/gateway.pem" --mesh-key "$out/mesh/gateway.key")
    fi
    read -r -a direct_env <<<"$(mesh_env gateway)"
  fi
  local big_data tokens
  big_data="$(tok big_data)"
  tokens=(--token "hrss=$(tok hrss)" --token "service_platform=$(tok service_platform)" --token "big_data=$big_data")
  lt() { "$bin/popbase-loadtest" run --gateway "$gateway" --household "$household" "${mesh_args[@]}" "${tokens[@]}" "$@" >/dev/null; }
  lt --scenario person --concurrency 32 --warmup 5 --duration "$duration" --out "$out/$tag-person.json"
  lt --scenario person --rate 2000 --concurrency 512 --warmup 5 --duration "$duration" --out "$out/$tag-open2k.json"
  lt --scenario person --rate 5000 --concurrency 512 --warmup 5 --duration "$duration" --out "$out/$tag-open5k.json"
  lt --scenario export --concurrency 1 --warmup 0 --duration "$duration" --out "$out/$tag-export.json"
  # The Parquet file as the bureau writes it (scripts/bench.sh's figure):
  # the fastest of three, seconds.
  best_of_3 "$bin/popbase" export --gateway "$gateway" --token "$big_data" --dataset persons --out "$out/$tag.parquet" \
    2>"$out/$tag-parquet.log" >"$out/$tag-parquet-s.txt"
  rm -f "$out/$tag.parquet"
  if [ "${FEEDS:-1}" = 0 ]; then
    for way in gateway direct; do echo "feed-load: not run (FEEDS=0) (0 records/s)" >"$out/$tag-feed-$way.txt"; done
  elif [ "$mode" = base ]; then
    echo "feed-load: not measured (the baseline may predate DepartmentFeeds) (0 records/s)" >"$out/$tag-feed-gateway.txt"
  else
    "$bin/popbase" --data "$work" feed-load --gateway "$gateway" --persons "$persons" --seed 2021 \
      --newer-by-ms 1000 >"$out/$tag-feed-gateway.txt"
  fi
  if [ "${FEEDS:-1}" != 0 ]; then
    env "${direct_env[@]}" "$server" --data "$work" feed-load --target "$feeds" --persons "$persons" --seed 2021 \
      --newer-by-ms 2000 >"$out/$tag-feed-direct.txt"
  fi
  stop
}

modes=(all split)
if [ -n "${PLAIN:-}" ]; then modes+=(plain); fi
if [ -n "${BASELINE_BIN:-}" ]; then modes=(base "${modes[@]}"); fi
for round in $(seq 1 "$rounds"); do
  for mode in "${modes[@]}"; do
    echo "split bench: round $round, $mode"
    run "$mode" "$round"
  done
done

echo "| round | mode | person query calls/s | p99 ms | open 2,000/s p99 ms | open 5,000/s p99 ms | Flight export rows/s (call p50) | Parquet file rows/s (best of 3) | feed via gateway records/s | feed into feeds role records/s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  for mode in "${modes[@]}"; do
    tag="$mode-$round"
    python3 - "$out/$tag" "$round" "$mode" <<'PY'
import json, re, sys
tag, round_, mode = sys.argv[1:]
load = lambda name: json.load(open(f"{tag}-{name}.json"))
rate = lambda way: re.search(r"\(([0-9]+) records/s\)", open(f"{tag}-feed-{way}.txt").read()).group(1)
person, open2k, open5k, export = load("person"), load("open2k"), load("open5k"), load("export")
rows = export["items"] / max(export["calls"], 1)
flight = rows / (export["latency"]["p50_ms"] / 1000) if export["calls"] else 0
parquet_s = float(open(f"{tag}-parquet-s.txt").read())
parquet = rows / parquet_s if parquet_s else 0
print(f"| {round_} | {mode} | {person['calls_per_s']:.0f} | {person['latency']['p99_ms']:.2f} | "
      f"{open2k['latency']['p99_ms']:.2f} | {open5k['latency']['p99_ms']:.2f} | {flight:,.0f} | {parquet:,.0f} | "
      f"{rate('gateway')} | {rate('direct')} |")
PY
  done
done
