//! Life events of one person: birth, death, move-out, moves within the city,
//! and settlement (落户) by a policy path.

use chrono::NaiveDate;
use popbase_common::{ServiceError, ServiceResult};
use popbase_domain::IdNumber;
use popbase_proto::common::{Address, Sex};
use popbase_proto::household::{
    EventKind, Household, HouseholdKind, HouseholdStatus, Kinship, MoveInReason, MoveOutReason, Person, RegistrationStatus, RegistryEvent,
    Relationship,
};
use popbase_storage::{Batch, Read, Versioned};

use super::{EventContext, Receipt, committee, event_batch, is_active};
use crate::settlement::{self, Application, PolicySet};
use crate::tables::{self, COUNTERS, Counter, PERSONS};
use crate::writes::{self, Prior};
use crate::{Registry, kinship};

/// A birth to register (validated by the caller).
#[derive(Debug, Clone)]
pub struct Birth {
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub birthplace_code: String,
    pub ethnicity: String,
    pub mother: Option<IdNumber>,
    pub father: Option<IdNumber>,
    pub household_id: String,
}

#[derive(Debug, Clone)]
pub enum MoveTarget {
    Join { household_id: String, relationship: Relationship },
    NewHousehold(Address),
}

/// 通迁 to another county of the city, or a move within the county.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    CityTransfer,
    HouseholdMove,
}

