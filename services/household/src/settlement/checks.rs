//! Each check kind of a policy rule, run against the facts of one
//! application: passed or not, why, and where the fact it rests on comes
//! from (the registry, the platform's records, or only the declaration).

use popbase_domain::calendar::age_on;
use popbase_proto::household::{DocumentKind, FactOrigin, HouseholdKind, Kinship, MaritalStatus, PropertyKind, RegistrationStatus};

use super::facts::{Facts, RelationFact};
use super::policy::Check;
use crate::kinship::Finding;

/// Outcome of one check: passed, why, where its fact comes from, and
/// documents that would make it pass.
pub struct Outcome {
    pub passed: bool,
    pub detail: String,
    pub origin: FactOrigin,
    pub missing: Vec<DocumentKind>,
}

impl Outcome {
    pub fn new(passed: bool, detail: impl Into<String>) -> Self {
        Self {
            passed,
            detail: detail.into(),
            origin: FactOrigin::Unspecified,
            missing: Vec::new(),
        }
    }

    pub fn from(mut self, origin: FactOrigin) -> Self {
        self.origin = origin;
        self
    }
}

/// A fact's value in words, with its source: the platform's record, or the
/// declaration when the platform holds none.
fn sourced(origin: FactOrigin, platform_source: &str, what: String) -> String {
    match origin {
        FactOrigin::Platform => format!("{platform_source}: {what}"),
        _ => format!("declared: {what} (the platform holds no record of it)"),
    }
}

pub fn relation_outcome(relation: &RelationFact, facts: &Facts) -> Outcome {
    let Some(sponsor) = &relation.sponsor else {
        return Outcome::new(false, "the sponsor is not in the registry").from(FactOrigin::Registry);
    };
    if sponsor.status != RegistrationStatus::Active as i32 {
        return Outcome::new(false, "the sponsor's registration is not active").from(FactOrigin::Registry);
    }
    let proof = if relation.kinship == Kinship::AdoptiveParent {
        DocumentKind::AdoptionRegistration
    } else {
        DocumentKind::KinshipProof
    };
    kinship_outcome(relation.kinship, &relation.finding, proof, facts)
}

/// What the registry's `finding` on a claimed `kinship` decides: verified
/// or contradicted by the registry, else proven by the document `proof`
/// (declared) or refused asking for it. Sponsors and family members alike.
pub fn kinship_outcome(kinship: Kinship, finding: &Finding, proof: DocumentKind, facts: &Facts) -> Outcome {
    let name = kinship.as_str_name();
    match finding {
        Finding::Verified(d) => Outcome::new(true, format!("{name} verified: {d}")).from(FactOrigin::Registry),
        Finding::Contradicted(d) => Outcome::new(false, format!("{name} contradicted: {d}")).from(FactOrigin::Registry),
        Finding::Unverifiable(d) if facts.has(proof) => {
            Outcome::new(true, format!("{name} not in the registry ({d}); proven by {}", proof.as_str_name())).from(FactOrigin::Declared)
        }
        Finding::Unverifiable(d) => Outcome {
            passed: false,
            detail: format!("{name} not in the registry ({d}) and no {} presented", proof.as_str_name()),
            origin: FactOrigin::Declared,
            missing: vec![proof],
        },
    }
}

pub fn check_code(check: &Check) -> &'static str {
    match check {
        Check::PropertyKindIn(_) => "PROPERTY_KIND",
        Check::RentingAtTarget => "RENTING_AT_TARGET",
        Check::NoRegistrationAtAddress => "NO_REGISTRATION_AT_ADDRESS",
        Check::Relation(_) => "KINSHIP_VERIFIED",
        Check::SponsorUrban => "SPONSOR_URBAN",
        Check::SponsorAdult => "SPONSOR_ADULT",
        Check::AgeAtMost(_) => "AGE_AT_MOST",
        Check::AgeAtLeast(_) => "AGE_AT_LEAST",
        Check::Minor => "MINOR",
        Check::Adult => "ADULT",
        Check::Unmarried => "UNMARRIED",
        Check::EducationAtLeast(_) => "EDUCATION",
        Check::FullTimeEducation => "FULL_TIME_EDUCATION",
        Check::Student => "STUDENT",
        Check::TitleAtLeast(_) => "TITLE",
        Check::SkillAtLeast(_) => "SKILL",
        Check::TalentCategoryIn(_) => "TALENT_CATEGORY",
        Check::PensionMonthsAtLeast(_) => "PENSION_INSURANCE",
        Check::ResidencePermit => "RESIDENCE_PERMIT",
        Check::EmployedInCity => "EMPLOYED_IN_CITY",
        Check::BusinessInCity => "BUSINESS_IN_CITY",
        Check::StableResidence => "STABLE_RESIDENCE",
        Check::NotRegisteredUnder(_) => "REGISTERED_OUTSIDE_ZONE",
        Check::ParentsDeceased => "PARENTS_DECEASED",
        Check::OriginInTargetCounty => "ORIGIN_IN_TARGET_COUNTY",
        Check::HomesteadRights => "HOMESTEAD_RIGHTS",
        Check::NoHomesteadRights => "NO_HOMESTEAD_RIGHTS",
        Check::SponsorHomesteadRights => "SPONSOR_HOMESTEAD_RIGHTS",
        Check::LivesAtTarget => "LIVES_AT_TARGET",
        Check::DispatchedToVillage => "DISPATCHED_TO_VILLAGE",
        Check::RegisteredInSchoolCollective => "SCHOOL_COLLECTIVE",
        Check::Veteran => "VETERAN",
        Check::RepeatSpouseSettlementAfterYears(_) => "MARRIAGE_DURATION",
        Check::AnyOf(_) => "ANY_OF",
    }
}

