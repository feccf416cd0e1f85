//! The restore drill of docs/operations.md ("Restore"), as an operator
//! follows it: back up a running platform while writes go on, destroy the
//! data directory, `popbase restore`, start again, and check that every
//! write acknowledged before the backup is there, the audit chain verified
//! against the head saved with the set, and the residence role follows the
//! restored registry.
//!
//! The household store is backed up *before* a settlement the residence
//! role then follows, and the residence store after it: the wrong order on
//! purpose, as when one store was restored from an older set. The residence
//! cursor is then past the restored registry's log, and a settlement after
//! the restore must still end its settler's permit.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use popbase_proto::gateway::ChainHeadRequest;
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::life_events_client::LifeEventsClient;
use popbase_proto::household::{EventContext, GetPersonRequest, ListPersonsRequest, RegisterDeathRequest, RegistrationStatus};
use popbase_proto::residence::CheckResidentsRequest;
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use support::writes::{id, permit_ends, permit_holder, register, settle};
use support::{Children, popbase, scrape, serve_all_in_one, signal, stop_all, token, with_token};
use tonic::transport::Channel;

/// Acknowledged writes of each kind, in the order they were acknowledged.
#[derive(Default)]
struct Acked {
    residents: Mutex<Vec<String>>,
    deaths: Mutex<Vec<String>>,
    audited: Mutex<u64>,
}

/// Residence registrations, deaths and audited gateway answers, one after
/// another until `stop`; each recorded once acknowledged.
async fn write_until(stop: Arc<AtomicBool>, acked: Arc<Acked>, roles: std::collections::HashMap<String, String>, data: std::path::PathBuf) {
    let connect = |role: &str| Channel::from_shared(format!("http://{}", roles[role])).expect("url").connect_lazy();
    let mut residence = ResidencePermitsClient::new(connect("residence"));
    let mut events = LifeEventsClient::new(connect("household"));
    let mut registry = HouseholdRegistryClient::new(connect("household"));
    let mut audit = AuditClient::new(connect("gateway"));
    let bearer = token(&data, "audit");
    let living: Vec<String> = registry
        .list_persons(ListPersonsRequest {
            division_code: "3703".into(),
            page: None,
        })
        .await
        .expect("persons")
        .into_inner()
        .persons
        .into_iter()
        .filter(|p| p.status() == RegistrationStatus::Active)
        .map(|p| p.id_number)
        .collect();
    let mut n = 100;
    while !stop.load(Ordering::SeqCst) {
        let resident = id(n);
        if register(&mut residence, &resident).await.is_ok() {
            acked.residents.lock().expect("lock").push(resident);
        }
        if let Some(person) = living.get(n as usize - 100) {
            let death = RegisterDeathRequest {
                context: Some(EventContext {
                    actor: "police-370302-01".into(),
                    occurred_on: None,
                }),
                id_number: person.clone(),
                death_certificate_number: format!("D37030220261204{n:02}"),
            };
            if events.register_death(death).await.is_ok() {
                acked.deaths.lock().expect("lock").push(person.clone());
            }
        }
        let asked = with_token(&bearer, ChainHeadRequest { purpose: "AUDIT".into() });
        if audit.get_chain_head(asked).await.is_ok() {
            *acked.audited.lock().expect("lock") += 1;
        }
        n += 1;
    }
}

/// `popbase backup` of the all-in-one roles named, as set `label`.
async fn backup(roles: &std::collections::HashMap<String, String>, targets: &[&str], label: &str) -> String {
    let mut args = vec!["backup".to_string(), "--label".into(), label.into()];
    for role in targets {
        args.push("--target".into());
        args.push(format!("http://{}", roles[*role]));
    }
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_popbase"))
            .args(&args)
            .output()
            .expect("run backup")
    })
    .await
    .expect("backup task");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

fn start(data: &Path, backups: &Path) -> (std::process::Child, std::collections::HashMap<String, String>) {
    serve_all_in_one(data, &[("POPBASE_BACKUP_DIR", backups.to_str().expect("utf8"))])
}

