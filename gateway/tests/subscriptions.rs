//! Change notifications over real sockets: subscriptions through the
//! gate, deliveries scoped to a roster or a division, audited per subject,
//! resumed from the acknowledged position without a gap.

mod support;

use std::time::Duration;

use chrono::Utc;
use popbase_proto::gateway::create_subscription_request::Scope;
use popbase_proto::gateway::registry_events_client::RegistryEventsClient;
use popbase_proto::gateway::subscriptions_client::SubscriptionsClient;
use popbase_proto::gateway::{
    AcknowledgeRequest, Change, ChangeKind, CreateSubscriptionRequest, Notification, Position, SubscribeRequest, Subscription,
    UpdateRosterRequest,
};
use support::{Platform, reason, start, today};
use tonic::transport::Channel;
use tonic::{Code, Streaming};

const HRSS: &str = "hrss.dept.popbase";
const MEDICAL: &str = "medical-insurance.dept.popbase";

async fn client(p: &Platform, cn: &str) -> SubscriptionsClient<Channel> {
    SubscriptionsClient::new(p.department(cn).await)
}

fn create(purpose: &str, kinds: &[ChangeKind], scope: Scope, fields: &[&str]) -> CreateSubscriptionRequest {
    CreateSubscriptionRequest {
        purpose: purpose.into(),
        kinds: kinds.iter().map(|k| *k as i32).collect(),
        scope: Some(scope),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        ..Default::default()
    }
}

/// A pension-fund roster subscription to deaths holding `members`.
async fn pension_roster(hrss: &mut SubscriptionsClient<Channel>, members: &[&str]) -> Subscription {
    let request = create(
        "PENSION_ELIGIBILITY",
        &[ChangeKind::Death],
        Scope::Roster(true),
        &["id_number", "occurred_on"],
    );
    let subscription = hrss.create_subscription(request).await.expect("created").into_inner();
    let update = UpdateRosterRequest {
        subscription_id: subscription.subscription_id.clone(),
        add_id_numbers: members.iter().map(|m| m.to_string()).collect(),
        remove_id_numbers: vec![],
    };
    let stored = hrss.update_roster(update).await.expect("roster").into_inner();
    assert_eq!(stored.roster_size, members.len() as u64);
    stored
}

async fn subscribe(client: &mut SubscriptionsClient<Channel>, id: &str, max_batch: u32) -> Streaming<Notification> {
    let request = SubscribeRequest {
        subscription_id: id.into(),
        max_batch,
    };
    client.subscribe(request).await.expect("subscribed").into_inner()
}

/// The changes that arrive on `stream` within `wait`, with the last position.
async fn changes_within(stream: &mut Streaming<Notification>, wait: Duration) -> (Vec<Change>, Option<Position>) {
    let (mut changes, mut position) = (Vec::new(), None);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Err(_) | Ok(Ok(None)) => return (changes, position),
            Ok(Ok(Some(next))) => {
                changes.extend(next.changes);
                position = next.position;
            }
            Ok(Err(status)) => panic!("the stream failed: {status:?}"),
        }
    }
}

/// Each change as (kind, ID number, and the field `third` picks).
fn told(changes: &[Change], third: for<'a> fn(&'a Change) -> &'a str) -> Vec<(ChangeKind, &str, &str)> {
    changes.iter().map(|c| (c.kind(), c.id_number.as_str(), third(c))).collect()
}

/// `record` sent by the department of `common_name` through DepartmentFeeds.
async fn submit_feed(p: &Platform, common_name: &str, officer: &str, record: popbase_proto::feeds::FeedRecord) {
    use popbase_proto::gateway::FeedSubmission;
    use popbase_proto::gateway::department_feeds_client::DepartmentFeedsClient;
    let submission = FeedSubmission {
        purpose: "DEPARTMENT_FEED".into(),
        officer_id: officer.into(),
        records: vec![record],
    };
    let mut feeds = DepartmentFeedsClient::new(p.department(common_name).await);
    feeds.submit(tokio_stream::iter([submission])).await.expect("fed");
}

async fn register_death(p: &Platform, id_number: &str) {
    let mut police = RegistryEventsClient::new(p.department("public-security.dept.popbase").await);
    let submission = support::death_submission(id_number, "police-370303-07", "ignored");
    police.submit(submission).await.expect("death registered");
}

