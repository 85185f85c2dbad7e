//! The values the state store takes and returns: changes and their outcomes, what a strict
//! retrieve reads, primers, traces, feedback and capture steps.
//!
//! These are the store's public vocabulary and carry no behaviour beyond conversions; what a
//! change means (which scopes it touches, whether a reuse entry is stale) is decided by the
//! caller and by `kyro-core`.

use std::fmt;
use std::str::FromStr;

use kyro_core::ledger::EventOrder;
use kyro_core::planner::PacketStatus;

use crate::StateError;

/// One accepted change: a change event, an invalidation, or a verified mutation ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInput {
    /// The change's idempotency key (a change event's `source_event_id`, an invalidation's
    /// `Idempotency-Key`) and whose keys it is unique among; `None` for changes that are never
    /// deduplicated.
    pub source_event: Option<SourceEvent>,
    /// A hash of the event body: the same id with a different fingerprint is a conflict.
    pub fingerprint: String,
    /// Every scope the change touches. Duplicate keys are recorded once (the last trigger wins).
    pub scope_keys: Vec<ScopeChange>,
    /// Per-document facts. Duplicate documents are recorded once (the last entry wins).
    pub documents: Vec<DocumentChange>,
    /// The host's clock when the change was accepted, in Unix milliseconds.
    pub now_ms: i64,
    /// The replay capture step to record with the change. Its generations and status are
    /// decided by the ledger from the change's outcome; whatever the caller put there is
    /// replaced.
    pub capture: Option<CaptureRow>,
}

/// A change's idempotency key. Keys are unique per tenant: the same id sent by two tenants
/// names two events, so no tenant can make another's events look like replays.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceEvent {
    /// Whose ids it is unique among.
    pub tenant: EventTenant,
    /// The id.
    pub id: String,
}

impl SourceEvent {
    /// The key `id` of `tenant`.
    pub fn new(tenant: EventTenant, id: impl Into<String>) -> Self {
        Self { tenant, id: id.into() }
    }
}

/// Whose idempotency keys an event's key is unique among.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventTenant {
    /// The tenant the event's scope names.
    Tenant(String),
    /// Events whose scope names no tenant, which only unrestricted tokens can send. No tenant
    /// name shares their keys.
    Global,
}

impl EventTenant {
    /// The dedupe ledger's column value: `tenant:<id>` for a tenant, `global` for none. Every
    /// tenant's value starts with `tenant:`, so none can equal the global one.
    pub(crate) fn to_key(&self) -> String {
        match self {
            Self::Tenant(tenant_id) => format!("tenant:{tenant_id}"),
            Self::Global => "global".to_owned(),
        }
    }

    /// The tenant a stored key names.
    pub(crate) fn from_key(key: &str) -> Result<Self, StateError> {
        match (key, key.strip_prefix("tenant:")) {
            (_, Some(tenant_id)) => Ok(Self::Tenant(tenant_id.to_owned())),
            ("global", None) => Ok(Self::Global),
            _ => Err(StateError::Corrupt { field: "event tenant", value: format!("{key:?}") }),
        }
    }
}

impl From<Option<&str>> for EventTenant {
    /// The tenant a scope names, or [`EventTenant::Global`] when it names none.
    fn from(tenant_id: Option<&str>) -> Self {
        tenant_id.map_or(Self::Global, |tenant_id| Self::Tenant(tenant_id.to_owned()))
    }
}

/// A scope a change touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeChange {
    /// The scope key: `all`, `tenant:acme`, `namespace:acme/support`,
    /// `document:acme/support/doc-1`, `connector:pg`, `bundle:b1`, `policy:p`.
    pub key: String,
    /// What produced the change: `change_event`, `write_through`, `manual_invalidation`.
    pub trigger: String,
}

/// Identifies one document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentKey {
    /// The tenant.
    pub tenant_id: String,
    /// The namespace within the tenant.
    pub namespace: String,
    /// The document id within the namespace.
    pub doc_id: String,
}

