//! `Tracked` over a recording mock inner allocator, in a process of its own.
//!
//! The mock forwards to `System` and remembers, for every live block, the `(size, align)` it
//! handed out. It checks that every `dealloc` and `realloc` it receives carries exactly that
//! layout and that it is never asked for zero bytes. It never panics inside the allocator:
//! it counts violations in atomics that the tests read afterwards. Its bookkeeping is a
//! fixed-size static table behind a spin lock, so it never allocates.
//!
//! A failure switch (an `AtomicBool`, honoured only on the thread that set it, so that
//! libtest's other threads keep allocating) makes `alloc`, `alloc_zeroed` and `realloc`
//! return null.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Mutex, MutexGuard};

#[global_allocator]
static A: heapscope::Tracked<Mock> = heapscope::Tracked::new(Mock);

struct Mock;

const CAP: usize = 1 << 17;
const MASK: usize = CAP - 1;
/// An empty slot of the table (no block lives at address 0).
const EMPTY: usize = 0;

static LOCK: AtomicBool = AtomicBool::new(false);
static KEYS: [AtomicUsize; CAP] = [const { AtomicUsize::new(EMPTY) }; CAP];
static SIZES: [AtomicUsize; CAP] = [const { AtomicUsize::new(0) }; CAP];
static ALIGNS: [AtomicUsize; CAP] = [const { AtomicUsize::new(0) }; CAP];

/// Violations and events, read by the tests.
static WRONG_LAYOUT: AtomicUsize = AtomicUsize::new(0);
static ZERO_SIZE: AtomicUsize = AtomicUsize::new(0);
static UNKNOWN_PTR: AtomicUsize = AtomicUsize::new(0);
static TABLE_FULL: AtomicUsize = AtomicUsize::new(0);
static INNER_CALLS: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);

static FAIL: AtomicBool = AtomicBool::new(false);
thread_local! {
    static FAIL_HERE: Cell<bool> = const { Cell::new(false) };
}

fn failing() -> bool {
    FAIL.load(Relaxed) && FAIL_HERE.with(Cell::get)
}

/// Tests that switch failures on run one at a time: the switch and `REFUSED` are shared.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes this thread's allocations fail until the guard is dropped. Hold [`serial`].
struct Failing;

impl Failing {
    fn start() -> Failing {
        FAIL_HERE.with(|f| f.set(true));
        FAIL.store(true, SeqCst);
        Failing
    }
}

impl Drop for Failing {
    fn drop(&mut self) {
        FAIL.store(false, SeqCst);
        FAIL_HERE.with(|f| f.set(false));
    }
}

struct Locked;

fn lock() -> Locked {
    while LOCK.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
        std::hint::spin_loop();
    }
    Locked
}

impl Drop for Locked {
    fn drop(&mut self) {
        LOCK.store(false, Release);
    }
}

fn home(addr: usize) -> usize {
    (addr >> 4).wrapping_mul(0x9E37_79B9) & MASK
}

/// Index of `addr` in the table. Caller holds the lock.
fn find(addr: usize) -> Option<usize> {
    let mut i = home(addr);
    for _ in 0..CAP {
        match KEYS[i].load(Relaxed) {
            EMPTY => return None,
            k if k == addr => return Some(i),
            _ => i = (i + 1) & MASK,
        }
    }
    None
}

/// Records a fresh block. Caller holds the lock.
fn insert(addr: usize, size: usize, align: usize) {
    let mut i = home(addr);
    for _ in 0..CAP {
        if KEYS[i].load(Relaxed) == EMPTY {
            KEYS[i].store(addr, Relaxed);
            SIZES[i].store(size, Relaxed);
            ALIGNS[i].store(align, Relaxed);
            return;
        }
        i = (i + 1) & MASK;
    }
    TABLE_FULL.fetch_add(1, Relaxed);
}

/// Removes the entry at index `i`, shifting later entries of its cluster back (linear
/// probing deletion without tombstones). Caller holds the lock.
fn remove_at(mut i: usize) {
    let mut j = i;
    loop {
        KEYS[i].store(EMPTY, Relaxed);
        loop {
            j = (j + 1) & MASK;
            let k = KEYS[j].load(Relaxed);
            if k == EMPTY {
                return;
            }
            let h = home(k);
            // Entry j may move to i unless its home lies cyclically in (i, j].
            let stays = if i <= j { i < h && h <= j } else { i < h || h <= j };
            if !stays {
                break;
            }
        }
        KEYS[i].store(KEYS[j].load(Relaxed), Relaxed);
        SIZES[i].store(SIZES[j].load(Relaxed), Relaxed);
        ALIGNS[i].store(ALIGNS[j].load(Relaxed), Relaxed);
        i = j;
    }
}

