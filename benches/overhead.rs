//! CPU overhead of `Tracked<A>` against `A` itself, side by side in one process.
//!
//! Both allocators are used as instances through their `GlobalAlloc` methods, so they share
//! one binary, one jemalloc and one machine state. Each workload runs in interleaved rounds
//! (raw, tracked, tracked, raw, …); the figure reported is the median over rounds of the
//! per-round ratio `tracked / raw`, which cancels most of the drift of a shared 2-core
//! machine. Build with and without `--features enabled` to see the disabled pass-through.
//!
//! `cargo bench --bench overhead --features enabled` (add `-- quick` for a short run): the
//! table runs in 5 fresh processes (3 when quick), and each figure is the median over them.

mod common;
use common::loops::{churn, churn_live, filled, pairs, FILLED_SEED};
use common::{median, small_sizes};

use heapscope::{Owner, Tracked};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;
use tikv_jemallocator::Jemalloc;

heapscope::install!();

static TRACKED_JE: Tracked<Jemalloc> = Tracked::new(Jemalloc);
static RAW_JE: Jemalloc = Jemalloc;
static TRACKED_SYS: Tracked<System> = Tracked::new(System);
static RAW_SYS: System = System;

/// Sizes that sit exactly on jemalloc classes (no slack: one class up).
fn exact_sizes() -> Vec<usize> {
    [16usize, 32, 48, 64, 80, 96, 128, 160, 192, 256].iter().copied().cycle().take(4096).collect()
}

/// Exact classes from 320 B to 4 KiB: owners in the side table.
fn side_table_sizes() -> Vec<usize> {
    [320usize, 512, 384, 1024, 640, 4096, 768, 2048].iter().copied().cycle().take(4096).collect()
}

/// 8- and 16-byte requests (`Box<u64>`, small `Rc`s, short strings): exact classes, which go
/// one class up, in a fixed irregular order.
fn tiny_sizes() -> Vec<usize> {
    [8usize, 16, 16, 8, 16, 8, 8, 16, 8, 8, 16].iter().copied().cycle().take(4096).collect()
}

/// [`filled`] on two threads at once, each with its own sizes.
fn filled_2t<A: GlobalAlloc + Sync>(a: &'static A, ops: usize) {
    let barrier = Arc::new(Barrier::new(2));
    let other = {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            filled(a, ops, FILLED_SEED ^ 0xFFFF);
        })
    };
    barrier.wait();
    filled(a, ops, FILLED_SEED);
    other.join().expect("filled thread");
}

/// Churn in chunks of 64 operations, entering the next of `owners` for each chunk. The raw
/// column passes no owners: it runs the same chunks without the scopes, whose cost is
/// tracking's (with tracking compiled out a scope is free).
fn churn_owners<A: GlobalAlloc>(a: &A, sizes: &[usize], ops: usize, owners: &[Owner]) {
    let chunk = 64;
    for (n, start) in (0..ops).step_by(chunk).enumerate() {
        let _scope = owners.get(n % owners.len().max(1)).map(|o| o.enter());
        churn(a, &sizes[(start % sizes.len())..], chunk.min(ops - start));
    }
}

/// `Vec` doubling: realloc from 8 bytes to 64 KiB, then free.
fn growth<A: GlobalAlloc>(a: &A, ops: usize) {
    let mut done = 0;
    while done < ops {
        let mut size = 8;
        // SAFETY: non-zero size.
        let mut p = unsafe { a.alloc(Layout::from_size_align_unchecked(size, 8)) };
        while size < 64 * 1024 {
            // SAFETY: p was allocated with (size, 8).
            p = unsafe { a.realloc(p, Layout::from_size_align_unchecked(size, 8), size * 2) };
            size *= 2;
            // SAFETY: p has `size` bytes.
            unsafe { p.add(size - 1).write_volatile(1) };
            done += 1;
        }
        // SAFETY: p was allocated with (size, 8).
        unsafe { a.dealloc(p, Layout::from_size_align_unchecked(size, 8)) };
    }
}

/// Two threads churning at once.
fn churn_2t<A: GlobalAlloc + Sync>(a: &'static A, sizes: &'static [usize], ops: usize) {
    let barrier = Arc::new(Barrier::new(2));
    let other = {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            churn(a, sizes, ops);
        })
    };
    barrier.wait();
    churn(a, sizes, ops);
    other.join().expect("churn thread");
}

/// One thread allocates batches, the other frees them. `TOUCH` says what the two threads do
/// with the blocks: [`UNTOUCHED`] nothing (raw jemalloc's free reads only its own metadata,
/// while the tracked free reads the trailer the other core wrote), [`WRITTEN`] the producer
/// writes every block whole before handing it over (a message written and dropped unread, as
/// a deferred-drop thread does), [`READ`] that and the consumer reads every block whole before
/// freeing it (a message written and read).
const UNTOUCHED: u8 = 0;
const WRITTEN: u8 = 1;
const READ: u8 = 2;

