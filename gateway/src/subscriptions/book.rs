//! Subscriptions as the ledger keeps them: the record (with the position
//! the department last acknowledged) and a roster of subject pseudonyms,
//! in the ledger's store so every gateway replica serves the same
//! subscriptions and a restart loses no acknowledgement.

use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::gateway::{Position, Subscription};
use popbase_storage::keys::KeyReader;
use popbase_storage::{Batch, Read, StorageError, Store};

use crate::tables::{self, ROSTERS, SUBSCRIPTIONS};

/// Most persons one roster holds (a province's pensioners fit).
pub const MAX_ROSTER: u64 = 5_000_000;
/// Most roster pseudonyms handed out per page.
pub const MAX_ROSTER_PAGE: usize = 50_000;
/// Attempts at an update racing another replica's on the same subscription.
const RETRIES: usize = 8;

#[derive(Clone)]
pub struct SubscriptionBook {
    store: Store,
}

/// `position` with each source at least where `floor` is.
fn furthest(floor: &Position, position: &Position) -> Position {
    Position {
        household: floor.household.max(position.household),
        residence: floor.residence.max(position.residence),
        feeds: floor.feeds.max(position.feeds),
    }
}

impl SubscriptionBook {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Records a new subscription (ABORTED if its id is taken).
    pub fn create(&self, subscription: Subscription) -> ServiceResult<Subscription> {
        let key = tables::subscription_key(&subscription.subscription_id);
        let mut batch = Batch::new("ledger", "subscription_created");
        batch.expect_version(&SUBSCRIPTIONS, key.clone(), None);
        batch.put(&SUBSCRIPTIONS, key, &subscription);
        match self.store.commit(batch) {
            Ok(_) => Ok(subscription),
            Err(StorageError::Conflict { .. }) => Err(ServiceError::Aborted("the subscription id is taken; retry".into())),
            Err(e) => Err(e.into()),
        }
    }

    pub fn get(&self, id: &str) -> ServiceResult<Option<Subscription>> {
        Ok(self.store.get(&SUBSCRIPTIONS, &tables::subscription_key(id))?.map(|v| v.value))
    }

