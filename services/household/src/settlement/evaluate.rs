//! Evaluating a policy's rules against the facts of one application.
//! Pure: everything the registry knows is already in [`Facts`].

use popbase_domain::calendar::age_on;
use popbase_proto::household::{
    Check as CheckResult, DocumentKind, Kinship, MaritalStatus, PlacementKind, PropertyKind, RegistrationStatus, RuleEvaluation,
    SettlementEvaluation,
};

use super::facts::{Facts, RelationFact};
use super::placement;
use super::policy::{Check, Policy, Rule, TargetArea};

/// Outcome of one check: passed, why, and documents that would make it pass.
struct Outcome {
    passed: bool,
    detail: String,
    missing: Vec<DocumentKind>,
}

impl Outcome {
    fn new(passed: bool, detail: impl Into<String>) -> Self {
        Self {
            passed,
            detail: detail.into(),
            missing: Vec::new(),
        }
    }
}

/// Evaluates every rule, then recommends the eligible rule whose placement
/// comes first in the city's order.
pub fn evaluate(policy: &Policy, facts: &Facts) -> SettlementEvaluation {
    let rules: Vec<RuleEvaluation> = policy.rules.iter().map(|rule| evaluate_rule(policy, rule, facts)).collect();
    let best = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.eligible)
        .min_by_key(|(i, r)| {
            let kind = r.placement.as_ref().map_or(PlacementKind::Unspecified, |p| p.kind());
            (policy.placement_rank(kind), *i)
        })
        .map(|(_, r)| r.clone());
    SettlementEvaluation {
        policy_id: policy.id.clone(),
        eligible: best.is_some(),
        recommended_rule_id: best.as_ref().map(|r| r.rule_id.clone()).unwrap_or_default(),
        placement: best.and_then(|r| r.placement),
        rules,
    }
}

pub fn evaluate_rule(policy: &Policy, rule: &Rule, facts: &Facts) -> RuleEvaluation {
    let mut checks = Vec::new();
    let mut missing: Vec<DocumentKind> = Vec::new();
    let mut push = |code: &str, outcome: Outcome, missing: &mut Vec<DocumentKind>| {
        for doc in outcome.missing {
            if !missing.contains(&doc) {
                missing.push(doc);
            }
        }
        checks.push(CheckResult {
            code: code.to_string(),
            passed: outcome.passed,
            detail: outcome.detail,
        });
    };
    push("TARGET_AREA", target_area(policy, rule, facts), &mut missing);
    if !rule.zones.is_empty() {
        let zone = policy.zone_of(&facts.target_street);
        let passed = zone.is_some_and(|z| rule.zones.contains(&z.id));
        let detail = match zone {
            Some(z) => format!("target street {} lies in {}", facts.target_street, z.name),
            None => format!("target street {} lies outside every zone of this policy", facts.target_street),
        };
        push("ZONE", Outcome::new(passed, detail), &mut missing);
    }
    push("APPLICANT_STATUS", applicant_status(facts), &mut missing);
    let relation = chosen_relation(rule, facts);
    for check in &rule.checks {
        push(check_code(check), run(check, facts, relation), &mut missing);
    }
    let absent: Vec<DocumentKind> = rule.documents.iter().map(|d| d.0).filter(|d| !facts.has(*d)).collect();
    for doc in &absent {
        if !missing.contains(doc) {
            missing.push(*doc);
        }
    }
    let documents_detail = if missing.is_empty() {
        "all required documents presented".to_string()
    } else {
        format!(
            "missing: {}",
            missing.iter().map(|d| d.as_str_name()).collect::<Vec<_>>().join(", ")
        )
    };
    push("DOCUMENTS", Outcome::new(missing.is_empty(), documents_detail), &mut Vec::new());
    let placement = placement::place(policy, rule, facts, relation);
    let placement_outcome = match &placement {
        Ok(p) => Outcome::new(true, format!("placed by the city's order: {}", p.kind().as_str_name())),
        Err(why) => Outcome::new(false, why.clone()),
    };
    push("PLACEMENT", placement_outcome, &mut Vec::new());
    let eligible = checks.iter().all(|c| c.passed);
    RuleEvaluation {
        rule_id: rule.id.clone(),
        path: rule.path.0 as i32,
        title: rule.title.clone(),
        eligible,
        checks,
        missing_documents: missing.iter().map(|d| *d as i32).collect(),
        placement: placement.ok(),
    }
}

fn target_area(policy: &Policy, rule: &Rule, facts: &Facts) -> Outcome {
    if !facts.target.committee_code.starts_with(&policy.city_code) {
        return Outcome::new(
            false,
            format!("target is outside city {} governed by {}", policy.city_code, policy.id),
        );
    }
    let kind = if facts.target_urban {
        "residents' committee (城镇)"
    } else {
        "villagers' committee (农村)"
    };
    let passed = match rule.target {
        TargetArea::Urban => facts.target_urban,
        TargetArea::Rural => !facts.target_urban,
        TargetArea::Any => true,
    };
    Outcome::new(
        passed,
        format!("target is a {kind}; rule applies to {:?}", rule.target).to_lowercase(),
    )
}

