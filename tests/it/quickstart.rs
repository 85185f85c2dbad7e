//! `kyro quickstart` as a person runs it: the tour prints every step, then the server answers the
//! printed curl's request with the printed token; on PostgreSQL (`--pgvector`) the same tour runs
//! in a private table that is gone once the tour stops.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use kyro_e2e::postgres::{Database, database_url};
use kyro_e2e::server::free_address;
use kyro_e2e::{kyro_binary, plugin_path, temp_dir};
use serde_json::json;

/// A running quickstart and what it printed up to its instructions.
struct Quickstart {
    child: Child,
    lines: Receiver<String>,
    output: String,
    address: SocketAddr,
}

impl Quickstart {
    /// Starts `kyro quickstart --dir DIR --listen ADDR EXTRA` and reads its standard output until
    /// the tour ends.
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let address = free_address();
        let mut child = Command::new(kyro_binary())
            .args(["quickstart", "--dir"])
            .arg(dir)
            .args(["--listen", &address.to_string()])
            .args(extra)
            .env("KYRO_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut quickstart = Self { child, lines, output: String::new(), address };
        quickstart.read_until("Press ctrl-c");
        assert!(
            quickstart.output.contains("Press ctrl-c"),
            "the quickstart did not finish its tour:\n{}",
            quickstart.output
        );
        for expected in [
            "status complete",
            "path context_reuse_hit",
            "omitted refund-policy (stale_pruned)",
            "acknowledged at generation",
        ] {
            assert!(
                quickstart.output.contains(expected),
                "missing {expected:?} in:\n{}",
                quickstart.output
            );
        }
        assert!(
            !quickstart.output.contains("Globex refunds"),
            "tenant acme's retrieves never show globex's documents:\n{}",
            quickstart.output
        );
        quickstart
    }

    fn read_until(&mut self, prefix: &str) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(180)) {
            self.output.push_str(&line);
            self.output.push('\n');
            if line.starts_with(prefix) {
                break;
            }
        }
    }

    /// The printed data token answers a scoped retrieve for globex with the tour's store only.
    fn assert_serves_globex(&self) {
        let token = self
            .output
            .lines()
            .find_map(|line| line.strip_prefix("data token:"))
            .unwrap()
            .trim()
            .to_owned();
        let query: Vec<f32> = vec![0.125; 64];
        let response = kyro_e2e::http::request(
            self.address,
            "POST",
            "/v1/context/retrieve",
            Some(&token),
            &[],
            Some(json!({ "query_embedding": query, "scope": { "tenant_id": "globex", "namespace": "support" }, "top_k": 3 }).to_string().as_bytes()),
        )
        .unwrap();
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
        let packet = response.json();
        let items = packet["items"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{packet}");
        assert!(items.iter().all(|item| item["provenance"]["connector"] == "quickstart"));
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_quickstart_tours_every_mode_and_keeps_serving() {
    let plugin = plugin_path("kyro-connector-qdrant");
    let dir = temp_dir("quickstart");
    let quickstart = Quickstart::start(&dir, &["--plugin", plugin.to_str().unwrap()]);
    assert!(quickstart.output.contains("rev 2"), "{}", quickstart.output);
    quickstart.assert_serves_globex();
    drop(quickstart);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_pgvector_quickstart_tours_a_private_table_and_drops_it_when_stopped() {
    plugin_path("kyro-connector-pgvector");
    let dsn = database_url();
    let dir = temp_dir("quickstart-pgvector");
    let mut quickstart = Quickstart::start(&dir, &["--pgvector", &dsn]);
    assert!(!quickstart.output.contains(&dsn), "the DSN is never printed:\n{}", quickstart.output);
    let table = quickstart
        .output
        .lines()
        .find_map(|line| line.strip_prefix("Created table \""))
        .and_then(|rest| rest.split_once('"'))
        .map(|(table, _)| table.to_owned())
        .unwrap_or_else(|| panic!("no private table named in:\n{}", quickstart.output));
    let exists = |table: &str| {
        let output = Command::new("psql")
            .arg(database_url())
            .args(["-tAq", "-c", &format!("SELECT to_regclass('{table}') IS NOT NULL")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim() == "t"
    };
    assert!(exists(&table), "the tour runs on {table}");
    let config = std::fs::read_to_string(dir.join("kyro.toml")).unwrap();
    assert!(!config.contains("postgres://"), "the DSN is never written:\n{config}");
    quickstart.assert_serves_globex();

    let stopped =
        Command::new("kill").arg("-TERM").arg(quickstart.child.id().to_string()).status().unwrap();
    assert!(stopped.success());
    quickstart.read_until("Dropped table");
    assert!(quickstart.child.wait().unwrap().success(), "{}", quickstart.output);
    assert!(
        quickstart.output.contains(&format!("Dropped table \"{table}\".")),
        "{}",
        quickstart.output
    );
    assert!(!exists(&table), "{table} must be gone once the tour stopped");
}

#[test]
fn the_pgvector_quickstart_on_a_database_without_pgvector_says_so_and_creates_nothing() {
    let database = Database::create("quickstart_noext");
    let output = Command::new(kyro_binary())
        .args(["quickstart", "--listen", &free_address().to_string(), "--dir"])
        .arg(temp_dir("quickstart-noext"))
        .args(["--pgvector", &database.url()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the tour cannot run on this database; it needs:\n  - the vector extension: it is not installed in this database\n    fix: CREATE EXTENSION IF NOT EXISTS vector;"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("CREATE TABLE"), "{stderr}");
    let tables = Command::new("psql")
        .arg(database.url())
        .args([
            "-tAq",
            "-c",
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'kyro_quickstart_%'",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tables.stdout).trim(), "0");
}
