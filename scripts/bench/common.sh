# Shared prologue of the scripts under scripts/bench (source it after
# setting `root` and `name`): set-up, the release build, the generated
# city and the catalogue with quotas lifted. Sets persons, duration,
# rounds, cache, out, city, work and bin; exports the catalogue.
scripts/setup.sh
source scripts/rocksdb.sh
persons="${PERSONS:-200000}"
duration="${DURATION:-20}"
rounds="${ROUNDS:-2}"
cache="${POPBASE_CACHE_DIR:-$HOME/.cache/popbase}"
out="${BENCH_OUT:-$cache/bench/$name-$(date +%Y%m%d-%H%M%S)}"
city="$cache/bench/city-$persons"
work="$cache/bench/$name-work"
mkdir -p "$out"
echo "$name bench: results in $out"

cargo build --release -q -p popbase -p popbase-loadtest
bin="${CARGO_TARGET_DIR:-$root/target}/release"
if [ ! -f "$city/household/CURRENT" ]; then
  # The same city scripts/bench.sh serves (popbase demo's city and seed).
  "$bin/popbase" --data "$city" gen --city 3703 --persons "$persons" --seed 2021
fi
# A benchmark measures throughput, not quotas. Keys an older build
# (compare.sh's baseline) does not know are dropped: their defaults are the
# shipped values.
sed -E 's/^daily_quota = .*/daily_quota = 1000000000/; s/^per_second = .*/per_second = 10000000/; /^(subject_ages|self_consent_age) = /d' \
  data/catalogue/zibo.toml >"$out/catalogue.toml"
export POPBASE_GATEWAY_CATALOGUE="$out/catalogue.toml"

# One all-in-one server at a time: `serve_city TAG SERVER [WRAPPER...]`
# starts SERVER (under WRAPPER, e.g. taskset) on a fresh copy of the city,
# logs to $out/TAG.out and .err, moves it into the CPU cgroup `$cgroup`
# when a script set one (overload.sh), waits until it is ready and sets `pid`;
# `addr ROLE` reads a role's address from its log; `stop` ends it.
pid=""
serve_city() {
  local tag="$1" server="$2"
  shift 2
  rm -rf "$work" && cp -r "$city" "$work"
  "$@" "$server" --data "$work" serve --role all --household-addr 127.0.0.1:0 --residence-addr 127.0.0.1:0 \
    --feeds-addr 127.0.0.1:0 --gateway-addr 127.0.0.1:0 --ledger-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
    >"$out/$tag.out" 2>"$out/$tag.err" &
  pid=$!
  served="$out/$tag.out"
  if [ -n "${cgroup:-}" ]; then echo "$pid" >"$cgroup/cgroup.procs"; fi
  for _ in $(seq 1 600); do grep -qs '^popbase ready' "$served" && break; sleep 0.1; done
}
addr() { sed -n "s/^popbase serving role=$1 addr=//p" "$served"; }
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap stop EXIT
