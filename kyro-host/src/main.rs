//! The `kyro` command line: a thin layer over `kyro_host`'s modules.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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
