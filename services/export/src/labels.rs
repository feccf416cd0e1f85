//! Enum label columns (`sex`, `status`, `relationship` …) as Arrow
//! dictionaries.
//!
//! A label column holds one of a few words an enum names. Sent as text,
//! eight of them were 28 % of the bytes of a pseudonymised export of
//! persons, and the bureau's Parquet writer hashed every one back into a
//! dictionary. As a dictionary each row carries a two-byte key, and the
//! words travel once per export: a column's dictionary is the whole label
//! set of its enum, equal in every batch, so an Arrow IPC stream or file
//! sends it once and pyarrow, DuckDB and Spark see categorical text.
//!
//! The label set is part of the schema: the field's metadata lists it
//! ([`LABELS_KEY`], comma-separated in key order), so every builder of the
//! column, and a reader of the file, knows it without the enum.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, Int16Builder};
use arrow_array::types::Int16Type;
use arrow_array::{ArrayRef, DictionaryArray, StringArray};
use arrow_schema::{ArrowError, DataType, Field};

use crate::columns::label_of;

/// Field metadata key listing a label column's labels, comma-separated, in
/// key order (key 0 is the first).
pub const LABELS_KEY: &str = "popbase.labels";

/// The Arrow type of every label column: 16-bit keys (an enum scanned by
/// [`Labels::of`] has at most 256 values, so no key overflows) into text.
pub fn label_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))
}

/// An enum's export labels as the dictionary of its column (the distinct
/// labels in value order) and each enum value's key into it.
#[derive(Debug, Clone)]
pub struct Labels {
    /// The dictionary: each label once, in value order.
    names: Vec<String>,
    /// The dictionary key of each enum value.
    keys: Vec<Option<i16>>,
}

impl Labels {
    /// The labels of the enum `name_of` names (prost's `try_from` and
    /// `as_str_name`), its proto names stripped of `prefix` and lower case.
    pub fn of(prefix: &str, name_of: impl Fn(i32) -> Option<&'static str>) -> Labels {
        let mut by_value: Vec<Option<String>> = (0..256).map(|value| label_of(name_of(value), prefix)).collect();
        while by_value.last().is_some_and(Option::is_none) {
            by_value.pop();
        }
        let mut names: Vec<String> = Vec::new();
        let keys = by_value
            .iter()
            .map(|label| {
                let label = label.as_ref()?;
                let key = names.iter().position(|n| n == label).unwrap_or_else(|| {
                    names.push(label.clone());
                    names.len() - 1
                });
                i16::try_from(key).ok()
            })
            .collect();
        Labels { names, keys }
    }

    /// The dictionary key of enum value `value` (none when unspecified or
    /// unknown: a null).
    pub fn key(&self, value: u64) -> Option<i16> {
        let index = usize::try_from(value).ok()?;
        self.keys.get(index).copied().flatten()
    }

    /// The column's dictionary: every label once, in key order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// An enum's [`Labels`] from its prost type: `labels!(Sex, "SEX_")`.
#[macro_export]
macro_rules! labels {
    ($enum:ty, $prefix:literal) => {
        $crate::labels::Labels::of($prefix, |v| <$enum>::try_from(v).ok().map(|e| e.as_str_name()))
    };
}

/// A label column's declaration: a dictionary of `labels`, listed in the
/// field's metadata.
pub fn label_col(name: &str, labels: &Labels) -> Field {
    Field::new(name, label_type(), true).with_metadata(HashMap::from([(LABELS_KEY.to_string(), labels.names.join(","))]))
}

/// A label column being filled: keys into the fixed dictionary its field
/// lists.
pub(crate) struct LabelColumn {
    names: Vec<String>,
    /// The dictionary of every batch this builder makes (the same array;
    /// the export's other builder threads hold equal ones, and an IPC
    /// writer that finds a batch's dictionary equal to the last one sent
    /// does not send it again).
    dictionary: ArrayRef,
    keys: Int16Builder,
}

impl LabelColumn {
    /// The builder of `field`'s labels; none when the field lists none (a
    /// dataset that declared a dictionary with [`arrow_schema::Field::new`]).
    pub(crate) fn for_field(field: &Field) -> Option<LabelColumn> {
        let listed = field.metadata().get(LABELS_KEY)?;
        let names: Vec<String> = listed.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect();
        let dictionary: ArrayRef = Arc::new(StringArray::from_iter_values(&names));
        Some(LabelColumn {
            names,
            dictionary,
            keys: Int16Builder::new(),
        })
    }

