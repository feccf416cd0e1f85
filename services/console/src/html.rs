//! Server-rendered pages: escaping and the one layout every page uses
//! (zh-CN, mobile-friendly, one stylesheet, no inline script or style, so
//! the Content-Security-Policy can forbid both).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// `text` escaped for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A time as the city reads it (its own offset, never UTC).
pub fn city_time(unix_millis: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(unix_millis) {
        Some(at) => at
            .with_timezone(&popbase_domain::clock::city_offset())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => "—".into(),
    }
}

/// Which navigation a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Not signed in.
    None,
    Operator,
    Resident,
}

/// A whole page: `title` (plain text) and `body` (already escaped HTML).
/// `csrf` is the session's form token, for the sign-out form.
pub fn page(title: &str, nav: Nav, csrf: Option<&str>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · 人口基础信息库</title><link rel=\"stylesheet\" href=\"/static/console.css\"></head><body>\
         <header><span class=\"brand\">人口基础信息库</span><nav>",
        esc(title)
    );
    let links: &[(&str, &str)] = match nav {
        Nav::None => &[],
        Nav::Operator => &[
            ("/ops", "概览"),
            ("/ops/usage", "调用统计"),
            ("/ops/audit", "审计查询"),
            ("/ops/chain", "审计链"),
            ("/ops/catalogue", "共享目录"),
            ("/ops/health", "运行状况"),
        ],
        Nav::Resident => &[("/resident", "我的数据使用记录")],
    };
    for (href, label) in links {
        let _ = write!(out, "<a href=\"{href}\">{label}</a>");
    }
    if let Some(csrf) = csrf {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">退出</button></form>",
            esc(csrf)
        );
    }
    let _ = writeln!(out, "</nav></header><main><h1>{}</h1>{body}</main></body></html>", esc(title));
    out
}

/// A hidden form-token field.
pub fn csrf_field(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(csrf))
}

/// A table: header cells and rows of already escaped cells.
pub fn table(id: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("<div class=\"scroll\"><table id=\"{id}\"><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("淄博市"), "淄博市");
        let html = page("<script>", Nav::Operator, Some("tok\""), "<p>x</p>");
        assert!(html.contains("<h1>&lt;script&gt;</h1>"));
        assert!(html.contains("value=\"tok&quot;\""));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn times_are_the_citys() {
        popbase_domain::clock::set_time_zone("Asia/Shanghai").expect("zone");
        // 2026-12-04 16:30 UTC is 2026-12-05 00:30 in Zibo.
        assert_eq!(city_time(1_796_401_800_000), "2026-12-05 00:30:00");
    }
}
