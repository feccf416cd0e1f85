#!/usr/bin/env bash
# Whole-city lists at Zibo's size: the uninsured list (医保比对) asked for
# the whole city by its 4-digit code, for its eight counties at once, and
# for one county (周村), each timed to its first resident and to its end;
# then the residence role's 政策找人 (FindUnused) for the city, once per
# policy.
# With BASELINE=<an older popbase binary> the same calls run against that
# build too, side by side (a build that refuses the city code is noted and
# skipped for it). Each server starts from a fresh copy of the city.
# Prints the tables; JSON and logs under $BENCH_OUT.
#
#   scripts/bench/lists.sh                                # Zibo: 4.7 million persons, 3 rounds
#   BASELINE=~/.cache/popbase/bench/popbase-old scripts/bench/lists.sh
#   PERSONS=200000 ROUNDS=1 scripts/bench/lists.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
name=lists
PERSONS="${PERSONS:-4700000}"
ROUNDS="${ROUNDS:-3}"
source scripts/bench/common.sh

counties=(370302 370303 370304 370305 370306 370321 370322 370323)
tok() { echo "$1=$("$bin/popbase" --data "$work" token --department "$1")"; }
measure() {
  local tag="$1" server="$2"
  serve_city "$tag" "$server"
  local target=(--gateway "http://$(addr gateway)" --household "http://$(addr household)" --token "$(tok medical_insurance)")
  # Every round and every list apart by more than the gateway's
  # limits.list_share_secs (10 s): each reads the feeds' insured itself
  # rather than joining the read the one before left (the cold case).
  lists() { sleep 11; "$bin/popbase-loadtest" lists "${target[@]}" --rounds "$rounds" --pause-secs 11 "$@"; }
  echo; echo "## $tag: the city (3703)"; echo
  lists --division 3703 --out "$out/$tag-city.json" 2>"$out/$tag-city.log" ||
    echo "($tag refuses: $(grep -m1 -A1 '^Caused by' "$out/$tag-city.log" | tail -1 | sed 's/^ *//'))"
  echo; echo "## $tag: the eight counties at once"; echo
  # shellcheck disable=SC2046 # one --division per county
  lists $(printf -- '--division %s ' "${counties[@]}") --out "$out/$tag-counties.json" 2>"$out/$tag-counties.log" ||
    echo "($tag fails: $(grep -m1 -A1 '^Caused by' "$out/$tag-counties.log" | tail -1 | sed 's/^ *//'))"
  echo; echo "## $tag: one county (周村, 370306)"; echo
  lists --division 370306 --out "$out/$tag-county.json" 2>"$out/$tag-county.log"
  # 政策找人 of the residence role, asked on its own (loopback) port, once:
  # the older build's assessment resident by resident takes minutes.
  for policy in resident-medical-insurance compulsory-education; do
    echo; echo "## $tag: 政策找人 $policy, the city"; echo
    sleep 11 # past the residence role's 10 s window for a day's permit holders
    "$bin/popbase-loadtest" lists "${target[@]}" --rounds 1 --residence "http://$(addr residence)" --policy "$policy" \
      --division 3703 --out "$out/$tag-$policy.json" 2>"$out/$tag-$policy.log"
  done
  stop
}
measure popbase "$bin/popbase"
if [ -n "${BASELINE:-}" ]; then measure baseline "$BASELINE"; fi
