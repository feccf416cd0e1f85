//! Resident ID numbers (公民身份号码) per GB 11643-1999.
//!
//! Layout of the 18 characters:
//!
//! | chars | meaning |
//! |-------|---------|
//! | 1-6   | county code of first registration (GB/T 2260) |
//! | 7-14  | birth date `YYYYMMDD` |
//! | 15-17 | sequence; the 17th digit is odd for men, even for women |
//! | 18    | check digit (ISO 7064 MOD 11-2), `0`-`9` or `X` |
//!
//! Lower-case `x` is accepted and normalised to `X`: it is what people type,
//! and rejecting it would only push departments to pre-clean input.
//! The county prefix is *not* checked against today's divisions here, because
//! codes of divisions abolished long ago still appear in valid numbers; callers
//! that care use [`crate::Divisions::knows_county`] and treat a miss as a warning.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use thiserror::Error;

/// Weights of positions 1..=17, `2^(17-i) mod 11`.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each `sum mod 11`.
const CHECK_CHARS: [u8; 11] = *b"10X98765432";
/// Earliest birth year accepted; anything older is a typing error, not a resident.
const EARLIEST_BIRTH_YEAR: i32 = 1880;

/// Why a string is not a valid ID number. Messages never repeat the input:
/// they end up in error responses and logs, where clear ID numbers must not go.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdNumberError {
    #[error("must be 18 characters (15 for legacy numbers), got {0}")]
    Length(usize),
    #[error("character {position} must be a digit{}", if *.position == 18 { " or X" } else { "" })]
    NotADigit { position: usize },
    #[error("birth date is not a calendar date")]
    ImpossibleDate,
    #[error("birth date lies in the future")]
    FutureDate,
    #[error("birth year is before {EARLIEST_BIRTH_YEAR}")]
    TooOld,
    #[error("check digit does not match (expected {expected})")]
    CheckDigit { expected: char },
    #[error("sequence number {0} is out of range 1..=999")]
    Sequence(u16),
    #[error("county code must be 6 digits")]
    CountyCode,
}

/// Sex as encoded in the ID number's 17th digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
}

/// A validated 18-character resident ID number, stored as ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber([u8; 18]);

impl IdNumber {
    /// Parses and validates an 18-character number (or upgrades a 15-character
    /// legacy one), with `today` bounding the birth date.
    pub fn parse(text: &str, today: NaiveDate) -> Result<Self, IdNumberError> {
        let text = text.trim();
        match text.len() {
            18 => Self::parse18(text.as_bytes(), today),
            15 => Self::upgrade_legacy(text, today),
            other => Err(IdNumberError::Length(other)),
        }
    }

    fn parse18(bytes: &[u8], today: NaiveDate) -> Result<Self, IdNumberError> {
        let mut raw = [0u8; 18];
        for (i, &b) in bytes.iter().enumerate() {
            raw[i] = match (i, b) {
                (_, b'0'..=b'9') => b,
                (17, b'x' | b'X') => b'X',
                _ => return Err(IdNumberError::NotADigit { position: i + 1 }),
            };
        }
        birth_date_of(&raw[6..14], today)?;
        let expected = check_char(&raw[..17]);
        if raw[17] != expected {
            return Err(IdNumberError::CheckDigit {
                expected: expected as char,
            });
        }
        Ok(IdNumber(raw))
    }

    /// Upgrades a 15-digit number (1985-1999 issue: county, `YYMMDD`, sequence)
    /// to 18 digits: century `19` inserted, check digit appended.
    /// 15-digit numbers were only ever issued to people born in the 1900s.
    pub fn upgrade_legacy(text: &str, today: NaiveDate) -> Result<Self, IdNumberError> {
        let bytes = text.as_bytes();
        if bytes.len() != 15 {
            return Err(IdNumberError::Length(bytes.len()));
        }
        if let Some(pos) = bytes.iter().position(|b| !b.is_ascii_digit()) {
            return Err(IdNumberError::NotADigit { position: pos + 1 });
        }
        let mut raw = [0u8; 18];
        raw[..6].copy_from_slice(&bytes[..6]);
        raw[6..8].copy_from_slice(b"19");
        raw[8..17].copy_from_slice(&bytes[6..15]);
        birth_date_of(&raw[6..14], today)?;
        raw[17] = check_char(&raw[..17]);
        Ok(IdNumber(raw))
    }

