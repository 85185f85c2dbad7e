//! `kyro.toml`: the host's configuration, parsed strictly (unknown keys refused) and validated
//! before anything is opened. Validation reads the secrets the file names (environment
//! variables, secret files): that is its only IO, and no message ever contains a secret.
//!
//! ```toml
//! listen = "127.0.0.1:7070"
//! mode = "development"              # or "production"
//! default_freshness = "balanced"    # strict | balanced | eventual
//! state = "sqlite://kyro-state.db"  # relative sqlite paths are resolved next to this file;
//!                                   # or state = { env = "KYRO_STATE_URL" } for postgres://...
//! reuse_cache_entries = 10000
//! trace_retention_hours = 168       # evidence retention, enforced every ten seconds
//! feedback_retention_hours = 720
//! capture_retention_hours = 168     # default: trace_retention_hours
//! capture_max_steps = 10000         # replay capture bound; 0 turns capture off
//! shadow_session_ttl_secs = 900
//! max_shadow_sessions = 8
//!
//! [attestation]                    # optional: every plugin needs a statement signed by one of
//! public_keys = ["keys/ci.pub"]     # these keys (`kyro certify --attest`), checked before loading
//!
//! [tokens]
//! data = [{ token = { env = "KYRO_DATA_TOKEN" }, tenants = ["acme"] }]
//! observability = [{ token = { file = "/run/secrets/kyro-obs" } }]
//! admin = [{ token = { env = "KYRO_ADMIN_TOKEN" } }]
//!
//! [[stores]]
//! id = "docs"
//! plugin = "plugins/libkyro_connector_pgvector.so"
//! ownership_mode = "write_through"
//! namespaces = ["*"]
//! # attestation = "plugins/libkyro_connector_pgvector.so.attestation.json"  # the default
//! [stores.config]                   # passed to the plugin unchanged
//! dsn = { env = "DOCS_DSN" }
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kyro_core::{FreshnessMode, OwnershipMode};

pub mod attestation;
mod validate;

use self::validate::{resolve_state_url, validate_store, validate_tokens};
use serde::Deserialize;

/// Why a configuration was refused; every message names the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TOML did not parse into the expected shape (unknown keys included).
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value broke a rule.
    #[error("invalid config key `{key}`: {message}")]
    Invalid {
        /// The key, as a dotted path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A secret could not be resolved.
    #[error("config key `{key}`: {message}")]
    Secret {
        /// The key, as a dotted path.
        key: String,
        /// What is wrong; never the value.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

/// Where a secret comes from: `{ env = "VAR" }`, `{ file = "path" }` or `{ value = "..." }`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretConfig {
    /// An environment variable.
    Env(String),
    /// A file, trailing newline trimmed.
    File(PathBuf),
    /// Inline (accepted; prefer the other two).
    Value(String),
}

impl std::fmt::Debug for SecretConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(name) => write!(f, "Env({name})"),
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::Value(_) => f.write_str("Value(***)"),
        }
    }
}

impl SecretConfig {
    fn resolve(&self, key: &str, base: &Path) -> Result<String, ConfigError> {
        match self {
            Self::Env(name) => std::env::var(name).map_err(|_| ConfigError::Secret {
                key: key.to_owned(),
                message: format!("environment variable {name} is not set"),
            }),
            Self::File(path) => {
                let path = if path.is_absolute() { path.clone() } else { base.join(path) };
                std::fs::read_to_string(&path)
                    .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
                    .map_err(|err| ConfigError::Secret {
                        key: key.to_owned(),
                        message: format!("failed to read {}: {}", path.display(), err.kind()),
                    })
            }
            Self::Value(value) => Ok(value.clone()),
        }
    }
}

/// The state store: a URL string or a secret holding one.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StateConfig {
    /// `sqlite://path` or `postgres://...` inline.
    Url(String),
    /// A secret holding the URL (for URLs with passwords).
    Secret(SecretConfig),
}

/// One token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Where the token comes from.
    pub token: SecretConfig,
    /// When present, the tenants this token may act for; absent means every tenant.
    pub tenants: Option<Vec<String>>,
}

/// Tokens per plane.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// Data-plane tokens (retrieve, change events, mutations, feedback).
    #[serde(default)]
    pub data: Vec<TokenConfig>,
    /// Observability-plane tokens (traces, diagnoses, proofs).
    #[serde(default)]
    pub observability: Vec<TokenConfig>,
    /// Admin-plane tokens (health, bundles, replay); also valid for observability routes.
    #[serde(default)]
    pub admin: Vec<TokenConfig>,
}

