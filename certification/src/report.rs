//! The certification report: a stable JSON schema (documented in `certification/REPORT.md`) and
//! JUnit XML for CI systems. Every string that reaches a report is scrubbed of every part of
//! every secret and canary of the run.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::SUITE_VERSION;
use crate::latency::OperationLatency;
use crate::secrets::SecretSet;
use crate::space::{Naming, ScopeName};

/// The schema version of the JSON report.
pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// Who was certified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginIdentity {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The SDK version it was built with.
    pub sdk_version: String,
    /// The connector ABI version, or `in-process` for a linked connector.
    pub abi_version: String,
    /// SHA-256 of the plugin file; `None` for a linked connector.
    pub sha256: Option<String>,
    /// The plugin file; `None` for a linked connector.
    pub path: Option<String>,
}

/// What a failed check saw: the request, the answer and what the contract expected, each at most
/// about a kilobyte, secrets scrubbed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Witness {
    /// What was sent (for generated requests, the shrunk request).
    pub sent: String,
    /// What came back.
    pub received: String,
    /// What the contract (or the oracle) expected instead.
    pub expected: String,
    /// For a shrunk generated request, the request as first generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrunk_from: Option<String>,
}

impl Witness {
    /// A witness from anything printable.
    pub fn new(
        sent: impl Into<String>,
        received: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            sent: sent.into(),
            received: received.into(),
            expected: expected.into(),
            shrunk_from: None,
        }
    }

    fn scrubbed(&self, secrets: &SecretSet) -> Self {
        Self {
            sent: secrets.scrub(&self.sent),
            received: secrets.scrub(&self.received),
            expected: secrets.scrub(&self.expected),
            shrunk_from: self.shrunk_from.as_deref().map(|text| secrets.scrub(text)),
        }
    }
}

/// A check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckStatus {
    /// The connector did what the contract requires.
    Passed,
    /// It did not; the witness shows how.
    Failed {
        /// The minimal evidence.
        witness: Witness,
    },
    /// The check covers a capability the connector does not declare.
    NotApplicable {
        /// Which declaration makes it not apply.
        reason: String,
    },
    /// The check could not run; the certification is invalid.
    Error {
        /// Why it could not run.
        reason: String,
    },
}

impl CheckStatus {
    /// The outcome's name in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed { .. } => "failed",
            Self::NotApplicable { .. } => "not_applicable",
            Self::Error { .. } => "error",
        }
    }
}

/// One check in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRecord {
    /// The stable check id, such as `scope.search_excludes_other_tenant`.
    pub id: &'static str,
    /// The suite, such as `scope` or `freshness.write_through`.
    pub suite: String,
    /// What the check proves.
    pub description: &'static str,
    /// Its outcome.
    #[serde(flatten)]
    pub status: CheckStatus,
    /// The earlier check whose failure this one follows from (the same broken answer, or the
    /// quarantine a panic or timeout caused), when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows_from: Option<&'static str>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

impl CheckRecord {
    pub(crate) fn new(
        id: &'static str,
        suite: String,
        description: &'static str,
        status: CheckStatus,
        follows_from: Option<&'static str>,
        duration: Duration,
    ) -> Self {
        Self { id, suite, description, status, follows_from, duration_ms: millis(duration) }
    }

    /// One human-readable line, as printed while certification runs.
    pub fn to_line(&self) -> String {
        let label = match self.status {
            CheckStatus::Passed => "PASS",
            CheckStatus::Failed { .. } => "FAIL",
            CheckStatus::NotApplicable { .. } => "N/A ",
            CheckStatus::Error { .. } => "ERR ",
        };
        let detail = match &self.status {
            CheckStatus::Passed => String::new(),
            CheckStatus::Failed { witness } => format!(
                " — sent: {}; received: {}; expected: {}",
                witness.sent, witness.received, witness.expected
            ),
            CheckStatus::NotApplicable { reason } | CheckStatus::Error { reason } => {
                format!(" — {reason}")
            }
        };
        let follows = self
            .follows_from
            .map_or_else(String::new, |earlier| format!(" [follows from {earlier}]"));
        format!("{label} {} ({} ms){follows}{detail}", self.id, self.duration_ms)
    }
}

