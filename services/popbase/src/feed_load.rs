//! `popbase feed-load`: streams a generated city's department feeds in and
//! reports the ingest rate, either straight into a feeds role
//! (`Feeds.Ingest`, as the gateway forwards them; over the mesh when the
//! config has a gateway certificate) or through the gateway the way the
//! departments send them (`DepartmentFeeds.Submit`, one submission per
//! department, each with its own token). Against a store that already holds
//! the same city (`popbase gen` with the same seed), `--newer-by-ms` makes
//! every record a newer version — a full monthly refresh: match, history, upsert.
//!
//! The records come from the generator or from a file `--save` wrote
//! before (a department's roster is a file it already has): a benchmark
//! that regenerates the city on the cores it measures counts the generator
//! too.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use popbase_common::Config;
use popbase_common::upstream::Dialer;
use popbase_gateway::catalogue::{Catalogue, interface};
use popbase_gateway::interfaces::writes::{MAX_RECORDS_PER_MESSAGE, feed_kind};
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::feeds::{FeedRecord, IngestSummary};
use popbase_proto::gateway::FeedSubmission;
use popbase_proto::gateway::department_feeds_client::DepartmentFeedsClient;
use popbase_synth::{CityGenerator, CityParams};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::feed_file::Records;

/// Where the records go.
pub enum Target {
    /// A feeds role's `Feeds.Ingest`.
    Feeds(String),
    /// The gateway's `DepartmentFeeds.Submit`.
    Gateway(String),
}

/// Which city's records to send, and how much newer than the stored ones.
pub struct Load {
    pub records: Records,
    pub newer_by_ms: i64,
}

/// The generated city's feeds.
pub fn generated(city: &str, persons: u64, seed: u64) -> anyhow::Result<Records> {
    let generator = CityGenerator::new(CityParams::new(city, persons, seed))?;
    Ok(Records::Generated(Box::new(generator)))
}

pub async fn run(config: &Config, target: Target, load: Load) -> anyhow::Result<()> {
    let started = Instant::now();
    let newer_by_ms = load.newer_by_ms;
    let summary = match target {
        Target::Feeds(url) => {
            let dialer = Dialer::from_config(&config.mesh).context("loading the mesh certificate")?;
            let channel = dialer.channel("feeds", &url).map_err(anyhow::Error::msg)?;
            let mut client = FeedsClient::new(channel).max_decoding_message_size(256 << 20);
            let (sender, receiver) = mpsc::channel(10_000);
            let records = load.records;
            let producer = tokio::task::spawn_blocking(move || {
                records.each(|mut record| {
                    record.as_of_unix_millis += newer_by_ms;
                    sender.blocking_send(record).map_err(|_| "the ingest stream closed".to_string())
                })
            });
            let summary = client.ingest(ReceiverStream::new(receiver)).await.context("ingest")?.into_inner();
            producer.await.context("record task")?.map_err(anyhow::Error::msg)?;
            summary
        }
        Target::Gateway(url) => through_gateway(config, &url, load).await?,
    };
    report(&summary, started.elapsed().as_secs_f64());
    Ok(())
}

/// Routes each record to the submission of the department the catalogue
/// approves for its kind, in messages of up to 1,024 records.
///
/// A department whose records are rare in the file (health's birth
/// certificates among millions of others) would fill a message only every
/// few tens of seconds, longer than the gateway waits on an idle stream
/// (30 s) while the busy departments hold the router up; its message goes
/// out part full once it has waited [`MESSAGE_WAIT`].
struct DepartmentRouter {
    /// Record kind → the department's message stream and its filling message.
    by_kind: HashMap<String, usize>,
    departments: Vec<Department>,
    routed: u64,
}

/// A department's submission: its stream, the message filling, and since when.
struct Department {
    sender: mpsc::Sender<FeedSubmission>,
    filling: Vec<FeedRecord>,
    since: Instant,
}

/// Longest a record waits in a part-full message.
const MESSAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

const PURPOSE: &str = "DEPARTMENT_FEED";
const OFFICER: &str = "feed-load";

impl DepartmentRouter {
    fn route(&mut self, record: FeedRecord) -> Result<(), String> {
        let kind = feed_kind(&record).ok_or("a record without payload")?;
        let department = *self
            .by_kind
            .get(kind)
            .ok_or_else(|| format!("no department is approved for '{kind}' records"))?;
        let department = &mut self.departments[department];
        if department.filling.is_empty() {
            department.since = Instant::now();
        }
        department.filling.push(record);
        if department.filling.len() == MAX_RECORDS_PER_MESSAGE {
            department.send()?;
        }
        self.routed += 1;
        // The clock is read once per message's worth of records.
        if self.routed.is_multiple_of(MAX_RECORDS_PER_MESSAGE as u64) {
            for department in &mut self.departments {
                if !department.filling.is_empty() && department.since.elapsed() >= MESSAGE_WAIT {
                    department.send()?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        for department in &mut self.departments {
            if !department.filling.is_empty() {
                department.send()?;
            }
        }
        Ok(())
    }
}

impl Department {
    fn send(&mut self) -> Result<(), String> {
        send(&self.sender, std::mem::take(&mut self.filling))
    }
}

fn send(sender: &mpsc::Sender<FeedSubmission>, records: Vec<FeedRecord>) -> Result<(), String> {
    let message = FeedSubmission {
        purpose: PURPOSE.into(),
        officer_id: OFFICER.into(),
        records,
    };
    sender.blocking_send(message).map_err(|_| "a submission closed".to_string())
}

/// One submission per department approved for SubmitFeed, concurrently,
/// each with a token minted from the gateway's key; their summaries added up.
async fn through_gateway(config: &Config, url: &str, load: Load) -> anyhow::Result<IngestSummary> {
    let catalogue = Catalogue::load(&config.gateway.catalogue)?;
    let key = popbase_gateway::role::read_or_create_key(&config.token_key_path())?;
    let channel = Dialer::plaintext().channel("gateway", url).map_err(anyhow::Error::msg)?;
    let now = chrono::Utc::now().timestamp();
    let mut router = DepartmentRouter {
        by_kind: HashMap::new(),
        departments: Vec::new(),
        routed: 0,
    };
    let mut calls = Vec::new();
    for department in catalogue.departments() {
        let Some(approval) = catalogue.approval(&department.id, interface::SUBMIT_FEED) else {
            continue;
        };
        let (sender, receiver) = mpsc::channel(64);
        for kind in &approval.fields {
            router.by_kind.insert(kind.clone(), router.departments.len());
        }
        router.departments.push(Department {
            sender,
            filling: Vec::with_capacity(MAX_RECORDS_PER_MESSAGE),
            since: Instant::now(),
        });
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
    let (records, newer_by_ms) = (load.records, load.newer_by_ms);
    let producer = tokio::task::spawn_blocking(move || {
        records.each(|mut record| {
            record.as_of_unix_millis += newer_by_ms;
            router.route(record)
        })?;
        router.flush()
    });
    let produced = producer.await.context("record task")?;
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
        total.results_omitted += summary.results_omitted;
    }
    produced.map_err(anyhow::Error::msg)?;
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
    if summary.results_omitted > 0 {
        println!("feed-load:   {:>9} more not accepted (not listed)", summary.results_omitted);
    }
}
