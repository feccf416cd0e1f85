//! Structure-aware fuzzing of the gateway's edge validation, on stable Rust
//! and without a fuzzing crate: 100,000 requests (25,000 per interface)
//! built from hostile values (ID numbers valid, one digit off, of every
//! length; control characters, emoji, 10,000-character strings; impossible
//! dates; repeated fields far past their bounds), half of them then
//! mutated at the byte level and decoded again. Every request that decodes
//! must be accepted, or refused INVALID_ARGUMENT naming a field, and no
//! validator may panic. A fixed seed makes a failure reproducible; the
//! case number is in the message.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::NaiveDate;
use popbase_common::ServiceError;
use popbase_domain::IdNumber;
use popbase_gateway::interfaces::{enrollment, insurance, locality, person};
use popbase_proto::common::Date;
use popbase_proto::gateway::employer_locality_request::Place;
use popbase_proto::gateway::{EmployerLocalityRequest, EnrollmentCheckRequest, InsuranceGapRequest, PersonSummaryRequest};
use prost::Message;

const CASES_PER_INTERFACE: u64 = 25_000;

/// xorshift64*: small, deterministic, no dependency.
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

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 4).expect("date")
}

/// A hostile or plausible string for a field.
fn text(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => String::new(),
        1..=3 => {
            let age = rng.below(110) as i64;
            let birth = today() - chrono::Duration::days(age * 365 + rng.below(365) as i64);
            let county = ["370303", "370302", "110105", "370102", "999999"][rng.below(5) as usize];
            match IdNumber::generate(county, birth, rng.below(999) as u16) {
                Ok(id) if rng.chance(70) => id.as_str().to_string(),
                Ok(id) => {
                    // One character off: a bad check digit or a bad date.
                    let mut chars: Vec<char> = id.as_str().chars().collect();
                    let at = rng.below(18) as usize;
                    chars[at] = ['0', '9', 'X', 'x', 'Ａ', '\u{0}'][rng.below(6) as usize];
                    chars.into_iter().collect()
                }
                Err(_) => "370303201801010011".into(),
            }
        }
        4 => (0..rng.below(40)).map(|_| char::from(b'0' + rng.below(10) as u8)).collect(),
        5 => ["370303001001", "370303001", "370303", "3703", "37", "370102001002", "999999999999"][rng.below(7) as usize].into(),
        6 => "张店区车站街道新华社区华光路12号".into(),
        7 => "😀\u{202e}\u{0}\t\n'\"\\".repeat(rng.below(5) as usize + 1),
        8 => "x".repeat(rng.below(10_000) as usize),
        9 => "COMPULSORY_EDUCATION_ENROLLMENT".into(),
        10 => "山东省济南市历下区经十路１００号".into(),
        _ => (0..rng.below(30))
            .map(|_| char::from_u32(rng.below(0x30000) as u32).unwrap_or('?'))
            .collect(),
    }
}

/// A valid ID number of someone `youngest..=oldest` years old.
fn id_aged(rng: &mut Rng, youngest: u64, oldest: u64) -> String {
    let age = youngest + rng.below(oldest - youngest + 1);
    let birth = today() - chrono::Duration::days(age as i64 * 365 + 30 + rng.below(300) as i64);
    IdNumber::generate("370303", birth, rng.below(999) as u16)
        .map(|id| id.as_str().to_string())
        .unwrap_or_default()
}

fn date(rng: &mut Rng) -> Option<Date> {
    match rng.below(4) {
        0 => None,
        1 => Some(today().into()),
        2 => Some((today() - chrono::Duration::days(rng.below(800) as i64 - 400)).into()),
        _ => Some(Date {
            year: rng.below(40_000) as i32 - 5_000,
            month: rng.below(20) as i32 - 3,
            day: rng.below(40) as i32 - 3,
        }),
    }
}

fn many(rng: &mut Rng, most: u64) -> Vec<String> {
    let n = if rng.chance(90) { rng.below(4) } else { rng.below(most) };
    (0..n).map(|_| text(rng)).collect()
}

