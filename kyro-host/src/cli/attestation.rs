//! `kyro certify --attest KEY` and `kyro plugin keygen`: signing certification statements and
//! making key pairs. Checking statements is `stores::attestation`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kyro_certification::Report;
use kyro_certification::attest::{SigningKey, Statement};

/// Signs the statement for `report`, whose file holds exactly `report_bytes`, with the secret key
/// in `key`, and writes the envelope to `out`.
///
/// # Errors
///
/// The key cannot be read, the report names no plugin file, or `out` cannot be written.
pub(crate) fn attest(
    report: &Report,
    report_bytes: &[u8],
    key: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let key = read_secret_key(key)?;
    let statement = Statement::for_report(report, report_bytes)?;
    let envelope = kyro_certification::attest::sign(&statement, &key);
    std::fs::write(out, envelope.to_json())
        .with_context(|| format!("failed to write attestation {}", out.display()))
}

/// `kyro plugin keygen`: a new key pair in `<prefix>.key` (the secret, readable by its owner
/// only) and `<prefix>.pub`. Never overwrites.
///
/// # Errors
///
/// The system has no randomness to give, or a file exists or cannot be written.
pub(crate) fn keygen(prefix: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
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
