//! The two ways of driving a scenario.
//!
//! * Closed loop: `concurrency` workers each call, wait for the answer,
//!   call again: the maximum throughput the system sustains.
//! * Open loop: calls start on a fixed schedule (`rate` per second)
//!   whether or not earlier ones finished; each latency is measured from
//!   the call's *intended* start, so a stall shows up in every call it
//!   delayed (coordinated omission corrected, as in wrk2 / HdrHistogram).
//!
//! Both run a warm-up first whose calls are not recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc};

use crate::report::{Latency, Report};

/// One kind of call against the gateway.
pub trait Scenario: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The `n`-th call; the number of work items it completed.
    fn call(&self, n: u64) -> BoxFuture<'static, Result<u64, String>>;
}

pub struct Plan {
    pub warmup: Duration,
    pub duration: Duration,
    pub concurrency: u32,
    /// Open loop when set.
    pub rate: Option<f64>,
    pub connections: u32,
}

/// Latencies above this are recorded at this value (and counted): an
/// hour, since a whole province's export is a call of a minute or more.
const MAX_MICROS: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// What a finished call reports to the collector.
struct Outcome {
    micros: u64,
    /// Open loop: how late the call started against its schedule.
    lag_micros: Option<u64>,
    items: u64,
    error: Option<String>,
    counted: bool,
}

#[derive(Default)]
struct Tally {
    calls: u64,
    errors: u64,
    /// Errors that were the server shedding load.
    shed: u64,
    items: u64,
    samples: Vec<String>,
}

/// Whether a scenario's error is the server refusing for load.
fn is_shed(error: &str) -> bool {
    error.contains("OVERLOADED")
}

impl Tally {
    fn add(&mut self, h: &mut Histogram<u64>, admitted: &mut Histogram<u64>, lags: &mut Histogram<u64>, o: Outcome) {
        if !o.counted {
            return;
        }
        let _ = h.record(o.micros.clamp(1, MAX_MICROS));
        if o.error.is_none() {
            let _ = admitted.record(o.micros.clamp(1, MAX_MICROS));
        }
        if let Some(lag) = o.lag_micros {
            let _ = lags.record(lag.clamp(1, MAX_MICROS));
        }
        match o.error {
            None => {
                self.calls += 1;
                self.items += o.items;
            }
            Some(e) => {
                self.errors += 1;
                if is_shed(&e) {
                    self.shed += 1;
                }
                if self.samples.len() < 3 && !self.samples.contains(&e) {
                    self.samples.push(e);
                }
            }
        }
    }
}

pub async fn run(scenario: Arc<dyn Scenario>, plan: &Plan) -> Report {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    match plan.rate {
        None => closed(scenario.clone(), plan.concurrency, measure_from, end, tx),
        Some(rate) => open(scenario.clone(), rate, plan.concurrency, measure_from, end, tx),
    }
    let (mut h, mut admitted, mut lags) = (histogram(), histogram(), histogram());
    let mut tally = Tally::default();
    while let Some(outcome) = rx.recv().await {
        tally.add(&mut h, &mut admitted, &mut lags, outcome);
    }
    let seconds = plan.duration.as_secs_f64();
    Report {
        system: "popbase".into(),
        scenario: scenario.name().into(),
        mode: if plan.rate.is_some() { "open" } else { "closed" }.into(),
        concurrency: plan.concurrency,
        target_rate: plan.rate,
        connections: plan.connections,
        duration_s: seconds,
        calls: tally.calls,
        errors: tally.errors,
        items: tally.items,
        calls_per_s: tally.calls as f64 / seconds,
        items_per_s: tally.items as f64 / seconds,
        latency: Latency::from_micros(&h),
        schedule_lag: (!lags.is_empty()).then(|| Latency::from_micros(&lags)),
        shed: tally.shed,
        admitted_latency: (!admitted.is_empty()).then(|| Latency::from_micros(&admitted)),
        error_samples: tally.samples,
        notes: String::new(),
    }
}

fn closed(scenario: Arc<dyn Scenario>, workers: u32, measure_from: Instant, end: Instant, tx: mpsc::UnboundedSender<Outcome>) {
    for worker in 0..workers {
        let (scenario, tx) = (scenario.clone(), tx.clone());
        tokio::spawn(async move {
            let mut n = u64::from(worker);
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let result = scenario.call(n).await;
                let _ = tx.send(outcome(began, result, began >= measure_from));
                n += u64::from(workers);
            }
        });
    }
}

