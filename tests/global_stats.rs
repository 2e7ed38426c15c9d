//! `global_stats()`, the whole process's numbers, against hand-computed sizes. Runs without
//! libtest's harness (`harness = false`): in this process only the cases below allocate, one
//! after the other on the main thread, so every change between two readings is known.

use heapscope::Owner;
use std::hint::black_box;

heapscope::install!();

/// Allocations under two owners, a child and root move every total by exactly their sizes,
/// and freeing them brings `live_*` back to the byte.
fn the_process_totals_move_by_exactly_what_was_allocated() {
    // Registering allocates (heapscope's own bookkeeping): before the first reading.
    let a = Owner::named("global_a");
    let item = Owner::named("global_b").child("item");
    let g0 = heapscope::global_stats();
    let x = a.in_scope(|| black_box(vec![1u8; 1000]));
    let y = item.in_scope(|| black_box(String::with_capacity(5000)));
    let z = black_box(Box::new([0u64; 4])); // root's: 32 bytes
    let g1 = heapscope::global_stats();
    let grew = (
        g1.live_bytes - g0.live_bytes,
        g1.live_blocks - g0.live_blocks,
        g1.total_bytes - g0.total_bytes,
        g1.total_blocks - g0.total_blocks,
    );
    assert_eq!(grew, (6032, 3, 6032, 3), "{g0:?} -> {g1:?}");
    assert!(g1.peak_bytes >= g1.live_bytes, "{g1:?}");
    drop((x, y, z));
    let g2 = heapscope::global_stats();
    assert_eq!((g2.live_bytes, g2.live_blocks), (g0.live_bytes, g0.live_blocks), "{g2:?}");
    assert_eq!((g2.total_bytes, g2.total_blocks), (g1.total_bytes, g1.total_blocks));
    assert!(g2.peak_bytes >= g1.live_bytes, "the peak dropped: {g1:?} -> {g2:?}");
}

/// A 50 MiB transient (a deep copy made and dropped, nothing read in between) shows in the
/// process peak, within the documented 64 KiB per top-level owner with unpublished bytes
/// (root, the internal owner and the one used here), and never above what was held.
fn a_transient_shows_in_the_process_peak() {
    const BLOCK: usize = 64 * 1024;
    const BLOCKS: usize = 800; // 50 MiB
    let owner = Owner::named("global_transient");
    let outer = BLOCKS * std::mem::size_of::<Vec<u8>>();
    let g0 = heapscope::global_stats();
    let copy: Vec<Vec<u8>> =
        owner.in_scope(|| (0..BLOCKS).map(|_| black_box(Vec::with_capacity(BLOCK))).collect());
    drop(black_box(copy));
    let g1 = heapscope::global_stats();
    let held = g0.live_bytes + (BLOCKS * BLOCK + outer) as u64;
    assert_eq!(g1.live_bytes, g0.live_bytes, "{g1:?}");
    assert!(g1.peak_bytes + 3 * 64 * 1024 >= held, "peak {} misses {held}", g1.peak_bytes);
    assert!(g1.peak_bytes <= held.max(g0.peak_bytes), "peak {} above {held}", g1.peak_bytes);
}

/// Top-level owners that each published an allocation and then freed up to 64 KiB without
/// publishing it: the process's published total overstates what it holds by all those
/// frees together. The process peak, and an idle phase's peak, were once raised from that
/// total alone: 5.9 MB above anything ever held with 100 owners, and an idle phase 6 MB
/// above its start.
fn unpublished_frees_of_many_owners_never_lift_the_process_peak() {
    const OWNERS: usize = 100;
    let owners: Vec<Owner> =
        (0..OWNERS).map(|i| Owner::named(format!("global_unpublished_{i}"))).collect();
    let mut kept = Vec::with_capacity(OWNERS);
    let g0 = heapscope::global_stats();
    // Each owner: 60 000 B and 70 000 B (130 000 B pass 64 KiB: published), then the 60 000 B
    // freed (within 64 KiB: not published).
    for owner in &owners {
        let small = owner.in_scope(|| black_box(Vec::<u8>::with_capacity(60_000)));
        let big = owner.in_scope(|| black_box(Vec::<u8>::with_capacity(70_000)));
        drop(small);
        kept.push(big);
    }
    let g1 = heapscope::global_stats();
    // The most ever held: everything before, the owners' kept blocks, and the last small one.
    let held = g0.live_bytes + (70_000 * OWNERS + 60_000) as u64;
    assert_eq!(g1.live_bytes, g0.live_bytes + (70_000 * OWNERS) as u64);
    assert!(
        g1.peak_bytes <= held.max(g0.peak_bytes),
        "process peak {} is {} above the most ever held",
        g1.peak_bytes,
        g1.peak_bytes - held
    );
    assert!(g1.peak_bytes + 3 * 64 * 1024 >= held, "peak {} misses {held}", g1.peak_bytes);

    // A phase in which nothing is allocated peaks where it started.
    let idle = heapscope::phase("global_idle").finish();
    // (The phase's own bookkeeping allocates a little, under heapscope's internal owner.)
    let (start, end) = (idle.total.live_start_bytes, idle.total.live_end_bytes);
    assert!(
        idle.total.peak_bytes <= start.max(end) + 64 * 1024,
        "an idle phase peaked {} bytes above its start and end",
        idle.total.peak_bytes - start.max(end)
    );
    drop(kept);
}

