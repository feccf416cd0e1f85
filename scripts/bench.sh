#!/usr/bin/env bash
# Benchmarks, side by side on this machine and the same generated city:
# popbase (release build, all-in-one, durable audit) driven by
# popbase-loadtest, PostgreSQL doing the equivalent work (pgbench), and
# DuckDB writing Parquet. Writes JSON and Markdown reports and
# comparison.md (ratios) to $BENCH_OUT.
#
#   scripts/bench.sh                          # Zibo: 4.7 million persons
#   PERSONS=200000 DURATION=20 scripts/bench.sh
#   FULL=1 scripts/bench.sh                   # then the whole-city lists, the feed refresh and split mode
#
# Needs root for apt-get (PostgreSQL, when missing) and to run PostgreSQL
# as its own user. At Zibo's size it takes about 10 minutes on 2 cores once
# the city is generated (about 2.5 minutes, then cached); FULL=1 adds
# scripts/bench/lists.sh and scripts/bench/feeds.sh (3 rounds each) and
# scripts/bench/split.sh (every read-path scenario all-in-one beside split
# roles over mTLS, 2 rounds), about 45 minutes more, their tables in
# lists.md, feeds.md and split.md beside comparison.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/rocksdb.sh
source scripts/bench/timing.sh
persons="${PERSONS:-4700000}"
duration="${DURATION:-20}"
warmup="${WARMUP:-5}"
cache="${POPBASE_CACHE_DIR:-$HOME/.cache/popbase}"
out="${BENCH_OUT:-$cache/bench/$(date +%Y%m%d-%H%M%S)}"
city="$cache/bench/city-$persons"
data="$cache/bench/bench-work"
mkdir -p "$out"
echo "bench: results in $out"

cargo build --release -q -p popbase -p popbase-loadtest
bin="${CARGO_TARGET_DIR:-$root/target}/release"
# The city is generated once and cached (Zibo: about 2 minutes); each run
# serves a fresh copy of it, since the run's writes (consents, births and
# deaths, the audit) must not pile up in the cache.
if [ ! -f "$city/household/CURRENT" ]; then
  "$bin/popbase" --data "$city" gen --city 3703 --persons "$persons" --seed 2021
fi
rm -rf "$data" && cp -r "$city" "$data"
# Written back now, not by the kernel 30 s later in the middle of a
# latency run (the audit log's fsyncs queue behind gigabytes of copy).
sync

# Python with pyarrow and duckdb (the examples' venv).
venv="$cache/venv-examples"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import pyarrow, duckdb" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check pyarrow==26.0.1 duckdb==1.5.6
fi
py() { "$venv/bin/python" "$root/scripts/bench/reports.py" "$@"; }

# The demo catalogue with quotas lifted: a benchmark measures throughput, not quotas.
sed -E 's/^daily_quota = .*/daily_quota = 1000000000/; s/^per_second = .*/per_second = 10000000/' \
  data/catalogue/zibo.toml >"$out/catalogue.toml"

POPBASE_GATEWAY_CATALOGUE="$out/catalogue.toml" "$bin/popbase" --data "$data" demo --persons "$persons" \
  --household-addr 127.0.0.1:0 --residence-addr 127.0.0.1:0 --feeds-addr 127.0.0.1:0 \
  --gateway-addr 127.0.0.1:0 --ledger-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --console-addr 127.0.0.1:0 >"$out/demo.out" 2>"$out/demo.err" &
