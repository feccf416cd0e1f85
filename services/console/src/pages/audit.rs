//! Audit search: by a person's ID number (the gateway turns it into the
//! trail's pseudonym; it is never put in a URL, a log or the page again, only
//! masked), department, interface and time window; paged; and exported as
//! CSV for an auditor. Each page, and each page of an export, is one
//! `Audit.SearchAudit` call through the gate, so each is itself audited.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use chrono::{NaiveDateTime, TimeZone as _};
use http::{HeaderMap, StatusCode};
use popbase_domain::mask::mask_id_number;
use popbase_proto::gateway::{AuditRecord, AuditSearchRequest, AuditSearchResponse, Decision};

use super::{Operator, posted_form, refused_block, refused_status};
use crate::form::Form;
use crate::html::{self, Nav, city_time, csrf_field, esc, table};
use crate::link::Refused;
use crate::session::SavedSearch;
use crate::{Console, respond};

/// Records per page shown.
const PAGE: u32 = 50;
/// Most records one CSV export holds (pages of [`CSV_PAGE`]).
pub const MAX_CSV_RECORDS: usize = 5_000;
const CSV_PAGE: u32 = 200;

fn form_html(operator: &Operator, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"form-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "{error}<form method=\"post\" action=\"/ops/audit\" id=\"audit-search\">{}\
         <label for=\"subject_id_number\">公民身份号码（可选；服务器端转换为假名后查询，不记录明文）</label>\
         <input type=\"text\" id=\"subject_id_number\" name=\"subject_id_number\" autocomplete=\"off\" maxlength=\"18\">\
         <label for=\"department\">部门（可选，如 education）</label><input type=\"text\" id=\"department\" name=\"department\" maxlength=\"64\">\
         <label for=\"interface\">接口（可选，如 EnrollmentCheck）</label><input type=\"text\" id=\"interface\" name=\"interface\" maxlength=\"64\">\
         <label for=\"from\">起（本市时间，可选）</label><input type=\"datetime-local\" id=\"from\" name=\"from\">\
         <label for=\"to\">止（本市时间，可选）</label><input type=\"datetime-local\" id=\"to\" name=\"to\">\
         <p><button type=\"submit\" id=\"search\">查询</button></p></form>",
        csrf_field(&operator.session.csrf)
    )
}

fn operator_page(operator: &Operator, status: StatusCode, body: &str) -> Response {
    respond::html(status, html::page("审计查询", Nav::Operator, Some(&operator.session.csrf), body))
}

pub async fn form(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.operator(&headers) {
        Ok(operator) => operator_page(&operator, StatusCode::OK, &form_html(&operator, None)),
        Err(page) => *page,
    }
}

/// A `datetime-local` value read as the city's time; 0 when empty.
fn city_millis(field: &str, value: &str) -> Result<i64, String> {
    if value.is_empty() {
        return Ok(0);
    }
    let local = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("{field}: 不是 年-月-日T时:分 格式的时间"))?;
    popbase_domain::clock::city_offset()
        .from_local_datetime(&local)
        .single()
        .map(|at| at.timestamp_millis().max(0))
        .ok_or_else(|| format!("{field}: 不是有效的本市时间"))
}

fn criteria(form: &Form) -> Result<SavedSearch, String> {
    let search = SavedSearch {
        subject_id_number: form.get("subject_id_number").to_string(),
        department: form.get("department").to_string(),
        interface: form.get("interface").to_string(),
        from_unix_millis: city_millis("from", form.get("from"))?,
        to_unix_millis: city_millis("to", form.get("to"))?,
    };
    if search.to_unix_millis != 0 && search.to_unix_millis < search.from_unix_millis {
        return Err("to: 截止时间早于起始时间".into());
    }
    Ok(search)
}

fn request(operator: &Operator, search: &SavedSearch, after_seq: u64, limit: u32) -> AuditSearchRequest {
    AuditSearchRequest {
        purpose: operator.purpose.clone(),
        subject_id_number: search.subject_id_number.clone(),
        department: search.department.clone(),
        interface: search.interface.clone(),
        from_unix_millis: search.from_unix_millis,
        to_unix_millis: search.to_unix_millis,
        after_seq,
        limit,
    }
}

fn decision(record: &AuditRecord) -> &'static str {
    if record.decision == Decision::Allowed as i32 {
        "允许"
    } else {
        "拒绝"
    }
}

fn summary(search: &SavedSearch) -> String {
    let mut parts = Vec::new();
    if !search.subject_id_number.is_empty() {
        parts.push(format!("人员 {}", mask_id_number(&search.subject_id_number)));
    }
    if !search.department.is_empty() {
        parts.push(format!("部门 {}", search.department));
    }
    if !search.interface.is_empty() {
        parts.push(format!("接口 {}", search.interface));
    }
    if search.from_unix_millis != 0 {
        parts.push(format!("自 {}", city_time(search.from_unix_millis)));
    }
    if search.to_unix_millis != 0 {
        parts.push(format!("至 {}", city_time(search.to_unix_millis)));
    }
    if parts.is_empty() {
        "全部记录".into()
    } else {
        parts.join("，")
    }
}

