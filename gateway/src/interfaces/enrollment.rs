//! 入学信息核验: where the child and each named guardian stand, whether
//! that lies in the school district, whether the registry shows each
//! guardian as a parent or statutory guardian, and the basis it gives.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::calendar::age_on;
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

/// How far from today an intake's reference date may lie.
const MAX_REFERENCE_DAYS: i64 = 366;

/// Who counts as a child for the check: the catalogue's `subject_ages` for
/// the interface, inclusive, at the request's reference date.
#[derive(Debug, Clone, Copy)]
pub struct ChildAges {
    pub youngest: u32,
    pub oldest: u32,
}

impl ChildAges {
    /// Compulsory schooling (6–15) with a year's margin either side, when
    /// the catalogue names no ages.
    pub const DEFAULT: ChildAges = ChildAges { youngest: 5, oldest: 16 };

    pub fn from_catalogue(ages: Option<[u32; 2]>) -> Self {
        ages.map_or(Self::DEFAULT, |[youngest, oldest]| ChildAges { youngest, oldest })
    }
}

/// The day ages are counted on: the request's, within a year of `today`.
fn reference_date(request: &EnrollmentCheckRequest, today: NaiveDate) -> ServiceResult<NaiveDate> {
    let Some(day) = validate::optional_date("reference_date", request.reference_date.as_ref())? else {
        return Ok(today);
    };
    if (day - today).num_days().abs() > MAX_REFERENCE_DAYS {
        return Err(ServiceError::invalid("reference_date", "must lie within a year of today"));
    }
    Ok(day)
}

