//! Request validation shared by the household adapters: each function turns
//! a proto message into checked domain input or an `InvalidArgument` naming
//! the field path.

use chrono::NaiveDate;
use popbase_common::validate;
use popbase_common::{ServiceError, ServiceResult};
use popbase_domain::{DivisionLevel, IdNumber};
use popbase_proto::common::{Address, Date};
use popbase_proto::household::{
    ApplicantFacts, DocumentKind, EducationLevel, Kinship, MaritalStatus, PropertyKind, SettlementApplication, SkillLevel, TitleLevel,
};

use crate::EventContext;
use crate::settlement::Application;

pub fn today() -> NaiveDate {
    popbase_domain::clock::today()
}

/// Household numbers are a 6-digit county code and 8 digits.
pub fn household_id(field: &str, value: &str) -> ServiceResult<()> {
    if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServiceError::invalid(field, "must be 14 digits (county code and serial)"));
    }
    Ok(())
}

pub fn id_number(field: &str, value: &str) -> ServiceResult<IdNumber> {
    validate::id_number(field, value, today())
}

/// An ID number that may be left empty.
pub fn optional_id_number(field: &str, value: &str) -> ServiceResult<Option<IdNumber>> {
    if value.is_empty() {
        Ok(None)
    } else {
        id_number(field, value).map(Some)
    }
}

/// A checked address (known committee, bounded detail), cloned.
pub fn address(field: &str, value: Option<&Address>) -> ServiceResult<Address> {
    validate::address(field, value)?;
    let address = value.cloned().unwrap_or_default();
    Ok(Address {
        committee_code: address.committee_code,
        detail: address.detail.trim().to_string(),
    })
}

pub fn context(value: Option<&popbase_proto::household::EventContext>) -> ServiceResult<EventContext> {
    let context = value.ok_or_else(|| ServiceError::invalid("context", "is required (actor and date)"))?;
    let actor = validate::text("context.actor", &context.actor, 1, 128)?;
    let on = match context.occurred_on.as_ref().filter(|d| !d.is_unset()) {
        None => today(),
        Some(_) => validate::date("context.occurred_on", context.occurred_on.as_ref(), Some(today()))?,
    };
    Ok(EventContext {
        actor: actor.to_string(),
        on,
    })
}

fn optional_enum<E: TryFrom<i32> + Default>(field: &str, value: i32) -> ServiceResult<E> {
    if value == 0 {
        return Ok(E::default());
    }
    validate::enumeration(field, value)
}

fn facts(value: Option<&ApplicantFacts>) -> ServiceResult<ApplicantFacts> {
    let facts = value.cloned().unwrap_or_default();
    optional_enum::<EducationLevel>("application.facts.education", facts.education)?;
    optional_enum::<TitleLevel>("application.facts.title", facts.title)?;
    optional_enum::<SkillLevel>("application.facts.skill", facts.skill)?;
    optional_enum::<PropertyKind>("application.facts.property_kind", facts.property_kind)?;
    optional_enum::<MaritalStatus>("application.facts.marital_status", facts.marital_status)?;
    if !facts.talent_category.is_empty() && !matches!(facts.talent_category.as_str(), "A" | "B" | "C" | "D" | "E") {
        return Err(ServiceError::invalid(
            "application.facts.talent_category",
            "must be one of A, B, C, D, E or empty",
        ));
    }
    if facts.pension_insurance_months > 12 * 80 {
        return Err(ServiceError::invalid(
            "application.facts.pension_insurance_months",
            "exceeds 80 years",
        ));
    }
    validate::optional_date("application.facts.marriage_date", facts.marriage_date.as_ref())?;
    if !facts.employer_household_id.is_empty() {
        household_id("application.facts.employer_household_id", &facts.employer_household_id)?;
    }
    if !facts.from_code.is_empty() {
        let level = match facts.from_code.len() {
            6 => DivisionLevel::County,
            12 => DivisionLevel::Committee,
            _ => {
                return Err(ServiceError::invalid(
                    "application.facts.from_code",
                    "must be a 6-digit county or 12-digit committee code",
                ));
            }
        };
        validate::division("application.facts.from_code", &facts.from_code, level)?;
    }
    Ok(facts)
}

