//! Streams of packed ID numbers between roles (`PackedIdNumbers`).
//!
//! A whole-city list moves millions of ID numbers: the registry's persons
//! of a division, the feeds' insured. A blocking store scan hands them to a
//! [`Packer`] one at a time; they leave eight bytes each, at most
//! [`CHUNK`] to a message, with at most [`QUEUED`] messages waiting for the
//! reader, so a slow reader slows the scan (HTTP/2 flow control does the
//! rest) and memory stays bounded. A reader that takes nothing for
//! [`STALL`] loses its stream, which frees the scan's thread.

use std::pin::Pin;
use std::time::Duration;

use popbase_domain::id_number;
use popbase_proto::common::PackedIdNumbers;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

use crate::ServiceError;

/// ID numbers per message (512 KiB packed).
pub const CHUNK: usize = 65_536;
/// Messages waiting for the reader.
pub const QUEUED: usize = 2;
/// How long a message may wait for the reader to take it.
pub const STALL: Duration = Duration::from_secs(30);

pub type PackedStream = Pin<Box<dyn Stream<Item = Result<PackedIdNumbers, Status>> + Send>>;

/// Collects ID numbers into messages and sends each one full.
pub struct Packer {
    current: PackedIdNumbers,
    sender: mpsc::Sender<Result<PackedIdNumbers, Status>>,
    runtime: tokio::runtime::Handle,
    gone: bool,
}

impl Packer {
    /// Tells the reader about how many ID numbers the whole stream holds (on
    /// the first message; a reader sizes what it fills by it). Only before
    /// the first message has left.
    pub fn expect(&mut self, total: u64) {
        self.current.expected = total;
    }

    /// Adds one ID number; `false` once the reader has gone (stop scanning).
    pub fn push(&mut self, id: &str) -> bool {
        match id_number::pack(id) {
            Some(packed) => self.current.ids.push(packed),
            // A store validates every ID number on the way in, so none
            // should fail to pack; one that does still travels, unpacked.
            None => self.current.unpacked.push(id.to_string()),
        }
        if self.current.ids.len() + self.current.unpacked.len() >= CHUNK {
            let full = std::mem::take(&mut self.current);
            self.send(Ok(full));
        }
        !self.gone
    }

    fn send(&mut self, message: Result<PackedIdNumbers, Status>) {
        if self.gone {
            return;
        }
        let sent = self.runtime.block_on(self.sender.send_timeout(message, STALL));
        self.gone = sent.is_err();
    }

    /// Sends the last message, marked complete (empty when the scan found
    /// nothing), or the scan's error.
    fn finish(mut self, scanned: Result<(), ServiceError>) {
        match scanned {
            Ok(()) => {
                let mut last = std::mem::take(&mut self.current);
                last.complete = true;
                self.send(Ok(last));
            }
            Err(e) => self.send(Err(e.into())),
        }
    }
}

