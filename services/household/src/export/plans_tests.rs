//! The wire plans against the decoded messages: the same rows, the same batch.

use arrow_array::Array;
use popbase_export::columns::Columns;
use popbase_export::wire::WirePlan;
use popbase_proto::common::{Address, Date, Sex};
use popbase_proto::household::{
    EducationLevel, FamilyBook, Household, HouseholdKind, HouseholdStatus, MaritalStatus, MilitaryService, MoveInReason, MoveOutReason,
    Person, RegistrationStatus, Relationship,
};
use prost::Message;

use super::*;
use crate::export::{HOUSEHOLDS_SCHEMA, PERSONS_SCHEMA};

/// The rows as the decoded path writes them: every field by name from the
/// prost message, so the compiler checks these against the `.proto`.
fn person_row(columns: &mut Columns, p: &Person) {
    columns
        .row()
        .text(&p.id_number)
        .text(&p.name)
        .label(Sex::try_from(p.sex).ok().map(|e| e.as_str_name()), "SEX_")
        .text(&p.ethnicity)
        .date(Date::naive_of(&p.birth_date))
        .text(&p.birthplace_code)
        .text(&p.native_place_code)
        .text(&p.household_id)
        .label(
            Relationship::try_from(p.relationship).ok().map(|e| e.as_str_name()),
            "RELATIONSHIP_",
        )
        .label(
            EducationLevel::try_from(p.education).ok().map(|e| e.as_str_name()),
            "EDUCATION_LEVEL_",
        )
        .label(
            MaritalStatus::try_from(p.marital_status).ok().map(|e| e.as_str_name()),
            "MARITAL_STATUS_",
        )
        .label(
            MilitaryService::try_from(p.military_service).ok().map(|e| e.as_str_name()),
            "MILITARY_SERVICE_",
        )
        .text(&p.occupation)
        .text(Address::committee_of(&p.address))
        .text(Address::detail_of(&p.address))
        .date(Date::naive_of(&p.moved_in_date))
        .label(
            MoveInReason::try_from(p.moved_in_reason).ok().map(|e| e.as_str_name()),
            "MOVE_IN_REASON_",
        )
        .text(&p.moved_in_from_code)
        .date(Date::naive_of(&p.moved_out_date))
        .label(
            MoveOutReason::try_from(p.moved_out_reason).ok().map(|e| e.as_str_name()),
            "MOVE_OUT_REASON_",
        )
        .text(&p.moved_out_to_code)
        .label(
            RegistrationStatus::try_from(p.status).ok().map(|e| e.as_str_name()),
            "REGISTRATION_STATUS_",
        )
        .text(&p.phone)
        .text(&p.father_id_number)
        .text(&p.mother_id_number)
        .text(&p.spouse_id_number)
        .text(&p.guardian_id_number);
}

