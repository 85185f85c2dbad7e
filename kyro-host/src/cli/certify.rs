//! `kyro certify`: certifies a plugin file against its live store, prints a line per check (or
//! the JSON report), writes the JSON and JUnit reports, and signs a statement when asked.
//! Exits 0 only when certified.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// What `kyro certify` was asked to do.
pub(super) struct CertifyCommand<'a> {
    pub(super) plugin: &'a Path,
    pub(super) store_config: &'a Path,
    pub(super) report_json: Option<&'a Path>,
    pub(super) junit: Option<&'a Path>,
    /// Print the JSON report instead of a line per check.
    pub(super) json: bool,
    /// Sign a statement with this key file, into this file.
    pub(super) attest: Option<(PathBuf, PathBuf)>,
    pub(super) options: kyro_certification::Options,
}

/// Runs `kyro certify`. Every line it prints and every file it writes is scrubbed of every part
/// of the configuration's secrets first, whatever the connector put into its answers.
///
/// # Errors
///
/// The configuration or plugin cannot be read or opened, or a file cannot be written.
pub(super) fn certify(command: CertifyCommand<'_>) -> anyhow::Result<ExitCode> {
    let config = crate::stores::certify::read_store_config(command.store_config)?;
    let secrets = kyro_certification::SecretSet::from_config(&config);
    let mut stdout = std::io::stdout().lock();
    let progress = command.json.then(|| super::terminal::Progress::start("certifying"));
    let mut n_checks = 0_usize;
    let report = crate::stores::certify::certify_plugin(
        command.plugin,
        &config,
        command.options,
        &mut |record| match &progress {
            Some(progress) => {
                n_checks += 1;
                progress.update(&format!("{n_checks} checks, last {}", record.id));
            }
            None => {
                let _ = writeln!(stdout, "{}", secrets.scrub(&record.to_line()));
            }
        },
    )
    .map_err(|err| anyhow::anyhow!(secrets.scrub(&format!("{err:#}"))))?;
    let report_text = secrets.scrub(&report.to_json()?) + "\n";
    match progress {
        Some(progress) => {
            progress.finish(report.verdict.as_str());
            write!(stdout, "{report_text}")?;
        }
        None => writeln!(stdout, "{}", secrets.scrub(&report.summary_line()))?,
    }
    if let Some(path) = command.report_json {
        std::fs::write(path, &report_text)
            .with_context(|| format!("failed to write {}", path.display()))?;
        if let Some((key, out)) = &command.attest {
            super::attestation::attest(&report, report_text.as_bytes(), key, out)?;
            writeln!(stdout, "signed statement written to {}", out.display())?;
        }
    }
    if let Some(path) = command.junit {
        std::fs::write(path, secrets.scrub(&report.to_junit()))
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    drop(stdout);
    exit_code(&report, &secrets)
}

fn exit_code(
    report: &kyro_certification::Report,
    secrets: &kyro_certification::SecretSet,
) -> anyhow::Result<ExitCode> {
    match report.verdict {
        kyro_certification::Verdict::Certified => Ok(ExitCode::SUCCESS),
        kyro_certification::Verdict::Refused => {
            writeln!(
                std::io::stderr().lock(),
                "error: not certified; failed checks: {}",
                report.failed_checks.join(", ")
            )?;
            Ok(ExitCode::from(1))
        }
        kyro_certification::Verdict::Invalid => {
            let detail = if report.error_checks.is_empty() {
                format!("cleanup incomplete: {}", report.cleanup.detail)
            } else {
                format!("checks that could not run: {}", report.error_checks.join(", "))
            };
            writeln!(
                std::io::stderr().lock(),
                "error: certification invalid; {}",
                secrets.scrub(&detail)
            )?;
            Ok(ExitCode::from(2))
        }
    }
}
