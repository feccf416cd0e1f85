//! The feeds' datasets for bulk export (served on the role's internal
//! Flight endpoint; the gateway de-identifies and audits): current versions
//! of `medical_insurance`, `pensions`, `education` (student status with the
//! school's place), `marriage` and `housing` records. A division filter
//! applies to each record's own place: insured county, school, registering
//! county, dwelling.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_schema::{Field, Schema, SchemaRef};
use popbase_common::{ServiceError, ServiceResult};
use popbase_export::columns::{Columns, Kind, Role, RowWriter, col};
use popbase_export::labels;
use popbase_export::labels::label_col;
use popbase_export::scan::export_table;
use popbase_export::{BatchSink, Dataset, DatasetSource, Export, Owner, Ticket};
use popbase_proto::common::{Address, Date};
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{
    EnrollmentStatus, FeedRecord, HousingKind, MarriageEvent, MedicalScheme, PensionScheme, PropertyUse, School, Source, StudentState,
};
use popbase_storage::{Read, Snapshot};

use crate::FeedStore;
use crate::tables::{self, RECORDS};

/// Columns every feed dataset starts with: the source's key and as-of time.
fn with_record_columns(rest: Vec<Field>) -> SchemaRef {
    let mut fields = vec![col("record_id", Kind::Text, None), col("as_of", Kind::Timestamp, None)];
    fields.extend(rest);
    Arc::new(Schema::new(fields))
}

static MEDICAL: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    with_record_columns(vec![
        col("id_number", Text, Some(Role::Subject)),
        label_col("scheme", &labels!(MedicalScheme, "MEDICAL_SCHEME_")),
        label_col("status", &labels!(EnrollmentStatus, "ENROLLMENT_STATUS_")),
        col("since", Date, None),
        col("insured_county_code", Text, None),
    ])
});

static PENSIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    with_record_columns(vec![
        col("id_number", Text, Some(Role::Subject)),
        label_col("scheme", &labels!(PensionScheme, "PENSION_SCHEME_")),
        label_col("status", &labels!(EnrollmentStatus, "ENROLLMENT_STATUS_")),
        col("since", Date, None),
        col("contribution_months", U32, None),
    ])
});

static EDUCATION: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    with_record_columns(vec![
        col("id_number", Text, Some(Role::Subject)),
        col("school_id", Text, None),
        col("school_name", Text, None),
        col("school_county_code", Text, None),
        col("school_committee_code", Text, None),
        col("grade", U32, None),
        label_col("state", &labels!(StudentState, "STUDENT_STATE_")),
        col("since", Date, None),
    ])
});

static MARRIAGE: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    with_record_columns(vec![
        col("party_a_id_number", Text, Some(Role::Subject)),
        col("party_b_id_number", Text, Some(Role::Person)),
        label_col("event", &labels!(MarriageEvent, "MARRIAGE_EVENT_")),
        col("date", Date, None),
        col("registry_county_code", Text, None),
    ])
});

static HOUSING: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    with_record_columns(vec![
        col("id_number", Text, Some(Role::Subject)),
        label_col("kind", &labels!(HousingKind, "HOUSING_KIND_")),
        col("committee_code", Text, None),
        col("address_detail", Text, Some(Role::Contact)),
        col("since", Date, None),
        col("until", Date, None),
        col("certificate_number", Text, Some(Role::Identifier)),
        label_col("use", &labels!(PropertyUse, "PROPERTY_USE_")),
        col("owner_id_number", Text, Some(Role::Person)),
        col("owner_consents_to_settlement", Bool, None),
    ])
});

/// The schema and source of each feed dataset.
fn shape(name: &str) -> Option<(SchemaRef, Source)> {
    Some(match name {
        "medical_insurance" => (MEDICAL.clone(), Source::MedicalInsurance),
        "pensions" => (PENSIONS.clone(), Source::HumanResources),
        "education" => (EDUCATION.clone(), Source::Education),
        "marriage" => (MARRIAGE.clone(), Source::CivilAffairs),
        "housing" => (HOUSING.clone(), Source::Housing),
        _ => return None,
    })
}

pub struct FeedExports {
    feeds: FeedStore,
}

impl FeedExports {
    pub fn new(feeds: FeedStore) -> Self {
        Self { feeds }
    }
}

impl DatasetSource for FeedExports {
    fn owner(&self) -> Owner {
        Owner::Feeds
    }

    fn schema(&self, dataset: &'static Dataset) -> SchemaRef {
        shape(dataset.name).map_or_else(|| MEDICAL.clone(), |(schema, _)| schema)
    }

