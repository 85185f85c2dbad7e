//! Starting the real `kyro serve` as a child process for end-to-end tests.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::http::{HttpResponse, request};
use crate::kyro_binary;

/// Tokens the test configurations use, one per plane plus a tenant-restricted data token.
pub const DATA_TOKEN: &str = "data-token-0123456789abcdef";
/// Data token restricted to tenant `acme`.
pub const ACME_DATA_TOKEN: &str = "acme-data-token-0123456789";
/// Observability token.
pub const OBS_TOKEN: &str = "obs-token-0123456789abcdef";
/// Observability token restricted to tenant `acme`.
pub const ACME_OBS_TOKEN: &str = "acme-obs-token-0123456789";
/// Admin token.
pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
/// Admin token restricted to tenant `acme`.
pub const ACME_ADMIN_TOKEN: &str = "acme-admin-token-0123456789";

/// The `[tokens]` section every test configuration uses.
pub fn tokens_section() -> String {
    format!(
        "[tokens]\n\
         data = [{{ token = {{ value = \"{DATA_TOKEN}\" }} }}, {{ token = {{ value = \"{ACME_DATA_TOKEN}\" }}, tenants = [\"acme\"] }}]\n\
         observability = [{{ token = {{ value = \"{OBS_TOKEN}\" }} }}, {{ token = {{ value = \"{ACME_OBS_TOKEN}\" }}, tenants = [\"acme\"] }}]\n\
         admin = [{{ token = {{ value = \"{ADMIN_TOKEN}\" }} }}, {{ token = {{ value = \"{ACME_ADMIN_TOKEN}\" }}, tenants = [\"acme\"] }}]\n"
    )
}

/// A free loopback port (bound then released).
///
/// # Panics
///
/// When the OS gives no port.
pub fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("loopback has free ports");
    listener.local_addr().expect("a bound socket has an address")
}

/// A running `kyro serve`.
pub struct KyroServer {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its configuration directory.
    pub dir: PathBuf,
    /// What it printed to stderr before it was ready.
    pub startup_output: String,
}

impl KyroServer {
    /// Writes `config` (which must contain `listen = "{address}"` via the placeholder
    /// `{listen}`) into `dir/kyro.toml` and starts the server; returns once it listens.
    ///
    /// # Errors
    ///
    /// The process exited before listening; the error carries everything it printed.
    pub fn start(dir: &Path, config: &str) -> Result<Self, String> {
        let address = free_address();
        std::fs::create_dir_all(dir).map_err(|err| err.to_string())?;
        let config = config.replace("{listen}", &address.to_string());
        std::fs::write(dir.join("kyro.toml"), config).map_err(|err| err.to_string())?;
        Self::start_existing(dir, address)
    }

    /// Starts the server on an existing `dir/kyro.toml` listening at `address`.
    ///
    /// # Errors
    ///
    /// The process exited before listening.
    pub fn start_existing(dir: &Path, address: SocketAddr) -> Result<Self, String> {
        Self::start_existing_with_env(dir, address, &[])
    }

    /// Starts the server on an existing `dir/kyro.toml` listening at `address`, with `env` added
    /// to its environment (secrets a configuration names by variable).
    ///
    /// # Errors
    ///
    /// The process exited before listening.
    pub fn start_existing_with_env(
        dir: &Path,
        address: SocketAddr,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut child = Command::new(kyro_binary())
            .args(["serve", "--config"])
            .arg(dir.join("kyro.toml"))
            .env("KYRO_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| err.to_string())?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
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
        loop {
            match receiver.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    output.push_str(&line);
                    output.push('\n');
                    if line.starts_with("kyro listening on") {
                        // Keep draining stderr so the child never blocks on a full pipe.
                        std::thread::spawn(move || while receiver.recv().is_ok() {});
                        return Ok(Self {
                            child,
                            address,
                            dir: dir.to_path_buf(),
                            startup_output: output,
                        });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().map(|status| status.to_string()).unwrap_or_default();
                    return Err(format!(
                        "kyro serve did not start ({status}); it printed:\n{output}"
                    ));
                }
            }
        }
    }

    /// POSTs JSON.
    ///
    /// # Panics
    ///
    /// On a connection error.
    pub fn post(&self, path: &str, token: &str, body: &serde_json::Value) -> HttpResponse {
        self.post_raw(path, Some(token), &[], body.to_string().as_bytes())
    }

    /// POSTs raw bytes with extra headers.
    ///
    /// # Panics
    ///
    /// On a connection error.
    pub fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        request(self.address, "POST", path, token, headers, Some(body))
            .expect("kyro answers on loopback")
    }

    /// GETs a path.
    ///
    /// # Panics
    ///
    /// On a connection error.
    pub fn get(&self, path: &str, token: Option<&str>) -> HttpResponse {
        self.get_with(path, token, &[])
    }

    /// GETs a path with extra headers.
    ///
    /// # Panics
    ///
    /// On a connection error.
    pub fn get_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        request(self.address, "GET", path, token, headers, None).expect("kyro answers on loopback")
    }

    /// Sends SIGKILL and waits.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a graceful exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().map(|status| status.success()).unwrap_or(false)
    }
}

impl Drop for KyroServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
