//! Feedback on a trace, and the trace's diagnosis.

use kyro_core::diagnosis::{DiagnosisKind, FeedbackSignal};
use serde::{Deserialize, Serialize};

use super::strict::present;

/// `POST /v1/context/feedback`. Unknown fields are accepted (the contract allows it here).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ContextFeedback {
    pub(crate) trace_id: String,
    pub(crate) signal: FeedbackSignal,
    #[serde(default, deserialize_with = "present")]
    pub(crate) item_ids: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) comment: Option<String>,
}

/// Feedback as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredContextFeedback {
    pub(crate) trace_id: String,
    pub(crate) signal: FeedbackSignal,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) item_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) comment: Option<String>,
    pub(crate) received_at: String,
    pub(crate) trace_known: bool,
}

/// The contract's `TraceDiagnosis`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceDiagnosis {
    pub(crate) trace_id: String,
    pub(crate) kind: DiagnosisKind,
    pub(crate) summary: String,
    pub(crate) recommended_actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) evidence: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) feedback_signals: Vec<FeedbackSignal>,
}
