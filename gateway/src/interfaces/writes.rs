//! Departments' writes (SubmitLifeEvent, SubmitFeed): what kind each event
//! or record is (the catalogue approves kinds per department), whom it is
//! about (the audit record's subjects), who recorded it (the actor the
//! owning service keeps), and what the owning service's refusal means.

use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::feeds::FeedRecord;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::gateway::life_event_submission::Event;
use popbase_proto::gateway::residence_submission::Event as ResidenceEvent;

/// Longest officer id accepted.
pub const MAX_OFFICER_CHARS: usize = 48;

/// Records in one `FeedSubmission` message, and in one chunk the gateway
/// authorises and audits at a time.
pub const MAX_RECORDS_PER_MESSAGE: usize = 1024;

/// The metadata key carrying the actor of a forwarded feed: the feeds
/// service records it in its change log (only the gateway's mesh identity
/// may call Ingest, so only the gateway sets it).
pub use popbase_common::actor::ACTOR_METADATA_KEY;

/// An officer or operator id: 1-48 of `[A-Za-z0-9._-]`, never free text.
pub fn officer(field: &str, officer_id: &str) -> ServiceResult<()> {
    if officer_id.is_empty() {
        return Err(ServiceError::invalid(
            field,
            "name the officer or operator (1-48 of A-Z a-z 0-9 . _ -)",
        ));
    }
    if officer_id.len() > MAX_OFFICER_CHARS
        || !officer_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(ServiceError::invalid(field, "must be 1-48 of A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

/// The actor a write is recorded under: the authenticated department and
/// the validated officer.
pub fn actor(department: &str, officer_id: &str) -> String {
    format!("{department}:{officer_id}")
}

/// The catalogue field naming an event's kind (SubmitLifeEvent's fields).
pub fn event_kind(event: &Event) -> &'static str {
    match event {
        Event::Birth(_) => "birth",
        Event::Death(_) => "death",
        Event::SettleMoveIn(_) => "settle_move_in",
        Event::MoveOut(_) => "move_out",
        Event::TransferWithinCity(_) => "transfer_within_city",
        Event::MoveBetweenHouseholds(_) => "move_between_households",
        Event::CollectiveHousehold(_) => "collective_household",
        Event::ChangeHead(_) => "change_head",
        Event::ChangeAddress(_) => "change_address",
        Event::FamilyBook(_) => "family_book",
    }
}

/// The ID numbers an event names (its audit subjects).
pub fn event_subjects(event: &Event) -> Vec<String> {
    let ids: Vec<&str> = match event {
        Event::Birth(e) => vec![&e.mother_id_number, &e.father_id_number],
        Event::Death(e) => vec![&e.id_number],
        Event::SettleMoveIn(e) => e.application.iter().map(|a| a.applicant_id_number.as_str()).collect(),
        Event::MoveOut(e) => vec![&e.id_number],
        Event::TransferWithinCity(e) | Event::MoveBetweenHouseholds(e) => vec![&e.id_number],
        Event::CollectiveHousehold(_) | Event::ChangeAddress(_) => Vec::new(),
        Event::ChangeHead(e) => vec![&e.new_head_id_number],
        Event::FamilyBook(e) => e.member_id_numbers.iter().map(String::as_str).collect(),
    };
    ids.into_iter().filter(|id| !id.is_empty()).map(str::to_string).collect()
}

/// The catalogue field naming a residence event's kind (SubmitResidence's fields).
pub fn residence_kind(event: &ResidenceEvent) -> &'static str {
    match event {
        ResidenceEvent::RegisterResidence(_) => "register_residence",
        ResidenceEvent::ApplyForPermit(_) => "apply_for_permit",
        ResidenceEvent::EndorsePermit(_) => "endorse_permit",
        ResidenceEvent::CancelPermit(_) => "cancel_permit",
    }
}

/// The ID numbers a residence event names (a permit number names none).
pub fn residence_subjects(event: &ResidenceEvent) -> Vec<String> {
    let ids: Vec<&str> = match event {
        ResidenceEvent::RegisterResidence(e) => e
            .registration
            .iter()
            .flat_map(|r| [r.id_number.as_str(), r.accompanies_id_number.as_str()])
            .collect(),
        ResidenceEvent::ApplyForPermit(e) => vec![&e.id_number],
        ResidenceEvent::EndorsePermit(_) | ResidenceEvent::CancelPermit(_) => Vec::new(),
    };
    ids.into_iter().filter(|id| !id.is_empty()).map(str::to_string).collect()
}

/// Most entries of an event's repeated fields (family book members,
/// relationships set with a new head).
pub const MAX_EVENT_ENTRIES: usize = 64;

/// Bounds on an event's repeated fields.
pub fn event_bounds(event: &Event) -> ServiceResult<()> {
    let (field, entries) = match event {
        Event::FamilyBook(e) => ("family_book.member_id_numbers", e.member_id_numbers.len()),
        Event::ChangeHead(e) => ("change_head.relationships", e.relationships.len()),
        _ => return Ok(()),
    };
    if entries > MAX_EVENT_ENTRIES {
        return Err(ServiceError::invalid(field, format!("at most {MAX_EVENT_ENTRIES} entries")));
    }
    Ok(())
}

/// Sets the event's actor, replacing anything the caller sent.
pub fn set_actor(event: &mut Event, actor: &str) {
    let context = match event {
        Event::Birth(e) => &mut e.context,
        Event::Death(e) => &mut e.context,
        Event::SettleMoveIn(e) => &mut e.context,
        Event::MoveOut(e) => &mut e.context,
        Event::TransferWithinCity(e) | Event::MoveBetweenHouseholds(e) => &mut e.context,
        Event::CollectiveHousehold(e) => &mut e.context,
        Event::ChangeHead(e) => &mut e.context,
        Event::ChangeAddress(e) => &mut e.context,
        Event::FamilyBook(e) => &mut e.context,
    };
    context.get_or_insert_with(Default::default).actor = actor.to_string();
}

/// The catalogue field naming a record's kind (SubmitFeed's fields); `None`
/// for a record without payload (the feeds service rejects it, storing nothing).
pub fn feed_kind(record: &FeedRecord) -> Option<&'static str> {
    Some(match record.payload.as_ref()? {
        Payload::MedicalInsurance(_) => "medical_insurance",
        Payload::Pension(_) => "pension",
        Payload::Student(_) => "student",
        Payload::School(_) => "school",
        Payload::BirthCertificate(_) => "birth_certificate",
        Payload::Marriage(_) => "marriage",
        Payload::Housing(_) => "housing",
    })
}

