//! `kyro init pgvector` as a person runs it against the test PostgreSQL: a ready table is
//! certified, its files written and served; a table missing each requirement is reported with the
//! fix and left exactly as it was; a bad DSN or a wrong password gets one sentence naming what to
//! fix, and no password reaches any output or file.

use std::path::Path;
use std::process::{Command, Output};

use kyro_e2e::postgres::{database_url, psql};
use kyro_e2e::server::{KyroServer, free_address};
use kyro_e2e::{kyro_binary, plugin_path, temp_dir};
use serde_json::Value;

use crate::pgvector::{Table, create_table};

/// Runs `kyro init pgvector --plugin <built> ARGS` with `env` added to this process's environment.
fn kyro_init(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(kyro_binary())
        .args(["init", "pgvector", "--plugin"])
        .arg(plugin_path("kyro-connector-pgvector"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The arguments that check `table` in the test database and write into `dir`.
fn test_database_args<'a>(table: &'a str, dir: &'a Path) -> Vec<&'a str> {
    vec!["--dsn-env", "KYRO_TEST_DATABASE_URL", "--table", table, "--dir", dir.to_str().unwrap()]
}

/// The `--json` document `kyro init` printed.
fn json_outcome(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("kyro init --json printed no JSON ({err}):\n{}", text(output)))
}

/// The string `field` of each object in the JSON array `items`.
fn field_of_each<'a>(items: &'a Value, field: &str) -> Vec<&'a str> {
    items.as_array().unwrap().iter().map(|item| item[field].as_str().unwrap()).collect()
}

/// The first column of the first row of `sql`, as psql prints it.
fn psql_value(sql: &str) -> String {
    let output =
        Command::new("psql").arg(database_url()).args(["-tAq", "-c", sql]).output().unwrap();
    assert!(output.status.success(), "psql failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Everything the catalog holds about `table` (columns with types, collations and nullability,
/// indexes, constraints, grants, rows), the relations named like it, and the extensions: equal
/// before and after a run means the run changed nothing.
fn catalog_fingerprint(table: &str) -> String {
    let rows = if psql_value(&format!("SELECT to_regclass('public.{table}') IS NOT NULL")) == "t" {
        psql_value(&format!("SELECT count(*) FROM public.{table}"))
    } else {
        "no table".to_owned()
    };
    let catalog = psql_value(&format!(
        "SELECT concat_ws(' | ', \
           (SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod) || ':' || attcollation || ':' || attnotnull, ',' ORDER BY attnum) \
            FROM pg_attribute WHERE attrelid = to_regclass('public.{table}') AND attnum > 0 AND NOT attisdropped), \
           (SELECT string_agg(pg_get_indexdef(indexrelid), ';' ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = to_regclass('public.{table}')), \
           (SELECT string_agg(pg_get_constraintdef(oid), ';' ORDER BY pg_get_constraintdef(oid)) FROM pg_constraint WHERE conrelid = to_regclass('public.{table}')), \
           (SELECT relacl::text FROM pg_class WHERE oid = to_regclass('public.{table}')), \
           (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relname LIKE '{table}%'), \
           (SELECT string_agg(extname || ' ' || extversion, ',' ORDER BY extname) FROM pg_extension))"
    ));
    format!("{catalog} | rows {rows}")
}

fn insert_rows(table: &str) {
    psql(&format!(
        "INSERT INTO {table} (tenant_id, namespace, id, embedding, metadata, content) VALUES \
         ('acme', 'support', 'refunds', '[1,0,0,0]', '{{\"lang\":\"en\"}}', 'acme refunds in 14 days'), \
         ('acme', 'support', 'shipping', '[0,1,0,0]', '{{\"lang\":\"en\"}}', 'acme ships in 2 days'), \
         ('globex', 'support', 'refunds', '[1,0,0,0]', '{{\"lang\":\"en\"}}', 'globex secret refunds')"
    ));
}

#[cfg(unix)]
fn assert_owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} must be readable by its owner only", path.display());
}

#[cfg(not(unix))]
fn assert_owner_only(_path: &Path) {}

