//! Thin gRPC adapter of `Feeds`: the ingest stream (see [`crate::ingest_stream`]),
//! as-of look-ups, unmatched records.

use popbase_common::packed::{self, PackedStream};
use popbase_common::{ServiceError, validate};
use popbase_proto::feeds::feeds_server::{Feeds, FeedsServer};
use popbase_proto::feeds::{
    CheckEnrolledRequest, CheckEnrolledResponse, CheckInsuranceRequest, CheckInsuranceResponse, FeedRecord, IngestSummary,
    ListUnmatchedRequest, ListUnmatchedResponse, RecordsOfRequest, RecordsOfResponse, Source, StreamInsuredRequest,
};
use tonic::{Request, Response, Status, Streaming};

use crate::directory::PersonDirectory;
use crate::{FeedStore, ingest_stream};

/// Insurance checks answered on the calling task rather than the blocking pool.
const INLINE_CHECKS: usize = 16;

pub struct FeedsService {
    feeds: FeedStore,
    directory: PersonDirectory,
}

impl FeedsService {
    pub fn new(feeds: FeedStore, directory: PersonDirectory) -> Self {
        Self { feeds, directory }
    }

    pub fn into_server(self) -> FeedsServer<Self> {
        FeedsServer::new(self)
    }
}

/// The actor of a feed without the gateway's `popbase-actor` (a load from
/// inside the platform).
const DEFAULT_ACTOR: &str = "feeds-ingest";

#[tonic::async_trait]
impl Feeds for FeedsService {
    async fn ingest(&self, request: Request<Streaming<FeedRecord>>) -> Result<Response<IngestSummary>, Status> {
        let actor = popbase_common::actor::of(request.metadata(), DEFAULT_ACTOR)?;
        let summary = ingest_stream::ingest(self.feeds.clone(), self.directory.clone(), actor, request.into_inner()).await?;
        tracing::info!(
            received = summary.received,
            accepted = summary.accepted,
            unmatched = summary.unmatched,
            rejected = summary.rejected,
            "feed ingested"
        );
        Ok(Response::new(summary))
    }

    async fn records_of(&self, request: Request<RecordsOfRequest>) -> Result<Response<RecordsOfResponse>, Status> {
        let r = request.into_inner();
        let id = validate::id_number("id_number", &r.id_number, popbase_domain::clock::today())?;
        let at = match r.as_of_unix_millis {
            0 => i64::MAX,
            t if t < 0 => return Err(ServiceError::invalid("as_of_unix_millis", "must not be negative").into()),
            t => t,
        };
        let feeds = self.feeds.clone();
        let records = tokio::task::spawn_blocking(move || feeds.records_of_at(id.as_str(), at))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(ServiceError::from)?;
        Ok(Response::new(RecordsOfResponse { records }))
    }

    async fn check_insurance(&self, request: Request<CheckInsuranceRequest>) -> Result<Response<CheckInsuranceResponse>, Status> {
        let ids = request.into_inner().id_numbers;
        validate::id_batch("id_numbers", &ids)?;
        let inline = ids.len() <= INLINE_CHECKS;
        let feeds = self.feeds.clone();
        let check = move || feeds.medical_insurance_active_many(&ids);
        // A few look-ups (a person query) take microseconds: handing them to
        // the blocking pool would cost more in thread wake-ups than it saves.
        let active = if inline {
            check()
        } else {
            tokio::task::spawn_blocking(check)
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))?
        }
        .map_err(ServiceError::from)?;
        Ok(Response::new(CheckInsuranceResponse { active }))
    }

    async fn check_enrolled(&self, request: Request<CheckEnrolledRequest>) -> Result<Response<CheckEnrolledResponse>, Status> {
        let ids = request.into_inner().id_numbers;
        validate::id_batch("id_numbers", &ids)?;
        let feeds = self.feeds.clone();
        let enrolled = tokio::task::spawn_blocking(move || feeds.enrolled_many(&ids))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(ServiceError::from)?;
        Ok(Response::new(CheckEnrolledResponse { enrolled }))
    }

    type StreamInsuredStream = PackedStream;

    async fn stream_insured(&self, _request: Request<StreamInsuredRequest>) -> Result<Response<PackedStream>, Status> {
        let feeds = self.feeds.clone();
        Ok(Response::new(packed::stream_from_scan(move |packer| {
            packer.expect(feeds.insured_estimate()?);
            feeds.for_each_insured(|id| packer.push(id))
        })))
    }

    async fn list_unmatched(&self, request: Request<ListUnmatchedRequest>) -> Result<Response<ListUnmatchedResponse>, Status> {
        let r = request.into_inner();
        if r.source != 0 {
            validate::enumeration::<Source>("source", r.source)?;
        }
        let (size, after) = validate::page("page", r.page.as_ref())?;
        let (records, last) = self.feeds.unmatched(r.source, after.as_deref(), size).map_err(ServiceError::from)?;
        Ok(Response::new(ListUnmatchedResponse {
            records,
            next_page_token: last.map(|k| validate::encode_page_token(&k)).unwrap_or_default(),
        }))
    }
}
