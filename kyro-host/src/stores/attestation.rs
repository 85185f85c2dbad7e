//! Checking a signed certification statement against a plugin file, before any of its code is
//! loaded (startup) or on request (`kyro plugin verify`). The statement format, signing and the
//! signature check are `kyro_certification::attest`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kyro_certification::attest::{Envelope, PublicKey, Statement, sha256_hex};

use crate::config::attestation::{RequiredAttestation, read_public_key};

/// A statement that verified, and which key signed it.
#[derive(Debug)]
pub struct Verified {
    /// The statement.
    pub statement: Statement,
    /// The id of the key whose signature verified.
    pub key_id: String,
}

/// Checks `plugin` against its required statement without loading it: signed by a trusted key,
/// about this very file, and a `certified` verdict of this host's suite version. Returns the
/// file's SHA-256, for the caller to compare with what it loads.
///
/// # Errors
///
/// One line saying what is missing or wrong.
pub fn check(required: &RequiredAttestation, plugin: &Path) -> Result<String, String> {
    let bytes = std::fs::read(plugin)
        .map_err(|err| format!("failed to read plugin file {}: {err}", plugin.display()))?;
    let plugin_sha256 = sha256_hex(&bytes);
    let verified = verify_statement(&required.statement, &required.trusted, &plugin_sha256, None)
        .map_err(|err| format!("attestation refused: {err:#}"))?;
    let suite = kyro_certification::SUITE_VERSION;
    if verified.statement.predicate.suite_version != suite {
        return Err(format!(
            "attestation refused: it certifies suite version {}, this host runs {suite}",
            verified.statement.predicate.suite_version
        ));
    }
    Ok(plugin_sha256)
}

/// `kyro plugin verify`: checks the statement at `statement` against the plugin file and, when
/// given, the report file, trusting the public keys in `keys`; a statement whose verdict is not
/// `certified` does not verify.
///
/// # Errors
///
/// A file cannot be read, or the statement does not verify; the error says why.
pub fn verify(
    keys: &[PathBuf],
    statement: &Path,
    plugin: &Path,
    report: Option<&Path>,
) -> anyhow::Result<Verified> {
    let trusted =
        keys.iter().map(|path| read_public_key(path)).collect::<anyhow::Result<Vec<_>>>()?;
    let plugin_bytes = std::fs::read(plugin)
        .with_context(|| format!("failed to read plugin file {}", plugin.display()))?;
    let report_bytes = report
        .map(|path| {
            std::fs::read(path).with_context(|| format!("failed to read report {}", path.display()))
        })
        .transpose()?;
    verify_statement(statement, &trusted, &sha256_hex(&plugin_bytes), report_bytes.as_deref())
}

fn verify_statement(
    statement: &Path,
    trusted: &[PublicKey],
    plugin_sha256: &str,
    report: Option<&[u8]>,
) -> anyhow::Result<Verified> {
    let bytes = std::fs::read(statement)
        .with_context(|| format!("failed to read attestation {}", statement.display()))?;
    let (statement, signer) = Envelope::from_json(&bytes)?.verify(trusted)?;
    statement.check_plugin(plugin_sha256)?;
    if let Some(report) = report {
        statement.check_report(report)?;
    }
    let verdict = &statement.predicate.verdict;
    anyhow::ensure!(verdict == "certified", "the attested verdict is {verdict}, not certified");
    Ok(Verified { statement, key_id: signer.key_id() })
}
