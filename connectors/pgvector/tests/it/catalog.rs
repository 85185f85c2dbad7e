//! The catalog check at open: a table that matches opens; a table that does not is refused with
//! one `Configuration` error listing every finding with the SQL that would fix it (read back
//! through the SDK's setup findings), and running those statements makes it open. Findings that
//! only cost speed are logged, not refused. The check itself changes nothing.

use kyro_connector_pgvector::PgvectorConnector;
use kyro_connector_sdk::{
    Connector, ConnectorConfig, ConnectorPlugin, ErrorKind, HostContext, LogLevel, SetupFinding,
    SetupFindings, SetupFindingsExt,
};

use crate::support::{CapturedLog, DIMENSION, Db, TestTable, database_url, unique_name};

/// Opening fails with `Configuration` and carries setup findings.
fn refused(result: kyro_connector_sdk::Result<impl std::fmt::Debug>) -> SetupFindings {
    let err = result.expect_err("the store does not match its configuration and must be refused");
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    err.setup_findings().unwrap_or_else(|| panic!("the refusal carries no setup findings: {err}"))
}

/// The finding whose requirement contains `requirement`.
fn finding<'a>(findings: &'a SetupFindings, requirement: &str) -> &'a SetupFinding {
    findings
        .findings()
        .iter()
        .find(|finding| finding.requirement().contains(requirement))
        .unwrap_or_else(|| panic!("no finding about {requirement:?} in:\n{findings:#?}"))
}

/// The blocking findings' requirements, in order.
fn blocking(findings: &SetupFindings) -> Vec<&str> {
    findings
        .findings()
        .iter()
        .filter(|finding| finding.is_blocking())
        .map(SetupFinding::requirement)
        .collect()
}

/// Runs every blocking finding's fix, in order.
fn apply_fixes(db: &Db, findings: &SetupFindings) {
    for finding in findings.findings().iter().filter(|finding| finding.is_blocking()) {
        db.execute(finding.fix_sql().unwrap_or_else(|| panic!("{finding} has no fix")));
    }
}

/// Setup findings a connector logged when it opened.
fn logged_findings(log: &CapturedLog) -> Vec<SetupFinding> {
    log.lines()
        .iter()
        .filter(|(level, _)| *level == LogLevel::Warn)
        .filter_map(|(_, line)| SetupFinding::from_log_line(line))
        .collect()
}

/// Everything about the table the catalog holds, to show a check changed nothing.
fn catalog_fingerprint(table: &TestTable) -> String {
    table
        .db
        .text(&format!(
            "SELECT concat_ws(' | ', \
               (SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod) || ':' || attcollation, ',' ORDER BY attnum) \
                FROM pg_attribute WHERE attrelid = 'public.{0}'::regclass AND attnum > 0 AND NOT attisdropped), \
               (SELECT string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY indexrelid) FROM pg_index WHERE indrelid = 'public.{0}'::regclass), \
               (SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants WHERE table_name = '{0}'), \
               (SELECT count(*)::text FROM public.{0}))",
            table.name
        ))
        .unwrap_or_default()
}

#[test]
fn a_table_that_matches_the_example_schema_opens_without_findings() {
    let table = TestTable::create(DIMENSION);
    let log = CapturedLog::default();
    PgvectorConnector::open(&table.config(serde_json::json!({})), log.host()).unwrap();
    assert_eq!(logged_findings(&log), []);
    // Unqualified names resolve through the search path, to the same table.
    table.open(serde_json::json!({ "table": table.name })).unwrap();
}

#[test]
fn without_a_configured_dimension_the_columns_own_is_declared() {
    let table = TestTable::create(DIMENSION);
    let mut config: serde_json::Value =
        serde_json::from_str(table.config(serde_json::json!({})).as_json()).unwrap();
    config.as_object_mut().unwrap().remove("dimension");
    let connector = PgvectorConnector::open(
        &ConnectorConfig::from_json(config.to_string()),
        HostContext::discard(),
    )
    .unwrap();
    assert_eq!(connector.describe().vector.unwrap().dimension, DIMENSION);
}

#[test]
fn a_missing_table_is_reported_with_the_statements_that_create_it() {
    let table = TestTable::create(DIMENSION);
    let missing = unique_name("kyro_it_missing");
    let config = serde_json::json!({ "table": format!("public.{missing}") });
    let findings = refused(table.open(config.clone()));
    assert_eq!(blocking(&findings), [format!("table \"public\".\"{missing}\"")]);
    assert!(
        findings.summary().contains(&format!(
            "table \"public\".\"{missing}\" cannot back a pgvector store with ownership_mode write_through: 1 finding blocks it"
        )),
        "{findings:#?}"
    );
    // The statements create a table that opens with nothing left to recommend.
    apply_fixes(&table.db, &findings);
    let log = CapturedLog::default();
    let opened = PgvectorConnector::open(&table.config(config), log.host());
    table.db.execute(&format!("DROP TABLE public.{missing}"));
    opened.unwrap();
    assert_eq!(logged_findings(&log), []);
}

