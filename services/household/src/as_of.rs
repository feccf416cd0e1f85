//! The registry as it stood at the end of a past day, read from the change
//! log: every life event records each person's record before and after it
//! (value-recording batches) and the store indexes those changes by person
//! (`persons` is a history table, see `popbase_storage::history`).
//!
//! A person's record as of day D is the record written by the last event
//! effective on or before D (events take effect on their `occurred_on`,
//! which the event row in the same batch carries); with none, the record
//! the first later event found (the initial load's), or no record at all
//! when that event created it (a birth, a settlement). Events are ordered
//! by their effective day, then by the order they were recorded: a
//! back-dated event is read with the record the registry held when it was
//! recorded.

use chrono::{DateTime, NaiveDate};
use popbase_proto::household::Person;
use popbase_storage::{ChangeBatch, ChangeOp, Read, StorageResult, history_of};
use prost::Message;

use crate::Registry;
use crate::tables::{self, EVENTS, PERSONS};

/// One change to a person's record, with the day it took effect.
struct Dated {
    effective: NaiveDate,
    seq: u64,
    before: Option<Vec<u8>>,
    after: Option<Vec<u8>>,
}

/// The day a batch's event took effect: its event row's key starts with
/// the day (`yyyymmdd`); a batch without one counts from its commit day.
fn effective_day(batch: &ChangeBatch) -> NaiveDate {
    let from_event = batch
        .changes_in(EVENTS.name())
        .find_map(|c| c.key.get(..4).and_then(|d| <[u8; 4]>::try_from(d).ok()))
        .map(u32::from_be_bytes)
        .and_then(|n| NaiveDate::from_ymd_opt((n / 10_000) as i32, (n / 100) % 100, n % 100));
    from_event.unwrap_or_else(|| DateTime::from_timestamp_millis(batch.unix_millis).map_or(NaiveDate::MIN, popbase_domain::clock::city_day))
}

fn decode(image: Option<&[u8]>) -> StorageResult<Option<Person>> {
    image
        .map(|bytes| Person::decode(bytes).map_err(|e| popbase_storage::StorageError::decode(PERSONS.name(), e)))
        .transpose()
}

impl Registry {
    /// `id_numbers` (in order, `None` for a person without a record that
    /// day) as they stood at the end of `day`, all read from one snapshot.
    pub fn persons_as_of(&self, id_numbers: &[String], day: NaiveDate) -> StorageResult<Vec<Option<Person>>> {
        let snapshot = self.store().snapshot();
        let keys: Vec<Vec<u8>> = id_numbers.iter().map(|id| tables::person_key(id)).collect();
        let current = snapshot.get_many(&PERSONS, &keys)?;
        let mut out = Vec::with_capacity(keys.len());
        for (key, now) in keys.iter().zip(current) {
            let mut changes: Vec<Dated> = history_of(&snapshot, PERSONS.name(), key)?
                .iter()
                .filter_map(|batch| {
                    let change = batch.changes_in(PERSONS.name()).find(|c| &c.key == key)?;
                    Some(Dated {
                        effective: effective_day(batch),
                        seq: batch.seq,
                        before: change.before.clone(),
                        after: if change.op == ChangeOp::Delete as i32 {
                            None
                        } else {
                            change.after.clone()
                        },
                    })
                })
                .collect();
            changes.sort_by_key(|c| (c.effective, c.seq));
            let image = match changes.iter().rev().find(|c| c.effective <= day) {
                Some(last) => decode(last.after.as_deref())?,
                None => match changes.first() {
                    Some(first) => decode(first.before.as_deref())?,
                    None => now.map(|v| v.value),
                },
            };
            out.push(image);
        }
        Ok(out)
    }
}