/// Checks that `ptr` is live with exactly `layout`, and returns the layout it was made with.
/// Caller holds the lock.
fn check(ptr: *mut u8, layout: Layout) -> (Option<usize>, Layout) {
    let Some(i) = find(ptr as usize) else {
        UNKNOWN_PTR.fetch_add(1, Relaxed);
        return (None, layout);
    };
    let (size, align) = (SIZES[i].load(Relaxed), ALIGNS[i].load(Relaxed));
    if (size, align) != (layout.size(), layout.align()) {
        WRONG_LAYOUT.fetch_add(1, Relaxed);
    }
    // SAFETY: recorded from a valid Layout when the block was made.
    (Some(i), unsafe { Layout::from_size_align_unchecked(size, align) })
}

/// The layout the mock recorded for a live block, if any.
fn recorded(ptr: *const u8) -> Option<(usize, usize)> {
    let _l = lock();
    find(ptr as usize).map(|i| (SIZES[i].load(Relaxed), ALIGNS[i].load(Relaxed)))
}

/// `alloc` and `alloc_zeroed`: counted, refused while failing, recorded when granted.
///
/// # Safety
/// As `GlobalAlloc::alloc`.
unsafe fn fresh(layout: Layout, zeroed: bool) -> *mut u8 {
    INNER_CALLS.fetch_add(1, Relaxed);
    if layout.size() == 0 {
        ZERO_SIZE.fetch_add(1, Relaxed);
    }
    if failing() {
        REFUSED.fetch_add(1, Relaxed);
        return std::ptr::null_mut();
    }
    let _l = lock();
    // SAFETY: caller's guarantees.
    let p = unsafe {
        if zeroed {
            System.alloc_zeroed(layout)
        } else {
            System.alloc(layout)
        }
    };
    if !p.is_null() {
        insert(p as usize, layout.size(), layout.align());
    }
    p
}

