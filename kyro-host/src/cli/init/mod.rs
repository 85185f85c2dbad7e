//! `kyro init pgvector`: from a PostgreSQL DSN and a table to a certified store, or an exact list
//! of what to change.
//!
//! It loads the pgvector plugin (next to `kyro`, as the quickstart finds the Qdrant plugin) and
//! opens it on the table. When the table cannot back the store, the connector's setup findings are
//! printed, every one with the SQL that would fix it, and nothing else happens. When it can, the
//! store is certified (the full profile `kyro certify` runs), and only then are `kyro.toml`, the
//! store configuration for `kyro certify`, two tokens (each in its own owner-only file, which
//! `kyro.toml` names) and a sample retrieve written; the `kyro serve` and `curl` lines to try are
//! printed last.
//!
//! What it deliberately does not do: change the database (the fixes are for a person to review
//! and run), or write the DSN anywhere: every file reads it from an environment variable, and
//! neither the DSN nor its password is ever printed. `--json` prints one JSON document instead of
//! text, for scripts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use kyro_certification::Verdict;
use kyro_connector_sdk::loader::{self, Plugin};
use kyro_connector_sdk::{Connector, ConnectorConfig, SetupFinding, SetupFindingsExt};
use serde_json::{Value, json};

use self::files::{FilePaths, StoreConfigText, next_steps};
use self::outcome::{CertificationOutcome, InitOutcome, InitStatus};
use super::terminal::Progress;

mod files;
mod outcome;

/// The environment variable `kyro init` names in the files it writes when none is given.
pub(crate) const DEFAULT_DSN_ENV: &str = "KYRO_PG_DSN";

/// `kyro init` subcommands: one per kind of store.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum InitCommand {
    /// Check a PostgreSQL table for the pgvector connector. When it is ready: certify it, write
    /// kyro.toml and the store configuration, and print how to serve it. When it is not: print
    /// everything it lacks with the SQL that fixes it, change nothing, and exit 1.
    Pgvector(Box<PgvectorInitArgs>),
}

