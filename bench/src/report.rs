//! What a run reports: per store, the phases (arm × load), the per-query differences of
//! `fetch-eventual` against `direct`, and the issue's targets; the plugin boundary cases; as a
//! table on stdout, a JSON document, and the markdown section `scripts/bench.sh` splices into
//! `docs/benchmarks.md`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::boundary::BoundaryCase;
use crate::dataset::{Dataset, Preparation};
use crate::generator::Arm;
use crate::machine::Machine;
use crate::stats::{Sample, Summary};

/// The rows of one store's table, in the order they were measured per arm.
#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<ReportRow>,
}

pub(crate) struct ReportRow {
    pub(crate) arm: Arm,
    pub(crate) load: String,
    pub(crate) summary: Summary,
    pub(crate) first_error: Option<String>,
}

/// `fetch-eventual` minus `direct` on identical queries, in milliseconds.
pub(crate) struct PairedRow {
    pub(crate) load: String,
    pub(crate) n_pairs: usize,
    pub(crate) median_ms: f64,
    pub(crate) p01_ms: f64,
    pub(crate) p99_ms: f64,
}

/// One of the issue's targets against what a run measured.
pub(crate) struct Target {
    pub(crate) target: String,
    pub(crate) measured: String,
    pub(crate) met: bool,
    pub(crate) value: Value,
}

impl Target {
    fn new(target: impl Into<String>, measured: String, met: bool, value: Value) -> Self {
        Self { target: target.into(), measured, met, value }
    }

    pub(crate) fn to_json(&self, store: &str) -> Value {
        let mut value = self.value.clone();
        value["store"] = json!(store);
        value["target"] = json!(self.target);
        value["measured"] = json!(self.measured);
        value["met"] = json!(self.met);
        value
    }
}

/// Everything measured over one store.
pub(crate) struct StoreReport {
    pub(crate) store: &'static str,
    pub(crate) dataset: Dataset,
    pub(crate) preparation: Preparation,
    pub(crate) details: Value,
    pub(crate) tenants: Vec<String>,
    pub(crate) report: Report,
    pub(crate) paired: Vec<PairedRow>,
    pub(crate) direct_best: f64,
    pub(crate) targets: Vec<Target>,
}

impl Report {
    pub(crate) fn add(&mut self, arm: Arm, load: &str, sample: Sample) -> Summary {
        let first_error = sample.first_error.clone();
        let summary = sample.summarize();
        self.rows.push(ReportRow {
            arm,
            load: load.to_owned(),
            summary: summary.clone(),
            first_error,
        });
        summary
    }

    /// The first row of `arm` whose load starts with `load_prefix` and ends with `load_suffix`.
    fn find(&self, arm: Arm, load_prefix: &str, load_suffix: &str) -> Option<&Summary> {
        self.rows
            .iter()
            .find(|row| {
                row.arm == arm
                    && row.load.starts_with(load_prefix)
                    && row.load.ends_with(load_suffix)
            })
            .map(|row| &row.summary)
    }

    fn best(&self, arm: Arm) -> Option<&Summary> {
        self.rows
            .iter()
            .filter(|row| row.arm == arm && row.load.starts_with("closed"))
            .map(|row| &row.summary)
            .max_by(|left, right| left.throughput.total_cmp(&right.throughput))
    }

