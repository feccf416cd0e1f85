#!/usr/bin/env bash
# Change notifications at a city's size: ten subscribers (medical
# insurance's counties, the pension fund's rosters) receive a generated
# year of life events from the registry's log, one of them hanging up and
# resuming; then deaths are registered through the gateway at a fixed rate
# and each change's commit-to-arrival lag is recorded. Each run starts from
# a fresh copy of the city. Prints a table; JSON under $BENCH_OUT.
#
#   scripts/bench/subscriptions.sh                       # Zibo: 4.7 million persons, 3 runs
#   PERSONS=200000 ROUNDS=1 scripts/bench/subscriptions.sh
#
# ROSTER (persons per roster, 100,000), LIVE_RATE (deaths/s, 50) and
# LIVE_SECONDS (20) shape the run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
name=subscriptions
PERSONS="${PERSONS:-4700000}"
ROUNDS="${ROUNDS:-3}"
source scripts/bench/common.sh

tok() { echo "$1=$("$bin/popbase" --data "$work" token --department "$1")"; }
for round in $(seq 1 "$rounds"); do
  serve_city "serve-$round" "$bin/popbase"
  "$bin/popbase-loadtest" subscribers --gateway "http://$(addr gateway)" --household "http://$(addr household)" \
    --token "$(tok medical_insurance)" --token "$(tok hrss)" --token "$(tok public_security)" --token "$(tok audit)" \
    --roster "${ROSTER:-100000}" --live-rate "${LIVE_RATE:-50}" --live-seconds "${LIVE_SECONDS:-20}" \
    --out "$out/run-$round.json" --notes "$persons persons, all-in-one, run $round" 2>"$out/run-$round.log" | tail -1
  stop
done
