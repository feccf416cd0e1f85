//! Bar charts as inline SVG, drawn on the server: no script, so the CSP
//! can forbid scripts. Colours come from the stylesheet's classes.

use std::fmt::Write as _;

use crate::html::esc;

/// One bar: a label under it, the allowed and denied parts stacked.
pub struct Bar {
    pub label: String,
    pub allowed: u64,
    pub denied: u64,
}

const WIDTH: u32 = 640;
const HEIGHT: u32 = 220;
const TOP: u32 = 20;
const BOTTOM: u32 = 40;
const LEFT: u32 = 50;

/// A stacked bar chart titled `title` (for screen readers too).
pub fn stacked(id: &str, title: &str, bars: &[Bar]) -> String {
    let most = bars.iter().map(|b| b.allowed + b.denied).max().unwrap_or(0).max(1);
    let plot_h = f64::from(HEIGHT - TOP - BOTTOM);
    let slot = f64::from(WIDTH - LEFT - 10) / bars.len().max(1) as f64;
    let bar_w = (slot * 0.6).max(2.0);
    let mut out = format!(
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" \
         aria-label=\"{t}\"><title>{t}</title>",
        t = esc(title)
    );
    let base = f64::from(HEIGHT - BOTTOM);
    let _ = write!(
        out,
        "<text x=\"4\" y=\"{}\">{most}</text><text x=\"4\" y=\"{base}\">0</text>",
        TOP + 4
    );
    for (i, bar) in bars.iter().enumerate() {
        let x = f64::from(LEFT) + slot * i as f64 + (slot - bar_w) / 2.0;
        let allowed_h = plot_h * bar.allowed as f64 / most as f64;
        let denied_h = plot_h * bar.denied as f64 / most as f64;
        let _ = write!(
            out,
            "<rect class=\"allowed\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{allowed_h:.1}\"><title>{} 允许 {}</title></rect>",
            base - allowed_h,
            esc(&bar.label),
            bar.allowed
        );
        let _ = write!(
            out,
            "<rect class=\"denied\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{denied_h:.1}\"><title>{} 拒绝 {}</title></rect>",
            base - allowed_h - denied_h,
            esc(&bar.label),
            bar.denied
        );
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + bar_w / 2.0,
            HEIGHT - BOTTOM + 16,
            esc(&bar.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let bars = [
            Bar {
                label: "12-01".into(),
                allowed: 30,
                denied: 10,
            },
            Bar {
                label: "<x>".into(),
                allowed: 0,
                denied: 0,
            },
        ];
        let svg = stacked("c", "调用", &bars);
        assert!(svg.contains("height=\"120.0\""), "30 of 40 over 160 px: {svg}");
        assert!(svg.contains("&lt;x&gt;"));
        assert!(!svg.contains("<x>"));
        assert!(stacked("e", "空", &[]).starts_with("<svg"));
    }
}
