//! The checks behind [`super::HostConfig::validate`]: tokens, stores and the state URL, each
//! error naming its key.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use kyro_core::OwnershipMode;

use super::{ConfigError, StoreConfig, TokenConfig, ValidatedStore, ValidatedToken, invalid};

pub(super) fn validate_tokens(
    plane: &str,
    tokens: &[TokenConfig],
    base: &Path,
) -> Result<Vec<ValidatedToken>, ConfigError> {
    let mut validated = Vec::new();
    for (idx, token) in tokens.iter().enumerate() {
        let key = format!("tokens.{plane}[{idx}]");
        let text = token.token.resolve(&format!("{key}.token"), base)?;
        if text.len() < 16 {
            return Err(invalid(format!("{key}.token"), "must be at least 16 characters"));
        }
        let tenants = match &token.tenants {
            Some(tenants) if tenants.is_empty() => {
                return Err(invalid(
                    format!("{key}.tenants"),
                    "must list at least one tenant, or be left out",
                ));
            }
            Some(tenants) => Some(tenants.iter().cloned().collect()),
            None => None,
        };
        validated.push(ValidatedToken { token: text, tenants });
    }
    Ok(validated)
}

pub(super) fn validate_store(
    idx: usize,
    store: StoreConfig,
    production: bool,
    base: &Path,
    ids: &mut BTreeSet<String>,
) -> Result<ValidatedStore, ConfigError> {
    let key = format!("stores[{idx}]");
    kyro_core::validate_identifier("store id", &store.id, 256)
        .map_err(|err| invalid(format!("{key}.id"), err.to_string()))?;
    if !ids.insert(store.id.clone()) {
        return Err(invalid(format!("{key}.id"), format!("store id {} is used twice", store.id)));
    }
    let ownership = store
        .ownership_mode
        .parse::<OwnershipMode>()
        .map_err(|err| invalid(format!("{key}.ownership_mode"), err.to_string()))?;
    if production && ownership == OwnershipMode::BestEffort {
        return Err(invalid(
            format!("{key}.ownership_mode"),
            "best_effort stores cannot serve in production mode (no freshness evidence)",
        ));
    }
    if store.namespaces.is_empty() {
        return Err(invalid(
            format!("{key}.namespaces"),
            "must list namespaces, or [\"*\"] for all",
        ));
    }
    let namespaces = if store.namespaces.iter().any(|namespace| namespace == "*") {
        None
    } else {
        Some(store.namespaces.iter().cloned().collect())
    };
    let plugin =
        if store.plugin.is_absolute() { store.plugin.clone() } else { base.join(&store.plugin) };
    let connector_config = serde_json::to_value(&store.config)
        .map_err(|err| invalid(format!("{key}.config"), err.to_string()))?;
    Ok(ValidatedStore {
        id: store.id,
        plugin,
        ownership,
        namespaces,
        certification_budget: Duration::from_secs(
            store.certification_budget_secs.unwrap_or(10).max(1),
        ),
        call_timeout: Duration::from_millis(store.call_timeout_ms.unwrap_or(5000).max(1)),
        connector_config,
        attestation_statement: store
            .attestation
            .map(|path| if path.is_absolute() { path } else { base.join(path) }),
        attestation: None,
    })
}

/// Makes a relative `sqlite://` path absolute against the config directory, and checks the scheme.
pub(super) fn resolve_state_url(url: &str, base: &Path) -> Result<String, ConfigError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let (path, query) =
            path.split_once('?').map_or((path, None), |(path, query)| (path, Some(query)));
        let path = Path::new(path);
        let path = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
        let query = query.map_or_else(String::new, |query| format!("?{query}"));
        return Ok(format!("sqlite://{}{query}", path.display()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_owned());
    }
    Err(invalid("state", "must be a sqlite:// or postgres:// URL"))
}
