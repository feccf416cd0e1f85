//! Shared plumbing for every popbase role.
//!
//! A role (household, residence, feeds, gateway) is a tonic server; this crate
//! gives each the same configuration, telemetry, health, reflection, shutdown
//! and error mapping, so behaviour never drifts between roles.

pub mod actor;
pub mod backup_set;
pub mod cert;
pub mod changes;
pub mod config;
pub mod deadline;
pub mod error;
pub mod limits;
pub mod load_shed;
pub mod malformed;
pub mod mesh;
pub mod methods;
pub mod metrics;
pub mod ops;
pub mod packed;
pub mod propagation;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod upstream;
pub mod validate;

pub use config::{Config, Role};
pub use error::{ServiceError, ServiceResult};
pub use shutdown::Shutdown;
