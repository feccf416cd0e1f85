//! The console's pages, and what every page does first: find the session,
//! check the form token and origin of a POST, turn the gateway's refusals
//! into a page that says why and shows nothing else.

pub mod audit;
pub mod catalogue;
mod chart;
pub mod front;
pub mod health;
pub mod operator;
pub mod resident;
pub mod usage;

use axum::body::Bytes;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use tonic::Code;

use crate::Console;
use crate::form::Form;
use crate::html::{self, Nav, esc};
use crate::link::Refused;
use crate::respond;
use crate::session::{COOKIE, Session, Who};

/// Lifetime of a token the console mints for one request's calls.
pub(crate) const MINTED_TOKEN_SECS: i64 = 300;

/// A page answered instead of going on (boxed: a response is large).
pub(crate) type Page = Box<Response>;

/// One line per request: method, path (never a query; no page takes an ID
/// number in its URL), status and time taken.
pub async fn access_log(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        target: "popbase::console::access",
        %method,
        path = %path.chars().take(64).collect::<String>(),
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        "console request"
    );
    response
}

/// The session id of the request's cookie, if any.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A signed-in operator: their session and what they act with.
pub struct Operator {
    pub session_id: String,
    pub session: Session,
    pub department: String,
    pub token: String,
    pub purpose: String,
}

/// A signed-in resident.
pub struct Resident {
    pub session_id: String,
    pub session: Session,
    pub id_number: String,
}

/// The page for someone without a valid identity: 401, a link to sign in,
/// nothing else.
fn unauthorised(login: &'static str) -> Response {
    let body = format!("<p class=\"error\">请先登录。</p><p><a href=\"{login}\">登录</a></p>");
    respond::html(StatusCode::UNAUTHORIZED, html::page("需要登录", Nav::None, None, &body))
}

fn forbidden(why: &str) -> Response {
    let body = format!("<p class=\"error\">{}</p>", esc(why));
    respond::html(StatusCode::FORBIDDEN, html::page("拒绝访问", Nav::None, None, &body))
}

impl Console {
    /// A token for `department`, valid for [`MINTED_TOKEN_SECS`], signed
    /// with the gateway's key: how the console calls for someone who signed
    /// in with a certificate (an operator) or an assertion (for residents,
    /// the service platform).
    pub(crate) fn minted_token(&self, department: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        popbase_gateway::auth::mint_token(&self.settings().token_key, department, now, now + MINTED_TOKEN_SECS)
    }

    pub(crate) fn operator(&self, headers: &HeaderMap) -> Result<Operator, Page> {
        let id = session_id(headers).ok_or_else(|| Box::new(unauthorised("/login")))?;
        let session = self.sessions().get(&id).ok_or_else(|| Box::new(unauthorised("/login")))?;
        match session.who.clone() {
            Who::Operator {
                department,
                token,
                purpose,
            } => Ok(Operator {
                session_id: id,
                session,
                // Signed in by certificate: a token for this request only.
                token: token.unwrap_or_else(|| self.minted_token(&department)),
                department,
                purpose,
            }),
            Who::Resident { .. } => Err(Box::new(forbidden("居民账户不能访问运营控制台。"))),
        }
    }

    pub(crate) fn resident(&self, headers: &HeaderMap) -> Result<Resident, Page> {
        let id = session_id(headers).ok_or_else(|| Box::new(unauthorised("/resident/login")))?;
        let session = self.sessions().get(&id).ok_or_else(|| Box::new(unauthorised("/resident/login")))?;
        match session.who.clone() {
            Who::Resident { id_number } => Ok(Resident {
                session_id: id,
                session,
                id_number,
            }),
            Who::Operator { .. } => Err(Box::new(forbidden("运营账户没有居民页面。"))),
        }
    }
}

/// A POST's form, after checking its origin (a browser's cross-site POST
/// names another origin) and, for a session's forms, its form token.
pub(crate) fn posted_form(headers: &HeaderMap, body: &Bytes, session: Option<&Session>) -> Result<Form, Page> {
    posted_form_with(headers, body, session, crate::form::MAX_VALUE)
}

/// [`posted_form`] with values up to `max_value` bytes.
pub(crate) fn posted_form_with(headers: &HeaderMap, body: &Bytes, session: Option<&Session>, max_value: usize) -> Result<Form, Page> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let same = origin.to_str().ok().is_some_and(|o| o == format!("https://{host}"));
        if !same {
            return Err(Box::new(forbidden("请求来源与本站不符。")));
        }
    }
    let form = Form::parse_with(body, max_value).map_err(|e| {
        let body = format!("<p class=\"error\">{}</p>", esc(&e.to_string()));
        Box::new(respond::html(
            StatusCode::BAD_REQUEST,
            html::page("表单有误", Nav::None, None, &body),
        ))
    })?;
    if let Some(session) = session
        && !session.csrf_matches(form.get("csrf"))
    {
        return Err(Box::new(forbidden("表单已失效（缺少或错误的表单令牌），请刷新页面后重试。")));
    }
    Ok(form)
}

/// What a refusal of the gateway looks like on a page: its code, reason
/// code and the field it names. Expired credentials send the person back
/// to sign in.
pub(crate) fn refused_block(refused: &Refused) -> String {
    let what = match refused.code {
        Code::Unauthenticated => "身份未通过网关认证（令牌无效或已过期），请重新登录",
        Code::PermissionDenied => "共享目录未批准此访问",
        Code::InvalidArgument => "输入有误",
        Code::ResourceExhausted => "调用超出配额或并发上限，请稍后再试",
        Code::Aborted => "数据已被他人修改，请重新打开页面后再试",
        Code::Unavailable | Code::DeadlineExceeded => "网关暂时不可用，请稍后再试",
        _ => "网关拒绝了此请求",
    };
    let mut out = format!(
        "<div class=\"error\" id=\"refused\"><p>{what}。</p><p class=\"mono\">{:?}",
        refused.code
    );
    if !refused.reason.is_empty() {
        out.push_str(&format!(" · {}", esc(&refused.reason)));
    }
    if !refused.field.is_empty() {
        out.push_str(&format!(" · 字段 {}", esc(&refused.field)));
    }
    out.push_str(&format!("</p><p>{}</p></div>", esc(&refused.message)));
    out
}

/// The status a page showing `refused` answers with.
pub(crate) fn refused_status(refused: &Refused) -> StatusCode {
    match refused.code {
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Aborted => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    }
}
