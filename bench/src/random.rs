//! splitmix64, the fixed-seed generator every KyroDB benchmark uses, so runs load the same
//! vectors and send the same queries.
//!
//! The data seed and the order in which rows draw from it match the pgvector connector bench
//! (`connectors/pgvector/benches/scoped_search.rs`), so the table either tool builds is the same.

/// The seed of the stored vectors.
pub(crate) const DATA_SEED: u64 = 42;

/// A splitmix64 state.
pub(crate) struct Random(pub(crate) u64);

impl Random {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub(crate) fn next_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub(crate) fn vector(&mut self, dimension: usize) -> Vec<f32> {
        (0..dimension).map(|_| self.next_f32()).collect()
    }
}
