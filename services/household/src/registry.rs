//! Domain operations of the household registry over its store.

use popbase_proto::common::Address;
use popbase_proto::household::{Household, Person};
use popbase_storage::keys;
use popbase_storage::{Batch, Durability, Read, StorageResult, Store};

use crate::tables::{self, HOUSEHOLD_MEMBERS, HOUSEHOLDS, HOUSEHOLDS_BY_COMMITTEE, PERSONS, PERSONS_BY_COMMITTEE};

/// A household with its members, the unit of bulk import.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdWithMembers {
    pub household: Household,
    pub members: Vec<Person>,
}

#[derive(Clone)]
pub struct Registry {
    store: Store,
}

impl Registry {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes households and their members in one batch without WAL, for the
    /// initial load; the caller flushes the store at the end. Every row still
    /// lands in the change log, so incremental exports see the load.
    pub fn import(&self, items: &[HouseholdWithMembers]) -> StorageResult<u64> {
        let mut batch = Batch::new("import", "initial_load");
        for item in items {
            let household = &item.household;
            let committee = Address::committee_of(&household.address);
            batch.put(&HOUSEHOLDS, tables::household_key(&household.household_id), household);
            batch.put_index(
                &HOUSEHOLDS_BY_COMMITTEE,
                tables::by_committee_key(committee, &household.household_id),
            );
            for person in &item.members {
                let committee = Address::committee_of(&person.address);
                batch.put(&PERSONS, tables::person_key(&person.id_number), person);
                batch.put_index(&HOUSEHOLD_MEMBERS, tables::member_key(&household.household_id, &person.id_number));
                batch.put_index(&PERSONS_BY_COMMITTEE, tables::by_committee_key(committee, &person.id_number));
            }
        }
        self.store.commit_with(batch, Durability::NoWal)
    }

    pub fn person(&self, id_number: &str) -> StorageResult<Option<Person>> {
        Ok(self.store.get(&PERSONS, &tables::person_key(id_number))?.map(|v| v.value))
    }

    pub fn household(&self, household_id: &str) -> StorageResult<Option<Household>> {
        Ok(self.store.get(&HOUSEHOLDS, &tables::household_key(household_id))?.map(|v| v.value))
    }

    /// Members of a household, in ID-number order.
    pub fn members(&self, household_id: &str) -> StorageResult<Vec<Person>> {
        let keys = self
            .store
            .index_keys(&HOUSEHOLD_MEMBERS, &tables::members_prefix(household_id), None, usize::MAX)?;
        self.persons_in(&keys)
    }

    /// The persons named by the second component of `(scope, id_number)` index keys.
    fn persons_in(&self, keys: &[Vec<u8>]) -> StorageResult<Vec<Person>> {
        let mut persons = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(person) = self.person(&keys::second_str(key)?)? {
                persons.push(person);
            }
        }
        Ok(persons)
    }

    /// One page of persons registered under a division code of any level, in
    /// committee then ID order, strictly after index key `after`. Returns the
    /// persons and the index key of the last one (the next page's cursor).
    pub fn persons_under(&self, division_code: &str, after: Option<&[u8]>, limit: usize) -> StorageResult<(Vec<Person>, Option<Vec<u8>>)> {
        let keys = self
            .store
            .index_keys(&PERSONS_BY_COMMITTEE, &tables::division_prefix(division_code), after, limit)?;
        let persons = self.persons_in(&keys)?;
        let last = if keys.len() == limit { keys.last().cloned() } else { None };
        Ok((persons, last))
    }

    /// Number of persons registered under a division code of any level.
    pub fn count_persons_under(&self, division_code: &str) -> StorageResult<u64> {
        self.store
            .count_index(&PERSONS_BY_COMMITTEE, &tables::division_prefix(division_code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::common::Address;
    use popbase_storage::StoreOptions;

    fn person(id: &str, household: &str, committee: &str) -> Person {
        Person {
            id_number: id.into(),
            name: "测试".into(),
            household_id: household.into(),
            address: Some(Address {
                committee_code: committee.into(),
                detail: "1号".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn import_then_look_up_by_id_household_and_division() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::new(Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open"));
        let household = Household {
            household_id: "370302000001".into(),
            address: Some(Address {
                committee_code: "370302001001".into(),
                detail: "1号".into(),
            }),
            ..Default::default()
        };
        let members = vec![
            person("11010519491231002X", "370302000001", "370302001001"),
            person("440524188001010014", "370302000001", "370302001001"),
        ];
        registry.import(&[HouseholdWithMembers { household, members }]).expect("import");
        registry.store().flush().expect("flush");
        assert!(registry.person("11010519491231002X").expect("get").is_some());
        assert_eq!(registry.members("370302000001").expect("members").len(), 2);
        assert_eq!(registry.count_persons_under("370302").expect("count"), 2);
        assert_eq!(registry.count_persons_under("370303").expect("count"), 0);
        assert!(registry.household("370302000001").expect("get").is_some());
    }
}
