//! Peaks kept by the allocation path on a thread slot taken after the owners were registered,
//! in a process of its own with a single test.
//!
//! Registering an owner sets its limits to "look at every call" in every slot taken so far
//! (`reset_for_new_owner`), so on those slots every free records the peak. A slot taken
//! afterwards starts from zero limits for it and relies on the limits the allocation path
//! sets: growth at the peak is not looked at on the way up (the slot's floor says "at the
//! peak" instead), and the first free records the peak just before it. In the shared
//! `tests/it` binary the allocating threads are not known to take such slots, and its peak
//! tests passed with the slot's floor never set (`Counts::set_floor_of` a no-op, or its
//! child test inverted), with a top-level owner's out-of-line free handled as a child's
//! (`credit`'s `owner & CHILD_BIT == 0` mutated), and with a child's headroom never set or
//! stored as a top-level owner's (`Counts::set_headroom_of`).
//!
//! One test, so that no other thread of this process exits while it runs: every thread it
//! spawns then takes a slot never taken before (the lowest free one), after the owners were
//! all registered. Nothing reads an owner between its peak and the check (a reading raises
//! the peak to the live size it reads, which would hide a lost record).
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::Owner;
use std::hint::black_box;

/// `(live_bytes, total_bytes, peak_bytes)`.
fn nums(o: Owner) -> (u64, u64, u64) {
    let s = o.stats();
    (s.live_bytes, s.total_bytes, s.peak_bytes)
}

/// On a new thread (which takes a fresh slot), allocates `first` then `second` bytes under
/// `owner`, frees the second block, then the first, and waits for it.
fn grow_then_free_on_new_thread(owner: Owner, first: usize, second: usize) {
    std::thread::spawn(move || {
        let a = owner.in_scope(|| black_box(vec![0u8; first]));
        let b = owner.in_scope(|| black_box(vec![0u8; second]));
        drop(b);
        drop(a);
    })
    .join()
    .unwrap();
}

#[test]
fn peaks_on_thread_slots_taken_after_registration() {
    // All registered before any thread below takes its slot.
    let top = Owner::named("fresh_top");
    let parent = Owner::named("fresh_parent");
    let item = parent.child("item");
    let below_parent = Owner::named("fresh_below_parent");
    let below = below_parent.child("item");

    // A top-level owner growing at its peak (1000, then 2000 more without looking), then
    // freeing: the first free records the 3000.
    grow_then_free_on_new_thread(top, 1000, 2000);
    assert_eq!(nums(top), (0, 3000, 3000), "top-level");

    // The same for a child, whose limits are kept apart from a top-level owner's: its own
    // peak and its parent's.
    grow_then_free_on_new_thread(item, 1000, 2000);
    assert_eq!(nums(item), (0, 3000, 3000), "child");
    assert_eq!(nums(parent), (0, 3000, 3000), "parent");

    // A child's first allocation on a thread while its peak stands above what it holds (this
    // thread held 1000 before) sets that slot's headroom below the peak: the child's limits
    // must still send its later calls on to its parent's level. Lost there, the 300 bytes the
    // new thread allocated and freed stay in the parent's level for good, and a later
    // 2000-byte block alone lifts the parent's peak to 2300 (or 1800 the other way).
    drop(below.in_scope(|| black_box(vec![0u8; 1000])));
    grow_then_free_on_new_thread(below, 100, 200);
    drop(below_parent.in_scope(|| black_box(vec![0u8; 2000])));
    assert_eq!(nums(below), (0, 1300, 1000), "child below its peak");
    assert_eq!(nums(below_parent), (0, 3300, 2000), "its parent");
}
