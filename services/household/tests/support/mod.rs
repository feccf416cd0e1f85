//! A small registry for tests: real RocksDB in a temporary directory, a few
//! families with kinship links, collective households created through the
//! life-event code, and applicants from outside the city.
#![allow(dead_code)]

use std::cell::Cell;

use chrono::NaiveDate;
use popbase_domain::{DivisionLevel, Divisions, IdNumber};
use popbase_household::registry::HouseholdWithMembers;
use popbase_household::settlement::{Application, PolicySet};
use popbase_household::{EventContext, Registry, tables};
use popbase_proto::common::{Address, Sex};
use popbase_proto::household::{
    ApplicantFacts, DocumentKind, Household, HouseholdKind, HouseholdStatus, Kinship, MaritalStatus, Person, RegistrationStatus,
    Relationship,
};
use popbase_storage::{Store, StoreOptions};

pub fn on() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).expect("date")
}

pub fn context() -> EventContext {
    EventContext {
        actor: "police-test-01".into(),
        on: on(),
    }
}

/// The first committee under `prefix` of the wanted kind (urban or rural).
pub fn committee_in(prefix: &str, urban: bool) -> String {
    let divisions = Divisions::embedded();
    let mut committees: Vec<_> = divisions
        .descendants_at(prefix, DivisionLevel::Committee)
        .into_iter()
        .filter(|d| d.committee_kind().is_some_and(|k| k.is_urban() == urban))
        .map(|d| d.code.clone())
        .collect();
    committees.sort();
    committees.into_iter().next().expect("a committee of that kind")
}

pub fn address(committee: &str, detail: &str) -> Address {
    Address {
        committee_code: committee.into(),
        detail: detail.into(),
    }
}

thread_local! {
    static SEQUENCE: Cell<u16> = const { Cell::new(1) };
}

/// A fresh ID number of someone born in `county`, `age` on [`on`].
pub fn id_in(county: &str, age: u32, male: bool) -> IdNumber {
    let birth = popbase_domain::calendar::add_years(on(), -(age as i32)) - chrono::Duration::days(10);
    let sequence = SEQUENCE.with(|s| {
        let mut n = s.get();
        if (n % 2 == 1) != male {
            n += 1;
        }
        s.set(n + 1);
        n
    });
    IdNumber::generate(county, birth, sequence).expect("valid id")
}

/// Someone from Beijing (outside every seed city).
pub fn outsider(age: u32, male: bool) -> IdNumber {
    id_in("110105", age, male)
}

pub fn person(id: &IdNumber, household: &str, committee: &str, relationship: Relationship) -> Person {
    Person {
        id_number: id.as_str().into(),
        name: "测试".into(),
        sex: if id.sex() == popbase_domain::Sex::Male {
            Sex::Male
        } else {
            Sex::Female
        } as i32,
        household_id: household.into(),
        relationship: relationship as i32,
        address: Some(address(committee, "幸福路1号")),
        status: RegistrationStatus::Active as i32,
        marital_status: MaritalStatus::Married as i32,
        ..Default::default()
    }
}

/// A registry of one city with a family in an urban committee (head, wife,
/// unmarried adult son), a rural family (a head without recorded spouse),
/// and a community, a talent, a unit and a rural collective household.
pub struct City {
    pub registry: Registry,
    pub policies: PolicySet,
    pub urban: String,
    pub rural: String,
    pub family: String,
    pub head: IdNumber,
    pub wife: IdNumber,
    pub son: IdNumber,
    pub rural_family: String,
    pub rural_head: IdNumber,
    pub unit_collective: String,
    pub community_collective: String,
    _dir: tempfile::TempDir,
}

