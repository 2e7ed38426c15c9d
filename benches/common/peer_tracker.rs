//! The least a user of the tracking-allocator crate installs: a tracker that keeps each
//! allocation group's live bytes in an atomic, tracking enabled, and the calling thread in a
//! group of its own. Used where tracking-allocator is measured beside heapscope (`peers`, and
//! the `agent` bench's `header` processes), so that its cost is what a user would pay.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use tracking_allocator::{
    AllocationGroupId, AllocationGroupToken, AllocationRegistry, AllocationTracker,
};

/// Live bytes per allocation group (ids folded into 64 cells, a cache line each, so that two
/// threads in groups of their own never write one line: the best such a tracker can do).
struct GroupBytes {
    live: [Cell; 64],
}

#[repr(align(64))]
struct Cell(AtomicI64);

impl GroupBytes {
    fn cell(&self, group: &AllocationGroupId) -> &AtomicI64 {
        &self.live[group.as_usize().get() % self.live.len()].0
    }
}

impl AllocationTracker for &'static GroupBytes {
    fn allocated(&self, _addr: usize, size: usize, _wrapped: usize, group: AllocationGroupId) {
        self.cell(&group).fetch_add(size as i64, Relaxed);
    }

    fn deallocated(
        &self,
        _addr: usize,
        size: usize,
        _wrapped: usize,
        source: AllocationGroupId,
        _current: AllocationGroupId,
    ) {
        self.cell(&source).fetch_sub(size as i64, Relaxed);
    }
}

static GROUP_BYTES: GroupBytes = GroupBytes { live: [const { Cell(AtomicI64::new(0)) }; 64] };

/// Installs the tracker, enables tracking and enters a fresh group on this thread for the rest
/// of the process (a bench child's life).
pub fn install() {
    AllocationRegistry::set_global_tracker(&GROUP_BYTES).expect("the only tracker");
    AllocationRegistry::enable_tracking();
    enter_new_group();
}

/// Enters a fresh group on this thread for the rest of its life (a worker thread's part of
/// [`install`]).
pub fn enter_new_group() {
    let token: &'static mut AllocationGroupToken =
        Box::leak(Box::new(AllocationGroupToken::register().expect("a group id")));
    std::mem::forget(token.enter());
}
