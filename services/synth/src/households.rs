//! Family and collective households.

use chrono::{Duration, NaiveDate};
use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::common::Address;
use popbase_proto::household::{Household, HouseholdKind, HouseholdStatus, MaritalStatus, MoveInReason, Person, Relationship};
use rand::Rng;

use crate::geography::{CityMap, Committee};
use crate::names;
use crate::people::{self, PersonFactory, PersonSpec};

/// Facts the feeds need and relationship codes cannot carry exactly.
#[derive(Debug, Default, Clone)]
pub struct FamilyFacts {
    /// (member index, member index, marriage date).
    pub couples: Vec<(usize, usize, NaiveDate)>,
    /// (child index, mother index, father index) for children born to members.
    pub births: Vec<(usize, Option<usize>, Option<usize>)>,
}

#[derive(Debug, Clone)]
pub struct GeneratedHousehold {
    pub record: HouseholdWithMembers,
    pub facts: FamilyFacts,
    pub committee_urban: bool,
}

/// Family household shapes and their weights (per cent).
const SHAPES: [(Shape, u32); 7] = [
    (Shape::Single, 15),
    (Shape::Couple, 20),
    (Shape::CoupleWithChildren, 35),
    (Shape::ThreeGenerations, 12),
    (Shape::ElderHeadWithSonsFamily, 8),
    (Shape::SingleParent, 5),
    (Shape::CoupleWithAdultChild, 5),
];

#[derive(Debug, Clone, Copy)]
enum Shape {
    Single,
    Couple,
    CoupleWithChildren,
    ThreeGenerations,
    ElderHeadWithSonsFamily,
    SingleParent,
    CoupleWithAdultChild,
}

/// Kinds of collective household and their weights.
pub const COLLECTIVE_KINDS: [(HouseholdKind, u32); 5] = [
    (HouseholdKind::CollectiveUnit, 40),
    (HouseholdKind::CollectiveCommunity, 25),
    (HouseholdKind::CollectiveTalent, 10),
    (HouseholdKind::CollectiveSchool, 5),
    (HouseholdKind::CollectiveRural, 20),
];

pub struct HouseholdBuilder<'m> {
    pub map: &'m CityMap,
    pub people: PersonFactory,
    next_serial: u64,
}

/// One member being assembled: the person and who they are in the household.
struct Draft<'s> {
    age: u32,
    male: bool,
    surname: &'s str,
    relationship: Relationship,
    marital: MaritalStatus,
}

impl<'m> HouseholdBuilder<'m> {
    pub fn new(map: &'m CityMap, reference_date: NaiveDate) -> Self {
        Self {
            map,
            people: PersonFactory::new(reference_date),
            next_serial: 1,
        }
    }

    pub fn reference_date(&self) -> NaiveDate {
        self.people.reference_date
    }

    fn household_id(&mut self, county: &str) -> String {
        let id = format!("{county}{:08}", self.next_serial);
        self.next_serial += 1;
        id
    }

    /// A home at one of the committee's standard addresses: road and door
    /// number, and in a town the building, unit and flat.
    pub fn address(rng: &mut impl Rng, committee: &Committee) -> Address {
        let (road, highest) = match committee.roads.as_slice() {
            [] => (crate::gazetteer::village_road(&committee.name), 100),
            roads => roads[rng.random_range(0..roads.len())].clone(),
        };
        let number = rng.random_range(1..=highest.max(1));
        let detail = if committee.urban {
            format!(
                "{road}{number}号{}号楼{}单元{}{:02}室",
                rng.random_range(1..30),
                rng.random_range(1..5),
                rng.random_range(1..19),
                rng.random_range(1..5)
            )
        } else {
            format!("{road}{number}号")
        };
        Address {
            committee_code: committee.code.clone(),
            detail,
        }
    }

