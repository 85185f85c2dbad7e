//! The private space a certification runs in, and the data it seeds there.
//!
//! Tenants are `kyro-cert-<run id>-a` and `-b` (the SDK only lets certification write to tenants
//! with that prefix); namespaces are `ns-1` and `ns-2`. The home scope is `a/ns-1`; the other two
//! scopes hold poisoned neighbours: documents placed exactly on the probe vector, which must
//! never come back from the home scope.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use kyro_connector_sdk::{
    CERTIFICATION_TENANT_PREFIX, Document, DocumentId, Embedding, Metadata, Scope,
};

/// A random run id: 12 hex characters from the process's hasher seed, the time and the pid.
pub(crate) fn random_run_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// The three scopes of a run.
pub(crate) struct Space {
    pub(crate) home: Scope,
    pub(crate) other_tenant: Scope,
    pub(crate) other_namespace: Scope,
}

impl Space {
    pub(crate) fn new(run_id: &str) -> Self {
        let tenant_a = format!("{CERTIFICATION_TENANT_PREFIX}{run_id}-a");
        let tenant_b = format!("{CERTIFICATION_TENANT_PREFIX}{run_id}-b");
        let scope = |tenant: &str, namespace: &str| {
            Scope::new(tenant, namespace)
                .expect("certification tenants and namespaces are valid identifiers")
        };
        Self {
            home: scope(&tenant_a, "ns-1"),
            other_tenant: scope(&tenant_b, "ns-1"),
            other_namespace: scope(&tenant_a, "ns-2"),
        }
    }

    pub(crate) fn scopes(&self) -> [&Scope; 3] {
        [&self.home, &self.other_tenant, &self.other_namespace]
    }
}

/// A deterministic unit vector for `seed`.
pub(crate) fn unit_vector(dimension: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut values: Vec<f32> = (0..dimension)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (bits as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    normalize(&mut values);
    values
}

fn normalize(values: &mut [f32]) {
    let norm = values.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        for value in values.iter_mut() {
            *value /= norm;
        }
    }
}

/// `base` moved towards `noise` by `weight`, re-normalized: near the probe, but not on it.
pub(crate) fn perturbed(base: &[f32], noise: &[f32], weight: f32) -> Vec<f32> {
    let mut values: Vec<f32> =
        base.iter().zip(noise).map(|(b, n)| b * (1.0 - weight) + n * weight).collect();
    normalize(&mut values);
    values
}

/// The seed data, computed once per run from the store's dimension and a filterable key.
pub(crate) struct Dataset {
    pub(crate) probe: Vec<f32>,
    /// The metadata key the filter checks use.
    pub(crate) key: String,
    /// Home documents: id → (year value, vector).
    pub(crate) home: Vec<Document>,
    /// Poisoned neighbours of the other tenant.
    pub(crate) other_tenant: Vec<Document>,
    /// Poisoned neighbours of the other namespace.
    pub(crate) other_namespace: Vec<Document>,
}

/// The id every scope holds, with different content in each.
pub(crate) const SHARED_ID: &str = "shared";
/// Year values of the home documents `doc-1` … `doc-6`, as metadata strings.
pub(crate) const HOME_YEARS: [&str; 6] = ["2019", "2019", "2021", "2021", "2024", "2024"];

pub(crate) fn document(
    id: &str,
    vector: Vec<f32>,
    key: &str,
    value: &str,
    content: &str,
) -> Document {
    let metadata = Metadata::new(BTreeMap::from([(key.to_owned(), value.to_owned())]))
        .expect("certification metadata keys come from the connector's declared filterable keys");
    Document::new(
        DocumentId::new(id).expect("certification ids are valid"),
        Some(Embedding::new(vector).expect("certification vectors are finite and non-empty")),
        Some(content.to_owned()),
        metadata,
        None,
    )
    .expect("certification content is small")
}

impl Dataset {
    pub(crate) fn new(dimension: usize, key: &str) -> Self {
        let probe = unit_vector(dimension, 1);
        let mut home = Vec::new();
        for (idx, year) in HOME_YEARS.iter().enumerate() {
            let noise = unit_vector(dimension, 100 + idx as u64);
            let vector = perturbed(&probe, &noise, 0.2 + 0.1 * idx as f32);
            home.push(document(
                &format!("doc-{}", idx + 1),
                vector,
                key,
                year,
                &format!("home document {}", idx + 1),
            ));
        }
        // The home copy of the shared id is far from the probe; the other scopes' copies sit on it.
        home.push(document(
            SHARED_ID,
            unit_vector(dimension, 999),
            key,
            "1999",
            "shared: home copy",
        ));
        let poison = |label: &str| {
            vec![
                document(
                    &format!("poison-{}", label.replace(' ', "-")),
                    probe.clone(),
                    key,
                    "2021",
                    &format!("poisoned neighbour from the {label}"),
                ),
                document(SHARED_ID, probe.clone(), key, "2021", &format!("shared: {label} copy")),
            ]
        };
        Self {
            key: key.to_owned(),
            other_tenant: poison("other tenant"),
            other_namespace: poison("other namespace"),
            probe,
            home,
        }
    }
}
