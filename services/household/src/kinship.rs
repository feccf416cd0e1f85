//! Kinship as the registry knows it.
//!
//! Persons carry links to father, mother and spouse (recorded at birth
//! registration, marriage or import). A claimed relation is *verified* when
//! the links show it, *contradicted* when they show something else (or the
//! ages make it impossible), and *unverifiable* when the registry lacks the
//! links — then the policy's documentary proof decides.

use popbase_domain::IdNumber;
use popbase_proto::common::Sex;
use popbase_proto::household::{Kinship, Person, Relationship};
use popbase_storage::StorageResult;

use crate::Registry;

/// The smallest age gap between a parent and a child the registry accepts.
const MIN_PARENT_GAP_YEARS: i32 = 14;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Verified(String),
    Contradicted(String),
    Unverifiable(String),
}

impl Finding {
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified(_))
    }

    pub fn detail(&self) -> &str {
        match self {
            Self::Verified(d) | Self::Contradicted(d) | Self::Unverifiable(d) => d,
        }
    }
}

fn parents(person: &Person) -> [&str; 2] {
    [person.father_id_number.as_str(), person.mother_id_number.as_str()]
}

fn is_parent_of(parent_id: &str, child: &Person) -> bool {
    !parent_id.is_empty() && parents(child).contains(&parent_id)
}

/// The parent link of `child` that a parent of `parent_sex` would fill.
fn parent_slot(child: &Person, parent_sex: Sex) -> &str {
    match parent_sex {
        Sex::Female => &child.mother_id_number,
        _ => &child.father_id_number,
    }
}

fn birth_year(id: &str) -> Option<i32> {
    id.get(6..10)?.parse().ok()
}

fn sex_of(id: &str) -> Sex {
    id.get(16..17)
        .and_then(|d| d.parse::<u8>().ok())
        .map_or(Sex::Unspecified, |d| if d % 2 == 1 { Sex::Male } else { Sex::Female })
}

/// Checks a claim that `sponsor` is the applicant's `kinship`.
/// `applicant` is the applicant's registry record when there is one.
pub fn verify(
    registry: &Registry,
    applicant_id: &IdNumber,
    applicant: Option<&Person>,
    sponsor: &Person,
    kinship: Kinship,
) -> StorageResult<Finding> {
    let applicant_id = applicant_id.as_str();
    let sponsor_id = sponsor.id_number.as_str();
    let gap = birth_year(applicant_id).zip(birth_year(sponsor_id)).map(|(a, s)| a - s);
    let finding = match kinship {
        Kinship::Spouse => {
            if sponsor.spouse_id_number == applicant_id || applicant.is_some_and(|a| a.spouse_id_number == sponsor_id) {
                Finding::Verified("registry links the two as spouses".into())
            } else if !sponsor.spouse_id_number.is_empty() {
                Finding::Contradicted("the sponsor's registered spouse is another person".into())
            } else {
                Finding::Unverifiable("no spouse recorded for the sponsor".into())
            }
        }
        Kinship::Parent | Kinship::AdoptiveParent => match applicant {
            _ if gap.is_some_and(|g| g < MIN_PARENT_GAP_YEARS) => {
                Finding::Contradicted(format!("the sponsor is not {MIN_PARENT_GAP_YEARS} years older than the applicant"))
            }
            Some(a) if is_parent_of(sponsor_id, a) => Finding::Verified("registry records the sponsor as the applicant's parent".into()),
            Some(a) if !parent_slot(a, sex_of(sponsor_id)).is_empty() => {
                Finding::Contradicted("the applicant's registered parent of that sex is another person".into())
            }
            _ => Finding::Unverifiable("the applicant's parents are not recorded".into()),
        },
        Kinship::Child => {
            if gap.is_some_and(|g| g > -MIN_PARENT_GAP_YEARS) {
                Finding::Contradicted(format!("the applicant is not {MIN_PARENT_GAP_YEARS} years older than the sponsor"))
            } else if is_parent_of(applicant_id, sponsor) {
                Finding::Verified("registry records the applicant as the sponsor's parent".into())
            } else if !parent_slot(sponsor, sex_of(applicant_id)).is_empty() {
                Finding::Contradicted("the sponsor's registered parent of that sex is another person".into())
            } else {
                Finding::Unverifiable("the sponsor's parents are not recorded".into())
            }
        }
        Kinship::Sibling => match applicant {
            Some(a) if parents(a).iter().any(|p| is_parent_of(p, sponsor)) => Finding::Verified("registry records a common parent".into()),
            Some(a) if parents(a).iter().all(|p| !p.is_empty()) && parents(sponsor).iter().all(|p| !p.is_empty()) => {
                Finding::Contradicted("registry records different parents".into())
            }
            _ => Finding::Unverifiable("the parents of both are not recorded".into()),
        },
        Kinship::Grandparent => {
            if gap.is_some_and(|g| g < 2 * MIN_PARENT_GAP_YEARS) {
                Finding::Contradicted("the sponsor is too young to be the applicant's grandparent".into())
            } else {
                match applicant {
                    Some(a) if grandparent_link(registry, a, sponsor_id)? => {
                        Finding::Verified("registry records the sponsor as a parent of the applicant's parent".into())
                    }
                    _ => Finding::Unverifiable("the applicant's parents' parents are not recorded".into()),
                }
            }
        }
        Kinship::Grandchild => {
            if gap.is_some_and(|g| g > -2 * MIN_PARENT_GAP_YEARS) {
                Finding::Contradicted("the applicant is too young to be the sponsor's grandparent".into())
            } else if grandparent_link(registry, sponsor, applicant_id)? {
                Finding::Verified("registry records the applicant as a parent of the sponsor's parent".into())
            } else {
                Finding::Unverifiable("the sponsor's parents' parents are not recorded".into())
            }
        }
        Kinship::Unspecified => Finding::Contradicted("no kinship claimed".into()),
    };
    Ok(finding)
}

