//! RocksDB's own figures of a store, for alerts: a store that stalls its
//! writers or falls behind on compaction does so long before it fails.

use crate::{StorageResult, Store};

/// Engine figures of one store, read from RocksDB properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineFigures {
    /// Bytes compaction must rewrite to bring every level under its target
    /// (summed over the tables); RocksDB slows and then stops writes as it grows.
    pub pending_compaction_bytes: u64,
    pub running_compactions: u64,
    /// Memtables full and waiting to be flushed (summed over the tables).
    pub immutable_memtables: u64,
    /// 1 while RocksDB has stopped writes (a write stall).
    pub write_stopped: u64,
    /// Bytes/s writes are throttled to; 0 when they are not.
    pub delayed_write_rate: u64,
    /// Bytes in the block cache (shared by the tables).
    pub block_cache_bytes: u64,
    /// Background errors (flush or compaction failures) since the store opened.
    pub background_errors: u64,
}

impl Store {
    /// Reads the engine figures; a property RocksDB does not report counts as 0.
    pub fn engine_figures(&self) -> StorageResult<EngineFigures> {
        let db = &self.inner.db;
        let db_figure = |name: &str| db.property_int_value(name).map(|v| v.unwrap_or(0));
        let mut figures = EngineFigures {
            running_compactions: db_figure("rocksdb.num-running-compactions").map_err(|e| self.engine(e))?,
            write_stopped: db_figure("rocksdb.is-write-stopped").map_err(|e| self.engine(e))?,
            delayed_write_rate: db_figure("rocksdb.actual-delayed-write-rate").map_err(|e| self.engine(e))?,
            background_errors: db_figure("rocksdb.background-errors").map_err(|e| self.engine(e))?,
            ..EngineFigures::default()
        };
        for name in self.inner.schema.column_families() {
            let cf = self.cf(name)?;
            let figure = |property: &str| db.property_int_value_cf(cf, property).map(|v| v.unwrap_or(0));
            figures.pending_compaction_bytes += figure("rocksdb.estimate-pending-compaction-bytes").map_err(|e| self.engine(e))?;
            figures.immutable_memtables += figure("rocksdb.num-immutable-mem-table").map_err(|e| self.engine(e))?;
            figures.block_cache_bytes = figures
                .block_cache_bytes
                .max(figure("rocksdb.block-cache-usage").map_err(|e| self.engine(e))?);
        }
        Ok(figures)
    }
}

#[cfg(test)]
mod tests {
    use crate::StoreOptions;
    use crate::test_rows::{ROWS, SCHEMA, write};

    #[test]
    fn a_healthy_store_reports_no_stall_and_a_used_block_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::Store::open(dir.path(), SCHEMA, StoreOptions::default()).expect("open");
        for n in 0..100u64 {
            write(&store, n);
        }
        store.flush().expect("flush");
        use crate::Read as _;
        assert!(store.get(&ROWS, &5u64.to_be_bytes()).expect("get").is_some());
        let figures = store.engine_figures().expect("figures");
        assert_eq!(figures.write_stopped, 0);
        assert_eq!(figures.delayed_write_rate, 0);
        assert_eq!(figures.background_errors, 0);
        assert!(
            figures.block_cache_bytes > 0,
            "a read from an SST file goes through the block cache: {figures:?}"
        );
    }
}
