//! Department feed records for generated people.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, NaiveTime};
use popbase_proto::common::Address;
use popbase_proto::feeds::{
    BirthCertificate, EnrollmentStatus, FeedRecord, Housing, HousingKind, MarriageEvent, MarriageRegistration, MedicalInsurance,
    MedicalScheme, Pension, PensionScheme, PropertyUse, School, SchoolStage, Source, StudentState, StudentStatus, feed_record::Payload,
};
use popbase_proto::household::{MaritalStatus, Person};
use rand::Rng;

use crate::geography::CityMap;
use crate::households::GeneratedHousehold;
use crate::migrants::MigrantFamily;
use crate::people::{IdAllocator, age_of, birth_of};

/// Share of registered residents without local medical insurance.
pub const UNINSURED_REGISTERED: f64 = 0.04;
/// Share of non-registered residents without local medical insurance
/// (many stay insured where their household is registered).
pub const UNINSURED_MIGRANT: f64 = 0.18;
/// Share of employee-scheme or suspended insurance records that also carry
/// the version the insurer reported before (their history).
const EARLIER_VERSION_SHARE: f64 = 0.25;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FeedCounts {
    pub insured: u64,
    pub uninsured: u64,
    pub pensions: u64,
    pub students: u64,
    pub schools: u64,
    pub birth_certificates: u64,
    pub marriages: u64,
    pub divorces: u64,
    pub housing: u64,
    /// Earlier versions of insurance records (a changed scheme or a lifted
    /// suspension), kept as history so as-of questions have answers.
    pub superseded: u64,
}

impl FeedCounts {
    /// Adds `other`'s counts (a province's cities into one summary).
    pub fn add(&mut self, other: &FeedCounts) {
        self.insured += other.insured;
        self.uninsured += other.uninsured;
        self.pensions += other.pensions;
        self.students += other.students;
        self.schools += other.schools;
        self.birth_certificates += other.birth_certificates;
        self.marriages += other.marriages;
        self.divorces += other.divorces;
        self.housing += other.housing;
        self.superseded += other.superseded;
    }
}

/// Schools per street: one or two primary schools splitting the street's
/// committees into districts, and one junior secondary school for the street.
pub struct Schools {
    pub list: Vec<School>,
    primary_of: HashMap<String, usize>,
    junior_of: HashMap<String, usize>,
}

impl Schools {
    pub fn plan(map: &CityMap) -> Schools {
        let divisions = popbase_domain::Divisions::embedded();
        let mut list = Vec::new();
        let mut primary_of = HashMap::new();
        let mut junior_of = HashMap::new();
        for (street, committees) in &map.streets {
            let street_name = divisions.get(street).map(|d| d.name.clone()).unwrap_or_default();
            let codes: Vec<String> = committees.iter().map(|&i| map.committees[i].code.clone()).collect();
            let county = map.committees[committees[0]].county.clone();
            let address = Address {
                committee_code: codes[0].clone(),
                detail: "学府路1号".into(),
            };
            let halves: Vec<&[String]> = if codes.len() > 15 {
                let (a, b) = codes.split_at(codes.len() / 2);
                vec![a, b]
            } else {
                vec![&codes[..]]
            };
            for (n, district) in halves.iter().enumerate() {
                for code in district.iter() {
                    primary_of.insert(code.clone(), list.len());
                }
                list.push(School {
                    school_id: format!("{street}P{}", n + 1),
                    name: format!("{street_name}第{}小学", ["一", "二"][n]),
                    stage: SchoolStage::Primary as i32,
                    county_code: county.clone(),
                    address: Some(address.clone()),
                    district_committee_codes: district.to_vec(),
                });
            }
            for code in &codes {
                junior_of.insert(code.clone(), list.len());
            }
            list.push(School {
                school_id: format!("{street}J1"),
                name: format!("{street_name}中学"),
                stage: SchoolStage::Junior as i32,
                county_code: county,
                address: Some(address),
                district_committee_codes: codes,
            });
        }
        Schools {
            list,
            primary_of,
            junior_of,
        }
    }

    /// The district school for a committee and grade.
    pub fn for_committee(&self, committee: &str, grade: u32) -> Option<&School> {
        let index = if grade <= 6 {
            self.primary_of.get(committee)
        } else {
            self.junior_of.get(committee)
        }?;
        self.list.get(*index)
    }
}

