//! Domain operations over the feeds store.

use popbase_proto::feeds::{FeedRecord, Source, StudentState, feed_record::Payload};
use popbase_storage::keys::{KeyBuilder, KeyReader};
use popbase_storage::{Batch, Durability, Read, StorageResult, Store};

use crate::insured::{self, INSURED, InsuredChanges};
use crate::tables::{self, HISTORY, RECORDS, RECORDS_BY_PERSON, SCHOOLS_BY_COMMITTEE, UNMATCHED};

/// The ID numbers a record is about (both parties of a marriage, the parents
/// on a birth certificate, ...), used for the per-person index.
pub fn subjects(record: &FeedRecord) -> Vec<&str> {
    let ids: Vec<&str> = match &record.payload {
        Some(Payload::MedicalInsurance(r)) => vec![&r.id_number],
        Some(Payload::Pension(r)) => vec![&r.id_number],
        Some(Payload::Student(r)) => vec![&r.id_number],
        Some(Payload::School(_)) | None => vec![],
        Some(Payload::BirthCertificate(r)) => vec![&r.mother_id_number, &r.father_id_number, &r.child_id_number],
        Some(Payload::Marriage(r)) => vec![&r.party_a_id_number, &r.party_b_id_number],
        Some(Payload::Housing(r)) => vec![&r.id_number],
    };
    ids.into_iter().filter(|id| !id.is_empty()).collect()
}

#[derive(Clone)]
pub struct FeedStore {
    store: Store,
}

impl FeedStore {
    /// The feeds over `store`, first building the tables a store created
    /// by an older version lacks (see [`insured::backfill`]).
    pub fn open(store: Store) -> StorageResult<Self> {
        insured::backfill(&store)?;
        Ok(Self { store })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Bulk import for the initial load (no WAL; the caller flushes).
    ///
    /// A chunk may carry several versions of one record (a source's earlier
    /// state and its update): the newest becomes the record, the others go
    /// to history, exactly as `Ingest` would leave them.
    pub fn import(&self, records: &[FeedRecord]) -> StorageResult<u64> {
        let mut batch = Batch::new("import", "initial_load");
        let mut insured = InsuredChanges::default();
        let mut newest: std::collections::HashMap<Vec<u8>, i64> = std::collections::HashMap::new();
        for record in records {
            let as_of = newest
                .entry(tables::record_key(record.source, &record.record_id))
                .or_insert(i64::MIN);
            *as_of = (*as_of).max(record.as_of_unix_millis);
        }
        for record in records {
            let key = tables::record_key(record.source, &record.record_id);
            if newest.get(&key).is_some_and(|&as_of| as_of > record.as_of_unix_millis) {
                let history = tables::history_key(record.source, &record.record_id, record.as_of_unix_millis);
                batch.put(&HISTORY, history, record);
                for id in subjects(record) {
                    batch.put_index(&RECORDS_BY_PERSON, tables::by_person_key(id, record.source, &record.record_id));
                }
                continue;
            }
            if matches!(record.payload, Some(Payload::MedicalInsurance(_))) {
                let stored = self.store.get(&RECORDS, &key)?.map(|r| r.value);
                insured.replace(&self.store, &mut batch, stored.as_ref(), record, false)?;
            }
            batch.put(&RECORDS, key, record);
            for id in subjects(record) {
                batch.put_index(&RECORDS_BY_PERSON, tables::by_person_key(id, record.source, &record.record_id));
            }
            if let Some(Payload::School(school)) = &record.payload {
                for committee in &school.district_committee_codes {
                    batch.put_index(&SCHOOLS_BY_COMMITTEE, tables::school_district_key(committee, &school.school_id));
                }
            }
        }
        insured.write(&mut batch);
        self.store.commit_with(batch, Durability::NoWal)
    }

    /// Every record about a person, by source then record id.
    pub fn records_of(&self, id_number: &str) -> StorageResult<Vec<FeedRecord>> {
        let mut keys = Vec::new();
        self.store
            .for_each_index_key(&RECORDS_BY_PERSON, &tables::person_prefix(id_number), |key| {
                let mut reader = KeyReader::new(key);
                reader.str()?;
                let source = reader.u8()?;
                keys.push(tables::record_key(i32::from(source), &reader.str()?));
                Ok(true)
            })?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(r) = self.store.get(&RECORDS, &key)? {
                out.push(r.value);
            }
        }
        Ok(out)
    }

    /// Whether the person has an active medical insurance record now.
    pub fn medical_insurance_active(&self, id_number: &str) -> StorageResult<bool> {
        Ok(self.store.get(&INSURED, &insured::insured_key(id_number))?.is_some())
    }

