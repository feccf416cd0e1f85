//! Bulk export in Arrow, shared by the roles that own data and the gateway
//! in front of them.
//!
//! * [`dataset`]: what can be exported, and which role owns it;
//! * [`ticket`]: the JSON a Flight ticket carries (dataset, filters,
//!   purpose, de-identification level), validated at the edge;
//! * [`columns`]: how a dataset marks its personal columns, so the gateway
//!   can de-identify any dataset without knowing its shape; [`labels`]:
//!   its enum columns as dictionaries;
//! * [`deidentify`]: the one transformation every exported batch passes;
//! * [`scan`] and [`wire`]: reading a dataset's rows from a snapshot,
//!   decoded or (for the big flat tables) straight from their encoding,
//!   built into batches on several threads by [`pipeline`];
//! * [`source`] and [`flight`]: the internal Flight service a data-owning
//!   role serves its datasets on (the gateway is its only client);
//! * [`encode`]: batches to Flight messages, for that service and the
//!   gateway's.

pub mod columns;
pub mod dataset;
pub mod deidentify;
pub mod encode;
pub mod flight;
pub mod labels;
pub mod pipeline;
pub mod scan;
pub mod source;
pub mod ticket;
pub mod wire;

pub use dataset::{DATASETS, Dataset, Owner};
pub use deidentify::{Level, Released};
pub use source::{BatchSink, DatasetSource, Export};
pub use ticket::Ticket;

/// Schema metadata: the sequence number of the store snapshot an export was
/// read from. Pass it as `since_seq` to get only what changed afterwards.
pub const SNAPSHOT_SEQ_KEY: &str = "popbase.snapshot_seq";
/// Schema metadata: the dataset's name.
pub const DATASET_KEY: &str = "popbase.dataset";
/// Schema metadata: the de-identification level the rows were released at.
pub const LEVEL_KEY: &str = "popbase.deidentification";

/// Rows per record batch: large enough that per-batch costs vanish (a
/// batch of persons is about a megabyte), small enough that an export's
/// stages overlap soon: nothing reaches the gateway before the first batch
/// is built, and the last is de-identified and sent while the builders
/// idle. At 16,384 rows that filling and draining took a fifth of a
/// 190 ms export of persons, with a tenth of the two cores unused.
pub const BATCH_ROWS: usize = 4_096;
