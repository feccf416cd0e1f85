//! `popbase export`: a department's bulk export, through the gateway's
//! Flight endpoint (so the same authorisation, de-identification and audit
//! apply), written to a Parquet or Arrow IPC file.
//!
//! The file is written beside its destination and renamed into place only
//! when the export completed (the gateway audits before the last batch), so
//! a cut export never looks like a whole one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use arrow_array::RecordBatch;
use arrow_flight::{FlightClient, Ticket as FlightTicket};
use arrow_ipc::writer::FileWriter;
use arrow_schema::SchemaRef;
use clap::{Args, ValueEnum};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use popbase_export::columns::Role;
use popbase_export::{LEVEL_KEY, Level, SNAPSHOT_SEQ_KEY, Ticket};

use crate::gateway_client::GatewayArgs;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Parquet,
    Arrow,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// persons, households, changes, statistics, standard_addresses, residence_permits,
    /// medical_insurance, pensions, education, marriage, housing.
    #[arg(long)]
    pub dataset: String,
    /// The file format written.
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: Format,
    /// The file to write: new, or a regular file replaced when the export completes.
    #[arg(long)]
    pub out: PathBuf,
    /// Catalogue purpose code (filled in when the approval has only one).
    #[arg(long, default_value = "")]
    pub purpose: String,
    /// Only rows under this division code (2–12 digits).
    #[arg(long, default_value = "")]
    pub division: String,
    /// Only rows changed after this snapshot sequence (a previous export's `popbase.snapshot_seq`).
    #[arg(long)]
    pub since_seq: Option<u64>,
    /// Ask for more de-identification than approved (never less).
    #[arg(long, value_parser = parse_level)]
    pub level: Option<Level>,
    /// Only these columns, by their names in the dataset (e.g.
    /// `id_number,sex,birth_date`); each must be approved. Default: all approved.
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
}

fn parse_level(text: &str) -> Result<Level, String> {
    match text {
        "identified" => Ok(Level::Identified),
        "pseudonymised" => Ok(Level::Pseudonymised),
        other => Err(format!("'{other}': identified or pseudonymised")),
    }
}

/// Rows per Parquet row group, DuckDB's default: the writer holds a whole
/// group in memory, and with arrow-rs's million-row default an export of a
/// city's persons held about a million rows' encoded pages at once.
/// (Measured: no change in rows/s at 200,000 rows.)
const ROW_GROUP_ROWS: usize = 122_880;

/// Largest dictionary page: codes and labels (a few thousand distinct
/// values) fit many times over; columns whose values barely repeat do not.
const DICTIONARY_BYTES: usize = 128 << 10;

/// Snappy, like most Parquet writers. The columns that identify a person
/// (ID numbers or their pseudonyms, document numbers) have no dictionary:
/// nearly every value is new, so a dictionary only costs hashing each one
/// (a quarter of the writer's CPU) until the writer falls back to plain.
///
/// In a pseudonymised export those columns are pseudonyms, 32 random hex
/// digits: Snappy finds chance four-byte matches all through them, spent a
/// third of the writer's CPU there and saved 9 % of their bytes, and their
/// min/max statistics prune nothing (every row group spans the whole range)
/// while computing them compared every value twice. There they are written
/// uncompressed and without statistics. In an identified export they are
/// ID numbers in key order, which compress and prune well: Snappy and
/// statistics as for every column.
///
/// Other columns start with a dictionary, but give it up once it passes
/// [`DICTIONARY_BYTES`]: a household ID repeats for two or three persons
/// only, and interning each value until the default megabyte-sized
/// dictionary was full was most of the writer's hashing. Enum labels come as
/// Arrow dictionaries ([`popbase_export::labels`]) and stay dictionary pages.
fn parquet_properties(schema: &SchemaRef) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_page_size_limit(DICTIONARY_BYTES)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    let pseudonymised = schema.metadata().get(LEVEL_KEY).map(String::as_str) == Some(Level::Pseudonymised.as_str());
    for field in schema.fields() {
        if matches!(Role::of(field), Some(Role::Subject | Role::Person | Role::Identifier)) {
            let column = ColumnPath::from(field.name().as_str());
            props = props.set_column_dictionary_enabled(column.clone(), false);
            if pseudonymised {
                props = props
                    .set_column_compression(column.clone(), Compression::UNCOMPRESSED)
                    .set_column_statistics_enabled(column, EnabledStatistics::None);
            }
        }
    }
    props.build()
}

