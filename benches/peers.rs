//! heapscope beside the allocator wrappers it is meant to beat, on the same loops as
//! `overhead`, in one process: each is an instance over jemalloc (dhat's `Alloc` always
//! wraps the system allocator) whose `GlobalAlloc` methods the loops call directly, timed
//! against raw jemalloc in the same round (see `common::columns`).
//!
//! - `heapscope`: `Tracked<Jemalloc>`, allocating in a named owner;
//! - `cap`: `cap::Cap` with no limit (one atomic counter of allocated bytes);
//! - `stats_alloc`: `stats_alloc::StatsAlloc` (atomic counts and bytes of allocations and
//!   frees);
//! - `tracking`: `tracking-allocator`'s `Allocator`, allocating in a registered group, with a
//!   tracker that keeps each group's live bytes in an atomic (`common::peer_tracker`);
//! - `dhat`: `dhat::Alloc` with a heap profiler running in testing mode (no file written).
//!
//! re_memory is not here: it brings about 170 crates into the build. The figures of issue #2
//! (3.8× for it on a churn loop) stand for it.
//!
//! `cargo bench --bench peers --features enabled,dhat` (`-- quick` for a short run).

mod common;
use common::columns::{self, Plan};
use common::loops::{churn, filled, pairs, FILLED_SEED};
use common::small_sizes;

use heapscope::{Owner, Tracked};
use std::alloc::GlobalAlloc;
use tikv_jemallocator::Jemalloc;

heapscope::install!();

static TRACKED: Tracked<Jemalloc> = Tracked::new(Jemalloc);
static CAP: cap::Cap<Jemalloc> = cap::Cap::new(Jemalloc, usize::MAX);
static TRACKING: tracking_allocator::Allocator<Jemalloc> =
    tracking_allocator::Allocator::from_allocator(Jemalloc);

const NAMES: [&str; 5] = ["heapscope", "cap", "stats_alloc", "tracking", "dhat"];

const WORKLOADS: [(&str, &str); 5] = [
    ("pairs", "alloc+free pairs 16-256 B"),
    ("churn", "churn 16-256 B, 64 live"),
    ("filled", "blocks filled, 16-256 B, 1024 live"),
    ("churn2", "churn, 2 threads"),
    ("filled2", "blocks filled, 2 threads"),
];

/// dhat records a backtrace per allocation: it runs a fiftieth of the operations (the
/// ratio is per operation).
const DHAT_SHARE: usize = 50;

fn main() {
    let plan = Plan::from_args();
    if !plan.is_child() {
        return columns::parent("peers", &NAMES, &WORKLOADS, &plan);
    }
    let sizes = small_sizes();
    let stats = stats_alloc::StatsAlloc::new(Jemalloc);
    common::peer_tracker::install();
    let _profiler = dhat::Profiler::builder().testing().build();
    let _owner = Owner::named("bench").enter();

    columns::child(NAMES.len() + 1, &WORKLOADS, plan.rounds, |which, workload| {
        fn with<A: GlobalAlloc + Sync>(
            a: &A,
            workload: &str,
            sizes: &[usize],
            ops: usize,
        ) -> usize {
            match workload {
                "pairs" => pairs(a, sizes, ops),
                "churn" => churn(a, sizes, ops),
                "churn2" => on_two_threads(|_| churn(a, sizes, ops)),
                "filled2" => on_two_threads(|flip| filled(a, ops, FILLED_SEED ^ flip)),
                _ => filled(a, ops, FILLED_SEED),
            }
            ops
        }
        let ops = plan.ops;
        match which {
            0 => with(&Jemalloc, workload, &sizes, ops),
            1 => with(&TRACKED, workload, &sizes, ops),
            2 => with(&CAP, workload, &sizes, ops),
            3 => with(&stats, workload, &sizes, ops),
            4 => with(&TRACKING, workload, &sizes, ops),
            _ => with(&dhat::Alloc, workload, &sizes, ops / DHAT_SHARE),
        }
    });
}

/// Runs `work` on this thread and on a second one at once, as `overhead`'s two-thread rows do
/// (each thread does the same number of operations, the second with `0xFFFF` for a seed to
/// flip; the time per operation is that of one thread). The second thread allocates in the
/// same heapscope owner and in an allocation group of its own, as a worker would.
fn on_two_threads(work: impl Fn(u64) + Sync) {
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            common::peer_tracker::enter_new_group();
            let _owner = Owner::named("bench").enter();
            start.wait();
            work(0xFFFF);
        });
        start.wait();
        work(0);
    });
}
