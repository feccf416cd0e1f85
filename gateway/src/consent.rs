//! Citizens' consents, keyed by the subject's pseudonym (the store never
//! holds their ID number). A grant covers one department, interface and
//! purpose for a date window, optionally a number of uses; revocation is a
//! write the very next check reads.

use chrono::NaiveDate;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::gateway::{Consent, ConsentState};
use popbase_storage::{Batch, Read, StorageError, Store};

use crate::denial::{Denial, reason};
use crate::tables::{self, CONSENTS};

/// Attempts at a use-count update racing other calls on the same grant.
const USE_RETRIES: usize = 8;

/// What a consent allows on `today`.
pub fn state_on(consent: &Consent, today: NaiveDate) -> ConsentState {
    let from = consent.valid_from.as_ref().and_then(|d| d.to_naive());
    let until = consent.valid_until.as_ref().and_then(|d| d.to_naive());
    if consent.revoked_at_unix_millis != 0 {
        ConsentState::Revoked
    } else if until.is_some_and(|u| today > u) {
        ConsentState::Expired
    } else if from.is_some_and(|f| today < f) {
        ConsentState::NotYetValid
    } else if consent.use_limit != 0 && consent.uses >= consent.use_limit {
        ConsentState::UsedUp
    } else {
        ConsentState::Active
    }
}

/// The key of a grant: whose data, to whom, for which interface and purpose.
pub struct GrantKey<'a> {
    pub subject: &'a str,
    pub department: &'a str,
    pub interface: &'a str,
    pub purpose: &'a str,
}

impl GrantKey<'_> {
    fn key(&self) -> Vec<u8> {
        tables::consent_key(self.subject, self.department, self.interface, self.purpose)
    }
}

#[derive(Clone)]
pub struct ConsentStore {
    store: Store,
}

impl ConsentStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Records (or renews) a grant; a renewal starts a fresh use count.
    pub fn grant(&self, key: &GrantKey<'_>, consent: Consent) -> ServiceResult<Consent> {
        let mut batch = Batch::new("ledger", "consent_grant");
        batch.put(&CONSENTS, key.key(), &consent);
        self.store.commit(batch)?;
        Ok(consent)
    }

    pub fn revoke(&self, key: &GrantKey<'_>, now_millis: i64) -> ServiceResult<Consent> {
        let stored = self
            .store
            .get(&CONSENTS, &key.key())?
            .ok_or_else(|| ServiceError::not_found("consent for this department, interface and purpose"))?;
        let mut consent = stored.value;
        if consent.revoked_at_unix_millis == 0 {
            consent.revoked_at_unix_millis = now_millis;
            let mut batch = Batch::new("ledger", "consent_revoke");
            batch.expect_version(&CONSENTS, key.key(), Some(stored.version));
            batch.put(&CONSENTS, key.key(), &consent);
            self.store.commit(batch)?;
        }
        Ok(consent)
    }

    /// Every grant of one subject, with its state on `today`.
    pub fn list(&self, subject: &str, today: NaiveDate) -> ServiceResult<Vec<Consent>> {
        let mut out = Vec::new();
        self.store.for_each(&CONSENTS, &tables::subject_prefix(subject), |_, row| {
            let mut consent = row.value;
            consent.state = state_on(&consent, today) as i32;
            out.push(consent);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Checks the grant for this call and counts the use.
    pub fn check_and_use(&self, key: &GrantKey<'_>, today: NaiveDate) -> ServiceResult<Result<(), Denial>> {
        for _ in 0..USE_RETRIES {
            let Some(stored) = self.store.get(&CONSENTS, &key.key())? else {
                return Ok(Err(Denial::new(reason::NO_CONSENT, "the person has not consented to this use")));
            };
            let denial = match state_on(&stored.value, today) {
                ConsentState::Active => None,
                ConsentState::Revoked => Some(Denial::new(reason::CONSENT_REVOKED, "the person revoked this consent")),
                ConsentState::Expired => Some(Denial::new(reason::CONSENT_EXPIRED, "the consent's validity has ended")),
                ConsentState::UsedUp => Some(Denial::new(reason::CONSENT_USED_UP, "the consent's uses are used up")),
                ConsentState::NotYetValid | ConsentState::Unspecified => {
                    Some(Denial::new(reason::NO_CONSENT, "the consent is not yet valid"))
                }
            };
            if let Some(denial) = denial {
                return Ok(Err(denial));
            }
            if stored.value.use_limit == 0 {
                return Ok(Ok(()));
            }
            let mut consent = stored.value;
            consent.uses += 1;
            let mut batch = Batch::new("ledger", "consent_use");
            batch.expect_version(&CONSENTS, key.key(), Some(stored.version));
            batch.put(&CONSENTS, key.key(), &consent);
            match self.store.commit(batch) {
                Ok(_) => return Ok(Ok(())),
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Aborted("consent use count kept changing; retry".into()))
    }
}