    /// A family household (家庭户) at a population-weighted committee.
    pub fn family(&mut self, rng: &mut impl Rng) -> GeneratedHousehold {
        let committee = self.map.pick_committee(rng).clone();
        let shape = pick_weighted(rng, &SHAPES);
        let head_male = rng.random_bool(0.78);
        let head_surname = names::surname(rng);
        let spouse_surname = names::surname(rng);
        let mut drafts: Vec<Draft> = Vec::new();
        let mut facts = FamilyFacts::default();
        let married = MaritalStatus::Married;
        match shape {
            Shape::Single => {
                let age = rng.random_range(20..90);
                let marital = single_status(rng, age);
                drafts.push(Draft {
                    age,
                    male: head_male,
                    surname: head_surname,
                    relationship: Relationship::Head,
                    marital,
                });
            }
            Shape::Couple => {
                let head_age = rng.random_range(24..86);
                push_couple(rng, &mut drafts, head_male, head_surname, spouse_surname, head_age);
            }
            Shape::CoupleWithChildren | Shape::ThreeGenerations => {
                let head_age = rng.random_range(26..56);
                push_couple(rng, &mut drafts, head_male, head_surname, spouse_surname, head_age);
                let children = if rng.random_bool(0.5) { 1 } else { rng.random_range(1..=3) };
                add_children(rng, &mut drafts, head_age, children);
                if matches!(shape, Shape::ThreeGenerations) {
                    let father_age = (head_age + rng.random_range(24..34)).min(99);
                    if rng.random_bool(0.7) {
                        drafts.push(Draft {
                            age: father_age,
                            male: true,
                            surname: head_surname,
                            relationship: Relationship::Father,
                            marital: married,
                        });
                    }
                    drafts.push(Draft {
                        age: (father_age - rng.random_range(0..4)).max(head_age + 20),
                        male: false,
                        surname: names::surname(rng),
                        relationship: Relationship::Mother,
                        marital: if drafts.last().is_some_and(|d| d.relationship == Relationship::Father) {
                            married
                        } else {
                            MaritalStatus::Widowed
                        },
                    });
                }
            }
            Shape::ElderHeadWithSonsFamily => {
                let head_age = rng.random_range(56..82);
                push_couple(rng, &mut drafts, head_male, head_surname, spouse_surname, head_age);
                let son_age = rng.random_range(26..(head_age - 22).max(27));
                drafts.push(Draft {
                    age: son_age,
                    male: true,
                    surname: head_surname,
                    relationship: Relationship::Son,
                    marital: married,
                });
                drafts.push(Draft {
                    age: son_age.saturating_sub(rng.random_range(0..4)).max(22),
                    male: false,
                    surname: names::surname(rng),
                    relationship: Relationship::DaughterInLaw,
                    marital: married,
                });
                let grandchild_age = rng.random_range(0..(son_age - 22).clamp(1, 16));
                let male = rng.random_bool(0.52);
                drafts.push(Draft {
                    age: grandchild_age,
                    male,
                    surname: head_surname,
                    relationship: if male {
                        Relationship::Grandson
                    } else {
                        Relationship::Granddaughter
                    },
                    marital: MaritalStatus::Unmarried,
                });
            }
            Shape::SingleParent => {
                let age = rng.random_range(28..52);
                let marital = if rng.random_bool(0.8) {
                    MaritalStatus::Divorced
                } else {
                    MaritalStatus::Widowed
                };
                drafts.push(Draft {
                    age,
                    male: head_male,
                    surname: head_surname,
                    relationship: Relationship::Head,
                    marital,
                });
                add_children(rng, &mut drafts, age, 1);
            }
            Shape::CoupleWithAdultChild => {
                let head_age = rng.random_range(46..68);
                push_couple(rng, &mut drafts, head_male, head_surname, spouse_surname, head_age);
                let age = rng.random_range(18..(head_age - 22).max(19));
                let male = rng.random_bool(0.5);
                drafts.push(Draft {
                    age,
                    male,
                    surname: head_surname,
                    relationship: if male { Relationship::Son } else { Relationship::Daughter },
                    marital: MaritalStatus::Unmarried,
                });
            }
        }
        let household_id = self.household_id(&committee.county);
        let address = Self::address(rng, &committee);
        let mut members = Vec::with_capacity(drafts.len());
        for draft in &drafts {
            let birth_county = self.birth_county(rng, &committee.county, draft.age, draft.relationship);
            let mut person = self.people.make(
                rng,
                PersonSpec {
                    age: draft.age,
                    male: draft.male,
                    surname: draft.surname,
                    birth_county: &birth_county,
                    marital_status: draft.marital,
                },
                &address,
            );
            person.household_id = household_id.clone();
            person.relationship = draft.relationship as i32;
            members.push(person);
        }
        self.link_family(rng, &drafts, &mut members, &mut facts, &committee.county);
        record_kinship(&mut members, &facts);
        let head = &members[0];
        let established = members
            .iter()
            .map(|m| m.moved_in_date.and_then(|d| d.to_naive()).unwrap_or(self.reference_date()))
            .min()
            .unwrap_or(self.reference_date());
        let household = Household {
            household_id,
            kind: HouseholdKind::Family as i32,
            head_id_number: head.id_number.clone(),
            address: Some(address),
            unit_name: String::new(),
            established: Some(established.into()),
            status: HouseholdStatus::Active as i32,
            family_books: vec![],
            closed: None,
        };
        GeneratedHousehold {
            record: HouseholdWithMembers { household, members },
            facts,
            committee_urban: committee.urban,
        }
    }

