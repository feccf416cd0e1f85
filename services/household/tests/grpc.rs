//! The registry's gRPC service over a real socket and a real store.

use popbase_common::metrics::Metrics;
use popbase_common::{Config, Shutdown, server};
use popbase_household::registry::HouseholdWithMembers;
use popbase_household::{Registry, tables};
use popbase_proto::common::{Address, PageRequest};
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::{
    GetHouseholdRequest, GetPersonRequest, GetPersonsRequest, Household, ListPersonsRequest, Person, PersonView, RegistrationStatus,
};
use popbase_storage::{Store, StoreOptions};
use tonic::Code;
use tonic::transport::Channel;

const HOUSEHOLD: &str = "37030200000001";
const IDS: [&str; 3] = ["11010519491231002X", "440524188001010014", "370302199001011232"];

fn person(id: &str, committee: &str) -> Person {
    Person {
        id_number: id.into(),
        name: "测试".into(),
        household_id: HOUSEHOLD.into(),
        address: Some(Address {
            committee_code: committee.into(),
            detail: "1号".into(),
        }),
        status: RegistrationStatus::Active as i32,
        ..Default::default()
    }
}

async fn start() -> (HouseholdRegistryClient<Channel>, Shutdown, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::new(Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open"));
    let household = Household {
        household_id: HOUSEHOLD.into(),
        ..Default::default()
    };
    let members = vec![
        person(IDS[0], "370302001001"),
        person(IDS[1], "370302001001"),
        person(IDS[2], "370302001002"),
    ];
    registry.import(&[HouseholdWithMembers { household, members }]).expect("import");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let services = popbase_household::role::services(
        &registry,
        std::sync::Arc::new(popbase_household::settlement::PolicySet::shipped().expect("policies")),
        None,
        &Config::default(),
    );
    tokio::spawn(server::serve(services, listener, Metrics::new(), shutdown.clone()));
    let client = HouseholdRegistryClient::connect(format!("http://{addr}")).await.expect("connect");
    (client, shutdown, dir)
}

#[tokio::test]
async fn looks_up_people_and_households() {
    let (mut client, shutdown, _dir) = start().await;
    let found = client
        .get_person(GetPersonRequest { id_number: IDS[0].into() })
        .await
        .expect("found")
        .into_inner();
    assert_eq!(found.id_number, IDS[0]);
    // Lower-case x is accepted and normalised.
    let lower = client
        .get_person(GetPersonRequest {
            id_number: IDS[0].to_lowercase(),
        })
        .await
        .expect("found");
    assert_eq!(lower.into_inner().id_number, IDS[0]);
    let household = client
        .get_household(GetHouseholdRequest {
            household_id: HOUSEHOLD.into(),
        })
        .await
        .expect("household")
        .into_inner();
    assert_eq!(household.members.len(), 3);
    shutdown.trigger();
}

#[tokio::test]
async fn get_persons_answers_the_view_asked_for() {
    let (mut client, shutdown, _dir) = start().await;
    let ids = vec![IDS[0].to_string(), "370302199001011216".to_string()];
    let ask = |view: PersonView| GetPersonsRequest {
        id_numbers: ids.clone(),
        view: view as i32,
        as_of: None,
    };
    let full = client
        .get_persons(ask(PersonView::Unspecified))
        .await
        .expect("full")
        .into_inner()
        .persons;
    assert_eq!(full.len(), 2);
    assert_eq!((full[0].name.as_str(), full[0].household_id.as_str()), ("测试", HOUSEHOLD));
    assert_eq!(full[1], Person::default(), "unknown: empty at its position");
    assert_eq!(
        client.get_persons(ask(PersonView::Full)).await.expect("full").into_inner().persons,
        full
    );

    let standing = client
        .get_persons(ask(PersonView::Standing))
        .await
        .expect("standing")
        .into_inner()
        .persons;
    assert_eq!(standing.len(), 2);
    assert_eq!(
        standing[0],
        Person {
            id_number: full[0].id_number.clone(),
            address: full[0].address.clone(),
            status: full[0].status,
            ..Default::default()
        }
    );
    assert_eq!(standing[1], Person::default());

    let unknown = client
        .get_persons(GetPersonsRequest {
            id_numbers: ids.clone(),
            view: 9,
            as_of: None,
        })
        .await
        .expect_err("unknown view");
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(unknown.metadata().get("popbase-field").and_then(|v| v.to_str().ok()), Some("view"));
    shutdown.trigger();
}

#[tokio::test]
async fn bad_input_names_the_field_and_missing_people_stay_masked() {
    let (mut client, shutdown, _dir) = start().await;
    let bad = client
        .get_person(GetPersonRequest {
            id_number: "110105194912310021".into(),
        })
        .await
        .expect_err("bad check digit");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("id_number") && bad.message().contains("check digit"),
        "{}",
        bad.message()
    );
    assert_eq!(bad.metadata().get("popbase-field").and_then(|v| v.to_str().ok()), Some("id_number"));

    let missing = client
        .get_person(GetPersonRequest {
            id_number: "370302199001011216".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("370302********1216"), "{}", missing.message());
    assert!(!missing.message().contains("370302199001011216"), "no clear ID in errors");

    let bad_household = client
        .get_household(GetHouseholdRequest {
            household_id: "abc".into(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(bad_household.code(), Code::InvalidArgument);
    let bad_division = client
        .list_persons(ListPersonsRequest {
            division_code: "370302999999".into(),
            page: None,
        })
        .await
        .expect_err("unknown committee");
    assert_eq!(bad_division.code(), Code::InvalidArgument);
    let bad_page = client
        .list_persons(ListPersonsRequest {
            division_code: "3703".into(),
            page: Some(PageRequest {
                page_size: 1,
                page_token: "zz".into(),
            }),
        })
        .await
        .expect_err("bad token");
    assert_eq!(
        bad_page.metadata().get("popbase-field").and_then(|v| v.to_str().ok()),
        Some("page.page_token")
    );
    shutdown.trigger();
}

#[tokio::test]
async fn lists_a_division_page_by_page() {
    let (mut client, shutdown, _dir) = start().await;
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let page = client
            .list_persons(ListPersonsRequest {
                division_code: "370302".into(),
                page: Some(PageRequest {
                    page_size: 2,
                    page_token: token,
                }),
            })
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.persons.into_iter().map(|p| p.id_number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 3, "every person exactly once across pages: {seen:?}");
    let committee = client
        .list_persons(ListPersonsRequest {
            division_code: "370302001002".into(),
            page: None,
        })
        .await
        .expect("committee")
        .into_inner();
    assert_eq!(committee.persons.len(), 1);
    assert!(committee.next_page_token.is_empty());
    shutdown.trigger();
}
