//! What an SRE sees of subscriptions on one gateway replica, per
//! department (labels from the catalogue, so their number is bounded):
//! streams open, changes delivered, and the commit-to-send lag as a sum
//! and a count (their rates' ratio is the mean lag; a growing one means
//! a subscriber or the replica falls behind).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use popbase_common::metrics::LabelValue;

#[derive(Debug, Default, Clone, Copy)]
struct Department {
    streams: u64,
    delivered: u64,
    lag_seconds: f64,
}

/// One metric: name, type, help and its value for a department.
type Series = (&'static str, &'static str, &'static str, fn(&Department) -> String);

#[derive(Debug, Default)]
pub struct SubscriptionFigures {
    by_department: Mutex<BTreeMap<String, Department>>,
}

impl SubscriptionFigures {
    fn with(&self, department: &str, change: impl FnOnce(&mut Department)) {
        let mut figures = self.by_department.lock().unwrap_or_else(|p| p.into_inner());
        change(figures.entry(department.to_string()).or_default());
    }

    pub fn stream_opened(&self, department: &str) {
        self.with(department, |d| d.streams += 1);
    }

    pub fn stream_closed(&self, department: &str) {
        self.with(department, |d| d.streams = d.streams.saturating_sub(1));
    }

    /// `count` changes sent, their lags adding up to `lag_seconds`.
    pub fn delivered(&self, department: &str, count: u64, lag_seconds: f64) {
        self.with(department, |d| {
            d.delivered += count;
            d.lag_seconds += lag_seconds;
        });
    }

    pub fn render(&self, out: &mut String) {
        let figures = self.by_department.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let series: [Series; 3] = [
            (
                "popbase_subscription_streams",
                "gauge",
                "Subscribe streams open on this replica.",
                |d| d.streams.to_string(),
            ),
            (
                "popbase_subscription_changes_delivered_total",
                "counter",
                "Changes sent to subscribers (each audited first).",
                |d| d.delivered.to_string(),
            ),
            (
                "popbase_subscription_lag_seconds_total",
                "counter",
                "Sum of the delivered changes' time from commit to send; over the changes' rate, the mean lag.",
                |d| format!("{:.3}", d.lag_seconds),
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (department, figures) in &figures {
                let _ = writeln!(out, "{name}{{department=\"{}\"}} {}", LabelValue(department), value(figures));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_per_department_in_the_text_format() {
        let figures = SubscriptionFigures::default();
        figures.stream_opened("hrss");
        figures.stream_opened("hrss");
        figures.stream_closed("hrss");
        figures.delivered("hrss", 3, 0.006);
        let mut out = String::new();
        figures.render(&mut out);
        assert!(out.contains("popbase_subscription_streams{department=\"hrss\"} 1\n"), "{out}");
        assert!(
            out.contains("popbase_subscription_changes_delivered_total{department=\"hrss\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("popbase_subscription_lag_seconds_total{department=\"hrss\"} 0.006\n"),
            "{out}"
        );
        assert!(out.contains("# TYPE popbase_subscription_streams gauge"), "{out}");
    }
}
