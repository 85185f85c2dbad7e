//! KyroDB's connector certification harness: one engine, run by the host before it registers a
//! store and by `kyro certify` in a plugin author's CI.
//!
//! A certification runs named checks with stable ids, grouped in suites (`scope.*`, `filter.*`,
//! `freshness.<mode>.*`, `bounds.*`, `redaction.*`, `unsupported.*`, `ids.*`, `abi.*`), over any
//! [`Connector`] against its live store, inside a private, randomly named tenant and namespace
//! space that is purged afterwards. Core suites always run; a mode's suite runs exactly when the
//! connector declares that mode; a check is `not_applicable` only for an undeclared capability.
//! A check that could not run makes the certification invalid, never green. Nothing is retried.
//!
//! What it deliberately does not do: load plugins, read configuration files or the environment
//! (the host and the CLI do that and hand in a [`Subject`]).

pub mod attest;
mod checks;
mod report;
mod space;

#[cfg(test)]
mod tests;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use kyro_connector_sdk::{Connector, Result};

pub use report::{
    CheckRecord, CheckStatus, CleanupRecord, PluginIdentity, REPORT_SCHEMA_VERSION, Report,
    Summary, Verdict, Witness,
};

/// The version of the check suite; reports name it, and it changes whenever a check is added,
/// removed or made stricter.
pub const SUITE_VERSION: &str = "1.0.0";

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
    /// Secret values in the connector's configuration; none may appear in any error, log line or
    /// the report.
    pub secrets: Vec<String>,
    /// A second instance opened with canary secrets, when the configuration holds secrets.
    pub canary: Option<CanaryProbe<'a>>,
    /// Log lines the connector wrote through its `HostContext` during the run.
    pub log_lines: &'a Mutex<Vec<String>>,
}

/// Opens the connector again with every secret in its configuration replaced by a canary.
pub struct CanaryProbe<'a> {
    /// The canary values that were placed in the configuration.
    pub canaries: Vec<String>,
    /// Opens the canary instance; its errors, log lines and answers are scanned for canaries.
    pub open: &'a dyn Fn() -> Result<Box<dyn Connector>>,
}

/// How thoroughly to certify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every check with the full data set; for `kyro certify` and CI.
    Full,
    /// Every check, within a time budget; for host startup.
    Fast {
        /// Checks not started within this budget make the certification invalid.
        budget: Duration,
    },
}

/// The default time budget of host-startup certification, per store.
pub const DEFAULT_STARTUP_BUDGET: Duration = Duration::from_secs(10);

/// Runs every check against `subject` and returns the report. `on_check` sees each check's
/// record as soon as it finishes, for live output.
pub fn certify(
    subject: &Subject<'_>,
    profile: Profile,
    on_check: &mut dyn FnMut(&CheckRecord),
) -> Report {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let deadline = match profile {
        Profile::Full => None,
        Profile::Fast { budget } => Some(started + budget),
    };
    let mut run = checks::Run::new(subject, space::Space::new(&space::random_run_id()));
    let mut records = Vec::new();
    let setup = run.setup();
    for check in checks::CATALOG {
        let check_started = Instant::now();
        let status = match (&setup, deadline) {
            (_, Some(deadline)) if Instant::now() > deadline => CheckStatus::Error {
                reason: "the certification time budget ran out before this check started"
                    .to_owned(),
            },
            (Err(reason), _) if check.needs_data => CheckStatus::Error {
                reason: format!("the private certification space could not be prepared: {reason}"),
            },
            _ => run.run_check(check),
        };
        let record = CheckRecord::new(
            check.id,
            check.suite(),
            check.description,
            status,
            check_started.elapsed(),
        );
        let record = report::redact_record(record, &run.all_secrets());
        on_check(&record);
        records.push(record);
    }
    let cleanup = run.cleanup();
    let store_version = run.store_version();
    report::build(report::ReportInput {
        plugin: subject.plugin.clone(),
        profile: run.profile_name(),
        store_version,
        started_at,
        duration: started.elapsed(),
        records,
        cleanup,
        space: run.space_description(),
        secrets: run.all_secrets(),
    })
}
