//! What a `Sampler` keeps of heapscope's own memory per sample, with 10, 1000 and 4000
//! top-level owners: the ring while it runs, and a `Timeline` built from it.
//!
//! The sampler's allocations are charged to `heapscope.internal`, so its live bytes are read
//! before the sampler starts, once the ring is full (the smallest of 30 readings a few
//! milliseconds apart, so that a sample being taken at that moment is not counted), and again
//! while a `Timeline` of the ring is held. Each owner count runs in a fresh process (the
//! registry keeps every owner registered), the bench re-running itself as a child.
//!
//! `cargo bench --bench sampler_memory --features enabled` (a short smoke run without
//! `--bench`).

use heapscope::{Owner, Sampler};
use std::time::Duration;

heapscope::install!();

fn internal_live_bytes() -> u64 {
    Owner::named("heapscope.internal").stats().live_bytes
}

/// heapscope.internal's live bytes, the smallest of `n` readings 3 ms apart.
fn quiet_internal_bytes(n: usize) -> u64 {
    (0..n)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(3));
            internal_live_bytes()
        })
        .min()
        .unwrap_or(0)
}

/// One owner count, in this process: prints a table row.
fn child(owners: usize, capacity: usize) {
    let handles: Vec<Owner> =
        (0..owners).map(|i| Owner::named(format!("sampler_bench_{i:04}"))).collect();
    let kept: Vec<Vec<u8>> = handles
        .iter()
        .enumerate()
        .map(|(i, o)| o.in_scope(|| vec![1u8; 64 * (1 + i % 50)]))
        .collect();
    let before = quiet_internal_bytes(30);
    let sampler = Sampler::start(Duration::from_millis(10), capacity).expect("sampler");
    while sampler.timeline().dropped_samples == 0 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let ring = quiet_internal_bytes(30);
    let timeline = sampler.timeline();
    let with_timeline = quiet_internal_bytes(30);
    let listed = timeline.samples.last().map_or(0, |s| s.owners.len());
    drop(timeline);
    drop(sampler.stop());
    let per_sample = |bytes: u64| bytes as f64 / capacity as f64;
    let ring_per_sample = per_sample(ring.saturating_sub(before));
    println!(
        "| {owners:>6} | {listed:>6} | {:>12.0} | {:>12.0} | {:>14.1} |",
        ring_per_sample,
        per_sample(with_timeline.saturating_sub(ring)),
        ring_per_sample * heapscope::MAX_SAMPLES as f64 / (1 << 20) as f64,
    );
    drop(kept);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let capacity = if full { 200 } else { 20 };
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let owners = args[i + 1].parse().expect("owner count");
        child(owners, capacity);
        return;
    }
    println!(
        "heapscope's own memory per sample (heapscope.internal), ring of {capacity} samples every 10 ms"
    );
    println!("| owners | listed | ring B/sample | Timeline B/sample | 100 000-sample ring MiB |");
    println!("|--------|--------|---------------|-------------------|-------------------------|");
    let exe = std::env::current_exe().expect("own path");
    for owners in [10, 1000, 4000] {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--child", &owners.to_string()]);
        if full {
            cmd.arg("--bench");
        }
        let status = cmd.status().expect("run the child");
        assert!(status.success(), "heapscope: the child for {owners} owners failed");
    }
}