    /// Reads, changes and writes back the record under a version check,
    /// retrying when another replica wrote in between; `extra` adds the
    /// rest of the batch from the record as read.
    fn update(
        &self,
        id: &str,
        reason: &str,
        change: impl Fn(&mut Subscription, &mut Batch) -> ServiceResult<()>,
    ) -> ServiceResult<Subscription> {
        let key = tables::subscription_key(id);
        for _ in 0..RETRIES {
            let stored = self
                .store
                .get(&SUBSCRIPTIONS, &key)?
                .ok_or_else(|| ServiceError::not_found("subscription"))?;
            let mut subscription = stored.value;
            let mut batch = Batch::new("ledger", reason);
            change(&mut subscription, &mut batch)?;
            batch.expect_version(&SUBSCRIPTIONS, key.clone(), Some(stored.version));
            batch.put(&SUBSCRIPTIONS, key.clone(), &subscription);
            match self.store.commit(batch) {
                Ok(_) => return Ok(subscription),
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Aborted("the subscription kept changing; retry".into()))
    }

    /// Adds and removes roster pseudonyms; the size counts each person once.
    pub fn update_roster(&self, id: &str, add: &[String], remove: &[String]) -> ServiceResult<Subscription> {
        self.update(id, "roster_updated", |subscription, batch| {
            if !subscription.roster {
                return Err(ServiceError::precondition(
                    "subscription_id",
                    "the subscription is scoped by division, not a roster",
                ));
            }
            // Removals first, each person once; a person both removed and
            // added ends on the roster.
            let added: std::collections::HashSet<&String> = add.iter().collect();
            let removed: std::collections::HashSet<&String> = remove.iter().filter(|s| !added.contains(s)).collect();
            let mut size = subscription.roster_size;
            for subject in removed {
                let key = tables::roster_key(id, subject);
                if self.store.contains(&ROSTERS, &key)? {
                    batch.delete_index(&ROSTERS, key);
                    size = size
                        .checked_sub(1)
                        .ok_or_else(|| ServiceError::Internal("a roster's size fell below its members".into()))?;
                }
            }
            for subject in added {
                let key = tables::roster_key(id, subject);
                if !self.store.contains(&ROSTERS, &key)? {
                    batch.put_index(&ROSTERS, key);
                    size += 1;
                }
            }
            if size > MAX_ROSTER {
                return Err(ServiceError::invalid(
                    "add_id_numbers",
                    format!("a roster holds at most {MAX_ROSTER} persons"),
                ));
            }
            subscription.roster_size = size;
            subscription.roster_version += 1;
            Ok(())
        })
    }

    /// Roster pseudonyms after `after` (empty: from the start), in order.
    pub fn roster_page(&self, id: &str, after: &str, limit: usize) -> ServiceResult<Vec<String>> {
        let prefix = tables::subscription_key(id);
        let after_key = (!after.is_empty()).then(|| tables::roster_key(id, after));
        let keys = self
            .store
            .index_keys(&ROSTERS, &prefix, after_key.as_deref(), limit.min(MAX_ROSTER_PAGE))?;
        keys.iter()
            .map(|key| {
                let mut reader = KeyReader::new(key);
                reader
                    .str()
                    .and_then(|_| reader.str())
                    .map_err(|e| ServiceError::Internal(format!("roster key: {e:?}")))
            })
            .collect()
    }

    /// Moves the acknowledged position on (never back) and stamps the time.
    pub fn acknowledge(&self, id: &str, position: &Position, at_millis: i64) -> ServiceResult<Subscription> {
        self.update(id, "subscription_acknowledged", |subscription, _| {
            let floor = subscription.acknowledged.unwrap_or_default();
            subscription.acknowledged = Some(furthest(&floor, position));
            subscription.acknowledged_unix_millis = at_millis;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> (tempfile::TempDir, SubscriptionBook) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), tables::SCHEMA, Default::default()).expect("store");
        (dir, SubscriptionBook::new(store))
    }

    fn subscription(id: &str, roster: bool) -> Subscription {
        Subscription {
            subscription_id: id.into(),
            roster,
            division_code: if roster { String::new() } else { "370302".into() },
            ..Default::default()
        }
    }

    #[test]
    fn a_roster_counts_each_person_once_and_pages_in_order() {
        let (_dir, book) = book();
        book.create(subscription("s1", true)).expect("created");
        let people: Vec<String> = (0..5).map(|n| format!("{n:032x}")).collect();
        let twice = [people.clone(), people[..2].to_vec()].concat();
        assert_eq!(book.update_roster("s1", &twice, &[]).expect("added").roster_size, 5);
        let removals = [people[1].clone(), people[1].clone(), "f".repeat(32)];
        let after = book.update_roster("s1", &[], &removals).expect("removed");
        assert_eq!((after.roster_size, after.roster_version), (4, 2), "a repeated removal counts once");
        let both = book.update_roster("s1", &[people[2].clone()], &[people[2].clone()]).expect("both");
        assert_eq!(both.roster_size, 4, "removed and added at once: still on the roster");
        let first = book.roster_page("s1", "", 2).expect("page");
        assert_eq!(first, vec![people[0].clone(), people[2].clone()]);
        let rest = book.roster_page("s1", &first[1], 10).expect("page");
        assert_eq!(rest, vec![people[3].clone(), people[4].clone()]);
    }

    #[test]
    fn a_division_subscription_has_no_roster_and_ids_are_unique() {
        let (_dir, book) = book();
        book.create(subscription("s2", false)).expect("created");
        let refused = book.update_roster("s2", &["0".repeat(32)], &[]).expect_err("no roster");
        assert!(refused.to_string().contains("division"), "{refused}");
        assert!(matches!(book.create(subscription("s2", false)), Err(ServiceError::Aborted(_))));
        assert!(matches!(book.update_roster("none", &[], &[]), Err(ServiceError::NotFound { .. })));
    }

    #[test]
    fn an_acknowledgement_never_moves_a_source_back() {
        let (_dir, book) = book();
        book.create(subscription("s3", false)).expect("created");
        let ahead = Position {
            household: 10,
            residence: 2,
            feeds: 7,
        };
        book.acknowledge("s3", &ahead, 1).expect("acked");
        let mixed = Position {
            household: 4,
            residence: 9,
            feeds: 7,
        };
        let stored = book.acknowledge("s3", &mixed, 2).expect("acked");
        assert_eq!(
            stored.acknowledged,
            Some(Position {
                household: 10,
                residence: 9,
                feeds: 7
            })
        );
        assert_eq!(stored.acknowledged_unix_millis, 2);
    }
}
