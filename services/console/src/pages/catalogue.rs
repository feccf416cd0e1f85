//! The sharing catalogue: departments, interfaces with share class and
//! legal basis, approvals; and the catalogue as TOML to edit, check (the
//! checks a gateway makes when it loads one) and apply. Each is a
//! `SharingCatalogue` call through the gate, so reading, checking and the
//! change itself are audited; applying needs the CatalogueChange approval.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use popbase_proto::gateway::{ApplyCatalogueRequest, CatalogueDocument, ValidateCatalogueRequest};

use popbase_gateway::catalogue::MAX_TEXT_BYTES;

use super::{Operator, posted_form_with, refused_block, refused_status};
use crate::html::{self, Nav, city_time, csrf_field, esc, table};
use crate::{Console, respond};

fn page(operator: &Operator, status: StatusCode, body: &str) -> Response {
    respond::html(status, html::page("共享目录", Nav::Operator, Some(&operator.session.csrf), body))
}

fn class_name(class: &str) -> &'static str {
    match class {
        "unconditional" => "无条件共享",
        "conditional" => "有条件共享",
        "not_shared" => "不予共享",
        _ => "—",
    }
}

/// The document's tables and the edit form (holding `text`, the applied
/// catalogue or the operator's edit).
fn render(operator: &Operator, doc: &CatalogueDocument, text: &str, message: &str) -> String {
    let applied = if doc.version == 0 {
        "启动时加载的目录（尚未经控制台变更）".to_string()
    } else {
        format!(
            "第 {} 版，{} 由 {} 应用",
            doc.version,
            city_time(doc.applied_at_unix_millis),
            esc(&doc.applied_by)
        )
    };
    let mut body = format!(
        "{message}<p id=\"catalogue-version\" data-version=\"{}\">当前目录：{applied}。</p>",
        doc.version
    );
    let departments: Vec<Vec<String>> = doc
        .departments
        .iter()
        .map(|d| vec![esc(&d.id), esc(&d.name), d.daily_quota.to_string(), d.per_second.to_string()])
        .collect();
    body.push_str("<h2>部门</h2>");
    body.push_str(&table("departments", &["标识", "名称", "每日配额", "每秒上限"], &departments));
    let interfaces: Vec<Vec<String>> = doc
        .interfaces
        .iter()
        .map(|i| {
            vec![
                esc(&i.id),
                esc(&i.name),
                class_name(&i.share_class).into(),
                esc(if i.legal_basis.is_empty() {
                    "（需本人授权）"
                } else {
                    &i.legal_basis
                }),
                esc(&i.fields.join("、")),
            ]
        })
        .collect();
    body.push_str("<h2>接口</h2>");
    body.push_str(&table("interfaces", &["标识", "名称", "共享类型", "法律依据", "字段"], &interfaces));
    let approvals: Vec<Vec<String>> = doc
        .approvals
        .iter()
        .map(|a| {
            vec![
                esc(&a.department),
                esc(&a.interface),
                esc(&a.purposes.join("、")),
                esc(&a.fields.join("、")),
            ]
        })
        .collect();
    body.push_str("<h2>批准</h2>");
    body.push_str(&table("approvals", &["部门", "接口", "用途", "字段"], &approvals));
    body.push_str(&format!(
        "<h2>编辑目录</h2><p>修改后先校验（与网关加载目录时的检查相同），再应用；应用后各网关副本数秒内生效，变更记入审计。</p>\
         <form method=\"post\" action=\"/ops/catalogue/validate\" id=\"catalogue-form\">{csrf}\
         <input type=\"hidden\" name=\"expected_version\" value=\"{version}\">\
         <textarea id=\"catalogue-toml\" name=\"toml\" rows=\"24\" spellcheck=\"false\">{text}</textarea>\
         <p><button type=\"submit\" id=\"validate\">校验</button> \
         <button type=\"submit\" id=\"apply\" formaction=\"/ops/catalogue/apply\">应用</button></p></form>",
        csrf = csrf_field(&operator.session.csrf),
        version = doc.version,
        text = esc(text),
    ));
    body
}

pub async fn show(State(console): State<Console>, headers: HeaderMap) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    match console.settings().gateway.get_catalogue(&operator.token, &operator.purpose).await {
        Ok(doc) => {
            let body = render(&operator, &doc, &doc.toml, "");
            page(&operator, StatusCode::OK, &body)
        }
        Err(refused) => page(&operator, refused_status(&refused), &refused_block(&refused)),
    }
}

/// The operator's edit, checked; the page keeps the edit in the form.
pub async fn validate(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    let form = match posted_form_with(&headers, &body, Some(&operator.session), MAX_TEXT_BYTES) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let gateway = &console.settings().gateway;
    let doc = match gateway.get_catalogue(&operator.token, &operator.purpose).await {
        Ok(doc) => doc,
        Err(refused) => return page(&operator, refused_status(&refused), &refused_block(&refused)),
    };
    let text = form.get("toml");
    let request = ValidateCatalogueRequest {
        purpose: operator.purpose.clone(),
        toml: text.to_string(),
    };
    let message = match gateway.validate_catalogue(&operator.token, request).await {
        Ok(v) if v.valid => "<p class=\"ok\" id=\"validation\">校验通过，可以应用。</p>".to_string(),
        Ok(v) => format!("<p class=\"error\" id=\"validation\">校验未通过：{}</p>", esc(&v.problem)),
        Err(refused) => refused_block(&refused),
    };
    page(&operator, StatusCode::OK, &render(&operator, &doc, text, &message))
}

pub async fn apply(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    let form = match posted_form_with(&headers, &body, Some(&operator.session), MAX_TEXT_BYTES) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let Ok(expected_version) = form.get("expected_version").parse::<u64>() else {
        return page(
            &operator,
            StatusCode::BAD_REQUEST,
            "<p class=\"error\">expected_version: 不是版本号</p>",
        );
    };
    let text = form.get("toml");
    let request = ApplyCatalogueRequest {
        purpose: operator.purpose.clone(),
        toml: text.to_string(),
        expected_version,
    };
    let gateway = &console.settings().gateway;
    match gateway.apply_catalogue(&operator.token, request).await {
        Ok(doc) => {
            let message = format!("<p class=\"ok\" id=\"applied\">已应用第 {} 版。</p>", doc.version);
            page(&operator, StatusCode::OK, &render(&operator, &doc, &doc.toml, &message))
        }
        Err(refused) => {
            // Keep the edit on the page, with why it was not applied.
            let status = refused_status(&refused);
            match gateway.get_catalogue(&operator.token, &operator.purpose).await {
                Ok(doc) => page(&operator, status, &render(&operator, &doc, text, &refused_block(&refused))),
                Err(_) => page(&operator, status, &refused_block(&refused)),
            }
        }
    }
}
