//! Conversions between protobuf types and Rust domain types.

use chrono::{Datelike, NaiveDate};

use crate::common::{Address, Date, Sex};
use crate::residence::{PermitStatus, ResidencePermit};

impl Date {
    /// The calendar date, or `None` when unset (all zero) or impossible.
    pub fn to_naive(&self) -> Option<NaiveDate> {
        let month = u32::try_from(self.month).ok()?;
        let day = u32::try_from(self.day).ok()?;
        NaiveDate::from_ymd_opt(self.year, month, day)
    }

    /// The calendar date of an optional field (`None` when absent, unset or impossible).
    pub fn naive_of(value: &Option<Date>) -> Option<NaiveDate> {
        value.as_ref().and_then(Date::to_naive)
    }

    pub fn is_unset(&self) -> bool {
        self.year == 0 && self.month == 0 && self.day == 0
    }
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Date {
            year: d.year(),
            month: d.month() as i32,
            day: d.day() as i32,
        }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Address {
    /// The committee code of an optional address ("" when absent): index keys
    /// place records without an address first rather than failing an import.
    pub fn committee_of(address: &Option<Address>) -> &str {
        address.as_ref().map(|a| a.committee_code.as_str()).unwrap_or_default()
    }

    /// The street address of an optional address ("" when absent).
    pub fn detail_of(address: &Option<Address>) -> &str {
        address.as_ref().map(|a| a.detail.as_str()).unwrap_or_default()
    }
}

impl Sex {
    /// Sex from the ID number's parity digit convention (odd = male).
    pub fn from_sequence_parity(sequence: u16) -> Self {
        if sequence % 2 == 1 { Sex::Male } else { Sex::Female }
    }
}

/// A permit's validity on a day, decided in one place for every role: the
/// gateway's standing, the registry's settlement facts and the residence
/// role's own expiry.
impl ResidencePermit {
    /// The last day of its validity (`None` when unset or impossible).
    pub fn valid_until_day(&self) -> Option<NaiveDate> {
        Date::naive_of(&self.valid_until)
    }

    /// Valid on `on`: marked VALID and `on` not after its last day.
    pub fn is_valid_on(&self, on: NaiveDate) -> bool {
        self.status == PermitStatus::Valid as i32 && self.valid_until_day().is_some_and(|until| on <= until)
    }

    /// Lapsed by `on`: still marked VALID, but its validity ended before
    /// `on` (or it has none), which the residence role's expiry run will
    /// write as EXPIRED.
    pub fn is_lapsed_on(&self, on: NaiveDate) -> bool {
        self.status == PermitStatus::Valid as i32 && !self.is_valid_on(on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permit_is_valid_through_its_last_day_then_lapsed() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).expect("date");
        let permit = ResidencePermit {
            status: PermitStatus::Valid as i32,
            valid_until: Some(day(4).into()),
            ..Default::default()
        };
        assert!(permit.is_valid_on(day(4)) && !permit.is_lapsed_on(day(4)));
        assert!(!permit.is_valid_on(day(5)) && permit.is_lapsed_on(day(5)));
        let cancelled = ResidencePermit {
            status: PermitStatus::Cancelled as i32,
            ..permit.clone()
        };
        assert!(
            !cancelled.is_valid_on(day(4)) && !cancelled.is_lapsed_on(day(5)),
            "cancelled is neither"
        );
        let endless = ResidencePermit {
            valid_until: None,
            ..permit
        };
        assert!(
            !endless.is_valid_on(day(1)) && endless.is_lapsed_on(day(1)),
            "no validity is no valid permit"
        );
    }

    #[test]
    fn dates_convert_both_ways() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).expect("valid");
        let p = Date::from(d);
        assert_eq!(p.to_naive(), Some(d));
        assert_eq!(p.to_string(), "2024-02-29");
        assert_eq!(
            Date {
                year: 2023,
                month: 2,
                day: 29
            }
            .to_naive(),
            None
        );
        assert_eq!(Date::default().to_naive(), None);
        assert!(Date::default().is_unset());
        assert_eq!(
            Date {
                year: 2023,
                month: -1,
                day: 1
            }
            .to_naive(),
            None
        );
    }
}
