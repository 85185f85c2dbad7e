//! KyroDB's connector certification harness: one engine, run by the host before it registers a
//! store, by `kyro certify` in a plugin author's CI, and by [`certify_connector`] in an author's
//! own `cargo test`.
//!
//! A certification runs named checks with stable ids, grouped in suites (`scope.*`, `filter.*`,
//! `freshness.<mode>.*`, `bounds.*`, `ids.*`, `latency.*`, `redaction.*`, `unsupported.*`,
//! `abi.*`), over any [`Connector`] against its live store, inside a private space of randomly
//! named tenants and namespaces that is removed afterwards. Besides the hand-written checks, a
//! program of searches, fetches and writes is generated from a seed (printed in the report;
//! pass it back to reproduce) and every answer is compared with an oracle of the harness's own;
//! a failing request is shrunk to a minimal witness.
//!
//! Core suites always run; a mode's suite runs exactly when the connector declares that mode; a
//! check is `not_applicable` only for an undeclared capability. A check that could not run
//! makes the certification invalid, never green. Nothing is retried.
//!
//! What it deliberately does not do: load plugins or read configuration files (the host and
//! the CLI do that and hand in a [`Subject`]), or read the environment itself (secrets are
//! resolved through the SDK's `SecretSource`, as a connector resolves them).

pub mod attest;
mod checks;
mod conformance;
mod latency;
mod library;
mod report;
mod rng;
mod secrets;
mod space;

#[cfg(test)]
mod tests;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use kyro_connector_sdk::{Connector, Result};
use serde::Serialize;

pub use latency::OperationLatency;
pub use library::{OpenError, Opened, RawCall, capturing_host, certify_connector, certify_with};
pub use report::{
    CheckRecord, CheckStatus, CleanupRecord, LeftBehind, PluginIdentity, REPORT_SCHEMA_VERSION,
    Removed, Report, Space, Summary, Verdict, Witness,
};
pub use secrets::SecretSet;
pub use space::{Naming, ScopeName};

/// The version of the check suite; reports name it, and it changes whenever a check is added,
/// removed or made stricter.
pub const SUITE_VERSION: &str = "2.0.0";

/// What is certified: a connector and what the harness needs to probe it.
pub struct Subject<'a> {
    /// The connector, normally behind a `GuardedConnector` so hangs and panics are contained.
    pub connector: &'a dyn Connector,
    /// Sends an already encoded request through the connector's own decoder (the plugin boundary
    /// for a loaded plugin, `abi::dispatch_raw` in-process), for payloads the typed API refuses to
    /// build.
    pub raw_call: &'a dyn Fn(&[u8]) -> Result<Vec<u8>>,
    /// Who the connector is, for the report.
    pub plugin: PluginIdentity,
    /// The connector's configuration as it was opened with: its secrets are searched for in
    /// everything the run produces, and canary copies of it are opened for the redaction checks.
    pub config: &'a serde_json::Value,
    /// Opens another instance of the connector (behind a guard) with a configuration whose
    /// secrets were replaced by canaries; its log lines must reach `log_lines`.
    pub open_canary: &'a dyn Fn(&serde_json::Value) -> Result<Box<dyn Connector>>,
    /// Log lines the connector wrote through its `HostContext` during the run.
    pub log_lines: &'a Mutex<Vec<String>>,
}

/// How thoroughly to certify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    /// About sixty generated requests over a primary scope of at most 220 documents: seconds,
    /// for host startup and every CI run.
    Standard,
    /// Ten times the requests over up to 1100 documents in the primary scope, deeper filters:
    /// for plugin authors' CI before a release.
    Deep,
}

impl Depth {
    /// The depth's name in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Deep => "deep",
        }
    }
}

/// How a certification runs. There is no default: the call timeout is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How thoroughly.
    pub depth: Depth,
    /// The seed of the generated requests and documents; `None` picks one (the report names it).
    pub seed: Option<u64>,
    /// The timeout the connector's calls will be served with; latency budgets derive from it.
    pub call_timeout: Duration,
    /// Checks not started within this budget make the certification invalid; `None` for no
    /// limit (host startup sets one).
    pub budget: Option<Duration>,
}

/// The default time budget of host-startup certification, per store.
pub const DEFAULT_STARTUP_BUDGET: Duration = Duration::from_secs(10);

/// Runs every check against `subject` and returns the report. `on_check` sees each check's
/// record (already scrubbed of secrets) as soon as it finishes, for live output.
pub fn certify(
    subject: &Subject<'_>,
    options: Options,
    on_check: &mut dyn FnMut(&CheckRecord),
) -> Report {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let deadline = options.budget.map(|budget| started + budget);
    let seed = options.seed.unwrap_or_else(rng::fresh_u64);
    let mut run = checks::Run::new(subject, options, seed);
    let mut records = Vec::new();
    for check in checks::CATALOG {
        let check_started = Instant::now();
        let manifest = subject.connector.describe();
        let (status, follows_from) = match (check.applies)(&manifest) {
            Err(reason) => (CheckStatus::NotApplicable { reason }, None),
            Ok(()) if deadline.is_some_and(|deadline| Instant::now() > deadline) => (
                CheckStatus::Error {
                    reason: "the certification time budget ran out before this check started"
                        .to_owned(),
                },
                None,
            ),
            Ok(()) => match run.seeded() {
                Err(reason) if check.needs_data => (
                    CheckStatus::Error {
                        reason: format!("the private space could not be seeded: {reason}"),
                    },
                    Some(checks::SEED_CHECK),
                ),
                _ => run.run_check(check),
            },
        };
        let record = CheckRecord::new(
            check.id,
            check.suite(),
            check.description,
            status,
            follows_from,
            check_started.elapsed(),
        );
        let record = report::scrub_record(record, run.secrets());
        on_check(&record);
        records.push(record);
    }
    let cleanup_started = Instant::now();
    let mut cleanup = run.cleanup();
    cleanup.duration_ms = u64::try_from(cleanup_started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (documents_seeded, primary_scope_documents) = run.volume();
    let space = run.space();
    let max_top_k = subject.connector.describe().caps.max_top_k;
    let space = Space {
        naming: space.naming,
        naming_reason: space.naming_reason,
        scopes: space.describe(),
        documents_seeded,
        primary_scope_documents,
        volume_rule: format!(
            "G0 holds max_top_k ({max_top_k}) capped at {} for depth {}, plus a tenth (at least 5), so every top_k up to the cap can be filled; the other generated scopes hold a quarter of that, at least 16",
            run.sizes().max_primary_volume,
            options.depth.as_str()
        ),
    };
    report::build(report::ReportInput {
        plugin: subject.plugin.clone(),
        profile: run.profile_name(),
        store_version: run.store_version(),
        seed: run.seed(),
        depth: options.depth,
        call_timeout: options.call_timeout,
        started_at,
        duration: started.elapsed(),
        records,
        latency: run.latency(),
        cleanup,
        space,
        secrets: run.secrets().clone(),
    })
}
