//! A whole platform in one test process: the registry, residence and feeds
//! services seeded with one small neighbourhood, and the gateway with real
//! TLS in front, each on its own ephemeral port.

#![allow(dead_code)]

pub mod pki;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use popbase_common::metrics::Metrics;
use popbase_common::upstream::Dialer;
use popbase_common::{Config, Shutdown, server};
use popbase_domain::IdNumber;
use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::common::{Address, Sex};
use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, MedicalInsurance, MedicalScheme, Source, feed_record::Payload};
use popbase_proto::household::{Household, HouseholdKind, HouseholdStatus, Person, RegistrationStatus, Relationship};
use popbase_proto::residence::{PermitStatus, RegistrationState, ResidenceBasis, ResidencePermit, ResidenceRegistration};
use popbase_residence::permits::ResidentRecords;
use popbase_storage::Store;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

pub use pki::Pki;

/// 淄博市张店区车站街道新华社区 and 公园街道西苑社区.
pub const XINHUA: &str = "370303001001";
pub const XIYUAN: &str = "370303002001";

pub fn today() -> NaiveDate {
    popbase_domain::clock::today()
}

fn id(county: &str, age: i64, sequence: u16) -> String {
    let birth = today() - Duration::days(age * 365 + 40);
    IdNumber::generate(county, birth, sequence).expect("valid id").as_str().to_string()
}

/// A registered person living at `committee` (新华路18号).
#[allow(dead_code)] // used by some test binaries only
pub fn person(id: &str, name: &str, household: &str, committee: &str, relationship: Relationship) -> Person {
    let parsed = IdNumber::parse(id, today()).expect("valid");
    Person {
        id_number: id.into(),
        name: name.into(),
        sex: if parsed.sex() == popbase_domain::Sex::Male {
            Sex::Male
        } else {
            Sex::Female
        } as i32,
        birth_date: Some(parsed.birth_date().into()),
        household_id: household.into(),
        relationship: relationship as i32,
        address: Some(Address {
            committee_code: committee.into(),
            detail: "新华路18号".into(),
        }),
        status: RegistrationStatus::Active as i32,
        phone: "13800000000".into(),
        ..Default::default()
    }
}

/// A family household at `committee` with its members.
#[allow(dead_code)] // used by some test binaries only
pub fn household(id: &str, head: &str, committee: &str, members: Vec<Person>) -> HouseholdWithMembers {
    HouseholdWithMembers {
        household: Household {
            household_id: id.into(),
            kind: HouseholdKind::Family as i32,
            head_id_number: head.into(),
            address: Some(Address {
                committee_code: committee.into(),
                detail: "新华路18号".into(),
            }),
            status: HouseholdStatus::Active as i32,
            ..Default::default()
        },
        members,
    }
}

fn insurance(id: &str, n: u32) -> FeedRecord {
    FeedRecord {
        source: Source::MedicalInsurance as i32,
        record_id: format!("MI{n:06}"),
        as_of_unix_millis: Utc::now().timestamp_millis() - 86_400_000,
        payload: Some(Payload::MedicalInsurance(MedicalInsurance {
            id_number: id.into(),
            scheme: MedicalScheme::Employee as i32,
            status: EnrollmentStatus::Active as i32,
            since: Some((today() - Duration::days(900)).into()),
            insured_county_code: "370303".into(),
        })),
    }
}

/// Who lives in the test neighbourhood.
pub struct People {
    /// A registered family in 新华社区: father, mother, their son (8).
    pub father: String,
    pub mother: String,
    pub child: String,
    /// A registered man in 西苑社区, no relation to anyone.
    pub stranger: String,
    /// A registered girl (10) whose recorded statutory guardian is her grandmother.
    pub orphan: String,
    pub grandmother: String,
    /// A non-registered father living in 新华社区 on a valid permit, and his
    /// accompanying daughter (9) with a residence registration only.
    pub migrant: String,
    pub migrant_child: String,
    /// A non-registered man living in 新华社区 on a valid permit, related to
    /// no one.
    pub permit_stranger: String,
    /// A non-registered mother living in 新华社区 whose permit has lapsed
    /// (still marked valid, `valid_until` yesterday), and her accompanying
    /// son (7).
    pub lapsed: String,
    pub lapsed_child: String,
}

