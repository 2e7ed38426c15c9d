//! Without the `enabled` feature: the same API, nothing measured, nothing in the way.
#![cfg(not(feature = "enabled"))]

heapscope::install!();

use heapscope::testing::Probe;
use heapscope::{Owner, OwnerScope, OwnerStats, Retained, Snapshot};
use std::hint::black_box;

#[test]
fn nothing_is_tracked() {
    assert!(!heapscope::is_tracking());
    assert_eq!(std::mem::size_of::<OwnerScope>(), 0);
    let o = Owner::named("disabled_owner");
    let v = o.in_scope(|| {
        assert_eq!(Owner::current(), Owner::root());
        black_box(vec![0u8; 4096])
    });
    assert_eq!(o.stats(), OwnerStats::default());
    assert_eq!(heapscope::global_stats(), OwnerStats::default());
    let snap = Snapshot::capture();
    assert!(!snap.tracking);
    assert!(snap.owners.is_empty());
    assert_eq!(snap.total, OwnerStats::default());
    // Nothing measured, nothing largest: an item listed at 0 B told a reader nothing true.
    let item = Retained::build(o, "disabled_item", || black_box(vec![0u8; 100]));
    assert!(heapscope::retained::top(10).is_empty());
    drop((v, item));
}

#[test]
fn probes_and_growth_assertions_run_the_code() {
    let p = Probe::start("disabled_probe");
    assert!(!p.is_active());
    let v = black_box(vec![1u8; 1000]);
    assert_eq!(p.stats(), OwnerStats::default());
    let o = Owner::named("disabled_growth");
    let mut runs = 0;
    let out = heapscope::assert_owner_growth!(o, at_most = 0, {
        runs += 1;
        o.in_scope(|| black_box(vec![0u8; 1 << 20]))
    });
    assert_eq!(runs, 1);
    assert_eq!(out.len(), 1 << 20);
    let report = heapscope::testing::leak_check(1, 6, |_| {});
    assert!(!report.is_active());
    assert!(report.leaking().is_empty());
    drop((v, out));
}

#[test]
fn retained_items_work_and_report_zero() {
    let item = Retained::build(Owner::named("disabled_parent"), "label", || vec![0u8; 300]);
    assert_eq!(item.len(), 300);
    assert_eq!(item.live_bytes(), 0);
    assert_eq!(item.label(), "label");
}

#[test]
fn cached_owner_follows_retirement_when_disabled() {
    // As with tracking on: once the cached owner is retired, `owner!` registers the name again.
    fn cached() -> Owner {
        heapscope::owner!("disabled_cached_retired")
    }
    let first = cached();
    first.retire().unwrap();
    // Takes the freed id, as any registration might.
    let other = Owner::named("disabled_cached_other");
    let again = cached();
    assert_eq!(again, Owner::named("disabled_cached_retired"));
    assert_eq!(again.name(), "disabled_cached_retired");
    assert_ne!(again, other);
}
