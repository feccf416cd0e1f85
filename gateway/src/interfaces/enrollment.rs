//! 入学信息核验: where the child and each named guardian stand, whether
//! that lies in the school district, whether the registry shows each
//! guardian as a parent or statutory guardian, and the basis it gives.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::mask::mask_id_number;
use popbase_proto::gateway::{EnrollmentBasis, EnrollmentCheckRequest, EnrollmentCheckResponse, GuardianRelation, PlaceCheck, PlaceKind};
use popbase_proto::household::PersonView;

use super::standing::{Standing, standings};
use crate::gate::Minimise;
use crate::sources::{Sources, division_path};

/// At most this many guardians per application.
const MAX_GUARDIANS: usize = 2;

/// A checked request.
pub struct Enrollment {
    pub request_id: String,
    pub child: String,
    pub guardians: Vec<String>,
    pub district: Vec<String>,
}

impl Enrollment {
    /// Everyone the answer is about (consent and audit subjects).
    pub fn subjects(&self) -> Vec<String> {
        std::iter::once(self.child.clone()).chain(self.guardians.iter().cloned()).collect()
    }
}

/// Longest caller reference echoed back.
const MAX_REQUEST_ID_CHARS: usize = 64;
/// A school district is a few streets or committees; a whole city's
/// committees (thousands) would make every check a scan.
pub const MAX_DISTRICT_CODES: usize = 256;

pub fn validate(request: &EnrollmentCheckRequest, today: NaiveDate) -> ServiceResult<Enrollment> {
    validate::text("request_id", &request.request_id, 0, MAX_REQUEST_ID_CHARS)?;
    let child = validate::id_number("child_id_number", &request.child_id_number, today)?;
    if request.guardian_id_numbers.is_empty() || request.guardian_id_numbers.len() > MAX_GUARDIANS {
        return Err(ServiceError::invalid("guardian_id_numbers", "name one or two guardians"));
    }
    let mut guardians = Vec::with_capacity(request.guardian_id_numbers.len());
    for (i, id) in request.guardian_id_numbers.iter().enumerate() {
        let id = validate::id_number("guardian_id_numbers", id, today).map_err(|e| e.at_entry(i))?;
        if id.as_str() == child.as_str() {
            return Err(ServiceError::invalid(format!("guardian_id_numbers[{i}]"), "is the child"));
        }
        guardians.push(id.as_str().to_string());
    }
    if request.district_codes.is_empty() || request.district_codes.len() > MAX_DISTRICT_CODES {
        return Err(ServiceError::invalid(
            "district_codes",
            format!("name the school district's committees or streets, 1 to {MAX_DISTRICT_CODES} codes"),
        ));
    }
    let mut district = Vec::with_capacity(request.district_codes.len());
    for (i, code) in request.district_codes.iter().enumerate() {
        if code.len() != 9 && code.len() != 12 {
            return Err(ServiceError::invalid(
                format!("district_codes[{i}]"),
                "must be a 9-digit street or 12-digit committee code",
            ));
        }
        validate::division_prefix("district_codes", code).map_err(|e| e.at_entry(i))?;
        district.push(code.clone());
    }
    Ok(Enrollment {
        request_id: request.request_id.clone(),
        child: child.as_str().to_string(),
        guardians,
        district,
    })
}

fn place_check(id: &str, standing: &Standing, district: &[String]) -> PlaceCheck {
    let mut check = PlaceCheck {
        masked_id_number: mask_id_number(id),
        kind: match standing {
            Standing::Registered(_) => PlaceKind::Registered,
            Standing::Permit(..) => PlaceKind::ResidencePermit,
            Standing::ResidenceOnly(_) => PlaceKind::ResidenceRegistered,
            Standing::Former(_) | Standing::Unknown => PlaceKind::Unknown,
        } as i32,
        ..Default::default()
    };
    if let Some(committee) = standing.committee() {
        check.place = Some(division_path(committee));
        check.in_district = district.iter().any(|code| committee.starts_with(code.as_str()));
    }
    if let Some(registration) = standing.registration() {
        check.residence_registered_on = registration.registered_on;
    }
    if let Standing::Permit(_, permit) = standing {
        check.permit_issued_on = permit.issued_on;
        check.permit_valid_until = permit.valid_until;
    }
    check
}