/// What a change says about one document. The stored facts only move forward: they are merged
/// with these by `kyro_core::ledger::merge`, so a late event never rolls them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChange {
    /// The document.
    pub key: DocumentKey,
    /// The source revision, when the change carries one.
    pub revision: Option<String>,
    /// The backend's native watermark, when the change carries one. At most `i64::MAX`.
    pub watermark: Option<u64>,
    /// Whether the document was deleted.
    pub tombstone: bool,
    /// The source's event time in Unix milliseconds, when known.
    pub event_timestamp_ms: Option<i64>,
}

/// What applying a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The change was committed at this new generation.
    Applied {
        /// The generation allocated to the change.
        generation: u64,
    },
    /// The event id was already processed with the same fingerprint; nothing changed.
    Replayed {
        /// The generation the original event was applied at.
        generation: u64,
    },
    /// The event id was already processed with a different fingerprint; nothing changed.
    Conflict {
        /// The generation the original event was applied at.
        generation: u64,
    },
}

impl ApplyOutcome {
    /// The generation the outcome refers to: new for `Applied`, original otherwise.
    pub fn generation(self) -> u64 {
        match self {
            Self::Applied { generation }
            | Self::Replayed { generation }
            | Self::Conflict { generation } => generation,
        }
    }
}

/// What a captured step answered: a packet status for a retrieve, the ledger's verdict for a
/// change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureStatus {
    /// A retrieve answered with this packet status.
    Packet(PacketStatus),
    /// A change was applied at a new generation.
    Accepted,
    /// A change event's id was already processed with the same body.
    Replayed,
    /// A change event's id was already processed with another body.
    Rejected,
}

impl CaptureStatus {
    /// The stored and exported name: the packet status's, or `accepted`, `replayed`,
    /// `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Packet(status) => status.as_str(),
            Self::Accepted => "accepted",
            Self::Replayed => "replayed",
            Self::Rejected => "rejected",
        }
    }
}

impl From<PacketStatus> for CaptureStatus {
    fn from(status: PacketStatus) -> Self {
        Self::Packet(status)
    }
}

impl From<ApplyOutcome> for CaptureStatus {
    fn from(outcome: ApplyOutcome) -> Self {
        match outcome {
            ApplyOutcome::Applied { .. } => Self::Accepted,
            ApplyOutcome::Replayed { .. } => Self::Replayed,
            ApplyOutcome::Conflict { .. } => Self::Rejected,
        }
    }
}

impl FromStr for CaptureStatus {
    type Err = StateError;

    fn from_str(text: &str) -> Result<Self, StateError> {
        Ok(match text {
            "complete" => Self::Packet(PacketStatus::Complete),
            "partial" => Self::Packet(PacketStatus::Partial),
            "degraded" => Self::Packet(PacketStatus::Degraded),
            "stale_blocked" => Self::Packet(PacketStatus::StaleBlocked),
            "accepted" => Self::Accepted,
            "replayed" => Self::Replayed,
            "rejected" => Self::Rejected,
            other => {
                return Err(StateError::Corrupt {
                    field: "capture status",
                    value: format!("{other:?}"),
                });
            }
        })
    }
}

impl fmt::Display for CaptureStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One captured serving step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRow {
    /// `retrieve`, `change_event`, `invalidate`, `upsert` or `delete`.
    pub step_type: String,
    /// The tenant the step acted for, when it names one.
    pub tenant_id: Option<String>,
    /// When the step was served, in Unix milliseconds.
    pub captured_at_ms: i64,
    /// The runtime generation the step saw before it ran (decided by the ledger for changes).
    pub pre_generation: u64,
    /// The generation it answered with (decided by the ledger for changes).
    pub generation: u64,
    /// What it answered (decided by the ledger for changes).
    pub status: CaptureStatus,
    /// The request body as the client sent it.
    pub request: String,
    /// JSON the host writes and reads back verbatim.
    pub body: String,
}

/// A stored capture step, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedStep {
    /// Its order among captured steps.
    pub sequence: i64,
    /// The step.
    pub row: CaptureRow,
    /// How many of a change's documents arrived out of order (0 for retrieves): their stored
    /// facts were kept ([`StateStore::out_of_order_documents`](crate::StateStore) lists them).
    pub documents_out_of_order: u64,
}

