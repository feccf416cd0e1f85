//! The registry as of a past day: a year of generated life events is
//! replayed into a generated city, the registry's records are taken at
//! several days as the year passes, and `GetPersons` with `as_of`, over a
//! real socket afterwards, must answer each day exactly as it stood.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use popbase_household::Registry;
use popbase_household::settlement::PolicySet;
use popbase_household::tables::PERSONS;
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::{GetPersonsRequest, Person, PersonView};
use popbase_storage::{Durability, Read, StoreOptions};
use popbase_synth::events::drive_year_observed;
use popbase_synth::load::StoreSink;
use popbase_synth::{CityGenerator, CityParams};

/// Every person record the registry holds (any status), by ID number.
fn all_persons(registry: &Registry) -> BTreeMap<String, Person> {
    let mut out = BTreeMap::new();
    registry
        .store()
        .for_each(&PERSONS, &[], |_, row| {
            out.insert(row.value.id_number.clone(), row.value);
            Ok(true)
        })
        .expect("scan persons");
    out
}

#[test]
fn get_persons_as_of_answers_each_past_day_as_it_stood() {
    let dir = tempfile::tempdir().expect("tempdir");
    let params = CityParams::new("3703", 3_000, 11);
    let generator = CityGenerator::new(params.clone()).expect("generator");
    let mut sink = StoreSink::open(dir.path(), StoreOptions::default()).expect("stores");
    generator.run(&mut sink).expect("generate");
    sink.flush().expect("flush");
    let registry: Registry = sink.registry.clone().with_durability(Durability::Buffered);

    let to = params.reference_date;
    let from = to - Duration::days(364);
    let before_the_year = from - Duration::days(1);
    let samples = [
        from + Duration::days(40),
        from + Duration::days(150),
        from + Duration::days(290),
        to,
    ];
    let mut truth: BTreeMap<NaiveDate, BTreeMap<String, Person>> = BTreeMap::new();
    truth.insert(before_the_year, all_persons(&registry));
    let year = drive_year_observed(&registry, generator.map(), to, params.seed, &mut |day| {
        if samples.contains(&day) {
            truth.insert(day, all_persons(&registry));
        }
    })
    .expect("events");
    assert!(year.births > 5 && year.deaths > 5 && year.settlements() > 5, "{year:?}");
    assert_eq!(truth.len(), samples.len() + 1, "every sample day was observed");
    let everyone: Vec<String> = all_persons(&registry).into_keys().collect();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = popbase_common::Shutdown::new();
        let policies = std::sync::Arc::new(PolicySet::shipped().expect("policies"));
        let services = popbase_household::role::services(&registry, policies, None, &popbase_common::Config::default());
        tokio::spawn(popbase_common::server::serve(
            services,
            listener,
            popbase_common::metrics::Metrics::new(),
            shutdown.clone(),
        ));
        let mut client = HouseholdRegistryClient::connect(format!("http://{addr}")).await.expect("connect");
        for (day, expected) in &truth {
            let mut answered = Vec::new();
            for ids in everyone.chunks(1000) {
                let persons = client
                    .get_persons(GetPersonsRequest {
                        id_numbers: ids.to_vec(),
                        view: PersonView::Full as i32,
                        as_of: Some((*day).into()),
                    })
                    .await
                    .expect("get persons as of")
                    .into_inner()
                    .persons;
                answered.extend(persons);
            }
            let mut changed_since = 0;
            for (id, got) in everyone.iter().zip(&answered) {
                match expected.get(id) {
                    Some(record) => assert_eq!(got, record, "{id} as of {day}"),
                    None => assert!(got.id_number.is_empty(), "{id} had no record on {day}"),
                }
                if expected.get(id) != all_persons_now(&registry, id).as_ref() {
                    changed_since += 1;
                }
            }
            if *day < to {
                assert!(changed_since > 0, "the answer for {day} differs from today's somewhere");
            }
        }
        let future = client
            .get_persons(GetPersonsRequest {
                id_numbers: everyone[..1].to_vec(),
                view: PersonView::Full as i32,
                as_of: Some((to + Duration::days(400)).into()),
            })
            .await
            .expect_err("a future day");
        assert_eq!(future.code(), tonic::Code::InvalidArgument);
        assert!(future.message().contains("as_of"), "{}", future.message());
        shutdown.trigger();
    });
}

fn all_persons_now(registry: &Registry, id: &str) -> Option<Person> {
    registry
        .store()
        .get(&PERSONS, &popbase_household::tables::person_key(id))
        .expect("read")
        .map(|v| v.value)
}
