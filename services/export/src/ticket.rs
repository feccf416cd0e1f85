//! Flight tickets: JSON, so a pyarrow client can write one by hand
//! (`flight.Ticket(json.dumps({"dataset": "persons", "purpose": "..."}))`).
//!
//! ```json
//! {"dataset": "persons", "purpose": "POPULATION_ANALYSIS",
//!  "division": "370303", "since_seq": 1234, "level": "pseudonymised",
//!  "columns": ["id_number", "sex", "birth_date", "committee_code"]}
//! ```
//!
//! `division` keeps rows whose place (registration address, permit address,
//! insured county …) lies under that division; `since_seq` keeps rows
//! changed after that snapshot sequence (a previous export's
//! `popbase.snapshot_seq`); `level` may ask for more de-identification than
//! the department is approved for, never less. `columns` picks columns of
//! the dataset by their names in it (as the catalogue's approvals list
//! them: `id_number`, `birth_date`), each of which the department must be
//! approved for; empty means every approved column. The owning role builds
//! only the columns an export releases, so a narrow export is also a
//! cheaper one.

use popbase_common::{ServiceError, ServiceResult, validate};
use serde::{Deserialize, Serialize};

use crate::dataset::{self, Dataset};
use crate::deidentify::Level;

/// Longest ticket accepted (a real one is under 200 bytes).
const MAX_TICKET_BYTES: usize = 4096;
const MAX_PURPOSE_CHARS: usize = 64;

/// A purpose code (empty allowed: filled in from the approval later): it
/// ends up in audit records, so it is short and plain.
pub fn check_purpose(field: &str, purpose: &str) -> ServiceResult<()> {
    if purpose.chars().count() > MAX_PURPOSE_CHARS || !purpose.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ServiceError::invalid(
            field,
            format!("a purpose code of at most {MAX_PURPOSE_CHARS} letters, digits or '_'"),
        ));
    }
    Ok(())
}

