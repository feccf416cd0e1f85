//! Structure-aware fuzzing of the registry's settlement input (the largest
//! request a department's client builds): 25,000 applications with hostile
//! values in every field (relations and family far past their bounds,
//! unknown enum values, impossible dates, ID numbers one character off)
//! and byte-level mutations of their encodings. Each must be accepted or
//! refused INVALID_ARGUMENT naming a field; nothing may panic. Fixed seed.

use std::panic::{AssertUnwindSafe, catch_unwind};

use popbase_common::ServiceError;
use popbase_domain::IdNumber;
use popbase_household::grpc::input;
use popbase_proto::common::{Address, Date};
use popbase_proto::household::{ApplicantFacts, ClaimedRelation, FamilyMember, SettlementApplication};
use prost::Message;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn id(rng: &mut Rng) -> String {
    let birth = chrono::NaiveDate::from_ymd_opt(1950 + rng.below(75) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32)
        .unwrap_or_default();
    let valid = IdNumber::generate("370303", birth, rng.below(999) as u16)
        .map(|i| i.as_str().to_string())
        .unwrap_or_default();
    match rng.below(5) {
        0 => String::new(),
        1 => valid.chars().take(rng.below(19) as usize).collect(),
        2 => format!("{}X", &valid[..17.min(valid.len())]),
        _ => valid,
    }
}

fn text(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => String::new(),
        1 => "370303001001".into(),
        2 => "😀\u{0}\u{202e}".repeat(1 + rng.below(4) as usize),
        3 => "z".repeat(rng.below(5_000) as usize),
        4 => (0..rng.below(14)).map(|_| char::from(b'0' + rng.below(10) as u8)).collect(),
        _ => "新村路9号".into(),
    }
}

fn enum_value(rng: &mut Rng) -> i32 {
    rng.below(30) as i32 - 5
}

fn date(rng: &mut Rng) -> Option<Date> {
    (rng.below(3) > 0).then(|| Date {
        year: rng.below(5000) as i32 - 100,
        month: rng.below(16) as i32 - 2,
        day: rng.below(35) as i32 - 2,
    })
}

/// A valid application, then at most one field made hostile.
fn plausible(rng: &mut Rng) -> SettlementApplication {
    let valid_id = |rng: &mut Rng| loop {
        let candidate = id(rng);
        if candidate.len() == 18 && IdNumber::parse(&candidate, chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default()).is_ok() {
            return candidate;
        }
    };
    let mut app = SettlementApplication {
        applicant_id_number: valid_id(rng),
        target: Some(Address {
            committee_code: "370303001001".into(),
            detail: "新村路9号".into(),
        }),
        relations: vec![ClaimedRelation {
            sponsor_id_number: valid_id(rng),
            kinship: 1 + rng.below(7) as i32,
        }],
        documents: vec![1, 2, 1 + rng.below(19) as i32],
        ..Default::default()
    };
    match rng.below(6) {
        0 => app.applicant_id_number = id(rng),
        1 => app.documents.push(enum_value(rng)),
        2 => app.on = date(rng),
        3 => app.family.push(FamilyMember {
            id_number: id(rng),
            kinship: enum_value(rng),
        }),
        4 => app.relations[0].kinship = enum_value(rng),
        _ => {}
    }
    app
}

fn application(rng: &mut Rng) -> SettlementApplication {
    if rng.below(10) < 3 {
        return plausible(rng);
    }
    let bound = |rng: &mut Rng, most: u64| if rng.below(10) == 0 { rng.below(most) } else { rng.below(4) };
    SettlementApplication {
        policy_id: ["", "zibo-2021", "jinan-2017", "nope"][rng.below(4) as usize].into(),
        applicant_id_number: id(rng),
        target: (rng.below(5) > 0).then(|| Address {
            committee_code: text(rng),
            detail: text(rng),
        }),
        relations: (0..bound(rng, 40))
            .map(|_| ClaimedRelation {
                sponsor_id_number: id(rng),
                kinship: enum_value(rng),
            })
            .collect(),
        documents: (0..bound(rng, 80)).map(|_| enum_value(rng)).collect(),
        facts: (rng.below(4) > 0).then(|| ApplicantFacts {
            education: enum_value(rng),
            title: enum_value(rng),
            skill: enum_value(rng),
            talent_category: text(rng),
            pension_insurance_months: rng.next() as u32,
            property_kind: enum_value(rng),
            marriage_date: date(rng),
            marital_status: enum_value(rng),
            employer_household_id: text(rng),
            from_code: text(rng),
            ..Default::default()
        }),
        on: date(rng),
        family: (0..bound(rng, 20))
            .map(|_| FamilyMember {
                id_number: id(rng),
                kinship: enum_value(rng),
            })
            .collect(),
    }
}

#[test]
fn hostile_settlement_applications_are_refused_naming_a_field_or_accepted() {
    let mut rng = Rng(0x51ed_270b_a3c4_1d2f);
    std::panic::set_hook(Box::new(|_| {}));
    let mut accepted = 0;
    for case in 0..25_000u64 {
        let mut app = application(&mut rng);
        if rng.below(2) == 0 {
            let mut bytes = app.encode_to_vec();
            if !bytes.is_empty() {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            match SettlementApplication::decode(bytes.as_slice()) {
                Ok(decoded) => app = decoded,
                Err(_) => continue,
            }
        }
        let verdict = catch_unwind(AssertUnwindSafe(|| input::application(Some(&app))));
        match verdict {
            Err(_) => {
                let _ = std::panic::take_hook();
                panic!("case {case}: the validator panicked")
            }
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(ServiceError::InvalidArgument { field, .. })) => assert!(!field.is_empty(), "case {case}"),
            Ok(Err(other)) => panic!("case {case}: {other} is not INVALID_ARGUMENT"),
        }
    }
    let _ = std::panic::take_hook();
    assert!(accepted > 50, "the generator gets past the first checks: {accepted}");
}
