//! The audit trail of one bulk export, so an export fails closed like every
//! other answer: nothing leaves before a durable record says it may.
//!
//! * STARTED (caller, dataset, division, level, columns, purpose) is written
//!   when the export is authorised, before its first batch is read;
//! * one BATCH record per batch, naming the batch's subjects by their
//!   export pseudonyms (the first 8 bytes of the values in the file),
//!   written before that batch leaves: a resident's access log finds the
//!   export under them;
//! * COMPLETED (row count, digest of every subject) before the stream's
//!   end, or ENDED_EARLY with the reason when it stops short.
//!
//! With the ledger down the STARTED record cannot be written and no row
//! leaves; a batch whose record fails is not sent.

use std::sync::Arc;

use popbase_export::Ticket;
use popbase_proto::gateway::{ExportPhase, ExportScope};
use tonic::Status;

use crate::audit::AuditEntry;
use crate::gate::{Admission, Gate};

/// Why an export ended before its last row (the ENDED_EARLY record's reason).
pub mod ended {
    /// The owning role's stream failed or went quiet past its idle timeout.
    pub const FETCH_FAILED: &str = "FETCH_FAILED";
    /// The caller stopped reading (cancelled, disconnected, or idle too long).
    pub const CALLER_GONE: &str = "CALLER_GONE";
    /// A batch's record could not be made durable, so the batch was held.
    pub const AUDIT_FAILED: &str = "AUDIT_FAILED";
}

/// One export's records, from STARTED on.
pub struct ExportTrail {
    gate: Arc<Gate>,
    admission: Admission,
    scope: ExportScope,
    /// The released columns (every record names them).
    fields: Vec<String>,
}

impl ExportTrail {
    /// Writes the STARTED record; an error means no row may leave.
    pub async fn start(gate: Arc<Gate>, admission: Admission, ticket: &Ticket, fields: Vec<String>) -> Result<Self, Status> {
        let mut trail = Self {
            gate,
            admission,
            scope: ExportScope {
                phase: ExportPhase::Started as i32,
                dataset: ticket.dataset.clone(),
                division: ticket.division.clone(),
                level: ticket.level.unwrap_or_default().as_str().to_string(),
                since_seq: ticket.since_seq.unwrap_or(0),
                started_seq: 0,
            },
            fields,
        };
        let seq = trail.append(ExportPhase::Started, Vec::new(), 0, Vec::new(), "").await?;
        trail.scope.started_seq = seq;
        Ok(trail)
    }

    /// The authorisation the export rests on.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Records a batch about to leave: its subjects (the first 8 bytes of
    /// their export pseudonyms, see [`crate::audit::manifest`]) and rows.
    /// An error means the batch must be held back.
    pub async fn batch(&self, subjects: Vec<u64>, rows: u64) -> Result<(), Status> {
        let mut ids = Vec::with_capacity(subjects.len() * 8);
        for id in &subjects {
            ids.extend_from_slice(&id.to_be_bytes());
        }
        self.append(ExportPhase::Batch, ids, rows, Vec::new(), "").await.map(|_| ())
    }

    /// Records the whole export: rows and the digest of every subject.
    pub async fn complete(&self, rows: u64, digest: [u8; 32]) -> Result<(), Status> {
        self.append(ExportPhase::Completed, Vec::new(), rows, digest.to_vec(), "")
            .await
            .map(|_| ())
    }

    /// Records that the export stopped after `rows` rows had left, and `why` (see
    /// [`ended`]). Best effort: when even this cannot be written (the
    /// ledger is down), the STARTED record without an end is the trace.
    pub async fn ended_early(&self, rows: u64, why: &'static str) {
        if let Err(status) = self.append(ExportPhase::EndedEarly, Vec::new(), rows, Vec::new(), why).await {
            tracing::warn!(started_seq = self.scope.started_seq, reason = why, error = %status.message(),
                "the end of an export could not be recorded");
        }
    }

    async fn append(&self, phase: ExportPhase, subject_ids: Vec<u8>, count: u64, digest: Vec<u8>, reason: &str) -> Result<u64, Status> {
        let entry = AuditEntry {
            subject_ids,
            count,
            subjects_digest: digest,
            reason: reason.to_string(),
            export: Some(ExportScope {
                phase: phase as i32,
                ..self.scope.clone()
            }),
            ..self.gate.released_entry(&self.admission, self.fields.clone())
        };
        self.gate.record(entry).await
    }
}