/// Where batches go: one of the two file formats.
enum Sink {
    Parquet(ArrowWriter<File>),
    Arrow(FileWriter<File>),
}

impl Sink {
    fn create(format: Format, path: &Path, schema: &SchemaRef) -> anyhow::Result<Sink> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(match format {
            Format::Parquet => Sink::Parquet(ArrowWriter::try_new(file, schema.clone(), Some(parquet_properties(schema)))?),
            Format::Arrow => Sink::Arrow(FileWriter::try_new(file, schema)?),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        match self {
            Sink::Parquet(w) => w.write(batch)?,
            Sink::Arrow(w) => w.write(batch)?,
        }
        Ok(())
    }

    /// Finishes the file `sink` wrote, or writes an empty one of `schema`.
    fn finish_or_create(sink: Option<Sink>, format: Format, path: &Path, schema: &SchemaRef) -> anyhow::Result<()> {
        match sink {
            Some(sink) => sink.finish(),
            None => Sink::create(format, path, schema)?.finish(),
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Parquet(w) => {
                w.close()?;
            }
            Sink::Arrow(mut w) => w.finish()?,
        }
        Ok(())
    }
}

/// Batches written to `path` on a blocking thread, in the order sent; the
/// writer (none when no batch came) once the sender is dropped.
fn spawn_writer(
    format: Format,
    path: PathBuf,
) -> (
    tokio::sync::mpsc::Sender<RecordBatch>,
    tokio::task::JoinHandle<anyhow::Result<Option<Sink>>>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(4);
    let writer = tokio::task::spawn_blocking(move || {
        let mut sink: Option<Sink> = None;
        while let Some(batch) = rx.blocking_recv() {
            let sink = match &mut sink {
                Some(sink) => sink,
                None => sink.insert(Sink::create(format, &path, &batch.schema())?),
            };
            sink.write(&batch)?;
        }
        Ok(sink)
    });
    (tx, writer)
}

/// The destination may be a new file or a regular file to replace; the
/// export is renamed onto it, which would put a file in place of a device
/// (`--out /dev/null` once replaced the machine's null device) or of a
/// symbolic link (not its target), or fail on a directory only after the
/// whole export.
fn check_destination(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(found) if !found.is_file() => bail!(
            "{} is not a regular file: popbase export writes a file beside it and renames it into place",
            path.display()
        ),
        _ => Ok(()),
    }
}

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    check_destination(&args.out)?;
    let ticket = Ticket {
        dataset: args.dataset.clone(),
        purpose: args.purpose.clone(),
        division: args.division.clone(),
        since_seq: args.since_seq,
        level: args.level,
        columns: args.columns.clone(),
    };
    if let Err(e) = ticket.check() {
        bail!("{e}");
    }
    let mut client = FlightClient::new(args.gateway.channel().await?);
    if let Some(token) = &args.gateway.token {
        client.add_header("authorization", &format!("Bearer {}", token.trim()))?;
    }
    let started = Instant::now();
    let mut stream = client
        .do_get(FlightTicket::new(ticket.to_bytes()))
        .await
        .context("export refused")?;
    let partial = args.out.with_extension("partial");
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} {human_pos} rows ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.set_message(args.dataset.clone());
    // The file is written on its own thread while batches keep arriving:
    // encoding Parquet in the receiving task held the stream up for as long
    // as each batch took to encode.
    let (batches, writer) = spawn_writer(args.format, partial.clone());
    let mut rows = 0u64;
    while let Some(batch) = stream.try_next().await.context("export stream")? {
        rows += batch.num_rows() as u64;
        if batches.send(batch).await.is_err() {
            break;
        }
        progress.set_position(rows);
    }
    drop(batches);
    let schema = stream.schema().cloned().context("the gateway sent no schema")?;
    let written = writer.await.context("the file writer")??;
    Sink::finish_or_create(written, args.format, &partial, &schema)?;
    std::fs::rename(&partial, &args.out).with_context(|| format!("moving the export to {}", args.out.display()))?;
    progress.finish_and_clear();
    let seq = schema.metadata().get(SNAPSHOT_SEQ_KEY).map_or("?", String::as_str);
    let seconds = started.elapsed().as_secs_f64();
    crate::say::info(&format!(
        "popbase: exported {rows} rows of {} to {} in {seconds:.1} s ({:.0} rows/s); snapshot_seq {seq} (pass --since-seq {seq} for the next incremental export)",
        args.dataset,
        args.out.display(),
        rows as f64 / seconds.max(1e-9),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_schema::Schema;
    use popbase_export::columns::{Kind, col};

    use super::*;

    #[test]
    fn the_destination_is_a_new_or_regular_file_never_a_device_or_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(check_destination(&dir.path().join("new.parquet")).is_ok());
        let existing = dir.path().join("old.parquet");
        std::fs::write(&existing, b"old").expect("write");
        assert!(check_destination(&existing).is_ok(), "replaced when the export completes");
        assert!(check_destination(dir.path()).is_err(), "a directory");
        let link = dir.path().join("link.parquet");
        std::os::unix::fs::symlink(&existing, &link).expect("symlink");
        assert!(check_destination(&link).is_err(), "a link, which the rename would replace");
        let null = check_destination(Path::new("/dev/null")).expect_err("a device");
        assert!(null.to_string().contains("not a regular file"), "{null}");
    }

    #[test]
    fn pseudonyms_are_written_plain_and_identified_numbers_compressed() {
        let fields = vec![
            col("id_pseudonym", Kind::Text, Some(Role::Subject)),
            col("father_pseudonym", Kind::Text, Some(Role::Person)),
            col("permit_number", Kind::Text, Some(Role::Identifier)),
            col("committee_code", Kind::Text, None),
            col("birth_month", Kind::Text, Some(Role::BirthDate)),
        ];
        let at = |level: Level| {
            let metadata = HashMap::from([(LEVEL_KEY.to_string(), level.as_str().to_string())]);
            parquet_properties(&Arc::new(Schema::new_with_metadata(fields.clone(), metadata)))
        };
        for (level, props) in [
            (Level::Pseudonymised, at(Level::Pseudonymised)),
            (Level::Identified, at(Level::Identified)),
        ] {
            let dictionary = |name: &str| props.dictionary_enabled(&ColumnPath::from(name));
            assert!(!dictionary("id_pseudonym") && !dictionary("father_pseudonym") && !dictionary("permit_number"));
            assert!(dictionary("committee_code") && dictionary("birth_month"));
            assert_eq!(props.compression(&ColumnPath::from("committee_code")), Compression::SNAPPY);
            assert_ne!(
                props.statistics_enabled(&ColumnPath::from("committee_code")),
                EnabledStatistics::None
            );
            assert_eq!(props.max_row_group_row_count(), Some(ROW_GROUP_ROWS));
            let (compression, statistics) = (
                props.compression(&ColumnPath::from("id_pseudonym")),
                props.statistics_enabled(&ColumnPath::from("father_pseudonym")),
            );
            match level {
                Level::Pseudonymised => {
                    assert_eq!((compression, statistics), (Compression::UNCOMPRESSED, EnabledStatistics::None))
                }
                Level::Identified => {
                    assert_eq!(compression, Compression::SNAPPY, "ID numbers in key order compress");
                    assert_ne!(statistics, EnabledStatistics::None, "and prune");
                }
            }
            assert_eq!(props.dictionary_page_size_limit(), DICTIONARY_BYTES);
        }
    }
}
