//! The crash harness: `popbase serve` killed with SIGKILL at random moments
//! while several clients write, restarted, and checked; all-in-one, and
//! split into five processes over the mesh (a cycle then kills all of them
//! or one role).
//!
//! Each cycle starts the server(s) on the same data directory,
//! checks that every write acknowledged in any earlier cycle is readable,
//! then runs five writers at once until a random moment, when the process
//! is killed mid-write:
//! - residence registrations (the residence store);
//! - a permit holder who then settles (the registry and, through the
//!   residence role's follower, the settler's permit), then deaths (life
//!   events on the registry);
//! - medical-insurance feed records (the feeds store) and audited answers
//!   of the gateway (the ledger's audit chain);
//! - citizens' consents recorded by the service platform (the ledger);
//! - a medical-insurance subscription to the city's deaths, each
//!   notification acknowledged (the position, in the ledger).
//!
//! After every kill that stopped the ledger the audit chain is verified
//! offline against the head file, and after every restart: registrations, deaths and feed records
//! acknowledged are there, every acknowledged settlement ended its
//! settler's permit, the subscription holds at least the furthest position
//! acknowledged, and the chain holds a record for every acknowledged
//! audited answer; at the end the ledger's usage counters equal its
//! chain's records. `POPBASE_CRASH_CYCLES` sets the all-in-one cycles (20
//! by default; docs/benchmarks.md records a 200-cycle run),
//! `POPBASE_CRASH_CYCLES_SPLIT` the split ones (10); the figures are printed.
//!
//! The negative control deletes the residence store's write-ahead log after
//! a kill and must see acknowledged registrations lost.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use popbase_proto::common::Date;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, MedicalInsurance, MedicalScheme, RecordsOfRequest, Source};
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::gateway::consents_client::ConsentsClient;
use popbase_proto::gateway::{ChainHeadRequest, GrantConsentRequest, ListConsentsRequest};
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::life_events_client::LifeEventsClient;
use popbase_proto::household::{EventContext, GetPersonsRequest, ListPersonsRequest, RegisterDeathRequest, RegistrationStatus};
use popbase_proto::residence::CheckResidentsRequest;
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use support::rng::Rng;
use support::servers::{Layout, Servers};
use support::subscriber::{Followed, follow_deaths};
use support::writes::{id, permit_ends, register};
use support::{popbase, token, with_token};
use tonic::transport::Channel;

/// A channel to each role, by name.
type Roles = std::collections::HashMap<String, Channel>;

/// The generated persons still alive (deaths take them from the end), and
/// the first 20, whom the feed records are about.
type City = (Arc<Mutex<Vec<String>>>, Vec<String>);

/// Every write acknowledged so far, over all cycles.
#[derive(Default, Clone)]
struct Acked {
    residents: Vec<String>,
    settled: Vec<String>,
    deaths: Vec<String>,
    /// person -> record ids of their insurance records.
    feeds: BTreeMap<String, Vec<String>>,
    audited: u64,
    /// Subjects with a consent granted (to civil affairs, for PersonSummary).
    consents: Vec<String>,
    /// A subscriber's acknowledged position (in the ledger).
    followed: Arc<Mutex<Followed>>,
}

/// What a check found missing.
#[derive(Debug, Default, PartialEq)]
struct Lost {
    consents: usize,
    residents: usize,
    settlements: usize,
    deaths: usize,
    feeds: usize,
    audited: u64,
    acknowledgements: usize,
}

impl Lost {
    fn total(&self) -> u64 {
        (self.consents + self.residents + self.settlements + self.deaths + self.feeds + self.acknowledgements) as u64 + self.audited
    }
}

fn channel(roles: &Roles, role: &str) -> Channel {
    roles[role].clone()
}

fn insurance(person: &str, record_id: &str) -> FeedRecord {
    FeedRecord {
        source: Source::MedicalInsurance as i32,
        record_id: record_id.into(),
        as_of_unix_millis: Utc::now().timestamp_millis() - 1_000,
        payload: Some(Payload::MedicalInsurance(MedicalInsurance {
            id_number: person.into(),
            scheme: MedicalScheme::UrbanRuralResident as i32,
            status: EnrollmentStatus::Active as i32,
            since: None,
            insured_county_code: "370303".into(),
        })),
    }
}

/// The shared state of one cycle's writers.
struct Writers {
    roles: Roles,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
    next_id: Arc<AtomicU32>,
    living: Arc<Mutex<Vec<String>>>,
    bearer: String,
    /// The service platform's token: it records citizens' consents.
    platform: String,
    /// Medical insurance's token: it follows the city's deaths.
    subscriber: String,
}