fn cross_free<A: GlobalAlloc + Sync, const TOUCH: u8>(
    a: &'static A,
    sizes: &'static [usize],
    ops: usize,
) {
    let handoff: Arc<Mutex<Vec<(usize, usize)>>> = Arc::new(Mutex::new(Vec::with_capacity(ops)));
    let producer = {
        let handoff = handoff.clone();
        std::thread::spawn(move || {
            let mut batch = Vec::with_capacity(256);
            for i in 0..ops {
                let size = sizes[i % sizes.len()];
                // SAFETY: non-zero size.
                let p = unsafe { a.alloc(Layout::from_size_align_unchecked(size, 8)) };
                if TOUCH != UNTOUCHED {
                    // SAFETY: `p` has `size` bytes.
                    unsafe { p.write_bytes(i as u8, size) };
                }
                batch.push((p as usize, size));
                if batch.len() == 256 {
                    handoff.lock().expect("handoff").append(&mut batch);
                }
            }
            handoff.lock().expect("handoff").append(&mut batch);
        })
    };
    let mut freed = 0;
    let mut mine = Vec::with_capacity(ops);
    while freed < ops {
        std::mem::swap(&mut mine, &mut *handoff.lock().expect("handoff"));
        for (p, size) in mine.drain(..) {
            if TOUCH == READ {
                // SAFETY: the producer wrote all `size` bytes before handing the block over
                // (the handoff's lock orders the two).
                let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, size) };
                std::hint::black_box(bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)));
            }
            // SAFETY: allocated by the producer with (size, 8).
            unsafe { a.dealloc(p as *mut u8, Layout::from_size_align_unchecked(size, 8)) };
            freed += 1;
        }
        std::hint::spin_loop();
    }
    producer.join().expect("producer");
}

fn ns_per_op(ops: usize, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / ops as f64
}

struct Row {
    name: String,
    raw_ns: f64,
    tracked_ns: f64,
    ratio: f64,
}

fn compare(
    name: &str,
    rounds: usize,
    ops: usize,
    raw: &mut dyn FnMut(),
    tracked: &mut dyn FnMut(),
) -> Row {
    raw();
    tracked();
    let (mut r, mut t, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = ns_per_op(ops, raw);
            (a, ns_per_op(ops, tracked))
        } else {
            let b = ns_per_op(ops, tracked);
            (ns_per_op(ops, raw), b)
        };
        r.push(a);
        t.push(b);
        ratios.push(b / a);
    }
    let row = Row {
        name: name.to_owned(),
        raw_ns: median(r),
        tracked_ns: median(t),
        ratio: median(ratios),
    };
    println!(
        "| {:<44} | {:>8.2} | {:>8.2} | {:>6.3}x |",
        row.name, row.raw_ns, row.tracked_ns, row.ratio
    );
    row
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    // `only-raw` / `only-tracked`: run one workload alone (3 × 1M operations), for `perf
    // stat` or callgrind. The workload is the pairs one unless another argument names it:
    // `churn`, `exact` (churn on exact classes of 16-256 B), `tiny` (8 and 16 B), `side` (exact
    // classes of 320 B-4 KiB, in the side table), `churn4k` (churn with 4096 blocks live),
    // `filled` (random sizes, each block filled, 1024 live), `child` (churn in a child owner),
    // `cross` (cross-thread frees), `crosswritten` (of blocks the producer wrote) or `crossread`
    // (of blocks the producer wrote and the consumer read).
    if let Some(which) = std::env::args().find(|a| a.starts_with("only-")) {
        let sizes: &'static [usize] = small_sizes().leak();
        let exact = exact_sizes();
        let workload =
            std::env::args().skip(1).find(|a| !a.starts_with('-') && !a.starts_with("only-"));
        let _scope = Owner::named("bench").enter();
        fn run<A: GlobalAlloc + Sync>(
            a: &'static A,
            workload: Option<&str>,
            sizes: &'static [usize],
            exact: &[usize],
        ) {
            match workload {
                Some("cross") => cross_free::<A, UNTOUCHED>(a, sizes, 1_000_000),
                Some("crosswritten") => cross_free::<A, WRITTEN>(a, sizes, 1_000_000),
                Some("crossread") => cross_free::<A, READ>(a, sizes, 1_000_000),
                Some("churn") => churn(a, sizes, 1_000_000),
                Some("exact") => churn(a, exact, 1_000_000),
                Some("tiny") => churn(a, &tiny_sizes(), 1_000_000),
                Some("side") => churn(a, &side_table_sizes(), 1_000_000),
                Some("churn4k") => churn_live::<A, 4096>(a, sizes, 1_000_000),
                Some("filled") => filled(a, 1_000_000, FILLED_SEED),
                Some("child") => {
                    // A `Retained` item's allocations: a child of a top-level owner.
                    let _item = Owner::named("bench").child("item").enter();
                    churn(a, sizes, 1_000_000)
                }
                _ => pairs(a, sizes, 1_000_000),
            }
        }
        for _ in 0..3 {
            if which == "only-raw" {
                run(&RAW_JE, workload.as_deref(), sizes, &exact)
            } else {
                run(&TRACKED_JE, workload.as_deref(), sizes, &exact)
            }
        }
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us with no such flag: smoke only.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (rounds, ops) = if smoke {
        (1, 2_000)
    } else if quick {
        (11, 200_000)
    } else {
        (31, 1_000_000)
    };
    if smoke || std::env::args().any(|a| a == "child") {
        return table(rounds, ops);
    }
    across_processes(if quick { 3 } else { 5 }, rounds, ops);
}