/// The options of `kyro init pgvector`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PgvectorInitArgs {
    /// The environment variable that holds the PostgreSQL URL; kyro.toml reads the DSN from it.
    #[arg(long, default_value = DEFAULT_DSN_ENV, value_name = "VAR")]
    pub(crate) dsn_env: String,
    /// The PostgreSQL URL for this run instead of --dsn-env's variable (a command line is visible
    /// to other users of the machine; prefer the variable). Never written to any file.
    #[arg(long, value_name = "URL")]
    pub(crate) dsn: Option<String>,
    /// The table, optionally schema-qualified (`schema.table`).
    #[arg(long)]
    pub(crate) table: String,
    /// How the table is written: `write_through` (through KyroDB's mutation API) or `event_feed`
    /// (by your own writers, which send change events).
    #[arg(long, default_value = "write_through", value_parser = ["write_through", "event_feed"])]
    pub(crate) ownership: String,
    /// The embedding's dimension (default: the embedding column's own `vector(N)`).
    #[arg(long)]
    pub(crate) dimension: Option<u32>,
    /// The distance searches rank by.
    #[arg(long, default_value = "cosine", value_parser = ["cosine", "l2", "inner_product"])]
    pub(crate) distance: String,
    /// The tenant column.
    #[arg(long, default_value = "tenant_id", value_name = "COLUMN")]
    pub(crate) tenant_column: String,
    /// The namespace column.
    #[arg(long, default_value = "namespace", value_name = "COLUMN")]
    pub(crate) namespace_column: String,
    /// The document id column.
    #[arg(long, default_value = "id", value_name = "COLUMN")]
    pub(crate) id_column: String,
    /// The embedding column.
    #[arg(long, default_value = "embedding", value_name = "COLUMN")]
    pub(crate) embedding_column: String,
    /// The metadata column (`jsonb`).
    #[arg(long, default_value = "metadata", value_name = "COLUMN")]
    pub(crate) metadata_column: String,
    /// The content column.
    #[arg(long, default_value = "content", value_name = "COLUMN")]
    pub(crate) content_column: String,
    /// The change-watermark column (`timestamptz`, `bigint` or `integer`).
    #[arg(long, default_value = "updated_at", value_name = "COLUMN")]
    pub(crate) watermark_column: String,
    /// Metadata keys retrieves may filter on (repeat, or separate with commas).
    #[arg(long = "filterable-key", value_name = "KEY", value_delimiter = ',')]
    pub(crate) filterable_keys: Vec<String>,
    /// Where to write kyro.toml and the files next to it.
    #[arg(long, default_value = ".")]
    pub(crate) dir: PathBuf,
    /// The pgvector connector plugin (default: next to this executable).
    #[arg(long)]
    pub(crate) plugin: Option<PathBuf>,
    /// The address kyro.toml tells `kyro serve` to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub(crate) listen: String,
    /// The tenant of the sample retrieve written to retrieve.json.
    #[arg(long, default_value = "acme")]
    pub(crate) sample_tenant: String,
    /// The namespace of the sample retrieve written to retrieve.json.
    #[arg(long, default_value = "support")]
    pub(crate) sample_namespace: String,
    /// Overwrite files a previous run wrote.
    #[arg(long)]
    pub(crate) force: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Runs `kyro init`; prints the outcome and returns the exit code (0 ready and certified, 1
/// otherwise).
///
/// # Errors
///
/// Standard output cannot be written.
pub(crate) fn run(command: InitCommand) -> anyhow::Result<ExitCode> {
    let InitCommand::Pgvector(args) = command;
    let outcome = init_pgvector(&args);
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&outcome)?)?;
    } else {
        stdout.write_all(outcome.to_text().as_bytes())?;
    }
    Ok(match outcome.status {
        InitStatus::Ready => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// Checks the table, and when it is ready certifies it and writes the files.
pub(crate) fn init_pgvector(args: &PgvectorInitArgs) -> InitOutcome {
    let (open_config, dsn_note) = match connector_config_for_this_run(args) {
        Ok(config) => config,
        Err(sentence) => return InitOutcome::error(args, sentence),
    };
    let plugin = match load_plugin(args.plugin.as_deref()) {
        Ok(plugin) => plugin,
        Err(err) => return InitOutcome::error(args, format!("{err:#}")),
    };

    let (dimension, advisories) = match check_table(args, &plugin, &open_config, &dsn_note) {
        Ok(checked) => checked,
        Err(outcome) => return *outcome,
    };
    let mut outcome = InitOutcome::new(
        args,
        InitStatus::Ready,
        format!(
            "table {} can back a pgvector store with ownership_mode {} (dimension {dimension}, {} distance)",
            args.table, args.ownership, args.distance
        ),
    );
    outcome.findings = advisories;
    outcome.dimension = Some(dimension);

    let paths = FilePaths::new(&args.dir);
    if let Err(err) = paths.check_free(args.force) {
        return InitOutcome {
            status: InitStatus::Error,
            error: Some(format!("{err:#}")),
            ..outcome
        };
    }

    let mut open_config = open_config;
    open_config["dimension"] = json!(dimension);
    let report = match certify(&plugin, &open_config, outcome) {
        Ok((report, certified)) => {
            outcome = certified;
            report
        }
        Err(outcome) => return *outcome,
    };
    outcome.certification = Some(CertificationOutcome {
        verdict: report.verdict.as_str(),
        profile: report.profile.clone(),
        summary: report.summary,
        failed_checks: report.failed_checks.clone(),
        error_checks: report.error_checks.clone(),
        duration_ms: report.duration_ms,
    });
    if report.verdict != Verdict::Certified {
        outcome.status = InitStatus::NotCertified;
        outcome.summary = format!(
            "table {} opened, but certification {} the store; no files were written",
            args.table,
            if report.verdict == Verdict::Refused { "refused" } else { "could not finish for" }
        );
        return outcome;
    }
    outcome.summary.push_str(&format!(
        "; certified: {} checks passed, {} not applicable ({:.1}s)",
        report.summary.passed,
        report.summary.not_applicable,
        report.duration_ms as f64 / 1000.0
    ));

    let store_config = StoreConfigText::new(args, dimension);
    match paths.write(args, &store_config, plugin.path(), dimension) {
        Ok(files) => {
            outcome.next = next_steps(args, &files);
            outcome.files = Some(files);
            outcome
        }
        Err(err) => {
            InitOutcome { status: InitStatus::Error, error: Some(format!("{err:#}")), ..outcome }
        }
    }
}

/// Opens the table through the plugin: its dimension and the advisory findings it logged, or
/// the outcome that says what the table lacks.
fn check_table(
    args: &PgvectorInitArgs,
    plugin: &Plugin,
    open_config: &Value,
    dsn_note: &str,
) -> Result<(u32, Vec<SetupFinding>), Box<InitOutcome>> {
    let progress = Progress::start(&format!("checking table {}", args.table));
    let log_lines = Arc::new(Mutex::new(Vec::new()));
    let opened = plugin.open(
        &ConnectorConfig::from_json(open_config.to_string()),
        kyro_certification::capturing_host(&log_lines),
    );
    let connector = match opened {
        Ok(connector) => connector,
        Err(err) => {
            if let Some(findings) = err.setup_findings() {
                progress.finish("not ready");
                let mut outcome =
                    InitOutcome::new(args, InitStatus::NotReady, findings.summary().to_owned());
                outcome.findings = findings.findings().to_vec();
                return Err(Box::new(outcome));
            }
            progress.finish("failed");
            return Err(Box::new(InitOutcome::error(
                args,
                format!("cannot open table {}: {}{dsn_note}", args.table, err.message()),
            )));
        }
    };
    progress.finish("ready");
    let manifest = connector.describe();
    drop(connector);
    let advisories: Vec<SetupFinding> = log_lines
        .lock()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|line| line.split_once(' '))
                .filter_map(|(_, message)| SetupFinding::from_log_line(message))
                .collect()
        })
        .unwrap_or_default();
    let Some(dimension) = manifest.vector.map(|vector| vector.dimension) else {
        return Err(Box::new(InitOutcome::error(
            args,
            "the pgvector plugin declared no vector".to_owned(),
        )));
    };
    Ok((dimension, advisories))
}

