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
use std::sync::Arc;

use anyhow::Context;
use kyro_connector_sdk::SetupFindingsExt;
use kyro_core::{Document, DocumentId, Metadata, Revision, Scope};
use serde_json::{Value, json};

use crate::api::{ChangeEvent, ContextPacket, RetrieveRequest, ScopeDto, TargetDto};
use crate::runtime::Runtime;

/// The dimension of the tour's hashed embeddings.
pub const DIMENSION: usize = 64;

/// Feature-hashed embedding of `text`: lowercase words, FNV-hashed into `DIMENSION` buckets,
/// normalized.
pub fn embed(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0_f32; DIMENSION];
    for word in
        text.split(|character: char| !character.is_alphanumeric()).filter(|word| word.len() > 2)
    {
        let word = word.to_lowercase();
        let hash = kyro_core::planner::Fingerprinter::default().field(&word).finish().0;
        let bucket = (hash % DIMENSION as u64) as usize;
        vector[bucket] += if hash & (1 << 63) == 0 { 1.0 } else { -1.0 };
    }
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|value| *value /= norm);
    } else {
        vector[0] = 1.0;
    }
    vector
}

const CORPUS: &[(&str, &str, &str, &str)] = &[
    ("acme", "refund-policy", "billing", "Refunds are issued within 14 days of a return request."),
    (
        "acme",
        "shipping",
        "logistics",
        "Orders ship within two business days from the Lisbon warehouse.",
    ),
    (
        "acme",
        "warranty",
        "support",
        "Hardware carries a two year warranty covering manufacturing defects.",
    ),
    (
        "acme",
        "password-reset",
        "account",
        "Reset your password from the sign-in page using the emailed link.",
    ),
    (
        "globex",
        "refund-policy",
        "billing",
        "Globex refunds store credit only, never cash, within 30 days.",
    ),
    (
        "globex",
        "onboarding",
        "account",
        "New Globex accounts are verified by a phone call within a day.",
    ),
    (
        "globex",
        "outages",
        "support",
        "Service status and outage reports live on status.globex.example.",
    ),
];

/// Finds the Qdrant plugin next to the running `kyro` executable.
///
/// # Errors
///
/// It is not there; the message says how to build it.
pub fn default_plugin() -> anyhow::Result<PathBuf> {
    plugin_next_to_kyro("kyro-connector-qdrant", "the embedded Qdrant plugin")
}

/// Finds the cdylib of the connector package `package` next to the running `kyro` executable,
/// where `cargo build` puts it.
///
/// # Errors
///
/// It is not there; the message names `what` and says how to build it.
pub fn plugin_next_to_kyro(package: &str, what: &str) -> anyhow::Result<PathBuf> {
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

/// The tour's private table in the user's PostgreSQL: created from the pgvector connector's own
/// statement for a missing table, dropped with [`PrivateTable::drop_table`] when the tour stops.
#[derive(Debug)]
pub struct PrivateTable {
    name: String,
}

impl PrivateTable {
    /// A fresh name no one else uses.
    pub fn new_name() -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("kyro_quickstart_{}", &id[..12])
    }

    /// Opens `plugin` on the (missing) table `name` with the DSN in [`PGVECTOR_DSN_ENV`], and
    /// when the connector's only finding is the missing table, runs the statements it gives.
    /// Call it outside any async runtime: the plugin blocks on its own.
    ///
    /// # Errors
    ///
    /// The connection failed (the connector's sentence, which never holds the DSN), or the
    /// database lacks more than the table (each finding with its fix, nothing created).
    pub fn create(plugin: &Path, name: &str) -> anyhow::Result<Self> {
        let plugin = kyro_connector_sdk::loader::load(plugin)?;
        let config = json!({
            "dsn": { "env": PGVECTOR_DSN_ENV },
            "table": name,
            "dimension": DIMENSION,
            "distance": "cosine",
            "ownership_mode": "write_through",
        });
        let opened = plugin.open(
            &kyro_connector_sdk::ConnectorConfig::from_json(config.to_string()),
            kyro_connector_sdk::HostContext::discard(),
        );
        let Err(err) = opened else {
            anyhow::bail!("table {name} already exists; the tour needs a table of its own");
        };
        let Some(findings) = err.setup_findings() else {
            anyhow::bail!("cannot use the PostgreSQL given with --pgvector: {}", err.message());
        };
        let statements = match findings.findings() {
            [missing_table] => missing_table.fix_sql().map(str::to_owned),
            _ => None,
        };
        let Some(statements) = statements else {
            // The tour's own table is missing by design; everything else is the database's.
            let own_table = format!("table \"{name}\"");
            let mut text = String::new();
            for finding in findings.findings() {
                if finding.requirement() == own_table {
                    continue;
                }
                text.push_str(&format!("\n  - {finding}"));
                if let Some(sql) = finding.fix_sql() {
                    text.push_str(&format!("\n    fix: {}", sql.replace('\n', "\n         ")));
                }
            }
            anyhow::bail!("the tour cannot run on this database; it needs:{text}");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start the async runtime")?;
        runtime.block_on(execute(&statements))?;
        Ok(Self { name: name.to_owned() })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the table.
    ///
    /// # Errors
    ///
    /// The database refused (its own message, never the DSN).
    pub async fn drop_table(&self) -> anyhow::Result<()> {
        execute(&format!("DROP TABLE IF EXISTS \"{}\"", self.name)).await
    }
}

/// Runs `statements` on the DSN in [`PGVECTOR_DSN_ENV`] in one connection. Errors carry the
/// server's message only, never the connection URL.
async fn execute(statements: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let dsn = std::env::var(PGVECTOR_DSN_ENV)
        .with_context(|| format!("{PGVECTOR_DSN_ENV} is not set"))?;
    let server_message = |err: sqlx::Error| match err {
        sqlx::Error::Database(database) => {
            anyhow::anyhow!("PostgreSQL refused the tour's table: {}", database.message())
        }
        _ => anyhow::anyhow!("the connection to PostgreSQL failed"),
    };
    let mut connection =
        sqlx::postgres::PgConnection::connect(&dsn).await.map_err(server_message)?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statements.to_owned()))
        .execute(&mut connection)
        .await
        .map_err(server_message)?;
    let _ = connection.close().await;
    Ok(())
}

