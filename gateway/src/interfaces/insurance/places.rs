//! What one replica's uninsured lists share while they are found: their
//! places (memory for the ID numbers they hold) and the reads of the
//! feeds' insured (see `insured_reads`).
//!
//! A whole city's list holds some 125 MB while it is found, a county's
//! about a tenth. A replica gives lists `limits.max_city_lists` cities'
//! worth of places: a city takes [`CITY_PLACES`], a county one, a street
//! or committee none; a list with no place left is refused OVERLOADED
//! rather than queued.

use std::sync::Arc;

use popbase_common::ServiceResult;
use popbase_common::load_shed::overloaded;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::insured_reads::{InsuredReads, SHARE_WINDOW};

/// Places a whole city's list takes: eight counties at once weigh as one
/// city.
pub const CITY_PLACES: u32 = 8;
/// Codes of at most this many digits (a whole city) are always compared
/// against a read of the insured.
pub const WHOLE_CITY_DIGITS: usize = 4;

/// The places a list of `division` takes while it is found.
pub fn places_of(division: &str) -> u32 {
    match division.len() {
        n if n <= WHOLE_CITY_DIGITS => CITY_PLACES,
        6 => 1,
        _ => 0,
    }
}

/// Whether `division` is a whole city.
pub fn is_whole_city(division: &str) -> bool {
    division.len() <= WHOLE_CITY_DIGITS
}

/// One replica's lists in flight.
#[derive(Clone)]
pub struct ListsInFlight {
    places: Arc<Semaphore>,
    max_city_lists: usize,
    pub reads: Arc<InsuredReads>,
}

/// A list let in: its place, held until it is found, and whether it may
/// begin a read of the insured.
pub struct Admitted {
    pub place: Option<OwnedSemaphorePermit>,
    pub begins_read: bool,
}

impl ListsInFlight {
    pub fn new(max_city_lists: usize) -> Self {
        Self {
            places: Arc::new(Semaphore::new(max_city_lists * CITY_PLACES as usize)),
            max_city_lists,
            reads: Arc::new(InsuredReads::new(max_city_lists, SHARE_WINDOW)),
        }
    }

    /// Takes `division`'s places, or refuses it OVERLOADED. A city begins a
    /// read of the insured; so does a county once the lists in flight,
    /// itself included, weigh half a city (their look-ups one by one would
    /// cost more than the one read).
    pub fn admit(&self, division: &str) -> ServiceResult<Admitted> {
        let place = match places_of(division) {
            0 => None,
            places => match Arc::clone(&self.places).try_acquire_many_owned(places) {
                Ok(place) => Some(place),
                Err(_) => return Err(overloaded("whole-city lists", self.max_city_lists)),
            },
        };
        let in_use = self.max_city_lists * CITY_PLACES as usize - self.places.available_permits();
        let begins_read = is_whole_city(division) || (place.is_some() && in_use >= (CITY_PLACES / 2) as usize);
        Ok(Admitted { place, begins_read })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counties_begin_a_read_once_they_weigh_half_a_city() {
        let lists = ListsInFlight::new(1);
        let mut held = Vec::new();
        for n in 1..=CITY_PLACES {
            let county = lists.admit("370303").expect("a place");
            assert_eq!(county.begins_read, n >= CITY_PLACES / 2, "county {n}");
            held.push(county);
        }
        assert!(lists.admit("370303").is_err(), "a city's worth of counties fills the places");
        let street = lists.admit("370303001").expect("a street takes no place");
        assert!(!street.begins_read && street.place.is_none());
        held.clear();
        let city = lists.admit("3703").expect("the places came free");
        assert!(city.begins_read);
        assert!(lists.admit("370303").is_err(), "a city takes them all");
    }
}