pub struct FeedFactory {
    next_record: u64,
    as_of_millis: i64,
    reference_date: NaiveDate,
    pub schools: Schools,
    /// Recent property owners, landlords for migrants' registered rentals.
    landlords: Vec<String>,
    pub counts: FeedCounts,
}

impl FeedFactory {
    /// Record numbers start after `first - 1`: cities of one province
    /// generated into the same stores take separate ranges, since a record
    /// id is the feeds' key.
    pub fn numbering_from(mut self, first: u64) -> Self {
        self.next_record = first;
        self
    }

    pub fn new(map: &CityMap, reference_date: NaiveDate) -> Self {
        let as_of_millis = reference_date.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
        Self {
            next_record: 1,
            as_of_millis,
            reference_date,
            schools: Schools::plan(map),
            landlords: Vec::new(),
            counts: FeedCounts::default(),
        }
    }

    fn record(&mut self, source: Source, prefix: &str, payload: Payload) -> FeedRecord {
        let record_id = format!("{prefix}{:010}", self.next_record);
        self.next_record += 1;
        FeedRecord {
            source: source as i32,
            record_id,
            as_of_unix_millis: self.as_of_millis,
            payload: Some(payload),
        }
    }

    /// Now and then the version the insurer reported before the current
    /// one: resident scheme before an employee one, or active before a
    /// suspension, reported when the old state began.
    fn earlier_insurance(
        &mut self,
        rng: &mut impl Rng,
        current: &FeedRecord,
        mut record: MedicalInsurance,
        since: NaiveDate,
    ) -> Option<FeedRecord> {
        let changed = record.scheme == MedicalScheme::Employee as i32 || record.status == EnrollmentStatus::Suspended as i32;
        let earlier_since = since - Duration::days(rng.random_range(365..(365 * 8)));
        if !changed || since >= self.reference_date - Duration::days(30) || !rng.random_bool(EARLIER_VERSION_SHARE) {
            return None;
        }
        if record.status == EnrollmentStatus::Suspended as i32 {
            record.status = EnrollmentStatus::Active as i32;
        } else {
            record.scheme = MedicalScheme::UrbanRuralResident as i32;
        }
        record.since = Some(earlier_since.into());
        self.counts.superseded += 1;
        Some(FeedRecord {
            as_of_unix_millis: earlier_since.and_time(NaiveTime::MIN).and_utc().timestamp_millis(),
            payload: Some(Payload::MedicalInsurance(record)),
            ..current.clone()
        })
    }

    /// The school registry (学校及学区) as education-bureau records.
    pub fn school_records(&mut self) -> Vec<FeedRecord> {
        let schools = self.schools.list.clone();
        self.counts.schools = schools.len() as u64;
        schools
            .into_iter()
            .map(|s| FeedRecord {
                source: Source::Education as i32,
                record_id: format!("SCH{}", s.school_id),
                as_of_unix_millis: self.as_of_millis,
                payload: Some(Payload::School(s)),
            })
            .collect()
    }

