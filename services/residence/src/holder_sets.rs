//! A day's valid permit holders, shared by the scans that ask for them
//! together.
//!
//! A county's uninsured list (or its 政策找人) needs everyone holding a
//! permit valid that day, and finds them in one pass over every permit of
//! the city (some 430,000 at Zibo's size, a few hundred milliseconds):
//! eight counties asked at once made eight such passes on two cores. Here
//! the set is built once by the first scan to ask and joined by the others:
//!
//! - a scan joins a set of the same day still held by another scan and
//!   begun less than [`SHARE_WINDOW`] ago (one being built is waited for);
//! - the set is dropped with the last scan holding it, so nothing is kept
//!   between lists and a permit issued since is seen by the next one.
//!
//! Freshness: a scan may see the permits as they stood up to the window
//! before it asked, as a city's list, found over seconds, already does.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use chrono::NaiveDate;

/// How long after it began a day's set may still be joined.
pub const SHARE_WINDOW: Duration = Duration::from_secs(10);

/// The sets of valid holders the residence role holds (one day's joinable
/// at a time: scans of another day in between start their own; older sets
/// live only as long as their scans).
#[derive(Default)]
pub struct HolderSets {
    latest: Mutex<Weak<DaySet>>,
}

/// One day's holders, built once.
struct DaySet {
    on: NaiveDate,
    began: Instant,
    /// Locked while the first scan builds it: the others wait rather than
    /// scanning too.
    holders: Mutex<Option<Arc<HashSet<String>>>>,
}

/// A scan's hold on a day's valid holders.
pub struct ValidHolders {
    _shared: Arc<DaySet>,
    holders: Arc<HashSet<String>>,
}

impl Deref for ValidHolders {
    type Target = HashSet<String>;

    fn deref(&self) -> &HashSet<String> {
        &self.holders
    }
}

impl HolderSets {
    /// The valid holders on `on`: joined if another scan holds them,
    /// otherwise built by `build` (an error is this scan's; the next one
    /// builds again). Blocks while another scan builds them: call it where
    /// store scans run, on the blocking pool, never on an async worker.
    pub fn holders_on<E>(&self, on: NaiveDate, build: impl FnOnce() -> Result<HashSet<String>, E>) -> Result<ValidHolders, E> {
        let shared = self.join_or_begin(on);
        let holders = {
            let mut held = shared.holders.lock().unwrap_or_else(PoisonError::into_inner);
            match &*held {
                Some(built) => Arc::clone(built),
                None => {
                    let built = Arc::new(build()?);
                    *held = Some(Arc::clone(&built));
                    built
                }
            }
        };
        Ok(ValidHolders { _shared: shared, holders })
    }

    fn join_or_begin(&self, on: NaiveDate) -> Arc<DaySet> {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let joinable = |set: &Arc<DaySet>| set.on == on && set.began.elapsed() <= SHARE_WINDOW;
        if let Some(set) = latest.upgrade().filter(joinable) {
            return set;
        }
        let set = Arc::new(DaySet {
            on,
            began: Instant::now(),
            holders: Mutex::new(None),
        });
        *latest = Arc::downgrade(&set);
        set
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).expect("a date")
    }

    #[test]
    fn scans_together_build_one_set_per_day_and_none_is_kept() {
        let sets = HolderSets::default();
        let builds = AtomicUsize::new(0);
        let build = |who: &str| {
            builds.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(HashSet::from([who.to_string()]))
        };
        let first = sets.holders_on(day(5), || build("a")).expect("built");
        let joined = sets.holders_on(day(5), || build("b")).expect("joined");
        assert!(joined.contains("a") && !joined.contains("b"), "the set being held is joined");
        let other_day = sets.holders_on(day(6), || build("c")).expect("built");
        assert!(other_day.contains("c"), "another day is its own set");
        assert_eq!(builds.load(Ordering::SeqCst), 2);
        drop((first, joined, other_day));
        let later = sets.holders_on(day(5), || build("d")).expect("built again");
        assert!(later.contains("d"), "dropped with its last scan: a later one sees today's permits");
    }

    #[test]
    fn a_failed_build_is_not_shared() {
        let sets = HolderSets::default();
        assert!(sets.holders_on(day(5), || Err("store")).is_err());
        let built = sets.holders_on(day(5), || Ok::<_, &str>(HashSet::from(["a".to_string()])));
        assert!(built.expect("built").contains("a"));
    }

    #[test]
    fn scans_on_threads_wait_for_the_one_building() {
        let sets = Arc::new(HolderSets::default());
        let builds = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(std::sync::Barrier::new(8));
        let scans: Vec<_> = (0..8)
            .map(|_| {
                let (sets, builds, held) = (Arc::clone(&sets), Arc::clone(&builds), Arc::clone(&held));
                std::thread::spawn(move || {
                    let holders = sets.holders_on(day(5), || {
                        builds.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok::<_, ()>(HashSet::from(["a".to_string()]))
                    });
                    let holders = holders.expect("built");
                    // Held until every scan has its own, as a scan holds
                    // the set while it walks its division.
                    held.wait();
                    holders.len()
                })
            })
            .collect();
        for scan in scans {
            assert_eq!(scan.join().expect("scan"), 1);
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "one pass for eight scans");
    }
}