fn household_row(columns: &mut Columns, h: &Household) {
    columns
        .row()
        .text(&h.household_id)
        .label(HouseholdKind::try_from(h.kind).ok().map(|e| e.as_str_name()), "HOUSEHOLD_KIND_")
        .text(&h.head_id_number)
        .text(Address::committee_of(&h.address))
        .text(Address::detail_of(&h.address))
        .text(&h.unit_name)
        .date(Date::naive_of(&h.established))
        .label(
            HouseholdStatus::try_from(h.status).ok().map(|e| e.as_str_name()),
            "HOUSEHOLD_STATUS_",
        )
        .date(Date::naive_of(&h.closed))
        .u32(u32::try_from(h.family_books.len()).ok());
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn address(committee: &str, detail: &str) -> Option<Address> {
    Some(Address {
        committee_code: committee.into(),
        detail: detail.into(),
    })
}

fn persons() -> Vec<Person> {
    let full = Person {
        id_number: "370302199001011232".into(),
        name: "张晓明".into(),
        former_names: vec!["张小明".into()],
        sex: Sex::Male as i32,
        ethnicity: "01".into(),
        birth_date: date(1990, 1, 1),
        birthplace_code: "370302".into(),
        native_place_code: "370303".into(),
        household_id: "370302001001000123".into(),
        relationship: Relationship::Head as i32,
        education: EducationLevel::SeniorSecondary as i32,
        marital_status: MaritalStatus::Married as i32,
        military_service: MilitaryService::Veteran as i32,
        occupation: "专业技术人员".into(),
        address: address("370302001001", "新村西路12号3单元501"),
        moved_in_date: date(2015, 6, 30),
        moved_in_reason: MoveInReason::Employment as i32,
        moved_in_from_code: "110105".into(),
        moved_out_date: date(2024, 2, 29),
        moved_out_reason: MoveOutReason::OutOfCity as i32,
        moved_out_to_code: "310104".into(),
        status: RegistrationStatus::MovedOut as i32,
        phone: "13800000000".into(),
        father_id_number: "370302196001011234".into(),
        mother_id_number: "370302196201011226".into(),
        spouse_id_number: "370302199201011228".into(),
        guardian_id_number: "370302194001011230".into(),
    };
    let odd = Person {
        id_number: "11010519491231002X".into(),
        // An impossible date, a negative year, an enum value this build does
        // not know, an address without its detail: nulls, not errors.
        birth_date: date(1949, 2, 30),
        moved_in_date: date(-5, 1, 1),
        moved_out_date: Some(Date::default()),
        sex: 99,
        relationship: -3,
        address: address("110105001001", ""),
        ..Person::default()
    };
    vec![full, Person::default(), odd]
}

fn households() -> Vec<Household> {
    let collective = Household {
        household_id: "370302001001000124".into(),
        kind: HouseholdKind::CollectiveUnit as i32,
        head_id_number: String::new(),
        address: address("370302001001", "华光路1号"),
        unit_name: "淄博市第一医院".into(),
        established: date(2001, 9, 1),
        status: HouseholdStatus::Closed as i32,
        family_books: vec![
            FamilyBook {
                book_id: "B1".into(),
                member_id_numbers: vec!["370302199001011232".into(), "110105201501010025".into()],
                ..FamilyBook::default()
            },
            FamilyBook::default(),
        ],
        closed: date(2020, 12, 31),
    };
    vec![collective, Household::default()]
}

/// Both ways of writing `messages` as one batch.
fn both<M: Message>(
    plan: &WirePlan,
    messages: &[M],
    decoded: impl Fn(&mut Columns, &M),
) -> (arrow_array::RecordBatch, arrow_array::RecordBatch) {
    let mut expected = Columns::new(plan.schema().clone());
    let mut read = Columns::new(plan.schema().clone());
    let mut row = plan.reader();
    for message in messages {
        decoded(&mut expected, message);
        let encoded = message.encode_to_vec();
        row.read(&encoded).expect("a plan reads what prost wrote");
        row.write(&encoded, &mut read);
    }
    (expected.take().expect("decoded batch"), read.take().expect("plan batch"))
}

#[test]
fn persons_read_from_the_wire_equal_persons_decoded() {
    let (expected, read) = both(&PERSONS, &persons(), person_row);
    assert_eq!(read, expected);
    assert_eq!(read.num_rows(), 3);
    assert_eq!(read.num_columns(), PERSONS_SCHEMA.fields().len());
    // The full row really filled every column, so the comparison covers all of them.
    for column in read.columns() {
        assert!(column.is_valid(0), "every column of the full person is set");
    }
    assert_eq!(PERSONS_SCHEMA.field(PERSONS_COMMITTEE_COLUMN).name(), "committee_code");
}

#[test]
fn households_read_from_the_wire_equal_households_decoded() {
    let (expected, read) = both(&HOUSEHOLDS, &households(), household_row);
    assert_eq!(read, expected);
    for (i, column) in read.columns().iter().enumerate() {
        let unset_on_purpose = HOUSEHOLDS_SCHEMA.field(i).name() == "head_id_number";
        assert!(column.is_valid(0) || unset_on_purpose, "column {i} of the full household is set");
    }
    assert_eq!(HOUSEHOLDS_SCHEMA.field(HOUSEHOLDS_COMMITTEE_COLUMN).name(), "committee_code");
}

#[test]
fn the_committee_filter_reads_the_nested_address() {
    let mut row = PERSONS.reader();
    let encoded = persons()[0].encode_to_vec();
    row.read(&encoded).expect("read");
    assert_eq!(row.text(&encoded, PERSONS_COMMITTEE_COLUMN), "370302001001");
}

#[test]
fn a_cut_or_mistyped_encoding_is_an_error_not_a_panic() {
    let encoded = persons()[0].encode_to_vec();
    let mut row = PERSONS.reader();
    for cut in 1..encoded.len() {
        let _ = row.read(&encoded[..cut]);
    }
    assert!(row.read(&encoded[..encoded.len() - 1]).is_err());
    // Field 1 as a varint where the plan expects a string.
    assert!(row.read(&[0x08, 0x01]).is_err());
    // Invalid UTF-8 in a text field fails the batch it is written to.
    let garbled = [0x0a, 0x02, 0xff, 0xfe];
    row.read(&garbled).expect("bytes are bytes");
    let mut columns = Columns::new(PERSONS_SCHEMA.clone());
    row.write(&garbled, &mut columns);
    assert!(columns.take().is_err());
}