#[test]
fn init_on_a_ready_table_certifies_it_writes_the_files_and_serve_answers_a_scoped_retrieve() {
    let table = Table(create_table("init_ready"));
    insert_rows(&table.0);
    let dir = temp_dir("init-ready");
    let address = free_address();
    let listen = address.to_string();
    let mut args = test_database_args(&table.0, &dir);
    args.extend(["--filterable-key", "lang", "--listen", &listen, "--sample-tenant", "acme"]);
    let output = kyro_init(&args, &[]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains(&format!(
            "table {} can back a pgvector store with ownership_mode write_through (dimension 4, cosine distance); certified:",
            table.0
        )),
        "{printed}"
    );
    assert!(printed.contains("serve --config"), "{printed}");
    assert!(printed.contains("curl -s http://"), "{printed}");
    for token in ["data.token", "admin.token"] {
        assert_owner_only(&dir.join(token));
    }
    let config = std::fs::read_to_string(dir.join("kyro.toml")).unwrap();
    assert!(config.contains("dsn = { env = \"KYRO_TEST_DATABASE_URL\" }"), "{config}");
    assert!(config.contains("dimension = 4"), "{config}");
    assert!(!config.contains("postgres://"), "the DSN must not be written: {config}");
    let store = std::fs::read_to_string(dir.join("store.toml")).unwrap();
    assert!(!store.contains("postgres://"), "{store}");

    // The store configuration certifies with `kyro certify`, as its header says.
    let certify = Command::new(kyro_binary())
        .args(["certify", "--plugin"])
        .arg(plugin_path("kyro-connector-pgvector"))
        .arg("--store-config")
        .arg(dir.join("store.toml"))
        .output()
        .unwrap();
    assert_eq!(certify.status.code(), Some(0), "{}", text(&certify));

    // kyro serve runs the written configuration; the printed curl's request answers acme only.
    let server = KyroServer::start_existing(&dir, address).unwrap();
    let token = std::fs::read_to_string(dir.join("data.token")).unwrap();
    let body = std::fs::read(dir.join("retrieve.json")).unwrap();
    let response = server.post_raw("/v1/context/retrieve", Some(token.trim()), &[], &body);
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let packet = response.json();
    assert_eq!(
        field_of_each(&packet["items"], "content"),
        ["acme refunds in 14 days", "acme ships in 2 days"],
        "{packet}"
    );

    // A second run refuses to overwrite the files unless asked to.
    let again = kyro_init(&test_database_args(&table.0, &dir), &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("already exists; pass --force"), "{}", text(&again));
}

#[test]
fn init_json_reports_the_outcome_for_scripts() {
    let table = Table(create_table("init_json"));
    let dir = temp_dir("init-json");
    let mut args = test_database_args(&table.0, &dir);
    args.extend(["--ownership", "event_feed", "--json"]);
    let output = kyro_init(&args, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outcome = json_outcome(&output);
    assert_eq!(outcome["status"], "ready");
    assert_eq!(outcome["ownership_mode"], "event_feed");
    assert_eq!(outcome["dimension"], 4);
    assert_eq!(outcome["certification"]["verdict"], "certified");
    assert_eq!(outcome["certification"]["profile"], "pgvector/event_feed");
    assert_eq!(outcome["certification"]["summary"]["failed"], 0);
    assert_eq!(outcome["files"]["config"], dir.join("kyro.toml").to_str().unwrap());
    assert_eq!(outcome["findings"], Value::Array(Vec::new()));
}

/// One broken table: how to break the example schema, extra arguments, and the requirement the
/// finding must name.
struct Broken {
    name: &'static str,
    edit: fn(String) -> String,
    args: &'static [&'static str],
    requirement: &'static str,
}

