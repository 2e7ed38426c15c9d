//! Workload inputs shared by the benches (not a bench target itself).

/// Sizes 16..=256 from a fixed xorshift sequence (seed 0x9E3779B97F4A7C15).
pub fn small_sizes() -> Vec<usize> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            16 + (x % 241) as usize
        })
        .collect()
}
