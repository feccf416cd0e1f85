//! Departments write through the gateway of a split-role cluster (separate
//! processes, every internal hop mTLS): a feed of their own kind lands, one
//! of another department's kind is refused, a death registered by public
//! security carries the department and officer as its actor with one audit
//! record, and with the ledger down a write is not applied at all.

mod support;

use chrono::Utc;
use popbase_common::mesh::MeshIdentity;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, MedicalInsurance, MedicalScheme, Source};
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::gateway::department_feeds_client::DepartmentFeedsClient;
use popbase_proto::gateway::life_event_submission::Event;
use popbase_proto::gateway::registry_events_client::RegistryEventsClient;
use popbase_proto::gateway::{ChainHeadRequest, FeedSubmission, LifeEventSubmission};
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::{EventContext, GetPersonRequest, ListPersonsRequest, RegisterDeathRequest, RegistrationStatus};
use support::{
    Children, Mesh, Roles, plain_channel, popbase, reason, serve, serve_internal_roles, stop_all, tls_channel, token, with_token,
};
use tonic::Code;

fn insurance(id: &str) -> FeedRecord {
    FeedRecord {
        source: Source::MedicalInsurance as i32,
        record_id: format!("MI-{id}"),
        as_of_unix_millis: Utc::now().timestamp_millis() - 1_000,
        payload: Some(Payload::MedicalInsurance(MedicalInsurance {
            id_number: id.into(),
            scheme: MedicalScheme::UrbanRuralResident as i32,
            status: EnrollmentStatus::Active as i32,
            since: None,
            insured_county_code: "370303".into(),
        })),
    }
}

fn death(id: &str) -> LifeEventSubmission {
    LifeEventSubmission {
        purpose: "HOUSEHOLD_REGISTRATION".into(),
        officer_id: "police-370303-07".into(),
        event: Some(Event::Death(RegisterDeathRequest {
            context: Some(EventContext {
                actor: String::new(),
                occurred_on: None,
            }),
            id_number: id.into(),
            death_certificate_number: "D3703032026120401".into(),
        })),
    }
}

#[tokio::test]
async fn departments_write_through_the_gateway_and_nothing_lands_unaudited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let generated = popbase(data, &["gen", "--city", "3703", "--persons", "300", "--seed", "7"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let roles = Roles::free();
    let mesh = Mesh::new(&data.join("mesh"));
    // Every process in `children`, the ledger too: a failing assertion
    // must leave none behind holding the test's output open.
    let mut children = Children::default();
    let (mut ledger_pid, mut household_pid) = (None, String::new());
    for (role, process) in serve_internal_roles(data, &roles, &mesh) {
        if role == "household" {
            household_pid = process.child.id().to_string();
        }
        if role == "ledger" {
            ledger_pid = Some(process.child.id());
        }
        children.push(process.child);
    }
    let ledger_pid = ledger_pid.expect("ledger started");
    let gateway = serve(data, "gateway", "127.0.0.1:0".parse().expect("addr"), &roles, &mesh);
    children.push(gateway.child);

    // Two active residents, read as the gateway would (a test holds its certificate).
    let household = tls_channel(
        &roles.household.to_string(),
        mesh.client_tls(Some(&mesh.issued(MeshIdentity::Gateway))),
    );
    let persons = HouseholdRegistryClient::new(household.clone())
        .list_persons(ListPersonsRequest {
            division_code: "3703".into(),
            page: None,
        })
        .await
        .expect("persons")
        .into_inner()
        .persons;
    let active: Vec<String> = persons
        .iter()
        .filter(|p| p.status == RegistrationStatus::Active as i32)
        .map(|p| p.id_number.clone())
        .take(3)
        .collect();
    assert_eq!(active.len(), 3, "the generated city has active residents");

    let channel = plain_channel(&gateway.addr);
    let submit = |department: &str, officer: &str| {
        let (channel, token) = (channel.clone(), token(data, department));
        let message = FeedSubmission {
            purpose: "DEPARTMENT_FEED".into(),
            officer_id: officer.into(),
            records: vec![insurance(&active[0])],
        };
        async move {
            DepartmentFeedsClient::new(channel)
                .submit(with_token(&token, tokio_stream::iter(vec![message])))
                .await
        }
    };
    let summary = submit("medical_insurance", "mi-01")
        .await
        .expect("medical insurance sends its own records")
        .into_inner();
    assert_eq!((summary.received, summary.accepted), (1, 1), "{summary:?}");
    let refused = submit("hrss", "hr-01").await.expect_err("not hrss's kind");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), Some("KIND_NOT_APPROVED"));

    // A death: the department and officer are the actor; one audit record.
    let audit = token(data, "audit");
    let head = || async {
        AuditClient::new(plain_channel(&gateway.addr))
            .get_chain_head(with_token(&audit, ChainHeadRequest { purpose: "AUDIT".into() }))
            .await
            .expect("chain head")
            .into_inner()
            .seq
    };
    let police = token(data, "public_security");
    let before = head().await;
    let receipt = RegistryEventsClient::new(channel.clone())
        .submit(with_token(&police, death(&active[0])))
        .await
        .expect("death registered")
        .into_inner();
    assert_eq!(receipt.event.expect("event").actor, "public_security:police-370303-07");
    assert_eq!(head().await, before + 2, "the head query before, and the death");

    // The registry frozen: the gateway answers within its deadline, audited.
    let _ = std::process::Command::new("kill").args(["-STOP", &household_pid]).status();
    let started = std::time::Instant::now();
    let frozen = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        RegistryEventsClient::new(channel.clone()).submit(with_token(&police, death(&active[2]))),
    )
    .await
    .expect("the gateway answers, not hangs")
    .expect_err("no answer from the registry");
    let _ = std::process::Command::new("kill").args(["-CONT", &household_pid]).status();
    assert_eq!(frozen.code(), Code::Unavailable, "{frozen:?}");
    // Usually the forward times out ("did not answer within 10 s"); once in
    // about eight runs the gateway's call failed at once with a transport
    // error instead ("the registry did not answer"). Either is the prompt,
    // audited refusal this step is about; why the connection broke is not
    // yet understood.
    assert!(frozen.message().contains("did not answer"), "{}", frozen.message());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "answered in {:?}",
        started.elapsed()
    );

    // The ledger down: the write is refused and never reaches the registry.
    let _ = std::process::Command::new("kill").args(["-KILL", &ledger_pid.to_string()]).status();
    if let Some(at) = children.0.iter().position(|c| c.id() == ledger_pid) {
        let _ = children.0.remove(at).wait();
    }
    let down = RegistryEventsClient::new(channel.clone())
        .submit(with_token(&police, death(&active[1])))
        .await
        .expect_err("no audit, no write");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    let still = HouseholdRegistryClient::new(household)
        .get_person(GetPersonRequest {
            id_number: active[1].clone(),
        })
        .await
        .expect("person")
        .into_inner();
    assert_eq!(still.status, RegistrationStatus::Active as i32, "not applied");
    drop(channel);
    stop_all(&mut children);
}
