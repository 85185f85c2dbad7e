//! Who is calling, as far as the runtime cares: the tenants the caller may act for. The HTTP
//! layer authenticates and hands in a [`Principal`]; every runtime operation confines what it
//! touches to the principal's tenants, so the rule is written once, here.

use std::collections::BTreeSet;

use super::error::{RuntimeError, RuntimeResult};

/// The tenants a caller may act for; `None` for every tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    tenants: Option<BTreeSet<String>>,
}

impl Principal {
    /// A caller restricted to `tenants`, or unrestricted with `None`.
    pub(crate) fn new(tenants: Option<BTreeSet<String>>) -> Self {
        Self { tenants }
    }

    /// A caller that may act for every tenant: the runtime's own tools (`kyro replay`, the
    /// quickstart tour).
    pub(crate) fn unrestricted() -> Self {
        Self { tenants: None }
    }

    /// Whether the caller may act for `tenant_id`.
    pub(crate) fn may_act_for(&self, tenant_id: &str) -> bool {
        self.tenants.as_ref().is_none_or(|tenants| tenants.contains(tenant_id))
    }

    /// Whether the caller may act for every tenant.
    pub(crate) fn is_unrestricted(&self) -> bool {
        self.tenants.is_none()
    }

    /// Refuses a tenant the caller may not act for.
    ///
    /// # Errors
    ///
    /// `Forbidden`.
    pub(crate) fn confine(&self, tenant_id: &str) -> RuntimeResult<()> {
        if self.may_act_for(tenant_id) {
            Ok(())
        } else {
            Err(RuntimeError::forbidden("this token may not act for that tenant"))
        }
    }

    /// Refuses, for a restricted caller, an operation that reaches across tenants.
    ///
    /// # Errors
    ///
    /// `Forbidden` naming what the caller tried.
    pub(crate) fn require_unrestricted(&self, what: &str) -> RuntimeResult<()> {
        if self.is_unrestricted() {
            Ok(())
        } else {
            Err(RuntimeError::forbidden(format!("a tenant-restricted token may not {what}")))
        }
    }
}
