//! heapscope tells a long-running program *who* holds its memory.
//!
//! It is a `#[global_allocator]` wrapper ([`Tracked`], over jemalloc by default) that charges
//! every allocation to a named [`Owner`] — conversation history, tool results, a cache, one
//! [`Retained`] tool output — and reads exact per-owner numbers at any time, in production and
//! in tests. Built first for LLM agent runtimes, whose memory is huge histories, tool outputs
//! and caches, where one RSS gauge cannot tell a leak from a cache from a transient peak.
//!
//! # Setup
//! 1. Depend on heapscope and forward one feature of yours to `heapscope/enabled`:
//!    ```toml
//!    [dependencies]
//!    heapscope = "0.1"
//!    [features]
//!    memprof = ["heapscope/enabled"]
//!    ```
//! 2. Install the allocator once, in `main.rs` (libraries never install it):
//!    ```
//!    heapscope::install!();
//!    # fn main() {}
//!    ```
//! 3. Mark regions with owners, and read numbers:
//!    ```
//!    let history = heapscope::owner!("history");
//!    let turns = history.in_scope(|| vec![String::from("user: hi"); 100]);
//!    println!("{:?}", history.stats());
//!    # drop(turns);
//!    ```
//!
//! Without `enabled` the API is the same and costs nothing: [`Tracked`] forwards every call
//! with the caller's layout, scopes are zero-sized, and readings are zero with
//! [`is_tracking`] `false`.
//!
//! # Semantics
//! - An allocation is charged to the owner current on the allocating thread ([`Owner::root`]
//!   until something is entered). Threads do not inherit scopes; async tasks keep theirs
//!   with [`InOwner::in_owner`].
//! - Its free credits that same owner, whatever thread or scope frees it, however much later.
//! - `realloc` is a free of the old block (credited to its owner) plus an allocation of the
//!   new block (charged to the owner current at the `realloc`).
//! - Sizes are the requested `Layout::size()`, not the inner allocator's rounded size.
//!   Zero-sized values and empty collections hold no block and count nothing; a zero-size
//!   layout passed to `GlobalAlloc` directly breaks its contract (std never passes one).
//! - A failed allocation or `realloc` changes no counter and leaves the old block as it was;
//!   `Vec::try_reserve` of an absurd size returns an error.
//! - An owner's stats include its descendants' (also retired ones'). `live_*` and `total_*`
//!   are exact once every thread's allocation calls happen-before the read; read while
//!   threads are still allocating, `live_*` never shows more than the owner and its
//!   descendants held together at one moment: a reading takes every allocation counter
//!   before any free counter, so a block that a `realloc` moves between two of them during
//!   the reading is counted once, and no new allocation is paired with stale frees, on any
//!   memory model. So a reading on another thread, which lifts the peak to the live size it
//!   read, never lifts it above what was live. `peak_bytes` is
//!   exact when one thread allocates and frees in the owner's subtree; when more than one
//!   thread does (at the same time, or one after another), it can be off by at most 64 KiB
//!   per thread allocating or freeing in it: lower, for a peak reached between two of a
//!   thread's records (a thread records its growth at its own next free in the owner, so a
//!   peak ended by another thread's free can go unrecorded), or higher, since a record adds up the threads' unpublished bytes one after
//!   another (a free on one thread and a later allocation on another can both be counted).
//!   It never decreases and is never below a `live_bytes` that was read.
//!   The process-wide peak of [`global_stats`] can also miss up to 64 KiB per top-level owner
//!   with unpublished bytes.
//! - Blocks allocated before the allocator was installed cannot exist (it is installed
//!   statically); blocks allocated before `main` are root's, and `atexit` hooks keep
//!   counting; blocks allocated by C code through `malloc` are not seen.
//! - Allocating inside a signal handler is unsupported: it can lose a count update of the
//!   interrupted thread.
//! - A fallback to the overflow owner ([`Owner::named`], [`Owner::child`],
//!   [`Retained::build`]) prints one `heapscope:` warning per process.
//! - A retired owner's handle enters the overflow owner; a scope entered before the
//!   retirement keeps charging the retired owner until it is dropped, and the id is reused
//!   only once no such scope is open (see [`Owner::retire`]).
//!
//! # How it works, and what it costs
//! Each block carries its owner id: in a 2-byte trailer when the block's jemalloc size class
//! has two spare bytes (no memory cost). Requests that sit exactly on a class (the sizes `Vec`
//! doubling produces) have no slack: up to 256 bytes they take the trailer anyway and go one
//! class up (8 to 64 bytes more per block, cheaper than any other home); larger ones (320,
//! 512, 4096 … bytes) keep their owner in a side table keyed by address (a map indexed
//! directly by the address, one plain store per block), so no large block is pushed into a
//! larger class. Counting is a plain
//! add into per-thread counters with a single writer each; readers sum them. See README for
//! measured overhead.
//!
//! # Limits
//! - 4096 owner ids in all (4 reserved). Retired children are reused once they hold no
//!   bytes. [`Owner::try_named`] reports a full registry; [`Owner::named`] falls back to
//!   [`Owner::overflow`].
//! - Owners nest 7 levels deep. Names are 1–128 bytes, without `/` or control characters.
//! - 256 threads count with plain adds at once; more, and threads past their exit, count
//!   with atomic adds in a shared slot (exact, slower). Slots are returned at thread exit.
//! - The side table's direct map covers the first 16 GiB of address space that large
//!   exact-class blocks are spread over; blocks beyond it (and small over-aligned ones) go to
//!   a hashed table that holds about 5 million at once. Past that, such blocks are charged to
//!   [`Owner::overflow`] (totals stay exact).
//!
//! # Feature flags
//! | feature    | default | what it does                                                    |
//! |------------|---------|-----------------------------------------------------------------|
//! | `enabled`  | no      | compiles owner tracking in                                      |
//! | `jemalloc` | yes     | jemalloc (tikv-jemallocator) as the inner allocator of [`Heapscope`] |
//! | `dhat`     | no      | re-exports `dhat`, so `Tracked<dhat::Alloc>` can cross-check totals |
//! | `tracing`  | no      | `OwnerLayer` for tracing-subscriber; phase and pressure events      |
//! | `metrics`  | no      | `Report::publish_metrics`: gauges through the `metrics` facade      |
//! | `cli`      | no      | the `heapscope` command: `show`, `diff`, `check`, `timeline`        |
//! | `jemalloc-profiling` | no | jemalloc's heap profiler, inactive until [`profiling::activate`] |
//! | `signal`   | no      | `signal::SignalTrigger`: a signal writes a diagnostics bundle       |
//!
//! # Unsafe code
//! `unsafe` is confined to `alloc/` (the `GlobalAlloc` impl and the trailer's pointer
//! arithmetic), `counters.rs` (dereferencing the thread's cached pointer into its own counter
//! slot, and the `pthread` thread-exit hook), `Retained`'s `ManuallyDrop`, the pinned
//! `ManuallyDrop` inside [`Owned`] (the future [`InOwner::in_owner`] returns), `profiling` and
//! `allocator_stats` (jemalloc's `mallctl` calls and the exported start-up configuration), the
//! system calls `monitor` makes without allocating (the phase-1 dump, reading usage), the
//! background threads' signal mask, and single `libc` calls: `geteuid` for the private
//! directory checks, `sysconf` and `getrlimit` for the report. Every block has a `SAFETY:`
//! comment.
//!
//! MSRV: Rust 1.95.

