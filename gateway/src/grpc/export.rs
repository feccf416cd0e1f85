//! Bulk export over Arrow Flight: the big-data bureau's way in, on the
//! gateway's port and through the same gate as every other answer.
//!
//! * `ListFlights`: the datasets the caller is approved for, each with the
//!   schema it will receive (already de-identified) and a ready ticket;
//! * `GetFlightInfo` / `GetSchema`: the same for one dataset (descriptor
//!   path `["persons"]` or a JSON ticket as command);
//! * `DoGet`: authenticate → authorise (catalogue `Export.<dataset>`,
//!   approval, columns, purpose, quota; exports rest on their legal basis)
//!   → fetch the columns the release needs from the owning role's Flight
//!   endpoint (one RocksDB snapshot) → de-identify each batch to the
//!   approval → audit → last batch.
//!
//! An export fails closed: a durable STARTED record before anything is
//! read, a BATCH record naming the subjects of each group of batches before
//! they leave, COMPLETED (rows, digest) or ENDED_EARLY after (see
//! [`ExportTrail`] and [`super::export_pump`]). With the ledger down no row
//! leaves. Listing and schemas carry no personal data and are audited only
//! when refused.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, PollInfo,
    PutResult, SchemaResult, Ticket as FlightTicket,
};
use arrow_schema::{Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt, stream};
use popbase_common::ServiceError;
use popbase_export::encode::flight_stream;
use popbase_export::flight::{descriptor_ticket, flight_info, schema_result};
use popbase_export::ticket::check_purpose;
use popbase_export::{DATASETS, Dataset, Released, Ticket};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::export_pump::{Batches, pump};
use crate::catalogue::{Approval, interface::EXPORT};
use crate::denial::{Denial, reason};
use crate::export_trail::{ExportTrail, ended};
use crate::gate::{Ask, Caller, Gate};
use crate::sources::{Sources, upstream};

/// De-identified batches waiting for a slow reader.
const SEND_AHEAD: usize = 4;

pub struct ExportService {
    gate: Arc<Gate>,
    sources: Sources,
    /// Longest either end of an export may go quiet: the owning role
    /// between batches, the caller between reads.
    idle: Duration,
}

/// A ticket completed for a caller and the schema it releases.
struct Described {
    ticket: Ticket,
    schema: SchemaRef,
}

impl ExportService {
    pub fn new(gate: Arc<Gate>, sources: Sources, idle: Duration) -> Self {
        Self { gate, sources, idle }
    }

    pub fn server(self) -> FlightServiceServer<Self> {
        FlightServiceServer::new(self)
    }

    fn approval(&self, caller: &Caller, dataset: &Dataset) -> Option<Arc<Approval>> {
        self.gate.catalogue().approval(&caller.department, dataset.interface).cloned()
    }

    /// The dataset's columns as its owning role builds them.
    async fn upstream_schema(&self, dataset: &'static Dataset) -> Result<Schema, ServiceError> {
        if let Some(source) = self.sources.local_export(dataset.owner) {
            return Ok(source.schema(dataset).as_ref().clone());
        }
        let descriptor = FlightDescriptor::new_path(vec![dataset.name.to_string()]);
        let result = self
            .sources
            .flight(dataset.owner)
            .get_schema(descriptor)
            .await
            .map_err(|s| upstream("export source", s))?;
        Schema::try_from(result.get_ref()).map_err(|e| ServiceError::Internal(format!("export schema: {e}")))
    }

    /// `ticket` completed for `caller`: the approval must exist and allow the
    /// level asked for; purpose (when the approval has just one) and level
    /// filled in. Refusals are audited.
    async fn complete(&self, caller: &Caller, mut ticket: Ticket, dataset: &'static Dataset) -> Result<(Ticket, Arc<Approval>), Status> {
        let Some(approval) = self.approval(caller, dataset) else {
            let denial = Denial::new(
                reason::NOT_APPROVED,
                format!("{} is not approved for {}", dataset.interface, caller.department),
            );
            return Err(self.gate.refuse(caller, dataset.interface, &ticket.purpose, denial.into()).await);
        };
        let level = ticket.level.unwrap_or(approval.deidentification);
        if level < approval.deidentification {
            let denial = Denial::new(
                reason::NOT_APPROVED,
                format!("{} is approved {} only", dataset.interface, approval.deidentification.as_str()),
            );
            return Err(self.gate.refuse(caller, dataset.interface, &ticket.purpose, denial.into()).await);
        }
        if let Some(column) = ticket.columns.iter().find(|c| !approval.fields.contains(*c)) {
            let denial = Denial::new(
                reason::NOT_APPROVED,
                format!("column {column} of {} is not approved for {}", dataset.interface, caller.department),
            );
            return Err(self.gate.refuse(caller, dataset.interface, &ticket.purpose, denial.into()).await);
        }
        if ticket.purpose.is_empty()
            && let [only] = approval.purposes.as_slice()
        {
            ticket.purpose = only.clone();
        }
        ticket.level = Some(level);
        Ok((ticket, approval))
    }

