//! 用人单位属地: a committee code or a written address resolved to street,
//! community and committee. A written address is located by the household
//! registry in the city's standard addresses (road and door number,
//! narrowed by the divisions it names; see `popbase_household::gazetteer`):
//! one committee answers, several equally fitting answer a short list of
//! candidates, none (or a place outside the city) is NOT_FOUND.

use std::collections::BTreeSet;

use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::DivisionLevel;
use popbase_proto::gateway::employer_locality_request::Place;
use popbase_proto::gateway::{EmployerLocalityRequest, EmployerLocalityResponse};
use popbase_proto::household::{AddressMatch, LocateAddressRequest};

use crate::gate::Minimise;
use crate::sources::{Sources, division_path, upstream};

/// Longest written address accepted.
const MAX_ADDRESS_CHARS: usize = 200;

/// A checked place: a committee of the city, or an address to locate.
pub enum Asked {
    Committee(String),
    Written(String),
}

pub fn validate(request: &EmployerLocalityRequest, city: &str) -> ServiceResult<Asked> {
    match &request.place {
        Some(Place::CommitteeCode(code)) => {
            validate::division("committee_code", code, DivisionLevel::Committee)?;
            if !code.starts_with(city) {
                return Err(ServiceError::invalid("committee_code", format!("lies outside the city {city}")));
            }
            Ok(Asked::Committee(code.clone()))
        }
        Some(Place::Address(address)) => Ok(Asked::Written(
            validate::text("address", address, 2, MAX_ADDRESS_CHARS)?.to_string(),
        )),
        None => Err(ServiceError::invalid("place", "give committee_code or address")),
    }
}

pub async fn locate(sources: &Sources, asked: Asked, city: &str) -> ServiceResult<EmployerLocalityResponse> {
    let text = match asked {
        Asked::Committee(code) => {
            return Ok(EmployerLocalityResponse {
                locality: Some(division_path(&code)),
                matched_by: "committee code".into(),
                candidates: Vec::new(),
            });
        }
        Asked::Written(text) => text,
    };
    let located = sources
        .registry
        .locate_address(LocateAddressRequest {
            text,
            city_code: city.to_string(),
        })
        .await
        .map_err(|s| upstream("the household registry", s))?
        .into_inner();
    match located.outcome() {
        AddressMatch::Resolved => Ok(EmployerLocalityResponse {
            locality: located.committee_codes.first().map(|c| division_path(c)),
            matched_by: "standard address".into(),
            candidates: Vec::new(),
        }),
        AddressMatch::Ambiguous => Ok(EmployerLocalityResponse {
            locality: None,
            matched_by: "several committees fit equally; add the street or community, or give committee_code".into(),
            candidates: located.committee_codes.iter().map(|c| division_path(c)).collect(),
        }),
        AddressMatch::NotFound | AddressMatch::Unspecified => Err(ServiceError::NotFound {
            what: format!("a committee of the city for the address ({})", located.reason),
        }),
    }
}

impl Minimise for EmployerLocalityResponse {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String> {
        if approved.contains("locality") {
            vec!["locality".into()]
        } else {
            self.locality = None;
            self.candidates.clear();
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committee_outside_the_city_or_no_place_is_refused_naming_the_field() {
        let ask = |place| EmployerLocalityRequest {
            purpose: "EMPLOYER_LOCALITY".into(),
            place: Some(place),
        };
        let outside = validate(&ask(Place::CommitteeCode("370102001002".into())), "3703")
            .err()
            .expect("Jinan");
        assert!(outside.to_string().contains("committee_code"), "{outside}");
        assert!(validate(&ask(Place::Address("张".into())), "3703").is_err(), "too short");
        let none = EmployerLocalityRequest {
            purpose: "EMPLOYER_LOCALITY".into(),
            place: None,
        };
        assert!(validate(&none, "3703").is_err());
    }
}