/// A citizen's consent as the service platform records it.
fn consent(subject: &str) -> GrantConsentRequest {
    let today = popbase_domain::clock::today();
    GrantConsentRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: subject.into(),
        department: "civil_affairs".into(),
        interface: "PersonSummary".into(),
        grant_purpose: "TEMPORARY_ASSISTANCE".into(),
        valid_from: Some(Date::from(today)),
        valid_until: Some(Date::from(today + chrono::Duration::days(30))),
        ..Default::default()
    }
}

impl Writers {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    async fn residents(self: Arc<Self>) {
        let mut residence = ResidencePermitsClient::new(channel(&self.roles, "residence"));
        while !self.stopped() {
            let resident = id(self.next_id.fetch_add(1, Ordering::SeqCst));
            if register(&mut residence, &resident).await.is_err() {
                return;
            }
            self.acked.lock().expect("lock").residents.push(resident);
        }
    }

    async fn life_events(self: Arc<Self>) {
        let mut residence = ResidencePermitsClient::new(channel(&self.roles, "residence"));
        let mut events = LifeEventsClient::new(channel(&self.roles, "household"));
        let settler = id(self.next_id.fetch_add(1, Ordering::SeqCst));
        // The residence role may be killed before the settler holds a
        // permit: then nothing was acknowledged and there is nothing to check.
        if !matches!(support::writes::try_permit_holder(&mut residence, &settler).await, Ok(true)) {
            return;
        }
        if support::writes::try_settle(&mut events, &settler).await.is_err() {
            return;
        }
        self.acked.lock().expect("lock").settled.push(settler);
        while !self.stopped() {
            let Some(person) = self.living.lock().expect("lock").pop() else {
                return;
            };
            let death = RegisterDeathRequest {
                context: Some(EventContext {
                    actor: "police-370302-01".into(),
                    occurred_on: None,
                }),
                id_number: person.clone(),
                death_certificate_number: "D3703022026120401".into(),
            };
            if events.register_death(death).await.is_err() {
                return;
            }
            self.acked.lock().expect("lock").deaths.push(person);
        }
    }

