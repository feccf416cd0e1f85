//! Evaluating a policy's rules against the facts of one application.
//! Pure: everything the registry knows is already in [`Facts`].

use popbase_proto::household::{
    Check as CheckResult, DocumentKind, FactOrigin, HouseholdKind, Kinship, PlacementKind, RegistrationStatus, RuleEvaluation,
    SettlementEvaluation,
};

use super::checks::{Outcome, check_code, relation_outcome, run};
use super::facts::{Facts, RelationFact};
use super::placement;
use super::policy::{Check, Policy, Rule, TargetArea};

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
    let recommended = best.as_ref().and_then(|b| policy.rule(&b.rule_id).map(|rule| (rule, b)));
    let (family, family_eligible) = super::family::evaluate(recommended, facts);
    SettlementEvaluation {
        policy_id: policy.id.clone(),
        eligible: best.is_some(),
        recommended_rule_id: best.as_ref().map(|r| r.rule_id.clone()).unwrap_or_default(),
        placement: best.and_then(|r| r.placement),
        rules,
        document: policy.document.clone(),
        in_force_from: Some(policy.in_force_from.0.into()),
        in_force_until: policy.in_force_until.map(|d| d.0.into()),
        evaluated_on: Some(facts.on.into()),
        family,
        family_eligible,
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
            origin: outcome.origin as i32,
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
    let rests_on_declared = checks.iter().any(|c| c.passed && c.origin == FactOrigin::Declared as i32);
    RuleEvaluation {
        rule_id: rule.id.clone(),
        path: rule.path.0 as i32,
        title: rule.title.clone(),
        eligible,
        checks,
        missing_documents: missing.iter().map(|d| *d as i32).collect(),
        placement: placement.ok(),
        rests_on_declared,
        cite: rule.cite.clone(),
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
    let outcome = match &facts.applicant {
        Some(p) if p.status == RegistrationStatus::Deceased as i32 => Outcome::new(false, "the applicant is registered as deceased"),
        // A graduate leaves the school's collective household (Weihai 三(四)).
        Some(_) if facts.applicant_household == Some(HouseholdKind::CollectiveSchool) => Outcome::new(
            true,
            "registered in a school's collective household; settling moves the registration out of it",
        ),
        Some(p) if p.status == RegistrationStatus::Active as i32 && p.household_id.starts_with(&facts.target_county) => Outcome::new(
            false,
            "the applicant is already registered in the target county (a move between households, not a settlement)",
        ),
        Some(_) => Outcome::new(true, "registry record found; settling moves it"),
        None => Outcome::new(true, "not registered in this city; arrives with a migration certificate"),
    };
    outcome.from(FactOrigin::Registry)
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
