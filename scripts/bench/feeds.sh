#!/usr/bin/env bash
# Feed refresh at a city's size: every department's feed records re-sent a
# day newer (match each record's persons, the old version to history, the
# upsert), through the gateway's write path as the departments send them
# (DepartmentFeeds.Submit, one submission per department, each chunk
# authorised and audited durably), side by side with PostgreSQL doing the
# same on the same rows: COPY into a staging table, then one transaction of
# set statements (the superseded versions to history, the upsert, the
# records naming no known person marked unmatched).
#
#   PERSONS=4700000 ROUNDS=3 scripts/bench/feeds.sh
#
# Round k sends the records k days newer on top of round k-1, for both: a
# daily refresh. The records are read from a file saved once
# (`popbase feed-load --save`), the way a department sends a roster it has;
# PostgreSQL's COPY reads the same records converted to CSV as it goes.
# Prints a table (records/s, peak RSS) and writes logs to $BENCH_OUT.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
name=feeds
source scripts/bench/common.sh
records="$cache/bench/feeds-$persons.bin"
if [ ! -f "$records" ]; then
  "$bin/popbase" --data "$city" feed-load --city 3703 --persons "$persons" --seed 2021 --save "$records"
fi
day=86400000

echo "feeds bench: popbase"
rm -rf "$work" && cp -r "$city" "$work"
for round in $(seq 1 "$rounds"); do
  "$bin/popbase" --data "$work" serve --role all --household-addr 127.0.0.1:0 --residence-addr 127.0.0.1:0 \
    --feeds-addr 127.0.0.1:0 --gateway-addr 127.0.0.1:0 --ledger-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
    >"$out/popbase-$round.out" 2>"$out/popbase-$round.err" &
  pid=$!
  served="$out/popbase-$round.out"
  for _ in $(seq 1 3000); do grep -q '^popbase ready' "$served" && break; sleep 0.1; done
  /usr/bin/time -f "client peak RSS %M KiB" "$bin/popbase" --data "$work" feed-load --gateway "http://$(addr gateway)" \
    --from "$records" --newer-by-ms $((round * day)) >"$out/popbase-$round.txt" 2>>"$out/popbase-$round.txt"
  grep VmHWM "/proc/$pid/status" | awk '{print "server peak RSS " $2 " KiB"}' >>"$out/popbase-$round.txt"
  stop
  du -sk "$work"/feeds | awk '{print "feeds store " $1 " KiB"}' >>"$out/popbase-$round.txt"
done

echo "feeds bench: postgresql"
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
pgbin="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")"
pgdir=/tmp/popbase-bench-pg
pg_stop() { runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true; }
trap 'stop; pg_stop' EXIT
pg_stop
rm -rf "$pgdir" && mkdir -p "$pgdir" && chown postgres "$pgdir"
runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null
# The same durability as popbase's commits (fsync at commit), memory to match.
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-p 54329 -k $pgdir -c listen_addresses=127.0.0.1 -c shared_buffers=2GB -c max_wal_size=8GB -c work_mem=256MB -c maintenance_work_mem=1GB" \
  start >/dev/null
psql=(psql -h 127.0.0.1 -p 54329 -U postgres -q -v ON_ERROR_STOP=1)
csv() { echo "\\copy $1 from program '$bin/popbase --data $work feed-load --from $records --csv /dev/stdout --newer-by-ms $2 2>/dev/null' csv"; }
"${psql[@]}" <<SQL
CREATE TABLE feed_records (source int, record_id text, subject text, as_of bigint, payload bytea, PRIMARY KEY (source, record_id));
CREATE TABLE feed_history (source int, record_id text, as_of bigint, payload bytea, PRIMARY KEY (source, record_id, as_of));
CREATE TABLE unmatched (source int, record_id text, PRIMARY KEY (source, record_id));
CREATE TABLE persons_known (id_number text PRIMARY KEY);
CREATE UNLOGGED TABLE staging (LIKE feed_records);
$(csv staging 0)
-- The city's persons: every ID number the records name (all are known in
-- the generated city, as the registry and residence stores know them).
INSERT INTO persons_known SELECT DISTINCT subject FROM staging WHERE subject <> '';
INSERT INTO feed_records SELECT DISTINCT ON (source, record_id) * FROM staging ORDER BY source, record_id, as_of DESC;
INSERT INTO feed_history SELECT s.source, s.record_id, s.as_of, s.payload FROM staging s
  JOIN feed_records r USING (source, record_id) WHERE s.as_of < r.as_of ON CONFLICT DO NOTHING;
CREATE INDEX ON feed_records (subject);
TRUNCATE staging;
VACUUM ANALYZE;
CHECKPOINT;
SQL
for round in $(seq 1 "$rounds"); do
  started=$(date +%s%N)
  "${psql[@]}" <<SQL
TRUNCATE staging;
$(csv staging $((round * day)))
BEGIN;
-- The stored versions the newer ones supersede, to history.
INSERT INTO feed_history SELECT r.source, r.record_id, r.as_of, r.payload FROM feed_records r
  JOIN staging s USING (source, record_id) WHERE s.as_of > r.as_of ON CONFLICT DO NOTHING;
-- Versions older than the stored one: kept in history only.
INSERT INTO feed_history SELECT s.source, s.record_id, s.as_of, s.payload FROM staging s
  JOIN feed_records r USING (source, record_id) WHERE s.as_of < r.as_of ON CONFLICT DO NOTHING;
-- The upsert: the newest version of each record, where newer and changed.
INSERT INTO feed_records SELECT DISTINCT ON (source, record_id) * FROM staging ORDER BY source, record_id, as_of DESC
  ON CONFLICT (source, record_id) DO UPDATE SET subject = excluded.subject, as_of = excluded.as_of, payload = excluded.payload
  WHERE feed_records.as_of < excluded.as_of AND feed_records.payload <> excluded.payload;
-- Matching: records naming no known person.
INSERT INTO unmatched SELECT s.source, s.record_id FROM staging s
  WHERE s.subject <> '' AND NOT EXISTS (SELECT 1 FROM persons_known p WHERE p.id_number = s.subject) ON CONFLICT DO NOTHING;
COMMIT;
SQL
  took=$(awk "BEGIN { print ($(date +%s%N) - $started) / 1e9 }")
  rows=$("${psql[@]}" -At -c "select count(*) from staging")
  awk -v r="$rows" -v t="$took" 'BEGIN { printf "postgresql: %d records in %.1f s (%.0f records/s)\n", r, t, r / t }' >"$out/postgresql-$round.txt"
  "${psql[@]}" -At -c "select 'database ' || pg_database_size('postgres') / 1024 || ' KiB'" >>"$out/postgresql-$round.txt"
done
pg_stop

echo "| round | popbase records/s | PostgreSQL records/s | ratio | popbase server peak RSS | client peak RSS |"
echo "|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  python3 - "$out/popbase-$round.txt" "$out/postgresql-$round.txt" "$round" <<'PY'
import re, sys
ours, theirs = open(sys.argv[1]).read(), open(sys.argv[2]).read()
rate = lambda text: float(re.search(r"\(([0-9]+) records/s\)", text).group(1))
rss = lambda text, who: int(re.search(who + r" peak RSS ([0-9]+) KiB", text).group(1)) / 1024
print(f"| {sys.argv[3]} | {rate(ours):,.0f} | {rate(theirs):,.0f} | {rate(ours) / rate(theirs):.2f}x | {rss(ours, 'server'):,.0f} MiB | {rss(ours, 'client'):,.0f} MiB |")
PY
done
