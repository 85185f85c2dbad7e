//! Canary secrets: a DSN password never appears in an error, a log line written through the
//! `HostContext`, `Debug` output of any configuration or connector type, or health.

use kyro_connector_pgvector::{PgvectorConfig, PgvectorConnector};
use kyro_connector_sdk::{
    Connector, ConnectorConfig, ConnectorPlugin, ErrorKind, HealthStatus, LogLevel,
};

use crate::support::{
    CapturedLog, DIMENSION, TestTable, database_url, direction, document, id, scope, search,
    unique_name,
};

/// A password nobody else uses, so finding it anywhere is a leak.
fn canary_password() -> String {
    format!("kyro-canary-{}", unique_name("pw"))
}

/// The test database URL with another user and password.
fn dsn_with(user: &str, password: &str) -> String {
    let url = database_url();
    let (_, host_and_database) = url.rsplit_once('@').unwrap();
    format!("postgres://{user}:{password}@{host_and_database}")
}

fn assert_no_canary(what: &str, text: &str, canaries: &[&str]) {
    for canary in canaries {
        assert!(!text.contains(canary), "{what} leaks the secret: {text}");
    }
}

fn config_json(table: &str, dsn_source: serde_json::Value) -> String {
    serde_json::json!({
        "dsn": dsn_source,
        "table": format!("public.{table}"),
        "dimension": DIMENSION,
        "ownership_mode": "write_through",
        "filterable_keys": ["lang"],
    })
    .to_string()
}

#[test]
fn a_refused_password_never_appears_in_errors_logs_or_debug_output() {
    let table = TestTable::create(DIMENSION);
    let password = canary_password();
    // Percent-encoded in the URL; the driver decodes it, so both spellings are secrets.
    let encoded_password = password.replacen("kyro-canary-", "kyro-canary-%41", 1);
    let decoded_password = password.replacen("kyro-canary-", "kyro-canary-A", 1);
    let secret_file = std::env::temp_dir().join(unique_name("kyro_it_dsn"));
    for (dsn, canaries) in [
        (dsn_with("kyro", &password), vec![password.as_str()]),
        (
            dsn_with("kyro", &encoded_password),
            vec![encoded_password.as_str(), decoded_password.as_str()],
        ),
    ] {
        std::fs::write(&secret_file, format!("{dsn}\n")).unwrap();
        for source in [
            serde_json::json!({ "value": dsn }),
            serde_json::json!({ "file": secret_file.to_str().unwrap() }),
        ] {
            let config = ConnectorConfig::from_json(config_json(&table.name, source));
            let raw: PgvectorConfig = config.parse().unwrap();
            assert_no_canary("PgvectorConfig Debug", &format!("{raw:?}"), &canaries);
            let validated = raw.validate().unwrap();
            assert_no_canary("ValidatedPgvectorConfig Debug", &format!("{validated:?}"), &canaries);
            assert_no_canary("ConnectorConfig Debug", &format!("{config:?}"), &canaries);

            let log = CapturedLog::default();
            let err = PgvectorConnector::open(&config, log.host()).unwrap_err();
            // 28P01: the server refused the password; retrying will not help.
            assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
            assert!(err.message().contains("28P01"), "{err}");
            assert_no_canary("error", &err.to_string(), &canaries);
            assert_no_canary("error Debug", &format!("{err:?}"), &canaries);
            for (_, line) in log.lines() {
                assert_no_canary("log line", &line, &canaries);
            }
            assert_no_canary("error", &err.to_string(), &[&dsn]);
        }
    }
    std::fs::remove_file(&secret_file).unwrap();
}

/// A login role with a canary password and rights on one table, dropped on drop.
struct CanaryRole<'a> {
    table: &'a TestTable,
    name: String,
}

impl Drop for CanaryRole<'_> {
    fn drop(&mut self) {
        self.table.db.execute(&format!("DROP OWNED BY {0}; DROP ROLE {0}", self.name));
    }
}

#[test]
fn a_working_password_never_appears_in_errors_logs_debug_output_or_health() {
    let table = TestTable::create(DIMENSION);
    let password = canary_password();
    let role = CanaryRole { table: &table, name: unique_name("kyro_it_canary") };
    table.db.execute(&format!(
        "CREATE ROLE {0} LOGIN PASSWORD '{password}'; \
         GRANT USAGE ON SCHEMA public TO {0}; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON {1} TO {0};",
        role.name, table.name
    ));
    let dsn = dsn_with(&role.name, &password);
    let canaries = [password.as_str(), dsn.as_str()];
    let log = CapturedLog::default();
    let config =
        ConnectorConfig::from_json(config_json(&table.name, serde_json::json!({ "value": dsn })));
    let connector = PgvectorConnector::open(&config, log.host()).unwrap();

    let mine = scope("tenant-a", "docs");
    connector.upsert(&mine, &document("doc", direction(0, 0.0), &[("lang", "en")])).unwrap();
    connector.search(&mine, &search(direction(0, 0.0), 5, None)).unwrap();
    connector.fetch(&mine, &[id("doc")]).unwrap();
    connector.watermark(&mine).unwrap();
    let health = connector.health().unwrap();
    assert_eq!(health.status, HealthStatus::Healthy);
    assert_no_canary("health", &format!("{health:?}"), &canaries);
    assert_no_canary("connector Debug", &format!("{connector:?}"), &canaries);
    assert_no_canary("describe", &format!("{:?}", connector.describe()), &canaries);

    // A failure after open goes through the same redaction and is logged.
    table.db.execute(&format!("REVOKE SELECT ON {} FROM {}", table.name, role.name));
    let err = connector.search(&mine, &search(direction(0, 0.0), 5, None)).unwrap_err();
    assert!(err.message().contains("42501"), "{err}");
    assert_no_canary("error", &format!("{err} {err:?}"), &canaries);
    let lines = log.lines();
    assert!(
        lines.iter().any(|(level, line)| *level == LogLevel::Warn && line.contains("42501")),
        "{lines:?}"
    );
    for (_, line) in &lines {
        assert_no_canary("log line", line, &canaries);
    }
    drop(connector);
}
