//! People: unique valid ID numbers, names, phones, life facts.

use std::collections::HashMap;

use chrono::{Datelike, Duration, NaiveDate};
use popbase_domain::IdNumber;
use popbase_proto::common::{Address, Sex};
use popbase_proto::household::{EducationLevel, MaritalStatus, MilitaryService, Person, RegistrationStatus};
use rand::Rng;

use crate::names;

/// Hands out ID numbers that are unique across the whole city: one sequence
/// counter per (county, birth date), odd sequences for men, even for women.
#[derive(Default)]
pub struct IdAllocator {
    next: HashMap<(u32, NaiveDate), [u16; 2]>,
}

impl IdAllocator {
    /// A fresh number, or `None` when all 499 sequences of that sex are taken
    /// for this county and day (the caller picks another day).
    pub fn allocate(&mut self, county: &str, birth: NaiveDate, male: bool) -> Option<IdNumber> {
        let county_num: u32 = county.parse().ok()?;
        let counters = self.next.entry((county_num, birth)).or_insert([1, 2]);
        let slot = usize::from(!male);
        let sequence = counters[slot];
        if sequence > 999 {
            return None;
        }
        counters[slot] += 2;
        IdNumber::generate(county, birth, sequence).ok()
    }
}

/// A birth date for someone of `age` full years on `on`.
pub fn birth_date_for_age(rng: &mut impl Rng, age: u32, on: NaiveDate) -> NaiveDate {
    let latest = popbase_domain::calendar::add_years(on, -(age as i32));
    let days_back = rng.random_range(0..365);
    latest - Duration::days(days_back)
}

pub fn phone(rng: &mut impl Rng) -> String {
    const PREFIXES: [&str; 8] = ["133", "135", "138", "139", "150", "158", "177", "186"];
    format!(
        "{}{:08}",
        PREFIXES[rng.random_range(0..PREFIXES.len())],
        rng.random_range(0..100_000_000u32)
    )
}

pub fn education_for_age(rng: &mut impl Rng, age: u32) -> EducationLevel {
    use EducationLevel::*;
    match age {
        0..=6 => None,
        7..=12 => Primary,
        13..=15 => JuniorSecondary,
        16..=18 => SeniorSecondary,
        _ => {
            let older = age > 55;
            match rng.random_range(0..100) {
                0..=9 if older => None,
                0..=24 => Primary,
                25..=54 => JuniorSecondary,
                55..=72 => SeniorSecondary,
                73..=84 => JuniorCollege,
                85..=95 => Bachelor,
                96..=98 => Master,
                _ => Doctorate,
            }
        }
    }
}

/// Occupation by GB/T 6565 major group, empty for children, students and retirees.
pub fn occupation_for_age(rng: &mut impl Rng, age: u32) -> &'static str {
    const GROUPS: [&str; 6] = [
        "专业技术人员",
        "办事人员和有关人员",
        "社会生产服务和生活服务人员",
        "农、林、牧、渔业生产及辅助人员",
        "生产制造及有关人员",
        "国家机关、党群组织、企业、事业单位负责人",
    ];
    if !(18..=62).contains(&age) || rng.random_bool(0.15) {
        return "";
    }
    GROUPS[rng.random_range(0..GROUPS.len())]
}

/// Everything needed to make one person.
pub struct PersonSpec<'a> {
    pub age: u32,
    pub male: bool,
    pub surname: &'a str,
    /// County of first registration (ID prefix and birthplace).
    pub birth_county: &'a str,
    pub marital_status: MaritalStatus,
}

/// Creates persons with unique IDs; the household builder fills registration fields.
pub struct PersonFactory {
    pub ids: IdAllocator,
    pub reference_date: NaiveDate,
}

impl PersonFactory {
    pub fn new(reference_date: NaiveDate) -> Self {
        Self {
            ids: IdAllocator::default(),
            reference_date,
        }
    }

    pub fn make(&mut self, rng: &mut impl Rng, spec: PersonSpec<'_>, address: &Address) -> Person {
        let mut birth = birth_date_for_age(rng, spec.age, self.reference_date);
        let id = loop {
            if let Some(id) = self.ids.allocate(spec.birth_county, birth, spec.male) {
                break id;
            }
            // That day is full for this county and sex: try the day before,
            // unless that would make the person a year older.
            let earlier = birth - Duration::days(1);
            birth = if popbase_domain::calendar::age_on(earlier, self.reference_date) == spec.age {
                earlier
            } else {
                birth_date_for_age(rng, spec.age, self.reference_date)
            };
        };
        let age = popbase_domain::calendar::age_on(birth, self.reference_date);
        let military = if spec.male && age >= 22 && rng.random_bool(0.04) {
            MilitaryService::Veteran
        } else {
            MilitaryService::None
        };
        Person {
            id_number: id.as_str().to_string(),
            name: format!("{}{}", spec.surname, names::given_name(rng, spec.male)),
            former_names: if rng.random_bool(0.02) {
                vec![format!("{}{}", spec.surname, names::given_name(rng, spec.male))]
            } else {
                vec![]
            },
            sex: if spec.male { Sex::Male } else { Sex::Female } as i32,
            ethnicity: if rng.random_bool(0.985) { "01".into() } else { "03".into() },
            birth_date: Some(birth.into()),
            birthplace_code: spec.birth_county.to_string(),
            native_place_code: spec.birth_county.to_string(),
            education: education_for_age(rng, age) as i32,
            marital_status: spec.marital_status as i32,
            military_service: military as i32,
            occupation: occupation_for_age(rng, age).to_string(),
            address: Some(address.clone()),
            status: RegistrationStatus::Active as i32,
            phone: if age >= 16 { phone(rng) } else { String::new() },
            ..Default::default()
        }
    }
}

/// Age in full years on the reference date.
pub fn age_of(person: &Person, on: NaiveDate) -> u32 {
    person
        .birth_date
        .and_then(|d| d.to_naive())
        .map(|b| popbase_domain::calendar::age_on(b, on))
        .unwrap_or(0)
}

pub fn birth_of(person: &Person) -> NaiveDate {
    person.birth_date.and_then(|d| d.to_naive()).unwrap_or_default()
}

/// A date `years` after the person's birth, capped at `cap`.
pub fn date_at_age(person: &Person, years: u32, cap: NaiveDate) -> NaiveDate {
    let birth = birth_of(person);
    let date = NaiveDate::from_ymd_opt(birth.year() + years as i32, birth.month(), 1).unwrap_or(birth);
    date.min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_never_repeats_and_respects_sex() {
        let mut ids = IdAllocator::default();
        let day = NaiveDate::from_ymd_opt(1990, 5, 1).expect("d");
        let men: Vec<IdNumber> = (0..500).filter_map(|_| ids.allocate("370302", day, true)).collect();
        assert_eq!(men.len(), 500, "sequences 1,3,...,999");
        assert!(ids.allocate("370302", day, true).is_none(), "the day is full for men");
        assert!(men.iter().all(|id| id.sex() == popbase_domain::Sex::Male));
        let women = ids.allocate("370302", day, false).expect("women have their own sequences");
        assert_eq!(women.sex(), popbase_domain::Sex::Female);
        let mut all: Vec<&str> = men.iter().map(|i| i.as_str()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 500);
    }
}