/// The registry's word on how `guardian` relates to the child.
fn relation(child: &Standing, guardian: &str) -> GuardianRelation {
    match child.person() {
        Some(p) if p.father_id_number == guardian => GuardianRelation::Father,
        Some(p) if p.mother_id_number == guardian => GuardianRelation::Mother,
        Some(p) if p.guardian_id_number == guardian => GuardianRelation::StatutoryGuardian,
        _ => GuardianRelation::NotShown,
    }
}

pub async fn check(sources: &Sources, input: &Enrollment, today: NaiveDate) -> ServiceResult<EnrollmentCheckResponse> {
    let found = standings(sources, &input.subjects(), today, PersonView::Standing).await?;
    assess(input, &found)
}

/// The answer for `input` given the standings of its subjects (child first,
/// then each guardian, as [`Enrollment::subjects`] lists them): an intake
/// fetches the standings of many applications in one call and assesses each.
pub fn assess(input: &Enrollment, found: &[Standing]) -> ServiceResult<EnrollmentCheckResponse> {
    let (child_standing, guardian_standings) = found
        .split_first()
        .ok_or_else(|| ServiceError::Internal("no standing for the child".into()))?;
    let child = place_check(&input.child, child_standing, &input.district);
    let mut guardians = Vec::new();
    for (id, standing) in input.guardians.iter().zip(guardian_standings) {
        let mut check = place_check(id, standing, &input.district);
        check.relation = relation(child_standing, id) as i32;
        guardians.push(check);
    }
    let related = |g: &&PlaceCheck| g.relation != GuardianRelation::NotShown as i32;
    let (basis, text) = if child.kind == PlaceKind::Unknown as i32 {
        (EnrollmentBasis::ChildUnknown, "儿童既无本市户籍也无居住登记")
    } else if child.kind == PlaceKind::Registered as i32 && !guardians.iter().any(|g| related(&g)) {
        (EnrollmentBasis::GuardianshipNotShown, "户籍登记未显示所列监护人为儿童父母或监护人")
    } else if child.kind == PlaceKind::Registered as i32
        && child.in_district
        && guardians
            .iter()
            .filter(related)
            .any(|g| g.kind == PlaceKind::Registered as i32 && g.in_district)
    {
        (
            EnrollmentBasis::ChildAndGuardianRegisteredInDistrict,
            "儿童与父母(监护人)户籍均在学区内",
        )
    } else if guardians.iter().any(|g| {
        g.kind == PlaceKind::ResidencePermit as i32 && g.in_district && (child.kind != PlaceKind::Registered as i32 || related(&g))
    }) {
        (
            EnrollmentBasis::GuardianPermitInDistrict,
            "父母(监护人)持有效居住证, 居住地在学区内 (以居住证为主要依据)",
        )
    } else {
        (EnrollmentBasis::NotInDistrict, "户籍与居住证居住地均不在学区内")
    };
    Ok(EnrollmentCheckResponse {
        request_id: input.request_id.clone(),
        child: Some(child),
        guardians,
        basis: basis as i32,
        basis_text: text.into(),
        error: None,
    })
}

fn minimise_place(check: &mut PlaceCheck, approved: &BTreeSet<String>, released: &mut BTreeSet<&'static str>) {
    for field in ["place", "in_district", "relation", "permit"] {
        if approved.contains(field) {
            released.insert(field);
            continue;
        }
        match field {
            "place" => {
                check.place = None;
                check.kind = PlaceKind::Unspecified as i32;
            }
            "in_district" => check.in_district = false,
            "relation" => check.relation = GuardianRelation::Unspecified as i32,
            _ => {
                check.permit_issued_on = None;
                check.permit_valid_until = None;
                check.residence_registered_on = None;
            }
        }
    }
}

impl Minimise for EnrollmentCheckResponse {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String> {
        let mut released = BTreeSet::new();
        if let Some(child) = self.child.as_mut() {
            minimise_place(child, approved, &mut released);
        }
        for guardian in &mut self.guardians {
            minimise_place(guardian, approved, &mut released);
        }
        if approved.contains("basis") {
            released.insert("basis");
        } else {
            self.basis = EnrollmentBasis::Unspecified as i32;
            self.basis_text.clear();
        }
        released.into_iter().map(String::from).collect()
    }
}
