//! The synthetic dataset both stores are loaded with: `rows` fixed-seed vectors of `dimension`
//! values, uniform in [-1, 1), in four tenants holding 50%, 30%, 15% and 5% of the rows, all in
//! namespace `docs`.
//!
//! Row `i` is the same document in every store and in the pgvector connector bench: id `doc-i`,
//! the tenant its position falls in (tenant-0's rows first), metadata `lang` and `year`, a short
//! content string, and the `i`-th vector drawn from seed 42.

use crate::random::{DATA_SEED, Random};

/// The namespace of every row and every query.
pub(crate) const NAMESPACE: &str = "docs";
/// Each tenant's share of the rows, in per cent.
pub(crate) const TENANT_PERCENT: [usize; 4] = [50, 30, 15, 5];

/// The size of a dataset; everything else about it is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dataset {
    pub(crate) n_rows: usize,
    pub(crate) dimension: usize,
}

/// One document.
pub(crate) struct Row {
    pub(crate) tenant: String,
    pub(crate) id: String,
    pub(crate) lang: &'static str,
    pub(crate) year: String,
    pub(crate) content: String,
    pub(crate) embedding: Vec<f32>,
}

impl Dataset {
    /// Rows per tenant: the shares rounded down, the remainder to the last tenant.
    pub(crate) fn tenant_rows(self) -> [usize; 4] {
        let mut tenant_rows = [0; 4];
        for (tenant_idx, percent) in TENANT_PERCENT.iter().enumerate() {
            tenant_rows[tenant_idx] = self.n_rows * percent / 100;
        }
        let n_assigned: usize = tenant_rows[..3].iter().sum();
        tenant_rows[3] = self.n_rows - n_assigned;
        tenant_rows
    }

    pub(crate) fn tenant_names() -> Vec<String> {
        (0..TENANT_PERCENT.len()).map(|tenant_idx| format!("tenant-{tenant_idx}")).collect()
    }

    /// Every row, in load order.
    pub(crate) fn rows(self) -> impl Iterator<Item = Row> {
        let tenant_rows = self.tenant_rows();
        let mut random = Random(DATA_SEED);
        (0..self.n_rows).map(move |row_idx| {
            let mut end = 0;
            let mut tenant_idx = tenant_rows.len() - 1;
            for (candidate_idx, n_tenant_rows) in tenant_rows.iter().enumerate() {
                end += n_tenant_rows;
                if row_idx < end {
                    tenant_idx = candidate_idx;
                    break;
                }
            }
            let tenant = format!("tenant-{tenant_idx}");
            Row {
                id: format!("doc-{row_idx}"),
                lang: ["en", "de", "fr"][row_idx % 3],
                year: format!("{}", 2000 + row_idx % 25),
                content: format!("synthetic document {row_idx} of {tenant}"),
                tenant,
                embedding: random.vector(self.dimension),
            }
        })
    }
}

/// How a store's copy of the dataset was obtained.
#[derive(Clone, Debug)]
pub(crate) struct Preparation {
    /// Whether an existing copy with the same parameters was reused.
    pub(crate) reused: bool,
    /// Seconds spent loading the rows (0 when reused).
    pub(crate) load_secs: f64,
    /// Seconds spent building the vector index (0 when reused).
    pub(crate) index_secs: f64,
    /// What the store holds, for the report: table or collection, index.
    pub(crate) detail: String,
}