impl Registry {
    /// 出生登记: a new ID number in the household's county, the child in a
    /// parent's household, and the parents recorded on the child.
    pub fn register_birth(&self, context: &EventContext, birth: &Birth) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        let mut parents = Vec::new();
        for (field, parent) in [("mother_id_number", &birth.mother), ("father_id_number", &birth.father)] {
            if let Some(id) = parent {
                parents.push(self.require_active_person(field, id.as_str())?.value);
            }
        }
        if parents.is_empty() {
            return Err(ServiceError::invalid(
                "mother_id_number",
                "at least one registered parent is required",
            ));
        }
        let household = self.require_household("household_id", &birth.household_id)?;
        if !parents.iter().any(|p| p.household_id == birth.household_id) {
            return Err(ServiceError::precondition(
                "household_id",
                "the child must join the household of a parent",
            ));
        }
        if parents.iter().any(|p| IdNumber::parse(&p.id_number, birth.birth_date).is_err()) {
            return Err(ServiceError::precondition("birth_date", "a parent was born after the child"));
        }
        let county = &birth.household_id[..6];
        let mut batch = event_batch(context, EventKind::Birth, read_at);
        let id = self.reserve_id_number(&mut batch, county, birth.birth_date, birth.sex == Sex::Male)?;
        let head = self.person(&household.value.head_id_number)?;
        let mother = birth.mother.as_ref().map(|m| m.as_str().to_string()).unwrap_or_default();
        let mut child = Person {
            id_number: id.as_str().to_string(),
            name: birth.name.clone(),
            sex: birth.sex as i32,
            ethnicity: if birth.ethnicity.is_empty() {
                parents.first().map(|p| p.ethnicity.clone()).unwrap_or_default()
            } else {
                birth.ethnicity.clone()
            },
            birth_date: Some(birth.birth_date.into()),
            birthplace_code: birth.birthplace_code.clone(),
            native_place_code: parents.first().map(|p| p.native_place_code.clone()).unwrap_or_default(),
            household_id: birth.household_id.clone(),
            relationship: Relationship::OtherRelative as i32,
            address: household.value.address.clone(),
            moved_in_date: Some(birth.birth_date.into()),
            moved_in_reason: MoveInReason::Birth as i32,
            status: RegistrationStatus::Active as i32,
            father_id_number: birth.father.as_ref().map(|f| f.as_str().to_string()).unwrap_or_default(),
            mother_id_number: mother,
            ..Default::default()
        };
        child.relationship = match &head {
            Some(head) if household.value.kind == HouseholdKind::Family as i32 => {
                kinship::relationship_to(self, head, &child)?.unwrap_or(Relationship::OtherRelative) as i32
            }
            _ => Relationship::CollectiveMember as i32,
        };
        writes::put_person(&mut batch, Prior::Absent, &child);
        let mut ids = vec![child.id_number.clone()];
        ids.extend(parents.iter().map(|p| p.id_number.clone()));
        let event = RegistryEvent {
            kind: EventKind::Birth as i32,
            id_numbers: ids,
            household_id: birth.household_id.clone(),
            path: MoveInReason::Birth as i32,
            to_committee_code: committee(&child.address),
            actor: context.actor.clone(),
            ..Default::default()
        };
        self.record(batch, event, context.on, vec![child], Some(household.value))
    }

    /// The next free sequence of the right parity for (county, birth date),
    /// reserved in `batch`. A counter per county, day and sex answers at one
    /// point read; only the first birth of a county-day-sex looks at the
    /// numbers already out (persons generated or imported), by a keys-only
    /// scan. The next number is checked free, since persons imported after
    /// the counter was set may hold it. Two births racing for one number
    /// conflict on the counter: the second is `Aborted` and retried.
    fn reserve_id_number(&self, batch: &mut Batch, county: &str, birth: NaiveDate, male: bool) -> ServiceResult<IdNumber> {
        let key = tables::id_counter_key(county, birth, male);
        let counter = self.store().get(&COUNTERS, &key)?;
        let mut sequence = match &counter {
            Some(c) => c.value.next,
            None => self.first_free_sequence(county, birth, male)?,
        };
        loop {
            let free = u16::try_from(sequence)
                .ok()
                .filter(|s| *s <= 999)
                .ok_or_else(|| ServiceError::precondition("birth_date", "every sequence number for that county and day is taken"))?;
            let id = IdNumber::generate(county, birth, free).map_err(|e| ServiceError::Internal(e.to_string()))?;
            if self.store().get_encoded(&PERSONS, &tables::person_key(id.as_str()))?.is_none() {
                batch.expect_version(&COUNTERS, key.clone(), counter.map(|c| c.version));
                batch.put(&COUNTERS, key, &Counter { next: sequence + 2 });
                return Ok(id);
            }
            sequence += 2;
        }
    }

    /// The lowest sequence of the right parity no person of (county, birth
    /// date) holds, read from the keys alone.
    fn first_free_sequence(&self, county: &str, birth: NaiveDate, male: bool) -> ServiceResult<u64> {
        let prefix = format!("{county}{}", birth.format("%Y%m%d"));
        let mut used = std::collections::HashSet::new();
        self.store().for_each_encoded(&PERSONS, &tables::person_prefix(&prefix), |key, _| {
            if let Some(seq) = tables::id_sequence_of_key(key) {
                used.insert(seq);
            }
            Ok(true)
        })?;
        let first = if male { 1 } else { 2 };
        Ok((first..).step_by(2).find(|s| !used.contains(s)).unwrap_or(first))
    }

    /// 死亡注销.
    pub fn register_death(&self, context: &EventContext, id: &IdNumber) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        let person = self.require_active_person("id_number", id.as_str())?;
        let mut batch = event_batch(context, EventKind::Death, read_at);
        let closed = self.leave_household(&mut batch, "id_number", &person.value, context.on, true)?;
        let mut dead = person.value.clone();
        dead.status = RegistrationStatus::Deceased as i32;
        dead.moved_out_date = Some(context.on.into());
        dead.moved_out_reason = MoveOutReason::Death as i32;
        writes::put_person(&mut batch, Prior::Read(&person), &dead);
        let event = RegistryEvent {
            kind: EventKind::Death as i32,
            id_numbers: vec![dead.id_number.clone()],
            household_id: dead.household_id.clone(),
            from_code: committee(&dead.address),
            actor: context.actor.clone(),
            ..Default::default()
        };
        self.record(batch, event, context.on, vec![dead], closed)
    }

    /// 迁出 out of the city (or abroad, or into the army).
    pub fn move_out(&self, context: &EventContext, id: &IdNumber, reason: MoveOutReason, to_code: &str) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        if reason == MoveOutReason::Death {
            return Err(ServiceError::invalid("reason", "a death is registered with RegisterDeath"));
        }
        let person = self.require_active_person("id_number", id.as_str())?;
        let city = person.value.household_id.get(..4).unwrap_or_default();
        if reason == MoveOutReason::OutOfCity && to_code.starts_with(city) {
            return Err(ServiceError::invalid("to_code", "lies inside the city: use TransferWithinCity"));
        }
        let mut batch = event_batch(context, EventKind::MoveOut, read_at);
        let closed = self.leave_household(&mut batch, "id_number", &person.value, context.on, false)?;
        let mut gone = person.value.clone();
        gone.status = RegistrationStatus::MovedOut as i32;
        gone.moved_out_date = Some(context.on.into());
        gone.moved_out_reason = reason as i32;
        gone.moved_out_to_code = to_code.to_string();
        writes::put_person(&mut batch, Prior::Read(&person), &gone);
        let event = RegistryEvent {
            kind: EventKind::MoveOut as i32,
            id_numbers: vec![gone.id_number.clone()],
            household_id: gone.household_id.clone(),
            from_code: committee(&gone.address),
            actor: context.actor.clone(),
            ..Default::default()
        };
        self.record(batch, event, context.on, vec![gone], closed)
    }

    /// 市内通迁 or a move between households of the same county.
    pub fn move_person(&self, context: &EventContext, id: &IdNumber, target: &MoveTarget, kind: MoveKind) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        let person = self.require_active_person("id_number", id.as_str())?;
        let from_county = person.value.household_id.get(..6).unwrap_or_default().to_string();
        let mut batch = event_batch(
            context,
            match kind {
                MoveKind::CityTransfer => EventKind::CityTransfer,
                MoveKind::HouseholdMove => EventKind::HouseholdMove,
            },
            read_at,
        );
        let (household, relationship, founded) = match target {
            MoveTarget::Join {
                household_id,
                relationship,
            } => {
                if *household_id == person.value.household_id {
                    return Err(ServiceError::precondition(
                        "join.household_id",
                        "the person is already in this household",
                    ));
                }
                let household = self.require_household("join.household_id", household_id)?;
                let relationship = if household.value.kind == HouseholdKind::Family as i32 {
                    if *relationship == Relationship::Head || *relationship == Relationship::CollectiveMember {
                        return Err(ServiceError::invalid(
                            "join.relationship",
                            "joining a family household needs a relationship to its head",
                        ));
                    }
                    *relationship
                } else {
                    Relationship::CollectiveMember
                };
                (household.value, relationship, false)
            }
            MoveTarget::NewHousehold(address) => {
                let county = &address.committee_code[..6];
                let household = Household {
                    household_id: self.new_household_id(&mut batch, county)?,
                    kind: HouseholdKind::Family as i32,
                    head_id_number: person.value.id_number.clone(),
                    address: Some(address.clone()),
                    established: Some(context.on.into()),
                    status: HouseholdStatus::Active as i32,
                    ..Default::default()
                };
                (household, Relationship::Head, true)
            }
        };
        let to_county = &household.household_id[..6];
        let (field, same_county) = match target {
            MoveTarget::Join { .. } => ("join.household_id", to_county == from_county),
            MoveTarget::NewHousehold(_) => ("new_household_address", to_county == from_county),
        };
        match kind {
            MoveKind::CityTransfer if same_county => {
                return Err(ServiceError::precondition(
                    field,
                    "lies in the same county: use MoveBetweenHouseholds",
                ));
            }
            MoveKind::CityTransfer if to_county[..4] != from_county[..4] => {
                return Err(ServiceError::precondition(
                    field,
                    "lies outside the city: use MoveOut, then settle there",
                ));
            }
            MoveKind::HouseholdMove if !same_county => {
                return Err(ServiceError::precondition(field, "lies in another county: use TransferWithinCity"));
            }
            _ => {}
        }
        let closed = self.leave_household(&mut batch, "id_number", &person.value, context.on, false)?;
        if founded {
            writes::put_household(&mut batch, Prior::Absent, &household);
        }
        let mut moved = person.value.clone();
        let from_committee = committee(&moved.address);
        moved.household_id = household.household_id.clone();
        moved.address = household.address.clone();
        moved.relationship = relationship as i32;
        moved.moved_in_date = Some(context.on.into());
        moved.moved_in_reason = MoveInReason::TransferWithinCity as i32;
        moved.moved_in_from_code = from_committee.clone();
        writes::put_person(&mut batch, Prior::Read(&person), &moved);
        let event = RegistryEvent {
            kind: match kind {
                MoveKind::CityTransfer => EventKind::CityTransfer,
                MoveKind::HouseholdMove => EventKind::HouseholdMove,
            } as i32,
            id_numbers: vec![moved.id_number.clone()],
            household_id: household.household_id.clone(),
            path: MoveInReason::TransferWithinCity as i32,
            from_code: from_committee,
            to_committee_code: committee(&moved.address),
            actor: context.actor.clone(),
            ..Default::default()
        };
        self.record(batch, event, context.on, vec![moved], Some(household).or(closed))
    }

    /// 迁入落户: evaluates the application, refuses unless the chosen (or
    /// recommended) rule is eligible, and registers the person where the
    /// city's order places them. The applied path and rule are recorded.
    pub fn settle(
        &self,
        context: &EventContext,
        policies: &PolicySet,
        policy_id: &str,
        application: &Application,
        rule_id: &str,
        arriving: Option<&Person>,
    ) -> ServiceResult<Receipt> {
        let read_at = self.read_sequence();
        let policy = policies.in_force(policy_id, &application.target.committee_code, application.on, "application.")?;
        let evaluation = settlement::evaluate(self, policy, application)?;
        let chosen = match rule_id {
            "" => evaluation
                .rules
                .iter()
                .find(|r| r.rule_id == evaluation.recommended_rule_id)
                .ok_or_else(|| ServiceError::precondition("application", refusal_reasons(&evaluation.rules)))?,
            id => {
                let rule = evaluation
                    .rules
                    .iter()
                    .find(|r| r.rule_id == id)
                    .ok_or_else(|| ServiceError::invalid("rule_id", format!("policy {} has no rule {id:?}", policy.id)))?;
                if !rule.eligible {
                    return Err(ServiceError::precondition("rule_id", refusal_reasons(std::slice::from_ref(rule))));
                }
                rule
            }
        };
        let placement = chosen.placement.clone().unwrap_or_default();
        let existing = self.person_versioned(application.applicant_id.as_str())?;
        let mut batch = event_batch(context, EventKind::Settlement, read_at);
        let (mut person, prior_from) = match (&existing, arriving) {
            (Some(record), _) => {
                if is_active(&record.value) {
                    self.leave_household(&mut batch, "application.applicant_id_number", &record.value, context.on, false)?;
                }
                (record.value.clone(), committee(&record.value.address))
            }
            (None, Some(arriving)) => {
                if arriving.id_number != application.applicant_id.as_str() {
                    return Err(ServiceError::invalid(
                        "person.id_number",
                        "must equal application.applicant_id_number",
                    ));
                }
                if arriving.name.trim().is_empty() {
                    return Err(ServiceError::invalid("person.name", "required for a person new to the registry"));
                }
                (arriving.clone(), application.declared.from_code.clone())
            }
            (None, None) => {
                return Err(ServiceError::invalid("person", "required: the applicant is not in the registry"));
            }
        };
        let household = if placement.household_id.is_empty() {
            let address = placement.address.clone().unwrap_or_else(|| application.target.clone());
            let household = Household {
                household_id: self.new_household_id(&mut batch, &address.committee_code[..6])?,
                kind: HouseholdKind::Family as i32,
                head_id_number: person.id_number.clone(),
                address: Some(address),
                established: Some(context.on.into()),
                status: HouseholdStatus::Active as i32,
                ..Default::default()
            };
            writes::put_household(&mut batch, Prior::Absent, &household);
            household
        } else {
            self.require_household("placement.household_id", &placement.household_id)?.value
        };
        person.household_id = household.household_id.clone();
        person.address = household.address.clone();
        person.relationship = placement.relationship;
        person.status = RegistrationStatus::Active as i32;
        person.moved_in_date = Some(context.on.into());
        person.moved_in_reason = chosen.path;
        person.moved_in_from_code = prior_from.clone();
        person.moved_out_date = None;
        person.moved_out_reason = 0;
        person.moved_out_to_code.clear();
        self.link_kin(&mut batch, application, &mut person)?;
        if person.relationship == Relationship::OtherRelative as i32
            && let Some(head) = self.person(&household.head_id_number)?
            && let Some(derived) = kinship::relationship_to(self, &head, &person)?
        {
            person.relationship = derived as i32;
        }
        let prior = match &existing {
            Some(record) => Prior::Read(record),
            None => Prior::Absent,
        };
        writes::put_person(&mut batch, prior, &person);
        let event = RegistryEvent {
            kind: EventKind::Settlement as i32,
            id_numbers: vec![person.id_number.clone()],
            household_id: household.household_id.clone(),
            path: chosen.path,
            from_code: prior_from,
            to_committee_code: committee(&person.address),
            actor: context.actor.clone(),
            policy_rule: format!("{}/{}", policy.id, chosen.rule_id),
            ..Default::default()
        };
        let mut receipt = self.record(batch, event, context.on, vec![person], Some(household))?;
        receipt.evaluation = Some(evaluation);
        Ok(receipt)
    }

    /// Records the kinship an eligible settlement rested on as registry links
    /// (spouse both ways; parent on the child), where none is recorded yet.
    fn link_kin(&self, batch: &mut popbase_storage::Batch, application: &Application, person: &mut Person) -> ServiceResult<()> {
        for (sponsor_id, kinship) in &application.relations {
            let Some(sponsor) = self.person_versioned(sponsor_id)? else {
                continue;
            };
            let sponsor_male = sponsor_id
                .get(16..17)
                .and_then(|d| d.parse::<u8>().ok())
                .is_some_and(|d| d % 2 == 1);
            let applicant_male = application.applicant_id.sex() == popbase_domain::Sex::Male;
            let mut updated: Option<Person> = None;
            match kinship {
                Kinship::Spouse if person.spouse_id_number.is_empty() && sponsor.value.spouse_id_number.is_empty() => {
                    person.spouse_id_number = sponsor_id.clone();
                    let mut s = sponsor.value.clone();
                    s.spouse_id_number = person.id_number.clone();
                    updated = Some(s);
                }
                Kinship::Parent | Kinship::AdoptiveParent => {
                    let slot = if sponsor_male {
                        &mut person.father_id_number
                    } else {
                        &mut person.mother_id_number
                    };
                    if slot.is_empty() {
                        *slot = sponsor_id.clone();
                    }
                }
                Kinship::Child => {
                    let mut s = sponsor.value.clone();
                    let slot = if applicant_male {
                        &mut s.father_id_number
                    } else {
                        &mut s.mother_id_number
                    };
                    if slot.is_empty() {
                        *slot = person.id_number.clone();
                        updated = Some(s);
                    }
                }
                _ => {}
            }
            if let Some(s) = updated {
                writes::put_person(batch, Prior::Read(&sponsor as &Versioned<Person>), &s);
            }
        }
        Ok(())
    }
}

/// "rule X: CHECK detail; …" for every failed check of the refused rules.
fn refusal_reasons(rules: &[popbase_proto::household::RuleEvaluation]) -> String {
    let reasons: Vec<String> = rules
        .iter()
        .map(|r| {
            let failed: Vec<String> = r
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{} {}", c.code, c.detail))
                .collect();
            format!("{}: {}", r.rule_id, failed.join("; "))
        })
        .collect();
    format!("settlement refused ({})", reasons.join(" | "))
}
