//! Edge validation: every request field is checked here before any work, and
//! a refusal names the field path and the reason (`InvalidArgument`).

use chrono::NaiveDate;
use popbase_domain::{Division, DivisionLevel, Divisions, IdNumber};
use popbase_proto::common::{Address, Date, PageRequest};

use crate::{ServiceError, ServiceResult};

/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Page size when the caller leaves it at 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// A required ID number (GB 11643), `today` bounding the birth date.
pub fn id_number(field: &str, value: &str, today: NaiveDate) -> ServiceResult<IdNumber> {
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    IdNumber::parse(value, today).map_err(|e| ServiceError::invalid(field, e))
}

/// The proto sex encoded in a validated ID number (odd 17th digit: male).
pub fn sex_of(id: &IdNumber) -> popbase_proto::common::Sex {
    match id.sex() {
        popbase_domain::Sex::Male => popbase_proto::common::Sex::Male,
        popbase_domain::Sex::Female => popbase_proto::common::Sex::Female,
    }
}

/// A required division code of the given level that exists in the NBS list.
pub fn division<'a>(field: &str, code: &str, level: DivisionLevel) -> ServiceResult<&'a Division> {
    if code.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    Divisions::embedded()
        .require(code, level)
        .map_err(|e| ServiceError::invalid(field, e))
}

/// A division code of any level (2, 4, 6, 9 or 12 digits) that exists: used
/// for "everything under this division" filters.
pub fn division_prefix<'a>(field: &str, code: &str) -> ServiceResult<&'a Division> {
    let level = DivisionLevel::from_code_len(code.len())
        .filter(|_| code.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| ServiceError::invalid(field, "must be a division code of 2, 4, 6, 9 or 12 digits"))?;
    division(field, code, level)
}

/// A required address: a known committee code and a non-empty, bounded detail.
pub fn address<'a>(field: &str, value: Option<&Address>) -> ServiceResult<&'a Division> {
    let address = value.ok_or_else(|| ServiceError::invalid(field, "is required"))?;
    let committee = division(
        &format!("{field}.committee_code"),
        &address.committee_code,
        DivisionLevel::Committee,
    )?;
    text(&format!("{field}.detail"), &address.detail, 1, 200)?;
    Ok(committee)
}

/// A required calendar date, not after `latest` when given.
pub fn date(field: &str, value: Option<&Date>, latest: Option<NaiveDate>) -> ServiceResult<NaiveDate> {
    let value = value
        .filter(|d| !d.is_unset())
        .ok_or_else(|| ServiceError::invalid(field, "is required"))?;
    let parsed = value
        .to_naive()
        .ok_or_else(|| ServiceError::invalid(field, format!("{value} is not a calendar date")))?;
    if let Some(latest) = latest
        && parsed > latest
    {
        return Err(ServiceError::invalid(field, format!("{value} lies in the future")));
    }
    Ok(parsed)
}

/// An optional date: `None` when unset, an error when set but impossible.
pub fn optional_date(field: &str, value: Option<&Date>) -> ServiceResult<Option<NaiveDate>> {
    match value.filter(|d| !d.is_unset()) {
        None => Ok(None),
        Some(d) => d
            .to_naive()
            .map(Some)
            .ok_or_else(|| ServiceError::invalid(field, format!("{d} is not a calendar date"))),
    }
}

/// A protobuf enum field: known value and not `UNSPECIFIED` (0).
pub fn enumeration<E: TryFrom<i32>>(field: &str, value: i32) -> ServiceResult<E> {
    if value == 0 {
        return Err(ServiceError::invalid(field, "must be set (UNSPECIFIED is not allowed)"));
    }
    E::try_from(value).map_err(|_| ServiceError::invalid(field, format!("unknown value {value}")))
}

/// Most ID numbers one batch look-up (`CheckPersons`, `GetPersons`,
/// `CheckResidents`, `CheckInsurance`) takes.
pub const MAX_BATCH_IDS: usize = 10_000;

/// A batch of ID numbers within [`MAX_BATCH_IDS`].
pub fn id_batch(field: &str, ids: &[String]) -> ServiceResult<()> {
    if ids.len() > MAX_BATCH_IDS {
        return Err(ServiceError::invalid(field, format!("at most {MAX_BATCH_IDS} per call")));
    }
    Ok(())
}