fn seed(dir: &std::path::Path) -> People {
    let people = People {
        father: id("370303", 38, 11),
        mother: id("370303", 36, 12),
        child: id("370303", 8, 13),
        stranger: id("370303", 40, 15),
        orphan: id("370303", 10, 16),
        grandmother: id("370303", 65, 18),
        migrant: id("110105", 35, 21),
        migrant_child: id("110105", 9, 22),
        permit_stranger: id("130102", 33, 23),
        lapsed: id("130102", 31, 24),
        lapsed_child: id("130102", 7, 25),
    };
    let options = popbase_storage::StoreOptions::default();
    let registry = popbase_household::Registry::new(
        Store::open(dir.join("household"), popbase_household::tables::SCHEMA, options.clone()).expect("household store"),
    );
    let mut child = person(&people.child, "张小明", "37030300000001", XINHUA, Relationship::Son);
    child.father_id_number = people.father.clone();
    child.mother_id_number = people.mother.clone();
    let mut orphan = person(&people.orphan, "李小红", "37030300000003", XINHUA, Relationship::Granddaughter);
    orphan.guardian_id_number = people.grandmother.clone();
    registry
        .import(&[
            household(
                "37030300000001",
                &people.father,
                XINHUA,
                vec![
                    person(&people.father, "张大明", "37030300000001", XINHUA, Relationship::Head),
                    person(&people.mother, "王丽", "37030300000001", XINHUA, Relationship::Spouse),
                    child,
                ],
            ),
            household(
                "37030300000002",
                &people.stranger,
                XIYUAN,
                vec![person(&people.stranger, "赵强", "37030300000002", XIYUAN, Relationship::Head)],
            ),
            household(
                "37030300000003",
                &people.grandmother,
                XINHUA,
                vec![
                    person(&people.grandmother, "李奶奶", "37030300000003", XINHUA, Relationship::Head),
                    orphan,
                ],
            ),
        ])
        .expect("import registry");
    // The address base: 华光路 in 新华社区; 共青团路 runs through both
    // committees with the same door numbers (an ambiguous address).
    let standard = |committee: &str, road: &str| popbase_proto::household::StandardAddress {
        committee_code: committee.into(),
        road: road.into(),
        from_number: 1,
        to_number: 120,
    };
    registry
        .import_standard_addresses(&[
            standard(XINHUA, "华光路"),
            standard(XINHUA, "共青团路"),
            standard(XIYUAN, "共青团路"),
        ])
        .expect("import standard addresses");
    registry.store().flush().expect("flush");

    let permits = popbase_residence::Permits::new(
        Store::open(dir.join("residence"), popbase_residence::tables::SCHEMA, options.clone()).expect("residence store"),
    );
    let registration = |id: &str, name: &str, basis: ResidenceBasis, accompanies: &str| ResidenceRegistration {
        id_number: id.into(),
        name: name.into(),
        sex: 1,
        birth_date: Some(IdNumber::parse(id, today()).expect("valid").birth_date().into()),
        hukou_county_code: "110105".into(),
        address: Some(Address {
            committee_code: XINHUA.into(),
            detail: "华光路9号".into(),
        }),
        registered_on: Some((today() - Duration::days(700)).into()),
        basis: basis as i32,
        accompanies_id_number: accompanies.into(),
        state: RegistrationState::Active as i32,
        ..Default::default()
    };
    let permit = |number: &str, id: &str, issued_days_ago: i64, valid_days_left: i64| ResidencePermit {
        permit_number: number.into(),
        id_number: id.into(),
        address: Some(Address {
            committee_code: XINHUA.into(),
            detail: "华光路9号".into(),
        }),
        issued_on: Some((today() - Duration::days(issued_days_ago)).into()),
        valid_until: Some((today() + Duration::days(valid_days_left)).into()),
        status: PermitStatus::Valid as i32,
        basis: ResidenceBasis::Employment as i32,
        ..Default::default()
    };
    permits
        .import(&[
            ResidentRecords {
                registration: registration(&people.migrant, "孙建国", ResidenceBasis::Employment, ""),
                permits: vec![permit("370303202500000001", &people.migrant, 500, 200)],
            },
            ResidentRecords {
                registration: registration(&people.migrant_child, "孙小花", ResidenceBasis::Accompanying, &people.migrant),
                permits: vec![],
            },
            ResidentRecords {
                registration: registration(&people.permit_stranger, "周文", ResidenceBasis::Employment, ""),
                permits: vec![permit("370303202500000002", &people.permit_stranger, 300, 400)],
            },
            ResidentRecords {
                registration: registration(&people.lapsed, "吴芳", ResidenceBasis::Employment, ""),
                permits: vec![permit("370303202300000003", &people.lapsed, 366, -1)],
            },
            ResidentRecords {
                registration: registration(&people.lapsed_child, "吴小军", ResidenceBasis::Accompanying, &people.lapsed),
                permits: vec![],
            },
        ])
        .expect("import residents");
    permits.store().flush().expect("flush");

    let feeds =
        popbase_feeds::FeedStore::open(Store::open(dir.join("feeds"), popbase_feeds::tables::SCHEMA, options).expect("feeds store"))
            .expect("feeds");
    let insured = [
        &people.father,
        &people.mother,
        &people.stranger,
        &people.grandmother,
        &people.orphan,
    ];
    let records: Vec<FeedRecord> = insured.iter().enumerate().map(|(n, id)| insurance(id, n as u32)).collect();
    feeds.import(&records).expect("import feeds");
    feeds.store().flush().expect("flush");
    people
}

