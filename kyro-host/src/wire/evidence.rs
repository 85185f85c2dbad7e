//! The evidence reports' request bodies and query parameters.

use serde::Deserialize;

use super::request::present;

/// The `?recent=N` query.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecentQuery {
    pub(crate) recent: Option<usize>,
}

/// `POST /v1/proofs/bundle`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BundleRequest {
    #[serde(default, deserialize_with = "present")]
    pub(crate) recent: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) tenant_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) include_capture: Option<bool>,
}

/// `POST /v1/root-cause/report`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RootCauseRequest {
    #[serde(default, deserialize_with = "present")]
    pub(crate) recent: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) max_incidents: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) trace_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) tenant_id: Option<String>,
}
