//! The platform as a crash test runs it: all-in-one, or one process per
//! role over the mesh; started, killed with SIGKILL (all of it or one
//! role) and started again on the same data directory and ports.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use popbase_common::mesh::MeshIdentity;
use tonic::transport::Channel;

use super::{Mesh, Roles, free_port, plain_channel, serve_all_in_one, serve_with, signal, tls_channel};

/// How the platform runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    AllInOne,
    /// Ledger, household, feeds, residence and gateway: five processes.
    Split,
}

/// The split roles in the order they start (what each calls comes first).
pub const SPLIT_ROLES: [&str; 5] = ["ledger", "household", "feeds", "residence", "gateway"];

pub struct Servers {
    layout: Layout,
    data: PathBuf,
    env: Vec<(String, String)>,
    split: Option<(Roles, Mesh, SocketAddr)>,
    /// Running processes by role ("all" for the all-in-one process).
    running: BTreeMap<&'static str, Child>,
    /// Where each role listens, and "metrics" (all-in-one).
    addrs: HashMap<String, String>,
}

impl Servers {
    pub fn new(layout: Layout, data: &Path, env: &[(&str, &str)]) -> Servers {
        let split = (layout == Layout::Split).then(|| (Roles::free(), Mesh::new(&data.join("mesh")), free_port()));
        Servers {
            layout,
            data: data.to_path_buf(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            split,
            running: BTreeMap::new(),
            addrs: HashMap::new(),
        }
    }

    /// Starts every process that is not running, in order; how long until
    /// all of them reported ready.
    pub fn start(&mut self) -> Duration {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let started = Instant::now();
        match &self.split {
            None => {
                if !self.running.contains_key("all") {
                    let (child, addrs) = serve_all_in_one(&self.data, &env);
                    assert!(addrs.contains_key("gateway"), "the server came up");
                    self.running.insert("all", child);
                    self.addrs = addrs;
                }
            }
            Some((roles, mesh, gateway)) => {
                for role in SPLIT_ROLES {
                    if self.running.contains_key(role) {
                        continue;
                    }
                    let listen = match role {
                        "ledger" => roles.ledger,
                        "household" => roles.household,
                        "feeds" => roles.feeds,
                        "residence" => roles.residence,
                        _ => *gateway,
                    };
                    let process = serve_with(&self.data, role, listen, roles, mesh, &env);
                    self.addrs.insert(role.to_string(), process.addr.clone());
                    self.running.insert(role, process.child);
                }
            }
        }
        started.elapsed()
    }

    /// A channel to each role: the internal ones as the gateway's mesh
    /// identity in the split layout, the gateway's department port plain.
    pub fn channels(&self) -> HashMap<String, Channel> {
        let mut channels = HashMap::new();
        for role in SPLIT_ROLES {
            let addr = &self.addrs[role];
            let channel = match (&self.split, role) {
                (Some((_, mesh, _)), role) if role != "gateway" => {
                    tls_channel(addr, mesh.client_tls(Some(&mesh.issued(MeshIdentity::Gateway))))
                }
                _ => plain_channel(addr),
            };
            channels.insert(role.to_string(), channel);
        }
        channels
    }

    /// The all-in-one process's metrics address.
    pub fn metrics(&self) -> Option<&str> {
        (self.layout == Layout::AllInOne).then(|| self.addrs["metrics"].as_str())
    }

    /// What can be killed one at a time: the roles, or the one process.
    pub fn processes(&self) -> Vec<&'static str> {
        match self.layout {
            Layout::AllInOne => vec!["all"],
            Layout::Split => SPLIT_ROLES.to_vec(),
        }
    }

    /// SIGKILL to `which` (every process when `None`), reaped.
    pub fn kill(&mut self, which: Option<&str>) {
        let doomed: Vec<&'static str> = self.running.keys().copied().filter(|r| which.is_none_or(|w| w == *r)).collect();
        for role in &doomed {
            signal(&self.running[role], "KILL");
        }
        for role in doomed {
            if let Some(mut child) = self.running.remove(role) {
                let _ = child.wait();
            }
        }
    }

    /// Whether the ledger's store is free to be read offline.
    pub fn ledger_stopped(&self) -> bool {
        !self.running.contains_key("all") && !self.running.contains_key("ledger")
    }

    /// SIGTERM to every process, the gateway first; each must exit cleanly.
    pub fn stop(&mut self) {
        for role in ["gateway", "all", "residence", "feeds", "household", "ledger"] {
            if let Some(mut child) = self.running.remove(role) {
                signal(&child, "TERM");
                assert!(child.wait().expect("wait").success(), "{role} stops cleanly");
            }
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in self.running.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
