//! What the binary writes for the person or the log collector reading it:
//! under `--log-format json` every line of stderr is one JSON object (logs,
//! progress and a fatal error alike); in text mode, no escape codes when
//! stderr is not a terminal; a failing command exits non-zero with one line.

mod support;

use std::process::Output;

use support::popbase;

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().map(str::to_string).collect()
}

#[test]
fn json_mode_writes_only_json_and_text_mode_no_escape_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = popbase(&dir.path().join("json"), &["--log-format", "json", "gen", "--persons", "300"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let lines = stderr_lines(&generated);
    assert!(lines.len() >= 3, "logs and progress: {lines:?}");
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("city written to")), "progress is a JSON line too");

    let missing = dir.path().join("no-ledger");
    let failed = popbase(
        dir.path(),
        &[
            "--log-format",
            "json",
            "audit",
            "verify",
            "--store",
            missing.to_str().expect("utf8"),
            "--no-head",
        ],
    );
    assert!(!failed.status.success());
    let lines = stderr_lines(&failed);
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    let error: serde_json::Value = serde_json::from_str(&lines[0]).expect("a JSON error line");
    assert_eq!(error["level"], "ERROR");
    assert!(
        error["fields"]["message"].as_str().is_some_and(|m| m.contains("no ledger store")),
        "{error}"
    );

    let text = popbase(&dir.path().join("text"), &["gen", "--persons", "300"]);
    assert!(text.status.success());
    assert!(
        !String::from_utf8_lossy(&text.stderr).contains('\u{1b}'),
        "no ANSI escape codes off a terminal"
    );
    let unknown = popbase(&dir.path().join("text"), &["token", "--department", "nobody"]);
    assert!(!unknown.status.success());
    assert_eq!(stderr_lines(&unknown).len(), 1, "{}", String::from_utf8_lossy(&unknown.stderr));
}
