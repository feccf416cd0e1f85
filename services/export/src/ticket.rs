//! Flight tickets: JSON, so a pyarrow client can write one by hand
//! (`flight.Ticket(json.dumps({"dataset": "persons", "purpose": "..."}))`).
//!
//! ```json
//! {"dataset": "persons", "purpose": "POPULATION_ANALYSIS",
//!  "division": "370303", "since_seq": 1234, "level": "pseudonymised"}
//! ```
//!
//! `division` keeps rows whose place (registration address, permit address,
//! insured county …) lies under that division; `since_seq` keeps rows
//! changed after that snapshot sequence (a previous export's
//! `popbase.snapshot_seq`); `level` may ask for more de-identification than
//! the department is approved for, never less.

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
        let ticket: Ticket = serde_json::from_slice(bytes).map_err(|e| ServiceError::invalid("ticket", format!("not a ticket: {e}")))?;
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
        Ok(dataset)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The ticket a data-owning role gets: filters only.
    pub fn upstream(&self) -> Ticket {
        Ticket {
            dataset: self.dataset.clone(),
            division: self.division.clone(),
            since_seq: self.since_seq,
            ..Default::default()
        }
    }

    /// Whether `key` (a row's division code) passes the division filter.
    pub fn in_division(&self, code: &str) -> bool {
        code.starts_with(&self.division)
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
        let upstream = ticket.upstream();
        assert!(upstream.purpose.is_empty() && upstream.level.is_none());
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
    }
}
