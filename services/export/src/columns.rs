//! Building a dataset's record batches row by row, and the roles that mark
//! its personal columns.
//!
//! A dataset declares its columns once ([`Columns::new`] with [`col`]) and
//! writes each row in the same order through a [`RowWriter`]. Every column
//! that says something about a person carries a [`Role`] in its field
//! metadata (`popbase.role`); the gateway de-identifies by role alone, so a
//! new dataset is de-identified correctly as soon as its roles are right.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;

use crate::labels::LabelColumn;

/// Field metadata key holding a column's [`Role`].
pub const ROLE_KEY: &str = "popbase.role";

/// What a column says about a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The ID number of the person the row is about (one per dataset at
    /// most); exports digest it for the audit record.
    Subject,
    /// The ID number of another person (parent, spouse, owner …).
    Person,
    /// A document number that leads to one person (permit, certificate).
    Identifier,
    /// A person's name.
    Name,
    /// Phone numbers, street addresses: contact details.
    Contact,
    /// A date of birth.
    BirthDate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Subject => "subject",
            Role::Person => "person",
            Role::Identifier => "identifier",
            Role::Name => "name",
            Role::Contact => "contact",
            Role::BirthDate => "birth_date",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [
            Role::Subject,
            Role::Person,
            Role::Identifier,
            Role::Name,
            Role::Contact,
            Role::BirthDate,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }

    /// The role a field carries, if any.
    pub fn of(field: &Field) -> Option<Role> {
        field.metadata().get(ROLE_KEY).and_then(|r| Role::parse(r))
    }
}

/// Column types the datasets use.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Text,
    Date,
    U64,
    U32,
    Bool,
    /// Milliseconds since the epoch, UTC.
    Timestamp,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Text => DataType::Utf8,
            Kind::Date => DataType::Date32,
            Kind::U64 => DataType::UInt64,
            Kind::U32 => DataType::UInt32,
            Kind::Bool => DataType::Boolean,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
        }
    }
}

/// One column declaration: name, type, role (personal columns only).
pub fn col(name: &str, kind: Kind, role: Option<Role>) -> Field {
    let field = Field::new(name, kind.data_type(), true);
    match role {
        Some(role) => field.with_metadata(HashMap::from([(ROLE_KEY.to_string(), role.as_str().to_string())])),
        None => field,
    }
}

enum Column {
    /// Text gathered as bytes and checked as UTF-8 once per batch, in one
    /// pass over the column ([`Column::finish`]): the rows read straight
    /// from their encoding ([`crate::wire`]) hand over bytes, and checking
    /// each value as it came spent 9 % of an export.
    Text(BinaryBuilder),
    Date(Date32Builder),
    U64(UInt64Builder),
    U32(UInt32Builder),
    Bool(BooleanBuilder),
    Timestamp(TimestampMillisecondBuilder),
    /// An enum's labels as keys into its fixed dictionary
    /// ([`crate::labels`]).
    Label(LabelColumn),
    /// A column the export does not release: written to, kept nowhere.
    Skipped,
}

impl Column {
    /// The builder of `field`'s values; a dictionary that lists no labels
    /// is a dataset bug, reported when its first batch is taken.
    fn for_field(field: &Field) -> Result<Column, String> {
        match field.data_type() {
            DataType::Dictionary(_, _) => LabelColumn::for_field(field)
                .map(Column::Label)
                .ok_or_else(|| format!("column {} is a dictionary without its labels", field.name())),
            other => Ok(Column::for_type(other)),
        }
    }

    fn for_type(data_type: &DataType) -> Column {
        match data_type {
            DataType::Date32 => Column::Date(Date32Builder::new()),
            DataType::UInt64 => Column::U64(UInt64Builder::new()),
            DataType::UInt32 => Column::U32(UInt32Builder::new()),
            DataType::Boolean => Column::Bool(BooleanBuilder::new()),
            DataType::Timestamp(_, tz) => Column::Timestamp(TimestampMillisecondBuilder::new().with_timezone_opt(tz.clone())),
            _ => Column::Text(BinaryBuilder::new()),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Column::Text(b) => {
                let array = b.finish();
                // The next batch is sized like this one: growing the
                // builder value by value was 2 % of an export.
                *b = BinaryBuilder::with_capacity(array.len(), array.values().len());
                Arc::new(StringArray::try_from_binary(array)?)
            }
            Column::Date(b) => Arc::new(b.finish()),
            Column::U64(b) => Arc::new(b.finish()),
            Column::U32(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish()),
            Column::Label(c) => c.finish()?,
            Column::Skipped => return Err(ArrowError::SchemaError("a skipped column has no values".into())),
        })
    }

    /// Whether the column holds values (is not [`Column::Skipped`]).
    fn is_built(&self) -> bool {
        !matches!(self, Column::Skipped)
    }

    fn len(&self) -> usize {
        match self {
            Column::Text(b) => b.len(),
            Column::Date(b) => b.len(),
            Column::U64(b) => b.len(),
            Column::U32(b) => b.len(),
            Column::Bool(b) => b.len(),
            Column::Timestamp(b) => b.len(),
            Column::Label(c) => c.len(),
            Column::Skipped => 0,
        }
    }
}

