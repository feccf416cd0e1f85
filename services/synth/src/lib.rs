//! A synthetic city: deterministic for a seed, realistic enough to exercise
//! every interface, and never real people.
//!
//! The generator walks household by household:
//!
//! * [`geography`]: the city's counties, streets and committees (urban ones
//!   weighted heavier), and the outside counties people come from;
//! * [`people`]: unique, valid ID numbers (GB 11643), names, phones;
//! * [`households`]: family households (heads, spouses, children, elderly
//!   parents, with relationship codes) and collective households of every kind;
//! * [`migrants`]: non-registered residents with residence registration and permits;
//! * [`feeds`]: insurance, pension, schools and student status, birth
//!   certificates, marriages and housing, with a realistic uninsured share.
//!
//! After the load, [`events`] drives a year of life events (births, deaths,
//! settlements by policy, rural-to-urban moves, new collective households)
//! through the registry's own life-event code and returns the true counts.
//!
//! [`province`] generates every city of a province into the same stores.
//!
//! Output goes to a [`CitySink`] in chunks; [`load::StoreSink`] writes them
//! into the services' stores through the services' own import code.

pub mod events;
pub mod feeds;
pub mod gazetteer;
pub mod generator;
pub mod geography;
pub mod households;
pub mod load;
pub mod migrants;
pub mod names;
pub mod people;
pub mod province;

pub use generator::{CityGenerator, CityParams, CitySink, CitySummary, GenerateError};