/// The overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed or does not apply.
    Certified,
    /// At least one check failed.
    Refused,
    /// No check failed, but at least one could not run.
    Invalid,
}

impl Verdict {
    /// The verdict's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certified => "certified",
            Self::Refused => "refused",
            Self::Invalid => "invalid",
        }
    }
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks that do not apply.
    pub not_applicable: usize,
    /// Checks that could not run.
    pub errors: usize,
}

/// What cleanup removed from one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The scope's alias (see the report's `space.scopes`).
    pub scope: String,
    /// `purge` (`certification_purge`) or `delete` (one delete per written id).
    pub method: &'static str,
    /// How many written documents were removed, read back as gone.
    pub documents: usize,
}

/// What cleanup could not remove from one scope, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftBehind {
    /// The scope's alias.
    pub scope: String,
    /// How many written documents may remain.
    pub documents: usize,
    /// The first few of their ids.
    pub ids: Vec<String>,
    /// Why they remain.
    pub reason: String,
}

/// Whether the private space was removed afterwards, scope by scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanupRecord {
    /// True when everything written was removed and read back as gone.
    pub complete: bool,
    /// What was removed.
    pub removed: Vec<Removed>,
    /// What could not be removed.
    pub left_behind: Vec<LeftBehind>,
    /// One line: what was removed, or what is left behind and where.
    pub detail: String,
    /// How long cleanup took, in milliseconds.
    pub duration_ms: u64,
}

impl CleanupRecord {
    pub(crate) fn new(removed: Vec<Removed>, left_behind: Vec<LeftBehind>) -> Self {
        let n_removed: usize = removed.iter().map(|removed| removed.documents).sum();
        let detail = if left_behind.is_empty() {
            format!("removed {n_removed} documents from {} scopes", removed.len())
        } else {
            let left: Vec<String> = left_behind
                .iter()
                .map(|left| {
                    format!("{} documents in {} ({})", left.documents, left.scope, left.reason)
                })
                .collect();
            format!("removed {n_removed} documents; could not remove {}", left.join(", "))
        };
        Self { complete: left_behind.is_empty(), removed, left_behind, detail, duration_ms: 0 }
    }

    fn scrubbed(&self, secrets: &SecretSet) -> Self {
        let mut cleaned = self.clone();
        cleaned.detail = secrets.scrub(&cleaned.detail);
        for left in &mut cleaned.left_behind {
            left.reason = secrets.scrub(&left.reason);
        }
        cleaned
    }
}

/// The private space a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Space {
    /// `unprefixed` (random names) or `prefixed` (random names after the SDK's certification
    /// prefix).
    pub naming: Naming,
    /// Why that naming.
    pub naming_reason: &'static str,
    /// Every scope: alias, tenant and namespace.
    pub scopes: Vec<ScopeName>,
    /// How many documents were seeded in all.
    pub documents_seeded: usize,
    /// How many the primary generated scope (`G0`) held.
    pub primary_scope_documents: usize,
    /// How the primary scope's volume was chosen.
    pub volume_rule: String,
}

/// A certification report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The JSON schema version, currently 1.
    pub schema_version: u32,
    /// The check suite's version.
    pub suite_version: &'static str,
    /// The overall result.
    pub verdict: Verdict,
    /// `<plugin name>/<declared ownership modes joined by +>`, such as `pgvector/write_through`.
    pub profile: String,
    /// Who was certified.
    pub plugin: PluginIdentity,
    /// The store's version, as its health check reported it.
    pub store_version: Option<String>,
    /// The seed every generated request and document came from; pass it back to reproduce.
    pub seed: u64,
    /// `standard` or `deep`.
    pub depth: crate::Depth,
    /// The call timeout latency budgets derive from, in milliseconds.
    pub call_timeout_ms: u64,
    /// The private space the checks ran in.
    pub space: Space,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Counts per outcome.
    pub summary: Summary,
    /// The ids of failed checks, in run order.
    pub failed_checks: Vec<&'static str>,
    /// The ids of checks that could not run, in run order.
    pub error_checks: Vec<&'static str>,
    /// Every check, in run order.
    pub checks: Vec<CheckRecord>,
    /// Per-operation latency over every call of the run.
    pub latency: Vec<OperationLatency>,
    /// Cleanup of the private space.
    pub cleanup: CleanupRecord,
}

