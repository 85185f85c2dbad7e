//! The private space a certification runs in: its scopes, their names, and the fixed data the
//! hand-written checks use (the generated data is `conformance`'s).
//!
//! Names are random for every run and carry no fixed prefix, so a connector cannot tell the
//! certification's requests from a tenant's: they hold quotes, SQL wildcards, non-ASCII text and
//! spaces, come in pairs that differ only in letter case, and include names exactly at the
//! contract's 256-byte limit. The SDK still lets `certification_seed` and `certification_purge`
//! touch only tenants starting with `CERTIFICATION_TENANT_PREFIX`; a connector that can write
//! and delete through its declared operations is certified entirely in unprefixed scopes (the
//! harness writes through upsert and cleans up through delete), any other in prefixed ones, and
//! the report says which and why.
//!
//! Scopes: `G0`..`G3` hold the generated data (`G0` the primary scope, `G1` a case-only variant
//! of its namespace, `G2` of its tenant, `G3` names at the length limit); `F0` is the fixed
//! checks' home, `F1` another tenant (a case-only variant of `F0`'s) and `F2` another namespace,
//! both holding poisoned neighbours: documents placed exactly on the probe vector. `P0` is a
//! prefixed scope for the store's own writer when the rest is unprefixed.

use std::collections::BTreeMap;

use kyro_connector_sdk::{
    CERTIFICATION_TENANT_PREFIX, Document, DocumentId, Embedding, Metadata, Scope,
};
use serde::Serialize;

use crate::rng::Rng;

/// The contract's longest tenant or namespace, in bytes.
const MAX_NAME_BYTES: usize = 256;

/// How the space's tenants are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// Random names with no fixed prefix.
    Unprefixed,
    /// Random names after the SDK's certification prefix.
    Prefixed,
}

/// One scope of the space, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeName {
    /// The short name witnesses use, such as `G0`.
    pub alias: String,
    /// The tenant.
    pub tenant_id: String,
    /// The namespace.
    pub namespace: String,
}

/// The scopes of a run.
pub(crate) struct Space {
    pub(crate) naming: Naming,
    pub(crate) naming_reason: &'static str,
    pub(crate) home: Scope,
    pub(crate) other_tenant: Scope,
    pub(crate) other_namespace: Scope,
    /// The generated data's scopes, primary first.
    pub(crate) generated: Vec<Scope>,
    /// A scope the store's own writer (`certification_seed`) may write to.
    pub(crate) seedable: Scope,
}

impl Space {
    /// A space named from `rng` (the shapes of the names) and `nonce` (per run, so no two runs
    /// share a scope).
    pub(crate) fn new(
        rng: &mut Rng,
        nonce: &str,
        naming: Naming,
        naming_reason: &'static str,
    ) -> Self {
        let prefix = match naming {
            Naming::Unprefixed => "",
            Naming::Prefixed => CERTIFICATION_TENANT_PREFIX,
        };
        let t1 = format!("{prefix}{}", name_body(rng, nonce, 'a'));
        let t2 = format!("{prefix}{}", flip_case(&t1[prefix.len()..]));
        let t3 = at_length_limit(&format!("{prefix}{}", name_body(rng, nonce, 'b')));
        let n1 = name_body(rng, nonce, 'c');
        let n2 = flip_case(&n1);
        let n3 = at_length_limit(&name_body(rng, nonce, 'd'));
        let n4 = name_body(rng, nonce, 'e');
        let n5 = flip_case(&n4);
        let scope = |tenant: &str, namespace: &str| {
            Scope::new(tenant, namespace).expect("generated names are valid scope fields")
        };
        let seedable = match naming {
            Naming::Prefixed => scope(&t1, &n4),
            Naming::Unprefixed => {
                scope(&format!("{CERTIFICATION_TENANT_PREFIX}{}", name_body(rng, nonce, 'f')), &n4)
            }
        };
        Self {
            naming,
            naming_reason,
            home: scope(&t1, &n4),
            other_tenant: scope(&t2, &n4),
            other_namespace: scope(&t1, &n5),
            generated: vec![scope(&t1, &n1), scope(&t1, &n2), scope(&t2, &n1), scope(&t3, &n3)],
            seedable,
        }
    }

    /// Every scope with its alias.
    pub(crate) fn named(&self) -> Vec<(String, &Scope)> {
        let mut named: Vec<(String, &Scope)> = self
            .generated
            .iter()
            .enumerate()
            .map(|(idx, scope)| (format!("G{idx}"), scope))
            .collect();
        named.push(("F0".to_owned(), &self.home));
        named.push(("F1".to_owned(), &self.other_tenant));
        named.push(("F2".to_owned(), &self.other_namespace));
        if self.seedable != self.home {
            named.push(("P0".to_owned(), &self.seedable));
        }
        named
    }

    /// The generated scopes' aliases.
    pub(crate) fn generated_aliases(&self) -> Vec<String> {
        (0..self.generated.len()).map(|idx| format!("G{idx}")).collect()
    }

    /// The short name of a scope of the space, or its full name.
    pub(crate) fn alias(&self, scope: &Scope) -> String {
        self.named()
            .into_iter()
            .find(|(_, candidate)| *candidate == scope)
            .map_or_else(|| scope.to_string(), |(alias, _)| alias)
    }

    /// Every scope, for the report.
    pub(crate) fn describe(&self) -> Vec<ScopeName> {
        self.named()
            .into_iter()
            .map(|(alias, scope)| ScopeName {
                alias,
                tenant_id: scope.tenant_id().to_owned(),
                namespace: scope.namespace().to_owned(),
            })
            .collect()
    }
}

/// Whether `certification_seed` and `certification_purge` may be asked to touch `scope`.
pub(crate) fn seedable(scope: &Scope) -> bool {
    scope.tenant_id().starts_with(CERTIFICATION_TENANT_PREFIX)
}

/// A random name: a word, a quote or wildcard, non-ASCII text, a space and the run's nonce.
fn name_body(rng: &mut Rng, nonce: &str, tag: char) -> String {
    const WORDS: [&str; 6] = ["Acme", "Nord", "Zeta", "Orbit", "Kilo", "Vega"];
    const MARKS: [&str; 7] = ["'", "\"", "''", "\\", "%", "_", "' OR '1'='1"];
    const UNICODE: [&str; 6] = ["é", "ß", "日本", "🚀", "Ωmega", "İ"];
    format!("{}{}{} {nonce}{tag}", rng.pick(&WORDS), rng.pick(&MARKS), rng.pick(&UNICODE))
}

/// `name` with every ASCII letter's case flipped: equal to it under a case-insensitive
/// comparison, different under an exact one.
fn flip_case(name: &str) -> String {
    name.chars()
        .map(|character| {
            if character.is_ascii_lowercase() {
                character.to_ascii_uppercase()
            } else {
                character.to_ascii_lowercase()
            }
        })
        .collect()
}

/// `name` padded with multi-byte characters to exactly the contract's 256 bytes.
fn at_length_limit(name: &str) -> String {
    let mut padded = name.to_owned();
    while padded.len() + "ü-".len() <= MAX_NAME_BYTES {
        padded.push_str("ü-");
    }
    while padded.len() < MAX_NAME_BYTES {
        padded.push('x');
    }
    padded
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