// SAFETY: every call is forwarded to `System` with the layout `System` allocated the block
// with (the recorded one, even when the caller passed another), or refused with null.
unsafe impl GlobalAlloc for Mock {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: caller's guarantees.
        unsafe { fresh(layout, false) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: caller's guarantees.
        unsafe { fresh(layout, true) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        INNER_CALLS.fetch_add(1, Relaxed);
        if layout.size() == 0 {
            ZERO_SIZE.fetch_add(1, Relaxed);
        }
        let _l = lock();
        let (at, made_with) = check(ptr, layout);
        if let Some(i) = at {
            remove_at(i);
        }
        // SAFETY: `ptr` came from `System` with `made_with`.
        unsafe { System.dealloc(ptr, made_with) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        INNER_CALLS.fetch_add(1, Relaxed);
        if layout.size() == 0 || new_size == 0 {
            ZERO_SIZE.fetch_add(1, Relaxed);
        }
        let _l = lock();
        let (at, made_with) = check(ptr, layout);
        if failing() {
            REFUSED.fetch_add(1, Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `System` with `made_with`; the caller vouches for
        // `new_size`.
        let q = unsafe { System.realloc(ptr, made_with, new_size) };
        if !q.is_null() {
            if let Some(i) = at {
                remove_at(i);
            }
            insert(q as usize, new_size, layout.align());
        }
        q
    }
}

fn assert_no_violations() {
    assert!(INNER_CALLS.load(SeqCst) > 0, "the mock was not used");
    assert_eq!(
        WRONG_LAYOUT.load(SeqCst),
        0,
        "the inner allocator got a layout it did not hand out"
    );
    assert_eq!(ZERO_SIZE.load(SeqCst), 0, "the inner allocator was asked for zero bytes");
    assert_eq!(
        UNKNOWN_PTR.load(SeqCst),
        0,
        "the inner allocator got a pointer it never handed out"
    );
    assert_eq!(TABLE_FULL.load(SeqCst), 0, "the mock's table overflowed (test limitation)");
}

#[test]
fn inner_sees_exactly_the_layouts_it_handed_out_through_realloc_chains() {
    // Vec doubling: exact classes (side table) and the sizes between (trailer).
    for elem in [1usize, 2, 3, 8, 24] {
        let mut v: Vec<u8> = Vec::new();
        for i in 0..20_000 {
            v.push(i as u8);
            if i % elem == 0 {
                v.reserve(elem);
            }
        }
        v.shrink_to_fit();
        v.truncate(777);
        v.shrink_to_fit();
        black_box(&v);
    }
    let mut strings: Vec<String> = Vec::new();
    for i in 0..2000 {
        let mut s = String::new();
        for _ in 0..(i % 97) {
            s.push_str("ab");
        }
        strings.push(s);
    }
    strings.retain(|s| s.len() % 3 == 0);
    strings.shrink_to_fit();
    drop(black_box(strings));

    // Direct realloc chains at every alignment, across classes in both directions.
    for align in [1usize, 2, 8, 16, 32, 64, 4096] {
        let chain = [1usize, 6, 7, 8, 14, 16, 24, 31, 64, 100, 4095, 4096, 5000, 70_000, 64, 3, 1];
        let mut cur = chain[0];
        let layout = Layout::from_size_align(cur, align).unwrap();
        // SAFETY: non-zero size.
        let mut p = unsafe { std::alloc::alloc(layout) };
        assert!(!p.is_null());
        for &new in &chain[1..] {
            let old = Layout::from_size_align(cur, align).unwrap();
            // SAFETY: `p` is live with `old`; `new` is non-zero and valid with `align`.
            p = unsafe { std::alloc::realloc(p, old, new) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            cur = new;
        }
        // SAFETY: `p` is live with this layout.
        unsafe { std::alloc::dealloc(p, Layout::from_size_align(cur, align).unwrap()) };
    }
    assert_no_violations();
}

#[test]
fn the_inner_size_is_the_request_or_the_request_plus_the_tag() {
    for (size, align) in [
        (1, 1),
        (16, 8),
        (24, 8),
        (64, 8),
        (100, 8),
        (512, 8),
        (4096, 8),
        (5000, 8),
        (30, 32),
        (32, 32),
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { std::alloc::alloc(layout) };
        assert!(!p.is_null());
        let (inner, inner_align) = recorded(p).expect("the mock recorded the block");
        assert_eq!(inner_align, align);
        #[cfg(feature = "enabled")]
        {
            // Documented: a 2-byte trailer where the class has room or the request is an
            // exact class of at most 256 bytes; nothing on other exact classes.
            assert!(inner == size || inner == size + 2, "size {size}: inner {inner}");
            if [512, 4096, 32].contains(&size) {
                assert_eq!(inner, size, "exact class {size} must not grow");
            }
            if [16, 24, 64, 100, 5000].contains(&size) {
                assert_eq!(inner, size + 2, "size {size} takes a trailer");
            }
        }
        #[cfg(not(feature = "enabled"))]
        assert_eq!(inner, size);
        // SAFETY: live with `layout`.
        unsafe { std::alloc::dealloc(p, layout) };
    }
    assert_no_violations();
}

#[test]
fn absurd_try_reserve_is_an_error() {
    let _g = serial();
    let mut v = Vec::<u8>::new();
    assert!(v.try_reserve(usize::MAX / 2).is_err());
    assert!(v.try_reserve(usize::MAX).is_err());
    let err = {
        let _f = Failing::start();
        Vec::<u8>::new().try_reserve(100)
    };
    assert!(err.is_err());
    assert_eq!(v.capacity(), 0);
}

#[cfg(feature = "enabled")]
mod failing {
    use super::*;
    use heapscope::Owner;

    /// `(live_bytes, live_blocks, peak_bytes, total_bytes, total_blocks)`.
    fn all(o: Owner) -> (u64, u64, u64, u64, u64) {
        let s = o.stats();
        (s.live_bytes, s.live_blocks, s.peak_bytes, s.total_bytes, s.total_blocks)
    }

    #[test]
    fn a_failed_alloc_changes_no_counter() {
        let _g = serial();
        let o = Owner::named("mock_fail_alloc");
        let kept = o.in_scope(|| black_box(vec![0u8; 100]));
        let before = all(o);
        assert_eq!(before, (100, 1, 100, 100, 1));
        let refused = REFUSED.load(SeqCst);
        let (r1, r2, p1, p2) = o.in_scope(|| {
            let _f = Failing::start();
            let r1 = Vec::<u8>::new().try_reserve(1000);
            let r2 = Vec::<u64>::new().try_reserve_exact(8);
            let layout = Layout::from_size_align(64, 64).unwrap();
            // SAFETY: non-zero size.
            let p1 = unsafe { std::alloc::alloc(layout) };
            // SAFETY: non-zero size.
            let p2 = unsafe { std::alloc::alloc_zeroed(layout) };
            (r1.is_err(), r2.is_err(), p1.is_null(), p2.is_null())
        });
        assert!(r1 && r2 && p1 && p2);
        assert_eq!(REFUSED.load(SeqCst), refused + 4);
        assert_eq!(all(o), before);
        drop(kept);
        assert_eq!(all(o), (0, 0, 100, 100, 1));
        assert_no_violations();
    }

    #[test]
    fn a_failed_realloc_leaves_the_block_with_its_owner() {
        let _g = serial();
        let a = Owner::named("mock_fail_realloc_a");
        let b = Owner::named("mock_fail_realloc_b");
        let c = Owner::named("mock_fail_realloc_c");
        // 100: trailer; 512: side table; 4096 at align 4096: side table, over-aligned.
        let mut t: Vec<u8> = a.in_scope(|| black_box((0..100).map(|i| i as u8).collect()));
        let mut s: Vec<u8> = a.in_scope(|| black_box((0..512).map(|i| i as u8).collect()));
        let big = Layout::from_size_align(4096, 4096).unwrap();
        // SAFETY: non-zero size.
        let p = a.in_scope(|| unsafe { std::alloc::alloc(big) });
        assert!(!p.is_null());
        // SAFETY: `p` has 4096 bytes.
        unsafe { std::ptr::write_bytes(p, 0xC3, 4096) };
        assert_eq!((t.capacity(), s.capacity()), (100, 512));
        let before = all(a);
        assert_eq!(before, (4708, 3, 4708, 4708, 3));

        let (rt, rs, q) = b.in_scope(|| {
            let _f = Failing::start();
            let rt = t.try_reserve_exact(1000);
            let rs = s.try_reserve_exact(1000);
            // SAFETY: `p` is live with `big`.
            let q = unsafe { std::alloc::realloc(p, big, 8192) };
            (rt.is_err(), rs.is_err(), q.is_null())
        });
        assert!(rt && rs && q);
        assert_eq!(all(a), before);
        assert_eq!(all(b), (0, 0, 0, 0, 0));
        assert_eq!((t.capacity(), s.capacity()), (100, 512));
        assert!(t.iter().enumerate().all(|(i, &x)| x == i as u8));
        assert!(s.iter().enumerate().all(|(i, &x)| x == i as u8));
        // SAFETY: `p` is still live with `big`.
        assert!(unsafe { std::slice::from_raw_parts(p, 4096) }.iter().all(|&x| x == 0xC3));

        // The blocks are still a's: freeing them under c credits a.
        c.in_scope(|| {
            drop(t);
            drop(s);
            // SAFETY: `p` is live with `big`.
            unsafe { std::alloc::dealloc(p, big) };
        });
        assert_eq!(all(a), (0, 0, 4708, 4708, 3));
        assert_eq!(all(c), (0, 0, 0, 0, 0));
        assert_no_violations();
    }

    #[test]
    fn a_failed_grow_then_a_successful_one() {
        let _g = serial();
        let a = Owner::named("mock_regrow_a");
        let b = Owner::named("mock_regrow_b");
        let mut v: Vec<u8> = a.in_scope(|| black_box(vec![5u8; 64]));
        let failed = b.in_scope(|| {
            let _f = Failing::start();
            v.try_reserve_exact(64).is_err()
        });
        assert!(failed);
        b.in_scope(|| v.reserve_exact(64));
        assert_eq!(v.capacity(), 128);
        assert!(v.iter().all(|&x| x == 5));
        assert_eq!(all(a), (0, 0, 64, 64, 1));
        assert_eq!(all(b), (128, 1, 128, 128, 1));
        drop(v);
        assert_eq!(all(b), (0, 0, 128, 128, 1));
        assert_no_violations();
    }
}
