//! End to end: `popbase serve --role all` as a real process on ephemeral ports.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use support::scrape;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Starts `popbase serve --role all` on `data`, ephemeral ports.
fn start(data: &std::path::Path) -> (std::process::Child, HashMap<String, String>) {
    support::serve_all_in_one(data, &[])
}

async fn health(addr: &str, service: &str) -> i32 {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest { service: service.into() })
        .await
        .expect("health check")
        .into_inner()
        .status
}

#[tokio::test]
async fn all_roles_serve_health_and_stop_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, roles) = start(dir.path());
    assert_eq!(
        roles.len(),
        6,
        "every role and the metrics endpoint report their address: {roles:?}"
    );
    for role in ["household", "residence", "feeds", "ledger", "gateway"] {
        let addr = &roles[role];
        assert_eq!(health(addr, "").await, ServingStatus::Serving as i32, "{role} overall health");
    }
    for role in ["household", "residence", "feeds", "ledger"] {
        assert_eq!(
            health(&roles[role], "popbase.ops.v1.Ops").await,
            ServingStatus::Serving as i32,
            "{role} ops service"
        );
        let mut ops = popbase_proto::ops::ops_client::OpsClient::connect(format!("http://{}", roles[role]))
            .await
            .expect("connect");
        let stats = ops
            .get_store_stats(popbase_proto::ops::GetStoreStatsRequest {})
            .await
            .expect("stats")
            .into_inner();
        assert_eq!(stats.role, role);
        assert_eq!(stats.stores.len(), 1);
        assert_eq!(stats.stores[0].store, role);
    }

    // Prometheus sees the calls just made and every store's figures.
    let text = scrape(&roles["metrics"], "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("popbase_grpc_requests_total{role=\"household\",method=\"/popbase.ops.v1.Ops/GetStoreStats\",code=\"0\"} 1"),
        "{text}"
    );
    assert!(text.contains("popbase_grpc_request_duration_seconds_count{role=\"gateway\",method=\"/grpc.health.v1.Health/Check\"} 1"));
    for store in ["household", "residence", "feeds"] {
        assert!(text.contains(&format!("popbase_store_last_seq{{store=\"{store}\"}} 0")), "{store}");
    }
    assert!(scrape(&roles["metrics"], "/other").starts_with("HTTP/1.1 404"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "popbase did not stop within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean exit after SIGTERM, got {exit:?}");
    // Flushed stores reopen: the data directory is intact and unlocked.
    for role in ["household", "residence", "feeds"] {
        assert!(dir.path().join(role).join("CURRENT").exists(), "{role} store on disk");
    }
}

#[tokio::test]
async fn a_second_process_on_the_same_data_dir_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut first, _) = start(dir.path());
    let output = Command::new(env!("CARGO_BIN_EXE_popbase"))
        .args(["serve", "--role", "household", "--data"])
        .arg(dir.path())
        .args(["--household-addr", "127.0.0.1:0"])
        // Past the mesh check (a split role needs a certificate or this), to the store's lock.
        .env("POPBASE_MESH_PLAINTEXT", "true")
        .output()
        .expect("run second");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("locked by another process"), "{stderr}");
    let _ = first.kill();
    let _ = first.wait();
}

#[tokio::test]
async fn checkpoint_command_checkpoints_a_running_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = Command::new(env!("CARGO_BIN_EXE_popbase"))
        .args(["gen", "--persons", "500", "--seed", "3", "--data"])
        .arg(dir.path())
        .output()
        .expect("gen");
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let (mut child, roles) = start(dir.path());
    let target = format!("http://{}", roles["household"]);
    let backup = |label: &str| {
        Command::new(env!("CARGO_BIN_EXE_popbase"))
            .args(["checkpoint", "--target", &target, "--label", label])
            .output()
            .expect("backup")
    };
    let output = backup("nightly-1");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("checkpoint store=household seq="), "{stdout}");
    let checkpoint = dir.path().join("checkpoints").join("nightly-1").join("household");
    assert!(
        checkpoint.join("CURRENT").exists(),
        "checkpoint written where the role's backup dir says"
    );
    // The same label twice is refused, and a label that is not a folder name is refused.
    let again = backup("nightly-1");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let bad = backup("../escape");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("InvalidArgument"));

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    // The checkpoint opens as a store holding the generated registry.
    let store = popbase_storage::Store::open(&checkpoint, popbase_household::tables::SCHEMA, Default::default()).expect("open checkpoint");
    let registry = popbase_household::Registry::new(store);
    assert!(registry.count_persons_under("3703").expect("count") > 0);
}

