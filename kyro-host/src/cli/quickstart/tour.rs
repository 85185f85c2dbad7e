//! The tour itself: a hashed-embedding corpus for two tenants, and the walk through the
//! freshness modes that prints each packet.

use std::io::Write;
use std::sync::Arc;

use kyro_core::{Document, DocumentId, Metadata, Revision, Scope};
use serde_json::Value;

use crate::runtime::Runtime;
use crate::runtime::mutations::Mutation;
use crate::runtime::principal::Principal;
use crate::wire::change::{ChangeEvent, ChangeScopeDto, TargetDto};
use crate::wire::packet::ContextPacket;
use crate::wire::request::{RetrieveRequest, ScopeDto};

/// The dimension of the tour's hashed embeddings.
pub(crate) const DIMENSION: usize = 64;

/// Feature-hashed embedding of `text`: lowercase words, FNV-hashed into `DIMENSION` buckets,
/// normalized.
pub(crate) fn embed(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0_f32; DIMENSION];
    for word in
        text.split(|character: char| !character.is_alphanumeric()).filter(|word| word.len() > 2)
    {
        let word = word.to_lowercase();
        let hash = kyro_core::planner::Fingerprinter::default().field(&word).finish().0;
        let bucket = (hash % DIMENSION as u64) as usize;
        vector[bucket] += if hash & (1 << 63) == 0 { 1.0 } else { -1.0 };
    }
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|value| *value /= norm);
    } else {
        vector[0] = 1.0;
    }
    vector
}

const CORPUS: &[(&str, &str, &str, &str)] = &[
    ("acme", "refund-policy", "billing", "Refunds are issued within 14 days of a return request."),
    (
        "acme",
        "shipping",
        "logistics",
        "Orders ship within two business days from the Lisbon warehouse.",
    ),
    (
        "acme",
        "warranty",
        "support",
        "Hardware carries a two year warranty covering manufacturing defects.",
    ),
    (
        "acme",
        "password-reset",
        "account",
        "Reset your password from the sign-in page using the emailed link.",
    ),
    (
        "globex",
        "refund-policy",
        "billing",
        "Globex refunds store credit only, never cash, within 30 days.",
    ),
    (
        "globex",
        "onboarding",
        "account",
        "New Globex accounts are verified by a phone call within a day.",
    ),
    (
        "globex",
        "outages",
        "support",
        "Service status and outage reports live on status.globex.example.",
    ),
];

fn retrieve_request(tenant: &str, query: &str, mode: kyro_core::FreshnessMode) -> RetrieveRequest {
    RetrieveRequest {
        query_embedding: embed(query).into_iter().map(f64::from).collect(),
        query_text: Some(query.to_owned()),
        scope: ScopeDto {
            tenant_id: tenant.to_owned(),
            namespace: "support".to_owned(),
            app_id: None,
            locale: None,
            auth_scope: None,
            entitlement_boundary: None,
            embedding_model_id: Some("quickstart-hashing-64".to_owned()),
            reranker_version: None,
            prompt_template_version: None,
        },
        filters: None,
        top_k: Some(3),
        freshness_mode: Some(mode),
        required_generation: None,
        include_content: Some(true),
    }
}

/// A packet, printed for people.
pub(crate) fn describe_packet(packet: &ContextPacket) -> String {
    let mut text = format!(
        "  status {}  path {}  served {} (asked {})  generation {}  proof {}\n",
        packet.status.as_str(),
        packet.meta.execution_path.as_str(),
        packet.freshness.served_mode.as_str(),
        packet.freshness.requested_mode.as_str(),
        packet.freshness.generation,
        packet.meta.proof_diagnostics.proof_status.as_str(),
    );
    for item in &packet.items {
        text.push_str(&format!(
            "    {:>5.3}  {:<16} rev {:<3} {}\n",
            item.score,
            item.id,
            item.provenance.doc_revision.as_deref().unwrap_or("-"),
            item.content.as_deref().unwrap_or("")
        ));
    }
    for omission in &packet.omissions {
        text.push_str(&format!(
            "    omitted {} ({}): {}\n",
            omission.id,
            omission.reason.as_str(),
            omission.detail.as_deref().unwrap_or("")
        ));
    }
    for warning in &packet.warnings {
        text.push_str(&format!("    warning: {warning}\n"));
    }
    text.push_str(&format!("    trace {}\n", packet.trace_id));
    text
}