/// One store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The store's id, used in traces and connector change events.
    pub id: String,
    /// The plugin file; relative paths are resolved next to the config file.
    pub plugin: PathBuf,
    /// The ownership mode this store is served under; the plugin must declare it.
    pub ownership_mode: String,
    /// Namespaces this store serves; `["*"]` for every namespace.
    pub namespaces: Vec<String>,
    /// Startup certification budget, in seconds (default 10).
    pub certification_budget_secs: Option<u64>,
    /// Bound on each connector call, in milliseconds (default 5000).
    pub call_timeout_ms: Option<u64>,
    /// The plugin's signed statement, checked when `[attestation]` is configured (default: the
    /// plugin file's path plus `.attestation.json`).
    pub attestation: Option<PathBuf>,
    /// Passed to the plugin unchanged.
    #[serde(default = "empty_table")]
    pub config: toml::Table,
}

fn empty_table() -> toml::Table {
    toml::Table::new()
}

/// The raw file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Listen address.
    pub listen: String,
    /// `production` or `development`.
    pub mode: String,
    /// Default freshness mode for retrieves that name none.
    pub default_freshness: String,
    /// The durable state store.
    pub state: StateConfig,
    /// Reuse cache size, in entries (default 10000).
    pub reuse_cache_entries: Option<usize>,
    /// Trace retention, in hours (default 168).
    pub trace_retention_hours: Option<u64>,
    /// Feedback retention, in hours (default 720).
    pub feedback_retention_hours: Option<u64>,
    /// Replay capture retention, in hours (default: the trace retention).
    pub capture_retention_hours: Option<u64>,
    /// The most replay capture steps kept (default 10000; 0 turns capture off).
    pub capture_max_steps: Option<usize>,
    /// How long a shadow session lives, in seconds (default 900).
    pub shadow_session_ttl_secs: Option<u64>,
    /// The most shadow sessions alive at once (default 8).
    pub max_shadow_sessions: Option<usize>,
    /// Signed statements every plugin must come with.
    pub attestation: Option<attestation::AttestationConfig>,
    /// Tokens.
    #[serde(default)]
    pub tokens: TokensConfig,
    /// Stores.
    #[serde(default)]
    pub stores: Vec<StoreConfig>,
}

/// A resolved token.
#[derive(Clone)]
pub struct ValidatedToken {
    /// The token text.
    pub token: String,
    /// The tenants it may act for; `None` for all.
    pub tenants: Option<BTreeSet<String>>,
}

impl std::fmt::Debug for ValidatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedToken")
            .field("token", &"***")
            .field("tenants", &self.tenants)
            .finish()
    }
}

/// A checked store.
#[derive(Debug, Clone)]
pub struct ValidatedStore {
    /// Its id.
    pub id: String,
    /// The plugin file, absolute or relative to the working directory.
    pub plugin: PathBuf,
    /// The ownership mode.
    pub ownership: OwnershipMode,
    /// Served namespaces; `None` for all.
    pub namespaces: Option<BTreeSet<String>>,
    /// Startup certification budget.
    pub certification_budget: Duration,
    /// Bound on each connector call.
    pub call_timeout: Duration,
    /// The plugin's configuration, as JSON.
    pub connector_config: serde_json::Value,
    /// The statement file the store's configuration names, if any.
    pub attestation_statement: Option<PathBuf>,
    /// The signed statement its plugin must come with, when `[attestation]` is configured.
    pub attestation: Option<attestation::RequiredAttestation>,
}

/// The whole checked configuration.
#[derive(Debug, Clone)]
pub struct ValidatedConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Production mode refuses uncertified and best_effort stores at startup.
    pub production: bool,
    /// Default freshness.
    pub default_freshness: FreshnessMode,
    /// State store URL (may hold a password: never log it).
    pub state_url: String,
    /// Reuse cache size.
    pub reuse_cache_entries: usize,
    /// Trace retention.
    pub trace_retention: Duration,
    /// Feedback retention.
    pub feedback_retention: Duration,
    /// Replay capture retention.
    pub capture_retention: Duration,
    /// The most capture steps kept; 0 when capture is off.
    pub capture_max_steps: usize,
    /// Shadow session lifetime.
    pub shadow_session_ttl: Duration,
    /// The most shadow sessions alive at once.
    pub max_shadow_sessions: usize,
    /// Data-plane tokens.
    pub data_tokens: Vec<ValidatedToken>,
    /// Observability-plane tokens.
    pub observability_tokens: Vec<ValidatedToken>,
    /// Admin-plane tokens.
    pub admin_tokens: Vec<ValidatedToken>,
    /// Stores, in file order.
    pub stores: Vec<ValidatedStore>,
}

