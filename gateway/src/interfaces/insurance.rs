//! 医保比对: residents of a division with no active medical insurance:
//! registered persons (from the registry's committee index) and permit
//! holders (the residence service's 政策找人 list for resident insurance).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use futures::StreamExt;
use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::mask::mask_id_number;
use popbase_proto::common::PageRequest;
use popbase_proto::feeds::CheckInsuranceRequest;
use popbase_proto::gateway::{InsuranceGapRequest, ResidentKind, UninsuredResident};
use popbase_proto::household::ListPersonsRequest;
use popbase_proto::residence::{FindUnusedRequest, GetResidentRequest, Policy};

use crate::gate::{Minimise, Release};
use crate::sources::{Sources, upstream};

const PAGE: u32 = 1000;
/// Permit holders' registrations fetched at once.
const RESIDENT_LOOKUPS: usize = 32;

/// The division asked about, checked to lie in the platform's city.
pub fn validate(request: &InsuranceGapRequest, city: &str) -> ServiceResult<String> {
    let code = &request.division_code;
    if ![6, 9, 12].contains(&code.len()) {
        return Err(ServiceError::invalid(
            "division_code",
            "must be a 6-digit county, 9-digit street or 12-digit committee code",
        ));
    }
    validate::division_prefix("division_code", code)?;
    if !code.starts_with(city) {
        return Err(ServiceError::invalid("division_code", format!("lies outside the city {city}")));
    }
    Ok(code.clone())
}

/// Everyone in `division` without active medical insurance, registered first.
pub async fn gap(sources: &Sources, division: &str, today: NaiveDate) -> ServiceResult<Vec<UninsuredResident>> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = sources
            .registry
            .list_persons(ListPersonsRequest {
                division_code: division.to_string(),
                page: Some(PageRequest {
                    page_size: PAGE,
                    page_token: token.clone(),
                }),
            })
            .await
            .map_err(|s| upstream("the household registry", s))?
            .into_inner();
        let ids: Vec<String> = page.persons.iter().map(|p| p.id_number.clone()).collect();
        let active = sources
            .feeds
            .check_insurance(CheckInsuranceRequest { id_numbers: ids })
            .await
            .map_err(|s| upstream("the feeds service", s))?
            .into_inner()
            .active;
        for (person, insured) in page.persons.into_iter().zip(active) {
            if insured {
                continue;
            }
            out.push(UninsuredResident {
                birth_year: person.birth_date.map_or(0, |d| d.year),
                committee_code: person.address.map(|a| a.committee_code).unwrap_or_default(),
                id_number: person.id_number,
                name: person.name,
                sex: person.sex,
                kind: ResidentKind::Registered as i32,
                phone: person.phone,
            });
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut unused = sources
        .entitlements
        .clone()
        .find_unused(FindUnusedRequest {
            policy: Policy::ResidentMedicalInsurance as i32,
            division_code: division.to_string(),
            on: Some(today.into()),
        })
        .await
        .map_err(|s| upstream("the residence service", s))?
        .into_inner();
    let mut holders = Vec::new();
    while let Some(entitlement) = unused.next().await {
        holders.push(entitlement.map_err(|s| upstream("the residence service", s))?.id_number);
    }
    // The registrations behind the list, RESIDENT_LOOKUPS at a time, in list order.
    let residents: Vec<_> = futures::stream::iter(holders)
        .map(|id_number| {
            let permits = sources.permits.clone();
            async move { permits.get_resident(GetResidentRequest { id_number }).await }
        })
        .buffered(RESIDENT_LOOKUPS)
        .collect()
        .await;
    for resident in residents {
        let resident = resident.map_err(|s| upstream("the residence service", s))?.into_inner();
        let Some(registration) = resident.registration else { continue };
        out.push(UninsuredResident {
            birth_year: registration.birth_date.map_or(0, |d| d.year),
            committee_code: registration.address.map(|a| a.committee_code).unwrap_or_default(),
            id_number: registration.id_number,
            name: registration.name,
            sex: registration.sex,
            kind: ResidentKind::PermitHolder as i32,
            phone: registration.phone,
        });
    }
    Ok(out)
}

impl Minimise for UninsuredResident {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String> {
        let mut release = Release::new(approved);
        if !release.keep("id_number") {
            self.id_number = mask_id_number(&self.id_number);
        }
        if !release.keep("name") {
            self.name.clear();
        }
        if !release.keep("sex") {
            self.sex = 0;
        }
        if !release.keep("birth_year") {
            self.birth_year = 0;
        }
        if !release.keep("committee_code") {
            self.committee_code.clear();
        }
        if !release.keep("kind") {
            self.kind = 0;
        }
        if !release.keep("phone") {
            self.phone.clear();
        }
        release.into_fields()
    }
}
