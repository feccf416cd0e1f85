//! What one replica's uninsured lists share while they are found: their
//! places (memory for the ID numbers they hold) and the reads of the
//! feeds' insured (see `insured_reads`).
//!
//! A whole city's list holds some 50 MB of ID numbers while it is found,
//! a county's about an eighth. A replica gives lists
//! `limits.max_city_lists` cities' worth of places: a city takes
//! [`CITY_PLACES`], a county one, a street or committee none; a list with
//! no place left is refused OVERLOADED rather than queued. Reads of the
//! insured (some 70 MB each) take places of their own, at most
//! `limits.max_city_lists` (see `insured_reads`).

use std::sync::Arc;

use popbase_common::ServiceResult;
use popbase_common::load_shed::overloaded;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use std::time::Duration;

use super::insured_reads::InsuredReads;

/// Places a whole city's list takes: eight counties at once weigh as one
/// city.
pub const CITY_PLACES: u32 = 8;
/// Codes of at most this many digits are a whole city, which joins the
/// current read of the insured or begins one if a place for it is free.
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

/// A list let in: its place, held until it is found, and how it may use a
/// read of the insured.
pub struct Admitted {
    pub place: Option<OwnedSemaphorePermit>,
    pub reads: ReadUse,
}

/// How a list takes its insured out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadUse {
    /// Joins the current read or begins one (a city; a county among others).
    Begins,
    /// Joins a current read, else looks its residents up (a county alone).
    Joins,
    /// Looks its residents up (a street or committee: milliseconds, where
    /// waiting on a city's read loading would take a second).
    Never,
}

impl ListsInFlight {
    /// `share_window`: how long after it began a read of the insured may be
    /// joined (`limits.list_share_secs`).
    pub fn new(max_city_lists: usize, share_window: Duration) -> Self {
        Self {
            places: Arc::new(Semaphore::new(max_city_lists * CITY_PLACES as usize)),
            max_city_lists,
            reads: Arc::new(InsuredReads::new(max_city_lists, share_window)),
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
        let reads = match place {
            None => ReadUse::Never,
            Some(_) if is_whole_city(division) || in_use >= (CITY_PLACES / 2) as usize => ReadUse::Begins,
            Some(_) => ReadUse::Joins,
        };
        Ok(Admitted { place, reads })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counties_begin_a_read_once_they_weigh_half_a_city() {
        let lists = ListsInFlight::new(1, Duration::from_secs(10));
        let mut held = Vec::new();
        for n in 1..=CITY_PLACES {
            let county = lists.admit("370303").expect("a place");
            let expected = if n >= CITY_PLACES / 2 { ReadUse::Begins } else { ReadUse::Joins };
            assert_eq!(county.reads, expected, "county {n}");
            held.push(county);
        }
        assert!(lists.admit("370303").is_err(), "a city's worth of counties fills the places");
        let street = lists.admit("370303001").expect("a street takes no place");
        assert!(street.reads == ReadUse::Never && street.place.is_none());
        held.clear();
        let city = lists.admit("3703").expect("the places came free");
        assert_eq!(city.reads, ReadUse::Begins);
        assert!(lists.admit("370303").is_err(), "a city takes them all");
    }
}