/// Runs the whole table in `runs` fresh processes, one after another, and prints each
/// workload's median over them, with the range of the per-process ratios. A process's
/// address-space layout (heap, stacks, thread-local blocks) moves with ASLR, and one process
/// in eight or so measured every workload 20-30 % off the others in both columns: one process
/// is one sample, not the answer.
fn across_processes(runs: usize, rounds: usize, ops: usize) {
    let exe = std::env::current_exe().expect("current exe");
    let mut args = vec!["--bench", "child"];
    if std::env::args().any(|a| a == "quick") {
        args.push("quick");
    }
    // Per workload, in table order: (raw ns, tracked ns, ratio) of every process.
    let mut rows: Vec<(String, Vec<[f64; 3]>)> = Vec::new();
    for _ in 0..runs {
        let out = std::process::Command::new(&exe).args(&args).output().expect("run child");
        assert!(out.status.success(), "child: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf8");
        for (i, line) in text.lines().filter(|l| l.ends_with("x |")).enumerate() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let number = |c: &str| c.trim_end_matches('x').parse::<f64>().expect("number");
            let values = [number(cells[2]), number(cells[3]), number(cells[4])];
            if rows.len() <= i {
                rows.push((cells[1].to_owned(), Vec::new()));
            }
            rows[i].1.push(values);
        }
    }
    println!(
        "heapscope overhead: tracking compiled in = {}, {runs} processes × (rounds = {rounds}, ops/round = {ops}), sizes seed 0x9E3779B97F4A7C15",
        cfg!(feature = "enabled")
    );
    println!(
        "| {:<44} | {:>8} | {:>8} | {:>7} | {:>13} |",
        "workload", "raw ns", "tracked", "ratio", "range"
    );
    println!("|{:-<46}|{:-<10}|{:-<10}|{:-<9}|{:-<15}|", "", "", "", "", "");
    for (name, samples) in rows {
        let column = |k: usize| median(samples.iter().map(|v| v[k]).collect());
        let (lo, hi) =
            samples.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v[2]), hi.max(v[2])));
        println!(
            "| {:<44} | {:>8.2} | {:>8.2} | {:>6.3}x | {:>5.2}x-{:.2}x |",
            name,
            column(0),
            column(1),
            column(2),
            lo,
            hi
        );
    }
}

