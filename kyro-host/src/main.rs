//! The `kyro` command line: a thin layer over `kyro_host`'s modules.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: a request allocates and frees hundreds of small
/// strings and maps across threads, and glibc spent about 12% of a reuse hit's CPU in
/// `malloc`, `free` and bin consolidation (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// The zero-setup tour: the runtime on Qdrant's embedded engine, a sample corpus, every
    /// freshness mode, then keep serving.
    Quickstart {
        /// Where to keep the tour's configuration and data (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The Qdrant connector plugin (default: next to this executable).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// The listen address.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: String,
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

fn main() -> ExitCode {
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
                let runtime = kyro_host::serve::build_runtime(&config).await?;
                kyro_host::serve::serve(runtime).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Quickstart { dir, plugin, listen } => {
            init_logging(false);
            quickstart(dir, plugin, &listen)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Certify {
            plugin,
            store_config,
            report_json,
            junit,
            depth,
            seed,
            call_timeout_ms,
        } => {
            let options = kyro_certification::Options {
                depth: if depth == "deep" {
                    kyro_certification::Depth::Deep
                } else {
                    kyro_certification::Depth::Standard
                },
                seed,
                call_timeout: std::time::Duration::from_millis(call_timeout_ms.max(1)),
                budget: None,
            };
            certify(&plugin, &store_config, report_json.as_deref(), junit.as_deref(), options)
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
            let inspection = kyro_host::inspect::inspect(&path)?;
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

fn quickstart(dir: Option<PathBuf>, plugin: Option<PathBuf>, listen: &str) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kyro-quickstart-{}", std::process::id()))
    });
    let plugin = match plugin {
        Some(plugin) => plugin,
        None => kyro_host::quickstart::default_plugin()?,
    };
    let (config, data_token, admin_token) =
        kyro_host::quickstart::write_config(&dir, &plugin, listen)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "KyroDB quickstart in {}", dir.display())?;
    writeln!(stdout, "Certifying the embedded Qdrant store before it may serve...")?;
    stdout.flush()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let runtime = kyro_host::serve::build_runtime(&config).await?;
        // Bind before the tour, so the address is taken (or refused) before anything is printed
        // and accepts connections as soon as the instructions say so.
        let listener = kyro_host::serve::bind(&runtime).await?;
        kyro_host::quickstart::tour(&runtime, &mut stdout).await?;
        write!(
            stdout,
            "{}",
            kyro_host::quickstart::instructions(listen, &data_token, &admin_token, &config)
        )?;
        stdout.flush()?;
        drop(stdout);
        kyro_host::serve::serve_on(listener, runtime).await
    })
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KYRO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `kyro certify`: every line it prints and every file it writes is scrubbed of every part of
/// the configuration's secrets first, whatever the connector put into its answers.
fn certify(
    plugin: &Path,
    store_config: &Path,
    report_json: Option<&Path>,
    junit: Option<&Path>,
    options: kyro_certification::Options,
) -> anyhow::Result<ExitCode> {
    let config = kyro_host::certify::read_store_config(store_config)?;
    let secrets = kyro_certification::SecretSet::from_config(&config);
    let mut stdout = std::io::stdout().lock();
    let report = kyro_host::certify::certify_plugin(plugin, &config, options, &mut |record| {
        let _ = writeln!(stdout, "{}", secrets.scrub(&record.to_line()));
    })
    .map_err(|err| anyhow::anyhow!(secrets.scrub(&format!("{err:#}"))))?;
    writeln!(stdout, "{}", secrets.scrub(&report.summary_line()))?;
    if let Some(path) = report_json {
        std::fs::write(path, secrets.scrub(&report.to_json()?) + "\n")
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    if let Some(path) = junit {
        std::fs::write(path, secrets.scrub(&report.to_junit()))
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
            writeln!(
                std::io::stderr().lock(),
                "error: certification invalid; {}",
                secrets.scrub(&detail)
            )?;
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
        runtime.block_on(kyro_host::evidence::replay_command(config, capture, allow_mutations))?;
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
