//! Fingerprints: SHA-256 over a canonical, length-prefixed encoding of the fields that make a
//! value what it is, cut to 64 bits.
//!
//! Every field a fingerprint covers may be chosen by a client (a query's numbers, a filter, a
//! change event's body), so the hash must not be steerable: two different inputs reaching one
//! fingerprint would let a request read another request's cached answer. SHA-256 makes that
//! infeasible; FNV and other fast non-cryptographic hashes do not. The encoding is ours and
//! versioned by this module, never a `Debug` rendering or a serializer's field order.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::filter::{FilterExpr, RuntimeFilter};

/// A stable 64-bit fingerprint, printed as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Fingerprint(pub u64);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Builds a [`Fingerprint`] field by field. Each field is tagged and length-prefixed, so
/// `("ab", "c")` and `("a", "bc")` differ, and absent optional fields differ from empty ones.
#[derive(Debug, Clone, Default)]
pub struct Fingerprinter {
    digest: Sha256,
}

impl Fingerprinter {
    fn tagged(&mut self, tag: u8, bytes: &[u8]) -> &mut Self {
        self.digest.update([tag]);
        self.digest.update((bytes.len() as u64).to_le_bytes());
        self.digest.update(bytes);
        self
    }

    /// Adds one text field.
    pub fn field(&mut self, value: &str) -> &mut Self {
        self.tagged(1, value.as_bytes())
    }

    /// Adds one optional text field; `None` is distinct from every string.
    pub fn optional(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.field(value),
            None => self.tagged(0, &[]),
        }
    }

    /// Adds one number.
    pub fn number(&mut self, value: u64) -> &mut Self {
        self.tagged(2, &value.to_le_bytes())
    }

    /// Adds a list of 32-bit floats by their bits (`-0.0` and `0.0` differ, as the bits do).
    pub fn floats(&mut self, values: &[f32]) -> &mut Self {
        self.digest.update([3]);
        self.digest.update((values.len() as u64).to_le_bytes());
        for value in values {
            self.digest.update(value.to_bits().to_le_bytes());
        }
        self
    }

    /// Adds an optional filter in its canonical encoding (see [`encode_filter`]).
    pub fn filter(&mut self, filter: Option<&RuntimeFilter>) -> &mut Self {
        match filter {
            Some(filter) => {
                self.digest.update([4]);
                encode_filter(filter.root(), self);
                self
            }
            None => self.tagged(0, &[]),
        }
    }

    /// The fingerprint so far.
    pub fn finish(&self) -> Fingerprint {
        let digest = self.digest.clone().finalize();
        let mut bytes = [0_u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        Fingerprint(u64::from_le_bytes(bytes))
    }
}

/// Feeds a filter tree into `out` in a canonical encoding: one tag per node kind, keys and
/// values length-prefixed, `in` values sorted and deduplicated (a set), range bounds by the bits
/// of their value with `-0.0` read as `0.0`. Children of `and` and `or` keep their order.
pub fn encode_filter(node: &FilterExpr, out: &mut Fingerprinter) {
    // `-0.0 + 0.0` is `0.0`: both zeros encode alike.
    let bound = |value: Option<f64>| value.map(|value| (value + 0.0).to_bits());
    match node {
        FilterExpr::Exact { key, value } => {
            out.tagged(10, key.as_str().as_bytes()).field(value.as_str());
        }
        FilterExpr::In { key, values } => {
            let mut values: Vec<&str> = values.iter().map(|value| value.as_str()).collect();
            values.sort_unstable();
            values.dedup();
            out.tagged(11, key.as_str().as_bytes()).number(values.len() as u64);
            for value in values {
                out.field(value);
            }
        }
        FilterExpr::Range { key, min, max } => {
            out.tagged(12, key.as_str().as_bytes());
            for value in [bound(*min), bound(*max)] {
                match value {
                    Some(bits) => out.number(bits),
                    None => out.optional(None),
                };
            }
        }
        FilterExpr::And(children) | FilterExpr::Or(children) => {
            let tag = if matches!(node, FilterExpr::And(_)) { 13 } else { 14 };
            out.tagged(tag, &[]).number(children.len() as u64);
            for child in children {
                encode_filter(child, out);
            }
        }
        FilterExpr::Not(child) => {
            out.tagged(15, &[]);
            encode_filter(child, out);
        }
    }
}
