//! The pages before signing in: the landing page, the two sign-in forms,
//! sign-out, the stylesheet and the not-found page.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use popbase_gateway::auth::{verify_resident_assertion, verify_token};

use super::posted_form;
use crate::html::{self, Nav, esc};
use crate::https::PeerCertificate;
use crate::session::{SessionError, Who};
use crate::{Console, OPERATORS, respond};

const STYLESHEET: &str = include_str!("../../static/console.css");

pub async fn stylesheet() -> Response {
    respond::css(STYLESHEET)
}

pub async fn not_found() -> Response {
    respond::html(
        StatusCode::NOT_FOUND,
        html::page("页面不存在", Nav::None, None, "<p><a href=\"/\">返回首页</a></p>"),
    )
}

pub async fn landing(State(console): State<Console>, headers: HeaderMap) -> Response {
    if console.operator(&headers).is_ok() {
        return respond::redirect("/ops");
    }
    if console.resident(&headers).is_ok() {
        return respond::redirect("/resident");
    }
    let body = "<p>本平台的运营控制台与居民数据使用记录查询。</p>\
                <ul><li><a href=\"/login\">运营人员登录</a>（大数据局、审计部门）</li>\
                <li><a href=\"/resident/login\">居民登录</a>（经政务服务平台认证）</li></ul>";
    respond::html(StatusCode::OK, html::page("欢迎", Nav::None, None, body))
}

fn login_form(action: &str, field: &str, label: &str, hint: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "{error}<form method=\"post\" action=\"{action}\"><label for=\"{field}\">{label}</label>\
         <textarea id=\"{field}\" name=\"{field}\" autocomplete=\"off\" spellcheck=\"false\" required></textarea>\
         <p class=\"notice\">{hint}</p><button type=\"submit\" id=\"sign-in\">登录</button></form>"
    )
}

const OPERATOR_HINT: &str = "粘贴本部门的网关令牌（popbase token --department audit 或 big_data 签发）。令牌只保存在服务器端会话中。";
const RESIDENT_HINT: &str = "粘贴政务服务平台为您签发的身份断言（演示环境：popbase token --resident 生成）。";

/// The certificate sign-in, offered when the connection presented one.
fn certificate_form(peer: &PeerCertificate) -> String {
    match &peer.0 {
        Some(_) => "<h2>客户端证书</h2><p>本连接已出示运营人员客户端证书。</p>\
                    <form method=\"post\" action=\"/login/certificate\"><button type=\"submit\" id=\"certificate-sign-in\">使用证书登录</button></form>\
                    <h2>部门令牌</h2>"
            .into(),
        None => String::new(),
    }
}

pub async fn operator_login_form(Extension(peer): Extension<PeerCertificate>) -> Response {
    let body = format!(
        "{}{}",
        certificate_form(&peer),
        login_form("/login", "token", "部门令牌", OPERATOR_HINT, None)
    );
    respond::html(StatusCode::OK, html::page("运营人员登录", Nav::None, None, &body))
}

/// The operator department a certificate's CN names:
/// `<person>.<department>.operators.popbase`, the department one of [`OPERATORS`].
pub fn operator_of(common_name: &str) -> Option<(&'static str, &'static str)> {
    let rest = common_name.strip_suffix(".operators.popbase")?;
    let (person, department) = rest.rsplit_once('.')?;
    if person.is_empty() {
        return None;
    }
    OPERATORS.iter().find(|(d, _)| *d == department).copied()
}

/// Signs an operator in by the client certificate this connection
/// presented (verified against `console.client_ca` in the handshake).
pub async fn certificate_login(
    State(console): State<Console>,
    Extension(peer): Extension<PeerCertificate>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(page) = posted_form(&headers, &body, None) {
        return *page;
    }
    let refuse = |why: &str| refused_login("运营人员登录", "/login", "token", "部门令牌", OPERATOR_HINT, why);
    let Some(common_name) = peer.0.as_deref() else {
        return refuse("本连接未出示客户端证书。");
    };
    let Some((department, purpose)) = operator_of(common_name) else {
        return refuse("此证书不是运营部门（大数据局或审计部门）的运营人员证书。");
    };
    tracing::info!(department, "console operator signed in with a certificate");
    let who = Who::Operator {
        department: department.to_string(),
        token: None,
        purpose: purpose.to_string(),
    };
    opened(&console, who, "/ops")
}

