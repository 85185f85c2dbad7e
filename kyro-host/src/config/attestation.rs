//! `[attestation]` in `kyro.toml`: the public keys whose signed certification statements a
//! store's plugin must come with, and where each store's statement is. Checking a statement
//! against a plugin file is the `stores` layer's job, before the plugin is loaded.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kyro_certification::attest::PublicKey;
use serde::Deserialize;

use super::ConfigError;

/// `[attestation]`: every store's plugin must come with a statement signed by one of these keys,
/// saying it was certified by this host's suite version.
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

/// Reads a public key file.
///
/// # Errors
///
/// The file cannot be read or holds no public key.
pub fn read_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read public key {}", path.display()))?;
    PublicKey::from_text(&text).with_context(|| format!("public key {}", path.display()))
}
