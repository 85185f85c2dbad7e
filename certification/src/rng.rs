//! The harness's one source of randomness: SplitMix64, seeded from the run's seed, so a run is
//! reproduced exactly by passing its seed back (`kyro certify --seed N`).
//!
//! It is not cryptographic and is not meant to be: it only has to be deterministic, fast and
//! spread well. Anything that must differ between two runs with the same seed (the per-run
//! nonce in scope names) comes from [`fresh_u64`] instead.

use std::hash::{BuildHasher, Hasher};

/// A deterministic pseudo-random stream.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream for one purpose (`label`), so adding draws to one part of the run
    /// does not shift what another part generates.
    pub(crate) fn fork(&self, label: &str) -> Self {
        let mut state = self.state ^ 0x5851_F42D_4C95_7F2D;
        for byte in label.bytes() {
            state = mix(state ^ u64::from(byte));
        }
        Self { state }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A value in `0..bound`; 0 when `bound` is 0.
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        // Multiply-shift: uniform enough for test generation, never out of range.
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// A value in `low..=high`.
    pub(crate) fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// True with probability `percent` / 100.
    pub(crate) fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One element of a non-empty slice.
    ///
    /// # Panics
    ///
    /// When `items` is empty; every caller passes a constant or checked non-empty list.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` distinct indices of `0..len`, in random order (all of them when `n >= len`).
    pub(crate) fn sample_indices(&mut self, len: usize, n: usize) -> Vec<usize> {
        let mut indices: Vec<usize> = (0..len).collect();
        let n = n.min(len);
        for idx in 0..n {
            let other = idx + self.below(len - idx);
            indices.swap(idx, other);
        }
        indices.truncate(n);
        indices
    }

    /// A random unit vector of `dimension` components.
    pub(crate) fn unit_vector(&mut self, dimension: usize) -> Vec<f32> {
        loop {
            let values: Vec<f32> =
                (0..dimension).map(|_| (self.unit() * 2.0 - 1.0) as f32).collect();
            let norm = values.iter().map(|value| value * value).sum::<f32>().sqrt();
            if norm > 1e-3 {
                return values.into_iter().map(|value| value / norm).collect();
            }
        }
    }

    /// Lowercase hex of `n_chars` characters.
    pub(crate) fn hex(&mut self, n_chars: usize) -> String {
        let mut text = String::with_capacity(n_chars);
        while text.len() < n_chars {
            text.push_str(&format!("{:016x}", self.next_u64()));
        }
        text.truncate(n_chars);
        text
    }
}

fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// A value that differs between runs: the process's hasher seed, the time and the pid. Used for
/// run seeds chosen by the harness and for the per-run nonce in scope names.
pub(crate) fn fresh_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}
