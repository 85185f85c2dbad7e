//! Signed certification statements on the host: `kyro certify --attest KEY` signs one,
//! `kyro plugin verify` checks one, `kyro plugin keygen` makes a key pair, and a host configured
//! with `[attestation]` refuses, before it loads a plugin at all, one without a valid statement
//! from a trusted key.
//!
//! The statement format, signing and checking are `kyro_certification::attest`; this module reads
//! and writes the files. A statement lives next to its plugin by default
//! (`<plugin file>.attestation.json`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use kyro_certification::Report;
use kyro_certification::attest::{Envelope, PublicKey, SigningKey, Statement, sha256_hex};
use serde::Deserialize;

use crate::config::ConfigError;

/// `[attestation]` in `kyro.toml`: every store's plugin must come with a statement signed by one
/// of these keys, saying it was certified by this host's suite version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationConfig {
    /// Public key files (relative paths are resolved next to the config file).
    pub public_keys: Vec<PathBuf>,
}

/// What a store must show before its plugin is loaded.
#[derive(Debug, Clone)]
pub struct RequiredAttestation {
    /// The statement file.
    pub statement: PathBuf,
    /// The keys whose signature is trusted.
    pub trusted: Vec<PublicKey>,
}

/// Where a plugin's statement is unless configured otherwise: `<plugin file>.attestation.json`.
pub fn default_statement_path(plugin: &Path) -> PathBuf {
    let mut path = plugin.as_os_str().to_owned();
    path.push(".attestation.json");
    PathBuf::from(path)
}

impl AttestationConfig {
    /// Reads the trusted public keys.
    ///
    /// # Errors
    ///
    /// No key is listed, or a key file cannot be read or is not a public key; the error names the
    /// key's position and file.
    pub fn trusted_keys(&self, base: &Path) -> Result<Vec<PublicKey>, ConfigError> {
        if self.public_keys.is_empty() {
            return Err(ConfigError::Invalid {
                key: "attestation.public_keys".to_owned(),
                message: "must list at least one public key file".to_owned(),
            });
        }
        let mut keys = Vec::new();
        for (idx, path) in self.public_keys.iter().enumerate() {
            let path = if path.is_absolute() { path.clone() } else { base.join(path) };
            let key = read_public_key(&path).map_err(|err| ConfigError::Invalid {
                key: format!("attestation.public_keys[{idx}]"),
                message: format!("{err:#}"),
            })?;
            keys.push(key);
        }
        Ok(keys)
    }
}

/// The attestation a store needs: `Some` exactly when `[attestation]` is configured. A store's own
/// `attestation` path (relative to the config file) overrides the default next to the plugin.
///
/// # Errors
///
/// A store names a statement while no `[attestation]` says whose signature to trust.
pub fn required(
    trusted: Option<&[PublicKey]>,
    statement: Option<&Path>,
    plugin: &Path,
    base: &Path,
    store_key: &str,
) -> Result<Option<RequiredAttestation>, ConfigError> {
    match (trusted, statement) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ConfigError::Invalid {
            key: format!("{store_key}.attestation"),
            message:
                "names a statement, but no [attestation] public_keys say whose signature to trust"
                    .to_owned(),
        }),
        (Some(trusted), statement) => Ok(Some(RequiredAttestation {
            statement: statement.map_or_else(
                || default_statement_path(plugin),
                |path| if path.is_absolute() { path.to_path_buf() } else { base.join(path) },
            ),
            trusted: trusted.to_vec(),
        })),
    }
}

impl RequiredAttestation {
    /// Checks `plugin` against its statement without loading it: signed by a trusted key, about
    /// this very file, and a `certified` verdict of this host's suite version. Returns the file's
    /// SHA-256, for the caller to compare with what it loads.
    ///
    /// # Errors
    ///
    /// One line saying what is missing or wrong.
    pub fn check(&self, plugin: &Path) -> Result<String, String> {
        let bytes = std::fs::read(plugin)
            .map_err(|err| format!("failed to read plugin file {}: {err}", plugin.display()))?;
        let plugin_sha256 = sha256_hex(&bytes);
        let verified = verify_statement(&self.statement, &self.trusted, &plugin_sha256, None)
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
}

/// A statement that verified, and which key signed it.
#[derive(Debug)]
pub struct Verified {
    /// The statement.
    pub statement: Statement,
    /// The id of the key whose signature verified.
    pub key_id: String,
}

/// Signs the statement for `report`, whose file holds exactly `report_bytes`, with the secret key
/// in `key`, and writes the envelope to `out`.
///
/// # Errors
///
/// The key cannot be read, the report names no plugin file, or `out` cannot be written.
pub fn attest(report: &Report, report_bytes: &[u8], key: &Path, out: &Path) -> anyhow::Result<()> {
    let key = read_secret_key(key)?;
    let statement = Statement::for_report(report, report_bytes)?;
    let envelope = kyro_certification::attest::sign(&statement, &key);
    std::fs::write(out, envelope.to_json())
        .with_context(|| format!("failed to write attestation {}", out.display()))
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

/// `kyro plugin keygen`: a new key pair in `<prefix>.key` (the secret, readable by its owner
/// only) and `<prefix>.pub`. Never overwrites.
///
/// # Errors
///
/// The system has no randomness to give, or a file exists or cannot be written.
pub fn keygen(prefix: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut seed = [0_u8; 32];
    getrandom::fill(&mut seed).map_err(|err| anyhow::anyhow!("no system randomness: {err}"))?;
    let secret = SigningKey::from_seed(seed);
    let with_suffix = |suffix: &str| {
        let mut path = prefix.as_os_str().to_owned();
        path.push(suffix);
        PathBuf::from(path)
    };
    let (secret_path, public_path) = (with_suffix(".key"), with_suffix(".pub"));
    write_new(&secret_path, &secret.to_text(), 0o600)?;
    write_new(&public_path, &secret.public_key().to_text(), 0o644)?;
    Ok((secret_path, public_path))
}

fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file =
        options.open(path).with_context(|| format!("failed to create {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("failed to write {}", path.display()))
}

fn read_secret_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read attestation key {}", path.display()))?;
    SigningKey::from_text(&text).with_context(|| format!("attestation key {}", path.display()))
}

fn read_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read public key {}", path.display()))?;
    PublicKey::from_text(&text).with_context(|| format!("public key {}", path.display()))
}
