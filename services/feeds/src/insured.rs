//! Who is insured now: for each person, the medical-insurance records that
//! currently name them with status active.
//!
//! The person query and the uninsured list ask "is this person insured?"
//! for every answer. Reading it off `records_by_person` takes an iterator
//! and a record decode per person; this table answers it with one point
//! read (one `MultiGet` for a batch), at the price of keeping it in step
//! with `records` in the same batch on every write.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, Source};
use popbase_storage::keys::KeyBuilder;
use popbase_storage::{Batch, Read, StorageResult, Store, Table};

use crate::tables::{self, RECORDS};

/// The value of [`INSURED`]: record ids of the person's active
/// medical-insurance records (more than one is a duplicate enrollment the
/// comparison should surface, so all are kept).
#[derive(Clone, PartialEq, prost::Message)]
pub struct InsuredRecords {
    #[prost(string, repeated, tag = "1")]
    pub record_ids: Vec<String>,
}

/// id_number → [`InsuredRecords`]; a person with none has no row.
pub const INSURED: Table<InsuredRecords> = Table::new("insured");

/// Marker of a store whose [`INSURED`] table is complete (see [`backfill`]).
const BUILT: &str = "feeds.insured.v1";

/// Persons written per batch while backfilling.
const BACKFILL_BATCH: usize = 10_000;

pub fn insured_key(id_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(id_number).build()
}

/// The person a record makes insured now, if it is an active
/// medical-insurance record.
pub fn insures(record: &FeedRecord) -> Option<&str> {
    match &record.payload {
        Some(Payload::MedicalInsurance(m)) if m.status == EnrollmentStatus::Active as i32 && !m.id_number.is_empty() => Some(&m.id_number),
        _ => None,
    }
}

/// The rows one batch changes, read once from the store and then kept
/// here, so several records of one person in a chunk see each other.
#[derive(Default)]
pub struct InsuredChanges {
    rows: HashMap<String, Vec<String>>,
}

impl InsuredChanges {
    /// Records that `new` replaces `old` (`None`: a new record) as the
    /// current version. `guard` adds a version check of each row read, so a
    /// concurrent writer of the same person makes the commit fail instead
    /// of losing an update.
    pub fn replace(
        &mut self,
        store: &Store,
        batch: &mut Batch,
        old: Option<&FeedRecord>,
        new: &FeedRecord,
        guard: bool,
    ) -> StorageResult<()> {
        let before = old.and_then(insures);
        let after = insures(new);
        if before == after {
            return Ok(());
        }
        if let Some(id) = before {
            self.row(store, batch, id, guard)?.retain(|r| r != &new.record_id);
        }
        if let Some(id) = after {
            let row = self.row(store, batch, id, guard)?;
            if !row.contains(&new.record_id) {
                row.push(new.record_id.clone());
            }
        }
        Ok(())
    }

    fn row(&mut self, store: &Store, batch: &mut Batch, id: &str, guard: bool) -> StorageResult<&mut Vec<String>> {
        match self.rows.entry(id.to_string()) {
            Entry::Occupied(row) => Ok(row.into_mut()),
            Entry::Vacant(row) => {
                let key = insured_key(id);
                let stored = store.get(&INSURED, &key)?;
                if guard {
                    batch.expect_version(&INSURED, key, stored.as_ref().map(|s| s.version));
                }
                Ok(row.insert(stored.map(|s| s.value.record_ids).unwrap_or_default()))
            }
        }
    }

    /// Adds the changed rows to `batch` (an emptied row is deleted).
    pub fn write(self, batch: &mut Batch) {
        for (id, record_ids) in self.rows {
            if record_ids.is_empty() {
                batch.delete(&INSURED, insured_key(&id));
            } else {
                batch.put(&INSURED, insured_key(&id), &InsuredRecords { record_ids });
            }
        }
    }
}

/// Builds [`INSURED`] from `records` in a store that has never had it (one
/// created before the table existed), once: a marker records that it is
/// complete. Run before the store serves, so no writer races it.
pub fn backfill(store: &Store) -> StorageResult<()> {
    if store.marker(BUILT)? {
        return Ok(());
    }
    let mut rows: HashMap<String, Vec<String>> = HashMap::new();
    let prefix = tables::source_prefix(Source::MedicalInsurance as i32);
    store.for_each(&RECORDS, &prefix, |_, row| {
        if let Some(id) = insures(&row.value) {
            rows.entry(id.to_string()).or_default().push(row.value.record_id.clone());
        }
        Ok(true)
    })?;
    // Rows a crash left half-built are replaced, not merged with.
    let mut stale = Vec::new();
    store.for_each(&INSURED, &[], |key, _| {
        stale.push(key.to_vec());
        Ok(true)
    })?;
    let persons = rows.len();
    let mut batch = Batch::new("feeds", "insured_backfill");
    for key in stale {
        batch.delete(&INSURED, key);
    }
    for (id, record_ids) in rows {
        batch.put(&INSURED, insured_key(&id), &InsuredRecords { record_ids });
        if batch.len() >= BACKFILL_BATCH {
            store.commit(std::mem::replace(&mut batch, Batch::new("feeds", "insured_backfill")))?;
        }
    }
    if !batch.is_empty() {
        store.commit(batch)?;
    }
    store.set_marker(BUILT)?;
    tracing::info!(persons, "built the insured-now table from the feed records");
    Ok(())
}