#[tokio::test]
async fn a_death_reaches_the_roster_that_holds_the_person_and_no_one_else() {
    let p = start(None, "mtls").await;
    let mut hrss = client(&p, HRSS).await;
    let holding = pension_roster(&mut hrss, &[&p.people.grandmother, &p.people.father]).await;
    let other = pension_roster(&mut hrss, &[&p.people.stranger]).await;
    let mut medical = client(&p, MEDICAL).await;
    let elsewhere = create(
        "INSURANCE_ENROLLMENT",
        &[ChangeKind::Death, ChangeKind::Birth],
        Scope::DivisionCode("370302".into()),
        &["id_number"],
    );
    let elsewhere = medical.create_subscription(elsewhere).await.expect("created").into_inner();

    let mut holding_stream = subscribe(&mut hrss, &holding.subscription_id, 0).await;
    let mut other_stream = subscribe(&mut hrss, &other.subscription_id, 0).await;
    let mut elsewhere_stream = subscribe(&mut medical, &elsewhere.subscription_id, 0).await;
    register_death(&p, &p.people.grandmother).await;

    let (told, position) = changes_within(&mut holding_stream, Duration::from_secs(3)).await;
    assert_eq!(told.len(), 1, "{told:?}");
    let death = &told[0];
    assert_eq!(death.kind(), ChangeKind::Death);
    assert_eq!(death.id_number, p.people.grandmother);
    assert_eq!(death.masked_id_number, popbase_domain::mask::mask_id_number(&p.people.grandmother));
    assert_eq!(death.occurred_on, Some(today().into()));
    assert!(
        death.committee_code.is_empty() && death.household_id.is_empty(),
        "minimised to the subscription's fields"
    );
    assert!(position.is_some_and(|pos| pos.household >= death.sequence));
    for stream in [&mut other_stream, &mut elsewhere_stream] {
        let (changes, _) = changes_within(stream, Duration::from_millis(500)).await;
        assert!(changes.is_empty(), "out of scope: {changes:?}");
    }

    // The replica's figures count the stream and the delivery.
    let mut scraped = String::new();
    p.gate.render_metrics(&mut scraped);
    assert!(
        scraped.contains("popbase_subscription_changes_delivered_total{department=\"hrss\"} 1\n"),
        "{scraped}"
    );
    assert!(
        scraped.contains("popbase_subscription_streams{department=\"hrss\"} 2\n"),
        "{scraped}"
    );

    // The grandmother's access log shows the pension fund was told.
    let accesses = p.gate.accesses_of(&p.people.grandmother, 20).await.expect("accesses");
    assert!(
        accesses
            .iter()
            .any(|a| a.interface == "ChangeNotifications" && a.department == "hrss"),
        "{accesses:?}"
    );
    p.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_drops_the_stream_resumes_from_its_acknowledgement() {
    let p = start(None, "mtls").await;
    let mut hrss = client(&p, HRSS).await;
    let people = [&p.people.grandmother, &p.people.stranger, &p.people.father];
    let subscription = pension_roster(&mut hrss, &people.map(|s| s.as_str())).await;
    for person in people {
        register_death(&p, person).await;
    }
    // One change per notification: acknowledge the first, drop the stream.
    let mut stream = subscribe(&mut hrss, &subscription.subscription_id, 1).await;
    let first = stream.message().await.expect("stream").expect("a notification");
    let second = stream.message().await.expect("stream").expect("a notification");
    assert_eq!((first.changes.len(), second.changes.len()), (1, 1));
    let ack = AcknowledgeRequest {
        subscription_id: subscription.subscription_id.clone(),
        position: first.position,
    };
    hrss.acknowledge(ack).await.expect("acknowledged");
    drop(stream);

    // Resumed (on a new connection): the unacknowledged second comes again,
    // then the rest; nothing is missing.
    let mut again = client(&p, HRSS).await;
    let mut stream = subscribe(&mut again, &subscription.subscription_id, 0).await;
    let (resumed, _) = changes_within(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(resumed.first().map(|c| &c.id_number), second.changes.first().map(|c| &c.id_number));
    let mut told: Vec<&str> = first.changes.iter().chain(&resumed).map(|c| c.id_number.as_str()).collect();
    told.sort();
    told.dedup();
    let mut expected: Vec<&str> = people.iter().map(|s| s.as_str()).collect();
    expected.sort();
    assert_eq!(told, expected);
    p.stop().await;
}

#[tokio::test]
async fn unapproved_asks_are_refused_with_reason_codes() {
    let p = start(None, "mtls").await;
    let mut hrss = client(&p, HRSS).await;
    let roster = || Scope::Roster(true);
    let cases = [
        (create("PENSION_ELIGIBILITY", &[ChangeKind::Birth], roster(), &[]), "NOT_APPROVED"),
        (
            create("PENSION_ELIGIBILITY", &[ChangeKind::Death], roster(), &["household_id"]),
            "NOT_APPROVED",
        ),
        (create("MARKETING", &[ChangeKind::Death], roster(), &[]), "PURPOSE_MISMATCH"),
    ];
    for (request, code) in cases {
        let refused = hrss.create_subscription(request).await.expect_err("refused");
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (Code::PermissionDenied, code),
            "{refused:?}"
        );
    }
    let mut housing = client(&p, "housing.dept.popbase").await;
    let refused = housing
        .create_subscription(create("PENSION_ELIGIBILITY", &[ChangeKind::Death], roster(), &[]))
        .await
        .expect_err("no approval");
    assert_eq!(reason(&refused), "NOT_APPROVED");

    // Another department's subscription is not there for it; bad input names its field.
    let own = pension_roster(&mut hrss, &[&p.people.father]).await;
    let mut medical = client(&p, MEDICAL).await;
    let request = SubscribeRequest {
        subscription_id: own.subscription_id.clone(),
        max_batch: 0,
    };
    assert_eq!(medical.subscribe(request).await.expect_err("not theirs").code(), Code::NotFound);
    let bad_id = UpdateRosterRequest {
        subscription_id: own.subscription_id.clone(),
        add_id_numbers: vec![p.people.father.clone(), "370303199001011230".into()],
        remove_id_numbers: vec![],
    };
    let ahead = AcknowledgeRequest {
        subscription_id: own.subscription_id.clone(),
        position: Some(Position {
            household: 1_000_000_000,
            ..Default::default()
        }),
    };
    let refused = hrss.acknowledge(ahead).await.expect_err("past the head");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("position.household"), "{}", refused.message());
    let refused = hrss.update_roster(bad_id).await.expect_err("checksum");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("add_id_numbers[1]"), "{}", refused.message());
    assert!(!refused.message().contains("370303199001011230"), "never echoed");
    p.stop().await;
}

