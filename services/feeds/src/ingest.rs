//! Ingest: idempotent, order-safe upserts keyed by (source, record id), with
//! every superseded version kept for as-of questions and records naming an
//! unknown person kept as unmatched.
//!
//! One chunk of records is one atomic batch that checks the version of every
//! current record it read, so two feeds racing on a record cannot lose an
//! update: the later commit fails with `Aborted` and the client re-sends
//! (ingest is idempotent).

use std::collections::{HashMap, HashSet};

use popbase_common::{ServiceError, ServiceResult};
use popbase_domain::mask;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{FeedRecord, IngestSummary, Outcome, RecordResult};
use popbase_storage::{Batch, StorageError};

use crate::chunk_reads::ChunkReads;

use crate::insured::InsuredChanges;
use crate::records::{FeedStore, subjects};
use crate::tables::{self, HISTORY, RECORDS, RECORDS_BY_PERSON, SCHOOLS_BY_COMMITTEE, UNMATCHED};

/// Upper-cases the check character of every ID number in the record, so the
/// person index and look-ups agree (`x` and `X` are the same number).
pub fn normalise_ids(record: &mut FeedRecord) {
    let upper = |s: &mut String| *s = s.to_ascii_uppercase();
    match &mut record.payload {
        Some(Payload::MedicalInsurance(r)) => upper(&mut r.id_number),
        Some(Payload::Pension(r)) => upper(&mut r.id_number),
        Some(Payload::Student(r)) => upper(&mut r.id_number),
        Some(Payload::BirthCertificate(r)) => {
            upper(&mut r.mother_id_number);
            upper(&mut r.father_id_number);
            upper(&mut r.child_id_number);
        }
        Some(Payload::Marriage(r)) => {
            upper(&mut r.party_a_id_number);
            upper(&mut r.party_b_id_number);
        }
        Some(Payload::Housing(r)) => {
            upper(&mut r.id_number);
            upper(&mut r.owner_id_number);
        }
        Some(Payload::School(_)) | None => {}
    }
}

/// How many not-accepted records a summary lists (the proto's bound): with
/// a few hundred bytes each, the summary stays under the 4 MiB a client
/// accepts by default, and the feeds service's memory stays bounded however
/// long the stream.
pub const MAX_LISTED_RESULTS: usize = 10_000;

/// Adds one result to the summary's counts (and list, unless plainly accepted).
pub fn tally(summary: &mut IngestSummary, result: RecordResult) {
    summary.received += 1;
    match result.outcome() {
        Outcome::Accepted => {
            summary.accepted += 1;
            return;
        }
        Outcome::Unmatched => summary.unmatched += 1,
        Outcome::Duplicate => summary.duplicates += 1,
        Outcome::Stale => summary.stale += 1,
        Outcome::Rejected | Outcome::Unspecified => summary.rejected += 1,
    }
    if summary.results.len() < MAX_LISTED_RESULTS {
        summary.results.push(result);
    } else {
        summary.results_omitted += 1;
    }
}

