//! The de-identification every exported batch passes in the gateway, by
//! column role (see [`crate::columns`]):
//!
//! | role | `identified` | `pseudonymised` |
//! |---|---|---|
//! | subject, person, identifier | kept | keyed pseudonym, `x_number` → `x_pseudonym` |
//! | birth date | kept | year-month text, `birth_date` → `birth_month` |
//! | name, contact | kept | dropped |
//! | anything else | kept | kept |
//!
//! Columns the department's approval does not list are dropped at either
//! level. Pseudonyms share one export domain, so the bureau can join
//! `persons.id_pseudonym` with `medical_insurance.id_pseudonym`; they are
//! stable across exports for as long as the gateway's key is.
//!
//! Whatever the level, the audit record of an export holds the row count
//! and a SHA-256 digest over the subjects' export pseudonyms in row order
//! (each followed by a newline), so a file can later be matched to the
//! record that released it.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, Date32Array, RecordBatch, StringArray};
use arrow_buffer::{Buffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use popbase_domain::pseudonym::{DomainPseudonyms, PSEUDONYM_HEX_LEN, pseudonym_prefix};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::LEVEL_KEY;
use crate::columns::Role;

/// Pseudonym domain of exported identifiers.
pub const EXPORT_DOMAIN: &str = "export";

/// How far an export is de-identified; a department's approval names the
/// least it may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Everything the approval lists, in clear (public security, courts).
    Identified,
    /// Keyed pseudonyms instead of ID numbers, birth year-month, no names
    /// or contact details (the big-data bureau).
    #[default]
    Pseudonymised,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Identified => "identified",
            Level::Pseudonymised => "pseudonymised",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Keep,
    Pseudonymise,
    Month,
}

/// The released shape of one dataset for one department, and the running
/// count and digest of what has passed through it.
pub struct Released {
    /// (input column, what to do) for every output column.
    plan: Vec<(usize, Step)>,
    schema: SchemaRef,
    subject: Option<usize>,
    /// The input schema's column names (a batch of another width is
    /// refused, not indexed).
    input_names: Vec<String>,
    pseudonyms: DomainPseudonyms,
    digest: Sha256,
    rows: u64,
}

/// The output name of a de-identified column.
fn renamed(name: &str, step: Step) -> String {
    match step {
        Step::Keep => name.to_string(),
        Step::Pseudonymise => format!("{}_pseudonym", name.strip_suffix("_number").unwrap_or(name)),
        Step::Month => name
            .strip_suffix("_date")
            .map_or(format!("{name}_month"), |stem| format!("{stem}_month")),
    }
}

impl Released {
    /// The plan for batches of `input` at `level`, keeping only `approved` columns.
    pub fn new(input: &Schema, level: Level, approved: &BTreeSet<String>, pseudonyms: DomainPseudonyms) -> Self {
        let mut plan = Vec::new();
        let mut fields = Vec::new();
        let mut subject = None;
        for (i, field) in input.fields().iter().enumerate() {
            let role = Role::of(field);
            if role == Some(Role::Subject) {
                subject = Some(i);
            }
            if !approved.contains(field.name()) {
                continue;
            }
            let step = match (level, role) {
                (Level::Identified, _) | (Level::Pseudonymised, None) => Step::Keep,
                (Level::Pseudonymised, Some(Role::Subject | Role::Person | Role::Identifier)) => Step::Pseudonymise,
                (Level::Pseudonymised, Some(Role::BirthDate)) => Step::Month,
                (Level::Pseudonymised, Some(Role::Name | Role::Contact)) => continue,
            };
            let data_type = match step {
                Step::Keep => field.data_type().clone(),
                Step::Pseudonymise | Step::Month => DataType::Utf8,
            };
            fields.push(Field::new(renamed(field.name(), step), data_type, field.is_nullable()).with_metadata(field.metadata().clone()));
            plan.push((i, step));
        }
        let mut metadata = input.metadata().clone();
        metadata.insert(LEVEL_KEY.to_string(), level.as_str().to_string());
        Self {
            plan,
            schema: Arc::new(Schema::new_with_metadata(fields, metadata)),
            subject,
            input_names: input.fields().iter().map(|f| f.name().clone()).collect(),
            pseudonyms,
            digest: Sha256::new(),
            rows: 0,
        }
    }

    /// The schema of released batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The input columns this release reads, in input order: the ones it
    /// releases and the subject it digests. The owning role builds only
    /// these (a ticket's `columns`), so a dropped column costs nothing.
    pub fn inputs(&self) -> Vec<String> {
        let mut read: Vec<usize> = self.plan.iter().map(|(i, _)| *i).chain(self.subject).collect();
        read.sort_unstable();
        read.dedup();
        read.into_iter().filter_map(|i| self.input_names.get(i).cloned()).collect()
    }

