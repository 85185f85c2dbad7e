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

use anyhow::Context;
use kyro_certification::{Profile, Summary, Verdict};
use kyro_connector_sdk::loader::{self, Plugin};
use kyro_connector_sdk::{Connector, ConnectorConfig, SetupFinding, SetupFindingsExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::terminal::Progress;

/// The environment variable `kyro init` names in the files it writes when none is given.
pub const DEFAULT_DSN_ENV: &str = "KYRO_PG_DSN";

/// `kyro init` subcommands: one per kind of store.
#[derive(Debug, clap::Subcommand)]
pub enum InitCommand {
    /// Check a PostgreSQL table for the pgvector connector. When it is ready: certify it, write
    /// kyro.toml and the store configuration, and print how to serve it. When it is not: print
    /// everything it lacks with the SQL that fixes it, change nothing, and exit 1.
    Pgvector(Box<PgvectorInitArgs>),
}

/// The options of `kyro init pgvector`.
#[derive(Debug, Clone, clap::Args)]
pub struct PgvectorInitArgs {
    /// The environment variable that holds the PostgreSQL URL; kyro.toml reads the DSN from it.
    #[arg(long, default_value = DEFAULT_DSN_ENV, value_name = "VAR")]
    pub dsn_env: String,
    /// The PostgreSQL URL for this run instead of --dsn-env's variable (a command line is visible
    /// to other users of the machine; prefer the variable). Never written to any file.
    #[arg(long, value_name = "URL")]
    pub dsn: Option<String>,
    /// The table, optionally schema-qualified (`schema.table`).
    #[arg(long)]
    pub table: String,
    /// How the table is written: `write_through` (through KyroDB's mutation API) or `event_feed`
    /// (by your own writers, which send change events).
    #[arg(long, default_value = "write_through", value_parser = ["write_through", "event_feed"])]
    pub ownership: String,
    /// The embedding's dimension (default: the embedding column's own `vector(N)`).
    #[arg(long)]
    pub dimension: Option<u32>,
    /// The distance searches rank by.
    #[arg(long, default_value = "cosine", value_parser = ["cosine", "l2", "inner_product"])]
    pub distance: String,
    /// The tenant column.
    #[arg(long, default_value = "tenant_id", value_name = "COLUMN")]
    pub tenant_column: String,
    /// The namespace column.
    #[arg(long, default_value = "namespace", value_name = "COLUMN")]
    pub namespace_column: String,
    /// The document id column.
    #[arg(long, default_value = "id", value_name = "COLUMN")]
    pub id_column: String,
    /// The embedding column.
    #[arg(long, default_value = "embedding", value_name = "COLUMN")]
    pub embedding_column: String,
    /// The metadata column (`jsonb`).
    #[arg(long, default_value = "metadata", value_name = "COLUMN")]
    pub metadata_column: String,
    /// The content column.
    #[arg(long, default_value = "content", value_name = "COLUMN")]
    pub content_column: String,
    /// The change-watermark column (`timestamptz`, `bigint` or `integer`).
    #[arg(long, default_value = "updated_at", value_name = "COLUMN")]
    pub watermark_column: String,
    /// Metadata keys retrieves may filter on (repeat, or separate with commas).
    #[arg(long = "filterable-key", value_name = "KEY", value_delimiter = ',')]
    pub filterable_keys: Vec<String>,
    /// Where to write kyro.toml and the files next to it.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The pgvector connector plugin (default: next to this executable).
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// The address kyro.toml tells `kyro serve` to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: String,
    /// The tenant of the sample retrieve written to retrieve.json.
    #[arg(long, default_value = "acme")]
    pub sample_tenant: String,
    /// The namespace of the sample retrieve written to retrieve.json.
    #[arg(long, default_value = "support")]
    pub sample_namespace: String,
    /// Overwrite files a previous run wrote.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kyro init`; prints the outcome and returns the exit code (0 ready and certified, 1
/// otherwise).
///
/// # Errors
///
/// Standard output cannot be written.
pub fn run(command: InitCommand) -> anyhow::Result<ExitCode> {
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

/// What `kyro init pgvector` found and did; also its `--json` form.
#[derive(Debug, Clone, Serialize)]
pub struct InitOutcome {
    /// The verdict.
    pub status: InitStatus,
    /// The table, as given.
    pub table: String,
    /// The ownership mode asked for.
    pub ownership_mode: String,
    /// One line: whether the table can back the mode, and why not.
    pub summary: String,
    /// Everything the connector found, blocking first-to-fix order; advisory ones too.
    pub findings: Vec<SetupFinding>,
    /// The declared dimension, once the store opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimension: Option<u32>,
    /// The distance.
    pub distance: String,
    /// The certification, once it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certification: Option<CertificationOutcome>,
    /// The files written, once the store was certified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<WrittenFiles>,
    /// What to run next.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<String>,
    /// The one sentence that says what to fix, when the store could not be checked at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The verdict of `kyro init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InitStatus {
    /// The table backs the mode, the store is certified, the files are written.
    Ready,
    /// The table lacks something; the findings say what and how to fix it.
    NotReady,
    /// The table opened but certification refused the store.
    NotCertified,
    /// The store could not be checked (plugin, DSN, connection, files).
    Error,
}

/// The certification `kyro init` ran.
#[derive(Debug, Clone, Serialize)]
pub struct CertificationOutcome {
    /// `certified`, `refused` or `invalid`.
    pub verdict: &'static str,
    /// The profile name (`pgvector/write_through`).
    pub profile: String,
    /// Checks by outcome.
    pub summary: Summary,
    /// Failed check ids.
    pub failed_checks: Vec<&'static str>,
    /// Check ids that could not run.
    pub error_checks: Vec<&'static str>,
    /// How long it took.
    pub duration_ms: u64,
}

/// The files `kyro init` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenFiles {
    /// The runtime's configuration.
    pub config: PathBuf,
    /// The store's configuration, for `kyro certify --store-config`.
    pub store_config: PathBuf,
    /// The data-plane token (owner-only).
    pub data_token: PathBuf,
    /// The observability and admin token (owner-only).
    pub admin_token: PathBuf,
    /// A scoped retrieve to send with `curl -d @...`.
    pub retrieve: PathBuf,
}

impl InitOutcome {
    fn new(args: &PgvectorInitArgs, status: InitStatus, summary: String) -> Self {
        Self {
            status,
            table: args.table.clone(),
            ownership_mode: args.ownership.clone(),
            summary,
            findings: Vec::new(),
            dimension: None,
            distance: args.distance.clone(),
            certification: None,
            files: None,
            next: Vec::new(),
            error: None,
        }
    }

    fn error(args: &PgvectorInitArgs, sentence: String) -> Self {
        let mut outcome = Self::new(args, InitStatus::Error, sentence.clone());
        outcome.error = Some(sentence);
        outcome
    }

    /// The outcome as text for people.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(error) = &self.error {
            text.push_str(&format!("error: {error}\n"));
            return text;
        }
        text.push_str(&self.summary);
        text.push('\n');
        let blocking: Vec<&SetupFinding> =
            self.findings.iter().filter(|finding| finding.is_blocking()).collect();
        let advisory: Vec<&SetupFinding> =
            self.findings.iter().filter(|finding| !finding.is_blocking()).collect();
        for (heading, findings) in [
            ("\nTo change before the table can back the store:\n", &blocking),
            ("\nRecommended (the store works without them):\n", &advisory),
        ] {
            if findings.is_empty() {
                continue;
            }
            text.push_str(heading);
            for (finding_idx, finding) in findings.iter().enumerate() {
                text.push_str(&format!(
                    "\n{}. {}\n   {}\n",
                    finding_idx + 1,
                    finding.requirement(),
                    finding.problem()
                ));
                if let Some(sql) = finding.fix_sql() {
                    text.push_str("   fix:\n");
                    for line in sql.lines() {
                        text.push_str(&format!("     {line}\n"));
                    }
                }
            }
        }
        if self.status == InitStatus::NotReady {
            text.push_str(
                "\nNothing was changed in the database. Run the statements you agree with, then run kyro init again.\n",
            );
        }
        if let Some(certification) = &self.certification
            && self.status == InitStatus::NotCertified
        {
            text.push_str(&format!(
                "\nCertification {}: failed {}; could not run {}. Run kyro certify with the same store configuration for the witnesses.\n",
                certification.verdict,
                list_or_none(&certification.failed_checks),
                list_or_none(&certification.error_checks),
            ));
        }
        if let Some(files) = &self.files {
            text.push_str("\nWrote:\n");
            let width = files
                .retrieve
                .display()
                .to_string()
                .len()
                .max(files.store_config.display().to_string().len());
            for (path, what) in [
                (&files.config, "the runtime's configuration (production mode)"),
                (&files.store_config, "the store's configuration, for kyro certify"),
                (&files.data_token, "the data-plane token (owner-only)"),
                (&files.admin_token, "the observability and admin token (owner-only)"),
                (&files.retrieve, "a scoped retrieve to try"),
            ] {
                text.push_str(&format!("  {:<width$}  {what}\n", path.display().to_string()));
            }
        }
        if !self.next.is_empty() {
            text.push_str("\nNext:\n");
            for line in &self.next {
                text.push_str(&format!("  {line}\n"));
            }
        }
        text
    }
}

