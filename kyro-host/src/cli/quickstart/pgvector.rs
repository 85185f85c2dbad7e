//! The pgvector tour's private table: created from the connector's own missing-table statements
//! and dropped when the tour stops.

use std::path::Path;

use anyhow::Context;
use kyro_connector_sdk::SetupFindingsExt;
use serde_json::json;

use super::PGVECTOR_DSN_ENV;
use super::tour::DIMENSION;

/// The tour's private table in the user's PostgreSQL: created from the pgvector connector's own
/// statement for a missing table, dropped with [`PrivateTable::drop_table`] when the tour stops.
#[derive(Debug)]
pub(crate) struct PrivateTable {
    name: String,
}

impl PrivateTable {
    /// A fresh name no one else uses.
    pub(crate) fn new_name() -> String {
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
    pub(crate) fn create(plugin: &Path, name: &str) -> anyhow::Result<Self> {
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
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Drops the table.
    ///
    /// # Errors
    ///
    /// The database refused (its own message, never the DSN).
    pub(crate) async fn drop_table(&self) -> anyhow::Result<()> {
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
