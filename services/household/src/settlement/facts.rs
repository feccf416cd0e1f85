//! What the engine knows about one application: the declared facts and
//! documents, and what the registry says (the applicant's record, each
//! sponsor and whether the claimed kinship holds, the target address, the
//! collective households nearby).

use std::collections::HashSet;

use chrono::NaiveDate;
use popbase_domain::{Divisions, IdNumber};
use popbase_proto::common::Address;
use popbase_proto::household::{
    ApplicantFacts, DocumentKind, FactOrigin, Household, HouseholdKind, HouseholdStatus, Kinship, Person, PropertyKind, RegistrationStatus,
};
use popbase_storage::StorageResult;

use super::family::{self, MemberFact};
use super::platform::{Home, PlatformFacts};
use crate::Registry;
use crate::kinship::{self, Finding};

/// One claimed relation and what the registry makes of it.
#[derive(Debug, Clone)]
pub struct RelationFact {
    pub kinship: Kinship,
    pub sponsor_id: String,
    /// The sponsor's record, if registered here (any status).
    pub sponsor: Option<Person>,
    /// The sponsor's household, if the sponsor is active in one.
    pub sponsor_household: Option<Household>,
    pub finding: Finding,
}

#[derive(Debug, Clone)]
pub struct Facts {
    pub on: NaiveDate,
    pub applicant_id: IdNumber,
    /// The applicant's registry record, whatever its status.
    pub applicant: Option<Person>,
    /// The kind of household the applicant is active in, if any.
    pub applicant_household: Option<HouseholdKind>,
    pub target: Address,
    pub target_urban: bool,
    pub target_street: String,
    pub target_county: String,
    pub documents: HashSet<DocumentKind>,
    pub declared: ApplicantFacts,
    /// What the platform's records say; each `None` falls back to `declared`.
    pub platform: PlatformFacts,
    pub relations: Vec<RelationFact>,
    /// The spouse and minor children settling with the applicant.
    pub family: Vec<MemberFact>,
    /// Some active household is registered at exactly the target address.
    pub address_registered: bool,
    /// Both parents' records show them deceased.
    pub parents_deceased_in_registry: bool,
    pub employer_household: Option<Household>,
    pub talent_collective: Option<String>,
    pub community_collective: Option<String>,
    pub rural_collective: Option<String>,
    /// The household the applicant left, if it is active and in the target county.
    pub origin_household: Option<Household>,
}

/// A validated application (the gRPC adapter checks formats first).
#[derive(Debug, Clone)]
pub struct Application {
    pub on: NaiveDate,
    pub applicant_id: IdNumber,
    pub target: Address,
    pub relations: Vec<(String, Kinship)>,
    pub documents: Vec<DocumentKind>,
    pub declared: ApplicantFacts,
    /// Gathered from the feeds and residence roles by the gRPC adapter
    /// (all `None` where the registry runs without them, e.g. in tests).
    pub platform: PlatformFacts,
    /// Spouse and minor children settling together: (member, what they are to the applicant).
    pub family: Vec<(IdNumber, Kinship)>,
}

impl Facts {
    pub fn gather(registry: &Registry, application: &Application) -> StorageResult<Facts> {
        let divisions = Divisions::embedded();
        let committee = application.target.committee_code.as_str();
        let target_street = committee.get(..9).unwrap_or_default().to_string();
        let target_county = committee.get(..6).unwrap_or_default().to_string();
        let target_urban = divisions
            .get(committee)
            .and_then(|d| d.committee_kind())
            .is_some_and(|k| k.is_urban());
        let applicant = registry.person(application.applicant_id.as_str())?;
        let applicant_household = match &applicant {
            Some(a) => active_household(registry, a)?.and_then(|h| HouseholdKind::try_from(h.kind).ok()),
            None => None,
        };
        let mut relations = Vec::new();
        for (sponsor_id, kinship) in &application.relations {
            let sponsor = registry.person(sponsor_id)?;
            let (finding, sponsor_household) = match &sponsor {
                Some(s) => (
                    kinship::verify(registry, &application.applicant_id, applicant.as_ref(), s, *kinship)?,
                    active_household(registry, s)?,
                ),
                None => (Finding::Contradicted("the sponsor is not in the registry".into()), None),
            };
            relations.push(RelationFact {
                kinship: *kinship,
                sponsor_id: sponsor_id.clone(),
                sponsor,
                sponsor_household,
                finding,
            });
        }
        let mut family = Vec::new();
        for (id, kinship) in &application.family {
            let record = registry.person(id.as_str())?;
            let as_person = record.clone().unwrap_or_else(|| Person {
                id_number: id.as_str().to_string(),
                ..Default::default()
            });
            // "The member is the applicant's spouse / child", as a sponsor would be.
            let finding = kinship::verify(registry, &application.applicant_id, applicant.as_ref(), &as_person, *kinship)?;
            let in_school_collective = match &record {
                Some(r) => family::is_school_collective(active_household(registry, r)?.and_then(|h| HouseholdKind::try_from(h.kind).ok())),
                None => false,
            };
            family.push(MemberFact {
                id: *id,
                kinship: *kinship,
                record,
                finding,
                in_school_collective,
            });
        }
        let parents_deceased_in_registry = match &applicant {
            Some(a) if !a.father_id_number.is_empty() && !a.mother_id_number.is_empty() => {
                let dead = |id: &str| -> StorageResult<bool> {
                    Ok(registry
                        .person(id)?
                        .is_some_and(|p| p.status == RegistrationStatus::Deceased as i32))
                };
                dead(&a.father_id_number)? && dead(&a.mother_id_number)?
            }
            _ => false,
        };
        let employer_household = match application.declared.employer_household_id.as_str() {
            "" => None,
            id => registry
                .household(id)?
                .filter(|h| h.kind == HouseholdKind::CollectiveUnit as i32 && h.status != HouseholdStatus::Closed as i32),
        };
        let collective_near = |kind: HouseholdKind| -> StorageResult<Option<String>> {
            for scope in [&target_street, &target_county] {
                if scope.is_empty() {
                    continue;
                }
                if let Some((_, _, id)) = registry.collectives_under(scope)?.into_iter().find(|(_, k, _)| *k == kind) {
                    return Ok(Some(id));
                }
            }
            Ok(None)
        };
        let origin_household = match &applicant {
            Some(a) if a.status == RegistrationStatus::MovedOut as i32 => registry
                .household(&a.household_id)?
                .filter(|h| h.status != HouseholdStatus::Closed as i32)
                .filter(|h| Address::committee_of(&h.address).starts_with(target_county.as_str())),
            _ => None,
        };
        Ok(Facts {
            on: application.on,
            applicant_id: application.applicant_id,
            address_registered: !registry.households_at(committee, &application.target.detail)?.is_empty(),
            talent_collective: collective_near(HouseholdKind::CollectiveTalent)?,
            community_collective: collective_near(HouseholdKind::CollectiveCommunity)?,
            rural_collective: collective_near(HouseholdKind::CollectiveRural)?,
            applicant,
            target: application.target.clone(),
            target_urban,
            target_street,
            target_county,
            documents: application.documents.iter().copied().collect(),
            declared: application.declared.clone(),
            platform: application.platform.clone(),
            applicant_household,
            relations,
            family,
            parents_deceased_in_registry,
            employer_household,
            origin_household,
        })
    }

