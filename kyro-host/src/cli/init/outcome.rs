//! What `kyro init` found and did, for people and for scripts (`--json`).

use std::path::PathBuf;

use kyro_certification::Summary;
use kyro_connector_sdk::SetupFinding;
use serde::Serialize;

use super::PgvectorInitArgs;

/// What `kyro init pgvector` found and did; also its `--json` form.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InitOutcome {
    /// The verdict.
    pub(crate) status: InitStatus,
    /// The table, as given.
    pub(crate) table: String,
    /// The ownership mode asked for.
    pub(crate) ownership_mode: String,
    /// One line: whether the table can back the mode, and why not.
    pub(crate) summary: String,
    /// Everything the connector found, blocking first-to-fix order; advisory ones too.
    pub(crate) findings: Vec<SetupFinding>,
    /// The declared dimension, once the store opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dimension: Option<u32>,
    /// The distance.
    pub(crate) distance: String,
    /// The certification, once it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) certification: Option<CertificationOutcome>,
    /// The files written, once the store was certified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) files: Option<WrittenFiles>,
    /// What to run next.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) next: Vec<String>,
    /// The one sentence that says what to fix, when the store could not be checked at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// The verdict of `kyro init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InitStatus {
    /// The table backs the mode, the store is certified, the files are written.
    Ready,
    /// The table lacks something; the findings say what and how to fix it.
    NotReady,
    /// The table opened but certification refused the store.
    NotCertified,
    /// The store could not be checked (plugin, DSN, connection, files).
    Error,
}

/// The certification `kyro init` ran.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CertificationOutcome {
    /// `certified`, `refused` or `invalid`.
    pub(crate) verdict: &'static str,
    /// The profile name (`pgvector/write_through`).
    pub(crate) profile: String,
    /// Checks by outcome.
    pub(crate) summary: Summary,
    /// Failed check ids.
    pub(crate) failed_checks: Vec<&'static str>,
    /// Check ids that could not run.
    pub(crate) error_checks: Vec<&'static str>,
    /// How long it took.
    pub(crate) duration_ms: u64,
}

/// The files `kyro init` wrote.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WrittenFiles {
    /// The runtime's configuration.
    pub(crate) config: PathBuf,
    /// The store's configuration, for `kyro certify --store-config`.
    pub(crate) store_config: PathBuf,
    /// The data-plane token (owner-only).
    pub(crate) data_token: PathBuf,
    /// The observability and admin token (owner-only).
    pub(crate) admin_token: PathBuf,
    /// A scoped retrieve to send with `curl -d @...`.
    pub(crate) retrieve: PathBuf,
}

impl InitOutcome {
    pub(super) fn new(args: &PgvectorInitArgs, status: InitStatus, summary: String) -> Self {
        Self {
            status,
            table: args.table.clone(),
            ownership_mode: args.ownership.clone(),
            summary,
            findings: Vec::new(),
            dimension: None,
            distance: args.distance.clone(),
            certification: None,
            files: None,
            next: Vec::new(),
            error: None,
        }
    }

    pub(super) fn error(args: &PgvectorInitArgs, sentence: String) -> Self {
        let mut outcome = Self::new(args, InitStatus::Error, sentence.clone());
        outcome.error = Some(sentence);
        outcome
    }

    /// The outcome as text for people.
    pub(crate) fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(error) = &self.error {
            text.push_str(&format!("error: {error}\n"));
            return text;
        }
        text.push_str(&self.summary);
        text.push('\n');
        let blocking: Vec<&SetupFinding> =
            self.findings.iter().filter(|finding| finding.is_blocking()).collect();
        let advisory: Vec<&SetupFinding> =
            self.findings.iter().filter(|finding| !finding.is_blocking()).collect();
        for (heading, findings) in [
            ("\nTo change before the table can back the store:\n", &blocking),
            ("\nRecommended (the store works without them):\n", &advisory),
        ] {
            if findings.is_empty() {
                continue;
            }
            text.push_str(heading);
            for (finding_idx, finding) in findings.iter().enumerate() {
                text.push_str(&format!(
                    "\n{}. {}\n   {}\n",
                    finding_idx + 1,
                    finding.requirement(),
                    finding.problem()
                ));
                if let Some(sql) = finding.fix_sql() {
                    text.push_str("   fix:\n");
                    for line in sql.lines() {
                        text.push_str(&format!("     {line}\n"));
                    }
                }
            }
        }
        if self.status == InitStatus::NotReady {
            text.push_str(
                "\nNothing was changed in the database. Run the statements you agree with, then run kyro init again.\n",
            );
        }
        if let Some(certification) = &self.certification
            && self.status == InitStatus::NotCertified
        {
            text.push_str(&format!(
                "\nCertification {}: failed {}; could not run {}. Run kyro certify with the same store configuration for the witnesses.\n",
                certification.verdict,
                list_or_none(&certification.failed_checks),
                list_or_none(&certification.error_checks),
            ));
        }
        if let Some(files) = &self.files {
            text.push_str("\nWrote:\n");
            let width = files
                .retrieve
                .display()
                .to_string()
                .len()
                .max(files.store_config.display().to_string().len());
            for (path, what) in [
                (&files.config, "the runtime's configuration (production mode)"),
                (&files.store_config, "the store's configuration, for kyro certify"),
                (&files.data_token, "the data-plane token (owner-only)"),
                (&files.admin_token, "the observability and admin token (owner-only)"),
                (&files.retrieve, "a scoped retrieve to try"),
            ] {
                text.push_str(&format!("  {:<width$}  {what}\n", path.display().to_string()));
            }
        }
        if !self.next.is_empty() {
            text.push_str("\nNext:\n");
            for line in &self.next {
                text.push_str(&format!("  {line}\n"));
            }
        }
        text
    }
}

pub(super) fn list_or_none(ids: &[&str]) -> String {
    if ids.is_empty() { "none".to_owned() } else { ids.join(", ") }
}