    /// Appends `label` (empty is null); false when the label is not in the
    /// column's set.
    pub(crate) fn append_label(&mut self, label: &str) -> bool {
        if label.is_empty() {
            self.keys.append_null();
            return true;
        }
        match self.names.iter().position(|n| n == label).and_then(|k| i16::try_from(k).ok()) {
            Some(key) => {
                self.keys.append_value(key);
                true
            }
            None => false,
        }
    }

    /// Appends a key [`Labels::key`] gave (none is null); false when it is
    /// past the column's set.
    pub(crate) fn append_key(&mut self, key: Option<i16>) -> bool {
        match key {
            Some(k) if usize::try_from(k).is_ok_and(|k| k < self.names.len()) => self.keys.append_value(k),
            Some(_) => return false,
            None => self.keys.append_null(),
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let keys = self.keys.finish();
        self.keys = Int16Builder::with_capacity(keys.len());
        Ok(Arc::new(DictionaryArray::<Int16Type>::try_new(keys, self.dictionary.clone())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_name(value: i32) -> Option<&'static str> {
        ["STATUS_UNSPECIFIED", "STATUS_ACTIVE", "STATUS_MOVED_OUT", "", "STATUS_DECEASED"]
            .get(usize::try_from(value).ok()?)
            .copied()
            .filter(|n| !n.is_empty())
    }

    #[test]
    fn an_enums_labels_are_keyed_in_value_order_skipping_unspecified_and_gaps() {
        let labels = Labels::of("STATUS_", status_name);
        assert_eq!(labels.names(), ["active", "moved_out", "deceased"]);
        assert_eq!(
            [0, 1, 2, 3, 4, 300].map(|v| labels.key(v)),
            [None, Some(0), Some(1), None, Some(2), None]
        );
        let label = |v: u64| labels.key(v).map(|k| labels.names()[k as usize].as_str());
        assert_eq!(label(4), Some("deceased"));
        assert_eq!(label(0), None);
    }

    #[test]
    fn a_label_column_shares_one_dictionary_across_batches() {
        let labels = Labels::of("STATUS_", status_name);
        let field = label_col("status", &labels);
        assert_eq!(field.data_type(), &label_type());
        let mut column = LabelColumn::for_field(&field).expect("labels listed");
        assert!(column.append_label("moved_out") && column.append_label("") && column.append_key(Some(2)));
        assert!(!column.append_label("emigrated") && !column.append_key(Some(3)), "outside the set");
        let first = column.finish().expect("batch");
        column.append_key(labels.key(1));
        let second = column.finish().expect("batch");
        let first = first.as_any().downcast_ref::<DictionaryArray<Int16Type>>().expect("dictionary");
        let second = second.as_any().downcast_ref::<DictionaryArray<Int16Type>>().expect("dictionary");
        assert!(Arc::ptr_eq(first.values(), second.values()), "the same dictionary each batch");
        let text = |a: &DictionaryArray<Int16Type>| -> Vec<Option<String>> {
            let values = a.values().as_any().downcast_ref::<StringArray>().expect("text");
            a.keys().iter().map(|k| k.map(|k| values.value(k as usize).to_string())).collect()
        };
        assert_eq!(text(first), [Some("moved_out".to_string()), None, Some("deceased".to_string())]);
        assert_eq!(text(second), [Some("active".to_string())]);
        assert!(LabelColumn::for_field(&Field::new("status", label_type(), true)).is_none());
    }
}