/// The columns of one dataset being filled.
pub struct Columns {
    /// Every column a row writes, in order.
    written: SchemaRef,
    /// The columns kept (all of `written`, or those [`Columns::keeping`] names).
    kept: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
    /// The first row written out of order (a dataset bug, reported at `take`).
    mismatch: Option<String>,
}

impl Columns {
    pub fn new(schema: SchemaRef) -> Self {
        let all = schema.clone();
        Self::keeping(schema, &all)
    }

    /// Rows still write every column of `schema`, but batches hold only
    /// those `kept` names: an export builds no column it does not release
    /// (names, addresses and phones in a pseudonymised export of persons
    /// were a fifth of the text copied, then dropped).
    pub fn keeping(schema: SchemaRef, kept: &Schema) -> Self {
        let keep = |f: &Field| kept.fields().iter().any(|k| k.name() == f.name());
        let mut mismatch = None;
        let columns = schema
            .fields()
            .iter()
            .map(|f| match keep(f).then(|| Column::for_field(f)) {
                Some(Ok(column)) => column,
                Some(Err(bug)) => {
                    mismatch.get_or_insert(bug);
                    Column::Skipped
                }
                None => Column::Skipped,
            })
            .collect();
        let fields: Vec<Field> = schema.fields().iter().filter(|f| keep(f)).map(|f| f.as_ref().clone()).collect();
        Self {
            kept: Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
            written: schema,
            columns,
            rows: 0,
            mismatch,
        }
    }

    /// The columns of the batches [`Columns::take`] returns.
    pub fn schema(&self) -> &SchemaRef {
        &self.kept
    }

    /// Rows written since the last [`Columns::take`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Starts a row; write every column in schema order.
    pub fn row(&mut self) -> RowWriter<'_> {
        self.rows += 1;
        RowWriter { columns: self, next: 0 }
    }

    /// The rows written so far as one batch; starts over.
    pub fn take(&mut self) -> Result<RecordBatch, ArrowError> {
        if let Some(mismatch) = self.mismatch.take() {
            return Err(ArrowError::SchemaError(mismatch));
        }
        if let Some(short) = self.columns.iter().position(|c| c.is_built() && c.len() != self.rows) {
            return Err(ArrowError::SchemaError(format!("column {short} has a different length")));
        }
        self.rows = 0;
        let arrays = self
            .columns
            .iter_mut()
            .filter(|c| c.is_built())
            .map(Column::finish)
            .collect::<Result<_, _>>()?;
        RecordBatch::try_new(self.kept.clone(), arrays)
    }
}

/// An enum's export label: its proto name without `prefix`, lower case;
/// none for unspecified (see [`RowWriter::label`]).
pub fn label_of(proto_name: Option<&str>, prefix: &str) -> Option<String> {
    proto_name
        .map(|n| n.strip_prefix(prefix).unwrap_or(n))
        .filter(|n| *n != "UNSPECIFIED")
        .map(str::to_ascii_lowercase)
}

/// Writes one row, column by column in schema order. Empty strings and
/// missing values become nulls.
pub struct RowWriter<'c> {
    columns: &'c mut Columns,
    next: usize,
}

impl RowWriter<'_> {
    fn column(&mut self) -> Option<&mut Column> {
        let i = self.next;
        self.next += 1;
        self.columns.columns.get_mut(i)
    }

    fn wrong(&mut self, wanted: &str) {
        let i = self.next.saturating_sub(1);
        let name = self
            .columns
            .written
            .fields()
            .get(i)
            .map_or("(past the last column)".to_string(), |f| f.name().clone());
        self.columns
            .mismatch
            .get_or_insert_with(|| format!("column {i} ({name}) written as {wanted}"));
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.text_bytes(value.as_bytes())
    }

    /// Text not yet checked as UTF-8: a batch holding a value that is not
    /// fails as a whole when taken.
    pub fn text_bytes(&mut self, value: &[u8]) -> &mut Self {
        match self.column() {
            Some(Column::Text(b)) if value.is_empty() => b.append_null(),
            Some(Column::Text(b)) => b.append_value(value),
            Some(Column::Skipped) => {}
            _ => self.wrong("text"),
        }
        self
    }

    /// An enum's proto name without its prefix, lower case
    /// (`REGISTRATION_STATUS_ACTIVE` → `active`); unspecified is null. A
    /// label column ([`crate::labels::label_col`]) keys it into its
    /// dictionary; a text column takes the word.
    pub fn label(&mut self, proto_name: Option<&str>, prefix: &str) -> &mut Self {
        let label = label_of(proto_name, prefix);
        let label = label.as_deref().unwrap_or("");
        match self.column() {
            Some(Column::Label(c)) => {
                if !c.append_label(label) {
                    self.wrong("a label outside its set");
                }
            }
            Some(Column::Text(b)) if label.is_empty() => b.append_null(),
            Some(Column::Text(b)) => b.append_value(label),
            Some(Column::Skipped) => {}
            _ => self.wrong("label"),
        }
        self
    }

    /// A label column's key ([`crate::labels::Labels::key`]; none is null).
    pub fn label_key(&mut self, key: Option<i16>) -> &mut Self {
        match self.column() {
            Some(Column::Label(c)) => {
                if !c.append_key(key) {
                    self.wrong("a key outside its labels");
                }
            }
            Some(Column::Skipped) => {}
            _ => self.wrong("label key"),
        }
        self
    }

    pub fn date(&mut self, value: Option<NaiveDate>) -> &mut Self {
        const EPOCH_DAYS_FROM_CE: i32 = 719_163;
        match self.column() {
            Some(Column::Date(b)) => {
                use chrono::Datelike;
                b.append_option(value.map(|d| d.num_days_from_ce() - EPOCH_DAYS_FROM_CE));
            }
            Some(Column::Skipped) => {}
            _ => self.wrong("date"),
        }
        self
    }

    pub fn u64(&mut self, value: u64) -> &mut Self {
        match self.column() {
            Some(Column::U64(b)) => b.append_value(value),
            Some(Column::Skipped) => {}
            _ => self.wrong("u64"),
        }
        self
    }

    pub fn u32(&mut self, value: Option<u32>) -> &mut Self {
        match self.column() {
            Some(Column::U32(b)) => b.append_option(value),
            Some(Column::Skipped) => {}
            _ => self.wrong("u32"),
        }
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        match self.column() {
            Some(Column::Bool(b)) => b.append_value(value),
            Some(Column::Skipped) => {}
            _ => self.wrong("bool"),
        }
        self
    }

    pub fn timestamp_millis(&mut self, value: i64) -> &mut Self {
        match self.column() {
            Some(Column::Timestamp(b)) => b.append_value(value),
            Some(Column::Skipped) => {}
            _ => self.wrong("timestamp"),
        }
        self
    }
}

