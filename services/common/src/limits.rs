//! The `[limits]` section: how long calls may run and how many may run at
//! once. Every bound the platform applies to callers is set here, so an
//! SRE finds them in one place (see docs/operations.md, "Limits").

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longest any call may run on a server, unless it uploads a stream
    /// (those are bounded by `stream_idle_secs`); a caller's shorter
    /// `grpc-timeout` wins.
    pub request_timeout_secs: u64,
    /// Longest one call to another role or the ledger may take before the
    /// caller gets DEADLINE_EXCEEDED (a frozen pod).
    pub upstream_timeout_secs: u64,
    /// Longest either end of a stream may go quiet before it is ended.
    pub stream_idle_secs: u64,
    /// Calls in flight on one port; beyond it new calls are refused
    /// RESOURCE_EXHAUSTED (reason OVERLOADED) at once, never queued.
    pub max_concurrent_calls: usize,
    /// Calls in flight for one department at the gateway (so one busy
    /// department cannot take every slot of the port).
    pub max_calls_per_department: usize,
    /// HTTP/2 streams one connection may hold open. Keep it at most 64:
    /// the flow-control windows are sized so that many slow streams of
    /// small messages fit h2's small-frame budget (see `server.rs`).
    pub max_concurrent_streams: u32,
    /// Refusals audited one by one per caller (department, or peer address
    /// before authentication) per window; past it they are counted and
    /// audited as one summary record per window, and answered
    /// RESOURCE_EXHAUSTED (reason REFUSAL_FLOOD) without further work.
    pub refusals_per_window: u32,
    pub refusal_window_secs: u64,
    /// The gateway closes a client connection gracefully (HTTP/2 GOAWAY,
    /// calls in flight finish) after this long, so long-lived department
    /// clients spread over replicas the HPA added.
    pub gateway_connection_age_secs: u64,
    /// Subscribe streams one gateway replica serves at once; more are
    /// refused RESOURCE_EXHAUSTED. Each quiet stream keeps a waiting call
    /// open on every storage role's port, so this bounds what subscribers
    /// take of those ports' `max_concurrent_calls`.
    pub max_subscription_streams: usize,
    /// Whole-city lists (the uninsured of a city) one gateway replica
    /// finds at once; another is refused RESOURCE_EXHAUSTED. Each holds the
    /// city's ID numbers, some 50 MB at Zibo's size; a county's list weighs
    /// an eighth of one. Also the reads of the insured (some 70 MB each)
    /// held at once, shared by lists.
    pub max_city_lists: usize,
    /// How long after it began a gateway replica's read of the insured may
    /// be joined by another uninsured list: the most a list's insured may
    /// lag the feeds.
    pub list_share_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            request_timeout_secs: 30,
            upstream_timeout_secs: 10,
            stream_idle_secs: 30,
            max_concurrent_calls: 1024,
            max_calls_per_department: 256,
            max_concurrent_streams: 64,
            refusals_per_window: 50,
            refusal_window_secs: 10,
            gateway_connection_age_secs: 300,
            max_subscription_streams: 128,
            max_city_lists: 2,
            list_share_secs: 10,
        }
    }
}

