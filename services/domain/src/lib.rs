//! Pure domain rules shared by every popbase component.
//!
//! Nothing in this crate performs IO: it parses, validates, generates and masks.
//! Keeping it pure means the same rules run at the gRPC edge, in the generator
//! and in tests, and can never disagree.

pub mod address;
pub mod calendar;
pub mod clock;
pub mod divisions;
pub mod id_number;
pub mod mask;
pub mod pseudonym;
mod sha256x2;

pub use divisions::{CommitteeKind, Division, DivisionError, DivisionLevel, Divisions};
pub use id_number::{IdNumber, IdNumberError, Sex};
pub use pseudonym::Pseudonymizer;
