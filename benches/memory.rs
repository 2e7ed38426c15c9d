//! Peak resident memory of `Tracked<Jemalloc>` against plain jemalloc, in separate processes.
//!
//! The bench re-runs itself as a child for each allocator: the child's global allocator picks
//! raw jemalloc or `Tracked<Jemalloc>` from `HEAPSCOPE_BENCH_ALLOC` at its very first
//! allocation (read with `getenv`, which does not allocate) and never switches again. Each
//! child runs one workload and prints its peak RSS (`VmHWM`); the parent pairs raw and tracked
//! runs and reports the median ratio, and beside it the ratio of tracking-allocator's
//! `Allocator`, which keeps its owner in an 8-byte header, to the median raw run.
//!
//! `cargo bench --bench memory --features enabled`

mod common;
use common::{document, Rng};

#[global_allocator]
static GLOBAL: common::switch::Switch = common::switch::Switch;

/// `Vec<u8>` and `String` grown by pushing to lengths of 16 B to 128 KiB (a power of two from
/// 16 B to 64 KiB, plus up to as much again), all kept.
fn growth(scale: usize) -> usize {
    let owner = heapscope::Owner::named("growth");
    let _scope = owner.enter();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut vecs: Vec<Vec<u8>> = Vec::new();
    let mut strings: Vec<String> = Vec::new();
    for i in 0..scale {
        let len = 16usize << rng.below(13);
        let len = len + rng.below(len as u64) as usize;
        if i % 2 == 0 {
            let mut v = Vec::new();
            for b in 0..len {
                v.push(b as u8);
            }
            vecs.push(v);
        } else {
            let mut s = String::new();
            while s.len() < len {
                s.push_str("word ");
            }
            strings.push(s);
        }
    }
    vecs.iter().map(Vec::capacity).sum::<usize>()
        + strings.iter().map(String::capacity).sum::<usize>()
}

/// serde_json documents of 10-200 KiB parsed and kept in a history; every 40 documents the
/// oldest half is dropped (compaction).
fn json(scale: usize) -> usize {
    let history_owner = heapscope::Owner::named("history");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut history: Vec<serde_json::Value> = Vec::new();
    let mut text_bytes = 0;
    for i in 0..scale {
        let target = 10 * 1024 + rng.below(190 * 1024) as usize;
        let text = document(&mut rng, target);
        text_bytes += text.len();
        let value: serde_json::Value =
            history_owner.in_scope(|| serde_json::from_str(&text).expect("valid json"));
        history.push(value);
        if i % 40 == 39 {
            history.drain(..history.len() / 2);
        }
    }
    text_bytes + history.len()
}

/// Agent messages streamed token by token: `scale` strings of 200 B-4 KiB grown by `push_str`
/// (so their capacities sit on doubling sizes, exact jemalloc classes), all kept.
fn streamed(scale: usize) -> usize {
    let owner = heapscope::Owner::named("streamed");
    let _scope = owner.enter();
    let mut rng = Rng(0x51_7CC1_B727_220A);
    let tokens = ["the ", "model ", "said ", "a ", "token ", "x ", "streaming ", "of "];
    let mut messages: Vec<String> = Vec::new();
    for _ in 0..scale {
        let len = 200 + rng.below(3900) as usize;
        let mut m = String::new();
        while m.len() < len {
            m.push_str(tokens[rng.below(tokens.len() as u64) as usize]);
        }
        messages.push(m);
    }
    messages.iter().map(String::capacity).sum()
}

/// The worst case of a per-block tag: `scale` `Box<u64>`, 8-byte blocks that go one class up
/// (16 bytes), all kept.
fn boxes(scale: usize) -> usize {
    let owner = heapscope::Owner::named("boxes");
    let _scope = owner.enter();
    let held: Vec<Box<u64>> = (0..scale as u64).map(Box::new).collect();
    held.iter().map(|b| **b as usize).sum()
}

/// `scale` 16-byte strings (exact class 16, one class up to 32), all kept.
fn short_strings(scale: usize) -> usize {
    let owner = heapscope::Owner::named("short");
    let _scope = owner.enter();
    let held: Vec<String> =
        (0..scale).map(|i| format!("{i:016}")).map(|s| s[..16].to_owned()).collect();
    held.iter().map(String::len).sum()
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn child(workload: &str, scale: usize) {
    let checksum = match workload {
        "growth" => growth(scale),
        "json" => json(scale),
        "streamed" => streamed(scale),
        "boxes" => boxes(scale),
        "short" => short_strings(scale),
        other => panic!("heapscope bench: unknown workload {other}"),
    };
    println!("{} {} {}", vm_hwm_kib(), checksum, heapscope::is_tracking());
}

fn run(workload: &str, scale: usize, tracked: bool) -> u64 {
    let text = common::switch::run_child(workload, scale, tracked);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        fields.get(2) == Some(&"true"),
        tracked && cfg!(feature = "enabled"),
        "tracking state in child"
    );
    fields[0].parse().expect("VmHWM")
}

/// Peak RSS of a child over tracking-allocator's `Allocator` (an 8-byte header per block).
fn run_header(workload: &str, scale: usize) -> u64 {
    let text = common::switch::run_child_over(workload, scale, "header");
    text.split_whitespace().next().and_then(|v| v.parse().ok()).expect("VmHWM")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(&args[2], args[3].parse().expect("scale"));
    }
    let smoke = !args.iter().any(|a| a == "--bench");
    let (runs, growth_scale, json_scale, streamed_scale, tiny_scale) =
        if smoke { (1, 200, 10, 200, 1000) } else { (5, 20_000, 400, 20_000, 1_000_000) };
    println!(
        "heapscope memory: tracking compiled in = {}, {runs} paired runs",
        cfg!(feature = "enabled")
    );
    println!(
        "| {:<52} | {:>12} | {:>12} | {:>7} | {:>13} |",
        "workload (peak RSS, VmHWM)", "raw MiB", "tracked MiB", "ratio", "8 B header"
    );
    println!("|{:-<54}|{:-<14}|{:-<14}|{:-<9}|{:-<15}|", "", "", "", "", "");
    for (name, label, scale) in [
        ("growth", "Vec/String doubling growth, 16 B-128 KiB, all kept", growth_scale),
        ("json", "serde_json history, docs of 10-200 KiB, compaction", json_scale),
        ("streamed", "streamed messages, 200 B-4 KiB by push_str, all kept", streamed_scale),
        ("boxes", "worst case: 1 M Box<u64> (8 B blocks), all kept", tiny_scale),
        ("short", "worst case: 1 M 16-byte strings, all kept", tiny_scale),
    ] {
        let [raw, tracked, ratios] =
            common::switch::paired(runs, |tracked| run(name, scale, tracked) as f64);
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        // The header allocator for comparison, against the median raw run: a design that
        // keeps the owner in a header (tracking-allocator's) pays it on every block.
        let header = median((0..runs).map(|_| run_header(name, scale) as f64).collect());
        let raw = median(raw);
        println!(
            "| {:<52} | {:>12.1} | {:>12.1} | {:>6.3}x | {:>12.3}x |",
            label,
            raw / 1024.0,
            median(tracked) / 1024.0,
            median(ratios),
            header / raw
        );
    }
}
