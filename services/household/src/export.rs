//! The registry's datasets for bulk export (served on the role's internal
//! Flight endpoint; the gateway de-identifies and audits):
//! `persons`, `households`, `changes` (life events, one row per person
//! concerned), `statistics` (population per committee) and
//! `standard_addresses` (the address base).

use std::sync::{Arc, LazyLock};

use arrow_schema::{Schema, SchemaRef};
use popbase_common::{ServiceError, ServiceResult};
use popbase_export::columns::{Kind, Role, col};
use popbase_export::labels;
use popbase_export::labels::label_col;
use popbase_export::scan::{export_encoded, export_table};
use popbase_export::{BatchSink, Dataset, DatasetSource, Export, Owner, Ticket};
use popbase_proto::common::{Date, Sex};
use popbase_proto::household::{
    EducationLevel, EventKind, HouseholdKind, HouseholdStatus, MaritalStatus, MilitaryService, MoveInReason, MoveOutReason,
    RegistrationStatus, Relationship,
};
use popbase_storage::Snapshot;

use crate::Registry;
use crate::tables::{EVENTS, HOUSEHOLDS, PERSONS, STANDARD_ADDRESSES};

mod plans;
mod statistics;

static PERSONS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    Arc::new(Schema::new(vec![
        col("id_number", Text, Some(Role::Subject)),
        col("name", Text, Some(Role::Name)),
        label_col("sex", &labels!(Sex, "SEX_")),
        col("ethnicity", Text, None),
        col("birth_date", Date, Some(Role::BirthDate)),
        col("birthplace_code", Text, None),
        col("native_place_code", Text, None),
        col("household_id", Text, None),
        label_col("relationship", &labels!(Relationship, "RELATIONSHIP_")),
        label_col("education", &labels!(EducationLevel, "EDUCATION_LEVEL_")),
        label_col("marital_status", &labels!(MaritalStatus, "MARITAL_STATUS_")),
        label_col("military_service", &labels!(MilitaryService, "MILITARY_SERVICE_")),
        col("occupation", Text, None),
        col("committee_code", Text, None),
        col("address_detail", Text, Some(Role::Contact)),
        col("moved_in_date", Date, None),
        label_col("moved_in_reason", &labels!(MoveInReason, "MOVE_IN_REASON_")),
        col("moved_in_from_code", Text, None),
        col("moved_out_date", Date, None),
        label_col("moved_out_reason", &labels!(MoveOutReason, "MOVE_OUT_REASON_")),
        col("moved_out_to_code", Text, None),
        label_col("status", &labels!(RegistrationStatus, "REGISTRATION_STATUS_")),
        col("phone", Text, Some(Role::Contact)),
        col("father_id_number", Text, Some(Role::Person)),
        col("mother_id_number", Text, Some(Role::Person)),
        col("spouse_id_number", Text, Some(Role::Person)),
        col("guardian_id_number", Text, Some(Role::Person)),
    ]))
});

static HOUSEHOLDS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    Arc::new(Schema::new(vec![
        col("household_id", Text, None),
        label_col("kind", &labels!(HouseholdKind, "HOUSEHOLD_KIND_")),
        col("head_id_number", Text, Some(Role::Subject)),
        col("committee_code", Text, None),
        col("address_detail", Text, Some(Role::Contact)),
        col("unit_name", Text, None),
        col("established", Date, None),
        label_col("status", &labels!(HouseholdStatus, "HOUSEHOLD_STATUS_")),
        col("closed", Date, None),
        col("family_books", U32, None),
    ]))
});

static CHANGES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    Arc::new(Schema::new(vec![
        col("sequence", U64, None),
        label_col("kind", &labels!(EventKind, "EVENT_KIND_")),
        col("occurred_on", Date, None),
        col("id_number", Text, Some(Role::Subject)),
        col("position", U32, None),
        col("household_id", Text, None),
        label_col("path", &labels!(MoveInReason, "MOVE_IN_REASON_")),
        col("from_code", Text, None),
        col("to_committee_code", Text, None),
        label_col("household_kind", &labels!(HouseholdKind, "HOUSEHOLD_KIND_")),
        col("policy_rule", Text, None),
    ]))
});

/// Exports of the registry, read from one snapshot per export.
pub struct RegistryExports {
    registry: Registry,
}

impl RegistryExports {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

impl DatasetSource for RegistryExports {
    fn owner(&self) -> Owner {
        Owner::Household
    }