pub fn validate(request: &EnrollmentCheckRequest, today: NaiveDate, ages: ChildAges) -> ServiceResult<Enrollment> {
    validate::text("request_id", &request.request_id, 0, MAX_REQUEST_ID_CHARS)?;
    let child = validate::id_number("child_id_number", &request.child_id_number, today)?;
    let on = reference_date(request, today)?;
    // The check verifies an application for a school-age child; it must
    // not serve as a look-up of any adult's and their relatives' places.
    let age = age_on(child.birth_date(), on);
    if age < ages.youngest || age > ages.oldest {
        return Err(ServiceError::invalid(
            "child_id_number",
            format!(
                "is not of the ages this check serves ({} to {}) on the reference date",
                ages.youngest, ages.oldest
            ),
        ));
    }
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

/// Where `id` stands, as far as the answer may say: for the child, and for
/// a guardian the registry or the child's residence registration relates
/// to the child.
fn place_check(id: &str, standing: &Standing, district: &[String]) -> PlaceCheck {
    let mut check = PlaceCheck {
        masked_id_number: mask_id_number(id),
        kind: match standing {
            Standing::Registered(_) => PlaceKind::Registered,
            Standing::Permit(..) => PlaceKind::ResidencePermit,
            Standing::ResidenceOnly(..) => PlaceKind::ResidenceRegistered,
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
    if let Standing::Permit(_, permit) | Standing::ResidenceOnly(_, Some(permit)) = standing {
        check.permit_issued_on = permit.issued_on;
        check.permit_valid_until = permit.valid_until;
    }
    check
}

/// How `guardian` relates to the child: the registry's parent and guardian
/// links, else the child's residence registration naming the permit holder
/// it accompanies (随迁子女).
fn relation(child: &Standing, guardian: &str) -> GuardianRelation {
    match (child.person(), child.registration()) {
        (Some(p), _) if p.father_id_number == guardian => GuardianRelation::Father,
        (Some(p), _) if p.mother_id_number == guardian => GuardianRelation::Mother,
        (Some(p), _) if p.guardian_id_number == guardian => GuardianRelation::StatutoryGuardian,
        (_, Some(r)) if r.accompanies_id_number == guardian => GuardianRelation::Accompanied,
        _ => GuardianRelation::NotShown,
    }
}

/// A guardian's answer: where they stand only when a relation is shown;
/// otherwise the relation NOT_SHOWN and nothing else (a stranger's place
/// and permit are not the education bureau's to learn).
fn guardian_check(id: &str, standing: &Standing, child: &Standing, district: &[String]) -> PlaceCheck {
    let relation = relation(child, id);
    let mut check = if relation == GuardianRelation::NotShown {
        PlaceCheck {
            masked_id_number: mask_id_number(id),
            ..Default::default()
        }
    } else {
        place_check(id, standing, district)
    };
    check.relation = relation as i32;
    check
}

/// The Chinese words of each basis, for the clerk.
pub fn basis_text(basis: EnrollmentBasis) -> &'static str {
    match basis {
        EnrollmentBasis::Unspecified => "",
        EnrollmentBasis::ChildAndGuardianRegisteredInDistrict => "儿童与父母(监护人)户籍均在学区内",
        EnrollmentBasis::GuardianPermitInDistrict => "父母(监护人)持有效居住证, 居住地在学区内 (以居住证为主要依据)",
        EnrollmentBasis::NotInDistrict => "户籍与居住证居住地均不在学区内",
        EnrollmentBasis::GuardianshipNotShown => "户籍登记未显示所列监护人为儿童父母或监护人",
        EnrollmentBasis::ChildUnknown => "儿童既无本市户籍也无居住登记",
        EnrollmentBasis::GuardianPermitLapsed => "父母(监护人)在学区内居住登记, 但居住证已过有效期, 须签注或换领后方可作为入学依据",
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
    let guardians: Vec<PlaceCheck> = input
        .guardians
        .iter()
        .zip(guardian_standings)
        .map(|(id, standing)| guardian_check(id, standing, child_standing, &input.district))
        .collect();
    let basis = basis_of(&child, &guardians, guardian_standings);
    Ok(EnrollmentCheckResponse {
        request_id: input.request_id.clone(),
        child: Some(child),
        guardians,
        basis: basis as i32,
        basis_text: basis_text(basis).into(),
        error: None,
    })
}

/// The basis the standings give. Only guardians with a relation shown
/// count: a stranger's permit in the district is no basis for anyone's child.
fn basis_of(child: &PlaceCheck, guardians: &[PlaceCheck], standings: &[Standing]) -> EnrollmentBasis {
    let related = || {
        guardians
            .iter()
            .zip(standings)
            .filter(|(g, _)| g.relation != GuardianRelation::NotShown as i32)
    };
    let registered = child.kind == PlaceKind::Registered as i32;
    let in_district_as = |kind: PlaceKind| related().any(|(g, _)| g.kind == kind as i32 && g.in_district);
    if child.kind == PlaceKind::Unknown as i32 {
        EnrollmentBasis::ChildUnknown
    } else if related().next().is_none() {
        EnrollmentBasis::GuardianshipNotShown
    } else if registered && child.in_district && in_district_as(PlaceKind::Registered) {
        EnrollmentBasis::ChildAndGuardianRegisteredInDistrict
    } else if in_district_as(PlaceKind::ResidencePermit) {
        EnrollmentBasis::GuardianPermitInDistrict
    } else if related().any(|(g, s)| g.in_district && matches!(s, Standing::ResidenceOnly(_, Some(_)))) {
        EnrollmentBasis::GuardianPermitLapsed
    } else {
        EnrollmentBasis::NotInDistrict
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_domain::IdNumber;

    /// Every basis, one by one, with the words a clerk reads.
    #[test]
    fn each_basis_has_its_own_words() {
        let expected = [
            (EnrollmentBasis::ChildAndGuardianRegisteredInDistrict, "户籍均在学区内"),
            (EnrollmentBasis::GuardianPermitInDistrict, "持有效居住证"),
            (EnrollmentBasis::NotInDistrict, "均不在学区内"),
            (EnrollmentBasis::GuardianshipNotShown, "未显示所列监护人"),
            (EnrollmentBasis::ChildUnknown, "既无本市户籍也无居住登记"),
            (EnrollmentBasis::GuardianPermitLapsed, "居住证已过有效期"),
        ];
        let defined = (1..).take_while(|v| EnrollmentBasis::try_from(*v).is_ok()).count();
        assert_eq!(defined, expected.len(), "a basis without its words here");
        let mut texts = BTreeSet::new();
        for (basis, words) in expected {
            let text = basis_text(basis);
            assert!(text.contains(words), "{basis:?}: {text}");
            assert!(texts.insert(text), "{basis:?} shares its words with another basis");
        }
        assert_eq!(basis_text(EnrollmentBasis::Unspecified), "");
    }

    fn request(child: &IdNumber) -> EnrollmentCheckRequest {
        EnrollmentCheckRequest {
            child_id_number: child.as_str().into(),
            guardian_id_numbers: vec![IdNumber::generate("110105", date(1988, 1, 1), 13).expect("id").as_str().into()],
            district_codes: vec!["370303001001".into()],
            ..Default::default()
        }
    }

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("date")
    }

    fn born(year: i32, month: u32, day: u32) -> IdNumber {
        IdNumber::generate("370303", date(year, month, day), 11).expect("id")
    }

    #[test]
    fn only_children_of_the_catalogued_ages_are_checked() {
        let today = date(2026, 6, 1);
        let ages = ChildAges::DEFAULT;
        // 16 until the day before the 17th birthday.
        assert!(validate(&request(&born(2009, 6, 2)), today, ages).is_ok());
        let Err(adult) = validate(&request(&born(2009, 6, 1)), today, ages) else {
            panic!("17 today")
        };
        assert!(adult.to_string().contains("child_id_number"), "{adult}");
        assert!(validate(&request(&born(2021, 6, 1)), today, ages).is_ok(), "5 today");
        assert!(validate(&request(&born(2021, 6, 2)), today, ages).is_err(), "4 today");
        // On the intake's cut-off, 31 August, the four-year-old is five.
        let mut on_cut_off = request(&born(2021, 6, 2));
        on_cut_off.reference_date = Some(date(2026, 8, 31).into());
        assert!(validate(&on_cut_off, today, ages).is_ok());
        on_cut_off.reference_date = Some(date(2027, 8, 31).into());
        let Err(far) = validate(&on_cut_off, today, ages) else {
            panic!("over a year ahead")
        };
        assert!(far.to_string().contains("reference_date"), "{far}");
        let narrow = ChildAges::from_catalogue(Some([6, 15]));
        assert!(validate(&request(&born(2021, 6, 1)), today, narrow).is_err(), "5 is under 6");
    }
}
