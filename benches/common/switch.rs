//! A global allocator fixed at a process's first allocation: raw jemalloc, `Tracked<Jemalloc>`
//! or, for comparison, tracking-allocator's `Allocator<Jemalloc>` (an 8-byte header per block)
//! or `cap::Cap<Jemalloc>` (one atomic counter), chosen by `HEAPSCOPE_BENCH_ALLOC` (`tracked`,
//! `header`, `cap`, anything else raw).
//! For the benches that compare whole programs in separate processes (`memory`, `agent`):
//! raw and tracked pay the same two predictable branches per call (see `on_mode`), and a block
//! never changes side.

use heapscope::Tracked;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use tikv_jemallocator::Jemalloc;

const RAW: u8 = 1;
const TRACKED: u8 = 2;
const HEADER: u8 = 3;
const CAP: u8 = 4;
static MODE: AtomicU8 = AtomicU8::new(0);
static TRACKED_JE: Tracked<Jemalloc> = Tracked::new(Jemalloc);
/// With no tracker installed it still writes its header into every block: its memory cost.
static HEADER_JE: tracking_allocator::Allocator<Jemalloc> =
    tracking_allocator::Allocator::from_allocator(Jemalloc);
static CAP_JE: cap::Cap<Jemalloc> = cap::Cap::new(Jemalloc, usize::MAX);

fn mode() -> u8 {
    let m = MODE.load(Relaxed);
    if m != 0 {
        return m;
    }
    // SAFETY: a NUL-terminated name; getenv does not allocate.
    let value = unsafe { libc::getenv(c"HEAPSCOPE_BENCH_ALLOC".as_ptr()) };
    // SAFETY: getenv returned null or a NUL-terminated string.
    let first = if value.is_null() { 0 } else { (unsafe { *value }) as u8 };
    let wanted = match first {
        b't' => TRACKED,
        b'h' => HEADER,
        b'c' => CAP,
        _ => RAW,
    };
    let _ = MODE.compare_exchange(0, wanted, Relaxed, Relaxed);
    MODE.load(Relaxed)
}

/// Raw jemalloc, `Tracked<Jemalloc>` or a peer, fixed for the life of the process.
pub struct Switch;

/// Calls `$method` on the allocator of this process. Raw jemalloc and `Tracked<Jemalloc>`, the
/// pair every ratio is taken between, are told apart by the same two compares (a compare
/// chain in match order would give one of them a branch more per call than the other); the
/// peers come after them.
macro_rules! on_mode {
    ($method:ident($($arg:expr),*)) => {
        match mode() {
            m if m <= TRACKED => {
                if m == TRACKED {
                    TRACKED_JE.$method($($arg),*)
                } else {
                    Jemalloc.$method($($arg),*)
                }
            }
            HEADER => HEADER_JE.$method($($arg),*),
            _ => CAP_JE.$method($($arg),*),
        }
    };
}

// SAFETY: every call goes to the one allocator chosen at the first call, for ever.
unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { on_mode!(alloc(l)) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { on_mode!(alloc_zeroed(l)) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { on_mode!(dealloc(p, l)) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { on_mode!(realloc(p, l, n)) }
    }
}

/// The child process's environment that selects `tracked` or raw jemalloc.
pub fn env_value(tracked: bool) -> &'static str {
    if tracked {
        "tracked"
    } else {
        "raw"
    }
}

/// Runs this bench again as `<exe> child <workload> <scale>` over raw jemalloc or
/// `Tracked<Jemalloc>`, and returns what the child printed.
pub fn run_child(workload: &str, scale: usize, tracked: bool) -> String {
    run_child_over(workload, scale, env_value(tracked))
}

/// [`run_child`] over the allocator `HEAPSCOPE_BENCH_ALLOC=alloc` selects (`header`: the
/// tracking-allocator crate's; `cap`: the cap crate's).
pub fn run_child_over(workload: &str, scale: usize, alloc: &str) -> String {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .args(["child", workload, &scale.to_string()])
        .env("HEAPSCOPE_BENCH_ALLOC", alloc)
        .output()
        .expect("run child");
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

/// Measures raw and tracked `pairs` times, alternating which of the two runs first (so that a
/// drift of the machine does not always favour one side); returns the raw values, the tracked
/// values and the ratio of each pair.
pub fn paired(pairs: usize, mut measure: impl FnMut(bool) -> f64) -> [Vec<f64>; 3] {
    let [mut raw, mut tracked, mut ratios] = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..pairs {
        let (r, t) = if i % 2 == 0 {
            let r = measure(false);
            (r, measure(true))
        } else {
            let t = measure(true);
            (measure(false), t)
        };
        raw.push(r);
        tracked.push(t);
        ratios.push(t / r);
    }
    [raw, tracked, ratios]
}
