//! Usage: calls per day (city days) for the week, the uninsured-list and
//! enrollment volumes on their own, refusals by reason, quota use today, and
//! the anomaly flags the alert rules raise (k8s/monitoring/prometheusrule.yaml)
//! worked out from the same counts, so an operator without Prometheus sees
//! them too. Two gateway calls: `Audit.UsageStatistics` and
//! `SharingCatalogue.GetCatalogue` (for the quotas).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use chrono::Datelike as _;
use http::{HeaderMap, StatusCode};
use popbase_proto::gateway::Usage;

use super::chart;
use super::operator::{WATCHED, daily_bars, operator_page, week_usage};
use super::{refused_block, refused_status};
use crate::Console;
use crate::html::{esc, table};

/// PopbaseRefusalRate: more than this share of a department's calls refused.
const REFUSAL_SHARE: f64 = 0.2;
/// PopbaseDepartmentAnomaly: more than this many times its usual volume.
const VOLUME_FACTOR: u64 = 10;
/// PopbaseQuotaNearExhaustion: this share of the daily quota used.
const QUOTA_SHARE: f64 = 0.9;
/// Below these counts a share says nothing.
const MIN_CALLS_FOR_SHARE: u64 = 20;
const MIN_CALLS_FOR_VOLUME: u64 = 100;

/// One department's calls: today's allowed and refused, and the other days'.
#[derive(Default, Debug, PartialEq)]
struct DepartmentDay {
    allowed: u64,
    denied: u64,
    earlier: u64,
    earlier_days: u64,
}

fn by_department(today: (i32, i32, i32), days_in_window: u64, usage: &[Usage]) -> BTreeMap<String, DepartmentDay> {
    let mut out: BTreeMap<String, DepartmentDay> = BTreeMap::new();
    for row in usage.iter().filter(|u| !u.department.is_empty()) {
        let day = row.day.as_ref().map_or((0, 0, 0), |d| (d.year, d.month, d.day));
        let entry = out.entry(row.department.clone()).or_default();
        if day == today {
            entry.allowed += row.allowed;
            entry.denied += row.denied;
        } else {
            entry.earlier += row.allowed + row.denied;
        }
        entry.earlier_days = days_in_window.saturating_sub(1);
    }
    out
}

/// The flags the alert rules would raise, from today's counts against the
/// week's and the catalogue's daily quotas (calls stand in for quota units).
fn anomalies(days: &BTreeMap<String, DepartmentDay>, quotas: &BTreeMap<String, u64>) -> Vec<String> {
    let mut flags = Vec::new();
    for (department, d) in days {
        let today = d.allowed + d.denied;
        if today >= MIN_CALLS_FOR_SHARE && d.denied as f64 > REFUSAL_SHARE * today as f64 {
            flags.push(format!(
                "{department}：今日调用被拒比例 {:.0}%（PopbaseRefusalRate）",
                100.0 * d.denied as f64 / today as f64
            ));
        }
        let usual = d.earlier.div_ceil(d.earlier_days.max(1)).max(1);
        if today >= MIN_CALLS_FOR_VOLUME && today > VOLUME_FACTOR * usual {
            flags.push(format!(
                "{department}：今日调用量为近日日均的 {} 倍（PopbaseDepartmentAnomaly）",
                today / usual
            ));
        }
        if let Some(quota) = quotas.get(department).filter(|q| **q > 0)
            && today as f64 >= QUOTA_SHARE * *quota as f64
        {
            flags.push(format!(
                "{department}：已用今日配额 {:.0}%（PopbaseQuotaNearExhaustion）",
                100.0 * today as f64 / *quota as f64
            ));
        }
    }
    flags
}

/// Today's calls of `interface` per hour of the city's day (refused ones
/// are not split out per hour: the bars are all calls).
fn hourly_bars(today: (i32, i32, i32), usage: &[Usage], interface: &str) -> Vec<chart::Bar> {
    let mut hours = [0u64; 24];
    for row in usage.iter().filter(|u| u.interface == interface) {
        let day = row.day.as_ref().map_or((0, 0, 0), |d| (d.year, d.month, d.day));
        if day == today {
            for (hour, n) in row.by_hour.iter().enumerate().take(24) {
                hours[hour] += n;
            }
        }
    }
    hours
        .iter()
        .enumerate()
        .map(|(hour, n)| chart::Bar {
            label: format!("{hour:02}"),
            allowed: *n,
            denied: 0,
        })
        .collect()
}

