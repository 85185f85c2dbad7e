//! The `kyro` command line: serve, certify, replay, inspect and the quickstart. This is the only
//! layer that prints to stdout or stderr; everything below it returns values.

mod init;
mod inspect;
mod quickstart;
mod replay;
mod serve;
mod terminal;

use std::io::Write;
use std::path::{Path, PathBuf};
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
        command: PluginCommand,
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

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a plugin's name, versions, SHA-256 and capabilities without opening a store.
    Inspect {
        /// The plugin file (a connector cdylib).
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
        Command::Certify { plugin, store_config, report_json, junit, json } => {
            certify(&plugin, &store_config, report_json.as_deref(), junit.as_deref(), json)
        }
        Command::Replay { config, capture, output, allow_mutations } => {
            match replay(&config, &capture, output.as_deref(), allow_mutations) {
                Ok(true) => Ok(ExitCode::SUCCESS),
                Ok(false) => Ok(ExitCode::from(1)),
                Err(err) => {
                    let _ = writeln!(std::io::stderr().lock(), "error: {err:#}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Plugin { command: PluginCommand::Inspect { path, json } } => {
            let inspection = inspect::inspect(&path)?;
            let text = if json {
                serde_json::to_string_pretty(&inspection)? + "\n"
            } else {
                inspection.to_text()
            };
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
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

fn certify(
    plugin: &Path,
    store_config: &Path,
    report_json: Option<&Path>,
    junit: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = crate::stores::certify::read_store_config(store_config)?;
    let mut stdout = std::io::stdout().lock();
    let progress = json.then(|| terminal::Progress::start("certifying"));
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
        std::fs::write(path, report.to_json()? + "\n")
            .with_context(|| format!("failed to write {}", path.display()))?;
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

fn replay(
    config: &Path,
    capture: &Path,
    output: Option<&Path>,
    allow_mutations: bool,
) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let (identical, report) =
        runtime.block_on(replay::replay_command(config, capture, allow_mutations))?;
    let text = serde_json::to_string_pretty(&report)? + "\n";
    if let Some(output) = output {
        std::fs::write(output, &text)
            .with_context(|| format!("failed to write {}", output.display()))?;
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    let _ = writeln!(
        std::io::stderr().lock(),
        "replay: {} of {} steps compared, {} changed, {} missing, {} refused: {}",
        report["steps_compared"],
        report["baseline_steps"],
        report["steps_changed"],
        report["missing_in_candidate"].as_array().map_or(0, Vec::len),
        report["refused_steps"].as_array().map_or(0, Vec::len),
        if identical { "identical" } else { "DIFFERS" }
    );
    Ok(identical)
}
