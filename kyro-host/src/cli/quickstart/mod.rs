//! `kyro quickstart`: the zero-setup tour. It starts the runtime on Qdrant's embedded engine in a
//! fresh directory (or, with `--pgvector DSN`, on a private table in the user's PostgreSQL),
//! certifies the store, loads a small corpus for two tenants, walks through the freshness modes
//! printing each packet, and then keeps serving with the tokens printed.
//!
//! The corpus is embedded with feature hashing (each word adds to one of 64 dimensions), so the
//! tour needs no model; retrieval quality is beside the point, freshness is the point.
//!
//! On PostgreSQL the tour's table is created with the statements the pgvector connector itself
//! gives for a missing table, and dropped when the tour stops (a killed process leaves it behind;
//! its name starts with `kyro_quickstart_`). It never creates anything else: a database without
//! the vector extension gets the connector's findings and no tour, and a role that may not create
//! tables gets the server's refusal.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use self::pgvector::PrivateTable;
use self::tour::{DIMENSION, embed, tour};

mod pgvector;
mod tour;

/// Finds the Qdrant plugin next to the running `kyro` executable.
///
/// # Errors
///
/// It is not there; the message says how to build it.
pub(crate) fn default_plugin() -> anyhow::Result<PathBuf> {
    plugin_next_to_kyro("kyro-connector-qdrant", "the embedded Qdrant plugin")
}

/// Finds the cdylib of the connector package `package` next to the running `kyro` executable,
/// where `cargo build` puts it.
///
/// # Errors
///
/// It is not there; the message names `what` and says how to build it.
pub(crate) fn plugin_next_to_kyro(package: &str, what: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to locate the kyro executable")?;
    let dir = exe.parent().context("the kyro executable has no directory")?;
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    let path = dir.join(&file);
    anyhow::ensure!(
        path.exists(),
        "{what} {} is not built; run `cargo build -p {package}` (or pass --plugin)",
        path.display()
    );
    Ok(path)
}

/// A new random token, long enough for every plane.
pub(crate) fn token() -> String {
    format!("kyro_{}", uuid::Uuid::new_v4().simple())
}

/// The store a tour runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TourStore<'a> {
    /// Qdrant's embedded engine, in the tour's directory.
    EmbeddedQdrant,
    /// A private table in the user's PostgreSQL, the DSN read from [`PGVECTOR_DSN_ENV`].
    Pgvector {
        /// The table's name.
        table: &'a str,
    },
}

/// The environment variable the pgvector tour's configuration names for its DSN, so the DSN is
/// never written into the tour's files; `kyro` sets it in its own process only.
pub(crate) const PGVECTOR_DSN_ENV: &str = "KYRO_QUICKSTART_PG_DSN";

/// Writes the tour's configuration into `dir` and returns its path and the tokens.
///
/// # Errors
///
/// The directory cannot be written.
pub(crate) fn write_config(
    dir: &Path,
    plugin: &Path,
    listen: &str,
    store: TourStore<'_>,
) -> anyhow::Result<(PathBuf, String, String)> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let (data_token, admin_token) = (token(), token());
    let store_config = match store {
        TourStore::EmbeddedQdrant => format!(
            "backend = \"embedded\"\npath = \"{}\"\ncollection = \"quickstart\"\ncreate_collection = true\n",
            dir.join("qdrant").display()
        ),
        TourStore::Pgvector { table } => format!(
            "dsn = {{ env = \"{PGVECTOR_DSN_ENV}\" }}\ntable = \"{table}\"\nownership_mode = \"write_through\"\n"
        ),
    };
    let config = format!(
        "# Written by `kyro quickstart`.\n\
         listen = \"{listen}\"\nmode = \"development\"\ndefault_freshness = \"balanced\"\nstate = \"sqlite://kyro-state.db\"\n\n\
         [tokens]\ndata = [{{ token = {{ value = \"{data_token}\" }} }}]\n\
         observability = [{{ token = {{ value = \"{admin_token}\" }} }}]\nadmin = [{{ token = {{ value = \"{admin_token}\" }} }}]\n\n\
         [[stores]]\nid = \"quickstart\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = [\"*\"]\n\n\
         [stores.config]\n{store_config}dimension = {DIMENSION}\ndistance = \"cosine\"\nfilterable_keys = [\"topic\"]\n",
        plugin.display(),
    );
    let path = dir.join("kyro.toml");
    std::fs::write(&path, config).with_context(|| format!("failed to write {}", path.display()))?;
    Ok((path, data_token, admin_token))
}

