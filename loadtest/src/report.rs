//! What a run measured, as JSON (for tools and `compare`) and Markdown (for
//! people), and the side-by-side comparison with baseline runs.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One run of one scenario (popbase or a baseline: the same shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// What ran: `popbase person`, `postgresql consent-query`, …
    pub system: String,
    pub scenario: String,
    /// `closed` (max throughput) or `open` (fixed rate).
    pub mode: String,
    pub concurrency: u32,
    /// Open loop: calls per second asked for.
    pub target_rate: Option<f64>,
    pub connections: u32,
    pub duration_s: f64,
    pub calls: u64,
    pub errors: u64,
    /// Work items done (rows exported, children checked, residents listed; 1 per call otherwise).
    pub items: u64,
    pub calls_per_s: f64,
    pub items_per_s: f64,
    /// Open loop: measured from each call's intended start (coordinated omission corrected).
    pub latency: Latency,
    /// Open loop: how late calls started against their schedule (the
    /// tester's own lateness plus waiting for room), already inside `latency`.
    #[serde(default)]
    pub schedule_lag: Option<Latency>,
    /// Calls the server refused for load (RESOURCE_EXHAUSTED, reason
    /// OVERLOADED), among `errors`.
    #[serde(default)]
    pub shed: u64,
    /// Latency of the calls that were answered (not refused), from their
    /// intended start: what an admitted call costs under load.
    #[serde(default)]
    pub admitted_latency: Option<Latency>,
    /// First few distinct error messages.
    pub error_samples: Vec<String>,
    pub notes: String,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {} — {} ({} loop)\n", self.system, self.scenario, self.mode);
        let _ = writeln!(
            out,
            "| calls/s | items/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | calls | errors |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let l = &self.latency;
        let _ = writeln!(
            out,
            "| {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            self.calls_per_s, self.items_per_s, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, self.calls, self.errors
        );
        let rate = self.target_rate.map(|r| format!(", target {r:.0}/s")).unwrap_or_default();
        let _ = writeln!(
            out,
            "\nconcurrency {}, {} connections, {:.0} s measured{rate}. {}",
            self.concurrency, self.connections, self.duration_s, self.notes
        );
        if let Some(lag) = &self.schedule_lag {
            let _ = writeln!(
                out,
                "\nCalls started late against the schedule by p50 {:.3} ms, p99 {:.3} ms (included above).",
                lag.p50_ms, lag.p99_ms
            );
        }
        if self.shed > 0 {
            let attempted = (self.calls + self.errors).max(1);
            let _ = writeln!(
                out,
                "\nShed (OVERLOADED): {} of {} calls ({:.1} %).",
                self.shed,
                attempted,
                100.0 * self.shed as f64 / attempted as f64
            );
        }
        if let Some(admitted) = &self.admitted_latency {
            let _ = writeln!(
                out,
                "\nAdmitted calls: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms.",
                admitted.p50_ms, admitted.p99_ms, admitted.p999_ms
            );
        }
        for e in &self.error_samples {
            let _ = writeln!(out, "- error: {e}");
        }
        out
    }
}

/// A Markdown table of `runs` with each one's throughput as a ratio of the
/// first run of the same scenario group (`baseline`).
pub fn compare(runs: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| system | scenario | mode | items/s | p50 ms | p99 ms | p99.9 ms | errors | ratio to first |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---:|");
    let base = runs.first().map_or(0.0, |r| r.items_per_s);
    for r in runs {
        let ratio = if base > 0.0 { r.items_per_s / base } else { 0.0 };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {ratio:.2}x |",
            r.system, r.scenario, r.mode, r.items_per_s, r.latency.p50_ms, r.latency.p99_ms, r.latency.p999_ms, r.errors
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram_in_milliseconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        for us in 1..=1000u64 {
            h.record(us * 10).expect("record");
        }
        let l = Latency::from_micros(&h);
        assert!((l.p50_ms - 5.0).abs() < 0.01, "{}", l.p50_ms);
        assert!((l.p99_ms - 9.9).abs() < 0.01, "{}", l.p99_ms);
        assert!((l.max_ms - 10.0).abs() < 0.01);
    }

    #[test]
    fn comparison_divides_by_the_first_run() {
        let run = |system: &str, items_per_s| Report {
            system: system.into(),
            items_per_s,
            ..Default::default()
        };
        let table = compare(&[run("postgresql", 1000.0), run("popbase", 2500.0)]);
        assert!(table.contains("| 1.00x |") && table.contains("| 2.50x |"), "{table}");
    }
}
