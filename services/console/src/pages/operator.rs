//! The operator's overview and audit-chain pages: each one call (or two)
//! of the gateway's Audit service, with the operator's token.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use chrono::{Days, NaiveDate};
use http::{HeaderMap, StatusCode};
use popbase_proto::gateway::{ChainHead, ChainVerification, Usage, UsageStatisticsRequest};

use super::chart::{self, Bar};
use super::{Operator, refused_block, refused_status};
use crate::html::{self, Nav, city_time, csrf_field, esc};
use crate::link::Refused;
use crate::{Console, respond};

/// Days the usage page covers.
const WEEK: u64 = 7;

/// The interfaces whose volumes the usage page charts on their own.
pub(super) const WATCHED: [(&str, &str); 2] = [("InsuranceGap", "医保未参保名单"), ("EnrollmentCheck", "入学信息核验")];

pub(super) fn operator_page(operator: &Operator, title: &str, status: StatusCode, body: &str) -> Response {
    respond::html(status, html::page(title, Nav::Operator, Some(&operator.session.csrf), body))
}

fn head_list(head: &ChainHead) -> String {
    format!(
        "<dl id=\"chain-head\"><dt>最新序号</dt><dd id=\"head-seq\">{}</dd><dt>哈希</dt><dd class=\"mono\" id=\"head-hash\">{}</dd>\
         <dt>写入时间</dt><dd>{}</dd></dl>",
        head.seq,
        hex::encode(&head.hash),
        if head.at_unix_millis == 0 {
            "—".into()
        } else {
            city_time(head.at_unix_millis)
        }
    )
}

/// The week's usage, oldest day first: `from`, `to` (city days).
pub(super) async fn week_usage(console: &Console, operator: &Operator) -> Result<(NaiveDate, Vec<Usage>), Refused> {
    let to = popbase_domain::clock::today();
    let from = to.checked_sub_days(Days::new(WEEK - 1)).unwrap_or(to);
    let request = UsageStatisticsRequest {
        purpose: operator.purpose.clone(),
        from: Some(from.into()),
        to: Some(to.into()),
        department: String::new(),
    };
    let usage = console.settings().gateway.usage(&operator.token, request).await?.usage;
    Ok((from, usage))
}

fn day_label(usage: &Usage) -> (i32, i32, i32) {
    usage.day.as_ref().map_or((0, 0, 0), |d| (d.year, d.month, d.day))
}

/// One bar per day of the week, of the rows `keep` selects.
pub(super) fn daily_bars(from: NaiveDate, usage: &[Usage], keep: impl Fn(&Usage) -> bool) -> Vec<Bar> {
    let mut days: BTreeMap<(i32, i32, i32), (u64, u64)> = BTreeMap::new();
    for offset in 0..WEEK {
        if let Some(day) = from.checked_add_days(Days::new(offset)) {
            use chrono::Datelike as _;
            days.insert((day.year(), day.month() as i32, day.day() as i32), (0, 0));
        }
    }
    for row in usage.iter().filter(|u| keep(u)) {
        let entry = days.entry(day_label(row)).or_default();
        entry.0 += row.allowed;
        entry.1 += row.denied;
    }
    days.into_iter()
        .map(|((_, m, d), (allowed, denied))| Bar {
            label: format!("{m:02}-{d:02}"),
            allowed,
            denied,
        })
        .collect()
}

