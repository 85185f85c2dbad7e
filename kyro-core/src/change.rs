//! Changes and the scopes they touch: change-event targets, change types, and the canonical
//! scope keys the freshness ledger and the reuse cache agree on.

use serde::{Deserialize, Serialize};

use crate::error::ValidationResult;
use crate::limits::{MAX_ID_BYTES, MAX_SCOPE_FIELD_BYTES};
use crate::scope::validate_identifier;

/// What a change event or invalidation is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeTarget {
    /// One document; the event's scope names its tenant and namespace.
    Document {
        /// The document id.
        doc_id: String,
    },
    /// A whole namespace (of the event's tenant, when it names one).
    Namespace {
        /// The namespace.
        namespace: String,
    },
    /// Everything served by one connector (store id).
    Connector {
        /// The store id.
        connector_id: String,
    },
    /// A snapshot bundle.
    Bundle {
        /// The bundle id.
        bundle_id: String,
    },
    /// An access or ranking policy.
    Policy {
        /// The policy key.
        policy_key: String,
    },
    /// A whole tenant.
    Tenant {
        /// The tenant.
        tenant_id: String,
    },
    /// Everything.
    All,
}

/// The scope fields a change event may carry alongside its target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeScope {
    /// The tenant the change belongs to.
    pub tenant_id: Option<String>,
    /// The namespace the change belongs to.
    pub namespace: Option<String>,
    /// The connector the change belongs to.
    pub connector_id: Option<String>,
}

impl ChangeScope {
    /// Checks every present field against the identifier rules.
    ///
    /// # Errors
    ///
    /// A field breaks the identifier rules.
    pub fn validate(&self) -> ValidationResult<()> {
        for (field, value) in [
            ("scope.tenant_id", &self.tenant_id),
            ("scope.namespace", &self.namespace),
            ("scope.connector_id", &self.connector_id),
        ] {
            if let Some(value) = value {
                validate_identifier(field, value, MAX_SCOPE_FIELD_BYTES)?;
            }
        }
        Ok(())
    }
}

impl ChangeTarget {
    /// Checks the target's identifier against the contract's rules.
    ///
    /// # Errors
    ///
    /// The identifier is empty, too long, padded or holds control characters.
    pub fn validate(&self) -> ValidationResult<()> {
        match self {
            Self::Document { doc_id } => validate_identifier("target.doc_id", doc_id, MAX_ID_BYTES),
            Self::Namespace { namespace } => {
                validate_identifier("target.namespace", namespace, MAX_SCOPE_FIELD_BYTES)
            }
            Self::Connector { connector_id } => {
                validate_identifier("target.connector_id", connector_id, MAX_SCOPE_FIELD_BYTES)
            }
            Self::Bundle { bundle_id } => {
                validate_identifier("target.bundle_id", bundle_id, MAX_SCOPE_FIELD_BYTES)
            }
            Self::Policy { policy_key } => {
                validate_identifier("target.policy_key", policy_key, MAX_SCOPE_FIELD_BYTES)
            }
            Self::Tenant { tenant_id } => {
                validate_identifier("target.tenant_id", tenant_id, MAX_SCOPE_FIELD_BYTES)
            }
            Self::All => Ok(()),
        }
    }

    /// The canonical ledger key of the scope this target touches, given the event's scope.
    ///
    /// A document target whose scope does not name both its tenant and namespace (an
    /// invalidation request has no namespace field) cannot say which document changed, so it
    /// touches the tenant it names, or everything: conservative, never stale.
    pub fn scope_key(&self, scope: &ChangeScope) -> ScopeKey {
        match self {
            Self::Document { doc_id } => match (&scope.tenant_id, &scope.namespace) {
                (Some(tenant_id), Some(namespace)) => {
                    ScopeKey::document(tenant_id, namespace, doc_id)
                }
                (Some(tenant_id), None) => ScopeKey::tenant(tenant_id),
                (None, _) => ScopeKey::all(),
            },
            Self::Namespace { namespace } => match &scope.tenant_id {
                Some(tenant_id) => ScopeKey::namespace(tenant_id, namespace),
                None => ScopeKey::namespace_in_every_tenant(namespace),
            },
            Self::Connector { connector_id } => ScopeKey::connector(connector_id),
            Self::Bundle { bundle_id } => ScopeKey(format!("bundle:{bundle_id}")),
            Self::Policy { policy_key } => ScopeKey(format!("policy:{policy_key}")),
            Self::Tenant { tenant_id } => ScopeKey::tenant(tenant_id),
            Self::All => ScopeKey::all(),
        }
    }

    /// Every ledger key a change to this target advances. Policy and bundle changes have no
    /// mapping to the requests they affect, so they also advance their tenant (or everything,
    /// when the event names no tenant): conservative, never stale.
    pub fn touched_keys(&self, scope: &ChangeScope) -> Vec<ScopeKey> {
        self.touched_keys_for(scope, ChangeType::ContentUpdated)
    }

