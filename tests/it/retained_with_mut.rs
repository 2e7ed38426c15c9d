//! `Retained::with_mut`: the item's owner is current inside it (and the previous owner after
//! it), and growth made through it shows in `retained::top` with the grown size.
//!
//! `retained::top` lists every live item of this shared binary, so items are found by their
//! owner name, never by position alone.
#![cfg(feature = "enabled")]

use heapscope::retained::{self, ItemInfo};
use heapscope::{Owner, Retained};
use std::hint::black_box;

/// The `top` entry of `item`, found by owner name.
fn listed<T>(item: &Retained<T>) -> (usize, ItemInfo) {
    position_in(&retained::top(usize::MAX), item)
}

/// Where `item` sits in one `top` list. Order checks take both positions from the same list:
/// tests running in parallel create and drop items between two `top` calls.
fn position_in<T>(top: &[ItemInfo], item: &Retained<T>) -> (usize, ItemInfo) {
    let name = item.owner().name();
    top.iter()
        .position(|i| i.owner == name)
        .map(|at| (at, top[at].clone()))
        .unwrap_or_else(|| panic!("{name} not listed in {top:#?}"))
}

#[test]
fn owner_current_inside_with_mut_is_the_items() {
    let parent = Owner::named("rwm_cur_parent");
    let outer = Owner::named("rwm_cur_outer");
    let elsewhere = Owner::named("rwm_cur_elsewhere");

    let mut during_build = None;
    let mut a = Retained::build(parent, "rwm current a", || {
        during_build = Some(Owner::current());
        Vec::<u8>::new()
    });
    let mut b = Retained::build(parent, "rwm current b", Vec::<u8>::new);
    let (ida, idb) = (a.owner(), b.owner());
    assert_ne!(ida, idb);
    assert_eq!(during_build, Some(ida));
    assert_eq!(Owner::current(), Owner::root());

    // Inside with_mut the item's owner is current, whatever was current before; afterwards
    // the previous owner is back.
    let inside = a.with_mut(|_| Owner::current());
    assert_eq!(inside, ida);
    assert_eq!(Owner::current(), Owner::root());
    outer.in_scope(|| {
        assert_eq!(a.with_mut(|_| Owner::current()), ida);
        assert_eq!(Owner::current(), outer);
    });

    // Nested: b's with_mut inside a's, then back to a.
    let seen = a.with_mut(|_| {
        let in_b = b.with_mut(|_| Owner::current());
        (in_b, Owner::current())
    });
    assert_eq!(seen, (idb, ida));
    assert_eq!(Owner::current(), Owner::root());

    // After a transfer the handle names the same owner, and it is still what is current.
    a.transfer_to(elsewhere).unwrap();
    assert_eq!(a.owner(), ida);
    assert_eq!(a.with_mut(|_| Owner::current()), ida);

    // An unwinding closure restores the previous owner too.
    let caught = outer.in_scope(|| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.with_mut(|_| panic!("rwm: deliberate panic inside with_mut"))
        }));
        (r.is_err(), Owner::current())
    });
    assert_eq!(caught, (true, outer));
    assert_eq!(Owner::current(), Owner::root());
    drop((a, b));
}

#[test]
fn top_lists_bytes_grown_through_with_mut() {
    let parent = Owner::named("rwm_top_parent");
    let mut grown =
        Retained::build(parent, "rwm grown", || black_box(Vec::<u8>::with_capacity(100)));
    let small = Retained::build(parent, "rwm small", || black_box(Vec::<u8>::with_capacity(1000)));
    assert_eq!(grown.live_bytes(), 100);
    let top = retained::top(usize::MAX);
    let (at_grown, info) = position_in(&top, &grown);
    let (at_small, _) = position_in(&top, &small);
    assert_eq!((info.label.as_str(), info.live_bytes), ("rwm grown", 100));
    assert!(at_small < at_grown, "1000 bytes are listed before 100");

    // realloc inside with_mut: the old 100 bytes are credited back and the new block is the
    // item's. len 0, so capacity becomes exactly 50 000.
    grown.with_mut(|v| v.reserve_exact(50_000));
    assert_eq!(grown.capacity(), 50_000);
    let top = retained::top(usize::MAX);
    let (at_grown, info) = position_in(&top, &grown);
    let (at_small, _) = position_in(&top, &small);
    assert_eq!(info.live_bytes, 50_000, "{info:?}");
    assert_eq!(info.label, "rwm grown");
    assert_eq!(info.parent, "rwm_top_parent");
    assert_eq!(info.type_name, std::any::type_name::<Vec<u8>>());
    assert!(at_grown < at_small, "the grown item is listed before the small one now");
    assert_eq!(grown.live_bytes(), 50_000);
    assert_eq!(parent.stats().live_bytes, 51_000);

    // New blocks made inside with_mut are the item's too.
    let mut lines =
        Retained::build(parent, "rwm lines", || black_box(Vec::<String>::with_capacity(4)));
    lines.with_mut(|v| {
        for n in [300, 4096, 33] {
            v.push(String::with_capacity(n));
        }
    });
    // Outer 4 × 24 bytes, then the three strings.
    assert_eq!(listed(&lines).1.live_bytes, 4 * 24 + 300 + 4096 + 33);

    // Shrinking through with_mut shows too.
    grown.with_mut(|v| v.shrink_to(2000));
    assert_eq!(grown.capacity(), 2000);
    assert_eq!(listed(&grown).1.live_bytes, 2000);

    // Inside another owner's scope, with_mut still charges the item, not that owner.
    let outsider = Owner::named("rwm_top_outsider");
    let mut other = Retained::build(parent, "rwm other", || black_box(vec![0u8; 64]));
    outsider.in_scope(|| other.with_mut(|v| v.reserve_exact(4096 - 64)));
    assert_eq!(other.capacity(), 4096);
    assert_eq!(listed(&other).1.live_bytes, 4096);
    assert_eq!(outsider.stats().total_bytes, 0);
    drop(other);
    drop((grown, small, lines));
    assert_eq!(parent.stats().live_bytes, 0);
}
