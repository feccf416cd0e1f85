//! Residents found, handed on in parts of [`PART`]: registered persons and
//! permit holders share parts, so a small list is one audit record and a
//! city's list a few hundred.

use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::gateway::UninsuredResident;
use tokio::sync::mpsc;

use super::PART;
use crate::grpc::lists::Part;

pub struct Parts {
    sender: mpsc::Sender<ServiceResult<Part<UninsuredResident>>>,
    pending: Vec<UninsuredResident>,
    /// Residents found so far.
    pub found: u64,
}

impl Parts {
    pub fn new(sender: mpsc::Sender<ServiceResult<Part<UninsuredResident>>>) -> Self {
        Self {
            sender,
            pending: Vec::with_capacity(PART),
            found: 0,
        }
    }

    /// Adds residents, sending each part as it fills. Fails once the
    /// reader has gone, which stops the search.
    pub async fn add(&mut self, found: impl IntoIterator<Item = UninsuredResident>) -> ServiceResult<()> {
        for resident in found {
            self.found += 1;
            self.pending.push(resident);
            if self.pending.len() == PART {
                self.send().await?;
            }
        }
        Ok(())
    }

    /// Sends the last, short part (perhaps empty), marked last: a list
    /// whose parts end without it was cut short.
    pub async fn finish(mut self) -> ServiceResult<()> {
        self.send_part(true).await
    }

    async fn send(&mut self) -> ServiceResult<()> {
        self.send_part(false).await
    }

    async fn send_part(&mut self, last: bool) -> ServiceResult<()> {
        let items = std::mem::replace(&mut self.pending, Vec::with_capacity(PART));
        let listed = items.iter().map(|r| r.id_number.clone()).collect();
        self.sender
            .send(Ok(Part { items, listed, last }))
            .await
            .map_err(|_| ServiceError::Unavailable("the list's reader hung up".into()))
    }
}