/// The ID numbers a record names (its audit subjects), appended to `out`.
pub fn feed_subjects(record: &FeedRecord, out: &mut Vec<String>) {
    let ids: [&str; 3] = match &record.payload {
        Some(Payload::MedicalInsurance(r)) => [&r.id_number, "", ""],
        Some(Payload::Pension(r)) => [&r.id_number, "", ""],
        Some(Payload::Student(r)) => [&r.id_number, "", ""],
        Some(Payload::BirthCertificate(r)) => [&r.mother_id_number, &r.father_id_number, &r.child_id_number],
        Some(Payload::Marriage(r)) => [&r.party_a_id_number, &r.party_b_id_number, ""],
        Some(Payload::Housing(r)) => [&r.id_number, &r.owner_id_number, ""],
        Some(Payload::School(_)) | None => ["", "", ""],
    };
    out.extend(ids.into_iter().filter(|id| !id.is_empty()).map(str::to_string));
}

/// What the owning service's refusal of a forwarded write means for the
/// department: its own input errors pass through (field and reason; the
/// services never put personal data in them), anything else is the service
/// failing.
pub fn forwarded(what: &str, status: tonic::Status) -> ServiceError {
    let field = || {
        status
            .metadata()
            .get(popbase_common::error::FIELD_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("event")
            .to_string()
    };
    let reason = |prefix: String| {
        let message = status.message();
        message.strip_prefix(&prefix).unwrap_or(message).to_string()
    };
    match status.code() {
        tonic::Code::InvalidArgument => {
            let field = field();
            let reason = reason(format!("invalid {field}: "));
            ServiceError::invalid(field, reason)
        }
        tonic::Code::FailedPrecondition => {
            let field = field();
            let reason = reason(format!("{field}: "));
            ServiceError::precondition(field, reason)
        }
        tonic::Code::NotFound => ServiceError::not_found(status.message().trim_end_matches(" not found").to_string()),
        tonic::Code::Aborted => ServiceError::Aborted(reason("aborted: ".into())),
        _ => crate::sources::upstream(what, status),
    }
}

/// Checks the purpose and officer of a later message of a submission
/// against the first's: empty, or the same.
pub fn same_or_empty(field: &str, first: &str, later: &str) -> ServiceResult<()> {
    if later.is_empty() || later == first {
        Ok(())
    } else {
        Err(ServiceError::invalid(field, "differs from the submission's first message"))
    }
}

/// Checks the size of one message of a submission.
pub fn records_bound(records: usize) -> ServiceResult<()> {
    if records > MAX_RECORDS_PER_MESSAGE {
        return Err(ServiceError::invalid(
            "records",
            format!("at most {MAX_RECORDS_PER_MESSAGE} per message"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::feeds::{MedicalInsurance, Pension};
    use popbase_proto::household::{RegisterBirthRequest, RegisterDeathRequest};

    #[test]
    fn officers_are_codes_not_free_text() {
        assert!(officer("officer_id", "police-370302-01").is_ok());
        assert!(officer("officer_id", "a.b_c-9").is_ok());
        for bad in ["", "张三", "x y", "a;drop", &"x".repeat(49)] {
            let err = officer("officer_id", bad).expect_err(bad);
            assert!(!err.to_string().contains(bad) || bad.is_empty(), "never echoed: {err}");
        }
        assert_eq!(actor("public_security", "police-01"), "public_security:police-01");
    }

    #[test]
    fn events_name_their_kind_subjects_and_get_the_gateways_actor() {
        let mut birth = Event::Birth(RegisterBirthRequest {
            mother_id_number: "370302199001011232".into(),
            ..Default::default()
        });
        assert_eq!(event_kind(&birth), "birth");
        assert_eq!(event_subjects(&birth), vec!["370302199001011232".to_string()]);
        set_actor(&mut birth, "public_security:p1");
        let Event::Birth(e) = &birth else { unreachable!() };
        assert_eq!(e.context.as_ref().map(|c| c.actor.as_str()), Some("public_security:p1"));
        let death = Event::Death(RegisterDeathRequest {
            context: Some(popbase_proto::household::EventContext {
                actor: "someone else".into(),
                occurred_on: None,
            }),
            id_number: "x".into(),
            ..Default::default()
        });
        let mut death = death;
        set_actor(&mut death, "public_security:p2");
        let Event::Death(e) = &death else { unreachable!() };
        assert_eq!(e.context.as_ref().map(|c| c.actor.as_str()), Some("public_security:p2"), "replaced");
    }

    #[test]
    fn records_name_their_kind_and_persons() {
        let insurance = FeedRecord {
            payload: Some(Payload::MedicalInsurance(MedicalInsurance {
                id_number: "a".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let pension = FeedRecord {
            payload: Some(Payload::Pension(Pension {
                id_number: "b".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(feed_kind(&insurance), Some("medical_insurance"));
        assert_eq!(feed_kind(&pension), Some("pension"));
        assert_eq!(feed_kind(&FeedRecord::default()), None);
        let mut subjects = Vec::new();
        feed_subjects(&insurance, &mut subjects);
        feed_subjects(&pension, &mut subjects);
        feed_subjects(&FeedRecord::default(), &mut subjects);
        assert_eq!(subjects, ["a", "b"]);
    }

    #[test]
    fn the_services_input_errors_pass_through_and_failures_do_not() {
        let status = tonic::Status::from(ServiceError::invalid("mother_id_number", "check digit does not match"));
        let err = forwarded("the registry", status);
        assert!(
            matches!(&err, ServiceError::InvalidArgument { field, reason } if field == "mother_id_number" && reason == "check digit does not match"),
            "{err:?}"
        );
        let down = forwarded("the registry", tonic::Status::internal("disk on fire at /secret"));
        assert!(matches!(down, ServiceError::Unavailable(_)));
        assert!(!down.to_string().contains("/secret"));
    }
}