#[test]
fn a_missing_table_without_a_dimension_asks_for_one() {
    let table = TestTable::create(DIMENSION);
    let mut config: serde_json::Value = serde_json::from_str(
        table.config(serde_json::json!({ "table": unique_name("kyro_it_missing") })).as_json(),
    )
    .unwrap();
    config.as_object_mut().unwrap().remove("dimension");
    let findings = refused(PgvectorConnector::open(
        &ConnectorConfig::from_json(config.to_string()),
        HostContext::discard(),
    ));
    let finding = &findings.findings()[0];
    assert!(finding.problem().contains("set dimension"), "{finding}");
    assert_eq!(finding.fix_sql(), None);
}

#[test]
fn each_missing_column_is_reported_with_the_statement_that_adds_it() {
    let table = TestTable::create(DIMENSION);
    let findings = refused(table.open(serde_json::json!({
        "columns": { "content": "body", "watermark": "changed_at", "metadata": "attributes" }
    })));
    assert_eq!(
        blocking(&findings),
        [
            "column \"body\" (columns.content)",
            "column \"attributes\" (columns.metadata)",
            "column \"changed_at\" (columns.watermark)",
        ]
    );
    assert_eq!(
        finding(&findings, "changed_at").fix_sql(),
        Some(
            format!(
                "ALTER TABLE \"public\".\"{}\" ADD COLUMN \"changed_at\" timestamptz NOT NULL DEFAULT clock_timestamp();",
                table.name
            )
            .as_str()
        )
    );
    apply_fixes(&table.db, &findings);
    table
        .open(serde_json::json!({
            "columns": { "content": "body", "watermark": "changed_at", "metadata": "attributes" }
        }))
        .unwrap();
}

#[test]
fn columns_of_the_wrong_type_are_reported_with_the_statement_that_converts_them() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace(
            "metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb",
            "metadata json NOT NULL DEFAULT '{}'::json",
        )
        .replace(
            "updated_at timestamptz NOT NULL DEFAULT clock_timestamp()",
            "updated_at timestamp NOT NULL DEFAULT now()",
        )
        .replace("namespace  text ", "namespace  integer ")
    });
    let findings = refused(table.open(serde_json::json!({})));
    assert_eq!(
        blocking(&findings),
        [
            "column \"namespace\" (columns.namespace) of type text or varchar",
            "column \"metadata\" (columns.metadata) of type jsonb",
            "column \"updated_at\" (columns.watermark) of type timestamptz, bigint or integer",
        ]
    );
    assert_eq!(
        finding(&findings, "columns.metadata").problem(),
        "it has type json",
        "{findings:#?}"
    );
    apply_fixes(&table.db, &findings);
    table.open(serde_json::json!({})).unwrap();
}

#[test]
fn an_embedding_that_is_not_a_vector_or_of_another_dimension_is_reported() {
    let table = TestTable::create(DIMENSION);
    table.db.execute(&format!("ALTER TABLE {} ADD COLUMN summary real[]", table.name));
    let findings =
        refused(table.open(serde_json::json!({ "columns": { "embedding": "summary" } })));
    let not_a_vector = finding(&findings, "column \"summary\" (columns.embedding)");
    assert_eq!(not_a_vector.problem(), "it has type real[]");
    apply_fixes(&table.db, &findings);

    let findings = refused(table.open(serde_json::json!({ "dimension": 16 })));
    let other_dimension = finding(&findings, "of dimension 16");
    assert!(
        other_dimension.problem().contains("it is vector(8); set dimension = 8"),
        "{other_dimension}"
    );
    assert_eq!(other_dimension.fix_sql(), None, "only the person knows which dimension is right");
}

