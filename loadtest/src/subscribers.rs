//! The change-notification scenario: subscribers of a whole city's life
//! events, as the departments would hold them. Half are medical-insurance
//! subscriptions to one county each (births, deaths, moves); half the
//! pension fund's rosters of persons (deaths, moves out). All start at a
//! given registry sequence (by default the log's beginning: a generated
//! city's year of life events is the backlog) and acknowledge each
//! notification; the first drops its stream once and resumes.
//!
//! Two phases: the backlog (delivered changes per second until every
//! subscriber is idle), then live deaths registered through the gateway at
//! a fixed rate, each change's lag from its commit to its arrival. The
//! audit chain's growth over the run is the audit cost: one record per
//! delivered change, plus one per acknowledgement.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use popbase_proto::popbase::common::v1::Date;
use popbase_proto::popbase::gateway::v1::audit_client::AuditClient;
use popbase_proto::popbase::gateway::v1::create_subscription_request::Scope;
use popbase_proto::popbase::gateway::v1::life_event_submission::Event;
use popbase_proto::popbase::gateway::v1::registry_events_client::RegistryEventsClient;
use popbase_proto::popbase::gateway::v1::subscriptions_client::SubscriptionsClient;
use popbase_proto::popbase::gateway::v1::{
    AcknowledgeRequest, ChainHeadRequest, ChangeKind, CreateSubscriptionRequest, LifeEventSubmission, SubscribeRequest, UpdateRosterRequest,
};
use popbase_proto::popbase::household::v1::{EventContext, RegisterDeathRequest};
use serde::Serialize;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::setup::City;

/// How often a subscriber acknowledges.
const ACK_EVERY: Duration = Duration::from_secs(1);

/// What the scenario is asked to do.
pub struct Plan {
    pub subscribers: usize,
    /// The county subscriptions' divisions, in turn.
    pub counties: Vec<String>,
    pub roster: usize,
    pub start_household: u64,
    pub live_rate: u32,
    pub live_seconds: u64,
    pub max_batch: u32,
}

/// The department tokens the scenario uses.
pub struct Tokens {
    pub medical_insurance: String,
    pub hrss: String,
    pub public_security: String,
    pub audit: String,
}

#[derive(Debug, Default, Serialize)]
pub struct SubscribersReport {
    pub subscribers: usize,
    pub roster_persons: usize,
    pub backlog_changes_delivered: u64,
    pub backlog_seconds: f64,
    pub backlog_changes_per_second: f64,
    /// Per subscriber, in creation order.
    pub delivered_by_subscriber: Vec<u64>,
    /// Changes the resumed subscriber was sent twice (unacknowledged when it dropped).
    pub redelivered_after_resume: u64,
    pub live_deaths_registered: u64,
    pub live_changes_delivered: u64,
    pub live_lag_p50_ms: u64,
    pub live_lag_p99_ms: u64,
    pub live_lag_max_ms: u64,
    pub audit_records: u64,
    pub audit_records_per_delivered_change: f64,
    pub notes: String,
}

/// What the subscriber tasks share with the driver.
#[derive(Default)]
struct Shared {
    delivered: Vec<AtomicU64>,
    last_delivery: Mutex<Option<Instant>>,
    /// Commit times from here on are live changes: their lag is recorded.
    live_from_millis: AtomicU64,
    lags: Mutex<Option<Histogram<u64>>>,
    live_delivered: AtomicU64,
    redelivered: AtomicU64,
}

fn with_token<T>(token: &str, message: T) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).context("token")?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn audit_head(gateway: &Channel, token: &str) -> anyhow::Result<u64> {
    let request = with_token(token, ChainHeadRequest { purpose: "AUDIT".into() })?;
    Ok(AuditClient::new(gateway.clone())
        .get_chain_head(request)
        .await
        .context("chain head")?
        .into_inner()
        .seq)
}

