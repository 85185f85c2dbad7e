//! Setup findings: everything a connector found missing or wrong in the store it was asked to
//! open, each with the change that would fix it, reported in one pass.
//!
//! A connector that checks its store when it opens (tables, columns, keys, indexes, collections,
//! privileges) should collect every finding rather than stop at the first, so the person setting
//! it up learns all they have to change at once. Findings that block opening travel to the host
//! inside the [`ErrorKind::Configuration`] error that refuses the open
//! ([`SetupFindings::into_error`]), and the host reads them back with
//! [`SetupFindingsExt::setup_findings`]. Findings that do not block (a missing index makes
//! searches slow, not wrong) are logged when the connector opens anyway, one line each
//! ([`SetupFinding::to_log_line`], read back with [`SetupFinding::from_log_line`]).
//!
//! The error's message is both what people read wherever the error is printed and the encoding:
//! a summary line, the line `setup findings:`, then one block per finding. Every field except the
//! fix is kept on one line (line breaks become spaces); the fix's lines are indented. So the text
//! parses back to exactly the findings that were put in.
//!
//! What it deliberately does not do: run a fix. A fix is text for a person to review and run, and
//! a connector never changes the store's schema on its own.
//!
//! ```
//! use kyro_connector_sdk::{SetupFinding, SetupFindings, SetupFindingsExt};
//!
//! let findings = SetupFindings::new(
//!     "table \"docs\" cannot back ownership_mode write_through",
//!     vec![
//!         SetupFinding::blocking(
//!             "a unique key on (\"tenant_id\", \"namespace\", \"id\")",
//!             "the table has no primary key or unique constraint on these columns",
//!         )
//!         .with_fix_sql("ALTER TABLE \"docs\" ADD UNIQUE (\"tenant_id\", \"namespace\", \"id\");"),
//!     ],
//! );
//! let error = findings.clone().into_error();
//! assert!(error.message().contains("ALTER TABLE"));
//! assert_eq!(error.setup_findings(), Some(findings));
//! ```

use serde::{Deserialize, Serialize};

use crate::{ConnectorError, ErrorKind};

/// One requirement of the connector that the store does not meet, or a change it recommends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FindingFields")]
pub struct SetupFinding {
    requirement: String,
    problem: String,
    fix_sql: Option<String>,
    blocking: bool,
}

/// The serialized fields of a [`SetupFinding`], normalized on the way in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingFields {
    requirement: String,
    problem: String,
    fix_sql: Option<String>,
    blocking: bool,
}

impl From<FindingFields> for SetupFinding {
    fn from(fields: FindingFields) -> Self {
        let finding = Self::new(fields.requirement, fields.problem, fields.blocking);
        match fields.fix_sql {
            Some(sql) => finding.with_fix_sql(sql),
            None => finding,
        }
    }
}

impl SetupFinding {
    /// A finding that keeps the connector from opening: the store cannot back it as it is.
    /// `requirement` names what the connector needs (`a unique key on ("tenant_id", ...)`),
    /// `problem` what the store has instead.
    pub fn blocking(requirement: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::new(requirement.into(), problem.into(), true)
    }

    /// A finding the connector can live with, such as a missing index that only costs speed.
    pub fn advisory(requirement: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::new(requirement.into(), problem.into(), false)
    }

    fn new(requirement: String, problem: String, blocking: bool) -> Self {
        Self {
            requirement: one_line(&requirement),
            problem: one_line(&problem),
            fix_sql: None,
            blocking,
        }
    }

    /// The same finding with the statement(s) that would fix it, for a person to run. Identifiers
    /// in it must be quoted; it must never hold a secret.
    #[must_use]
    pub fn with_fix_sql(mut self, sql: impl Into<String>) -> Self {
        let sql = fix_lines(&sql.into());
        self.fix_sql = (!sql.is_empty()).then_some(sql);
        self
    }

    /// What the connector needs.
    pub fn requirement(&self) -> &str {
        &self.requirement
    }

    /// What the store has instead.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// The statement(s) that would fix it, when a statement can.
    pub fn fix_sql(&self) -> Option<&str> {
        self.fix_sql.as_deref()
    }

    /// Whether the connector refuses to open until it is fixed.
    pub fn is_blocking(&self) -> bool {
        self.blocking
    }

