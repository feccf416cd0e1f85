//! A year of life events, driven through the registry's own life-event code
//! (the same functions the gRPC adapters call), so the statistics of a
//! generated city have known true counts.
//!
//! Rates follow the Zibo assessment (seed 003): 35,581 settlements, 9,751
//! rural-to-urban moves and 157 new collective households (86 rural) a year
//! for about 4.2 million registered residents; births and deaths at
//! Shandong's recent rates. Settlement applications are built to satisfy
//! the city's policy; the engine still decides, and what it refuses (say, no
//! collective household nearby for an employee) is counted as refused.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use popbase_common::ServiceError;
use popbase_domain::IdNumber;
use popbase_domain::calendar::{add_years, age_on};
use popbase_household::events::{Birth, MoveKind, MoveTarget};
use popbase_household::settlement::{Application, PolicySet};
use popbase_household::{EventContext, Registry};
use popbase_proto::common::{Address, Sex};
use popbase_proto::household::{
    ApplicantFacts, DocumentKind, EducationLevel, HouseholdKind, Kinship, MaritalStatus, Person, PropertyKind, Relationship,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::GenerateError;
use crate::geography::CityMap;
use crate::households::{COLLECTIVE_KINDS, pick_weighted};
use crate::names;

/// Yearly events per registered resident.
pub const SETTLEMENT_RATE: f64 = 35_581.0 / 4_200_000.0;
pub const RURAL_TO_URBAN_RATE: f64 = 9_751.0 / 4_200_000.0;
pub const COLLECTIVE_RATE: f64 = 157.0 / 4_200_000.0;
pub const RURAL_COLLECTIVE_SHARE: f64 = 86.0 / 157.0;
pub const BIRTH_RATE: f64 = 0.0065;
pub const DEATH_RATE: f64 = 0.0075;

/// What the year did: the true counts the statistics must reproduce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// By `MoveInReason` value.
    pub settlements_by_path: BTreeMap<i32, u64>,
    pub refused_settlements: u64,
    pub rural_to_urban: u64,
    /// By `HouseholdKind` value.
    pub collectives_by_kind: BTreeMap<i32, u64>,
    pub births: u64,
    pub deaths: u64,
    /// Persons registered after the year minus before it.
    pub net_persons: i64,
}

impl EventCounts {
    pub fn settlements(&self) -> u64 {
        self.settlements_by_path.values().sum()
    }

    /// Adds `other`'s counts (a province's cities into one year); the
    /// dates span both.
    pub fn add(&mut self, other: &EventCounts) {
        self.from = self.from.into_iter().chain(other.from).min();
        self.to = self.to.into_iter().chain(other.to).max();
        for (path, n) in &other.settlements_by_path {
            *self.settlements_by_path.entry(*path).or_default() += n;
        }
        for (kind, n) in &other.collectives_by_kind {
            *self.collectives_by_kind.entry(*kind).or_default() += n;
        }
        self.refused_settlements += other.refused_settlements;
        self.rural_to_urban += other.rural_to_urban;
        self.births += other.births;
        self.deaths += other.deaths;
        self.net_persons += other.net_persons;
    }
}

struct Driver<'a> {
    registry: &'a Registry,
    policies: PolicySet,
    map: &'a CityMap,
    rng: ChaCha8Rng,
    from: NaiveDate,
    /// The day the events being recorded take effect.
    today: NaiveDate,
    next_applicant: u16,
    next_address: u64,
}

/// One life event the year's plan holds.
#[derive(Debug, Clone, Copy)]
enum Planned {
    Birth,
    RuralToUrban,
    Settlement,
    Death,
}

/// Drives one year of events ending on `reference_date` into `registry`.
pub fn drive_year(registry: &Registry, map: &CityMap, reference_date: NaiveDate, seed: u64) -> Result<EventCounts, GenerateError> {
    drive_year_observed(registry, map, reference_date, seed, &mut |_| {})
}