mod alloc;
mod allocator_stats;
mod artifacts;
mod bundle;
mod clock;
#[cfg(feature = "enabled")]
mod counters;
mod error;
mod limits;
#[cfg(feature = "metrics")]
mod metrics_export;
mod monitor;
mod owner;
mod panic_hook;
mod phase;
mod pressure;
mod printable;
mod procfs;
pub mod profiling;
mod registry;
mod report;
pub mod retained;
#[cfg(feature = "signal")]
pub mod signal;
mod snapshot;
mod stats;
pub mod testing;
mod threads;
mod timeline;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod units;

pub use alloc::{Heapscope, Tracked};
pub use allocator_stats::AllocatorStats;
pub use artifacts::{write_private, WrittenFile};
pub use bundle::{capture, Bundle, CaptureOptions, HeapProfile, Manifest, Skipped, PRIVACY_NOTICE};
#[doc(hidden)]
pub use clock::__step_wall_clock_for_tests;
#[cfg(feature = "enabled")]
#[doc(hidden)]
pub use counters::__thread_slots_for_tests;
pub use error::{Error, Result};
pub use limits::CgroupMemory;
#[doc(hidden)]
pub use monitor::__phase1_for_tests;
pub use monitor::{DumpOutcome, PressureMonitor, PressureMonitorBuilder};
pub use owner::{InOwner, Owned, Owner, OwnerScope};
pub use panic_hook::run_panic_hook_in;
pub use phase::{
    phase, recent_phases, Phase, PhaseOwner, PhaseRecord, PHASE_HISTORY, PHASE_OWNERS,
};
pub use pressure::{PressureLevel, Thresholds};
pub use printable::escape_control;
pub use procfs::ChildProcess;
pub use report::{
    report, Limits, OwnerLine, OwnersSection, Pressure, ProcessInfo, Report, ReportOptions,
    Runtime, SCHEMA_VERSION,
};
pub use retained::Retained;
pub use snapshot::{OwnerDelta, OwnerEntry, Snapshot, SnapshotDiff};
pub use stats::{global_stats, is_tracking, OwnerStats};
pub use timeline::{
    watch, Sample, Sampler, SeriesSummary, Timeline, MAX_SAMPLES, MAX_WATCH, MIN_INTERVAL,
    SAMPLE_OWNERS,
};
pub use units::{format_bytes, parse_bytes};

#[cfg(feature = "dhat")]
pub use dhat;
#[cfg(feature = "metrics")]
pub use metrics_export::METRIC_NAMES;
#[cfg(feature = "tracing")]
pub use tracing_layer::OwnerLayer;

/// Declares heapscope's allocator ([`Heapscope`]) as the `#[global_allocator]` of this binary.
///
/// Put it once in `main.rs` (or in a test file). Without the `enabled` feature it installs
/// the plain inner allocator behind a pass-through wrapper.
///
/// ```
/// heapscope::install!();
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! install {
    () => {
        #[global_allocator]
        static HEAPSCOPE_GLOBAL_ALLOCATOR: $crate::Heapscope = $crate::Heapscope::new();
    };
}