fn applicant_status(facts: &Facts) -> Outcome {
    match &facts.applicant {
        Some(p) if p.status == RegistrationStatus::Deceased as i32 => Outcome::new(false, "the applicant is registered as deceased"),
        Some(p) if p.status == RegistrationStatus::Active as i32 && p.household_id.starts_with(&facts.target_county) => Outcome::new(
            false,
            "the applicant is already registered in the target county (a move between households, not a settlement)",
        ),
        Some(_) => Outcome::new(true, "registry record found; settling moves it"),
        None => Outcome::new(true, "not registered in this city; arrives with a migration certificate"),
    }
}

/// The claimed relation a rule rests on: the first of its kinds that holds,
/// else the first of its kinds at all.
fn chosen_relation<'f>(rule: &Rule, facts: &'f Facts) -> Option<&'f RelationFact> {
    let kinds: Vec<Kinship> = rule
        .checks
        .iter()
        .filter_map(|c| match c {
            Check::Relation(kinds) => Some(kinds.iter().map(|k| k.0).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    let candidates = facts.relations.iter().filter(|r| kinds.contains(&r.kinship));
    candidates
        .clone()
        .find(|r| relation_outcome(r, facts).passed)
        .or_else(|| candidates.into_iter().next())
}

fn relation_outcome(relation: &RelationFact, facts: &Facts) -> Outcome {
    let Some(sponsor) = &relation.sponsor else {
        return Outcome::new(false, "the sponsor is not in the registry");
    };
    if sponsor.status != RegistrationStatus::Active as i32 {
        return Outcome::new(false, "the sponsor's registration is not active");
    }
    let proof = if relation.kinship == Kinship::AdoptiveParent {
        DocumentKind::AdoptionRegistration
    } else {
        DocumentKind::KinshipProof
    };
    let name = relation.kinship.as_str_name();
    match &relation.finding {
        crate::kinship::Finding::Verified(d) => Outcome::new(true, format!("{name} verified: {d}")),
        crate::kinship::Finding::Contradicted(d) => Outcome::new(false, format!("{name} contradicted: {d}")),
        crate::kinship::Finding::Unverifiable(d) if facts.has(proof) => {
            Outcome::new(true, format!("{name} not in the registry ({d}); proven by {}", proof.as_str_name()))
        }
        crate::kinship::Finding::Unverifiable(d) => Outcome {
            passed: false,
            detail: format!("{name} not in the registry ({d}) and no {} presented", proof.as_str_name()),
            missing: vec![proof],
        },
    }
}

fn check_code(check: &Check) -> &'static str {
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
        Check::Veteran => "VETERAN",
        Check::RepeatSpouseSettlementAfterYears(_) => "MARRIAGE_DURATION",
        Check::AnyOf(_) => "ANY_OF",
    }
}

fn flag(passed: bool, yes: &str, no: &str) -> Outcome {
    Outcome::new(passed, if passed { yes } else { no })
}