/// Most relatives an application names (spouse, parents, children: a
/// family, not a clan).
pub const MAX_RELATIONS: usize = 16;

/// Most documents an application lists (each kind at most once).
pub const MAX_DOCUMENTS: usize = 32;
/// A spouse and minor children: more than 8 is not one family.
pub const MAX_FAMILY: usize = 8;

/// A repeated field of at most `max` entries, or the refusal naming it.
fn bounded(field: &str, len: usize, max: usize) -> ServiceResult<()> {
    if len > max {
        return Err(ServiceError::invalid(field, format!("at most {max} entries")));
    }
    Ok(())
}

pub fn application(value: Option<&SettlementApplication>) -> ServiceResult<(String, Application)> {
    let application = value.ok_or_else(|| ServiceError::invalid("application", "is required"))?;
    let on = match validate::optional_date("application.on", application.on.as_ref())? {
        Some(on) => on,
        None => today(),
    };
    let applicant_id = validate::id_number("application.applicant_id_number", &application.applicant_id_number, on.max(today()))?;
    let target = address("application.target", application.target.as_ref())?;
    bounded("application.relations", application.relations.len(), MAX_RELATIONS)?;
    bounded("application.documents", application.documents.len(), MAX_DOCUMENTS)?;
    let mut relations = Vec::new();
    for (i, relation) in application.relations.iter().enumerate() {
        let sponsor = id_number(
            &format!("application.relations[{i}].sponsor_id_number"),
            &relation.sponsor_id_number,
        )?;
        if sponsor.as_str() == applicant_id.as_str() {
            return Err(ServiceError::invalid(
                format!("application.relations[{i}].sponsor_id_number"),
                "is the applicant",
            ));
        }
        let kinship: Kinship = validate::enumeration(&format!("application.relations[{i}].kinship"), relation.kinship)?;
        relations.push((sponsor.as_str().to_string(), kinship));
    }
    bounded("application.family", application.family.len(), MAX_FAMILY)?;
    let mut family: Vec<(popbase_domain::IdNumber, Kinship)> = Vec::new();
    for (i, member) in application.family.iter().enumerate() {
        let field = |name: &str| format!("application.family[{i}].{name}");
        let id = id_number(&field("id_number"), &member.id_number)?;
        if id.as_str() == applicant_id.as_str() || family.iter().any(|(m, _)| m.as_str() == id.as_str()) {
            return Err(ServiceError::invalid(field("id_number"), "is the applicant or another member"));
        }
        let kinship: Kinship = validate::enumeration(&field("kinship"), member.kinship)?;
        match kinship {
            Kinship::Spouse if family.iter().any(|(_, k)| *k == Kinship::Spouse) => {
                return Err(ServiceError::invalid(field("kinship"), "names a second spouse"));
            }
            Kinship::Spouse | Kinship::Child => {}
            _ => {
                return Err(ServiceError::invalid(
                    field("kinship"),
                    "must be SPOUSE or CHILD: the family settling together",
                ));
            }
        }
        family.push((id, kinship));
    }
    let mut documents = Vec::new();
    for (i, document) in application.documents.iter().enumerate() {
        documents.push(validate::enumeration::<DocumentKind>(
            &format!("application.documents[{i}]"),
            *document,
        )?);
    }
    Ok((
        application.policy_id.clone(),
        Application {
            on,
            applicant_id,
            target,
            relations,
            documents,
            declared: facts(application.facts.as_ref())?,
            platform: Default::default(),
            family,
        },
    ))
}

/// A date range: both required, `from` not after `to`.
pub fn period(from: Option<&Date>, to: Option<&Date>) -> ServiceResult<(NaiveDate, NaiveDate)> {
    let from = validate::date("from", from, None)?;
    let to = validate::date("to", to, None)?;
    if from > to {
        return Err(ServiceError::invalid("to", "is before from"));
    }
    Ok((from, to))
}
