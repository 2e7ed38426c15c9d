//! Peaks that must be exact.
//!
//! The crate documents `peak_bytes` as exact when one thread allocates and frees in the
//! owner's subtree, and within 64 KiB per thread allocating or freeing in it when others
//! take part (the third test holds two threads to that bound). The first
//! test pins a case with a helper thread that only frees, which is exact too: a slot's first
//! free of an owner records the peak before it. The last one reads on another thread while
//! one thread moves a block between two owners of a subtree: readings lift peaks, and must
//! not lift them above what was live.
#![cfg(feature = "enabled")]

use heapscope::Owner;
use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[test]
fn one_allocating_thread_with_frees_on_another_has_an_exact_peak() {
    let o = Owner::named("peak_one_alloc_thread");
    // Held: 20 000, then 0 (freed on another thread), then 40 000. True peak: 40 000.
    let first = o.in_scope(|| black_box(Vec::<u8>::with_capacity(20_000)));
    assert_eq!(o.stats().peak_bytes, 20_000);
    let (tx, rx) = mpsc::channel();
    let freer = thread::spawn(move || {
        drop(black_box(first));
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("the freeing thread did not finish");
    freer.join().expect("freeing thread panicked");
    assert_eq!(o.stats().live_bytes, 0);
    // Nothing read while `second` lives (a reading would raise the peak itself): the 40 000
    // must be recorded by the allocation and free paths.
    let second = o.in_scope(|| black_box(Vec::<u8>::with_capacity(40_000)));
    drop(second);
    let s = o.stats();
    assert_eq!((s.live_bytes, s.total_bytes, s.total_blocks), (0, 60_000, 2));
    assert_eq!(s.peak_bytes, 40_000, "exactly 40 000 bytes at most were live: {s:?}");
}

/// A thread growing at an owner's peak does not look at the peak on every allocation (only
/// on publishing, every 64 KiB); its next free records it. Here 40 000 bytes in 1000 blocks,
/// under the publication threshold, then one block freed: the peak is the 40 000 just before
/// that free, for the owner and for its parent, though nothing read it in between.
#[test]
fn growth_at_the_peak_is_recorded_by_the_next_free() {
    let parent = Owner::named("peak_growth_then_free");
    let item = parent.child("item");
    let mut held: Vec<Box<[u8; 40]>> = Vec::with_capacity(1000);
    item.in_scope(|| {
        for _ in 0..1000 {
            held.push(black_box(Box::new([0u8; 40])));
        }
    });
    drop(held.pop());
    for owner in [item, parent] {
        let s = owner.stats();
        assert_eq!((s.live_bytes, s.peak_bytes), (39_960, 40_000), "{owner:?}: {s:?}");
    }
    drop(held);
    assert_eq!(item.stats().peak_bytes, 40_000);
}

/// Two threads fill one owner at once (one past the 64 KiB publication threshold, one
/// under it), hold it at a barrier, then free all at once; nothing reads the owner until
/// both are joined. The true peak is what both held at the barrier; the reading may miss at
/// most 64 KiB per thread and may never exceed it.
#[test]
fn two_threads_at_once_stay_within_the_documented_bound() {
    use std::sync::{Arc, Barrier};
    const BOUND: u64 = 2 * 64 * 1024;
    let parent = Owner::named("peak_two_threads");
    for round in 0..20 {
        let owner = parent.child(format!("round{round}"));
        let held = Arc::new(Barrier::new(2));
        let fill = |blocks: usize, size: usize| {
            let held = held.clone();
            thread::spawn(move || {
                let v: Vec<Vec<u8>> = owner.in_scope(|| {
                    (0..blocks).map(|_| black_box(Vec::with_capacity(size))).collect()
                });
                held.wait();
                drop(v);
            })
        };
        // 100 × 1000 B plus the outer Vec's 100 × 24 B, and 50 × 1000 B plus 50 × 24 B.
        let (a, b) = (fill(100, 1000), fill(50, 1000));
        a.join().expect("first thread");
        b.join().expect("second thread");
        let truth = 150 * 1000 + 150 * 24;
        let s = owner.stats();
        owner.retire().unwrap();
        assert_eq!(s.live_bytes, 0, "round {round}");
        assert!(
            s.peak_bytes <= truth,
            "round {round}: peak {} above the truth {truth}",
            s.peak_bytes
        );
        assert!(
            s.peak_bytes + BOUND >= truth,
            "round {round}: peak {} misses the truth {truth} by more than {BOUND}",
            s.peak_bytes
        );
    }
    parent.retire().unwrap();
}

/// A reader on another thread must not lift a peak above any size that was ever live. One
/// thread moves a single block between a parent and its child with `realloc` (a free under
/// one, then an allocation under the other: the subtree never holds more than the block)
/// while another thread reads the parent through `stats` and snapshots. A reading that
/// took the parent's counters before a move and the child's after it would count the block
/// twice, and keeping that reading in the peak would double it.
#[test]
fn readers_on_another_thread_never_lift_a_peak_above_what_was_live() {
    use std::alloc::{alloc, dealloc, realloc, Layout};

    const SIZE: usize = 10_000;
    let parent = Owner::named("peak_reader_parent");
    let child = parent.child("moved");
    let layout = Layout::from_size_align(SIZE, 8).expect("layout");
    let reader = crate::reader::Reader::spawn(move |readings| {
        black_box(parent.stats());
        if readings.is_multiple_of(16) {
            black_box(heapscope::Snapshot::capture());
        }
    });
    // SAFETY: a non-zero size.
    let mut ptr = parent.in_scope(|| unsafe { alloc(layout) });
    assert!(!ptr.is_null());
    for i in 0..crate::scaled(200_000, 200) {
        let to = if i % 2 == 0 { child } else { parent };
        // SAFETY: `ptr` is a live block of `SIZE` bytes with `layout`.
        ptr = to.in_scope(|| unsafe { realloc(ptr, layout, SIZE) });
        assert!(!ptr.is_null());
    }
    // SAFETY: as above.
    unsafe { dealloc(ptr, layout) };
    let readings = reader.stop();
    let s = parent.stats();
    assert_eq!(s.live_bytes, 0);
    assert_eq!(
        s.peak_bytes, SIZE as u64,
        "the subtree never held more than one block of {SIZE} B ({readings} readings): {s:?}"
    );
}
