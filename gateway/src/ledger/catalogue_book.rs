//! The applied sharing catalogue, kept in the ledger so that every gateway
//! replica follows the same one: each applied version under its number, and
//! the newest under [`CURRENT`]. Applying is compare-and-set on the version
//! (two operators editing at once: the second is told to read again), one
//! writer at a time, fsynced.

use std::sync::Mutex;

use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::ledger::StoredCatalogue;
use popbase_storage::keys::KeyBuilder;
use popbase_storage::{Batch, Durability, Read, Store};

use crate::tables::CATALOGUES;

/// The key of the newest version.
pub const CURRENT: &[u8] = b"current";

fn version_key(version: u64) -> Vec<u8> {
    KeyBuilder::new().str("v").u64(version).build()
}

pub struct CatalogueBook {
    store: Store,
    writer: Mutex<()>,
}

impl CatalogueBook {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            writer: Mutex::new(()),
        }
    }

    /// The newest applied version, if any was applied.
    pub fn current(&self) -> ServiceResult<Option<StoredCatalogue>> {
        Ok(self.store.get(&CATALOGUES, CURRENT)?.map(|row| row.value))
    }

    /// An earlier (or the newest) version.
    pub fn version(&self, version: u64) -> ServiceResult<Option<StoredCatalogue>> {
        Ok(self.store.get(&CATALOGUES, &version_key(version))?.map(|row| row.value))
    }

    /// Stores `toml` as the version after `expected_version`, if that is
    /// still the newest (0: none applied yet). The caller validated it.
    pub fn put(&self, expected_version: u64, toml: String, applied_by: String, at_millis: i64) -> ServiceResult<StoredCatalogue> {
        let _one_writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let newest = self.current()?.map_or(0, |c| c.version);
        if newest != expected_version {
            return Err(ServiceError::Aborted(format!(
                "the catalogue is at version {newest}, not {expected_version}: read it again and reapply"
            )));
        }
        let stored = StoredCatalogue {
            version: newest + 1,
            toml,
            applied_at_unix_millis: at_millis,
            applied_by,
        };
        let mut batch = Batch::new("ledger", "catalogue");
        batch.put(&CATALOGUES, version_key(stored.version), &stored);
        batch.put(&CATALOGUES, CURRENT.to_vec(), &stored);
        self.store.commit_with(batch, Durability::Sync)?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_storage::StoreOptions;

    #[test]
    fn versions_count_up_and_a_stale_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), crate::tables::SCHEMA, StoreOptions::default()).expect("open");
        let book = CatalogueBook::new(store);
        assert_eq!(book.current().expect("read"), None);
        let first = book.put(0, "a".into(), "big_data".into(), 1).expect("first");
        assert_eq!(first.version, 1);
        let second = book.put(1, "b".into(), "big_data".into(), 2).expect("second");
        assert_eq!(second.version, 2);
        assert!(matches!(
            book.put(1, "c".into(), "big_data".into(), 3),
            Err(ServiceError::Aborted(_))
        ));
        assert_eq!(book.current().expect("read").map(|c| c.toml), Some("b".into()));
        assert_eq!(book.version(1).expect("read").map(|c| c.toml), Some("a".into()));
    }
}