fn run(check: &Check, facts: &Facts, relation: Option<&RelationFact>) -> Outcome {
    let declared = &facts.declared;
    let age = age_on(facts.applicant_id.birth_date(), facts.on);
    let male = matches!(facts.applicant_id.sex(), popbase_domain::Sex::Male);
    match check {
        Check::PropertyKindIn(kinds) => {
            let kind = declared.property_kind();
            let passed = kinds.iter().any(|k| k.0 == kind);
            Outcome::new(passed, format!("property at the target: {}", kind.as_str_name()))
        }
        Check::RentingAtTarget => flag(
            declared.renting_at_target,
            "rents at the target address",
            "does not rent at the target address",
        ),
        Check::NoRegistrationAtAddress => flag(
            !facts.address_registered,
            "no household is registered at the address",
            "a household is already registered at the address",
        ),
        Check::Relation(kinds) => match relation.filter(|r| kinds.iter().any(|k| k.0 == r.kinship)) {
            Some(r) => {
                let mut outcome = relation_outcome(r, facts);
                let sponsor_committee = r.sponsor.as_ref().map(|s| popbase_proto::common::Address::committee_of(&s.address));
                if outcome.passed && sponsor_committee != Some(facts.target.committee_code.as_str()) {
                    outcome = Outcome::new(false, "the target address is not the sponsor's registered committee");
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
        }
        Check::SponsorAdult => {
            let adult = relation.is_some_and(|r| {
                popbase_domain::IdNumber::parse(&r.sponsor_id, facts.on).is_ok_and(|id| age_on(id.birth_date(), facts.on) >= 18)
            });
            flag(adult, "the sponsor is an adult", "the sponsor is not an adult")
        }
        Check::AgeAtMost(limit) => Outcome::new(age <= *limit, format!("age {age}, limit {limit}")),
        Check::AgeAtLeast(by_sex) => {
            let limit = if male { by_sex.male } else { by_sex.female };
            Outcome::new(age >= limit, format!("age {age}, at least {limit} for the applicant's sex"))
        }
        Check::Minor => Outcome::new(age < 18, format!("age {age}")),
        Check::Adult => Outcome::new(age >= 18, format!("age {age}")),
        Check::Unmarried => {
            let status = facts.applicant.as_ref().map_or(declared.marital_status(), |p| p.marital_status());
            Outcome::new(
                status == MaritalStatus::Unmarried,
                format!("marital status {}", status.as_str_name()),
            )
        }
        Check::EducationAtLeast(level) => {
            let education = facts
                .applicant
                .as_ref()
                .map(|p| p.education())
                .filter(|e| *e as i32 >= declared.education)
                .unwrap_or(declared.education());
            Outcome::new(
                education as i32 >= level.0 as i32,
                format!("education {}, at least {}", education.as_str_name(), level.0.as_str_name()),
            )
        }
        Check::FullTimeEducation => flag(declared.full_time_education, "full-time education", "not full-time education"),
        Check::Student => flag(declared.student, "enrolled student", "not a student"),
        Check::TitleAtLeast(level) => Outcome::new(
            declared.title >= level.0 as i32,
            format!("title {}, at least {}", declared.title().as_str_name(), level.0.as_str_name()),
        ),
        Check::SkillAtLeast(level) => Outcome::new(
            declared.skill >= level.0 as i32,
            format!("skill {}, at least {}", declared.skill().as_str_name(), level.0.as_str_name()),
        ),
        Check::TalentCategoryIn(categories) => Outcome::new(
            categories.contains(&declared.talent_category),
            format!("talent category {:?}", declared.talent_category),
        ),
        Check::PensionMonthsAtLeast(months) => Outcome::new(
            declared.pension_insurance_months >= *months,
            format!(
                "{} months of pension insurance, at least {months}",
                declared.pension_insurance_months
            ),
        ),
        Check::ResidencePermit => flag(
            declared.holds_residence_permit,
            "holds a residence permit",
            "holds no residence permit",
        ),
        Check::EmployedInCity => flag(declared.employed_in_city, "employed in the city", "not employed in the city"),
        Check::BusinessInCity => flag(
            declared.runs_business_in_city,
            "runs a business in the city",
            "runs no business in the city",
        ),
        Check::StableResidence => flag(
            declared.property_kind() != PropertyKind::Unspecified || declared.renting_at_target,
            "owns or rents a home at the target",
            "neither owns nor rents a home at the target",
        ),
        Check::NotRegisteredUnder(prefixes) => {
            let current = facts
                .active_record()
                .map(|p| popbase_proto::common::Address::committee_of(&p.address).to_string())
                .unwrap_or_else(|| declared.from_code.clone());
            let inside = prefixes.iter().any(|p| current.starts_with(p.as_str()));
            Outcome::new(
                !inside,
                if inside {
                    format!("already registered in {current}, inside the policy's core districts")
                } else {
                    "registered outside the core districts".to_string()
                },
            )
        }
        Check::ParentsDeceased => {
            if facts.parents_deceased_in_registry {
                Outcome::new(true, "both parents are registered as deceased")
            } else if facts.has(DocumentKind::DeathCertificates) {
                Outcome::new(true, "both parents deceased, proven by death certificates")
            } else {
                Outcome {
                    passed: false,
                    detail: "the registry does not show both parents deceased".into(),
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
        }
        Check::HomesteadRights => flag(declared.homestead_rights, "holds homestead rights", "holds no homestead rights"),
        Check::Veteran => {
            let veteran = declared.veteran
                || facts
                    .applicant
                    .as_ref()
                    .is_some_and(|p| p.military_service() == popbase_proto::household::MilitaryService::Veteran);
            flag(veteran, "veteran", "not a veteran")
        }
        Check::RepeatSpouseSettlementAfterYears(years) => {
            if !declared.previous_spouse_settlement {
                return Outcome::new(true, "first spouse settlement");
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
        }
        Check::AnyOf(alternatives) => {
            let outcomes: Vec<Outcome> = alternatives.iter().map(|c| run(c, facts, relation)).collect();
            let passed = outcomes.iter().any(|o| o.passed);
            let detail = outcomes
                .iter()
                .map(|o| format!("{}{}", if o.passed { "✓ " } else { "✗ " }, o.detail))
                .collect::<Vec<_>>()
                .join("; ");
            Outcome::new(passed, format!("one of: {detail}"))
        }
    }
}