    /// Where a member was first registered: children of the household are
    /// born locally; adults mostly local, some from the province or beyond.
    fn birth_county(&self, rng: &mut impl Rng, home_county: &str, age: u32, relationship: Relationship) -> String {
        let born_here = matches!(
            relationship,
            Relationship::Son | Relationship::Daughter | Relationship::Grandson | Relationship::Granddaughter
        ) && age < 30;
        if born_here {
            return home_county.to_string();
        }
        match rng.random_range(0..100) {
            0..=77 => home_county.to_string(),
            78..=87 => self.map.pick_local_county(rng).to_string(),
            88..=95 => self.map.pick_province_county(rng).to_string(),
            _ => self.map.pick_other_province_county(rng).to_string(),
        }
    }

    /// Registration history, couples and births.
    fn link_family(&self, rng: &mut impl Rng, drafts: &[Draft], members: &mut [Person], facts: &mut FamilyFacts, home_county: &str) {
        let today = self.reference_date();
        let head = 0;
        let spouse = drafts.iter().position(|d| d.relationship == Relationship::Spouse);
        if let Some(spouse) = spouse {
            let younger = people::age_of(&members[head], today).min(people::age_of(&members[spouse], today));
            let years_married = rng
                .random_range(0..=(younger.saturating_sub(22)).max(1))
                .min(younger.saturating_sub(20));
            let date = today - Duration::days(i64::from(years_married) * 365 + rng.random_range(0..365));
            facts.couples.push((head, spouse, date));
        }
        if let (Some(f), Some(m)) = (
            drafts.iter().position(|d| d.relationship == Relationship::Father),
            drafts.iter().position(|d| d.relationship == Relationship::Mother),
        ) {
            let date = people::date_at_age(&members[head], 0, today) - Duration::days(rng.random_range(365..3000));
            facts.couples.push((f, m, date));
        }
        if let (Some(son), Some(wife)) = (
            drafts
                .iter()
                .position(|d| d.relationship == Relationship::Son && d.marital == MaritalStatus::Married),
            drafts.iter().position(|d| d.relationship == Relationship::DaughterInLaw),
        ) {
            let date = people::date_at_age(&members[son], rng.random_range(22..27), today);
            facts.couples.push((son, wife, date));
        }
        let (mother, father) = match (drafts[head].male, spouse) {
            (true, s) => (s, Some(head)),
            (false, s) => (Some(head), s),
        };
        for (i, draft) in drafts.iter().enumerate() {
            match draft.relationship {
                Relationship::Son | Relationship::Daughter => facts.births.push((i, mother, father)),
                Relationship::Grandson | Relationship::Granddaughter => {
                    let son = drafts.iter().position(|d| d.relationship == Relationship::Son);
                    let wife = drafts.iter().position(|d| d.relationship == Relationship::DaughterInLaw);
                    facts.births.push((i, wife, son));
                }
                _ => {}
            }
        }
        let born_in_household: Vec<usize> = facts.births.iter().map(|b| b.0).collect();
        for (i, person) in members.iter_mut().enumerate() {
            let birth = people::birth_of(person);
            // Children born into the household, and most locally born adults,
            // have been registered here since birth.
            let local = person.birthplace_code == home_county;
            if local && (born_in_household.contains(&i) || rng.random_bool(0.6)) {
                person.moved_in_date = Some(birth.into());
                person.moved_in_reason = MoveInReason::Birth as i32;
            } else {
                let age = people::age_of(person, today);
                let at_age = rng.random_range(18.min(age)..=age.clamp(18, 45).max(18.min(age)));
                let date = people::date_at_age(person, at_age, today);
                person.moved_in_date = Some(date.max(birth).into());
                person.moved_in_from_code = person.birthplace_code.clone();
                person.moved_in_reason = if person.birthplace_code.starts_with(&self.map.city_code) {
                    MoveInReason::TransferWithinCity
                } else if Some(i) == spouse || draft_is_in_law(drafts, i) {
                    MoveInReason::Relative
                } else {
                    pick_weighted(
                        rng,
                        &[
                            (MoveInReason::Property, 45),
                            (MoveInReason::Relative, 20),
                            (MoveInReason::Employment, 20),
                            (MoveInReason::Talent, 7),
                            (MoveInReason::Rental, 5),
                            (MoveInReason::Business, 3),
                        ],
                    )
                } as i32;
            }
        }
    }

