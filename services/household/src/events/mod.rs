//! Life events: each one reads what it changes, builds one batch with
//! version checks on every row it read, records a `RegistryEvent`, and
//! commits atomically. The change log gets who (the context's actor), why
//! (the event kind) and before/after images of every row.
//!
//! Two requests racing on one person or household: the second to commit
//! finds a version it did not read and fails with `Aborted`; one that reads
//! after the first committed sees the new state and fails its precondition
//! (e.g. "already deceased").
//!
//! * [`persons`]: birth, death, move-out, moves within the city, settlement.
//! * [`households`]: collective households, head, address, family books.

mod households;
mod persons;

pub use persons::{Birth, MoveKind, MoveTarget};

use chrono::NaiveDate;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::common::Address;
use popbase_proto::household::{
    EventKind, Household, HouseholdKind, HouseholdStatus, Person, RegistrationStatus, RegistryEvent, SettlementEvaluation,
};
use popbase_storage::{Batch, Read, StorageError, Versioned};
use prost::Message;

use crate::Registry;
use crate::tables::{self, COUNTERS, Counter, EVENTS, HOUSEHOLD_MEMBERS};
use crate::writes::{self, Prior};

/// Serials of households founded by life events start here, above the range
/// the generator and bulk imports use, so the two never collide.
pub const EVENT_HOUSEHOLD_SERIAL_START: u64 = 50_000_000;

/// Who records an event and the date it took effect.
#[derive(Debug, Clone)]
pub struct EventContext {
    pub actor: String,
    pub on: NaiveDate,
}

/// What a life event changed.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    pub event: RegistryEvent,
    pub persons: Vec<Person>,
    pub household: Option<Household>,
    pub evaluation: Option<SettlementEvaluation>,
}

fn is_active(person: &Person) -> bool {
    person.status == RegistrationStatus::Active as i32
}

impl Registry {
    /// A person who must exist, with the version the event will check.
    pub(crate) fn require_person(&self, field: &str, id: &str) -> ServiceResult<Versioned<Person>> {
        self.person_versioned(id)?
            .ok_or_else(|| ServiceError::precondition(field, "no such person in the registry"))
    }

    /// An active person (not moved out, not deceased).
    pub(crate) fn require_active_person(&self, field: &str, id: &str) -> ServiceResult<Versioned<Person>> {
        let person = self.require_person(field, id)?;
        match RegistrationStatus::try_from(person.value.status).unwrap_or_default() {
            RegistrationStatus::Active => Ok(person),
            RegistrationStatus::Deceased => Err(ServiceError::precondition(field, "the person is registered as deceased")),
            RegistrationStatus::MovedOut => Err(ServiceError::precondition(field, "the person has moved out of the registry")),
            RegistrationStatus::Unspecified => Err(ServiceError::precondition(field, "the person's registration has no status")),
        }
    }

    /// An open household.
    pub(crate) fn require_household(&self, field: &str, id: &str) -> ServiceResult<Versioned<Household>> {
        let household = self
            .household_versioned(id)?
            .ok_or_else(|| ServiceError::precondition(field, "no such household in the registry"))?;
        if household.value.status == HouseholdStatus::Closed as i32 {
            return Err(ServiceError::precondition(field, "the household is closed"));
        }
        Ok(household)
    }

    /// Active members other than `except`.
    pub(crate) fn other_members(&self, household_id: &str, except: &str) -> ServiceResult<usize> {
        let keys = self
            .store()
            .index_keys(&HOUSEHOLD_MEMBERS, &tables::members_prefix(household_id), None, usize::MAX)?;
        Ok(keys.len() - keys.contains(&tables::member_key(household_id, except)) as usize)
    }

