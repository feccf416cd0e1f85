//! Domain operations over the residence store.

use std::sync::Arc;

use popbase_proto::common::Address;
use popbase_proto::residence::{ResidencePermit, ResidenceRegistration};
use popbase_storage::keys;
use popbase_storage::{Batch, Durability, Read, StorageResult, Store};

use crate::holder_sets::HolderSets;
use crate::tables::{self, PERMITS, PERMITS_BY_PERSON, REGISTRATIONS, REGISTRATIONS_BY_COMMITTEE};

/// A non-registered resident's registration and the permits issued to them.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentRecords {
    pub registration: ResidenceRegistration,
    pub permits: Vec<ResidencePermit>,
}

#[derive(Clone)]
pub struct Permits {
    store: Store,
    /// Days' valid holders shared by the scans asking together.
    holder_sets: Arc<HolderSets>,
}

impl Permits {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            holder_sets: Arc::default(),
        }
    }

    pub fn holder_sets(&self) -> &HolderSets {
        &self.holder_sets
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Bulk import for the initial load (no WAL; the caller flushes).
    pub fn import(&self, items: &[ResidentRecords]) -> StorageResult<u64> {
        let mut batch = Batch::new("import", "initial_load");
        for item in items {
            let registration = &item.registration;
            let committee = Address::committee_of(&registration.address);
            batch.put(&REGISTRATIONS, tables::registration_key(&registration.id_number), registration);
            batch.put_index(
                &REGISTRATIONS_BY_COMMITTEE,
                tables::by_committee_key(committee, &registration.id_number),
            );
            for permit in &item.permits {
                batch.put(&PERMITS, tables::permit_key(&permit.permit_number), permit);
                batch.put_index(
                    &PERMITS_BY_PERSON,
                    tables::permit_by_person_key(&permit.id_number, &permit.permit_number),
                );
            }
        }
        self.store.commit_with(batch, Durability::NoWal)
    }

    /// Whether each of `id_numbers` has a residence registration, in one batched read.
    pub fn has_registrations(&self, id_numbers: &[String]) -> StorageResult<Vec<bool>> {
        let keys: Vec<Vec<u8>> = id_numbers.iter().map(|id| tables::registration_key(id)).collect();
        self.store.contains_many(&REGISTRATIONS, &keys)
    }

    pub fn registration(&self, id_number: &str) -> StorageResult<Option<ResidenceRegistration>> {
        Ok(self
            .store
            .get(&REGISTRATIONS, &tables::registration_key(id_number))?
            .map(|v| v.value))
    }

    /// Several registrations at once (one batched read), in the order asked.
    pub fn registrations(&self, id_numbers: &[String]) -> StorageResult<Vec<Option<ResidenceRegistration>>> {
        let keys: Vec<Vec<u8>> = id_numbers.iter().map(|id| tables::registration_key(id)).collect();
        Ok(self
            .store
            .get_many(&REGISTRATIONS, &keys)?
            .into_iter()
            .map(|row| row.map(|v| v.value))
            .collect())
    }

    /// Every permit ever issued to a person, oldest number first.
    pub fn permits_of(&self, id_number: &str) -> StorageResult<Vec<ResidencePermit>> {
        let mut numbers = Vec::new();
        self.store
            .for_each_index_key(&PERMITS_BY_PERSON, &tables::person_prefix(id_number), |key| {
                numbers.push(keys::second_str(key)?);
                Ok(true)
            })?;
        let mut permits = Vec::with_capacity(numbers.len());
        for number in numbers {
            if let Some(p) = self.store.get(&PERMITS, &tables::permit_key(&number))? {
                permits.push(p.value);
            }
        }
        Ok(permits)
    }

    pub fn permit(&self, permit_number: &str) -> StorageResult<Option<ResidencePermit>> {
        Ok(self.store.get(&PERMITS, &tables::permit_key(permit_number))?.map(|v| v.value))
    }

    /// One page of active registrations under a division, strictly after
    /// index key `after`; the last key when the page is full.
    pub fn registrations_under(
        &self,
        division_code: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<(Vec<ResidenceRegistration>, Option<Vec<u8>>)> {
        let keys = self
            .store
            .index_keys(&REGISTRATIONS_BY_COMMITTEE, &tables::division_prefix(division_code), after, limit)?;
        let mut registrations = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(r) = self.registration(&keys::second_str(key)?)? {
                registrations.push(r);
            }
        }
        let last = if keys.len() == limit { keys.last().cloned() } else { None };
        Ok((registrations, last))
    }

    pub fn count_registrations_under(&self, division_code: &str) -> StorageResult<u64> {
        self.store
            .count_index(&REGISTRATIONS_BY_COMMITTEE, &tables::division_prefix(division_code))
    }
}
