//! Freshness modes, ownership modes and the store-side evidence for them (watermarks, snapshot
//! versions). The planner that decides with them arrives with the serving path.

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, ValidationResult};
use crate::limits::MAX_SCOPE_FIELD_BYTES;
use crate::scope::validate_identifier;

/// How strongly a retrieve must prove its context fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreshnessMode {
    /// Serve only with proof; otherwise `stale_blocked`.
    Strict,
    /// Skip stale reuse; fall back to stale context, flagged, when the backend fails.
    Balanced,
    /// Stale reuse may be served, flagged.
    Eventual,
}

impl FreshnessMode {
    /// The contract's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Balanced => "balanced",
            Self::Eventual => "eventual",
        }
    }
}

impl std::str::FromStr for FreshnessMode {
    type Err = ValidationError;

    fn from_str(text: &str) -> ValidationResult<Self> {
        match text {
            "strict" => Ok(Self::Strict),
            "balanced" => Ok(Self::Balanced),
            "eventual" => Ok(Self::Eventual),
            _ => Err(ValidationError::Rule {
                field: "freshness_mode",
                rule: "must be strict, balanced or eventual",
            }),
        }
    }
}

/// Who owns the changes to a store's data, and so what evidence of freshness exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnershipMode {
    /// Writes go through KyroDB; the connector's mutation ACK is the evidence.
    WriteThrough,
    /// The source system reports changes as events; the event ACK is the evidence.
    EventFeed,
    /// The store serves immutable, versioned bundles; the pinned version is the evidence.
    SnapshotBundle,
    /// No evidence: only a trace.
    BestEffort,
}

impl OwnershipMode {
    /// Every mode, in declaration order.
    pub const ALL: [Self; 4] =
        [Self::WriteThrough, Self::EventFeed, Self::SnapshotBundle, Self::BestEffort];

    /// The contract's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WriteThrough => "write_through",
            Self::EventFeed => "event_feed",
            Self::SnapshotBundle => "snapshot_bundle",
            Self::BestEffort => "best_effort",
        }
    }

    /// Whether strict freshness may be served on this mode.
    pub fn is_strict_eligible(self) -> bool {
        !matches!(self, Self::BestEffort)
    }
}

impl std::str::FromStr for OwnershipMode {
    type Err = ValidationError;

    fn from_str(text: &str) -> ValidationResult<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text).ok_or(ValidationError::Rule {
            field: "ownership_mode",
            rule: "must be write_through, event_feed, snapshot_bundle or best_effort",
        })
    }
}

impl std::fmt::Display for OwnershipMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store's own change marker for one scope: larger means later.
///
/// Connectors map their native marker onto a `u64` that only grows within a scope (for example
/// microseconds of a `timestamptz`, or a version column). Zero means the scope holds nothing yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Watermark(pub u64);

impl Watermark {
    /// The marker as a number.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// An immutable bundle or snapshot version: content under one version never changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotVersion(String);

impl SnapshotVersion {
    /// Checks and wraps a version.
    ///
    /// # Errors
    ///
    /// The version breaks the identifier rules or is longer than 256 bytes.
    pub fn new(version: impl Into<String>) -> ValidationResult<Self> {
        let version = version.into();
        validate_identifier("snapshot version", &version, MAX_SCOPE_FIELD_BYTES)?;
        Ok(Self(version))
    }

    /// The version text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SnapshotVersion {
    type Error = ValidationError;

    fn try_from(version: String) -> ValidationResult<Self> {
        Self::new(version)
    }
}

impl From<SnapshotVersion> for String {
    fn from(version: SnapshotVersion) -> Self {
        version.0
    }
}