impl Drop for RowWriter<'_> {
    /// A row that wrote too few columns would shift every later row.
    fn drop(&mut self) {
        let expected = self.columns.columns.len();
        if self.next != expected {
            self.columns
                .mismatch
                .get_or_insert_with(|| format!("a row wrote {} of {expected} columns", self.next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Date32Array, StringArray};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            col("id_number", Kind::Text, Some(Role::Subject)),
            col("birth_date", Kind::Date, Some(Role::BirthDate)),
            col("status", Kind::Text, None),
        ]))
    }

    #[test]
    fn rows_become_a_batch_with_nulls_for_empty_values() {
        let mut columns = Columns::new(schema());
        columns
            .row()
            .text("370302199001011232")
            .date(NaiveDate::from_ymd_opt(1990, 1, 1))
            .label(Some("REGISTRATION_STATUS_ACTIVE"), "REGISTRATION_STATUS_");
        columns
            .row()
            .text("")
            .date(None)
            .label(Some("REGISTRATION_STATUS_UNSPECIFIED"), "REGISTRATION_STATUS_");
        let batch = columns.take().expect("batch");
        assert_eq!(batch.num_rows(), 2);
        let status = batch.column(2).as_any().downcast_ref::<StringArray>().expect("text");
        assert_eq!(status.value(0), "active");
        assert!(status.is_null(1) && batch.column(0).is_null(1));
        let birth = batch.column(1).as_any().downcast_ref::<Date32Array>().expect("date");
        assert_eq!(birth.value(0), 7305, "days since 1970-01-01");
        assert_eq!(Role::of(batch.schema().field(0)), Some(Role::Subject));
        assert_eq!(columns.rows(), 0);
    }

    #[test]
    fn kept_columns_only_are_built() {
        let kept = Schema::new(vec![col("status", Kind::Text, None), col("id_number", Kind::Text, None)]);
        let mut columns = Columns::keeping(schema(), &kept);
        columns
            .row()
            .text("370302199001011232")
            .date(NaiveDate::from_ymd_opt(1990, 1, 1))
            .label(Some("REGISTRATION_STATUS_ACTIVE"), "REGISTRATION_STATUS_");
        let batch = columns.take().expect("batch");
        let out = batch.schema();
        let names: Vec<&str> = out.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id_number", "status"], "the dataset's order, the role kept");
        assert_eq!(Role::of(batch.schema().field(0)), Some(Role::Subject));
        let status = batch.column(1).as_any().downcast_ref::<StringArray>().expect("text");
        assert_eq!(status.value(0), "active");
        let mut short = Columns::keeping(schema(), &kept);
        short.row().text("x").date(None);
        assert!(short.take().is_err(), "a short row is still caught");
    }

    #[test]
    fn a_row_out_of_order_is_an_error_not_a_panic() {
        let mut columns = Columns::new(schema());
        columns.row().date(None).text("x").text("y");
        assert!(columns.take().is_err());
        let mut short = Columns::new(schema());
        short.row().text("x");
        assert!(short.take().is_err());
        let mut garbled = Columns::new(schema());
        garbled.row().text_bytes(&[0xe5, 0xbc]).date(None).text("active");
        assert!(garbled.take().is_err(), "a cut UTF-8 sequence fails the batch");
    }
}
