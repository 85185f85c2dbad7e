//! Certifying a connector plugin from its file and configuration: what `kyro certify` and host
//! startup share.
//!
//! This module does the IO the harness deliberately does not: it reads the store configuration
//! file and loads the plugin; `kyro_certification::certify_with` opens it, guards it, captures
//! its log lines and opens canary copies, exactly as for a connector certified in-process.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use kyro_certification::{CheckRecord, Opened, Options, PluginIdentity, Report};
use kyro_connector_sdk::loader::{self, Plugin};
use kyro_connector_sdk::{ConnectorConfig, HostContext};
use serde_json::Value;

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

/// Loads, opens and certifies the plugin at `path` with the connector configuration `config`.
///
/// # Errors
///
/// The plugin cannot be loaded or opened; a certification that runs always yields a report.
pub fn certify_plugin(
    path: &Path,
    config: &Value,
    options: Options,
    on_check: &mut dyn FnMut(&CheckRecord),
) -> anyhow::Result<Report> {
    let plugin = loader::load(path)?;
    certify_loaded(&plugin, config, options, on_check)
}

/// Certifies an already loaded plugin (the host loads each file once), through the same path as
/// `kyro_certification::certify_connector`.
///
/// # Errors
///
/// The plugin could not be opened with `config`; the message is scrubbed of its secrets.
pub fn certify_loaded(
    plugin: &Plugin,
    config: &Value,
    options: Options,
    on_check: &mut dyn FnMut(&CheckRecord),
) -> anyhow::Result<Report> {
    let open =
        |config: &ConnectorConfig, host: HostContext| -> kyro_connector_sdk::Result<Opened> {
            let foreign = Arc::new(plugin.open(config, host)?);
            let raw = Arc::clone(&foreign);
            Ok(Opened {
                connector: foreign,
                raw_call: Arc::new(move |payload: &[u8]| raw.call_raw(payload)),
            })
        };
    kyro_certification::certify_with(plugin_identity(plugin), config, &open, options, on_check)
        .with_context(|| format!("plugin {} could not be certified", plugin.info().name))
}