impl HostConfig {
    /// Reads and parses `path` (no secrets resolved yet).
    ///
    /// # Errors
    ///
    /// The file cannot be read, or does not parse; unknown keys are refused by name.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            message: err.to_string(),
        })
    }

    /// Checks every value and resolves secrets; relative paths are resolved against `base`
    /// (the config file's directory).
    ///
    /// # Errors
    ///
    /// The first invalid value, naming its key.
    pub fn validate(self, base: &Path) -> Result<ValidatedConfig, ConfigError> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| invalid("listen", "must be an address like 127.0.0.1:7070"))?;
        let production = match self.mode.as_str() {
            "production" => true,
            "development" => false,
            _ => return Err(invalid("mode", "must be \"production\" or \"development\"")),
        };
        let default_freshness = self
            .default_freshness
            .parse::<FreshnessMode>()
            .map_err(|_| invalid("default_freshness", "must be strict, balanced or eventual"))?;
        let state_url = match &self.state {
            StateConfig::Url(url) => url.clone(),
            StateConfig::Secret(secret) => secret.resolve("state", base)?,
        };
        let state_url = resolve_state_url(&state_url, base)?;
        let reuse_cache_entries = self.reuse_cache_entries.unwrap_or(10_000);
        if reuse_cache_entries == 0 {
            return Err(invalid("reuse_cache_entries", "must be at least 1"));
        }
        let (trace_retention, feedback_retention, capture_retention) = self.retentions()?;
        let capture_max_steps = self.capture_max_steps.unwrap_or(10_000);
        let shadow_session_ttl = Duration::from_secs(self.shadow_session_ttl_secs.unwrap_or(900));
        if shadow_session_ttl.is_zero() {
            return Err(invalid("shadow_session_ttl_secs", "must be at least 1"));
        }
        let max_shadow_sessions = self.max_shadow_sessions.unwrap_or(8);
        let data_tokens = validate_tokens("data", &self.tokens.data, base)?;
        let observability_tokens =
            validate_tokens("observability", &self.tokens.observability, base)?;
        let admin_tokens = validate_tokens("admin", &self.tokens.admin, base)?;
        if data_tokens.is_empty() {
            return Err(invalid("tokens.data", "needs at least one token"));
        }
        let trusted =
            self.attestation.as_ref().map(|config| config.trusted_keys(base)).transpose()?;
        let mut stores = Vec::new();
        let mut ids = BTreeSet::new();
        for (idx, store) in self.stores.into_iter().enumerate() {
            let mut store = validate_store(idx, store, production, base, &mut ids)?;
            store.attestation = attestation::required(
                trusted.as_deref(),
                store.attestation_statement.as_deref(),
                &store.plugin,
                base,
                &format!("stores[{idx}]"),
            )?;
            stores.push(store);
        }
        if stores.is_empty() {
            return Err(invalid("stores", "needs at least one [[stores]] entry"));
        }
        Ok(ValidatedConfig {
            listen,
            production,
            default_freshness,
            state_url,
            reuse_cache_entries,
            trace_retention,
            feedback_retention,
            capture_retention,
            capture_max_steps,
            shadow_session_ttl,
            max_shadow_sessions,
            data_tokens,
            observability_tokens,
            admin_tokens,
            stores,
        })
    }
}

impl HostConfig {
    /// The trace, feedback and capture retentions, each at least an hour.
    fn retentions(&self) -> Result<(Duration, Duration, Duration), ConfigError> {
        let hours = |key: &str, value: Option<u64>, default: u64| {
            let value = value.unwrap_or(default);
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
            Ok(Duration::from_secs(value.saturating_mul(3600)))
        };
        let trace_hours = self.trace_retention_hours.unwrap_or(168);
        Ok((
            hours("trace_retention_hours", Some(trace_hours), 168)?,
            hours("feedback_retention_hours", self.feedback_retention_hours, 720)?,
            hours("capture_retention_hours", self.capture_retention_hours, trace_hours)?,
        ))
    }
}

impl ValidatedConfig {
    /// Reads, parses and validates the file at `path`.
    ///
    /// # Errors
    ///
    /// As [`HostConfig::read`] and [`HostConfig::validate`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        HostConfig::read(path)?.validate(&base)
    }
}
