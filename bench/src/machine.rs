//! What the figures were measured on: cores, CPU model, memory, OS, toolchain, PostgreSQL, the
//! date, and the load average before and after the run (other work on the machine shows there).
//!
//! Everything is read from `/proc`, `/etc/os-release` and `rustc -V`; what cannot be read is
//! reported as `unknown` rather than failing the run.

use std::process::Command;

use serde_json::{Value, json};

/// The machine description of one run.
pub(crate) struct Machine {
    pub(crate) nproc: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory_gib: f64,
    pub(crate) os: String,
    pub(crate) rustc: String,
    /// `git describe --always --dirty` of the working directory: what the binaries were built from.
    pub(crate) revision: String,
    /// PostgreSQL server version, pgvector version, `shared_buffers`, when a store used it.
    pub(crate) postgres: Option<(String, String, String)>,
    pub(crate) date_utc: String,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
}

impl Machine {
    /// Reads everything but PostgreSQL and the load average after the run.
    pub(crate) fn read(started_at_unix: u64) -> Self {
        Self {
            nproc: std::thread::available_parallelism().map(usize::from).unwrap_or(0),
            cpu_model: cpu_model(),
            memory_gib: memory_gib(),
            os: os_name(),
            rustc: rustc_version(),
            revision: revision(),
            postgres: None,
            date_utc: utc_date(started_at_unix),
            load_before: load_average(),
            load_after: String::new(),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "nproc": self.nproc,
            "cpu_model": self.cpu_model,
            "memory_gib": (self.memory_gib * 10.0).round() / 10.0,
            "os": self.os,
            "rustc": self.rustc,
            "revision": self.revision,
            "postgres": self.postgres.as_ref().map(|(server, pgvector, shared_buffers)| json!({
                "server_version": server, "pgvector": pgvector, "shared_buffers": shared_buffers,
            })),
            "date_utc": self.date_utc,
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
        })
    }

    /// One paragraph for the generated section of `docs/benchmarks.md`.
    pub(crate) fn to_markdown(&self) -> String {
        let postgres = match &self.postgres {
            Some((server, pgvector, shared_buffers)) => format!(
                ", PostgreSQL {server} with pgvector {pgvector} (`shared_buffers` {shared_buffers}) on the same machine"
            ),
            None => String::new(),
        };
        format!(
            "Machine: `nproc` {}, CPU \"{}\", {:.1} GiB memory, {}, {}, release profile{postgres}.\n\
             Load average (1, 5, 15 min) before the run {}, after it {}; PostgreSQL, `kyro` and the \
             load generator all share these cores.\n",
            self.nproc,
            self.cpu_model,
            self.memory_gib,
            self.os,
            self.rustc,
            self.load_before,
            self.load_after,
        )
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn memory_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().find(|line| line.starts_with("MemTotal:")).and_then(|line| {
                line.split_whitespace().nth(1).and_then(|kib| kib.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0))
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("PRETTY_NAME="))
                .map(|name| name.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown OS".to_owned())
}

fn rustc_version() -> String {
    command_output("rustc", &["-V"]).unwrap_or_else(|| "rustc unknown".to_owned())
}

fn revision() -> String {
    command_output("git", &["describe", "--always", "--dirty", "--abbrev=7"])
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The trimmed stdout of a command that succeeded and printed something.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// The first three fields of `/proc/loadavg`.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `YYYY-MM-DD` in UTC (the civil-from-days algorithm; no time zone database needed).
pub(crate) fn utc_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
