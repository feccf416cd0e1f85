//! 用人单位属地: a committee code or a written address resolved to street,
//! community and committee. A written address is matched against the
//! names of the city's committees (with their street and county names as
//! tie-breakers); an address matching none, or several equally well, is
//! refused with the reason rather than guessed.

use std::collections::BTreeSet;

use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::{DivisionLevel, Divisions};
use popbase_proto::gateway::employer_locality_request::Place;
use popbase_proto::gateway::{EmployerLocalityRequest, EmployerLocalityResponse};

use crate::gate::Minimise;
use crate::sources::division_path;

/// Longest written address accepted.
const MAX_ADDRESS_CHARS: usize = 200;

/// Committee names without their suffix: "华光路社区居委会" → "华光路".
fn core_name(name: &str) -> &str {
    let mut core = name;
    for suffix in [
        "居民委员会",
        "村民委员会",
        "社区居委会",
        "居委会",
        "村委会",
        "社区",
        "街道",
        "镇",
        "乡",
        "村",
    ] {
        if let Some(stripped) = core.strip_suffix(suffix)
            && stripped.chars().count() >= 2
        {
            core = stripped;
        }
    }
    core
}

/// The committee a written address names, if exactly one fits best.
pub fn resolve_address(address: &str, city: &str) -> ServiceResult<(String, String)> {
    let divisions = Divisions::embedded();
    let mut best: Vec<(usize, &str, String)> = Vec::new();
    for county in divisions.descendants_at(city, DivisionLevel::County) {
        let county_hit = address.contains(core_name(&county.name));
        for street in divisions.children(&county.code) {
            let street_hit = address.contains(core_name(&street.name));
            for committee in divisions.children(&street.code) {
                let core = core_name(&committee.name);
                if !address.contains(core) {
                    continue;
                }
                let score = core.chars().count() * 4 + usize::from(street_hit) * 3 + usize::from(county_hit);
                let words = [
                    county_hit.then_some(county.name.as_str()),
                    street_hit.then_some(street.name.as_str()),
                    Some(committee.name.as_str()),
                ];
                let matched = words.into_iter().flatten().collect::<Vec<_>>().join(" ");
                match best.first() {
                    Some((top, _, _)) if *top > score => {}
                    Some((top, _, _)) if *top == score => best.push((score, &committee.code, matched)),
                    _ => best = vec![(score, &committee.code, matched)],
                }
            }
        }
    }
    match best.as_slice() {
        [] => Err(ServiceError::invalid(
            "address",
            "names no residents' or villagers' committee of the city",
        )),
        [(_, code, matched)] => Ok((code.to_string(), format!("address names {matched}"))),
        several => Err(ServiceError::invalid(
            "address",
            format!(
                "fits {} committees equally well; add the street or give committee_code",
                several.len()
            ),
        )),
    }
}

pub fn locate(request: &EmployerLocalityRequest, city: &str) -> ServiceResult<EmployerLocalityResponse> {
    let (code, matched_by) = match &request.place {
        Some(Place::CommitteeCode(code)) => {
            validate::division("committee_code", code, DivisionLevel::Committee)?;
            if !code.starts_with(city) {
                return Err(ServiceError::invalid("committee_code", format!("lies outside the city {city}")));
            }
            (code.clone(), "committee code".to_string())
        }
        Some(Place::Address(address)) => {
            let address = validate::text("address", address, 2, MAX_ADDRESS_CHARS)?;
            resolve_address(address, city)?
        }
        None => return Err(ServiceError::invalid("place", "give committee_code or address")),
    };
    Ok(EmployerLocalityResponse {
        locality: Some(division_path(&code)),
        matched_by,
    })
}

impl Minimise for EmployerLocalityResponse {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String> {
        if approved.contains("locality") {
            vec!["locality".into()]
        } else {
            self.locality = None;
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_address_finds_its_committee() {
        let (code, how) = resolve_address("淄博市张店区车站街道新华社区新华路18号", "3703").expect("resolves");
        assert_eq!(code, "370303001001");
        assert!(how.contains("车站街道"), "{how}");
    }

    #[test]
    fn unknown_and_foreign_addresses_are_refused() {
        assert!(resolve_address("北京市朝阳区建国路88号", "3703").is_err());
        assert!(resolve_address("", "3703").is_err());
    }
}
