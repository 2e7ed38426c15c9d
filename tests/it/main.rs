//! Ordinary allocator tests, sharing one binary with heapscope installed. Each test uses
//! owners of its own (libtest runs them in parallel; its own allocations land in `root`).

heapscope::install!();

#[cfg(feature = "enabled")]
mod accounting;
mod async_owner;
mod coherence;
mod layouts;
mod model;
mod peaks;
mod retained_with_mut;
#[cfg(feature = "enabled")]
mod rng;
mod scopes;
mod threads;