/// Which store `kyro quickstart` tours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// Qdrant's embedded engine, in the tour's directory.
    EmbeddedQdrant,
    /// The PostgreSQL whose DSN is in [`PGVECTOR_DSN_ENV`], in a private table.
    Pgvector,
}

/// `kyro quickstart`: writes the tour's configuration into `dir` (default: a new temporary
/// directory), certifies the store, runs the tour, prints the instructions and serves until
/// SIGTERM or ctrl-c; on PostgreSQL the private table is dropped when it stops, also after an
/// error.
///
/// # Errors
///
/// The plugin is missing, the store cannot be prepared or certified, or the address is taken.
pub(crate) fn run(
    dir: Option<PathBuf>,
    plugin: Option<PathBuf>,
    listen: &str,
    backend: Backend,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kyro-quickstart-{}", std::process::id()))
    });
    let plugin = match (plugin, backend) {
        (Some(plugin), _) => plugin,
        (None, Backend::EmbeddedQdrant) => default_plugin()?,
        (None, Backend::Pgvector) => {
            plugin_next_to_kyro("kyro-connector-pgvector", "the pgvector plugin")?
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "KyroDB quickstart in {}", dir.display())?;
    let table = match backend {
        Backend::EmbeddedQdrant => None,
        Backend::Pgvector => {
            writeln!(stdout, "Creating a private table for the tour in your PostgreSQL...")?;
            stdout.flush()?;
            let table = PrivateTable::create(&plugin, &PrivateTable::new_name())?;
            writeln!(
                stdout,
                "Created table \"{}\" in your PostgreSQL for the tour; it is dropped when the tour stops.",
                table.name()
            )?;
            Some(table)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let toured = tour_and_serve(&dir, &plugin, listen, table.as_ref(), stdout).await;
        let Some(table) = &table else { return toured };
        let dropped = table.drop_table().await;
        let mut stdout = std::io::stdout().lock();
        match &dropped {
            Ok(()) => writeln!(stdout, "Dropped table \"{}\".", table.name())?,
            Err(err) => writeln!(
                stdout,
                "Could not drop table \"{}\" ({err:#}); drop it yourself.",
                table.name()
            )?,
        }
        toured.and(dropped)
    })
}

async fn tour_and_serve(
    dir: &Path,
    plugin: &Path,
    listen: &str,
    table: Option<&PrivateTable>,
    mut stdout: std::io::StdoutLock<'static>,
) -> anyhow::Result<()> {
    let store = match table {
        Some(table) => TourStore::Pgvector { table: table.name() },
        None => TourStore::EmbeddedQdrant,
    };
    let (config, data_token, admin_token) = write_config(dir, plugin, listen, store)?;
    let what = match store {
        TourStore::EmbeddedQdrant => "the embedded Qdrant store",
        TourStore::Pgvector { .. } => "the pgvector store",
    };
    writeln!(stdout, "Certifying {what} before it may serve...")?;
    stdout.flush()?;
    let started = std::time::Instant::now();
    let runtime = super::serve::build_runtime(&config).await?;
    match runtime.refused.first() {
        Some(refused) => anyhow::bail!("the tour's store was refused: {}", refused.reason),
        None => writeln!(stdout, "  certified ({:.1}s)", started.elapsed().as_secs_f64())?,
    }
    // Bind before the tour, so the address is taken (or refused) before anything is printed
    // and accepts connections as soon as the instructions say so.
    let listener = super::serve::bind(&runtime).await?;
    tour(&runtime, &mut stdout).await?;
    write!(stdout, "{}", instructions(listen, &data_token, &admin_token, &config))?;
    stdout.flush()?;
    drop(stdout);
    super::serve::serve_on(listener, runtime).await
}

/// The closing instructions, with a ready-to-run `curl`.
pub(crate) fn instructions(
    listen: &str,
    data_token: &str,
    admin_token: &str,
    config: &Path,
) -> String {
    let body = json!({
        "query_embedding": embed("how long do refunds take"),
        "scope": { "tenant_id": "acme", "namespace": "support", "embedding_model_id": "quickstart-hashing-64" },
        "top_k": 3,
        "freshness_mode": "strict",
    });
    format!(
        "\nkyro is serving on http://{listen} (config {}).\n\
         data token:  {data_token}\nadmin token: {admin_token} (also valid for traces)\n\n\
         Try it:\n  curl -s http://{listen}/v1/context/retrieve \\\n    -H 'Authorization: Bearer {data_token}' \\\n    -H 'Content-Type: application/json' \\\n    -d '{body}'\n\n\
         Press ctrl-c to stop.\n",
        config.display()
    )
}
