//! The catalogue a gateway answers by, replaceable while it serves: the
//! file (or shipped) catalogue it starts with, then each version applied
//! through `SharingCatalogue.ApplyCatalogue`, which the ledger keeps and
//! every replica follows ([`follow`], every [`FOLLOW_INTERVAL`]). A call
//! takes the catalogue of the moment once (an `Arc`), so a swap never
//! changes the rules under a call in progress.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use popbase_proto::ledger::StoredCatalogue;

use crate::catalogue::{Catalogue, CatalogueError};
use crate::gate::Gate;

/// How often a replica asks the ledger for a newer catalogue.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// One catalogue version as applied.
#[derive(Clone)]
pub struct Applied {
    pub catalogue: Arc<Catalogue>,
    /// 0: the start-up catalogue; applied versions count from 1.
    pub version: u64,
    pub toml: Arc<str>,
    pub applied_at_unix_millis: i64,
    pub applied_by: String,
}

pub struct LiveCatalogue {
    current: RwLock<Applied>,
}

impl LiveCatalogue {
    /// Starts with `catalogue`, parsed from `toml`.
    pub fn new(catalogue: Catalogue, toml: String) -> Self {
        Self {
            current: RwLock::new(Applied {
                catalogue: Arc::new(catalogue),
                version: 0,
                toml: toml.into(),
                applied_at_unix_millis: 0,
                applied_by: String::new(),
            }),
        }
    }

    /// The catalogue of the moment.
    pub fn get(&self) -> Arc<Catalogue> {
        self.read().catalogue.clone()
    }

    pub fn applied(&self) -> Applied {
        self.read().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Applied> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `stored` when it is newer than the current version; whether it did.
    pub fn adopt(&self, stored: &StoredCatalogue) -> Result<bool, CatalogueError> {
        if stored.version <= self.read().version {
            return Ok(false);
        }
        let catalogue = Catalogue::parse(&stored.toml, &format!("applied catalogue version {}", stored.version))?;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if stored.version <= current.version {
            return Ok(false);
        }
        *current = Applied {
            catalogue: Arc::new(catalogue),
            version: stored.version,
            toml: stored.toml.as_str().into(),
            applied_at_unix_millis: stored.applied_at_unix_millis,
            applied_by: stored.applied_by.clone(),
        };
        Ok(true)
    }
}

/// Every [`FOLLOW_INTERVAL`], asks the ledger for the applied catalogue and
/// adopts a newer one. A failure is logged and the catalogue kept.
pub async fn follow(gate: Arc<Gate>) {
    let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
    loop {
        tick.tick().await;
        let asked = gate.ledger.catalogue();
        let stored = match tracing::Instrument::instrument(asked, popbase_common::propagation::unsampled_span("catalogue.follow")).await {
            Ok(Some(stored)) => stored,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading the applied catalogue from the ledger failed; keeping the current one");
                continue;
            }
        };
        match gate.live_catalogue.adopt(&stored) {
            Ok(true) => tracing::info!(version = stored.version, "adopted an applied sharing catalogue"),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e.without_caller_text(), "the ledger's catalogue does not load; keeping the current one"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_newer_loadable_version_is_adopted() {
        let live = LiveCatalogue::new(Catalogue::shipped().expect("shipped"), crate::catalogue::SHIPPED.into());
        let edited = crate::catalogue::SHIPPED.replace(
            "purposes = [\"EMPLOYMENT_SERVICE\"]",
            "purposes = [\"EMPLOYMENT_SERVICE\", \"TALENT\"]",
        );
        let stored = |version, toml: &str| StoredCatalogue {
            version,
            toml: toml.into(),
            applied_at_unix_millis: 1,
            applied_by: "big_data".into(),
        };
        assert!(live.adopt(&stored(1, &edited)).expect("adopt"));
        let approval = live.get().approval("hrss", "PersonSummary").cloned().expect("approval");
        assert!(approval.purposes.contains(&"TALENT".to_string()));
        assert!(
            !live.adopt(&stored(1, crate::catalogue::SHIPPED)).expect("same version"),
            "not newer"
        );
        assert!(live.adopt(&stored(2, "not = [toml")).is_err());
        assert_eq!(live.applied().version, 1, "a bad version leaves the last good one");
    }
}
