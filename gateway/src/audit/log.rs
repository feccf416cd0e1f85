//! The audit writer: one thread owns the chain tip. Calls hand it entries
//! over a channel; it takes whatever has queued up (group commit), chains
//! them, and writes them, their per-subject index entries and the usage
//! counters in one batch. A second thread ([`super::syncer`]) fsyncs what
//! was written and only then gives the callers their sequence numbers, so
//! an answer never leaves before its record is durable, and a failed write
//! or sync fails every call it covered.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{Datelike, Timelike, Utc};
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::gateway::{AuditRecord, ChainHead, Decision, ExportPhase, Usage};
use popbase_storage::{Batch, Read, StorageResult, Store};
use tokio::sync::{mpsc, oneshot};

use super::chain::{GENESIS, seal};
use super::manifest::Manifest;
use super::syncer::{Settler, Use, WRITTEN_AHEAD, Written};
use crate::tables::{self, AUDIT, AUDIT_BY_SUBJECT, AUDIT_HEAD, EXPORT_SUBJECTS, HEAD_KEY, USAGE};

/// Most records chained into one write.
const MAX_GROUP: usize = 4096;
/// Calls waiting for the writer before new ones wait for room.
const QUEUE: usize = 65_536;

/// What one call did, as the answer path reports it: the ledger's wire
/// message itself, so a remote ledger sends it as it is (subjects are keyed
/// pseudonyms, never ID numbers; `subjects_digest` is an export's, see
/// `popbase_export::deidentify`).
pub use popbase_proto::ledger::AuditEntry;

/// Records one call hands the writer, chained consecutively: the reply is
/// the first one's sequence number.
struct Pending {
    entries: Vec<Prepared>,
    reply: oneshot::Sender<Result<u64, String>>,
}

/// An entry as the one writer thread takes it: an export batch's subjects
/// already turned into manifest rows, on the caller's task, so the writer
/// only copies them.
struct Prepared {
    entry: AuditEntry,
    manifest: BTreeMap<u8, Vec<u8>>,
}

impl Prepared {
    fn new(mut entry: AuditEntry) -> Prepared {
        let mut manifest = BTreeMap::new();
        if entry.export.as_ref().is_some_and(|e| e.phase == ExportPhase::Batch as i32) {
            // A batch's thousands of subjects: manifest rows, not index keys.
            let made = Manifest::of(&std::mem::take(&mut entry.subject_ids), &std::mem::take(&mut entry.subjects));
            entry.subjects_digest = made.digest;
            manifest = made.rows;
        }
        Prepared { entry, manifest }
    }
}

/// A handle on the writer; clones share it. When the last clone goes, the
/// writer drains what is queued and is joined, so its store handle is closed
/// before the process can exit (RocksDB aborts if a store is still closing
/// on another thread while the process tears down).
#[derive(Clone)]
pub struct AuditLog {
    writer: Arc<WriterHandle>,
    store: Store,
    stats: Arc<AuditStats>,
    /// Holds the newest durable record's head, moved once a group's fsync
    /// is done: the store's head row is readable a moment before, and a
    /// head published, signed or put in a backup must never be one a power
    /// cut could take back.
    settler: Arc<Settler>,
}

/// What the writer has done, for `/metrics` (see [`AuditLog::render_metrics`]).
#[derive(Default)]
pub struct AuditStats {
    /// Records written and answered.
    pub(super) records: AtomicU64,
    /// Group commits (one fsync each).
    pub(super) commits: AtomicU64,
    pub(super) failed_commits: AtomicU64,
    /// Total time calls waited for their record to be durable: the audit lag.
    wait_micros: AtomicU64,
    /// Longest wait since the last scrape.
    max_wait_micros: AtomicU64,
    /// Uses per department and interface.
    pub(super) department_calls: super::calls_metric::DepartmentCalls,
}

struct WriterHandle {
    tx: Option<mpsc::Sender<Pending>>,
    /// The writer, then the syncer: joined in this order.
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop once the queue is
        // empty; the writer's end ends the syncer's once all is answered.
        drop(self.tx.take());
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("an audit thread panicked");
            }
        }
    }
}

pub fn yyyymmdd(date: chrono::NaiveDate) -> u32 {
    date.year() as u32 * 10_000 + date.month() * 100 + date.day()
}