/// One record's result, as the summary lists it.
pub(crate) fn result(index: u64, record: &FeedRecord, outcome: Outcome, field: &str, reason: impl Into<String>) -> RecordResult {
    RecordResult {
        index,
        source: record.source,
        record_id: record.record_id.clone(),
        outcome: outcome as i32,
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl FeedStore {
    /// Stores one chunk of validated records (`(stream index, record)`),
    /// `known` holding the ID numbers the registry or the residence service
    /// know: the matching and storing stages of [`crate::ingest_stream`] in one.
    pub fn ingest_chunk(&self, actor: &str, chunk: &[(u64, FeedRecord)], known: &HashSet<String>) -> ServiceResult<Vec<RecordResult>> {
        let (mut reads, _) = self.read_chunk(chunk)?;
        reads.known = known.clone();
        Ok(self.store_chunk(actor, chunk, &reads)?.0)
    }

    /// Stores one chunk of validated records with what was read for it
    /// ([`FeedStore::read_chunk`]): the results, and the commit's sequence
    /// (none when nothing changed).
    pub fn store_chunk(
        &self,
        actor: &str,
        chunk: &[(u64, FeedRecord)],
        reads: &ChunkReads,
    ) -> ServiceResult<(Vec<RecordResult>, Option<u64>)> {
        let mut batch = Batch::new(actor, "feed_ingest");
        batch.read_at(reads.read_at);
        let stored_versions = &reads.versions;
        // Which records are unmatched as the chunk goes: an accepted record
        // deletes only those, rather than writing a tombstone per record.
        let mut unmatched = reads.unmatched.clone();
        let known = &reads.known;
        // The current version of each key as this chunk leaves it: the
        // position in the chunk of the last record stored under it.
        let mut current: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut results = Vec::with_capacity(chunk.len());
        let mut insured = InsuredChanges::default();
        for (position, (index, record)) in chunk.iter().enumerate() {
            let key = tables::record_key(record.source, &record.record_id);
            let stored: Option<&FeedRecord> = match current.get(&key) {
                Some(&earlier) => Some(&chunk[earlier].1),
                None => {
                    // Read again, not taken: a record sent twice in the
                    // chunk whose first copy was stale or a duplicate reads
                    // the stored version again, with the same expectation.
                    let read = stored_versions.get(&key).and_then(Option::as_ref);
                    batch.expect_version(&RECORDS, key.clone(), read.map(|r| r.version));
                    read.map(|r| &r.value)
                }
            };
            if let Some(old) = stored {
                if old.as_of_unix_millis > record.as_of_unix_millis {
                    let history = tables::history_key(record.source, &record.record_id, record.as_of_unix_millis);
                    batch.put(&HISTORY, history, record);
                    self.index_subjects(&mut batch, record);
                    results.push(result(
                        *index,
                        record,
                        Outcome::Stale,
                        "as_of_unix_millis",
                        "older than the stored version; kept in history",
                    ));
                    continue;
                }
                if old == record {
                    results.push(result(*index, record, Outcome::Duplicate, "", "identical to the stored version"));
                    continue;
                }
                if old.as_of_unix_millis < record.as_of_unix_millis {
                    batch.put(
                        &HISTORY,
                        tables::history_key(old.source, &old.record_id, old.as_of_unix_millis),
                        old,
                    );
                }
            }
            insured.replace(self.store(), &mut batch, stored, record, true)?;
            batch.put(&RECORDS, key.clone(), record);
            // A refresh mostly re-sends records about the same persons:
            // their index entries are there already.
            if !stored.is_some_and(|old| indexed_alike(old, record)) {
                self.index_subjects(&mut batch, record);
            }
            // Matched when it names at least one person of the city: a
            // marriage with a partner registered elsewhere is still about ours.
            let named = subjects(record);
            let unknown: Vec<&str> = if reads.matched_before.contains(index) {
                Vec::new()
            } else {
                named.iter().copied().filter(|id| !known.contains(*id)).collect()
            };
            if unknown.len() < named.len() || named.is_empty() {
                if unmatched.remove(&key) {
                    batch.delete_index(&UNMATCHED, key.clone());
                }
                results.push(result(*index, record, Outcome::Accepted, "", ""));
            } else {
                unmatched.insert(key.clone());
                batch.put_index(&UNMATCHED, key.clone());
                let masked: Vec<String> = unknown.iter().map(|id| mask::mask_id_number(id)).collect();
                results.push(result(
                    *index,
                    record,
                    Outcome::Unmatched,
                    "subject",
                    format!(
                        "no registered or residence-registered person {}; kept as unmatched",
                        masked.join(", ")
                    ),
                ));
            }
            current.insert(key, position);
        }
        insured.write(&mut batch);
        if batch.is_empty() {
            return Ok((results, None));
        }
        let seq = self.store().commit(batch).map_err(|e| match e {
            StorageError::Conflict { .. } => {
                ServiceError::Aborted("a concurrent ingest changed the same records; send the chunk again".into())
            }
            other => other.into(),
        })?;
        Ok((results, Some(seq)))
    }

    /// Adds the index entries of `record`: every person it names, and a
    /// school's catchment committees. Entries of earlier versions stay (the
    /// index answers "records that ever named this person").
    fn index_subjects(&self, batch: &mut Batch, record: &FeedRecord) {
        for id in subjects(record) {
            batch.put_index(&RECORDS_BY_PERSON, tables::by_person_key(id, record.source, &record.record_id));
        }
        if let Some(Payload::School(school)) = &record.payload {
            for committee in &school.district_committee_codes {
                batch.put_index(&SCHOOLS_BY_COMMITTEE, tables::school_district_key(committee, &school.school_id));
            }
        }
    }
}

/// Whether two versions of a record have the same index entries.
fn indexed_alike(old: &FeedRecord, new: &FeedRecord) -> bool {
    let committees = |record: &FeedRecord| match &record.payload {
        Some(Payload::School(school)) => Some(school.district_committee_codes.clone()),
        _ => None,
    };
    subjects(old) == subjects(new) && committees(old) == committees(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale(index: u64) -> RecordResult {
        RecordResult {
            index,
            outcome: Outcome::Stale as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_summary_lists_the_first_results_and_counts_the_rest() {
        let mut summary = IngestSummary::default();
        for index in 0..(MAX_LISTED_RESULTS as u64 + 25) {
            tally(&mut summary, stale(index));
        }
        tally(
            &mut summary,
            RecordResult {
                outcome: Outcome::Accepted as i32,
                ..Default::default()
            },
        );
        assert_eq!(summary.received, MAX_LISTED_RESULTS as u64 + 26);
        assert_eq!(summary.stale, MAX_LISTED_RESULTS as u64 + 25);
        assert_eq!(summary.accepted, 1);
        assert_eq!(summary.results.len(), MAX_LISTED_RESULTS);
        assert_eq!(summary.results_omitted, 25);
        assert_eq!(summary.results.last().map(|r| r.index), Some(MAX_LISTED_RESULTS as u64 - 1));
    }
}
