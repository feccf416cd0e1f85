//! The internal Flight service a data-owning role serves its datasets on.
//! Only the gateway calls it (the NetworkPolicy admits nothing else); it
//! applies filters but no policy: authorisation, de-identification and
//! audit happen in the gateway, on the one answer path.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket as FlightTicket,
};
use arrow_schema::SchemaRef;
use futures::stream;
use futures::{StreamExt, TryStreamExt};
use popbase_common::ServiceError;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::dataset::{self, Dataset};
use crate::encode::flight_stream;
use crate::source::{self, DatasetSource};
use crate::ticket::Ticket;

/// The dataset a descriptor names: a path `["persons"]` or a ticket as command.
pub fn descriptor_ticket(descriptor: &FlightDescriptor) -> Result<(Ticket, &'static Dataset), ServiceError> {
    if !descriptor.cmd.is_empty() {
        return Ticket::parse(&descriptor.cmd);
    }
    let name = descriptor.path.first().map(String::as_str).unwrap_or_default();
    let ticket = Ticket::for_dataset(name);
    let dataset = ticket.check()?;
    Ok((ticket, dataset))
}

/// A FlightInfo for `ticket` with `schema` and a single endpoint.
pub fn flight_info(ticket: &Ticket, dataset: &Dataset, schema: &arrow_schema::Schema) -> Result<FlightInfo, Status> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("encoding a schema: {e}")))?
        .with_descriptor(FlightDescriptor::new_path(vec![dataset.name.to_string()]))
        .with_endpoint(FlightEndpoint::new().with_ticket(FlightTicket::new(ticket.to_bytes())))
        .with_ordered(true)
        .with_app_metadata(dataset.title.as_bytes().to_vec()))
}

pub fn schema_result(schema: &arrow_schema::Schema) -> Result<SchemaResult, Status> {
    SchemaAsIpc::new(schema, &Default::default())
        .try_into()
        .map_err(|e: arrow_schema::ArrowError| Status::internal(format!("encoding a schema: {e}")))
}

pub struct SourceFlight<S> {
    source: Arc<S>,
}

impl<S: DatasetSource> SourceFlight<S> {
    /// The Flight service over `source`, bodies that do not decode refused
    /// INVALID_ARGUMENT (arrow-flight's generated server says INTERNAL).
    pub fn server(source: Arc<S>) -> popbase_common::malformed::MalformedAsInvalid<FlightServiceServer<Self>> {
        popbase_common::malformed::MalformedAsInvalid(FlightServiceServer::new(Self { source }))
    }

    fn owned(&self, dataset: &'static Dataset) -> Result<&'static Dataset, Status> {
        if dataset.owner == self.source.owner() {
            Ok(dataset)
        } else {
            Err(Status::not_found(format!("dataset {} is served by another role", dataset.name)))
        }
    }

    fn schema(&self, dataset: &'static Dataset) -> SchemaRef {
        self.source.schema(dataset)
    }
}

type Boxed<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

fn unimplemented<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!("{what} is not offered: exports are read-only")))
}

#[tonic::async_trait]
impl<S: DatasetSource> FlightService for SourceFlight<S> {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<ActionType>;
    type DoExchangeStream = Boxed<FlightData>;

    async fn handshake(&self, _: Request<Streaming<HandshakeRequest>>) -> Result<Response<Self::HandshakeStream>, Status> {
        unimplemented("Handshake")
    }

    async fn list_flights(&self, _: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        let mut infos = Vec::new();
        for dataset in dataset::owned_by(self.source.owner()) {
            infos.push(flight_info(&Ticket::for_dataset(dataset.name), dataset, &self.schema(dataset)));
        }
        Ok(Response::new(stream::iter(infos).boxed()))
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let (ticket, dataset) = descriptor_ticket(request.get_ref())?;
        let dataset = self.owned(dataset)?;
        Ok(Response::new(flight_info(&ticket, dataset, &self.schema(dataset))?))
    }

    async fn poll_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        unimplemented("PollFlightInfo")
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let (_, dataset) = descriptor_ticket(request.get_ref())?;
        let dataset = self.owned(dataset)?;
        Ok(Response::new(schema_result(&self.schema(dataset))?))
    }

    async fn do_get(&self, request: Request<FlightTicket>) -> Result<Response<Self::DoGetStream>, Status> {
        let (ticket, dataset) = Ticket::parse(&request.get_ref().ticket)?;
        let dataset = self.owned(dataset)?;
        let (schema, batches) = source::start(self.source.clone(), ticket, dataset).await?;
        let batches = ReceiverStream::new(batches).map_err(|e: ServiceError| FlightError::Tonic(Box::new(Status::from(e))));
        Ok(Response::new(flight_stream(schema, batches).boxed()))
    }

    async fn do_put(&self, _: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        unimplemented("DoPut")
    }

    async fn do_exchange(&self, _: Request<Streaming<FlightData>>) -> Result<Response<Self::DoExchangeStream>, Status> {
        unimplemented("DoExchange")
    }

    async fn do_action(&self, _: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        unimplemented("DoAction")
    }

    async fn list_actions(&self, _: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(stream::empty().boxed()))
    }
}