/// Registers `id` as a resident (居住登记) at a Zibo committee since 2024-01-10.
async fn register_resident(address: &str, id: &str) {
    use popbase_proto::common::{Address, Date};
    use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
    use popbase_proto::residence::{RegisterResidenceRequest, ResidenceBasis, ResidenceRegistration};
    let mut residence = ResidencePermitsClient::connect(format!("http://{address}"))
        .await
        .expect("residence");
    residence
        .register_residence(RegisterResidenceRequest {
            registration: Some(ResidenceRegistration {
                id_number: id.into(),
                name: "外来人员".into(),
                address: Some(Address {
                    committee_code: "370302001001".into(),
                    detail: format!("和平路{}号", &id[14..17]),
                }),
                registered_on: Some(Date {
                    year: 2024,
                    month: 1,
                    day: 10,
                }),
                basis: ResidenceBasis::Employment as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("registered");
}

/// A permit holder settles in the city through the registry; the residence
/// role, following the registry's change log, ends the permit by itself.
#[tokio::test]
async fn settling_ends_the_residence_permit_without_a_hand() {
    use popbase_proto::household::life_events_client::LifeEventsClient;
    use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
    use support::writes::{permit_ends, permit_holder, settle};

    const ID: &str = "110105199001011232";
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, roles) = start(dir.path());
    let mut residence = ResidencePermitsClient::connect(format!("http://{}", roles["residence"]))
        .await
        .expect("residence");
    let mut events = LifeEventsClient::connect(format!("http://{}", roles["household"]))
        .await
        .expect("household");
    permit_holder(&mut residence, ID).await;
    settle(&mut events, ID).await;
    assert!(permit_ends(&mut residence, ID).await, "the follower ended the permit");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// A permit not endorsed in time reads as expired at once, and the
/// residence role marks it in its store at start (catching up on the days
/// it was down) and at each city midnight, so exports carry the change.
#[tokio::test]
async fn a_lapsed_permit_reads_expired_and_is_marked_expired_at_start() {
    use popbase_proto::common::Date;
    use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
    use popbase_proto::residence::{ApplyForPermitRequest, GetResidentRequest, PermitStatus, ResidenceBasis};

    const ID: &str = "110105199001011275";
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, roles) = start(dir.path());
    let mut residence = ResidencePermitsClient::connect(format!("http://{}", roles["residence"]))
        .await
        .expect("residence");
    register_resident(&roles["residence"], ID).await;
    let issued = popbase_domain::clock::today() - chrono::Duration::days(400);
    let decision = residence
        .apply_for_permit(ApplyForPermitRequest {
            id_number: ID.into(),
            on: Some(Date::from(issued)),
            basis: ResidenceBasis::Employment as i32,
            evidence: "齐鲁石化".into(),
        })
        .await
        .expect("decided")
        .into_inner();
    let permit = decision.permit.expect("granted");
    let resident = residence
        .get_resident(GetResidentRequest { id_number: ID.into() })
        .await
        .expect("resident")
        .into_inner();
    let read = &resident.permits[0];
    assert_eq!(read.status(), PermitStatus::Expired, "read time: past valid_until is expired");
    assert_eq!(read.status_since, permit.valid_until);
    let stop = |child: &mut std::process::Child| {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    };
    stop(&mut child);

    let stored = |dir: &std::path::Path| {
        let store = popbase_storage::Store::open(
            dir.join("residence"),
            popbase_residence::tables::SCHEMA,
            popbase_storage::StoreOptions::default(),
        )
        .expect("residence store");
        popbase_residence::Permits::new(store)
            .permit(&permit.permit_number)
            .expect("read")
            .expect("permit")
    };
    assert_eq!(stored(dir.path()).status(), PermitStatus::Valid, "granted valid, not yet marked");
    // Restarted: the expiry run at start marks it.
    let (mut child, _) = start(dir.path());
    stop(&mut child);
    let marked = stored(dir.path());
    assert_eq!(marked.status(), PermitStatus::Expired);
    assert_eq!(marked.status_since, permit.valid_until);
}

/// A department streams records into the feeds role; the role matches them
/// against the residence service in the same process.
#[tokio::test]
async fn feed_ingest_stream_matches_against_the_other_services() {
    use popbase_proto::feeds::feed_record::Payload;
    use popbase_proto::feeds::feeds_client::FeedsClient;
    use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, MedicalInsurance, MedicalScheme, Outcome, RecordsOfRequest, Source};
    use popbase_proto::residence::ResidenceBasis;
    use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;

    const RESIDENT: &str = "110105199001011232";
    const STRANGER: &str = "110105199001011216";
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, roles) = start(dir.path());
    let mut residence = ResidencePermitsClient::connect(format!("http://{}", roles["residence"]))
        .await
        .expect("residence");
    register_resident(&roles["residence"], RESIDENT).await;
    let insured = |record_id: &str, person: &str| FeedRecord {
        source: Source::MedicalInsurance as i32,
        record_id: record_id.into(),
        as_of_unix_millis: 1_700_000_000_000,
        payload: Some(Payload::MedicalInsurance(MedicalInsurance {
            id_number: person.into(),
            scheme: MedicalScheme::UrbanRuralResident as i32,
            status: EnrollmentStatus::Active as i32,
            ..Default::default()
        })),
    };
    let mut malformed = insured("mi-3", RESIDENT);
    malformed.record_id.clear();
    let records = vec![
        insured("mi-1", RESIDENT),
        insured("mi-2", STRANGER),
        malformed,
        insured("mi-1", RESIDENT),
    ];
    let mut feeds = FeedsClient::connect(format!("http://{}", roles["feeds"])).await.expect("feeds");
    let summary = feeds.ingest(tokio_stream::iter(records)).await.expect("ingested").into_inner();
    assert_eq!(
        (
            summary.received,
            summary.accepted,
            summary.unmatched,
            summary.rejected,
            summary.duplicates
        ),
        (4, 1, 1, 1, 1),
        "{:?}",
        summary.results
    );
    let outcomes: Vec<(u64, Outcome, String)> = summary.results.iter().map(|r| (r.index, r.outcome(), r.field.clone())).collect();
    assert_eq!(
        outcomes,
        vec![
            (1, Outcome::Unmatched, "subject".to_string()),
            (2, Outcome::Rejected, "record_id".to_string()),
            (3, Outcome::Duplicate, String::new()),
        ]
    );
    let records = feeds
        .records_of(RecordsOfRequest {
            id_number: STRANGER.into(),
            as_of_unix_millis: 0,
        })
        .await
        .expect("records")
        .into_inner()
        .records;
    assert_eq!(records.len(), 1, "the unmatched record is kept");

    // Entitlements: the insured permit holder qualifies and has used resident
    // medical insurance; a second permit holder without insurance is found.
    use popbase_proto::residence::entitlements_client::EntitlementsClient;
    use popbase_proto::residence::{ApplyForPermitRequest, FindUnusedRequest, GetEntitlementsRequest, Policy};
    const NEIGHBOUR: &str = "110105198001011238";
    register_resident(&roles["residence"], NEIGHBOUR).await;
    for id in [RESIDENT, NEIGHBOUR] {
        let decision = residence
            .apply_for_permit(ApplyForPermitRequest {
                id_number: id.into(),
                on: None,
                basis: ResidenceBasis::Employment as i32,
                evidence: "齐鲁石化".into(),
            })
            .await
            .expect("decided")
            .into_inner();
        assert!(decision.granted, "{:?}", decision.conditions);
    }
    let mut entitlements = EntitlementsClient::connect(format!("http://{}", roles["residence"]))
        .await
        .expect("entitlements");
    let answer = entitlements
        .get_entitlements(GetEntitlementsRequest {
            id_number: RESIDENT.into(),
            on: None,
        })
        .await
        .expect("entitlements")
        .into_inner();
    let medical = answer
        .entitlements
        .iter()
        .find(|e| e.policy() == Policy::ResidentMedicalInsurance)
        .expect("medical");
    assert!(medical.qualifies && medical.used, "{medical:?}");
    let mut unused = entitlements
        .find_unused(FindUnusedRequest {
            policy: Policy::ResidentMedicalInsurance as i32,
            division_code: "3703".into(),
            on: None,
        })
        .await
        .expect("find")
        .into_inner();
    let mut found = Vec::new();
    while let Some(e) = unused.message().await.expect("stream") {
        found.push(e.id_number);
    }
    assert_eq!(found, vec![NEIGHBOUR.to_string()], "政策找人: the uninsured permit holder");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// The gateway of `popbase serve` answers a token-authenticated department,
/// writes its chain head outside the store at shutdown, and
/// `popbase audit verify` accepts the trail, then catches a deleted record.
#[tokio::test]
async fn gateway_audit_trail_verifies_offline_and_catches_tampering() {
    use popbase_proto::gateway::ChainHeadRequest;
    use popbase_proto::gateway::audit_client::AuditClient;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, roles) = start(dir.path());
    let popbase = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_popbase"))
            .arg("--data")
            .arg(dir.path())
            .args(args)
            .output()
            .expect("run popbase")
    };
    let token = popbase(&["token", "--department", "audit"]);
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).expect("utf8").trim().to_string();
    let mut client = AuditClient::connect(format!("http://{}", roles["gateway"])).await.expect("connect");
    for _ in 0..3 {
        let mut request = tonic::Request::new(ChainHeadRequest { purpose: "AUDIT".into() });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
        client.get_chain_head(request).await.expect("token accepted");
    }
    let anonymous = client
        .get_chain_head(ChainHeadRequest { purpose: "AUDIT".into() })
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let unknown = popbase(&["token", "--department", "nobody"]);
    assert!(!unknown.status.success());

    // The audit writer on /metrics: four durable records, the lag it cost.
    let text = scrape(&roles["metrics"], "/metrics");
    assert!(text.contains("popbase_audit_records_total 4\n"), "{text}");
    assert!(text.contains("popbase_audit_head_seq 4\n"), "{text}");
    assert!(text.contains("popbase_audit_queue_depth 0\n"), "{text}");
    let waited: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("popbase_audit_wait_seconds_total "))
        .and_then(|v| v.parse().ok())
        .expect("audit lag counter");
    assert!(waited > 0.0, "fsyncs take time: {waited}");

    // Backups go through the ledger's internal port, never the department-facing one.
    let mut public_ops = popbase_proto::ops::ops_client::OpsClient::connect(format!("http://{}", roles["gateway"]))
        .await
        .expect("connect");
    let refused = public_ops
        .get_store_stats(popbase_proto::ops::GetStoreStatsRequest {})
        .await
        .expect_err("no Ops on the department port");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
    let backup = popbase(&[
        "checkpoint",
        "--target",
        &format!("http://{}", roles["ledger"]),
        "--label",
        "audit-1",
    ]);
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    assert!(String::from_utf8_lossy(&backup.stdout).starts_with("checkpoint store=ledger seq="));

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let head = dir.path().join("audit-head.log");
    let head_arg = head.to_str().expect("utf8");
    let copy = dir.path().join("checkpoints").join("audit-1").join("ledger");
    let copied = popbase(&["audit", "verify", "--store", copy.to_str().expect("utf8"), "--head", head_arg]);
    assert!(
        String::from_utf8_lossy(&copied.stdout).contains("audit chain verified: 4 records"),
        "the backup holds the whole trail: {}",
        String::from_utf8_lossy(&copied.stdout)
    );
    let kept = std::fs::read_to_string(&head).expect("chain head written at shutdown");
    assert!(kept.starts_with("4 "), "four records (three answers, one refusal): {kept}");
    assert_eq!(kept.lines().last().map(|l| l.split(' ').count()), Some(4), "signed: {kept}");

    let store = dir.path().join("ledger");
    let verify = |args: &[&str]| popbase(&[&["audit", "verify", "--store", store.to_str().expect("utf8")], args].concat());
    // The heads are signed with the ledger's key, whose public half is logged at start.
    let key = popbase_gateway::audit::head::HeadSigner::load_or_create(&dir.path().join("ledger-keys/audit-head.pk8"))
        .expect("the ledger's head key")
        .public_hex();
    let ok = verify(&["--head", head_arg, "--head-key", &key]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit chain verified: 4 records"));
    // A head line added by someone without the key is refused, naming its line.
    let forged = dir.path().join("forged-head.log");
    std::fs::write(&forged, format!("{kept}4 {} 1 {}\n", "00".repeat(32), "11".repeat(64))).expect("forge");
    let refused = verify(&["--head", forged.to_str().expect("utf8"), "--head-key", &key]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("line 2") && stderr.contains("not signed"), "{stderr}");
    // No kept head: refused unless said explicitly; a missing store: refused, not created.
    assert!(!verify(&[]).status.success(), "--head or --no-head is required");
    let missing = dir.path().join("no-such-ledger");
    let absent = popbase(&["audit", "verify", "--store", missing.to_str().expect("utf8"), "--no-head"]);
    assert!(!absent.status.success());
    assert!(
        String::from_utf8_lossy(&absent.stderr).contains("no ledger store"),
        "{}",
        String::from_utf8_lossy(&absent.stderr)
    );
    assert!(!missing.exists(), "nothing is created");

    {
        let opened = popbase_storage::Store::open(&store, popbase_gateway::tables::SCHEMA, Default::default()).expect("open");
        let mut batch = popbase_storage::Batch::new("attacker", "delete");
        batch.delete(&popbase_gateway::tables::AUDIT, popbase_gateway::tables::audit_key(2));
        opened.commit(batch).expect("delete record 2");
    }
    let broken = verify(&["--no-head"]);
    assert!(!broken.status.success());
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(stdout.contains("BROKEN at record 2"), "{stdout}");
}
