//! Checking the live catalog against the configuration when the connector opens.
//!
//! A store that does not match its configuration is refused with a `Configuration` error that
//! names what is wrong: a missing extension, table or column, a column of the wrong type, a scope
//! or id column with a nondeterministic collation, an embedding of another dimension, or (for
//! write-through) no key on exactly (tenant, namespace, id). Every lookup binds the names it looks
//! for as parameters.
//!
//! It deliberately does not refuse a table without a vector index: that is slow, not wrong, so it
//! is reported as a warning in the host's log instead.

use kyro_connector_sdk::{Distance, OwnershipMode};
use sqlx::PgPool;

use crate::config::{Identifier, ValidatedPgvectorConfig};
use crate::sql::WatermarkType;

/// Why the live store does not match the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The `vector` extension is not installed in the database.
    #[error("the vector extension is not installed in this database (run CREATE EXTENSION vector)")]
    ExtensionMissing,
    /// No table of that name.
    #[error("table {table} does not exist (or is not visible to this role)")]
    TableMissing {
        /// The table as configured, quoted.
        table: String,
    },
    /// The name is a view, index or sequence.
    #[error("{table} is not a table")]
    NotATable {
        /// The table as resolved, quoted.
        table: String,
    },
    /// A configured column is not in the table.
    #[error("column {column} ({key}) does not exist in table {table}")]
    ColumnMissing {
        /// The config key of the column's role.
        key: &'static str,
        /// The column, quoted.
        column: String,
        /// The table, quoted.
        table: String,
    },
    /// A column has a type the connector cannot work with.
    #[error("column {column} ({key}) has type {actual}, but must be {expected}")]
    WrongColumnType {
        /// The config key of the column's role.
        key: &'static str,
        /// The column, quoted.
        column: String,
        /// The type the role needs.
        expected: &'static str,
        /// The type the catalog has.
        actual: String,
    },
    /// A tenant, namespace or id column compares with a nondeterministic collation, under which
    /// two different values can be equal: a case-insensitive one makes tenant `Acme` read
    /// `acme`'s rows and overwrite them on upsert.
    #[error(
        "column {column} ({key}) uses the nondeterministic collation {collation}, under which different values compare equal (Acme and acme would share rows); give it a deterministic collation such as \"C\" or the database default"
    )]
    NondeterministicCollation {
        /// The config key of the column's role.
        key: &'static str,
        /// The column, quoted.
        column: String,
        /// The collation, quoted.
        collation: String,
    },
    /// The embedding column's `vector(N)` does not match `dimension`.
    #[error("column {column} (columns.embedding) is {actual}, but dimension is {expected}")]
    DimensionMismatch {
        /// The column, quoted.
        column: String,
        /// The configured dimension.
        expected: u32,
        /// `vector(N)` or `vector` (no dimension) as the catalog has it.
        actual: String,
    },
    /// Write-through needs a key the upsert can conflict on, that keeps scopes apart.
    #[error(
        "ownership_mode = write_through needs a primary key or unique constraint on exactly ({columns}) in that order, and table {table} has none"
    )]
    NoScopeKey {
        /// The table, quoted.
        table: String,
        /// The three key columns, quoted.
        columns: String,
    },
    /// `hnsw_iterative_scan` needs pgvector 0.8.
    #[error(
        "hnsw_iterative_scan needs pgvector 0.8 or later, but the database has pgvector {version}; set hnsw_iterative_scan = \"off\" or upgrade the extension"
    )]
    IterativeScanUnavailable {
        /// The installed extension version.
        version: String,
    },
}

impl From<CatalogError> for kyro_connector_sdk::ConnectorError {
    fn from(err: CatalogError) -> Self {
        Self::configuration(err.to_string())
    }
}