    /// Takes `person` out of their household in `batch`: a family household
    /// left empty is closed; a head may not leave others behind unless
    /// `head_may_leave` (a death: the office changes the head afterwards).
    pub(crate) fn leave_household(
        &self,
        batch: &mut Batch,
        field: &str,
        person: &Person,
        on: NaiveDate,
        head_may_leave: bool,
    ) -> ServiceResult<Option<Household>> {
        let Some(household) = self.household_versioned(&person.household_id)? else {
            return Ok(None);
        };
        let others = self.other_members(&person.household_id, &person.id_number)?;
        let is_family = household.value.kind == HouseholdKind::Family as i32;
        if is_family && household.value.head_id_number == person.id_number && others > 0 && !head_may_leave {
            return Err(ServiceError::precondition(
                field,
                format!(
                    "the person heads household {} with {others} other member(s); change the head first",
                    person.household_id
                ),
            ));
        }
        if is_family && others == 0 {
            let mut closed = household.value.clone();
            closed.status = HouseholdStatus::Closed as i32;
            closed.closed = Some(on.into());
            writes::put_household(batch, Prior::Read(&household), &closed);
            return Ok(Some(closed));
        }
        Ok(None)
    }

    /// The store's sequence, taken as an event's first step: every version
    /// the event then reads and expects is at least this new (see
    /// [`event_batch`]).
    fn read_sequence(&self) -> u64 {
        self.store().last_seq()
    }

    /// A fresh household number in `county`, reserved in `batch`.
    pub(crate) fn new_household_id(&self, batch: &mut Batch, county: &str) -> ServiceResult<String> {
        let key = tables::counter_key(&format!("household:{county}"));
        let counter = self.store().get(&COUNTERS, &key)?;
        let mut serial = counter.as_ref().map_or(EVENT_HOUSEHOLD_SERIAL_START, |c| c.value.next);
        while self.household(&format!("{county}{serial:08}"))?.is_some() {
            serial += 1;
        }
        batch.expect_version(&COUNTERS, key.clone(), counter.as_ref().map(|c| c.version));
        batch.put(&COUNTERS, key, &Counter { next: serial + 1 });
        Ok(format!("{county}{serial:08}"))
    }

    /// Commits the event and answers what it changed.
    pub(crate) fn record(
        &self,
        batch: Batch,
        event: RegistryEvent,
        on: NaiveDate,
        persons: Vec<Person>,
        household: Option<Household>,
    ) -> ServiceResult<Receipt> {
        let event = self.commit_event(batch, event, on)?;
        Ok(Receipt {
            event,
            persons,
            household,
            evaluation: None,
        })
    }

    /// Records `event` in `batch` and commits it with the registry's durability.
    fn commit_event(&self, mut batch: Batch, mut event: RegistryEvent, on: NaiveDate) -> ServiceResult<RegistryEvent> {
        event.occurred_on = Some(on.into());
        batch.put_sequenced(&EVENTS, tables::event_prefix(on), &event);
        match self.store().commit_with(batch, self.durability()) {
            Ok(seq) => {
                event.sequence = seq;
                Ok(event)
            }
            Err(StorageError::Conflict { table, .. }) => Err(ServiceError::Aborted(format!(
                "a concurrent change to the same {} won; read again and retry",
                match table.as_str() {
                    "counters" => "sequence number",
                    other => other.trim_end_matches('s'),
                }
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

impl Registry {
    /// Settlements committed after store sequence `after`, read from the
    /// change log (at most `limit` batches scanned), and the last sequence
    /// scanned: the cursor a follower stores.
    pub fn settlements_since(&self, after: u64, limit: usize) -> ServiceResult<(Vec<RegistryEvent>, u64)> {
        let settlement = EventKind::Settlement.as_str_name();
        let (batches, last) = self.store().changes_since_where(after, limit, |reason| reason == settlement)?;
        let mut settlements = Vec::new();
        for batch in &batches {
            for change in batch.changes_in(EVENTS.name()) {
                let Some(image) = &change.after else { continue };
                let mut event = RegistryEvent::decode(image.as_slice()).map_err(|e| ServiceError::Internal(e.to_string()))?;
                event.sequence = batch.seq;
                settlements.push(event);
            }
        }
        Ok((settlements, last))
    }
}

/// A new batch for a life event, with before/after images in the change
/// log. `read_at` is the store's sequence taken before the event's first
/// read: the commit then checks the versions it expects again only if a
/// later commit wrote one of their keys (two events racing on one row),
/// instead of reading every one again under the commit lock.
fn event_batch(context: &EventContext, kind: EventKind, read_at: u64) -> Batch {
    let mut batch = Batch::new(context.actor.clone(), kind.as_str_name()).record_values();
    batch.read_at(read_at);
    batch
}

fn committee(address: &Option<Address>) -> String {
    Address::committee_of(address).to_string()
}