    /// The issue's targets for the runtime over one store.
    pub(crate) fn targets(&self, open_fraction: f64) -> Vec<Target> {
        let mut targets = Vec::new();
        let open_load = format!("({:.0}%)", open_fraction * 100.0);
        let direct_open = self.find(Arm::Direct, "open", &open_load);
        for arm in [Arm::FetchEventual, Arm::FetchStrict] {
            if let (Some(direct), Some(fetch)) = (direct_open, self.find(arm, "open", &open_load)) {
                let added_p50 = fetch.p50_ms - direct.p50_ms;
                let added_p99 = fetch.p99_ms - direct.p99_ms;
                let dropped = if fetch.n_dropped > 0 {
                    format!(", {} requests not sent in time (dropped)", fetch.n_dropped)
                } else {
                    String::new()
                };
                targets.push(Target::new(
                    format!(
                        "{} adds ≤ 0.3 ms p50 over direct at {:.0}% of direct's max throughput",
                        arm.name(),
                        open_fraction * 100.0
                    ),
                    format!(
                        "{} ({} against {}{dropped})",
                        signed_ms(added_p50),
                        ms(fetch.p50_ms),
                        ms(direct.p50_ms)
                    ),
                    added_p50 <= 0.3 && fetch.n_dropped == 0,
                    json!({ "added_ms": added_p50 }),
                ));
                targets.push(Target::new(
                    format!("{} adds ≤ 1 ms p99 over direct at that rate", arm.name()),
                    format!(
                        "{} ({} against {}{dropped})",
                        signed_ms(added_p99),
                        ms(fetch.p99_ms),
                        ms(direct.p99_ms)
                    ),
                    added_p99 <= 1.0 && fetch.n_dropped == 0,
                    json!({ "added_ms": added_p99 }),
                ));
            }
        }
        if let (Some(direct), Some(reuse)) = (
            self.find(Arm::Direct, "closed 1", "closed 1"),
            self.find(Arm::ReuseStrict, "closed 1", "closed 1"),
        ) {
            targets.push(Target::new(
                "strict reuse hit faster than the direct query (p50, 1 in flight)",
                format!("{} against {}", ms(reuse.p50_ms), ms(direct.p50_ms)),
                reuse.p50_ms < direct.p50_ms,
                json!({ "reuse_ms": reuse.p50_ms, "direct_ms": direct.p50_ms }),
            ));
        }
        if let Some(reuse) = self.best(Arm::ReuseStrict) {
            targets.push(Target::new(
                "strict reuse hit ≥ 20,000 req/s over HTTP on loopback",
                format!(
                    "{}/s ({:.1}% of the target)",
                    count(reuse.throughput),
                    reuse.throughput / 200.0
                ),
                reuse.throughput >= 20_000.0,
                json!({ "per_s": reuse.throughput }),
            ));
        }
        if let Some(events) = self.best(Arm::ChangeEvent) {
            targets.push(Target::new(
                "change events ≥ 5,000 durable ACKs/s",
                format!(
                    "{}/s ({:.1}% of the target)",
                    count(events.throughput),
                    events.throughput / 50.0
                ),
                events.throughput >= 5_000.0,
                json!({ "per_s": events.throughput }),
            ));
            targets.push(Target::new(
                "change event ACK p99 < 5 ms (at the best-throughput concurrency)",
                ms(events.p99_ms),
                events.p99_ms < 5.0,
                json!({ "p99_ms": events.p99_ms }),
            ));
        }
        targets
    }
}

/// The plugin boundary's target.
pub(crate) fn boundary_target(cases: &[BoundaryCase]) -> Option<Target> {
    let case = cases.first()?;
    Some(Target::new(
        "plugin boundary adds ≤ 5 µs per call over in-process (search, 768 d, top 10, p50)",
        format!("{:+.2} µs", case.added_p50_us()),
        case.added_p50_us() <= 5.0,
        json!({ "added_us": case.added_p50_us() }),
    ))
}

impl StoreReport {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "store": self.store,
            "rows": self.dataset.n_rows,
            "dimension": self.dataset.dimension,
            "tenants": self.tenants,
            "prepared": {
                "reused": self.preparation.reused,
                "load_secs": self.preparation.load_secs,
                "index_secs": self.preparation.index_secs,
                "detail": self.preparation.detail,
            },
            "details": self.details,
            "direct_best_closed_loop_per_s": self.direct_best,
            "phases": self.report.rows.iter().map(|row| {
                let mut value = row.summary.to_json();
                value["arm"] = json!(row.arm.name());
                value["load"] = json!(row.load);
                if let Some(error) = &row.first_error {
                    value["first_error"] = json!(error);
                }
                value
            }).collect::<Vec<Value>>(),
            "paired_fetch_eventual_minus_direct": self.paired.iter().map(|row| json!({
                "load": row.load, "pairs": row.n_pairs, "median_ms": row.median_ms,
                "p1_ms": row.p01_ms, "p99_ms": row.p99_ms,
            })).collect::<Vec<Value>>(),
            "targets": self.targets.iter().map(|target| target.to_json(self.store)).collect::<Vec<Value>>(),
        })
    }

    pub(crate) fn print(&self) {
        println!();
        println!(
            "== {} ({} rows x {} d, tenants {})",
            self.store,
            self.dataset.n_rows,
            self.dataset.dimension,
            self.tenants.join(",")
        );
        println!(
            "{:<15} {:<18} {:>7} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>6} {:>7}",
            "arm",
            "load",
            "n",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9",
            "kyro us/r",
            "gen us/r",
            "failed",
            "dropped"
        );
        for row in &self.report.rows {
            let summary = &row.summary;
            println!(
                "{:<15} {:<18} {:>7} {:>9.1} {:>8.3} {:>8.3} {:>8.3} {:>10.1} {:>10.1} {:>6} {:>7}",
                row.arm.name(),
                row.load,
                summary.n_requests,
                summary.throughput,
                summary.p50_ms,
                summary.p99_ms,
                summary.p999_ms,
                summary.server_cpu_us_per_request,
                summary.client_cpu_us_per_request,
                summary.n_errors + summary.n_wrong_path,
                summary.n_dropped,
            );
            if let Some(error) = &row.first_error {
                println!("    first error: {error}");
            }
        }
        if !self.paired.is_empty() {
            println!();
            println!("paired on identical queries: fetch-eventual minus direct, per query");
            for row in &self.paired {
                println!(
                    "{:<18} pairs {:>6}  median {:+8.3} ms  p1 {:+8.3} ms  p99 {:+8.3} ms",
                    row.load, row.n_pairs, row.median_ms, row.p01_ms, row.p99_ms
                );
            }
        }
        println!();
        for target in &self.targets {
            let met = if target.met { "met   " } else { "MISSED" };
            println!("{met} {}: {}", target.target, target.measured);
        }
    }

    fn markdown(&self, out: &mut String) {
        let tenants = self.tenants.join(", ");
        let prepared = if self.preparation.reused {
            "reused from an earlier run".to_owned()
        } else {
            format!(
                "built by this run: loaded in {:.1} s, index built in {:.1} s",
                self.preparation.load_secs, self.preparation.index_secs
            )
        };
        let _ = writeln!(
            out,
            "#### {}: {} × {}\n\nStore: {}; {prepared}.{}\nQueries cycle through {tenants}.\n",
            self.store,
            count(self.dataset.n_rows as f64),
            self.dataset.dimension,
            self.preparation.detail,
            details_sentence(&self.details),
        );
        out.push_str(
            "| arm | load | requests | req/s | p50 ms | p99 ms | p99.9 ms | kyro CPU µs/req | generator CPU µs/req | failed | dropped |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for row in &self.report.rows {
            let summary = &row.summary;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {} | {} |",
                row.arm.name(),
                row.load,
                summary.n_requests,
                rate(summary.throughput),
                number_ms(summary.p50_ms),
                number_ms(summary.p99_ms),
                number_ms(summary.p999_ms),
                summary.server_cpu_us_per_request,
                summary.client_cpu_us_per_request,
                summary.n_errors + summary.n_wrong_path,
                summary.n_dropped,
            );
        }
        if !self.paired.is_empty() {
            out.push_str(
                "\n`fetch-eventual` minus `direct` on identical queries (per-query differences):\n\n\
                 | load | pairs | median | p1 | p99 |\n|---|---|---|---|---|\n",
            );
            for row in &self.paired {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    row.load,
                    row.n_pairs,
                    signed_ms(row.median_ms),
                    signed_ms(row.p01_ms),
                    signed_ms(row.p99_ms)
                );
            }
        }
        out.push('\n');
    }
}

