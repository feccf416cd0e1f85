//! Non-registered residents (流动人口): residence registration and permits.
//!
//! The permit conditions follow the national rules (居住证暂行条例): six
//! months of residence registration plus lawful stable employment, stable
//! residence or continuous study; accompanying family members hold permits
//! through the main applicant. Permits last a year and are endorsed (签注)
//! yearly; one not endorsed in time expires.

use chrono::{Datelike, Duration, NaiveDate};
use popbase_proto::household::MaritalStatus;
use popbase_proto::residence::{PermitStatus, RegistrationState, ResidenceBasis, ResidencePermit, ResidenceRegistration};
use popbase_residence::permits::ResidentRecords;
use rand::Rng;

use crate::households::{HouseholdBuilder, pick_weighted};
use crate::names;
use crate::people::{PersonSpec, age_of};

/// Days of residence registration before a permit can be granted.
pub const PERMIT_WAIT_DAYS: i64 = 183;

/// A migrant family: the registrations of each member and their links.
#[derive(Debug, Clone)]
pub struct MigrantFamily {
    pub members: Vec<ResidentRecords>,
    /// Index of the spouse in `members`, if any (member 0 is the main applicant).
    pub spouse: Option<usize>,
    pub marriage_date: Option<NaiveDate>,
    /// Whether the committee of residence is urban.
    pub urban: bool,
}

pub struct MigrantBuilder {
    next_permit: u64,
    /// Hukou (and so ID numbers) only in other provinces: set when the city
    /// is generated as one of a province's, whose every county then has a
    /// registry of its own (see [`crate::province`]).
    outside_province_only: bool,
}

impl Default for MigrantBuilder {
    fn default() -> Self {
        Self {
            next_permit: 1,
            outside_province_only: false,
        }
    }
}

impl MigrantBuilder {
    /// Migrants whose hukou lies outside the province: a province's cities
    /// register every county of it, and a life event's new ID number is
    /// checked free against the registry only, not the residence store.
    pub fn outside_province_only(mut self) -> Self {
        self.outside_province_only = true;
        self
    }

