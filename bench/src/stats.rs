//! What one measured phase produced, summarized: latency percentiles, throughput and CPU time per
//! request of the runtime process and of the load generator.
//!
//! Latencies are kept exactly (every request's duration, sorted once), not in a bucketed
//! histogram: the phases are bounded in count, so the exact percentiles are cheap. It deliberately
//! does not interpolate between samples: p99.9 of 1,000 samples is the largest but one.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

/// The raw outcome of one phase.
pub(crate) struct Sample {
    /// Every successful request's latency, in microseconds.
    pub(crate) latencies_us: Vec<f64>,
    /// From the first request's start (or schedule) to the last response.
    pub(crate) elapsed: Duration,
    /// Requests that failed or answered with a status other than 200.
    pub(crate) n_errors: usize,
    /// Requests answered with 200 but not through the expected execution path.
    pub(crate) n_wrong_path: usize,
    /// Requests an open-loop phase could not send before its time limit.
    pub(crate) n_dropped: usize,
    /// utime + stime of the `kyro` process over the phase.
    pub(crate) server_cpu: Duration,
    /// utime + stime of this process over the phase.
    pub(crate) client_cpu: Duration,
    /// The first error, for the report.
    pub(crate) first_error: Option<String>,
    /// `(seq, latency in microseconds)` of each successful request, for pairing arms that sent
    /// the same queries; only meaningful within one phase.
    pub(crate) by_seq: Vec<(usize, f64)>,
}

/// For each `seq` both phases answered, `right - left` in milliseconds.
pub(crate) fn paired_differences(left: &Sample, right: &Sample) -> Vec<f64> {
    let mut left_by_seq: Vec<(usize, f64)> = left.by_seq.clone();
    left_by_seq.sort_by_key(|(seq, _)| *seq);
    let mut differences = Vec::new();
    for (seq, right_us) in &right.by_seq {
        if let Ok(idx) = left_by_seq.binary_search_by_key(seq, |(left_seq, _)| *left_seq) {
            differences.push((right_us - left_by_seq[idx].1) / 1000.0);
        }
    }
    differences
}

/// The fraction-quantile of `values` (sorted in place), NaN when empty.
pub(crate) fn quantile(values: &mut [f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * fraction).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The summary the table and the JSON file show.
#[derive(Clone)]
pub(crate) struct Summary {
    pub(crate) n_requests: usize,
    pub(crate) throughput: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) mean_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) server_cpu_us_per_request: f64,
    pub(crate) client_cpu_us_per_request: f64,
    pub(crate) n_errors: usize,
    pub(crate) n_wrong_path: usize,
    pub(crate) n_dropped: usize,
}

impl Sample {
    pub(crate) fn summarize(mut self) -> Summary {
        self.latencies_us.sort_by(f64::total_cmp);
        let n_requests = self.latencies_us.len();
        let percentile = |fraction: f64| -> f64 {
            if n_requests == 0 {
                return f64::NAN;
            }
            let rank = ((n_requests as f64) * fraction).ceil() as usize;
            self.latencies_us[rank.clamp(1, n_requests) - 1] / 1000.0
        };
        let per_request = |cpu: Duration| -> f64 {
            if n_requests == 0 { f64::NAN } else { cpu.as_secs_f64() * 1e6 / n_requests as f64 }
        };
        Summary {
            n_requests,
            throughput: n_requests as f64 / self.elapsed.as_secs_f64().max(1e-9),
            p50_ms: percentile(0.50),
            p99_ms: percentile(0.99),
            p999_ms: percentile(0.999),
            mean_ms: self.latencies_us.iter().sum::<f64>() / (n_requests.max(1) as f64) / 1000.0,
            max_ms: self.latencies_us.last().copied().unwrap_or(f64::NAN) / 1000.0,
            server_cpu_us_per_request: per_request(self.server_cpu),
            client_cpu_us_per_request: per_request(self.client_cpu),
            n_errors: self.n_errors,
            n_wrong_path: self.n_wrong_path,
            n_dropped: self.n_dropped,
        }
    }

    /// Adds another round of the same phase (same arm and load).
    pub(crate) fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        // Pair only the merged threads of one phase: sequence numbers restart in every phase.
        self.by_seq.extend(other.by_seq);
        self.elapsed += other.elapsed;
        self.n_errors += other.n_errors;
        self.n_wrong_path += other.n_wrong_path;
        self.n_dropped += other.n_dropped;
        self.server_cpu += other.server_cpu;
        self.client_cpu += other.client_cpu;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

impl Summary {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "requests": self.n_requests,
            "throughput_per_s": round(self.throughput),
            "p50_ms": round(self.p50_ms),
            "p99_ms": round(self.p99_ms),
            "p99_9_ms": round(self.p999_ms),
            "mean_ms": round(self.mean_ms),
            "max_ms": round(self.max_ms),
            "server_cpu_us_per_request": round(self.server_cpu_us_per_request),
            "loadgen_cpu_us_per_request": round(self.client_cpu_us_per_request),
            "errors": self.n_errors,
            "wrong_execution_path": self.n_wrong_path,
            "dropped": self.n_dropped,
        })
    }
}

/// Three decimals, so the JSON file stays readable; NaN becomes null.
fn round(value: f64) -> Value {
    if value.is_finite() { json!((value * 1000.0).round() / 1000.0) } else { Value::Null }
}

/// The clock ticks per second `/proc/<pid>/stat` counts in.
pub(crate) fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, from `/proc/<pid>/stat` (`self` for this process).
pub(crate) fn cpu_time(pid: &str, ticks_per_second: f64) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    // The command name is in parentheses and may contain spaces: count fields after it.
    let after_name = stat.rsplit_once(") ").map(|(_, rest)| rest).context("malformed stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); the first field after the name is field 3.
    let utime: f64 = fields.get(11).context("no utime")?.parse().context("bad utime")?;
    let stime: f64 = fields.get(12).context("no stime")?.parse().context("bad stime")?;
    Ok(Duration::from_secs_f64((utime + stime) / ticks_per_second))
}
