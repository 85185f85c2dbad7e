//! Certifying a connector plugin from its file and configuration: what `kyro certify` and host
//! startup share.
//!
//! This module does the IO the harness deliberately does not: it loads the plugin, resolves the
//! secrets named in the configuration (to scan for them), builds a canary configuration, captures
//! the connector's log lines, and bounds every call with a guard.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use kyro_certification::{CanaryProbe, CheckRecord, PluginIdentity, Profile, Report, Subject};
use kyro_connector_sdk::guard::{GuardConfig, GuardedConnector};
use kyro_connector_sdk::loader::{self, ForeignConnector, Plugin};
use kyro_connector_sdk::{Connector, ConnectorConfig, HostContext, LogLevel};
use serde_json::Value;

/// How long one connector call may take during certification before it counts as a hang.
pub const CERTIFICATION_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a store configuration file: TOML, or JSON when the file name ends in `.json`.
///
/// # Errors
///
/// The file cannot be read or parsed; the error names the file.
pub fn read_store_config(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read store config {}", path.display()))?;
    if path.extension().is_some_and(|extension| extension == "json") {
        serde_json::from_str(&text)
            .with_context(|| format!("store config {} is not valid JSON", path.display()))
    } else {
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("store config {} is not valid TOML", path.display()))?;
        serde_json::to_value(table).context("store config cannot be represented as JSON")
    }
}

/// The secret values a configuration names through the SDK's `SecretSource` shapes
/// (`{ env = .. }`, `{ file = .. }`, `{ value = .. }`), resolved here so they can be scanned for.
/// A secret that cannot be resolved is skipped; the connector will report it when it opens.
pub fn resolve_secrets(config: &Value) -> Vec<String> {
    let mut secrets = Vec::new();
    visit_secret_sources(config, &mut |source| {
        if let Some(secret) = resolve_source(source) {
            secrets.push(secret);
        }
    });
    secrets.retain(|secret| secret.len() >= 4);
    secrets
}

fn resolve_source(source: &SecretShape<'_>) -> Option<String> {
    match source {
        SecretShape::Env(name) => std::env::var(name).ok(),
        SecretShape::File(path) => std::fs::read_to_string(path)
            .ok()
            .map(|text| text.trim_end_matches(['\n', '\r']).to_owned()),
        SecretShape::Value(value) => Some((*value).to_owned()),
    }
}

