//! Record validation at the edge of ingest: a refusal names the field path
//! inside the record (`medical_insurance.id_number`) and the reason.

use chrono::{NaiveDate, Utc};
use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::DivisionLevel;
use popbase_proto::common::Sex;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{
    EnrollmentStatus, FeedRecord, HousingKind, MarriageEvent, MedicalScheme, PensionScheme, SchoolStage, Source, StudentState,
};

/// How far in the future an as-of time may lie (clock skew between systems).
const MAX_FUTURE_MILLIS: i64 = 24 * 3600 * 1000;

fn today() -> NaiveDate {
    popbase_domain::clock::today()
}

fn id(field: &str, value: &str) -> ServiceResult<()> {
    validate::id_number(field, value, today()).map(|_| ())
}

fn optional_id(field: &str, value: &str) -> ServiceResult<()> {
    if value.is_empty() { Ok(()) } else { id(field, value) }
}

/// The source each payload kind must come from.
pub fn expected_source(payload: &Payload) -> Source {
    match payload {
        Payload::MedicalInsurance(_) => Source::MedicalInsurance,
        Payload::Pension(_) => Source::HumanResources,
        Payload::Student(_) | Payload::School(_) => Source::Education,
        Payload::BirthCertificate(_) => Source::Health,
        Payload::Marriage(_) => Source::CivilAffairs,
        Payload::Housing(_) => Source::Housing,
    }
}

/// Checks one record; `Err` carries the field path and the reason.
pub fn record(record: &FeedRecord) -> ServiceResult<()> {
    let source = validate::enumeration::<Source>("source", record.source)?;
    validate::text("record_id", &record.record_id, 1, 64)?;
    let now = Utc::now().timestamp_millis();
    if record.as_of_unix_millis <= 0 {
        return Err(ServiceError::invalid(
            "as_of_unix_millis",
            "is required (milliseconds since the Unix epoch)",
        ));
    }
    if record.as_of_unix_millis > now + MAX_FUTURE_MILLIS {
        return Err(ServiceError::invalid("as_of_unix_millis", "lies in the future"));
    }
    let payload = record
        .payload
        .as_ref()
        .ok_or_else(|| ServiceError::invalid("payload", "is required"))?;
    let expected = expected_source(payload);
    if source != expected {
        return Err(ServiceError::invalid(
            "source",
            format!("this payload comes from {}", expected.as_str_name()),
        ));
    }
    match payload {
        Payload::MedicalInsurance(r) => {
            id("medical_insurance.id_number", &r.id_number)?;
            validate::enumeration::<MedicalScheme>("medical_insurance.scheme", r.scheme)?;
            validate::enumeration::<EnrollmentStatus>("medical_insurance.status", r.status)?;
            validate::optional_date("medical_insurance.since", r.since.as_ref())?;
        }
        Payload::Pension(r) => {
            id("pension.id_number", &r.id_number)?;
            validate::enumeration::<PensionScheme>("pension.scheme", r.scheme)?;
            validate::enumeration::<EnrollmentStatus>("pension.status", r.status)?;
            validate::optional_date("pension.since", r.since.as_ref())?;
            if r.contribution_months > 960 {
                return Err(ServiceError::invalid("pension.contribution_months", "exceeds 80 years"));
            }
        }
        Payload::Student(r) => {
            id("student.id_number", &r.id_number)?;
            validate::text("student.school_id", &r.school_id, 1, 32)?;
            if !(1..=9).contains(&r.grade) {
                return Err(ServiceError::invalid("student.grade", "must be 1..9 (compulsory education)"));
            }
            validate::enumeration::<StudentState>("student.state", r.state)?;
        }
        Payload::School(r) => {
            validate::text("school.school_id", &r.school_id, 1, 32)?;
            validate::text("school.name", &r.name, 1, 80)?;
            validate::enumeration::<SchoolStage>("school.stage", r.stage)?;
            validate::division("school.county_code", &r.county_code, DivisionLevel::County)?;
            for (i, code) in r.district_committee_codes.iter().enumerate() {
                validate::division(&format!("school.district_committee_codes[{i}]"), code, DivisionLevel::Committee)?;
            }
        }
        Payload::BirthCertificate(r) => {
            validate::text("birth_certificate.certificate_number", &r.certificate_number, 1, 32)?;
            validate::text("birth_certificate.child_name", &r.child_name, 1, 40)?;
            validate::enumeration::<Sex>("birth_certificate.child_sex", r.child_sex)?;
            validate::date("birth_certificate.birth_date", r.birth_date.as_ref(), Some(today()))?;
            id("birth_certificate.mother_id_number", &r.mother_id_number)?;
            optional_id("birth_certificate.father_id_number", &r.father_id_number)?;
            optional_id("birth_certificate.child_id_number", &r.child_id_number)?;
        }
        Payload::Marriage(r) => {
            id("marriage.party_a_id_number", &r.party_a_id_number)?;
            id("marriage.party_b_id_number", &r.party_b_id_number)?;
            if r.party_a_id_number.eq_ignore_ascii_case(&r.party_b_id_number) {
                return Err(ServiceError::invalid("marriage.party_b_id_number", "is party A"));
            }
            validate::enumeration::<MarriageEvent>("marriage.event", r.event)?;
            validate::date("marriage.date", r.date.as_ref(), Some(today()))?;
        }
        Payload::Housing(r) => {
            id("housing.id_number", &r.id_number)?;
            validate::enumeration::<HousingKind>("housing.kind", r.kind)?;
            validate::address("housing.address", r.address.as_ref())?;
            validate::optional_date("housing.since", r.since.as_ref())?;
            optional_id("housing.owner_id_number", &r.owner_id_number)?;
        }
    }
    Ok(())
}