demo=$!
pgdir=/tmp/popbase-bench-pg
pgbin=""
stop_all() {
  if [ -n "$demo" ]; then
    kill "$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
    demo=""
  fi
  if [ -n "$pgbin" ] && [ -d "$pgdir/data" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true
  fi
}
trap stop_all EXIT
for _ in $(seq 1 3000); do
  grep -q '^popbase ready' "$out/demo.out" && break
  kill -0 "$demo" 2>/dev/null || { cat "$out/demo.err" >&2; exit 1; }
  sleep 0.2
done
addr() { sed -n "s/^popbase serving role=$1 addr=//p" "$out/demo.out"; }
gateway="http://$(addr gateway)"
household="http://$(addr household)"
tok() { "$bin/popbase" --data "$data" token --department "$1"; }
tokens=(--token "hrss=$(tok hrss)" --token "service_platform=$(tok service_platform)" --token "education=$(tok education)"
  --token "medical_insurance=$(tok medical_insurance)" --token "big_data=$(tok big_data)"
  --token "public_security=$(tok public_security)")
# The demo's internal ports are in its mesh: the tester's set-up read of the
# registry presents the demo's gateway certificate.
mesh=(--mesh-ca "$data/mesh/ca.pem" --mesh-cert "$data/mesh/gateway.pem" --mesh-key "$data/mesh/gateway.key")
lt() { "$bin/popbase-loadtest" run --gateway "$gateway" --household "$household" "${mesh[@]}" "${tokens[@]}" \
  --duration "$duration" "$@"; }

echo "bench: popbase"
lt --warmup "$warmup" --scenario person --concurrency 32 --out "$out/popbase-person-closed.json" >/dev/null
lt --warmup "$warmup" --scenario person --rate 2000 --concurrency 512 --out "$out/popbase-person-open.json" >/dev/null
lt --warmup "$warmup" --scenario person --rate 5000 --concurrency 512 --out "$out/popbase-person-open5k.json" >/dev/null
lt --warmup "$warmup" --scenario intake --concurrency 4 --batch 1000 --out "$out/popbase-intake.json" >/dev/null
lt --warmup "$warmup" --scenario uninsured --concurrency 4 --out "$out/popbase-uninsured.json" >/dev/null
lt --scenario export --concurrency 1 --warmup 0 --out "$out/popbase-export.json" >/dev/null
# The token is made before the clock starts.
big_data=$(tok big_data)
elapsed=$(best_of_3 "$bin/popbase" export --gateway "$gateway" --token "$big_data" --dataset persons \
  --out "$out/persons.parquet" 2>"$out/export.log")
rows=$(sed -n 's/.*exported \([0-9]*\) rows.*/\1/p' "$out/export.log" | tail -1)
py timed popbase parquet-export "$rows" "$elapsed" "$out/popbase-parquet.json" "popbase export: Flight, pseudonymised, Parquet snappy (best of 3)"
# The same rows in clear for the baselines (public security's identified export).
"$bin/popbase" export --gateway "$gateway" --token "$(tok public_security)" --dataset persons \
  --purpose REGISTRY_RECONCILIATION --out "$out/persons-identified.parquet" 2>/dev/null
# Last, since it changes the city: births and deaths at a police counter.
lt --warmup "$warmup" --scenario events --concurrency 16 --subjects 300000 --out "$out/popbase-events.json" >/dev/null
kill "$demo"; wait "$demo" 2>/dev/null || true
demo=""
rm -rf "$data"

echo "bench: postgresql"
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
pgbin="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")"
rm -rf "$pgdir" && mkdir -p "$pgdir" && chown postgres "$pgdir"
runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-p 54329 -k $pgdir -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c max_connections=600" start >/dev/null
psql=(psql -h 127.0.0.1 -p 54329 -U postgres -q -v ON_ERROR_STOP=1)
py parquet-to-csv "$out/persons-identified.parquet" "$pgdir/persons.csv"
"${psql[@]}" -c "$(py pg-schema "$out/persons-identified.parquet" persons)"
"${psql[@]}" -c "\\copy persons from '$pgdir/persons.csv' csv header"
"${psql[@]}" <<'SQL'
ALTER TABLE persons ADD PRIMARY KEY (id_number);
CREATE TABLE subjects (n serial PRIMARY KEY, id_number text NOT NULL);
INSERT INTO subjects (id_number) SELECT id_number FROM persons WHERE status = 'active' ORDER BY md5(id_number) LIMIT 5000;
CREATE TABLE consents (subject text, department text, interface text, purpose text, valid_from date, valid_until date,
  use_limit int, uses int, PRIMARY KEY (subject, department, interface, purpose));
INSERT INTO consents SELECT id_number, 'hrss', 'PersonSummary', 'EMPLOYMENT_SERVICE', current_date, current_date + 30, 0, 0 FROM subjects;
-- For births and deaths (pg_birth.sql, pg_death.sql): the registry's
-- indexes by household and committee, its households, the counties' daily
-- ID sequence, its event log; the mothers and the dying as the load tester picks them.
CREATE INDEX ON persons (household_id);
CREATE INDEX ON persons (committee_code);
CREATE TABLE households AS SELECT household_id, min(id_number) AS head_id_number, min(committee_code) AS committee_code
  FROM persons WHERE household_id IS NOT NULL GROUP BY household_id;
ALTER TABLE households ADD PRIMARY KEY (household_id);
CREATE TABLE id_counters (county text, day date, next int, PRIMARY KEY (county, day));
CREATE TABLE events (seq bigserial PRIMARY KEY, at timestamptz, kind text, id_numbers text[], household_id text, actor text);
CREATE TABLE mothers (n serial PRIMARY KEY, id_number text, household_id text);
INSERT INTO mothers (id_number, household_id) SELECT id_number, household_id FROM persons
  WHERE sex = 'female' AND status = 'active' AND household_id IS NOT NULL
  AND birth_date BETWEEN current_date - interval '40 years' AND current_date - interval '22 years';
CREATE TABLE dying (n serial PRIMARY KEY, id_number text);
INSERT INTO dying (id_number) SELECT id_number FROM persons WHERE status = 'active' ORDER BY md5(id_number);
CREATE SEQUENCE dying_next;
CREATE TABLE audit (seq bigserial PRIMARY KEY, at timestamptz, department text, interface text, purpose text,
  subject text, fields text[], decision text);
