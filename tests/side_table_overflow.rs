//! Blocks the side table cannot hold are charged to `heapscope.overflow`, in a process of its
//! own (nothing else here falls back to the overflow owner, so its numbers are this file's).
//!
//! The side table keys blocks by address and refuses addresses of 2^48 and above (see README
//! Limits). A `Tracked` over an inner allocator that hands out such addresses reaches that
//! path without filling the table: for layouts without a trailer (exact classes above 256 B,
//! small over-aligned blocks) the wrapper only records the address and never touches the
//! block, so the inner allocator can return addresses that are never mapped. Until these tests,
//! no test reached `adopt`'s fallback, `dealloc`'s or `realloc`'s `OVERFLOW` for a block not
//! found, nor a failed `realloc` of such a block: mutating any of them passed the suite.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::{Owner, Snapshot, Tracked};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

/// Hands out addresses from 2^50 up, 1 MiB apart (aligned for every layout used here), that
/// nothing ever dereferences; `realloc` fails while [`FAIL`] is set.
struct Far;

const FAR: usize = 1 << 50;
static NEXT: AtomicUsize = AtomicUsize::new(FAR);
static FREED: AtomicUsize = AtomicUsize::new(0);
static FAIL: AtomicBool = AtomicBool::new(false);

fn far_address() -> *mut u8 {
    std::ptr::without_provenance_mut(NEXT.fetch_add(1 << 20, SeqCst))
}

// SAFETY: never used as a global allocator; its blocks are addresses that the tests below only
// hand back to it, through a `Tracked` that never dereferences blocks of these layouts.
unsafe impl GlobalAlloc for Far {
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        far_address()
    }
    unsafe fn alloc_zeroed(&self, _: Layout) -> *mut u8 {
        far_address()
    }
    unsafe fn dealloc(&self, ptr: *mut u8, _: Layout) {
        assert!(ptr.addr() >= FAR, "heapscope: a block Far never handed out");
        FREED.fetch_add(1, SeqCst);
    }
    unsafe fn realloc(&self, _: *mut u8, _: Layout, _: usize) -> *mut u8 {
        if FAIL.load(SeqCst) {
            std::ptr::null_mut()
        } else {
            far_address()
        }
    }
}

/// `(live_bytes, live_blocks, total_bytes, total_blocks)`.
fn nums(o: Owner) -> (u64, u64, u64, u64) {
    let s = o.stats();
    (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks)
}

/// Each of `now`'s numbers minus `then`'s.
fn grew(then: (u64, u64, u64, u64), now: (u64, u64, u64, u64)) -> (u64, u64, u64, u64) {
    (now.0 - then.0, now.1 - then.1, now.2 - then.2, now.3 - then.3)
}

fn overflows() -> u64 {
    Snapshot::capture().side_table_overflows
}

#[test]
fn blocks_the_side_table_refuses_are_the_overflow_owners_through_alloc_realloc_and_free() {
    let far = Tracked::new(Far);
    let (a, b) = (Owner::named("far_a"), Owner::named("far_b"));
    let page = Layout::from_size_align(4096, 8).unwrap(); // exact class: side table
    let aligned = Layout::from_size_align(64, 64).unwrap(); // over-aligned: hashed levels
    let (o0, refused0) = (nums(Owner::overflow()), overflows());

    // Allocated under `a`: the table refuses both, so both are the overflow owner's.
    // SAFETY: non-zero layouts; `Far`'s blocks are never dereferenced.
    let (p, q) = a.in_scope(|| unsafe { (far.alloc(page), far.alloc_zeroed(aligned)) });
    assert!(p.addr() >= FAR && q.addr() >= FAR);
    assert_eq!(nums(a), (0, 0, 0, 0), "charged to the current owner");
    assert_eq!(grew(o0, nums(Owner::overflow())), (4160, 2, 4160, 2));
    assert_eq!(overflows() - refused0, 2);

    // Grown under `b`: the old block, not found in the table, credits the overflow owner,
    // and the new one is refused again.
    // SAFETY: `p` is live with `page`.
    let r = b.in_scope(|| unsafe { far.realloc(p, page, 8192) });
    assert!(r.addr() >= FAR);
    assert_eq!((nums(a), nums(b)), ((0, 0, 0, 0), (0, 0, 0, 0)));
    assert_eq!(grew(o0, nums(Owner::overflow())), (8256, 2, 12352, 3));
    assert_eq!(overflows() - refused0, 3);

    // A failed `realloc` of a block that was never in the table changes nothing: it is not
    // put back into the table (which would refuse it and count it out and in again).
    FAIL.store(true, SeqCst);
    // SAFETY: `q` is live with `aligned`.
    let failed = b.in_scope(|| unsafe { far.realloc(q, aligned, 128) });
    FAIL.store(false, SeqCst);
    assert!(failed.is_null());
    assert_eq!(grew(o0, nums(Owner::overflow())), (8256, 2, 12352, 3));
    assert_eq!(overflows() - refused0, 3);

    // Freed under `a`: both credit the overflow owner.
    a.in_scope(|| {
        // SAFETY: `r` is live with 8192 bytes at `page`'s alignment, `q` with `aligned`.
        unsafe {
            far.dealloc(r, Layout::from_size_align(8192, 8).unwrap());
            far.dealloc(q, aligned);
        }
    });
    assert_eq!(FREED.load(SeqCst), 2);
    assert_eq!((nums(a), nums(b)), ((0, 0, 0, 0), (0, 0, 0, 0)));
    assert_eq!(grew(o0, nums(Owner::overflow())), (0, 0, 12352, 3));
    assert_eq!(overflows() - refused0, 3);
}