/// A document whose facts a change carried out of order: older than the stored facts, or not
/// provably newer than a stored deletion. The stored facts were kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfOrderDocument {
    /// The generation of the change that carried the late facts.
    pub generation: u64,
    /// The document and the facts the change carried.
    pub change: DocumentChange,
    /// How they compared with the stored facts.
    pub order: EventOrder,
    /// When the change was accepted, in Unix milliseconds.
    pub recorded_at_ms: i64,
}

/// What a strict retrieve checks, read from one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshnessView {
    /// The runtime generation at the snapshot.
    pub current_generation: u64,
    /// The generation of the latest change of each requested scope key, in request order.
    /// Keys that never changed are omitted.
    pub scope_generations: Vec<(String, u64)>,
    /// When each of those scope keys' latest change was acknowledged (Unix milliseconds), in
    /// the same order.
    pub scope_acknowledged_at_ms: Vec<i64>,
    /// The stored facts of each requested document, in request order. Documents no change
    /// mentioned are omitted.
    pub documents: Vec<DocumentState>,
}

/// The latest acknowledged facts about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    /// The document.
    pub key: DocumentKey,
    /// The generation of the latest change that mentioned it.
    pub generation: u64,
    /// The revision that change carried.
    pub revision: Option<String>,
    /// The watermark that change carried.
    pub watermark: Option<u64>,
    /// Whether that change deleted the document.
    pub tombstone: bool,
    /// The source's event time that change carried.
    pub event_timestamp_ms: Option<i64>,
}

/// Everything a replay or shadow session starts from, read from one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primer {
    /// The runtime generation at the snapshot.
    pub current_generation: u64,
    /// Every scope that ever changed, ordered by key.
    pub scope_generations: Vec<ScopeGeneration>,
    /// The most recently processed change events, newest first.
    pub processed_events: Vec<ProcessedEvent>,
}

/// The latest change of one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeGeneration {
    /// The scope key.
    pub key: String,
    /// The generation of its latest change.
    pub generation: u64,
    /// When that change was acknowledged, in Unix milliseconds.
    pub acknowledged_at_ms: i64,
    /// What produced that change.
    pub trigger: String,
}

/// One entry of the change-event dedupe ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedEvent {
    /// Whose idempotency keys it is unique among.
    pub tenant: EventTenant,
    /// The event's idempotency key.
    pub source_event_id: String,
    /// The generation it was applied at.
    pub generation: u64,
    /// The fingerprint of its body.
    pub fingerprint: String,
}

/// One stored request trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRow {
    /// Unique id; storing it twice is an error.
    pub trace_id: String,
    /// The tenant the request belonged to.
    pub tenant_id: String,
    /// When the trace was written, in Unix milliseconds.
    pub created_at_ms: i64,
    /// The trace as JSON, stored and returned verbatim.
    pub body: String,
    /// The replay capture step to record in the same transaction.
    pub capture: Option<CaptureRow>,
}

/// One stored feedback entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRow {
    /// The trace it is about.
    pub trace_id: String,
    /// The trace's tenant, when the trace was known.
    pub tenant_id: Option<String>,
    /// `useful`, `irrelevant`, `stale` or `wrong_scope`.
    pub signal: String,
    /// The items it is about, as a JSON array.
    pub item_ids: String,
    /// Free text.
    pub comment: Option<String>,
    /// When it arrived.
    pub received_at_ms: i64,
    /// Whether the trace existed when it arrived.
    pub trace_known: bool,
}

/// How much evidence is stored, for health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvidenceCounts {
    /// Stored traces.
    pub traces: u64,
    /// Stored feedback entries.
    pub feedback: u64,
    /// Stored capture steps.
    pub capture_steps: u64,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Traces.
    pub traces: u64,
    /// Feedback entries.
    pub feedback: u64,
    /// Capture steps.
    pub capture_steps: u64,
}
