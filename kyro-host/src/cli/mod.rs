//! The `kyro` command line: serve, certify, replay, inspect and the quickstart. This is the only
//! layer that prints to stdout or stderr; everything below it returns values.

mod attestation;
mod certify;
mod init;
mod inspect;
mod plugin;
mod quickstart;
mod replay;
mod scaffold;
mod serve;
mod terminal;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// KyroDB: the context runtime between AI agents and their vector stores.
#[derive(Debug, Parser)]
#[command(name = "kyro", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with connector plugin files.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Serve the runtime: certify every configured store, then answer the HTTP contract.
    Serve {
        /// The configuration file.
        #[arg(long, default_value = "kyro.toml")]
        config: PathBuf,
        /// Log JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Set up a store you already have: check it, certify it, write its configuration.
    Init {
        #[command(subcommand)]
        command: init::InitCommand,
    },
    /// The zero-setup tour: the runtime on Qdrant's embedded engine (or your PostgreSQL), a sample
    /// corpus, every freshness mode, then keep serving.
    Quickstart {
        /// Where to keep the tour's configuration and data (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The connector plugin (default: Qdrant's, or pgvector's with --pgvector, next to this
        /// executable).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// The listen address.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: String,
        /// Run the tour on this PostgreSQL with pgvector instead, in a private table it creates
        /// and drops when it stops. Never written to a file or printed.
        #[arg(long, value_name = "DSN")]
        pgvector: Option<String>,
    },
    /// Certify a connector plugin against its live store; exits 0 only when certified.
    Certify {
        /// The plugin file (a connector cdylib).
        #[arg(long)]
        plugin: PathBuf,
        /// The connector's configuration: TOML, or JSON when the name ends in .json.
        #[arg(long)]
        store_config: PathBuf,
        /// Also write the JSON report here.
        #[arg(long)]
        report_json: Option<PathBuf>,
        /// Also write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Print the JSON report on standard output instead of a line per check (progress goes
        /// to standard error, and only on a terminal is it rewritten in place).
        #[arg(long)]
        json: bool,
        /// Sign a statement binding the plugin file to the JSON report with this secret key file
        /// (see `kyro plugin keygen`).
        #[arg(long, requires = "report_json")]
        attest: Option<PathBuf>,
        /// Where to write the signed statement (default: the plugin file's path plus
        /// `.attestation.json`, where the host looks for it).
        #[arg(long, requires = "attest")]
        attestation: Option<PathBuf>,
        /// How thoroughly: `standard` (seconds) or `deep` (for a release's CI).
        #[arg(long, default_value = "standard", value_parser = ["standard", "deep"])]
        depth: String,
        /// Reproduce a run: the seed its report names.
        #[arg(long)]
        seed: Option<u64>,
        /// The call timeout the store will be served with (kyro.toml's `call_timeout_ms`);
        /// latency budgets derive from it.
        #[arg(long, default_value_t = 5000)]
        call_timeout_ms: u64,
    },
    /// Re-run an exported replay capture against a configuration and print the diff (a cutover
    /// gate): exits 0 when the candidate answered every step alike, 1 when it did not, 2 on error.
    Replay {
        /// The candidate's configuration file.
        #[arg(long, default_value = "kyro.toml")]
        config: PathBuf,
        /// The capture, as exported by `GET /v1/replay/capture`.
        #[arg(long)]
        capture: PathBuf,
        /// Also write the diff report here.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Let captured upserts and deletes reach the candidate's stores.
        #[arg(long)]
        allow_mutations: bool,
    },
}

/// Runs the `kyro` command line; returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, log_json } => {
            init_logging(log_json);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("failed to start the async runtime")?;
            runtime.block_on(async {
                let runtime = serve::build_runtime(&config).await?;
                serve::serve(runtime).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Quickstart { dir, plugin, listen, pgvector } => {
            init_logging(false);
            let backend = match pgvector {
                Some(dsn) => {
                    // SAFETY: this is kyro's main thread and no other thread has started yet, so
                    // nothing reads the environment while it changes.
                    unsafe { std::env::set_var(quickstart::PGVECTOR_DSN_ENV, dsn) };
                    quickstart::Backend::Pgvector
                }
                None => quickstart::Backend::EmbeddedQdrant,
            };
            quickstart::run(dir, plugin, &listen, backend)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { command } => init::run(command),
        Command::Certify {
            plugin,
            store_config,
            report_json,
            junit,
            json,
            attest,
            attestation,
            depth,
            seed,
            call_timeout_ms,
        } => {
            let attest = attest.map(|key| {
                let out = attestation
                    .unwrap_or_else(|| crate::config::attestation::default_statement_path(&plugin));
                (key, out)
            });
            let depth = if depth == "deep" {
                kyro_certification::Depth::Deep
            } else {
                kyro_certification::Depth::Standard
            };
            let options = kyro_certification::Options {
                depth,
                seed,
                call_timeout: std::time::Duration::from_millis(call_timeout_ms.max(1)),
                budget: None,
            };
            certify::certify(certify::CertifyCommand {
                plugin: &plugin,
                store_config: &store_config,
                report_json: report_json.as_deref(),
                junit: junit.as_deref(),
                json,
                attest,
                options,
            })
        }
        Command::Replay { config, capture, output, allow_mutations } => {
            match replay::replay(&config, &capture, output.as_deref(), allow_mutations) {
                Ok(true) => Ok(ExitCode::SUCCESS),
                Ok(false) => Ok(ExitCode::from(1)),
                Err(err) => {
                    let _ = writeln!(std::io::stderr().lock(), "error: {err:#}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Plugin { command } => plugin::run(command),
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KYRO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only where a person reads them: ANSI codes in a redirected log are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal::stderr_colors());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
