//! The gateway: the only door departments use.
//!
//! Every answer passes one path ([`gate`]): authenticate (mTLS client
//! certificate or signed token) → authorise (catalogue share class,
//! approval, purpose, quota, consent or legal basis) → fetch from the
//! services (over gRPC, or straight from their handlers when this process
//! runs them, see [`calls`]) → minimise to the approved fields → audit (hash-chained,
//! durable before the answer) → answer. Denials take the same path and
//! leave their own audit record.

pub mod audit;
pub mod auth;
pub mod calls;
pub mod catalogue;
pub mod consent;
pub mod denial;
pub mod export_trail;
pub mod gate;
pub mod grpc;
pub mod interfaces;
pub mod ledger;
pub mod live_catalogue;
pub mod quota;
pub mod refusals;
pub mod refusing;
pub mod role;
pub mod sources;
pub mod subscriptions;
pub mod tables;
