//! The gateway: the only door departments use.
//!
//! Every answer will pass one path: authenticate → authorise (catalogue,
//! purpose, consent) → fetch → minimise/mask → audit. The foundation serves
//! the gateway role with health and reflection; the department interfaces
//! and the audit trail are built on top of it.

pub mod role;
