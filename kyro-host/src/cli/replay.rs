//! `kyro replay`: re-runs an exported capture against the runtime a configuration describes, in
//! a shadow session of its own (its stores are certified first, as `kyro serve` does), and
//! diffs what that runtime answered against what the capture observed: the cutover gate.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::evidence::replay::replay_capture;
use crate::wire::replay::CaptureExport;

/// Returns whether the candidate answered every step alike, and the diff report.
///
/// # Errors
///
/// The configuration or capture is invalid, or the runtime cannot start.
pub(crate) async fn replay_command(
    config: &Path,
    capture: &Path,
    allow_mutations: bool,
) -> anyhow::Result<(bool, Value)> {
    let text = std::fs::read(capture)
        .with_context(|| format!("failed to read the capture {}", capture.display()))?;
    let capture: CaptureExport = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a replay capture export", capture.display()))?;
    let runtime = super::serve::build_runtime(config).await?;
    replay_capture(&runtime, &capture, allow_mutations)
        .await
        .map_err(|err| anyhow::anyhow!("cannot replay the capture: {}", err.message))
}
