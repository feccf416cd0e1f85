//! Where the gateway fetches: gRPC clients of the registry, the residence
//! service and the feeds, over the network or, when this process runs them
//! too (all-in-one), straight into their routers (see `popbase_common::upstream`)
//! or their handlers (see [`crate::calls`]).

use std::sync::Arc;

use arrow_flight::flight_service_client::FlightServiceClient;
use popbase_common::metrics::Metrics;
use popbase_common::upstream::{self, Upstream};
use popbase_common::{Role, ServiceError};
use popbase_domain::{DivisionLevel, Divisions};
use popbase_export::{DatasetSource, Owner};
use popbase_proto::common::DivisionPath;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::life_events_client::LifeEventsClient;
use popbase_proto::residence::entitlements_client::EntitlementsClient;
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;

use popbase_proto::ops::ops_client::OpsClient;

use crate::calls::{Counted, FeedCalls, LocalHandlers, PermitCalls, RegistryCalls, Via};
use crate::subscriptions::ChangeFeeds;

#[derive(Clone)]
pub struct Sources {
    pub registry: RegistryCalls,
    pub permits: PermitCalls,
    pub entitlements: EntitlementsClient<Upstream>,
    pub feeds: FeedCalls,
    /// Departments' writes, always through the services' gRPC (in process
    /// or over the mesh), so each is handled and counted as the service's call.
    pub life_events: LifeEventsClient<Upstream>,
    pub residence_writes: ResidencePermitsClient<Upstream>,
    pub feeds_ingest: FeedsClient<Upstream>,
    /// The roles' change feeds, which subscriptions follow.
    pub changes: ChangeFeeds,
    /// The internal Flight endpoints, by the role that owns the datasets.
    household_flight: FlightServiceClient<Upstream>,
    residence_flight: FlightServiceClient<Upstream>,
    feeds_flight: FlightServiceClient<Upstream>,
    /// Dataset sources of the roles this process runs (all-in-one): their
    /// batches are read as they are instead of over the Flight endpoint.
    local_exports: Vec<Arc<dyn DatasetSource>>,
    /// Each storage role's Ops, for its store figures (the health page).
    pub ops: Vec<(&'static str, OpsClient<Upstream>)>,
}

/// Flight batches of a wide dataset can exceed tonic's 4 MiB default.
const MAX_FLIGHT_MESSAGE: usize = 64 * 1024 * 1024;

fn flight_client(upstream: Upstream) -> FlightServiceClient<Upstream> {
    FlightServiceClient::new(upstream).max_decoding_message_size(MAX_FLIGHT_MESSAGE)
}

impl Sources {
    /// Clients over the network, connecting on first use.
    pub fn connect_lazy(household: &str, residence: &str, feeds: &str, dialer: &upstream::Dialer) -> Result<Self, String> {
        Ok(Self::over(
            upstream::remote("household", household, dialer)?,
            upstream::remote("residence", residence, dialer)?,
            upstream::remote("feeds", feeds, dialer)?,
        ))
    }

    /// Clients over the given transports (remote or in-process, per role).
    pub fn over(household: Upstream, residence: Upstream, feeds: Upstream) -> Self {
        Self {
            registry: Via::Client(HouseholdRegistryClient::new(household.clone())),
            permits: Via::Client(ResidencePermitsClient::new(residence.clone())),
            entitlements: EntitlementsClient::new(residence.clone()),
            feeds: Via::Client(FeedsClient::new(feeds.clone())),
            life_events: LifeEventsClient::new(household.clone()),
            residence_writes: ResidencePermitsClient::new(residence.clone()),
            feeds_ingest: FeedsClient::new(feeds.clone()),
            changes: ChangeFeeds::over(household.clone(), residence.clone(), feeds.clone()),
            ops: vec![
                ("household", OpsClient::new(household.clone())),
                ("residence", OpsClient::new(residence.clone())),
                ("feeds", OpsClient::new(feeds.clone())),
            ],
            household_flight: flight_client(household),
            residence_flight: flight_client(residence),
            feeds_flight: flight_client(feeds),
            local_exports: Vec::new(),
        }
    }

    /// Calls the handlers of the services this process runs directly
    /// instead of through their clients; each call is counted in its
    /// role's RPC metrics in `metrics`.
    pub fn with_handlers(mut self, handlers: LocalHandlers, metrics: &Arc<Metrics>) -> Self {
        let counted = |role| Counted::new(role, Arc::clone(metrics));
        if let Some(registry) = handlers.registry {
            self.registry = Via::Handlers(registry, counted(Role::Household));
        }
        if let Some(permits) = handlers.permits {
            self.permits = Via::Handlers(permits, counted(Role::Residence));
        }
        if let Some(feeds) = handlers.feeds {
            self.feeds = Via::Handlers(feeds, counted(Role::Feeds));
        }
        self
    }

    /// Also asks the ledger role (at `ledger`) for its store figures.
    pub fn with_ledger_ops(mut self, ledger: Upstream) -> Self {
        self.ops.push(("ledger", OpsClient::new(ledger)));
        self
    }

    /// Reads the datasets `source` owns from it directly (it runs in this
    /// process) rather than over its role's Flight endpoint.
    pub fn with_local_export(mut self, source: Arc<dyn DatasetSource>) -> Self {
        self.local_exports.retain(|s| s.owner() != source.owner());
        self.local_exports.push(source);
        self
    }

    /// The in-process source of `owner`'s datasets, if this process runs it.
    pub fn local_export(&self, owner: Owner) -> Option<Arc<dyn DatasetSource>> {
        self.local_exports.iter().find(|s| s.owner() == owner).cloned()
    }

    /// The Flight endpoint of the role that owns `owner`'s datasets.
    pub fn flight(&self, owner: Owner) -> FlightServiceClient<Upstream> {
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

/// County, street and committee names of a committee code: walked up from
/// the committee (three places of every enrollment answer name one).
pub fn division_path(committee_code: &str) -> DivisionPath {
    let divisions = Divisions::embedded();
    let mut path = DivisionPath::default();
    let mut next = divisions.get(committee_code);
    while let Some(division) = next {
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
        next = division.parent.as_deref().and_then(|p| divisions.get(p));
    }
    path
}