    /// A collective household (集体户) of `kind` with adult members.
    pub fn collective(&mut self, rng: &mut impl Rng, kind: HouseholdKind) -> GeneratedHousehold {
        let committee = if kind == HouseholdKind::CollectiveRural {
            let mut c = self.map.pick_committee(rng);
            for _ in 0..20 {
                if !c.urban {
                    break;
                }
                c = self.map.pick_committee(rng);
            }
            c.clone()
        } else {
            self.map.pick_urban_committee(rng).clone()
        };
        let (unit_name, size, ages, reason) = match kind {
            HouseholdKind::CollectiveUnit => (
                format!(
                    "{}有限公司集体户",
                    committee.name.trim_end_matches("居民委员会").trim_end_matches("社区")
                ),
                rng.random_range(2..40),
                20..58,
                MoveInReason::Employment,
            ),
            HouseholdKind::CollectiveCommunity => (
                format!(
                    "{}社区集体户",
                    committee.name.trim_end_matches("居民委员会").trim_end_matches("社区")
                ),
                rng.random_range(3..60),
                18..70,
                MoveInReason::Collective,
            ),
            HouseholdKind::CollectiveTalent => ("人才集体户".to_string(), rng.random_range(2..30), 22..45, MoveInReason::Talent),
            HouseholdKind::CollectiveSchool => (
                "学校集体户".to_string(),
                rng.random_range(20..120),
                18..25,
                MoveInReason::Collective,
            ),
            _ => (
                format!("{}农村集体户", committee.name.trim_end_matches("村民委员会")),
                rng.random_range(1..10),
                22..55,
                MoveInReason::Employment,
            ),
        };
        let household_id = self.household_id(&committee.county);
        let address = Self::address(rng, &committee);
        let today = self.reference_date();
        let mut members = Vec::with_capacity(size);
        let mut facts = FamilyFacts::default();
        for i in 0..size {
            let age = rng.random_range(ages.clone());
            let male = rng.random_bool(0.55);
            let birth_county = match rng.random_range(0..10) {
                0..=4 => self.map.pick_local_county(rng).to_string(),
                5..=7 => self.map.pick_province_county(rng).to_string(),
                _ => self.map.pick_other_province_county(rng).to_string(),
            };
            // Now and then two members are a married couple (Zibo item 5: such
            // families may be issued a family household book).
            let pair_with_previous = i > 0 && age >= 24 && kind != HouseholdKind::CollectiveSchool && rng.random_bool(0.08);
            let marital = if pair_with_previous || (age > 30 && rng.random_bool(0.5)) {
                MaritalStatus::Married
            } else {
                MaritalStatus::Unmarried
            };
            let surname = names::surname(rng);
            let mut person = self.people.make(
                rng,
                PersonSpec {
                    age,
                    male,
                    surname,
                    birth_county: &birth_county,
                    marital_status: marital,
                },
                &address,
            );
            person.household_id = household_id.clone();
            person.relationship = Relationship::CollectiveMember as i32;
            let moved = today - Duration::days(rng.random_range(30..(365 * 8)));
            person.moved_in_date = Some(moved.max(people::date_at_age(&person, 18, today)).into());
            person.moved_in_from_code = birth_county.clone();
            person.moved_in_reason = reason as i32;
            if pair_with_previous && members.len() == i {
                let previous: &mut Person = &mut members[i - 1];
                if previous.sex != person.sex && previous.marital_status != MaritalStatus::Married as i32 {
                    previous.marital_status = MaritalStatus::Married as i32;
                    facts.couples.push((i - 1, i, moved - Duration::days(rng.random_range(30..2000))));
                }
            }
            members.push(person);
        }
        record_kinship(&mut members, &facts);
        let household = Household {
            household_id,
            kind: kind as i32,
            head_id_number: String::new(),
            address: Some(address),
            unit_name,
            established: Some((today - Duration::days(rng.random_range(365..(365 * 20)))).into()),
            status: HouseholdStatus::Active as i32,
            family_books: vec![],
            closed: None,
        };
        GeneratedHousehold {
            record: HouseholdWithMembers { household, members },
            facts,
            committee_urban: committee.urban,
        }
    }
}

