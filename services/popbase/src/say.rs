//! Messages for the person at the terminal: generation progress, the demo's
//! banner, a fatal error. Plain text, or, under `--log-format json`, one
//! JSON object per line shaped like the log lines (timestamp, level,
//! target, fields.message), so a collector reading stderr never meets a
//! line that is not JSON.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Chooses JSON for every later message (set once the log format is known).
pub fn use_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// The line `text` is written as at `level`.
fn line(level: &str, text: &str) -> String {
    if JSON.load(Ordering::Relaxed) {
        serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level,
            "target": "popbase",
            "fields": { "message": text },
        })
        .to_string()
    } else {
        text.to_string()
    }
}

/// Writes a command's result to stdout. A reader that has seen enough
/// (`popbase stats | grep -q …`) may close the pipe: that ends the output,
/// it is not an error (println! would panic on it).
pub fn out(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

pub fn info(text: &str) {
    eprintln!("{}", line("INFO", text));
}

pub fn error(text: &str) {
    eprintln!("{}", line("ERROR", text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_parse_and_keep_the_message() {
        use_json(true);
        let text = line("INFO", "two\nlines \"quoted\"");
        use_json(false);
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        assert_eq!(parsed["fields"]["message"], "two\nlines \"quoted\"");
        assert_eq!(parsed["level"], "INFO");
        assert_eq!(line("INFO", "plain"), "plain");
    }
}