#[test]
fn an_embedding_without_a_dimension_is_reported_with_the_statement_that_gives_it_one() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        let sql = sql.replace("vector(8)", "vector");
        // HNSW needs a dimension, so the example's vector index cannot exist on this column.
        sql.lines().filter(|line| !line.contains("USING hnsw")).collect::<Vec<_>>().join("\n")
    });
    let findings = refused(table.open(serde_json::json!({})));
    assert_eq!(blocking(&findings), ["column \"embedding\" (columns.embedding) of dimension 8"]);
    apply_fixes(&table.db, &findings);
    let log = CapturedLog::default();
    PgvectorConnector::open(&table.config(serde_json::json!({})), log.host()).unwrap();
    // Still no vector index: that is logged as a recommendation with its statement.
    let logged = logged_findings(&log);
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(!logged[0].is_blocking());
    assert_eq!(
        logged[0].fix_sql(),
        Some(
            format!(
                "CREATE INDEX CONCURRENTLY ON \"public\".\"{}\" USING hnsw (\"embedding\" vector_cosine_ops);",
                table.name
            )
            .as_str()
        )
    );
}

#[test]
fn every_ownership_mode_needs_the_scope_key_because_certification_upserts_through_it() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("PRIMARY KEY (tenant_id, namespace, id)", "UNIQUE (id)")
    });
    for (ownership_mode, why) in [
        ("write_through", "every upsert conflicts on it"),
        ("event_feed", "certification writes its private rows"),
    ] {
        let findings = refused(table.open(serde_json::json!({ "ownership_mode": ownership_mode })));
        let key = finding(
            &findings,
            "a primary key or unique constraint on exactly (\"tenant_id\", \"namespace\", \"id\") in that order",
        );
        assert!(key.problem().contains(why), "{ownership_mode}: {key}");
        assert!(
            findings.summary().contains(&format!("ownership_mode {ownership_mode}")),
            "{findings:#?}"
        );
    }
    let findings = refused(table.open(serde_json::json!({})));
    // The table has no primary key yet, so the fix adds one.
    assert_eq!(
        findings.findings()[0].fix_sql(),
        Some(
            format!(
                "ALTER TABLE \"public\".\"{}\" ADD PRIMARY KEY (\"tenant_id\", \"namespace\", \"id\");",
                table.name
            )
            .as_str()
        )
    );
    apply_fixes(&table.db, &findings);
    table.open(serde_json::json!({})).unwrap();
}

#[test]
fn a_key_in_another_order_or_a_partial_one_does_not_count() {
    let reordered = TestTable::create_with(DIMENSION, |sql| {
        sql.replace(
            "PRIMARY KEY (tenant_id, namespace, id)",
            "PRIMARY KEY (namespace, tenant_id, id)",
        )
    });
    let findings = refused(reordered.open(serde_json::json!({})));
    let key = finding(&findings, "in that order");
    assert!(
        key.problem().starts_with(
            "the key on (\"namespace\", \"tenant_id\", \"id\") has its columns in another order"
        ),
        "{key}"
    );
    // A primary key exists, so the fix adds a unique constraint next to it.
    assert!(key.fix_sql().unwrap().contains("ADD UNIQUE"), "{key:?}");
    apply_fixes(&reordered.db, &findings);
    reordered.open(serde_json::json!({})).unwrap();

    let partial = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("  PRIMARY KEY (tenant_id, namespace, id)\n", "  UNIQUE (id)\n")
    });
    partial.db.execute(&format!(
        "CREATE UNIQUE INDEX {0}_partial ON {0} (tenant_id, namespace, id) WHERE tenant_id <> ''",
        partial.name
    ));
    let findings = refused(partial.open(serde_json::json!({})));
    finding(&findings, "in that order");

    let unique = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("PRIMARY KEY (tenant_id, namespace, id)", "UNIQUE (tenant_id, namespace, id)")
    });
    unique.open(serde_json::json!({})).unwrap();
}

#[test]
fn write_through_needs_the_tenant_namespace_id_mutation_key() {
    let table = TestTable::create(DIMENSION);
    let err = table.open(serde_json::json!({ "mutation_key_mode": "id" })).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(
        err.message().contains("invalid pgvector connector config at `mutation_key_mode`"),
        "{err}"
    );
    table
        .open(serde_json::json!({ "mutation_key_mode": "id", "ownership_mode": "event_feed" }))
        .unwrap();
}

#[test]
fn snapshot_bundles_are_refused() {
    let table = TestTable::create(DIMENSION);
    let err = table.open(serde_json::json!({ "ownership_mode": "snapshot_bundle" })).unwrap_err();
    assert!(err.message().contains("snapshot bundles are not supported"), "{err}");
}

/// A case-insensitive ICU collation, dropped on drop (after the tables that use it).
struct CaseInsensitiveCollation {
    db: Db,
    name: String,
}

impl CaseInsensitiveCollation {
    fn create() -> Self {
        let db = Db::connect(&database_url());
        let name = unique_name("kyro_it_ci");
        db.execute(&format!(
            "CREATE COLLATION {name} (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
        ));
        Self { db, name }
    }
}