    /// Months of employee pension insurance, and where the figure comes from.
    pub fn pension_months(&self) -> (u32, FactOrigin) {
        match self.platform.pension_months {
            Some(months) => (months, FactOrigin::Platform),
            None => (self.declared.pension_insurance_months, FactOrigin::Declared),
        }
    }

    pub fn employed(&self) -> (bool, FactOrigin) {
        known_or_declared(self.platform.employed, self.declared.employed_in_city)
    }

    pub fn holds_permit(&self) -> (bool, FactOrigin) {
        known_or_declared(self.platform.permit, self.declared.holds_residence_permit)
    }

    /// The property owned at the target (UNSPECIFIED: none).
    pub fn property_at_target(&self) -> (PropertyKind, FactOrigin) {
        match self.platform.home {
            Some(Home::Owned(kind)) => (kind, FactOrigin::Platform),
            Some(_) => (PropertyKind::Unspecified, FactOrigin::Platform),
            None => (self.declared.property_kind(), FactOrigin::Declared),
        }
    }

    pub fn renting_at_target(&self) -> (bool, FactOrigin) {
        known_or_declared(
            self.platform.home.map(|h| matches!(h, Home::Rented { .. })),
            self.declared.renting_at_target,
        )
    }

    pub fn homestead_rights(&self) -> (bool, FactOrigin) {
        known_or_declared(self.platform.home.map(|h| h == Home::Homestead), self.declared.homestead_rights)
    }

    /// Holds no rural homestead anywhere (the declaration: no homestead rights declared).
    pub fn no_homestead_anywhere(&self) -> (bool, FactOrigin) {
        known_or_declared(self.platform.homestead_anywhere.map(|held| !held), !self.declared.homestead_rights)
    }

    /// The sponsor holds a homestead in the target village: the housing
    /// feed, else a homestead certificate presented (declared).
    pub fn sponsor_homestead(&self, sponsor_id: &str) -> (bool, FactOrigin) {
        let known = self
            .platform
            .sponsor_homestead
            .iter()
            .find(|(id, _)| id == sponsor_id)
            .and_then(|(_, held)| *held);
        known_or_declared(known, self.has(DocumentKind::HomesteadCertificate))
    }

    /// Lives at the target: the residence registration, else the declaration.
    pub fn lives_at_target(&self) -> (bool, FactOrigin) {
        known_or_declared(self.platform.lives_at_target, self.declared.lives_at_target)
    }

    pub fn has(&self, document: DocumentKind) -> bool {
        self.documents.contains(&document)
    }

    /// The applicant's active registration, if any.
    pub fn active_record(&self) -> Option<&Person> {
        self.applicant.as_ref().filter(|p| p.status == RegistrationStatus::Active as i32)
    }
}

fn known_or_declared(known: Option<bool>, declared: bool) -> (bool, FactOrigin) {
    match known {
        Some(value) => (value, FactOrigin::Platform),
        None => (declared, FactOrigin::Declared),
    }
}

fn active_household(registry: &Registry, person: &Person) -> StorageResult<Option<Household>> {
    if person.status != RegistrationStatus::Active as i32 {
        return Ok(None);
    }
    Ok(registry
        .household(&person.household_id)?
        .filter(|h| h.status != HouseholdStatus::Closed as i32))
}