/// [`drive_year`], calling `day_done` with each day once its last event is
/// recorded. Events are recorded in the order they take effect (the kinds
/// shuffled, the days rising through the year), so what the registry holds
/// when `day_done(d)` runs is the registry as of the end of `d`.
pub fn drive_year_observed(
    registry: &Registry,
    map: &CityMap,
    reference_date: NaiveDate,
    seed: u64,
    day_done: &mut dyn FnMut(NaiveDate),
) -> Result<EventCounts, GenerateError> {
    let storage = |e: popbase_storage::StorageError| GenerateError::Sink(e.to_string());
    let registered = registry.count_persons_under(&map.city_code).map_err(storage)?;
    let policies = PolicySet::shipped().map_err(|e| GenerateError::City(e.to_string()))?;
    let from = reference_date - Duration::days(364);
    let mut driver = Driver {
        registry,
        policies,
        map,
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6576_656e_7473),
        from,
        today: from,
        next_applicant: 0,
        next_address: 0,
    };
    let mut counts = EventCounts {
        from: Some(driver.from),
        to: Some(reference_date),
        ..Default::default()
    };
    let scaled = |rate: f64| (registered as f64 * rate).round() as usize;
    // Collective households are set up on the first day.
    for _ in 0..scaled(COLLECTIVE_RATE).max(1) {
        driver.collective(&mut counts)?;
    }
    // Settlements only in a city whose policy was in force all year.
    let city_committee = format!("{}000000", map.city_code);
    let in_force = |day| driver.policies.in_force("", &city_committee, day, "").is_ok();
    let settlements = if in_force(from) && in_force(reference_date) {
        scaled(SETTLEMENT_RATE)
    } else {
        0
    };
    let mut plan: Vec<Planned> = std::iter::repeat_n(Planned::Birth, scaled(BIRTH_RATE))
        .chain(std::iter::repeat_n(Planned::RuralToUrban, scaled(RURAL_TO_URBAN_RATE)))
        .chain(std::iter::repeat_n(Planned::Settlement, settlements))
        .chain(std::iter::repeat_n(Planned::Death, scaled(DEATH_RATE)))
        .collect();
    plan.shuffle(&mut driver.rng);
    let total = plan.len().max(1);
    for (i, planned) in plan.into_iter().enumerate() {
        let today = from + Duration::days((i * 365 / total) as i64);
        while driver.today < today {
            day_done(driver.today);
            driver.today += Duration::days(1);
        }
        match planned {
            Planned::Birth => driver.birth(&mut counts)?,
            Planned::RuralToUrban => driver.rural_to_urban(&mut counts)?,
            Planned::Settlement => driver.settlement(&mut counts)?,
            Planned::Death => driver.death(&mut counts)?,
        }
    }
    while driver.today <= reference_date {
        day_done(driver.today);
        driver.today += Duration::days(1);
    }
    registry.store().flush().map_err(storage)?;
    let after = registry.count_persons_under(&map.city_code).map_err(storage)?;
    counts.net_persons = after as i64 - registered as i64;
    Ok(counts)
}

/// Refusals and lost preconditions are part of life; storage failures stop the run.
fn tolerate<T>(result: Result<T, ServiceError>) -> Result<Option<T>, GenerateError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(ServiceError::Storage(e)) => Err(GenerateError::Sink(e.to_string())),
        Err(ServiceError::Internal(e)) => Err(GenerateError::Sink(e)),
        Err(_) => Ok(None),
    }
}

