//! The household registry (户籍), the base of the population database.
//!
//! * [`tables`]: the store's schema and key layout.
//! * [`registry`]: domain operations over the store (imports today; life
//!   events and settlement build on it).
//! * [`grpc`]: the thin gRPC adapter (`popbase.household.v1.HouseholdRegistry`).
//! * [`role`]: what the `household` role serves over gRPC.

pub mod grpc;
pub mod registry;
pub mod role;
pub mod tables;

pub use registry::Registry;
