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
mod insured_set;
mod parts;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use futures::Stream;
use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::mask::mask_id_number;
use popbase_proto::gateway::{InsuranceGapRequest, UninsuredResident};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::gate::{Minimise, Release};
use crate::grpc::lists::Part;
use crate::sources::Sources;
use parts::Parts;

/// Residents per audited part, and per batch of persons read.
pub const PART: usize = 1000;
/// Longest a list may take to be found (a whole city takes seconds; a
/// province's would take minutes), whatever its sources still send.
const FIND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// Places a whole city's list takes among `limits.max_city_lists` × this:
/// a county's takes one, so eight counties at once weigh as one city.
pub const CITY_PLACES: u32 = 8;

/// The places a list of `division` takes while it is found: a whole city
/// [`CITY_PLACES`], a county one, a street or committee none.
pub fn places_of(division: &str) -> u32 {
    match division.len() {
        n if n <= find::WHOLE_CITY_DIGITS => CITY_PLACES,
        6 => 1,
        _ => 0,
    }
}

/// Whether `division` is a whole city (compared against the insured set).
pub fn is_whole_city(division: &str) -> bool {
    division.len() <= find::WHOLE_CITY_DIGITS
}

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
/// error; a reader that goes away stops the search. `place` (a whole
/// city's place among `limits.max_city_lists`) is held until the list is
/// found: that is while it holds the city's ID numbers and its insured.
pub fn gap(
    sources: Sources,
    division: String,
    today: NaiveDate,
    place: Option<OwnedSemaphorePermit>,
) -> impl Stream<Item = ServiceResult<Part<UninsuredResident>>> + Send + 'static {
    let (sender, receiver) = mpsc::channel(2);
    tokio::spawn(async move {
        let _place = place;
        let mut parts = Parts::new(sender.clone());
        let found = async {
            find::find(&sources, &division, today, &mut parts).await?;
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