/// A transient under the 64 KiB publication threshold in a top-level owner: nothing is
/// published and nothing reads while it lives, so only the allocation path's own record can
/// lift the process peak, and it must lift it to exactly what was held. (Until this case, the
/// process peak was never checked without a publication or a reading to lift it: with
/// `record_peak` raising the process peak for children's records instead of top-level
/// owners', every case here passed.)
fn an_unpublished_transient_shows_in_the_process_peak_exactly() {
    const SIZE: u64 = 60_000;
    let owner = Owner::named("global_small_transient");
    let g0 = heapscope::global_stats();
    // The process has held far less than this so far (it runs first), so the transient is a
    // new peak.
    assert!(g0.peak_bytes < g0.live_bytes + SIZE, "peaked before: {g0:?}");
    drop(owner.in_scope(|| black_box(Vec::<u8>::with_capacity(SIZE as usize))));
    let g1 = heapscope::global_stats();
    assert_eq!(g1.live_bytes, g0.live_bytes, "{g0:?} -> {g1:?}");
    assert_eq!(g1.peak_bytes, g0.live_bytes + SIZE, "{g0:?} -> {g1:?}");
}

/// An owner retired with frees unpublished on other threads (published 80 000 past 64 KiB,
/// freed 40 000 on each of two threads) leaves, when its id is reused, a remainder that the
/// process's level must absorb if the owner was top-level and must not if it was a child:
/// either way a later transient lifts the process peak to exactly what was held. (Until this
/// case no test reused an id with such a remainder: `reset_for_new_owner` handing it to the
/// process for children too (`&&` as `||`) or for children only (`== PROCESS` as `!=`) passed
/// every test; the peak came out 80 000 below or above.)
fn a_reused_ids_unpublished_frees_leave_the_process_level_exact() {
    let parent = Owner::named("global_reused_parent");
    let top = Owner::named("global_reused_top");
    let item = parent.child("item");
    // Each transient well above the peak before it: the process peak is looked at exactly
    // only once the published total passes it, which may lag by up to 64 KiB per top-level
    // owner with unpublished growth (see README, How it works).
    for (gone, kind, held) in [(top, "top-level", 200_000u64), (item, "child", 400_000)] {
        let (a, b) = gone.in_scope(|| (black_box(vec![1u8; 40_000]), black_box(vec![2u8; 40_000])));
        // Alive together, so that each frees in a slot of its own (one after the other, the
        // second would take the first one's slot and publish the 80 000 freed there). Joined
        // by handle, which waits for the thread's exit: a scoped thread's last frees (its
        // thread-locals) may come after the scope returns, during the next case's readings.
        let both = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = [a, b]
            .into_iter()
            .map(|block| {
                let both = std::sync::Arc::clone(&both);
                std::thread::spawn(move || {
                    both.wait();
                    drop(block);
                    both.wait();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        gone.retire().unwrap();
        // Registered on the id just freed (the lowest free one).
        let fresh = parent.child(format!("fresh_after_{kind}"));
        let g0 = heapscope::global_stats();
        let margin = 2 * 64 * 1024;
        assert!(g0.peak_bytes + margin < g0.live_bytes + held, "{kind}: peaked before: {g0:?}");
        drop(fresh.in_scope(|| black_box(Vec::<u8>::with_capacity(held as usize))));
        let g1 = heapscope::global_stats();
        assert_eq!(g1.peak_bytes, g0.live_bytes + held, "{kind}: {g0:?} -> {g1:?}");
    }
}

fn main() {
    assert!(heapscope::is_tracking());
    // First: the process peak is lifetime, and every later case holds more.
    an_unpublished_transient_shows_in_the_process_peak_exactly();
    println!("test an_unpublished_transient_shows_in_the_process_peak_exactly ... ok");
    a_reused_ids_unpublished_frees_leave_the_process_level_exact();
    println!("test a_reused_ids_unpublished_frees_leave_the_process_level_exact ... ok");
    the_process_totals_move_by_exactly_what_was_allocated();
    println!("test the_process_totals_move_by_exactly_what_was_allocated ... ok");
    // Before the transient: the process peak is lifetime, and 50 MiB would hide this one.
    unpublished_frees_of_many_owners_never_lift_the_process_peak();
    println!("test unpublished_frees_of_many_owners_never_lift_the_process_peak ... ok");
    a_transient_shows_in_the_process_peak();
    println!("test a_transient_shows_in_the_process_peak ... ok");
    println!("global_stats: 5 passed, 0 failed");
}