fn list_or_none(ids: &[&str]) -> String {
    if ids.is_empty() { "none".to_owned() } else { ids.join(", ") }
}

/// Checks the table, and when it is ready certifies it and writes the files.
pub fn init_pgvector(args: &PgvectorInitArgs) -> InitOutcome {
    let (open_config, dsn_note) = match connector_config_for_this_run(args) {
        Ok(config) => config,
        Err(sentence) => return InitOutcome::error(args, sentence),
    };
    let plugin = match load_plugin(args.plugin.as_deref()) {
        Ok(plugin) => plugin,
        Err(err) => return InitOutcome::error(args, format!("{err:#}")),
    };

    let progress = Progress::start(&format!("checking table {}", args.table));
    let log_lines = Arc::new(Mutex::new(Vec::new()));
    let opened = plugin.open(
        &ConnectorConfig::from_json(open_config.to_string()),
        crate::certify::capturing_host(&log_lines),
    );
    let connector = match opened {
        Ok(connector) => connector,
        Err(err) => {
            if let Some(findings) = err.setup_findings() {
                progress.finish("not ready");
                let mut outcome =
                    InitOutcome::new(args, InitStatus::NotReady, findings.summary().to_owned());
                outcome.findings = findings.findings().to_vec();
                return outcome;
            }
            progress.finish("failed");
            return InitOutcome::error(
                args,
                format!("cannot open table {}: {}{dsn_note}", args.table, err.message()),
            );
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
        return InitOutcome::error(args, "the pgvector plugin declared no vector".to_owned());
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
    let progress = Progress::start("certifying the store (kyro certify's full profile)");
    let mut n_checks = 0_usize;
    let report =
        crate::certify::certify_loaded(&plugin, &open_config, Profile::Full, &mut |record| {
            n_checks += 1;
            progress.update(&format!("{n_checks} checks, last {}", record.id));
        });
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            progress.finish("failed");
            return InitOutcome {
                status: InitStatus::Error,
                error: Some(format!("certification could not open the store: {err:#}")),
                ..outcome
            };
        }
    };
    progress.finish(report.verdict.as_str());
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
        None => crate::quickstart::plugin_next_to_kyro(
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

/// The store's configuration as TOML lines, written both into `store.toml` and under
/// `[stores.config]` in `kyro.toml`. The DSN is named by its variable, never given.
struct StoreConfigText(String);

impl StoreConfigText {
    fn new(args: &PgvectorInitArgs, dimension: u32) -> Self {
        let columns = column_roles(args)
            .map(|(role, column)| format!("{role} = {}", toml_string(column)))
            .join(", ");
        let filterable_keys =
            args.filterable_keys.iter().map(|key| toml_string(key)).collect::<Vec<_>>().join(", ");
        Self(format!(
            "dsn = {{ env = {} }}  # read when kyro starts; the DSN is in no file\n\
             table = {}\n\
             dimension = {dimension}\n\
             distance = {}\n\
             ownership_mode = {}\n\
             filterable_keys = [{filterable_keys}]\n\
             columns = {{ {columns} }}\n",
            toml_string(&args.dsn_env),
            toml_string(&args.table),
            toml_string(&args.distance),
            toml_string(&args.ownership),
        ))
    }
}

/// `text` as a TOML basic string: JSON's escapes are a subset TOML reads the same way.
fn toml_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Where `kyro init` writes.
struct FilePaths {
    dir: PathBuf,
    config: PathBuf,
    store_config: PathBuf,
    data_token: PathBuf,
    admin_token: PathBuf,
    retrieve: PathBuf,
}

impl FilePaths {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            config: dir.join("kyro.toml"),
            store_config: dir.join("store.toml"),
            data_token: dir.join("data.token"),
            admin_token: dir.join("admin.token"),
            retrieve: dir.join("retrieve.json"),
        }
    }

    fn all(&self) -> [&Path; 5] {
        [&self.config, &self.store_config, &self.data_token, &self.admin_token, &self.retrieve]
    }

    /// Refuses to overwrite a previous run's files unless `force`.
    fn check_free(&self, force: bool) -> anyhow::Result<()> {
        if force {
            return Ok(());
        }
        if let Some(existing) = self.all().into_iter().find(|path| path.exists()) {
            anyhow::bail!(
                "{} already exists; pass --force to overwrite the files of a previous kyro init, or --dir to write elsewhere",
                existing.display()
            );
        }
        Ok(())
    }

    fn write(
        &self,
        args: &PgvectorInitArgs,
        store_config: &StoreConfigText,
        plugin: &Path,
        dimension: u32,
    ) -> anyhow::Result<WrittenFiles> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("failed to create {}", self.dir.display()))?;
        let plugin = plugin.canonicalize().unwrap_or_else(|_| plugin.to_path_buf());
        write_owner_only(&self.data_token, &crate::quickstart::token())?;
        write_owner_only(&self.admin_token, &crate::quickstart::token())?;
        write_file(
            &self.store_config,
            &format!(
                "# The pgvector store, written by `kyro init pgvector` after the store was certified.\n\
                 # Certify again: kyro certify --plugin {} --store-config store.toml\n\
                 # Keys: connectors/pgvector/src/config.rs.\n\n{}",
                plugin.display(),
                store_config.0
            ),
        )?;
        write_file(
            &self.config,
            &format!(
                "# Written by `kyro init pgvector`; keys are documented in kyro-host/src/config.rs.\n\
                 # Serve: kyro serve --config kyro.toml (with {} set to the PostgreSQL URL).\n\n\
                 listen = {}\nmode = \"production\"\ndefault_freshness = \"strict\"\nstate = \"sqlite://kyro-state.db\"\n\n\
                 [tokens]\n\
                 data = [{{ token = {{ file = \"data.token\" }} }}]\n\
                 observability = [{{ token = {{ file = \"admin.token\" }} }}]\n\
                 admin = [{{ token = {{ file = \"admin.token\" }} }}]\n\n\
                 [[stores]]\nid = \"pgvector\"\nplugin = {}\nownership_mode = {}\nnamespaces = [\"*\"]\n\n\
                 [stores.config]\n{}",
                args.dsn_env,
                toml_string(&args.listen),
                toml_string(&plugin.display().to_string()),
                toml_string(&args.ownership),
                store_config.0
            ),
        )?;
        // The written configuration must load as `kyro serve` will load it.
        crate::config::ValidatedConfig::load(&self.config).with_context(|| {
            format!("kyro init wrote {} but it does not load", self.config.display())
        })?;
        let retrieve = json!({
            "query_embedding": sample_embedding(dimension),
            "scope": { "tenant_id": args.sample_tenant, "namespace": args.sample_namespace },
            "top_k": 5,
            "freshness_mode": "strict",
        });
        write_file(&self.retrieve, &(retrieve.to_string() + "\n"))?;
        Ok(WrittenFiles {
            config: self.config.clone(),
            store_config: self.store_config.clone(),
            data_token: self.data_token.clone(),
            admin_token: self.admin_token.clone(),
            retrieve: self.retrieve.clone(),
        })
    }
}

