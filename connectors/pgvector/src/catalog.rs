//! Checking the live catalog against the configuration when the connector opens, reporting every
//! finding at once.
//!
//! The catalog is read in one pass ([`read`]: a handful of lookups that bind the names they look
//! for as parameters), then judged by a pure function ([`assess`]) that lists everything the table
//! lacks, each with the SQL that would fix it: the vector extension (and pgvector 0.8 for
//! iterative scans), the table, each role's column and type, deterministic collations on the
//! tenant, namespace and id columns (under a case-insensitive one `Acme` reads and overwrites
//! `acme`'s rows), the embedding's dimension, the privileges the connector's role needs, a unique
//! key on exactly (tenant, namespace, id) in that order, and the indexes that keep searches fast.
//! Blocking findings refuse the open with one `Configuration` error carrying all of them
//! ([`kyro_connector_sdk::SetupFindings`]); advisory ones are returned for the connector to log.
//!
//! What it deliberately does not do: run a fix. The statements are text for a person to review;
//! the connector never changes the schema. A missing or mismatched vector index is advisory
//! (searches are slow, not wrong).

use kyro_connector_sdk::{Distance, OwnershipMode, SetupFinding, SetupFindings};
use sqlx::{PgPool, Row};

use crate::config::{Identifier, IterativeScan, ValidatedPgvectorConfig};
use crate::sql::WatermarkType;

/// What the catalog says about a store that can back the configuration.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// `"schema"."table"`, resolved once so every statement names the same table.
    pub(crate) table: String,
    pub(crate) watermark_type: WatermarkType,
    pub(crate) pgvector_version: String,
    pub(crate) has_iterative_scan: bool,
    /// The configured dimension, or the embedding column's when none is configured.
    pub(crate) dimension: u32,
    /// Findings that do not block opening, for the connector to log.
    pub(crate) advisories: Vec<SetupFinding>,
}

/// A check that either failed in the database or found a store that cannot back the
/// configuration.
#[derive(Debug)]
pub(crate) enum CheckError {
    Store(sqlx::Error),
    Findings(SetupFindings),
}

impl From<sqlx::Error> for CheckError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err)
    }
}

/// Reads the catalog and judges it against `config`.
pub(crate) async fn check(
    pool: &PgPool,
    config: &ValidatedPgvectorConfig,
) -> Result<Catalog, CheckError> {
    let snapshot = read(pool, config).await?;
    assess(&snapshot, config).map_err(CheckError::Findings)
}

/// What the catalog holds about the configured table.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The installed `vector` extension's version.
    pub(crate) pgvector_version: Option<String>,
    /// The connector's role (`current_user`).
    pub(crate) role: String,
    pub(crate) table: Option<TableSnapshot>,
}

/// The configured table, as resolved.
#[derive(Debug, Clone)]
pub(crate) struct TableSnapshot {
    /// `"schema"."table"`.
    pub(crate) name: String,
    /// `pg_class.relkind`: `r` (table), `p` (partitioned table), `v` (view), ...
    pub(crate) relkind: String,
    pub(crate) columns: Vec<ColumnSnapshot>,
    /// Valid indexes.
    pub(crate) indexes: Vec<IndexSnapshot>,
    pub(crate) privileges: Privileges,
}

#[derive(Debug, Clone)]
pub(crate) struct ColumnSnapshot {
    pub(crate) name: String,
    /// `pg_type.typname`: `text`, `varchar`, `vector`, `int8`, ...
    pub(crate) type_name: String,
    /// `format_type()`: `character varying(64)`, `vector(8)`, ...
    pub(crate) formatted_type: String,
    /// For `vector`, the dimension; -1 when the column has none.
    pub(crate) typmod: i32,
    /// Whether the type is the `vector` extension's (not a look-alike in another schema).
    pub(crate) from_vector_extension: bool,
    /// The column's collation, `None` for non-collatable types and the database default.
    pub(crate) collation: Option<String>,
    pub(crate) deterministic: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct IndexSnapshot {
    /// As `regclass` prints it: quoted where needed, schema-qualified when not on the path.
    pub(crate) name: String,
    /// The primary key or unique constraint the index backs.
    pub(crate) constraint: Option<String>,
    /// `btree`, `hnsw`, `ivfflat`, ...
    pub(crate) method: String,
    pub(crate) unique: bool,
    pub(crate) primary: bool,
    /// Partial (`WHERE ...`) indexes cannot serve as the conflict key or for every scope.
    pub(crate) partial: bool,
    /// Key columns in order; `None` for an expression.
    pub(crate) key_columns: Vec<Option<String>>,
    /// The operator class of the first key column.
    pub(crate) first_opclass: String,
    /// Whether every key column compares with a deterministic collation.
    pub(crate) deterministic: bool,
}

/// The table privileges of the connector's role.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Privileges {
    pub(crate) select: bool,
    pub(crate) insert: bool,
    pub(crate) update: bool,
    pub(crate) delete: bool,
}

