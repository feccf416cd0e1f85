//! The console end to end: `popbase serve --role all` with a console
//! certificate, driven over real HTTPS as a browser would (cookies, forms,
//! form tokens), with the gateway's own gRPC beside it to make the calls the
//! console must then show, and to see its actions take effect.

mod support;

use std::process::Stdio;

use chrono::NaiveDate;
use popbase_common::mesh::pki::{self, Pki};
use popbase_domain::id_number::IdNumber;
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::gateway::consents_client::ConsentsClient;
use popbase_proto::gateway::persons_client::PersonsClient;
use popbase_proto::gateway::{ConsentState, GrantConsentRequest, ListConsentsRequest, PersonSummaryRequest, UsageStatisticsRequest};
use support::https::{Browser, csrf};
use support::{Children, plain_channel, popbase, with_token};

struct Running {
    _children: Children,
    data: tempfile::TempDir,
    gateway: String,
    console: String,
    ca_pem: String,
    log: std::path::PathBuf,
    /// The operators' CA (`console.client_ca`).
    operators: Pki,
}

fn start() -> Running {
    let data = tempfile::tempdir().expect("tempdir");
    let certs = data.path().join("console-certs");
    let pki = Pki::create_in(&certs, "console test CA").expect("CA");
    let issued = pki.issue_named("console.popbase", &["localhost", "127.0.0.1"]).expect("issue");
    pki::write_pair(&certs, "console", &issued.cert_pem, &issued.key_pem).expect("write");
    let log = data.path().join("server.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let (cert, key) = (certs.join("console.pem"), certs.join("console.key"));
    let operators = Pki::create_in(&certs.join("operators"), "operators test CA").expect("operators CA");
    let operator_ca = certs.join("operators/ca.pem");
    let env = [
        ("POPBASE_CONSOLE_TLS_CERT", cert.to_str().expect("utf8")),
        ("POPBASE_CONSOLE_TLS_KEY", key.to_str().expect("utf8")),
        ("POPBASE_CONSOLE_CLIENT_CA", operator_ca.to_str().expect("utf8")),
        ("POPBASE_LISTEN_CONSOLE", "127.0.0.1:0"),
    ];
    let (child, roles) = support::serve_all_in_one_logging(data.path(), &env, Stdio::from(log_file));
    let mut children = Children::default();
    children.push(child);
    Running {
        _children: children,
        gateway: roles["gateway"].clone(),
        console: roles.get("console").expect("the console is served").clone(),
        ca_pem: pki.ca_pem().to_string(),
        log,
        data,
        operators,
    }
}

fn resident_id() -> String {
    let birth = NaiveDate::from_ymd_opt(1985, 6, 1).expect("date");
    IdNumber::generate("370302", birth, 77).expect("id").as_str().to_string()
}

fn token(running: &Running, department: &str) -> String {
    support::token(running.data.path(), department)
        .trim_start_matches("Bearer ")
        .to_string()
}

async fn sign_in_operator(running: &Running, department: &str) -> Browser {
    let mut browser = Browser::new(&running.console, &running.ca_pem);
    let reply = browser.post("/login", &[("token", &token(running, department))], &[]).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let cookie = reply.header("set-cookie").expect("a session cookie");
    for part in ["__Host-popbase-console=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    browser
}

#[tokio::test]
async fn pages_need_an_identity_and_leak_nothing_without_one() {
    let running = start();
    let mut stranger = Browser::new(&running.console, &running.ca_pem);
    for path in ["/ops", "/ops/usage", "/ops/audit", "/ops/chain", "/resident"] {
        let reply = stranger.get(path).await;
        assert_eq!(reply.status, 401, "{path}");
        assert!(
            !reply.body.contains("chain-head") && !reply.body.contains("<table"),
            "{path}: {}",
            reply.body
        );
        let csp = reply.header("content-security-policy").expect("CSP on every page");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    // A POST without a session does nothing either.
    let reply = stranger.post("/ops/audit", &[("subject_id_number", &resident_id())], &[]).await;
    assert_eq!(reply.status, 401);
    // A forged or foreign token does not sign in.
    let reply = stranger.post("/login", &[("token", "v2.audit.1.9999999999.00")], &[]).await;
    assert_eq!(reply.status, 401);
    assert!(stranger.cookie.is_none());
    let reply = stranger.post("/login", &[("token", &token(&running, "education"))], &[]).await;
    assert_eq!(reply.status, 401, "education is no operator department");
    let reply = stranger
        .post("/resident/login", &[("assertion", &token(&running, "service_platform"))], &[])
        .await;
    assert_eq!(reply.status, 401, "a department token is no resident assertion");
    // An operator is no resident, and a resident no operator.
    let mut operator = sign_in_operator(&running, "audit").await;
    assert_eq!(operator.get("/resident").await.status, 403);
    let assertion = popbase(running.data.path(), &["token", "--resident", &resident_id()]);
    assert!(assertion.status.success());
    let mut resident = Browser::new(&running.console, &running.ca_pem);
    let assertion = String::from_utf8(assertion.stdout).expect("utf8");
    assert_eq!(
        resident
            .post("/resident/login", &[("assertion", assertion.trim())], &[])
            .await
            .status,
        303
    );
    assert_eq!(resident.get("/ops").await.status, 403);
    // Unknown paths are 404 pages with the same headers.
    let reply = stranger.get("/../etc/passwd").await;
    assert!(reply.status == 404 || reply.status == 400, "{}", reply.status);
}

#[tokio::test]
async fn an_operator_finds_a_call_by_id_number_exports_it_and_every_step_is_audited() {
    let running = start();
    let subject = resident_id();
    // A department's call about the subject, through the gateway.
    let platform = format!("Bearer {}", token(&running, "service_platform"));
    let mut consents = ConsentsClient::new(plain_channel(&running.gateway));
    consents
        .list_consents(with_token(
            &platform,
            ListConsentsRequest {
                purpose: "CITIZEN_CONSENT".into(),
                subject_id_number: subject.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list consents");

    let mut browser = sign_in_operator(&running, "audit").await;
    let overview = browser.get("/ops").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("id=\"head-seq\""), "{}", overview.body);
    let usage = browser.get("/ops/usage").await;
    assert_eq!(usage.status, 200);
    assert!(
        usage.body.contains("<svg id=\"usage-chart\"") && usage.body.contains("ConsentRegistry"),
        "{}",
        usage.body
    );
    assert!(
        usage.body.contains("<table id=\"quota-use\"") && usage.body.contains("<table id=\"refusal-reasons\""),
        "{}",
        usage.body
    );

    let form = browser.get("/ops/audit").await;
    let token = csrf(&form.body);
    // Without the form token, or from another origin: refused.
    let reply = browser.post("/ops/audit", &[("subject_id_number", &subject)], &[]).await;
    assert_eq!(reply.status, 403);
    let reply = browser
        .post(
            "/ops/audit",
            &[("csrf", &token), ("subject_id_number", &subject)],
            &[("Origin", "https://evil.example")],
        )
        .await;
    assert_eq!(reply.status, 403);
    // A bad ID number is refused by the gateway, naming the field.
    let reply = browser
        .post("/ops/audit", &[("csrf", &token), ("subject_id_number", "370302198506010000")], &[])
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("subject_id_number"), "{}", reply.body);
    // The call just made is found by the subject's ID number.
    let reply = browser
        .post("/ops/audit", &[("csrf", &token), ("subject_id_number", &subject)], &[])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains("<td>service_platform</td><td>ConsentRegistry</td>"),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains(&subject), "the page shows the ID number masked only");
    assert!(reply.body.contains(&popbase_domain::mask::mask_id_number(&subject)));
    // And exported as CSV.
    let csv = browser.post("/ops/audit.csv", &[("csrf", &token)], &[]).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").is_some_and(|t| t.starts_with("text/csv")));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("seq,time,department,interface"), "{}", csv.body);
    assert!(
        lines.iter().any(|l| l.contains(",service_platform,ConsentRegistry,")),
        "{}",
        csv.body
    );
    // Each search was itself a call through the gate, audited, about the subject.
    let again = browser
        .post(
            "/ops/audit",
            &[("csrf", &token), ("subject_id_number", &subject), ("interface", "AuditSearch")],
            &[],
        )
        .await;
    assert!(again.body.contains("<td>audit</td><td>AuditSearch</td>"), "{}", again.body);
    // Store and role health: every storage role's store, through the gateway.
    let health = browser.get("/ops/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    for store in ["household", "residence", "feeds", "ledger"] {
        assert!(
            health.body.contains(&format!("<td>{store}</td><td>{store}</td><td>正常</td>")),
            "{store}: {}",
            health.body
        );
    }
    // Verify now: the ledger checks the chain to its head, through the gate.
    let chain = browser.get("/ops/chain").await;
    assert_eq!(chain.status, 200, "{}", chain.body);
    let verified = browser.post("/ops/chain/verify", &[("csrf", &token)], &[]).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert!(verified.body.contains("id=\"chain-ok\""), "{}", verified.body);
    assert!(
        verified.body.contains("audit-head.log"),
        "where heads are published: {}",
        verified.body
    );
    // Sign out ends the session.
    assert_eq!(browser.post("/logout", &[("csrf", &token)], &[]).await.status, 303);
    assert_eq!(browser.get("/ops").await.status, 401);
    // Nothing the test typed reached the log in clear.
    let log = std::fs::read_to_string(&running.log).expect("log");
    assert!(!log.contains(&subject), "the server log holds an ID number");
    assert!(log.contains("console request"), "access lines are logged");
}

#[tokio::test]
async fn a_resident_sees_the_accesses_and_a_revoked_consent_refuses_the_next_call() {
    let running = start();
    let subject = resident_id();
    let platform = format!("Bearer {}", token(&running, "service_platform"));
    let mut consents = ConsentsClient::new(plain_channel(&running.gateway));
    let today = popbase_domain::clock::today();
    consents
        .grant(with_token(
            &platform,
            GrantConsentRequest {
                purpose: "CITIZEN_CONSENT".into(),
                subject_id_number: subject.clone(),
                department: "hrss".into(),
                interface: "PersonSummary".into(),
                grant_purpose: "EMPLOYMENT_SERVICE".into(),
                valid_from: Some(today.into()),
                valid_until: Some((today + chrono::Days::new(30)).into()),
                ..Default::default()
            },
        ))
        .await
        .expect("grant");
    let hrss = format!("Bearer {}", token(&running, "hrss"));
    let mut persons = PersonsClient::new(plain_channel(&running.gateway));
    let ask = || PersonSummaryRequest {
        purpose: "EMPLOYMENT_SERVICE".into(),
        id_number: subject.clone(),
        ..Default::default()
    };
    // With the consent the call is answered (about a person this empty
    // registry does not know: residence status unknown).
    persons
        .person_summary(with_token(&hrss, ask()))
        .await
        .expect("answered under the consent");

    let assertion = popbase(running.data.path(), &["token", "--resident", &subject]);
    let assertion = String::from_utf8(assertion.stdout).expect("utf8");
    let mut browser = Browser::new(&running.console, &running.ca_pem);
    assert_eq!(
        browser
            .post("/resident/login", &[("assertion", assertion.trim())], &[])
            .await
            .status,
        303
    );
    let page = browser.get("/resident").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<td>hrss</td><td>PersonSummary</td>"),
        "the access is listed: {}",
        page.body
    );
    assert!(page.body.contains("class=\"revoke\""), "{}", page.body);
    assert!(
        page.body.contains("本人（或监护人）授权"),
        "PersonSummary rests on the consent: {}",
        page.body
    );
    assert!(!page.body.contains(&subject), "only the masked ID number is shown");
    let token = csrf(&page.body);
    let revoke = [
        ("csrf", token.as_str()),
        ("department", "hrss"),
        ("interface", "PersonSummary"),
        ("grant_purpose", "EMPLOYMENT_SERVICE"),
    ];
    // A revocation without the form token does nothing.
    assert_eq!(browser.post("/resident/revoke", &revoke[1..], &[]).await.status, 403);
    let done = browser.post("/resident/revoke", &revoke, &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("id=\"notice\""));
    let listed = consents
        .list_consents(with_token(
            &platform,
            ListConsentsRequest {
                purpose: "CITIZEN_CONSENT".into(),
                subject_id_number: subject.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.consents[0].state, ConsentState::Revoked as i32);
    let after = persons.person_summary(with_token(&hrss, ask())).await.expect_err("refused");
    assert_eq!(after.code(), tonic::Code::PermissionDenied, "{after:?}");
}

/// An approval added in the console is honoured by the gateway at once;
/// a bad edit is refused with its reason, a stale one and one by a
/// department not approved to change the catalogue are refused.
#[tokio::test]
async fn an_approval_applied_in_the_console_is_honoured_by_the_gateway() {
    let running = start();
    let education = format!("Bearer {}", token(&running, "education"));
    let mut audit = AuditClient::new(plain_channel(&running.gateway));
    let today = popbase_domain::clock::today();
    let usage = || UsageStatisticsRequest {
        purpose: "SERVICE_REVIEW".into(),
        from: Some(today.into()),
        to: Some(today.into()),
        department: "education".into(),
    };
    let before = audit
        .usage_statistics(with_token(&education, usage()))
        .await
        .expect_err("not approved");
    assert_eq!(before.code(), tonic::Code::PermissionDenied);

    let mut browser = sign_in_operator(&running, "big_data").await;
    let page = browser.get("/ops/catalogue").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<table id=\"approvals\"") && page.body.contains("data-version=\"0\""),
        "{}",
        page.body
    );
    let form_token = csrf(&page.body);
    let shipped = popbase_gateway::catalogue::SHIPPED;
    let edited = format!(
        "{shipped}\n[[approval]]\ndepartment = \"education\"\ninterface = \"UsageStatistics\"\npurposes = [\"SERVICE_REVIEW\"]\nfields = [\"usage\"]\n"
    );
    // A bad edit: refused with the reason, the edit kept on the page.
    let bad = edited.replace(
        "department = \"education\"\ninterface = \"UsageStatistics\"",
        "department = \"nobody\"\ninterface = \"UsageStatistics\"",
    );
    let reply = browser
        .post(
            "/ops/catalogue/validate",
            &[("csrf", &form_token), ("expected_version", "0"), ("toml", &bad)],
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains("校验未通过") && reply.body.contains("unknown department") && !reply.body.contains("&#39;nobody&#39;"),
        "{}",
        reply.body
    );
    let reply = browser
        .post(
            "/ops/catalogue/apply",
            &[("csrf", &form_token), ("expected_version", "0"), ("toml", &bad)],
            &[],
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    // The good one validates, applies, and the gateway honours it.
    let reply = browser
        .post(
            "/ops/catalogue/validate",
            &[("csrf", &form_token), ("expected_version", "0"), ("toml", &edited)],
            &[],
        )
        .await;
    assert!(reply.body.contains("校验通过"), "{}", reply.body);
    let reply = browser
        .post(
            "/ops/catalogue/apply",
            &[("csrf", &form_token), ("expected_version", "0"), ("toml", &edited)],
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains("id=\"applied\"") && reply.body.contains("data-version=\"1\""),
        "{}",
        reply.body
    );
    audit.usage_statistics(with_token(&education, usage())).await.expect("approved now");
    // Applying over a version someone else moved on from: refused.
    let reply = browser
        .post(
            "/ops/catalogue/apply",
            &[("csrf", &form_token), ("expected_version", "0"), ("toml", &edited)],
            &[],
        )
        .await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    // The audit bureau reads the catalogue but may not change it.
    let mut auditor = sign_in_operator(&running, "audit").await;
    let page = auditor.get("/ops/catalogue").await;
    assert_eq!(page.status, 200);
    let reply = auditor
        .post(
            "/ops/catalogue/apply",
            &[("csrf", &csrf(&page.body)), ("expected_version", "1"), ("toml", shipped)],
            &[],
        )
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    // The change is in the trail: the big-data bureau's CatalogueChange.
    let search = auditor.get("/ops/audit").await;
    let found = auditor
        .post(
            "/ops/audit",
            &[("csrf", &csrf(&search.body)), ("interface", "CatalogueChange")],
            &[],
        )
        .await;
    assert!(found.body.contains("<td>big_data</td><td>CatalogueChange</td>"), "{}", found.body);
}

/// An operator signs in with a client certificate of the operators' CA:
/// its CN names the department; the console then calls with tokens it mints
/// for that department. Another CA's certificate fails the handshake, and a
/// certificate of a department that is no operator department is refused.
#[tokio::test]
async fn an_operator_signs_in_with_a_client_certificate() {
    let running = start();
    let auditor = running
        .operators
        .issue_named("li-ming.audit.operators.popbase", &[])
        .expect("issue");
    let mut browser = Browser::with_certificate(&running.console, &running.ca_pem, &auditor.cert_pem, &auditor.key_pem);
    let form = browser.get("/login").await;
    assert!(form.body.contains("id=\"certificate-sign-in\""), "{}", form.body);
    let reply = browser.post("/login/certificate", &[], &[]).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let overview = browser.get("/ops").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(
        overview.body.contains("<strong id=\"department\">audit</strong>"),
        "{}",
        overview.body
    );

    let teacher = running
        .operators
        .issue_named("wang.education.operators.popbase", &[])
        .expect("issue");
    let mut other = Browser::with_certificate(&running.console, &running.ca_pem, &teacher.cert_pem, &teacher.key_pem);
    assert_eq!(other.post("/login/certificate", &[], &[]).await.status, 401);
    let mut plain = Browser::new(&running.console, &running.ca_pem);
    assert!(!plain.get("/login").await.body.contains("certificate-sign-in"));
    assert_eq!(plain.post("/login/certificate", &[], &[]).await.status, 401);

    let stranger_ca = Pki::new("not the operators CA").expect("CA");
    let forged = stranger_ca.issue_named("li-ming.audit.operators.popbase", &[]).expect("issue");
    let forger = Browser::with_certificate(&running.console, &running.ca_pem, &forged.cert_pem, &forged.key_pem);
    assert!(!forger.handshake().await, "a certificate of another CA is refused in the handshake");
}
