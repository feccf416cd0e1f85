//! Departments write through the gate: each their own kinds, under their
//! own name and officer, every write audited before it is applied.

mod support;

use chrono::Utc;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, Pension, PensionScheme, RecordsOfRequest, Source};
use popbase_proto::gateway::FeedSubmission;
use popbase_proto::gateway::department_feeds_client::DepartmentFeedsClient;
use popbase_proto::gateway::registry_events_client::RegistryEventsClient;
use popbase_proto::household::RegistrationStatus;
use support::{reason, start, today};
use tonic::Code;

fn pension(id: &str) -> FeedRecord {
    FeedRecord {
        source: Source::HumanResources as i32,
        record_id: "PEN-1".into(),
        as_of_unix_millis: Utc::now().timestamp_millis() - 1_000,
        payload: Some(Payload::Pension(Pension {
            id_number: id.into(),
            scheme: PensionScheme::EnterpriseEmployee as i32,
            status: EnrollmentStatus::Active as i32,
            contribution_months: 120,
            ..Default::default()
        })),
    }
}

fn submission(records: Vec<FeedRecord>) -> FeedSubmission {
    FeedSubmission {
        purpose: "DEPARTMENT_FEED".into(),
        officer_id: "mi-operator-7".into(),
        records,
    }
}

/// The record ids the feeds service holds for `id_number`.
async fn stored_ids(p: &support::Platform, id_number: &str) -> Vec<String> {
    let request = RecordsOfRequest {
        id_number: id_number.into(),
        as_of_unix_millis: 0,
    };
    let records = p.sources.feeds_ingest.clone().records_of(request).await.expect("records");
    records.into_inner().records.into_iter().map(|r| r.record_id).collect()
}

#[tokio::test]
async fn a_department_writes_its_own_feed_and_no_one_elses() {
    let p = start(None, "mtls").await;
    let stranger = p.people.stranger.clone();
    let mut medical = DepartmentFeedsClient::new(p.department("medical-insurance.dept.popbase").await);

    // One record per message, as a Python client streams them.
    let before = p.audit_count();
    let messages = vec![
        submission(vec![support::new_insurance(&stranger, "MI-GW-1")]),
        FeedSubmission {
            records: vec![support::new_insurance(&p.people.father, "MI-GW-2")],
            ..Default::default()
        },
    ];
    let summary = medical
        .submit(tokio_stream::iter(messages))
        .await
        .expect("its own kind")
        .into_inner();
    assert_eq!((summary.received, summary.accepted), (2, 2), "{summary:?}");
    assert_eq!(p.audit_count(), before + 1, "one chunk, one audit record");
    assert!(
        stored_ids(&p, &stranger).await.contains(&"MI-GW-1".to_string()),
        "the record landed"
    );

    // A pension record from medical insurance: refused, nothing stored.
    let before = p.audit_count();
    let refused = medical
        .submit(tokio_stream::iter(vec![submission(vec![pension(&stranger)])]))
        .await
        .expect_err("not its kind");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "KIND_NOT_APPROVED");
    assert_eq!(p.audit_count(), before + 1, "the refusal is audited");
    assert!(
        !stored_ids(&p, &stranger).await.contains(&"PEN-1".to_string()),
        "nothing of it stored"
    );

    // Bad input: a purpose it is not approved for; an officer that is free text;
    // more records in one message than the bound.
    let wrong = medical
        .submit(tokio_stream::iter(vec![FeedSubmission {
            purpose: "MARKETING".into(),
            ..submission(vec![support::new_insurance(&stranger, "MI-GW-3")])
        }]))
        .await
        .expect_err("purpose");
    assert_eq!(reason(&wrong), "PURPOSE_MISMATCH");
    let free_text = medical
        .submit(tokio_stream::iter(vec![FeedSubmission {
            officer_id: "张三 from the back office".into(),
            ..submission(vec![])
        }]))
        .await
        .expect_err("officer");
    assert_eq!(free_text.code(), Code::InvalidArgument);
    assert!(!free_text.message().contains("张三"), "caller text is not echoed");
    let too_many = medical
        .submit(tokio_stream::iter(vec![submission(
            (0..1025).map(|i| support::new_insurance(&stranger, &format!("MI-B-{i}"))).collect(),
        )]))
        .await
        .expect_err("bound");
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert!(too_many.message().contains("records"), "{}", too_many.message());

    // The education bureau may not send insurance records either.
    let mut education = DepartmentFeedsClient::new(p.department("education.dept.popbase").await);
    let refused = education
        .submit(tokio_stream::iter(vec![submission(vec![support::new_insurance(
            &stranger, "MI-GW-4",
        )])]))
        .await
        .expect_err("education");
    assert_eq!(reason(&refused), "KIND_NOT_APPROVED");
    p.stop().await;
}

