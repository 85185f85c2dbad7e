//! Redaction for whoever is looking: trace and tenant ids of tenants the caller may not see
//! become keys, and every report lists what it redacted.

use std::collections::BTreeSet;

use kyro_core::planner::Fingerprinter;

use crate::runtime::principal::Principal;

/// Names traces and tenants for a report.
pub(crate) struct Redactor<'a> {
    principal: &'a Principal,
    redacted_traces: BTreeSet<String>,
    redacted_tenants: BTreeSet<String>,
}

impl<'a> Redactor<'a> {
    pub(crate) fn new(principal: &'a Principal) -> Self {
        Self { principal, redacted_traces: BTreeSet::new(), redacted_tenants: BTreeSet::new() }
    }

    /// Whether the caller may see `tenant_id`'s data.
    pub(crate) fn visible(&self, tenant_id: &str) -> bool {
        self.principal.may_act_for(tenant_id)
    }

    /// The raw id for a visible tenant's trace, a stable key otherwise.
    pub(crate) fn trace_key(&mut self, tenant_id: &str, trace_id: &str) -> String {
        if self.visible(tenant_id) {
            return trace_id.to_owned();
        }
        let key = format!("redacted:{}", Fingerprinter::default().field(trace_id).finish());
        self.redacted_traces.insert(key.clone());
        key
    }

    /// The tenant id when visible, a stable key otherwise.
    pub(crate) fn tenant(&mut self, tenant_id: &str) -> String {
        if self.visible(tenant_id) {
            return tenant_id.to_owned();
        }
        let key = format!("redacted:{}", Fingerprinter::default().field(tenant_id).finish());
        self.redacted_tenants.insert(key.clone());
        key
    }

    /// What the report left out, for people.
    pub(crate) fn redactions(&self) -> Vec<String> {
        let mut redactions = vec![
            "document content, embeddings and request bodies are never included".to_owned(),
            "bearer tokens, secrets and connection strings are never included".to_owned(),
            "feedback comments are never included".to_owned(),
        ];
        redactions.extend(self.replaced_ids());
        redactions
    }

    /// Which ids of tenants the caller may not see were replaced by keys, for people.
    pub(crate) fn replaced_ids(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.redacted_traces.is_empty() {
            notes.push(format!(
                "{} trace ids of tenants this token may not see are replaced by keys",
                self.redacted_traces.len()
            ));
        }
        if !self.redacted_tenants.is_empty() {
            notes.push(format!(
                "{} tenant ids this token may not see are replaced by keys",
                self.redacted_tenants.len()
            ));
        }
        notes
    }
}
