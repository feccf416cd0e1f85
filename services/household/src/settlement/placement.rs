//! Where a settling person is registered: the first placement in the city's
//! order that the rule allows and the facts make available (e.g. Liaocheng:
//! 合法不动产权房屋 → 近亲属家庭户 → 单位集体户 → 人才集体户 → 社区集体户).

use popbase_proto::household::{DocumentKind, HouseholdKind, Kinship, Placement, PlacementKind, PropertyKind, Relationship};

use super::facts::{Facts, RelationFact};
use super::policy::{Policy, Rule};

/// The placement for `rule`, or why none of its placements is available.
pub fn place(policy: &Policy, rule: &Rule, facts: &Facts, relation: Option<&RelationFact>) -> Result<Placement, String> {
    let mut allowed: Vec<PlacementKind> = rule.placements.iter().map(|p| p.0).collect();
    allowed.sort_by_key(|k| policy.placement_rank(*k));
    let mut unavailable = Vec::new();
    for kind in allowed {
        match available(kind, facts, relation) {
            Ok(placement) => return Ok(placement),
            Err(why) => unavailable.push(format!("{}: {why}", kind.as_str_name())),
        }
    }
    Err(format!("no placement available ({})", unavailable.join("; ")))
}

fn new_household(kind: PlacementKind, facts: &Facts) -> Placement {
    Placement {
        kind: kind as i32,
        household_id: String::new(),
        address: Some(facts.target.clone()),
        relationship: Relationship::Head as i32,
    }
}

fn join(kind: PlacementKind, household_id: &str, relationship: Relationship) -> Placement {
    Placement {
        kind: kind as i32,
        household_id: household_id.to_string(),
        address: None,
        relationship: relationship as i32,
    }
}

fn available(kind: PlacementKind, facts: &Facts, relation: Option<&RelationFact>) -> Result<Placement, String> {
    let collective = |id: &Option<String>, what: &str| {
        id.as_deref()
            .map(|id| join(kind, id, Relationship::CollectiveMember))
            .ok_or_else(|| format!("no {what} collective household in street {} or its county", facts.target_street))
    };
    match kind {
        PlacementKind::OwnProperty => {
            if facts.property_at_target().0 != PropertyKind::Unspecified && facts.has(DocumentKind::PropertyCertificate) {
                Ok(new_household(kind, facts))
            } else {
                Err("no property certificate for the target".into())
            }
        }
        PlacementKind::RelativeHousehold => {
            let relation = relation.ok_or("no claimed relation")?;
            let household = relation
                .sponsor_household
                .as_ref()
                .filter(|h| h.kind == HouseholdKind::Family as i32)
                .ok_or("the sponsor is not active in a family household")?;
            let sponsor_is_head = household.head_id_number == relation.sponsor_id;
            Ok(join(
                kind,
                &household.household_id,
                relationship_to_head(relation.kinship, sponsor_is_head, facts),
            ))
        }
        PlacementKind::UnitCollective => facts
            .employer_household
            .as_ref()
            .map(|h| join(kind, &h.household_id, Relationship::CollectiveMember))
            .ok_or_else(|| "no unit collective household of the employer".to_string()),
        PlacementKind::RentalAddress => {
            if !facts.renting_at_target().0 {
                Err("does not rent at the target".into())
            } else if !facts.has(DocumentKind::RentalRegistration) || !facts.has(DocumentKind::OwnerConsent) {
                Err("registering at a rented home needs the rental registration and the owner's consent".into())
            } else if facts.address_registered {
                Err("a household is already registered at the rented address".into())
            } else {
                Ok(new_household(kind, facts))
            }
        }
        PlacementKind::TalentCollective => collective(&facts.talent_collective, "talent"),
        PlacementKind::CommunityCollective => collective(&facts.community_collective, "community"),
        PlacementKind::RuralCollective => collective(&facts.rural_collective, "rural"),
        PlacementKind::OriginHousehold => match &facts.origin_household {
            Some(h) => Ok(join(kind, &h.household_id, Relationship::OtherRelative)),
            None if facts.homestead_rights().0 => Ok(new_household(kind, facts)),
            None => Err("no household of origin and no homestead".into()),
        },
        PlacementKind::Unspecified => Err("unspecified".into()),
    }
}

/// The applicant's relationship to the head when joining the sponsor's
/// household; exact when the sponsor is the head, "other relative" otherwise
/// (the life event re-derives it from the kinship links it records).
fn relationship_to_head(kinship: Kinship, sponsor_is_head: bool, facts: &Facts) -> Relationship {
    if !sponsor_is_head {
        return Relationship::OtherRelative;
    }
    let male = matches!(facts.applicant_id.sex(), popbase_domain::Sex::Male);
    let pick = |m, f| if male { m } else { f };
    match kinship {
        Kinship::Spouse => Relationship::Spouse,
        Kinship::Parent | Kinship::AdoptiveParent => pick(Relationship::Son, Relationship::Daughter),
        Kinship::Child => pick(Relationship::Father, Relationship::Mother),
        Kinship::Sibling => Relationship::Sibling,
        Kinship::Grandparent => pick(Relationship::Grandson, Relationship::Granddaughter),
        Kinship::Grandchild => pick(Relationship::Grandfather, Relationship::Grandmother),
        Kinship::Unspecified => Relationship::OtherRelative,
    }
}
