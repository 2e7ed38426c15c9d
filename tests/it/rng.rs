//! A deterministic generator and the seed for the randomised tests: one seed per run,
//! printed, and replayed with `HEAPSCOPE_TEST_SEED=<n>`.

/// xorshift64*: tiny, deterministic, no crate.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A value below `n` (not zero).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// One of `from` (not empty).
    pub(crate) fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

/// The seed: `HEAPSCOPE_TEST_SEED` when set, a fixed one otherwise. Always printed.
pub(crate) fn seed(test: &str) -> u64 {
    let seed = std::env::var("HEAPSCOPE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0F4E_A95C_0F00u64);
    println!("{test}: seed {seed} (rerun with HEAPSCOPE_TEST_SEED={seed})");
    seed
}