/// Creates the subscriptions: counties for medical insurance, rosters for the pension fund.
async fn create(gateway: &Channel, tokens: &Tokens, city: &City, plan: &Plan) -> anyhow::Result<Vec<(String, String)>> {
    let counties = &plan.counties;
    anyhow::ensure!(!counties.is_empty(), "name --counties");
    let mut client = SubscriptionsClient::new(gateway.clone());
    let mut made = Vec::new();
    for i in 0..plan.subscribers {
        let (token, request) = if i % 2 == 0 {
            let kinds = [
                ChangeKind::Birth,
                ChangeKind::Death,
                ChangeKind::Settlement,
                ChangeKind::MoveOut,
                ChangeKind::CityTransfer,
            ];
            let request = CreateSubscriptionRequest {
                purpose: "INSURANCE_ENROLLMENT".into(),
                kinds: kinds.iter().map(|k| *k as i32).collect(),
                scope: Some(Scope::DivisionCode(counties[(i / 2) % counties.len()].clone())),
                fields: vec!["id_number".into(), "occurred_on".into(), "committee_code".into()],
                start_household: Some(plan.start_household),
                ..Default::default()
            };
            (&tokens.medical_insurance, request)
        } else {
            let request = CreateSubscriptionRequest {
                purpose: "PENSION_ELIGIBILITY".into(),
                kinds: vec![ChangeKind::Death as i32, ChangeKind::MoveOut as i32],
                scope: Some(Scope::Roster(true)),
                fields: vec!["id_number".into(), "occurred_on".into()],
                start_household: Some(plan.start_household),
                ..Default::default()
            };
            (&tokens.hrss, request)
        };
        let id = client
            .create_subscription(with_token(token, request)?)
            .await
            .context("create")?
            .into_inner()
            .subscription_id;
        if i % 2 == 1 {
            // A different slice of the city per roster.
            let from = (i / 2) * plan.roster % city.ids.len().max(1);
            let members: Vec<String> = city
                .ids
                .iter()
                .cycle()
                .skip(from)
                .take(plan.roster.min(city.ids.len()))
                .cloned()
                .collect();
            for chunk in members.chunks(10_000) {
                let update = UpdateRosterRequest {
                    subscription_id: id.clone(),
                    add_id_numbers: chunk.to_vec(),
                    remove_id_numbers: vec![],
                };
                client.update_roster(with_token(token, update)?).await.context("roster")?;
            }
        }
        made.push((id, token.clone()));
    }
    Ok(made)
}

/// One subscriber: reads and acknowledges until told to stop; the first
/// drops its stream once after `drop_after` and resumes.
async fn follow(
    gateway: Channel,
    index: usize,
    id: String,
    token: String,
    max_batch: u32,
    shared: Arc<Shared>,
    drop_after: Option<Duration>,
) -> anyhow::Result<()> {
    let mut client = SubscriptionsClient::new(gateway);
    let mut dropped = drop_after.is_none();
    let started = Instant::now();
    loop {
        let request = SubscribeRequest {
            subscription_id: id.clone(),
            max_batch,
        };
        let mut stream = client
            .subscribe(with_token(&token, request)?)
            .await
            .context("subscribe")?
            .into_inner();
        let mut resume = false;
        let mut last_ack = Instant::now();
        while let Some(notification) = stream.message().await.context("stream")? {
            let received = now_millis();
            let count = notification.changes.len() as u64;
            let live_from = shared.live_from_millis.load(Ordering::Relaxed) as i64;
            for change in &notification.changes {
                if live_from != 0 && change.committed_unix_millis >= live_from {
                    shared.live_delivered.fetch_add(1, Ordering::Relaxed);
                    if let Some(h) = shared.lags.lock().expect("lags").as_mut() {
                        let _ = h.record((received - change.committed_unix_millis).max(0) as u64);
                    }
                }
            }
            shared.delivered[index].fetch_add(count, Ordering::Relaxed);
            if count > 0 {
                *shared.last_delivery.lock().expect("clock") = Some(Instant::now());
            }
            if !dropped && drop_after.is_some_and(|d| started.elapsed() >= d) {
                // Hang up without acknowledging this notification: it comes again.
                shared.redelivered.fetch_add(count, Ordering::Relaxed);
                dropped = true;
                resume = true;
                break;
            }
            // Acknowledged once a second, as a department's client would
            // (each acknowledgement is a call: quota and an audit record).
            if last_ack.elapsed() >= ACK_EVERY {
                let ack = AcknowledgeRequest {
                    subscription_id: id.clone(),
                    position: notification.position,
                };
                client.acknowledge(with_token(&token, ack)?).await.context("acknowledge")?;
                last_ack = Instant::now();
            }
        }
        if !resume {
            return Ok(());
        }
    }
}