    /// Consents, ten a second at most: each is checked one by one afterwards.
    async fn consents(self: Arc<Self>) {
        let mut consents = ConsentsClient::new(channel(&self.roles, "gateway"));
        while !self.stopped() {
            let subject = id(self.next_id.fetch_add(1, Ordering::SeqCst));
            if consents.grant(with_token(&self.platform, consent(&subject))).await.is_err() {
                return;
            }
            self.acked.lock().expect("lock").consents.push(subject);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn subscriber(self: Arc<Self>) {
        let followed = self.acked.lock().expect("lock").followed.clone();
        follow_deaths(channel(&self.roles, "gateway"), &self.subscriber, &followed, &self.stop).await;
    }

    async fn feeds_and_answers(self: Arc<Self>, subjects: Vec<String>) {
        let mut feeds = FeedsClient::new(channel(&self.roles, "feeds"));
        let mut audit = AuditClient::new(channel(&self.roles, "gateway"));
        for n in 0u64.. {
            if self.stopped() {
                return;
            }
            let person = &subjects[n as usize % subjects.len()];
            let record_id = format!("MI-{}-{n}", self.next_id.load(Ordering::SeqCst));
            let Ok(summary) = feeds.ingest(tokio_stream::iter(vec![insurance(person, &record_id)])).await else {
                return;
            };
            if summary.into_inner().accepted == 1 {
                self.acked
                    .lock()
                    .expect("lock")
                    .feeds
                    .entry(person.clone())
                    .or_default()
                    .push(record_id);
            }
            let asked = with_token(&self.bearer, ChainHeadRequest { purpose: "AUDIT".into() });
            if audit.get_chain_head(asked).await.is_err() {
                return;
            }
            self.acked.lock().expect("lock").audited += 1;
        }
    }
}

/// Checks every acknowledged write against the restarted server; what is missing.
async fn check(roles: &Roles, acked: &Acked, [bearer, platform, subscriber]: [&str; 3]) -> Lost {
    let mut lost = Lost::default();
    let followed = acked.followed.lock().expect("lock").clone();
    lost.acknowledgements = support::subscriber::lost(channel(roles, "gateway"), subscriber, &followed).await;
    let mut consents = ConsentsClient::new(channel(roles, "gateway"));
    for subject in &acked.consents {
        let asked = ListConsentsRequest {
            purpose: "CITIZEN_CONSENT".into(),
            subject_id_number: subject.clone(),
            ..Default::default()
        };
        let held = consents
            .list_consents(with_token(platform, asked))
            .await
            .expect("consents")
            .into_inner()
            .consents;
        if !held.iter().any(|c| c.department == "civil_affairs") {
            lost.consents += 1;
        }
    }
    let mut residence = ResidencePermitsClient::new(channel(roles, "residence"));
    for chunk in acked.residents.chunks(5_000) {
        let known = residence
            .check_residents(CheckResidentsRequest {
                id_numbers: chunk.to_vec(),
            })
            .await
            .expect("check residents")
            .into_inner()
            .known;
        lost.residents += known.iter().filter(|k| !**k).count();
    }
    let mut registry = HouseholdRegistryClient::new(channel(roles, "household"));
    for chunk in acked.deaths.chunks(5_000) {
        let persons = registry
            .get_persons(GetPersonsRequest {
                id_numbers: chunk.to_vec(),
                ..Default::default()
            })
            .await
            .expect("persons")
            .into_inner()
            .persons;
        let deceased = persons.iter().filter(|p| p.status() == RegistrationStatus::Deceased).count();
        lost.deaths += chunk.len() - deceased;
    }
    let mut feeds = FeedsClient::new(channel(roles, "feeds"));
    for (person, record_ids) in &acked.feeds {
        let held: Vec<String> = feeds
            .records_of(RecordsOfRequest {
                id_number: person.clone(),
                as_of_unix_millis: 0,
            })
            .await
            .expect("records")
            .into_inner()
            .records
            .into_iter()
            .map(|r| r.record_id)
            .collect();
        lost.feeds += record_ids.iter().filter(|r| !held.contains(r)).count();
    }
    // The newest settlement may still be on its way through the follower.
    for settler in &acked.settled {
        if !permit_ends(&mut residence, settler).await {
            lost.settlements += 1;
        }
    }
    let head = AuditClient::new(channel(roles, "gateway"))
        .get_chain_head(with_token(bearer, ChainHeadRequest { purpose: "AUDIT".into() }))
        .await
        .expect("chain head")
        .into_inner();
    lost.audited = acked.audited.saturating_sub(head.seq);
    lost
}

/// After a cycle of every write path, each store's commits since it opened
/// were all `sync` (fsynced before the write was acknowledged): the
/// argument of docs/operations.md ("What survives a power loss"), checked.
fn assert_every_write_was_fsynced(addr: &str) {
    let text = support::scrape(addr, "/metrics");
    for store in ["household", "residence", "feeds", "ledger"] {
        let commits = |durability: &str| -> u64 {
            let series = format!("popbase_store_commits_total{{store=\"{store}\",durability=\"{durability}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{series} is missing: {text}"))
        };
        assert!(commits("sync") > 0, "{store} committed through a write path");
        assert_eq!((commits("buffered"), commits("no_wal")), (0, 0), "{store}: every commit fsynced");
    }
}

/// `popbase audit verify` on the stopped server's ledger against its head file.
fn verify_chain(data: &Path) {
    let (store, head) = (data.join("ledger"), data.join("audit-head.log"));
    let head_arg = head.to_str().expect("utf8");
    let verified = if head.exists() {
        popbase(
            data,
            &["audit", "verify", "--store", store.to_str().expect("utf8"), "--head", head_arg],
        )
    } else {
        popbase(data, &["audit", "verify", "--store", store.to_str().expect("utf8"), "--no-head"])
    };
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success() && report.contains("audit chain verified"), "{report}");
}

/// The ledger's usage counters (what `Audit.UsageStatistics` answers) equal
/// what its chain holds, per day, department, interface and decision, read
/// offline from the stopped ledger: a crash between the records and the
/// counters (one batch) would show here.
fn assert_usage_equals_chain(data: &Path) {
    use popbase_gateway::tables::{AUDIT, SCHEMA, USAGE};
    use popbase_proto::gateway::{Decision, ExportPhase};
    use popbase_storage::{Read as _, Store};
    type Counts = BTreeMap<(u32, String, String), (u64, u64)>;
    let store = Store::open(data.join("ledger"), SCHEMA, Default::default()).expect("open the ledger");
    let mut chain = Counts::new();
    store
        .for_each(&AUDIT, &[], |_, record| {
            let record = record.value;
            let one_use = record.export.as_ref().is_none_or(|e| e.phase == ExportPhase::Started as i32);
            if one_use {
                let at = chrono::DateTime::from_timestamp_millis(record.at_unix_millis).expect("a time");
                let day = popbase_gateway::audit::log::yyyymmdd(popbase_domain::clock::city_day(at));
                let counts = chain.entry((day, record.department, record.interface.clone())).or_default();
                if record.decision == Decision::Allowed as i32 {
                    counts.0 += 1;
                } else if record.interface == popbase_gateway::gate::REFUSALS_INTERFACE {
                    counts.1 += record.count.max(1);
                } else {
                    counts.1 += 1;
                }
            }
            Ok(true)
        })
        .expect("read the chain");
    let mut usage = Counts::new();
    store
        .for_each(&USAGE, &[], |_, row| {
            let row = row.value;
            let day = row
                .day
                .and_then(|d| d.to_naive())
                .map(popbase_gateway::audit::log::yyyymmdd)
                .expect("a usage day");
            usage.insert((day, row.department, row.interface), (row.allowed, row.denied));
            Ok(true)
        })
        .expect("read the usage counters");
    assert!(!chain.is_empty(), "the chain holds records");
    assert_eq!(usage, chain, "usage counters against the chain's records");
}