    /// One non-registered family of at most `at_most` persons (the city's
    /// remaining head count, so the total comes out exact).
    pub fn family(&mut self, rng: &mut impl Rng, households: &mut HouseholdBuilder<'_>, at_most: u64) -> MigrantFamily {
        let today = households.reference_date();
        let map = households.map;
        let committee = if rng.random_bool(0.8) {
            map.pick_urban_committee(rng)
        } else {
            map.pick_committee(rng)
        }
        .clone();
        let address = HouseholdBuilder::address(rng, &committee);
        let in_province = rng.random_bool(0.45);
        let hukou = if in_province && !self.outside_province_only {
            map.pick_province_county(rng)
        } else {
            map.pick_other_province_county(rng)
        }
        .to_string();
        let main_age = rng.random_range(20..56);
        let main_male = rng.random_bool(0.6);
        let surname = names::surname(rng);
        let with_spouse = main_age >= 23 && rng.random_bool(0.6) && at_most >= 2;
        let children = if with_spouse && main_age >= 25 && rng.random_bool(0.5) {
            rng.random_range(1..=2u64).min(at_most.saturating_sub(2))
        } else {
            0
        };
        let main_basis = pick_weighted(
            rng,
            &[
                (ResidenceBasis::Employment, 75),
                (ResidenceBasis::Residence, 20),
                (ResidenceBasis::Study, 5),
            ],
        );
        let registered_on = today - Duration::days(rng.random_range(0..(365 * 8)));

        let mut people = Vec::new();
        let marital = if with_spouse {
            MaritalStatus::Married
        } else {
            MaritalStatus::Unmarried
        };
        people.push((
            households.people.make(
                rng,
                PersonSpec {
                    age: main_age,
                    male: main_male,
                    surname,
                    birth_county: &hukou,
                    marital_status: marital,
                },
                &address,
            ),
            main_basis,
        ));
        if with_spouse {
            let spouse_age = (main_age as i32 + rng.random_range(-4..5)).max(21) as u32;
            let basis = if rng.random_bool(0.5) {
                ResidenceBasis::Employment
            } else {
                ResidenceBasis::Accompanying
            };
            let spouse_surname = names::surname(rng);
            people.push((
                households.people.make(
                    rng,
                    PersonSpec {
                        age: spouse_age,
                        male: !main_male,
                        surname: spouse_surname,
                        birth_county: &hukou,
                        marital_status: MaritalStatus::Married,
                    },
                    &address,
                ),
                basis,
            ));
        }
        let youngest_parent = people.iter().map(|(p, _)| age_of(p, today)).min().unwrap_or(main_age);
        for _ in 0..children {
            let age = rng.random_range(0..=youngest_parent.saturating_sub(22).min(15));
            let male = rng.random_bool(0.52);
            let child_surname = if main_male { surname } else { names::surname(rng) };
            people.push((
                households.people.make(
                    rng,
                    PersonSpec {
                        age,
                        male,
                        surname: child_surname,
                        birth_county: &hukou,
                        marital_status: MaritalStatus::Unmarried,
                    },
                    &address,
                ),
                ResidenceBasis::Accompanying,
            ));
        }
        let main_id = people[0].0.id_number.clone();
        let main_gets_permit = today - registered_on >= Duration::days(PERMIT_WAIT_DAYS) && rng.random_bool(0.85);
        let employer = format!(
            "{}有限公司",
            ["鲁中", "齐都", "华信", "新材", "汇丰", "泰和"][rng.random_range(0..6)]
        );
        let left = rng.random_bool(0.03);
        let mut members = Vec::new();
        for (i, (person, basis)) in people.into_iter().enumerate() {
            let registered = if i == 0 {
                registered_on
            } else {
                (registered_on + Duration::days(rng.random_range(0..120))).min(today)
            };
            let state = if left { RegistrationState::Left } else { RegistrationState::Active };
            let registration = ResidenceRegistration {
                id_number: person.id_number.clone(),
                name: person.name.clone(),
                sex: person.sex,
                birth_date: person.birth_date,
                hukou_county_code: hukou.clone(),
                address: Some(address.clone()),
                registered_on: Some(registered.into()),
                basis: basis as i32,
                employer: if basis == ResidenceBasis::Employment {
                    employer.clone()
                } else {
                    String::new()
                },
                school: if basis == ResidenceBasis::Study {
                    "淄博职业学院".into()
                } else {
                    String::new()
                },
                accompanies_id_number: if basis == ResidenceBasis::Accompanying {
                    main_id.clone()
                } else {
                    String::new()
                },
                state: state as i32,
                state_since: Some(
                    if left {
                        today - Duration::days(rng.random_range(1..200))
                    } else {
                        registered
                    }
                    .into(),
                ),
                phone: person.phone.clone(),
            };
            let qualifies =
                today - registered >= Duration::days(PERMIT_WAIT_DAYS) && (basis != ResidenceBasis::Accompanying || main_gets_permit);
            let permits = if (i == 0 && main_gets_permit) || (i > 0 && qualifies && rng.random_bool(0.9)) {
                vec![self.permit(rng, &registration, today, left)]
            } else {
                vec![]
            };
            members.push(ResidentRecords { registration, permits });
        }
        MigrantFamily {
            spouse: with_spouse.then_some(1),
            marriage_date: with_spouse
                .then(|| today - Duration::days(i64::from(youngest_parent.saturating_sub(22)) * 365 + rng.random_range(0..300))),
            members,
            urban: committee.urban,
        }
    }

    fn permit(&mut self, rng: &mut impl Rng, registration: &ResidenceRegistration, today: NaiveDate, left: bool) -> ResidencePermit {
        let registered = registration.registered_on.and_then(|d| d.to_naive()).unwrap_or(today);
        let issued = (registered + Duration::days(PERMIT_WAIT_DAYS + rng.random_range(0..60))).min(today);
        let mut valid_until = popbase_domain::calendar::add_years(issued, 1);
        let mut endorsements = Vec::new();
        let keeps_endorsing = rng.random_bool(0.9);
        while valid_until < today {
            if !keeps_endorsing && !endorsements.is_empty() {
                break;
            }
            endorsements.push((valid_until - Duration::days(rng.random_range(0..30))).into());
            valid_until = popbase_domain::calendar::add_years(valid_until, 1);
        }
        let (status, since) = if left {
            (
                PermitStatus::Cancelled,
                registration.state_since.and_then(|d| d.to_naive()).unwrap_or(today),
            )
        } else if valid_until < today {
            (PermitStatus::Expired, valid_until)
        } else {
            (PermitStatus::Valid, issued)
        };
        let number = format!(
            "{}{}{:08}",
            &registration.address.as_ref().map(|a| a.committee_code.as_str()).unwrap_or("3703")[..4],
            issued.year(),
            self.next_permit
        );
        self.next_permit += 1;
        ResidencePermit {
            permit_number: number,
            id_number: registration.id_number.clone(),
            address: registration.address.clone(),
            issued_on: Some(issued.into()),
            valid_until: Some(valid_until.into()),
            endorsements,
            status: status as i32,
            status_since: Some(since.into()),
            basis: registration.basis,
        }
    }
}