    /// [`ChangeTarget::touched_keys`] for a change of this kind. A document change after
    /// which the document may enter results it was not in ([`ChangeType::may_reorder_results`])
    /// also advances its namespace: any cached answer there may now miss it. Deleting or
    /// withdrawing a document advances only the document, whose facts prune it wherever it
    /// is served.
    pub fn touched_keys_for(&self, scope: &ChangeScope, kind: ChangeType) -> Vec<ScopeKey> {
        let mut keys = vec![self.scope_key(scope)];
        match self {
            Self::Policy { .. } | Self::Bundle { .. } => {
                keys.push(scope.tenant_id.as_deref().map_or_else(ScopeKey::all, ScopeKey::tenant));
            }
            Self::Document { .. } if kind.may_reorder_results() => {
                if let (Some(tenant_id), Some(namespace)) = (&scope.tenant_id, &scope.namespace) {
                    keys.push(ScopeKey::namespace(tenant_id, namespace));
                }
            }
            _ => {}
        }
        keys
    }

    /// The contract's name for the target type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Document { .. } => "document",
            Self::Namespace { .. } => "namespace",
            Self::Connector { .. } => "connector",
            Self::Bundle { .. } => "bundle",
            Self::Policy { .. } => "policy",
            Self::Tenant { .. } => "tenant",
            Self::All => "all",
        }
    }
}

/// What kind of change happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    /// Content changed.
    ContentUpdated,
    /// Metadata changed.
    MetadataUpdated,
    /// Removed.
    Deleted,
    /// Added.
    Created,
    /// Withdrawn from serving.
    Unpublished,
    /// Who may see it changed.
    AccessPolicyUpdated,
    /// A new bundle was published.
    BundlePublished,
    /// The namespace was rebuilt.
    NamespaceRebuilt,
    /// The connector resynchronized.
    ConnectorResynced,
}

impl ChangeType {
    /// Every change type with its contract name.
    pub const NAMES: [(Self, &'static str); 9] = [
        (Self::ContentUpdated, "content_updated"),
        (Self::MetadataUpdated, "metadata_updated"),
        (Self::Deleted, "deleted"),
        (Self::Created, "created"),
        (Self::Unpublished, "unpublished"),
        (Self::AccessPolicyUpdated, "access_policy_updated"),
        (Self::BundlePublished, "bundle_published"),
        (Self::NamespaceRebuilt, "namespace_rebuilt"),
        (Self::ConnectorResynced, "connector_resynced"),
    ];

    /// The contract's snake_case name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("content_updated", |(_, name)| name)
    }

    /// Whether the document no longer exists for readers after this change.
    pub fn is_tombstone(self) -> bool {
        matches!(self, Self::Deleted | Self::Unpublished)
    }

    /// Whether a document may rank differently after this change, or match filters it did not:
    /// created, or its text, embedding or metadata changed. Then any result of its namespace
    /// may be stale, not only those that held it. Removing a document (a tombstone) leaves the
    /// results that did not hold it as they were.
    pub fn may_reorder_results(self) -> bool {
        !self.is_tombstone()
    }
}

/// A canonical ledger key: `all`, `tenant:<t>`, `namespace:<t>/<ns>`, `document:<t>/<ns>/<id>`,
/// `connector:<id>`, `bundle:<id>`, `policy:<key>`. Identifiers cannot hold control characters,
/// and `/` inside them cannot make two different scopes collide because the prefix fixes the
/// number of parts and the document id is last.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScopeKey(pub String);

impl ScopeKey {
    /// Everything.
    pub fn all() -> Self {
        Self("all".to_owned())
    }

    /// A tenant.
    pub fn tenant(tenant_id: &str) -> Self {
        Self(format!("tenant:{tenant_id}"))
    }

    /// A namespace of a tenant.
    pub fn namespace(tenant_id: &str, namespace: &str) -> Self {
        Self(format!("namespace:{}:{tenant_id}/{namespace}", tenant_id.len()))
    }

    /// A namespace name in every tenant (a namespace event that names no tenant).
    pub fn namespace_in_every_tenant(namespace: &str) -> Self {
        Self(format!("namespace:*/{namespace}"))
    }

    /// Every key whose change makes a retrieve in `tenant_id`/`namespace` from `store_id` stale.
    pub fn read_keys(tenant_id: &str, namespace: &str, store_id: &str) -> Vec<Self> {
        vec![
            Self::all(),
            Self::tenant(tenant_id),
            Self::namespace(tenant_id, namespace),
            Self::namespace_in_every_tenant(namespace),
            Self::connector(store_id),
        ]
    }

    /// A document.
    pub fn document(tenant_id: &str, namespace: &str, doc_id: &str) -> Self {
        Self(format!(
            "document:{}:{}:{tenant_id}/{namespace}/{doc_id}",
            tenant_id.len(),
            namespace.len()
        ))
    }

    /// A connector (store).
    pub fn connector(connector_id: &str) -> Self {
        Self(format!("connector:{connector_id}"))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
