//! Settlement decided on the platform's facts, across split roles over
//! mutual TLS: the registry asks the feeds role for the applicant's pension,
//! insurance and housing records and the residence role for their permit;
//! the policy in force on the evaluation date is the one applied; a family
//! is placed together.

mod support;

use popbase_common::mesh::MeshIdentity;
use popbase_proto::common::{Address, Date};
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, Housing, HousingKind, Pension, PensionScheme, PropertyUse, Source};
use popbase_proto::household::settlement_client::SettlementClient;
use popbase_proto::household::{
    ApplicantFacts, DocumentKind, FactOrigin, FamilyMember, Kinship, PlacementKind, Relationship, RuleEvaluation, SettlementApplication,
    SettlementEvaluation, SkillLevel,
};
use support::{internal_cluster, stop_all, tls_channel};
use tonic::Code;

/// 历下区解放路街道解放桥社区 (Jinan, in force 2017-08-01 to 2022-07-31).
const JINAN: &str = "370102001002";
/// A Zibo residents' committee (张店区车站街道).
const ZIBO: &str = "370303001001";
const APPLICANT: &str = "110105199001011232";

fn day(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn address(committee: &str, detail: &str) -> Option<Address> {
    Some(Address {
        committee_code: committee.into(),
        detail: detail.into(),
    })
}

fn record(id: &str, source: Source, payload: Payload) -> FeedRecord {
    FeedRecord {
        source: source as i32,
        record_id: id.into(),
        // 2020-01-01 00:00 in the city: true before the evaluation dates below.
        as_of_unix_millis: 1_577_808_000_000,
        payload: Some(payload),
    }
}

fn rule<'e>(evaluation: &'e SettlementEvaluation, id: &str) -> &'e RuleEvaluation {
    evaluation.rules.iter().find(|r| r.rule_id == id).expect("rule")
}

fn check<'r>(rule: &'r RuleEvaluation, code: &str) -> &'r popbase_proto::household::Check {
    rule.checks
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no check {code}"))
}

