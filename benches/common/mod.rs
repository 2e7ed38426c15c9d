//! Workload inputs shared by the benches (not a bench target itself).

#[allow(dead_code)] // the memory bench runs none of these loops
pub mod loops;

/// A deterministic xorshift64 generator.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value below `n`.
    #[allow(dead_code)] // only the memory bench draws bounded values
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Sizes 16..=256 from a fixed xorshift sequence (seed 0x9E3779B97F4A7C15).
#[allow(dead_code)] // the memory bench draws its own
pub fn small_sizes() -> Vec<usize> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..4096).map(|_| 16 + (rng.next() % 241) as usize).collect()
}

/// The median of `v` (the upper one for an even length).
#[allow(dead_code)] // the memory bench takes none
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
