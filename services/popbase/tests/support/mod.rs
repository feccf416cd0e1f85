//! A split-role cluster for end-to-end tests: each role a separate
//! `popbase serve --role X` process on loopback, every internal hop over
//! mutual TLS with certificates of a throw-away internal CA.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub mod https;
pub mod raw;
pub mod rng;
pub mod servers;
pub mod subscriber;
pub mod writes;

use popbase_common::mesh::MeshIdentity;
use popbase_common::mesh::pki::{self, Issued, Pki};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A free loopback port (bound and released: the roles must know each
/// other's addresses before they start).
///
/// Taken below the kernel's ephemeral range (32768–60999 on Linux): a
/// server another test of this binary binds on port 0 can then never
/// take it between this check and the role's own bind, which happened in
/// CI. A counter keeps this process's picks distinct; the process id
/// spreads concurrent test binaries apart.
pub fn free_port() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(97) % SPAN;
    for _ in 0..SPAN {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let Ok(port) = u16::try_from(FIRST + offset) else { continue };
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return listener.local_addr().expect("addr");
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN)
}

/// The internal CA of one test cluster and a certificate per identity,
/// written under `dir` as `<identity>.pem` / `<identity>.key`.
pub struct Mesh {
    pub dir: PathBuf,
    pub pki: Pki,
}

impl Mesh {
    pub fn new(dir: &Path) -> Mesh {
        let pki = Pki::create_in(dir, "popbase mesh CA (test)").expect("CA");
        for identity in MeshIdentity::ALL {
            let issued = pki.issue(identity, &["127.0.0.1", "localhost"]).expect("issue");
            pki::write_pair(dir, identity.name(), &issued.cert_pem, &issued.key_pem).expect("write pair");
        }
        Mesh {
            dir: dir.to_path_buf(),
            pki,
        }
    }

    /// `POPBASE_MESH_*` for a process presenting `identity`.
    pub fn env(&self, identity: MeshIdentity) -> Vec<(String, PathBuf)> {
        vec![
            ("POPBASE_MESH_CA".into(), self.dir.join("ca.pem")),
            ("POPBASE_MESH_CERT".into(), self.dir.join(format!("{}.pem", identity.name()))),
            ("POPBASE_MESH_KEY".into(), self.dir.join(format!("{}.key", identity.name()))),
        ]
    }

    /// A client's TLS: trusts the mesh CA, presents `client` if given.
    pub fn client_tls(&self, client: Option<&Issued>) -> ClientTlsConfig {
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(self.pki.ca_pem()));
        match client {
            Some(issued) => tls.identity(Identity::from_pem(&issued.cert_pem, &issued.key_pem)),
            None => tls,
        }
    }

    /// The stored certificate of `identity`.
    pub fn issued(&self, identity: MeshIdentity) -> Issued {
        let read = |ext: &str| std::fs::read_to_string(self.dir.join(format!("{}.{ext}", identity.name()))).expect("read pair");
        Issued {
            cert_pem: read("pem"),
            key_pem: read("key"),
        }
    }
}

/// A channel to `addr` over TLS with `tls` (connects on first call).
pub fn tls_channel(addr: &str, tls: ClientTlsConfig) -> Channel {
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy()
}

/// A plaintext channel to `addr` (connects on first call).
pub fn plain_channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy()
}

pub struct Roles {
    pub household: SocketAddr,
    pub residence: SocketAddr,
    pub feeds: SocketAddr,
    pub ledger: SocketAddr,
}

impl Roles {
    pub fn free() -> Roles {
        Roles {
            household: free_port(),
            residence: free_port(),
            feeds: free_port(),
            ledger: free_port(),
        }
    }
}

/// One started role process.
pub struct Started {
    pub child: Child,
    /// The role's own port.
    pub addr: String,
    /// The plaintext health port.
    pub health: String,
}

/// Starts `role` on `listen` as `identity` of `mesh` and waits for `popbase ready`.
pub fn serve(data: &Path, role: &str, listen: SocketAddr, roles: &Roles, mesh: &Mesh) -> Started {
    serve_with(data, role, listen, roles, mesh, &[])
}

/// [`serve`] with extra environment (`POPBASE_LIMITS_*`, say).
pub fn serve_with(data: &Path, role: &str, listen: SocketAddr, roles: &Roles, mesh: &Mesh, env: &[(&str, &str)]) -> Started {
    let url = |addr: SocketAddr| format!("http://{addr}");
    let identity = MeshIdentity::from_name(role).expect("a role name");
    let mut child = Command::new(env!("CARGO_BIN_EXE_popbase"))
        .args(["serve", "--role", role, "--data"])
        .arg(data)
        .args([format!("--{role}-addr"), listen.to_string()])
        .args(["--metrics-addr", "127.0.0.1:0"])
        // As in k8s/overlays/prod: the kubelet's plaintext health port, set by environment.
        .env("POPBASE_LISTEN_HEALTH", "127.0.0.1:0")
        .env("POPBASE_UPSTREAM_HOUSEHOLD", url(roles.household))
        .env("POPBASE_UPSTREAM_RESIDENCE", url(roles.residence))
        .env("POPBASE_UPSTREAM_FEEDS", url(roles.feeds))
        .env("POPBASE_UPSTREAM_LEDGER", url(roles.ledger))
        .envs(mesh.env(identity))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start popbase");
    let stdout = child.stdout.take().expect("stdout");
    let (mut addr, mut health) = (String::new(), String::new());
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        if line == "popbase ready" {
            break;
        }
        if let Some(bound) = line.strip_prefix(&format!("popbase serving role={role} addr=")) {
            addr = bound.to_string();
        }
        if let Some(bound) = line.strip_prefix("popbase health addr=") {
            health = bound.to_string();
        }
    }
    assert!(!addr.is_empty(), "{role} reported its address");
    assert!(!health.is_empty(), "{role} reported its health port");
    Started { child, addr, health }
}