#[tokio::test]
async fn settlement_takes_pension_permit_and_home_from_the_platform_and_the_policy_in_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let (roles, mesh, mut children) = internal_cluster(data);
    let as_gateway = |addr: &str| tls_channel(addr, mesh.client_tls(Some(&mesh.issued(MeshIdentity::Gateway))));
    let mut feeds = FeedsClient::new(as_gateway(&roles.feeds.to_string()));
    let mut settlement = SettlementClient::new(as_gateway(&roles.household.to_string()));

    // The pension fund knows 30 months of employee pension; the housing
    // bureau, an apartment at the Zibo target.
    let records = vec![
        record(
            "pension-1",
            Source::HumanResources,
            Payload::Pension(Pension {
                id_number: APPLICANT.into(),
                scheme: PensionScheme::EnterpriseEmployee as i32,
                status: EnrollmentStatus::Active as i32,
                contribution_months: 30,
                ..Default::default()
            }),
        ),
        record(
            "housing-1",
            Source::Housing,
            Payload::Housing(Housing {
                id_number: APPLICANT.into(),
                kind: HousingKind::Ownership as i32,
                r#use: PropertyUse::Apartment as i32,
                address: address(ZIBO, "新村路9号1单元101室"),
                certificate_number: "鲁2019淄博市不动产权第0000001号".into(),
                ..Default::default()
            }),
        ),
    ];
    let summary = feeds.ingest(tokio_stream::iter(records)).await.expect("ingest").into_inner();
    assert_eq!(summary.received, 2, "{:?}", summary.results);

    // Jinan 2017 on 2020-06-01: the applicant declares 0 months and a permit.
    // The pension feed says 30 months; the residence service holds no permit.
    let jinan = SettlementApplication {
        policy_id: String::new(),
        applicant_id_number: APPLICANT.into(),
        target: address(JINAN, "经十路1号"),
        documents: [
            DocumentKind::HouseholdBook,
            DocumentKind::IdCard,
            DocumentKind::TitleCertificate,
            DocumentKind::LabourContract,
            DocumentKind::SocialInsuranceProof,
            DocumentKind::ResidencePermit,
        ]
        .iter()
        .map(|d| *d as i32)
        .collect(),
        facts: Some(ApplicantFacts {
            skill: SkillLevel::SeniorWorker as i32,
            holds_residence_permit: true,
            renting_at_target: true,
            from_code: "370124".into(),
            ..Default::default()
        }),
        on: day(2020, 6, 1),
        ..Default::default()
    };
    let evaluation = settlement.evaluate_settlement(jinan.clone()).await.expect("evaluate").into_inner();
    assert_eq!(evaluation.policy_id, "jinan-2017");
    assert_eq!(
        (evaluation.in_force_from, evaluation.in_force_until),
        (day(2017, 8, 1), day(2022, 7, 31))
    );
    let junior = rule(&evaluation, "talent-junior");
    assert_eq!(junior.cite, "二(一)1(5)");
    let pension = check(junior, "PENSION_INSURANCE");
    assert!(pension.passed && pension.origin == FactOrigin::Platform as i32, "{pension:?}");
    assert!(pension.detail.contains("pension feed: 30 months"), "{}", pension.detail);
    let employed = check(junior, "EMPLOYED_IN_CITY");
    assert!(employed.passed && employed.origin == FactOrigin::Platform as i32, "{employed:?}");
    let permit = check(junior, "RESIDENCE_PERMIT");
    assert!(
        !permit.passed && permit.origin == FactOrigin::Platform as i32,
        "a declared permit the platform does not hold: {permit:?}"
    );
    assert!(!junior.eligible);
    let residence = check(junior, "STABLE_RESIDENCE");
    assert_eq!(
        residence.origin,
        FactOrigin::Platform as i32,
        "the housing feed holds records of the applicant"
    );

    // The same application today: Jinan 2017 ended on 2022-07-31.
    let mut today = jinan.clone();
    today.on = None;
    let refused = settlement.evaluate_settlement(today).await.expect_err("no policy in force");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("jinan-2017 in force 2017-08-01 to 2022-07-31"),
        "{}",
        refused.message()
    );
    let mut named = jinan.clone();
    named.policy_id = "jinan-2017".into();
    named.on = day(2026, 1, 1);
    let refused = settlement.evaluate_settlement(named).await.expect_err("named, not in force");
    assert_eq!(refused.code(), Code::FailedPrecondition);

    // Zibo today: the apartment comes from the housing feed (nothing
    // declared), and the wife and son settle with him in the new household.
    let family = SettlementApplication {
        applicant_id_number: APPLICANT.into(),
        target: address(ZIBO, "新村路9号 1单元101室"),
        documents: [
            DocumentKind::HouseholdBook,
            DocumentKind::IdCard,
            DocumentKind::PropertyCertificate,
            DocumentKind::MarriageCertificate,
            DocumentKind::KinshipProof,
        ]
        .iter()
        .map(|d| *d as i32)
        .collect(),
        family: vec![
            FamilyMember {
                id_number: "110105199201011245".into(),
                kinship: Kinship::Spouse as i32,
            },
            FamilyMember {
                id_number: "110105201801011214".into(),
                kinship: Kinship::Child as i32,
            },
        ],
        ..Default::default()
    };
    let evaluation = settlement.evaluate_settlement(family.clone()).await.expect("evaluate").into_inner();
    assert_eq!(evaluation.policy_id, "zibo-2021");
    assert_eq!(
        evaluation.recommended_rule_id,
        "property",
        "{:?}",
        rule(&evaluation, "property").checks
    );
    let property = check(rule(&evaluation, "property"), "PROPERTY_KIND");
    assert!(property.passed && property.origin == FactOrigin::Platform as i32, "{property:?}");
    assert!(evaluation.family_eligible, "{:?}", evaluation.family);
    let placed: Vec<(PlacementKind, Relationship)> = evaluation
        .family
        .iter()
        .map(|m| {
            let p = m.placement.as_ref().expect("placement");
            (p.kind(), p.relationship())
        })
        .collect();
    assert_eq!(
        placed,
        [
            (PlacementKind::OwnProperty, Relationship::Spouse),
            (PlacementKind::OwnProperty, Relationship::Son)
        ]
    );

    // Hostile input is refused naming the field: a third "child" who is the applicant.
    let mut bad = family;
    bad.family.push(FamilyMember {
        id_number: APPLICANT.into(),
        kinship: Kinship::Child as i32,
    });
    let refused = settlement.evaluate_settlement(bad).await.expect_err("the applicant as a member");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.metadata().get("popbase-field").and_then(|v| v.to_str().ok()),
        Some("application.family[2].id_number")
    );
    stop_all(&mut children);
}
