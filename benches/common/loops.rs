//! The allocate-and-free loops the CPU benches share, generic over the allocator, so that
//! every allocator (and every reduced design in `ingredients`) runs exactly the same loop.

use std::alloc::{GlobalAlloc, Layout};

/// Allocate-and-free churn with 64 blocks live: a new block replaces the oldest.
pub fn churn<A: GlobalAlloc>(a: &A, sizes: &[usize], ops: usize) {
    churn_live::<A, 64>(a, sizes, ops)
}

/// Churn with `LIVE` blocks live (a power of two): a new block replaces the oldest. With 64
/// the blocks, jemalloc's thread cache and our counters all stay in L1; with 4096
/// (≈ 0.5 MiB of blocks) a block is no longer in L1 when it is freed, as in a program whose
/// live set is larger than a toy's.
pub fn churn_live<A: GlobalAlloc, const LIVE: usize>(a: &A, sizes: &[usize], ops: usize) {
    let mut ring: [(usize, usize); LIVE] = [(0, 0); LIVE];
    for i in 0..ops {
        let size = sizes[i % sizes.len()];
        let slot = &mut ring[i % LIVE];
        if slot.0 != 0 {
            // SAFETY: allocated below by `a` with this size and align 8.
            unsafe { a.dealloc(slot.0 as *mut u8, Layout::from_size_align_unchecked(slot.1, 8)) };
        }
        // SAFETY: non-zero size, valid align.
        let p = unsafe { a.alloc(Layout::from_size_align_unchecked(size, 8)) };
        // SAFETY: p has at least one byte.
        unsafe { p.write_volatile(i as u8) };
        *slot = (p as usize, size);
    }
    for (p, size) in ring {
        if p != 0 {
            // SAFETY: as above.
            unsafe { a.dealloc(p as *mut u8, Layout::from_size_align_unchecked(size, 8)) };
        }
    }
}

/// Small blocks used as a program uses them: each operation draws a size of 16-256 B
/// (xorshift, as `small_sizes`), fills the new block (`write_bytes`, as building a string or a
/// struct does), and replaces a random one of 1024 live blocks. The loops above touch one byte
/// per block and cycle through a fixed table, so they show the allocator's cost undiluted;
/// this one shows what that cost is next to the work every allocation comes with.
pub fn filled<A: GlobalAlloc>(a: &A, ops: usize, seed: u64) {
    const LIVE: usize = 1024;
    let mut rng = super::Rng(seed);
    let mut ring = vec![(0usize, 0usize); LIVE];
    for i in 0..ops {
        let r = rng.next();
        let size = 16 + (r % 241) as usize;
        let slot = &mut ring[(r >> 32) as usize % LIVE];
        if slot.0 != 0 {
            // SAFETY: allocated below by `a` with this size and align 8.
            unsafe { a.dealloc(slot.0 as *mut u8, Layout::from_size_align_unchecked(slot.1, 8)) };
        }
        // SAFETY: non-zero size, valid align.
        let p = unsafe { a.alloc(Layout::from_size_align_unchecked(size, 8)) };
        // SAFETY: p has `size` bytes.
        unsafe { p.write_bytes(i as u8, size) };
        *slot = (p as usize, size);
    }
    for (p, size) in ring {
        if p != 0 {
            // SAFETY: as above.
            unsafe { a.dealloc(p as *mut u8, Layout::from_size_align_unchecked(size, 8)) };
        }
    }
}

/// The seed `filled` is run with (the second thread of a pair uses it with the low bits
/// flipped).
pub const FILLED_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Allocate then free at once: the classic small-allocation microbenchmark.
pub fn pairs<A: GlobalAlloc>(a: &A, sizes: &[usize], ops: usize) {
    for i in 0..ops {
        let layout = Layout::from_size_align(sizes[i % sizes.len()], 8).expect("layout");
        // SAFETY: non-zero size, valid align.
        let p = unsafe { a.alloc(layout) };
        // SAFETY: p has at least one byte.
        unsafe { p.write_volatile(i as u8) };
        // SAFETY: allocated just above with `layout`.
        unsafe { a.dealloc(std::hint::black_box(p), layout) };
    }
}
