//! What each ingredient of an owner-attributing wrapper costs on the loops of `overhead`,
//! measured by building the design up one ingredient at a time (reduced copies written here,
//! for measuring only) and running heapscope's own `Tracked<Jemalloc>` beside them:
//!
//! 1. `+2 B`: ask jemalloc for `size + 2`, nothing else;
//! 2. `trailer`: write the thread's owner id into those 2 bytes, read it back at the free;
//! 3. `counters`: four per-thread single-writer counters (allocated and freed bytes and
//!    blocks) of that owner: the "exact design" the budget of issue #2 was set from;
//! 4. `peaks`: plus heapscope's peak bookkeeping (per-owner pending bytes, compared with a
//!    headroom on allocation and with a floor on free);
//! 5. `derived`: counters plus a peak check on allocation only, against allocated-minus-freed
//!    bytes (no work on free beyond the counters; not what heapscope does, see README);
//! 6. `both`: `derived` plus the same check on free (allocated-minus-freed bytes against a
//!    floor): what `peaks` checks, with no `pending` counter written by both paths;
//!
//! and `heapscope`: `Tracked<Jemalloc>` itself (peaks, children, the side-table decision).
//! Every column is a ratio to raw jemalloc, the median over rounds that run all allocators in
//! turn (order alternating), then the median over 3 fresh processes.
//!
//! `cargo bench --bench ingredients --features enabled` (`-- quick` for a short run).

mod common;
use common::columns::{self, Plan};
use common::loops::{churn, filled, pairs, FILLED_SEED};
use common::small_sizes;

use heapscope::{Owner, Tracked};
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use tikv_jemallocator::Jemalloc;

heapscope::install!();

static TRACKED: Tracked<Jemalloc> = Tracked::new(Jemalloc);

/// One owner's counters in the (single) thread's slot.
struct Counts {
    alloc_bytes: AtomicU64,
    alloc_blocks: AtomicU64,
    free_bytes: AtomicU64,
    free_blocks: AtomicU64,
    pending: AtomicI64,
    headroom: AtomicI64,
    /// `both`'s free-side limit on allocated-minus-freed bytes.
    floor: AtomicI64,
}

const OWNERS: usize = 4096;
const OWNER: u16 = 7;
/// The free-side floor of `peaks` (heapscope publishes below -64 KiB).
const FLOOR: i64 = -64 * 1024;

/// The slot of the thread that runs the workloads (the bench runs them on one thread only).
static SLOT: [Counts; OWNERS] = [const {
    Counts {
        alloc_bytes: AtomicU64::new(0),
        alloc_blocks: AtomicU64::new(0),
        free_bytes: AtomicU64::new(0),
        free_blocks: AtomicU64::new(0),
        pending: AtomicI64::new(0),
        headroom: AtomicI64::new(i64::MAX),
        floor: AtomicI64::new(i64::MIN),
    }
}; OWNERS];

