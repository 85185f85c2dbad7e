//! `kyro certify`: certifies a plugin file against its live store, prints a line per check (or
//! the JSON report), writes the JSON and JUnit reports, and signs a statement when asked.
//! Exits 0 only when certified.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

pub(super) fn certify(
    plugin: &Path,
    store_config: &Path,
    report_json: Option<&Path>,
    junit: Option<&Path>,
    json: bool,
    attest: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<ExitCode> {
    let config = crate::stores::certify::read_store_config(store_config)?;
    let mut stdout = std::io::stdout().lock();
    let progress = json.then(|| super::terminal::Progress::start("certifying"));
    let mut n_checks = 0_usize;
    let report = crate::stores::certify::certify_plugin(
        plugin,
        &config,
        kyro_certification::Profile::Full,
        &mut |record| match &progress {
            Some(progress) => {
                n_checks += 1;
                progress.update(&format!("{n_checks} checks, last {}", record.id));
            }
            None => {
                let _ = writeln!(stdout, "{}", record.to_line());
            }
        },
    )?;
    match progress {
        Some(progress) => {
            progress.finish(report.verdict.as_str());
            writeln!(stdout, "{}", report.to_json()?)?;
        }
        None => writeln!(stdout, "{}", report.summary_line())?,
    }
    if let Some(path) = report_json {
        let report_text = report.to_json()? + "\n";
        std::fs::write(path, &report_text)
            .with_context(|| format!("failed to write {}", path.display()))?;
        if let Some((key, out)) = attest {
            super::attestation::attest(&report, report_text.as_bytes(), &key, &out)?;
            writeln!(stdout, "signed statement written to {}", out.display())?;
        }
    }
    if let Some(path) = junit {
        std::fs::write(path, report.to_junit())
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
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
            writeln!(std::io::stderr().lock(), "error: certification invalid; {detail}")?;
            Ok(ExitCode::from(2))
        }
    }
}
