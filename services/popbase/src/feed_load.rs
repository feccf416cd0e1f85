//! `popbase feed-load`: streams a generated city's department feeds in and
//! reports the ingest rate, either straight into a feeds role
//! (`Feeds.Ingest`, as the gateway forwards them; over the mesh when the
//! config has a gateway certificate) or through the gateway the way the
//! departments send them (`DepartmentFeeds.Submit`, one submission per
//! department, each with its own token). Against a store that already holds
//! the same city (`popbase gen` with the same seed), `--newer-by-ms` makes
//! every record a newer version — a full monthly refresh: match, history, upsert.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use popbase_common::Config;
use popbase_common::upstream::Dialer;
use popbase_gateway::catalogue::{Catalogue, interface};
use popbase_gateway::interfaces::writes::{MAX_RECORDS_PER_MESSAGE, feed_kind};
use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::feeds::{FeedRecord, IngestSummary};
use popbase_proto::gateway::FeedSubmission;
use popbase_proto::gateway::department_feeds_client::DepartmentFeedsClient;
use popbase_residence::permits::ResidentRecords;
use popbase_synth::{CityGenerator, CityParams, CitySink};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Where the records go.
pub enum Target {
    /// A feeds role's `Feeds.Ingest`.
    Feeds(String),
    /// The gateway's `DepartmentFeeds.Submit`.
    Gateway(String),
}

/// Which city to load, and how much newer than the stored one.
pub struct Load {
    pub city: String,
    pub persons: u64,
    pub seed: u64,
    pub newer_by_ms: i64,
}

/// Hands each generated feed chunk to the stream; drops the rest.
struct FeedForwarder {
    sender: mpsc::Sender<FeedRecord>,
    newer_by_ms: i64,
}

impl CitySink for FeedForwarder {
    fn households(&mut self, _: Vec<HouseholdWithMembers>) -> Result<(), String> {
        Ok(())
    }

    fn residents(&mut self, _: Vec<ResidentRecords>) -> Result<(), String> {
        Ok(())
    }

    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String> {
        for mut record in chunk {
            record.as_of_unix_millis += self.newer_by_ms;
            self.sender
                .blocking_send(record)
                .map_err(|_| "the ingest stream closed".to_string())?;
        }
        Ok(())
    }
}

pub async fn run(config: &Config, target: Target, load: Load) -> anyhow::Result<()> {
    let generator = CityGenerator::new(CityParams::new(&load.city, load.persons, load.seed))?;
    let started = Instant::now();
    let summary = match target {
        Target::Feeds(url) => {
            let dialer = Dialer::from_config(&config.mesh).context("loading the mesh certificate")?;
            let channel = dialer.channel("feeds", &url).map_err(anyhow::Error::msg)?;
            let mut client = FeedsClient::new(channel).max_decoding_message_size(256 << 20);
            let (sender, receiver) = mpsc::channel(10_000);
            let newer_by_ms = load.newer_by_ms;
            let producer = tokio::task::spawn_blocking(move || generator.run(&mut FeedForwarder { sender, newer_by_ms }));
            let summary = client.ingest(ReceiverStream::new(receiver)).await.context("ingest")?.into_inner();
            producer.await.context("generator task")??;
            summary
        }
        Target::Gateway(url) => through_gateway(config, &url, generator, load.newer_by_ms).await?,
    };
    report(&summary, started.elapsed().as_secs_f64());
    Ok(())
}

/// Routes each generated record to the submission of the department the
/// catalogue approves for its kind, in messages of up to 1,024 records.
struct DepartmentRouter {
    /// Record kind → the department's message stream.
    by_kind: HashMap<String, mpsc::Sender<FeedSubmission>>,
    newer_by_ms: i64,
}

const PURPOSE: &str = "DEPARTMENT_FEED";
const OFFICER: &str = "feed-load";

impl CitySink for DepartmentRouter {
    fn households(&mut self, _: Vec<HouseholdWithMembers>) -> Result<(), String> {
        Ok(())
    }