pub struct Platform {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub people: People,
    pub gateway: SocketAddr,
    pub config: Config,
    pub shutdown: Shutdown,
    pub gate: Arc<popbase_gateway::gate::Gate>,
    /// The gateway's consents and audit trail, in this process.
    pub ledger: popbase_gateway::ledger::LocalLedger,
    /// The registry the household role serves (to make changes in tests).
    pub registry: popbase_household::Registry,
    /// The gateway's clients of the services (to ask them directly).
    pub sources: popbase_gateway::sources::Sources,
    /// Every role's RPC metrics.
    pub metrics: Arc<Metrics>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

/// Starts everything; `catalogue` replaces the shipped catalogue's text
/// when given, `auth` is the gateway's mode (mtls, token, both).
pub async fn start(catalogue: Option<String>, auth: &str) -> Platform {
    start_inner(catalogue, auth, true, false).await
}

/// The platform with the gateway pointed at a registry address where
/// nothing answers (its fetches fail).
pub async fn start_without_registry() -> Platform {
    start_inner(None, "mtls", false, false).await
}

/// The platform as one process runs it (all-in-one): the gateway reads
/// export batches from the roles' dataset sources, not their Flight
/// endpoints, and calls the services' handlers, not their gRPC clients.
#[allow(dead_code)] // used by some test binaries only
pub async fn start_with_local_exports() -> Platform {
    start_inner(None, "mtls", true, true).await
}

/// [`start`] with `configure` applied to the platform's config (limits, say).
#[allow(dead_code)] // used by some test binaries only
pub async fn start_configured(auth: &str, configure: impl FnOnce(&mut Config)) -> Platform {
    start_inner_with(None, auth, true, false, configure).await
}

async fn start_inner(catalogue: Option<String>, auth: &str, registry_reachable: bool, local_exports: bool) -> Platform {
    start_inner_with(catalogue, auth, registry_reachable, local_exports, |_| {}).await
}

async fn start_inner_with(
    catalogue: Option<String>,
    auth: &str,
    registry_reachable: bool,
    local_exports: bool,
    configure: impl FnOnce(&mut Config),
) -> Platform {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let people = seed(dir.path());
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    configure(&mut config);
    config.gateway.auth = auth.into();
    config.gateway.tls_cert = pki.path("server.pem");
    config.gateway.tls_key = pki.path("server.key");
    config.gateway.client_ca = pki.path("ca.pem");
    if let Some(text) = catalogue {
        let path = dir.path().join("catalogue.toml");
        std::fs::write(&path, text).expect("write catalogue");
        config.gateway.catalogue = path;
    }
    let options = popbase_storage::StoreOptions::default();
    let open = |name: &str, schema| Store::open(dir.path().join(name), schema, options.clone()).expect("open store");
    let (household_l, household) = listen().await;
    let (residence_l, residence) = listen().await;
    let (feeds_l, feeds) = listen().await;
    let (gateway_l, gateway) = listen().await;
    let url = |a: SocketAddr| format!("http://{a}");
    let shutdown = Shutdown::new();
    let metrics = Metrics::new();
    let registry = popbase_household::Registry::new(open("household", popbase_household::tables::SCHEMA));
    let policies = Arc::new(popbase_household::settlement::PolicySet::shipped().expect("policies"));
    let permits = popbase_residence::Permits::new(open("residence", popbase_residence::tables::SCHEMA));
    let feed_store = popbase_feeds::FeedStore::open(open("feeds", popbase_feeds::tables::SCHEMA)).expect("feeds");
    let registry_handle = registry.clone();
    let roles = vec![
        (popbase_household::role::services(&registry, policies, None, &config), household_l),
        (
            popbase_residence::role::services(
                &permits,
                popbase_residence::entitlements::feeds_client(&url(feeds), &Dialer::plaintext()).expect("feeds client"),
                &config,
            ),
            residence_l,
        ),
        (
            popbase_feeds::role::services(
                &feed_store,
                popbase_feeds::directory::PersonDirectory::new(&url(household), &url(residence), &Dialer::plaintext()).expect("directory"),
                &config,
            ),
            feeds_l,
        ),
    ];
    // An address where nothing answers.
    let nowhere = {
        let (gone, addr) = listen().await;
        drop(gone);
        url(addr)
    };
    // All-in-one, the gateway must not need the registry's or the feeds'
    // gRPC clients: point them nowhere, so only the handlers can answer.
    // (The residence clients stay: entitlements have no direct path.)
    let gateway_registry = if registry_reachable && !local_exports {
        url(household)
    } else {
        nowhere.clone()
    };
    let gateway_feeds = if local_exports { nowhere } else { url(feeds) };
    let mut sources =
        popbase_gateway::sources::Sources::connect_lazy(&gateway_registry, &url(residence), &gateway_feeds, &Dialer::plaintext())
            .expect("sources");
    if local_exports {
        sources = sources
            .with_local_export(Arc::new(popbase_household::export::RegistryExports::new(registry.clone())))
            .with_local_export(Arc::new(popbase_residence::export::PermitExports::new(permits.clone())))
            .with_local_export(Arc::new(popbase_feeds::export::FeedExports::new(feed_store.clone())))
            .with_handlers(
                popbase_gateway::calls::LocalHandlers {
                    registry: Some(Arc::new(popbase_household::grpc::RegistryService::new(registry.clone()))),
                    permits: Some(Arc::new(popbase_residence::grpc::PermitsService::new(permits.clone()))),
                    feeds: Some(Arc::new(popbase_feeds::grpc::FeedsService::new(
                        feed_store.clone(),
                        popbase_feeds::directory::PersonDirectory::new(&url(household), &url(residence), &Dialer::plaintext())
                            .expect("directory"),
                    ))),
                },
                &metrics,
            );
    }
    let ledger = popbase_gateway::ledger::LocalLedger::start(open("ledger", popbase_gateway::tables::SCHEMA)).expect("ledger");
    let (gate, gateway_services) = popbase_gateway::role::build(&config, Arc::new(ledger.clone()), sources.clone()).expect("gateway");
    let mut tasks = Vec::new();
    for (mut services, listener) in roles.into_iter().chain(std::iter::once((gateway_services, gateway_l))) {
        services.limits = config.limits.clone();
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            server::serve(services, listener, metrics, shutdown).await.expect("serve");
        }));
    }
    Platform {
        dir,
        pki,
        people,
        gateway,
        config,
        shutdown,
        gate,
        ledger,
        registry: registry_handle,
        sources,
        metrics,
        tasks,
    }
}

