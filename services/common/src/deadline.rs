//! Deadlines on both ends of a call, so a frozen peer costs its caller a
//! bounded wait, never a hung task.
//!
//! [`DeadlineLayer`] wraps a server's routes and every client transport to
//! another role ([`crate::upstream::remote`]). Each call gets the shorter
//! of the caller's `grpc-timeout` and the configured default; a call still
//! unanswered then is answered DEADLINE_EXCEEDED and its future dropped
//! (which cancels whatever it was waiting on).
//!
//! Uploads ([`UPLOADS`]: the answer comes only after the caller's whole
//! stream) get no default deadline, since a city's feed is minutes of
//! records; their handlers bound the time between records instead. Their
//! caller's `grpc-timeout` still holds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;

/// Methods whose answer follows the caller's whole upload stream.
pub const UPLOADS: [&str; 2] = ["/popbase.gateway.v1.DepartmentFeeds/Submit", "/popbase.feeds.v1.Feeds/Ingest"];

/// Methods that run long on the server by nature (a first backup copies a
/// whole store's files): bounded by the caller's `grpc-timeout` and at most
/// [`LONG_RUNNING_MAX`], not by `limits.request_timeout_secs`.
pub const LONG_RUNNING: [&str; 1] = ["/popbase.ops.v1.Ops/CreateBackup"];

/// The longest a [`LONG_RUNNING`] call may take.
pub const LONG_RUNNING_MAX: Duration = Duration::from_secs(4 * 3600);

/// Longest `grpc-timeout` honoured: a caller cannot ask to hold a call
/// longer than a day, whatever it sends.
const MAX_ASKED: Duration = Duration::from_secs(24 * 3600);

/// The caller's `grpc-timeout` header (`<digits><unit>`, at most 8 digits),
/// or `None` when absent or malformed.
pub fn asked_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    let asked = match value.as_bytes().last()? {
        b'H' => Duration::from_secs(amount.saturating_mul(3600)),
        b'M' => Duration::from_secs(amount.saturating_mul(60)),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    };
    Some(asked.min(MAX_ASKED))
}

/// The deadline of a call to `path` with `headers`, given the `default`.
pub fn deadline_of(path: &str, headers: &http::HeaderMap, default: Duration) -> Option<Duration> {
    let asked = asked_timeout(headers);
    if UPLOADS.contains(&path) {
        return asked;
    }
    if LONG_RUNNING.contains(&path) {
        return Some(asked.map_or(LONG_RUNNING_MAX, |asked| asked.min(LONG_RUNNING_MAX)));
    }
    Some(asked.map_or(default, |asked| asked.min(default)))
}

#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    default: Duration,
}

impl DeadlineLayer {
    pub fn new(default: Duration) -> Self {
        Self { default }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            default: self.default,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    default: Duration,
}

impl<S, B> tower_service::Service<http::Request<B>> for Deadline<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let deadline = deadline_of(request.uri().path(), request.headers(), self.default);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let Some(deadline) = deadline else {
                return answer.await;
            };
            match tokio::time::timeout(deadline, answer).await {
                Ok(answered) => answered,
                Err(_) => {
                    let millis = deadline.as_millis();
                    Ok(tonic::Status::deadline_exceeded(format!("no answer within {millis} ms")).into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(timeout: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", timeout.parse().expect("header"));
        headers
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_garbage_is_ignored() {
        assert_eq!(asked_timeout(&headers("5S")), Some(Duration::from_secs(5)));
        assert_eq!(asked_timeout(&headers("250m")), Some(Duration::from_millis(250)));
        assert_eq!(asked_timeout(&headers("2M")), Some(Duration::from_secs(120)));
        assert_eq!(asked_timeout(&headers("99999999H")), Some(MAX_ASKED));
        assert_eq!(asked_timeout(&headers("100n")), Some(Duration::from_nanos(100)));
        for bad in ["", "S", "5", "123456789S", "-5S", "5s", "5 S"] {
            assert_eq!(asked_timeout(&headers(bad)), None, "{bad:?}");
        }
        assert_eq!(asked_timeout(&http::HeaderMap::new()), None);
    }

    #[test]
    fn the_shorter_deadline_wins_and_uploads_have_only_the_callers() {
        let default = Duration::from_secs(30);
        let path = "/popbase.gateway.v1.PersonQuery/GetPerson";
        assert_eq!(deadline_of(path, &http::HeaderMap::new(), default), Some(default));
        assert_eq!(deadline_of(path, &headers("1S"), default), Some(Duration::from_secs(1)));
        assert_eq!(deadline_of(path, &headers("1H"), default), Some(default));
        assert_eq!(deadline_of(UPLOADS[0], &http::HeaderMap::new(), default), None);
        assert_eq!(deadline_of(UPLOADS[0], &headers("1H"), default), Some(Duration::from_secs(3600)));
        assert_eq!(
            deadline_of(LONG_RUNNING[0], &http::HeaderMap::new(), default),
            Some(LONG_RUNNING_MAX)
        );
        assert_eq!(
            deadline_of(LONG_RUNNING[0], &headers("2H"), default),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(deadline_of(LONG_RUNNING[0], &headers("9H"), default), Some(LONG_RUNNING_MAX));
    }
}