async fn upsert(
    runtime: &Runtime,
    tenant: &str,
    id: &str,
    topic: &str,
    content: &str,
    revision: &str,
) -> anyhow::Result<()> {
    let scope = Scope::new(tenant, "support")?;
    let metadata = Metadata::new([("topic".to_owned(), topic.to_owned())].into_iter().collect())?;
    let embedding = kyro_core::Embedding::new(embed(content))?;
    let document = Document::new(
        DocumentId::new(id)?,
        Some(embedding),
        Some(content.to_owned()),
        metadata,
        Some(Revision::new(revision)?),
    )?;
    let id = document.id().clone();
    let body = serde_json::json!({
        "scope": { "tenant_id": tenant, "namespace": "support" },
        "document": {
            "id": id.as_str(),
            "embedding": embed(content),
            "content": content,
            "metadata": { "topic": topic },
            "revision": revision,
        },
    });
    let mutation = Mutation { scope, id, document: Some(document), raw_body: body.to_string() };
    runtime.mutate(&runtime.live, &Principal::unrestricted(), mutation).await?;
    Ok(())
}

/// Runs the tour against a built runtime, printing to `out`.
///
/// # Errors
///
/// Any step the runtime refuses.
pub(crate) async fn tour(runtime: &Arc<Runtime>, out: &mut dyn Write) -> anyhow::Result<()> {
    use kyro_core::FreshnessMode::{Balanced, Strict};
    let principal = Principal::unrestricted();
    writeln!(
        out,
        "\n1. Loading {} documents for tenants acme and globex (write-through, ACK-verified)",
        CORPUS.len()
    )?;
    for (tenant, id, topic, content) in CORPUS {
        upsert(runtime, tenant, id, topic, content, "1").await?;
    }
    let query = "how long do refunds take";
    writeln!(
        out,
        "\n2. A scoped retrieve for tenant acme: \"{query}\" (balanced). Globex's refund policy never appears."
    )?;
    let packet = runtime
        .retrieve(&runtime.live, &principal, retrieve_request("acme", query, Balanced), None)
        .await?;
    write!(out, "{}", describe_packet(&packet))?;
    writeln!(out, "\n   The same question again is served from the reuse cache:")?;
    let packet = runtime
        .retrieve(&runtime.live, &principal, retrieve_request("acme", query, Strict), None)
        .await?;
    write!(out, "{}", describe_packet(&packet))?;
    writeln!(
        out,
        "\n3. The billing system reports revision 2 of acme's refund policy (a change event); the store has not caught up yet."
    )?;
    let event = ChangeEvent {
        target: TargetDto::Document { doc_id: "refund-policy".to_owned() },
        change_type: kyro_core::change::ChangeType::ContentUpdated,
        scope: ChangeScopeDto {
            tenant_id: Some("acme".to_owned()),
            namespace: Some("support".to_owned()),
            connector_id: None,
        },
        source_event_id: "billing-evt-2".to_owned(),
        revision: Some("2".to_owned()),
        timestamp: None,
    };
    let body: Value = serde_json::to_value(&event)?;
    let result = runtime.change_event(&runtime.live, &principal, event.validate()?, &body).await?;
    writeln!(
        out,
        "   acknowledged at generation {} ({} reuse entries invalidated)",
        result.generation, result.entries_invalidated
    )?;
    writeln!(
        out,
        "\n4. A strict retrieve refuses the stale reuse and prunes the store's stale revision 1:"
    )?;
    let packet = runtime
        .retrieve(&runtime.live, &principal, retrieve_request("acme", query, Strict), None)
        .await?;
    write!(out, "{}", describe_packet(&packet))?;
    writeln!(
        out,
        "\n5. The store catches up (revision 2 written through); a balanced retrieve serves it:"
    )?;
    upsert(
        runtime,
        "acme",
        "refund-policy",
        "billing",
        "Refunds are issued within 5 days of a return request.",
        "2",
    )
    .await?;
    let packet = runtime
        .retrieve(&runtime.live, &principal, retrieve_request("acme", query, Balanced), None)
        .await?;
    write!(out, "{}", describe_packet(&packet))?;
    Ok(())
}
