//! Store and role health: each storage role's stores (keys, bytes, last
//! sequence), their backups and the newest one's age, from one
//! `Operations.PlatformHealth` call through the gate. A backup older than a
//! day is flagged, as the BackupStale alert does.

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use popbase_proto::gateway::PlatformHealthResponse;

use super::{refused_block, refused_status};
use crate::html::{self, Nav, city_time, esc, table};
use crate::{Console, respond};

/// A newest backup older than this is flagged.
const STALE_BACKUP_SECS: i64 = 26 * 3600;

fn age(now_secs: i64, then_secs: i64) -> String {
    let secs = (now_secs - then_secs).max(0);
    match secs {
        s if s < 3600 => format!("{} 分钟前", s / 60),
        s if s < 48 * 3600 => format!("{} 小时前", s / 3600),
        s => format!("{} 天前", s / 86_400),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn render(health: &PlatformHealthResponse) -> String {
    let now = health.at_unix_millis / 1000;
    let mut rows = Vec::new();
    let mut flags = Vec::new();
    for role in &health.roles {
        if !role.reachable {
            flags.push(format!("{} 无法连接（{}）", role.role, role.problem));
            rows.push(vec![
                esc(&role.role),
                "—".into(),
                "无法连接".into(),
                esc(&role.problem),
                "—".into(),
                "—".into(),
                "—".into(),
            ]);
            continue;
        }
        for store in &role.stores {
            let keys: u64 = store.tables.iter().map(|t| t.estimated_keys).sum();
            let bytes: u64 = store.tables.iter().map(|t| t.sst_bytes + t.memtable_bytes).sum();
            let newest = if store.newest_backup_unix_secs == 0 {
                flags.push(format!("{} 没有备份", store.store));
                "无".to_string()
            } else {
                if now - store.newest_backup_unix_secs > STALE_BACKUP_SECS {
                    flags.push(format!("{} 的最新备份已超过一天", store.store));
                }
                format!(
                    "{}（{}，{}）",
                    age(now, store.newest_backup_unix_secs),
                    city_time(store.newest_backup_unix_secs * 1000),
                    mib(store.newest_backup_bytes)
                )
            };
            rows.push(vec![
                esc(&role.role),
                esc(&store.store),
                "正常".into(),
                keys.to_string(),
                mib(bytes),
                store.last_seq.to_string(),
                format!("{} 份；最新 {newest}", store.backups),
            ]);
        }
    }
    let mut body = format!("<p>截至 {}。</p>", city_time(health.at_unix_millis));
    if flags.is_empty() {
        body.push_str("<p class=\"ok\" id=\"health-ok\">各角色均可连接，备份均在一天之内。</p>");
    } else {
        body.push_str("<div class=\"notice\" id=\"health-flags\"><ul>");
        for flag in &flags {
            body.push_str(&format!("<li>{}</li>", esc(flag)));
        }
        body.push_str("</ul></div>");
    }
    body.push_str(&table(
        "stores",
        &["角色", "存储", "状态", "键（估计）", "大小", "最新序号", "备份"],
        &rows,
    ));
    body
}

pub async fn show(State(console): State<Console>, headers: HeaderMap) -> Response {
    let operator = match console.operator(&headers) {
        Ok(o) => o,
        Err(page) => return *page,
    };
    let (status, body) = match console.settings().gateway.platform_health(&operator.token, &operator.purpose).await {
        Ok(health) => (StatusCode::OK, render(&health)),
        Err(refused) => (refused_status(&refused), refused_block(&refused)),
    };
    respond::html(status, html::page("运行状况", Nav::Operator, Some(&operator.session.csrf), &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::gateway::RoleHealth;
    use popbase_proto::ops::StoreStats;

    #[test]
    fn flags_unreachable_roles_and_stale_or_missing_backups() {
        let now = 1_800_000_000;
        let health = PlatformHealthResponse {
            at_unix_millis: now * 1000,
            roles: vec![
                RoleHealth {
                    role: "household".into(),
                    reachable: true,
                    problem: String::new(),
                    stores: vec![StoreStats {
                        store: "household".into(),
                        backups: 3,
                        newest_backup_unix_secs: now - 3 * 86_400,
                        ..Default::default()
                    }],
                },
                RoleHealth {
                    role: "feeds".into(),
                    reachable: false,
                    problem: "Unavailable".into(),
                    stores: vec![],
                },
            ],
        };
        let page = render(&health);
        assert!(page.contains("household 的最新备份已超过一天"), "{page}");
        assert!(page.contains("feeds 无法连接"), "{page}");
        assert!(page.contains("3 天前"), "{page}");
        assert!(!page.contains("health-ok"));
    }
}
