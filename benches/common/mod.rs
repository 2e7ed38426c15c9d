//! Workload inputs shared by the benches (not a bench target itself).

#[allow(dead_code)] // the side-by-side tables only (ingredients, peers)
pub mod columns;
#[allow(dead_code)] // the memory bench runs none of these loops
pub mod loops;
#[allow(dead_code)] // where tracking-allocator is measured (peers, agent)
pub mod peer_tracker;
#[cfg(feature = "jemalloc")]
#[allow(dead_code)] // only the whole-program benches install it
pub mod switch;

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

/// A JSON document of about `target` bytes: messages with roles, text and tool calls.
#[allow(dead_code)] // the benches that build agent histories
pub fn document(rng: &mut Rng, target: usize) -> String {
    let mut out = String::from("{\"messages\":[");
    let mut n = 0;
    while out.len() < target {
        if n > 0 {
            out.push(',');
        }
        let words = 5 + rng.below(120) as usize;
        let text: Vec<String> = (0..words)
            .map(|w| format!("w{}", (w as u64 * 7919 + rng.below(1000)) % 5000))
            .collect();
        out.push_str(&format!(
            "{{\"role\":\"{}\",\"id\":{},\"text\":\"{}\",\"tool\":{{\"name\":\"grep\",\"args\":[{},{},{}],\"ok\":{}}}}}",
            if n % 2 == 0 { "user" } else { "assistant" },
            rng.next() % 1_000_000,
            text.join(" "),
            rng.below(100),
            rng.below(1000),
            rng.below(10),
            n % 3 == 0
        ));
        n += 1;
    }
    out.push_str("]}");
    out
}