    /// The finding as one log line, for findings that do not block opening.
    pub fn to_log_line(&self) -> String {
        // Serializing four plain fields cannot fail; the fallback keeps the line readable anyway.
        let json = serde_json::to_string(self).unwrap_or_else(|_| format!("\"{self}\""));
        format!("{LOG_PREFIX}{json}")
    }

    /// Reads a line written by [`SetupFinding::to_log_line`]; `None` for any other line.
    pub fn from_log_line(line: &str) -> Option<Self> {
        serde_json::from_str(line.strip_prefix(LOG_PREFIX)?).ok()
    }
}

impl std::fmt::Display for SetupFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.requirement, self.problem)
    }
}

/// Every finding of one check of a store, with a one-line summary (which store, which ownership
/// mode, whether it can back it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupFindings {
    summary: String,
    findings: Vec<SetupFinding>,
}

impl SetupFindings {
    /// The findings of one check, in the order a person should address them.
    pub fn new(summary: impl Into<String>, findings: Vec<SetupFinding>) -> Self {
        Self { summary: one_line(&summary.into()), findings }
    }

    /// One line: what was checked and the verdict.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The findings.
    pub fn findings(&self) -> &[SetupFinding] {
        &self.findings
    }

    /// Whether any finding keeps the connector from opening.
    pub fn is_blocking(&self) -> bool {
        self.findings.iter().any(SetupFinding::is_blocking)
    }

    /// The `Configuration` error that refuses the open and carries every finding; its message is
    /// the readable text described in the module documentation.
    pub fn into_error(self) -> ConnectorError {
        ConnectorError::configuration(self.to_text())
    }

    fn to_text(&self) -> String {
        let mut text = format!("{}\n{FINDINGS_HEADER}", self.summary);
        for finding in &self.findings {
            text.push_str(&format!("\n- requirement: {}", finding.requirement));
            text.push_str(&format!("\n  problem: {}", finding.problem));
            text.push_str(if finding.blocking { "\n  blocking: yes" } else { "\n  blocking: no" });
            if let Some(sql) = &finding.fix_sql {
                text.push_str("\n  fix:");
                for line in sql.lines() {
                    text.push_str("\n    ");
                    text.push_str(line);
                }
            }
        }
        text
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.split('\n').peekable();
        let summary = lines.next()?.to_owned();
        if lines.next()? != FINDINGS_HEADER {
            return None;
        }
        let mut findings = Vec::new();
        while let Some(line) = lines.next() {
            let requirement = line.strip_prefix("- requirement: ")?;
            let problem = lines.next()?.strip_prefix("  problem: ")?;
            let blocking = match lines.next()? {
                "  blocking: yes" => true,
                "  blocking: no" => false,
                _ => return None,
            };
            let mut finding = SetupFinding {
                requirement: requirement.to_owned(),
                problem: problem.to_owned(),
                fix_sql: None,
                blocking,
            };
            if lines.next_if_eq(&"  fix:").is_some() {
                let mut sql_lines = Vec::new();
                while let Some(sql_line) = lines.next_if(|line| line.starts_with(FIX_INDENT)) {
                    sql_lines.push(&sql_line[FIX_INDENT.len()..]);
                }
                finding.fix_sql = Some(sql_lines.join("\n"));
            }
            findings.push(finding);
        }
        Some(Self { summary, findings })
    }
}

/// Reading setup findings back from the error that carried them across the plugin boundary.
pub trait SetupFindingsExt: sealed::Sealed {
    /// The findings this error carries: `Some` only for a `Configuration` error built by
    /// [`SetupFindings::into_error`].
    fn setup_findings(&self) -> Option<SetupFindings>;
}

impl SetupFindingsExt for ConnectorError {
    fn setup_findings(&self) -> Option<SetupFindings> {
        if self.kind() != ErrorKind::Configuration {
            return None;
        }
        SetupFindings::parse(self.message())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::ConnectorError {}
}

/// The line between the summary and the findings.
const FINDINGS_HEADER: &str = "setup findings:";

/// How each line of a fix is indented.
const FIX_INDENT: &str = "    ";

/// The start of a log line holding one finding.
const LOG_PREFIX: &str = "setup finding: ";

/// `text` on one line: each run of white space (line breaks included) becomes one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `sql` with line endings normalized, trailing white space removed from each line, and no
/// leading or trailing blank lines.
fn fix_lines(sql: &str) -> String {
    let lines: Vec<&str> = sql.lines().map(str::trim_end).collect();
    let first = lines.iter().position(|line| !line.is_empty());
    let last = lines.iter().rposition(|line| !line.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
