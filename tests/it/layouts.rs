//! The layout matrix: every alignment from 1 to 64 KiB against sizes around the alignment, the
//! page and jemalloc's size-class edges, through `alloc`, `alloc_zeroed`, `realloc` (grow and
//! shrink, across classes and between the trailer and the side table) and `dealloc`.
//!
//! Run both through the installed global allocator (`std::alloc::*`) and through a
//! `Tracked<System>` instance. After every step: the pointer is aligned, the contents that
//! must survive did, and the owner's live bytes are exactly the sum of the requested sizes.
#![cfg(feature = "enabled")]

use heapscope::{Owner, Tracked};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

const ALIGNS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 4096, 65536];
/// The large size of the matrix (past jemalloc's page-rounded large classes either way).
const MIB: usize = crate::scaled(1 << 20, 20_000);

/// The sizes tried for one alignment, without zero and without repeats, in order.
fn sizes(align: usize) -> Vec<usize> {
    let mut v = vec![1, align / 2, align.wrapping_sub(1), align, align + 1, 4095, 4096, MIB];
    v.extend([6, 7, 8, 14, 15, 16, 127, 128]);
    let mut out = Vec::new();
    for s in v {
        if s > 0 && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The installed global allocator, reached the way ordinary code reaches it.
struct Global;

// SAFETY: forwards to `std::alloc`, which forwards to the `#[global_allocator]`.
unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: caller's guarantees.
        unsafe { std::alloc::alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: caller's guarantees.
        unsafe { std::alloc::alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: caller's guarantees.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: caller's guarantees.
        unsafe { std::alloc::realloc(ptr, layout, new_size) }
    }
}

/// The bytes a block of the matrix holds: a run of [`PERIOD`] bytes that depends on `salt`,
/// repeated. A prime period shows a block whose contents moved by anything but a multiple of
/// it; the repetition lets filling and checking copy and compare 16 periods at a time
/// (`memcpy`, `memcmp`), which Miri runs natively where a byte loop is interpreted byte by
/// byte (and each slice it compares is a borrow Miri tracks: few and long, not many short).
const PERIOD: usize = 251;

/// Sixteen periods of the pattern of `salt`. Built once per block size: under Miri each
/// element computed is hundreds of interpreted steps, each byte copied is not.
fn runs(salt: usize) -> [u8; 16 * PERIOD] {
    let period: [u8; PERIOD] =
        std::array::from_fn(|i| (i.wrapping_mul(131).wrapping_add(salt) >> 3) as u8 ^ (i as u8));
    let mut runs = [0; 16 * PERIOD];
    for chunk in runs.chunks_mut(PERIOD) {
        chunk.copy_from_slice(&period);
    }
    runs
}

/// Writes the pattern `runs` stands for into `block[from..]`, in place.
fn fill(block: &mut [u8], from: usize, runs: &[u8; 16 * PERIOD]) {
    let mut i = from;
    while i < block.len() {
        let offset = i % runs.len();
        let n = (runs.len() - offset).min(block.len() - i);
        block[i..i + n].copy_from_slice(&runs[offset..offset + n]);
        i += n;
    }
}

/// Whether `block` holds the pattern `runs` stands for, from its start.
fn holds(block: &[u8], runs: &[u8; 16 * PERIOD]) -> bool {
    block.chunks(runs.len()).all(|chunk| chunk == &runs[..chunk.len()])
}

/// Whether `block` is all zero, compared a page at a time as [`holds`].
fn zeroed(block: &[u8]) -> bool {
    block.chunks(4096).all(|chunk| chunk == &[0u8; 4096][..chunk.len()])
}

/// `(live_bytes, live_blocks, total_bytes, total_blocks)` of an owner.
fn nums(o: Owner) -> (u64, u64, u64, u64) {
    let s = o.stats();
    (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks)
}

/// Hand-kept expectations for one owner.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Expect {
    live_bytes: u64,
    live_blocks: u64,
    total_bytes: u64,
    total_blocks: u64,
}

impl Expect {
    fn alloc(&mut self, size: usize) {
        self.live_bytes += size as u64;
        self.live_blocks += 1;
        self.total_bytes += size as u64;
        self.total_blocks += 1;
    }
    fn free(&mut self, size: usize) {
        self.live_bytes -= size as u64;
        self.live_blocks -= 1;
    }
    fn realloc(&mut self, old: usize, new: usize) {
        self.free(old);
        self.alloc(new);
    }
    fn check(&self, o: Owner, what: &str) {
        let want = (self.live_bytes, self.live_blocks, self.total_bytes, self.total_blocks);
        assert_eq!(nums(o), want, "{what}");
    }
}

/// Runs the whole matrix for one alignment through `a`, charging everything to `o`.
fn matrix_for_align<A: GlobalAlloc>(a: &A, o: Owner, align: usize) {
    let mut exp = Expect::default();
    for size in sizes(align) {
        let layout = Layout::from_size_align(size, align).unwrap();
        let at = |step: &str| format!("align {align}, size {size}: {step}");
        let runs = runs(size);

        // SAFETY: non-zero size.
        let p = o.in_scope(|| black_box(unsafe { a.alloc(layout) }));
        assert!(!p.is_null(), "{}", at("alloc"));
        assert_eq!(p as usize % align, 0, "{}", at("alloc alignment"));
        exp.alloc(size);
        exp.check(o, &at("after alloc"));
        // SAFETY: `p` is a live block of `size` bytes.
        fill(unsafe { std::slice::from_raw_parts_mut(p, size) }, 0, &runs);

        // SAFETY: non-zero size.
        let z = o.in_scope(|| black_box(unsafe { a.alloc_zeroed(layout) }));
        assert!(!z.is_null(), "{}", at("alloc_zeroed"));
        assert_eq!(z as usize % align, 0, "{}", at("alloc_zeroed alignment"));
        // SAFETY: `z` is live with at least `size` bytes.
        assert!(zeroed(unsafe { std::slice::from_raw_parts(z, size) }), "{}", at("zeroed"));
        exp.alloc(size);
        exp.check(o, &at("after alloc_zeroed"));

        // A realloc chain: grow across classes, shrink below the start, grow by one, back.
        let mut cur = size;
        let mut p = p;
        for new in [size * 3 + 5, (size / 3).max(1), (size / 3).max(1) + 1, size * 2, size] {
            let old_layout = Layout::from_size_align(cur, align).unwrap();
            // SAFETY: `p` is live with `old_layout`; `new` is non-zero and valid with `align`.
            let q = o.in_scope(|| black_box(unsafe { a.realloc(p, old_layout, new) }));
            assert!(!q.is_null(), "{}", at(&format!("realloc {cur} -> {new}")));
            assert_eq!(
                q as usize % align,
                0,
                "{}",
                at(&format!("realloc {cur} -> {new} alignment"))
            );
            // SAFETY: `q` is a live block of `new` bytes.
            let block = unsafe { std::slice::from_raw_parts_mut(q, new) };
            let keep = cur.min(new);
            let kept = holds(&block[..keep], &runs);
            assert!(kept, "{}", at(&format!("realloc {cur} -> {new} lost contents")));
            fill(block, keep, &runs);
            exp.realloc(cur, new);
            exp.check(o, &at(&format!("after realloc {cur} -> {new}")));
            p = q;
            cur = new;
        }

        // The zeroed block grows; its old bytes stay zero.
        let grown = size + align + 100;
        // SAFETY: `z` is live with `layout`; `grown` is valid with `align`.
        let z2 = o.in_scope(|| black_box(unsafe { a.realloc(z, layout, grown) }));
        assert!(!z2.is_null(), "{}", at("realloc zeroed"));
        assert_eq!(z2 as usize % align, 0, "{}", at("realloc zeroed alignment"));
        // SAFETY: `z2` is live with at least `size` bytes.
        let kept = zeroed(unsafe { std::slice::from_raw_parts(z2, size) });
        assert!(kept, "{}", at("zeroed kept"));
        exp.realloc(size, grown);
        exp.check(o, &at("after realloc of the zeroed block"));

        // Freed outside the owner's scope: still credited to it.
        // SAFETY: live blocks, with the layouts they have now.
        unsafe {
            a.dealloc(p, Layout::from_size_align(cur, align).unwrap());
            exp.free(cur);
            exp.check(o, &at("after first dealloc"));
            a.dealloc(z2, Layout::from_size_align(grown, align).unwrap());
            exp.free(grown);
        }
        exp.check(o, &at("after dealloc"));
        assert_eq!((exp.live_bytes, exp.live_blocks), (0, 0));
    }
}

#[test]
fn layout_matrix_through_the_global_allocator() {
    for align in ALIGNS {
        let o = Owner::named(format!("lay_global_{align}"));
        matrix_for_align(&Global, o, align);
    }
}

#[test]
fn layout_matrix_through_a_tracked_system_instance() {
    let tracked = Tracked::new(System);
    for align in ALIGNS {
        let o = Owner::named(format!("lay_instance_{align}"));
        matrix_for_align(&tracked, o, align);
    }
}

#[test]
fn both_sizes_of_the_side_table_boundary_per_alignment() {
    // Sizes on both sides of every small class edge and of the 256-byte end of "one class
    // up", for the alignments the trailer math treats differently (<= 16 and > 16); each
    // block stays live while the next is made.
    let o = Owner::named("lay_edges");
    let mut live = Vec::new();
    let mut want = 0u64;
    for align in [1usize, 8, 16, 32, 64, 256] {
        let edges = [254, 255, 256, 257, 258, 319, 320, 511, 512, 513, 1022, 1023, 1024, 1025];
        for size in (1..=200).chain(edges).chain([16383, 16384, 16385]) {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size.
            let p = o.in_scope(|| black_box(unsafe { std::alloc::alloc(layout) }));
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            // SAFETY: `p` has `size` bytes.
            unsafe { std::ptr::write_bytes(p, size as u8, size) };
            want += size as u64;
            live.push((p, layout));
        }
    }
    assert_eq!(o.stats().live_bytes, want);
    assert_eq!(o.stats().live_blocks, live.len() as u64);
    for (p, layout) in live {
        // SAFETY: `p` is live with `layout`, written above.
        unsafe {
            let bytes = std::slice::from_raw_parts(p, layout.size());
            // A page at a time (`memcmp`), as `holds`.
            let want = [layout.size() as u8; 4096];
            assert!(bytes.chunks(4096).all(|chunk| chunk == &want[..chunk.len()]));
            std::alloc::dealloc(p, layout);
        }
    }
    assert_eq!(o.stats().live_bytes, 0);
    assert_eq!(o.stats().live_blocks, 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "Miri stops the whole run at an allocation it cannot hold instead of returning null"
)]
fn layouts_near_isize_max_fail_cleanly() {
    let o = Owner::named("lay_near_max");
    let max = isize::MAX as usize;
    let cases = [
        (max, 1),     // no trailer: the inner allocator refuses
        (max - 1, 1), // a trailer would overflow the Layout: refused before the inner call
        (max - 2, 1), // a trailer fits the Layout; the inner allocator refuses
        (max - 4095, 4096),
        (max - 4096 - 3, 4096),
        (max - ((1 << 29) - 1), 1 << 29),
        (max - ((1 << 29) - 1) - 2, 1 << 29),
    ];
    let before = nums(o);
    for (size, align) in cases {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: non-zero size.
        let p = o.in_scope(|| black_box(unsafe { std::alloc::alloc(layout) }));
        assert!(p.is_null(), "size {size} align {align}");
        // SAFETY: non-zero size.
        let z = o.in_scope(|| black_box(unsafe { std::alloc::alloc_zeroed(layout) }));
        assert!(z.is_null(), "zeroed size {size} align {align}");
        assert_eq!(nums(o), before, "size {size} align {align}");
    }
    // A realloc of a live block to an impossible size fails and keeps the block.
    for (small, align) in [(100usize, 8usize), (64, 8), (30, 32), (4096, 4096)] {
        let layout = Layout::from_size_align(small, align).unwrap();
        // SAFETY: non-zero size.
        let p = o.in_scope(|| unsafe { std::alloc::alloc(layout) });
        assert!(!p.is_null());
        // SAFETY: `p` has `small` bytes.
        unsafe { std::ptr::write_bytes(p, 0x5A, small) };
        let with = nums(o);
        for new in [max - (align - 1), max - (align - 1) - 1, max - (align - 1) - 2] {
            // SAFETY: `p` is live with `layout`; `new` rounded up to `align` fits in isize.
            let q = o.in_scope(|| black_box(unsafe { std::alloc::realloc(p, layout, new) }));
            assert!(q.is_null(), "realloc {small} -> {new}");
            assert_eq!(nums(o), with, "realloc {small} -> {new}");
        }
        // SAFETY: the failed realloc left `p` live and untouched.
        unsafe {
            assert!(std::slice::from_raw_parts(p, small).iter().all(|&b| b == 0x5A));
            std::alloc::dealloc(p, layout);
        }
        assert_eq!(nums(o).0, 0);
    }
}
