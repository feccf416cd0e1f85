//! One read of the feeds' insured, shared by the lists found together.
//!
//! A whole city's list reads the feeds' insured in one pass
//! (`StreamInsured`) rather than asking about four million persons one by
//! one. Counties asked together (eight county offices at the start of a
//! day, or a department going through its city county by county at once)
//! would otherwise each ask about all of theirs: together the same four
//! million look-ups, at several times the cost of the one pass. So the
//! pass is shared:
//!
//! - a list joins the latest read if it began less than the window
//!   (`limits.list_share_secs`, 10 s) ago and has not failed;
//! - a whole city begins one when there is none to join, and so do
//!   counties once the lists in flight weigh half a city (`places`);
//! - the replica keeps a read for the window, so a county that listed its
//!   numbers while the read was loading still finds it; a list holds it
//!   only while it takes its insured out, not while its residents are read
//!   and sent.
//!
//! Freshness: a list may be compared against the insured as the feeds held
//! them up to the window before it asked; a list of a city is found over
//! seconds anyway, its sources read at different moments.
//!
//! Memory: a read holds one of `limits.max_city_lists` places of its own
//! while it lives (some 70 MB at Zibo's size), on top of the lists'
//! places. A list that finds none to join and no place to begin one looks
//! its residents up instead: slower, never refused for it.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use popbase_common::packed::PackedStream;
use popbase_common::{ServiceError, ServiceResult};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use super::insured_set::InsuredSet;

/// The reads of the insured one gateway replica holds.
pub struct InsuredReads {
    /// The latest read, kept for the window after it began.
    latest: Arc<Mutex<Option<Arc<InsuredRead>>>>,
    places: Arc<Semaphore>,
    window: Duration,
}

/// One read of the feeds' insured, loaded once by whichever of its lists
/// asks first (another takes over if that one goes away mid-read).
pub struct InsuredRead {
    began: Instant,
    /// The set, or why it could not be read: the lists waiting on a read
    /// that failed fail at once, rather than each streaming again.
    set: OnceCell<Result<InsuredSet, String>>,
    _place: OwnedSemaphorePermit,
}

impl InsuredReads {
    /// At most `max_reads` reads held at once, each joinable for `window`.
    pub fn new(max_reads: usize, window: Duration) -> Self {
        Self {
            latest: Arc::default(),
            places: Arc::new(Semaphore::new(max_reads)),
            window,
        }
    }

    /// The latest read if it began within the window and has not failed.
    pub fn current(&self) -> Option<Arc<InsuredRead>> {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.as_ref().filter(|read| self.joinable(read)).cloned()
    }

    /// The current read, or a new one if a place is free for it. Must run
    /// on a tokio runtime (it panics outside one): a timer task lets go of
    /// the read once its window has passed.
    pub fn join_or_begin(&self) -> Option<Arc<InsuredRead>> {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(read) = latest.as_ref().filter(|read| self.joinable(read)) {
            return Some(Arc::clone(read));
        }
        // A stale or failed read gives its place back once its lists are done.
        *latest = None;
        let place = Arc::clone(&self.places).try_acquire_owned().ok()?;
        let read = Arc::new(InsuredRead {
            began: Instant::now(),
            set: OnceCell::new(),
            _place: place,
        });
        *latest = Some(Arc::clone(&read));
        let (kept, began) = (Arc::clone(&self.latest), Arc::downgrade(&read));
        let window = self.window;
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let mut latest = kept.lock().unwrap_or_else(PoisonError::into_inner);
            // Still this read (its `Weak` keeps the address from reuse),
            // not a newer one begun since.
            if latest.as_ref().is_some_and(|read| std::ptr::eq(Arc::as_ptr(read), began.as_ptr())) {
                *latest = None;
            }
        });
        Some(read)
    }

    fn joinable(&self, read: &InsuredRead) -> bool {
        read.began.elapsed() <= self.window && !read.failed()
    }
}

