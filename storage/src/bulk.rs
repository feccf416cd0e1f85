//! Scans over much of a table at once (a whole city's index, every permit).
//!
//! A bulk reader reads ahead and keeps nothing in the block cache: the
//! blocks it passes are read once, and caching them would only evict what
//! the point reads of department calls keep warm (and allocate fresh cache
//! memory for every block on the way).

use prost::Message;
use rocksdb::ReadOptions;

use crate::keys::prefix_end;
use crate::read::{Versioned, decode_value};
use crate::{Index, StorageResult, Store, Table};

/// Bytes read ahead by a bulk scan.
const READAHEAD_BYTES: usize = 2 << 20;

fn bulk_options() -> ReadOptions {
    let mut options = ReadOptions::default();
    options.fill_cache(false);
    options.set_readahead_size(READAHEAD_BYTES);
    options
}

impl Store {
    /// Every key of `index` under `prefix`, as a bulk scan, until `visit`
    /// answers `false`.
    pub fn bulk_index_keys(&self, index: &Index, prefix: &[u8], mut visit: impl FnMut(&[u8]) -> StorageResult<bool>) -> StorageResult<()> {
        let end = prefix_end(prefix);
        self.inner
            .scan(index.name(), bulk_options(), prefix, end.as_deref(), &mut |k, _| visit(k))
    }

    /// The keys of `table`'s rows under `prefix` (values not decoded), as a
    /// bulk scan, until `visit` answers `false`.
    pub fn bulk_row_keys<M>(
        &self,
        table: &Table<M>,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8]) -> StorageResult<bool>,
    ) -> StorageResult<()> {
        let end = prefix_end(prefix);
        self.inner
            .scan(table.name(), bulk_options(), prefix, end.as_deref(), &mut |k, _| visit(k))
    }

    /// Every row of `table` under `prefix`, decoded, as a bulk scan, until
    /// `visit` answers `false`.
    pub fn bulk_rows<M: Message + Default>(
        &self,
        table: &Table<M>,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], Versioned<M>) -> StorageResult<bool>,
    ) -> StorageResult<()> {
        let end = prefix_end(prefix);
        self.inner.scan(table.name(), bulk_options(), prefix, end.as_deref(), &mut |k, v| {
            visit(k, decode_value(table.name(), v)?)
        })
    }

    /// RocksDB's estimate of the number of keys in a table or index (for
    /// sizing what a bulk scan fills; never exact).
    pub fn estimated_keys(&self, name: &str) -> StorageResult<u64> {
        let cf = self.cf(name)?;
        Ok(self
            .inner
            .db
            .property_int_value_cf(cf, "rocksdb.estimate-num-keys")
            .map_err(|e| self.engine(e))?
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_rows::{ROWS, SCHEMA, write};
    use crate::{Read, Store, StoreOptions};

    #[test]
    fn bulk_scans_see_what_plain_scans_see() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), SCHEMA, StoreOptions::default()).expect("open");
        for n in 1..=3 {
            write(&store, n);
        }
        let mut plain = Vec::new();
        store
            .for_each(&ROWS, &[], |k, row| {
                plain.push((k.to_vec(), row.value));
                Ok(true)
            })
            .expect("plain");
        let mut bulk = Vec::new();
        store
            .bulk_rows(&ROWS, &[], |k, row| {
                bulk.push((k.to_vec(), row.value));
                Ok(true)
            })
            .expect("bulk");
        assert_eq!(bulk, plain);
        assert_eq!(bulk.len(), 3);
        let mut keys = Vec::new();
        store
            .bulk_row_keys(&ROWS, &[], |k| {
                keys.push(k.to_vec());
                Ok(keys.len() < 2)
            })
            .expect("keys");
        assert_eq!(
            keys,
            vec![1u64.to_be_bytes().to_vec(), 2u64.to_be_bytes().to_vec()],
            "in order, stopping when told"
        );
        assert!(store.estimated_keys(ROWS.name()).is_ok());
        assert!(store.estimated_keys("no such table").is_err());
    }
}
