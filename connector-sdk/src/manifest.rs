//! The capability manifest: what a connector declares it can back honestly.
//!
//! Closed by default: [`CapabilityManifest::closed`] declares nothing, and each capability is
//! added explicitly. The host and the certification harness treat anything undeclared as
//! unsupported.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{FilterKey, OwnershipMode};

/// An operation beyond `describe` and `health`, which every connector has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    /// Scoped nearest-neighbour search.
    Search,
    /// Scoped fetch by ids.
    Fetch,
    /// Scoped write-through upsert with a mutation ACK.
    Upsert,
    /// Scoped write-through delete with a mutation ACK.
    Delete,
    /// Per-scope native watermark.
    Watermark,
    /// Immutable snapshot or bundle version.
    SnapshotVersion,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::Search,
        Self::Fetch,
        Self::Upsert,
        Self::Delete,
        Self::Watermark,
        Self::SnapshotVersion,
    ];

    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Search => "search",
            Self::Fetch => "fetch",
            Self::Upsert => "upsert",
            Self::Delete => "delete",
            Self::Watermark => "watermark",
            Self::SnapshotVersion => "snapshot_version",
        }
    }
}

/// What kind of store-side change marker the connector offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatermarkKind {
    /// None: freshness comes from KyroDB's own generation only.
    None,
    /// A marker computed within one tenant and namespace.
    PerScopeNative,
    /// An immutable bundle version.
    BundleVersion,
}

impl WatermarkKind {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::PerScopeNative => "per_scope_native",
            Self::BundleVersion => "bundle_version",
        }
    }
}

/// Which metadata keys may appear in a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterableKeys {
    /// Exactly these keys.
    Listed(BTreeSet<FilterKey>),
    /// Any key that satisfies the contract's key syntax; values are still bound as parameters.
    AnyValidKey,
}

impl FilterableKeys {
    /// Whether `key` may be filtered on.
    pub fn allows(&self, key: &FilterKey) -> bool {
        match self {
            Self::Listed(keys) => keys.contains(key),
            Self::AnyValidKey => true,
        }
    }
}

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distance {
    /// Cosine distance; score is cosine similarity.
    Cosine,
    /// Euclidean distance; score is the negated distance.
    L2,
    /// Inner product; score is the inner product.
    InnerProduct,
}

impl Distance {
    /// The snake_case name used in configs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cosine => "cosine",
            Self::L2 => "l2",
            Self::InnerProduct => "inner_product",
        }
    }
}

/// The vectors a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorSpec {
    /// Number of dimensions every vector has.
    pub dimension: u32,
    /// How vectors are compared.
    pub distance: Distance,
}

/// Hard caps the connector enforces with `LimitExceeded`, never by silently truncating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Largest `top_k` a search may ask for.
    pub max_top_k: u32,
    /// Most ids in one fetch.
    pub max_fetch_ids: u32,
    /// Largest encoded request, in bytes.
    pub max_request_bytes: u64,
    /// Largest encoded response, in bytes.
    pub max_response_bytes: u64,
    /// Most nodes in one filter.
    pub max_filter_nodes: u32,
}

impl Caps {
    /// The runtime contract's own limits: a connector declares these or tighter.
    pub const CONTRACT: Self = Self {
        max_top_k: 1000,
        max_fetch_ids: 1000,
        max_request_bytes: 4 * 1024 * 1024,
        max_response_bytes: 16 * 1024 * 1024,
        max_filter_nodes: 256,
    };
}

/// Everything a connector declares. Anything not declared is unsupported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityManifest {
    /// Operations beyond `describe` and `health`.
    pub operations: BTreeSet<Operation>,
    /// Ownership modes the connector can back with testable evidence.
    pub ownership_modes: BTreeSet<OwnershipMode>,
    /// The store-side change marker it offers.
    pub watermark_kind: WatermarkKind,
    /// Keys that may appear in filters.
    pub filterable_keys: FilterableKeys,
    /// Dimension and distance, once a store is opened; `None` in a plugin's static description
    /// when they come from configuration.
    pub vector: Option<VectorSpec>,
    /// Hard caps.
    pub caps: Caps,
}

impl CapabilityManifest {
    /// A manifest that declares nothing: no operations, no ownership mode, no watermark, no
    /// filterable keys, the contract's caps.
    pub fn closed() -> Self {
        Self {
            operations: BTreeSet::new(),
            ownership_modes: BTreeSet::new(),
            watermark_kind: WatermarkKind::None,
            filterable_keys: FilterableKeys::Listed(BTreeSet::new()),
            vector: None,
            caps: Caps::CONTRACT,
        }
    }

    /// Declares an operation.
    #[must_use]
    pub fn with_operation(mut self, operation: Operation) -> Self {
        self.operations.insert(operation);
        self
    }

    /// Declares an ownership mode.
    #[must_use]
    pub fn with_ownership_mode(mut self, mode: OwnershipMode) -> Self {
        self.ownership_modes.insert(mode);
        self
    }

    /// Declares the watermark kind.
    #[must_use]
    pub fn with_watermark_kind(mut self, kind: WatermarkKind) -> Self {
        self.watermark_kind = kind;
        self
    }

    /// Declares the filterable keys.
    #[must_use]
    pub fn with_filterable_keys(mut self, keys: FilterableKeys) -> Self {
        self.filterable_keys = keys;
        self
    }

    /// Declares dimension and distance.
    #[must_use]
    pub fn with_vector(mut self, vector: VectorSpec) -> Self {
        self.vector = Some(vector);
        self
    }

    /// Declares caps.
    #[must_use]
    pub fn with_caps(mut self, caps: Caps) -> Self {
        self.caps = caps;
        self
    }

    /// Whether `operation` is declared.
    pub fn supports(&self, operation: Operation) -> bool {
        self.operations.contains(&operation)
    }

    /// Whether `mode` is declared.
    pub fn backs(&self, mode: OwnershipMode) -> bool {
        self.ownership_modes.contains(&mode)
    }
}