#[test]
fn init_reports_each_missing_requirement_with_its_fix_and_changes_nothing() {
    let cases = [
        Broken {
            name: "no_column",
            edit: |sql| sql.replace("  content    text,\n", ""),
            args: &[],
            requirement: "column \"content\" (columns.content)",
        },
        Broken {
            name: "json_metadata",
            edit: |sql| {
                sql.replace("metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb", "metadata json")
            },
            args: &[],
            requirement: "column \"metadata\" (columns.metadata) of type jsonb",
        },
        Broken {
            name: "no_watermark",
            edit: |sql| {
                sql.replace("  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n", "")
                    .replace(", updated_at DESC", "")
            },
            args: &[],
            requirement: "column \"updated_at\" (columns.watermark)",
        },
        Broken {
            name: "no_key",
            edit: |sql| sql.replace("PRIMARY KEY (tenant_id, namespace, id)", "UNIQUE (id)"),
            args: &["--ownership", "event_feed"],
            requirement: "a primary key or unique constraint on exactly (\"tenant_id\", \"namespace\", \"id\") in that order",
        },
        Broken {
            name: "key_order",
            edit: |sql| {
                sql.replace(
                    "PRIMARY KEY (tenant_id, namespace, id)",
                    "PRIMARY KEY (id, namespace, tenant_id)",
                )
            },
            args: &[],
            requirement: "in that order",
        },
        Broken {
            name: "dimension",
            edit: |sql| sql,
            args: &["--dimension", "16"],
            requirement: "column \"embedding\" (columns.embedding) of dimension 16",
        },
        Broken {
            name: "collation",
            edit: |sql| sql.replace("tenant_id  text ", "tenant_id text COLLATE {ci} "),
            args: &[],
            requirement: "column \"tenant_id\" (columns.tenant) compared with a deterministic collation",
        },
    ];
    let collation = format!("kyro_e2e_init_ci_{}", std::process::id());
    psql(&format!(
        "DROP COLLATION IF EXISTS {collation}; \
         CREATE COLLATION {collation} (provider = icu, locale = 'und-u-ks-level2', deterministic = false);",
    ));
    let schema = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/pgvector-live/schema.sql"
    ))
    .unwrap();
    for case in cases {
        let table = Table(format!("kyro_e2e_init_{}_{}", case.name, std::process::id()));
        psql(&format!("DROP TABLE IF EXISTS {};", table.0));
        psql(
            &(case.edit)(
                schema.replace("kyro_documents", &table.0).replace("vector(8)", "vector(4)"),
            )
            .replace("{ci}", &collation),
        );
        insert_rows_if_possible(&table.0);
        let dir = temp_dir(&format!("init-{}", case.name));
        let before = catalog_fingerprint(&table.0);
        let mut args = test_database_args(&table.0, &dir);
        args.extend_from_slice(case.args);
        let output = kyro_init(&args, &[]);
        let printed = text(&output);
        assert_eq!(output.status.code(), Some(1), "{}: {printed}", case.name);
        assert!(printed.contains(case.requirement), "{}: {printed}", case.name);
        assert!(printed.contains("Nothing was changed in the database."), "{printed}");
        assert_eq!(catalog_fingerprint(&table.0), before, "{}: the database changed", case.name);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "{}: files were written",
            case.name
        );

        args.push("--json");
        let outcome = json_outcome(&kyro_init(&args, &[]));
        assert_eq!(outcome["status"], "not_ready", "{}", case.name);
        let finding = outcome["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|finding| finding["requirement"].as_str().unwrap().contains(case.requirement))
            .unwrap_or_else(|| panic!("{}: {outcome}", case.name));
        assert_eq!(finding["blocking"], true, "{}", case.name);
        if case.name != "dimension" {
            assert!(finding["fix_sql"].as_str().is_some(), "{}: {finding}", case.name);
        }
        assert_eq!(catalog_fingerprint(&table.0), before, "{}: the database changed", case.name);
    }
    psql(&format!("DROP COLLATION IF EXISTS {collation};"));

    // A missing table: the statements that create it, and still nothing created.
    let missing = format!("kyro_e2e_init_missing_{}", std::process::id());
    let before = catalog_fingerprint(&missing);
    let output = kyro_init(
        &["--dsn-env", "KYRO_TEST_DATABASE_URL", "--table", &missing, "--dimension", "4"],
        &[],
    );
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(printed.contains(&format!("CREATE TABLE \"{missing}\" (")), "{printed}");
    assert_eq!(catalog_fingerprint(&missing), before);
}

/// Inserts the sample rows when the broken schema still takes them, so "nothing changed" also
/// covers the rows.
fn insert_rows_if_possible(table: &str) {
    let _ = Command::new("psql")
        .arg(database_url())
        .args([
            "-q",
            "-c",
            &format!(
                "INSERT INTO {table} (tenant_id, namespace, id, embedding) VALUES ('acme', 'support', 'refunds', '[1,0,0,0]')"
            ),
        ])
        .output()
        .unwrap();
}

#[test]
fn init_on_a_database_without_pgvector_says_to_create_the_extension_and_changes_nothing() {
    let database = format!("kyro_e2e_init_noext_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE);"));
    psql(&format!("CREATE DATABASE {database};"));
    let url = database_url();
    let (server, _) = url.rsplit_once('/').unwrap();
    let output = kyro_init(
        &["--dsn-env", "KYRO_INIT_TEST_DSN", "--table", "docs", "--dimension", "4", "--json"],
        &[("KYRO_INIT_TEST_DSN", &format!("{server}/{database}"))],
    );
    let extensions = Command::new("psql")
        .arg(format!("{server}/{database}"))
        .args(["-tAq", "-c", "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"])
        .output()
        .unwrap();
    psql(&format!("DROP DATABASE {database} WITH (FORCE);"));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let outcome = json_outcome(&output);
    assert_eq!(
        field_of_each(&outcome["findings"], "requirement"),
        ["the vector extension", "table \"docs\""],
        "{outcome}"
    );
    assert_eq!(outcome["findings"][0]["fix_sql"], "CREATE EXTENSION IF NOT EXISTS vector;");
    assert_eq!(String::from_utf8_lossy(&extensions.stdout).trim(), "0", "nothing was created");
}

