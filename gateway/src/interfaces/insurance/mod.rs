//! 医保比对: residents of a division with no active medical insurance:
//! registered persons (from the registry's committee index) and permit
//! holders (residents with a permit of their own valid today, who qualify
//! for resident insurance).
//!
//! The list is found in ID numbers first and persons last (see `find`):
//! the roles stream the division's ID numbers, the feeds say who of them is
//! insured, and only the uninsured, about one in twelve, are read whole.
//! Parts of [`PART`] residents leave as they are read (see `grpc::lists`),
//! registered persons in committee order first, then permit holders.

mod find;
mod insured_reads;
mod insured_set;
mod parts;
mod places;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use futures::Stream;
use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::mask::mask_id_number;
use popbase_proto::gateway::{InsuranceGapRequest, UninsuredResident};
use tokio::sync::mpsc;

use crate::gate::{Minimise, Release};
use crate::grpc::lists::Part;
use crate::sources::Sources;
use parts::Parts;
pub use places::{Admitted, ListsInFlight};

/// Residents per audited part, and per batch of persons read.
pub const PART: usize = 1000;
/// Longest a list may take to be found (a whole city takes seconds; a
/// province's would take minutes), whatever its sources still send.
const FIND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// The division asked about, checked to lie in the platform's city.
pub fn validate(request: &InsuranceGapRequest, city: &str) -> ServiceResult<String> {
    let code = &request.division_code;
    if ![4, 6, 9, 12].contains(&code.len()) {
        return Err(ServiceError::invalid(
            "division_code",
            "must be the 4-digit city, a 6-digit county, 9-digit street or 12-digit committee code",
        ));
    }
    validate::division_prefix("division_code", code)?;
    if !code.starts_with(city) {
        return Err(ServiceError::invalid("division_code", format!("lies outside the city {city}")));
    }
    Ok(code.clone())
}

/// Everyone in `division` without active medical insurance on `today`,
/// registered first, in parts. A source that fails ends the parts with its
/// error; a reader that goes away stops the search. The list's place
/// (`admitted`, see `places`) is held until it is found: that is while it
/// holds the division's ID numbers and its share of a read of the insured.
pub fn gap(
    sources: Sources,
    lists: ListsInFlight,
    division: String,
    today: NaiveDate,
    admitted: Admitted,
) -> impl Stream<Item = ServiceResult<Part<UninsuredResident>>> + Send + 'static {
    let (sender, receiver) = mpsc::channel(2);
    tokio::spawn(async move {
        let _place = admitted.place;
        let mut parts = Parts::new(sender.clone());
        let found = async {
            find::find(&sources, &lists.reads, admitted.reads, &division, today, &mut parts).await?;
            parts.finish().await
        };
        let outcome = tokio::select! {
            found = tokio::time::timeout(FIND_DEADLINE, found) => found.unwrap_or_else(|_| {
                Err(ServiceError::Unavailable(format!("the list was not found within {} s", FIND_DEADLINE.as_secs())))
            }),
            // The reader went away: stop finding, free what is held.
            () = sender.closed() => return,
        };
        if let Err(e) = outcome {
            let _ = sender.send(Err(e)).await;
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

impl Minimise for UninsuredResident {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String> {
        let mut release = Release::new(approved);
        if !release.keep("id_number") {
            self.id_number = mask_id_number(&self.id_number);
        }
        if !release.keep("name") {
            self.name.clear();
        }
        if !release.keep("sex") {
            self.sex = 0;
        }
        if !release.keep("birth_year") {
            self.birth_year = 0;
        }
        if !release.keep("committee_code") {
            self.committee_code.clear();
        }
        if !release.keep("kind") {
            self.kind = 0;
        }
        if !release.keep("phone") {
            self.phone.clear();
        }
        release.into_fields()
    }
}
