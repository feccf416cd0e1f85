//! Where the gateway fetches: gRPC clients of the registry, the residence
//! service and the feeds (in-process addresses in all-in-one mode).

use popbase_common::ServiceError;
use popbase_domain::{DivisionLevel, Divisions};
use popbase_proto::common::DivisionPath;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::residence::entitlements_client::EntitlementsClient;
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Sources {
    pub registry: HouseholdRegistryClient<Channel>,
    pub permits: ResidencePermitsClient<Channel>,
    pub entitlements: EntitlementsClient<Channel>,
    pub feeds: FeedsClient<Channel>,
}

fn channel(what: &str, address: &str) -> Result<Channel, String> {
    Channel::from_shared(address.to_string())
        .map(|endpoint| endpoint.connect_lazy())
        .map_err(|e| format!("bad {what} upstream address {address:?}: {e}"))
}

impl Sources {
    pub fn connect_lazy(household: &str, residence: &str, feeds: &str) -> Result<Self, String> {
        let residence_channel = channel("residence", residence)?;
        Ok(Self {
            registry: HouseholdRegistryClient::new(channel("household", household)?),
            permits: ResidencePermitsClient::new(residence_channel.clone()),
            entitlements: EntitlementsClient::new(residence_channel),
            feeds: FeedsClient::new(channel("feeds", feeds)?),
        })
    }
}

/// An upstream failure as the gateway reports it (the service's words are
/// for operators; callers learn which source failed).
pub fn upstream(what: &str, status: tonic::Status) -> ServiceError {
    tracing::warn!(source = what, code = ?status.code(), message = status.message(), "upstream call failed");
    ServiceError::Unavailable(format!("{what} did not answer"))
}

/// County, street and committee names of a committee code.
pub fn division_path(committee_code: &str) -> DivisionPath {
    let divisions = Divisions::embedded();
    let mut path = DivisionPath::default();
    for division in divisions.path(committee_code) {
        let (code, name) = (division.code.clone(), division.name.clone());
        match division.level {
            DivisionLevel::Province => (path.province_code, path.province_name) = (code, name),
            DivisionLevel::City => (path.city_code, path.city_name) = (code, name),
            DivisionLevel::County => (path.county_code, path.county_name) = (code, name),
            DivisionLevel::Street => (path.street_code, path.street_name) = (code, name),
            DivisionLevel::Committee => {
                path.urban = division.committee_kind().is_some_and(|k| k.is_urban());
                (path.committee_code, path.committee_name) = (code, name);
            }
        }
    }
    path
}
