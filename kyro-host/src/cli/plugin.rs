//! `kyro plugin`: generate a connector crate, inspect a plugin file, verify a signed
//! certification statement, make a signing key pair.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{attestation, inspect, scaffold};

#[derive(Debug, Subcommand)]
pub(super) enum PluginCommand {
    /// Generate a connector crate (outside any workspace) that builds as a plugin and certifies
    /// once its store functions are written.
    New {
        /// The crate's and the plugin's name: a-z, 0-9, - and _, starting with a letter.
        name: String,
        /// Who writes the store: event-feed (the application, reporting changes to KyroDB),
        /// write-through (KyroDB, through this connector) or snapshot-bundle (nobody: versions).
        #[arg(long, default_value = "event-feed")]
        store_kind: String,
        /// Where to create the crate's directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The connector SDK's source directory (default: the one this kyro was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Print a plugin's name, versions, SHA-256 and capabilities without opening a store.
    Inspect {
        /// The plugin file (a connector cdylib).
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a signed certification statement against a plugin file (and its report); exits 0
    /// only when a trusted key signed it, it is about this file, and its verdict is certified.
    Verify {
        /// The statement (`kyro certify --attest` writes it).
        statement: PathBuf,
        /// A trusted public key file; repeat for several.
        #[arg(long, required = true)]
        key: Vec<PathBuf>,
        /// The plugin file.
        #[arg(long)]
        plugin: PathBuf,
        /// The JSON report the statement names, to check it too.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair for signing certification statements: PREFIX.key (secret) and
    /// PREFIX.pub.
    Keygen {
        /// The files' path without suffix.
        prefix: PathBuf,
    },
}

/// Runs one `kyro plugin` command.
///
/// # Errors
///
/// The command failed; the error says why.
pub(super) fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match command {
        PluginCommand::New { name, store_kind, dir, sdk } => {
            let template = scaffold::PluginTemplate {
                name,
                kind: store_kind.parse()?,
                sdk: sdk.unwrap_or_else(scaffold::default_sdk_path),
            };
            let created = scaffold::generate(&dir, &template)?;
            writeln!(
                stdout,
                "created {}: write src/store.rs, then see its README.md to certify",
                created.display()
            )?;
        }
        PluginCommand::Inspect { path, json } => {
            let inspection = inspect::inspect(&path)?;
            let text = if json {
                serde_json::to_string_pretty(&inspection)? + "\n"
            } else {
                inspection.to_text()
            };
            stdout.write_all(text.as_bytes())?;
        }
        PluginCommand::Verify { statement, key, plugin, report } => {
            let verified =
                crate::stores::attestation::verify(&key, &statement, &plugin, report.as_deref())?;
            let predicate = &verified.statement.predicate;
            writeln!(
                stdout,
                "verified: {} is certified as {} by suite {}, signed by key {}",
                plugin.display(),
                predicate.profile,
                predicate.suite_version,
                verified.key_id
            )?;
        }
        PluginCommand::Keygen { prefix } => {
            let (secret, public) = attestation::keygen(&prefix)?;
            writeln!(
                stdout,
                "wrote {} (secret: keep it out of the repository) and {}",
                secret.display(),
                public.display()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