impl Platform {
    /// A TLS channel presenting `department`'s client certificate (CN from the catalogue).
    pub async fn department(&self, common_name: &str) -> Channel {
        let creds = self.pki.issue(&[], common_name);
        self.channel(Some(Identity::from_pem(creds.cert_pem, creds.key_pem))).await
    }

    /// A department's channel whose streams take at most 64 KiB before
    /// their reader takes something: a list left unread holds its finder
    /// (and its place) after a few parts, whatever hyper's default window.
    #[allow(dead_code)] // used by some test binaries only
    pub async fn department_reading_slowly(&self, common_name: &str) -> Channel {
        let creds = self.pki.issue(&[], common_name);
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.pki.ca_pem))
            .domain_name("localhost")
            .identity(Identity::from_pem(creds.cert_pem, creds.key_pem));
        Channel::from_shared(format!("https://{}", self.gateway))
            .expect("uri")
            .tls_config(tls)
            .expect("tls")
            .initial_stream_window_size(65_535)
            .connect()
            .await
            .expect("connect over TLS")
    }

    /// A TLS channel with the given client identity (or none).
    pub async fn channel(&self, identity: Option<Identity>) -> Channel {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.pki.ca_pem))
            .domain_name("localhost");
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        Channel::from_shared(format!("https://{}", self.gateway))
            .expect("uri")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect over TLS")
    }

    /// Audit records written so far.
    pub fn audit_count(&self) -> u64 {
        self.ledger.audit.head().seq
    }

    /// The audit chain's record `seq`, read from the ledger's store.
    #[allow(dead_code)] // used by some test binaries only
    pub fn audit_record(&self, seq: u64) -> popbase_proto::gateway::AuditRecord {
        use popbase_storage::Read as _;
        let key = popbase_gateway::tables::audit_key(seq);
        self.ledger
            .store()
            .get(&popbase_gateway::tables::AUDIT, &key)
            .expect("read")
            .expect("record")
            .value
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// An active resident medical-insurance record of `id` since today, in
/// 淄川 (370303), as the bureau sends it.
#[allow(dead_code)] // used by some test binaries only
pub fn new_insurance(id: &str, record_id: &str) -> FeedRecord {
    FeedRecord {
        source: Source::MedicalInsurance as i32,
        record_id: record_id.into(),
        as_of_unix_millis: Utc::now().timestamp_millis() - 1_000,
        payload: Some(Payload::MedicalInsurance(MedicalInsurance {
            id_number: id.into(),
            scheme: MedicalScheme::UrbanRuralResident as i32,
            status: EnrollmentStatus::Active as i32,
            since: Some(today().into()),
            insured_county_code: "370303".into(),
        })),
    }
}

/// A death of `id_number` as public security submits it through
/// `RegistryEvents`, recorded by `officer`; `actor` is what the caller
/// claims in the event's context (the gateway puts its own there).
#[allow(dead_code)] // used by some test binaries only
pub fn death_submission(id_number: &str, officer: &str, actor: &str) -> popbase_proto::gateway::LifeEventSubmission {
    use popbase_proto::gateway::life_event_submission::Event;
    use popbase_proto::household::{EventContext, RegisterDeathRequest};
    popbase_proto::gateway::LifeEventSubmission {
        purpose: "HOUSEHOLD_REGISTRATION".into(),
        officer_id: officer.into(),
        event: Some(Event::Death(RegisterDeathRequest {
            context: Some(EventContext {
                actor: actor.into(),
                occurred_on: Some(today().into()),
            }),
            id_number: id_number.into(),
            death_certificate_number: "D370303202612040001".into(),
        })),
    }
}

/// The `popbase-reason` of a refusal.
pub fn reason(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(popbase_common::error::REASON_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}