pub async fn overview(State(console): State<Console>, headers: HeaderMap) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    let mut body = format!(
        "<p>已登录：部门 <strong id=\"department\">{}</strong>，用途 {}。本页每项数据都经网关鉴权并记入审计。</p>",
        esc(&operator.department),
        esc(&operator.purpose)
    );
    let mut status = StatusCode::OK;
    body.push_str("<h2>审计链头</h2>");
    match console.settings().gateway.chain_head(&operator.token, &operator.purpose).await {
        Ok(head) => body.push_str(&head_list(&head)),
        Err(refused) => body.push_str(&refused_block(&refused)),
    }
    body.push_str("<h2>近 7 日调用</h2>");
    match week_usage(&console, &operator).await {
        Ok((from, usage)) => {
            let (allowed, denied) = usage.iter().fold((0, 0), |(a, d), u| (a + u.allowed, d + u.denied));
            body.push_str(&format!(
                "<p>允许 <strong id=\"week-allowed\">{allowed}</strong> 次，拒绝 <strong id=\"week-denied\">{denied}</strong> 次。</p>"
            ));
            body.push_str(&chart::stacked(
                "week-chart",
                "近 7 日每日调用（蓝：允许，红：拒绝）",
                &daily_bars(from, &usage, |_| true),
            ));
        }
        Err(refused) => {
            status = refused_status(&refused);
            body.push_str(&refused_block(&refused));
        }
    }
    operator_page(&operator, "概览", status, &body)
}

fn verification_list(v: &ChainVerification) -> String {
    let outcome = if v.verified_at_unix_millis == 0 {
        "尚未校验".to_string()
    } else if v.broken_seq != 0 {
        format!(
            "<span class=\"error\" id=\"chain-broken\">第 {} 条记录未通过：{}</span>",
            v.broken_seq,
            esc(&v.broken_why)
        )
    } else if v.complete {
        "<span id=\"chain-ok\">完整，至链头</span>".to_string()
    } else {
        "已校验部分，再次校验继续".to_string()
    };
    let published = if v.published_heads.is_empty() {
        "—".to_string()
    } else {
        v.published_heads
            .iter()
            .map(|p| format!("<code>{}</code>", esc(p)))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    format!(
        "<dl id=\"verification\"><dt>已校验至</dt><dd id=\"verified-to\">{}</dd><dt>本次校验</dt><dd>{} – {}</dd>\
         <dt>结果</dt><dd>{outcome}</dd><dt>校验时间</dt><dd>{}</dd>\
         <dt>链头发布位置</dt><dd>{published}</dd><dt>链头签名公钥</dt><dd class=\"mono\">{}</dd></dl>",
        v.verified_to_seq,
        v.checked_from_seq,
        v.checked_to_seq,
        if v.verified_at_unix_millis == 0 {
            "—".into()
        } else {
            city_time(v.verified_at_unix_millis)
        },
        esc(&v.head_public_key_hex),
    )
}

/// The chain page: the head, the ledger's last check of the chain and a
/// "verify now" form (`run`: the check runs, through the gate, and is audited).
async fn chain_page(console: &Console, operator: &Operator, run: bool) -> Response {
    let gateway = &console.settings().gateway;
    let head = match gateway.chain_head(&operator.token, &operator.purpose).await {
        Ok(head) => head,
        Err(refused) => return operator_page(operator, "审计链", refused_status(&refused), &refused_block(&refused)),
    };
    let mut body = head_list(&head);
    body.push_str("<h2>链的校验</h2>");
    let mut status = StatusCode::OK;
    match gateway.verify_chain(&operator.token, &operator.purpose, run).await {
        Ok(v) => body.push_str(&verification_list(&v)),
        Err(refused) => {
            status = refused_status(&refused);
            body.push_str(&refused_block(&refused));
        }
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/ops/chain/verify\">{}<button type=\"submit\" id=\"verify-now\">立即校验</button></form>\
         <p>立即校验由账本从上次校验之处重算每条记录的哈希链（每次至多 100 万条）。完整的离线复核（导出清单、已发布链头）：\
         <code>popbase audit verify --head</code>。</p>",
        csrf_field(&operator.session.csrf)
    ));
    operator_page(operator, "审计链", status, &body)
}

pub async fn chain(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.operator(&headers) {
        Ok(operator) => chain_page(&console, &operator, false).await,
        Err(page) => *page,
    }
}

pub async fn verify_chain(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    if let Err(page) = super::posted_form(&headers, &body, Some(&operator.session)) {
        return *page;
    }
    chain_page(&console, &operator, true).await
}
