//! Domain operations of the household registry over its store.

use chrono::NaiveDate;
use popbase_proto::household::{Household, HouseholdKind, Person, RegistryEvent};
use popbase_storage::keys::{self, KeyReader};
use popbase_storage::{Batch, Durability, Read, StorageResult, Store, Table, Versioned};

use crate::tables::{
    self, COLLECTIVES, EVENTS, HOUSEHOLD_MEMBERS, HOUSEHOLDS, HOUSEHOLDS_BY_ADDRESS, PERSON_STANDINGS, PERSONS, PERSONS_BY_COMMITTEE,
};
use crate::writes::{self, Prior};

/// A household with its members, the unit of bulk import.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdWithMembers {
    pub household: Household,
    pub members: Vec<Person>,
}

#[derive(Clone)]
pub struct Registry {
    store: Store,
    durability: Durability,
}

impl Registry {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            durability: Durability::Sync,
        }
    }

    /// Life events commit with `durability` (the generator replays a year of
    /// events buffered and flushes once; a serving registry syncs each one).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    pub fn durability(&self) -> Durability {
        self.durability
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
            writes::put_household(&mut batch, Prior::Unchecked, &item.household);
            for person in &item.members {
                writes::put_person(&mut batch, Prior::Unchecked, person);
            }
        }
        self.store.commit_with(batch, Durability::NoWal)
    }

    /// A person with the version a life event checks on commit.
    pub fn person_versioned(&self, id_number: &str) -> StorageResult<Option<Versioned<Person>>> {
        self.store.get(&PERSONS, &tables::person_key(id_number))
    }

    pub fn household_versioned(&self, household_id: &str) -> StorageResult<Option<Versioned<Household>>> {
        self.store.get(&HOUSEHOLDS, &tables::household_key(household_id))
    }

    /// Active households registered at exactly this address.
    pub fn households_at(&self, committee_code: &str, detail: &str) -> StorageResult<Vec<String>> {
        let keys = self.store.index_keys(
            &HOUSEHOLDS_BY_ADDRESS,
            &tables::address_prefix(committee_code, detail),
            None,
            usize::MAX,
        )?;
        keys.iter()
            .map(|k| {
                let mut reader = KeyReader::new(k);
                reader.str()?;
                reader.str()?;
                Ok(reader.str()?)
            })
            .collect()
    }

    /// Active collective households under a division code of any level:
    /// (committee, kind, household id), in committee order.
    pub fn collectives_under(&self, division_code: &str) -> StorageResult<Vec<(String, HouseholdKind, String)>> {
        let keys = self
            .store
            .index_keys(&COLLECTIVES, &tables::division_prefix(division_code), None, usize::MAX)?;
        keys.iter()
            .map(|k| {
                let mut reader = KeyReader::new(k);
                let committee = reader.str()?;
                let kind = HouseholdKind::try_from(i32::from(reader.u8()?)).unwrap_or_default();
                Ok((committee, kind, reader.str()?))
            })
            .collect()
    }

    /// Recorded events from `from` to `to` inclusive, oldest first, strictly
    /// after event key `after`; returns the events and the last key when the
    /// page is full.
    pub fn events_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<(Vec<RegistryEvent>, Option<Vec<u8>>)> {
        let mut events = Vec::new();
        let mut last = None;
        let start = match after {
            // Strictly after the cursor: the cursor with a zero byte appended.
            Some(cursor) => [cursor, &[0]].concat(),
            None => tables::event_prefix(from),
        };
        let end = tables::event_prefix(to.succ_opt().unwrap_or(to));
        if limit == 0 {
            return Ok((events, None));
        }
        self.store.for_each_between(&EVENTS, &start, Some(&end), |key, row| {
            let mut event = row.value;
            event.sequence = tables::event_sequence(key);
            events.push(event);
            last = Some(key.to_vec());
            Ok(events.len() < limit)
        })?;
        let last = if events.len() == limit { last } else { None };
        Ok((events, last))
    }

    /// Whether each of `id_numbers` is in the registry (any status), in one
    /// batched read.
    pub fn contains_persons(&self, id_numbers: &[String]) -> StorageResult<Vec<bool>> {
        let keys: Vec<Vec<u8>> = id_numbers.iter().map(|id| tables::person_key(id)).collect();
        self.store.contains_many(&PERSONS, &keys)
    }

    pub fn person(&self, id_number: &str) -> StorageResult<Option<Person>> {
        Ok(self.store.get(&PERSONS, &tables::person_key(id_number))?.map(|v| v.value))
    }

    /// The persons of `id_numbers`, in the order asked (`None` where the
    /// registry holds none), read in one batch.
    pub fn persons(&self, id_numbers: &[String]) -> StorageResult<Vec<Option<Person>>> {
        self.read_persons(&PERSONS, id_numbers)
    }

    /// Like [`Registry::persons`], with only the fields of a
    /// [`PersonStanding`] read (and the rest of each record skipped).
    pub fn person_standings(&self, id_numbers: &[String]) -> StorageResult<Vec<Option<Person>>> {
        self.read_persons(&PERSON_STANDINGS, id_numbers)
    }

    /// The rows of `id_numbers` (in order, `None` when unknown) read as `table`'s message.
    fn read_persons<M: prost::Message + Default + Into<Person>>(
        &self,
        table: &Table<M>,
        id_numbers: &[String],
    ) -> StorageResult<Vec<Option<Person>>> {
        let keys: Vec<Vec<u8>> = id_numbers.iter().map(|id| tables::person_key(id)).collect();
        Ok(self
            .store
            .get_many(table, &keys)?
            .into_iter()
            .map(|v| v.map(|v| v.value.into()))
            .collect())
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
        let ids = keys.iter().map(|key| keys::second_str(key)).collect::<Result<Vec<_>, _>>()?;
        Ok(self.persons(&ids)?.into_iter().flatten().collect())
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

    /// Hands the ID number of every active person registered under a
    /// division code of any level to `visit`, in committee then ID order,
    /// until it answers `false`: the index alone, no person read.
    pub fn for_each_person_id_under(&self, division_code: &str, mut visit: impl FnMut(&str) -> bool) -> StorageResult<()> {
        self.store
            .bulk_index_keys(&PERSONS_BY_COMMITTEE, &tables::division_prefix(division_code), |key| {
                Ok(visit(&keys::second_str_ref(key)?))
            })
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
            status: popbase_proto::household::RegistrationStatus::Active as i32,
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

    #[test]
    fn the_standing_view_reads_exactly_its_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::new(Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open"));
        let household = Household {
            household_id: "370302000001".into(),
            ..Default::default()
        };
        let child = Person {
            former_names: vec!["曾用名".into()],
            phone: "13812345678".into(),
            father_id_number: "440524188001010014".into(),
            mother_id_number: "11010519491231002X".into(),
            spouse_id_number: "370302199001011232".into(),
            guardian_id_number: "110105201501010025".into(),
            birth_date: Some(popbase_proto::common::Date {
                year: 2015,
                month: 1,
                day: 1,
            }),
            occupation: "学生".into(),
            ..person("110105201501010025", "370302000001", "370302001001")
        };
        let members = vec![child.clone()];
        registry.import(&[HouseholdWithMembers { household, members }]).expect("import");
        let ids = vec![child.id_number.clone(), "370302199001011232".to_string()];
        let got = registry.person_standings(&ids).expect("standings");
        let expected = Person {
            id_number: child.id_number.clone(),
            birth_date: child.birth_date,
            address: child.address.clone(),
            status: child.status,
            father_id_number: child.father_id_number.clone(),
            mother_id_number: child.mother_id_number.clone(),
            guardian_id_number: child.guardian_id_number.clone(),
            ..Default::default()
        };
        assert_eq!(got, vec![Some(expected), None]);
        // The full view of the same row is the whole record.
        assert_eq!(registry.persons(&ids[..1]).expect("persons"), vec![Some(child)]);
    }
}
