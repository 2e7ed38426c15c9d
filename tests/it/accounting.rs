use heapscope::testing::Probe;
use heapscope::Owner;
use std::hint::black_box;

#[test]
fn tracking_is_live() {
    assert!(heapscope::is_tracking());
}

#[test]
fn known_sizes_per_owner() {
    let a = Owner::named("acc_known_a");
    let b = Owner::named("acc_known_b");
    // 100 and 24 carry a trailer, 64 too (an exact class, one class up); 4096 lives in the
    // side table.
    let (x, y) = a.in_scope(|| (black_box(vec![0u8; 100]), black_box(vec![0u8; 64])));
    let z = b.in_scope(|| black_box(vec![0u64; 3]));
    let w = b.in_scope(|| black_box(vec![0u8; 4096]));
    let sa = a.stats();
    let sb = b.stats();
    assert_eq!((sa.live_bytes, sa.live_blocks, sa.total_bytes, sa.total_blocks), (164, 2, 164, 2));
    assert_eq!((sb.live_bytes, sb.live_blocks), (24 + 4096, 2));
    assert_eq!(sa.peak_bytes, 164);
    drop((x, y, z, w));
    assert_eq!(a.stats().live_bytes, 0);
    assert_eq!(b.stats().live_blocks, 0);
    assert_eq!(a.stats().total_bytes, 164);
    assert_eq!(a.stats().peak_bytes, 164);
}

#[test]
fn probe_counts_exactly() {
    let p = Probe::start("exact");
    let v: Vec<u8> = black_box(Vec::with_capacity(1000));
    assert_eq!(p.stats().live_bytes, 1000);
    drop(v);
    assert_eq!(p.stats().live_bytes, 0);
    assert_eq!(p.stats().total_blocks, 1);
}

#[test]
fn zero_sized_values_and_empty_collections_count_nothing() {
    // `GlobalAlloc` is never called with a zero size (its contract forbids it, and std never
    // does): values of zero-sized types and empty collections hold no block, and the owner
    // shows none. A collection's first real allocation is counted as usual.
    let p = Probe::start("zero_sized");
    let unit = black_box(Box::new(()));
    let units: Vec<()> = black_box(Vec::with_capacity(1 << 20));
    let mut empty: Vec<u8> = black_box(Vec::new());
    empty.try_reserve(0).expect("reserving nothing");
    let text = black_box(String::new());
    let s = p.stats();
    assert_eq!((s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks), (0, 0, 0, 0));
    empty.push(7);
    assert_eq!((p.stats().live_bytes, p.stats().live_blocks), (8, 1), "Vec<u8>'s first push");
    drop((unit, units, empty, text));
    let s = p.stats();
    assert_eq!((s.live_bytes, s.total_bytes, s.total_blocks), (0, 8, 1));
}