/// A new random token, long enough for every plane.
pub(crate) fn token() -> String {
    format!("kyro_{}", uuid::Uuid::new_v4().simple())
}

/// The store a tour runs on.
#[derive(Debug, Clone, Copy)]
pub enum TourStore<'a> {
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
pub const PGVECTOR_DSN_ENV: &str = "KYRO_QUICKSTART_PG_DSN";

/// Writes the tour's configuration into `dir` and returns its path and the tokens.
///
/// # Errors
///
/// The directory cannot be written.
pub fn write_config(
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

fn retrieve_request(tenant: &str, query: &str, mode: &str) -> RetrieveRequest {
    RetrieveRequest {
        query_embedding: embed(query).into_iter().map(f64::from).collect(),
        query_text: Some(query.to_owned()),
        scope: ScopeDto {
            tenant_id: tenant.to_owned(),
            namespace: "support".to_owned(),
            app_id: None,
            locale: None,
            auth_scope: None,
            entitlement_boundary: None,
            embedding_model_id: Some("quickstart-hashing-64".to_owned()),
            reranker_version: None,
            prompt_template_version: None,
        },
        filters: None,
        top_k: Some(3),
        freshness_mode: Some(mode.to_owned()),
        required_generation: None,
        include_content: Some(true),
    }
}

/// A packet, printed for people.
pub fn describe_packet(packet: &ContextPacket) -> String {
    let mut text = format!(
        "  status {}  path {}  served {} (asked {})  generation {}  proof {}\n",
        packet.status,
        packet.meta.execution_path,
        packet.freshness.served_mode,
        packet.freshness.requested_mode,
        packet.freshness.generation,
        packet.meta.proof_diagnostics.proof_status,
    );
    for item in &packet.items {
        text.push_str(&format!(
            "    {:>5.3}  {:<16} rev {:<3} {}\n",
            item.score,
            item.id,
            item.provenance.doc_revision.as_deref().unwrap_or("-"),
            item.content.as_deref().unwrap_or("")
        ));
    }
    for omission in &packet.omissions {
        text.push_str(&format!(
            "    omitted {} ({}): {}\n",
            omission.id,
            omission.reason,
            omission.detail.as_deref().unwrap_or("")
        ));
    }
    for warning in &packet.warnings {
        text.push_str(&format!("    warning: {warning}\n"));
    }
    text.push_str(&format!("    trace {}\n", packet.trace_id));
    text
}

async fn upsert(
    runtime: &Runtime,
    tenant: &str,
    id: &str,
    topic: &str,
    content: &str,
    revision: &str,
) -> anyhow::Result<()> {
    let scope = Scope::new(tenant, "support")?;
    let metadata = Metadata::new([("topic".to_owned(), topic.to_owned())].into_iter().collect())?;
    let embedding = kyro_core::Embedding::new(embed(content))?;
    let document = Document::new(
        DocumentId::new(id)?,
        Some(embedding),
        Some(content.to_owned()),
        metadata,
        Some(Revision::new(revision)?),
    )?;
    let id = document.id().clone();
    let body = serde_json::json!({
        "scope": { "tenant_id": tenant, "namespace": "support" },
        "document": {
            "id": id.as_str(),
            "embedding": embed(content),
            "content": content,
            "metadata": { "topic": topic },
            "revision": revision,
        },
    });
    runtime.mutate(&runtime.live, scope, Some(document), id, body.to_string()).await?;
    Ok(())
}

/// Runs the tour against a built runtime, printing to `out`.
///
/// # Errors
///
/// Any step the runtime refuses.
pub async fn tour(runtime: &Arc<Runtime>, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "\n1. Loading {} documents for tenants acme and globex (write-through, ACK-verified)",
        CORPUS.len()
    )?;
    for (tenant, id, topic, content) in CORPUS {
        upsert(runtime, tenant, id, topic, content, "1").await?;
    }
    let query = "how long do refunds take";
    writeln!(
        out,
        "\n2. A scoped retrieve for tenant acme: \"{query}\" (balanced). Globex's refund policy never appears."
    )?;
    let packet =
        runtime.retrieve(&runtime.live, retrieve_request("acme", query, "balanced"), None).await?;
    write!(out, "{}", describe_packet(&packet))?;
    writeln!(out, "\n   The same question again is served from the reuse cache:")?;
    let packet =
        runtime.retrieve(&runtime.live, retrieve_request("acme", query, "strict"), None).await?;
    write!(out, "{}", describe_packet(&packet))?;
    writeln!(
        out,
        "\n3. The billing system reports revision 2 of acme's refund policy (a change event); the store has not caught up yet."
    )?;
    let event = ChangeEvent {
        target: TargetDto::Document { doc_id: "refund-policy".to_owned() },
        change_type: "content_updated".to_owned(),
        scope: crate::api::ChangeScopeDto {
            tenant_id: Some("acme".to_owned()),
            namespace: Some("support".to_owned()),
            connector_id: None,
        },
        source_event_id: "billing-evt-2".to_owned(),
        revision: Some("2".to_owned()),
        timestamp: None,
    };
    let body: Value = serde_json::to_value(&event)?;
    let result = runtime
        .change_event(&runtime.live, event.validate()?, event.source_event_id.clone(), &body)
        .await?;
    writeln!(
        out,
        "   acknowledged at generation {} ({} reuse entries invalidated)",
        result.generation, result.entries_invalidated
    )?;
    writeln!(
        out,
        "\n4. A strict retrieve refuses the stale reuse and prunes the store's stale revision 1:"
    )?;
    let packet =
        runtime.retrieve(&runtime.live, retrieve_request("acme", query, "strict"), None).await?;
    write!(out, "{}", describe_packet(&packet))?;
    writeln!(
        out,
        "\n5. The store catches up (revision 2 written through); a balanced retrieve serves it:"
    )?;
    upsert(
        runtime,
        "acme",
        "refund-policy",
        "billing",
        "Refunds are issued within 5 days of a return request.",
        "2",
    )
    .await?;
    let packet =
        runtime.retrieve(&runtime.live, retrieve_request("acme", query, "balanced"), None).await?;
    write!(out, "{}", describe_packet(&packet))?;
    Ok(())
}

/// Which store `kyro quickstart` tours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
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
pub fn run(
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
    let runtime = crate::serve::build_runtime(&config).await?;
    match runtime.refused.first() {
        Some(refused) => anyhow::bail!("the tour's store was refused: {}", refused.reason),
        None => writeln!(stdout, "  certified ({:.1}s)", started.elapsed().as_secs_f64())?,
    }
    // Bind before the tour, so the address is taken (or refused) before anything is printed
    // and accepts connections as soon as the instructions say so.
    let listener = crate::serve::bind(&runtime).await?;
    tour(&runtime, &mut stdout).await?;
    write!(stdout, "{}", instructions(listen, &data_token, &admin_token, &config))?;
    stdout.flush()?;
    drop(stdout);
    crate::serve::serve_on(listener, runtime).await
}

/// The closing instructions, with a ready-to-run `curl`.
pub fn instructions(listen: &str, data_token: &str, admin_token: &str, config: &Path) -> String {
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