impl City {
    /// `urban_scope` and `rural_scope` are division prefixes to take the
    /// committees from (the city, or a county or street of a zone).
    pub fn new(urban_scope: &str, rural_scope: &str) -> City {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open");
        let registry = Registry::new(store);
        let urban = committee_in(urban_scope, true);
        let rural = committee_in(rural_scope, false);
        let county = &urban[..6];
        let family = format!("{county}00000001");
        let (head, wife, son) = (id_in(county, 66, true), id_in(county, 62, false), id_in(county, 30, true));
        let mut members = vec![
            person(&head, &family, &urban, Relationship::Head),
            person(&wife, &family, &urban, Relationship::Spouse),
            person(&son, &family, &urban, Relationship::Son),
        ];
        members[0].spouse_id_number = wife.as_str().into();
        members[1].spouse_id_number = head.as_str().into();
        members[2].father_id_number = head.as_str().into();
        members[2].mother_id_number = wife.as_str().into();
        members[2].marital_status = MaritalStatus::Unmarried as i32;
        let rural_family = format!("{}00000002", &rural[..6]);
        let rural_head = id_in(&rural[..6], 40, true);
        let rural_members = vec![person(&rural_head, &rural_family, &rural, Relationship::Head)];
        let household = |id: &str, head: &IdNumber, committee: &str| Household {
            household_id: id.into(),
            kind: HouseholdKind::Family as i32,
            head_id_number: head.as_str().into(),
            address: Some(address(committee, "幸福路1号")),
            status: HouseholdStatus::Active as i32,
            ..Default::default()
        };
        registry
            .import(&[
                HouseholdWithMembers {
                    household: household(&family, &head, &urban),
                    members,
                },
                HouseholdWithMembers {
                    household: household(&rural_family, &rural_head, &rural),
                    members: rural_members,
                },
            ])
            .expect("import");
        let collective = |kind: HouseholdKind, committee: &str, name: &str| {
            registry
                .create_collective(&context(), kind, name, &address(committee, "社区服务中心"))
                .expect("collective")
                .household
                .expect("household")
                .household_id
        };
        let community_collective = collective(HouseholdKind::CollectiveCommunity, &urban, "社区集体户");
        collective(HouseholdKind::CollectiveTalent, &urban, "人才集体户");
        let unit_collective = collective(HouseholdKind::CollectiveUnit, &urban, "某某有限公司");
        collective(HouseholdKind::CollectiveRural, &rural, "农村集体户");
        City {
            registry,
            policies: PolicySet::shipped().expect("policies"),
            urban,
            rural,
            family,
            head,
            wife,
            son,
            rural_family,
            rural_head,
            unit_collective,
            community_collective,
            _dir: dir,
        }
    }

    /// Serves the household role over this registry on an ephemeral port:
    /// the `http://` address and the handle that stops it.
    pub async fn serve(&self) -> (String, popbase_common::Shutdown) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = popbase_common::Shutdown::new();
        let policies = std::sync::Arc::new(PolicySet::shipped().expect("policies"));
        let services = popbase_household::role::services(&self.registry, policies, None, &popbase_common::Config::default());
        let metrics = popbase_common::metrics::Metrics::new();
        tokio::spawn(popbase_common::server::serve(services, listener, metrics, shutdown.clone()));
        (format!("http://{addr}"), shutdown)
    }

    /// Adds one person to the registry (e.g. someone who moved out earlier).
    pub fn add(&self, household: Household, members: Vec<Person>) {
        self.registry
            .import(&[HouseholdWithMembers { household, members }])
            .expect("import");
    }

    /// Adds `id` as the head and only member of a new family household at
    /// `detail` in the urban committee.
    pub fn add_lone_head(&self, id: &IdNumber, household: &str, detail: &str) {
        self.add(
            Household {
                household_id: household.into(),
                kind: HouseholdKind::Family as i32,
                head_id_number: id.as_str().into(),
                address: Some(address(&self.urban, detail)),
                status: HouseholdStatus::Active as i32,
                ..Default::default()
            },
            vec![person(id, household, &self.urban, Relationship::Head)],
        );
    }
}

/// A settlement application under construction.
#[derive(Clone)]
pub struct App(pub Application);

impl App {
    pub fn new(applicant: &IdNumber, target: Address) -> App {
        App(Application {
            on: on(),
            applicant_id: *applicant,
            target,
            relations: Vec::new(),
            documents: vec![DocumentKind::HouseholdBook, DocumentKind::IdCard],
            declared: ApplicantFacts {
                marital_status: MaritalStatus::Married as i32,
                ..Default::default()
            },
            platform: Default::default(),
            family: Vec::new(),
        })
    }

    /// The same application for another target address.
    pub fn at(mut self, target: Address) -> App {
        self.0.target = target;
        self
    }

    pub fn docs(mut self, docs: &[DocumentKind]) -> App {
        self.0.documents.extend_from_slice(docs);
        self
    }

    pub fn without(mut self, doc: DocumentKind) -> App {
        self.0.documents.retain(|d| *d != doc);
        self
    }

    pub fn relation(mut self, sponsor: &IdNumber, kinship: Kinship) -> App {
        self.0.relations.push((sponsor.as_str().into(), kinship));
        self
    }

    /// A spouse or child settling together with the applicant.
    pub fn member(mut self, id: &IdNumber, kinship: Kinship) -> App {
        self.0.family.push((*id, kinship));
        self
    }

    pub fn facts(mut self, edit: impl FnOnce(&mut ApplicantFacts)) -> App {
        edit(&mut self.0.declared);
        self
    }
}
