"""Baseline helpers for scripts/bench.sh: turn pgbench logs and timed
commands into reports of the load tester's JSON shape, load the generated
city into PostgreSQL, and time DuckDB writing Parquet from memory.

    reports.py pgbench-log SYSTEM SCENARIO MODE CONCURRENCY RATE SECONDS OUT LOGFILE...
    reports.py timed SYSTEM SCENARIO ROWS SECONDS OUT [NOTES]
    reports.py pg-schema PARQUET TABLE            (prints CREATE TABLE)
    reports.py parquet-to-csv PARQUET CSV
    reports.py duckdb-parquet PARQUET OUT         (writes a report)
"""

import json
import sys
import time


def percentile(sorted_us, q):
    if not sorted_us:
        return 0.0
    i = min(len(sorted_us) - 1, int(q * len(sorted_us)))
    return sorted_us[i] / 1000.0


def report(system, scenario, mode, concurrency, rate, seconds, calls, errors, items, latencies_us, notes=""):
    latencies_us = sorted(latencies_us)
    mean = sum(latencies_us) / len(latencies_us) / 1000.0 if latencies_us else 0.0
    return {
        "system": system, "scenario": scenario, "mode": mode, "concurrency": concurrency,
        "target_rate": rate, "connections": concurrency, "duration_s": seconds,
        "calls": calls, "errors": errors, "items": items,
        "calls_per_s": calls / seconds, "items_per_s": items / seconds,
        "latency": {"p50_ms": percentile(latencies_us, 0.5), "p90_ms": percentile(latencies_us, 0.9),
                    "p99_ms": percentile(latencies_us, 0.99), "p999_ms": percentile(latencies_us, 0.999),
                    "max_ms": (latencies_us[-1] / 1000.0) if latencies_us else 0.0, "mean_ms": mean},
        "error_samples": [], "notes": notes,
    }


def pgbench_log(system, scenario, mode, concurrency, rate, seconds, out, *logs):
    # pgbench --log lines: client_id transaction_no time script_no time_epoch time_us [schedule_lag]
    # `time` is the latency in µs; with --rate it counts from the scheduled start.
    latencies, errors = [], 0
    for path in logs:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                if parts[2] in ("failed", "skipped"):
                    errors += 1
                    continue
                latency = int(parts[2])
                if len(parts) >= 7:
                    latency += int(parts[6])  # schedule lag: open-loop wait before the start
                latencies.append(latency)
    seconds = float(seconds)
    r = report(system, scenario, mode, int(concurrency), float(rate) if rate != "-" else None, seconds,
               len(latencies), errors, len(latencies), latencies)
    json.dump(r, open(out, "w"), indent=2)


def timed(system, scenario, rows, seconds, out, notes=""):
    rows, seconds = int(rows), float(seconds)
    r = report(system, scenario, "closed", 1, None, seconds, 1, 0, rows, [seconds * 1e6], notes)
    json.dump(r, open(out, "w"), indent=2)


def pg_schema(parquet, table):
    import pyarrow.parquet as pq
    import pyarrow as pa
    types = []
    for field in pq.read_schema(parquet):
        t = field.type
        if pa.types.is_date32(t):
            sql = "date"
        elif pa.types.is_timestamp(t):
            sql = "timestamptz"
        elif pa.types.is_boolean(t):
            sql = "boolean"
        elif pa.types.is_integer(t):
            sql = "bigint"
        else:
            sql = "text"
        types.append(f"{field.name} {sql}")
    print(f"CREATE TABLE {table} ({', '.join(types)});")


def parquet_to_csv(parquet, csv):
    import duckdb
    duckdb.sql(f"COPY (SELECT * FROM read_parquet('{parquet}')) TO '{csv}' (HEADER, DELIMITER ',')")


def duckdb_parquet(parquet, out):
    import duckdb
    con = duckdb.connect()
    con.execute(f"CREATE TABLE p AS SELECT * FROM read_parquet('{parquet}')")
    rows = con.execute("SELECT count(*) FROM p").fetchone()[0]
    best = None
    for _ in range(3):
        started = time.perf_counter()
        con.execute("COPY p TO '/tmp/popbase-bench-duckdb.parquet' (FORMAT parquet, COMPRESSION snappy)")
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    timed("duckdb", "parquet-from-memory", rows, best, out, "best of 3, single file, snappy")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"pgbench-log": pgbench_log, "timed": timed, "pg-schema": pg_schema,
     "parquet-to-csv": parquet_to_csv, "duckdb-parquet": duckdb_parquet}[command](*args)
