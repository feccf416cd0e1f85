//! What a scenario needs before it starts: real ID numbers from the city
//! (read from the household service's registry listing, a load-test
//! convenience only departments never get) and, for the consent-checked
//! person query, the subjects' consents granted through the gateway.

use std::collections::BTreeSet;

use anyhow::Context;
use chrono::Datelike;
use futures::StreamExt;
use popbase_proto::popbase::common::v1::{PageRequest, Sex};
use popbase_proto::popbase::gateway::v1::GrantConsentRequest;
use popbase_proto::popbase::gateway::v1::consents_client::ConsentsClient;
use popbase_proto::popbase::household::v1::household_registry_client::HouseholdRegistryClient;
use popbase_proto::popbase::household::v1::{ListPersonsRequest, RegistrationStatus};
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// A school-age child, a parent on record and their committee.
#[derive(Debug, Clone)]
pub struct Family {
    pub child: String,
    pub guardian: String,
    pub committee: String,
}

/// A woman of childbearing age and the household a child of hers joins.
#[derive(Debug, Clone)]
pub struct Mother {
    pub id_number: String,
    pub household_id: String,
}

#[derive(Debug, Default)]
pub struct City {
    /// Registered persons (the first `limit`).
    pub ids: Vec<String>,
    /// Those of `ids` old enough to grant consent in person (14 and over,
    /// the catalogue's `self_consent_age`): the person scenario's subjects.
    pub self_consenting: Vec<String>,
    pub families: Vec<Family>,
    /// Active women of 22 to 40 (the events scenario's mothers).
    pub mothers: Vec<Mother>,
    /// The other active persons (the events scenario's deaths).
    pub others_active: Vec<String>,
    /// Street codes (9 digits) where people live.
    pub streets: Vec<String>,
}

/// The shipped catalogue's `self_consent_age` (PIPL art. 31), with a
/// year's margin for birthdays still to come this year.
const SELF_CONSENT_AGE: i32 = 15;

/// Reads up to `limit` active registered persons of `division`.
pub async fn city(household: Channel, division: &str, limit: usize) -> anyhow::Result<City> {
    let mut registry = HouseholdRegistryClient::new(household);
    let mut city = City::default();
    let mut streets = BTreeSet::new();
    let mut token = String::new();
    let this_year = city_today().year();
    while city.ids.len() < limit {
        let page = registry
            .list_persons(ListPersonsRequest {
                division_code: division.into(),
                page: Some(PageRequest {
                    page_size: 1000,
                    page_token: token.clone(),
                }),
            })
            .await
            .context("listing persons from the household service")?
            .into_inner();
        for p in page.persons {
            let committee = p.address.as_ref().map(|a| a.committee_code.clone()).unwrap_or_default();
            if let Some(street) = committee.get(..9) {
                streets.insert(street.to_string());
            }
            let age = p.birth_date.as_ref().map_or(0, |d| this_year - d.year);
            if (6..=15).contains(&age) && !p.father_id_number.is_empty() {
                city.families.push(Family {
                    child: p.id_number.clone(),
                    guardian: p.father_id_number.clone(),
                    committee,
                });
            }
            let active = p.status == RegistrationStatus::Active as i32;
            if active && (22..=40).contains(&age) && p.sex == Sex::Female as i32 && !p.household_id.is_empty() {
                city.mothers.push(Mother {
                    id_number: p.id_number.clone(),
                    household_id: p.household_id.clone(),
                });
            } else if active {
                city.others_active.push(p.id_number.clone());
            }
            if age >= SELF_CONSENT_AGE {
                city.self_consenting.push(p.id_number.clone());
            }
            city.ids.push(p.id_number);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    city.streets = streets.into_iter().collect();
    anyhow::ensure!(!city.ids.is_empty(), "no registered persons under {division}");
    Ok(city)
}

/// Today in the city (Asia/Shanghai, UTC+8 all year since 1991): the
/// day its registry and consents are dated by, not the UTC day.
pub fn city_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::TimeDelta::hours(8)).date_naive()
}

/// Grants human resources (`hrss`) consent to `PersonSummary` for
/// `EMPLOYMENT_SERVICE` on behalf of each subject, as the citizens' service
/// platform does (64 grants in flight).
pub async fn grant_consents(gateway: Channel, platform_token: &str, ids: &[String]) -> anyhow::Result<()> {
    let today = city_today();
    let until = today + chrono::Duration::days(30);
    let date = |d: chrono::NaiveDate| popbase_proto::popbase::common::v1::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    };
    let bearer = MetadataValue::try_from(format!("Bearer {platform_token}")).context("token")?;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let mut client = ConsentsClient::new(gateway.clone());
            let mut request = Request::new(GrantConsentRequest {
                purpose: "CITIZEN_CONSENT".into(),
                subject_id_number: id.clone(),
                grantor_id_number: id,
                department: "hrss".into(),
                interface: "PersonSummary".into(),
                grant_purpose: "EMPLOYMENT_SERVICE".into(),
                valid_from: Some(date(today)),
                valid_until: Some(date(until)),
                use_limit: 0,
            });
            request.metadata_mut().insert("authorization", bearer.clone());
            async move {
                client
                    .grant(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| anyhow::anyhow!("grant: {:?} {}", s.code(), s.message()))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect()
}
