//! `kyro replay`: re-runs an exported capture against the runtime a configuration describes, in
//! a shadow session of its own (its stores are certified first, as `kyro serve` does), and
//! diffs what that runtime answered against what the capture observed: the cutover gate.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::evidence::replay::replay_capture;
use crate::wire::capture::CaptureExport;
use crate::wire::replay::ReplayGateReport;

/// The gate's report: whether the candidate answered every step alike, the diff, and the steps
/// it refused.
///
/// # Errors
///
/// The configuration or capture is invalid, or the runtime cannot start.
pub(crate) async fn replay_command(
    config: &Path,
    capture: &Path,
    allow_mutations: bool,
) -> anyhow::Result<ReplayGateReport> {
    let text = std::fs::read(capture)
        .with_context(|| format!("failed to read the capture {}", capture.display()))?;
    let capture: CaptureExport = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a replay capture export", capture.display()))?;
    let runtime = super::serve::build_runtime(config).await?;
    replay_capture(&runtime, &capture, allow_mutations)
        .await
        .map_err(|err| anyhow::anyhow!("cannot replay the capture: {}", err.message))
}

/// Runs `kyro replay` and prints the report; returns whether every step answered alike.
///
/// # Errors
///
/// As [`replay_command`], or a file that cannot be written.
pub(super) fn replay(
    config: &Path,
    capture: &Path,
    output: Option<&Path>,
    allow_mutations: bool,
) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let report = runtime.block_on(replay_command(config, capture, allow_mutations))?;
    let text = serde_json::to_string_pretty(&report)? + "\n";
    if let Some(output) = output {
        std::fs::write(output, &text)
            .with_context(|| format!("failed to write {}", output.display()))?;
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    let _ = writeln!(
        std::io::stderr().lock(),
        "replay: {} steps compared, {} changed, {} missing, {} extra, {} refused: {}",
        report.diff.compared_steps,
        report.diff.changed_steps,
        report.diff.only_in_baseline_count,
        report.diff.only_in_candidate_count,
        report.refused_steps.len(),
        if report.identical { "identical" } else { "DIFFERS" }
    );
    Ok(report.identical)
}
