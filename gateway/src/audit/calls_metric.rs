//! `popbase_department_calls_total`: the uses the ledger has made durable,
//! per department, interface and outcome, for the per-department anomaly
//! alert (a department suddenly asking ten times its usual volume is the
//! classic sign of a leaked credential or a scraping script).
//!
//! Counted by the ledger's audit writer after each commit, so every gateway
//! replica's calls are in one series and a call is counted exactly when its
//! record is durable. Labels come from the records, which the gateway fills
//! from the catalogue (a caller that never authenticated has department
//! ""); the series are capped all the same, so no stream of records can
//! grow the scrape without bound.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use popbase_common::metrics::LabelValue;

/// Series kept before new (department, interface) pairs are counted as "other".
const MAX_SERIES: usize = 2_000;

/// (department, interface, answered) -> uses.
#[derive(Default)]
pub struct DepartmentCalls {
    counts: Mutex<BTreeMap<(String, String, bool), u64>>,
}

impl DepartmentCalls {
    /// Adds the uses of one committed group.
    pub fn add(&self, uses: Vec<(String, String, bool, u64)>) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for (department, interface, answered, n) in uses {
            let key = (department, interface, answered);
            let key = if counts.len() < MAX_SERIES || counts.contains_key(&key) {
                key
            } else {
                ("other".to_string(), "other".to_string(), answered)
            };
            *counts.entry(key).or_default() += n;
        }
    }

    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP popbase_department_calls_total Uses made durable in the audit trail, by department, interface and outcome.\n");
        out.push_str("# TYPE popbase_department_calls_total counter\n");
        for ((department, interface, answered), n) in self.counts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let outcome = if *answered { "answered" } else { "refused" };
            let _ = writeln!(
                out,
                "popbase_department_calls_total{{department=\"{}\",interface=\"{}\",outcome=\"{outcome}\"}} {n}",
                LabelValue(department),
                LabelValue(interface)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label_and_caps_the_series() {
        let calls = DepartmentCalls::default();
        calls.add(vec![
            ("education".into(), "EnrollmentCheck".into(), true, 1),
            ("education".into(), "EnrollmentCheck".into(), true, 1),
            ("".into(), "PersonSummary".into(), false, 3),
        ]);
        let mut out = String::new();
        calls.render(&mut out);
        assert!(
            out.contains("popbase_department_calls_total{department=\"education\",interface=\"EnrollmentCheck\",outcome=\"answered\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("{department=\"\",interface=\"PersonSummary\",outcome=\"refused\"} 3\n"),
            "{out}"
        );

        let flood = (0..MAX_SERIES + 10).map(|i| (format!("d{i}"), "X".to_string(), true, 1)).collect();
        calls.add(flood);
        let mut out = String::new();
        calls.render(&mut out);
        assert!(out.lines().filter(|l| l.starts_with("popbase_department_calls_total{")).count() <= MAX_SERIES + 2);
        assert!(
            out.contains("{department=\"other\",interface=\"other\",outcome=\"answered\"}"),
            "{out}"
        );
    }
}
