//! Figures of each open store: its change-log head, per-table sizes, and
//! RocksDB's engine figures (compaction debt, write stalls, block cache),
//! which an alert sees long before a store fails.

use std::fmt::Write as _;

use popbase_storage::Store;

use super::LabelValue;

pub(super) fn render(stores: &[Store], out: &mut String) {
    let mut seq = String::new();
    let mut keys = String::new();
    let mut sst = String::new();
    let mut mem = String::new();
    for store in stores {
        let Ok(stats) = store.stats() else { continue };
        let _ = writeln!(
            seq,
            "popbase_store_last_seq{{store=\"{}\"}} {}",
            LabelValue(&stats.store),
            stats.last_seq
        );
        for t in &stats.tables {
            let labels = format!("store=\"{}\",table=\"{}\"", LabelValue(&stats.store), LabelValue(&t.table));
            let _ = writeln!(keys, "popbase_store_estimated_keys{{{labels}}} {}", t.estimated_keys);
            let _ = writeln!(sst, "popbase_store_sst_bytes{{{labels}}} {}", t.sst_bytes);
            let _ = writeln!(mem, "popbase_store_memtable_bytes{{{labels}}} {}", t.memtable_bytes);
        }
    }
    for (name, help, body) in [
        (
            "popbase_store_last_seq",
            "Sequence number of the last committed batch (change log head).",
            seq,
        ),
        ("popbase_store_estimated_keys", "RocksDB's estimate of keys per table.", keys),
        ("popbase_store_sst_bytes", "Bytes of SST files per table.", sst),
        ("popbase_store_memtable_bytes", "Bytes in memtables per table.", mem),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        out.push_str(&body);
    }
    render_engine(stores, out);
    out.push_str("# HELP popbase_store_commits_total Batches committed since the store opened, by durability (sync: fsynced before the write returned).\n");
    out.push_str("# TYPE popbase_store_commits_total counter\n");
    for store in stores {
        for (durability, n) in store.commits_by_durability() {
            let _ = writeln!(
                out,
                "popbase_store_commits_total{{store=\"{}\",durability=\"{}\"}} {n}",
                LabelValue(store.name()),
                durability.name()
            );
        }
    }
    out.push_str("# HELP popbase_store_wal_syncs_total WAL fsyncs made for durable commits; fewer than the sync commits when one served several (group commit).\n");
    out.push_str("# TYPE popbase_store_wal_syncs_total counter\n");
    for store in stores {
        let _ = writeln!(
            out,
            "popbase_store_wal_syncs_total{{store=\"{}\"}} {}",
            LabelValue(store.name()),
            store.wal_syncs()
        );
    }
}

fn render_engine(stores: &[Store], out: &mut String) {
    type Figure = fn(&popbase_storage::EngineFigures) -> u64;
    let figures: Vec<(String, popbase_storage::EngineFigures)> = stores
        .iter()
        .filter_map(|s| s.engine_figures().ok().map(|f| (s.name().to_string(), f)))
        .collect();
    let series: [(&str, &str, Figure); 7] = [
        (
            "popbase_rocksdb_pending_compaction_bytes",
            "Bytes compaction must rewrite to bring every level under target; RocksDB slows, then stops, writes as it grows.",
            |f| f.pending_compaction_bytes,
        ),
        ("popbase_rocksdb_running_compactions", "Compactions running now.", |f| {
            f.running_compactions
        }),
        (
            "popbase_rocksdb_immutable_memtables",
            "Full memtables waiting to be flushed.",
            |f| f.immutable_memtables,
        ),
        (
            "popbase_rocksdb_write_stopped",
            "1 while RocksDB has stopped writes (a write stall).",
            |f| f.write_stopped,
        ),
        (
            "popbase_rocksdb_delayed_write_rate_bytes",
            "Rate writes are throttled to (bytes/s); 0 when not throttled.",
            |f| f.delayed_write_rate,
        ),
        ("popbase_rocksdb_block_cache_bytes", "Bytes held in the block cache.", |f| {
            f.block_cache_bytes
        }),
        (
            "popbase_rocksdb_background_errors",
            "Flush or compaction failures since the store opened.",
            |f| f.background_errors,
        ),
    ];
    for (name, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (store, f) in &figures {
            let _ = writeln!(out, "{name}{{store=\"{}\"}} {}", LabelValue(store), value(f));
        }
    }
}
