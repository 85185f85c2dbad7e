//! A real `kyro serve` process for one store: production mode, loopback, SQLite state in a
//! fresh directory, three planes of tokens, killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub(crate) const DATA_TOKEN: &str = "bench-data-token-0123456789abcdef";
const OBS_TOKEN: &str = "bench-obs-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// A running `kyro serve`, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) address: SocketAddr,
}

impl Server {
    /// Writes `kyro.toml` into `dir` with `store_config` as its one store and starts the server;
    /// returns once it prints that it listens (after loading and certifying the store).
    pub(crate) fn start(
        kyro_binary: &Path,
        dir: &Path,
        store_config: &str,
        database_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("failed to find a free loopback port")?;
        let config = format!(
            "listen = \"{address}\"\nmode = \"production\"\ndefault_freshness = \"strict\"\n\
             state = \"sqlite://state.db\"\n\
             [tokens]\n\
             data = [{{ token = {{ value = \"{DATA_TOKEN}\" }} }}]\n\
             observability = [{{ token = {{ value = \"{OBS_TOKEN}\" }} }}]\n\
             admin = [{{ token = {{ value = \"{ADMIN_TOKEN}\" }} }}]\n\
             {store_config}"
        );
        let config_path = dir.join("kyro.toml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("failed to write {}", config_path.display()))?;
        let mut command = Command::new(kyro_binary);
        command
            .args(["serve", "--config"])
            .arg(&config_path)
            .current_dir(dir)
            .env("KYRO_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(database_url) = database_url {
            command.env("KYRO_TEST_DATABASE_URL", database_url);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to start {}", kyro_binary.display()))?;
        let stderr = child.stderr.take().context("kyro serve has no stderr")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut output = String::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(wait) {
                Ok(line) => {
                    output.push_str(&line);
                    output.push('\n');
                    if line.starts_with("kyro listening on") {
                        // Keep draining stderr so the server never blocks on a full pipe.
                        std::thread::spawn(move || while receiver.recv().is_ok() {});
                        return Ok(Self { child, address });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("kyro serve did not start; it printed:\n{output}");
                }
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