impl Drop for CaseInsensitiveCollation {
    fn drop(&mut self) {
        self.db.execute(&format!("DROP COLLATION IF EXISTS {}", self.name));
    }
}

#[test]
fn scope_and_id_columns_with_a_nondeterministic_collation_are_refused() {
    let collation = CaseInsensitiveCollation::create();
    // What the refusal prevents: under this collation two tenants are one.
    assert_eq!(
        collation.db.text(&format!("SELECT ('Acme' = 'acme' COLLATE {})::text", collation.name)),
        Some("true".to_owned())
    );
    for (column, key) in
        [("tenant_id", "columns.tenant"), ("namespace", "columns.namespace"), ("id", "columns.id")]
    {
        let table = TestTable::create_with(DIMENSION, |sql| {
            sql.replace(
                &format!("{column:<10} text        NOT NULL"),
                &format!("{column} text COLLATE {} NOT NULL", collation.name),
            )
        });
        for ownership_mode in ["write_through", "event_feed"] {
            let findings =
                refused(table.open(serde_json::json!({ "ownership_mode": ownership_mode })));
            let found = finding(
                &findings,
                &format!("column \"{column}\" ({key}) compared with a deterministic collation"),
            );
            assert!(
                found.problem().contains(&format!(
                    "uses the nondeterministic collation \"{}\"",
                    collation.name
                )),
                "{found}"
            );
        }
        let findings = refused(table.open(serde_json::json!({})));
        apply_fixes(&table.db, &findings);
        table.open(serde_json::json!({})).unwrap();
    }
    // Content is never compared, so its collation does not matter.
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("content    text", &format!("content text COLLATE {}", collation.name))
    });
    table.open(serde_json::json!({})).unwrap();
}

#[test]
fn a_unique_index_with_a_nondeterministic_collation_is_refused_as_the_conflict_key() {
    let collation = CaseInsensitiveCollation::create();
    let table = TestTable::create(DIMENSION);
    // The columns are deterministic, but an upsert may pick this index as its conflict key.
    table.db.execute(&format!(
        "CREATE UNIQUE INDEX {0}_ci ON {0} (tenant_id COLLATE {1}, namespace, id)",
        table.name, collation.name
    ));
    let findings = refused(table.open(serde_json::json!({ "ownership_mode": "event_feed" })));
    let key = finding(&findings, "in that order");
    assert!(key.problem().contains("compares with a nondeterministic collation"), "{key}");
    apply_fixes(&table.db, &findings);
    table.open(serde_json::json!({})).unwrap();
}

#[test]
fn a_vector_index_for_another_distance_is_logged_not_refused() {
    let table =
        TestTable::create_with(DIMENSION, |sql| sql.replace("vector_cosine_ops", "vector_l2_ops"));
    let log = CapturedLog::default();
    PgvectorConnector::open(&table.config(serde_json::json!({})), log.host()).unwrap();
    let logged = logged_findings(&log);
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(
        logged[0].problem().contains("uses vector_l2_ops, which cannot serve cosine searches"),
        "{}",
        logged[0]
    );
    // With the distance the index serves, nothing is left to recommend.
    let log = CapturedLog::default();
    PgvectorConnector::open(&table.config(serde_json::json!({ "distance": "l2" })), log.host())
        .unwrap();
    assert_eq!(logged_findings(&log), []);
}