fn results(operator: &Operator, search: &SavedSearch, page: &AuditSearchResponse) -> String {
    let rows: Vec<Vec<String>> = page
        .records
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                city_time(r.at_unix_millis),
                esc(&r.department),
                esc(&r.interface),
                esc(&r.purpose),
                decision(r).into(),
                esc(&r.reason),
                r.count.to_string(),
                r.subjects.len().to_string(),
            ]
        })
        .collect();
    let mut out = format!(
        "<p id=\"criteria\">查询条件：{}。本页 {} 条。</p>",
        esc(&summary(search)),
        page.records.len()
    );
    out.push_str(&table(
        "audit-results",
        &["序号", "时间", "部门", "接口", "用途", "决定", "原因", "记录数", "涉及人数"],
        &rows,
    ));
    if page.next_after_seq != 0 {
        out.push_str(&format!(
            "<form method=\"post\" action=\"/ops/audit/next\">{}<input type=\"hidden\" name=\"after_seq\" value=\"{}\">\
             <button type=\"submit\" id=\"next-page\">下一页</button></form>",
            csrf_field(&operator.session.csrf),
            page.next_after_seq
        ));
    }
    out.push_str(&format!(
        "<form method=\"post\" action=\"/ops/audit.csv\">{}<button type=\"submit\" id=\"export-csv\">导出 CSV（至多 {MAX_CSV_RECORDS} 条，导出本身记入审计）</button></form>",
        csrf_field(&operator.session.csrf)
    ));
    out
}

async fn show(console: &Console, operator: &Operator, search: &SavedSearch, after_seq: u64) -> Response {
    match console
        .settings()
        .gateway
        .search_audit(&operator.token, request(operator, search, after_seq, PAGE))
        .await
    {
        Ok(page) => {
            let body = format!("{}{}", results(operator, search, &page), form_html(operator, None));
            operator_page(operator, StatusCode::OK, &body)
        }
        Err(refused) => {
            let body = format!("{}{}", refused_block(&refused), form_html(operator, None));
            operator_page(operator, refused_status(&refused), &body)
        }
    }
}

pub async fn search(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    let form = match posted_form(&headers, &body, Some(&operator.session)) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let search = match criteria(&form) {
        Ok(search) => search,
        Err(why) => return operator_page(&operator, StatusCode::BAD_REQUEST, &form_html(&operator, Some(&why))),
    };
    console.sessions().save_search(&operator.session_id, search.clone());
    show(&console, &operator, &search, 0).await
}

pub async fn next_page(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    let form = match posted_form(&headers, &body, Some(&operator.session)) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let Some(search) = operator.session.search.clone() else {
        return operator_page(&operator, StatusCode::BAD_REQUEST, &form_html(&operator, Some("请先查询。")));
    };
    let Ok(after_seq) = form.get("after_seq").parse::<u64>() else {
        return operator_page(
            &operator,
            StatusCode::BAD_REQUEST,
            &form_html(&operator, Some("after_seq: 不是序号")),
        );
    };
    show(&console, &operator, &search, after_seq).await
}

/// A CSV cell: quoted when it holds a separator, and never read as a
/// formula by a spreadsheet.
fn cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn csv_line(r: &AuditRecord) -> String {
    let fields = [
        r.seq.to_string(),
        city_time(r.at_unix_millis),
        r.department.clone(),
        r.interface.clone(),
        r.purpose.clone(),
        decision(r).to_string(),
        r.reason.clone(),
        r.count.to_string(),
        r.subjects.join(" "),
        r.fields.join(" "),
        hex::encode(&r.hash),
    ];
    let mut line = fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

async fn collect_csv(console: &Console, operator: &Operator, search: &SavedSearch) -> Result<(String, bool), Refused> {
    let mut out = String::from("seq,time,department,interface,purpose,decision,reason,count,subject_pseudonyms,fields,hash\r\n");
    let (mut after, mut written) = (0u64, 0usize);
    loop {
        let page = console
            .settings()
            .gateway
            .search_audit(&operator.token, request(operator, search, after, CSV_PAGE))
            .await?;
        for record in &page.records {
            if written == MAX_CSV_RECORDS {
                return Ok((out, true));
            }
            out.push_str(&csv_line(record));
            written += 1;
        }
        if page.next_after_seq == 0 {
            return Ok((out, false));
        }
        after = page.next_after_seq;
    }
}

pub async fn export_csv(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    if let Err(page) = posted_form(&headers, &body, Some(&operator.session)) {
        return *page;
    }
    let Some(search) = operator.session.search.clone() else {
        return operator_page(
            &operator,
            StatusCode::BAD_REQUEST,
            &form_html(&operator, Some("请先查询，再导出。")),
        );
    };
    match collect_csv(&console, &operator, &search).await {
        Ok((text, cut)) => {
            tracing::info!(department = %operator.department, cut, "console audit search exported");
            respond::csv("audit-search.csv", text)
        }
        Err(refused) => operator_page(&operator, refused_status(&refused), &refused_block(&refused)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_quote_separators_and_defuse_formulas() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(cell("-1,2"), "\"'-1,2\"");
    }

    #[test]
    fn times_are_read_as_the_citys_and_bad_ones_name_their_field() {
        popbase_domain::clock::set_time_zone("Asia/Shanghai").expect("zone");
        // 2026-12-05 00:30 in Zibo is 2026-12-04 16:30 UTC.
        assert_eq!(city_millis("from", "2026-12-05T00:30"), Ok(1_796_401_800_000));
        assert_eq!(city_millis("from", ""), Ok(0));
        assert!(city_millis("to", "yesterday").is_err_and(|e| e.starts_with("to:")));
    }
}
