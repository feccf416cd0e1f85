# Timing helpers shared by scripts/bench.sh and scripts/bench/*.sh (source it).

# Seconds of the fastest of three runs of a command, like DuckDB's best of
# three: the first run of a fresh process pays for cold caches.
best_of_3() {
  local best="" started took
  for _ in 1 2 3; do
    started=$(date +%s%N)
    "$@" >/dev/null
    took=$(awk "BEGIN { print ($(date +%s%N) - $started) / 1e9 }")
    best=$(awk -v a="$took" -v b="$best" 'BEGIN { print (b == "" || a < b) ? a : b }')
  done
  echo "$best"
}
