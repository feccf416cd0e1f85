//! The production shape on one machine: the ledger, the three services and
//! two gateway replicas as separate `popbase serve --role X` processes, every
//! internal hop over mutual TLS (the mesh). The
//! replicas share nothing but the ledger (and their keys), so a consent
//! granted through one is counted by the other and the audit trail is one
//! chain however many replicas answered.

mod support;

use popbase_proto::common::Date;
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::gateway::consents_client::ConsentsClient;
use popbase_proto::gateway::persons_client::PersonsClient;
use popbase_proto::gateway::{ChainHeadRequest, GrantConsentRequest, ListAccessesRequest, PersonSummaryRequest};
use support::{internal_cluster, plain_channel, popbase, serve, stop_all, token, with_token};
use tonic::Code;

const SUBJECT: &str = "370302199001011232";

fn summary(token: &str) -> tonic::Request<PersonSummaryRequest> {
    with_token(
        token,
        PersonSummaryRequest {
            purpose: "TEMPORARY_ASSISTANCE".into(),
            id_number: SUBJECT.into(),
            as_of: None,
        },
    )
}

/// The subject's consent to civil affairs' person summary for 30 days,
/// `use_limit` uses (0: any number).
fn civil_affairs_consent(use_limit: u32) -> GrantConsentRequest {
    let today = popbase_domain::clock::today();
    GrantConsentRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: SUBJECT.into(),
        department: "civil_affairs".into(),
        interface: "PersonSummary".into(),
        grant_purpose: "TEMPORARY_ASSISTANCE".into(),
        valid_from: Some(Date::from(today)),
        valid_until: Some(Date::from(today + chrono::Days::new(30))),
        use_limit,
        ..Default::default()
    }
}

#[tokio::test]
async fn gateway_replicas_share_consents_and_one_audit_chain_through_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let (roles, mesh, mut children) = internal_cluster(data);
    // Two replicas; the first creates the keys both read (in Kubernetes, a Secret).
    let first = serve(data, "gateway", "127.0.0.1:0".parse().expect("addr"), &roles, &mesh);
    let second = serve(data, "gateway", "127.0.0.1:0".parse().expect("addr"), &roles, &mesh);
    let (one, two) = (first.addr, second.addr);
    children.push(first.child);
    children.push(second.child);
    assert!(!data.join("gateway").exists(), "a gateway replica keeps no store");

    let platform = token(data, "service_platform");
    let civil = token(data, "civil_affairs");
    let grant = civil_affairs_consent(2);
    ConsentsClient::new(plain_channel(&one))
        .grant(with_token(&platform, grant))
        .await
        .expect("consent granted through replica one");

    // Two uses, one through each replica; the third is refused by either.
    let mut persons_two = PersonsClient::new(plain_channel(&two));
    let mut persons_one = PersonsClient::new(plain_channel(&one));
    persons_two.person_summary(summary(&civil)).await.expect("first use, replica two");
    persons_one.person_summary(summary(&civil)).await.expect("second use, replica one");
    let used_up = persons_two
        .person_summary(summary(&civil))
        .await
        .expect_err("the grant allowed two uses in all");
    assert_eq!(used_up.code(), Code::PermissionDenied);
    assert_eq!(
        used_up.metadata().get("popbase-reason").and_then(|v| v.to_str().ok()),
        Some("CONSENT_USED_UP")
    );

    // One chain: grant + three summaries so far, whichever replica is asked.
    let audit = token(data, "audit");
    let head = |addr: String| {
        let audit = audit.clone();
        async move {
            AuditClient::new(plain_channel(&addr))
                .get_chain_head(with_token(&audit, ChainHeadRequest { purpose: "AUDIT".into() }))
                .await
                .expect("chain head")
                .into_inner()
                .seq
        }
    };
    assert_eq!(head(one.clone()).await, 4);
    assert_eq!(head(two.clone()).await, 5, "replica two sees replica one's head query recorded");
    let accesses = ConsentsClient::new(plain_channel(&two))
        .list_accesses(with_token(
            &platform,
            ListAccessesRequest {
                purpose: "CITIZEN_ACCESS_LOG".into(),
                subject_id_number: SUBJECT.into(),
                limit: 10,
                ..Default::default()
            },
        ))
        .await
        .expect("accesses")
        .into_inner()
        .accesses;
    let summaries: Vec<bool> = accesses
        .iter()
        .filter(|a| a.interface == "PersonSummary")
        .map(|a| a.allowed)
        .collect();
    assert_eq!(summaries, vec![false, true, true], "newest first, from both replicas");

    // Idle connections would hold the replicas' graceful drain open.
    drop((persons_one, persons_two));
    stop_all(&mut children);
    let verified = popbase(
        data,
        &[
            "audit",
            "verify",
            "--store",
            data.join("ledger").to_str().expect("utf8"),
            "--head",
            data.join("audit-head.log").to_str().expect("utf8"),
        ],
    );
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && stdout.contains("audit chain verified: 7 records"),
        "{stdout}"
    );
}

/// A department's daily quota is one across replicas and restarts: the
/// ledger counts it, so two replicas do not each grant the whole figure
/// and a restarted replica does not start the day afresh.
#[tokio::test]
async fn the_daily_quota_holds_across_replicas_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let (roles, mesh, mut children) = internal_cluster(data);
    // Civil affairs may ask three times a day.
    let catalogue = data.join("catalogue.toml");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/catalogue/zibo.toml")).expect("catalogue");
    let small = text.replacen(
        "certificate_cn = \"civil-affairs.dept.popbase\"\ndaily_quota = 100000",
        "certificate_cn = \"civil-affairs.dept.popbase\"\ndaily_quota = 3",
        1,
    );
    assert_ne!(small, text, "the test catalogue was edited");
    std::fs::write(&catalogue, small).expect("write catalogue");
    let env = [("POPBASE_GATEWAY_CATALOGUE", catalogue.to_str().expect("utf8"))];
    let replica = || support::serve_with(data, "gateway", "127.0.0.1:0".parse().expect("addr"), &roles, &mesh, &env);
    let (first, second) = (replica(), replica());
    let (one, two) = (first.addr, second.addr);
    children.push(second.child);
    let mut first_child = first.child;

    let platform = token(data, "service_platform");
    let civil = token(data, "civil_affairs");
    let grant = civil_affairs_consent(0);
    ConsentsClient::new(plain_channel(&one))
        .grant(with_token(&platform, grant))
        .await
        .expect("consent");
    let mut persons_one = PersonsClient::new(plain_channel(&one));
    let mut persons_two = PersonsClient::new(plain_channel(&two));
    persons_one.person_summary(summary(&civil)).await.expect("1 of 3, replica one");
    persons_two.person_summary(summary(&civil)).await.expect("2 of 3, replica two");
    persons_one.person_summary(summary(&civil)).await.expect("3 of 3, replica one");
    let refused = persons_two.person_summary(summary(&civil)).await.expect_err("the fourth");
    assert_eq!(support::reason(&refused), Some("QUOTA_EXCEEDED"), "{refused:?}");

    // Replica one restarts: the day's count stays.
    drop(persons_one);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &first_child.id().to_string()])
        .status();
    let _ = first_child.wait();
    let restarted = replica();
    children.push(restarted.child);
    let refused = PersonsClient::new(plain_channel(&restarted.addr))
        .person_summary(summary(&civil))
        .await
        .expect_err("still the fourth");
    assert_eq!(support::reason(&refused), Some("QUOTA_EXCEEDED"), "{refused:?}");
    drop(persons_two);
    stop_all(&mut children);
}
