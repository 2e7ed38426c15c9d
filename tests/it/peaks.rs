//! Peaks with a single allocating thread whose blocks are freed on another thread.
//!
//! The crate documents `peak_bytes` as exact when one thread allocates in the owner's subtree,
//! wherever its blocks are freed. Here only the test thread ever allocates under the owner; a
//! helper thread only frees.
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
    let second = o.in_scope(|| black_box(Vec::<u8>::with_capacity(40_000)));
    let s = o.stats();
    assert_eq!((s.live_bytes, s.total_bytes, s.total_blocks), (40_000, 60_000, 2));
    drop(second);
    let s = o.stats();
    assert_eq!(s.peak_bytes, 40_000, "never more than 40 000 bytes were live: {s:?}");
}
