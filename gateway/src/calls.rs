//! How the gateway calls the services it fetches from: through their
//! generated gRPC clients, or, when this process runs the service too
//! (all-in-one), straight into the service's own handlers.
//!
//! A direct call runs the same handler with the same request message, so it
//! validates and answers exactly as over gRPC; what it skips is the
//! transport: encoding and decoding the messages, building HTTP/2 requests,
//! the router. On the person query those were about a fifth of the
//! server's CPU (two fetches per answer). Direct calls are still counted
//! in the callee role's RPC metrics under the gRPC method's path, so
//! `/metrics` reads the same either way.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use popbase_common::Role;
use popbase_common::metrics::Metrics;
use popbase_common::packed::PackedStream;
use popbase_common::upstream::Upstream;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::feeds::feeds_server::Feeds;
use popbase_proto::feeds::{CheckInsuranceRequest, CheckInsuranceResponse, RecordsOfRequest, RecordsOfResponse, StreamInsuredRequest};
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::household_registry_server::HouseholdRegistry;
use popbase_proto::household::{
    GetPersonsRequest, GetPersonsResponse, LocateAddressRequest, LocateAddressResponse, StreamPersonIdsRequest,
};
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use popbase_proto::residence::residence_permits_server::ResidencePermits;
use popbase_proto::residence::{
    GetRegistrationsRequest, GetRegistrationsResponse, GetResidentRequest, Resident, StreamPermitHolderIdsRequest,
};
use tonic::{Request, Response, Status};

/// One service as the gateway reaches it.
pub enum Via<Handlers: ?Sized, Client> {
    /// Its generated client, over the network or into its router.
    Client(Client),
    /// Its handlers, running in this process.
    Handlers(Arc<Handlers>, Counted),
}

impl<H: ?Sized, C: Clone> Clone for Via<H, C> {
    fn clone(&self) -> Self {
        match self {
            Via::Client(client) => Via::Client(client.clone()),
            Via::Handlers(handlers, counted) => Via::Handlers(Arc::clone(handlers), counted.clone()),
        }
    }
}

/// Where a direct call is counted: the callee role's RPC metrics.
#[derive(Clone)]
pub struct Counted {
    role: Role,
    metrics: Arc<Metrics>,
}

impl Counted {
    pub fn new(role: Role, metrics: Arc<Metrics>) -> Self {
        Self { role, metrics }
    }

    async fn call<T>(&self, method: &str, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        let started = Instant::now();
        let result = call.await;
        let code = match &result {
            Ok(_) => "0".to_string(),
            Err(status) => (status.code() as i32).to_string(),
        };
        self.metrics.observe(self.role, method, &code, started.elapsed());
        result
    }
}

/// The household registry as the gateway calls it.
pub type RegistryCalls = Via<RegistryHandlers, HouseholdRegistryClient<Upstream>>;
/// The residence permits service as the gateway calls it.
pub type PermitCalls = Via<PermitHandlers, ResidencePermitsClient<Upstream>>;
/// The feeds service as the gateway calls it.
pub type FeedCalls = Via<FeedHandlers, FeedsClient<Upstream>>;
/// The registry's handlers, their one stream type named.
pub type RegistryHandlers = dyn HouseholdRegistry<StreamPersonIdsStream = PackedStream>;
/// The residence service's handlers, their one stream type named.
pub type PermitHandlers = dyn ResidencePermits<StreamPermitHolderIdsStream = PackedStream>;
/// The feeds' handlers, their one stream type named.
pub type FeedHandlers = dyn Feeds<StreamInsuredStream = PackedStream>;

/// The unary methods the gateway uses, each taking its request message and
/// answering like the generated client.
macro_rules! unary {
    ($calls:ty, $service:literal { $($method:ident($request:ty) -> $response:ty = $name:literal;)* }) => {
        impl $calls {
            $(
                pub async fn $method(&self, request: $request) -> Result<Response<$response>, Status> {
                    match self {
                        Via::Client(client) => client.clone().$method(request).await,
                        Via::Handlers(handlers, counted) => {
                            counted.call(concat!("/", $service, "/", $name), handlers.$method(Request::new(request))).await
                        }
                    }
                }
            )*
        }
    };
}

unary!(RegistryCalls, "popbase.household.v1.HouseholdRegistry" {
    get_persons(GetPersonsRequest) -> GetPersonsResponse = "GetPersons";
    locate_address(LocateAddressRequest) -> LocateAddressResponse = "LocateAddress";
});

unary!(PermitCalls, "popbase.residence.v1.ResidencePermits" {
    get_resident(GetResidentRequest) -> Resident = "GetResident";
    get_registrations(GetRegistrationsRequest) -> GetRegistrationsResponse = "GetRegistrations";
});

unary!(FeedCalls, "popbase.feeds.v1.Feeds" {
    check_insurance(CheckInsuranceRequest) -> CheckInsuranceResponse = "CheckInsurance";
    records_of(RecordsOfRequest) -> RecordsOfResponse = "RecordsOf";
});

/// The server-streaming methods of packed ID numbers the gateway uses,
/// each answering one stream type however it is reached.
macro_rules! packed_stream {
    ($calls:ty, $service:literal { $($method:ident($request:ty) = $name:literal;)* }) => {
        impl $calls {
            $(
                pub async fn $method(&self, request: $request) -> Result<PackedStream, Status> {
                    match self {
                        Via::Client(client) => {
                            let stream = client.clone().$method(request).await?.into_inner();
                            Ok(Box::pin(stream) as PackedStream)
                        }
                        Via::Handlers(handlers, counted) => counted
                            .call(concat!("/", $service, "/", $name), handlers.$method(Request::new(request)))
                            .await
                            .map(Response::into_inner),
                    }
                }
            )*
        }
    };
}

packed_stream!(RegistryCalls, "popbase.household.v1.HouseholdRegistry" {
    stream_person_ids(StreamPersonIdsRequest) = "StreamPersonIds";
});

packed_stream!(PermitCalls, "popbase.residence.v1.ResidencePermits" {
    stream_permit_holder_ids(StreamPermitHolderIdsRequest) = "StreamPermitHolderIds";
});

packed_stream!(FeedCalls, "popbase.feeds.v1.Feeds" {
    stream_insured(StreamInsuredRequest) = "StreamInsured";
});

/// The handlers of the services this process runs, for the gateway to call
/// directly (see [`crate::sources::Sources::with_handlers`]).
#[derive(Clone, Default)]
pub struct LocalHandlers {
    pub registry: Option<Arc<RegistryHandlers>>,
    pub permits: Option<Arc<PermitHandlers>>,
    pub feeds: Option<Arc<FeedHandlers>>,
}
