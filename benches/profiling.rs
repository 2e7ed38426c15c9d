//! What jemalloc's heap profiler costs when it is compiled in but not sampling, the way the
//! `jemalloc-profiling` feature leaves it (`prof:true,prof_active:false`), and when sampling.
//!
//! The cost is a property of the build, so it is measured across builds: run this bench once
//! without and once with the feature and compare the absolute figures (medians over rounds of
//! ns per operation), alternating the runs to cancel drift; `only-raw` runs the pairs workload
//! alone for `valgrind --tool=callgrind`, whose instruction counts do not drift at all.
//!
//! ```text
//! cargo bench --bench profiling --features enabled
//! cargo bench --bench profiling --features enabled,jemalloc-profiling
//! cargo bench --bench profiling --features enabled,jemalloc-profiling -- active
//! ```

mod common;
use common::{median, small_sizes};

use heapscope::profiling::{self, ProfilingStatus};
use heapscope::Tracked;
use std::alloc::{GlobalAlloc, Layout};
use std::time::Instant;
use tikv_jemallocator::Jemalloc;

heapscope::install!();

static RAW: Jemalloc = Jemalloc;
static TRACKED: Tracked<Jemalloc> = Tracked::new(Jemalloc);

/// Allocate then free at once.
fn pairs<A: GlobalAlloc>(a: &A, sizes: &[usize], ops: usize) {
    for i in 0..ops {
        let layout = Layout::from_size_align(sizes[i % sizes.len()], 8).unwrap();
        // SAFETY: non-zero size; freed below with the same layout.
        let p = unsafe { a.alloc(layout) };
        // SAFETY: `p` has at least one byte (null would have been a bench failure below).
        unsafe { std::ptr::write_volatile(p, i as u8) };
        // SAFETY: allocated above by `a` with `layout`.
        unsafe { a.dealloc(p, layout) };
    }
}

/// 64 blocks live, a new one replacing the oldest.
fn churn<A: GlobalAlloc>(a: &A, sizes: &[usize], ops: usize) {
    let mut ring = [(std::ptr::null_mut::<u8>(), 0usize); 64];
    for i in 0..ops {
        let slot = &mut ring[i % 64];
        if !slot.0.is_null() {
            // SAFETY: allocated below by `a` with this size and align 8.
            unsafe { a.dealloc(slot.0, Layout::from_size_align_unchecked(slot.1, 8)) };
        }
        let size = sizes[i % sizes.len()];
        // SAFETY: non-zero size, valid alignment.
        let p = unsafe { a.alloc(Layout::from_size_align_unchecked(size, 8)) };
        // SAFETY: at least one byte.
        unsafe { std::ptr::write_volatile(p, i as u8) };
        *slot = (p, size);
    }
    for (p, size) in ring {
        if !p.is_null() {
            // SAFETY: as above.
            unsafe { a.dealloc(p, Layout::from_size_align_unchecked(size, 8)) };
        }
    }
}

/// A `Vec<String>` of 1000 strings of 20–120 bytes, built and dropped: std collections.
fn strings(ops: usize) {
    for round in 0..ops / 1000 {
        let v: Vec<String> = (0..1000).map(|i| "x".repeat(20 + (i * 7 + round) % 100)).collect();
        std::hint::black_box(&v);
    }
}

fn measure(name: &str, rounds: usize, ops: usize, f: &mut dyn FnMut()) {
    let per_op: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    println!("| {name:<40} | {:>8.2} |", median(per_op));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes = small_sizes();
    if args.iter().any(|a| a == "active") {
        profiling::activate().expect("`active` needs the jemalloc-profiling feature");
    }
    // `only-raw [N]`: N (default 3 000 000) pairs alone, for callgrind; run it with two N to
    // take start-up out of the per-pair figure.
    if let Some(at) = args.iter().position(|a| a == "only-raw") {
        let n = args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(3_000_000);
        pairs(&RAW, &sizes, n);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us without: smoke only.
    let smoke = !args.iter().any(|a| a == "--bench");
    let (rounds, ops) = if smoke { (1, 2_000) } else { (31, 1_000_000) };
    let status = match profiling::status() {
        ProfilingStatus::Jemalloc { active, sample_interval_bytes, .. } => {
            format!("jemalloc profiling compiled in, active = {active}, interval = {sample_interval_bytes} B")
        }
        ProfilingStatus::Unavailable { reason, .. } => format!("no jemalloc profiling ({reason})"),
        other => format!("{other:?}"),
    };
    println!("heapscope profiling cost: {status}; rounds = {rounds}, ops/round = {ops}");
    println!("| {:<40} | {:>8} |", "workload", "ns/op");
    println!("|{:-<42}|{:-<10}|", "", "");
    measure("raw jemalloc: alloc+free pairs 16-256 B", rounds, ops, &mut || {
        pairs(&RAW, &sizes, ops)
    });
    measure("raw jemalloc: churn 16-256 B", rounds, ops, &mut || churn(&RAW, &sizes, ops));
    measure("tracked: churn 16-256 B", rounds, ops, &mut || churn(&TRACKED, &sizes, ops));
    measure("global allocator: Vec<String> build+drop", rounds, ops, &mut || strings(ops));
}