/// Runs `scan` on the blocking pool and streams what it packs. A scan
/// error ends the stream with that error after what was already sent.
pub fn stream_from_scan<E>(scan: impl FnOnce(&mut Packer) -> Result<(), E> + Send + 'static) -> PackedStream
where
    E: Into<ServiceError>,
{
    let (sender, receiver) = mpsc::channel(QUEUED);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut packer = Packer {
            current: PackedIdNumbers::default(),
            sender,
            runtime,
            gone: false,
        };
        let scanned = scan(&mut packer).map_err(Into::into);
        packer.finish(scanned);
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

/// The next message of `stream`, or UNAVAILABLE when none comes within
/// `idle`: a frozen sender must not hold its reader (and what the reader
/// holds) for ever.
pub async fn next_within(stream: &mut PackedStream, idle: Duration) -> Result<Option<PackedIdNumbers>, Status> {
    match tokio::time::timeout(idle, tokio_stream::StreamExt::next(stream)).await {
        Ok(next) => next.transpose(),
        Err(_) => Err(Status::unavailable(format!("no ID numbers for {} s", idle.as_secs()))),
    }
}

/// Reads a whole stream, handing `take` each message: UNAVAILABLE when a
/// message does not come within `idle`, or when the stream ends without its
/// last message marked complete (a sender that stopped or failed midway
/// must not pass for one that had no more).
pub async fn read_whole(mut stream: PackedStream, idle: Duration, mut take: impl FnMut(PackedIdNumbers)) -> Result<(), Status> {
    while let Some(message) = next_within(&mut stream, idle).await? {
        let complete = message.complete;
        take(message);
        if complete {
            return Ok(());
        }
    }
    Err(Status::unavailable("the ID numbers ended before their last message"))
}

/// The ID numbers of one message, packed ones first.
pub fn unpack(message: PackedIdNumbers) -> impl Iterator<Item = String> {
    message.ids.into_iter().filter_map(id_number::unpack).chain(message.unpacked)
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn chunks_are_bounded_and_nothing_is_lost() {
        let ids: Vec<String> = (0..(CHUNK as u64 + 10))
            .map(|n| id_number::unpack(37_030_219_800_000_000 + n).expect("17 digits"))
            .collect();
        let scanned = ids.clone();
        let mut stream = stream_from_scan(move |packer| {
            for id in &scanned {
                packer.push(id);
            }
            packer.push("not an ID number");
            Ok::<_, ServiceError>(())
        });
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while let Some(message) = stream.next().await {
            let message = message.expect("no error");
            sizes.push((message.ids.len() + message.unpacked.len(), message.complete));
            got.extend(unpack(message));
        }
        assert_eq!(sizes, vec![(CHUNK, false), (11, true)], "only the last is marked complete");
        assert_eq!(got.len(), ids.len() + 1);
        assert_eq!(&got[..ids.len()], &ids[..]);
        assert_eq!(got.last().map(String::as_str), Some("not an ID number"));
    }

    #[tokio::test]
    async fn only_a_stream_marked_complete_is_read_whole() {
        let idle = Duration::from_millis(200);
        let whole = stream_from_scan(|_| Ok::<_, ServiceError>(()));
        let mut messages = 0;
        read_whole(whole, idle, |m| {
            assert!(m.complete && m.ids.is_empty());
            messages += 1;
        })
        .await
        .expect("an empty scan is a whole, empty answer");
        assert_eq!(messages, 1);
        let cut: PackedStream = Box::pin(tokio_stream::iter(vec![Ok(PackedIdNumbers {
            ids: vec![1],
            ..Default::default()
        })]));
        let read = read_whole(cut, idle, |_| {}).await;
        assert_eq!(read.map_err(|s| s.code()), Err(tonic::Code::Unavailable), "a stream cut short");
        // A scan that panics drops its sender: cut short, not complete.
        let panicked = stream_from_scan(|packer| -> Result<(), ServiceError> {
            packer.push("11010519491231002X");
            panic!("a scan that fails badly");
        });
        assert_eq!(
            read_whole(panicked, idle, |_| {}).await.map_err(|s| s.code()),
            Err(tonic::Code::Unavailable)
        );
    }

    #[tokio::test]
    async fn a_sender_that_sends_nothing_is_given_up_on() {
        let mut frozen: PackedStream = Box::pin(tokio_stream::pending());
        let given_up = next_within(&mut frozen, Duration::from_millis(20)).await;
        assert_eq!(given_up.map_err(|s| s.code()), Err(tonic::Code::Unavailable));
        let mut done: PackedStream = Box::pin(tokio_stream::iter(vec![Ok(PackedIdNumbers::default())]));
        assert!(matches!(next_within(&mut done, STALL).await, Ok(Some(_))));
        assert!(matches!(next_within(&mut done, STALL).await, Ok(None)));
    }

    #[tokio::test]
    async fn a_scan_error_ends_the_stream_after_what_was_sent() {
        let mut stream = stream_from_scan(|packer| {
            packer.push("11010519491231002X");
            Err(ServiceError::Unavailable("store closed".into()))
        });
        let first = stream.next().await.expect("one message");
        assert_eq!(first.map_err(|s| s.code()), Err(tonic::Code::Unavailable));
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_reader_that_hangs_up_stops_the_scan() {
        let (done, finished) = tokio::sync::oneshot::channel();
        let stream = stream_from_scan(move |packer| {
            let mut pushed = 0u64;
            while packer.push("11010519491231002X") {
                pushed += 1;
                assert!(pushed < 100 * CHUNK as u64, "the scan went on after the reader left");
            }
            let _ = done.send(pushed);
            Ok::<_, ServiceError>(())
        });
        drop(stream);
        let pushed = finished.await.expect("the scan ended");
        assert!(pushed <= (QUEUED as u64 + 2) * CHUNK as u64, "{pushed}");
    }
}
