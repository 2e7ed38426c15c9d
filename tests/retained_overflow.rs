//! Retained items past the registry's 4096 owners, in a process of their own (the test fills
//! the registry).
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::{Owner, Retained};
use std::hint::black_box;

/// An agent keeping more items than the registry has owners: the items past it are built
/// under `heapscope.overflow` (one warning). They work, their bytes are counted there
/// exactly, and `top(n)` cannot list them (no owner, no label of their own): what a
/// user sees must say so. `top(3)` listed three smaller items as the largest and the report's
/// `retained` section said nothing of the 109 larger ones (547.7 KiB) held outside it.
#[test]
fn items_past_the_registry_are_counted_under_overflow_and_reported_as_unlisted() {
    let parent = Owner::named("ovf_tools");
    let items: Vec<Retained<Vec<u8>>> = (0..4200usize)
        .map(|i| Retained::build(parent, format!("out {i}"), || black_box(vec![0u8; 1000 + i])))
        .collect();
    let first = items.iter().position(|i| i.owner() == Owner::overflow()).expect("overflowed");
    // 4092 user ids, one taken by `ovf_tools`.
    assert_eq!(first, 4091);
    let size = |i: usize| 1000 + i as u64;
    let own: u64 = (0..first).map(size).sum();
    let spilled: u64 = (first..4200).map(size).sum();
    let unlisted = (4200 - first) as u64;
    assert_eq!((own, spilled, unlisted), (12_457_095, 560_805, 109));

    // The items work; the spilled ones' bytes are the overflow owner's, not the parent's.
    let last = &items[4199];
    assert_eq!(last.len(), 5199);
    assert_eq!(last.label(), "");
    assert_eq!(parent.stats().live_bytes, own);
    assert_eq!(Owner::overflow().stats().live_bytes, spilled);
    assert_eq!(last.live_bytes(), spilled, "documented: the overflow owner's, all items together");
    assert!(matches!(last.transfer_to(Owner::named("x")), Err(heapscope::Error::Reserved { .. })));

    // `top` lists the items that have an owner of their own, and says how many it cannot.
    assert_eq!(heapscope::retained::top(usize::MAX).len(), first);
    assert_eq!(heapscope::retained::overflow_items(), unlisted);
    let report = heapscope::report();
    let warning = report.warnings.iter().find(|w| w.contains("retained items"));
    let warning = warning.unwrap_or_else(|| panic!("no warning in {:?}", report.warnings));
    assert!(warning.starts_with("109 retained items"), "{warning}");
    assert!(warning.contains("heapscope.overflow"), "{warning}");
    assert!(report.to_string().contains(warning.as_str()));

    // Dropped, they leave nothing behind, and the next item gets an owner of its own again.
    drop(items);
    assert_eq!(heapscope::retained::overflow_items(), 0);
    assert_eq!(Owner::overflow().stats().live_bytes, 0);
    assert_eq!(parent.stats().live_bytes, 0);
    let again = Retained::build(parent, "after", || black_box(vec![0u8; 5]));
    assert_ne!(again.owner(), Owner::overflow());
    assert!(heapscope::report().warnings.iter().all(|w| !w.contains("retained items")));
}
