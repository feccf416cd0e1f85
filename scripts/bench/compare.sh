#!/usr/bin/env bash
# This build against an older one on the scenarios of scripts/bench.sh
# (person query closed loop, school intake, uninsured listing, bulk
# export), all-in-one on fresh copies of the same city, alternating builds
# round by round so the machine's drift falls on both alike. Prints each
# scenario's median throughput per build and their ratio; writes JSON and
# logs to $BENCH_OUT. The check behind "no figure falls by more than 10 %".
#
#   BASELINE_BIN=/path/to/old/popbase PERSONS=200000 DURATION=20 ROUNDS=2 scripts/bench/compare.sh
#
# SCENARIOS="export" (any of person intake uninsured export) runs fewer.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
: "${BASELINE_BIN:?set BASELINE_BIN to the older popbase binary}"
scenarios="${SCENARIOS:-person intake uninsured export}"
warmup="${WARMUP:-5}"
name=compare
source scripts/bench/common.sh

# One build, one round: every scenario against a fresh copy of the city.
run() {
  local tag="$1" server="$2"
  serve_city "$tag" "$server"
  tok() { "$server" --data "$work" token --department "$1"; }
  local lt=("$bin/popbase-loadtest" run --gateway "http://$(addr gateway)" --household "http://$(addr household)"
    --token "hrss=$(tok hrss)" --token "service_platform=$(tok service_platform)" --token "education=$(tok education)"
    --token "medical_insurance=$(tok medical_insurance)" --token "big_data=$(tok big_data)" --duration "$duration")
  for scenario in $scenarios; do
    case "$scenario" in
      person) "${lt[@]}" --warmup "$warmup" --scenario person --concurrency 32 --out "$out/$tag-person.json" >/dev/null ;;
      intake) "${lt[@]}" --warmup "$warmup" --scenario intake --concurrency 4 --batch 1000 --out "$out/$tag-intake.json" >/dev/null ;;
      uninsured) "${lt[@]}" --warmup "$warmup" --scenario uninsured --concurrency 4 --out "$out/$tag-uninsured.json" >/dev/null ;;
      export) "${lt[@]}" --scenario export --concurrency 1 --warmup 0 --out "$out/$tag-export.json" >/dev/null ;;
      *) echo "compare: unknown scenario $scenario" >&2; exit 2 ;;
    esac
  done
  stop
}

for round in $(seq 1 "$rounds"); do
  echo "compare: round $round"
  run "base-$round" "$BASELINE_BIN"
  run "new-$round" "$bin/popbase"
done

python3 - "$out" "$rounds" "$scenarios" <<'PY'
import json, statistics, sys
out, rounds, chosen = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def median(tag, scenario, key):
    return statistics.median(json.load(open(f"{out}/{tag}-{r}-{scenario}.json"))[key] for r in range(1, rounds + 1))
print("| scenario | figure | base | new | new / base |")
print("|---|---|---:|---:|---:|")
for scenario, key, unit in [("person", "calls_per_s", "calls/s"), ("intake", "items_per_s", "children/s"),
                            ("uninsured", "items_per_s", "residents/s"), ("export", "items_per_s", "rows/s")]:
    if scenario not in chosen:
        continue
    base, new = median("base", scenario, key), median("new", scenario, key)
    print(f"| {scenario} | {unit} (median of {rounds}) | {base:,.0f} | {new:,.0f} | {new / base:.2f}× |")
PY
