//! The answer to a retrieve: the `ContextPacket`, its items, omissions, metadata and freshness
//! proof.

use std::collections::BTreeMap;

use kyro_core::planner::{ExecutionPath, ItemSource, OmissionReason, PacketStatus};
use kyro_core::{FreshnessMode, OwnershipMode, Scope};
use serde::{Deserialize, Serialize};

/// A freshness scope in a proof, tagged on `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum FreshnessScopeDto {
    Document {
        doc_id: String,
    },
    Namespace {
        namespace: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant_id: Option<String>,
    },
    Connector {
        connector_id: String,
    },
    Bundle {
        bundle_id: String,
    },
    Policy {
        policy_key: String,
    },
    Tenant {
        tenant_id: String,
    },
}

impl From<&Scope> for FreshnessScopeDto {
    fn from(scope: &Scope) -> Self {
        Self::Namespace {
            namespace: scope.namespace().to_owned(),
            tenant_id: Some(scope.tenant_id().to_owned()),
        }
    }
}

/// Where a watermark's evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WatermarkSource {
    RuntimeGeneration,
    ConnectorNative,
    ConnectorBridged,
}

/// One watermark in a freshness proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WatermarkDto {
    pub(crate) scope: FreshnessScopeDto,
    pub(crate) source: WatermarkSource,
    pub(crate) token: String,
    pub(crate) generation: u64,
    pub(crate) observed_at: String,
}

/// The packet's freshness proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FreshnessProof {
    pub(crate) requested_mode: FreshnessMode,
    pub(crate) served_mode: FreshnessMode,
    pub(crate) ownership: OwnershipMode,
    pub(crate) generation: u64,
    pub(crate) safe_as_of: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) watermarks: Option<Vec<WatermarkDto>>,
}

/// Where an item came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProvenanceDto {
    pub(crate) connector: String,
    pub(crate) namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) doc_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retrieved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<BTreeMap<String, String>>,
}

/// Evidence about an item's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EvidenceDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content_bytes: Option<usize>,
}

/// One item of a packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContextItem {
    pub(crate) id: String,
    pub(crate) score: f32,
    pub(crate) source: ItemSource,
    pub(crate) provenance: ProvenanceDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) evidence: Option<EvidenceDto>,
}

/// An item left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContextOmission {
    pub(crate) id: String,
    pub(crate) reason: OmissionReason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

impl From<&kyro_core::planner::Omission> for ContextOmission {
    fn from(omission: &kyro_core::planner::Omission) -> Self {
        Self { id: omission.id.clone(), reason: omission.reason, detail: omission.detail.clone() }
    }
}

/// The standing of a packet's freshness proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProofStatus {
    SourceBacked,
    RuntimeGeneration,
    Unavailable,
    Invalid,
}

impl ProofStatus {
    /// The contract's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::SourceBacked => "source_backed",
            Self::RuntimeGeneration => "runtime_generation",
            Self::Unavailable => "unavailable",
            Self::Invalid => "invalid",
        }
    }
}

/// The proof summary in packet metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProofDiagnostics {
    pub(crate) proof_status: ProofStatus,
    pub(crate) proof_invalidating_diagnostic_count: usize,
    pub(crate) guard_rejection_count: usize,
    pub(crate) watermark_count: usize,
    pub(crate) source_native_watermark_count: usize,
    pub(crate) source_bridged_watermark_count: usize,
    pub(crate) runtime_generation_watermark_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) diagnostic_codes: Option<Vec<String>>,
}

/// Packet metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PacketMeta {
    pub(crate) latency_ms: f64,
    pub(crate) execution_path: ExecutionPath,
    pub(crate) cache_hit: bool,
    pub(crate) stale_pruned: usize,
    pub(crate) partial: bool,
    pub(crate) scope_fingerprint: String,
    pub(crate) freshness_generation: u64,
    pub(crate) proof_diagnostics: ProofDiagnostics,
}

/// The answer to a retrieve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContextPacket {
    pub(crate) packet_id: String,
    pub(crate) trace_id: String,
    pub(crate) status: PacketStatus,
    pub(crate) freshness: FreshnessProof,
    pub(crate) items: Vec<ContextItem>,
    pub(crate) meta: PacketMeta,
    pub(crate) omissions: Vec<ContextOmission>,
    pub(crate) warnings: Vec<String>,
}