    /// [`FeedStore::medical_insurance_active`] of each of `id_numbers`, in
    /// order, in one batched read.
    pub fn medical_insurance_active_many(&self, id_numbers: &[String]) -> StorageResult<Vec<bool>> {
        let keys: Vec<Vec<u8>> = id_numbers.iter().map(|id| insured::insured_key(id)).collect();
        let mut active = Vec::with_capacity(keys.len());
        self.store.raw_get_many(INSURED.name(), &keys, &mut |raw| {
            active.push(raw.is_some());
            Ok(())
        })?;
        Ok(active)
    }

    /// Hands the ID number of everyone with an active medical-insurance
    /// record now to `visit`, in ID order, until it answers `false`: the
    /// keys of [`INSURED`] alone.
    pub fn for_each_insured(&self, mut visit: impl FnMut(&str) -> bool) -> StorageResult<()> {
        self.store
            .bulk_row_keys(&INSURED, &[], |key| Ok(visit(&KeyReader::new(key).str_ref()?)))
    }

    /// Whether each person has a current student record saying they are
    /// enrolled (what 政策找人 asks of compulsory education today): their
    /// education records only, one prefix scan and a read each.
    pub fn enrolled_many(&self, id_numbers: &[String]) -> StorageResult<Vec<bool>> {
        let education = tables::source_byte(Source::Education as i32);
        let mut enrolled = Vec::with_capacity(id_numbers.len());
        for id in id_numbers {
            let prefix = KeyBuilder::new().str(id).u8(education).build();
            let mut record_ids = Vec::new();
            self.store.for_each_index_key(&RECORDS_BY_PERSON, &prefix, |key| {
                let mut reader = KeyReader::new(key);
                reader.str()?;
                reader.u8()?;
                record_ids.push(reader.str()?);
                Ok(true)
            })?;
            let mut found = false;
            for record_id in record_ids {
                let current = self
                    .store
                    .get(&RECORDS, &tables::record_key(Source::Education as i32, &record_id))?;
                found |= current.is_some_and(|r| {
                    matches!(&r.value.payload, Some(Payload::Student(s)) if s.state == StudentState::Enrolled as i32 && &s.id_number == id)
                });
            }
            enrolled.push(found);
        }
        Ok(enrolled)
    }

    /// About how many persons [`FeedStore::for_each_insured`] will visit.
    pub fn insured_estimate(&self) -> StorageResult<u64> {
        self.store.estimated_keys(INSURED.name())
    }

    /// A person's records as they stood at `at` (milliseconds since the
    /// epoch): for each record that ever named them, the latest version with
    /// an as-of time not after `at`, if that version still names them.
    pub fn records_of_at(&self, id_number: &str, at: i64) -> StorageResult<Vec<FeedRecord>> {
        let mut keys = Vec::new();
        self.store
            .for_each_index_key(&RECORDS_BY_PERSON, &tables::person_prefix(id_number), |key| {
                let mut reader = KeyReader::new(key);
                reader.str()?;
                let source = i32::from(reader.u8()?);
                keys.push((source, reader.str()?));
                Ok(true)
            })?;
        let mut out = Vec::new();
        for (source, record_id) in keys {
            let mut best: Option<FeedRecord> = self
                .store
                .get(&RECORDS, &tables::record_key(source, &record_id))?
                .map(|r| r.value)
                .filter(|r| r.as_of_unix_millis <= at);
            self.store.for_each(&HISTORY, &tables::record_key(source, &record_id), |_, row| {
                let version = row.value;
                if version.as_of_unix_millis <= at && best.as_ref().is_none_or(|b| b.as_of_unix_millis < version.as_of_unix_millis) {
                    best = Some(version);
                }
                Ok(true)
            })?;
            if let Some(version) = best.filter(|v| subjects(v).contains(&id_number)) {
                out.push(version);
            }
        }
        Ok(out)
    }

    /// One page of records kept as unmatched (of one source, or all when
    /// `source` is 0), strictly after index key `after`.
    pub fn unmatched(&self, source: i32, after: Option<&[u8]>, limit: usize) -> StorageResult<(Vec<FeedRecord>, Option<Vec<u8>>)> {
        let prefix = if source == 0 { Vec::new() } else { tables::source_prefix(source) };
        let keys = self.store.index_keys(&UNMATCHED, &prefix, after, limit)?;
        let mut records = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(r) = self.store.get(&RECORDS, key)? {
                records.push(r.value);
            }
        }
        let last = if keys.len() == limit { keys.last().cloned() } else { None };
        Ok((records, last))
    }

    /// Number of records from one source.
    pub fn count_source(&self, source: i32) -> StorageResult<u64> {
        self.store.count_rows(&RECORDS, &tables::source_prefix(source))
    }
}
