//! The residence store's change log as changes for subscribers: permits
//! granted, expired, cancelled or ended by their holder's settlement. Each
//! of those batches records its permits' after-images.

use popbase_common::changes::ChangeReader;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::common::Address;
use popbase_proto::gateway::{Change, ChangeKind, ChangeSource};
use popbase_proto::residence::ResidencePermit;
use popbase_storage::{ChangeBatch, Store};
use prost::Message;

use crate::Permits;
use crate::tables::PERMITS;

pub struct PermitChanges {
    permits: Permits,
}

impl PermitChanges {
    pub fn new(permits: Permits) -> Self {
        Self { permits }
    }
}

/// The change kind of a batch reason, and the detail it carries.
fn kind_of(reason: &str) -> Option<(ChangeKind, &'static str)> {
    Some(match reason {
        "permit_granted" => (ChangeKind::PermitGranted, "valid"),
        "permits_expired" => (ChangeKind::PermitExpired, "expired"),
        "permit_cancelled" => (ChangeKind::PermitCancelled, "cancelled"),
        "ended_by_settlement" => (ChangeKind::PermitCancelled, "ended_by_settlement"),
        _ => return None,
    })
}

impl ChangeReader for PermitChanges {
    fn source(&self) -> ChangeSource {
        ChangeSource::Residence
    }

    fn store(&self) -> &Store {
        self.permits.store()
    }

    fn wants(&self, reason: &str) -> bool {
        kind_of(reason).is_some()
    }

    fn read(&self, batch: &ChangeBatch, out: &mut Vec<Change>) -> ServiceResult<()> {
        let Some((kind, detail)) = kind_of(&batch.reason) else {
            return Ok(());
        };
        for change in batch.changes_in(PERMITS.name()) {
            let Some(image) = &change.after else { continue };
            let permit = ResidencePermit::decode(image.as_slice()).map_err(|e| ServiceError::Internal(format!("permit: {e}")))?;
            out.push(Change {
                kind: kind as i32,
                id_number: permit.id_number.clone(),
                relation: "subject".into(),
                occurred_on: if kind == ChangeKind::PermitGranted {
                    permit.issued_on
                } else {
                    permit.status_since
                },
                committee_code: Address::committee_of(&permit.address).to_string(),
                detail: detail.into(),
                ..Default::default()
            });
        }
        Ok(())
    }
}
