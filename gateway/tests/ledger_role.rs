//! The `ledger` role over a real socket, as a gateway replica in another
//! pod reaches it: records appended one at a time and a chunk at a time
//! share one chain, and malformed appends are refused before the chain.

use std::sync::Arc;

use popbase_common::metrics::Metrics;
use popbase_common::{Config, Shutdown, server};
use popbase_gateway::audit::{AuditEntry, verify};
use popbase_gateway::ledger::{Ledger, LocalLedger, RemoteLedger};
use popbase_gateway::role::ledger_services;
use popbase_gateway::tables;
use popbase_proto::ledger::AppendManyRequest;
use popbase_proto::ledger::ledger_client::LedgerClient;
use popbase_storage::{Store, StoreOptions};
use tonic::Code;

fn entry(subject: String) -> AuditEntry {
    AuditEntry {
        department: "education".into(),
        interface: "EnrollmentCheck".into(),
        purpose: "COMPULSORY_EDUCATION_ENROLLMENT".into(),
        subjects: vec![subject],
        allowed: true,
        count: 1,
        ..Default::default()
    }
}

/// A subject pseudonym's shape: 32 hex digits.
fn pseudonym(n: usize) -> String {
    format!("{n:032x}")
}

#[tokio::test]
async fn appends_one_and_many_through_the_ledger_role_into_one_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open");
    let local = LocalLedger::start(store.clone()).expect("ledger");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    tokio::spawn(server::serve(
        ledger_services(&local, &Config::default()),
        listener,
        Metrics::new(),
        shutdown.clone(),
    ));
    let remote: Arc<dyn Ledger> =
        Arc::new(RemoteLedger::connect_lazy(&format!("http://{addr}"), &popbase_common::upstream::Dialer::plaintext()).expect("client"));

    assert_eq!(remote.append(entry(pseudonym(0))).await.expect("append"), 1);
    let chunk: Vec<AuditEntry> = (1..=300).map(|n| entry(pseudonym(n))).collect();
    assert_eq!(
        remote.append_many(chunk).await.expect("append_many"),
        (2..=301).collect::<Vec<u64>>()
    );
    assert_eq!(remote.append_many(Vec::new()).await.expect("nothing"), Vec::<u64>::new());
    assert_eq!(remote.head().await.expect("head").seq, 301);

    // Malformed appends never reach the chain.
    let mut raw = LedgerClient::connect(format!("http://{addr}")).await.expect("connect");
    let empty = raw
        .append_many(AppendManyRequest { entries: Vec::new() })
        .await
        .expect_err("no entries");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let id_number = raw
        .append_many(AppendManyRequest {
            entries: vec![entry(pseudonym(1)), entry("370302199001011232".into())],
        })
        .await
        .expect_err("an ID number as a subject");
    assert_eq!(id_number.code(), Code::InvalidArgument);
    assert_eq!(
        id_number.metadata().get("popbase-field").and_then(|v| v.to_str().ok()),
        Some("entries[1].subjects")
    );
    assert!(!id_number.message().contains("370302199001011232"), "{}", id_number.message());
    assert_eq!(remote.head().await.expect("head").seq, 301, "nothing of a refused call is chained");

    shutdown.trigger();
    assert_eq!(verify::verify(&store, &[]).broken, None);
}