/// The shipped catalogue with the audit bureau's daily quota and rate
/// raised: the harness asks for thousands of audited answers, and units a
/// killed replica had leased are lost for the day (docs/operations.md).
fn harness_catalogue(data: &Path) -> std::path::PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/catalogue/zibo.toml");
    let text = std::fs::read_to_string(shipped).expect("shipped catalogue");
    let audit = "id = \"audit\"\nname = \"淄博市审计局\"\ncertificate_cn = \"audit.dept.popbase\"\ndaily_quota = 10000\nper_second = 50";
    assert!(text.contains(audit), "the audit bureau's entry as the harness expects it");
    let raised = audit
        .replace("daily_quota = 10000", "daily_quota = 100000000")
        .replace("per_second = 50", "per_second = 100000");
    let path = data.join("harness-catalogue.toml");
    std::fs::write(&path, text.replace(audit, &raised)).expect("write catalogue");
    path
}

async fn living_persons(roles: &Roles) -> Vec<String> {
    HouseholdRegistryClient::new(channel(roles, "household"))
        .list_persons(ListPersonsRequest {
            division_code: "3703".into(),
            page: None,
        })
        .await
        .expect("persons")
        .into_inner()
        .persons
        .into_iter()
        .filter(|p| p.status() == RegistrationStatus::Active)
        .map(|p| p.id_number)
        .collect()
}

/// Starts the four writers against `roles`.
fn spawn_writers(
    roles: &Roles,
    acked: &Arc<Mutex<Acked>>,
    next_id: &Arc<AtomicU32>,
    (persons, subjects): &City,
    [bearer, platform, subscriber]: [String; 3],
) -> (Arc<Writers>, [tokio::task::JoinHandle<()>; 5]) {
    let writers = Arc::new(Writers {
        roles: roles.clone(),
        acked: acked.clone(),
        stop: Arc::new(AtomicBool::new(false)),
        next_id: next_id.clone(),
        living: Arc::clone(persons),
        bearer,
        platform,
        subscriber,
    });
    let tasks = [
        tokio::spawn(writers.clone().residents()),
        tokio::spawn(writers.clone().life_events()),
        tokio::spawn(writers.clone().feeds_and_answers(subjects.clone())),
        tokio::spawn(writers.clone().consents()),
        tokio::spawn(writers.clone().subscriber()),
    ];
    (writers, tasks)
}