    /// Whether the input column `name` is released (under its own name or
    /// de-identified).
    pub fn releases(&self, name: &str) -> bool {
        self.plan.iter().any(|(i, _)| self.input_names.get(*i).is_some_and(|n| n == name))
    }

    /// Names of the released columns (for the audit record).
    pub fn fields(&self) -> Vec<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// De-identifies one batch, counting and digesting its subjects.
    pub fn apply(&mut self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        self.deidentify(batch, false).map(|(released, _)| released)
    }

    /// [`Released::apply`], also answering the batch's subjects, in row
    /// order, by the first 8 bytes of their export pseudonyms
    /// ([`pseudonym_prefix`]): the gateway records them before the batch
    /// leaves, so each resident's access log can show the export. Numbers,
    /// not strings: an export names hundreds of thousands.
    pub fn apply_naming_subjects(&mut self, batch: &RecordBatch) -> Result<(RecordBatch, Vec<u64>), ArrowError> {
        self.deidentify(batch, true)
    }

    fn deidentify(&mut self, batch: &RecordBatch, name_subjects: bool) -> Result<(RecordBatch, Vec<u64>), ArrowError> {
        if batch.num_columns() != self.input_names.len() {
            return Err(ArrowError::SchemaError(format!(
                "a batch of {} columns in a stream of {}",
                batch.num_columns(),
                self.input_names.len()
            )));
        }
        let mut subject_pseudonyms: Option<ArrayRef> = None;
        let mut subjects = Vec::new();
        if let Some(i) = self.subject {
            let pseudonyms = self.pseudonymise(batch.column(i), name_subjects.then_some(&mut subjects))?;
            // One update per batch: two per row spent as long in the
            // hasher's buffering as in its compressions.
            let mut lines = Vec::with_capacity(pseudonyms.len() * (PSEUDONYM_HEX_LEN + 1));
            for value in pseudonyms.iter().flatten() {
                lines.extend_from_slice(value.as_bytes());
                lines.push(b'\n');
            }
            self.digest.update(&lines);
            subject_pseudonyms = Some(Arc::new(pseudonyms));
        }
        let mut columns = Vec::with_capacity(self.plan.len());
        for &(i, step) in &self.plan {
            let column = batch.column(i);
            columns.push(match step {
                Step::Keep => column.clone(),
                Step::Pseudonymise if Some(i) == self.subject => subject_pseudonyms.clone().unwrap_or_else(|| column.clone()),
                Step::Pseudonymise => Arc::new(self.pseudonymise(column, None)?),
                Step::Month => year_month(column)?,
            });
        }
        self.rows += batch.num_rows() as u64;
        Ok((RecordBatch::try_new(self.schema.clone(), columns)?, subjects))
    }

    /// The pseudonyms of an identifier column: its nulls, and 32 hex
    /// characters for each value, written straight into the array's buffers.
    /// `column`'s identifiers as export pseudonyms; their prefixes
    /// ([`pseudonym_prefix`]) pushed to `prefixes` when given.
    fn pseudonymise(&self, column: &ArrayRef, mut prefixes: Option<&mut Vec<u64>>) -> Result<StringArray, ArrowError> {
        let ids = column
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ArrowError::SchemaError("an identifier column is not text".into()))?;
        // Two at a time: their hashes run side by side (see `pseudonym_hex_pair`).
        let present: Vec<&str> = ids.iter().flatten().collect();
        let mut values = Vec::with_capacity(present.len() * PSEUDONYM_HEX_LEN);
        for pair in present.chunks(2) {
            match *pair {
                [a, b] => {
                    for pseudonym in self.pseudonyms.pseudonym_hex_pair(a, b) {
                        values.extend_from_slice(pseudonym.as_bytes());
                    }
                }
                [a] => values.extend_from_slice(self.pseudonyms.pseudonym_hex(a).as_bytes()),
                _ => {}
            }
        }
        if let Some(prefixes) = prefixes.as_mut() {
            prefixes.reserve(present.len());
            for pseudonym in values.chunks_exact(PSEUDONYM_HEX_LEN) {
                prefixes.extend(pseudonym_prefix(pseudonym));
            }
        }
        let too_large = || ArrowError::ComputeError("a batch too large for its pseudonyms".into());
        let mut offsets = Vec::with_capacity(ids.len() + 1);
        let mut end = 0i32;
        offsets.push(end);
        for row in 0..ids.len() {
            if ids.is_valid(row) {
                end = end.checked_add(PSEUDONYM_HEX_LEN as i32).ok_or_else(too_large)?;
            }
            offsets.push(end);
        }
        // Offsets start at zero and never decrease, as `OffsetBuffer::new` requires.
        StringArray::try_new(OffsetBuffer::new(offsets.into()), Buffer::from_vec(values), ids.nulls().cloned())
    }

    /// Rows released so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The digest of every subject released so far.
    pub fn digest(&self) -> [u8; 32] {
        self.digest.clone().finalize().into()
    }
}