fn flag(passed: bool, yes: &str, no: &str) -> Outcome {
    Outcome::new(passed, if passed { yes } else { no })
}

/// A yes/no fact with its source (see [`sourced`]).
fn sourced_flag((value, origin): (bool, FactOrigin), source: &str, yes: &str, no: &str) -> Outcome {
    let what = if value { yes } else { no };
    Outcome::new(value, sourced(origin, source, what.to_string())).from(origin)
}

const PENSION_FEED: &str = "pension feed";
const INSURANCE_FEEDS: &str = "pension and medical insurance feeds";
const RESIDENCE_SERVICE: &str = "residence service";
const HOUSING_FEED: &str = "housing feed";

pub fn run(check: &Check, facts: &Facts, relation: Option<&RelationFact>) -> Outcome {
    let declared = &facts.declared;
    let age = age_on(facts.applicant_id.birth_date(), facts.on);
    let male = matches!(facts.applicant_id.sex(), popbase_domain::Sex::Male);
    let registry_or_declared = if facts.applicant.is_some() {
        FactOrigin::Registry
    } else {
        FactOrigin::Declared
    };
    match check {
        Check::PropertyKindIn(kinds) => {
            let (kind, origin) = facts.property_at_target();
            let passed = kinds.iter().any(|k| k.0 == kind);
            Outcome::new(
                passed,
                sourced(origin, HOUSING_FEED, format!("property at the target: {}", kind.as_str_name())),
            )
            .from(origin)
        }
        Check::RentingAtTarget => sourced_flag(
            facts.renting_at_target(),
            HOUSING_FEED,
            "rents at the target address",
            "does not rent at the target address",
        ),
        Check::NoRegistrationAtAddress => flag(
            !facts.address_registered,
            "no household is registered at the address",
            "a household is already registered at the address",
        )
        .from(FactOrigin::Registry),
        Check::Relation(kinds) => match relation.filter(|r| kinds.iter().any(|k| k.0 == r.kinship)) {
            Some(r) => {
                let mut outcome = relation_outcome(r, facts);
                let sponsor_committee = r.sponsor.as_ref().map(|s| popbase_proto::common::Address::committee_of(&s.address));
                if outcome.passed && sponsor_committee != Some(facts.target.committee_code.as_str()) {
                    outcome =
                        Outcome::new(false, "the target address is not the sponsor's registered committee").from(FactOrigin::Registry);
                }
                outcome
            }
            None => Outcome::new(
                false,
                format!(
                    "no claimed relation of kind {}",
                    kinds.iter().map(|k| k.0.as_str_name()).collect::<Vec<_>>().join("/")
                ),
            ),
        },
        Check::SponsorUrban => {
            let urban = relation
                .and_then(|r| r.sponsor.as_ref())
                .and_then(|s| popbase_domain::Divisions::embedded().get(popbase_proto::common::Address::committee_of(&s.address)))
                .and_then(|d| d.committee_kind())
                .is_some_and(|k| k.is_urban());
            flag(
                urban,
                "the sponsor is registered in a town",
                "the sponsor is not registered in a town",
            )
            .from(FactOrigin::Registry)
        }
        Check::SponsorAdult => {
            let adult = relation.is_some_and(|r| {
                popbase_domain::IdNumber::parse(&r.sponsor_id, facts.on).is_ok_and(|id| age_on(id.birth_date(), facts.on) >= 18)
            });
            flag(adult, "the sponsor is an adult", "the sponsor is not an adult").from(FactOrigin::Registry)
        }
        Check::AgeAtMost(limit) => Outcome::new(age <= *limit, format!("age {age}, limit {limit}")).from(FactOrigin::Registry),
        Check::AgeAtLeast(by_sex) => {
            let limit = if male { by_sex.male } else { by_sex.female };
            Outcome::new(age >= limit, format!("age {age}, at least {limit} for the applicant's sex")).from(FactOrigin::Registry)
        }
        Check::Minor => Outcome::new(age < 18, format!("age {age}")).from(FactOrigin::Registry),
        Check::Adult => Outcome::new(age >= 18, format!("age {age}")).from(FactOrigin::Registry),
        Check::Unmarried => {
            let status = facts.applicant.as_ref().map_or(declared.marital_status(), |p| p.marital_status());
            Outcome::new(
                status == MaritalStatus::Unmarried,
                format!("marital status {}", status.as_str_name()),
            )
            .from(registry_or_declared)
        }
        Check::EducationAtLeast(level) => {
            let recorded = facts
                .applicant
                .as_ref()
                .map(|p| p.education())
                .filter(|e| *e as i32 >= declared.education);
            let (education, origin) = match recorded {
                Some(e) => (e, FactOrigin::Registry),
                None => (declared.education(), FactOrigin::Declared),
            };
            Outcome::new(
                education as i32 >= level.0 as i32,
                format!("education {}, at least {}", education.as_str_name(), level.0.as_str_name()),
            )
            .from(origin)
        }
        Check::FullTimeEducation => {
            flag(declared.full_time_education, "full-time education", "not full-time education").from(FactOrigin::Declared)
        }
        Check::Student => flag(declared.student, "enrolled student", "not a student").from(FactOrigin::Declared),
        Check::TitleAtLeast(level) => Outcome::new(
            declared.title >= level.0 as i32,
            format!("title {}, at least {}", declared.title().as_str_name(), level.0.as_str_name()),
        )
        .from(FactOrigin::Declared),
        Check::SkillAtLeast(level) => Outcome::new(
            declared.skill >= level.0 as i32,
            format!("skill {}, at least {}", declared.skill().as_str_name(), level.0.as_str_name()),
        )
        .from(FactOrigin::Declared),
        Check::TalentCategoryIn(categories) => Outcome::new(
            categories.contains(&declared.talent_category),
            format!("talent category {:?}", declared.talent_category),
        )
        .from(FactOrigin::Declared),
        Check::PensionMonthsAtLeast(months) => {
            let (held, origin) = facts.pension_months();
            Outcome::new(
                held >= *months,
                sourced(
                    origin,
                    PENSION_FEED,
                    format!("{held} months of urban employee pension insurance, at least {months}"),
                ),
            )
            .from(origin)
        }
        Check::ResidencePermit => sourced_flag(
            facts.holds_permit(),
            RESIDENCE_SERVICE,
            "holds a residence permit valid on the day",
            "holds no residence permit valid on the day",
        ),
        Check::EmployedInCity => sourced_flag(
            facts.employed(),
            INSURANCE_FEEDS,
            "employed in the city",
            "not employed in the city",
        ),
        Check::BusinessInCity => flag(
            declared.runs_business_in_city,
            "runs a business in the city",
            "runs no business in the city",
        )
        .from(FactOrigin::Declared),
        Check::StableResidence => {
            let (property, property_origin) = facts.property_at_target();
            let (renting, renting_origin) = facts.renting_at_target();
            let origin = if property_origin == FactOrigin::Platform || renting_origin == FactOrigin::Platform {
                FactOrigin::Platform
            } else {
                FactOrigin::Declared
            };
            sourced_flag(
                (property != PropertyKind::Unspecified || renting, origin),
                HOUSING_FEED,
                "owns or rents a home at the target",
                "neither owns nor rents a home at the target",
            )
        }
        Check::NotRegisteredUnder(prefixes) => {
            let (current, origin) = match facts.active_record() {
                Some(p) => (
                    popbase_proto::common::Address::committee_of(&p.address).to_string(),
                    FactOrigin::Registry,
                ),
                None => (declared.from_code.clone(), FactOrigin::Declared),
            };
            let inside = prefixes.iter().any(|p| current.starts_with(p.as_str()));
            Outcome::new(
                !inside,
                if inside {
                    format!("already registered in {current}, inside the policy's core districts")
                } else {
                    "registered outside the core districts".to_string()
                },
            )
            .from(origin)
        }
        Check::ParentsDeceased => {
            if facts.parents_deceased_in_registry {
                Outcome::new(true, "both parents are registered as deceased").from(FactOrigin::Registry)
            } else if facts.has(DocumentKind::DeathCertificates) {
                Outcome::new(true, "both parents deceased, proven by death certificates").from(FactOrigin::Declared)
            } else {
                Outcome {
                    passed: false,
                    detail: "the registry does not show both parents deceased".into(),
                    origin: FactOrigin::Registry,
                    missing: vec![DocumentKind::DeathCertificates],
                }
            }
        }
        Check::OriginInTargetCounty => {
            let from_record = facts
                .applicant
                .as_ref()
                .is_some_and(|p| popbase_proto::common::Address::committee_of(&p.address).starts_with(&facts.target_county));
            let from_birth = facts.applicant_id.county_code() == facts.target_county;
            flag(
                from_record || from_birth,
                "originally registered in the target county",
                "no registration of origin in the target county",
            )
            .from(FactOrigin::Registry)
        }
        Check::HomesteadRights => sourced_flag(
            facts.homestead_rights(),
            HOUSING_FEED,
            "holds homestead rights at the target",
            "holds no homestead rights at the target",
        ),
        Check::NoHomesteadRights => sourced_flag(
            facts.no_homestead_anywhere(),
            HOUSING_FEED,
            "holds no rural homestead",
            "holds a rural homestead",
        ),
        Check::SponsorHomesteadRights => match relation.and_then(|r| r.sponsor.as_ref().map(|_| r)) {
            Some(r) => sourced_flag(
                facts.sponsor_homestead(&r.sponsor_id),
                HOUSING_FEED,
                "the sponsor holds a homestead in the village",
                "the sponsor holds no homestead in the village",
            ),
            None => Outcome::new(false, "no sponsor in the registry"),
        },
        Check::LivesAtTarget => sourced_flag(
            facts.lives_at_target(),
            RESIDENCE_SERVICE,
            "lives at the target",
            "does not live at the target",
        ),
        Check::DispatchedToVillage => flag(
            declared.dispatched_to_village,
            "sent by an organisation to a post in a village or a new agricultural business",
            "not sent to a post in a village",
        )
        .from(FactOrigin::Declared),
        Check::RegisteredInSchoolCollective => flag(
            facts.applicant_household == Some(HouseholdKind::CollectiveSchool),
            "registered in a school's collective household",
            "not registered in a school's collective household",
        )
        .from(FactOrigin::Registry),
        Check::Veteran => {
            let recorded = facts
                .applicant
                .as_ref()
                .is_some_and(|p| p.military_service() == popbase_proto::household::MilitaryService::Veteran);
            let origin = if recorded { FactOrigin::Registry } else { FactOrigin::Declared };
            flag(recorded || declared.veteran, "veteran", "not a veteran").from(origin)
        }
        Check::RepeatSpouseSettlementAfterYears(years) => {
            if !declared.previous_spouse_settlement {
                return Outcome::new(true, "first spouse settlement").from(FactOrigin::Declared);
            }
            let married = declared
                .marriage_date
                .as_ref()
                .and_then(|d| chrono::NaiveDate::from_ymd_opt(d.year, d.month as u32, d.day as u32));
            let duration = married.map(|m| age_on(m, facts.on));
            Outcome::new(
                duration.is_some_and(|d| d >= *years),
                format!("repeated spouse settlement; marriage of {duration:?} years, at least {years}"),
            )
            .from(FactOrigin::Declared)
        }
        Check::AnyOf(alternatives) => {
            let outcomes: Vec<Outcome> = alternatives.iter().map(|c| run(c, facts, relation)).collect();
            let passed = outcomes.iter().any(|o| o.passed);
            let detail = outcomes
                .iter()
                .map(|o| format!("{}{}", if o.passed { "✓ " } else { "✗ " }, o.detail))
                .collect::<Vec<_>>()
                .join("; ");
            // Resting on a declaration when every alternative that passed does.
            let passing: Vec<FactOrigin> = outcomes.iter().filter(|o| o.passed).map(|o| o.origin).collect();
            let origin = if !passing.is_empty() && passing.iter().all(|o| *o == FactOrigin::Declared) {
                FactOrigin::Declared
            } else {
                passing
                    .into_iter()
                    .find(|o| *o != FactOrigin::Declared)
                    .unwrap_or(FactOrigin::Unspecified)
            };
            Outcome::new(passed, format!("one of: {detail}")).from(origin)
        }
    }
}
