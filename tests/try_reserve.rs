//! `Vec::try_reserve` of absurd sizes returns `Err` and changes no counter, in a process of
//! its own so that the process-wide numbers can be compared too.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::testing::Probe;
use std::hint::black_box;

#[test]
fn absurd_try_reserve_fails_without_counting() {
    assert!(heapscope::is_tracking());
    let probe = Probe::start("try_reserve");
    let mut v: Vec<u8> = Vec::new();
    let mut w: Vec<u8> = Vec::with_capacity(64);
    let mut x: Vec<u8> = Vec::with_capacity(100);
    let owner_before = probe.stats();
    assert_eq!(owner_before.live_bytes, 164);
    // Several tries: another thread of the harness could allocate between the two reads of
    // the process totals; the owner's numbers must be unchanged on every try regardless.
    let mut global_unchanged = false;
    for _ in 0..10 {
        let global_before = heapscope::global_stats();
        let r1 = black_box(&mut v).try_reserve(isize::MAX as usize - 1);
        let r2 = black_box(&mut v).try_reserve(usize::MAX);
        let r3 = black_box(&mut w).try_reserve_exact(isize::MAX as usize - 64);
        let r4 = black_box(&mut x).try_reserve(isize::MAX as usize - 100);
        let global_after = heapscope::global_stats();
        assert!(r1.is_err() && r2.is_err() && r3.is_err() && r4.is_err());
        assert_eq!(probe.stats(), owner_before);
        if global_after == global_before {
            global_unchanged = true;
            break;
        }
    }
    assert!(global_unchanged, "the process totals moved on every try");
    assert_eq!((v.capacity(), w.capacity(), x.capacity()), (0, 64, 100));
    drop((v, w, x));
    assert_eq!(probe.stats().live_bytes, 0);
}
