//! `kyro quickstart`: the zero-setup tour. It starts the runtime on Qdrant's embedded engine in a
//! fresh directory, certifies the store, loads a small corpus for two tenants, walks through the
//! freshness modes printing each packet, and then keeps serving with the tokens printed.
//!
//! The corpus is embedded with feature hashing (each word adds to one of 64 dimensions), so the
//! tour needs no model; retrieval quality is beside the point, freshness is the point.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use kyro_core::{Document, DocumentId, Metadata, Revision, Scope};
use serde_json::{Value, json};

use crate::api::{ChangeEvent, ContextPacket, RetrieveRequest, ScopeDto, TargetDto};
use crate::runtime::Runtime;

/// The dimension of the tour's hashed embeddings.
pub const DIMENSION: usize = 64;

/// Feature-hashed embedding of `text`: lowercase words, FNV-hashed into `DIMENSION` buckets,
/// normalized.
pub fn embed(text: &str) -> Vec<f32> {
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

/// Finds the Qdrant plugin next to the running `kyro` executable.
///
/// # Errors
///
/// It is not there; the message says how to build it.
pub fn default_plugin() -> anyhow::Result<PathBuf> {
    plugin_next_to_kyro("kyro-connector-qdrant", "the embedded Qdrant plugin")
}

/// Finds the cdylib of the connector package `package` next to the running `kyro` executable,
/// where `cargo build` puts it.
///
/// # Errors
///
/// It is not there; the message names `what` and says how to build it.
pub fn plugin_next_to_kyro(package: &str, what: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to locate the kyro executable")?;
    let dir = exe.parent().context("the kyro executable has no directory")?;
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    let path = dir.join(&file);
    anyhow::ensure!(
        path.exists(),
        "{what} {} is not built; run `cargo build -p {package}` (or pass --plugin)",
        path.display()
    );
    Ok(path)
}

/// A new random token, long enough for every plane.
pub(crate) fn token() -> String {
    format!("kyro_{}", uuid::Uuid::new_v4().simple())
}

/// Writes the tour's configuration into `dir` and returns its path and the tokens.
///
/// # Errors
///
/// The directory cannot be written.
pub fn write_config(
    dir: &Path,
    plugin: &Path,
    listen: &str,
) -> anyhow::Result<(PathBuf, String, String)> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let (data_token, admin_token) = (token(), token());
    let data_dir = dir.join("qdrant");
    let config = format!(
        "# Written by `kyro quickstart`.\n\
         listen = \"{listen}\"\nmode = \"development\"\ndefault_freshness = \"balanced\"\nstate = \"sqlite://kyro-state.db\"\n\n\
         [tokens]\ndata = [{{ token = {{ value = \"{data_token}\" }} }}]\n\
         observability = [{{ token = {{ value = \"{admin_token}\" }} }}]\nadmin = [{{ token = {{ value = \"{admin_token}\" }} }}]\n\n\
         [[stores]]\nid = \"quickstart\"\nplugin = \"{}\"\nownership_mode = \"write_through\"\nnamespaces = [\"*\"]\n\n\
         [stores.config]\nbackend = \"embedded\"\npath = \"{}\"\ncollection = \"quickstart\"\ndimension = {DIMENSION}\n\
         distance = \"cosine\"\nfilterable_keys = [\"topic\"]\ncreate_collection = true\n",
        plugin.display(),
        data_dir.display(),
    );
    let path = dir.join("kyro.toml");
    std::fs::write(&path, config).with_context(|| format!("failed to write {}", path.display()))?;
    Ok((path, data_token, admin_token))
}

fn retrieve_request(tenant: &str, query: &str, mode: &str) -> RetrieveRequest {
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
        freshness_mode: Some(mode.to_owned()),
        required_generation: None,
        include_content: Some(true),
    }
}

/// A packet, printed for people.
pub fn describe_packet(packet: &ContextPacket) -> String {
    let mut text = format!(
        "  status {}  path {}  served {} (asked {})  generation {}  proof {}\n",
        packet.status,
        packet.meta.execution_path,
        packet.freshness.served_mode,
        packet.freshness.requested_mode,
        packet.freshness.generation,
        packet.meta.proof_diagnostics.proof_status,
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
            omission.reason,
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
    runtime.mutate(&runtime.live, scope, Some(document), id, body.to_string()).await?;
    Ok(())
}

/// Runs the tour against a built runtime, printing to `out`.
///
/// # Errors
///
/// Any step the runtime refuses.
pub async fn tour(runtime: &Arc<Runtime>, out: &mut dyn Write) -> anyhow::Result<()> {
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
    let packet =
        runtime.retrieve(&runtime.live, retrieve_request("acme", query, "balanced"), None).await?;
    write!(out, "{}", describe_packet(&packet))?;
    writeln!(out, "\n   The same question again is served from the reuse cache:")?;
    let packet =
        runtime.retrieve(&runtime.live, retrieve_request("acme", query, "strict"), None).await?;
    write!(out, "{}", describe_packet(&packet))?;
    writeln!(
        out,
        "\n3. The billing system reports revision 2 of acme's refund policy (a change event); the store has not caught up yet."
    )?;
    let event = ChangeEvent {
        target: TargetDto::Document { doc_id: "refund-policy".to_owned() },
        change_type: "content_updated".to_owned(),
        scope: crate::api::ChangeScopeDto {
            tenant_id: Some("acme".to_owned()),
            namespace: Some("support".to_owned()),
            connector_id: None,
        },
        source_event_id: "billing-evt-2".to_owned(),
        revision: Some("2".to_owned()),
        timestamp: None,
    };
    let body: Value = serde_json::to_value(&event)?;
    let result = runtime
        .change_event(&runtime.live, event.validate()?, event.source_event_id.clone(), &body)
        .await?;
    writeln!(
        out,
        "   acknowledged at generation {} ({} reuse entries invalidated)",
        result.generation, result.entries_invalidated
    )?;
    writeln!(
        out,
        "\n4. A strict retrieve refuses the stale reuse and prunes the store's stale revision 1:"
    )?;
    let packet =
        runtime.retrieve(&runtime.live, retrieve_request("acme", query, "strict"), None).await?;
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
    let packet =
        runtime.retrieve(&runtime.live, retrieve_request("acme", query, "balanced"), None).await?;
    write!(out, "{}", describe_packet(&packet))?;
    Ok(())
}

/// The closing instructions, with a ready-to-run `curl`.
pub fn instructions(listen: &str, data_token: &str, admin_token: &str, config: &Path) -> String {
    let body = json!({
        "query_embedding": embed("how long do refunds take"),
        "scope": { "tenant_id": "acme", "namespace": "support", "embedding_model_id": "quickstart-hashing-64" },
        "top_k": 3,
        "freshness_mode": "strict",
    });
    format!(
        "\nkyro is serving on http://{listen} (config {}).\n\
         data token:  {data_token}\nadmin token: {admin_token} (also valid for traces)\n\n\
         Try it:\n  curl -s http://{listen}/v1/context/retrieve \\\n    -H 'Authorization: Bearer {data_token}' \\\n    -H 'Content-Type: application/json' \\\n    -d '{body}'\n\n\
         Press ctrl-c to stop.\n",
        config.display()
    )
}