/// The whole table in this process.
fn table(rounds: usize, ops: usize) {
    let sizes: &'static [usize] = Box::leak(small_sizes().into_boxed_slice());
    let exact: &'static [usize] = Box::leak(exact_sizes().into_boxed_slice());
    println!(
        "heapscope overhead: tracking compiled in = {}, rounds = {rounds}, ops/round = {ops}, sizes seed 0x9E3779B97F4A7C15",
        cfg!(feature = "enabled")
    );
    println!("| {:<44} | {:>8} | {:>8} | {:>7} |", "workload", "raw ns", "tracked", "ratio");
    println!("|{:-<46}|{:-<10}|{:-<10}|{:-<9}|", "", "", "", "");
    let root = Owner::named("bench");
    let _scope = root.enter();
    compare(
        "jemalloc: alloc+free pairs 16-256 B, 1 thread",
        rounds,
        ops,
        &mut || pairs(&RAW_JE, sizes, ops),
        &mut || pairs(&TRACKED_JE, sizes, ops),
    );
    compare(
        "jemalloc: churn 16-256 B, 1 thread",
        rounds,
        ops,
        &mut || churn(&RAW_JE, sizes, ops),
        &mut || churn(&TRACKED_JE, sizes, ops),
    );
    compare(
        "jemalloc: churn 16-256 B, 4096 live, 1 thread",
        rounds,
        ops,
        &mut || churn_live::<_, 4096>(&RAW_JE, sizes, ops),
        &mut || churn_live::<_, 4096>(&TRACKED_JE, sizes, ops),
    );
    compare(
        "jemalloc: churn exact classes, 1 thread",
        rounds,
        ops,
        &mut || churn(&RAW_JE, exact, ops),
        &mut || churn(&TRACKED_JE, exact, ops),
    );
    let tiny: &'static [usize] = Box::leak(tiny_sizes().into_boxed_slice());
    let large: &'static [usize] = Box::leak(side_table_sizes().into_boxed_slice());
    compare(
        "jemalloc: churn exact classes 320 B-4 KiB (side table)",
        rounds,
        ops,
        &mut || churn(&RAW_JE, large, ops),
        &mut || churn(&TRACKED_JE, large, ops),
    );
    compare(
        "jemalloc: churn 8 and 16 B",
        rounds,
        ops,
        &mut || churn(&RAW_JE, tiny, ops),
        &mut || churn(&TRACKED_JE, tiny, ops),
    );
    compare(
        "jemalloc: churn 16-256 B, 2 threads",
        rounds,
        ops,
        &mut || churn_2t(&RAW_JE, sizes, ops),
        &mut || churn_2t(&TRACKED_JE, sizes, ops),
    );
    compare(
        "jemalloc: blocks filled, 16-256 B, 1 thread",
        rounds,
        ops,
        &mut || filled(&RAW_JE, ops, FILLED_SEED),
        &mut || filled(&TRACKED_JE, ops, FILLED_SEED),
    );
    compare(
        "jemalloc: blocks filled, 16-256 B, 2 threads",
        rounds,
        ops,
        &mut || filled_2t(&RAW_JE, ops),
        &mut || filled_2t(&TRACKED_JE, ops),
    );
    compare(
        "jemalloc: cross-thread frees",
        rounds.min(11),
        ops,
        &mut || cross_free::<_, UNTOUCHED>(&RAW_JE, sizes, ops),
        &mut || cross_free::<_, UNTOUCHED>(&TRACKED_JE, sizes, ops),
    );
    compare(
        "jemalloc: cross-thread frees, written, unread",
        rounds.min(11),
        ops,
        &mut || cross_free::<_, WRITTEN>(&RAW_JE, sizes, ops),
        &mut || cross_free::<_, WRITTEN>(&TRACKED_JE, sizes, ops),
    );
    compare(
        "jemalloc: cross-thread frees, written and read",
        rounds.min(11),
        ops,
        &mut || cross_free::<_, READ>(&RAW_JE, sizes, ops),
        &mut || cross_free::<_, READ>(&TRACKED_JE, sizes, ops),
    );
    compare(
        "jemalloc: Vec doubling 8 B..64 KiB (realloc)",
        rounds,
        ops / 4,
        &mut || growth(&RAW_JE, ops / 4),
        &mut || growth(&TRACKED_JE, ops / 4),
    );
    for k in [1usize, 64, 4000] {
        let owners: Vec<Owner> = (0..k).map(|i| Owner::named(format!("bench_owner_{i}"))).collect();
        compare(
            &format!("jemalloc: churn, scope switch per 64 ops, {k} owners"),
            rounds,
            ops,
            &mut || churn_owners(&RAW_JE, sizes, ops, &[]),
            &mut || churn_owners(&TRACKED_JE, sizes, ops, &owners),
        );
    }
    {
        // What a `Retained` item's allocations pay: a child of a top-level owner.
        let _item = root.child("item").enter();
        compare(
            "jemalloc: churn in a child owner, depth 2",
            rounds,
            ops,
            &mut || churn(&RAW_JE, sizes, ops),
            &mut || churn(&TRACKED_JE, sizes, ops),
        );
    }
    let deep = root.child("a").child("b").child("c");
    {
        let _outer = root.enter();
        let _mid = root.child("a").enter();
        let _inner = deep.enter();
        compare(
            "jemalloc: churn in nested scopes, owner depth 4",
            rounds,
            ops,
            &mut || churn(&RAW_JE, sizes, ops),
            &mut || churn(&TRACKED_JE, sizes, ops),
        );
    }
    compare(
        "system: churn 16-256 B, 1 thread",
        rounds,
        ops,
        &mut || churn(&RAW_SYS, sizes, ops),
        &mut || churn(&TRACKED_SYS, sizes, ops),
    );
    compare(
        "system: churn 16-256 B, 2 threads",
        rounds,
        ops,
        &mut || churn_2t(&RAW_SYS, sizes, ops),
        &mut || churn_2t(&TRACKED_SYS, sizes, ops),
    );
}