/// A unit vector along the first axis: any table's embeddings rank against it.
fn sample_embedding(dimension: u32) -> Vec<f32> {
    let mut embedding = vec![0.0; dimension as usize];
    if let Some(first) = embedding.first_mut() {
        *first = 1.0;
    }
    embedding
}

fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("failed to write {}", path.display()))
}

/// Writes a secret readable and writable by its owner only (0600 on Unix), also when the file
/// existed with wider permissions.
pub(crate) fn write_owner_only(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("failed to restrict {}", path.display()))?;
        }
    }
    let mut file =
        options.open(path).with_context(|| format!("failed to write {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .with_context(|| format!("failed to write {}", path.display()))
}

/// The `kyro serve`, `kyro certify` and `curl` lines to try.
fn next_steps(args: &PgvectorInitArgs, files: &WrittenFiles) -> Vec<String> {
    let kyro = std::env::current_exe()
        .map(|exe| shell_quote(&exe.display().to_string()))
        .unwrap_or_else(|_| "kyro".to_owned());
    let mut lines = Vec::new();
    if args.dsn.is_some() {
        lines.push(format!("export {}='<the PostgreSQL URL you passed with --dsn>'", args.dsn_env));
    }
    lines.push(format!(
        "{kyro} serve --config {}",
        shell_quote(&files.config.display().to_string())
    ));
    lines.push(format!(
        "curl -s http://{}/v1/context/retrieve -H \"Authorization: Bearer $(cat {})\" -H 'Content-Type: application/json' -d @{}",
        args.listen,
        shell_quote(&files.data_token.display().to_string()),
        shell_quote(&files.retrieve.display().to_string())
    ));
    lines
}

/// `text` quoted for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || "/._-+:@".contains(character))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