VACUUM ANALYZE;
SQL
subjects=$("${psql[@]}" -At -c "select count(*) from subjects")
pgb() { (cd "$out" && runuser -u postgres -- pgbench -h 127.0.0.1 -p 54329 -U postgres -n "$@" postgres >>"$out/pgbench.txt" 2>&1); }
chmod 777 "$out"
pgb -f "$root/scripts/bench/pg_consent_query.sql" -D subjects="$subjects" -M prepared -c 32 -j 2 -T "$warmup"
pgb -f "$root/scripts/bench/pg_consent_query.sql" -D subjects="$subjects" -M prepared -c 32 -j 2 -T "$duration" --log --log-prefix=pg-closed
py pgbench-log postgresql consent-query closed 32 - "$duration" "$out/pg-person-closed.json" "$out"/pg-closed.*
pgb -f "$root/scripts/bench/pg_consent_query.sql" -D subjects="$subjects" -M prepared -c 32 -j 2 -R 2000 -T "$duration" --log --log-prefix=pg-open
py pgbench-log postgresql consent-query open 32 2000 "$duration" "$out/pg-person-open.json" "$out"/pg-open.*
mothers=$("${psql[@]}" -At -c "select count(*) from mothers")
events=(-f "$root/scripts/bench/pg_birth.sql@1" -f "$root/scripts/bench/pg_death.sql@1" -D mothers="$mothers" -M prepared -c 16 -j 2)
pgb "${events[@]}" -T "$warmup"
pgb "${events[@]}" -T "$duration" --log --log-prefix=pg-events
py pgbench-log postgresql life-events closed 16 - "$duration" "$out/pg-life-events.json" "$out"/pg-events.*
runuser -u postgres -- pgbench -h 127.0.0.1 -p 54329 -U postgres -i -q -s 10 postgres >>"$out/pgbench.txt" 2>&1
pgb -S -M prepared -c 32 -j 2 -T "$duration" --log --log-prefix=pg-select
py pgbench-log postgresql "pgbench -S (reference)" closed 32 - "$duration" "$out/pg-select-only.json" "$out"/pg-select.*
rm -f "$out"/pg-closed.* "$out"/pg-open.* "$out"/pg-select.* "$out"/pg-events.*
elapsed=$(best_of_3 "${psql[@]}" -c "\\copy (SELECT * FROM persons) TO '/dev/null' WITH (FORMAT binary)")
py timed postgresql copy-binary "$rows" "$elapsed" "$out/pg-copy-binary.json" "psql \\copy (SELECT * FROM persons) TO /dev/null (FORMAT binary), best of 3"

echo "bench: duckdb"
py duckdb-parquet "$out/persons-identified.parquet" "$out/duckdb-parquet.json"

cmp() { "$bin/popbase-loadtest" compare "$@"; }
{
  echo "# Benchmarks $(date -u +%Y-%m-%d) — $persons persons, $(nproc) cores, ${duration}s per run"
  echo; echo "## Consent-checked person query, closed loop (target: popbase >= 3x PostgreSQL)"; echo
  cmp "$out/pg-person-closed.json" "$out/popbase-person-closed.json"
  echo; echo "## The same, open loop at 2,000/s (target: corrected p99 <= 2 ms)"; echo
  cmp "$out/pg-person-open.json" "$out/popbase-person-open.json"
  echo; echo "## The same, open loop at 5,000/s (target: corrected p99 <= 5 ms)"; echo
  cmp "$out/popbase-person-open5k.json"
  echo; echo "## Reference: pgbench -S (primary-key select, no transaction work; target: popbase >= 0.4x)"; echo
  cmp "$out/pg-select-only.json" "$out/popbase-person-closed.json"
  echo; echo "## Enrollment intake, children checked per second (target: >= 50,000/s)"; echo
  cmp "$out/popbase-intake.json"
  echo; echo "## Uninsured list per street, residents listed per second"; echo
  cmp "$out/popbase-uninsured.json"
  echo; echo "## Births and deaths at a police counter, closed loop (target: popbase >= 2x PostgreSQL)"; echo
  cmp "$out/pg-life-events.json" "$out/popbase-events.json"
  echo; echo "## Full-table export, rows per second (target: Flight >= 3x PostgreSQL binary COPY)"; echo
  cmp "$out/pg-copy-binary.json" "$out/popbase-export.json"
  echo; echo "## Parquet file, rows per second (target: popbase export >= 1.0x DuckDB)"; echo
  cmp "$out/duckdb-parquet.json" "$out/popbase-parquet.json"
} >"$out/comparison.md"
cat "$out/comparison.md"
if [ "${FULL:-0}" = 1 ]; then
  # They start their own servers and PostgreSQL (the same directory and port).
  stop_all
  BENCH_OUT="$out/lists" PERSONS="$persons" ROUNDS=3 scripts/bench/lists.sh | tee "$out/lists.md"
  BENCH_OUT="$out/feeds" PERSONS="$persons" ROUNDS=3 scripts/bench/feeds.sh | tee "$out/feeds.md"
  BENCH_OUT="$out/split" PERSONS="$persons" ROUNDS=2 FEEDS=0 scripts/bench/split.sh | tee "$out/split.md"
fi