    /// The release of `ticket` from batches of `schema`: the columns it
    /// names (or every one of `approved`), de-identified at its level. A
    /// column named that the level drops is refused rather than left out.
    fn release(&self, schema: &Schema, ticket: &Ticket, approved: &BTreeSet<String>) -> Result<Released, ServiceError> {
        let wanted = if ticket.columns.is_empty() {
            approved.clone()
        } else {
            ticket.columns.iter().filter(|c| approved.contains(*c)).cloned().collect()
        };
        let level = ticket.level.unwrap_or_default();
        let released = Released::new(schema, level, &wanted, self.gate.export_pseudonyms());
        if let Some(column) = ticket.columns.iter().find(|c| !released.releases(c)) {
            let why = match schema.field_with_name(column) {
                Ok(_) => format!("{column} is dropped at the {} level", level.as_str()),
                Err(_) => format!("the dataset has no column {column}"),
            };
            return Err(ServiceError::invalid("ticket.columns", why));
        }
        Ok(released)
    }

    /// What `caller` would receive for `ticket`, and the columns to ask the
    /// owning role for.
    async fn plan(&self, caller: &Caller, ticket: Ticket, dataset: &'static Dataset) -> Result<(Ticket, Released), Status> {
        let (ticket, approval) = self.complete(caller, ticket, dataset).await?;
        let released = match self.upstream_schema(dataset).await {
            Ok(schema) => self.release(&schema, &ticket, &approval.fields),
            Err(e) => Err(e),
        };
        match released {
            Ok(released) => Ok((ticket, released)),
            Err(e) => Err(self.gate.refuse(caller, dataset.interface, &ticket.purpose, e).await),
        }
    }

    /// What `caller` would receive for `ticket` (listing and schemas).
    async fn describe(&self, caller: &Caller, ticket: Ticket, dataset: &'static Dataset) -> Result<Described, Status> {
        let (ticket, released) = self.plan(caller, ticket, dataset).await?;
        Ok(Described {
            ticket,
            schema: released.schema(),
        })
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.gate.authenticate(request, EXPORT).await
    }

    async fn parse(
        &self,
        caller: &Caller,
        parsed: Result<(Ticket, &'static Dataset), ServiceError>,
    ) -> Result<(Ticket, &'static Dataset), Status> {
        match parsed {
            Ok(parsed) => Ok(parsed),
            Err(e) => Err(self.gate.refuse(caller, EXPORT, "", e).await),
        }
    }

    /// Authorises `ticket` for the caller, starts its audit trail (the
    /// STARTED record, naming the `released` columns) and opens the owning
    /// role's stream of the dataset's `columns`.
    async fn open(
        &self,
        caller: &Caller,
        ticket: &Ticket,
        plan: &Released,
        dataset: &'static Dataset,
    ) -> Result<(ExportTrail, Batches, SchemaRef), Status> {
        if ticket.purpose.is_empty() {
            let missing = ServiceError::invalid("ticket.purpose", "name the purpose of the export (a catalogue purpose code)");
            return Err(self.gate.refuse(caller, dataset.interface, "", missing).await);
        }
        let admission = self
            .gate
            .authorise(
                caller,
                Ask {
                    interface: dataset.interface,
                    purpose: &ticket.purpose,
                    subjects: &[],
                    units: 1,
                    needs: &[],
                },
            )
            .await?;
        let trail = ExportTrail::start(self.gate.clone(), admission, ticket, plan.fields()).await?;
        match self.open_upstream(ticket, plan.inputs(), dataset).await {
            Ok((batches, schema)) => Ok((trail, batches, schema)),
            Err(error) => {
                trail.ended_early(0, ended::FETCH_FAILED).await;
                Err(error.into())
            }
        }
    }

    /// The owning role's batches of `columns` for `ticket`, after its schema.
    async fn open_upstream(
        &self,
        ticket: &Ticket,
        columns: Vec<String>,
        dataset: &'static Dataset,
    ) -> Result<(Batches, SchemaRef), ServiceError> {
        if let Some(source) = self.sources.local_export(dataset.owner) {
            let (schema, batches) = popbase_export::source::start(source, ticket.upstream(columns), dataset)
                .await
                .map_err(|e| upstream("export source", e.into()))?;
            // Failures read as they would from a remote role's stream.
            let batches = ReceiverStream::new(batches).map_err(|e| upstream("export source", e.into()));
            return Ok((batches.boxed(), schema));
        }
        let mut client = self.sources.flight(dataset.owner);
        let request = FlightTicket::new(ticket.upstream(columns).to_bytes());
        let stream = match tokio::time::timeout(self.idle, client.do_get(request)).await {
            Ok(Ok(response)) => response.into_inner().map_err(FlightError::from),
            Ok(Err(status)) => return Err(upstream("export source", status)),
            Err(_) => return Err(self.silent()),
        };
        let mut decoder = FlightDataDecoder::new(stream);
        // The first message is the schema, with the snapshot's sequence.
        loop {
            match tokio::time::timeout(self.idle, decoder.next()).await {
                Ok(Some(Ok(message))) => {
                    if let DecodedPayload::Schema(schema) = message.payload {
                        return Ok((record_batches(decoder), schema));
                    }
                }
                Ok(Some(Err(e))) => return Err(flight_failure(e)),
                Ok(None) => return Err(ServiceError::Unavailable("the export source sent no schema".into())),
                Err(_) => return Err(self.silent()),
            }
        }
    }

    fn silent(&self) -> ServiceError {
        ServiceError::Unavailable(format!("the export source sent nothing for {} s", self.idle.as_secs()))
    }
}

fn flight_failure(error: FlightError) -> ServiceError {
    match error {
        FlightError::Tonic(status) => upstream("export source", *status),
        other => upstream("export source", Status::internal(other.to_string())),
    }
}

/// The record batches of a Flight stream whose schema has been read.
fn record_batches(decoder: FlightDataDecoder) -> Batches {
    decoder
        .filter_map(|message| {
            futures::future::ready(match message {
                Ok(message) => match message.payload {
                    DecodedPayload::RecordBatch(batch) => Some(Ok(batch)),
                    _ => None,
                },
                Err(e) => Some(Err(flight_failure(e))),
            })
        })
        .boxed()
}

type Boxed<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

fn not_offered<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not offered: exports are read-only and authenticated by certificate or token"
    )))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListCriteria {
    #[serde(default)]
    purpose: String,
}

