//! Thin gRPC adapters: validate at the edge, call the registry, map errors
//! once (through `ServiceError`).
//!
//! * [`registry`] — `HouseholdRegistry` reads.
//! * [`events`] — `LifeEvents`.
//! * [`settlement`] — `Settlement` (policy engine).
//! * [`statistics`] — `RegistryStatistics`.
//! * [`input`] — request validation shared by them.

pub mod events;
pub mod input;
pub mod registry;
pub mod settlement;
pub mod statistics;

pub use events::LifeEventsService;
pub use registry::RegistryService;
pub use settlement::SettlementService;
pub use statistics::StatisticsService;

use popbase_common::{ServiceError, ServiceResult};

/// Runs blocking registry work (synced writes, long scans) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ServiceResult<T> + Send + 'static) -> ServiceResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Internal(format!("registry task failed: {e}")))?
}