fn push_couple<'s>(
    rng: &mut impl Rng,
    drafts: &mut Vec<Draft<'s>>,
    head_male: bool,
    head_surname: &'s str,
    spouse_surname: &'s str,
    head_age: u32,
) {
    let offset: i32 = rng.random_range(0..5);
    let spouse_age = (head_age as i32 + if head_male { -offset } else { offset }).max(20) as u32;
    let married = MaritalStatus::Married;
    drafts.push(Draft {
        age: head_age,
        male: head_male,
        surname: head_surname,
        relationship: Relationship::Head,
        marital: married,
    });
    drafts.push(Draft {
        age: spouse_age,
        male: !head_male,
        surname: spouse_surname,
        relationship: Relationship::Spouse,
        marital: married,
    });
}

/// Writes the couples and births of `facts` into the members' kinship links,
/// as the registry records them at marriage and birth registration.
fn record_kinship(members: &mut [Person], facts: &FamilyFacts) {
    for &(a, b, _) in &facts.couples {
        let (id_a, id_b) = (members[a].id_number.clone(), members[b].id_number.clone());
        members[a].spouse_id_number = id_b;
        members[b].spouse_id_number = id_a;
    }
    for &(child, mother, father) in &facts.births {
        if let Some(m) = mother {
            members[child].mother_id_number = members[m].id_number.clone();
        }
        if let Some(f) = father {
            members[child].father_id_number = members[f].id_number.clone();
        }
    }
}

fn draft_is_in_law(drafts: &[Draft], i: usize) -> bool {
    matches!(
        drafts[i].relationship,
        Relationship::DaughterInLaw | Relationship::SonInLaw | Relationship::Mother
    )
}

fn single_status(rng: &mut impl Rng, age: u32) -> MaritalStatus {
    match age {
        0..=29 => MaritalStatus::Unmarried,
        30..=59 => pick_weighted(
            rng,
            &[
                (MaritalStatus::Unmarried, 55),
                (MaritalStatus::Divorced, 35),
                (MaritalStatus::Widowed, 10),
            ],
        ),
        _ => pick_weighted(
            rng,
            &[
                (MaritalStatus::Unmarried, 10),
                (MaritalStatus::Divorced, 20),
                (MaritalStatus::Widowed, 70),
            ],
        ),
    }
}

/// Children of a head aged `parent_age` (the younger parent is at least 20 at each birth).
fn add_children<'s>(rng: &mut impl Rng, drafts: &mut Vec<Draft<'s>>, parent_age: u32, count: u32) {
    let surname = drafts[0].surname;
    let eldest_max = parent_age.saturating_sub(24).clamp(0, 17);
    for _ in 0..count {
        let age = rng.random_range(0..=eldest_max);
        let male = rng.random_bool(0.52);
        drafts.push(Draft {
            age,
            male,
            surname,
            relationship: if male { Relationship::Son } else { Relationship::Daughter },
            marital: MaritalStatus::Unmarried,
        });
    }
}

pub fn pick_weighted<T: Copy>(rng: &mut impl Rng, options: &[(T, u32)]) -> T {
    let total: u32 = options.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (value, weight) in options {
        if pick < *weight {
            return *value;
        }
        pick -= weight;
    }
    options[0].0
}