pub(crate) struct ReportInput {
    pub(crate) plugin: PluginIdentity,
    pub(crate) profile: String,
    pub(crate) store_version: Option<String>,
    pub(crate) seed: u64,
    pub(crate) depth: crate::Depth,
    pub(crate) call_timeout: Duration,
    pub(crate) started_at: SystemTime,
    pub(crate) duration: Duration,
    pub(crate) records: Vec<CheckRecord>,
    pub(crate) latency: Vec<OperationLatency>,
    pub(crate) cleanup: CleanupRecord,
    pub(crate) space: Space,
    pub(crate) secrets: SecretSet,
}

pub(crate) fn build(input: ReportInput) -> Report {
    let count =
        |name: &str| input.records.iter().filter(|record| record.status.as_str() == name).count();
    let summary = Summary {
        passed: count("passed"),
        failed: count("failed"),
        not_applicable: count("not_applicable"),
        errors: count("error"),
    };
    let ids_with = |name: &str| {
        input
            .records
            .iter()
            .filter(|record| record.status.as_str() == name)
            .map(|record| record.id)
            .collect()
    };
    let verdict = if summary.failed > 0 {
        Verdict::Refused
    } else if summary.errors > 0 || !input.cleanup.complete {
        Verdict::Invalid
    } else {
        Verdict::Certified
    };
    let secrets = &input.secrets;
    let scrub = |text: String| secrets.scrub(&text);
    let mut space = input.space;
    for scope in &mut space.scopes {
        scope.tenant_id = secrets.scrub(&scope.tenant_id);
        scope.namespace = secrets.scrub(&scope.namespace);
    }
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        suite_version: SUITE_VERSION,
        verdict,
        profile: scrub(input.profile),
        plugin: PluginIdentity {
            name: scrub(input.plugin.name),
            version: scrub(input.plugin.version),
            sdk_version: scrub(input.plugin.sdk_version),
            abi_version: input.plugin.abi_version,
            sha256: input.plugin.sha256,
            path: input.plugin.path.map(scrub),
        },
        store_version: input.store_version.map(scrub),
        seed: input.seed,
        depth: input.depth,
        call_timeout_ms: millis(input.call_timeout),
        space,
        started_at: rfc3339(input.started_at),
        duration_ms: millis(input.duration),
        summary,
        failed_checks: ids_with("failed"),
        error_checks: ids_with("error"),
        checks: input.records.into_iter().map(|record| scrub_record(record, secrets)).collect(),
        latency: input.latency,
        cleanup: input.cleanup.scrubbed(secrets),
    }
}

/// A record with every part of every secret scrubbed from its text.
pub(crate) fn scrub_record(mut record: CheckRecord, secrets: &SecretSet) -> CheckRecord {
    record.status = match record.status {
        CheckStatus::Failed { witness } => {
            CheckStatus::Failed { witness: witness.scrubbed(secrets) }
        }
        CheckStatus::NotApplicable { reason } => {
            CheckStatus::NotApplicable { reason: secrets.scrub(&reason) }
        }
        CheckStatus::Error { reason } => CheckStatus::Error { reason: secrets.scrub(&reason) },
        CheckStatus::Passed => CheckStatus::Passed,
    };
    record
}