/// Waits until no change has arrived for `quiet`; the last arrival.
async fn until_quiet(shared: &Shared, quiet: Duration, since: Instant) -> Instant {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = shared.last_delivery.lock().expect("clock").unwrap_or(since);
        if last.elapsed() >= quiet && since.elapsed() >= quiet {
            return last;
        }
    }
}

/// Deaths of `persons` through the gateway at `rate` per second.
async fn live_deaths(gateway: &Channel, token: &str, persons: &[String], rate: u32) -> anyhow::Result<u64> {
    let mut events = RegistryEventsClient::new(gateway.clone());
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).context("offset")?)
        .date_naive();
    let date = Date {
        year: chrono::Datelike::year(&today),
        month: chrono::Datelike::month(&today) as i32,
        day: chrono::Datelike::day(&today) as i32,
    };
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut registered = 0;
    for (n, person) in persons.iter().enumerate() {
        ticker.tick().await;
        let submission = LifeEventSubmission {
            purpose: "HOUSEHOLD_REGISTRATION".into(),
            officer_id: "loadtest-police-01".into(),
            event: Some(Event::Death(RegisterDeathRequest {
                context: Some(EventContext {
                    actor: "loadtest".into(),
                    occurred_on: Some(date),
                }),
                id_number: person.clone(),
                death_certificate_number: format!("D{n:017}"),
            })),
        };
        if events.submit(with_token(token, submission)?).await.is_ok() {
            registered += 1;
        }
    }
    Ok(registered)
}