enum SecretShape<'a> {
    Env(&'a str),
    File(&'a str),
    Value(&'a str),
}

fn secret_shape(value: &Value) -> Option<SecretShape<'_>> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let (key, inner) = object.iter().next()?;
    let inner = inner.as_str()?;
    match key.as_str() {
        "env" => Some(SecretShape::Env(inner)),
        "file" => Some(SecretShape::File(inner)),
        "value" => Some(SecretShape::Value(inner)),
        _ => None,
    }
}

fn visit_secret_sources(value: &Value, visit: &mut dyn FnMut(&SecretShape<'_>)) {
    if let Some(shape) = secret_shape(value) {
        visit(&shape);
        return;
    }
    match value {
        Value::Object(object) => {
            object.values().for_each(|inner| visit_secret_sources(inner, visit))
        }
        Value::Array(items) => items.iter().for_each(|inner| visit_secret_sources(inner, visit)),
        _ => {}
    }
}

/// A copy of `config` with every secret source replaced by an inline canary. For URL-shaped
/// secrets (`scheme://user:password@host/...`) only the password becomes the canary, so the
/// connector still reaches its store and fails there, where leaks happen. Returns the copy and
/// the canary, or `None` when the configuration names no secret.
pub fn canary_config(config: &Value, canary: &str) -> Option<Value> {
    let mut copy = config.clone();
    let mut replaced = false;
    replace_secret_sources(&mut copy, &mut |source| {
        replaced = true;
        let original = resolve_source(source).unwrap_or_default();
        serde_json::json!({ "value": with_canary(&original, canary) })
    });
    replaced.then_some(copy)
}

fn with_canary(original: &str, canary: &str) -> String {
    if let Some((scheme, rest)) = original.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
    {
        let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
        return format!("{scheme}://{user}:{canary}@{host}");
    }
    canary.to_owned()
}

fn replace_secret_sources(value: &mut Value, replace: &mut dyn FnMut(&SecretShape<'_>) -> Value) {
    if let Some(shape) = secret_shape(value) {
        let replacement = replace(&shape);
        *value = replacement;
        return;
    }
    match value {
        Value::Object(object) => {
            object.values_mut().for_each(|inner| replace_secret_sources(inner, replace))
        }
        Value::Array(items) => {
            items.iter_mut().for_each(|inner| replace_secret_sources(inner, replace))
        }
        _ => {}
    }
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

/// The report identity of a loaded plugin.
pub fn plugin_identity(plugin: &Plugin) -> PluginIdentity {
    let info = plugin.info();
    PluginIdentity {
        name: info.name.clone(),
        version: info.version.clone(),
        sdk_version: info.sdk_version.clone(),
        abi_version: plugin.abi_version().to_string(),
        sha256: Some(plugin.sha256().to_owned()),
        path: Some(plugin.path().display().to_string()),
    }
}

/// A plugin opened for certification: the guarded connector and the raw boundary.
pub struct OpenedPlugin {
    /// The connector behind a guard.
    pub guarded: Arc<GuardedConnector>,
    /// The same connector without the guard, for raw payloads.
    pub foreign: Arc<ForeignConnector>,
}

/// Opens `plugin` with `config` behind a guard.
///
/// # Errors
///
/// The plugin refused the configuration or could not reach its store.
pub fn open_guarded(
    plugin: &Plugin,
    config: &Value,
    host: HostContext,
    timeout: Duration,
) -> anyhow::Result<OpenedPlugin> {
    let connector_config = ConnectorConfig::from_json(config.to_string());
    let foreign = Arc::new(
        plugin
            .open(&connector_config, host)
            .with_context(|| format!("plugin {} refused to open", plugin.info().name))?,
    );
    let guarded = GuardedConnector::new(
        &plugin.info().name,
        Arc::clone(&foreign) as Arc<dyn Connector>,
        GuardConfig { call_timeout: timeout, workers: 2 },
    )
    .context("failed to start connector workers")?;
    Ok(OpenedPlugin { guarded: Arc::new(guarded), foreign })
}

/// Loads, opens and certifies the plugin at `path` with the connector configuration `config`.
///
/// # Errors
///
/// The plugin cannot be loaded or opened; a certification that runs always yields a report.
pub fn certify_plugin(
    path: &Path,
    config: &Value,
    profile: Profile,
    on_check: &mut dyn FnMut(&CheckRecord),
) -> anyhow::Result<Report> {
    let plugin = loader::load(path)?;
    certify_loaded(&plugin, config, profile, on_check)
}

/// Certifies an already loaded plugin (the host loads each file once).
///
/// # Errors
///
/// The plugin could not be opened with `config`.
pub fn certify_loaded(
    plugin: &Plugin,
    config: &Value,
    profile: Profile,
    on_check: &mut dyn FnMut(&CheckRecord),
) -> anyhow::Result<Report> {
    let log_lines = Arc::new(Mutex::new(Vec::new()));
    let opened =
        open_guarded(plugin, config, capturing_host(&log_lines), CERTIFICATION_CALL_TIMEOUT)?;
    let secrets = resolve_secrets(config);
    let canary = format!("kyro-canary-{}", std::process::id());
    let canary_config = canary_config(config, &canary);
    let open_canary = |config: &Value| -> kyro_connector_sdk::Result<Box<dyn Connector>> {
        let connector = plugin
            .open(&ConnectorConfig::from_json(config.to_string()), capturing_host(&log_lines))?;
        let guarded = GuardedConnector::new(
            "canary",
            Arc::new(connector),
            GuardConfig { call_timeout: CERTIFICATION_CALL_TIMEOUT, workers: 1 },
        )?;
        Ok(Box::new(guarded))
    };
    let canary_open = canary_config.as_ref().map(|config| move || open_canary(config));
    let foreign = Arc::clone(&opened.foreign);
    let raw_call = move |payload: &[u8]| foreign.call_raw(payload);
    let subject = Subject {
        connector: opened.guarded.as_ref(),
        raw_call: &raw_call,
        plugin: plugin_identity(plugin),
        secrets,
        canary: canary_open.as_ref().map(|open| CanaryProbe {
            canaries: vec![canary.clone()],
            open: open as &dyn Fn() -> _,
        }),
        log_lines: &log_lines,
    };
    Ok(kyro_certification::certify(&subject, profile, on_check))
}