#[test]
fn a_bad_dsn_or_a_wrong_password_gets_one_sentence_and_the_password_never_appears() {
    let table = Table(create_table("init_bad_dsn"));
    let url = database_url();
    let (_, host_and_database) = url.rsplit_once('@').unwrap();
    let (host, _) = host_and_database.rsplit_once('/').unwrap();
    let password = format!("init-canary-{}-pw", std::process::id());
    let encoded = password.replace('-', "%2D");
    // The unknown database needs the right password to be told apart from a wrong one.
    let (_, right_userinfo) = url.split_once("://").unwrap();
    let (right_userinfo, _) = right_userinfo.split_once('@').unwrap();
    let cases = [
        (
            format!("postgres://kyro:{password}@{host_and_database}"),
            "password authentication failed for user \"kyro\"; check the user and password in the DSN",
        ),
        (
            format!("postgres://kyro:{encoded}@{host_and_database}"),
            "password authentication failed for user \"kyro\"; check the user and password in the DSN",
        ),
        (
            format!("postgres://kyro:{password}@127.0.0.1:1/kyro_test"),
            "connection refused; check that the server is running and that the DSN's host and port reach it",
        ),
        (
            format!("postgres://{right_userinfo}@{host}/no_such_database_here"),
            "database \"no_such_database_here\" does not exist; check the database name in the DSN",
        ),
        (
            format!("mysql://kyro:{password}@{host}/kyro_test"),
            "must be a postgres:// or postgresql:// URL",
        ),
    ];
    for (case_idx, (dsn, expected)) in cases.iter().enumerate() {
        for (args, env) in [
            (vec!["--dsn-env", "KYRO_INIT_TEST_DSN"], vec![("KYRO_INIT_TEST_DSN", dsn.as_str())]),
            (vec!["--dsn", dsn.as_str()], vec![]),
        ] {
            let mut args = args.clone();
            args.extend(["--table", &table.0]);
            let output = kyro_init(&args, &env);
            let printed = text(&output);
            assert_eq!(output.status.code(), Some(1), "{printed}");
            let errors: Vec<&str> =
                printed.lines().filter(|line| line.starts_with("error: ")).collect();
            assert_eq!(errors.len(), 1, "one sentence: {printed}");
            assert!(errors[0].contains(expected), "expected {expected:?} in: {printed}");
            for secret in [password.as_str(), encoded.as_str(), dsn.as_str()] {
                assert!(!printed.contains(secret), "the password reached the output: {printed}");
            }
            if case_idx == 0 {
                args.push("--json");
                let output = kyro_init(&args, &env);
                let printed = text(&output);
                assert_eq!(json_outcome(&output)["status"], "error");
                assert!(!printed.contains(&password), "{printed}");
            }
        }
    }
}

#[test]
fn a_ready_run_with_a_secret_password_keeps_it_out_of_every_output_and_file() {
    let table = Table(create_table("init_secret"));
    let role = format!("kyro_e2e_init_role_{}", std::process::id());
    let password = format!("init-secret-{}-pw", std::process::id());
    psql(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{password}'; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {role};",
        table.0
    ));
    let url = database_url();
    let (_, host_and_database) = url.rsplit_once('@').unwrap();
    let dsn = format!("postgres://{role}:{password}@{host_and_database}");
    let dir = temp_dir("init-secret");
    let output = kyro_init(
        &["--table", &table.0, "--dir", dir.to_str().unwrap()],
        &[("KYRO_PG_DSN", dsn.as_str())],
    );
    psql(&format!("DROP OWNED BY {role}; DROP ROLE {role};"));
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(!printed.contains(&password), "{printed}");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let contents = std::fs::read_to_string(&path).unwrap();
        assert!(!contents.contains(&password), "{} holds the password", path.display());
        assert!(!contents.contains("postgres://"), "{} holds the DSN", path.display());
    }
    assert!(
        std::fs::read_to_string(dir.join("kyro.toml"))
            .unwrap()
            .contains("{ env = \"KYRO_PG_DSN\" }")
    );
}
