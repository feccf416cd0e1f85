//! Change notifications in the production shape: the ledger, the three
//! services and two gateway replicas as separate processes over the mesh.
//! A subscription made on one replica is served, acknowledged and resumed
//! on the other: the position lives in the ledger, not in a replica.

mod support;

use std::time::Duration;

use popbase_proto::gateway::create_subscription_request::Scope;
use popbase_proto::gateway::life_event_submission::Event;
use popbase_proto::gateway::registry_events_client::RegistryEventsClient;
use popbase_proto::gateway::subscriptions_client::SubscriptionsClient;
use popbase_proto::gateway::{
    AcknowledgeRequest, ChangeKind, CreateSubscriptionRequest, GetSubscriptionRequest, LifeEventSubmission, SubscribeRequest,
    UpdateRosterRequest,
};
use support::writes::{id, settlement};
use support::{internal_cluster, plain_channel, serve, stop_all, token, with_token};

#[tokio::test]
async fn a_subscription_is_followed_acknowledged_and_resumed_across_gateway_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let (roles, mesh, mut children) = internal_cluster(data);
    let first = serve(data, "gateway", "127.0.0.1:0".parse().expect("addr"), &roles, &mesh);
    let second = serve(data, "gateway", "127.0.0.1:0".parse().expect("addr"), &roles, &mesh);
    let (one, two) = (first.addr, second.addr);
    children.push(first.child);
    children.push(second.child);
    let medical = token(data, "medical_insurance");
    let police = token(data, "public_security");
    let (settler, bystander) = (id(7), id(8));

    // Created on replica one, its roster filled on replica two.
    let mut on_one = SubscriptionsClient::new(plain_channel(&one));
    let mut on_two = SubscriptionsClient::new(plain_channel(&two));
    let create = CreateSubscriptionRequest {
        purpose: "INSURANCE_ENROLLMENT".into(),
        kinds: vec![ChangeKind::Settlement as i32],
        scope: Some(Scope::Roster(true)),
        fields: vec!["id_number".into(), "committee_code".into()],
        ..Default::default()
    };
    let subscription = on_one
        .create_subscription(with_token(&medical, create))
        .await
        .expect("created")
        .into_inner();
    let sub_id = subscription.subscription_id.clone();
    let roster = UpdateRosterRequest {
        subscription_id: sub_id.clone(),
        add_id_numbers: vec![settler.clone()],
        remove_id_numbers: vec![],
    };
    on_two.update_roster(with_token(&medical, roster)).await.expect("roster");

    // Two settle (one on the roster), through replica one.
    let mut events = RegistryEventsClient::new(plain_channel(&one));
    for person in [&bystander, &settler] {
        let submission = LifeEventSubmission {
            purpose: "HOUSEHOLD_REGISTRATION".into(),
            officer_id: "police-370302-01".into(),
            event: Some(Event::SettleMoveIn(settlement(person))),
        };
        events.submit(with_token(&police, submission)).await.expect("settled");
    }

    // Replica two delivers only the roster's settler, read from the registry over the mesh.
    let subscribe = || SubscribeRequest {
        subscription_id: sub_id.clone(),
        max_batch: 0,
    };
    let mut stream = on_two
        .subscribe(with_token(&medical, subscribe()))
        .await
        .expect("subscribed")
        .into_inner();
    let notification = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let next = stream.message().await.expect("stream").expect("open");
            if !next.changes.is_empty() {
                return next;
            }
        }
    })
    .await
    .expect("the settlement arrives");
    assert_eq!(notification.changes.len(), 1, "{:?}", notification.changes);
    assert_eq!(notification.changes[0].id_number, settler);
    assert_eq!(notification.changes[0].committee_code, "370302001001");
    drop(stream);

    // Acknowledged on replica one; replica two reads the stored position.
    let ack = AcknowledgeRequest {
        subscription_id: sub_id.clone(),
        position: notification.position,
    };
    on_one.acknowledge(with_token(&medical, ack)).await.expect("acknowledged");
    let get = GetSubscriptionRequest {
        subscription_id: sub_id.clone(),
    };
    let stored = on_two.get_subscription(with_token(&medical, get)).await.expect("get").into_inner();
    assert_eq!(stored.acknowledged, notification.position);

    // An operator watches a division through replica two with the CLI:
    // the next settlement, its ID number masked whatever is approved.
    let newcomer = id(9);
    let watch = std::process::Command::new(env!("CARGO_BIN_EXE_popbase"))
        .args(["subscribe", "--gateway", &format!("http://{two}"), "--token"])
        .arg(medical.trim_start_matches("Bearer "))
        .args(["--purpose", "INSURANCE_ENROLLMENT", "--kinds", "settlement", "--division", "370302"])
        .args(["--fields", "id_number,committee_code", "--limit", "1", "--ack"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("popbase subscribe");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let submission = LifeEventSubmission {
        purpose: "HOUSEHOLD_REGISTRATION".into(),
        officer_id: "police-370302-01".into(),
        event: Some(Event::SettleMoveIn(settlement(&newcomer))),
    };
    events.submit(with_token(&police, submission)).await.expect("settled");
    let watched = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .expect("join")
        .expect("output");
    let (stdout, stderr) = (String::from_utf8_lossy(&watched.stdout), String::from_utf8_lossy(&watched.stderr));
    assert!(watched.status.success(), "{stderr}");
    assert!(stderr.starts_with("created subscription sub-"), "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["kind"], "settlement");
    assert_eq!(line["masked_id_number"], popbase_domain::mask::mask_id_number(&newcomer));
    assert!(!stdout.contains(&newcomer), "the clear ID number is never printed");

    // Resumed on replica one: nothing acknowledged comes again.
    let mut stream = on_one
        .subscribe(with_token(&medical, subscribe()))
        .await
        .expect("resubscribed")
        .into_inner();
    let again = tokio::time::timeout(Duration::from_secs(1), stream.message()).await;
    match again {
        Err(_) => {}
        Ok(next) => assert!(
            next.expect("stream").is_none_or(|n| n.changes.is_empty()),
            "acknowledged changes came again"
        ),
    }
    stop_all(&mut children);
}