impl LimitsConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_timeout_secs)
    }

    pub fn stream_idle(&self) -> Duration {
        Duration::from_secs(self.stream_idle_secs)
    }

    pub fn refusal_window(&self) -> Duration {
        Duration::from_secs(self.refusal_window_secs)
    }

    pub fn gateway_connection_age(&self) -> Duration {
        Duration::from_secs(self.gateway_connection_age_secs)
    }

    /// Applies `POPBASE_LIMITS_<KEY>` variables (the keys above, upper-case)
    /// read through `env`; the name of a malformed one is the error.
    pub fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), String> {
        fn set<T: std::str::FromStr>(env: &impl Fn(&str) -> Option<String>, key: &str, slot: &mut T) -> Result<(), String> {
            match env(key) {
                Some(v) => v
                    .trim()
                    .parse()
                    .map(|v| *slot = v)
                    .map_err(|_| format!("{key}: '{v}' is not a whole number")),
                None => Ok(()),
            }
        }
        set(env, "POPBASE_LIMITS_REQUEST_TIMEOUT_SECS", &mut self.request_timeout_secs)?;
        set(env, "POPBASE_LIMITS_UPSTREAM_TIMEOUT_SECS", &mut self.upstream_timeout_secs)?;
        set(env, "POPBASE_LIMITS_STREAM_IDLE_SECS", &mut self.stream_idle_secs)?;
        set(env, "POPBASE_LIMITS_MAX_CONCURRENT_CALLS", &mut self.max_concurrent_calls)?;
        set(env, "POPBASE_LIMITS_MAX_CALLS_PER_DEPARTMENT", &mut self.max_calls_per_department)?;
        set(env, "POPBASE_LIMITS_MAX_CONCURRENT_STREAMS", &mut self.max_concurrent_streams)?;
        set(env, "POPBASE_LIMITS_REFUSALS_PER_WINDOW", &mut self.refusals_per_window)?;
        set(env, "POPBASE_LIMITS_REFUSAL_WINDOW_SECS", &mut self.refusal_window_secs)?;
        set(
            env,
            "POPBASE_LIMITS_GATEWAY_CONNECTION_AGE_SECS",
            &mut self.gateway_connection_age_secs,
        )?;
        set(env, "POPBASE_LIMITS_MAX_SUBSCRIPTION_STREAMS", &mut self.max_subscription_streams)?;
        set(env, "POPBASE_LIMITS_MAX_CITY_LISTS", &mut self.max_city_lists)?;
        set(env, "POPBASE_LIMITS_LIST_SHARE_SECS", &mut self.list_share_secs)?;
        Ok(())
    }

    /// Every limit must be positive: a zero would refuse every call (or,
    /// for `list_share_secs`, share nothing).
    pub fn validate(&self) -> Result<(), String> {
        match self.named().iter().find(|(_, value)| *value == 0) {
            Some((key, _)) => Err(format!("limits.{key} must be greater than zero")),
            None => Ok(()),
        }
    }

    /// Every limit by its key (a new one belongs here, or it is never
    /// checked).
    fn named(&self) -> [(&'static str, u64); 12] {
        [
            ("request_timeout_secs", self.request_timeout_secs),
            ("upstream_timeout_secs", self.upstream_timeout_secs),
            ("stream_idle_secs", self.stream_idle_secs),
            ("max_concurrent_calls", self.max_concurrent_calls as u64),
            ("max_calls_per_department", self.max_calls_per_department as u64),
            ("max_concurrent_streams", u64::from(self.max_concurrent_streams)),
            ("refusals_per_window", u64::from(self.refusals_per_window)),
            ("refusal_window_secs", self.refusal_window_secs),
            ("gateway_connection_age_secs", self.gateway_connection_age_secs),
            ("max_subscription_streams", self.max_subscription_streams as u64),
            ("max_city_lists", self.max_city_lists as u64),
            ("list_share_secs", self.list_share_secs),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// docs/configuration.md's `[limits]` block is what an SRE copies: it
    /// must name every limit, each at its default, with its variable.
    #[test]
    fn the_documented_limits_are_every_limit_at_its_default() {
        let docs = include_str!("../../../docs/configuration.md");
        let block: Vec<&str> = docs
            .lines()
            .skip_while(|line| !line.starts_with("[limits]"))
            .skip(1)
            .take_while(|line| !line.trim().is_empty() && !line.starts_with('['))
            .collect();
        let documented: LimitsConfig = toml::from_str(&block.join("\n")).expect("the block is valid TOML");
        assert_eq!(documented, LimitsConfig::default());
        let keys: BTreeSet<&str> = block
            .iter()
            .filter(|line| !line.starts_with(' '))
            .filter_map(|line| line.split_once(" = ").map(|(key, _)| key.trim()))
            .collect();
        let limits: BTreeSet<&str> = LimitsConfig::default().named().iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, limits);
        for line in block.iter().filter(|line| !line.starts_with(' ')) {
            let key = line.split_once(" = ").map(|(key, _)| key.trim().to_uppercase()).unwrap_or_default();
            assert!(line.contains(&format!("POPBASE_LIMITS_{key}")), "{line}");
        }
    }
}
