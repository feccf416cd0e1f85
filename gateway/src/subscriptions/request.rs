//! What a department may ask of a subscription, checked before anything
//! is authorised: known kinds and fields, a division of the city or a
//! roster, valid ID numbers (their checksum, GB 11643) within the bounds.

use std::collections::BTreeSet;

use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_proto::gateway::create_subscription_request::Scope;
use popbase_proto::gateway::{CreateSubscriptionRequest, UpdateRosterRequest};

use super::{FIELDS, MAX_ROSTER_CHANGES, kind_name};

/// Most entries of a request's `kinds` or `fields` (each names one of a
/// dozen, so more are repeats).
pub const MAX_LISTED: usize = 32;

/// A checked CreateSubscription: the catalogue names it needs approved.
#[derive(Debug)]
pub struct Wanted {
    pub kinds: Vec<i32>,
    pub division_code: String,
    pub roster: bool,
    pub fields: Vec<String>,
    /// Kind names and fields, as the catalogue's approval must list them.
    pub needs: Vec<&'static str>,
}

/// Checks a CreateSubscription against the city the catalogue serves.
pub fn wanted(request: &CreateSubscriptionRequest, city: &str) -> ServiceResult<Wanted> {
    if request.kinds.is_empty() {
        return Err(ServiceError::invalid("kinds", "name at least one change kind"));
    }
    if request.kinds.len() > MAX_LISTED {
        return Err(ServiceError::invalid("kinds", format!("at most {MAX_LISTED} entries")));
    }
    if request.fields.len() > MAX_LISTED {
        return Err(ServiceError::invalid("fields", format!("at most {MAX_LISTED} entries")));
    }
    let mut kinds = BTreeSet::new();
    let mut needs = Vec::new();
    for (i, kind) in request.kinds.iter().enumerate() {
        let name = kind_name(*kind).ok_or_else(|| ServiceError::invalid("kinds", "is not a change kind").at_entry(i))?;
        if kinds.insert(*kind) {
            needs.push(name);
        }
    }
    let (division_code, roster) = match &request.scope {
        None => return Err(ServiceError::invalid("scope", "name a division_code or roster = true")),
        Some(Scope::Roster(false)) => return Err(ServiceError::invalid("roster", "must be true for a roster scope")),
        Some(Scope::Roster(true)) => (String::new(), true),
        Some(Scope::DivisionCode(code)) => {
            validate::division_prefix("division_code", code)?;
            if !code.starts_with(city) && !city.starts_with(code.as_str()) {
                return Err(ServiceError::invalid("division_code", "lies outside the city the platform serves"));
            }
            (code.clone(), false)
        }
    };
    let mut fields = Vec::new();
    for (i, field) in request.fields.iter().enumerate() {
        let Some(known) = FIELDS.iter().find(|f| **f == field.as_str()) else {
            return Err(ServiceError::invalid("fields", format!("is not one of {}", FIELDS.join(", "))).at_entry(i));
        };
        if !fields.iter().any(|f| f == known) {
            fields.push(known.to_string());
            needs.push(*known);
        }
    }
    Ok(Wanted {
        kinds: kinds.into_iter().collect(),
        division_code,
        roster,
        fields,
        needs,
    })
}

/// The ID numbers of an UpdateRoster, checked: (added, removed).
pub fn roster_ids(request: &UpdateRosterRequest, today: chrono::NaiveDate) -> ServiceResult<(Vec<String>, Vec<String>)> {
    let mut out = [Vec::new(), Vec::new()];
    for (slot, (field, ids)) in out.iter_mut().zip([
        ("add_id_numbers", &request.add_id_numbers),
        ("remove_id_numbers", &request.remove_id_numbers),
    ]) {
        if ids.len() > MAX_ROSTER_CHANGES {
            return Err(ServiceError::invalid(field, format!("at most {MAX_ROSTER_CHANGES} per call")));
        }
        for (i, id) in ids.iter().enumerate() {
            let valid = validate::id_number(field, id, today).map_err(|e| e.at_entry(i))?;
            slot.push(valid.as_str().to_string());
        }
    }
    let [added, removed] = out;
    if added.is_empty() && removed.is_empty() {
        return Err(ServiceError::invalid("add_id_numbers", "name at least one person to add or remove"));
    }
    Ok((added, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::gateway::ChangeKind;

    fn request(kinds: Vec<i32>, scope: Option<Scope>, fields: &[&str]) -> CreateSubscriptionRequest {
        CreateSubscriptionRequest {
            purpose: "PENSION_ELIGIBILITY".into(),
            kinds,
            scope,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    fn field_of(error: ServiceError) -> String {
        match error {
            ServiceError::InvalidArgument { field, .. } => field,
            other => panic!("not invalid: {other}"),
        }
    }

    #[test]
    fn a_roster_subscription_needs_its_kinds_and_fields_approved() {
        let death = ChangeKind::Death as i32;
        let wanted = wanted(
            &request(vec![death, death], Some(Scope::Roster(true)), &["id_number", "occurred_on"]),
            "3703",
        )
        .expect("valid");
        assert!(wanted.roster);
        assert_eq!(wanted.needs, vec!["death", "id_number", "occurred_on"]);
    }

    #[test]
    fn bad_requests_name_their_field() {
        let death = vec![ChangeKind::Death as i32];
        let county = || Some(Scope::DivisionCode("370302".into()));
        assert_eq!(field_of(wanted(&request(vec![], county(), &[]), "3703").unwrap_err()), "kinds");
        assert_eq!(
            field_of(wanted(&request(vec![0, 99], county(), &[]), "3703").unwrap_err()),
            "kinds[0]"
        );
        assert_eq!(field_of(wanted(&request(death.clone(), None, &[]), "3703").unwrap_err()), "scope");
        let elsewhere = Some(Scope::DivisionCode("370102".into()));
        assert_eq!(
            field_of(wanted(&request(death.clone(), elsewhere, &[]), "3703").unwrap_err()),
            "division_code"
        );
        let bad = Some(Scope::DivisionCode("37x".into()));
        assert_eq!(
            field_of(wanted(&request(death.clone(), bad, &[]), "3703").unwrap_err()),
            "division_code"
        );
        assert_eq!(
            field_of(wanted(&request(death, county(), &["name"]), "3703").unwrap_err()),
            "fields[0]"
        );
    }

    #[test]
    fn roster_ids_are_checked_and_bounded() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).expect("date");
        let good = "11010519491231002X".to_string();
        let update = |add: Vec<String>| UpdateRosterRequest {
            subscription_id: String::new(),
            add_id_numbers: add,
            remove_id_numbers: vec![],
        };
        assert_eq!(roster_ids(&update(vec![good.clone()]), today).expect("valid").0, vec![good.clone()]);
        let wrong = "110105194912310021".to_string();
        assert_eq!(
            field_of(roster_ids(&update(vec![good.clone(), wrong]), today).unwrap_err()),
            "add_id_numbers[1]"
        );
        let many = vec![good; MAX_ROSTER_CHANGES + 1];
        assert_eq!(field_of(roster_ids(&update(many), today).unwrap_err()), "add_id_numbers");
        assert_eq!(field_of(roster_ids(&update(vec![]), today).unwrap_err()), "add_id_numbers");
    }

    #[test]
    fn every_kind_has_a_catalogue_name() {
        let last = ChangeKind::InsuranceStatus as i32;
        assert!((1..=last).all(|kind| kind_name(kind).is_some()));
        assert_eq!(kind_name(ChangeKind::Unspecified as i32), None);
    }
}