/// Reads the catalog for `config`'s table.
pub(crate) async fn read(
    pool: &PgPool,
    config: &ValidatedPgvectorConfig,
) -> Result<Snapshot, sqlx::Error> {
    let (pgvector_version, role): (Option<String>, String) = sqlx::query_as(
        "SELECT (SELECT extversion::text FROM pg_extension WHERE extname = 'vector'), \
                current_user::text",
    )
    .fetch_one(pool)
    .await?;
    let table: Option<(i64, String, String, String)> = sqlx::query_as(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = to_regclass($1)",
    )
    .bind(config.table.quoted())
    .fetch_optional(pool)
    .await?;
    let Some((table_oid, schema_name, table_name, relkind)) = table else {
        return Ok(Snapshot { pgvector_version, role, table: None });
    };

    let columns = sqlx::query(
        "SELECT a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod), \
                a.atttypmod, \
                coalesce(t.typnamespace = \
                  (SELECT extnamespace FROM pg_extension WHERE extname = 'vector'), false), \
                nullif(co.collname::text, 'default'), coalesce(co.collisdeterministic, true) \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(table_oid)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        Ok(ColumnSnapshot {
            name: row.try_get(0)?,
            type_name: row.try_get(1)?,
            formatted_type: row.try_get(2)?,
            typmod: row.try_get(3)?,
            from_vector_extension: row.try_get(4)?,
            collation: row.try_get(5)?,
            deterministic: row.try_get(6)?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;

    let indexes = sqlx::query(
        "SELECT i.indexrelid::regclass::text, con.conname::text, am.amname::text, \
                i.indisunique, i.indisprimary, i.indpred IS NOT NULL, \
                ARRAY(SELECT coalesce(a.attname::text, '') \
                      FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                      LEFT JOIN pg_attribute a \
                        ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0 \
                      WHERE k.ord <= i.indnkeyatts ORDER BY k.ord), \
                coalesce((SELECT oc.opcname::text FROM pg_opclass oc \
                          WHERE oc.oid = i.indclass[0]), ''), \
                NOT EXISTS (SELECT 1 FROM unnest(i.indcollation::oid[]) AS c(oid) \
                            JOIN pg_collation co ON co.oid = c.oid \
                            WHERE NOT co.collisdeterministic) \
         FROM pg_index i \
         JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_am am ON am.oid = ic.relam \
         LEFT JOIN pg_constraint con \
           ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid \
              AND con.contype IN ('p', 'u') \
         WHERE i.indrelid = $1::oid AND i.indisvalid \
         ORDER BY ic.relname",
    )
    .bind(table_oid)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        let key_columns: Vec<String> = row.try_get(6)?;
        Ok(IndexSnapshot {
            name: row.try_get(0)?,
            constraint: row.try_get(1)?,
            method: row.try_get(2)?,
            unique: row.try_get(3)?,
            primary: row.try_get(4)?,
            partial: row.try_get(5)?,
            // An expression's position has no attribute, and reads as an empty name.
            key_columns: key_columns
                .into_iter()
                .map(|column| (!column.is_empty()).then_some(column))
                .collect(),
            first_opclass: row.try_get(7)?,
            deterministic: row.try_get(8)?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;

    let (select, insert, update, delete): (bool, bool, bool, bool) = sqlx::query_as(
        "SELECT has_table_privilege($1::oid, 'SELECT'), has_table_privilege($1::oid, 'INSERT'), \
                has_table_privilege($1::oid, 'UPDATE'), has_table_privilege($1::oid, 'DELETE')",
    )
    .bind(table_oid)
    .fetch_one(pool)
    .await?;

    Ok(Snapshot {
        pgvector_version,
        role,
        table: Some(TableSnapshot {
            name: format!("{}.{}", quote(&schema_name), quote(&table_name)),
            relkind,
            columns,
            indexes,
            privileges: Privileges { select, insert, update, delete },
        }),
    })
}

/// Judges `snapshot` against `config`: the catalog facts the connector needs when nothing
/// blocks, or every finding (blocking and advisory) when something does.
pub(crate) fn assess(
    snapshot: &Snapshot,
    config: &ValidatedPgvectorConfig,
) -> Result<Catalog, SetupFindings> {
    let mut findings = Findings::default();
    let has_iterative_scan = snapshot
        .pgvector_version
        .as_deref()
        .is_some_and(|version| version_at_least(version, (0, 8)));
    match &snapshot.pgvector_version {
        None => findings.push(
            SetupFinding::blocking(
                "the vector extension",
                "it is not installed in this database",
            )
            .with_fix_sql("CREATE EXTENSION IF NOT EXISTS vector;"),
        ),
        Some(version) if !has_iterative_scan && config.iterative_scan != IterativeScan::Off => {
            findings.push(
                SetupFinding::blocking(
                    format!(
                        "pgvector 0.8 or later, for hnsw_iterative_scan = \"{}\"",
                        config.iterative_scan.as_str()
                    ),
                    format!(
                        "the database has pgvector {version}; upgrade the extension or set hnsw_iterative_scan = \"off\""
                    ),
                )
                .with_fix_sql("ALTER EXTENSION vector UPDATE;"),
            )
        }
        Some(_) => {}
    }

    let Some(table) = &snapshot.table else {
        findings.push(missing_table(config));
        return Err(findings.into_setup_findings(&config.table.quoted(), config));
    };
    if table.relkind != "r" && table.relkind != "p" {
        findings.push(SetupFinding::blocking(
            format!("{} to be a table", table.name),
            format!(
                "it is a {}, which the connector cannot write to",
                relkind_name(&table.relkind)
            ),
        ));
        return Err(findings.into_setup_findings(&table.name, config));
    }

    let target = TableTarget { table, config };
    for role in TextRole::ALL {
        target.check_text_column(role, &mut findings);
    }
    target.check_metadata_column(&mut findings);
    let watermark_type = target.check_watermark_column(&mut findings);
    let dimension = target.check_embedding_column(&mut findings);
    target.check_privileges(&snapshot.role, &mut findings);
    target.check_scope_key(&mut findings);
    if let Some(dimension) = dimension {
        target.check_vector_index(dimension, &mut findings);
    }
    target.check_watermark_index(&mut findings);

    match (findings.is_blocking(), watermark_type, dimension, &snapshot.pgvector_version) {
        (false, Some(watermark_type), Some(dimension), Some(pgvector_version)) => Ok(Catalog {
            table: table.name.clone(),
            watermark_type,
            pgvector_version: pgvector_version.clone(),
            has_iterative_scan,
            dimension,
            advisories: findings.list,
        }),
        _ => Err(findings.into_setup_findings(&table.name, config)),
    }
}

/// The pgvector operator class an index needs to serve `distance`.
pub(crate) fn operator_class(distance: Distance) -> &'static str {
    match distance {
        Distance::Cosine => "vector_cosine_ops",
        Distance::L2 => "vector_l2_ops",
        Distance::InnerProduct => "vector_ip_ops",
    }
}

/// Whether a `major.minor[.patch]` version is at least `(major, minor)`.
pub(crate) fn version_at_least(version: &str, wanted: (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= wanted,
        _ => false,
    }
}

/// Most dimensions pgvector's `hnsw` and `ivfflat` index on a `vector` column.
const MAX_INDEXED_DIMENSION: u32 = 2_000;

/// Findings in the order they were found, which is the order their fixes apply in.
#[derive(Default)]
struct Findings {
    list: Vec<SetupFinding>,
}

impl Findings {
    fn push(&mut self, finding: SetupFinding) {
        self.list.push(finding);
    }

    fn is_blocking(&self) -> bool {
        self.list.iter().any(SetupFinding::is_blocking)
    }

    fn into_setup_findings(self, table: &str, config: &ValidatedPgvectorConfig) -> SetupFindings {
        let n_blocking = self.list.iter().filter(|finding| finding.is_blocking()).count();
        let n_advisory = self.list.len() - n_blocking;
        let mut summary = format!(
            "table {table} cannot back a pgvector store with ownership_mode {}: {}",
            config.ownership_mode,
            count(n_blocking, "finding blocks it", "findings block it")
        );
        if n_advisory > 0 {
            summary.push_str(&format!(
                " (and {})",
                count(n_advisory, "more recommendation", "more recommendations")
            ));
        }
        SetupFindings::new(summary, self.list)
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

/// The four columns compared or returned as text, with what the connector needs of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextRole {
    Tenant,
    Namespace,
    Id,
    Content,
}

impl TextRole {
    const ALL: [Self; 4] = [Self::Tenant, Self::Namespace, Self::Id, Self::Content];

    fn key(self) -> &'static str {
        match self {
            Self::Tenant => "columns.tenant",
            Self::Namespace => "columns.namespace",
            Self::Id => "columns.id",
            Self::Content => "columns.content",
        }
    }

    fn column(self, config: &ValidatedPgvectorConfig) -> &Identifier {
        match self {
            Self::Tenant => &config.columns.tenant,
            Self::Namespace => &config.columns.namespace,
            Self::Id => &config.columns.id,
            Self::Content => &config.columns.content,
        }
    }

    /// Whether every statement compares it (in `WHERE` clauses and the conflict key).
    fn is_compared(self) -> bool {
        self != Self::Content
    }
}

/// The checks of one resolved table.
struct TableTarget<'a> {
    table: &'a TableSnapshot,
    config: &'a ValidatedPgvectorConfig,
}

impl TableTarget<'_> {
    fn column(&self, column: &Identifier) -> Option<&ColumnSnapshot> {
        self.table.columns.iter().find(|candidate| candidate.name == column.as_str())
    }

    fn alter(&self, action: &str) -> String {
        format!("ALTER TABLE {} {action};", self.table.name)
    }

    /// A finding for a missing column, with the statement that adds it.
    fn missing_column(&self, key: &str, column: &Identifier, definition: &str) -> SetupFinding {
        SetupFinding::blocking(
            format!("column {} ({key})", column.quoted()),
            format!("table {} has no column {}", self.table.name, column.quoted()),
        )
        .with_fix_sql(self.alter(&format!("ADD COLUMN {} {definition}", column.quoted())))
    }

    /// A finding for a column of the wrong type, with the statement that converts it.
    fn wrong_type(
        &self,
        key: &str,
        column: &ColumnSnapshot,
        expected: &str,
        target_type: Option<&str>,
    ) -> SetupFinding {
        let quoted = quote(&column.name);
        let finding = SetupFinding::blocking(
            format!("column {quoted} ({key}) of type {expected}"),
            format!("it has type {}", column.formatted_type),
        );
        match target_type {
            Some(target_type) => finding.with_fix_sql(self.alter(&format!(
                "ALTER COLUMN {quoted} TYPE {target_type} USING {quoted}::{target_type}"
            ))),
            None => finding,
        }
    }

    fn check_text_column(&self, role: TextRole, findings: &mut Findings) {
        let identifier = role.column(self.config);
        let Some(column) = self.column(identifier) else {
            let definition = if role.is_compared() { "text NOT NULL" } else { "text" };
            findings.push(self.missing_column(role.key(), identifier, definition));
            return;
        };
        if !["text", "varchar"].contains(&column.type_name.as_str()) {
            findings.push(self.wrong_type(role.key(), column, "text or varchar", Some("text")));
            return;
        }
        if role.is_compared() && !column.deterministic {
            let quoted = quote(&column.name);
            findings.push(
                SetupFinding::blocking(
                    format!(
                        "column {quoted} ({}) compared with a deterministic collation",
                        role.key()
                    ),
                    format!(
                        "it uses the nondeterministic collation {}, under which different values compare equal: tenant Acme would read and overwrite acme's rows",
                        quote(column.collation.as_deref().unwrap_or_default())
                    ),
                )
                .with_fix_sql(self.alter(&format!(
                    "ALTER COLUMN {quoted} TYPE {} COLLATE \"default\"",
                    column.formatted_type
                ))),
            );
        }
    }

    fn check_metadata_column(&self, findings: &mut Findings) {
        let identifier = &self.config.columns.metadata;
        match self.column(identifier) {
            None => findings.push(self.missing_column(
                "columns.metadata",
                identifier,
                "jsonb NOT NULL DEFAULT '{}'::jsonb",
            )),
            Some(column) if column.type_name != "jsonb" => {
                findings.push(self.wrong_type("columns.metadata", column, "jsonb", Some("jsonb")))
            }
            Some(_) => {}
        }
    }

    fn check_watermark_column(&self, findings: &mut Findings) -> Option<WatermarkType> {
        let identifier = &self.config.columns.watermark;
        let Some(column) = self.column(identifier) else {
            findings.push(self.missing_column(
                "columns.watermark",
                identifier,
                "timestamptz NOT NULL DEFAULT clock_timestamp()",
            ));
            return None;
        };
        match column.type_name.as_str() {
            "timestamptz" => Some(WatermarkType::Timestamptz),
            "int8" | "int4" => Some(WatermarkType::Integer),
            _ => {
                findings.push(self.wrong_type(
                    "columns.watermark",
                    column,
                    "timestamptz, bigint or integer",
                    Some("timestamptz"),
                ));
                None
            }
        }
    }

    /// The embedding column's checks; the dimension the store has, when it has a usable one.
    fn check_embedding_column(&self, findings: &mut Findings) -> Option<u32> {
        let identifier = &self.config.columns.embedding;
        let configured = self.config.dimension;
        let vector_type = configured.map(|dimension| format!("vector({dimension})"));
        let Some(column) = self.column(identifier) else {
            let finding = match &vector_type {
                Some(vector_type) => {
                    self.missing_column("columns.embedding", identifier, vector_type)
                }
                None => SetupFinding::blocking(
                    format!("column {} (columns.embedding)", identifier.quoted()),
                    format!(
                        "table {} has no column {}; set dimension to get the statement that adds it",
                        self.table.name,
                        identifier.quoted()
                    ),
                ),
            };
            findings.push(finding);
            return None;
        };
        if column.type_name != "vector" || !column.from_vector_extension {
            findings.push(self.wrong_type(
                "columns.embedding",
                column,
                "vector from the vector extension",
                vector_type.as_deref(),
            ));
            return None;
        }
        let quoted = quote(&column.name);
        // pgvector keeps the dimension of `vector(N)` in the column's type modifier.
        let actual = u32::try_from(column.typmod).ok().filter(|dimension| *dimension > 0);
        match (configured, actual) {
            (Some(configured), Some(actual)) if configured == actual => Some(actual),
            (None, Some(actual)) => Some(actual),
            (Some(configured), Some(actual)) => {
                findings.push(SetupFinding::blocking(
                    format!("column {quoted} (columns.embedding) of dimension {configured}"),
                    format!(
                        "it is vector({actual}); set dimension = {actual} if that is your embedding model's, or re-embed into vector({configured})"
                    ),
                ));
                None
            }
            (Some(configured), None) => {
                findings.push(
                    SetupFinding::blocking(
                        format!("column {quoted} (columns.embedding) of dimension {configured}"),
                        "it is vector, with no dimension, so no index can cover it",
                    )
                    .with_fix_sql(
                        self.alter(&format!("ALTER COLUMN {quoted} TYPE vector({configured})")),
                    ),
                );
                None
            }
            (None, None) => {
                findings.push(SetupFinding::blocking(
                    format!("column {quoted} (columns.embedding) with a dimension"),
                    "it is vector, with no dimension; set dimension, or give the column one with ALTER COLUMN ... TYPE vector(N)",
                ));
                None
            }
        }
    }

    fn check_privileges(&self, role: &str, findings: &mut Findings) {
        let privileges = self.table.privileges;
        let missing: Vec<&str> = [
            ("SELECT", privileges.select),
            ("INSERT", privileges.insert),
            ("UPDATE", privileges.update),
            ("DELETE", privileges.delete),
        ]
        .into_iter()
        .filter_map(|(name, granted)| (!granted).then_some(name))
        .collect();
        if missing.is_empty() {
            return;
        }
        let why = if self.config.ownership_mode == OwnershipMode::WriteThrough {
            "it reads the table, writes documents through it, and certification writes and removes its private rows"
        } else {
            "it reads the table, and certification writes and removes its private rows"
        };
        findings.push(
            SetupFinding::blocking(
                format!(
                    "SELECT, INSERT, UPDATE and DELETE on {} for role {}",
                    self.table.name,
                    quote(role)
                ),
                format!("the role lacks {}; {why}", missing.join(", ")),
            )
            .with_fix_sql(format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {};",
                self.table.name,
                quote(role)
            )),
        );
    }

    fn scope_key_columns(&self) -> [&str; 3] {
        let columns = &self.config.columns;
        [columns.tenant.as_str(), columns.namespace.as_str(), columns.id.as_str()]
    }

    fn check_scope_key(&self, findings: &mut Findings) {
        let wanted = self.scope_key_columns();
        let quoted_key = wanted.iter().map(|column| quote(column)).collect::<Vec<_>>().join(", ");
        let requirement =
            format!("a primary key or unique constraint on exactly ({quoted_key}) in that order");
        let why = if self.config.ownership_mode == OwnershipMode::WriteThrough {
            "every upsert conflicts on it, so a write can never touch another scope"
        } else {
            "certification writes its private rows with an upsert that conflicts on it"
        };
        let same_set = |index: &&IndexSnapshot| {
            index.unique
                && !index.partial
                && index.key_columns.len() == 3
                && wanted.iter().all(|column| {
                    index.key_columns.iter().any(|key| key.as_deref() == Some(*column))
                })
        };
        let candidates: Vec<&IndexSnapshot> = self.table.indexes.iter().filter(same_set).collect();
        // Any unique index on these three columns may serve as the upsert's conflict key,
        // whatever its column order, so none may compare with a nondeterministic collation.
        for index in candidates.iter().filter(|index| !index.deterministic) {
            let drop = match &index.constraint {
                Some(constraint) => self.alter(&format!("DROP CONSTRAINT {}", quote(constraint))),
                None => format!("DROP INDEX {};", index.name),
            };
            findings.push(
                SetupFinding::blocking(
                    requirement.clone(),
                    format!(
                        "the unique index {} compares with a nondeterministic collation, so an upsert for tenant Acme would overwrite acme's row",
                        index.name
                    ),
                )
                .with_fix_sql(format!("{drop}\n{}", self.alter(&format!("ADD UNIQUE ({quoted_key})")))),
            );
        }
        let exact = candidates.iter().any(|index| {
            index.deterministic
                && index.key_columns.iter().map(Option::as_deref).eq(wanted.map(Some))
        });
        if exact || candidates.iter().any(|index| !index.deterministic) {
            return;
        }
        let reordered = candidates.first().map(|index| {
            index
                .key_columns
                .iter()
                .map(|column| quote(column.as_deref().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let problem = match reordered {
            Some(order) => format!("the key on ({order}) has its columns in another order; {why}"),
            None => format!("table {} has none; {why}", self.table.name),
        };
        let has_primary_key = self.table.indexes.iter().any(|index| index.primary);
        let add = if has_primary_key { "ADD UNIQUE" } else { "ADD PRIMARY KEY" };
        findings.push(
            SetupFinding::blocking(requirement, problem)
                .with_fix_sql(self.alter(&format!("{add} ({quoted_key})"))),
        );
    }

    fn check_vector_index(&self, dimension: u32, findings: &mut Findings) {
        let embedding = self.config.columns.embedding.as_str();
        let wanted = operator_class(self.config.distance);
        let on_embedding: Vec<&IndexSnapshot> = self
            .table
            .indexes
            .iter()
            .filter(|index| {
                ["hnsw", "ivfflat"].contains(&index.method.as_str())
                    && !index.partial
                    && index.key_columns.first().and_then(Option::as_deref) == Some(embedding)
            })
            .collect();
        if on_embedding.iter().any(|index| index.first_opclass == wanted) {
            return;
        }
        let quoted = quote(embedding);
        let requirement = format!(
            "an hnsw index on {quoted} with {wanted} (distance = \"{}\")",
            self.config.distance.as_str()
        );
        let problem = match on_embedding.first() {
            Some(index) => format!(
                "the index {} uses {}, which cannot serve {} searches, so each search scans its whole scope",
                index.name,
                index.first_opclass,
                self.config.distance.as_str()
            ),
            None => {
                "there is none, so each search scans its whole scope (slow, not wrong)".to_owned()
            }
        };
        let finding = SetupFinding::advisory(requirement, problem);
        findings.push(if dimension <= MAX_INDEXED_DIMENSION {
            finding.with_fix_sql(format!(
                "CREATE INDEX CONCURRENTLY ON {} USING hnsw ({quoted} {wanted});",
                self.table.name
            ))
        } else {
            SetupFinding::advisory(
                finding.requirement(),
                format!(
                    "{}; pgvector indexes vector columns of up to {MAX_INDEXED_DIMENSION} dimensions, so an index needs a halfvec expression",
                    finding.problem()
                ),
            )
        });
    }

    fn check_watermark_index(&self, findings: &mut Findings) {
        let columns = &self.config.columns;
        let wanted =
            [columns.tenant.as_str(), columns.namespace.as_str(), columns.watermark.as_str()];
        let covered = self.table.indexes.iter().any(|index| {
            index.method == "btree"
                && !index.partial
                && index.key_columns.iter().take(3).map(Option::as_deref).eq(wanted.map(Some))
        });
        if covered {
            return;
        }
        let quoted = wanted.map(quote);
        findings.push(
            SetupFinding::advisory(
                format!("an index on ({}, {}, {} DESC)", quoted[0], quoted[1], quoted[2]),
                "there is none, so each scope's watermark (read on every write and strict retrieve) scans the whole scope",
            )
            .with_fix_sql(format!(
                "CREATE INDEX CONCURRENTLY ON {} ({}, {}, {} DESC);",
                self.table.name, quoted[0], quoted[1], quoted[2]
            )),
        );
    }
}

/// The finding for a missing table, with the statements that create it as the example schema
/// does, when the dimension is known.
fn missing_table(config: &ValidatedPgvectorConfig) -> SetupFinding {
    let table = config.table.quoted();
    let finding = SetupFinding::blocking(
        format!("table {table}"),
        "it does not exist, or this role cannot see it",
    );
    let Some(dimension) = config.dimension else {
        return SetupFinding::blocking(
            finding.requirement(),
            format!("{}; set dimension to get the statement that creates it", finding.problem()),
        );
    };
    let columns = &config.columns;
    let [tenant, namespace, id, embedding, metadata, content, watermark] =
        columns.roles().map(|(_, column)| column.quoted());
    let mut sql = format!(
        "CREATE TABLE {table} (\n  {tenant} text NOT NULL,\n  {namespace} text NOT NULL,\n  {id} text NOT NULL,\n  \
         {embedding} vector({dimension}) NOT NULL,\n  {metadata} jsonb NOT NULL DEFAULT '{{}}'::jsonb,\n  \
         {content} text,\n  {watermark} timestamptz NOT NULL DEFAULT clock_timestamp(),\n  \
         PRIMARY KEY ({tenant}, {namespace}, {id})\n);\n\
         CREATE INDEX ON {table} ({tenant}, {namespace}, {watermark} DESC);"
    );
    if dimension <= MAX_INDEXED_DIMENSION {
        sql.push_str(&format!(
            "\nCREATE INDEX ON {table} USING hnsw ({embedding} {});",
            operator_class(config.distance)
        ));
    }
    finding.with_fix_sql(sql)
}

fn relkind_name(relkind: &str) -> &'static str {
    match relkind {
        "v" => "view",
        "m" => "materialized view",
        "f" => "foreign table",
        "i" | "I" => "index",
        "S" => "sequence",
        "c" => "composite type",
        _ => "relation that is not a table",
    }
}

/// Quotes a name read from the catalog.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests;
