//! Admission control: a port admits at most so many calls at once and
//! refuses the rest RESOURCE_EXHAUSTED (reason `OVERLOADED`) at once, so
//! the calls it admits keep their latency and a flood queues nowhere.
//!
//! [`LoadShedLayer`] bounds a whole port (the call holds its slot until its
//! answer, streamed or not, has been sent); [`KeyedLimit`] bounds one key
//! of it (the gateway's per-department limit).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;

use crate::Role;
use crate::error::ServiceError;
use crate::metrics::Metrics;

/// Reason code of a call refused because the server is at its limit.
pub const OVERLOADED: &str = "OVERLOADED";

/// The refusal of a call past a limit of `limit` calls in flight for `what`.
pub fn overloaded(what: &str, limit: usize) -> ServiceError {
    ServiceError::ResourceExhausted {
        code: OVERLOADED,
        reason: format!("{what} has {limit} calls in flight, its limit; retry after a backoff"),
    }
}

#[derive(Clone)]
pub struct LoadShedLayer {
    role: Role,
    permits: Arc<Semaphore>,
    limit: usize,
    /// Where refusals are counted (`popbase_shed_calls_total`).
    metrics: Arc<Metrics>,
}

impl LoadShedLayer {
    pub fn new(role: Role, limit: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            role,
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            metrics,
        }
    }
}

impl<S> tower::Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LoadShed<S> {
    inner: S,
    layer: LoadShedLayer,
}

impl<S, B> tower_service::Service<http::Request<B>> for LoadShed<S>
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
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            self.layer.metrics.count_shed(self.layer.role);
            let status = tonic::Status::from(overloaded("this server", self.layer.limit));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Body::new(Holding { body, _permit: permit })))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call's slot until it is sent or dropped.
    struct Holding {
        #[pin]
        body: Body,
        _permit: OwnedSemaphorePermit,
    }
}

impl http_body::Body for Holding {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// At most `per_key` calls in flight per key; each admitted call holds a
/// [`KeyedSlot`] until it ends.
pub struct KeyedLimit {
    per_key: usize,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

/// One admitted call's place under a [`KeyedLimit`]; freed when dropped.
#[derive(Debug)]
pub struct KeyedSlot {
    key: String,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for KeyedSlot {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = in_flight.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

impl KeyedLimit {
    pub fn new(per_key: usize) -> Self {
        Self {
            per_key,
            in_flight: Arc::default(),
        }
    }

    pub fn limit(&self) -> usize {
        self.per_key
    }

    /// A slot for `key`, or `None` when it already has `per_key` calls in flight.
    pub fn try_enter(&self, key: &str) -> Option<KeyedSlot> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let count = in_flight.entry(key.to_string()).or_insert(0);
        if *count >= self.per_key {
            return None;
        }
        *count += 1;
        Some(KeyedSlot {
            key: key.to_string(),
            in_flight: self.in_flight.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_limit_and_a_dropped_slot_frees_its_place() {
        let limit = KeyedLimit::new(2);
        let a1 = limit.try_enter("a").expect("first");
        let _a2 = limit.try_enter("a").expect("second");
        assert!(limit.try_enter("a").is_none(), "a third is refused");
        let _b = limit.try_enter("b").expect("another key has its own slots");
        drop(a1);
        assert!(limit.try_enter("a").is_some(), "a freed slot is reused");
        assert!(limit.in_flight.lock().expect("lock").get("c").is_none());
    }
}
