//! The registry's change log as changes for subscribers: every life event
//! batch records its `RegistryEvent`, which names the persons concerned
//! in a fixed order per kind (birth: child, mother, father).

use popbase_common::changes::ChangeReader;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::common::Address;
use popbase_proto::gateway::{Change, ChangeKind, ChangeSource};
use popbase_proto::household::{EventKind, RegistryEvent};
use popbase_storage::{ChangeBatch, Store};
use prost::Message;

use crate::Registry;
use crate::tables::EVENTS;

pub struct RegistryChanges {
    registry: Registry,
}

impl RegistryChanges {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// Where the `index`-th person concerned is registered after the event
    /// and in which household. The event's own codes and household are
    /// the subject's: a birth's parents, and the persons of a head change
    /// (which names no codes), are looked up in the registry instead, so a
    /// parent registered elsewhere is scoped by their own place.
    fn place_of(&self, event: &RegistryEvent, index: usize, id_number: &str) -> ServiceResult<(String, String)> {
        let own_codes = !(event.kind() == EventKind::Birth && index > 0);
        if own_codes && !event.to_committee_code.is_empty() {
            return Ok((event.to_committee_code.clone(), event.household_id.clone()));
        }
        if own_codes && !event.from_code.is_empty() {
            return Ok((event.from_code.clone(), event.household_id.clone()));
        }
        let person = self.registry.person(id_number)?;
        Ok(person
            .map(|p| (Address::committee_of(&p.address).to_string(), p.household_id))
            .unwrap_or_default())
    }
}

/// The subscription kind of a registry event, and the detail it carries.
pub fn kind_of(event: EventKind) -> Option<(ChangeKind, &'static str)> {
    Some(match event {
        EventKind::Unspecified => return None,
        EventKind::Birth => (ChangeKind::Birth, ""),
        EventKind::Death => (ChangeKind::Death, ""),
        EventKind::Settlement => (ChangeKind::Settlement, ""),
        EventKind::MoveOut => (ChangeKind::MoveOut, ""),
        EventKind::CityTransfer => (ChangeKind::CityTransfer, ""),
        EventKind::HouseholdMove => (ChangeKind::HouseholdChange, "household_move"),
        EventKind::CollectiveCreated => (ChangeKind::HouseholdChange, "collective_created"),
        EventKind::HeadChanged => (ChangeKind::HouseholdChange, "head_changed"),
        EventKind::AddressChanged => (ChangeKind::HouseholdChange, "address_changed"),
        EventKind::FamilyBookIssued => (ChangeKind::HouseholdChange, "family_book_issued"),
    })
}

/// How the `index`-th person of an event relates to it. A birth names the
/// child, then whichever parents were registered: the ID number's 17th
/// digit (odd for men, GB 11643) tells them apart.
fn relation(kind: EventKind, index: usize, id_number: &str) -> &'static str {
    let male = || {
        id_number
            .as_bytes()
            .get(16)
            .is_some_and(|d| d.is_ascii_digit() && (d - b'0') % 2 == 1)
    };
    match (kind, index) {
        (EventKind::Birth, 0) => "subject",
        (EventKind::Birth, _) if male() => "father",
        (EventKind::Birth, _) => "mother",
        (EventKind::HeadChanged, 0) => "new_head",
        (EventKind::HeadChanged, _) => "former_head",
        _ => "subject",
    }
}

impl ChangeReader for RegistryChanges {
    fn source(&self) -> ChangeSource {
        ChangeSource::Household
    }

    fn store(&self) -> &Store {
        self.registry.store()
    }

    fn wants(&self, reason: &str) -> bool {
        EventKind::from_str_name(reason).is_some_and(|k| k != EventKind::Unspecified)
    }

    fn read(&self, batch: &ChangeBatch, out: &mut Vec<Change>) -> ServiceResult<()> {
        for change in batch.changes_in(EVENTS.name()) {
            let Some(image) = &change.after else { continue };
            let event = RegistryEvent::decode(image.as_slice()).map_err(|e| ServiceError::Internal(format!("registry event: {e}")))?;
            let event_kind = event.kind();
            let Some((kind, detail)) = kind_of(event_kind) else { continue };
            for (index, id_number) in event.id_numbers.iter().enumerate().filter(|(_, id)| !id.is_empty()) {
                let (committee_code, household_id) = self.place_of(&event, index, id_number)?;
                let parent = event_kind == EventKind::Birth && index > 0;
                out.push(Change {
                    kind: kind as i32,
                    id_number: id_number.clone(),
                    relation: relation(event_kind, index, id_number).into(),
                    occurred_on: event.occurred_on,
                    committee_code,
                    from_code: if parent { String::new() } else { event.from_code.clone() },
                    household_id,
                    detail: detail.into(),
                    ..Default::default()
                });
            }
        }
        Ok(())
    }
}
