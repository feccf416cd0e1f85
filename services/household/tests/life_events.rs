//! Every life event over a real socket against a real store: the happy path,
//! the refusals (each naming its field), the change log, and races.

mod support;

use std::sync::{Arc, Barrier};

use popbase_common::Shutdown;
use popbase_domain::IdNumber;
use popbase_proto::common::{Date, Sex};
use popbase_proto::household::life_events_client::LifeEventsClient;
use popbase_proto::household::{
    ApplicantFacts, ChangeAddressRequest, ChangeHeadRequest, CreateCollectiveHouseholdRequest, DocumentKind, EventContext, EventKind,
    HouseholdKind, IssueFamilyBookRequest, JoinHousehold, Kinship, ListEventsRequest, MoveOutReason, MoveOutRequest, MovePersonRequest,
    Person, PlacementKind, PropertyKind, RegisterBirthRequest, RegisterDeathRequest, RegistrationStatus, Relationship, SettleMoveInRequest,
    SettlementApplication, move_person_request,
};
use support::{City, address, outsider};
use tonic::transport::Channel;
use tonic::{Code, Status};

struct Served {
    city: City,
    client: LifeEventsClient<Channel>,
    shutdown: Shutdown,
}

async fn serve() -> Served {
    let city = City::new("370302", "370303");
    let (addr, shutdown) = city.serve().await;
    let client = LifeEventsClient::connect(addr).await.expect("connect");
    Served { city, client, shutdown }
}

fn context() -> Option<EventContext> {
    Some(EventContext {
        actor: "police-370302-01".into(),
        occurred_on: Some(Date {
            year: 2026,
            month: 6,
            day: 30,
        }),
    })
}

