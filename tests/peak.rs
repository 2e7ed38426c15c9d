//! Peak bytes of a 50 MiB deep clone, in a process of its own.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::Owner;
use std::hint::black_box;

#[test]
fn deep_clone_shows_in_the_peak_exactly() {
    let _g = serial();
    const N: usize = 51_200;
    const LEN: usize = 1000;
    let o = Owner::named("peak_clone_owner");
    let original: Vec<String> = o.in_scope(|| {
        let mut v = Vec::with_capacity(N);
        for i in 0..N {
            let mut s = String::with_capacity(1024);
            s.extend(std::iter::repeat_n((b'a' + (i % 26) as u8) as char, LEN));
            v.push(s);
        }
        black_box(v)
    });
    // Outer: N * 24; each string: capacity 1024.
    let live_before = (N * 24 + N * 1024) as u64;
    let s = o.stats();
    assert_eq!((s.live_bytes, s.live_blocks), (live_before, N as u64 + 1));
    assert_eq!(s.peak_bytes, live_before);

    // A clone has capacity == length: N * 24 + N * 1000 = 50 MiB exactly.
    let clone_bytes = (N * 24 + N * LEN) as u64;
    assert_eq!(clone_bytes, 50 << 20);
    let copy = o.in_scope(|| black_box(original.clone()));
    assert_eq!(copy.len(), N);
    // No reading while the copy lives: a reading raises the peak to the live size it reads,
    // so the peak below must have been recorded by the allocation path itself.
    drop(copy);

    let s = o.stats();
    assert_eq!(s.live_bytes, live_before);
    assert_eq!(s.live_blocks, N as u64 + 1);
    assert_eq!(s.peak_bytes, live_before + clone_bytes);
    assert_eq!(s.total_bytes, live_before + clone_bytes);
    assert_eq!(s.total_blocks, 2 * (N as u64 + 1));
    drop(original);
    let s = o.stats();
    assert_eq!((s.live_bytes, s.peak_bytes), (0, live_before + clone_bytes));
}

/// Tests here run one at a time: the id-reuse test needs the id it just freed to be the next
/// one handed out.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn peaks_of_a_tree_single_threaded() {
    let _g = serial();
    let p = Owner::named("peak_tree_p");
    let c = p.child("c");
    let g = c.child("g");
    let vp = p.in_scope(|| black_box(vec![0u8; 100]));
    let vc = c.in_scope(|| black_box(vec![0u8; 300]));
    let vg = g.in_scope(|| black_box(vec![0u32; 16]));
    drop(vc);
    let vc2 = c.in_scope(|| black_box(vec![0u8; 50]));
    drop((vp, vg, vc2));
    assert_eq!(p.stats().peak_bytes, 464);
    assert_eq!(c.stats().peak_bytes, 364);
    assert_eq!(g.stats().peak_bytes, 64);
    assert_eq!(p.stats().live_bytes, 0);
}

#[test]
fn peak_after_single_threaded_use_of_a_reused_id() {
    // The previous holder of an id allocated on this thread and freed on another. The next
    // owner to get the id is used on this thread alone: its peak must be exact.
    let _g = serial();
    let old = Owner::named("peak_reuse_old");
    let v = old.in_scope(|| black_box(vec![0u8; 10_000]));
    std::thread::spawn(move || drop(v)).join().unwrap();
    assert_eq!(old.stats().live_bytes, 0);
    old.retire().unwrap();

    let new = Owner::named("peak_reuse_new");
    let w = new.in_scope(|| black_box(vec![0u8; 5000]));
    drop(w);
    let s = new.stats();
    assert_eq!((s.live_bytes, s.total_bytes), (0, 5000));
    assert_eq!(s.peak_bytes, 5000);

    // And the other way round: allocated on another thread, freed here.
    let old2 = Owner::named("peak_reuse_old2");
    let v =
        std::thread::spawn(move || old2.in_scope(|| black_box(vec![0u8; 10_000]))).join().unwrap();
    drop(v);
    old2.retire().unwrap();
    let new2 = Owner::named("peak_reuse_new2");
    let w = new2.in_scope(|| black_box(vec![0u8; 5000]));
    drop(w);
    let s = new2.stats();
    new.retire().unwrap();
    new2.retire().unwrap();
    assert_eq!((s.live_bytes, s.total_bytes), (0, 5000));
    assert_eq!(s.peak_bytes, 5000);
}

#[test]
fn ids_reused_by_the_other_kind_of_owner_keep_exact_peaks() {
    // A child's limits live apart from a top-level owner's (the fast path sends every call of
    // a child out of its one comparison). An id retired by one kind and reused by the other
    // must start from limits that look, whichever kind the new owner is.
    let _g = serial();
    let parent = Owner::named("peak_kind_parent");
    for round in 0..32 {
        let top = Owner::named(format!("peak_kind_top_{round}"));
        drop(top.in_scope(|| black_box(vec![0u8; 1000])));
        top.retire().unwrap();

        // Very likely on the id the top-level owner just left.
        let child = parent.child(format!("c{round}"));
        let a = child.in_scope(|| black_box(vec![0u8; 700]));
        let b = child.in_scope(|| black_box(vec![0u8; 300]));
        drop(a);
        assert_eq!(parent.stats().live_bytes, 300, "round {round}");
        drop(b);
        let s = child.stats();
        assert_eq!((s.live_bytes, s.total_bytes, s.peak_bytes), (0, 1000, 1000), "round {round}");
        assert_eq!(parent.stats().peak_bytes, 1000, "round {round}");
        child.retire().unwrap();

        // And a top-level owner on the id the child left.
        let top = Owner::named(format!("peak_kind_again_{round}"));
        let v = top.in_scope(|| black_box(vec![0u8; 2000]));
        let w = top.in_scope(|| black_box(vec![0u8; 500]));
        drop((v, w));
        let s = top.stats();
        assert_eq!((s.live_bytes, s.total_bytes, s.peak_bytes), (0, 2500, 2500), "round {round}");
        top.retire().unwrap();
    }
    assert_eq!(parent.stats().live_bytes, 0);
    parent.retire().unwrap();
}

#[test]
fn a_peak_reached_on_one_thread_and_ended_by_frees_on_another_is_recorded() {
    // This thread's slot gets its floor below zero for the owner (a block allocated and
    // freed here), so its frees of it below stay on the fast path and record nothing. The
    // peak must then come from the other thread's records as it allocates: at its first
    // block (the owner below its earlier peak of 10 000) the slot sets its headroom to the
    // room left below that peak, and its second block passes it and records 13 000. Nothing
    // reads the owner in between. Passed with the record made on another owner's counters
    // (`raise_peak`'s `owner & ID_MASK` as `|` or `^`: the peak stayed 10 000).
    let _g = serial();
    let o = Owner::named("peak_other_thread_frees");
    drop(o.in_scope(|| black_box(vec![0u8; 10_000])));
    let blocks = std::thread::spawn(move || {
        let a = o.in_scope(|| black_box(vec![0u8; 1000]));
        let b = o.in_scope(|| black_box(vec![0u8; 12_000]));
        (a, b)
    })
    .join()
    .unwrap();
    drop(blocks);
    let s = o.stats();
    assert_eq!((s.live_bytes, s.total_bytes, s.peak_bytes), (0, 23_000, 13_000));
    o.retire().unwrap();
}
