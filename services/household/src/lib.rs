//! The household registry (户籍), the base of the population database.
//!
//! * [`tables`]: the store's schema and key layout; [`writes`] keeps the
//!   indexes in step with every row write.
//! * [`registry`]: reads and the bulk import.
//! * [`events`]: life events, each one atomic and in the change log.
//! * [`kinship`]: kinship as the registry's links show it.
//! * [`settlement`]: the settlement (落户) policy engine over data files.
//! * [`statistics`]: population by division and changes by period.
//! * [`export`]: the registry's datasets for bulk export (Arrow).
//! * [`grpc`]: the thin gRPC adapters; [`role`]: what the role serves.

pub mod as_of;
pub mod changes;
pub mod events;
pub mod export;
pub mod gazetteer;
pub mod grpc;
pub mod kinship;
pub mod registry;
pub mod role;
pub mod settlement;
pub mod statistics;
pub mod tables;
pub mod writes;

pub use events::{EventContext, Receipt};
pub use registry::Registry;
