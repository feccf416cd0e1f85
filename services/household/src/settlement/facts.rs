//! What the engine knows about one application: the declared facts and
//! documents, and what the registry says (the applicant's record, each
//! sponsor and whether the claimed kinship holds, the target address, the
//! collective households nearby).

use std::collections::HashSet;

use chrono::NaiveDate;
use popbase_domain::{Divisions, IdNumber};
use popbase_proto::common::Address;
use popbase_proto::household::{
    ApplicantFacts, DocumentKind, Household, HouseholdKind, HouseholdStatus, Kinship, Person, RegistrationStatus,
};
use popbase_storage::StorageResult;

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
    pub target: Address,
    pub target_urban: bool,
    pub target_street: String,
    pub target_county: String,
    pub documents: HashSet<DocumentKind>,
    pub declared: ApplicantFacts,
    pub relations: Vec<RelationFact>,
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
            relations,
            parents_deceased_in_registry,
            employer_household,
            origin_household,
        })
    }

    pub fn has(&self, document: DocumentKind) -> bool {
        self.documents.contains(&document)
    }

    /// The applicant's active registration, if any.
    pub fn active_record(&self) -> Option<&Person> {
        self.applicant.as_ref().filter(|p| p.status == RegistrationStatus::Active as i32)
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
