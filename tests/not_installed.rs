//! Tracking compiled in (`enabled`) but heapscope's allocator not installed: this binary has
//! no `install!`, as a library's own tests or a program that kept its allocator have none.
//! Nothing is measured, so no reading may name anything largest. Its own process: whether the
//! allocator is installed is the binary's.
#![cfg(feature = "enabled")]

use heapscope::{Owner, Retained, Snapshot};
use std::hint::black_box;

/// `retained::top` listed every item at 0 B here (and so did the report's `retained`), an
/// answer to "which item is largest" that nothing measured; a snapshot lists no owner.
#[test]
fn nothing_is_listed_as_largest_when_nothing_is_measured() {
    assert!(!heapscope::is_tracking());
    assert!(Snapshot::capture().owners.is_empty());
    let pages = Owner::named("not_installed_pages");
    let big = Retained::build(pages, "big", || black_box(vec![0u8; 40_000]));
    let small = Retained::build(pages, "small", || black_box(vec![0u8; 10]));
    assert_eq!((big.live_bytes(), small.live_bytes()), (0, 0));
    let top = heapscope::retained::top(10);
    assert!(top.is_empty(), "{top:?}");
    let report = heapscope::report();
    assert!(!report.runtime.tracking);
    assert!(report.retained.is_empty(), "{:?}", report.retained);
    drop((big, small));
}