/// Open loop; `max_in_flight` bounds memory if the system falls far behind
/// (the schedule keeps its times, so waiting for room counts as latency).
///
/// A plain thread keeps the schedule: tokio's timer fires on whole
/// milliseconds, which would add up to a millisecond of the tester's own
/// lateness to every latency it measures (pgbench's `-R` waits in
/// microseconds). The lateness that remains is reported as the schedule lag.
fn open(
    scenario: Arc<dyn Scenario>,
    rate: f64,
    max_in_flight: u32,
    measure_from: Instant,
    end: Instant,
    tx: mpsc::UnboundedSender<Outcome>,
) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let room = Arc::new(Semaphore::new(max_in_flight.max(1) as usize));
    let (due_tx, mut due) = mpsc::unbounded_channel::<(u64, Instant)>();
    std::thread::spawn(move || {
        let start = Instant::now();
        for n in 0u64.. {
            let intended = start + interval.mul_f64(n as f64);
            if intended >= end {
                break;
            }
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            if due_tx.send((n, intended)).is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((n, intended)) = due.recv().await {
            let Ok(permit) = room.clone().acquire_owned().await else { break };
            let lag = intended.elapsed();
            let (scenario, tx) = (scenario.clone(), tx.clone());
            tokio::spawn(async move {
                let result = scenario.call(n).await;
                drop(permit);
                let mut outcome = outcome(intended, result, intended >= measure_from);
                outcome.lag_micros = Some(micros(lag));
                let _ = tx.send(outcome);
            });
        }
    });
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn outcome(since: Instant, result: Result<u64, String>, counted: bool) -> Outcome {
    let micros = micros(since.elapsed());
    let (items, error) = match result {
        Ok(items) => (items, None),
        Err(e) => (0, Some(e)),
    };
    Outcome {
        micros,
        lag_micros: None,
        items,
        error,
        counted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers after a fixed delay; every 10th call stalls for 100 ms.
    struct Stalling;

    impl Scenario for Stalling {
        fn name(&self) -> &'static str {
            "stalling"
        }
        fn call(&self, n: u64) -> BoxFuture<'static, Result<u64, String>> {
            Box::pin(async move {
                let ms = if n % 10 == 9 { 100 } else { 1 };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(2)
            })
        }
    }

    #[test]
    fn a_call_of_minutes_keeps_its_time() {
        let (mut h, mut admitted, mut lags) = (histogram(), histogram(), histogram());
        let export = Outcome {
            micros: 90_000_000,
            lag_micros: None,
            items: 88_880_018,
            error: None,
            counted: true,
        };
        Tally::default().add(&mut h, &mut admitted, &mut lags, export);
        let seconds = admitted.max() as f64 / 1e6;
        assert!((seconds - 90.0).abs() < 0.1, "a whole province's export: {seconds} s");
    }

    #[tokio::test]
    async fn closed_loop_counts_calls_items_and_a_stall_in_the_tail() {
        let plan = Plan {
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(500),
            concurrency: 4,
            rate: None,
            connections: 1,
        };
        let report = run(Arc::new(Stalling), &plan).await;
        assert!(report.calls > 20, "{}", report.calls);
        assert_eq!(report.items, report.calls * 2);
        assert!(report.latency.p99_ms >= 99.0, "the stalls are in the tail: {:?}", report.latency);
        assert!(report.latency.p50_ms < 50.0);
        assert!(report.schedule_lag.is_none(), "a closed loop has no schedule");
    }

    #[tokio::test]
    async fn open_loop_keeps_its_schedule_and_measures_from_the_intended_start() {
        // One call in flight at a time: a 100 ms stall delays the calls
        // scheduled behind it, and their latency must show it.
        let plan = Plan {
            warmup: Duration::from_millis(0),
            duration: Duration::from_millis(600),
            concurrency: 1,
            rate: Some(200.0),
            connections: 1,
        };
        let report = run(Arc::new(Stalling), &plan).await;
        assert!(report.calls >= 20, "{}", report.calls);
        assert!(report.latency.p90_ms > 20.0, "delayed calls count their wait: {:?}", report.latency);
        let lag = report.schedule_lag.expect("an open loop reports its schedule lag");
        assert!(lag.p90_ms > 20.0, "calls waiting for room start late: {lag:?}");
        assert!(lag.max_ms <= report.latency.max_ms, "the lag is part of the latency: {lag:?}");
    }
}
