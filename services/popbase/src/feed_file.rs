//! A city's feed records kept in a file: `popbase feed-load --save FILE`
//! writes the generated city's feeds once, `--from FILE` sends them again
//! without the generator, as a department sends a roster it already has
//! (generating the 200k city's 502,712 records takes 0.65 s, a tenth of
//! their refresh; the file keeps that off the cores a benchmark measures).
//!
//! The format is an 8-byte magic line, then each `FeedRecord` as a
//! length-delimited protobuf message (varint length, then the message), in
//! the generator's order.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::feeds::FeedRecord;
use popbase_residence::permits::ResidentRecords;
use popbase_synth::{CityGenerator, CitySink};
use prost::Message;

const MAGIC: &[u8; 8] = b"PBFEED1\n";

/// A record larger than this is a damaged file, not a record.
const MAX_RECORD_BYTES: usize = 1 << 20;

/// Where records come from.
pub enum Records {
    Generated(Box<CityGenerator>),
    Saved(PathBuf),
}

impl Records {
    /// Hands every record to `each`, in order; stops at its first error.
    pub fn each(self, mut each: impl FnMut(FeedRecord) -> Result<(), String>) -> Result<(), String> {
        match self {
            Records::Generated(generator) => {
                let mut sink = EachFeed(&mut each);
                generator.run(&mut sink).map(|_| ()).map_err(|e| e.to_string())
            }
            Records::Saved(path) => read(&path, each).map_err(|e| format!("{e:#}")),
        }
    }
}

/// Passes the generator's feed chunks on record by record; drops the rest.
struct EachFeed<'a, F>(&'a mut F);

impl<F: FnMut(FeedRecord) -> Result<(), String>> CitySink for EachFeed<'_, F> {
    fn households(&mut self, _: Vec<HouseholdWithMembers>) -> Result<(), String> {
        Ok(())
    }

    fn residents(&mut self, _: Vec<ResidentRecords>) -> Result<(), String> {
        Ok(())
    }

    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String> {
        chunk.into_iter().try_for_each(&mut *self.0)
    }
}

/// Writes every record of `records` to `path`; returns how many.
pub fn save(records: Records, path: &Path) -> anyhow::Result<u64> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(MAGIC)?;
    let mut count = 0u64;
    let mut buffer = Vec::with_capacity(1024);
    records
        .each(|record| {
            buffer.clear();
            record.encode_length_delimited(&mut buffer).map_err(|e| e.to_string())?;
            count += 1;
            out.write_all(&buffer).map_err(|e| e.to_string())
        })
        .map_err(anyhow::Error::msg)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(count)
}

/// Writes every record of `records` to `path` as CSV for a database
/// baseline (scripts/bench/feeds.sh): source, record_id, the first subject's
/// ID number, as_of_unix_millis shifted by `newer_by_ms`, and the encoded
/// record as PostgreSQL's hex `bytea`. Returns how many.
pub fn save_csv(records: Records, path: &Path, newer_by_ms: i64) -> anyhow::Result<u64> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut count = 0u64;
    let mut buffer = Vec::with_capacity(1024);
    records
        .each(|mut record| {
            record.as_of_unix_millis += newer_by_ms;
            buffer.clear();
            record.encode(&mut buffer).map_err(|e| e.to_string())?;
            let subject = popbase_feeds::records::subjects(&record)
                .first()
                .copied()
                .unwrap_or_default()
                .to_string();
            count += 1;
            writeln!(
                out,
                "{},\"{}\",{},{},\\x{}",
                record.source,
                record.record_id.replace('"', "\"\""),
                subject,
                record.as_of_unix_millis,
                hex::encode(&buffer)
            )
            .map_err(|e| e.to_string())
        })
        .map_err(anyhow::Error::msg)?;
    out.flush()?;
    Ok(count)
}

fn read(path: &Path, mut each: impl FnMut(FeedRecord) -> Result<(), String>) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).context("reading the file's magic line")?;
    anyhow::ensure!(&magic == MAGIC, "{} is not a feed-load file", path.display());
    let mut pending: Vec<u8> = Vec::with_capacity(2 << 20);
    let mut block = vec![0u8; 1 << 20];
    loop {
        let read = match input.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        pending.extend_from_slice(&block[..read]);
        let mut taken = 0;
        while let Some((record, length)) = next_record(&pending[taken..])? {
            taken += length;
            each(record).map_err(anyhow::Error::msg)?;
        }
        pending.drain(..taken);
    }
    anyhow::ensure!(pending.is_empty(), "{} ends inside a record", path.display());
    Ok(())
}

/// The next whole record at the start of `pending` and the bytes it takes,
/// or `None` when it needs more bytes.
fn next_record(pending: &[u8]) -> anyhow::Result<Option<(FeedRecord, usize)>> {
    let mut peek = pending;
    let Ok(length) = prost::encoding::decode_varint(&mut peek) else {
        // A varint is at most 10 bytes: fewer may just be cut at the block's end.
        anyhow::ensure!(pending.len() < 10, "a damaged record length");
        return Ok(None);
    };
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    anyhow::ensure!(length <= MAX_RECORD_BYTES, "a record of {length} bytes: a damaged file");
    let header = pending.len() - peek.len();
    if peek.len() < length {
        return Ok(None);
    }
    let record = FeedRecord::decode(&peek[..length]).context("decoding a record")?;
    Ok(Some((record, header + length)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_synth::CityParams;

    #[test]
    fn saved_records_read_back_the_same_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feeds.bin");
        let generated = || Records::Generated(Box::new(CityGenerator::new(CityParams::new("3703", 300, 7)).unwrap()));
        let mut expected = Vec::new();
        generated()
            .each(|r| {
                expected.push(r);
                Ok(())
            })
            .unwrap();
        assert!(expected.len() > 300, "a city of 300 has feeds: {}", expected.len());
        assert_eq!(save(generated(), &path).unwrap(), expected.len() as u64);
        let mut read_back = Vec::new();
        Records::Saved(path)
            .each(|r| {
                read_back.push(r);
                Ok(())
            })
            .unwrap();
        assert_eq!(read_back, expected);
    }

    #[test]
    fn a_cut_or_foreign_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feeds.bin");
        let generated = Records::Generated(Box::new(CityGenerator::new(CityParams::new("3703", 100, 7)).unwrap()));
        save(generated, &path).unwrap();
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 3]).unwrap();
        let cut = Records::Saved(path.clone()).each(|_| Ok(())).unwrap_err();
        assert!(cut.contains("ends inside a record"), "{cut}");
        std::fs::write(&path, b"hello, world\n").unwrap();
        let foreign = Records::Saved(path).each(|_| Ok(())).unwrap_err();
        assert!(foreign.contains("not a feed-load file"), "{foreign}");
    }
}
