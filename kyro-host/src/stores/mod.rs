//! Stores: every configured store is loaded, opened and certified before it may serve
//! (`certify` holds what this shares with `kyro certify`). A store that fails certification (or
//! whose plugin does not declare the configured ownership mode) is never registered; the reason
//! is kept for the operator's health route and the startup output.
//!
//! This layer sits below the runtime: it imports only `config`.

pub mod attestation;
pub mod certify;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kyro_certification::{CheckStatus, Depth, Options, Report, Subject, Verdict};
use kyro_connector_sdk::guard::{GuardConfig, GuardedConnector};
use kyro_connector_sdk::loader::{self, Plugin};
use kyro_connector_sdk::{CapabilityManifest, Connector, ConnectorConfig, HostContext, LogLevel};
use kyro_core::OwnershipMode;

use self::certify::plugin_identity;
use crate::config::ValidatedStore;

/// A store that passed certification and serves.
pub struct RegisteredStore {
    /// Its configuration.
    pub config: ValidatedStore,
    /// The connector, behind its guard.
    pub connector: Arc<GuardedConnector>,
    /// What it declared.
    pub manifest: CapabilityManifest,
    /// Its certification report.
    pub report: Report,
    /// When it was registered.
    pub registered_at: Instant,
}

impl RegisteredStore {
    /// Whether `namespace` is served by this store.
    pub fn serves(&self, namespace: &str) -> bool {
        self.config.namespaces.as_ref().is_none_or(|namespaces| namespaces.contains(namespace))
    }

    /// Whether write-through mutations may go through it.
    pub fn allows_write_through(&self) -> bool {
        self.config.ownership == OwnershipMode::WriteThrough
            && self.manifest.backs(OwnershipMode::WriteThrough)
    }
}

/// A store that was refused, and why.
#[derive(Debug, Clone)]
pub struct RefusedStore {
    /// The store id.
    pub id: String,
    /// One line: the failing check ids with their first witness, or the load/open error.
    pub reason: String,
}

/// The outcome of registering every configured store.
pub struct Registration {
    /// Stores that serve.
    pub stores: Vec<Arc<RegisteredStore>>,
    /// Stores that were refused.
    pub refused: Vec<RefusedStore>,
}

/// Loads, opens and certifies each store (the fast startup profile within each store's budget).
pub fn register_all(stores: &[ValidatedStore]) -> Registration {
    let mut registration = Registration { stores: Vec::new(), refused: Vec::new() };
    for store in stores {
        match register(store) {
            Ok(registered) => registration.stores.push(Arc::new(registered)),
            Err(reason) => registration.refused.push(RefusedStore { id: store.id.clone(), reason }),
        }
    }
    registration
}

/// Routes a connector's log lines into the host's logs and, while certification runs, into
/// `capture` so the redaction checks can scan them.
fn tracing_host(
    store_id: &str,
    capture: &Arc<Mutex<Vec<String>>>,
    capturing: &Arc<AtomicBool>,
) -> HostContext {
    let store_id = store_id.to_owned();
    let capture = Arc::clone(capture);
    let capturing = Arc::clone(capturing);
    HostContext::new(move |level: LogLevel, message: &str| {
        if capturing.load(Ordering::Relaxed)
            && let Ok(mut lines) = capture.lock()
        {
            lines.push(format!("{level:?} {message}"));
        }
        match level {
            LogLevel::Debug => tracing::debug!(store = %store_id, "{message}"),
            LogLevel::Info => tracing::info!(store = %store_id, "{message}"),
            LogLevel::Warn => tracing::warn!(store = %store_id, "{message}"),
            LogLevel::Error => tracing::error!(store = %store_id, "{message}"),
        }
    })
}

