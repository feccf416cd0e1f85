//! The address base (标准地址) and the location of written addresses in it:
//! the employer look-up of human resources asks which committee an
//! address lies in.
//!
//! A written address is taken apart ([`popbase_domain::address::parse`])
//! and matched by its road and door number: the road exactly, else every
//! road one character away (a typo); the door number within a range; the
//! county, street or committee it names narrowing the candidates. One
//! committee is an answer, up to [`MAX_CANDIDATES`] a short list, none (or
//! an address in another city) NOT_FOUND.

use popbase_domain::Divisions;
use popbase_domain::address::{ParsedAddress, parse};
use popbase_proto::household::StandardAddress;
use popbase_storage::{Batch, Durability, Read, StorageResult};

use crate::Registry;
use crate::tables::{self, STANDARD_ADDRESSES};

/// Most committees named in an ambiguous answer.
pub const MAX_CANDIDATES: usize = 5;

/// Where a written address lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    Resolved(String),
    /// Several committees fit equally (at most [`MAX_CANDIDATES`]).
    Ambiguous(Vec<String>),
    /// Why none does.
    NotFound(&'static str),
}

/// Whether `a` and `b` differ by at most one character (one substituted,
/// inserted or dropped).
fn one_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    match long.len() - short.len() {
        0 => short.iter().zip(long.iter()).filter(|(x, y)| x != y).count() <= 1,
        1 => (0..long.len()).any(|skip| long.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, c)| c).eq(short.iter())),
        _ => false,
    }
}

impl Registry {
    /// Loads the address base (bulk, no WAL; the caller flushes).
    pub fn import_standard_addresses(&self, rows: &[StandardAddress]) -> StorageResult<u64> {
        let mut batch = Batch::new("import", "standard_addresses");
        for row in rows {
            batch.put(&STANDARD_ADDRESSES, tables::standard_address_key(row), row);
        }
        self.store().commit_with(batch, Durability::NoWal)
    }

    /// The ranges of one road, every committee it runs through.
    pub fn standard_addresses_on(&self, road: &str) -> StorageResult<Vec<StandardAddress>> {
        let mut out = Vec::new();
        self.store().for_each(&STANDARD_ADDRESSES, &tables::road_prefix(road), |_, row| {
            out.push(row.value);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The ranges of every road one character away from `road`.
    fn standard_addresses_near(&self, road: &str) -> StorageResult<Vec<StandardAddress>> {
        let mut out = Vec::new();
        self.store().for_each(&STANDARD_ADDRESSES, &[], |_, row| {
            if one_apart(&row.value.road, road) {
                out.push(row.value);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Locates `text` in the address base of `city` (a 4-digit code).
    pub fn locate_address(&self, text: &str, city: &str) -> StorageResult<(ParsedAddress, Located)> {
        let parsed = parse(text, city, Divisions::embedded());
        if parsed.elsewhere {
            return Ok((parsed, Located::NotFound("the address names a place outside the city")));
        }
        // The county and street the text names, and the committees it names
        // within them (several villages may share a name).
        let higher: Vec<&str> = parsed.named.iter().filter(|c| c.len() < 12).map(String::as_str).collect();
        let within = |committee: &str| higher.iter().all(|h| committee.starts_with(h));
        let named_committees: Vec<&String> = parsed.named.iter().filter(|c| c.len() == 12 && within(c)).collect();
        // Without a road in the base, the committee the text names decides.
        let by_committee = || match named_committees.as_slice() {
            [one] => Located::Resolved((*one).clone()),
            [] => Located::NotFound("no standard address of the city has that road and door number, and no committee is named"),
            several => Located::Ambiguous(several.iter().take(MAX_CANDIDATES).map(|c| (*c).clone()).collect()),
        };
        let Some(road) = parsed.road.clone() else {
            let located = by_committee();
            return Ok((parsed, located));
        };
        let mut ranges = self.standard_addresses_on(&road)?;
        if ranges.is_empty() {
            ranges = self.standard_addresses_near(&road)?;
        }
        if let Some(number) = parsed.number {
            ranges.retain(|r| (r.from_number..=r.to_number).contains(&number));
        }
        // The divisions the text names narrow the candidates, unless they
        // contradict every one (a clerk's wrong community: the road decides).
        let narrowed: Vec<&StandardAddress> = ranges
            .iter()
            .filter(|r| within(&r.committee_code) && (named_committees.is_empty() || named_committees.contains(&&r.committee_code)))
            .collect();
        let fitting: Vec<&StandardAddress> = if narrowed.is_empty() { ranges.iter().collect() } else { narrowed };
        let mut committees: Vec<String> = fitting.iter().map(|r| r.committee_code.clone()).collect();
        committees.sort();
        committees.dedup();
        let located = match committees.len() {
            0 => by_committee(),
            1 => Located::Resolved(committees.remove(0)),
            _ => Located::Ambiguous(committees.into_iter().take(MAX_CANDIDATES).collect()),
        };
        Ok((parsed, located))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_character_apart_is_a_typo_two_are_another_road() {
        assert!(one_apart("华光路", "华光路"));
        assert!(one_apart("华光路", "华广路"));
        assert!(one_apart("华光路", "华光大路"));
        assert!(one_apart("人民西路", "人民路"));
        assert!(!one_apart("华光路", "金晶路"));
        assert!(!one_apart("华光路", "华光东一路"));
    }
}