pub async fn show(State(console): State<Console>, headers: HeaderMap) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    let (from, usage) = match week_usage(&console, &operator).await {
        Ok(week) => week,
        Err(refused) => return operator_page(&operator, "调用统计", refused_status(&refused), &refused_block(&refused)),
    };
    let quotas: BTreeMap<String, u64> = match console.settings().gateway.get_catalogue(&operator.token, &operator.purpose).await {
        Ok(doc) => doc.departments.into_iter().map(|d| (d.id, d.daily_quota)).collect(),
        Err(_) => BTreeMap::new(),
    };
    let today = popbase_domain::clock::today();
    let days_in_window = (today - from).num_days().unsigned_abs() + 1;
    let days = by_department((today.year(), today.month() as i32, today.day() as i32), days_in_window, &usage);

    let mut body = String::from("<p>近 7 日（按本市日期）各部门、各接口的调用与拒绝次数。</p>");
    let flags = anomalies(&days, &quotas);
    if flags.is_empty() {
        body.push_str("<p class=\"ok\" id=\"no-anomalies\">今日无异常标记。</p>");
    } else {
        body.push_str("<div class=\"notice\" id=\"anomalies\"><p>异常标记（与告警规则相同的判据）：</p><ul>");
        for flag in &flags {
            body.push_str(&format!("<li>{}</li>", esc(flag)));
        }
        body.push_str("</ul></div>");
    }
    body.push_str(&chart::stacked(
        "usage-chart",
        "每日调用（蓝：允许，红：拒绝）",
        &daily_bars(from, &usage, |_| true),
    ));
    let today_key = (today.year(), today.month() as i32, today.day() as i32);
    for (interface, name) in WATCHED {
        body.push_str(&format!("<h2>{}（{}）</h2>", esc(name), esc(interface)));
        let bars = daily_bars(from, &usage, |u| u.interface == interface);
        body.push_str(&chart::stacked(&format!("chart-{interface}"), &format!("{name}：近 7 日"), &bars));
        let hours = hourly_bars(today_key, &usage, interface);
        body.push_str(&chart::stacked(
            &format!("chart-{interface}-today"),
            &format!("{name}：今日各小时"),
            &hours,
        ));
    }

    let mut totals: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let mut reasons: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for row in &usage {
        let entry = totals.entry((row.department.clone(), row.interface.clone())).or_default();
        entry.0 += row.allowed;
        entry.1 += row.denied;
        for (reason, n) in &row.denied_by_reason {
            *reasons
                .entry((row.department.clone(), row.interface.clone(), reason.clone()))
                .or_default() += n;
        }
    }
    let rows: Vec<Vec<String>> = totals
        .into_iter()
        .map(|((department, interface), (allowed, denied))| {
            vec![esc(&department), esc(&interface), allowed.to_string(), denied.to_string()]
        })
        .collect();
    body.push_str("<h2>按部门与接口</h2>");
    body.push_str(&table("usage-table", &["部门", "接口", "允许", "拒绝"], &rows));
    let rows: Vec<Vec<String>> = reasons
        .into_iter()
        .map(|((department, interface, reason), n)| vec![esc(&department), esc(&interface), esc(&reason), n.to_string()])
        .collect();
    body.push_str("<h2>拒绝原因</h2>");
    body.push_str(&table("refusal-reasons", &["部门", "接口", "原因", "次数"], &rows));
    let rows: Vec<Vec<String>> = quotas
        .iter()
        .map(|(department, quota)| {
            let used = days.get(department).map_or(0, |d| d.allowed + d.denied);
            let share = if *quota == 0 { 0.0 } else { 100.0 * used as f64 / *quota as f64 };
            vec![esc(department), used.to_string(), quota.to_string(), format!("{share:.1}%")]
        })
        .collect();
    body.push_str("<h2>今日配额使用（按调用次数估算）</h2>");
    body.push_str(&table("quota-use", &["部门", "今日调用", "每日配额", "已用"], &rows));
    operator_page(&operator, "调用统计", StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::common::Date;

    fn row(department: &str, day: i32, allowed: u64, denied: u64) -> Usage {
        Usage {
            department: department.into(),
            interface: "PersonSummary".into(),
            day: Some(Date {
                year: 2026,
                month: 12,
                day,
            }),
            allowed,
            denied,
            denied_by_reason: Default::default(),
            by_hour: Vec::new(),
        }
    }

    #[test]
    fn hours_add_up_today_only() {
        let mut today = row("hrss", 7, 5, 1);
        today.interface = "InsuranceGap".into();
        today.by_hour = (0..24).map(|h| if h == 9 { 6 } else { 0 }).collect();
        let mut yesterday = today.clone();
        yesterday.day = Some(Date {
            year: 2026,
            month: 12,
            day: 6,
        });
        let bars = hourly_bars((2026, 12, 7), &[today, yesterday], "InsuranceGap");
        assert_eq!(bars.len(), 24);
        assert_eq!(bars[9].allowed, 6);
        assert_eq!(bars.iter().map(|b| b.allowed).sum::<u64>(), 6);
    }

    #[test]
    fn flags_refusal_share_volume_and_quota_as_the_alerts_do() {
        let usage = vec![
            // hrss: 10 a day, then 500 today: a volume anomaly.
            row("hrss", 1, 10, 0),
            row("hrss", 2, 10, 0),
            row("hrss", 3, 10, 0),
            row("hrss", 4, 10, 0),
            row("hrss", 5, 10, 0),
            row("hrss", 6, 10, 0),
            row("hrss", 7, 500, 0),
            // health: 40 % refused today.
            row("health", 7, 30, 20),
            // education: near its quota, steady volume.
            row("education", 6, 95, 0),
            row("education", 7, 95, 0),
            // housing: few calls, one refused: too few to say anything.
            row("housing", 7, 3, 2),
        ];
        let days = by_department((2026, 12, 7), 7, &usage);
        assert_eq!(
            days["hrss"],
            DepartmentDay {
                allowed: 500,
                denied: 0,
                earlier: 60,
                earlier_days: 6
            }
        );
        let quotas = BTreeMap::from([("education".to_string(), 100), ("hrss".to_string(), 100_000)]);
        let flags = anomalies(&days, &quotas);
        assert_eq!(flags.len(), 3, "{flags:?}");
        assert!(
            flags
                .iter()
                .any(|f| f.starts_with("hrss") && f.contains("PopbaseDepartmentAnomaly")),
            "{flags:?}"
        );
        assert!(flags.iter().any(|f| f.starts_with("health") && f.contains("40%")), "{flags:?}");
        assert!(flags.iter().any(|f| f.starts_with("education") && f.contains("95%")), "{flags:?}");
    }
}
