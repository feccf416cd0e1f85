//! The `persons` and `households` columns as read straight from the stored
//! messages ([`WirePlan`]): the two largest tables a full export reads.
//!
//! The field numbers follow `popbase/household/v1/records.proto`; the tests
//! below export messages with every field set both ways (through these
//! plans, and through the decoded prost message) and compare the batches,
//! so a renumbered or retyped field fails here.

use std::sync::LazyLock;

use popbase_export::labels;
use popbase_export::wire::{WirePlan, count, date, label, text, text_in};
use popbase_proto::common::Sex;
use popbase_proto::household::{
    EducationLevel, HouseholdKind, HouseholdStatus, MaritalStatus, MilitaryService, MoveInReason, MoveOutReason, RegistrationStatus,
    Relationship,
};

/// `Address { committee_code = 1; detail = 2; }`
const COMMITTEE: u32 = 1;
const DETAIL: u32 = 2;

/// Columns of `persons`, in `PERSONS_SCHEMA` order.
pub static PERSONS: LazyLock<WirePlan> = LazyLock::new(|| {
    WirePlan::new(
        super::PERSONS_SCHEMA.clone(),
        vec![
            text(1),
            text(2),
            label(4, labels!(Sex, "SEX_")),
            text(5),
            date(6),
            text(7),
            text(8),
            text(9),
            label(10, labels!(Relationship, "RELATIONSHIP_")),
            label(11, labels!(EducationLevel, "EDUCATION_LEVEL_")),
            label(12, labels!(MaritalStatus, "MARITAL_STATUS_")),
            label(13, labels!(MilitaryService, "MILITARY_SERVICE_")),
            text(14),
            text_in(15, COMMITTEE),
            text_in(15, DETAIL),
            date(16),
            label(17, labels!(MoveInReason, "MOVE_IN_REASON_")),
            text(18),
            date(19),
            label(20, labels!(MoveOutReason, "MOVE_OUT_REASON_")),
            text(21),
            label(22, labels!(RegistrationStatus, "REGISTRATION_STATUS_")),
            text(23),
            text(24),
            text(25),
            text(26),
            text(27),
        ],
    )
});

/// The `persons` column holding the committee code (the division filter's).
pub const PERSONS_COMMITTEE_COLUMN: usize = 13;

/// Columns of `households`, in `HOUSEHOLDS_SCHEMA` order.
pub static HOUSEHOLDS: LazyLock<WirePlan> = LazyLock::new(|| {
    WirePlan::new(
        super::HOUSEHOLDS_SCHEMA.clone(),
        vec![
            text(1),
            label(2, labels!(HouseholdKind, "HOUSEHOLD_KIND_")),
            text(3),
            text_in(4, COMMITTEE),
            text_in(4, DETAIL),
            text(5),
            date(6),
            label(7, labels!(HouseholdStatus, "HOUSEHOLD_STATUS_")),
            date(9),
            count(8),
        ],
    )
});

/// The `households` column holding the committee code.
pub const HOUSEHOLDS_COMMITTEE_COLUMN: usize = 3;

#[cfg(test)]
#[path = "plans_tests.rs"]
mod tests;