    /// Builds the number of a person first registered in `county` (6 digits),
    /// born on `birth`, with sequence `sequence` (1..=999, odd for men).
    pub fn generate(county: &str, birth: NaiveDate, sequence: u16) -> Result<Self, IdNumberError> {
        if county.len() != 6 || !county.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdNumberError::CountyCode);
        }
        if !(1..=999).contains(&sequence) {
            return Err(IdNumberError::Sequence(sequence));
        }
        if !(EARLIEST_BIRTH_YEAR..=9999).contains(&birth.year()) {
            return Err(IdNumberError::TooOld);
        }
        let body = format!("{county}{}{sequence:03}", birth.format("%Y%m%d"));
        let mut raw = [0u8; 18];
        raw[..17].copy_from_slice(body.as_bytes());
        raw[17] = check_char(&raw[..17]);
        Ok(IdNumber(raw))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and 'X' are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// County code of first registration (not necessarily a current division).
    pub fn county_code(&self) -> &str {
        &self.as_str()[..6]
    }

    pub fn birth_date(&self) -> NaiveDate {
        // Validated at construction; the fallback is unreachable.
        birth_date_of(&self.0[6..14], NaiveDate::MAX).unwrap_or_default()
    }

    /// Three-digit sequence number within county and birth date.
    pub fn sequence(&self) -> u16 {
        self.0[14..17].iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'))
    }

    pub fn sex(&self) -> Sex {
        if (self.0[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female }
    }

    /// The display form for logs and error messages: `370302********1234`.
    pub fn masked(&self) -> String {
        crate::mask::mask_id_number(self.as_str())
    }
}

