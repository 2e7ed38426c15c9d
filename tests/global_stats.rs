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

fn main() {
    assert!(heapscope::is_tracking());
    the_process_totals_move_by_exactly_what_was_allocated();
    println!("test the_process_totals_move_by_exactly_what_was_allocated ... ok");
    a_transient_shows_in_the_process_peak();
    println!("test a_transient_shows_in_the_process_peak ... ok");
    println!("global_stats: 2 passed, 0 failed");
}