    /// Insurance, pension and (ages 6-15) student status of one person.
    fn person_records(&mut self, rng: &mut impl Rng, person: &Person, committee: &str, registered: bool, out: &mut Vec<FeedRecord>) {
        let today = self.reference_date;
        let age = age_of(person, today);
        let county = committee.get(..6).unwrap_or_default().to_string();
        let employed = !person.occupation.is_empty();
        if rng.random_bool(if registered { UNINSURED_REGISTERED } else { UNINSURED_MIGRANT }) {
            self.counts.uninsured += 1;
        } else {
            self.counts.insured += 1;
            let scheme = if employed && rng.random_bool(0.7) {
                MedicalScheme::Employee
            } else {
                MedicalScheme::UrbanRuralResident
            };
            let status = if rng.random_bool(0.02) {
                EnrollmentStatus::Suspended
            } else {
                EnrollmentStatus::Active
            };
            let since = (birth_of(person) + Duration::days(rng.random_range(0..365)))
                .max(today - Duration::days(365 * 25))
                .min(today);
            let record = MedicalInsurance {
                id_number: person.id_number.clone(),
                scheme: scheme as i32,
                status: status as i32,
                since: Some(since.into()),
                insured_county_code: county.clone(),
            };
            let current = self.record(Source::MedicalInsurance, "MI", Payload::MedicalInsurance(record.clone()));
            if let Some(earlier) = self.earlier_insurance(rng, &current, record, since) {
                out.push(earlier);
            }
            out.push(current);
        }
        if age >= 18 && rng.random_bool(if registered { 0.85 } else { 0.5 }) {
            self.counts.pensions += 1;
            let scheme = if employed {
                PensionScheme::EnterpriseEmployee
            } else {
                PensionScheme::UrbanRuralResident
            };
            let months = rng.random_range(0..=((age - 17) * 12).min(480));
            let since = today - Duration::days(i64::from(months) * 30);
            let record = Pension {
                id_number: person.id_number.clone(),
                scheme: scheme as i32,
                status: EnrollmentStatus::Active as i32,
                since: Some(since.into()),
                contribution_months: months,
            };
            out.push(self.record(Source::HumanResources, "PN", Payload::Pension(record)));
        }
        if (6..=15).contains(&age) {
            let grade = (age - 5).min(9);
            let school = if rng.random_bool(0.92) {
                self.schools.for_committee(committee, grade)
            } else {
                self.schools.list.get(rng.random_range(0..self.schools.list.len().max(1)))
            };
            if let Some(school) = school {
                self.counts.students += 1;
                let since = today - Duration::days(i64::from(grade - 1) * 365 + rng.random_range(0..60));
                let record = StudentStatus {
                    id_number: person.id_number.clone(),
                    school_id: school.school_id.clone(),
                    grade,
                    state: StudentState::Enrolled as i32,
                    since: Some(since.into()),
                };
                out.push(self.record(Source::Education, "ST", Payload::Student(record)));
            }
        }
    }

    fn marriage(&mut self, a: &Person, b: &Person, date: NaiveDate, event: MarriageEvent) -> FeedRecord {
        let county = a
            .address
            .as_ref()
            .and_then(|x| x.committee_code.get(..6))
            .unwrap_or_default()
            .to_string();
        let record = MarriageRegistration {
            party_a_id_number: a.id_number.clone(),
            party_b_id_number: b.id_number.clone(),
            event: event as i32,
            date: Some(date.into()),
            registry_county_code: county,
        };
        self.record(Source::CivilAffairs, "MR", Payload::Marriage(record))
    }

    fn birth_certificate(&mut self, rng: &mut impl Rng, child: &Person, mother: Option<&Person>, father: Option<&Person>) -> FeedRecord {
        let record = BirthCertificate {
            certificate_number: format!("R{:09}", self.next_record),
            child_name: child.name.clone(),
            child_sex: child.sex,
            birth_date: child.birth_date,
            mother_id_number: mother.map(|m| m.id_number.clone()).unwrap_or_default(),
            father_id_number: father.map(|f| f.id_number.clone()).unwrap_or_default(),
            hospital: ["市中心医院", "市妇幼保健院", "区人民医院"][rng.random_range(0..3)].into(),
            birth_county_code: child.birthplace_code.clone(),
            child_id_number: child.id_number.clone(),
        };
        self.record(Source::Health, "BC", Payload::BirthCertificate(record))
    }