#[tonic::async_trait]
impl FlightService for ExportService {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<ActionType>;
    type DoExchangeStream = Boxed<FlightData>;

    async fn handshake(&self, _: Request<Streaming<HandshakeRequest>>) -> Result<Response<Self::HandshakeStream>, Status> {
        not_offered("Handshake")
    }

    /// Criteria: empty, or `{"purpose": "..."}` to have it in every ticket.
    async fn list_flights(&self, request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        let caller = self.caller(&request).await?;
        let expression = &request.get_ref().expression;
        let criteria: ListCriteria = if expression.is_empty() {
            ListCriteria::default()
        } else {
            let parsed = serde_json::from_slice::<ListCriteria>(expression)
                .map_err(|e| {
                    let problem = popbase_common::validate::json_problem(&e);
                    ServiceError::invalid("criteria", format!("expected {{\"purpose\": \"...\"}}: {problem}"))
                })
                .and_then(|c| check_purpose("criteria.purpose", &c.purpose).map(|()| c));
            match parsed {
                Ok(criteria) => criteria,
                Err(bad) => return Err(self.gate.refuse(&caller, EXPORT, "", bad).await),
            }
        };
        let mut infos = Vec::new();
        for dataset in DATASETS.iter().filter(|d| self.approval(&caller, d).is_some()) {
            let ticket = Ticket {
                purpose: criteria.purpose.clone(),
                ..Ticket::for_dataset(dataset.name)
            };
            let described = self.describe(&caller, ticket, dataset).await?;
            infos.push(flight_info(&described.ticket, dataset, &described.schema));
        }
        Ok(Response::new(stream::iter(infos).boxed()))
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request).await?;
        let (ticket, dataset) = self.parse(&caller, descriptor_ticket(request.get_ref())).await?;
        let described = self.describe(&caller, ticket, dataset).await?;
        Ok(Response::new(flight_info(&described.ticket, dataset, &described.schema)?))
    }

    async fn poll_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        not_offered("PollFlightInfo")
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let caller = self.caller(&request).await?;
        let (ticket, dataset) = self.parse(&caller, descriptor_ticket(request.get_ref())).await?;
        let described = self.describe(&caller, ticket, dataset).await?;
        Ok(Response::new(schema_result(&described.schema)?))
    }

    async fn do_get(&self, request: Request<FlightTicket>) -> Result<Response<Self::DoGetStream>, Status> {
        let caller = self.caller(&request).await?;
        let (ticket, dataset) = self.parse(&caller, Ticket::parse(&request.get_ref().ticket)).await?;
        let (ticket, plan) = self.plan(&caller, ticket, dataset).await?;
        let (trail, batches, upstream_schema) = self.open(&caller, &ticket, &plan, dataset).await?;
        // The owning role sent the columns asked for, with its snapshot's
        // sequence in the metadata: the release is planned again on those.
        let released = match self.release(&upstream_schema, &ticket, trail.admission().fields()) {
            Ok(released) => released,
            Err(e) => {
                trail.ended_early(0, ended::FETCH_FAILED).await;
                return Err(e.into());
            }
        };
        let schema = released.schema();
        let (tx, rx) = mpsc::channel(SEND_AHEAD);
        tokio::spawn(pump(trail, released, batches, self.idle, tx).instrument(tracing::Span::current()));
        Ok(Response::new(flight_stream(schema, ReceiverStream::new(rx)).boxed()))
    }

    async fn do_put(&self, _: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        not_offered("DoPut")
    }

    async fn do_exchange(&self, _: Request<Streaming<FlightData>>) -> Result<Response<Self::DoExchangeStream>, Status> {
        not_offered("DoExchange")
    }

    async fn do_action(&self, _: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        not_offered("DoAction")
    }

    async fn list_actions(&self, _: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(stream::empty().boxed()))
    }
}