#[tokio::test]
async fn public_security_registers_a_death_under_its_own_name() {
    let p = start(None, "mtls").await;
    let stranger = p.people.stranger.clone();
    let death = |officer: &str| support::death_submission(&stranger, officer, "anyone at all");

    // Another department may not register events at all.
    let mut hrss = RegistryEventsClient::new(p.department("hrss.dept.popbase").await);
    let refused = hrss.submit(death("hr-1")).await.expect_err("not approved");
    assert_eq!(reason(&refused), "NOT_APPROVED");

    let before = p.audit_count();
    let mut police = RegistryEventsClient::new(p.department("public-security.dept.popbase").await);
    let receipt = police.submit(death("police-370303-01")).await.expect("registered").into_inner();
    let event = receipt.event.expect("event");
    assert_eq!(event.actor, "public_security:police-370303-01", "the gateway names the actor");
    assert_eq!(p.audit_count(), before + 1, "one audit record");
    let person = p.registry.person(&stranger).expect("read").expect("person");
    assert_eq!(person.status, RegistrationStatus::Deceased as i32);

    // The registry's own refusal (already deceased) reaches the officer, audited.
    let before = p.audit_count();
    let again = police.submit(death("police-370303-01")).await.expect_err("twice");
    assert_ne!(again.code(), Code::Ok);
    assert_ne!(again.code(), Code::Unavailable, "the registry's reason, not an outage: {again:?}");
    assert_eq!(p.audit_count(), before + 2, "admitted, then refused by the registry");
    p.stop().await;
}

#[tokio::test]
async fn public_security_registers_a_resident_and_others_may_not() {
    use popbase_proto::common::Address;
    use popbase_proto::gateway::ResidenceSubmission;
    use popbase_proto::gateway::residence_events_client::ResidenceEventsClient;
    use popbase_proto::gateway::residence_receipt::Outcome;
    use popbase_proto::gateway::residence_submission::Event as ResidenceEvent;
    use popbase_proto::residence::{RegisterResidenceRequest, RegistrationState, ResidenceBasis, ResidenceRegistration};

    let p = start(None, "mtls").await;
    let newcomer = popbase_domain::IdNumber::generate("370881", today() - chrono::Duration::days(30 * 365), 77)
        .expect("id")
        .as_str()
        .to_string();
    let registration = || ResidenceSubmission {
        purpose: "HOUSEHOLD_REGISTRATION".into(),
        officer_id: "police-370303-02".into(),
        event: Some(ResidenceEvent::RegisterResidence(RegisterResidenceRequest {
            registration: Some(ResidenceRegistration {
                id_number: newcomer.clone(),
                name: "来淄务工".into(),
                hukou_county_code: "370881".into(),
                address: Some(Address {
                    committee_code: support::XINHUA.into(),
                    detail: "新华路20号".into(),
                }),
                basis: ResidenceBasis::Employment as i32,
                employer: "淄博某厂".into(),
                ..Default::default()
            }),
        })),
    };
    let mut hrss = ResidenceEventsClient::new(p.department("hrss.dept.popbase").await);
    let refused = hrss.submit(registration()).await.expect_err("not approved");
    assert_eq!(reason(&refused), "NOT_APPROVED");

    let before = p.audit_count();
    let mut police = ResidenceEventsClient::new(p.department("public-security.dept.popbase").await);
    let receipt = police.submit(registration()).await.expect("registered").into_inner();
    let Some(Outcome::Registration(registered)) = receipt.outcome else {
        panic!("a registration: {receipt:?}");
    };
    assert_eq!(registered.id_number, newcomer);
    assert_eq!(registered.state, RegistrationState::Active as i32);
    assert_eq!(p.audit_count(), before + 1, "one audit record");
    p.stop().await;
}

/// Births of one county, day and sex at once race for one ID-number
/// sequence: the losers are answered ABORTED (`CONFLICT`, audited) so the
/// counter's system retries, and a conflict never uses up the refusal
/// budget (a budget of one: a second charged refusal would be REFUSAL_FLOOD).
#[tokio::test]
async fn racing_births_are_aborted_for_a_retry_never_flooded() {
    use popbase_proto::common::{Date, Sex};
    use popbase_proto::gateway::life_event_submission::Event;
    use popbase_proto::household::{EventContext, RegisterBirthRequest};
    let p = support::start_configured("mtls", |c| c.limits.refusals_per_window = 1).await;
    let mother = p.registry.person(&p.people.mother).expect("read").expect("mother");
    let police = RegistryEventsClient::new(p.department("public-security.dept.popbase").await);
    let birth = |born: Date| popbase_proto::gateway::LifeEventSubmission {
        purpose: "HOUSEHOLD_REGISTRATION".into(),
        officer_id: "police-370303-01".into(),
        event: Some(Event::Birth(RegisterBirthRequest {
            context: Some(EventContext {
                actor: String::new(),
                occurred_on: Some(today().into()),
            }),
            name: "新生儿".into(),
            sex: Sex::Male as i32,
            birth_date: Some(born),
            birthplace_code: mother.household_id[..6].to_string(),
            mother_id_number: mother.id_number.clone(),
            household_id: mother.household_id.clone(),
            ..Default::default()
        })),
    };
    let before = p.audit_count();
    let (mut registered, mut conflicts) = (0u64, 0u64);
    for days_back in 1..=10u64 {
        let born = today() - chrono::Days::new(days_back);
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let (mut client, submission) = (police.clone(), birth(Date::from(born)));
                tokio::spawn(async move { client.submit(submission).await })
            })
            .collect();
        for call in calls {
            match call.await.expect("task") {
                Ok(_) => registered += 1,
                Err(status) => {
                    assert_eq!((status.code(), reason(&status).as_str()), (Code::Aborted, "CONFLICT"), "{status:?}");
                    conflicts += 1;
                }
            }
        }
        if conflicts >= 2 {
            break;
        }
    }
    assert!(conflicts >= 2, "births at once raced ({conflicts} conflicts)");
    assert_eq!(
        p.audit_count(),
        before + registered + 2 * conflicts,
        "each write admitted, each conflict audited"
    );
    let last = p.audit_record(p.audit_count());
    assert!(["CONFLICT", ""].contains(&last.reason.as_str()), "{}", last.reason);
}