/// What the catalog says about the configured store.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// `"schema"."table"`, resolved once so every statement names the same table.
    pub(crate) table: String,
    pub(crate) watermark_type: WatermarkType,
    pub(crate) pgvector_version: String,
    pub(crate) has_iterative_scan: bool,
    /// Whether an HNSW or IVFFlat index with the configured distance's operator class covers
    /// the embedding column.
    pub(crate) has_vector_index: bool,
}

/// A check that either failed in the database or found a mismatch.
#[derive(Debug)]
pub(crate) enum CheckError {
    Store(sqlx::Error),
    Mismatch(CatalogError),
}

impl From<sqlx::Error> for CheckError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err)
    }
}

impl From<CatalogError> for CheckError {
    fn from(err: CatalogError) -> Self {
        Self::Mismatch(err)
    }
}

/// Checks the catalog for `config`.
pub(crate) async fn check(
    pool: &PgPool,
    config: &ValidatedPgvectorConfig,
) -> Result<Catalog, CheckError> {
    let extension: Option<(String,)> =
        sqlx::query_as("SELECT extversion::text FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(pool)
            .await?;
    let Some((pgvector_version,)) = extension else {
        return Err(CatalogError::ExtensionMissing.into());
    };
    let has_iterative_scan = version_at_least(&pgvector_version, (0, 8));
    if !has_iterative_scan && config.iterative_scan != crate::config::IterativeScan::Off {
        return Err(CatalogError::IterativeScanUnavailable { version: pgvector_version }.into());
    }

    let configured_table = config.table.quoted();
    let table: Option<(i64, String, String, String)> = sqlx::query_as(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = to_regclass($1)",
    )
    .bind(&configured_table)
    .fetch_optional(pool)
    .await?;
    let Some((table_oid, schema_name, table_name, relkind)) = table else {
        return Err(CatalogError::TableMissing { table: configured_table }.into());
    };
    let table = format!("{}.{}", quote(&schema_name), quote(&table_name));
    if relkind != "r" && relkind != "p" {
        return Err(CatalogError::NotATable { table }.into());
    }

    // The last two columns are the column's collation and whether it is deterministic; a column
    // without one (attcollation 0) or with the database default compares deterministically.
    let columns: Vec<(String, String, i32, bool, Option<String>, bool)> = sqlx::query_as(
        "SELECT a.attname::text, t.typname::text, a.atttypmod, \
                t.typnamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'vector'), \
                co.collname::text, coalesce(co.collisdeterministic, true) \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(table_oid)
    .fetch_all(pool)
    .await?;
    let column_type = |key: &'static str, column: &Identifier| {
        columns
            .iter()
            .find(|(name, ..)| name == column.as_str())
            .map(|(_, type_name, typmod, from_extension, collation, deterministic)| {
                (type_name.as_str(), *typmod, *from_extension, collation.as_deref(), *deterministic)
            })
            .ok_or_else(|| CatalogError::ColumnMissing {
                key,
                column: column.quoted(),
                table: table.clone(),
            })
    };
    let columns_config = &config.columns;
    for (key, column) in [
        ("columns.tenant", &columns_config.tenant),
        ("columns.namespace", &columns_config.namespace),
        ("columns.id", &columns_config.id),
        ("columns.content", &columns_config.content),
    ] {
        let (type_name, _, _, collation, deterministic) = column_type(key, column)?;
        expect_type(key, column, type_name, &["text", "varchar"], "text or varchar")?;
        // Content is only returned, never compared; the three scope and key columns are compared
        // in every statement's WHERE clause and in the upsert's conflict key.
        if key != "columns.content" && !deterministic {
            return Err(CatalogError::NondeterministicCollation {
                key,
                column: column.quoted(),
                collation: quote(collation.unwrap_or_default()),
            }
            .into());
        }
    }
    let (metadata_type, ..) = column_type("columns.metadata", &columns_config.metadata)?;
    expect_type("columns.metadata", &columns_config.metadata, metadata_type, &["jsonb"], "jsonb")?;
    let (watermark_type_name, ..) = column_type("columns.watermark", &columns_config.watermark)?;
    expect_type(
        "columns.watermark",
        &columns_config.watermark,
        watermark_type_name,
        &["timestamptz", "int8", "int4"],
        "timestamptz, bigint or integer",
    )?;
    let watermark_type = if watermark_type_name == "timestamptz" {
        WatermarkType::Timestamptz
    } else {
        WatermarkType::Integer
    };
    let (embedding_type, typmod, from_extension, ..) =
        column_type("columns.embedding", &columns_config.embedding)?;
    if embedding_type != "vector" || !from_extension {
        return Err(CatalogError::WrongColumnType {
            key: "columns.embedding",
            column: columns_config.embedding.quoted(),
            expected: "vector(dimension) from the vector extension",
            actual: embedding_type.to_owned(),
        }
        .into());
    }
    // pgvector keeps the dimension of `vector(N)` in the column's type modifier; -1 means none.
    if i64::from(typmod) != i64::from(config.vector.dimension) {
        let actual = if typmod < 0 { "vector".to_owned() } else { format!("vector({typmod})") };
        return Err(CatalogError::DimensionMismatch {
            column: columns_config.embedding.quoted(),
            expected: config.vector.dimension,
            actual,
        }
        .into());
    }

    if config.ownership_mode == OwnershipMode::WriteThrough {
        let keys: Vec<(Vec<String>,)> = sqlx::query_as(
            "SELECT ARRAY(SELECT a.attname::text \
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                          WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) \
             FROM pg_index i \
             WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid \
               AND i.indpred IS NULL AND i.indexprs IS NULL",
        )
        .bind(table_oid)
        .fetch_all(pool)
        .await?;
        let wanted = [
            columns_config.tenant.as_str(),
            columns_config.namespace.as_str(),
            columns_config.id.as_str(),
        ];
        if !keys.iter().any(|(key_columns,)| key_columns.iter().map(String::as_str).eq(wanted)) {
            return Err(CatalogError::NoScopeKey {
                table,
                columns: [&columns_config.tenant, &columns_config.namespace, &columns_config.id]
                    .map(Identifier::quoted)
                    .join(", "),
            }
            .into());
        }
    }

    let (has_vector_index,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (\
           SELECT 1 FROM pg_index i \
           JOIN pg_class ic ON ic.oid = i.indexrelid \
           JOIN pg_am am ON am.oid = ic.relam \
           JOIN pg_opclass oc ON oc.oid = i.indclass[0] \
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
           WHERE i.indrelid = $1::oid AND i.indisvalid AND am.amname IN ('hnsw', 'ivfflat') \
             AND a.attname = $2 AND oc.opcname = $3)",
    )
    .bind(table_oid)
    .bind(columns_config.embedding.as_str())
    .bind(operator_class(config.vector.distance))
    .fetch_one(pool)
    .await?;

    Ok(Catalog { table, watermark_type, pgvector_version, has_iterative_scan, has_vector_index })
}

/// The pgvector operator class an index needs to serve `distance`.
pub(crate) fn operator_class(distance: Distance) -> &'static str {
    match distance {
        Distance::Cosine => "vector_cosine_ops",
        Distance::L2 => "vector_l2_ops",
        Distance::InnerProduct => "vector_ip_ops",
    }
}

fn expect_type(
    key: &'static str,
    column: &Identifier,
    actual: &str,
    allowed: &[&str],
    expected: &'static str,
) -> Result<(), CatalogError> {
    if allowed.contains(&actual) {
        Ok(())
    } else {
        Err(CatalogError::WrongColumnType {
            key,
            column: column.quoted(),
            expected,
            actual: actual.to_owned(),
        })
    }
}

/// Quotes a name read from the catalog.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether a `major.minor[.patch]` version is at least `(major, minor)`.
pub(crate) fn version_at_least(version: &str, wanted: (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= wanted,
        _ => false,
    }
}