    fn residents(&mut self, _: Vec<ResidentRecords>) -> Result<(), String> {
        Ok(())
    }

    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String> {
        let mut batches: HashMap<&'static str, Vec<FeedRecord>> = HashMap::new();
        for mut record in chunk {
            record.as_of_unix_millis += self.newer_by_ms;
            let kind = feed_kind(&record).ok_or("a generated record without payload")?;
            batches.entry(kind).or_default().push(record);
        }
        for (kind, records) in batches {
            let sender = self
                .by_kind
                .get(kind)
                .ok_or_else(|| format!("no department is approved for '{kind}' records"))?;
            for part in records.chunks(MAX_RECORDS_PER_MESSAGE) {
                let message = FeedSubmission {
                    purpose: PURPOSE.into(),
                    officer_id: OFFICER.into(),
                    records: part.to_vec(),
                };
                sender.blocking_send(message).map_err(|_| "a submission closed".to_string())?;
            }
        }
        Ok(())
    }
}

/// One submission per department approved for SubmitFeed, concurrently,
/// each with a token minted from the gateway's key; their summaries added up.
async fn through_gateway(config: &Config, url: &str, generator: CityGenerator, newer_by_ms: i64) -> anyhow::Result<IngestSummary> {
    let catalogue = Catalogue::load(&config.gateway.catalogue)?;
    let key = popbase_gateway::role::read_or_create_key(&config.token_key_path())?;
    let channel = Dialer::plaintext().channel("gateway", url).map_err(anyhow::Error::msg)?;
    let now = chrono::Utc::now().timestamp();
    let mut by_kind = HashMap::new();
    let mut calls = Vec::new();
    for department in catalogue.departments() {
        let Some(approval) = catalogue.approval(&department.id, interface::SUBMIT_FEED) else {
            continue;
        };
        let (sender, receiver) = mpsc::channel(64);
        for kind in &approval.fields {
            by_kind.insert(kind.clone(), sender.clone());
        }
        let token = popbase_gateway::auth::mint_token(&key, &department.id, now, now + 3600);
        let mut request = tonic::Request::new(ReceiverStream::new(receiver));
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
        let mut client = DepartmentFeedsClient::new(channel.clone()).max_decoding_message_size(256 << 20);
        let department = department.id.clone();
        calls.push(tokio::spawn(async move {
            client
                .submit(request)
                .await
                .map(|r| r.into_inner())
                .with_context(|| format!("{department}'s submission"))
        }));
    }
    let producer = tokio::task::spawn_blocking(move || generator.run(&mut DepartmentRouter { by_kind, newer_by_ms }));
    let produced = producer.await.context("generator task")?;
    let mut total = IngestSummary::default();
    for call in calls {
        let summary = call.await.context("submission task")??;
        total.received += summary.received;
        total.accepted += summary.accepted;
        total.unmatched += summary.unmatched;
        total.duplicates += summary.duplicates;
        total.stale += summary.stale;
        total.rejected += summary.rejected;
        total.results.extend(summary.results);
    }
    produced?;
    Ok(total)
}

fn report(summary: &IngestSummary, seconds: f64) {
    println!(
        "feed-load: {} records in {seconds:.1} s ({:.0} records/s): {} accepted, {} unmatched, {} duplicates, {} stale, {} rejected",
        summary.received,
        summary.received as f64 / seconds.max(1e-9),
        summary.accepted,
        summary.unmatched,
        summary.duplicates,
        summary.stale,
        summary.rejected
    );
    let mut reasons: std::collections::BTreeMap<(String, String), u64> = std::collections::BTreeMap::new();
    for result in &summary.results {
        // The first words of the reason: enough to group, without the masked IDs.
        let reason: String = result.reason.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        *reasons
            .entry((format!("{:?}", result.outcome()), format!("{} {reason}", result.field)))
            .or_default() += 1;
    }
    for ((outcome, why), count) in reasons {
        println!("feed-load:   {count:>9} {outcome} {why}");
    }
}