impl Driver<'_> {
    fn context(&mut self) -> EventContext {
        EventContext {
            actor: "synth-police".into(),
            on: self.today,
        }
    }

    fn committee(&mut self, urban: bool) -> String {
        for _ in 0..100 {
            let committee = self.map.pick_committee(&mut self.rng);
            if committee.urban == urban {
                return committee.code.clone();
            }
        }
        self.map.pick_committee(&mut self.rng).code.clone()
    }

    /// A fresh address no one is registered at.
    fn new_address(&mut self, committee: &str) -> Address {
        self.next_address += 1;
        let (road, highest) = self
            .map
            .committees
            .iter()
            .find(|c| c.code == committee)
            .and_then(|c| c.roads.first().cloned())
            .unwrap_or_else(|| ("新建路".to_string(), 100));
        let number = self.rng.random_range(1..=highest.max(1));
        Address {
            committee_code: committee.to_string(),
            detail: format!(
                "{road}{number}号新建{}号楼{}室",
                self.next_address,
                self.rng.random_range(101..2999)
            ),
        }
    }

    /// An active person of a random committee (of the given kind) aged within
    /// `ages` and matching `want`. Pages start at a random point of the
    /// committee index (a local county and a birth year in range: the index is
    /// in ID-number order), so the sample is neither the oldest nor a scan.
    fn sample(
        &mut self,
        urban: Option<bool>,
        ages: std::ops::RangeInclusive<u32>,
        want: impl Fn(&Person, u32) -> bool,
    ) -> Result<Option<Person>, GenerateError> {
        let on = self.from;
        for _ in 0..20 {
            let committee = match urban {
                Some(u) => self.committee(u),
                None => self.map.pick_committee(&mut self.rng).code.clone(),
            };
            let county = self.map.pick_local_county(&mut self.rng).to_string();
            let age = self.rng.random_range(ages.clone());
            let year = chrono::Datelike::year(&on) - age as i32;
            let cursor = popbase_household::tables::by_committee_key(&committee, &format!("{county}{year}"));
            let (persons, _) = self
                .registry
                .persons_under(&committee, Some(&cursor), 100)
                .map_err(|e| GenerateError::Sink(e.to_string()))?;
            let fitting: Vec<Person> = persons
                .into_iter()
                .filter(|p| {
                    let age = IdNumber::parse(&p.id_number, on).map_or(0, |id| age_on(id.birth_date(), on));
                    ages.contains(&age) && want(p, age)
                })
                .collect();
            if !fitting.is_empty() {
                let pick = self.rng.random_range(0..fitting.len());
                return Ok(fitting.into_iter().nth(pick));
            }
        }
        Ok(None)
    }

    fn collective(&mut self, counts: &mut EventCounts) -> Result<(), GenerateError> {
        let rural = self.rng.random_bool(RURAL_COLLECTIVE_SHARE);
        let kind = if rural {
            HouseholdKind::CollectiveRural
        } else {
            loop {
                let kind = pick_weighted(&mut self.rng, &COLLECTIVE_KINDS);
                if kind != HouseholdKind::CollectiveRural {
                    break kind;
                }
            }
        };
        let committee = self.committee(!rural);
        let address = self.new_address(&committee);
        let context = self.context();
        let name = format!("{}集体户", names::surname(&mut self.rng));
        if tolerate(self.registry.create_collective(&context, kind, &name, &address))?.is_some() {
            *counts.collectives_by_kind.entry(kind as i32).or_default() += 1;
        }
        Ok(())
    }

    fn birth(&mut self, counts: &mut EventCounts) -> Result<(), GenerateError> {
        let Some(mother) = self.sample(None, 22..=40, |p, _| {
            p.sex == Sex::Female as i32 && p.marital_status == MaritalStatus::Married as i32
        })?
        else {
            return Ok(());
        };
        let context = self.context();
        let father = match self.registry.person(&mother.spouse_id_number) {
            Ok(Some(f)) if f.household_id == mother.household_id => IdNumber::parse(&f.id_number, context.on).ok(),
            _ => None,
        };
        let male = self.rng.random_bool(0.52);
        let birth = Birth {
            name: format!(
                "{}{}",
                mother.name.chars().next().unwrap_or('王'),
                names::given_name(&mut self.rng, male)
            ),
            sex: if male { Sex::Male } else { Sex::Female },
            birth_date: context.on,
            birthplace_code: mother.household_id.get(..6).unwrap_or_default().to_string(),
            ethnicity: mother.ethnicity.clone(),
            mother: IdNumber::parse(&mother.id_number, context.on).ok(),
            father,
            household_id: mother.household_id.clone(),
        };
        if tolerate(self.registry.register_birth(&context, &birth))?.is_some() {
            counts.births += 1;
        }
        Ok(())
    }

    fn death(&mut self, counts: &mut EventCounts) -> Result<(), GenerateError> {
        let old = self.rng.random_bool(0.85);
        let Some(person) = self.sample(None, if old { 75..=100 } else { 45..=74 }, |_, _| true)? else {
            return Ok(());
        };
        let context = self.context();
        let Ok(id) = IdNumber::parse(&person.id_number, context.on) else {
            return Ok(());
        };
        if tolerate(self.registry.register_death(&context, &id))?.is_some() {
            counts.deaths += 1;
        }
        Ok(())
    }

    /// A villager of working age founds a household in a town of the city.
    fn rural_to_urban(&mut self, counts: &mut EventCounts) -> Result<(), GenerateError> {
        let Some(person) = self.sample(Some(false), 18..=50, |p, _| p.relationship != Relationship::Head as i32)? else {
            return Ok(());
        };
        let context = self.context();
        let committee = self.committee(true);
        let target = MoveTarget::NewHousehold(self.new_address(&committee));
        let kind = if person.household_id.get(..6) == committee.get(..6) {
            MoveKind::HouseholdMove
        } else {
            MoveKind::CityTransfer
        };
        let Ok(id) = IdNumber::parse(&person.id_number, context.on) else {
            return Ok(());
        };
        if tolerate(self.registry.move_person(&context, &id, &target, kind))?.is_some() {
            counts.rural_to_urban += 1;
        }
        Ok(())
    }

    /// An ID number for someone from another province, not yet registered here.
    fn outsider(&mut self, age: u32) -> Option<IdNumber> {
        let county = self.map.pick_other_province_county(&mut self.rng).to_string();
        let birth = add_years(self.from, -(age as i32)) - Duration::days(self.rng.random_range(0..365));
        self.next_applicant = (self.next_applicant + 1) % 190;
        // Sequences 801..999 stay clear of the generator's allocator.
        let id = IdNumber::generate(&county, birth, 801 + self.next_applicant).ok()?;
        matches!(self.registry.person(id.as_str()), Ok(None)).then_some(id)
    }

    fn settlement(&mut self, counts: &mut EventCounts) -> Result<(), GenerateError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Kind {
            Property,
            Rental,
            Relative,
            Employment,
            Talent,
            Business,
        }
        let kind = pick_weighted(
            &mut self.rng,
            &[
                (Kind::Property, 40),
                (Kind::Relative, 20),
                (Kind::Employment, 20),
                (Kind::Talent, 10),
                (Kind::Rental, 5),
                (Kind::Business, 5),
            ],
        );
        let context = self.context();
        let mut documents = vec![
            DocumentKind::HouseholdBook,
            DocumentKind::IdCard,
            DocumentKind::LabourContract,
            DocumentKind::SocialInsuranceProof,
        ];
        let mut declared = ApplicantFacts {
            employed_in_city: true,
            pension_insurance_months: self.rng.random_range(12..60),
            holds_residence_permit: true,
            marital_status: MaritalStatus::Married as i32,
            ..Default::default()
        };
        let mut relations = Vec::new();
        let (age, target) = match kind {
            Kind::Relative => {
                let Some(sponsor) = self.sample(Some(true), 30..=55, |_, _| true)? else {
                    return Ok(());
                };
                relations.push((sponsor.id_number.clone(), Kinship::Parent));
                documents.push(DocumentKind::KinshipProof);
                declared.marital_status = MaritalStatus::Unmarried as i32;
                (self.rng.random_range(3..16), sponsor.address.clone().unwrap_or_default())
            }
            _ => {
                let committee = self.committee(true);
                (self.rng.random_range(22..45), self.new_address(&committee))
            }
        };
        match kind {
            Kind::Property => {
                documents.push(DocumentKind::PropertyCertificate);
                declared.property_kind = pick_weighted(&mut self.rng, &[(PropertyKind::Residence, 9), (PropertyKind::Apartment, 1)]) as i32;
            }
            Kind::Rental => {
                documents.extend([DocumentKind::RentalRegistration, DocumentKind::OwnerConsent]);
                declared.renting_at_target = true;
            }
            Kind::Talent => {
                documents.push(DocumentKind::DegreeCertificate);
                declared.education = EducationLevel::Bachelor as i32;
                declared.full_time_education = true;
            }
            Kind::Business => {
                documents.push(DocumentKind::BusinessLicense);
                declared.runs_business_in_city = true;
                declared.employed_in_city = false;
            }
            Kind::Relative | Kind::Employment => {}
        }
        let Some(applicant) = self.outsider(age) else {
            return Ok(());
        };
        declared.from_code = applicant.county_code().to_string();
        let male = applicant.sex() == popbase_domain::Sex::Male;
        let arriving = Person {
            id_number: applicant.as_str().to_string(),
            name: format!("{}{}", names::surname(&mut self.rng), names::given_name(&mut self.rng, male)),
            sex: if male { Sex::Male } else { Sex::Female } as i32,
            ethnicity: "01".into(),
            birth_date: Some(applicant.birth_date().into()),
            birthplace_code: applicant.county_code().to_string(),
            native_place_code: applicant.county_code().to_string(),
            education: declared.education,
            marital_status: declared.marital_status,
            ..Default::default()
        };
        let application = Application {
            on: context.on,
            applicant_id: applicant,
            target,
            relations,
            documents,
            declared,
            platform: Default::default(),
            family: Vec::new(),
        };
        let settled = tolerate(
            self.registry
                .settle(&context, &self.policies, "", &application, "", Some(&arriving)),
        )?;
        match settled {
            Some(receipt) => *counts.settlements_by_path.entry(receipt.event.path).or_default() += 1,
            None => counts.refused_settlements += 1,
        }
        Ok(())
    }
}
