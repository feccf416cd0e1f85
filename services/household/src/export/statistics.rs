//! The `statistics` dataset: registered population per residents'/
//! villagers' committee with its street and county, by sex and age band.
//! Read from the committee indexes of the export's snapshot, like
//! `RegistryStatistics.Population`, so no person row is decoded.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow_schema::{Schema, SchemaRef};
use chrono::NaiveDate;
use popbase_common::ServiceResult;
use popbase_domain::{DivisionLevel, Divisions};
use popbase_export::columns::{Kind, col};
use popbase_export::{BatchSink, Ticket};
use popbase_proto::household::DivisionPopulation;
use popbase_storage::{Read, Snapshot};

use crate::statistics::{AGE_BANDS, add_person, committee_and_id, empty};
use crate::tables::{self, HOUSEHOLDS_BY_COMMITTEE, PERSONS_BY_COMMITTEE};

/// Column name of an age band: `age_0_5`, …, `age_80_plus`.
fn band_name(i: usize) -> String {
    match AGE_BANDS.get(i + 1) {
        Some(next) => format!("age_{}_{}", AGE_BANDS[i], next - 1),
        None => format!("age_{}_plus", AGE_BANDS[i]),
    }
}

pub(super) static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        col("county_code", Kind::Text, None),
        col("county_name", Kind::Text, None),
        col("street_code", Kind::Text, None),
        col("street_name", Kind::Text, None),
        col("committee_code", Kind::Text, None),
        col("committee_name", Kind::Text, None),
        col("persons", Kind::U64, None),
        col("households", Kind::U64, None),
        col("male", Kind::U64, None),
        col("female", Kind::U64, None),
    ];
    fields.extend((0..AGE_BANDS.len()).map(|i| col(&band_name(i), Kind::U64, None)));
    Arc::new(Schema::new(fields))
});

pub(super) fn scan(snapshot: &Snapshot, ticket: &Ticket, on: NaiveDate, sink: &mut BatchSink) -> ServiceResult<()> {
    let prefix = tables::division_prefix(&ticket.division);
    let mut committees: BTreeMap<String, DivisionPopulation> = BTreeMap::new();
    snapshot.for_each_index_key(&PERSONS_BY_COMMITTEE, &prefix, |key| {
        let (committee, id) = committee_and_id(key)?;
        add_person(committees.entry(committee.clone()).or_insert_with(|| empty(&committee)), &id, on);
        Ok(true)
    })?;
    snapshot.for_each_index_key(&HOUSEHOLDS_BY_COMMITTEE, &prefix, |key| {
        let (committee, _) = committee_and_id(key)?;
        committees.entry(committee.clone()).or_insert_with(|| empty(&committee)).households += 1;
        Ok(true)
    })?;
    let divisions = Divisions::embedded();
    let mut columns = sink.columns(SCHEMA.clone());
    for (code, counts) in committees {
        let (mut county, mut street) = (("", ""), ("", ""));
        for division in divisions.path(&code) {
            match division.level {
                DivisionLevel::County => county = (&division.code, &division.name),
                DivisionLevel::Street => street = (&division.code, &division.name),
                _ => {}
            }
        }
        let mut row = columns.row();
        row.text(county.0)
            .text(county.1)
            .text(street.0)
            .text(street.1)
            .text(&code)
            .text(&counts.division_name)
            .u64(counts.persons)
            .u64(counts.households)
            .u64(counts.male)
            .u64(counts.female);
        for band in &counts.age_bands {
            row.u64(band.persons);
        }
        drop(row);
        if !sink.fill(&mut columns) {
            break;
        }
    }
    sink.finish(&mut columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_band_columns_are_named_by_their_bounds() {
        assert_eq!(band_name(0), "age_0_5");
        assert_eq!(band_name(1), "age_6_14");
        assert_eq!(band_name(AGE_BANDS.len() - 1), "age_80_plus");
        assert_eq!(SCHEMA.fields().len(), 10 + AGE_BANDS.len());
    }
}