#[test]
fn every_finding_comes_in_one_pass_and_the_check_changes_nothing() {
    let collation = CaseInsensitiveCollation::create();
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace("PRIMARY KEY (tenant_id, namespace, id)", "UNIQUE (id)")
            .replace("tenant_id  text ", &format!("tenant_id text COLLATE {} ", collation.name))
            .replace("metadata   jsonb ", "metadata json ")
            .replace("DEFAULT '{}'::jsonb", "DEFAULT '{}'::json")
            .lines()
            .filter(|line| !line.contains("CREATE INDEX"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let before = catalog_fingerprint(&table);
    let findings = refused(table.open(serde_json::json!({ "columns": { "content": "body" } })));
    assert_eq!(catalog_fingerprint(&table), before, "the check must not change the table");
    assert_eq!(
        blocking(&findings),
        [
            "column \"tenant_id\" (columns.tenant) compared with a deterministic collation",
            "column \"body\" (columns.content)",
            "column \"metadata\" (columns.metadata) of type jsonb",
            "a primary key or unique constraint on exactly (\"tenant_id\", \"namespace\", \"id\") in that order",
        ]
    );
    let advisories: Vec<&str> = findings
        .findings()
        .iter()
        .filter(|finding| !finding.is_blocking())
        .map(SetupFinding::requirement)
        .collect();
    assert_eq!(
        advisories,
        [
            "an hnsw index on \"embedding\" with vector_cosine_ops (distance = \"cosine\")",
            "an index on (\"tenant_id\", \"namespace\", \"updated_at\" DESC)",
        ]
    );
    assert!(
        findings.summary().ends_with("4 findings block it (and 2 more recommendations)"),
        "{}",
        findings.summary()
    );
    // Running every statement, blocking and advisory, in order gives a table with nothing left.
    for finding in findings.findings() {
        table.db.execute(finding.fix_sql().unwrap());
    }
    let log = CapturedLog::default();
    PgvectorConnector::open(
        &table.config(serde_json::json!({ "columns": { "content": "body" } })),
        log.host(),
    )
    .unwrap();
    assert_eq!(logged_findings(&log), []);
}

#[test]
fn a_role_without_write_privileges_is_told_what_to_grant() {
    let table = TestTable::create(DIMENSION);
    let role = unique_name("kyro_it_reader");
    let password = unique_name("pw");
    table.db.execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT SELECT ON {} TO {role}",
        table.name
    ));
    let url = database_url();
    let (_, host_and_database) = url.rsplit_once('@').unwrap();
    let dsn = format!("postgres://{role}:{password}@{host_and_database}");
    let findings = refused(table.open(serde_json::json!({ "dsn": { "value": dsn } })));
    let grant = finding(&findings, "SELECT, INSERT, UPDATE and DELETE");
    assert!(grant.problem().starts_with("the role lacks INSERT, UPDATE, DELETE"), "{grant}");
    apply_fixes(&table.db, &findings);
    let opened = table.open(serde_json::json!({ "dsn": { "value": dsn } }));
    drop(opened);
    table.db.execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
    assert_eq!(findings.findings().len(), 1, "{findings:#?}");
    assert!(!findings.clone().into_error().message().contains(&password));
}

#[test]
fn a_database_without_the_vector_extension_is_told_to_create_it() {
    let admin = Db::connect(&database_url());
    let database = unique_name("kyro_it_noext");
    admin.execute(&format!("CREATE DATABASE {database}"));
    let url = database_url();
    let (server, _) = url.rsplit_once('/').unwrap();
    let database_url = format!("{server}/{database}");
    let config = ConnectorConfig::from_json(
        serde_json::json!({
            "dsn": { "value": database_url },
            "table": "kyro_documents",
            "dimension": DIMENSION,
            "ownership_mode": "event_feed",
        })
        .to_string(),
    );
    let findings = refused(PgvectorConnector::open(&config, HostContext::discard()));
    // The statements, in order, make the fresh database ready.
    let fresh = Db::connect(&database_url);
    apply_fixes(&fresh, &findings);
    drop(fresh);
    let opened = PgvectorConnector::open(&config, HostContext::discard()).map(|_| ());
    admin.execute(&format!("DROP DATABASE {database} WITH (FORCE)"));
    assert_eq!(blocking(&findings), ["the vector extension", "table \"kyro_documents\""]);
    opened.unwrap();
}

#[test]
fn a_connection_that_fails_says_which_part_of_the_dsn_to_check() {
    let table = TestTable::create(DIMENSION);
    for (dsn, reason) in [
        (
            "postgres://kyro:kyro@127.0.0.1:1/kyro_test",
            "cannot reach the database: connection refused",
        ),
        ("postgres://kyro:kyro@kyro-no-such-host.invalid/kyro_test", "failed to lookup address"),
    ] {
        let err = table
            .open(serde_json::json!({ "dsn": { "value": dsn }, "connect_timeout_ms": 500 }))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.message().contains(reason), "expected {reason:?} in: {err}");
        assert!(
            err.message().ends_with(
                "check that the server is running and that the DSN's host and port reach it"
            ),
            "{err}"
        );
    }
    let url = database_url();
    let (_, host_and_database) = url.rsplit_once('@').unwrap();
    let (host, _) = host_and_database.rsplit_once('/').unwrap();
    for (dsn, expected) in [
        (
            format!("postgres://kyro:not-the-password@{host_and_database}"),
            "password authentication failed for user \"kyro\"; check the user and password in the DSN",
        ),
        (
            format!("postgres://kyro:kyro@{host}/no_such_database_here"),
            "database \"no_such_database_here\" does not exist; check the database name in the DSN",
        ),
    ] {
        let err = table.open(serde_json::json!({ "dsn": { "value": dsn } })).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        assert!(err.message().ends_with(expected), "expected {expected:?} in: {err}");
        assert!(!err.message().contains("not-the-password"), "{err}");
    }
}