    fn housing(&mut self, rng: &mut impl Rng, holder: &Person, kind: HousingKind, address: &Address, urban: bool) -> FeedRecord {
        let today = self.reference_date;
        let rental = kind == HousingKind::RegisteredRental;
        let landlord = if rental && !self.landlords.is_empty() {
            self.landlords[rng.random_range(0..self.landlords.len())].clone()
        } else {
            String::new()
        };
        let record = Housing {
            id_number: holder.id_number.clone(),
            kind: kind as i32,
            address: Some(address.clone()),
            since: Some((today - Duration::days(rng.random_range(30..(365 * 15)))).into()),
            until: if rental {
                Some((today + Duration::days(rng.random_range(30..700))).into())
            } else {
                None
            },
            certificate_number: format!("{}{:09}", if rental { "ZL" } else { "BDC" }, self.next_record),
            r#use: if !urban {
                PropertyUse::RuralHomestead
            } else if rng.random_bool(0.1) {
                PropertyUse::Apartment
            } else {
                PropertyUse::Residential
            } as i32,
            owner_id_number: landlord,
            owner_consents_to_settlement: rental && rng.random_bool(0.5),
        };
        self.counts.housing += 1;
        self.record(Source::Housing, "HS", Payload::Housing(record))
    }

    /// Every feed record about a registered household.
    pub fn for_household(
        &mut self,
        rng: &mut impl Rng,
        generated: &GeneratedHousehold,
        ids: &mut IdAllocator,
        others: &CityMap,
        out: &mut Vec<FeedRecord>,
    ) {
        let members = &generated.record.members;
        let address = generated.record.household.address.clone().unwrap_or_default();
        for person in members {
            self.person_records(rng, person, &address.committee_code, true, out);
            if person.marital_status == MaritalStatus::Divorced as i32 {
                // The former spouse is usually registered elsewhere: a record
                // whose second party is unknown to this city's registry.
                let birth = birth_of(person);
                if let Some(ex) = ids.allocate(others.pick_other_province_county(rng), birth, person.sex != 1) {
                    let ex_person = Person {
                        id_number: ex.as_str().to_string(),
                        ..Default::default()
                    };
                    let date = self.reference_date - Duration::days(rng.random_range(200..3000));
                    out.push(self.marriage(
                        person,
                        &ex_person,
                        date - Duration::days(rng.random_range(700..5000)),
                        MarriageEvent::Marriage,
                    ));
                    out.push(self.marriage(person, &ex_person, date, MarriageEvent::Divorce));
                    self.counts.marriages += 1;
                    self.counts.divorces += 1;
                }
            }
        }
        for &(a, b, date) in &generated.facts.couples {
            self.counts.marriages += 1;
            let record = self.marriage(&members[a], &members[b], date, MarriageEvent::Marriage);
            out.push(record);
        }
        let recent = self.reference_date - Duration::days(365 * 10);
        for &(child, mother, father) in &generated.facts.births {
            // A birth medical certificate always names the mother; a child
            // whose mother is not in the household has its certificate elsewhere.
            if birth_of(&members[child]) >= recent && mother.is_some() {
                self.counts.birth_certificates += 1;
                let record = self.birth_certificate(rng, &members[child], mother.map(|m| &members[m]), father.map(|f| &members[f]));
                out.push(record);
            }
        }
        let head = &members[0];
        if generated.record.household.kind == popbase_proto::household::HouseholdKind::Family as i32 {
            if rng.random_bool(0.72) {
                let record = self.housing(rng, head, HousingKind::Ownership, &address, generated.committee_urban);
                out.push(record);
                if self.landlords.len() < 4096 {
                    self.landlords.push(head.id_number.clone());
                } else {
                    let slot = rng.random_range(0..self.landlords.len());
                    self.landlords[slot] = head.id_number.clone();
                }
            } else if rng.random_bool(0.15) {
                let record = self.housing(rng, head, HousingKind::PublicHousing, &address, true);
                out.push(record);
            }
        }
    }

    /// Every feed record about a migrant family.
    pub fn for_migrants(&mut self, rng: &mut impl Rng, family: &MigrantFamily, out: &mut Vec<FeedRecord>) {
        let as_person = |i: usize| {
            let r = &family.members[i].registration;
            Person {
                id_number: r.id_number.clone(),
                name: r.name.clone(),
                sex: r.sex,
                birth_date: r.birth_date,
                address: r.address.clone(),
                occupation: r.employer.clone(),
                ..Default::default()
            }
        };
        let address = family.members[0].registration.address.clone().unwrap_or_default();
        for i in 0..family.members.len() {
            let person = as_person(i);
            self.person_records(rng, &person, &address.committee_code, false, out);
        }
        if let (Some(spouse), Some(date)) = (family.spouse, family.marriage_date) {
            self.counts.marriages += 1;
            let record = self.marriage(&as_person(0), &as_person(spouse), date, MarriageEvent::Marriage);
            out.push(record);
        }
        let main = as_person(0);
        match rng.random_range(0..100) {
            0..=59 => {
                let record = self.housing(rng, &main, HousingKind::RegisteredRental, &address, family.urban);
                out.push(record);
            }
            60..=74 => {
                let record = self.housing(rng, &main, HousingKind::Ownership, &address, family.urban);
                out.push(record);
            }
            _ => {}
        }
    }
}
