//! The trust boundary between roles, tried from outside: every internal
//! port of a split-role cluster (separate processes, real sockets) refuses
//! plaintext, a client without a certificate and a certificate of another
//! CA in the TLS handshake, and answers a mesh identity that its policy does
//! not name with PERMISSION_DENIED (`ROLE_NOT_ALLOWED`). The kubelet's
//! health port answers without a certificate and serves nothing else.

mod support;

use arrow_flight::Ticket;
use arrow_flight::flight_service_client::FlightServiceClient;
use popbase_common::mesh::MeshIdentity;
use popbase_common::mesh::pki::Pki;
use popbase_proto::feeds::FeedRecord;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::gateway::ChainHeadRequest;
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::life_events_client::LifeEventsClient;
use popbase_proto::household::{ListPersonsRequest, RegisterDeathRequest, SettlementsSinceRequest};
use popbase_proto::ledger::AppendRequest;
use popbase_proto::ledger::ledger_client::LedgerClient;
use popbase_proto::ops::ops_client::OpsClient;
use popbase_proto::ops::{CreateCheckpointRequest, GetStoreStatsRequest};
use support::{
    Children, Mesh, Roles, plain_channel, popbase, reason, serve, serve_internal_roles, stop_all, tls_channel, token, with_token,
};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn health(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.into() })
        .await
        .map(|r| r.into_inner().status)
}

/// `channel` as the mesh identity `identity`.
fn as_identity(mesh: &Mesh, addr: &str, identity: MeshIdentity) -> Channel {
    tls_channel(addr, mesh.client_tls(Some(&mesh.issued(identity))))
}

fn assert_role_not_allowed<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
    assert_eq!(reason(&status), Some("ROLE_NOT_ALLOWED"), "{what}");
}

#[tokio::test]
async fn internal_ports_admit_only_the_mesh_identities_their_services_allow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let roles = Roles::free();
    let mesh = Mesh::new(&data.join("mesh"));
    let mut children = Children::default();
    let mut started = Vec::new();
    for (role, process) in serve_internal_roles(data, &roles, &mesh) {
        started.push((role, process.addr, process.health));
        children.push(process.child);
    }
    let gateway = serve(data, "gateway", "127.0.0.1:0".parse().expect("addr"), &roles, &mesh);
    children.push(gateway.child);

    let other_ca = Pki::new("someone else's CA").expect("CA");
    let forged = other_ca.issue(MeshIdentity::Gateway, &["127.0.0.1"]).expect("issue");
    for (role, addr, health_port) in &started {
        let addr = addr.as_str();
        assert!(health(plain_channel(addr), "").await.is_err(), "{role}: plaintext refused");
        assert!(
            health(tls_channel(addr, mesh.client_tls(None)), "").await.is_err(),
            "{role}: a client without a certificate fails the handshake"
        );
        let foreign = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(mesh.pki.ca_pem()))
            .identity(Identity::from_pem(&forged.cert_pem, &forged.key_pem));
        assert!(
            health(tls_channel(addr, foreign), "").await.is_err(),
            "{role}: a 'gateway' certificate of another CA fails the handshake"
        );
        assert_eq!(
            health(as_identity(&mesh, addr, MeshIdentity::Backup), "")
                .await
                .expect("any mesh identity checks health"),
            ServingStatus::Serving as i32
        );
        // The kubelet's port: no certificate, health only.
        assert_eq!(
            health(plain_channel(health_port), "").await.expect("health port answers plaintext"),
            ServingStatus::Serving as i32,
            "{role}"
        );
        let stats = OpsClient::new(plain_channel(health_port))
            .get_store_stats(GetStoreStatsRequest {})
            .await
            .expect_err("the health port serves nothing else");
        assert_eq!(stats.code(), Code::Unimplemented, "{role}");
        // Checkpoints and backups: the backup identity only; the gateway
        // reads the figures (the operators' health page) and nothing else.
        assert_role_not_allowed(
            OpsClient::new(as_identity(&mesh, addr, MeshIdentity::Gateway))
                .create_checkpoint(CreateCheckpointRequest { label: "gw".into() })
                .await,
            "the gateway may not take checkpoints",
        );
        OpsClient::new(as_identity(&mesh, addr, MeshIdentity::Gateway))
            .get_store_stats(GetStoreStatsRequest {})
            .await
            .expect("the gateway reads store figures");
        assert_role_not_allowed(
            OpsClient::new(as_identity(&mesh, addr, MeshIdentity::Residence))
                .get_store_stats(GetStoreStatsRequest {})
                .await,
            "no other role reads them",
        );
        let stats = OpsClient::new(as_identity(&mesh, addr, MeshIdentity::Backup))
            .get_store_stats(GetStoreStatsRequest {})
            .await
            .expect("the backup job reads store figures")
            .into_inner();
        assert_eq!(stats.role, *role);
        // Identified internal datasets: the gateway only.
        if *role != "ledger" {
            assert_role_not_allowed(
                FlightServiceClient::new(as_identity(&mesh, addr, MeshIdentity::Residence))
                    .do_get(Ticket {
                        ticket: b"{\"dataset\":\"persons\"}".to_vec().into(),
                    })
                    .await,
                "internal Flight serves the gateway only",
            );
        }
    }

    // A forged audit record: only a gateway identity may append.
    for identity in [
        MeshIdentity::Household,
        MeshIdentity::Feeds,
        MeshIdentity::Residence,
        MeshIdentity::Backup,
    ] {
        assert_role_not_allowed(
            LedgerClient::new(as_identity(&mesh, &roles.ledger.to_string(), identity))
                .append(AppendRequest::default())
                .await,
            "Ledger.Append from a non-gateway identity",
        );
    }
    // The registry's person list: the gateway's; feeds may only check
    // persons, and an all-in-one identity opens nothing on split roles.
    for identity in [
        MeshIdentity::Ledger,
        MeshIdentity::Backup,
        MeshIdentity::Residence,
        MeshIdentity::Feeds,
        MeshIdentity::AllInOne,
    ] {
        assert_role_not_allowed(
            HouseholdRegistryClient::new(as_identity(&mesh, &roles.household.to_string(), identity))
                .list_persons(ListPersonsRequest::default())
                .await,
            "HouseholdRegistry.ListPersons from a role that does not read it",
        );
    }

    // Roles get read methods, never another's writes: residence may follow
    // settlements but not register a death, nor ingest feeds.
    let household_as_residence = as_identity(&mesh, &roles.household.to_string(), MeshIdentity::Residence);
    let mut events = LifeEventsClient::new(household_as_residence);
    let follow = events
        .settlements_since(SettlementsSinceRequest {
            after_sequence: 0,
            limit: 1,
        })
        .await;
    assert!(follow.is_ok(), "the settlement follower's read: {follow:?}");
    assert_role_not_allowed(
        events.register_death(RegisterDeathRequest::default()).await,
        "residence may not register events",
    );
    assert_role_not_allowed(
        FeedsClient::new(as_identity(&mesh, &roles.feeds.to_string(), MeshIdentity::Residence))
            .ingest(tokio_stream::iter(Vec::<FeedRecord>::new()))
            .await,
        "residence may not ingest feeds",
    );

    // Through the gateway (department port, token), the chain head comes
    // back over the gateway's mTLS hop to the ledger.
    let audit = token(data, "audit");
    let head = AuditClient::new(plain_channel(&gateway.addr))
        .get_chain_head(with_token(&audit, ChainHeadRequest { purpose: "AUDIT".into() }))
        .await
        .expect("the gateway reaches the ledger over the mesh")
        .into_inner();
    assert_eq!(head.seq, 0, "nothing forged reached the chain");

    // An operator's `popbase stats` as the backup identity.
    let backup_env = mesh.env(MeshIdentity::Backup);
    let stats = std::process::Command::new(env!("CARGO_BIN_EXE_popbase"))
        .args(["stats", "--target", &format!("http://{}", roles.household)])
        .envs(backup_env)
        .output()
        .expect("run popbase stats");
    assert!(stats.status.success(), "{}", String::from_utf8_lossy(&stats.stderr));
    assert!(String::from_utf8_lossy(&stats.stdout).contains("role=household"));

    stop_all(&mut children);
}

