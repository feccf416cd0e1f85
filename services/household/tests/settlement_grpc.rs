//! The Settlement and RegistryStatistics services over a real socket.

mod support;

use popbase_proto::common::Date;
use popbase_proto::household::registry_statistics_client::RegistryStatisticsClient;
use popbase_proto::household::settlement_client::SettlementClient;
use popbase_proto::household::{
    ApplicantFacts, ChangesRequest, ClaimedRelation, DocumentKind, HouseholdKind, Kinship, ListPoliciesRequest, PopulationRequest,
    SettlementApplication,
};
use support::{City, address, outsider};
use tonic::Code;

#[tokio::test]
async fn evaluate_list_and_count_over_grpc() {
    let city = City::new("370302", "370303");
    let (addr, shutdown) = city.serve().await;
    let mut settlement = SettlementClient::connect(addr.clone()).await.expect("connect");
    let mut statistics = RegistryStatisticsClient::connect(addr).await.expect("connect");

    let policies = settlement
        .list_policies(ListPoliciesRequest {})
        .await
        .expect("list")
        .into_inner()
        .policies;
    assert_eq!(policies.len(), 4);
    assert!(
        policies
            .iter()
            .any(|p| p.policy_id == "zibo-2021" && p.document == "淄政发〔2021〕9号")
    );

    let application = SettlementApplication {
        applicant_id_number: outsider(30, false).as_str().into(),
        target: Some(address(&city.urban, "幸福路1号")),
        relations: vec![ClaimedRelation {
            sponsor_id_number: city.son.as_str().into(),
            kinship: Kinship::Spouse as i32,
        }],
        documents: vec![DocumentKind::HouseholdBook as i32, DocumentKind::IdCard as i32],
        ..Default::default()
    };
    let evaluation = settlement
        .evaluate_settlement(application.clone())
        .await
        .expect("evaluate")
        .into_inner();
    assert_eq!(evaluation.policy_id, "zibo-2021", "chosen by the target's city");
    let relative = evaluation.rules.iter().find(|r| r.rule_id == "relative").expect("rule");
    assert!(!relative.eligible, "unverifiable kinship without proof");
    assert_eq!(relative.missing_documents, vec![DocumentKind::KinshipProof as i32]);
    let mut proven = application.clone();
    proven.documents.push(DocumentKind::KinshipProof as i32);
    let evaluation = settlement.evaluate_settlement(proven).await.expect("evaluate").into_inner();
    assert!(evaluation.eligible);
    assert_eq!(evaluation.placement.expect("placement").household_id, city.family);

    let mut bad = application.clone();
    bad.relations[0].kinship = 0;
    let status = settlement.evaluate_settlement(bad).await.expect_err("kinship unset");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.metadata().get("popbase-field").and_then(|v| v.to_str().ok()),
        Some("application.relations[0].kinship")
    );
    let mut clan = application.clone();
    clan.relations = vec![application.relations[0].clone(); 17];
    let status = settlement.evaluate_settlement(clan).await.expect_err("17 relatives");
    assert_eq!(
        (status.code(), status.metadata().get("popbase-field").and_then(|v| v.to_str().ok())),
        (Code::InvalidArgument, Some("application.relations"))
    );
    let mut bad = application;
    bad.facts = Some(ApplicantFacts {
        talent_category: "Z".into(),
        ..Default::default()
    });
    let status = settlement.evaluate_settlement(bad).await.expect_err("category");
    assert_eq!(status.code(), Code::InvalidArgument);

    let population = statistics
        .population(PopulationRequest {
            division_code: "370302".into(),
            on: None,
        })
        .await
        .expect("population")
        .into_inner();
    let total = population.total.expect("total");
    assert_eq!(total.persons, 3, "the urban family");
    assert_eq!(total.households, 1 + 3, "the family and three urban collectives");
    let changes = statistics
        .changes(ChangesRequest {
            division_code: "3703".into(),
            from: Some(Date {
                year: 2026,
                month: 1,
                day: 1,
            }),
            to: Some(Date {
                year: 2026,
                month: 12,
                day: 31,
            }),
        })
        .await
        .expect("changes")
        .into_inner();
    assert_eq!(changes.collective_households, 4);
    let rural = changes
        .collectives_by_kind
        .iter()
        .find(|k| k.kind == HouseholdKind::CollectiveRural as i32);
    assert_eq!(rural.map(|k| k.households), Some(1));
    let backwards = statistics
        .changes(ChangesRequest {
            division_code: "3703".into(),
            from: Some(Date {
                year: 2026,
                month: 12,
                day: 31,
            }),
            to: Some(Date {
                year: 2026,
                month: 1,
                day: 1,
            }),
        })
        .await
        .expect_err("backwards");
    assert_eq!(backwards.code(), Code::InvalidArgument);
    shutdown.trigger();
}
