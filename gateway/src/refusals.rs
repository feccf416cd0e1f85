//! Refusals cost the caller, not the platform. Each caller (a department,
//! or a peer address before it has authenticated) has a budget of refusals
//! audited one by one per window; past it, a refusal is answered at once
//! (RESOURCE_EXHAUSTED, reason `REFUSAL_FLOOD`), counted, and the count
//! audited as one summary record when the window closes. A flood of bad
//! calls thus writes a bounded number of records, and no refusal goes
//! unrecorded: each is a record or part of a summary's count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who a refusal is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Culprit {
    Department(String),
    /// A caller that has not authenticated, by its address (or `None` when
    /// the transport gave none).
    Peer(Option<IpAddr>),
}

impl Culprit {
    /// The audit record's department: empty for a peer.
    pub fn department(&self) -> &str {
        match self {
            Culprit::Department(id) => id,
            Culprit::Peer(_) => "",
        }
    }

    /// How a summary record names a peer (in its `fields`).
    pub fn peer_label(&self) -> Option<String> {
        match self {
            Culprit::Department(_) => None,
            Culprit::Peer(Some(ip)) => Some(format!("peer:{ip}")),
            Culprit::Peer(None) => Some("peer:unknown".into()),
        }
    }
}

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Within the budget: audit it as its own record.
    Audit,
    /// Past the budget: answer REFUSAL_FLOOD; it is in the window's count.
    Flood,
}

struct Tally {
    opened: Instant,
    audited: u32,
    /// Refusals past the budget not yet in a summary record.
    unrecorded: u64,
}

/// Refusals suppressed in a closed window, to be audited as one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub culprit: Culprit,
    pub refusals: u64,
}

pub struct RefusalBudget {
    per_window: u32,
    window: Duration,
    tallies: Mutex<HashMap<Culprit, Tally>>,
}

/// Culprits tracked at once; past it the idle ones are forgotten first
/// (only those without unrecorded refusals), so spoofed peers cannot grow
/// the table without bound.
const MAX_TRACKED: usize = 100_000;

impl RefusalBudget {
    pub fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            tallies: Mutex::new(HashMap::new()),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Charges one refusal to `culprit` at `now`.
    pub fn charge(&self, culprit: &Culprit, now: Instant) -> Charge {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        if tallies.len() >= MAX_TRACKED && !tallies.contains_key(culprit) {
            let window = self.window;
            tallies.retain(|_, t| t.unrecorded > 0 || now.saturating_duration_since(t.opened) < window);
        }
        let tally = tallies.entry(culprit.clone()).or_insert(Tally {
            opened: now,
            audited: 0,
            unrecorded: 0,
        });
        if now.saturating_duration_since(tally.opened) >= self.window {
            tally.opened = now;
            tally.audited = 0;
        }
        if tally.audited < self.per_window {
            tally.audited += 1;
            Charge::Audit
        } else {
            tally.unrecorded += 1;
            Charge::Flood
        }
    }

    /// Counts one refusal into `culprit`'s next summary without auditing it
    /// on its own or using its budget: load shedding, whose refusals must
    /// stay cheap exactly when the platform is busiest.
    pub fn count_only(&self, culprit: &Culprit, now: Instant) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let tally = tallies.entry(culprit.clone()).or_insert(Tally {
            opened: now,
            audited: 0,
            unrecorded: 0,
        });
        tally.unrecorded += 1;
    }

    /// Takes the unrecorded counts of windows closed by `now` (all of them
    /// when `all`, at shutdown); forgets culprits idle for a window.
    pub fn closed(&self, now: Instant, all: bool) -> Vec<Summary> {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (culprit, tally) in tallies.iter_mut() {
            let closed = all || now.saturating_duration_since(tally.opened) >= self.window;
            if closed && tally.unrecorded > 0 {
                out.push(Summary {
                    culprit: culprit.clone(),
                    refusals: std::mem::take(&mut tally.unrecorded),
                });
            }
        }
        let window = self.window;
        tallies.retain(|_, t| t.unrecorded > 0 || now.saturating_duration_since(t.opened) < window);
        out
    }

    /// Puts back counts whose summary record could not be written, so the
    /// next window's summary carries them.
    pub fn restore(&self, summaries: Vec<Summary>, now: Instant) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        for summary in summaries {
            let tally = tallies.entry(summary.culprit).or_insert(Tally {
                opened: now,
                audited: self.per_window,
                unrecorded: 0,
            });
            tally.unrecorded += summary.refusals;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_its_budget_a_caller_is_counted_and_summarised_once_per_window() {
        let budget = RefusalBudget::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let peer = Culprit::Peer(Some("10.0.0.9".parse().expect("ip")));
        let dept = Culprit::Department("education".into());
        let charges: Vec<Charge> = (0..10).map(|_| budget.charge(&peer, t0)).collect();
        assert_eq!(charges.iter().filter(|c| **c == Charge::Audit).count(), 3);
        assert_eq!(budget.charge(&dept, t0), Charge::Audit, "each caller has its own budget");
        assert!(budget.closed(t0 + Duration::from_secs(1), false).is_empty(), "the window is open");
        let closed = budget.closed(t0 + Duration::from_secs(10), false);
        assert_eq!(
            closed,
            [Summary {
                culprit: peer.clone(),
                refusals: 7
            }]
        );
        assert!(budget.closed(t0 + Duration::from_secs(11), false).is_empty(), "summarised once");
        // A new window audits again; a failed summary is carried over.
        assert_eq!(budget.charge(&peer, t0 + Duration::from_secs(12)), Charge::Audit);
        budget.restore(closed, t0 + Duration::from_secs(12));
        let all = budget.closed(t0 + Duration::from_secs(12), true);
        assert_eq!(
            all,
            [Summary {
                culprit: peer.clone(),
                refusals: 7
            }]
        );
        assert_eq!(peer.peer_label().as_deref(), Some("peer:10.0.0.9"));
        assert_eq!(dept.department(), "education");
    }
}
