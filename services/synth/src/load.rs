//! Loading a generated city into the services' stores, through the services'
//! own import code, plus a digest sink for determinism checks.

use std::path::Path;

use popbase_feeds::FeedStore;
use popbase_household::Registry;
use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::feeds::FeedRecord;
use popbase_residence::Permits;
use popbase_residence::permits::ResidentRecords;
use popbase_storage::{StorageResult, Store, StoreOptions};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::CitySink;

/// The three service stores under one data directory, opened for a bulk load.
pub struct StoreSink {
    pub registry: Registry,
    pub permits: Permits,
    pub feeds: FeedStore,
    on_progress: Option<Box<dyn FnMut(u64)>>,
}

impl StoreSink {
    /// Opens `<data_dir>/household`, `/residence` and `/feeds`.
    pub fn open(data_dir: &Path, options: StoreOptions) -> StorageResult<Self> {
        Ok(Self {
            registry: Registry::new(Store::open(
                data_dir.join("household"),
                popbase_household::tables::SCHEMA,
                options.clone(),
            )?),
            permits: Permits::new(Store::open(
                data_dir.join("residence"),
                popbase_residence::tables::SCHEMA,
                options.clone(),
            )?),
            feeds: FeedStore::open(Store::open(data_dir.join("feeds"), popbase_feeds::tables::SCHEMA, options)?)?,
            on_progress: None,
        })
    }

    pub fn with_progress(mut self, f: impl FnMut(u64) + 'static) -> Self {
        self.on_progress = Some(Box::new(f));
        self
    }

    /// Makes the load durable: the imports skip the WAL.
    pub fn flush(&self) -> StorageResult<()> {
        self.registry.store().flush()?;
        self.permits.store().flush()?;
        self.feeds.store().flush()
    }

    /// Flushes, then waits until no store has compaction work left
    /// ([`Store::settle`]): the end of a load.
    pub fn settle(&self) -> StorageResult<()> {
        self.registry.store().settle()?;
        self.permits.store().settle()?;
        self.feeds.store().settle()
    }
}

impl CitySink for StoreSink {
    fn households(&mut self, chunk: Vec<HouseholdWithMembers>) -> Result<(), String> {
        self.registry.import(&chunk).map(|_| ()).map_err(|e| e.to_string())
    }

    fn residents(&mut self, chunk: Vec<ResidentRecords>) -> Result<(), String> {
        self.permits.import(&chunk).map(|_| ()).map_err(|e| e.to_string())
    }

    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String> {
        self.feeds.import(&chunk).map(|_| ()).map_err(|e| e.to_string())
    }

    fn progress(&mut self, persons: u64) {
        if let Some(f) = self.on_progress.as_mut() {
            f(persons);
        }
    }

    fn standard_addresses(&mut self, rows: Vec<popbase_proto::household::StandardAddress>) -> Result<(), String> {
        self.registry
            .import_standard_addresses(&rows)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Hashes everything generated, in order: equal digests mean equal cities.
#[derive(Default)]
pub struct DigestSink {
    hasher: Sha256,
}

impl DigestSink {
    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl CitySink for DigestSink {
    fn households(&mut self, chunk: Vec<HouseholdWithMembers>) -> Result<(), String> {
        for item in chunk {
            self.hasher.update(item.household.encode_to_vec());
            for person in item.members {
                self.hasher.update(person.encode_to_vec());
            }
        }
        Ok(())
    }

    fn residents(&mut self, chunk: Vec<ResidentRecords>) -> Result<(), String> {
        for item in chunk {
            self.hasher.update(item.registration.encode_to_vec());
            for permit in item.permits {
                self.hasher.update(permit.encode_to_vec());
            }
        }
        Ok(())
    }

    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String> {
        for record in chunk {
            self.hasher.update(record.encode_to_vec());
        }
        Ok(())
    }
}