/// Starts the ledger, household, feeds and residence roles in that order,
/// each its own process on its port of `roles`.
pub fn serve_internal_roles(data: &Path, roles: &Roles, mesh: &Mesh) -> Vec<(&'static str, Started)> {
    serve_internal_roles_with(data, roles, mesh, &[])
}

/// [`serve_internal_roles`] with extra environment for each.
pub fn serve_internal_roles_with(data: &Path, roles: &Roles, mesh: &Mesh, env: &[(&str, &str)]) -> Vec<(&'static str, Started)> {
    [
        ("ledger", roles.ledger),
        ("household", roles.household),
        ("feeds", roles.feeds),
        ("residence", roles.residence),
    ]
    .into_iter()
    .map(|(role, addr)| (role, serve_with(data, role, addr, roles, mesh, env)))
    .collect()
}

/// Starts `popbase serve --role all` on `data` with every port ephemeral
/// and `env` set; the child and each bound address by role (and
/// "metrics"), once it reports ready.
pub fn serve_all_in_one(data: &Path, env: &[(&str, &str)]) -> (Child, std::collections::HashMap<String, String>) {
    serve_all_in_one_logging(data, env, Stdio::inherit())
}

/// [`serve_all_in_one`] with the server's log (stderr) going to `log`.
pub fn serve_all_in_one_logging(data: &Path, env: &[(&str, &str)], log: Stdio) -> (Child, std::collections::HashMap<String, String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_popbase"))
        .args(["serve", "--role", "all", "--data"])
        .arg(data)
        .args(["--household-addr", "127.0.0.1:0", "--residence-addr", "127.0.0.1:0"])
        .args(["--feeds-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"])
        .args(["--ledger-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start popbase");
    let stdout = child.stdout.take().expect("stdout");
    let mut roles = std::collections::HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        if line == "popbase ready" {
            break;
        }
        if let Some(addr) = line.strip_prefix("popbase metrics addr=") {
            roles.insert("metrics".to_string(), addr.to_string());
        }
        if let Some(rest) = line.strip_prefix("popbase serving ") {
            let fields: std::collections::HashMap<&str, &str> = rest.split(' ').filter_map(|kv| kv.split_once('=')).collect();
            if let (Some(role), Some(addr)) = (fields.get("role"), fields.get("addr")) {
                roles.insert(role.to_string(), addr.to_string());
            }
        }
    }
    (child, roles)
}

/// A fresh mesh in `data` and the ledger and three services serving in it,
/// each its own process, all held by the returned children.
pub fn internal_cluster(data: &Path) -> (Roles, Mesh, Children) {
    let roles = Roles::free();
    let mesh = Mesh::new(&data.join("mesh"));
    let mut children = Children::default();
    for (_, process) in serve_internal_roles(data, &roles, &mesh) {
        children.push(process.child);
    }
    (roles, mesh, children)
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`) to `child`.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{signal}");
}

/// Runs `popbase --data <data> <args>`.
pub fn popbase(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_popbase"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run popbase")
}

/// `Bearer <token>` for `department`, signed with the data directory's key.
pub fn token(data: &Path, department: &str) -> String {
    let out = popbase(data, &["token", "--department", department]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    format!("Bearer {}", String::from_utf8(out.stdout).expect("utf8").trim())
}

pub fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", token.parse().expect("ascii"));
    request
}

/// The role processes of a test: killed when dropped, so a failing
/// assertion leaves no server behind holding the test's output open.
#[derive(Default)]
pub struct Children(pub Vec<Child>);

impl Children {
    pub fn push(&mut self, child: Child) {
        self.0.push(child);
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM to every child; each must exit cleanly.
pub fn stop_all(children: &mut Children) {
    for child in children.0.iter() {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
    for mut child in children.0.drain(..) {
        assert!(child.wait().expect("wait").success(), "every role stops cleanly");
    }
}

/// A plain HTTP/1.1 GET of `path` on the metrics port at `addr`, as
/// Prometheus sends it; the whole response, status line included.
pub fn scrape(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect metrics");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// The `popbase-reason` of a refusal.
pub fn reason(status: &tonic::Status) -> Option<&str> {
    status.metadata().get("popbase-reason").and_then(|v| v.to_str().ok())
}
