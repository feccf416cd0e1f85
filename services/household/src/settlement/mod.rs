//! The settlement (落户) policy engine.
//!
//! * [`policy`]: the data files (`data/policies/*.toml`) and their checks.
//! * [`facts`]: what one application and the registry say.
//! * [`evaluate`]: every rule of a policy against the facts (pure).
//! * [`placement`]: the household the city's order puts the applicant in.

pub mod evaluate;
pub mod facts;
pub mod placement;
pub mod policy;

use std::collections::BTreeMap;
use std::path::Path;

use popbase_domain::Divisions;
use popbase_proto::household::SettlementEvaluation;
use popbase_storage::StorageResult;

pub use facts::{Application, Facts};
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

    /// The policy governing the city a committee code lies in.
    pub fn for_committee(&self, committee_code: &str) -> Option<&Policy> {
        self.policies.values().find(|p| committee_code.starts_with(&p.city_code))
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
        assert_eq!(set.for_committee("370302001001").map(|p| p.id.as_str()), Some("zibo-2021"));
        let jinan = set.get("jinan-2017").expect("jinan");
        assert_eq!(jinan.zone_of("370105017").map(|z| z.id.as_str()), Some("encouraged"));
        assert_eq!(jinan.zone_of("370102001").map(|z| z.id.as_str()), Some("optimized"));
        assert_eq!(jinan.zone_of("370116001").map(|z| z.id.as_str()), None, "Laiwu joined after 2017");
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
