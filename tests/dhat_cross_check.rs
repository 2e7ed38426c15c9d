//! Cross-check against a second tool: dhat, as the inner allocator, sees exactly the requests
//! heapscope makes of it (the caller's size, plus 2 bytes for blocks whose owner is a
//! trailer), while heapscope reports the caller's sizes.
//!
//! dhat's own bookkeeping (backtraces, its tables) allocates through the global allocator
//! from inside `dhat::Alloc`, so heapscope sees those blocks under the current owner while
//! dhat hides them from itself: heapscope's numbers are dhat's plus that bookkeeping.
//!
//! Runs without libtest's harness (`harness = false`): dhat counts every thread's
//! allocations, and the harness's own would blur the comparison.

use heapscope::{dhat, Owner, Tracked};
use std::hint::black_box;

#[global_allocator]
static ALLOC: Tracked<dhat::Alloc> = Tracked::new(dhat::Alloc);

fn totals_agree_with_dhat() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let owner = Owner::named("dhat_cross");
    let before = dhat::HeapStats::get();
    // Sizes with slack carry a 2-byte trailer, and so do exact classes of at most 256 bytes
    // (one class up); other sizes on an exact jemalloc class do not.
    let with_trailer = [24usize, 100, 1000, 5000, 16, 64];
    let exact = [4096usize, 65536];
    let blocks: Vec<Vec<u8>> = owner.in_scope(|| {
        let mut blocks = Vec::with_capacity(8); // 8 * 24 = 192: an exact class, one class up
        for &n in with_trailer.iter().chain(&exact) {
            blocks.push(black_box(vec![7u8; n]));
        }
        blocks
    });
    let theirs = dhat::HeapStats::get();
    let ours = owner.stats();
    let requested: usize = with_trailer.iter().chain(&exact).sum::<usize>() + 192;
    assert_eq!(requested, 76_028);
    // dhat sees exactly what heapscope asked of it: the caller's sizes plus the trailers.
    assert_eq!(theirs.curr_blocks - before.curr_blocks, 9);
    let trailers = 2 * (with_trailer.len() + 1); // and the 192-byte vector's
    assert_eq!(theirs.curr_bytes - before.curr_bytes, requested + trailers);
    assert_eq!(theirs.total_bytes - before.total_bytes, (requested + trailers) as u64);
    // heapscope saw the same blocks at their requested sizes, plus dhat's bookkeeping.
    assert!(ours.live_bytes >= requested as u64, "{ours:?}");
    assert!(ours.live_blocks >= 9, "{ours:?}");
    let bookkeeping = ours.live_bytes - requested as u64;
    drop(blocks);
    let after = dhat::HeapStats::get();
    assert_eq!(after.curr_bytes, before.curr_bytes);
    // Freeing the nine blocks returns exactly their requested bytes to the owner.
    let freed = ours.live_bytes - owner.stats().live_bytes;
    assert!(freed >= requested as u64 && freed <= requested as u64 + bookkeeping, "{freed}");
}

fn main() {
    totals_agree_with_dhat();
    println!("dhat cross-check: 1 passed, 0 failed");
}
