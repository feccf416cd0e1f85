//! The department interfaces: what each answer says, built from the
//! services' records. Authorisation and minimisation live in the gate;
//! these modules fetch and compose.

pub mod enrollment;
pub mod insurance;
pub mod locality;
pub mod person;
pub mod standing;
pub mod writes;
