//! The settlement (落户) policy engine.
//!
//! * [`policy`]: the data files (`data/policies/*.toml`) and their checks.
//! * [`facts`]: what one application and the registry say.
//! * [`evaluate`]: every rule of a policy against the facts (pure);
//!   [`checks`]: each check kind.
//! * [`family`]: the spouse and minor children settling with the applicant.
//! * [`placement`]: the household the city's order puts the applicant in.
//! * [`platform`]: what the platform's feeds and residence service hold on
//!   the applicant, which decides over the declaration.

pub mod checks;
pub mod evaluate;
pub mod facts;
pub mod family;
pub mod placement;
pub mod platform;
pub mod policy;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use popbase_common::{ServiceError, ServiceResult};
use popbase_domain::Divisions;
use popbase_proto::household::SettlementEvaluation;
use popbase_storage::StorageResult;

pub use facts::{Application, Facts};
pub use platform::{PlatformFacts, PlatformSources};
pub use policy::{Policy, PolicyError};

use crate::Registry;

/// The loaded policies, by id.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: BTreeMap<String, Policy>,
}

impl PolicySet {
    /// The four seed-city policies compiled into the binary.
    pub fn shipped() -> Result<PolicySet, PolicyError> {
        let mut policies = BTreeMap::new();
        for (file, text) in policy::SHIPPED {
            let policy = Policy::parse(file, text, Divisions::embedded())?;
            policies.insert(policy.id.clone(), policy);
        }
        Ok(PolicySet { policies })
    }