/// Runs `cycles` write-kill-restart cycles on a generated city in `data`
/// laid out as `layout`; (writes checked, lost, restart times). Split, a
/// cycle kills every process or one role at random.
async fn crash_cycles(layout: Layout, data: &Path, cycles: usize, mut on_kill: impl FnMut(&Path)) -> (u64, Lost, Vec<Duration>) {
    let generated = popbase(data, &["gen", "--city", "3703", "--persons", "300", "--seed", "26"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let catalogue = harness_catalogue(data);
    let mut servers = Servers::new(layout, data, &[("POPBASE_GATEWAY_CATALOGUE", catalogue.to_str().expect("utf8"))]);
    let (acked, next_id) = (Arc::new(Mutex::new(Acked::default())), Arc::new(AtomicU32::new(100)));
    let mut moments = Rng(0x2026_1204_0026);
    let mut restarts = Vec::new();
    let mut city: Option<City> = None;
    let mut lost = Lost::default();
    for _ in 0..cycles {
        restarts.push(servers.start());
        let roles = servers.channels();
        let [bearer, platform, subscriber] = ["audit", "service_platform", "medical_insurance"].map(|d| token(data, d));
        let so_far = acked.lock().expect("lock").clone();
        let found = check(&roles, &so_far, [&bearer, &platform, &subscriber]).await;
        assert_eq!(found, Lost::default(), "acknowledged writes were lost");
        if city.is_none() {
            // Deaths take persons from the end; feed records are about the first 20.
            let persons = living_persons(&roles).await;
            let subjects = persons.iter().take(20).cloned().collect();
            city = Some((Arc::new(Mutex::new(persons)), subjects));
        }
        let Some(city) = &city else { unreachable!("set just above") };
        let (writers, tasks) = spawn_writers(&roles, &acked, &next_id, city, [bearer, platform, subscriber]);
        tokio::time::sleep(Duration::from_millis(300 + moments.below(600) as u64)).await;
        let processes = servers.processes();
        let one = processes[moments.below(processes.len())];
        servers.kill((moments.chance(50) && processes.len() > 1).then_some(one));
        writers.stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.expect("writer");
        }
        if servers.ledger_stopped() {
            verify_chain(data);
        }
        on_kill(data);
    }
    restarts.push(servers.start());
    let roles = servers.channels();
    let [bearer, platform, subscriber] = ["audit", "service_platform", "medical_insurance"].map(|d| token(data, d));
    let acked = acked.lock().expect("lock").clone();
    let found = check(&roles, &acked, [&bearer, &platform, &subscriber]).await;
    lost.consents += found.consents;
    lost.residents += found.residents;
    lost.settlements += found.settlements;
    lost.deaths += found.deaths;
    lost.feeds += found.feeds;
    lost.audited += found.audited;
    lost.acknowledgements += found.acknowledgements;
    // Every write path once more, stopped in good order, then how each store committed.
    if let (Some(city), Some(metrics)) = (&city, servers.metrics()) {
        let writers_tokens = [bearer, platform, subscriber];
        let (writers, tasks) = spawn_writers(&roles, &Arc::new(Mutex::new(Acked::default())), &next_id, city, writers_tokens);
        tokio::time::sleep(Duration::from_millis(500)).await;
        writers.stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.expect("writer");
        }
        assert_every_write_was_fsynced(metrics);
    }
    let checked = (acked.consents.len()
        + acked.residents.len()
        + acked.settled.len()
        + acked.deaths.len()
        + acked.feeds.values().map(Vec::len).sum::<usize>()) as u64
        + acked.audited
        + acked.followed.lock().expect("lock").acknowledgements;
    servers.stop();
    verify_chain(data);
    assert_usage_equals_chain(data);
    (checked, lost, restarts)
}

/// Prints the figures of a run and requires no loss.
fn report(layout: Layout, cycles: usize, (checked, lost, mut restarts): (u64, Lost, Vec<Duration>)) {
    restarts.sort();
    let median = restarts[restarts.len() / 2];
    let slowest = restarts[restarts.len() - 1];
    println!(
        "crash harness ({layout:?}): cycles={cycles} writes_checked={checked} lost={} restart_median_ms={} restart_max_ms={}",
        lost.total(),
        median.as_millis(),
        slowest.as_millis()
    );
    assert_eq!(lost, Lost::default());
    assert!(checked > cycles as u64 * 10, "the writers wrote: {checked}");
}

fn cycles(variable: &str, default: usize) -> usize {
    std::env::var(variable).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_split_roles() {
    let cycles = cycles("POPBASE_CRASH_CYCLES_SPLIT", 10);
    let dir = tempfile::tempdir().expect("tempdir");
    report(Layout::Split, cycles, crash_cycles(Layout::Split, dir.path(), cycles, |_| {}).await);
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_at_random_moments() {
    let cycles = cycles("POPBASE_CRASH_CYCLES", 20);
    let dir = tempfile::tempdir().expect("tempdir");
    report(
        Layout::AllInOne,
        cycles,
        crash_cycles(Layout::AllInOne, dir.path(), cycles, |_| {}).await,
    );
}

/// The harness can see loss: with the residence store's write-ahead log
/// deleted after a kill, registrations it acknowledged are gone.
#[tokio::test]
async fn a_deleted_write_ahead_log_is_reported_as_lost_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let result = tokio::spawn(async move {
        crash_cycles(Layout::AllInOne, &data, 1, |data| {
            for entry in std::fs::read_dir(data.join("residence")).expect("residence store") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|x| x == "log") {
                    std::fs::remove_file(path).expect("delete the WAL");
                }
            }
        })
        .await
    })
    .await;
    let (_, lost, _) = result.expect("a check with the WAL deleted ends in a report, not a panic");
    assert!(lost.residents > 0, "acknowledged registrations were lost with the WAL: {lost:?}");
}
