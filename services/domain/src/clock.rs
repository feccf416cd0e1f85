//! The city's clock. Every day the platform reasons about (consent validity,
//! quota days, ages, permit validity, usage statistics, the day an event
//! took effect) is a day of the city's calendar, not a UTC day: in Zibo the
//! day starts at 16:00 UTC, so a consent valid until 4 December ends at the
//! city's midnight, 16:00 UTC on the 4th, not eight hours later.
//!
//! The zone is set once per process from config (`city_time_zone`,
//! default `Asia/Shanghai`). China has kept UTC+8 without daylight saving
//! since 1991, so a zone is a fixed offset here: the Chinese zone names
//! (`Asia/Shanghai`, `Asia/Chongqing`, `Asia/Harbin`, `PRC`), `Asia/Urumqi`
//! (UTC+6), `UTC`, or an offset `+08:00`. Other IANA names would need the
//! tz database, which nothing else here needs.

use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use thiserror::Error;

/// The zone every popbase process uses unless configured otherwise.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

const EIGHT_HOURS: i32 = 8 * 3600;

static CITY_OFFSET: OnceLock<FixedOffset> = OnceLock::new();

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ClockError {
    #[error("time zone {0:?}: name a Chinese zone (Asia/Shanghai), UTC, or an offset like +08:00")]
    UnknownZone(String),
    #[error("the city's time zone is already set to {0}; it is set once, at start")]
    AlreadySet(FixedOffset),
}

/// The offset of a zone name or `±HH:MM`.
pub fn parse_zone(zone: &str) -> Result<FixedOffset, ClockError> {
    let unknown = || ClockError::UnknownZone(zone.chars().take(40).collect());
    let seconds = match zone {
        "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Chungking" | "Asia/Harbin" | "PRC" => EIGHT_HOURS,
        "Asia/Urumqi" => 6 * 3600,
        "UTC" | "Etc/UTC" | "Z" => 0,
        _ => {
            let bytes = zone.as_bytes();
            let well_formed = bytes.len() == 6
                && matches!(bytes[0], b'+' | b'-')
                && bytes[3] == b':'
                && [1, 2, 4, 5].iter().all(|&i| bytes[i].is_ascii_digit());
            if !well_formed {
                return Err(unknown());
            }
            let number = |range: std::ops::Range<usize>| zone[range].parse::<i32>().map_err(|_| unknown());
            let (hours, minutes) = (number(1..3)?, number(4..6)?);
            if hours > 14 || minutes > 59 {
                return Err(unknown());
            }
            let seconds = hours * 3600 + minutes * 60;
            if bytes[0] == b'-' { -seconds } else { seconds }
        }
    };
    FixedOffset::east_opt(seconds).ok_or_else(unknown)
}

/// Sets the city's zone for this process (at start, from config).
/// Setting the zone it already has is fine; another is an error.
pub fn set_time_zone(zone: &str) -> Result<(), ClockError> {
    let offset = parse_zone(zone)?;
    let set = *CITY_OFFSET.get_or_init(|| offset);
    if set == offset { Ok(()) } else { Err(ClockError::AlreadySet(set)) }
}

/// The city's offset from UTC (UTC+8 unless configured).
pub fn city_offset() -> FixedOffset {
    *CITY_OFFSET.get_or_init(|| FixedOffset::east_opt(EIGHT_HOURS).expect("UTC+8 is an offset"))
}

/// The city's calendar day at the instant `at`.
pub fn city_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&city_offset()).date_naive()
}

/// Today in the city.
pub fn today() -> NaiveDate {
    city_day(Utc::now())
}

/// The last millisecond of the city day `day`, since the Unix epoch (a
/// record "as of" that day is one true at that instant).
pub fn day_end_millis(day: NaiveDate) -> i64 {
    let next = day.succ_opt().unwrap_or(NaiveDate::MAX);
    next.and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(city_offset()).single())
        .map_or(i64::MAX, |midnight| midnight.timestamp_millis() - 1)
}

/// The first instant of the city day after the one `at` falls in: when a
/// daily task (permit expiry) runs next.
pub fn next_midnight_after(at: DateTime<Utc>) -> DateTime<Utc> {
    let offset = city_offset();
    let next_day = city_day(at).succ_opt().unwrap_or(NaiveDate::MAX);
    next_day
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(offset).single())
        .map_or(at, |midnight| midnight.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn the_city_day_turns_at_the_city_midnight_not_utc_midnight() {
        let before = Utc.with_ymd_and_hms(2026, 12, 3, 15, 59, 59).single().expect("instant");
        let after = Utc.with_ymd_and_hms(2026, 12, 3, 16, 0, 0).single().expect("instant");
        let d = |day| NaiveDate::from_ymd_opt(2026, 12, day).expect("date");
        assert_eq!(city_day(before), d(3), "23:59:59 in Zibo");
        assert_eq!(city_day(after), d(4), "00:00 in Zibo, still the 3rd in UTC");
        assert_eq!(after.date_naive(), d(3));
        let new_year = Utc.with_ymd_and_hms(2026, 12, 31, 16, 0, 0).single().expect("instant");
        assert_eq!(city_day(new_year), NaiveDate::from_ymd_opt(2027, 1, 1).expect("date"));
    }

    #[test]
    fn the_next_midnight_is_the_city_midnight() {
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 12, 3, h, m, s).single().expect("instant");
        let zibo_midnight = at(16, 0, 0);
        assert_eq!(next_midnight_after(at(15, 59, 59)), zibo_midnight, "23:59:59 in Zibo");
        assert_eq!(next_midnight_after(at(1, 0, 0)), zibo_midnight, "09:00 in Zibo");
        let exactly = next_midnight_after(zibo_midnight);
        assert_eq!(exactly, zibo_midnight + chrono::Duration::days(1), "at midnight, the next one");
        assert_eq!(next_midnight_after(at(23, 59, 59)), zibo_midnight + chrono::Duration::days(1));
    }

    #[test]
    fn a_day_ends_at_the_city_midnight() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 3).expect("date");
        let midnight = Utc.with_ymd_and_hms(2026, 12, 3, 16, 0, 0).single().expect("instant");
        assert_eq!(day_end_millis(day), midnight.timestamp_millis() - 1);
        assert_eq!(
            city_day(Utc.timestamp_millis_opt(day_end_millis(day)).single().expect("instant")),
            day
        );
    }

    #[test]
    fn zones_are_the_chinese_names_utc_or_offsets() {
        assert_eq!(parse_zone("Asia/Shanghai"), Ok(FixedOffset::east_opt(8 * 3600).expect("offset")));
        assert_eq!(parse_zone("Asia/Urumqi"), Ok(FixedOffset::east_opt(6 * 3600).expect("offset")));
        assert_eq!(parse_zone("UTC"), Ok(FixedOffset::east_opt(0).expect("offset")));
        assert_eq!(parse_zone("-05:30"), Ok(FixedOffset::west_opt(5 * 3600 + 1800).expect("offset")));
        for bad in ["Europe/Paris", "+8", "+08:60", "+15:00", "", "+0a:00", "+08:00x"] {
            assert!(parse_zone(bad).is_err(), "{bad}");
        }
        assert_eq!(set_time_zone(DEFAULT_TIME_ZONE), Ok(()), "the default, set again");
        assert!(matches!(set_time_zone("UTC"), Err(ClockError::AlreadySet(_))));
    }
}
