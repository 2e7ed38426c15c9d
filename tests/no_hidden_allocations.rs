//! RTF-2: the wrapper's bookkeeping never allocates. `Tracked` wraps a counting mock inner
//! allocator (`System` underneath, counters in thread-locals and atomics, never allocating):
//! every call through the global allocator must reach the inner allocator exactly once, and
//! reading `global_stats` must not reach it at all.
//!
//! Runs without libtest's harness (`harness = false` in Cargo.toml), so no other thread of
//! the test runner allocates; counts are per thread anyway, and any inner call made while
//! another inner call is in progress on the same thread (a nested allocation) is counted
//! separately.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[global_allocator]
static A: heapscope::Tracked<Counting> = heapscope::Tracked::new(Counting);

struct Counting;

/// Inner calls by kind, on this thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Calls {
    alloc: u64,
    alloc_zeroed: u64,
    dealloc: u64,
    realloc: u64,
}

thread_local! {
    // `const`-initialised, no destructor: usable from inside the allocator at any time.
    static ALLOC: Cell<u64> = const { Cell::new(0) };
    static ALLOC_ZEROED: Cell<u64> = const { Cell::new(0) };
    static DEALLOC: Cell<u64> = const { Cell::new(0) };
    static REALLOC: Cell<u64> = const { Cell::new(0) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Inner calls made while another inner call was running on the same thread: 0 unless the
/// inner allocator itself were re-entered.
static NESTED: AtomicUsize = AtomicUsize::new(0);

fn bump(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    let _ = counter.try_with(|c| c.set(c.get() + 1));
}

/// Marks an inner call in progress on this thread.
struct InInner;

impl InInner {
    fn enter() -> InInner {
        let _ = DEPTH.try_with(|d| {
            if d.get() > 0 {
                NESTED.fetch_add(1, Relaxed);
            }
            d.set(d.get() + 1);
        });
        InInner
    }
}

impl Drop for InInner {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _in = InInner::enter();
        bump(&ALLOC);
        // SAFETY: caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _in = InInner::enter();
        bump(&ALLOC_ZEROED);
        // SAFETY: caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _in = InInner::enter();
        bump(&DEALLOC);
        // SAFETY: caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _in = InInner::enter();
        bump(&REALLOC);
        // SAFETY: caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn calls() -> Calls {
    Calls {
        alloc: ALLOC.with(Cell::get),
        alloc_zeroed: ALLOC_ZEROED.with(Cell::get),
        dealloc: DEALLOC.with(Cell::get),
        realloc: REALLOC.with(Cell::get),
    }
}

fn since(before: Calls) -> Calls {
    let now = calls();
    Calls {
        alloc: now.alloc - before.alloc,
        alloc_zeroed: now.alloc_zeroed - before.alloc_zeroed,
        dealloc: now.dealloc - before.dealloc,
        realloc: now.realloc - before.realloc,
    }
}

/// Trailer sizes (24, 100, 1000; 16 and 64 one class up) and side-table sizes (512, 4096).
const SIZES: [usize; 7] = [24, 16, 100, 64, 512, 1000, 4096];
const N: usize = 10_000;

/// The first allocation of a thread claims a counter slot; the owner is registered (which
/// allocates under heapscope's internal owner) before any counting starts.
fn warm_up() {
    drop(black_box(Box::new(black_box(1u64))));
    assert!(heapscope::is_tracking(), "the Tracked mock must be the global allocator");
}

fn alloc_and_free_call_the_inner_allocator_exactly_once_each() {
    warm_up();
    let owner = heapscope::Owner::named("nha_owner");
    let layouts: Vec<Layout> =
        SIZES.iter().map(|&s| Layout::from_size_align(s, 8).unwrap()).collect();
    let before = calls();
    let nested = NESTED.load(Relaxed);
    {
        let _scope = owner.enter();
        for i in 0..N {
            let layout = layouts[i % layouts.len()];
            // Switching scopes costs no allocation either: every other block is allocated
            // inside a nested scope of the same owner.
            let _inner = (i % 2 == 0).then(|| owner.enter());
            // SAFETY: non-zero size.
            let p = unsafe { std::alloc::alloc(layout) };
            assert!(!p.is_null());
            // SAFETY: `p` is live with `layout`.
            unsafe {
                p.write_volatile(i as u8);
                std::alloc::dealloc(black_box(p), layout);
            }
        }
    }
    let got = since(before);
    assert_eq!(NESTED.load(Relaxed), nested, "nested inner calls");
    assert_eq!(
        got,
        Calls { alloc: N as u64, alloc_zeroed: 0, dealloc: N as u64, realloc: 0 },
        "{N} allocations and frees"
    );
    // And they were all counted, by hand: N / 6 rounds of the six sizes.
    let s = owner.stats();
    let per_round: u64 = SIZES.iter().map(|&s| s as u64).sum();
    let rounds = (N / SIZES.len()) as u64;
    let rest: u64 = SIZES[..N % SIZES.len()].iter().map(|&s| s as u64).sum();
    assert_eq!(
        (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks),
        (0, 0, rounds * per_round + rest, N as u64)
    );
}

fn zeroed_and_realloc_call_the_inner_allocator_exactly_once_each() {
    warm_up();
    let owner = heapscope::Owner::named("nha_realloc");
    // A chain across trailer and side-table sizes, both ways.
    let chain = [24usize, 64, 100, 4096, 1000, 16, 512, 5000, 8192, 24];
    let before = calls();
    let nested = NESTED.load(Relaxed);
    const ROUNDS: usize = 1000;
    {
        let _scope = owner.enter();
        for _ in 0..ROUNDS {
            let mut cur = chain[0];
            // SAFETY: non-zero size.
            let mut p =
                unsafe { std::alloc::alloc_zeroed(Layout::from_size_align(cur, 8).unwrap()) };
            assert!(!p.is_null());
            for &next in &chain[1..] {
                // SAFETY: `p` is live with `(cur, 8)`; `next` is non-zero.
                p = unsafe {
                    std::alloc::realloc(p, Layout::from_size_align(cur, 8).unwrap(), next)
                };
                assert!(!p.is_null());
                cur = next;
            }
            // SAFETY: `p` is live with `(cur, 8)`.
            unsafe { std::alloc::dealloc(black_box(p), Layout::from_size_align(cur, 8).unwrap()) };
        }
    }
    let got = since(before);
    assert_eq!(NESTED.load(Relaxed), nested, "nested inner calls");
    let r = ROUNDS as u64;
    let steps = (chain.len() - 1) as u64;
    assert_eq!(got, Calls { alloc: 0, alloc_zeroed: r, dealloc: r, realloc: r * steps });
    let s = owner.stats();
    let per_round: u64 = chain.iter().map(|&s| s as u64).sum();
    assert_eq!(
        (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks),
        (0, 0, r * per_round, r * chain.len() as u64)
    );
}

fn reading_global_stats_never_allocates() {
    warm_up();
    let keep = black_box(vec![0u8; 4096]);
    let before = calls();
    let nested = NESTED.load(Relaxed);
    let mut last = heapscope::global_stats();
    for _ in 0..1000 {
        let s = black_box(heapscope::global_stats());
        assert!(s.total_bytes >= last.total_bytes && s.peak_bytes >= s.live_bytes);
        last = s;
        // Cached once true, so no probe allocation either.
        assert!(black_box(heapscope::is_tracking()));
        black_box(heapscope::Owner::current());
    }
    assert_eq!(since(before), Calls::default(), "global_stats, is_tracking and Owner::current");
    assert_eq!(NESTED.load(Relaxed), nested);
    assert!(last.live_bytes >= 4096);
    drop(keep);
}

fn a_new_thread_calls_the_inner_allocator_exactly_once_each() {
    warm_up();
    let owner = heapscope::Owner::named("nha_thread");
    let nested = NESTED.load(Relaxed);
    let worker = std::thread::spawn(move || {
        // The thread's first call through the wrapper claims its counter slot. That may
        // already have happened in std's thread start (which frees a block on some
        // versions); either way no call reaches the inner allocator twice, nor nested.
        let before = calls();
        let first = owner.in_scope(|| black_box(Box::new(black_box([7u8; 100]))));
        let second = owner.in_scope(|| black_box(Box::new(black_box([7u8; 64]))));
        drop(black_box(first));
        drop(black_box(second));
        (before, since(before))
    });
    let (before, got) = worker.join().expect("worker panicked");
    assert_eq!(got, Calls { alloc: 2, alloc_zeroed: 0, dealloc: 2, realloc: 0 }, "{before:?}");
    assert_eq!(NESTED.load(Relaxed), nested, "nested inner calls");
    let s = owner.stats();
    assert_eq!((s.live_bytes, s.total_bytes, s.total_blocks), (0, 164, 2));
}

fn main() {
    let cases: [(&str, fn()); 4] = [
        (
            "alloc_and_free_call_the_inner_allocator_exactly_once_each",
            alloc_and_free_call_the_inner_allocator_exactly_once_each,
        ),
        (
            "zeroed_and_realloc_call_the_inner_allocator_exactly_once_each",
            zeroed_and_realloc_call_the_inner_allocator_exactly_once_each,
        ),
        ("reading_global_stats_never_allocates", reading_global_stats_never_allocates),
        (
            "a_new_thread_calls_the_inner_allocator_exactly_once_each",
            a_new_thread_calls_the_inner_allocator_exactly_once_each,
        ),
    ];
    let mut failed = 0;
    for (name, case) in cases {
        match panic::catch_unwind(AssertUnwindSafe(case)) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("no_hidden_allocations: {} passed, {failed} failed", cases.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