fn year_month(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let dates = column
        .as_any()
        .downcast_ref::<Date32Array>()
        .ok_or_else(|| ArrowError::SchemaError("a birth date column is not a date".into()))?;
    let mut out = StringBuilder::with_capacity(dates.len(), dates.len() * 7);
    for i in 0..dates.len() {
        match dates.value_as_date(i).filter(|_| dates.is_valid(i)) {
            Some(date) => match four_digit_year_month(date) {
                Some(text) => out.append_value(std::str::from_utf8(&text).unwrap_or_default()),
                None => out.append_value(date.format("%Y-%m").to_string()),
            },
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `YYYY-MM` without the formatter (it was 5 % of an export's profile), for
/// the years `%Y` writes as four plain digits.
fn four_digit_year_month(date: chrono::NaiveDate) -> Option<[u8; 7]> {
    use chrono::Datelike;
    let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    let month = date.month();
    let digit = |n: u32| b'0' + (n % 10) as u8;
    Some([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::{Columns, Kind, col};
    use chrono::NaiveDate;
    use popbase_domain::Pseudonymizer;

    fn persons() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            col("id_number", Kind::Text, Some(Role::Subject)),
            col("name", Kind::Text, Some(Role::Name)),
            col("birth_date", Kind::Date, Some(Role::BirthDate)),
            col("father_id_number", Kind::Text, Some(Role::Person)),
            col("phone", Kind::Text, Some(Role::Contact)),
            col("sex", Kind::Text, None),
            col("ethnicity", Kind::Text, None),
        ]));
        let mut columns = Columns::new(schema);
        columns
            .row()
            .text("370302199001011232")
            .text("张三")
            .date(NaiveDate::from_ymd_opt(1990, 1, 1))
            .text("")
            .text("13800000000")
            .text("male")
            .text("01");
        columns
            .row()
            .text("110105201501010025")
            .text("李四")
            .date(NaiveDate::from_ymd_opt(2015, 1, 1))
            .text("370302199001011232")
            .text("")
            .text("female")
            .text("01");
        columns.take().expect("batch")
    }

    fn approved(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn text(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
        let values = column.as_any().downcast_ref::<StringArray>().expect("text");
        values.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn a_batch_names_its_subjects_by_their_pseudonym_prefixes_in_row_order() {
        let key = Pseudonymizer::new(b"test-key-0123456789".to_vec());
        let batch = persons();
        let all = approved(&["id_number", "sex"]);
        let mut released = Released::new(&batch.schema(), Level::Pseudonymised, &all, key.domain(EXPORT_DOMAIN));
        let (out, subjects) = released.apply_naming_subjects(&batch).expect("released");
        let column = out.column_by_name("id_pseudonym").expect("pseudonyms");
        let pseudonyms = column.as_any().downcast_ref::<StringArray>().expect("text");
        let expected: Vec<u64> = pseudonyms
            .iter()
            .flatten()
            .map(|p| u64::from_str_radix(&p[..16], 16).expect("hex"))
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(subjects, expected);
    }

    #[test]
    fn pseudonymised_release_replaces_generalises_and_drops() {
        let key = Pseudonymizer::new(b"test-key-0123456789".to_vec());
        let batch = persons();
        let all = approved(&["id_number", "name", "birth_date", "father_id_number", "phone", "sex"]);
        let mut released = Released::new(&batch.schema(), Level::Pseudonymised, &all, key.domain(EXPORT_DOMAIN));
        let out = released.apply(&batch).expect("released");
        assert_eq!(released.fields(), ["id_pseudonym", "birth_month", "father_id_pseudonym", "sex"]);
        assert_eq!(
            released.inputs(),
            ["id_number", "birth_date", "father_id_number", "sex"],
            "names and phones are not even built"
        );
        let ids = text(&out, "id_pseudonym");
        let me = key.pseudonym(EXPORT_DOMAIN, "370302199001011232");
        assert_eq!(ids[0].as_deref(), Some(me.as_str()));
        assert_eq!(
            text(&out, "father_id_pseudonym"),
            [None, Some(me.clone())],
            "same person, same pseudonym"
        );
        assert_eq!(
            text(&out, "birth_month"),
            [Some("1990-01".to_string()), Some("2015-01".to_string())]
        );
        assert_eq!(out.schema().metadata().get(LEVEL_KEY).map(String::as_str), Some("pseudonymised"));
        assert_eq!(released.rows(), 2);
        let mut expected = Sha256::new();
        for id in ["370302199001011232", "110105201501010025"] {
            expected.update(key.pseudonym(EXPORT_DOMAIN, id).as_bytes());
            expected.update(b"\n");
        }
        assert_eq!(released.digest(), <[u8; 32]>::from(expected.finalize()));
    }

    /// The owning role builds only [`Released::inputs`]: the release of
    /// those is the release of the whole batch, digest included.
    #[test]
    fn releasing_the_inputs_alone_is_releasing_the_whole_batch() {
        let key = Pseudonymizer::new(b"test-key-0123456789".to_vec());
        let batch = persons();
        let approved = approved(&["birth_date", "father_id_number", "phone", "sex"]);
        let mut whole = Released::new(&batch.schema(), Level::Pseudonymised, &approved, key.domain(EXPORT_DOMAIN));
        let inputs = whole.inputs();
        assert_eq!(inputs, ["id_number", "birth_date", "father_id_number", "sex"]);
        assert!(whole.releases("sex") && !whole.releases("phone") && !whole.releases("id_number"));
        let picked: Vec<usize> = inputs.iter().map(|n| batch.schema().index_of(n).expect("column")).collect();
        let narrow = batch.project(&picked).expect("projection");
        let mut built = Released::new(&narrow.schema(), Level::Pseudonymised, &approved, key.domain(EXPORT_DOMAIN));
        assert_eq!(built.apply(&narrow).expect("narrow"), whole.apply(&batch).expect("whole"));
        assert_eq!(built.schema(), whole.schema());
        assert_eq!(built.digest(), whole.digest());
    }

    /// Pseudonyms are hashed two at a time: every value, nulls between
    /// them and an odd one out land in their own rows.
    #[test]
    fn pseudonyms_land_in_their_rows_around_nulls() {
        let key = Pseudonymizer::new(b"test-key-0123456789".to_vec());
        let schema = Arc::new(Schema::new(vec![col("id_number", Kind::Text, Some(Role::Subject))]));
        let ids: Vec<&str> = vec![
            "",
            "370302199001011232",
            "",
            "",
            "110105201501010025",
            "11010519491231002X",
            "",
            "1",
            "22",
            "",
            "333",
        ];
        let mut columns = Columns::new(schema.clone());
        for id in &ids {
            columns.row().text(id);
        }
        let batch = columns.take().expect("batch");
        let mut released = Released::new(&schema, Level::Pseudonymised, &approved(&["id_number"]), key.domain(EXPORT_DOMAIN));
        let out = released.apply(&batch).expect("released");
        let expected: Vec<Option<String>> = ids
            .iter()
            .map(|id| (!id.is_empty()).then(|| key.pseudonym(EXPORT_DOMAIN, id)))
            .collect();
        assert_eq!(text(&out, "id_pseudonym"), expected);
    }

    /// The hand-written `YYYY-MM` agrees with chrono's `%Y-%m` wherever it is used.
    #[test]
    fn year_month_text_matches_the_formatter() {
        for (y, m) in [(2015, 1), (1949, 12), (5, 7), (999, 10), (9999, 12), (1, 1)] {
            let date = NaiveDate::from_ymd_opt(y, m, 1).expect("date");
            let text = four_digit_year_month(date).expect("four-digit year");
            assert_eq!(std::str::from_utf8(&text).expect("ascii"), date.format("%Y-%m").to_string());
        }
        for y in [-1, -44, 10000] {
            assert!(four_digit_year_month(NaiveDate::from_ymd_opt(y, 3, 1).expect("date")).is_none());
        }
    }

    #[test]
    fn identified_release_keeps_only_approved_columns_and_still_digests() {
        let key = Pseudonymizer::new(b"test-key-0123456789".to_vec());
        let batch = persons();
        let mut released = Released::new(
            &batch.schema(),
            Level::Identified,
            &approved(&["name", "sex"]),
            key.domain(EXPORT_DOMAIN),
        );
        let out = released.apply(&batch).expect("released");
        assert_eq!(released.fields(), ["name", "sex"]);
        assert_eq!(
            released.inputs(),
            ["id_number", "name", "sex"],
            "the subject is read for the digest"
        );
        assert_eq!(text(&out, "name")[1].as_deref(), Some("李四"));
        let mut pseudonymised = Released::new(
            &batch.schema(),
            Level::Pseudonymised,
            &approved(&["id_number"]),
            key.domain(EXPORT_DOMAIN),
        );
        pseudonymised.apply(&batch).expect("released");
        assert_eq!(released.digest(), pseudonymised.digest(), "the digest does not depend on the level");
        let narrow = RecordBatch::try_new(
            Arc::new(Schema::new(vec![col("id_number", Kind::Text, Some(Role::Subject))])),
            vec![batch.column(0).clone()],
        )
        .expect("narrow batch");
        assert!(
            released.apply(&narrow).is_err(),
            "a batch of another shape is an error, not a panic"
        );
    }
}
