//! Where Subscribe streams run on one gateway replica: at most `limit` in
//! all (each quiet stream keeps a waiting call open on every storage
//! role), at most `per_department` for one department (so one cannot take
//! them all), and one per subscription: a newer Subscribe supersedes the
//! older stream, which ends ABORTED. A client that reconnects after losing
//! its connection is never refused because its old stream has not yet
//! noticed, and a subscription is never delivered twice, roster and all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use popbase_common::{ServiceError, load_shed};
use tokio::sync::oneshot;

/// Most streams one department holds on one replica.
pub const PER_DEPARTMENT: usize = 16;

pub struct StreamPlaces {
    limit: usize,
    per_department: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    total: usize,
    by_department: HashMap<String, usize>,
    /// The live stream of each subscription: its number and how to end it.
    by_subscription: HashMap<String, (u64, oneshot::Sender<()>)>,
    next: u64,
}

/// One stream's place, given back when it is dropped.
pub struct Place {
    places: Arc<StreamPlaces>,
    department: String,
    subscription: String,
    number: u64,
}

impl StreamPlaces {
    pub fn new(limit: usize, per_department: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            per_department,
            held: Mutex::default(),
        })
    }

    /// A place for a stream of `subscription`, ending its older stream,
    /// and what fires when a newer stream of it takes over in turn.
    pub fn take(self: &Arc<Self>, department: &str, subscription: &str) -> Result<(Place, oneshot::Receiver<()>), ServiceError> {
        let mut held = self
            .held
            .lock()
            .map_err(|_| ServiceError::Internal("stream places poisoned".into()))?;
        let replacing = held.by_subscription.contains_key(subscription);
        let of_department = held.by_department.get(department).copied().unwrap_or(0);
        if !replacing && held.total >= self.limit {
            return Err(load_shed::overloaded("this gateway's subscription streams", self.limit));
        }
        if !replacing && of_department >= self.per_department {
            return Err(load_shed::overloaded("this department's subscription streams", self.per_department));
        }
        held.next += 1;
        let number = held.next;
        let (stop, superseded) = oneshot::channel();
        if let Some((_, older)) = held.by_subscription.insert(subscription.to_string(), (number, stop)) {
            // The older stream ends; its place passes to this one.
            let _ = older.send(());
        } else {
            held.total += 1;
            *held.by_department.entry(department.to_string()).or_default() += 1;
        }
        let place = Place {
            places: Arc::clone(self),
            department: department.to_string(),
            subscription: subscription.to_string(),
            number,
        };
        Ok((place, superseded))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let Ok(mut held) = self.places.held.lock() else { return };
        // A superseded stream's place now belongs to the newer one.
        if held.by_subscription.get(&self.subscription).map(|(n, _)| *n) != Some(self.number) {
            return;
        }
        held.by_subscription.remove(&self.subscription);
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.by_department.get_mut(&self.department) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.by_department.remove(&self.department);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_per_replica_and_department_and_a_newer_stream_supersedes() {
        let places = StreamPlaces::new(3, 2);
        let (first, mut superseded) = places.take("hrss", "s1").expect("a place");
        let _second = places.take("hrss", "s2").expect("a place");
        assert!(places.take("hrss", "s3").is_err(), "two per department");
        let _third = places.take("education", "s4").expect("a place");
        assert!(places.take("health", "s5").is_err(), "three per replica");

        // s1 again: takes over the first's place, which is told to stop.
        let again = places.take("hrss", "s1").expect("superseding needs no new place");
        assert!(superseded.try_recv().is_ok(), "the older stream is ended");
        drop(first);
        assert!(
            places.take("health", "s5").is_err(),
            "the superseded place went to the newer stream"
        );
        drop(again);
        let _fifth = places.take("health", "s5").expect("a place came back");
    }
}