    /// The shipped policies, replaced or extended by every `*.toml` in `dir`
    /// (a ConfigMap in Kubernetes).
    pub fn shipped_and_dir(dir: &Path) -> Result<PolicySet, PolicyError> {
        let mut set = Self::shipped()?;
        let io = |e: std::io::Error| PolicyError::Invalid {
            file: dir.display().to_string(),
            message: e.to_string(),
        };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).map_err(io)?;
                let policy = Policy::parse(&path.display().to_string(), &text, Divisions::embedded())?;
                set.policies.insert(policy.id.clone(), policy);
            }
        }
        Ok(set)
    }

    pub fn get(&self, id: &str) -> Option<&Policy> {
        self.policies.get(id)
    }

    /// The policy an application is evaluated under, in force on `on`: the
    /// one named, or the latest of the target's city. `fields` prefixes the
    /// request's field names ("" or "application.").
    pub fn in_force(&self, policy_id: &str, committee_code: &str, on: NaiveDate, fields: &str) -> ServiceResult<&Policy> {
        if !policy_id.is_empty() {
            let policy = self
                .get(policy_id)
                .ok_or_else(|| ServiceError::invalid(format!("{fields}policy_id"), format!("unknown policy {policy_id:?}")))?;
            if !policy.in_force_on(on) {
                return Err(ServiceError::precondition(
                    format!("{fields}on"),
                    format!("policy {} is in force {}, not on {on}", policy.id, policy.window()),
                ));
            }
            return Ok(policy);
        }
        let of_city: Vec<&Policy> = self
            .policies
            .values()
            .filter(|p| committee_code.starts_with(&p.city_code))
            .collect();
        if of_city.is_empty() {
            return Err(ServiceError::precondition(
                format!("{fields}target"),
                "no settlement policy governs the city of the target",
            ));
        }
        of_city
            .iter()
            .filter(|p| p.in_force_on(on))
            .max_by_key(|p| p.in_force_from)
            .copied()
            .ok_or_else(|| {
                let known: Vec<String> = of_city.iter().map(|p| format!("{} in force {}", p.id, p.window())).collect();
                ServiceError::precondition(
                    format!("{fields}on"),
                    format!(
                        "no settlement policy of the target's city is in force on {on} ({})",
                        known.join("; ")
                    ),
                )
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }
}

/// Gathers the facts and evaluates every rule of `policy`.
pub fn evaluate(registry: &Registry, policy: &Policy, application: &Application) -> StorageResult<SettlementEvaluation> {
    let facts = Facts::gather(registry, application)?;
    Ok(evaluate::evaluate(policy, &facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_load_and_cover_their_cities() {
        let set = PolicySet::shipped().expect("shipped policies are valid");
        let ids: Vec<&str> = set.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["jinan-2017", "liaocheng-2022", "weihai-2021", "zibo-2021"]);
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let in_force = |id: &str, committee: &str, on| set.in_force(id, committee, on, "").map(|p| p.id.clone());
        assert_eq!(in_force("", "370302001001", day(2026, 1, 1)).ok().as_deref(), Some("zibo-2021"));
        // Jinan 2017 was in force 2017-08-01 to 2022-07-31.
        assert_eq!(in_force("", "370102001001", day(2022, 7, 31)).ok().as_deref(), Some("jinan-2017"));
        let lapsed = in_force("", "370102001001", day(2022, 8, 1)).expect_err("none in force");
        assert!(
            lapsed.to_string().contains("jinan-2017 in force 2017-08-01 to 2022-07-31"),
            "{lapsed}"
        );
        let named = in_force("jinan-2017", "370102001001", day(2026, 1, 1)).expect_err("named, not in force");
        assert!(named.to_string().contains("not on 2026-01-01"), "{named}");
        assert!(
            in_force("jinan-2017", "370102001001", day(2017, 7, 31)).is_err(),
            "the day before it began"
        );
        let jinan = set.get("jinan-2017").expect("jinan");
        assert_eq!(jinan.zone_of("370105017").map(|z| z.id.as_str()), Some("encouraged"));
        assert_eq!(jinan.zone_of("370102001").map(|z| z.id.as_str()), Some("optimized"));
        assert_eq!(jinan.zone_of("370116001").map(|z| z.id.as_str()), None, "Laiwu joined after 2017");
    }

    /// docs/domain.md maps every shipped rule to the item of its document.
    #[test]
    fn docs_map_every_rule_to_its_seed_item() {
        let docs = include_str!("../../../../docs/domain.md");
        let set = PolicySet::shipped().expect("shipped");
        for policy in set.iter() {
            for rule in &policy.rules {
                let row = format!("| {} | {} | {} |", policy.id, rule.id, rule.cite);
                assert!(docs.contains(&row), "docs/domain.md lacks the row {row}");
            }
            let window = format!("**{}** ({}", policy.id, policy.document);
            assert!(docs.contains(&window), "docs/domain.md lacks {window}");
        }
    }

    #[test]
    fn a_bad_policy_file_is_refused_with_the_reason() {
        let text = policy::SHIPPED[0]
            .1
            .replace("\"RELATIVE_HOUSEHOLD\"]\n", "\"NEIGHBOUR_HOUSEHOLD\"]\n");
        let err = Policy::parse("zibo.toml", &text, Divisions::embedded()).expect_err("unknown placement");
        assert!(err.to_string().contains("NEIGHBOUR_HOUSEHOLD"), "{err}");
        let text = policy::SHIPPED[0].1.replace("city_code = \"3703\"", "city_code = \"3799\"");
        let err = Policy::parse("zibo.toml", &text, Divisions::embedded()).expect_err("unknown city");
        assert!(err.to_string().contains("city_code"), "{err}");
    }

    #[test]
    fn a_policy_directory_replaces_shipped_policies_by_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let edited = policy::SHIPPED[0]
            .1
            .replace("title = \"全面放开居住落户", "title = \"（修订）全面放开居住落户");
        std::fs::write(dir.path().join("zibo-2021.toml"), edited).expect("write");
        std::fs::write(dir.path().join("README.txt"), "not a policy").expect("write");
        let set = PolicySet::shipped_and_dir(dir.path()).expect("load");
        assert_eq!(set.iter().count(), 4);
        let zibo = set.get("zibo-2021").expect("zibo");
        assert!(zibo.rule("property").expect("rule").title.starts_with("（修订）"));
        std::fs::write(dir.path().join("broken.toml"), "id = 1").expect("write");
        assert!(PolicySet::shipped_and_dir(dir.path()).is_err(), "a broken file stops the start");
    }
}