/// Half the time, the message's bytes flipped, cut or extended, then
/// decoded again as the server would (`None` when that no longer decodes).
fn mutated<M: Message + Default>(rng: &mut Rng, message: M) -> Option<M> {
    if rng.chance(50) {
        return Some(message);
    }
    let mut bytes = message.encode_to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(3) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => bytes.truncate(rng.below(bytes.len() as u64) as usize),
            _ => bytes.extend((0..rng.below(8)).map(|_| rng.next() as u8)),
        }
    }
    M::decode(bytes.as_slice()).ok()
}

/// The validator's verdict must be acceptance or INVALID_ARGUMENT naming a field.
fn check<T>(case: u64, what: &str, verdict: std::thread::Result<Result<T, ServiceError>>) {
    match verdict {
        Err(_) => panic!("{what} case {case}: the validator panicked"),
        Ok(Ok(_)) => {}
        Ok(Err(ServiceError::InvalidArgument { field, .. })) => assert!(!field.is_empty(), "{what} case {case}: no field named"),
        Ok(Err(other)) => panic!("{what} case {case}: {other} is not INVALID_ARGUMENT"),
    }
}

#[test]
fn a_hundred_thousand_hostile_requests_are_answered_invalid_argument_or_accepted() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut accepted = [0u64; 4];
    for case in 0..CASES_PER_INTERFACE {
        let request = if rng.chance(30) {
            // A plausible application with one field made hostile.
            let mut plausible = EnrollmentCheckRequest {
                purpose: "COMPULSORY_EDUCATION_ENROLLMENT".into(),
                request_id: case.to_string(),
                child_id_number: id_aged(&mut rng, 5, 16),
                guardian_id_numbers: vec![id_aged(&mut rng, 25, 60)],
                district_codes: vec!["370303001001".into()],
                reference_date: None,
            };
            match rng.below(6) {
                0 => plausible.child_id_number = text(&mut rng),
                1 => plausible.guardian_id_numbers = many(&mut rng, 8),
                2 => plausible.district_codes = many(&mut rng, 400),
                3 => plausible.reference_date = date(&mut rng),
                4 => plausible.request_id = text(&mut rng),
                _ => {}
            }
            plausible
        } else {
            EnrollmentCheckRequest {
                purpose: text(&mut rng),
                request_id: text(&mut rng),
                child_id_number: text(&mut rng),
                guardian_id_numbers: many(&mut rng, 8),
                district_codes: many(&mut rng, 400),
                reference_date: date(&mut rng),
            }
        };
        if let Some(request) = mutated(&mut rng, request) {
            let verdict = catch_unwind(AssertUnwindSafe(|| {
                enrollment::validate(&request, today(), enrollment::ChildAges::DEFAULT)
            }));
            accepted[0] += u64::from(matches!(verdict, Ok(Ok(_))));
            check(case, "EnrollmentCheck", verdict);
        }
        let request = PersonSummaryRequest {
            purpose: text(&mut rng),
            id_number: text(&mut rng),
            as_of: date(&mut rng),
        };
        if let Some(request) = mutated(&mut rng, request) {
            let verdict = catch_unwind(AssertUnwindSafe(|| person::validate(&request, today())));
            accepted[1] += u64::from(matches!(verdict, Ok(Ok(_))));
            check(case, "PersonSummary", verdict);
        }
        let request = EmployerLocalityRequest {
            purpose: text(&mut rng),
            place: match rng.below(3) {
                0 => None,
                1 => Some(Place::CommitteeCode(text(&mut rng))),
                _ => Some(Place::Address(text(&mut rng))),
            },
        };
        if let Some(request) = mutated(&mut rng, request) {
            let verdict = catch_unwind(AssertUnwindSafe(|| locality::validate(&request, "3703")));
            accepted[2] += u64::from(matches!(verdict, Ok(Ok(_))));
            check(case, "EmployerLocality", verdict);
        }
        let request = InsuranceGapRequest {
            purpose: text(&mut rng),
            division_code: text(&mut rng),
        };
        if let Some(request) = mutated(&mut rng, request) {
            let verdict = catch_unwind(AssertUnwindSafe(|| insurance::validate(&request, "3703")));
            accepted[3] += u64::from(matches!(verdict, Ok(Ok(_))));
            check(case, "InsuranceGap", verdict);
        }
    }
    std::panic::set_hook(quiet);
    // The generator reaches past the first check of each validator.
    assert!(accepted.iter().all(|&n| n > 100), "accepted per interface: {accepted:?}");
}
