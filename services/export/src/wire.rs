//! Export columns read straight from a row's protobuf encoding.
//!
//! A full export decodes every row of a table. Decoding a person into its
//! prost message allocates a `String` for each of its twenty text fields;
//! the row writer then copies each into an Arrow builder and the message is
//! freed. In the export profile that was 56 % of the CPU, on the one scan
//! thread every batch waits for. A [`WirePlan`] walks the encoded bytes once
//! instead (borrowed from the engine's buffer) and appends each exported
//! field to its column: no message, no allocation per row, enum labels
//! looked up in a table made once (as keys into their
//! dictionaries, [`crate::labels`]).
//!
//! A plan names each column's field by its protobuf field number, so it
//! must follow the `.proto`. Each dataset that uses one keeps a test that
//! exports messages with every field set through both the plan and the
//! decoded message, and compares the batches.
//!
//! Datasets that reshape their rows (the `changes` dataset writes one row
//! per person an event concerns) stay on [`crate::scan::export_table`].

use arrow_schema::SchemaRef;
use chrono::NaiveDate;
use thiserror::Error;

use crate::columns::{Columns, RowWriter};
use crate::labels::Labels;

/// A row's encoding does not fit its plan: a bug or a corrupt value, never
/// input. (Text that is not UTF-8 fails its batch, see `Columns::take`.)
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("the encoding ends inside a field")]
    Truncated,
    #[error("field {field} is {found} on the wire, the plan expects {expected}")]
    WireType {
        field: u32,
        found: &'static str,
        expected: &'static str,
    },
    #[error("wire type {0} (groups) is not supported")]
    Group(u8),
}

/// One field as found on the wire; byte ranges index the whole row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Varint(u64),
    Bytes(usize, usize),
    Fixed,
}

/// The fields of the message in `buf[start..end]`, in encoding order.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8], start: usize, end: usize) -> Self {
        Self { buf, pos: start, end }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        // Tags, lengths and enum values nearly always fit one byte.
        if let Some(&byte) = self.buf.get(self.pos).filter(|b| **b < 0x80 && self.pos < self.end) {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).filter(|_| self.pos < self.end).ok_or(WireError::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::Truncated)
    }

    fn skip(&mut self, n: usize) -> Result<(usize, usize), WireError> {
        let start = self.pos;
        let end = start.checked_add(n).filter(|e| *e <= self.end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok((start, end))
    }

    fn next_field(&mut self) -> Result<Option<(u32, Value)>, WireError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = u32::try_from(tag >> 3).unwrap_or(u32::MAX);
        let value = match (tag & 7) as u8 {
            0 => Value::Varint(self.varint()?),
            1 => self.skip(8).map(|_| Value::Fixed)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                let (start, end) = self.skip(len)?;
                Value::Bytes(start, end)
            }
            5 => self.skip(4).map(|_| Value::Fixed)?,
            other => return Err(WireError::Group(other)),
        };
        Ok(Some((field, value)))
    }
}

/// How one column is read from its field.
#[derive(Debug, Clone)]
enum Read {
    /// A string (empty is null).
    Text,
    /// An enum by its label (unspecified or unknown is null).
    Label(Labels),
    /// A `popbase.common.v1.Date` message (absent or impossible is null).
    Date,
    /// How many times a repeated field occurs.
    Count,
}

/// One column of a plan: the field it is read from, and how.
#[derive(Debug, Clone)]
pub struct Pick {
    field: u32,
    /// A field of the message in `field` (an address's committee code).
    inner: Option<u32>,
    read: Read,
}

fn pick(field: u32, read: Read) -> Pick {
    Pick { field, inner: None, read }
}

pub fn text(field: u32) -> Pick {
    pick(field, Read::Text)
}

/// The string field `inner` of the message in field `field`.
pub fn text_in(field: u32, inner: u32) -> Pick {
    Pick {
        field,
        inner: Some(inner),
        read: Read::Text,
    }
}

pub fn label(field: u32, labels: Labels) -> Pick {
    pick(field, Read::Label(labels))
}

pub fn date(field: u32) -> Pick {
    pick(field, Read::Date)
}

pub fn count(field: u32) -> Pick {
    pick(field, Read::Count)
}

/// A column's value in the row being read.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Null,
    Text(usize, usize),
    Int(u64),
    Date(Option<NaiveDate>),
}

/// The columns of one dataset, each read from a field, in schema order.
#[derive(Debug, Clone)]
pub struct WirePlan {
    schema: SchemaRef,
    picks: Vec<Pick>,
    /// Each column's value when its field is absent.
    absent: Vec<Slot>,
    /// Columns by top-level field number.
    by_field: Vec<Vec<usize>>,
}

impl WirePlan {
    /// `picks` in the order of `schema`'s columns (a mismatch fails the
    /// first batch, see [`RowWriter`]).
    pub fn new(schema: SchemaRef, picks: Vec<Pick>) -> Self {
        let mut by_field: Vec<Vec<usize>> = Vec::new();
        for (column, pick) in picks.iter().enumerate() {
            let field = pick.field as usize;
            if by_field.len() <= field {
                by_field.resize_with(field + 1, Vec::new);
            }
            by_field[field].push(column);
        }
        let absent = picks
            .iter()
            .map(|p| match p.read {
                Read::Count => Slot::Int(0),
                _ => Slot::Null,
            })
            .collect();
        Self {
            schema,
            picks,
            absent,
            by_field,
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// A reader for rows of this plan, reusing its buffers row after row.
    pub fn reader(&self) -> WireRow<'_> {
        WireRow {
            plan: self,
            slots: Vec::with_capacity(self.picks.len()),
        }
    }
}

/// One row read by a plan: its columns' values, borrowed from the encoding.
pub struct WireRow<'p> {
    plan: &'p WirePlan,
    slots: Vec<Slot>,
}