pub async fn run(gateway: Channel, tokens: Tokens, city: City, plan: Plan) -> anyhow::Result<SubscribersReport> {
    let audit_before = audit_head(&gateway, &tokens.audit).await?;
    let subscriptions = create(&gateway, &tokens, &city, &plan).await?;
    eprintln!("popbase-loadtest: {} subscriptions created", subscriptions.len());
    let shared = Arc::new(Shared {
        delivered: (0..subscriptions.len()).map(|_| AtomicU64::new(0)).collect(),
        lags: Mutex::new(Some(Histogram::new(3).context("histogram")?)),
        ..Default::default()
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, (id, token)) in subscriptions.into_iter().enumerate() {
        let drop_after = (index == 0).then_some(Duration::from_secs(1));
        let task = follow(gateway.clone(), index, id, token, plan.max_batch, shared.clone(), drop_after);
        tasks.push(tokio::spawn(task));
    }
    let backlog_end = until_quiet(&shared, Duration::from_secs(3), started).await;
    let backlog_seconds = backlog_end.duration_since(started).as_secs_f64();
    let backlog: u64 = shared.delivered.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    eprintln!("popbase-loadtest: backlog of {backlog} changes delivered in {backlog_seconds:.1} s");

    // Live: deaths registered through the gateway while everyone listens.
    shared.live_from_millis.store(now_millis() as u64, Ordering::Relaxed);
    let count = (u64::from(plan.live_rate) * plan.live_seconds) as usize;
    // Spread over the listing, so they fall in rosters and counties alike.
    let step = (city.ids.len() / count.max(1)).max(1);
    let dying: Vec<String> = city.ids.iter().step_by(step).take(count).cloned().collect();
    let live_started = Instant::now();
    let registered = live_deaths(&gateway, &tokens.public_security, &dying, plan.live_rate).await?;
    until_quiet(&shared, Duration::from_secs(2), live_started).await;
    for task in &tasks {
        if task.is_finished() {
            eprintln!("popbase-loadtest: a subscriber stopped early");
        }
        task.abort();
    }
    for task in tasks {
        if let Ok(Err(error)) = task.await {
            eprintln!("popbase-loadtest: subscriber failed: {error:#}");
        }
    }
    let audit_after = audit_head(&gateway, &tokens.audit).await?;
    let delivered: Vec<u64> = shared.delivered.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    let total: u64 = delivered.iter().sum();
    let lags = shared.lags.lock().expect("lags").take().context("histogram")?;
    let audit_records = audit_after.saturating_sub(audit_before);
    Ok(SubscribersReport {
        subscribers: delivered.len(),
        roster_persons: plan.roster,
        backlog_changes_delivered: backlog,
        backlog_seconds,
        backlog_changes_per_second: backlog as f64 / backlog_seconds.max(1e-9),
        delivered_by_subscriber: delivered,
        redelivered_after_resume: shared.redelivered.load(Ordering::Relaxed),
        live_deaths_registered: registered,
        live_changes_delivered: shared.live_delivered.load(Ordering::Relaxed),
        live_lag_p50_ms: lags.value_at_quantile(0.5),
        live_lag_p99_ms: lags.value_at_quantile(0.99),
        live_lag_max_ms: lags.max(),
        audit_records,
        audit_records_per_delivered_change: audit_records as f64 / total.max(1) as f64,
        notes: String::new(),
    })
}

#[derive(clap::Args)]
pub struct SubscribersArgs {
    #[command(flatten)]
    target: crate::target::Target,
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// The city (or division) whose persons fill the rosters and die.
    #[arg(long, default_value = "3703")]
    division: String,
    /// Counties the medical-insurance subscriptions follow, in turn (Zibo's).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "370302,370303,370304,370305,370306,370321,370322,370323"
    )]
    counties: Vec<String>,
    /// Persons on each pension-fund roster.
    #[arg(long, default_value_t = 100_000)]
    roster: usize,
    /// Registry sequence the subscriptions start after (0: the log's beginning).
    #[arg(long, default_value_t = 0)]
    start_household: u64,
    /// Deaths registered per second in the live phase.
    #[arg(long, default_value_t = 50)]
    live_rate: u32,
    #[arg(long, default_value_t = 20)]
    live_seconds: u64,
    /// Changes per notification (the gateway's bound is 5,000).
    #[arg(long, default_value_t = 5_000)]
    max_batch: u32,
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "")]
    notes: String,
}

pub async fn from_args(args: SubscribersArgs) -> anyhow::Result<SubscribersReport> {
    let token = |dept: &str| args.target.token(dept);
    let gateway = crate::target::connect(&args.target.gateway).await?;
    let household = args.target.household().await?;
    let deaths = (u64::from(args.live_rate) * args.live_seconds) as usize;
    let city = crate::setup::city(household, &args.division, args.roster * args.subscribers.div_ceil(2) + deaths).await?;
    let tokens = Tokens {
        medical_insurance: token("medical_insurance")?,
        hrss: token("hrss")?,
        public_security: token("public_security")?,
        audit: token("audit")?,
    };
    let plan = Plan {
        subscribers: args.subscribers.max(1),
        counties: args.counties,
        roster: args.roster,
        start_household: args.start_household,
        live_rate: args.live_rate,
        live_seconds: args.live_seconds,
        max_batch: args.max_batch,
    };
    let mut report = run(gateway, tokens, city, plan).await?;
    report.notes = args.notes;
    Ok(report)
}

impl SubscribersReport {
    pub fn markdown(&self) -> String {
        format!(
            "| subscribers | backlog changes | backlog s | changes/s | live deaths | live changes | lag p50 ms | lag p99 ms | lag max ms | audit records | per change |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {:.1} | {:.0} | {} | {} | {} | {} | {} | {} | {:.2} |\n",
            self.subscribers,
            self.backlog_changes_delivered,
            self.backlog_seconds,
            self.backlog_changes_per_second,
            self.live_deaths_registered,
            self.live_changes_delivered,
            self.live_lag_p50_ms,
            self.live_lag_p99_ms,
            self.live_lag_max_ms,
            self.audit_records,
            self.audit_records_per_delivered_change,
        )
    }
}