/// Column names are short identifiers, each named once; a dataset has
/// a few dozen columns at most. A malformed name is refused by its
/// position, not echoed: it may be anything, an ID number included.
fn check_columns(columns: &[String]) -> ServiceResult<()> {
    const MAX_COLUMNS: usize = 256;
    const MAX_NAME_CHARS: usize = 64;
    if columns.len() > MAX_COLUMNS {
        return Err(ServiceError::invalid("ticket.columns", format!("more than {MAX_COLUMNS} columns")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (position, name) in columns.iter().enumerate() {
        let well_formed = name.len() <= MAX_NAME_CHARS
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(ServiceError::invalid(
                "ticket.columns",
                format!(
                    "entry {position} is not a column name (a lower-case letter, then letters, digits and '_', at most {MAX_NAME_CHARS})"
                ),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(ServiceError::invalid(
                "ticket.columns",
                format!("entry {position} names a column an earlier entry named"),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    pub dataset: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub purpose: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub division: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

impl Ticket {
    pub fn for_dataset(name: &str) -> Self {
        Self {
            dataset: name.to_string(),
            ..Default::default()
        }
    }

    /// Parses and checks a ticket (or a Flight descriptor's command).
    pub fn parse(bytes: &[u8]) -> ServiceResult<(Ticket, &'static Dataset)> {
        if bytes.len() > MAX_TICKET_BYTES {
            return Err(ServiceError::invalid("ticket", format!("longer than {MAX_TICKET_BYTES} bytes")));
        }
        let ticket: Ticket = serde_json::from_slice(bytes)
            .map_err(|e| ServiceError::invalid("ticket", format!("not a ticket: {}", popbase_common::validate::json_problem(&e))))?;
        let dataset = ticket.check()?;
        Ok((ticket, dataset))
    }

    /// The dataset named, with the filters checked against it.
    pub fn check(&self) -> ServiceResult<&'static Dataset> {
        let dataset = dataset::find(&self.dataset).ok_or_else(|| {
            let names: Vec<&str> = dataset::DATASETS.iter().map(|d| d.name).collect();
            ServiceError::invalid("ticket.dataset", format!("unknown dataset; one of {}", names.join(", ")))
        })?;
        if !self.division.is_empty() {
            if !dataset.by_division {
                return Err(ServiceError::invalid(
                    "ticket.division",
                    format!("{} rows carry no place; export the dataset whole", dataset.name),
                ));
            }
            validate::division_prefix("ticket.division", &self.division)?;
        }
        if self.since_seq.is_some() && !dataset.incremental {
            return Err(ServiceError::invalid(
                "ticket.since_seq",
                format!("{} is computed afresh; it has no changes to follow", dataset.name),
            ));
        }
        check_purpose("ticket.purpose", &self.purpose)?;
        check_columns(&self.columns)?;
        Ok(dataset)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The ticket a data-owning role gets: filters, and the columns of
    /// the dataset to build (`columns`, empty for all of them).
    pub fn upstream(&self, columns: Vec<String>) -> Ticket {
        Ticket {
            dataset: self.dataset.clone(),
            division: self.division.clone(),
            since_seq: self.since_seq,
            columns,
            ..Default::default()
        }
    }

    /// Whether `key` (a row's division code) passes the division filter.
    /// A whole-city ticket answers without comparing: `starts_with("")`
    /// still made a `bcmp` call per row, 2.5 % of a full export.
    pub fn in_division(&self, code: &str) -> bool {
        self.division.is_empty() || code.starts_with(&self.division)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: ServiceResult<(Ticket, &'static Dataset)>) -> String {
        match result {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn good_tickets_round_trip() {
        let text = br#"{"dataset":"persons","purpose":"POPULATION_ANALYSIS","division":"370303","since_seq":7,"level":"pseudonymised"}"#;
        let (ticket, dataset) = Ticket::parse(text).expect("valid");
        assert_eq!(dataset.name, "persons");
        assert_eq!(ticket.since_seq, Some(7));
        assert_eq!(ticket.level, Some(Level::Pseudonymised));
        assert_eq!(Ticket::parse(&ticket.to_bytes()).expect("again").0, ticket);
        assert!(ticket.in_division("370303001001") && !ticket.in_division("370302001001"));
        let upstream = ticket.upstream(vec!["sex".into()]);
        assert!(upstream.purpose.is_empty() && upstream.level.is_none());
        assert_eq!(upstream.columns, ["sex"]);
        let narrow = br#"{"dataset":"persons","columns":["id_number","birth_date"]}"#;
        assert_eq!(Ticket::parse(narrow).expect("valid").0.columns, ["id_number", "birth_date"]);
    }

    #[test]
    fn bad_tickets_name_the_field() {
        assert_eq!(field_of(Ticket::parse(b"persons")), "ticket");
        assert_eq!(field_of(Ticket::parse(br#"{"dataset":"persons","extra":1}"#)), "ticket");
        assert_eq!(field_of(Ticket::parse(br#"{"dataset":"biometrics"}"#)), "ticket.dataset");
        assert_eq!(
            field_of(Ticket::parse(br#"{"dataset":"persons","division":"37x3"}"#)),
            "ticket.division"
        );
        assert_eq!(
            field_of(Ticket::parse(br#"{"dataset":"persons","division":"999999"}"#)),
            "ticket.division"
        );
        assert_eq!(
            field_of(Ticket::parse(br#"{"dataset":"pensions","division":"3703"}"#)),
            "ticket.division"
        );
        assert_eq!(
            field_of(Ticket::parse(br#"{"dataset":"persons","purpose":"a b"}"#)),
            "ticket.purpose"
        );
        assert_eq!(
            field_of(Ticket::parse(br#"{"dataset":"statistics","since_seq":3}"#)),
            "ticket.since_seq"
        );
        assert_eq!(field_of(Ticket::parse(br#"{"dataset":"persons","level":"raw"}"#)), "ticket");
        assert_eq!(field_of(Ticket::parse(&vec![b' '; 5000])), "ticket");
        assert_eq!(
            field_of(Ticket::parse(br#"{"dataset":"persons","columns":["sex","sex"]}"#)),
            "ticket.columns"
        );
        assert_eq!(
            field_of(Ticket::parse(br#"{"dataset":"persons","columns":["Sex; drop"]}"#)),
            "ticket.columns"
        );
        assert_eq!(
            field_of(Ticket::parse(br#"{"dataset":"persons","columns":[""]}"#)),
            "ticket.columns"
        );
        match Ticket::parse(br#"{"dataset":"persons","columns":["sex","370302199001011232"]}"#) {
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains("entry 1") && !message.contains("370302"), "{message}");
            }
            Ok(_) => panic!("an ID number taken for a column name"),
        }
    }
}