fn details_sentence(details: &Value) -> String {
    match (details.get("segments"), details.get("points"), details.get("indexed_vectors")) {
        (Some(segments), Some(points), Some(indexed)) => format!(
            " The direct arm's copy holds {points} points in {segments} segment(s), {indexed} of them in an HNSW index."
        ),
        _ => String::new(),
    }
}

/// The generated section of `docs/benchmarks.md`.
pub(crate) fn markdown(
    machine: &Machine,
    settings: &str,
    stores: &[StoreReport],
    boundary: &[BoundaryCase],
) -> String {
    let mut out = String::new();
    let dirty = if machine.revision.ends_with("-dirty") {
        " (the working tree had uncommitted changes)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "Run on {} (UTC), binaries built from `{}`{dirty}; settings: {settings}.\n",
        machine.date_utc, machine.revision
    );
    out.push_str(&machine.to_markdown());
    out.push('\n');
    for store in stores {
        store.markdown(&mut out);
    }
    if !boundary.is_empty() {
        out.push_str(
            "#### Plugin boundary: the reference connector loaded as a cdylib against linked in-process\n\n\
             | case | samples per side | in-process p50 | loaded p50 | added p50 | in-process p99 | loaded p99 | added p99 |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for case in boundary {
            let per = if case.calls_per_sample > 1 {
                format!(" (mean of {} calls each)", case.calls_per_sample)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {}{per} | {:.3} µs | {:.3} µs | {:+.3} µs | {:.3} µs | {:.3} µs | {:+.3} µs |",
                case.name,
                case.n_samples,
                case.in_process[0],
                case.loaded[0],
                case.added_p50_us(),
                case.in_process[1],
                case.loaded[1],
                case.added_p99_us(),
            );
        }
        out.push('\n');
    }
    out.push_str("#### The issue's targets against this run\n\n| target | store | measured | verdict |\n|---|---|---|---|\n");
    for store in stores {
        for target in &store.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                target.target,
                store.store,
                target.measured,
                if target.met { "met" } else { "**missed**" }
            );
        }
    }
    if let Some(target) = boundary_target(boundary) {
        let _ = writeln!(
            out,
            "| {} | reference fixture | {} | {} |",
            target.target,
            target.measured,
            if target.met { "met" } else { "**missed**" }
        );
    }
    out
}

/// Milliseconds with a unit, precision by magnitude.
fn ms(value: f64) -> String {
    format!("{} ms", number_ms(value))
}

fn signed_ms(value: f64) -> String {
    let text = ms(value.abs());
    if value < 0.0 { format!("−{text}") } else { format!("+{text}") }
}

fn number_ms(value: f64) -> String {
    if !value.is_finite() {
        "–".to_owned()
    } else if value.abs() < 10.0 {
        format!("{value:.3}")
    } else if value.abs() < 100.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

fn rate(value: f64) -> String {
    if value < 100.0 { format!("{value:.1}") } else { format!("{value:.0}") }
}

/// An integer with thousands separators.
fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (idx, digit) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