pub async fn resident_login_form() -> Response {
    let body = login_form("/resident/login", "assertion", "身份断言", RESIDENT_HINT, None);
    respond::html(StatusCode::OK, html::page("居民登录", Nav::None, None, &body))
}

fn refused_login(title: &str, action: &str, field: &str, label: &str, hint: &str, why: &str) -> Response {
    let body = login_form(action, field, label, hint, Some(why));
    respond::html(StatusCode::UNAUTHORIZED, html::page(title, Nav::None, None, &body))
}

fn opened(console: &Console, who: Who, to: &'static str) -> Response {
    match console.sessions().open(who) {
        Ok(id) => respond::redirect_with_cookie(to, Some(&id)),
        Err(SessionError::Full) => respond::html(
            StatusCode::SERVICE_UNAVAILABLE,
            html::page("请稍后再试", Nav::None, None, "<p class=\"error\">当前会话过多，请稍后再试。</p>"),
        ),
        Err(SessionError::Random) => respond::html(
            StatusCode::INTERNAL_SERVER_ERROR,
            html::page("暂时无法登录", Nav::None, None, "<p class=\"error\">暂时无法登录。</p>"),
        ),
    }
}

/// Signs an operator in: a valid token of an operator department. The
/// gateway checks it again on every call, with the catalogue's approvals.
pub async fn operator_login(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match posted_form(&headers, &body, None) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let refuse = |why: &str| refused_login("运营人员登录", "/login", "token", "部门令牌", OPERATOR_HINT, why);
    let settings = console.settings();
    let now = chrono::Utc::now().timestamp();
    let token = form.get("token");
    let department = match verify_token(&settings.token_key, token, now, i64::from(settings.max_token_hours) * 3600) {
        Ok(department) => department,
        Err((code, why)) => return refuse(&format!("令牌未通过验证（{code}）：{why}")),
    };
    let Some((_, purpose)) = OPERATORS.iter().find(|(d, _)| *d == department) else {
        return refuse("此令牌所属部门不是运营部门（大数据局或审计部门）。");
    };
    tracing::info!(department = %department, "console operator signed in");
    let who = Who::Operator {
        department,
        token: Some(token.to_string()),
        purpose: purpose.to_string(),
    };
    opened(&console, who, "/ops")
}

/// Signs a resident in: an assertion of the service platform naming a
/// valid ID number.
pub async fn resident_login(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match posted_form(&headers, &body, None) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let refuse = |why: &str| refused_login("居民登录", "/resident/login", "assertion", "身份断言", RESIDENT_HINT, why);
    let now = chrono::Utc::now().timestamp();
    let id_number = match verify_resident_assertion(&console.settings().token_key, form.get("assertion"), now) {
        Ok(id) => id,
        Err((code, why)) => return refuse(&format!("身份断言未通过验证（{code}）：{why}")),
    };
    if popbase_common::validate::id_number("assertion", &id_number, popbase_domain::clock::today()).is_err() {
        return refuse("身份断言中的公民身份号码无效。");
    }
    tracing::info!("console resident signed in");
    opened(&console, Who::Resident { id_number }, "/resident")
}

pub async fn logout(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(id) = super::session_id(&headers) else {
        return respond::redirect_with_cookie("/", None);
    };
    let Some(session) = console.sessions().get(&id) else {
        return respond::redirect_with_cookie("/", None);
    };
    if let Err(page) = posted_form(&headers, &body, Some(&session)) {
        return *page;
    }
    console.sessions().close(&id);
    respond::redirect_with_cookie("/", None)
}
