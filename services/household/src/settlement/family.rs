//! A family settling together: the applicant's spouse and minor children
//! (本人、配偶及未成年子女; the seeds' 本人及其近亲属 on the residence and
//! employment paths). Each member is checked on their own (the kinship to
//! the applicant, a child's minority, their own registration) and placed in
//! the household the applicant's recommended rule places the applicant in,
//! with their relationship to its head. A rule whose clause does not bring
//! the family (`brings_family`) leaves each member to apply on their own.

use popbase_domain::IdNumber;
use popbase_domain::calendar::age_on;
use popbase_domain::mask::mask_id_number;
use popbase_proto::household::{
    Check as CheckResult, DocumentKind, FactOrigin, FamilyMemberEvaluation, HouseholdKind, Kinship, Person, Placement, RegistrationStatus,
    Relationship, RuleEvaluation,
};

use super::checks::kinship_outcome;
use super::facts::Facts;
use super::policy::Rule;
use crate::kinship::Finding;

/// One family member and what the registry makes of them.
#[derive(Debug, Clone)]
pub struct MemberFact {
    pub id: IdNumber,
    /// What the member is to the applicant: spouse or child.
    pub kinship: Kinship,
    pub record: Option<Person>,
    /// Whether the registry shows the member as the applicant's `kinship`.
    pub finding: Finding,
    /// The member is active in a school's collective household.
    pub in_school_collective: bool,
}

fn check(code: &str, passed: bool, detail: impl Into<String>, origin: FactOrigin) -> CheckResult {
    CheckResult {
        code: code.into(),
        passed,
        detail: detail.into(),
        origin: origin as i32,
    }
}

/// The family's evaluation under `recommended` (the applicant's rule and
/// its evaluation), and whether every member may settle with them.
pub fn evaluate(recommended: Option<(&Rule, &RuleEvaluation)>, facts: &Facts) -> (Vec<FamilyMemberEvaluation>, bool) {
    let members: Vec<FamilyMemberEvaluation> = facts.family.iter().map(|m| member(m, recommended, facts)).collect();
    let all = members.iter().all(|m| m.eligible);
    (members, all)
}

fn member(m: &MemberFact, recommended: Option<(&Rule, &RuleEvaluation)>, facts: &Facts) -> FamilyMemberEvaluation {
    let mut checks = vec![clause(recommended), kinship(m, facts)];
    if m.kinship == Kinship::Child {
        let age = age_on(m.id.birth_date(), facts.on);
        checks.push(check("MINOR", age < 18, format!("age {age}"), FactOrigin::Registry));
    }
    checks.push(status(m, facts));
    let placement = recommended
        .and_then(|(_, evaluation)| evaluation.placement.as_ref())
        .map(|p| join(p, m));
    checks.push(match &placement {
        Some(p) => check(
            "PLACEMENT",
            true,
            format!("placed with the applicant: {}", p.kind().as_str_name()),
            FactOrigin::Unspecified,
        ),
        None => check("PLACEMENT", false, "the applicant has no placement", FactOrigin::Unspecified),
    });
    FamilyMemberEvaluation {
        masked_id_number: mask_id_number(m.id.as_str()),
        kinship: m.kinship as i32,
        eligible: checks.iter().all(|c| c.passed),
        checks,
        placement,
    }
}

fn clause(recommended: Option<(&Rule, &RuleEvaluation)>) -> CheckResult {
    match recommended {
        Some((rule, _)) if rule.brings_family => check(
            "FAMILY_CLAUSE",
            true,
            format!(
                "rule {} ({}) lets the spouse and minor children settle together",
                rule.id, rule.cite
            ),
            FactOrigin::Unspecified,
        ),
        Some((rule, _)) => check(
            "FAMILY_CLAUSE",
            false,
            format!(
                "rule {} ({}) settles the applicant alone; each member applies on their own",
                rule.id, rule.cite
            ),
            FactOrigin::Unspecified,
        ),
        None => check("FAMILY_CLAUSE", false, "no rule admits the applicant", FactOrigin::Unspecified),
    }
}

fn kinship(m: &MemberFact, facts: &Facts) -> CheckResult {
    let proof = if m.kinship == Kinship::Spouse {
        DocumentKind::MarriageCertificate
    } else {
        DocumentKind::KinshipProof
    };
    let outcome = kinship_outcome(m.kinship, &m.finding, proof, facts);
    check("KINSHIP_VERIFIED", outcome.passed, outcome.detail, outcome.origin)
}

fn status(m: &MemberFact, facts: &Facts) -> CheckResult {
    let (passed, detail) = match &m.record {
        Some(p) if p.status == RegistrationStatus::Deceased as i32 => (false, "registered as deceased"),
        Some(_) if m.in_school_collective => (true, "registered in a school's collective household; settling moves it out"),
        Some(p) if p.status == RegistrationStatus::Active as i32 && p.household_id.starts_with(&facts.target_county) => {
            (false, "already registered in the target county")
        }
        Some(_) => (true, "registry record found; settling moves it"),
        None => (true, "not registered in this city; arrives with a migration certificate"),
    };
    check("MEMBER_STATUS", passed, detail, FactOrigin::Registry)
}

/// The member's place in the applicant's household.
fn join(applicant: &Placement, m: &MemberFact) -> Placement {
    let male = matches!(m.id.sex(), popbase_domain::Sex::Male);
    let pick = |son, daughter| if male { son } else { daughter };
    let applicant_relationship = applicant.relationship();
    let relationship = match (applicant_relationship, m.kinship) {
        (Relationship::CollectiveMember, _) => Relationship::CollectiveMember,
        (Relationship::Head, Kinship::Spouse) => Relationship::Spouse,
        (Relationship::Head | Relationship::Spouse, Kinship::Child) => pick(Relationship::Son, Relationship::Daughter),
        (Relationship::Son | Relationship::Daughter, Kinship::Spouse) => pick(Relationship::SonInLaw, Relationship::DaughterInLaw),
        (Relationship::Son | Relationship::Daughter, Kinship::Child) => pick(Relationship::Grandson, Relationship::Granddaughter),
        _ => Relationship::OtherRelative,
    };
    Placement {
        relationship: relationship as i32,
        ..applicant.clone()
    }
}

/// Whether a household kind is a school's collective (graduates leave it).
pub fn is_school_collective(kind: Option<HouseholdKind>) -> bool {
    kind == Some(HouseholdKind::CollectiveSchool)
}