    fn schema(&self, dataset: &'static Dataset) -> SchemaRef {
        match dataset.name {
            "households" => HOUSEHOLDS_SCHEMA.clone(),
            "changes" => CHANGES_SCHEMA.clone(),
            "statistics" => statistics::SCHEMA.clone(),
            "standard_addresses" => STANDARD_ADDRESSES_SCHEMA.clone(),
            _ => PERSONS_SCHEMA.clone(),
        }
    }

    fn open(&self, ticket: &Ticket, dataset: &'static Dataset) -> ServiceResult<Export> {
        let snapshot = self.registry.store().snapshot();
        let seq = snapshot.seq();
        let schema = self.schema(dataset);
        let ticket = ticket.clone();
        let scan: popbase_export::source::Scan = match dataset.name {
            "persons" => Box::new(move |sink| persons(&snapshot, &ticket, sink)),
            "households" => Box::new(move |sink| households(&snapshot, &ticket, sink)),
            "changes" => Box::new(move |sink| changes(&snapshot, &ticket, sink)),
            "statistics" => Box::new(move |sink| statistics::scan(&snapshot, &ticket, popbase_domain::clock::today(), sink)),
            "standard_addresses" => Box::new(move |sink| standard_addresses(&snapshot, &ticket, sink)),
            other => return Err(ServiceError::invalid("ticket.dataset", format!("{other} is not the registry's"))),
        };
        Ok(Export { seq, schema, scan })
    }
}

fn persons(snapshot: &Snapshot, ticket: &Ticket, sink: &mut BatchSink) -> ServiceResult<()> {
    export_encoded(snapshot, &PERSONS, &[], ticket.since_seq, &plans::PERSONS, sink, |row, encoded| {
        ticket.in_division(row.text(encoded, plans::PERSONS_COMMITTEE_COLUMN))
    })
}

static STANDARD_ADDRESSES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    Arc::new(Schema::new(vec![
        col("committee_code", Text, None),
        col("road", Text, None),
        col("from_number", U32, None),
        col("to_number", U32, None),
    ]))
});

fn standard_addresses(snapshot: &Snapshot, ticket: &Ticket, sink: &mut BatchSink) -> ServiceResult<()> {
    export_table(
        snapshot,
        &STANDARD_ADDRESSES,
        &[],
        ticket.since_seq,
        STANDARD_ADDRESSES_SCHEMA.clone(),
        sink,
        |columns, a| {
            if ticket.in_division(&a.committee_code) {
                columns
                    .row()
                    .text(&a.committee_code)
                    .text(&a.road)
                    .u32(Some(a.from_number))
                    .u32(Some(a.to_number));
            }
        },
    )
}

fn households(snapshot: &Snapshot, ticket: &Ticket, sink: &mut BatchSink) -> ServiceResult<()> {
    export_encoded(
        snapshot,
        &HOUSEHOLDS,
        &[],
        ticket.since_seq,
        &plans::HOUSEHOLDS,
        sink,
        |row, encoded| ticket.in_division(row.text(encoded, plans::HOUSEHOLDS_COMMITTEE_COLUMN)),
    )
}

fn changes(snapshot: &Snapshot, ticket: &Ticket, sink: &mut BatchSink) -> ServiceResult<()> {
    export_table(
        snapshot,
        &EVENTS,
        &[],
        ticket.since_seq,
        CHANGES_SCHEMA.clone(),
        sink,
        |columns, e| {
            if !(ticket.in_division(&e.to_committee_code) || ticket.in_division(&e.from_code)) {
                return;
            }
            let ids: Vec<&str> = if e.id_numbers.is_empty() {
                vec![""]
            } else {
                e.id_numbers.iter().map(String::as_str).collect()
            };
            for (position, id) in ids.into_iter().enumerate() {
                columns
                    .row()
                    .u64(e.sequence)
                    .label(EventKind::try_from(e.kind).ok().map(|k| k.as_str_name()), "EVENT_KIND_")
                    .date(Date::naive_of(&e.occurred_on))
                    .text(id)
                    .u32(u32::try_from(position).ok())
                    .text(&e.household_id)
                    .label(MoveInReason::try_from(e.path).ok().map(|k| k.as_str_name()), "MOVE_IN_REASON_")
                    .text(&e.from_code)
                    .text(&e.to_committee_code)
                    .label(
                        HouseholdKind::try_from(e.household_kind).ok().map(|k| k.as_str_name()),
                        "HOUSEHOLD_KIND_",
                    )
                    .text(&e.policy_rule);
            }
        },
    )
}
