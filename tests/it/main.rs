//! Ordinary allocator tests, sharing one binary with heapscope installed. Each test uses
//! owners of its own (libtest runs them in parallel; its own allocations land in `root`).

heapscope::install!();

/// `full` normally; `miri` under Miri, which interprets every instruction and runs the heavy
/// loops of these tests thousands of times slower. Every test checks the same things either
/// way; only how many operations lead up to the checks changes.
#[cfg_attr(not(feature = "enabled"), allow(dead_code))] // its users need tracking
pub(crate) const fn scaled(full: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        full
    }
}

#[cfg(feature = "enabled")]
mod accounting;
mod async_owner;
#[cfg(all(feature = "enabled", target_os = "linux", not(miri)))]
mod binary_size;
mod coherence;
#[cfg(not(miri))]
mod doc_examples;
mod growth;
mod layouts;
mod model;
mod peaks;
#[cfg(feature = "enabled")]
mod reader;
#[cfg(not(miri))]
mod readme;
mod retained_with_mut;
#[cfg(feature = "enabled")]
mod rng;
mod scopes;
mod threads;