/// Certifies the opened table with `kyro certify`'s full profile.
fn certify(
    plugin: &Plugin,
    open_config: &Value,
    outcome: InitOutcome,
) -> Result<(kyro_certification::Report, InitOutcome), Box<InitOutcome>> {
    let progress = Progress::start("certifying the store (kyro certify's full profile)");
    let mut n_checks = 0_usize;
    let report = crate::stores::certify::certify_loaded(
        plugin,
        open_config,
        full_profile(),
        &mut |record| {
            n_checks += 1;
            progress.update(&format!("{n_checks} checks, last {}", record.id));
        },
    );
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            progress.finish("failed");
            return Err(Box::new(InitOutcome {
                status: InitStatus::Error,
                error: Some(format!("certification could not open the store: {err:#}")),
                ..outcome
            }));
        }
    };
    progress.finish(report.verdict.as_str());
    Ok((report, outcome))
}

/// The connector configuration for this run (the DSN from `--dsn` inline, or from the
/// variable), and what to add to a connection error about where the DSN came from.
fn connector_config_for_this_run(args: &PgvectorInitArgs) -> Result<(Value, String), String> {
    let (dsn, note) = match &args.dsn {
        Some(dsn) => (json!({ "value": dsn }), " (the DSN given with --dsn)".to_owned()),
        None => {
            if std::env::var_os(&args.dsn_env).is_none() {
                return Err(format!(
                    "environment variable {} is not set; export it with your PostgreSQL URL (postgres://user:password@host:port/database), or name another with --dsn-env",
                    args.dsn_env
                ));
            }
            (json!({ "env": args.dsn_env }), format!(" (the DSN read from {})", args.dsn_env))
        }
    };
    let mut config = connector_config(args, dsn);
    if let Some(dimension) = args.dimension {
        config["dimension"] = json!(dimension);
    }
    Ok((config, note))
}

/// The connector's configuration as JSON, with `dsn` as given and without a dimension.
fn connector_config(args: &PgvectorInitArgs, dsn: Value) -> Value {
    json!({
        "dsn": dsn,
        "table": args.table,
        "distance": args.distance,
        "ownership_mode": args.ownership,
        "filterable_keys": args.filterable_keys,
        "columns": columns(args),
    })
}

fn columns(args: &PgvectorInitArgs) -> Value {
    Value::Object(
        column_roles(args)
            .into_iter()
            .map(|(role, column)| (role.to_owned(), json!(column)))
            .collect(),
    )
}

/// Each column role of the connector's `columns` table, with the column given for it.
fn column_roles(args: &PgvectorInitArgs) -> [(&'static str, &str); 7] {
    [
        ("tenant", &args.tenant_column),
        ("namespace", &args.namespace_column),
        ("id", &args.id_column),
        ("embedding", &args.embedding_column),
        ("metadata", &args.metadata_column),
        ("content", &args.content_column),
        ("watermark", &args.watermark_column),
    ]
}

fn load_plugin(path: Option<&Path>) -> anyhow::Result<Plugin> {
    let path = match path {
        Some(path) => path.to_path_buf(),
        None => crate::cli::quickstart::plugin_next_to_kyro(
            "kyro-connector-pgvector",
            "the pgvector plugin",
        )?,
    };
    let plugin = loader::load(&path)?;
    anyhow::ensure!(
        plugin.info().name == "pgvector",
        "{} is the {} plugin, not pgvector's",
        path.display(),
        plugin.info().name
    );
    Ok(plugin)
}

/// `kyro certify`'s own options: the standard depth, a new seed, the default call timeout.
fn full_profile() -> kyro_certification::Options {
    kyro_certification::Options {
        depth: kyro_certification::Depth::Standard,
        seed: None,
        call_timeout: std::time::Duration::from_millis(5000),
        budget: None,
    }
}