impl InsuredRead {
    /// The insured, read through `stream` by the first list to ask; the
    /// others wait for that read. A read that fails fails every list
    /// waiting on it (UNAVAILABLE, with its reason), and is joined no more.
    pub async fn set<F>(&self, stream: impl FnOnce() -> F) -> ServiceResult<&InsuredSet>
    where
        F: Future<Output = ServiceResult<PackedStream>>,
    {
        let read = self.set.get_or_init(|| async {
            let read = async { InsuredSet::read(stream().await?).await };
            read.await.map_err(|e| match e {
                ServiceError::Unavailable(reason) => reason,
                other => other.to_string(),
            })
        });
        read.await.as_ref().map_err(|reason| ServiceError::Unavailable(reason.clone()))
    }

    fn failed(&self) -> bool {
        self.set.get().is_some_and(Result::is_err)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use popbase_proto::common::PackedIdNumbers;

    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn insured(ids: Vec<u64>, reads: &AtomicUsize) -> impl Future<Output = ServiceResult<PackedStream>> + use<> {
        reads.fetch_add(1, Ordering::SeqCst);
        let message = PackedIdNumbers {
            expected: ids.len() as u64,
            ids,
            complete: true,
            ..Default::default()
        };
        std::future::ready(Ok(Box::pin(futures::stream::iter(vec![Ok(message)])) as PackedStream))
    }

    #[tokio::test]
    async fn lists_found_together_share_one_read() {
        let reads = InsuredReads::new(1, WINDOW);
        assert!(reads.current().is_none(), "nothing to join yet");
        let first = reads.join_or_begin().expect("a place is free");
        let joined = reads.current().expect("fresh");
        assert!(Arc::ptr_eq(&first, &joined));

        let streams = AtomicUsize::new(0);
        let (a, b) = tokio::join!(
            first.set(|| insured(vec![7, 9], &streams)),
            joined.set(|| insured(vec![7, 9], &streams))
        );
        assert_eq!((a.expect("read").len(), b.expect("read").len()), (2, 2));
        assert_eq!(streams.load(Ordering::SeqCst), 1, "one stream for both lists");
        assert!(first.set(|| insured(vec![1], &streams)).await.expect("held").contains_packed(9));
        assert_eq!(streams.load(Ordering::SeqCst), 1, "a loaded read is not read again");

        // Kept for its window after its lists let go: a list that was still
        // listing its numbers finds it.
        drop((first, joined));
        let late = reads.current().expect("kept for the window");
        assert!(late.set(|| insured(vec![1], &streams)).await.expect("loaded").contains_packed(9));
        assert_eq!(streams.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stale_read_is_not_joined_and_reads_are_bounded() {
        let reads = InsuredReads::new(1, Duration::ZERO);
        let held = reads.join_or_begin().expect("a place is free");
        std::thread::sleep(Duration::from_millis(2));
        assert!(reads.current().is_none(), "past its window");
        assert!(
            reads.join_or_begin().is_none(),
            "no second read while the one place is held: the list looks its residents up"
        );
        drop(held);
        assert!(reads.join_or_begin().is_some(), "the stale read's place came free");
    }

    #[tokio::test]
    async fn the_replica_lets_go_of_a_read_after_its_window() {
        let reads = InsuredReads::new(1, Duration::from_millis(10));
        drop(reads.join_or_begin().expect("a place is free"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(reads.latest.lock().expect("lock").is_none(), "let go after its window");
        assert_eq!(reads.places.available_permits(), 1, "and its place with it");
    }

    #[tokio::test]
    async fn a_failed_read_fails_its_waiting_lists_and_is_not_joined() {
        let reads = InsuredReads::new(2, WINDOW);
        let read = reads.join_or_begin().expect("a place is free");
        let failed = read
            .set(|| std::future::ready(Err(ServiceError::Unavailable("feeds down".into()))))
            .await;
        assert!(
            matches!(failed, Err(ServiceError::Unavailable(reason)) if reason == "feeds down"),
            "the reason, once"
        );
        let streams = AtomicUsize::new(0);
        let waiting = read.set(|| insured(vec![3], &streams)).await;
        assert!(waiting.is_err() && streams.load(Ordering::SeqCst) == 0, "a joiner fails at once");
        assert!(reads.current().is_none(), "a failed read is not joined");
        let next = reads.join_or_begin().expect("a fresh read");
        assert!(next.set(|| insured(vec![3], &streams)).await.expect("read").contains_packed(3));
    }
}
