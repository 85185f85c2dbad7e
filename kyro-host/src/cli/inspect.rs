//! `kyro plugin inspect`: what a plugin file says about itself, without opening a store.

use std::path::Path;

use kyro_connector_sdk::loader::{self, LoadError, Plugin};
use kyro_connector_sdk::{CapabilityManifest, FilterableKeys};
use serde::Serialize;

/// The inspection of one plugin file, as printed by `kyro plugin inspect --json`.
#[derive(Debug, Serialize)]
pub(crate) struct PluginInspection {
    /// The file.
    pub(crate) path: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The plugin's name.
    pub(crate) name: String,
    /// The plugin's version.
    pub(crate) version: String,
    /// What it connects to.
    pub(crate) description: String,
    /// The SDK version it was built with.
    pub(crate) sdk_version: String,
    /// The connector ABI version it was built for.
    pub(crate) abi_version: String,
    /// The most it can declare.
    pub(crate) capabilities: CapabilitiesView,
}

/// A capability manifest in report form.
#[derive(Debug, Serialize)]
pub(crate) struct CapabilitiesView {
    /// Declared operations beyond describe and health.
    pub(crate) operations: Vec<&'static str>,
    /// Ownership modes it can back.
    pub(crate) ownership_modes: Vec<&'static str>,
    /// Its watermark kind.
    pub(crate) watermark_kind: &'static str,
    /// Filterable keys, or `["*"]` for any valid key.
    pub(crate) filterable_keys: Vec<String>,
    /// Dimension, when fixed by the plugin.
    pub(crate) dimension: Option<u32>,
    /// Distance, when fixed by the plugin.
    pub(crate) distance: Option<&'static str>,
    /// Hard caps.
    pub(crate) max_top_k: u32,
    /// Most ids in one fetch.
    pub(crate) max_fetch_ids: u32,
    /// Largest request, in bytes.
    pub(crate) max_request_bytes: u64,
    /// Largest response, in bytes.
    pub(crate) max_response_bytes: u64,
    /// Most filter nodes.
    pub(crate) max_filter_nodes: u32,
}

impl From<&CapabilityManifest> for CapabilitiesView {
    fn from(manifest: &CapabilityManifest) -> Self {
        Self {
            operations: manifest.operations.iter().map(|operation| operation.as_str()).collect(),
            ownership_modes: manifest.ownership_modes.iter().map(|mode| mode.as_str()).collect(),
            watermark_kind: manifest.watermark_kind.as_str(),
            filterable_keys: match &manifest.filterable_keys {
                FilterableKeys::Listed(keys) => {
                    keys.iter().map(|key| key.as_str().to_owned()).collect()
                }
                FilterableKeys::AnyValidKey => vec!["*".to_owned()],
            },
            dimension: manifest.vector.map(|vector| vector.dimension),
            distance: manifest.vector.map(|vector| vector.distance.as_str()),
            max_top_k: manifest.caps.max_top_k,
            max_fetch_ids: manifest.caps.max_fetch_ids,
            max_request_bytes: manifest.caps.max_request_bytes,
            max_response_bytes: manifest.caps.max_response_bytes,
            max_filter_nodes: manifest.caps.max_filter_nodes,
        }
    }
}

/// Loads the plugin at `path` and describes it.
///
/// # Errors
///
/// The plugin could not be loaded; the error is one line naming the problem.
pub(crate) fn inspect(path: &Path) -> Result<PluginInspection, LoadError> {
    loader::load(path).map(|plugin| PluginInspection::from(&plugin))
}

impl From<&Plugin> for PluginInspection {
    fn from(plugin: &Plugin) -> Self {
        let info = plugin.info();
        Self {
            path: plugin.path().display().to_string(),
            sha256: plugin.sha256().to_owned(),
            name: info.name.clone(),
            version: info.version.clone(),
            description: info.description.clone(),
            sdk_version: info.sdk_version.clone(),
            abi_version: plugin.abi_version().to_string(),
            capabilities: CapabilitiesView::from(&info.manifest),
        }
    }
}

impl PluginInspection {
    /// The human-readable form.
    pub(crate) fn to_text(&self) -> String {
        let capabilities = &self.capabilities;
        let list =
            |items: &[&str]| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
        let keys: Vec<&str> = capabilities.filterable_keys.iter().map(String::as_str).collect();
        format!(
            "plugin        {} {}\n\
             description   {}\n\
             file          {}\n\
             sha256        {}\n\
             sdk version   {}\n\
             abi version   {}\n\
             operations    {}\n\
             ownership     {}\n\
             watermark     {}\n\
             filter keys   {}\n\
             vector        {}\n\
             caps          top_k<={} fetch_ids<={} request<={}B response<={}B filter_nodes<={}\n",
            self.name,
            self.version,
            self.description,
            self.path,
            self.sha256,
            self.sdk_version,
            self.abi_version,
            list(&capabilities.operations),
            list(&capabilities.ownership_modes),
            capabilities.watermark_kind,
            list(&keys),
            match (capabilities.dimension, capabilities.distance) {
                (Some(dimension), Some(distance)) => format!("{dimension} dimensions, {distance}"),
                _ => "set by configuration".to_owned(),
            },
            capabilities.max_top_k,
            capabilities.max_fetch_ids,
            capabilities.max_request_bytes,
            capabilities.max_response_bytes,
            capabilities.max_filter_nodes,
        )
    }
}
