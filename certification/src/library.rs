//! Certification as a library call: a connector type (or any way to open one) and its
//! configuration in, the same report `kyro certify` writes out.
//!
//! [`certify_connector`] is for a plugin author's own `cargo test`: it opens the connector
//! in-process, puts it behind the same guard the host uses (call timeout, panics caught and
//! quarantined), captures its log lines, opens canary copies, and runs every check.
//! [`certify_with`] is the shared path: `kyro certify` calls it with a loaded plugin's `open`.
//!
//! What it deliberately does not do: load plugin files or read configuration files (the host
//! does). It does keep panics on the guard's worker threads out of the process's panic output
//! (see [`certify_with`]), because their messages may quote secrets.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, Once};

use kyro_connector_sdk::guard::{GuardConfig, GuardedConnector};
use kyro_connector_sdk::{
    Connector, ConnectorConfig, ConnectorError, ConnectorPlugin, ErrorKind, HostContext, LogLevel,
    Result,
};
use serde_json::Value;

use crate::report::{CheckRecord, PluginIdentity, Report};
use crate::secrets::SecretSet;
use crate::{Options, Subject};

/// Sends an encoded request through a connector's own decoder.
pub type RawCall = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>> + Send + Sync>;

/// A connector opened for certification, and its raw boundary.
pub struct Opened {
    /// The connector, not yet guarded.
    pub connector: Arc<dyn Connector>,
    /// Sends an encoded request through the connector's own decoder: `ForeignConnector::call_raw`
    /// for a loaded plugin, `abi::dispatch_raw` in-process.
    pub raw_call: RawCall,
}

/// Why a certification could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The connector refused its configuration or could not reach its store. The message is
    /// scrubbed of every part of every secret in the configuration.
    #[error("the connector refused to open: {message}")]
    Refused {
        /// The connector's error, scrubbed.
        message: String,
    },
    /// The guard's worker threads could not start.
    #[error("failed to start the connector's workers: {message}")]
    Guard {
        /// The OS's reason.
        message: String,
    },
}

/// Certifies the connector type `C` opened in-process with `config` (a JSON object, as the host
/// would pass the store's `[stores.config]` table), exactly as `kyro certify` certifies a built
/// plugin: same checks, same guard, same redaction, same report.
///
/// # Errors
///
/// [`OpenError`] when the connector cannot be opened; a certification that starts always
/// yields a report, whatever its verdict.
pub fn certify_connector<C: ConnectorPlugin>(
    config: &Value,
    options: Options,
) -> std::result::Result<Report, OpenError> {
    let info = C::plugin_info();
    let plugin = PluginIdentity {
        name: info.name,
        version: info.version,
        sdk_version: info.sdk_version,
        abi_version: "in-process".to_owned(),
        sha256: None,
        path: None,
    };
    let open = |config: &ConnectorConfig, host: HostContext| -> Result<Opened> {
        let opened =
            catch_unwind(AssertUnwindSafe(|| C::open(config, host))).unwrap_or_else(|_| {
                Err(ConnectorError::new(
                    ErrorKind::Panicked,
                    "the connector panicked while opening",
                ))
            })?;
        let connector: Arc<dyn Connector> = Arc::new(opened);
        let target = Arc::clone(&connector);
        Ok(Opened {
            connector,
            raw_call: Arc::new(move |payload: &[u8]| {
                kyro_connector_sdk::abi::dispatch_raw(target.as_ref(), payload)
            }),
        })
    };
    certify_with(plugin, config, &open, options, &mut |_| {})
}

/// Opens a connector with `open` and certifies it: the path `kyro certify` and
/// [`certify_connector`] share. `on_check` sees each check's record as it finishes.
///
/// The first call installs a panic hook that stays silent for panics on the guard's worker
/// threads (named `kyro-connector-*`) and hands every other panic to the hook before it.
///
/// # Errors
///
/// [`OpenError`] when the connector cannot be opened or guarded.
pub fn certify_with(
    plugin: PluginIdentity,
    config: &Value,
    open: &dyn Fn(&ConnectorConfig, HostContext) -> Result<Opened>,
    options: Options,
    on_check: &mut dyn FnMut(&CheckRecord),
) -> std::result::Result<Report, OpenError> {
    silence_connector_panics();
    let log_lines = Arc::new(Mutex::new(Vec::new()));
    let secrets = SecretSet::from_config(config);
    let opened = open(&ConnectorConfig::from_json(config.to_string()), capturing_host(&log_lines))
        .map_err(|err| OpenError::Refused { message: secrets.scrub(&err.to_string()) })?;
    let guard_config = GuardConfig { call_timeout: options.call_timeout, workers: 2 };
    let guarded = GuardedConnector::new(&plugin.name, Arc::clone(&opened.connector), guard_config)
        .map_err(|err| OpenError::Guard { message: err.to_string() })?;
    let raw_call = |payload: &[u8]| {
        let payload = payload.to_vec();
        let raw = Arc::clone(&opened.raw_call);
        guarded.run("raw call", move |_| raw(&payload))
    };
    let open_canary = |canary_config: &Value| -> Result<Box<dyn Connector>> {
        let canary = open(
            &ConnectorConfig::from_json(canary_config.to_string()),
            capturing_host(&log_lines),
        )?;
        let guard_config = GuardConfig { call_timeout: options.call_timeout, workers: 1 };
        Ok(Box::new(GuardedConnector::new("canary", canary.connector, guard_config)?))
    };
    let subject = Subject {
        connector: &guarded,
        raw_call: &raw_call,
        plugin,
        config,
        open_canary: &open_canary,
        log_lines: &log_lines,
    };
    Ok(crate::certify(&subject, options, on_check))
}

/// Keeps panics on the guard's worker threads (`kyro-connector-*`) out of the process's panic
/// output, as a loaded plugin's own silenced hook does: the guard returns each one as a
/// `Panicked` error, which the report shows scrubbed, while the default hook would print its
/// message, secrets and all, to stderr. Panics on every other thread reach the previous hook.
fn silence_connector_panics() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_worker = std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with("kyro-connector-"));
            if !on_worker {
                previous(info);
            }
        }));
    });
}

/// A log sink that keeps every line for the redaction checks.
pub fn capturing_host(lines: &Arc<Mutex<Vec<String>>>) -> HostContext {
    let lines = Arc::clone(lines);
    HostContext::new(move |level: LogLevel, message: &str| {
        if let Ok(mut lines) = lines.lock() {
            lines.push(format!("{level:?} {message}"));
        }
    })
}