/// Computes the check character for the first 17 digits.
pub fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// An ID number packed into eight bytes: its first 17 digits as one
/// integer (below 10^17). The check character is left out because it is a
/// function of them; [`unpack`] computes it again. Whole-division lists
/// move millions of ID numbers between roles, and eight bytes each instead
/// of twenty (a length-prefixed string) is what keeps that cheap. Packed
/// numbers sort as the ID numbers do. `None` for anything but 17 digits and
/// the right check character.
pub fn pack(id_number: &str) -> Option<u64> {
    let bytes = id_number.as_bytes();
    let (first17, check) = (bytes.get(..17)?, *bytes.get(17)?);
    if bytes.len() != 18 || !first17.iter().all(u8::is_ascii_digit) || check_char(first17) != check {
        return None;
    }
    Some(first17.iter().fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0')))
}

/// The ID number [`pack`] packed; `None` for a value of more than 17 digits.
pub fn unpack(packed: u64) -> Option<String> {
    if packed >= 100_000_000_000_000_000 {
        return None;
    }
    let mut text = format!("{packed:017}").into_bytes();
    let check = check_char(&text);
    text.push(check);
    String::from_utf8(text).ok()
}

fn birth_date_of(digits: &[u8], today: NaiveDate) -> Result<NaiveDate, IdNumberError> {
    let num = |r: std::ops::Range<usize>| digits[r].iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
    let (year, month, day) = (num(0..4) as i32, num(4..6), num(6..8));
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(IdNumberError::ImpossibleDate)?;
    if year < EARLIEST_BIRTH_YEAR {
        return Err(IdNumberError::TooOld);
    }
    if date > today {
        return Err(IdNumberError::FutureDate);
    }
    Ok(date)
}

impl fmt::Display for IdNumber {
    /// Displays the *masked* form: a clear number must be asked for with `as_str`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).expect("valid")
    }

    #[test]
    fn packing_keeps_the_number_and_its_order() {
        for id in ["11010519491231002X", "370302198001011234", "000000000000000000"] {
            let Some(packed) = pack(id) else {
                assert_ne!(check_char(&id.as_bytes()[..17]), id.as_bytes()[17], "{id} has its check character");
                continue;
            };
            assert_eq!(unpack(packed).as_deref(), Some(id));
        }
        let (a, b) = (pack("11010519491231002X").expect("valid"), pack("370302198001011234"));
        assert!(b.is_none_or(|b| a < b), "packed numbers sort as the numbers do");
        for bad in [
            "11010519491231002",
            "11010519491231002X0",
            "11010519491231002Y",
            "1101051949123100a2X",
            "11010519491231002x",
        ] {
            assert_eq!(pack(bad), None, "{bad}");
        }
        assert_eq!(unpack(100_000_000_000_000_000), None);
        let valid = IdNumber::generate("370302", NaiveDate::from_ymd_opt(1980, 1, 1).expect("d"), 123).expect("valid");
        assert_eq!(unpack(pack(valid.as_str()).expect("packs")).as_deref(), Some(valid.as_str()));
    }

    /// The worked example of GB 11643-1999 appendix: 11010519491231002X.
    #[test]
    fn standard_example_is_valid() {
        let id = IdNumber::parse("11010519491231002X", today()).expect("valid");
        assert_eq!(id.county_code(), "110105");
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).expect("d"));
        assert_eq!(id.sequence(), 2);
        assert_eq!(id.sex(), Sex::Female);
        let id = IdNumber::parse("440524188001010014", today()).expect("valid");
        assert_eq!(id.sex(), Sex::Male);
    }

    #[test]
    fn lower_case_x_is_normalised() {
        let id = IdNumber::parse("11010519491231002x", today()).expect("valid");
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn wrong_check_digit_is_rejected() {
        assert_eq!(
            IdNumber::parse("110105194912310021", today()),
            Err(IdNumberError::CheckDigit { expected: 'X' })
        );
    }

    #[test]
    fn x_elsewhere_is_not_a_digit() {
        assert_eq!(
            IdNumber::parse("1101051949123100X2", today()),
            Err(IdNumberError::NotADigit { position: 17 })
        );
    }

    #[test]
    fn impossible_and_future_dates_are_rejected() {
        let feb30 = IdNumber::generate("370302", NaiveDate::from_ymd_opt(2000, 2, 28).expect("d"), 11)
            .expect("gen")
            .as_str()
            .replace("20000228", "20000230");
        assert_eq!(IdNumber::parse(&feb30, today()), Err(IdNumberError::ImpossibleDate));
        let future = IdNumber::generate("370302", NaiveDate::from_ymd_opt(2027, 1, 1).expect("d"), 11).expect("gen");
        assert_eq!(IdNumber::parse(future.as_str(), today()), Err(IdNumberError::FutureDate));
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        assert_eq!(IdNumber::parse("12345", today()), Err(IdNumberError::Length(5)));
        assert_eq!(IdNumber::parse("", today()), Err(IdNumberError::Length(0)));
    }

    #[test]
    fn legacy_15_digit_numbers_upgrade() {
        // 15-digit form of 11010519491231002X.
        let id = IdNumber::parse("110105491231002", today()).expect("upgrade");
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(
            IdNumber::parse("11010549123100A", today()),
            Err(IdNumberError::NotADigit { position: 15 })
        );
        assert_eq!(IdNumber::parse("110105491331002", today()), Err(IdNumberError::ImpossibleDate));
    }

    #[test]
    fn generated_numbers_round_trip() {
        let birth = NaiveDate::from_ymd_opt(1988, 7, 4).expect("d");
        for seq in [1u16, 2, 500, 999] {
            let id = IdNumber::generate("370303", birth, seq).expect("gen");
            let parsed = IdNumber::parse(id.as_str(), today()).expect("valid");
            assert_eq!(parsed, id);
            assert_eq!(parsed.sequence(), seq);
            assert_eq!(parsed.sex(), if seq % 2 == 1 { Sex::Male } else { Sex::Female });
        }
        assert_eq!(IdNumber::generate("3703", birth, 1), Err(IdNumberError::CountyCode));
        assert_eq!(IdNumber::generate("370303", birth, 0), Err(IdNumberError::Sequence(0)));
    }

    #[test]
    fn display_and_debug_are_masked() {
        let id = IdNumber::parse("11010519491231002X", today()).expect("valid");
        assert_eq!(id.to_string(), "110105********002X");
        assert!(!format!("{id:?}").contains("19491231"));
    }
}
