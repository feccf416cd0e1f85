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
//! - a list joins a read still held by another list and begun less than
//!   the window ([`SHARE_WINDOW`]) ago;
//! - a whole city begins one when there is none to join, and so do
//!   counties once the lists in flight together weigh half a city;
//! - a read is dropped with the last list holding it.
//!
//! Freshness: a list may be compared against the insured as the feeds held
//! them up to the window before it asked; a list of a city is found over
//! seconds anyway, its sources read at different moments.
//!
//! Memory: at most `limits.max_city_lists` reads are held at once (some
//! 70 MB each at Zibo's size). A list that finds none to join and no place
//! to begin one asks about its residents one by one instead: slower, never
//! refused for it.

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use popbase_common::ServiceResult;
use popbase_common::packed::PackedStream;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use super::insured_set::InsuredSet;

/// How long after it began a read of the insured may still be joined.
pub const SHARE_WINDOW: Duration = Duration::from_secs(10);

/// The reads of the insured one gateway replica holds.
pub struct InsuredReads {
    latest: Mutex<Weak<InsuredRead>>,
    places: Arc<Semaphore>,
    window: Duration,
}

/// One read of the feeds' insured, loaded once by whichever of its lists
/// asks first (another takes over if that one goes away mid-read).
pub struct InsuredRead {
    began: Instant,
    set: OnceCell<InsuredSet>,
    _place: OwnedSemaphorePermit,
}

impl InsuredReads {
    /// At most `max_reads` reads held at once, each joinable for `window`.
    pub fn new(max_reads: usize, window: Duration) -> Self {
        Self {
            latest: Mutex::new(Weak::new()),
            places: Arc::new(Semaphore::new(max_reads)),
            window,
        }
    }

    /// The latest read if another list still holds it and it began within
    /// the window.
    pub fn current(&self) -> Option<Arc<InsuredRead>> {
        let latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        latest.upgrade().filter(|read| read.began.elapsed() <= self.window)
    }

    /// The current read, or a new one if a place is free for it.
    pub fn join_or_begin(&self) -> Option<Arc<InsuredRead>> {
        let mut latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(read) = latest.upgrade().filter(|read| read.began.elapsed() <= self.window) {
            return Some(read);
        }
        let place = Arc::clone(&self.places).try_acquire_owned().ok()?;
        let read = Arc::new(InsuredRead {
            began: Instant::now(),
            set: OnceCell::new(),
            _place: place,
        });
        *latest = Arc::downgrade(&read);
        Some(read)
    }
}

impl InsuredRead {
    /// The insured, read through `stream` by the first list to ask; the
    /// others wait for that read. A read that fails is the asking list's
    /// error; the next list to ask tries again.
    pub async fn set<F>(&self, stream: impl FnOnce() -> F) -> ServiceResult<&InsuredSet>
    where
        F: Future<Output = ServiceResult<PackedStream>>,
    {
        self.set.get_or_try_init(|| async { InsuredSet::read(stream().await?).await }).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use popbase_proto::common::PackedIdNumbers;

    use super::*;

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
        let reads = InsuredReads::new(1, SHARE_WINDOW);
        assert!(reads.current().is_none(), "nothing to join yet");
        let first = reads.join_or_begin().expect("a place is free");
        let joined = reads.current().expect("held and fresh");
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

        // Dropped with the last list holding it: the next list begins afresh.
        drop((first, joined));
        assert!(reads.current().is_none(), "dropped with its last list");
        let next = reads.join_or_begin().expect("its place came free");
        assert!(!next.set(|| insured(vec![1], &streams)).await.expect("read").contains_packed(9));
    }

    #[tokio::test]
    async fn a_stale_read_is_not_joined_and_reads_are_bounded() {
        let reads = InsuredReads::new(1, Duration::ZERO);
        let held = reads.join_or_begin().expect("a place is free");
        std::thread::sleep(Duration::from_millis(2));
        assert!(reads.current().is_none(), "past its window");
        assert!(
            reads.join_or_begin().is_none(),
            "no second read while the one place is held: the list asks one by one"
        );
        drop(held);
        assert!(reads.join_or_begin().is_some());
    }

    #[tokio::test]
    async fn a_failed_read_is_tried_again_by_the_next_list() {
        let reads = InsuredReads::new(1, SHARE_WINDOW);
        let read = reads.join_or_begin().expect("a place is free");
        let failed = read
            .set(|| std::future::ready(Err(popbase_common::ServiceError::Unavailable("feeds down".into()))))
            .await;
        assert!(failed.is_err());
        let streams = AtomicUsize::new(0);
        let again = read.set(|| insured(vec![3], &streams)).await.expect("read again");
        assert!(again.contains_packed(3));
    }
}
