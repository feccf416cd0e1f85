//! Department feeds that enrich the population base: medical insurance,
//! pension, education (student status and school districts), health (birth
//! certificates), marriage registration and housing.

pub mod changes;
pub mod chunk_reads;
pub mod directory;
pub mod export;
pub mod grpc;
pub mod ingest;
pub mod ingest_stream;
pub mod insured;
pub mod records;
pub mod role;
pub mod tables;
pub mod validate;

pub use records::FeedStore;
