//! The resident's page: every access to their data (department, interface,
//! purpose, time, allowed or refused) and their consents, each with a revoke
//! button; and, for a parent or guardian, the same of a minor child, once
//! the gateway has checked the registry names them. The resident is who the
//! service platform's assertion named; the console asks the gateway as the
//! service platform (`service_platform`, a token it mints for minutes),
//! about that resident and the children they are shown to stand for only.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use popbase_domain::mask::mask_id_number;
use popbase_proto::gateway::{Consent, ConsentState, ListAccessesRequest, ListConsentsRequest, RevokeConsentRequest};

use super::{Resident, posted_form, refused_block, refused_status};
use crate::html::{self, Nav, city_time, csrf_field, esc, table};
use crate::{Console, respond};

/// The department the console acts as for residents.
const SERVICE_PLATFORM: &str = "service_platform";
const ACCESS_PURPOSE: &str = "CITIZEN_ACCESS_LOG";
const CONSENT_PURPOSE: &str = "CITIZEN_CONSENT";
/// Accesses shown, newest first.
const ACCESSES_SHOWN: u32 = 200;

/// Whose record a page shows: the resident's own, or a child's with the
/// resident as guardian.
struct Whose {
    subject: String,
    guardian: String,
}

impl Whose {
    fn own(resident: &Resident) -> Self {
        Self {
            subject: resident.id_number.clone(),
            guardian: String::new(),
        }
    }

    fn child(resident: &Resident, child: &str) -> Self {
        Self {
            subject: child.to_string(),
            guardian: resident.id_number.clone(),
        }
    }

    fn is_child(&self) -> bool {
        !self.guardian.is_empty()
    }
}

fn platform_token(console: &Console) -> String {
    console.minted_token(SERVICE_PLATFORM)
}

fn state_name(state: i32) -> &'static str {
    match ConsentState::try_from(state).unwrap_or(ConsentState::Unspecified) {
        ConsentState::Active => "有效",
        ConsentState::Revoked => "已撤回",
        ConsentState::Expired => "已过期",
        ConsentState::UsedUp => "次数已用完",
        ConsentState::NotYetValid => "尚未生效",
        ConsentState::Unspecified => "—",
    }
}