/// A text field with a length bound in characters.
pub fn text<'t>(field: &str, value: &'t str, min_chars: usize, max_chars: usize) -> ServiceResult<&'t str> {
    let n = value.chars().count();
    if n < min_chars {
        return Err(ServiceError::invalid(
            field,
            if min_chars == 1 {
                "is required".to_string()
            } else {
                format!("needs at least {min_chars} characters")
            },
        ));
    }
    if n > max_chars {
        return Err(ServiceError::invalid(field, format!("is longer than {max_chars} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ServiceError::invalid(field, "contains control characters"));
    }
    Ok(value)
}

/// Page size (defaulted, bounded) and the opaque cursor.
pub fn page(field: &str, value: Option<&PageRequest>) -> ServiceResult<(usize, Option<Vec<u8>>)> {
    let page = value.cloned().unwrap_or_default();
    let size = match page.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            return Err(ServiceError::invalid(
                format!("{field}.page_size"),
                format!("must be at most {MAX_PAGE_SIZE}"),
            ));
        }
        n => n,
    };
    let token = if page.page_token.is_empty() {
        None
    } else {
        Some(
            decode_page_token(&page.page_token)
                .ok_or_else(|| ServiceError::invalid(format!("{field}.page_token"), "is not a token this server issued"))?,
        )
    };
    Ok((size as usize, token))
}

/// Page tokens are the last key of the previous page, hex-encoded.
pub fn encode_page_token(last_key: &[u8]) -> String {
    last_key.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_page_token(token: &str) -> Option<Vec<u8>> {
    if !token.len().is_multiple_of(2) || token.len() > 1024 {
        return None;
    }
    (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Where and how caller-sent JSON failed to parse, without serde's message:
/// that one quotes the offending value, which is the caller's text.
pub fn json_problem(e: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::household::Relationship;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).expect("valid")
    }

    fn field_of(err: ServiceError) -> String {
        match err {
            ServiceError::InvalidArgument { field, .. } => field,
            other => panic!("expected InvalidArgument, got {other}"),
        }
    }

    #[test]
    fn id_numbers_are_checked_with_field_names() {
        assert!(id_number("person.id_number", "11010519491231002X", today()).is_ok());
        let err = id_number("person.id_number", "110105194912310021", today()).expect_err("bad check digit");
        assert!(err.to_string().contains("check digit"), "{err}");
        assert!(!err.to_string().contains("110105194912310021"), "no clear ID in errors");
        assert_eq!(field_of(err), "person.id_number");
        assert_eq!(field_of(id_number("x", "", today()).expect_err("empty")), "x");
    }

    #[test]
    fn addresses_need_a_known_committee() {
        let good = Address {
            committee_code: "370302001001".into(),
            detail: "某路1号".into(),
        };
        assert!(address("address", Some(&good)).is_ok());
        let unknown = Address {
            committee_code: "370302999999".into(),
            detail: "x".into(),
        };
        assert_eq!(
            field_of(address("address", Some(&unknown)).expect_err("unknown")),
            "address.committee_code"
        );
        let no_detail = Address {
            committee_code: "370302001001".into(),
            detail: String::new(),
        };
        assert_eq!(field_of(address("address", Some(&no_detail)).expect_err("empty")), "address.detail");
        assert_eq!(field_of(address("address", None).expect_err("missing")), "address");
        assert!(division_prefix("division", "3703").is_ok());
        assert!(division_prefix("division", "37030").is_err());
    }

    #[test]
    fn dates_and_enums() {
        let feb30 = Date {
            year: 2020,
            month: 2,
            day: 30,
        };
        assert_eq!(
            field_of(date("birth_date", Some(&feb30), None).expect_err("impossible")),
            "birth_date"
        );
        let future = Date {
            year: 2030,
            month: 1,
            day: 1,
        };
        assert!(date("d", Some(&future), Some(today())).is_err());
        assert!(date("d", Some(&future), None).is_ok());
        assert_eq!(optional_date("d", Some(&Date::default())).expect("unset is fine"), None);
        assert!(enumeration::<Relationship>("relationship", 1).is_ok());
        assert!(enumeration::<Relationship>("relationship", 0).is_err());
        assert!(enumeration::<Relationship>("relationship", 999).is_err());
    }

    #[test]
    fn pages_default_bound_and_round_trip() {
        assert_eq!(page("page", None).expect("default"), (100, None));
        let too_big = PageRequest {
            page_size: 5000,
            page_token: String::new(),
        };
        assert_eq!(field_of(page("page", Some(&too_big)).expect_err("too big")), "page.page_size");
        let token = encode_page_token(&[0, 1, 0xab]);
        let req = PageRequest {
            page_size: 10,
            page_token: token,
        };
        assert_eq!(page("page", Some(&req)).expect("ok"), (10, Some(vec![0, 1, 0xab])));
        let bad = PageRequest {
            page_size: 10,
            page_token: "zz".into(),
        };
        assert_eq!(field_of(page("page", Some(&bad)).expect_err("bad")), "page.page_token");
        assert!(text("name", "张三", 1, 50).is_ok());
        assert!(text("name", "a\u{0}b", 1, 50).is_err());
    }
}