    fn open(&self, ticket: &Ticket, dataset: &'static Dataset) -> ServiceResult<Export> {
        let (schema, source) =
            shape(dataset.name).ok_or_else(|| ServiceError::invalid("ticket.dataset", format!("{} is not the feeds'", dataset.name)))?;
        let snapshot = self.feeds.store().snapshot();
        let ticket = ticket.clone();
        Ok(Export {
            seq: snapshot.seq(),
            schema: schema.clone(),
            scan: Box::new(move |sink| scan(&snapshot, &ticket, source, schema, sink)),
        })
    }
}

/// Schools by id, for the education dataset's place columns.
fn schools(snapshot: &Snapshot) -> ServiceResult<HashMap<String, School>> {
    let mut schools = HashMap::new();
    snapshot.for_each(&RECORDS, &tables::source_prefix(Source::Education as i32), |_, record| {
        if let Some(Payload::School(school)) = record.value.payload {
            schools.insert(school.school_id.clone(), school);
        }
        Ok(true)
    })?;
    Ok(schools)
}

fn scan(snapshot: &Snapshot, ticket: &Ticket, source: Source, schema: SchemaRef, sink: &mut BatchSink) -> ServiceResult<()> {
    let schools = if source == Source::Education {
        schools(snapshot)?
    } else {
        HashMap::new()
    };
    let prefix = tables::source_prefix(source as i32);
    export_table(snapshot, &RECORDS, &prefix, ticket.since_seq, schema, sink, |columns, record| {
        row(columns, ticket, record, &schools)
    })
}

/// Writes `record` when it is a row of the dataset and lies in the division.
fn row(columns: &mut Columns, ticket: &Ticket, record: &FeedRecord, schools: &HashMap<String, School>) {
    let Some(payload) = &record.payload else { return };
    fn head<'c>(columns: &'c mut Columns, record: &FeedRecord) -> RowWriter<'c> {
        let mut row = columns.row();
        row.text(&record.record_id).timestamp_millis(record.as_of_unix_millis);
        row
    }
    let status = |s: i32| EnrollmentStatus::try_from(s).ok().map(|e| e.as_str_name());
    match payload {
        Payload::MedicalInsurance(m) if ticket.in_division(&m.insured_county_code) => {
            head(columns, record)
                .text(&m.id_number)
                .label(MedicalScheme::try_from(m.scheme).ok().map(|e| e.as_str_name()), "MEDICAL_SCHEME_")
                .label(status(m.status), "ENROLLMENT_STATUS_")
                .date(Date::naive_of(&m.since))
                .text(&m.insured_county_code);
        }
        Payload::Pension(p) => {
            head(columns, record)
                .text(&p.id_number)
                .label(PensionScheme::try_from(p.scheme).ok().map(|e| e.as_str_name()), "PENSION_SCHEME_")
                .label(status(p.status), "ENROLLMENT_STATUS_")
                .date(Date::naive_of(&p.since))
                .u32(Some(p.contribution_months));
        }
        Payload::Student(s) => {
            let school = schools.get(&s.school_id);
            let county = school.map_or("", |k| k.county_code.as_str());
            let committee = school.map_or("", |k| Address::committee_of(&k.address));
            if !(ticket.in_division(committee) || ticket.in_division(county)) {
                return;
            }
            head(columns, record)
                .text(&s.id_number)
                .text(&s.school_id)
                .text(school.map_or("", |k| k.name.as_str()))
                .text(county)
                .text(committee)
                .u32(Some(s.grade))
                .label(StudentState::try_from(s.state).ok().map(|e| e.as_str_name()), "STUDENT_STATE_")
                .date(Date::naive_of(&s.since));
        }
        Payload::Marriage(m) if ticket.in_division(&m.registry_county_code) => {
            head(columns, record)
                .text(&m.party_a_id_number)
                .text(&m.party_b_id_number)
                .label(MarriageEvent::try_from(m.event).ok().map(|e| e.as_str_name()), "MARRIAGE_EVENT_")
                .date(Date::naive_of(&m.date))
                .text(&m.registry_county_code);
        }
        Payload::Housing(h) if ticket.in_division(Address::committee_of(&h.address)) => {
            head(columns, record)
                .text(&h.id_number)
                .label(HousingKind::try_from(h.kind).ok().map(|e| e.as_str_name()), "HOUSING_KIND_")
                .text(Address::committee_of(&h.address))
                .text(Address::detail_of(&h.address))
                .date(Date::naive_of(&h.since))
                .date(Date::naive_of(&h.until))
                .text(&h.certificate_number)
                .label(PropertyUse::try_from(h.r#use).ok().map(|e| e.as_str_name()), "PROPERTY_USE_")
                .text(&h.owner_id_number)
                .bool(h.owner_consents_to_settlement);
        }
        _ => {}
    }
}