/// Summarizes why a report refused a store: failing ids with the first witness.
pub fn refusal_reason(report: &Report) -> String {
    let failed = report.checks.iter().find_map(|check| match &check.status {
        CheckStatus::Failed { witness } => {
            Some(format!("{}: sent {}; received {}", check.id, witness.sent, witness.received))
        }
        _ => None,
    });
    match report.verdict {
        Verdict::Certified => "certified".to_owned(),
        Verdict::Refused => format!(
            "certification refused ({}); first witness: {}",
            report.failed_checks.join(", "),
            failed.unwrap_or_default()
        ),
        Verdict::Invalid => format!(
            "certification invalid: could not run {}; {}",
            report.error_checks.join(", "),
            report.cleanup.detail
        ),
    }
}

fn register(store: &ValidatedStore) -> Result<RegisteredStore, String> {
    // A required attestation is checked before any of the plugin's code is loaded.
    let attested =
        store.attestation.as_ref().map(|required| attestation::check(required, &store.plugin));
    let attested = attested.transpose()?;
    let plugin = loader::load(&store.plugin).map_err(|err| err.to_string())?;
    if attested.is_some_and(|sha256| sha256 != plugin.sha256()) {
        return Err("the plugin file changed after its attestation was checked".to_owned());
    }
    let connector_config = ConnectorConfig::from_json(store.connector_config.to_string());
    let log_lines = Arc::new(Mutex::new(Vec::new()));
    let capturing = Arc::new(AtomicBool::new(true));
    let foreign = Arc::new(
        plugin
            .open(&connector_config, tracing_host(&store.id, &log_lines, &capturing))
            .map_err(|err| format!("plugin {} refused to open: {err}", plugin.info().name))?,
    );
    let guard_config = GuardConfig { call_timeout: store.call_timeout, workers: 8 };
    let connector = Arc::new(
        GuardedConnector::new(&store.id, Arc::clone(&foreign) as Arc<dyn Connector>, guard_config)
            .map_err(|err| err.to_string())?,
    );
    let manifest = connector.describe();
    if !manifest.backs(store.ownership) {
        return Err(format!(
            "the plugin does not declare ownership mode {} (it declares: {})",
            store.ownership,
            manifest
                .ownership_modes
                .iter()
                .map(|mode| mode.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let report = certify(store, &plugin, &connector, &foreign, &log_lines);
    capturing.store(false, Ordering::Relaxed);
    if report.verdict != Verdict::Certified {
        return Err(refusal_reason(&report));
    }
    Ok(RegisteredStore {
        config: store.clone(),
        connector,
        manifest,
        report,
        registered_at: Instant::now(),
    })
}

fn certify(
    store: &ValidatedStore,
    plugin: &Plugin,
    connector: &Arc<GuardedConnector>,
    foreign: &Arc<loader::ForeignConnector>,
    log_lines: &Arc<Mutex<Vec<String>>>,
) -> Report {
    let open_canary =
        |config: &serde_json::Value| -> kyro_connector_sdk::Result<Box<dyn Connector>> {
            let opened = plugin.open(
                &ConnectorConfig::from_json(config.to_string()),
                kyro_certification::capturing_host(log_lines),
            )?;
            let guarded = GuardedConnector::new(
                "canary",
                Arc::new(opened),
                GuardConfig { call_timeout: store.call_timeout, workers: 1 },
            )?;
            Ok(Box::new(guarded))
        };
    let raw_foreign = Arc::clone(foreign);
    let raw_call = move |payload: &[u8]| raw_foreign.call_raw(payload);
    let subject = Subject {
        connector: connector.as_ref(),
        raw_call: &raw_call,
        plugin: plugin_identity(plugin),
        config: &store.connector_config,
        open_canary: &open_canary,
        log_lines,
    };
    let options = Options {
        depth: Depth::Standard,
        seed: None,
        call_timeout: store.call_timeout,
        budget: Some(store.certification_budget),
    };
    kyro_certification::certify(&subject, options, &mut |record| {
        tracing::debug!(store = %store.id, check = record.id, outcome = record.status.as_str(), "certification check");
    })
}