thread_local! {
    // As heapscope keeps them: the owner, the current owner's counters and the slot's base,
    // null until the thread has a slot.
    static CURRENT_OWNER: Cell<u16> = const { Cell::new(OWNER) };
    static CURRENT: Cell<*const Counts> = const { Cell::new(std::ptr::null()) };
    static BASE: Cell<*const Counts> = const { Cell::new(std::ptr::null()) };
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

/// Stands for the rare path (a peak to raise, bytes to publish); never taken here.
#[cold]
#[inline(never)]
fn rare() {
    black_box(());
}

/// The design up to ingredient `STEP` (see the module docs).
struct Reduced<const STEP: u8>;

// SAFETY: every block is handed to jemalloc with `(size + 2, align)`, computed the same way
// on both paths, so jemalloc gets back the layout it allocated with; the 2 bytes past the
// caller's size are ours.
unsafe impl<const STEP: u8> GlobalAlloc for Reduced<STEP> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        // SAFETY: the workloads' sizes are at most 256 B: `size + 2` keeps the Layout valid.
        let ptr =
            unsafe { Jemalloc.alloc(Layout::from_size_align_unchecked(size + 2, layout.align())) };
        if STEP < 2 || ptr.is_null() {
            return ptr;
        }
        // SAFETY: the block has `size + 2` bytes.
        unsafe { ptr.add(size).cast::<u16>().write_unaligned(CURRENT_OWNER.with(Cell::get)) };
        if STEP < 3 {
            return ptr;
        }
        let c = CURRENT.with(Cell::get);
        if c.is_null() {
            rare();
            return ptr;
        }
        // SAFETY: non-null `CURRENT` points into `SLOT` (set in `main`).
        let c = unsafe { &*c };
        if STEP == 5 || STEP == 6 {
            let allocated = c.alloc_bytes.load(Relaxed).wrapping_add(size as u64);
            c.alloc_bytes.store(allocated, Relaxed);
            bump(&c.alloc_blocks, 1);
            let live = allocated.wrapping_sub(c.free_bytes.load(Relaxed)) as i64;
            if live > c.headroom.load(Relaxed) {
                rare();
            }
            return ptr;
        }
        bump(&c.alloc_bytes, size as u64);
        bump(&c.alloc_blocks, 1);
        if STEP == 4 {
            let pending = c.pending.load(Relaxed).wrapping_add(size as i64);
            c.pending.store(pending, Relaxed);
            if pending > c.headroom.load(Relaxed) {
                rare();
            }
        }
        ptr
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let size = layout.size();
        let owner = if STEP >= 2 {
            // SAFETY: allocated by `alloc` above with `size + 2` bytes, the owner written last.
            unsafe { ptr.add(size).cast::<u16>().read_unaligned() }
        } else {
            0
        };
        // SAFETY: the layout jemalloc allocated this block with.
        unsafe {
            Jemalloc.dealloc(ptr, Layout::from_size_align_unchecked(size + 2, layout.align()))
        };
        if STEP == 2 {
            black_box(owner);
        }
        if STEP < 3 {
            return;
        }
        let base = BASE.with(Cell::get);
        if base.is_null() {
            rare();
            return;
        }
        // SAFETY: non-null `BASE` is `SLOT`'s start, and the index is masked into it.
        let c = unsafe { &*base.add(owner as usize & (OWNERS - 1)) };
        if STEP == 6 {
            let freed = c.free_bytes.load(Relaxed).wrapping_add(size as u64);
            c.free_bytes.store(freed, Relaxed);
            bump(&c.free_blocks, 1);
            let live = c.alloc_bytes.load(Relaxed).wrapping_sub(freed) as i64;
            if live < c.floor.load(Relaxed) {
                rare();
            }
            return;
        }
        bump(&c.free_bytes, size as u64);
        bump(&c.free_blocks, 1);
        if STEP == 4 {
            let pending = c.pending.load(Relaxed).wrapping_sub(size as i64);
            c.pending.store(pending, Relaxed);
            if pending < FLOOR {
                rare();
            }
        }
    }
}

const NAMES: [&str; 7] = ["+2 B", "trailer", "counters", "peaks", "derived", "both", "heapscope"];

/// Runs `workload` with allocator number `which`: 0 is raw jemalloc, then [`NAMES`] in order.
/// Returns the number of operations.
fn run(which: usize, workload: &str, sizes: &[usize], ops: usize) -> usize {
    fn with<A: GlobalAlloc>(a: &A, workload: &str, sizes: &[usize], ops: usize) {
        match workload {
            "pairs" => pairs(a, sizes, ops),
            "churn" => churn(a, sizes, ops),
            _ => filled(a, ops, FILLED_SEED),
        }
    }
    match which {
        0 => with(&Jemalloc, workload, sizes, ops),
        1 => with(&Reduced::<1>, workload, sizes, ops),
        2 => with(&Reduced::<2>, workload, sizes, ops),
        3 => with(&Reduced::<3>, workload, sizes, ops),
        4 => with(&Reduced::<4>, workload, sizes, ops),
        5 => with(&Reduced::<5>, workload, sizes, ops),
        6 => with(&Reduced::<6>, workload, sizes, ops),
        _ => with(&TRACKED, workload, sizes, ops),
    }
    ops
}

const WORKLOADS: [(&str, &str); 3] = [
    ("pairs", "alloc+free pairs 16-256 B"),
    ("churn", "churn 16-256 B, 64 live"),
    ("filled", "blocks filled, 16-256 B, 1024 live"),
];

fn main() {
    let plan = Plan::from_args();
    if !plan.is_child() {
        return columns::parent("ingredients", &NAMES, &WORKLOADS, &plan);
    }
    BASE.with(|b| b.set(SLOT.as_ptr()));
    CURRENT.with(|c| c.set(&SLOT[OWNER as usize]));
    let sizes = small_sizes();
    let _scope = Owner::named("bench").enter();
    columns::child(NAMES.len() + 1, &WORKLOADS, plan.rounds, |which, workload| {
        run(which, workload, &sizes, plan.ops)
    });
}