fn date(d: Option<&popbase_proto::common::Date>) -> String {
    d.map_or("—".into(), |d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
}

fn consent_row(resident: &Resident, whose: &Whose, c: &Consent) -> Vec<String> {
    let action = if c.state == ConsentState::Active as i32 {
        format!(
            "<form method=\"post\" action=\"/resident/revoke\" class=\"inline\">{}\
             <input type=\"hidden\" name=\"whose\" value=\"{}\">\
             <input type=\"hidden\" name=\"department\" value=\"{}\"><input type=\"hidden\" name=\"interface\" value=\"{}\">\
             <input type=\"hidden\" name=\"grant_purpose\" value=\"{}\"><button type=\"submit\" class=\"revoke\">撤回</button></form>",
            csrf_field(&resident.session.csrf),
            if whose.is_child() { "child" } else { "self" },
            esc(&c.department),
            esc(&c.interface),
            esc(&c.grant_purpose)
        )
    } else {
        String::new()
    };
    let uses = if c.use_limit == 0 {
        format!("{}", c.uses)
    } else {
        format!("{} / {}", c.uses, c.use_limit)
    };
    vec![
        esc(&c.department),
        esc(&c.interface),
        esc(&c.grant_purpose),
        format!("{} 至 {}", date(c.valid_from.as_ref()), date(c.valid_until.as_ref())),
        uses,
        if c.granted_by_guardian { "监护人" } else { "本人" }.into(),
        state_name(c.state).into(),
        action,
    ]
}

const CHILD_FORM: &str = "<h2>未成年子女</h2><p>父母或监护人可查看未成年子女的数据使用记录与授权（以户籍登记的监护关系为准）。</p>\
     <form method=\"post\" action=\"/resident/child\">{csrf}<label for=\"child_id_number\">子女的公民身份号码</label>\
     <input type=\"text\" id=\"child_id_number\" name=\"child_id_number\" autocomplete=\"off\" maxlength=\"18\">\
     <p><button type=\"submit\" id=\"open-child\">查看</button></p></form>";

pub async fn home(State(console): State<Console>, headers: HeaderMap) -> Response {
    let resident = match console.resident(&headers) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    render(&console, &resident, &Whose::own(&resident), None).await
}

/// The child a guardian opened last, or back to their own page.
pub async fn child(State(console): State<Console>, headers: HeaderMap) -> Response {
    let resident = match console.resident(&headers) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    match resident.session.child.clone() {
        Some(child) => render(&console, &resident, &Whose::child(&resident, &child), None).await,
        None => respond::redirect("/resident"),
    }
}

/// Opens a child's record: shown only when the gateway's guardian check
/// passes (its refusal is shown otherwise); the child is then kept in the
/// session, never in a URL.
pub async fn open_child(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let resident = match console.resident(&headers) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let form = match posted_form(&headers, &body, Some(&resident.session)) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let whose = Whose::child(&resident, form.get("child_id_number"));
    let response = render(&console, &resident, &whose, None).await;
    if response.status() == StatusCode::OK {
        console.sessions().save_child(&resident.session_id, whose.subject);
    }
    response
}

async fn render(console: &Console, resident: &Resident, whose: &Whose, notice: Option<&str>) -> Response {
    let token = platform_token(console);
    let gateway = &console.settings().gateway;
    let mut status = StatusCode::OK;
    let mut body = if whose.is_child() {
        format!(
            "<p>您作为监护人查看 <span id=\"whose\">{}</span> 的记录。<a href=\"/resident\">返回我的记录</a></p>",
            esc(&mask_id_number(&whose.subject))
        )
    } else {
        format!(
            "<p>您好，公民身份号码 <span id=\"who\">{}</span>。以下是各部门经本平台使用您的数据的记录，以及您给出的授权。</p>",
            esc(&mask_id_number(&resident.id_number))
        )
    };
    if let Some(notice) = notice {
        body.push_str(&format!("<p class=\"ok\" id=\"notice\">{}</p>", esc(notice)));
    }
    body.push_str("<h2>数据使用记录</h2>");
    let accesses = ListAccessesRequest {
        purpose: ACCESS_PURPOSE.into(),
        subject_id_number: whose.subject.clone(),
        limit: ACCESSES_SHOWN,
        guardian_id_number: whose.guardian.clone(),
    };
    match gateway.accesses(&token, accesses).await {
        Ok(list) if list.accesses.is_empty() => body.push_str("<p id=\"no-accesses\">暂无记录。</p>"),
        Ok(list) => {
            let rows: Vec<Vec<String>> = list
                .accesses
                .iter()
                .map(|a| {
                    vec![
                        city_time(a.at_unix_millis),
                        esc(&a.department),
                        esc(&a.interface),
                        esc(&a.purpose),
                        if a.allowed { "已提供" } else { "已拒绝" }.into(),
                        esc(&a.fields.join("、")),
                        if a.rests_on_consent {
                            "本人（或监护人）授权".into()
                        } else {
                            esc(&a.legal_basis)
                        },
                    ]
                })
                .collect();
            body.push_str(&table(
                "accesses",
                &["时间", "部门", "接口", "用途", "结果", "提供的字段", "依据"],
                &rows,
            ));
        }
        Err(refused) => {
            // A refused guardian check shows the refusal and nothing of the child.
            let page = html::page("监护人查看", Nav::Resident, Some(&resident.session.csrf), &refused_block(&refused));
            if whose.is_child() {
                return respond::html(refused_status(&refused), page);
            }
            status = refused_status(&refused);
            body.push_str(&refused_block(&refused));
        }
    }
    body.push_str("<h2>授权</h2>");
    let consents = ListConsentsRequest {
        purpose: CONSENT_PURPOSE.into(),
        subject_id_number: whose.subject.clone(),
        guardian_id_number: whose.guardian.clone(),
    };
    match gateway.consents_of(&token, consents).await {
        Ok(list) if list.consents.is_empty() => body.push_str("<p id=\"no-consents\">暂无授权。</p>"),
        Ok(list) => {
            let rows: Vec<Vec<String>> = list.consents.iter().map(|c| consent_row(resident, whose, c)).collect();
            body.push_str(&table(
                "consents",
                &["部门", "接口", "用途", "有效期", "已用次数", "授权人", "状态", ""],
                &rows,
            ));
        }
        Err(refused) => {
            status = refused_status(&refused);
            body.push_str(&refused_block(&refused));
        }
    }
    if !whose.is_child() {
        body.push_str(&CHILD_FORM.replace("{csrf}", &csrf_field(&resident.session.csrf)));
    }
    respond::html(
        status,
        html::page("我的数据使用记录", Nav::Resident, Some(&resident.session.csrf), &body),
    )
}

pub async fn revoke(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let resident = match console.resident(&headers) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let form = match posted_form(&headers, &body, Some(&resident.session)) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let whose = match (form.get("whose"), resident.session.child.as_deref()) {
        ("child", Some(child)) => Whose::child(&resident, child),
        ("child", None) => return respond::redirect("/resident"),
        _ => Whose::own(&resident),
    };
    let request = RevokeConsentRequest {
        purpose: CONSENT_PURPOSE.into(),
        subject_id_number: whose.subject.clone(),
        department: form.get("department").into(),
        interface: form.get("interface").into(),
        grant_purpose: form.get("grant_purpose").into(),
        guardian_id_number: whose.guardian.clone(),
    };
    match console.settings().gateway.revoke(&platform_token(&console), request).await {
        Ok(()) => render(&console, &resident, &whose, Some("授权已撤回，该部门下一次调用即被拒绝。")).await,
        Err(refused) => {
            let body = refused_block(&refused);
            respond::html(
                refused_status(&refused),
                html::page("撤回授权", Nav::Resident, Some(&resident.session.csrf), &body),
            )
        }
    }
}