fn field(status: &Status) -> &str {
    status
        .metadata()
        .get("popbase-field")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn assert_refused(status: Status, code: Code, expected_field: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(field(&status), expected_field, "{status:?}");
}

fn new_home(committee: &str, detail: &str) -> Option<move_person_request::Target> {
    Some(move_person_request::Target::NewHouseholdAddress(address(committee, detail)))
}

#[tokio::test]
async fn birth_gives_a_correct_new_id_in_a_parents_household() {
    let Served {
        city,
        mut client,
        shutdown,
    } = serve().await;
    let birth = |sex: Sex| RegisterBirthRequest {
        context: context(),
        name: "新生儿".into(),
        sex: sex as i32,
        birth_date: Some(Date {
            year: 2026,
            month: 6,
            day: 1,
        }),
        birthplace_code: "370302".into(),
        father_id_number: city.son.as_str().into(),
        household_id: city.family.clone(),
        ..Default::default()
    };
    let first = client.register_birth(birth(Sex::Female)).await.expect("birth").into_inner();
    let child = &first.persons[0];
    let id = IdNumber::parse(&child.id_number, support::on()).expect("valid GB 11643 number");
    assert_eq!(id.county_code(), &city.family[..6], "the household's county");
    assert_eq!(id.birth_date().to_string(), "2026-06-01");
    assert_eq!(id.sex(), popbase_domain::Sex::Female, "even sequence for a girl");
    assert_eq!(child.father_id_number, city.son.as_str());
    assert_eq!(child.relationship(), Relationship::Granddaughter, "the head's son's child");
    let second = client.register_birth(birth(Sex::Female)).await.expect("twin").into_inner();
    assert_ne!(second.persons[0].id_number, child.id_number, "the next free sequence");
    let members = city.registry.members(&city.family).expect("members");
    assert_eq!(members.len(), 5);

    let mut bad = birth(Sex::Male);
    bad.mother_id_number = "370302199001011233".into();
    assert_refused(
        client.register_birth(bad).await.expect_err("check digit"),
        Code::InvalidArgument,
        "mother_id_number",
    );
    let mut elsewhere = birth(Sex::Male);
    elsewhere.household_id = city.rural_family.clone();
    assert_refused(
        client.register_birth(elsewhere).await.expect_err("not a parent's"),
        Code::FailedPrecondition,
        "household_id",
    );
    let mut future = birth(Sex::Male);
    future.birth_date = Some(Date {
        year: 2026,
        month: 7,
        day: 1,
    });
    assert_refused(
        client.register_birth(future).await.expect_err("future"),
        Code::InvalidArgument,
        "birth_date",
    );
    shutdown.trigger();
}

#[tokio::test]
async fn death_cancels_once_and_is_logged_with_images() {
    let Served {
        city,
        mut client,
        shutdown,
    } = serve().await;
    let request = RegisterDeathRequest {
        context: context(),
        id_number: city.wife.as_str().into(),
        death_certificate_number: "D2026-1".into(),
    };
    let receipt = client.register_death(request.clone()).await.expect("death").into_inner();
    assert_eq!(receipt.persons[0].status(), RegistrationStatus::Deceased);
    assert_eq!(city.registry.members(&city.family).expect("members").len(), 2);
    let again = client.register_death(request).await.expect_err("dead already");
    assert!(!again.message().contains(city.wife.as_str()), "no clear ID in errors");
    assert_refused(again, Code::FailedPrecondition, "id_number");

    let log = city.registry.store().changes_since(0, 100).expect("log");
    let entry = log
        .iter()
        .find(|b| b.reason == "EVENT_KIND_DEATH")
        .expect("death in the change log");
    assert_eq!(entry.actor, "police-370302-01");
    let person_change = entry.changes.iter().find(|c| c.table == "persons").expect("person row");
    assert!(
        person_change.before.is_some() && person_change.after.is_some(),
        "before and after images"
    );

    let unknown = RegisterDeathRequest {
        context: context(),
        id_number: outsider(40, true).as_str().into(),
        ..Default::default()
    };
    assert_refused(
        client.register_death(unknown).await.expect_err("unknown"),
        Code::FailedPrecondition,
        "id_number",
    );
    let no_actor = RegisterDeathRequest {
        context: Some(EventContext::default()),
        id_number: city.son.as_str().into(),
        ..Default::default()
    };
    assert_refused(
        client.register_death(no_actor).await.expect_err("actor"),
        Code::InvalidArgument,
        "context.actor",
    );
    shutdown.trigger();
}

#[tokio::test]
async fn settlement_places_by_the_policy_and_refuses_with_reasons() {
    let Served {
        city,
        mut client,
        shutdown,
    } = serve().await;
    let bride = outsider(28, false);
    let application = SettlementApplication {
        applicant_id_number: bride.as_str().into(),
        target: Some(address(&city.urban, "幸福路1号")),
        relations: vec![popbase_proto::household::ClaimedRelation {
            sponsor_id_number: city.son.as_str().into(),
            kinship: Kinship::Spouse as i32,
        }],
        documents: vec![
            DocumentKind::HouseholdBook as i32,
            DocumentKind::IdCard as i32,
            DocumentKind::KinshipProof as i32,
        ],
        ..Default::default()
    };
    let arriving = Person {
        id_number: bride.as_str().into(),
        name: "新娘".into(),
        sex: Sex::Female as i32,
        ..Default::default()
    };
    let receipt = client
        .settle_move_in(SettleMoveInRequest {
            context: context(),
            application: Some(application.clone()),
            rule_id: String::new(),
            person: Some(arriving.clone()),
        })
        .await
        .expect("settled")
        .into_inner();
    let event = receipt.event.expect("event");
    assert_eq!(event.kind(), EventKind::Settlement);
    assert_eq!(event.policy_rule, "zibo-2021/relative");
    let settled = &receipt.persons[0];
    assert_eq!(settled.household_id, city.family);
    assert_eq!(
        settled.relationship(),
        Relationship::DaughterInLaw,
        "derived from the new spouse link"
    );
    let son = city.registry.person(city.son.as_str()).expect("read").expect("son");
    assert_eq!(son.spouse_id_number, bride.as_str(), "the link is recorded both ways");

    // A commercial unit is not a home under Zibo's rules.
    let shop_owner = outsider(40, true);
    let refused = client
        .settle_move_in(SettleMoveInRequest {
            context: context(),
            application: Some(SettlementApplication {
                applicant_id_number: shop_owner.as_str().into(),
                target: Some(address(&city.urban, "商业街8号")),
                documents: vec![
                    DocumentKind::HouseholdBook as i32,
                    DocumentKind::IdCard as i32,
                    DocumentKind::PropertyCertificate as i32,
                ],
                facts: Some(ApplicantFacts {
                    property_kind: PropertyKind::Commercial as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            rule_id: "property".into(),
            person: Some(Person {
                id_number: shop_owner.as_str().into(),
                name: "店主".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("refused");
    assert_refused(refused.clone(), Code::FailedPrecondition, "rule_id");
    assert!(refused.message().contains("PROPERTY_KIND"), "{}", refused.message());
    assert!(
        city.registry.person(shop_owner.as_str()).expect("read").is_none(),
        "nothing written"
    );

    let mut unknown_committee = application.clone();
    unknown_committee.target = Some(address("370302999999", "1号"));
    let bad = client
        .settle_move_in(SettleMoveInRequest {
            context: context(),
            application: Some(unknown_committee),
            rule_id: String::new(),
            person: Some(arriving),
        })
        .await
        .expect_err("unknown committee");
    assert_refused(bad, Code::InvalidArgument, "application.target.committee_code");
    assert_eq!(
        receipt.evaluation.expect("evaluation").placement.expect("placement").kind(),
        PlacementKind::RelativeHousehold
    );
    shutdown.trigger();
}

#[tokio::test]
async fn moves_out_transfers_and_household_moves() {
    let Served {
        city,
        mut client,
        shutdown,
    } = serve().await;
    // The head cannot leave his family behind.
    let head_out = MoveOutRequest {
        context: context(),
        id_number: city.head.as_str().into(),
        reason: MoveOutReason::OutOfCity as i32,
        to_code: "110105".into(),
    };
    assert_refused(
        client.move_out(head_out).await.expect_err("head"),
        Code::FailedPrecondition,
        "id_number",
    );
    let inside = MoveOutRequest {
        context: context(),
        id_number: city.son.as_str().into(),
        reason: MoveOutReason::OutOfCity as i32,
        to_code: "370303".into(),
    };
    assert_refused(client.move_out(inside).await.expect_err("inside"), Code::InvalidArgument, "to_code");

    // 分户: the son founds his own household in the same county.
    let split = client
        .move_between_households(MovePersonRequest {
            context: context(),
            id_number: city.son.as_str().into(),
            target: new_home(&city.urban, "幸福路2号"),
        })
        .await
        .expect("split")
        .into_inner();
    let own = split.household.expect("new household");
    assert_eq!(own.head_id_number, city.son.as_str());
    assert!(own.household_id.starts_with(&city.urban[..6]));
    // 通迁 needs another county; the same county is refused with the field.
    let same_county = client
        .transfer_within_city(MovePersonRequest {
            context: context(),
            id_number: city.wife.as_str().into(),
            target: new_home(&city.urban, "幸福路3号"),
        })
        .await
        .expect_err("same county");
    assert_refused(same_county, Code::FailedPrecondition, "new_household_address");
    let zhangdian = support::committee_in("370303", true);
    let transfer = client
        .transfer_within_city(MovePersonRequest {
            context: context(),
            id_number: city.wife.as_str().into(),
            target: new_home(&zhangdian, "柳泉路5号"),
        })
        .await
        .expect("transfer")
        .into_inner();
    assert_eq!(transfer.event.expect("event").kind(), EventKind::CityTransfer);
    assert_eq!(city.registry.count_persons_under(&zhangdian).expect("count"), 1);
    // Moving into a household that does not exist.
    let nowhere = client
        .move_between_households(MovePersonRequest {
            context: context(),
            id_number: city.head.as_str().into(),
            target: Some(move_person_request::Target::Join(JoinHousehold {
                household_id: format!("{}99999999", &city.urban[..6]),
                relationship: Relationship::Father as i32,
            })),
        })
        .await
        .expect_err("no household");
    assert_refused(nowhere, Code::FailedPrecondition, "join.household_id");
    // Now alone, the head may move out; his household closes.
    let out = client
        .move_out(MoveOutRequest {
            context: context(),
            id_number: city.head.as_str().into(),
            reason: MoveOutReason::OutOfCity as i32,
            to_code: "110105".into(),
        })
        .await
        .expect("move out")
        .into_inner();
    assert_eq!(out.persons[0].status(), RegistrationStatus::MovedOut);
    assert_eq!(
        out.household.expect("closed").status(),
        popbase_proto::household::HouseholdStatus::Closed
    );
    shutdown.trigger();
}

#[tokio::test]
async fn head_address_collectives_and_family_books() {
    let Served {
        city,
        mut client,
        shutdown,
    } = serve().await;
    let changed = client
        .change_head(ChangeHeadRequest {
            context: context(),
            household_id: city.family.clone(),
            new_head_id_number: city.son.as_str().into(),
            relationships: vec![],
        })
        .await
        .expect("head")
        .into_inner();
    let relationship_of = |id: &IdNumber| {
        changed
            .persons
            .iter()
            .find(|p| p.id_number == id.as_str())
            .map(|p| p.relationship())
    };
    assert_eq!(relationship_of(&city.son), Some(Relationship::Head));
    assert_eq!(relationship_of(&city.head), Some(Relationship::Father));
    assert_eq!(relationship_of(&city.wife), Some(Relationship::Mother));

    let moved_to = support::committee_in(&city.urban[..9], true);
    let new_address = address(&moved_to, "和平路9号");
    client
        .change_address(ChangeAddressRequest {
            context: context(),
            household_id: city.family.clone(),
            address: Some(new_address.clone()),
        })
        .await
        .expect("address");
    let members = city.registry.members(&city.family).expect("members");
    assert!(members.iter().all(|m| m.address.as_ref() == Some(&new_address)));
    let other_county = client
        .change_address(ChangeAddressRequest {
            context: context(),
            household_id: city.family.clone(),
            address: Some(address(&support::committee_in("370303", true), "1号")),
        })
        .await
        .expect_err("other county");
    assert_refused(other_county, Code::FailedPrecondition, "address");

    let not_collective = client
        .create_collective_household(CreateCollectiveHouseholdRequest {
            context: context(),
            kind: HouseholdKind::Family as i32,
            unit_name: "x".into(),
            address: Some(address(&city.urban, "1号")),
        })
        .await
        .expect_err("family kind");
    assert_refused(not_collective, Code::InvalidArgument, "kind");
    let school = client
        .create_collective_household(CreateCollectiveHouseholdRequest {
            context: context(),
            kind: HouseholdKind::CollectiveSchool as i32,
            unit_name: "淄博职业学院".into(),
            address: Some(address(&city.urban, "学院路1号")),
        })
        .await
        .expect("school")
        .into_inner()
        .household
        .expect("household");

    // A couple and a stranger move into the school collective; only the
    // couple gets a family book.
    let join = |id: &IdNumber| MovePersonRequest {
        context: context(),
        id_number: id.as_str().into(),
        target: Some(move_person_request::Target::Join(JoinHousehold {
            household_id: school.household_id.clone(),
            relationship: Relationship::CollectiveMember as i32,
        })),
    };
    client
        .change_head(ChangeHeadRequest {
            context: context(),
            household_id: city.family.clone(),
            new_head_id_number: city.head.as_str().into(),
            relationships: vec![],
        })
        .await
        .expect("head back");
    client.move_between_households(join(&city.son)).await.expect("son joins");
    client.move_between_households(join(&city.wife)).await.expect("mother joins");
    let book = client
        .issue_family_book(IssueFamilyBookRequest {
            context: context(),
            household_id: school.household_id.clone(),
            member_id_numbers: vec![city.son.as_str().into(), city.wife.as_str().into()],
        })
        .await
        .expect("family book")
        .into_inner();
    assert_eq!(book.household.expect("household").family_books.len(), 1);
    let family_household_book = client
        .issue_family_book(IssueFamilyBookRequest {
            context: context(),
            household_id: city.family.clone(),
            member_id_numbers: vec![city.head.as_str().into(), city.son.as_str().into()],
        })
        .await
        .expect_err("family household");
    assert_refused(family_household_book, Code::FailedPrecondition, "household_id");

    let events = client
        .list_events(ListEventsRequest {
            from: Some(Date {
                year: 2026,
                month: 6,
                day: 30,
            }),
            to: Some(Date {
                year: 2026,
                month: 6,
                day: 30,
            }),
            page: None,
        })
        .await
        .expect("events")
        .into_inner()
        .events;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&EventKind::FamilyBookIssued) && kinds.contains(&EventKind::HeadChanged));
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence), "oldest first");
    shutdown.trigger();
}

#[test]
fn racing_deaths_of_one_person_one_wins() {
    let city = City::new("370302", "370303");
    for round in 0..10 {
        let id = support::id_in("370302", 70 + round, true);
        let household = format!("370302{:08}", 40_000 + round);
        city.add_lone_head(&id, &household, "养老院");
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (registry, barrier, id) = (city.registry.clone(), Arc::clone(&barrier), id);
                std::thread::spawn(move || {
                    barrier.wait();
                    registry.register_death(&support::context(), &id)
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
        let wins = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(wins, 1, "exactly one death is recorded");
        let loser = outcomes.into_iter().find_map(Result::err).expect("a loser");
        let code = Status::from(loser).code();
        assert!(matches!(code, Code::Aborted | Code::FailedPrecondition), "{code:?}");
    }
    let on = support::on();
    let (events, _) = city.registry.events_between(on, on, None, 1000).expect("events");
    let deaths = events.iter().filter(|e| e.kind() == EventKind::Death).count();
    assert_eq!(deaths, 10, "one recorded death per person, never two");
}

#[test]
fn birth_numbers_follow_those_already_given_out_that_day() {
    use popbase_household::events::Birth;
    let city = City::new("370302", "370303");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 6, 2).expect("date");
    let county = city.family[..6].to_string();
    let import_boy = |sequence: u16| {
        let id = IdNumber::generate(&county, day, sequence).expect("id");
        let household = format!("{county}{:08}", 41_000 + u32::from(sequence));
        city.add_lone_head(&id, &household, "幸福路2号");
    };
    let born = |sex: Sex| {
        let birth = Birth {
            name: "新生儿".into(),
            sex,
            birth_date: day,
            birthplace_code: county.clone(),
            ethnicity: String::new(),
            mother: None,
            father: Some(city.son),
            household_id: city.family.clone(),
        };
        let receipt = city.registry.register_birth(&support::context(), &birth).expect("birth");
        IdNumber::parse(&receipt.persons[0].id_number, support::on())
            .expect("valid")
            .sequence()
    };
    // Boys 001 and 005 of that day are registered already (generated or imported).
    import_boy(1);
    import_boy(5);
    assert_eq!(born(Sex::Male), 3, "the lowest free odd number");
    assert_eq!(born(Sex::Female), 2, "girls count apart, from 002");
    assert_eq!(born(Sex::Male), 7, "past 005, which was out already");
    // A boy imported after the counter was set holds the next number.
    import_boy(9);
    assert_eq!(born(Sex::Male), 11, "past 009, imported since");
    assert_eq!(born(Sex::Female), 4);
}