impl Report {
    /// The report as pretty JSON.
    ///
    /// # Errors
    ///
    /// Serialization failed, which only happens on a bug.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// The report as JUnit XML: one test suite, one test case per check; failures carry their
    /// witness, checks that could not run are errors, checks that do not apply are skipped.
    pub fn to_junit(&self) -> String {
        let mut xml = String::new();
        let _ = writeln!(xml, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            xml,
            r#"<testsuites name="kyro-certification" tests="{}" failures="{}" errors="{}" skipped="{}" time="{}">"#,
            self.checks.len(),
            self.summary.failed,
            self.summary.errors,
            self.summary.not_applicable,
            seconds(self.duration_ms),
        );
        let _ = writeln!(
            xml,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{}" timestamp="{}">"#,
            escape(&self.profile),
            self.checks.len(),
            self.summary.failed,
            self.summary.errors,
            self.summary.not_applicable,
            seconds(self.duration_ms),
            escape(&self.started_at),
        );
        let _ = writeln!(xml, "    <properties>");
        let properties = [
            ("verdict", self.verdict.as_str().to_owned()),
            ("suite_version", self.suite_version.to_owned()),
            ("plugin", format!("{} {}", self.plugin.name, self.plugin.version)),
            ("sdk_version", self.plugin.sdk_version.clone()),
            ("abi_version", self.plugin.abi_version.clone()),
            ("plugin_sha256", self.plugin.sha256.clone().unwrap_or_default()),
            ("store_version", self.store_version.clone().unwrap_or_default()),
            ("seed", self.seed.to_string()),
            ("depth", self.depth.as_str().to_owned()),
        ];
        for (name, value) in properties {
            let _ = writeln!(xml, r#"      <property name="{name}" value="{}"/>"#, escape(&value));
        }
        let _ = writeln!(xml, "    </properties>");
        for check in &self.checks {
            let _ = write!(
                xml,
                r#"    <testcase classname="{}" name="{}" time="{}""#,
                escape(&check.suite),
                escape(check.id),
                seconds(check.duration_ms)
            );
            match &check.status {
                CheckStatus::Passed => {
                    let _ = writeln!(xml, "/>");
                }
                CheckStatus::Failed { witness } => {
                    let follows = check
                        .follows_from
                        .map_or_else(String::new, |earlier| format!("follows from: {earlier}\n"));
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{}\">{}sent: {}\nreceived: {}\nexpected: {}</failure>\n    </testcase>",
                        escape(check.description),
                        escape(&follows),
                        escape(&witness.sent),
                        escape(&witness.received),
                        escape(&witness.expected)
                    );
                }
                CheckStatus::NotApplicable { reason } => {
                    let _ = writeln!(
                        xml,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(reason)
                    );
                }
                CheckStatus::Error { reason } => {
                    let follows = check
                        .follows_from
                        .map_or_else(String::new, |earlier| format!(" (follows from {earlier})"));
                    let _ = writeln!(
                        xml,
                        ">\n      <error message=\"{}{}\"/>\n    </testcase>",
                        escape(reason),
                        escape(&follows)
                    );
                }
            }
        }
        let _ = writeln!(xml, "  </testsuite>\n</testsuites>");
        xml
    }

    /// The closing summary printed after the per-check lines.
    pub fn summary_line(&self) -> String {
        let mut line = format!(
            "{}: {} — {} passed, {} failed, {} not applicable, {} could not run ({} ms, seed {}, depth {})",
            self.profile,
            self.verdict.as_str(),
            self.summary.passed,
            self.summary.failed,
            self.summary.not_applicable,
            self.summary.errors,
            self.duration_ms,
            self.seed,
            self.depth.as_str()
        );
        if !self.failed_checks.is_empty() {
            let _ = write!(line, "; failed: {}", self.failed_checks.join(", "));
        }
        if !self.error_checks.is_empty() {
            let _ = write!(line, "; could not run: {}", self.error_checks.join(", "));
        }
        if !self.cleanup.complete {
            let _ = write!(line, "; cleanup incomplete: {}", self.cleanup.detail);
        }
        line
    }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            character if character.is_control() && !matches!(character, '\n' | '\t' | '\r') => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(character));
            }
            character => escaped.push(character),
        }
    }
    escaped
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn seconds(millis: u64) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// Formats a time as RFC 3339 in UTC with second precision.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
    kyro_core::time::rfc3339_seconds(ms)
}