/// Whether `grandparent_id` is a parent of one of `person`'s parents.
fn grandparent_link(registry: &Registry, person: &Person, grandparent_id: &str) -> StorageResult<bool> {
    for parent_id in parents(person).into_iter().filter(|p| !p.is_empty()) {
        if let Some(parent) = registry.person(parent_id)?
            && is_parent_of(grandparent_id, &parent)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `member`'s relationship to `head` as far as the kinship links show it.
pub fn relationship_to(registry: &Registry, head: &Person, member: &Person) -> StorageResult<Option<Relationship>> {
    let male = sex_of(&member.id_number) == Sex::Male;
    let pick = |m: Relationship, f: Relationship| Some(if male { m } else { f });
    let head_id = head.id_number.as_str();
    let relationship = if member.spouse_id_number == head_id || head.spouse_id_number == member.id_number {
        Some(Relationship::Spouse)
    } else if is_parent_of(head_id, member) {
        pick(Relationship::Son, Relationship::Daughter)
    } else if is_parent_of(&member.id_number, head) {
        pick(Relationship::Father, Relationship::Mother)
    } else if parents(head).iter().any(|p| is_parent_of(p, member)) {
        Some(Relationship::Sibling)
    } else if grandparent_link(registry, member, head_id)? {
        pick(Relationship::Grandson, Relationship::Granddaughter)
    } else if grandparent_link(registry, head, &member.id_number)? {
        pick(Relationship::Grandfather, Relationship::Grandmother)
    } else if !member.spouse_id_number.is_empty()
        && registry
            .person(&member.spouse_id_number)?
            .is_some_and(|spouse| is_parent_of(head_id, &spouse))
    {
        pick(Relationship::SonInLaw, Relationship::DaughterInLaw)
    } else {
        None
    };
    Ok(relationship)
}

/// Whether two persons are family in the sense of a family household book:
/// spouses, parent and child, siblings or grandparent and grandchild.
pub fn are_family(registry: &Registry, a: &Person, b: &Person) -> StorageResult<bool> {
    Ok(relationship_to(registry, a, b)?.is_some())
}