#[test]
fn a_split_role_refuses_to_start_without_its_own_mesh_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let bare = popbase(&data, &["serve", "--role", "household", "--household-addr", "127.0.0.1:0"]);
    assert!(!bare.status.success());
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("needs a mesh certificate"),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );
    // All-in-one without a certificate keeps its internal ports on loopback.
    let open = popbase(
        &data,
        &[
            "serve",
            "--role",
            "all",
            "--ledger-addr",
            "0.0.0.0:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    assert!(!open.status.success());
    assert!(
        String::from_utf8_lossy(&open.stderr).contains("the ledger port listens on 0.0.0.0:0 without a mesh certificate"),
        "{}",
        String::from_utf8_lossy(&open.stderr)
    );
    let mesh = Mesh::new(&dir.path().join("mesh"));
    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_popbase"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--role", "household", "--household-addr", "127.0.0.1:0"])
        .envs(mesh.env(MeshIdentity::Feeds))
        .output()
        .expect("run popbase");
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("names 'feeds'") && stderr.contains("household.roles.popbase"),
        "{stderr}"
    );
}

#[test]
fn the_token_command_refuses_lifetimes_the_gateway_would_refuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No key yet (no gateway has started here): refused, nothing created.
    let keyless = popbase(dir.path(), &["token", "--department", "education"]);
    assert!(!keyless.status.success());
    assert!(
        String::from_utf8_lossy(&keyless.stderr).contains("no token key"),
        "{}",
        String::from_utf8_lossy(&keyless.stderr)
    );
    assert!(!dir.path().join("gateway-keys").exists(), "no key is minted");
    std::fs::create_dir_all(dir.path().join("gateway-keys")).expect("key dir");
    std::fs::write(dir.path().join("gateway-keys/token.key"), "ab".repeat(32)).expect("key");
    for hours in ["0", "-3", "25", "100000"] {
        let out = popbase(dir.path(), &["token", "--department", "education", &format!("--hours={hours}")]);
        assert!(!out.status.success(), "--hours {hours} refused");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--hours must be 1 to 24"),
            "--hours {hours}"
        );
    }
    let day = popbase(dir.path(), &["token", "--department", "education", "--hours", "24"]);
    assert!(day.status.success(), "{}", String::from_utf8_lossy(&day.stderr));
    assert!(String::from_utf8_lossy(&day.stdout).starts_with("v2.education."));
}
