//! Life events of a household: founding a collective household, changing
//! the head, changing the address, and issuing a family household book.

use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::common::Address;
use popbase_proto::household::{EventKind, FamilyBook, Household, HouseholdKind, HouseholdStatus, RegistryEvent, Relationship};

use super::{EventContext, Receipt, committee, event_batch, is_active};
use crate::writes::{self, Prior};
use crate::{Registry, kinship};

impl Registry {
    /// 设立集体户 of a collective kind at a committee.
    pub fn create_collective(
        &self,
        context: &EventContext,
        kind: HouseholdKind,
        unit_name: &str,
        address: &Address,
    ) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        if matches!(kind, HouseholdKind::Family | HouseholdKind::Unspecified) {
            return Err(ServiceError::invalid("kind", "must be a COLLECTIVE_* kind"));
        }
        if unit_name.trim().is_empty() {
            return Err(ServiceError::invalid("unit_name", "names the unit, community or school; required"));
        }
        let mut batch = event_batch(context, EventKind::CollectiveCreated, read_at);
        let household = Household {
            household_id: self.new_household_id(&mut batch, &address.committee_code[..6])?,
            kind: kind as i32,
            address: Some(address.clone()),
            unit_name: unit_name.trim().to_string(),
            established: Some(context.on.into()),
            status: HouseholdStatus::Active as i32,
            ..Default::default()
        };
        writes::put_household(&mut batch, Prior::Absent, &household);
        let event = RegistryEvent {
            kind: EventKind::CollectiveCreated as i32,
            household_id: household.household_id.clone(),
            to_committee_code: address.committee_code.clone(),
            household_kind: kind as i32,
            actor: context.actor.clone(),
            ..Default::default()
        };
        self.record(batch, event, context.on, Vec::new(), Some(household))
    }

    /// 变更户主: the new head must be an active member; every other member's
    /// relationship is re-derived from the kinship links, or taken from
    /// `overrides`, or left as "other relative".
    pub fn change_head(
        &self,
        context: &EventContext,
        household_id: &str,
        new_head_id: &str,
        overrides: &[(String, Relationship)],
    ) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        let household = self.require_household("household_id", household_id)?;
        if household.value.kind != HouseholdKind::Family as i32 {
            return Err(ServiceError::precondition("household_id", "a collective household has no head"));
        }
        let new_head = self.require_active_person("new_head_id_number", new_head_id)?;
        if new_head.value.household_id != household_id {
            return Err(ServiceError::precondition("new_head_id_number", "is not a member of the household"));
        }
        if new_head_id == household.value.head_id_number {
            return Err(ServiceError::precondition("new_head_id_number", "is already the head"));
        }
        let members = self.members(household_id)?;
        for (id, _) in overrides {
            if !members.iter().any(|m| &m.id_number == id) {
                return Err(ServiceError::invalid(
                    "relationships.id_number",
                    "names a person outside the household",
                ));
            }
        }
        let mut batch = event_batch(context, EventKind::HeadChanged, read_at);
        let mut changed = Vec::new();
        for member in &members {
            let Some(read) = self.person_versioned(&member.id_number)? else {
                continue;
            };
            let mut updated = read.value.clone();
            updated.relationship = if member.id_number == new_head_id {
                Relationship::Head
            } else if let Some((_, r)) = overrides.iter().find(|(id, _)| *id == member.id_number) {
                *r
            } else {
                kinship::relationship_to(self, &new_head.value, member)?.unwrap_or(Relationship::OtherRelative)
            } as i32;
            writes::put_person(&mut batch, Prior::Read(&read), &updated);
            changed.push(updated);
        }
        let mut updated_household = household.value.clone();
        updated_household.head_id_number = new_head_id.to_string();
        writes::put_household(&mut batch, Prior::Read(&household), &updated_household);
        let event = RegistryEvent {
            kind: EventKind::HeadChanged as i32,
            id_numbers: vec![new_head_id.to_string(), household.value.head_id_number.clone()],
            household_id: household_id.to_string(),
            actor: context.actor.clone(),
            ..Default::default()
        };
        self.record(batch, event, context.on, changed, Some(updated_household))
    }

    /// 住址变动 of a household and all its members, within its county.
    pub fn change_address(&self, context: &EventContext, household_id: &str, address: &Address) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        let household = self.require_household("household_id", household_id)?;
        if !household_id.starts_with(&address.committee_code[..6]) {
            return Err(ServiceError::precondition(
                "address",
                "lies in another county: use TransferWithinCity",
            ));
        }
        if household.value.address.as_ref() == Some(address) {
            return Err(ServiceError::precondition("address", "is the household's address already"));
        }
        let from = committee(&household.value.address);
        let mut batch = event_batch(context, EventKind::AddressChanged, read_at);
        let mut updated_household = household.value.clone();
        updated_household.address = Some(address.clone());
        writes::put_household(&mut batch, Prior::Read(&household), &updated_household);
        let mut changed = Vec::new();
        for member in self.members(household_id)? {
            if let Some(read) = self.person_versioned(&member.id_number)? {
                let mut updated = read.value.clone();
                updated.address = Some(address.clone());
                writes::put_person(&mut batch, Prior::Read(&read), &updated);
                changed.push(updated);
            }
        }
        let event = RegistryEvent {
            kind: EventKind::AddressChanged as i32,
            id_numbers: changed.iter().map(|p| p.id_number.clone()).collect(),
            household_id: household_id.to_string(),
            from_code: from,
            to_committee_code: address.committee_code.clone(),
            actor: context.actor.clone(),
            ..Default::default()
        };
        self.record(batch, event, context.on, changed, Some(updated_household))
    }

    /// 颁发家庭居民户口簿 (Zibo item 5): members of a collective household who
    /// are family according to the registry get a family book.
    pub fn issue_family_book(&self, context: &EventContext, household_id: &str, member_ids: &[String]) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        let household = self.require_household("household_id", household_id)?;
        if household.value.kind == HouseholdKind::Family as i32 {
            return Err(ServiceError::precondition(
                "household_id",
                "is a family household; its members hold its book already",
            ));
        }
        if member_ids.len() < 2 {
            return Err(ServiceError::invalid(
                "member_id_numbers",
                "a family book needs at least two members",
            ));
        }
        let mut members = Vec::new();
        for id in member_ids {
            let person = self.require_person("member_id_numbers", id)?.value;
            if !is_active(&person) || person.household_id != household_id {
                return Err(ServiceError::precondition(
                    "member_id_numbers",
                    "every member must be active in this household",
                ));
            }
            if household.value.family_books.iter().any(|b| b.member_id_numbers.contains(id)) {
                return Err(ServiceError::precondition(
                    "member_id_numbers",
                    "a member already holds a family book",
                ));
            }
            members.push(person);
        }
        // Family: every member is linked by kinship to at least one other.
        for member in &members {
            let mut linked = false;
            for other in members.iter().filter(|o| o.id_number != member.id_number) {
                if kinship::are_family(self, member, other)? {
                    linked = true;
                    break;
                }
            }
            if !linked {
                return Err(ServiceError::precondition(
                    "member_id_numbers",
                    "the registry shows no family relation between one member and the others",
                ));
            }
        }
        let mut updated = household.value.clone();
        let book_id = format!("{household_id}-F{:02}", updated.family_books.len() + 1);
        updated.family_books.push(FamilyBook {
            book_id,
            member_id_numbers: member_ids.to_vec(),
            issued: Some(context.on.into()),
        });
        let mut batch = event_batch(context, EventKind::FamilyBookIssued, read_at);
        writes::put_household(&mut batch, Prior::Read(&household), &updated);
        let event = RegistryEvent {
            kind: EventKind::FamilyBookIssued as i32,
            id_numbers: member_ids.to_vec(),
            household_id: household_id.to_string(),
            household_kind: updated.kind,
            actor: context.actor.clone(),
            ..Default::default()
        };
        self.record(batch, event, context.on, members, Some(updated))
    }
}
