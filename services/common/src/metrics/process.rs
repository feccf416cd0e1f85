//! The standard `process_*` metrics (the names every Prometheus client
//! library uses), read from `/proc/self` on each scrape: CPU, memory,
//! threads, file descriptors and start time. Nothing is reported where
//! `/proc` is missing.

use std::fmt::Write as _;

/// Clock ticks per second of `/proc/self/stat` times: 100 on every Linux
/// this runs on (USER_HZ is fixed by the kernel ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self` says of this process.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: f64,
    threads: u64,
    start_time_seconds: f64,
    virtual_bytes: u64,
    resident_bytes: u64,
    open_fds: u64,
    max_fds: u64,
}

/// Fields of `/proc/self/stat` after the command name (which may hold spaces).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map_or_else(Vec::new, |(_, rest)| rest.split_whitespace().collect())
}

fn read() -> Option<Figures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After ")": state(3) ppid ... utime(14) stime(15) ... num_threads(20) .. starttime(22) vsize(23).
    let fields = stat_fields(&stat);
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<u64>().ok()))?;
    let resident_kb = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status.lines().find_map(|l| {
            l.strip_prefix("VmRSS:")
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
    });
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        limits.lines().find_map(|l| {
            l.strip_prefix("Max open files")
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
    });
    Some(Figures {
        cpu_seconds: (field(14)? + field(15)?) as f64 / TICKS_PER_SECOND,
        threads: field(20)?,
        start_time_seconds: boot_time as f64 + field(22)? as f64 / TICKS_PER_SECOND,
        virtual_bytes: field(23)?,
        resident_bytes: resident_kb.unwrap_or(0) * 1024,
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        max_fds: max_fds.unwrap_or(0),
    })
}

pub(super) fn render(out: &mut String) {
    let Some(f) = read() else { return };
    let samples: [(&str, &str, &str, String); 7] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            f.cpu_seconds.to_string(),
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            f.resident_bytes.to_string(),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            f.virtual_bytes.to_string(),
        ),
        ("process_open_fds", "gauge", "Open file descriptors.", f.open_fds.to_string()),
        ("process_max_fds", "gauge", "Limit of open file descriptors.", f.max_fds.to_string()),
        ("process_threads", "gauge", "OS threads of the process.", f.threads.to_string()),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            f.start_time_seconds.to_string(),
        ),
    ];
    for (name, kind, help, value) in samples {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat = "4242 (tokio (x) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 1048576 256";
        let fields = stat_fields(stat);
        assert_eq!(fields[0], "S");
        assert_eq!(fields[14 - 3], "250");
        assert_eq!(fields[20 - 3], "7");
    }

    #[test]
    fn this_process_reports_itself() {
        let f = read().expect("/proc is there on Linux");
        assert!(f.threads >= 1 && f.open_fds >= 3 && f.max_fds >= f.open_fds, "{f:?}");
        assert!(f.resident_bytes > 0 && f.virtual_bytes >= f.resident_bytes, "{f:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs_f64();
        assert!(
            f.start_time_seconds <= now + 1.0 && f.start_time_seconds > now - 86_400.0 * 365.0,
            "{f:?}"
        );
        let mut out = String::new();
        render(&mut out);
        assert!(
            out.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "),
            "{out}"
        );
    }
}