impl AuditLog {
    /// Starts the writer on `store` (the ledger store), continuing its chain.
    pub fn start(store: Store) -> StorageResult<AuditLog> {
        let head = store.get(&AUDIT_HEAD, HEAD_KEY)?.map(|h| h.value);
        let (tx, rx) = mpsc::channel(QUEUE);
        let (written_tx, written_rx) = std::sync::mpsc::sync_channel(WRITTEN_AHEAD);
        let stats = Arc::new(AuditStats::default());
        let sync_store = store.clone();
        let settler = Arc::new(Settler::new(
            Box::new(move |commit| sync_store.sync_through(commit).map_err(|e| e.to_string())),
            stats.clone(),
            head.clone().unwrap_or_else(|| ChainHead {
                seq: 0,
                hash: GENESIS.to_vec(),
                at_unix_millis: 0,
            }),
        ));
        let writer = Writer {
            stats: stats.clone(),
            store: store.clone(),
            next_seq: head.as_ref().map_or(1, |h| h.seq + 1),
            prev_hash: head.map_or(GENESIS.to_vec(), |h| h.hash),
            usage: HashMap::new(),
            written: written_tx,
            handed: 0,
            settler: settler.clone(),
        };
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map_err(|e| popbase_storage::StorageError::Engine(format!("starting the {name}: {e}")))
        };
        let syncing = settler.clone();
        let syncer = spawn("audit-syncer", Box::new(move || syncing.run(written_rx)))?;
        let writer = spawn("audit-writer", Box::new(move || writer.run(rx)))?;
        Ok(AuditLog {
            writer: Arc::new(WriterHandle {
                tx: Some(tx),
                threads: vec![writer, syncer],
            }),
            store,
            stats,
            settler,
        })
    }

    /// Appends one record durably; its sequence number.
    pub async fn append(&self, entry: AuditEntry) -> ServiceResult<u64> {
        Ok(self.append_many(vec![entry]).await?.start)
    }

    /// Appends records durably and consecutively, in one hand-over to the
    /// writer (an intake chunk's hundreds of answers); their sequence
    /// numbers. They share the fate of the group they are written in.
    pub async fn append_many(&self, entries: Vec<AuditEntry>) -> ServiceResult<Range<u64>> {
        let count = entries.len() as u64;
        if count == 0 {
            return Ok(0..0);
        }
        let queued = Instant::now();
        let (reply, answer) = oneshot::channel();
        let tx = self
            .writer
            .tx
            .as_ref()
            .ok_or_else(|| ServiceError::Unavailable("audit writer stopped".into()))?;
        let entries = entries.into_iter().map(Prepared::new).collect();
        tx.send(Pending { entries, reply })
            .await
            .map_err(|_| ServiceError::Unavailable("audit writer stopped".into()))?;
        let answered = answer.await;
        let waited = u64::try_from(queued.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.wait_micros.fetch_add(waited.saturating_mul(count), Ordering::Relaxed);
        self.stats.max_wait_micros.fetch_max(waited, Ordering::Relaxed);
        match answered {
            Ok(Ok(first)) => Ok(first..first + count),
            Ok(Err(e)) => Err(ServiceError::Unavailable(format!(
                "audit write failed, so the call was refused: {e}"
            ))),
            Err(_) => Err(ServiceError::Unavailable("audit writer stopped".into())),
        }
    }

    /// The newest durable record's seq and hash (seq 0 and the genesis
    /// hash before the first).
    pub fn head(&self) -> ChainHead {
        self.settler.head()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Prometheus samples of the writer: records, commits, the audit lag
    /// (how long calls wait for their record to be durable) and the queue.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let s = &self.stats;
        let queued = self.writer.tx.as_ref().map_or(0, |tx| tx.max_capacity() - tx.capacity());
        let head = self.head().seq;
        let samples: [(&str, &str, &str, String); 7] = [
            (
                "popbase_audit_records_total",
                "counter",
                "Audit records written (answers and refusals).",
                s.records.load(Ordering::Relaxed).to_string(),
            ),
            (
                "popbase_audit_commits_total",
                "counter",
                "Group commits of the audit writer (one fsync each).",
                s.commits.load(Ordering::Relaxed).to_string(),
            ),
            (
                "popbase_audit_failed_commits_total",
                "counter",
                "Audit writes that failed (their calls were refused).",
                s.failed_commits.load(Ordering::Relaxed).to_string(),
            ),
            (
                "popbase_audit_wait_seconds_total",
                "counter",
                "Time calls waited for their audit record to be durable; divide its rate by the records' for the mean audit lag.",
                format!("{}", s.wait_micros.load(Ordering::Relaxed) as f64 / 1e6),
            ),
            (
                "popbase_audit_max_wait_seconds",
                "gauge",
                "Longest audit lag of one call since the previous scrape.",
                format!("{}", s.max_wait_micros.swap(0, Ordering::Relaxed) as f64 / 1e6),
            ),
            (
                "popbase_audit_queue_depth",
                "gauge",
                "Records waiting for the audit writer.",
                queued.to_string(),
            ),
            (
                "popbase_audit_head_seq",
                "gauge",
                "Sequence number of the newest durable audit record.",
                head.to_string(),
            ),
        ];
        for (name, kind, help, value) in samples {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        s.department_calls.render(out);
    }
}

struct Writer {
    stats: Arc<AuditStats>,
    store: Store,
    next_seq: u64,
    prev_hash: Vec<u8>,
    /// Counters of the days written lately, so each group reads none.
    usage: HashMap<Vec<u8>, Usage>,
    /// Written groups, to the syncer thread.
    written: std::sync::mpsc::SyncSender<Written>,
    /// Groups handed to the syncer thread so far.
    handed: u64,
    settler: Arc<Settler>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        while let Some(first) = rx.blocking_recv() {
            let mut records = first.entries.len();
            let mut group = vec![first];
            while records < MAX_GROUP {
                match rx.try_recv() {
                    Ok(p) => {
                        records += p.entries.len();
                        group.push(p);
                    }
                    Err(_) => break,
                }
            }
            let mut entries = Vec::with_capacity(records);
            let mut replies = Vec::with_capacity(group.len());
            for pending in group {
                replies.push((pending.reply, pending.entries.len() as u64));
                entries.extend(pending.entries);
            }
            match self.write(entries) {
                Ok((mut seq, commit, head, uses)) => {
                    let replies = replies
                        .into_iter()
                        .map(|(reply, count)| {
                            let first = seq;
                            seq += count;
                            (reply, first)
                        })
                        .collect();
                    let written = Written {
                        commit,
                        head,
                        replies,
                        records: records as u64,
                        uses,
                    };
                    if rx.is_empty() && self.settler.syncer_idle(self.handed) {
                        // Nothing to write meanwhile: no hand-over.
                        self.settler.settle(vec![written]);
                    } else {
                        self.handed += 1;
                        // The syncer ends only after the writer; should it
                        // be gone, dropping the replies refuses the calls.
                        let _ = self.written.send(written);
                    }
                }
                Err(e) => {
                    for (reply, _) in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Chains and writes `group` in one batch, not yet synced: the first
    /// entry's sequence number (the rest follow it), the store commit the
    /// syncer must make durable, the head it leaves and the uses to count
    /// once it has; or the failure of them all. Entries are moved into their
    /// records, not copied.
    fn write(&mut self, group: Vec<Prepared>) -> Result<(u64, u64, ChainHead, Vec<Use>), String> {
        let size = group.len();
        let now = Utc::now();
        let at = now.timestamp_millis();
        let day = popbase_domain::clock::city_day(now);
        let hour = now.with_timezone(&popbase_domain::clock::city_offset()).hour() as usize;
        let mut batch = Batch::new("ledger", "audit");
        let (mut seq, mut prev) = (self.next_seq, self.prev_hash.clone());
        let mut touched = Vec::new();
        let mut subject_keys = Vec::new();
        let mut uses = Vec::new();
        for Prepared { entry, manifest } in group {
            let key = tables::usage_key(yyyymmdd(day), &entry.department, &entry.interface);
            // An export is one use, however many records it leaves.
            let one_use = entry.export.as_ref().is_none_or(|e| e.phase == ExportPhase::Started as i32);
            if one_use {
                // As the usage counters count: a refusal summary stands for `count`.
                let n = if entry.interface == crate::gate::REFUSALS_INTERFACE {
                    entry.count.max(1)
                } else {
                    1
                };
                uses.push((entry.department.clone(), entry.interface.clone(), entry.allowed, n));
            }
            if one_use && let Err(e) = self.count(&key, &entry, day, hour) {
                // Counters of the entries before it ran ahead; re-read them.
                self.usage.clear();
                return Err(e);
            }
            for (bucket, row) in manifest {
                batch.put(&EXPORT_SUBJECTS, tables::export_subjects_key(bucket, seq), &row);
            }
            subject_keys.extend(entry.subjects.iter().map(|subject| tables::subject_access_key(subject, seq)));
            let record = AuditRecord {
                seq,
                prev_hash: prev,
                at_unix_millis: at,
                decision: if entry.allowed { Decision::Allowed } else { Decision::Denied } as i32,
                department: entry.department,
                interface: entry.interface,
                purpose: entry.purpose,
                subjects: entry.subjects,
                fields: entry.fields,
                reason: entry.reason,
                trace_id: entry.trace_id,
                count: entry.count,
                hash: Vec::new(),
                subjects_digest: entry.subjects_digest,
                export: entry.export,
            };
            // One encoding of the record serves its hash and its stored bytes.
            let (hash, stored) = seal(&record);
            batch.put_encoded(&AUDIT, tables::audit_key(seq), stored);
            touched.push(key);
            prev = hash.to_vec();
            seq += 1;
        }
        // Pseudonyms are random: inserted in key order, each lands next to
        // the one before in RocksDB's memtable skiplist instead of searching
        // it from the top (an enrollment chunk names thousands).
        subject_keys.sort_unstable();
        for key in subject_keys {
            batch.put_index(&AUDIT_BY_SUBJECT, key);
        }
        touched.sort();
        touched.dedup();
        for key in touched {
            if let Some(usage) = self.usage.get(&key) {
                batch.put(&USAGE, key, usage);
            }
        }
        let head = ChainHead {
            seq: seq - 1,
            hash: prev.clone(),
            at_unix_millis: at,
        };
        batch.put(&AUDIT_HEAD, HEAD_KEY.to_vec(), &head);
        match self.store.commit_unsynced(batch) {
            Ok(commit) => {
                self.next_seq = seq;
                self.prev_hash = prev;
                // Keep only today's counters cached.
                let today = tables::usage_day_prefix(yyyymmdd(day));
                self.usage.retain(|k, _| k.starts_with(&today));
                Ok((self.next_seq - size as u64, commit, head, uses))
            }
            Err(e) => {
                self.stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, records = size, "audit write failed; refusing the calls");
                // The cached counters ran ahead of the store; re-read them next time.
                self.usage.clear();
                Err(e.to_string())
            }
        }
    }

    fn count(&mut self, key: &[u8], entry: &AuditEntry, day: chrono::NaiveDate, hour: usize) -> Result<(), String> {
        if !self.usage.contains_key(key) {
            let stored = self.store.get(&USAGE, key).map_err(|e| e.to_string())?.map(|u| u.value);
            let usage = stored.unwrap_or_else(|| Usage {
                department: entry.department.clone(),
                interface: entry.interface.clone(),
                day: Some(day.into()),
                allowed: 0,
                denied: 0,
                denied_by_reason: Default::default(),
                by_hour: Vec::new(),
            });
            self.usage.insert(key.to_vec(), usage);
        }
        if let Some(usage) = self.usage.get_mut(key) {
            if usage.by_hour.len() != 24 {
                usage.by_hour.resize(24, 0);
            }
            let calls = if !entry.allowed && entry.interface == crate::gate::REFUSALS_INTERFACE {
                entry.count.max(1)
            } else {
                1
            };
            usage.by_hour[hour.min(23)] += calls;
            if entry.allowed {
                usage.allowed += 1;
            } else {
                // A summary stands for `count` refusals.
                let n = if entry.interface == crate::gate::REFUSALS_INTERFACE {
                    entry.count.max(1)
                } else {
                    1
                };
                usage.denied += n;
                let reason = if entry.reason.is_empty() {
                    "UNSPECIFIED"
                } else {
                    entry.reason.as_str()
                };
                *usage.denied_by_reason.entry(reason.to_string()).or_default() += n;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::verify;
    use popbase_storage::{Durability, StoreOptions};

    fn entry(department: &str, subject: &str) -> AuditEntry {
        AuditEntry {
            department: department.into(),
            interface: "EnrollmentCheck".into(),
            purpose: "COMPULSORY_EDUCATION_ENROLLMENT".into(),
            subjects: vec![subject.into()],
            allowed: true,
            count: 1,
            ..Default::default()
        }
    }

    /// An export batch's subjects are found by a resident's lookup through
    /// the manifest, and a manifest edited afterwards breaks verification.
    #[tokio::test]
    async fn export_batches_leave_manifests_the_access_log_reads_and_verify_checks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open");
        let log = AuditLog::start(store.clone()).expect("start");
        let pseudonym = |n: u32| format!("{:032x}", u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        let subjects: Vec<String> = (0..3000).map(pseudonym).collect();
        log.append(entry("education", &pseudonym(5))).await.expect("an answer");
        let batch = AuditEntry {
            interface: "Export.persons".into(),
            subjects: subjects.clone(),
            count: 3000,
            export: Some(popbase_proto::gateway::ExportScope {
                phase: ExportPhase::Batch as i32,
                ..Default::default()
            }),
            ..entry("big_data", "")
        };
        let seq = log.append(batch).await.expect("a batch");
        let record = store.get(&AUDIT, &tables::audit_key(seq)).expect("get").expect("stored").value;
        assert!(
            record.subjects.is_empty(),
            "the record digests its subjects instead of listing them"
        );
        let accesses = crate::audit::query::accesses(&store, &pseudonym(5), 10).expect("lookup");
        assert_eq!(
            accesses.iter().map(|a| a.interface.as_str()).collect::<Vec<_>>(),
            ["Export.persons", "EnrollmentCheck"],
            "newest first: the export that carried them, then the answer"
        );
        assert!(
            crate::audit::query::accesses(&store, &pseudonym(4000), 10)
                .expect("lookup")
                .is_empty()
        );
        assert_eq!(verify::verify(&store, &[]).broken, None);

        // Take one subject out of its manifest row: verification names the batch.
        let id = super::super::manifest::subject_id(&pseudonym(7));
        let key = tables::export_subjects_key(super::super::manifest::bucket(id), seq);
        let row = store.get(&EXPORT_SUBJECTS, &key).expect("get").expect("row").value;
        let edited: Vec<u8> = row.chunks_exact(8).filter(|s| *s != id.to_be_bytes()).flatten().copied().collect();
        let mut tamper = Batch::new("ledger", "tamper");
        tamper.put(&EXPORT_SUBJECTS, key, &edited);
        store.commit_with(tamper, Durability::Sync).expect("tamper");
        assert_eq!(verify::verify(&store, &[]).broken.map(|b| b.seq), Some(seq));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_and_single_records_chain_consecutively_in_one_trail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open");
        let log = AuditLog::start(store.clone()).expect("start");
        let mut tasks = Vec::new();
        for t in 0..6 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut ranges = Vec::new();
                for n in 0..20 {
                    let range = if t % 2 == 0 {
                        let seq = log.append(entry("single", &format!("s{t}-{n}"))).await.expect("append");
                        seq..seq + 1
                    } else {
                        let batch = (0..25).map(|i| entry("batch", &format!("b{t}-{n}-{i}"))).collect();
                        log.append_many(batch).await.expect("append_many")
                    };
                    ranges.push(range);
                }
                ranges
            }));
        }
        let mut seqs = Vec::new();
        for task in tasks {
            for range in task.await.expect("task") {
                seqs.extend(range);
            }
        }
        seqs.sort_unstable();
        let expected: Vec<u64> = (1..=3 * 20 + 3 * 20 * 25).collect();
        assert_eq!(seqs, expected, "every record has its own place, none skipped");
        assert_eq!(log.append_many(Vec::new()).await.expect("nothing"), 0..0);
        // A batch's records are consecutive and hold its entries in order.
        let range = log
            .append_many(vec![entry("batch", "first"), entry("batch", "second")])
            .await
            .expect("append_many");
        let subjects: Vec<String> = range
            .map(|seq| {
                let record = store.get(&tables::AUDIT, &tables::audit_key(seq)).expect("get").expect("stored");
                record.value.subjects[0].clone()
            })
            .collect();
        assert_eq!(subjects, ["first", "second"]);
        assert_eq!(verify::verify(&store, &[]).broken, None);
        assert_eq!(log.head().seq, 1 + 3 * 20 + 3 * 20 * 25 + 1);
    }
}
