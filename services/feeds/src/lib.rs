//! Department feeds that enrich the population base: medical insurance,
//! pension, education (student status and school districts), health (birth
//! certificates), marriage registration and housing.

pub mod records;
pub mod role;
pub mod tables;

pub use records::FeedStore;
