//! Residence registrations (居住登记) and permits (居住证): the city's
//! non-registered residents, on their own store.

pub mod batched;
pub mod changes;
pub mod entitlements;
pub mod expiry;
pub mod export;
pub mod follow;
pub mod grpc;
pub mod holder_sets;
pub mod holders;
pub mod lifecycle;
pub mod permits;
pub mod pupils;
pub mod role;
pub mod tables;

pub use permits::Permits;
