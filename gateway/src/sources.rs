//! Where the gateway fetches: gRPC clients of the registry, the residence
//! service and the feeds (in-process addresses in all-in-one mode).

use arrow_flight::flight_service_client::FlightServiceClient;
use popbase_common::ServiceError;
use popbase_common::propagation::{TracedChannel, traced};
use popbase_domain::{DivisionLevel, Divisions};
use popbase_export::Owner;
use popbase_proto::common::DivisionPath;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::residence::entitlements_client::EntitlementsClient;
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Sources {
    pub registry: HouseholdRegistryClient<TracedChannel>,
    pub permits: ResidencePermitsClient<TracedChannel>,
    pub entitlements: EntitlementsClient<TracedChannel>,
    pub feeds: FeedsClient<TracedChannel>,
    /// The internal Flight endpoints, by the role that owns the datasets.
    household_flight: FlightServiceClient<TracedChannel>,
    residence_flight: FlightServiceClient<TracedChannel>,
    feeds_flight: FlightServiceClient<TracedChannel>,
}

/// Flight batches of a wide dataset can exceed tonic's 4 MiB default.
const MAX_FLIGHT_MESSAGE: usize = 64 * 1024 * 1024;

fn flight_client(channel: TracedChannel) -> FlightServiceClient<TracedChannel> {
    FlightServiceClient::new(channel).max_decoding_message_size(MAX_FLIGHT_MESSAGE)
}

fn channel(what: &str, address: &str) -> Result<TracedChannel, String> {
    Channel::from_shared(address.to_string())
        .map(|endpoint| traced(endpoint.connect_lazy()))
        .map_err(|e| format!("bad {what} upstream address {address:?}: {e}"))
}

impl Sources {
    pub fn connect_lazy(household: &str, residence: &str, feeds: &str) -> Result<Self, String> {
        let household_channel = channel("household", household)?;
        let residence_channel = channel("residence", residence)?;
        let feeds_channel = channel("feeds", feeds)?;
        Ok(Self {
            registry: HouseholdRegistryClient::new(household_channel.clone()),
            permits: ResidencePermitsClient::new(residence_channel.clone()),
            entitlements: EntitlementsClient::new(residence_channel.clone()),
            feeds: FeedsClient::new(feeds_channel.clone()),
            household_flight: flight_client(household_channel),
            residence_flight: flight_client(residence_channel),
            feeds_flight: flight_client(feeds_channel),
        })
    }

    /// The Flight endpoint of the role that owns `owner`'s datasets.
    pub fn flight(&self, owner: Owner) -> FlightServiceClient<TracedChannel> {
        match owner {
            Owner::Household => self.household_flight.clone(),
            Owner::Residence => self.residence_flight.clone(),
            Owner::Feeds => self.feeds_flight.clone(),
        }
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
