//! A department's streamed requests (an enrollment intake, a feed
//! submission), read with a bound on how long the gateway waits for each
//! message: an open stream holds one of the department's places among its
//! calls in flight, so a caller that opens one and sends nothing must not
//! hold it forever. Every way a stream can end other than cleanly is a
//! refusal the handler charges to the caller.

use std::time::Duration;

use futures::{FutureExt as _, Stream};
use popbase_common::ServiceError;
use tokio_stream::StreamExt;
use tonic::Streaming;

use super::malformed::malformed_item;

/// The next message of `stream`, waiting at most `idle` for it; `Ok(None)`
/// when the caller closed it. A message that does not decode is
/// INVALID_ARGUMENT naming the body; silence past `idle` and a broken
/// stream are ABORTED (`broke_off` says what the call leaves behind).
pub(crate) async fn next_within<T>(
    stream: &mut Streaming<T>,
    idle: Duration,
    broke_off: fn() -> ServiceError,
) -> Result<Option<T>, ServiceError> {
    // A message already buffered needs no timer: an intake's items mostly
    // are, and arming one per item cost a clock read and a timer-wheel
    // entry each.
    let next = match stream.next().now_or_never() {
        Some(next) => Ok(next),
        None => tokio::time::timeout(idle, stream.next()).await,
    };
    match next {
        Ok(None) => Ok(None),
        Ok(Some(Ok(message))) => Ok(Some(message)),
        Ok(Some(Err(status))) => Err(malformed_item(&status).unwrap_or_else(broke_off)),
        Err(_) => Err(ServiceError::Aborted(format!(
            "nothing arrived on the stream for {} s; it is closed, and what was answered before stands",
            idle.as_secs()
        ))),
    }
}

/// `stream`'s messages read with [`next_within`]; it ends after the first error.
pub(crate) fn idle_bounded<T: Send + 'static>(
    stream: Streaming<T>,
    idle: Duration,
    broke_off: fn() -> ServiceError,
) -> impl Stream<Item = Result<T, ServiceError>> + Send {
    futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match next_within(&mut stream, idle, broke_off).await {
            Ok(Some(message)) => Some((Ok(message), Some(stream))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}
