//! Date helpers: ages and ISO dates as the protos carry them.

use chrono::{Datelike, NaiveDate};

/// Full years of age on `on` for someone born on `birth` (0 before the first birthday).
///
/// A person born on 29 February becomes a year older on 1 March in common years,
/// which is how Chinese registration offices count it.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    if on < birth {
        return 0;
    }
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// Parses a `YYYY-MM-DD` date, the one textual date format popbase accepts.
pub fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// The date `years` years after `date`, clamped to 28 February for a 29 February start.
pub fn add_years(date: NaiveDate, years: i32) -> NaiveDate {
    let year = date.year() + years;
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
        .unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    #[test]
    fn age_counts_completed_years() {
        assert_eq!(age_on(d(2000, 6, 15), d(2018, 6, 14)), 17);
        assert_eq!(age_on(d(2000, 6, 15), d(2018, 6, 15)), 18);
        assert_eq!(age_on(d(2000, 2, 29), d(2018, 2, 28)), 17);
        assert_eq!(age_on(d(2000, 2, 29), d(2018, 3, 1)), 18);
        assert_eq!(age_on(d(2020, 1, 1), d(2019, 1, 1)), 0);
    }

    #[test]
    fn iso_dates_parse_strictly() {
        assert_eq!(parse_iso_date("2024-02-29"), Some(d(2024, 2, 29)));
        assert_eq!(parse_iso_date("2023-02-29"), None);
        assert_eq!(parse_iso_date("2024-2-9"), None);
        assert_eq!(parse_iso_date(""), None);
    }

    #[test]
    fn add_years_clamps_leap_day() {
        assert_eq!(add_years(d(2020, 2, 29), 1), d(2021, 2, 28));
        assert_eq!(add_years(d(2020, 3, 1), 2), d(2022, 3, 1));
    }
}