#[tokio::test]
async fn a_subscription_left_unacknowledged_past_retention_must_resnapshot() {
    let p = start(None, "mtls").await;
    let mut hrss = client(&p, HRSS).await;
    let subscription = pension_roster(&mut hrss, &[&p.people.father]).await;
    // Eight days without an acknowledgement (retention: 7).
    let mut stale = subscription.clone();
    stale.subscription_id = popbase_gateway::subscriptions::new_subscription_id();
    let old = Utc::now().timestamp_millis() - 8 * 24 * 3600 * 1000;
    (stale.created_unix_millis, stale.acknowledged_unix_millis) = (old, old);
    p.ledger.subscriptions.create(stale.clone()).expect("stored");
    let request = SubscribeRequest {
        subscription_id: stale.subscription_id,
        max_batch: 0,
    };
    let refused = hrss.subscribe(request).await.expect_err("stale");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("since_seq"), "{}", refused.message());
    p.stop().await;
}

#[tokio::test]
async fn a_division_subscriber_learns_of_a_birth_with_each_parent_and_of_an_insurance_status() {
    let p = start(None, "mtls").await;
    let mut medical = client(&p, MEDICAL).await;
    let request = create(
        "INSURANCE_ENROLLMENT",
        &[ChangeKind::Birth, ChangeKind::InsuranceStatus],
        Scope::DivisionCode("370303".into()),
        &["id_number", "relation", "committee_code"],
    );
    let subscription = medical.create_subscription(request).await.expect("created").into_inner();
    let mut stream = subscribe(&mut medical, &subscription.subscription_id, 0).await;
    let street = create(
        "INSURANCE_ENROLLMENT",
        &[ChangeKind::Birth],
        Scope::DivisionCode("370303001".into()),
        &["id_number", "committee_code"],
    );
    let street = medical.create_subscription(street).await.expect("created").into_inner();
    let mut street_stream = subscribe(&mut medical, &street.subscription_id, 0).await;

    let parse = |id: &str| popbase_domain::IdNumber::parse(id, today()).expect("id");
    let birth = popbase_household::events::Birth {
        name: "张小花".into(),
        sex: popbase_proto::common::Sex::Female,
        birth_date: today(),
        birthplace_code: "370303".into(),
        ethnicity: "汉族".into(),
        mother: Some(parse(&p.people.mother)),
        // Registered in 西苑, another street of the county.
        father: Some(parse(&p.people.stranger)),
        household_id: "37030300000001".into(),
    };
    let context = popbase_household::events::EventContext {
        actor: "police-370303-01".into(),
        on: today(),
    };
    let child = p.registry.register_birth(&context, &birth).expect("born").persons[0]
        .id_number
        .clone();
    let record = support::new_insurance(&child, "MI-NEWBORN-1");
    submit_feed(&p, MEDICAL, "mi-operator-7", record).await;

    let (changes, _) = changes_within(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(
        told(&changes, |c| c.relation.as_str()),
        vec![
            (ChangeKind::Birth, child.as_str(), "subject"),
            (ChangeKind::Birth, p.people.mother.as_str(), "mother"),
            (ChangeKind::Birth, p.people.stranger.as_str(), "father"),
            (ChangeKind::InsuranceStatus, child.as_str(), "subject"),
        ]
    );
    assert_eq!(changes[2].committee_code, support::XIYUAN, "the father where he is registered");
    // The street of the child's household hears of the child and the mother
    // registered there, not of a father registered in another street.
    let (street_changes, _) = changes_within(&mut street_stream, Duration::from_millis(500)).await;
    let heard: Vec<&str> = street_changes.iter().map(|c| c.id_number.as_str()).collect();
    assert_eq!(heard, vec![child.as_str(), p.people.mother.as_str()]);
    assert_eq!(changes[0].committee_code, support::XINHUA);
    assert_eq!(changes[3].committee_code, "370303", "an insurance record names its county");
    assert!(changes[3].detail.is_empty(), "detail is not among the subscription's fields");
    p.stop().await;
}

#[tokio::test]
async fn a_subscription_started_at_a_snapshot_gets_every_change_after_it() {
    let p = start(None, "mtls").await;
    // The export's snapshot sequence, then a death before the subscription exists.
    let snapshot = p.registry.store().last_seq();
    register_death(&p, &p.people.grandmother).await;
    let mut hrss = client(&p, HRSS).await;
    let mut request = create("PENSION_ELIGIBILITY", &[ChangeKind::Death], Scope::Roster(true), &["id_number"]);
    request.start_household = Some(snapshot);
    let subscription = hrss.create_subscription(request.clone()).await.expect("created").into_inner();
    let update = UpdateRosterRequest {
        subscription_id: subscription.subscription_id.clone(),
        add_id_numbers: vec![p.people.grandmother.clone()],
        remove_id_numbers: vec![],
    };
    hrss.update_roster(update).await.expect("roster");
    let mut stream = subscribe(&mut hrss, &subscription.subscription_id, 0).await;
    let (changes, _) = changes_within(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(
        changes.iter().map(|c| c.id_number.as_str()).collect::<Vec<_>>(),
        vec![p.people.grandmother.as_str()]
    );

    request.start_household = Some(snapshot + 1_000);
    let refused = hrss.create_subscription(request).await.expect_err("beyond the log");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("start_household"), "{}", refused.message());
    p.stop().await;
}

#[tokio::test]
async fn permits_granted_and_cancelled_and_marriages_reach_their_subscribers() {
    use popbase_proto::common::Address;
    use popbase_proto::feeds::feed_record::Payload;
    use popbase_proto::feeds::{FeedRecord, MarriageEvent, MarriageRegistration, Source};
    use popbase_proto::gateway::ResidenceSubmission;
    use popbase_proto::gateway::residence_events_client::ResidenceEventsClient;
    use popbase_proto::gateway::residence_receipt::Outcome;
    use popbase_proto::gateway::residence_submission::Event as ResidenceEvent;
    use popbase_proto::residence::{
        ApplyForPermitRequest, CancelPermitRequest, RegisterResidenceRequest, ResidenceBasis, ResidenceRegistration,
    };

    let p = start(None, "mtls").await;
    let mut education = client(&p, "education.dept.popbase").await;
    let permits = create(
        "SCHOOL_ENROLLMENT",
        &[ChangeKind::PermitGranted, ChangeKind::PermitCancelled],
        Scope::DivisionCode("370303".into()),
        &["id_number", "detail"],
    );
    let permits = education.create_subscription(permits).await.expect("created").into_inner();
    let mut civil = client(&p, "civil-affairs.dept.popbase").await;
    let marriages = create(
        "TEMPORARY_ASSISTANCE",
        &[ChangeKind::Marriage, ChangeKind::Divorce],
        Scope::DivisionCode("3703".into()),
        &["id_number", "relation", "committee_code"],
    );
    let marriages = civil.create_subscription(marriages).await.expect("created").into_inner();
    let mut permit_stream = subscribe(&mut education, &permits.subscription_id, 0).await;
    let mut marriage_stream = subscribe(&mut civil, &marriages.subscription_id, 0).await;

    // The household office grants a permit, then cancels it.
    let mut police = ResidenceEventsClient::new(p.department("public-security.dept.popbase").await);
    let submit = |event| ResidenceSubmission {
        purpose: "HOUSEHOLD_REGISTRATION".into(),
        officer_id: "police-370303-02".into(),
        event: Some(event),
    };
    let newcomer = popbase_domain::IdNumber::generate("370881", today() - chrono::Duration::days(30 * 365), 77)
        .expect("id")
        .as_str()
        .to_string();
    let registration = ResidenceRegistration {
        id_number: newcomer.clone(),
        name: "来淄务工".into(),
        hukou_county_code: "370881".into(),
        address: Some(Address {
            committee_code: support::XINHUA.into(),
            detail: "新华路20号".into(),
        }),
        registered_on: Some((today() - chrono::Duration::days(400)).into()),
        basis: ResidenceBasis::Employment as i32,
        employer: "淄博某厂".into(),
        ..Default::default()
    };
    let register = RegisterResidenceRequest {
        registration: Some(registration),
    };
    police
        .submit(submit(ResidenceEvent::RegisterResidence(register)))
        .await
        .expect("registered");
    let apply = ApplyForPermitRequest {
        id_number: newcomer.clone(),
        on: Some(today().into()),
        basis: ResidenceBasis::Employment as i32,
        evidence: "淄博某厂".into(),
    };
    let granted = police
        .submit(submit(ResidenceEvent::ApplyForPermit(apply)))
        .await
        .expect("decided")
        .into_inner();
    let Some(Outcome::Decision(decision)) = granted.outcome else {
        panic!("a decision: {granted:?}");
    };
    let permit_number = decision.permit.expect("granted").permit_number;
    let cancel = CancelPermitRequest {
        permit_number,
        on: Some(today().into()),
        reason: "left the city".into(),
    };
    police
        .submit(submit(ResidenceEvent::CancelPermit(cancel)))
        .await
        .expect("cancelled");
    let (changes, _) = changes_within(&mut permit_stream, Duration::from_secs(3)).await;
    assert_eq!(
        told(&changes, |c| c.detail.as_str()),
        vec![
            (ChangeKind::PermitGranted, newcomer.as_str(), "valid"),
            (ChangeKind::PermitCancelled, newcomer.as_str(), "cancelled"),
        ]
    );

    // Civil affairs' own marriage registry feeds a marriage: each party is told of.
    let marriage = FeedRecord {
        source: Source::CivilAffairs as i32,
        record_id: "MAR-2026-1".into(),
        as_of_unix_millis: chrono::Utc::now().timestamp_millis() - 1_000,
        payload: Some(Payload::Marriage(MarriageRegistration {
            party_a_id_number: p.people.stranger.clone(),
            party_b_id_number: p.people.grandmother.clone(),
            event: MarriageEvent::Marriage as i32,
            date: Some(today().into()),
            registry_county_code: "370303".into(),
        })),
    };
    submit_feed(&p, "civil-affairs.dept.popbase", "ca-registrar-3", marriage).await;
    let (changes, _) = changes_within(&mut marriage_stream, Duration::from_secs(3)).await;
    assert_eq!(
        told(&changes, |c| c.relation.as_str()),
        vec![
            (ChangeKind::Marriage, p.people.stranger.as_str(), "party"),
            (ChangeKind::Marriage, p.people.grandmother.as_str(), "party"),
        ]
    );
    p.stop().await;
}

#[tokio::test]
async fn a_replica_bounds_its_streams_and_a_newer_stream_supersedes_the_older() {
    let p = support::start_configured("mtls", |config| config.limits.max_subscription_streams = 1).await;
    let mut hrss = client(&p, HRSS).await;
    let one = pension_roster(&mut hrss, &[&p.people.father]).await;
    let other = pension_roster(&mut hrss, &[&p.people.mother]).await;
    let mut first = subscribe(&mut hrss, &one.subscription_id, 0).await;
    let request = |id: &str| SubscribeRequest {
        subscription_id: id.into(),
        max_batch: 0,
    };
    let refused = hrss
        .subscribe(request(&other.subscription_id))
        .await
        .expect_err("one stream at most");
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::ResourceExhausted, "OVERLOADED"));

    // The same subscription again (a client reconnecting before its old
    // stream noticed): the newer stream takes over, the older one ends.
    let mut second = subscribe(&mut hrss, &one.subscription_id, 0).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), first.message())
        .await
        .expect("the older stream ends");
    assert_eq!(ended.expect_err("ended by the newer").code(), Code::Aborted);
    register_death(&p, &p.people.father).await;
    let (changes, _) = changes_within(&mut second, Duration::from_secs(3)).await;
    assert_eq!(changes.len(), 1, "the newer stream delivers");
    p.stop().await;
}