#[tokio::test]
async fn restore_drill_backup_under_writes_destroy_restore_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, backups) = (dir.path().join("data"), dir.path().join("backup-volume"));
    let generated = popbase(&data, &["gen", "--city", "3703", "--persons", "300", "--seed", "11"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    // Killed on any failed assertion, so no server outlives the test.
    let mut running = Children::default();
    let (server, roles) = start(&data, &backups);
    running.push(server);
    let channel = |role: &str| Channel::from_shared(format!("http://{}", roles[role])).expect("url").connect_lazy();
    let mut residence = ResidencePermitsClient::new(channel("residence"));
    let mut events = LifeEventsClient::new(channel("household"));
    let (before, after) = (id(1), id(2));
    permit_holder(&mut residence, &before).await;
    permit_holder(&mut residence, &after).await;

    // Writes go on through both backups.
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Acked::default()));
    let writer = tokio::spawn(write_until(stop.clone(), acked.clone(), roles.clone(), data.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deaths_before = acked.deaths.lock().expect("lock").clone();
    let household = backup(&roles, &["household"], "drill").await;
    assert!(household.contains("backup role=household store=household seq="), "{household}");

    // A settlement the residence role follows before its own backup.
    settle(&mut events, &before).await;
    assert!(permit_ends(&mut residence, &before).await, "the follower ended the permit");
    let residents_before = acked.residents.lock().expect("lock").clone();
    let audited_before = *acked.audited.lock().expect("lock");
    let rest = backup(&roles, &["residence", "feeds", "ledger"], "drill").await;
    assert!(rest.contains("audit_head_seq="), "the ledger's set records the chain head: {rest}");
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    let metrics = scrape(&roles["metrics"], "/metrics");
    for role in ["household", "residence", "feeds", "ledger"] {
        let series = format!("popbase_backup_last_success_timestamp_seconds{{role=\"{role}\"}} ");
        assert!(metrics.contains(&series), "the backup age of {role} is a metric: {metrics}");
        let stall = format!("popbase_rocksdb_write_stopped{{store=\"{role}\"}} 0\n");
        assert!(metrics.contains(&stall), "engine figures per store: {metrics}");
    }
    assert!(metrics.contains("\nprocess_resident_memory_bytes "), "{metrics}");
    let audited = "popbase_department_calls_total{department=\"audit\",interface=\"AuditChainHead\",outcome=\"answered\"} ";
    assert!(metrics.contains(audited), "calls per department: {metrics}");
    assert!(
        !deaths_before.is_empty() && residents_before.len() > deaths_before.len(),
        "writes went on"
    );
    assert!(audited_before > 0);

    // Destroy: the process dies, the stores are gone (keys stay, as in k8s Secrets).
    signal(&running.0[0], "KILL");
    for mut killed in running.0.drain(..) {
        let _ = killed.wait();
    }
    for store in ["household", "residence", "feeds", "ledger"] {
        std::fs::remove_dir_all(data.join(store)).expect("destroy");
    }
    let backup_dir = backups.to_str().expect("utf8");
    let restored = popbase(&data, &["restore", "--backup-dir", backup_dir]);
    let report = String::from_utf8_lossy(&restored.stdout);
    assert!(restored.status.success(), "{report}{}", String::from_utf8_lossy(&restored.stderr));
    assert!(report.contains("audit chain verified:"), "{report}");
    assert!(report.contains("is past the restored registry's head"), "{report}");
    assert!(report.contains("restore of set 'drill' verified: 4 stores"), "{report}");
    let again = popbase(&data, &["restore", "--backup-dir", backup_dir]);
    assert!(!again.status.success(), "a restore never overwrites a store");
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    let missing = popbase(&data, &["restore", "--backup-dir", backup_dir, "--set", "nightly-0"]);
    let missing = String::from_utf8_lossy(&missing.stderr);
    assert!(
        missing.contains("no backup set 'nightly-0' under") && missing.contains("there are: drill"),
        "{missing}"
    );

    // Start on the restored stores: everything acknowledged before the backups is there.
    let (server, roles) = start(&data, &backups);
    running.push(server);
    let channel = |role: &str| Channel::from_shared(format!("http://{}", roles[role])).expect("url").connect_lazy();
    let mut residence = ResidencePermitsClient::new(channel("residence"));
    let mut events = LifeEventsClient::new(channel("household"));
    let mut registry = HouseholdRegistryClient::new(channel("household"));
    let known = residence
        .check_residents(CheckResidentsRequest {
            id_numbers: residents_before.clone(),
        })
        .await
        .expect("check")
        .into_inner()
        .known;
    assert_eq!(
        known.iter().filter(|k| **k).count(),
        residents_before.len(),
        "every registration acknowledged before the backup"
    );
    for person in &deaths_before {
        let found = registry
            .get_person(GetPersonRequest { id_number: person.clone() })
            .await
            .expect("person")
            .into_inner();
        assert_eq!(
            found.status(),
            RegistrationStatus::Deceased,
            "every death acknowledged before the backup"
        );
    }
    let bearer = token(&data, "audit");
    let head = AuditClient::new(channel("gateway"))
        .get_chain_head(with_token(&bearer, ChainHeadRequest { purpose: "AUDIT".into() }))
        .await
        .expect("head")
        .into_inner();
    assert!(
        head.seq > audited_before,
        "every audited answer before the backup: {} > {audited_before}",
        head.seq
    );

    // The residence cursor was past the restored registry: it follows again from there.
    settle(&mut events, &after).await;
    assert!(
        permit_ends(&mut residence, &after).await,
        "a settlement after the restore ends the permit"
    );
    stop_all(&mut running);
}

/// `popbase backup` as the mesh's backup identity, of the split roles named.
fn split_backup(mesh: &support::Mesh, addrs: &[std::net::SocketAddr], label: &str) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_popbase"));
    command
        .args(["backup", "--label", label])
        .envs(mesh.env(popbase_common::mesh::MeshIdentity::Backup));
    for addr in addrs {
        command.args(["--target", &format!("http://{addr}")]);
    }
    let out = command.output().expect("backup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Split roles, the registry restored to a point before a settlement the
/// residence role had followed, and written to again before the residence
/// role's follower reaches it: the registry's head has caught up with the
/// stale cursor, so only the restore's epoch tells the follower to go back. The settlement written
/// after the restore still ends its settler's permit.
#[tokio::test]
async fn a_restored_registry_is_followed_again_from_where_it_was_restored() {
    use popbase_common::mesh::MeshIdentity;
    use support::{Mesh, Roles, serve, tls_channel};

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let roles = Roles::free();
    let mesh = Mesh::new(&data.join("mesh"));
    let as_gateway = |addr: &str| tls_channel(addr, mesh.client_tls(Some(&mesh.issued(MeshIdentity::Gateway))));
    let mut running = Children::default();
    let mut started = std::collections::HashMap::new();
    for (role, addr) in [
        ("ledger", roles.ledger),
        ("household", roles.household),
        ("feeds", roles.feeds),
        ("residence", roles.residence),
    ] {
        let process = serve(data, role, addr, &roles, &mesh);
        started.insert(role, process.addr.clone());
        running.push(process.child);
    }
    let mut residence = ResidencePermitsClient::new(as_gateway(&started["residence"]));
    let mut events = LifeEventsClient::new(as_gateway(&started["household"]));
    let (first, second) = (id(1), id(2));
    permit_holder(&mut residence, &first).await;
    permit_holder(&mut residence, &second).await;

    split_backup(&mesh, &[roles.household], "split");
    settle(&mut events, &first).await;
    assert!(permit_ends(&mut residence, &first).await, "the follower ended the permit");
    split_backup(&mesh, &[roles.residence], "split");
    stop_all(&mut running);

    for store in ["household", "residence"] {
        std::fs::remove_dir_all(data.join(store)).expect("destroy");
    }
    let restored = popbase(data, &["restore", "--backup-dir", data.join("backups").to_str().expect("utf8")]);
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert!(String::from_utf8_lossy(&restored.stdout).contains("restore of set 'split' verified: 2 stores"));

    // Back, but the residence role's follower cannot reach the registry
    // yet: a settlement lands at the sequence its stale cursor already names.
    for (role, addr) in [("ledger", roles.ledger), ("household", roles.household), ("feeds", roles.feeds)] {
        let process = serve(data, role, addr, &roles, &mesh);
        started.insert(role, process.addr.clone());
        running.push(process.child);
    }
    let mut cut_off = Children::default();
    let unreachable = [("POPBASE_UPSTREAM_HOUSEHOLD", "http://127.0.0.1:9")];
    cut_off.push(support::serve_with(data, "residence", roles.residence, &roles, &mesh, &unreachable).child);
    let mut events = LifeEventsClient::new(as_gateway(&started["household"]));
    settle(&mut events, &second).await;
    stop_all(&mut cut_off);
    let process = serve(data, "residence", roles.residence, &roles, &mesh);
    running.push(process.child);
    let mut residence = ResidencePermitsClient::new(as_gateway(&process.addr));
    assert!(
        permit_ends(&mut residence, &second).await,
        "the follower went back to the restored sequence"
    );
    stop_all(&mut running);
}

/// The drill's negative control: a backup damaged on its volume is refused
/// by the restore (checksums), and nothing is left half-restored.
#[tokio::test]
async fn a_damaged_backup_is_refused_by_the_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, backups) = (dir.path().join("data"), dir.path().join("backup-volume"));
    let generated = popbase(&data, &["gen", "--city", "3703", "--persons", "100", "--seed", "5"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let mut running = Children::default();
    let (server, roles) = start(&data, &backups);
    running.push(server);
    backup(&roles, &["household"], "damaged").await;
    stop_all(&mut running);

    // Flip one byte in the middle of each table file of the household backup.
    let mut damaged = 0;
    let shared = backups.join("daily/household/shared_checksum");
    for entry in std::fs::read_dir(&shared).expect("the backup's shared files") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "sst") {
            let mut bytes = std::fs::read(&path).expect("read");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(&path, bytes).expect("write");
            damaged += 1;
        }
    }
    assert!(damaged > 0, "the backup holds table files");
    std::fs::remove_dir_all(data.join("household")).expect("destroy");
    let restored = popbase(&data, &["restore", "--backup-dir", backups.to_str().expect("utf8")]);
    assert!(!restored.status.success(), "a damaged backup does not restore");
    let stderr = String::from_utf8_lossy(&restored.stderr);
    assert!(stderr.contains("restoring household"), "{stderr}");
    assert!(!data.join("household").exists(), "no half-restored store is left behind");
}
