//! The console: server-rendered HTTPS pages (zh-CN) for the people who run
//! the sharing, and a page where residents see who used their data.
//!
//! * Operators of the big-data bureau and the audit bureau sign in with
//!   their department's token; residents with an assertion the government
//!   service platform signed for them ([`popbase_gateway::auth`]).
//! * Every page's data comes from a call through the gateway's gate
//!   ([`link::GatewayLink`]), with the signed-in person's credential: the
//!   gateway authenticates, authorises, minimises and audits it as any
//!   department's call. The console keeps nothing but sessions.
//! * Web basics: TLS only ([`https`]), `__Host-` session cookies
//!   (Secure, HttpOnly, SameSite=Strict, 15 minutes idle, [`session`]), a
//!   form token on every state-changing form and an Origin check on every
//!   POST, a strict Content-Security-Policy ([`respond`]), no ID number in
//!   any URL (forms post them), and access logs of method, path and status.

pub mod form;
pub mod html;
pub mod https;
pub mod link;
mod pages;
pub mod respond;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use link::GatewayLink;
pub use session::Sessions;

/// The catalogue's forms carry its whole text; every other form is small.
fn catalogue_body() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(form::MAX_CATALOGUE_BODY)
}

/// The operator departments and the purpose each acts under.
pub const OPERATORS: [(&str, &str); 2] = [("audit", "AUDIT"), ("big_data", "SERVICE_OPERATIONS")];

/// What a console needs: the gateway it calls and the key that verifies
/// operators' tokens and residents' assertions (the gateway's token key).
pub struct ConsoleSettings {
    pub gateway: GatewayLink,
    pub token_key: Vec<u8>,
    /// The longest a token may be issued for (`gateway.max_token_hours`).
    pub max_token_hours: u32,
}

/// The console's state, shared by every request.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ConsoleSettings,
    sessions: Sessions,
}

impl Console {
    pub fn new(settings: ConsoleSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                sessions: Sessions::default(),
            }),
        }
    }

    pub(crate) fn settings(&self) -> &ConsoleSettings {
        &self.inner.settings
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Every page of the console.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(pages::front::landing))
            .route("/static/console.css", get(pages::front::stylesheet))
            .route("/login", get(pages::front::operator_login_form).post(pages::front::operator_login))
            .route("/login/certificate", post(pages::front::certificate_login))
            .route(
                "/resident/login",
                get(pages::front::resident_login_form).post(pages::front::resident_login),
            )
            .route("/logout", post(pages::front::logout))
            .route("/ops", get(pages::operator::overview))
            .route("/ops/usage", get(pages::usage::show))
            .route("/ops/chain", get(pages::operator::chain))
            .route("/ops/chain/verify", post(pages::operator::verify_chain))
            .route("/ops/health", get(pages::health::show))
            .route("/ops/catalogue", get(pages::catalogue::show))
            .route("/ops/catalogue/validate", post(pages::catalogue::validate).layer(catalogue_body()))
            .route("/ops/catalogue/apply", post(pages::catalogue::apply).layer(catalogue_body()))
            .route("/ops/audit", get(pages::audit::form).post(pages::audit::search))
            .route("/ops/audit/next", post(pages::audit::next_page))
            .route("/ops/audit.csv", post(pages::audit::export_csv))
            .route("/resident", get(pages::resident::home))
            .route("/resident/revoke", post(pages::resident::revoke))
            .route("/resident/child", get(pages::resident::child).post(pages::resident::open_child))
            .fallback(pages::front::not_found)
            .layer(axum::extract::DefaultBodyLimit::max(form::MAX_BODY))
            .layer(axum::middleware::from_fn(pages::access_log))
            .with_state(self.clone())
    }
}
