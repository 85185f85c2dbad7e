//! The contract's routes, named once: the router mounts them, the capture records them, and
//! replay dispatches on them.

pub(crate) const RETRIEVE: &str = "/v1/context/retrieve";
pub(crate) const INVALIDATE: &str = "/v1/context/invalidate";
pub(crate) const CHANGE_EVENT: &str = "/v1/events/change";
pub(crate) const UPSERT: &str = "/v1/documents/upsert";
pub(crate) const DELETE: &str = "/v1/documents/delete";
pub(crate) const FEEDBACK: &str = "/v1/context/feedback";
pub(crate) const FEEDBACK_OF_TRACE: &str = "/v1/context/feedback/{trace_id}";
pub(crate) const TRACE: &str = "/v1/traces/{trace_id}";
pub(crate) const TRACE_DIAGNOSIS: &str = "/v1/traces/{trace_id}/diagnosis";
pub(crate) const HEALTH: &str = "/v1/health/context";
pub(crate) const PROOF_REPORT: &str = "/v1/proofs/context";
pub(crate) const PROOF_BUNDLE: &str = "/v1/proofs/bundle";
pub(crate) const ROOT_CAUSE: &str = "/v1/root-cause/report";
pub(crate) const REPLAY_DIFF: &str = "/v1/replay/diff";
pub(crate) const REPLAY_COUNTERFACTUAL: &str = "/v1/replay/counterfactual";
pub(crate) const SHADOW_SESSIONS: &str = "/v1/replay/shadow-sessions";
pub(crate) const CAPTURE: &str = "/v1/replay/capture";
pub(crate) const HEALTHZ: &str = "/healthz";
pub(crate) const READYZ: &str = "/readyz";
pub(crate) const RUNTIME_HEALTH: &str = "/v1/runtime/health";
pub(crate) const RUNTIME_EVIDENCE: &str = "/v1/runtime/evidence";
