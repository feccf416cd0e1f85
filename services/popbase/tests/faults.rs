//! Failing dependencies, tried as they fail in production: each role a
//! separate process over the mesh, one of them frozen (SIGSTOP) or killed.
//! Calls end within their deadlines, and a bulk export releases no row it
//! cannot first put on the audit trail.

mod support;

use std::time::{Duration, Instant};

use arrow_array::{Array, RecordBatch, StringArray};
use arrow_flight::{FlightClient, Ticket as FlightTicket};
use futures::TryStreamExt;
use popbase_proto::common::Date;
use popbase_proto::gateway::consents_client::ConsentsClient;
use popbase_proto::gateway::persons_client::PersonsClient;
use popbase_proto::gateway::{GrantConsentRequest, ListAccessesRequest, PersonSummaryRequest};
use support::{Children, Mesh, Roles, plain_channel, popbase, serve_internal_roles_with, serve_with, signal, token, with_token};
use tonic::Code;

/// Short enough for a test, long enough for a healthy call on a busy CI machine.
const UPSTREAM_TIMEOUT_SECS: &str = "2";

const IDENTIFIED_PERSONS: &str = r#"{"dataset":"persons","purpose":"REGISTRY_RECONCILIATION","columns":["id_number","name"]}"#;

/// Rows received from one DoGet before it ended, and how it ended.
async fn export(gateway: &str, police: &str) -> (Vec<RecordBatch>, Result<(), tonic::Status>) {
    let mut client = FlightClient::new(plain_channel(gateway));
    client.add_header("authorization", police).expect("header");
    let mut stream = match client.do_get(FlightTicket::new(IDENTIFIED_PERSONS)).await {
        Ok(stream) => stream,
        Err(e) => return (Vec::new(), Err(status_of(e))),
    };
    let mut batches = Vec::new();
    loop {
        match stream.try_next().await {
            Ok(Some(batch)) => batches.push(batch),
            Ok(None) => return (batches, Ok(())),
            Err(e) => return (batches, Err(status_of(e))),
        }
    }
}

fn status_of(error: arrow_flight::error::FlightError) -> tonic::Status {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => tonic::Status::unknown(other.to_string()),
    }
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn first_id_number(batches: &[RecordBatch]) -> String {
    let ids = batches[0]
        .column_by_name("id_number")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .expect("an id_number column");
    assert!(ids.is_valid(0));
    ids.value(0).to_string()
}

#[tokio::test]
async fn calls_end_within_their_deadlines_and_exports_fail_closed_when_the_ledger_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let generated = popbase(data, &["gen", "--persons", "12000"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let roles = Roles::free();
    let mesh = Mesh::new(&data.join("mesh"));
    let env = [("POPBASE_LIMITS_UPSTREAM_TIMEOUT_SECS", UPSTREAM_TIMEOUT_SECS)];
    let mut children = Children::default();
    let mut internal = std::collections::HashMap::new();
    for (role, process) in serve_internal_roles_with(data, &roles, &mesh, &env) {
        internal.insert(role, children.0.len());
        children.push(process.child);
    }
    let gateway = serve_with(data, "gateway", "127.0.0.1:0".parse().expect("addr"), &roles, &mesh, &env);
    children.push(gateway.child);
    let police = token(data, "public_security");

    // A whole export leaves, and each resident in it sees it in their access log.
    let (batches, ended) = export(&gateway.addr, &police).await;
    ended.expect("the export completes");
    // More than one batch: the old export held back only its last batch
    // until the audit, so with the ledger gone the first one leaked.
    assert!(batches.len() >= 2, "{} batches", batches.len());
    let subject = first_id_number(&batches);
    let platform = token(data, "service_platform");
    let mut consents = ConsentsClient::new(plain_channel(&gateway.addr));
    let accesses = consents
        .list_accesses(with_token(
            &platform,
            ListAccessesRequest {
                purpose: "CITIZEN_ACCESS_LOG".into(),
                subject_id_number: subject.clone(),
                limit: 10,
                ..Default::default()
            },
        ))
        .await
        .expect("the resident's access log")
        .into_inner()
        .accesses;
    let export_access = accesses
        .iter()
        .find(|a| a.interface == "Export.persons")
        .expect("the export is in the resident's access log");
    assert_eq!(export_access.department, "public_security");
    assert!(
        export_access.allowed && export_access.fields.contains(&"name".to_string()),
        "{export_access:?}"
    );

    // The household role frozen: a query that needs it ends within the
    // upstream deadline rather than hanging, and so does an export.
    let civil = token(data, "civil_affairs");
    let today = popbase_domain::clock::today();
    let grant = GrantConsentRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: subject.clone(),
        department: "civil_affairs".into(),
        interface: "PersonSummary".into(),
        grant_purpose: "TEMPORARY_ASSISTANCE".into(),
        valid_from: Some(Date::from(today)),
        valid_until: Some(Date::from(today + chrono::Days::new(30))),
        use_limit: 10,
        ..Default::default()
    };
    consents.grant(with_token(&platform, grant)).await.expect("consent granted");
    let household = &children.0[internal["household"]];
    signal(household, "STOP");
    let started = Instant::now();
    let frozen = PersonsClient::new(plain_channel(&gateway.addr))
        .person_summary(with_token(
            &civil,
            PersonSummaryRequest {
                purpose: "TEMPORARY_ASSISTANCE".into(),
                id_number: subject.clone(),
                as_of: None,
            },
        ))
        .await
        .expect_err("the household role does not answer");
    let waited = started.elapsed();
    assert!(matches!(frozen.code(), Code::DeadlineExceeded | Code::Unavailable), "{frozen:?}");
    assert!(waited < Duration::from_secs(8), "answered after {waited:?}");
    let started = Instant::now();
    let (batches, ended) = export(&gateway.addr, &police).await;
    assert_eq!(rows(&batches), 0);
    let refused = ended.expect_err("no export from a frozen role");
    assert!(matches!(refused.code(), Code::DeadlineExceeded | Code::Unavailable), "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "answered after {:?}", started.elapsed());
    signal(&children.0[internal["household"]], "CONT");

    // The ledger killed: not one row leaves, names least of all.
    signal(&children.0[internal["ledger"]], "KILL");
    let (batches, ended) = export(&gateway.addr, &police).await;
    assert_eq!(rows(&batches), 0, "rows left without an audit record");
    let refused = ended.expect_err("an export the trail cannot record is refused");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
}