impl WireRow<'_> {
    /// Reads the message `encoded` into this row's columns.
    pub fn read(&mut self, encoded: &[u8]) -> Result<(), WireError> {
        self.slots.clone_from(&self.plan.absent);
        let mut fields = Fields::new(encoded, 0, encoded.len());
        while let Some((field, value)) = fields.next_field()? {
            let Some(columns) = self.plan.by_field.get(field as usize) else {
                continue;
            };
            for &column in columns {
                let pick = &self.plan.picks[column];
                let value = match pick.inner {
                    None => Some(value),
                    Some(inner) => inner_field(encoded, field, value, inner)?,
                };
                if let Some(value) = value {
                    let slot = &mut self.slots[column];
                    *slot = read_slot(encoded, pick, value, *slot)?;
                }
            }
        }
        Ok(())
    }

    fn bytes<'e>(&self, encoded: &'e [u8], column: usize) -> &'e [u8] {
        match self.slots.get(column) {
            Some(Slot::Text(start, end)) => encoded.get(*start..*end).unwrap_or_default(),
            _ => &[],
        }
    }

    /// The text of `column` in the row last read (empty when null, or not
    /// UTF-8: such a row fails its batch if written).
    pub fn text<'e>(&self, encoded: &'e [u8], column: usize) -> &'e str {
        std::str::from_utf8(self.bytes(encoded, column)).unwrap_or_default()
    }

    /// Appends the row last read from `encoded` to `columns`.
    pub fn write(&self, encoded: &[u8], columns: &mut Columns) {
        let mut row: RowWriter<'_> = columns.row();
        for (column, (pick, slot)) in self.plan.picks.iter().zip(&self.slots).enumerate() {
            match (&pick.read, slot) {
                (Read::Text, _) => row.text_bytes(self.bytes(encoded, column)),
                (Read::Label(labels), Slot::Int(v)) => row.label_key(labels.key(*v)),
                (Read::Label(_), _) => row.label_key(None),
                (Read::Date, Slot::Date(d)) => row.date(*d),
                (Read::Date, _) => row.date(None),
                (Read::Count, Slot::Int(n)) => row.u32(u32::try_from(*n).ok()),
                (Read::Count, _) => row.u32(None),
            };
        }
    }
}

/// The last occurrence of field `inner` in the message `value` holds.
fn inner_field(encoded: &[u8], field: u32, value: Value, inner: u32) -> Result<Option<Value>, WireError> {
    let Value::Bytes(start, end) = value else {
        return Err(wrong(field, value, "a message"));
    };
    let mut fields = Fields::new(encoded, start, end);
    let mut found = None;
    while let Some((f, v)) = fields.next_field()? {
        if f == inner {
            found = Some(v);
        }
    }
    Ok(found)
}

fn read_slot(encoded: &[u8], pick: &Pick, value: Value, previous: Slot) -> Result<Slot, WireError> {
    let field = pick.field;
    Ok(match (&pick.read, value) {
        (Read::Text, Value::Bytes(start, end)) => Slot::Text(start, end),
        (Read::Label(_), Value::Varint(v)) => Slot::Int(v),
        (Read::Count, _) => match previous {
            Slot::Int(n) => Slot::Int(n + 1),
            _ => Slot::Int(1),
        },
        (Read::Date, Value::Bytes(start, end)) => Slot::Date(read_date(encoded, start, end)?),
        (Read::Text, v) => return Err(wrong(field, v, "a string")),
        (Read::Label(_), v) => return Err(wrong(field, v, "a varint")),
        (Read::Date, v) => return Err(wrong(field, v, "a date message")),
    })
}

/// A `Date { year = 1; month = 2; day = 3 }` message, as `Date::to_naive` reads it.
fn read_date(encoded: &[u8], start: usize, end: usize) -> Result<Option<NaiveDate>, WireError> {
    let (mut year, mut month, mut day) = (0i32, 0i32, 0i32);
    let mut fields = Fields::new(encoded, start, end);
    while let Some((f, v)) = fields.next_field()? {
        // int32 fields travel as varints, negative ones sign-extended to 64
        // bits: keeping the low 32 bits restores the value.
        if let Value::Varint(v) = v {
            match f {
                1 => year = v as i32,
                2 => month = v as i32,
                3 => day = v as i32,
                _ => {}
            }
        }
    }
    let (Ok(month), Ok(day)) = (u32::try_from(month), u32::try_from(day)) else {
        return Ok(None);
    };
    Ok(NaiveDate::from_ymd_opt(year, month, day))
}

fn wrong(field: u32, value: Value, expected: &'static str) -> WireError {
    let found = match value {
        Value::Varint(_) => "a varint",
        Value::Bytes(..) => "length-delimited",
        Value::Fixed => "fixed-width",
    };
    WireError::WireType { field, found, expected }
}
