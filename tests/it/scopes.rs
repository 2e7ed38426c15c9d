//! Scopes: nesting, restoration on drop and on unwinding, `in_scope`, `Owner::current`, child
//! owners and the `owner!` cache. Every expectation is a size written out by hand.
#![cfg(feature = "enabled")]

use heapscope::Owner;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `(live_bytes, live_blocks, total_bytes, total_blocks)` of an owner.
fn nums(o: Owner) -> (u64, u64, u64, u64) {
    let s = o.stats();
    (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks)
}

#[test]
fn three_nested_scopes_charge_the_innermost() {
    let a = Owner::named("sc_nest_a");
    let b = Owner::named("sc_nest_b");
    let c = Owner::named("sc_nest_c");
    let root = Owner::root();
    assert_eq!(Owner::current(), root);

    let (va, vb, vc, va2, vb2);
    {
        let _sa = a.enter();
        assert_eq!(Owner::current(), a);
        va = black_box(Vec::<u8>::with_capacity(100));
        {
            let _sb = b.enter();
            assert_eq!(Owner::current(), b);
            vb = black_box(Vec::<u8>::with_capacity(200));
            {
                let _sc = c.enter();
                assert_eq!(Owner::current(), c);
                vc = black_box(Vec::<u8>::with_capacity(300));
            }
            // c's scope dropped: back to b.
            assert_eq!(Owner::current(), b);
            vb2 = black_box(Vec::<u8>::with_capacity(7));
        }
        assert_eq!(Owner::current(), a);
        va2 = black_box(Vec::<u64>::with_capacity(8)); // 64 bytes, an exact class (one class up)
    }
    assert_eq!(Owner::current(), root);

    assert_eq!(nums(a), (164, 2, 164, 2));
    assert_eq!(nums(b), (207, 2, 207, 2));
    assert_eq!(nums(c), (300, 1, 300, 1));

    // Freed here, under root: each free credits the owner that allocated.
    drop((va, vb, vc, va2, vb2));
    assert_eq!(nums(a), (0, 0, 164, 2));
    assert_eq!(nums(b), (0, 0, 207, 2));
    assert_eq!(nums(c), (0, 0, 300, 1));
}

#[test]
fn in_scope_charges_and_restores() {
    let a = Owner::named("sc_in_scope_a");
    let b = Owner::named("sc_in_scope_b");
    let (x, y) = a.in_scope(|| {
        assert_eq!(Owner::current(), a);
        let x = black_box(vec![1u8; 33]);
        let y = b.in_scope(|| {
            assert_eq!(Owner::current(), b);
            black_box(vec![2u16; 50]) // 100 bytes
        });
        assert_eq!(Owner::current(), a);
        (x, y)
    });
    assert_eq!(Owner::current(), Owner::root());
    assert_eq!(nums(a), (33, 1, 33, 1));
    assert_eq!(nums(b), (100, 1, 100, 1));
    // Freeing inside another owner's scope still credits the allocator's owner.
    b.in_scope(|| drop(x));
    a.in_scope(|| drop(y));
    assert_eq!(nums(a), (0, 0, 33, 1));
    assert_eq!(nums(b), (0, 0, 100, 1));
}

#[test]
fn same_owner_entered_twice_nests() {
    let a = Owner::named("sc_twice_a");
    let b = Owner::named("sc_twice_b");
    let _sa = a.enter();
    {
        let _sb = b.enter();
        {
            let _sa2 = a.enter();
            assert_eq!(Owner::current(), a);
        }
        assert_eq!(Owner::current(), b);
    }
    assert_eq!(Owner::current(), a);
}

#[test]
fn scopes_are_restored_during_unwinding() {
    let a = Owner::named("sc_unwind_a");
    let b = Owner::named("sc_unwind_b");
    let c = Owner::named("sc_unwind_c");
    let _sa = a.enter();
    let kept = black_box(vec![0u8; 10]); // a: 10
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _sb = b.enter();
        let _held_b = black_box(vec![0u8; 20]); // b: 20, freed by the unwinding
        {
            let _sc = c.enter();
            let _held_c = black_box(vec![0u8; 30]); // c: 30, freed by the unwinding
            assert_eq!(nums(c).0, 30);
            assert_eq!(nums(b).0, 20);
            // `resume_unwind` skips the panic hook: no message is printed, and its payload
            // is allocated here, under c.
            std::panic::resume_unwind(Box::new(black_box(7u32)));
        }
    }));
    // Back to a after both inner scopes were dropped by the unwinding.
    assert_eq!(Owner::current(), a);
    let payload = result.expect_err("the closure unwinds");
    assert_eq!(payload.downcast_ref::<u32>(), Some(&7));
    // The payload (4 bytes) is still c's until it is dropped. (c's totals also include the
    // unwinder's own exception object, whose size is std's business, so only live is pinned.)
    assert_eq!((nums(c).0, nums(c).1), (4, 1));
    drop(payload);
    assert_eq!((nums(c).0, nums(c).1), (0, 0));
    assert_eq!(nums(b), (0, 0, 20, 1));
    assert_eq!(nums(a), (10, 1, 10, 1));
    drop(kept);
    assert_eq!(nums(a), (0, 0, 10, 1));
}

#[test]
fn scope_restored_after_a_real_panic_in_a_thread() {
    // A panic with the default hook, on a thread of its own, so the hook's output is the only
    // side effect; the thread's scopes must unwind back to root.
    let a = Owner::named("sc_thread_panic_a");
    let handle = std::thread::spawn(move || {
        let r = catch_unwind(|| {
            let _sa = a.enter();
            panic!("heapscope test: deliberate panic under sc_thread_panic_a");
        });
        assert!(r.is_err());
        Owner::current()
    });
    // Only the scope is checked: the panic hook's message goes into libtest's capture
    // buffer, which grows under `a` and outlives the thread.
    assert_eq!(handle.join().unwrap(), Owner::root());
}

#[test]
fn threads_do_not_inherit_scopes() {
    let a = Owner::named("sc_inherit_a");
    let _sa = a.enter();
    let seen = std::thread::scope(|s| s.spawn(Owner::current).join().unwrap());
    assert_eq!(seen, Owner::root());
    assert_eq!(Owner::current(), a);
}

#[test]
fn parent_stats_include_descendants_exactly() {
    let p = Owner::named("sc_tree_p");
    let c = p.child("c");
    let g = c.child("g");
    let other = p.child("other");
    assert_eq!(c.name(), "sc_tree_p/c");
    assert_eq!(g.name(), "sc_tree_p/c/g");
    assert_eq!(g.parent(), Some(c));
    assert_eq!(c.parent(), Some(p));
    assert_eq!(p.parent(), None);
    // Children are registered once: the same name gives the same handle.
    assert_eq!(p.child("c"), c);

    let vp = p.in_scope(|| black_box(vec![0u8; 100]));
    let vc = c.in_scope(|| black_box(vec![0u8; 300]));
    let vg = g.in_scope(|| black_box(vec![0u32; 16])); // 64 bytes, exact class (one class up)
    let vo = other.in_scope(|| black_box(vec![0u8; 4096]));

    assert_eq!(nums(g), (64, 1, 64, 1));
    assert_eq!(nums(c), (364, 2, 364, 2));
    assert_eq!(nums(other), (4096, 1, 4096, 1));
    assert_eq!(nums(p), (100 + 300 + 64 + 4096, 4, 4560, 4));

    drop(vc);
    assert_eq!(nums(c).0, 64);
    assert_eq!(nums(p).0, 100 + 64 + 4096);
    drop((vp, vg, vo));
    assert_eq!(nums(p), (0, 0, 4560, 4));
    // Peaks are checked in tests/peak.rs, in a process of its own: here the owners' ids may
    // be reused ones, whose peaks can be off (see the id-reuse peak test there).
}

#[test]
fn current_inside_a_child() {
    let p = Owner::named("sc_cur_p");
    let c = p.child("kid");
    c.in_scope(|| {
        assert_eq!(Owner::current(), c);
        assert_eq!(Owner::current().name(), "sc_cur_p/kid");
    });
}

fn cached_site() -> Owner {
    heapscope::owner!("sc_macro_cached")
}

#[test]
fn owner_macro_caches_per_call_site() {
    let first = cached_site();
    assert_eq!(first, Owner::named("sc_macro_cached"));
    assert_eq!(first.name(), "sc_macro_cached");
    for _ in 0..100 {
        assert_eq!(cached_site(), first);
    }
    // Two call sites with the same name agree (both resolve through the registry once).
    assert_eq!(heapscope::owner!("sc_macro_cached"), first);
    // After the owner is retired, the call site follows the name to its new owner, as
    // `Owner::named` does (it once kept the retired handle for good, entering the overflow
    // owner).
    first.retire().unwrap();
    let fresh = Owner::named("sc_macro_cached");
    assert_ne!(fresh, first);
    assert_eq!(cached_site(), fresh);
    let v = cached_site().in_scope(|| black_box(vec![0u8; 513]));
    assert_eq!(nums(fresh).0, 513);
    drop(v);
    fresh.retire().unwrap();
}

#[test]
fn scope_charges_through_the_macro_owner() {
    let o = heapscope::owner!("sc_macro_alloc");
    let v = o.in_scope(|| black_box(String::with_capacity(77)));
    assert_eq!(nums(o), (77, 1, 77, 1));
    drop(v);
    assert_eq!(nums(o), (0, 0, 77, 1));
}

#[test]
fn parent_totals_survive_child_retirement() {
    // `total_bytes` is "every block ever allocated" and an owner's stats include its
    // descendants': a child's history must not vanish from its parent when it is retired.
    let p = Owner::named("sc_retire_totals_p");
    let c = p.child("short_lived");
    c.in_scope(|| drop(black_box(vec![0u8; 1000])));
    let own = p.in_scope(|| black_box(vec![0u8; 10]));
    assert_eq!(nums(p), (10, 1, 1010, 2));
    c.retire().unwrap();
    let after = nums(p);
    drop(own);
    assert_eq!(after, (10, 1, 1010, 2));
}

/// Scopes dropped in the order they were entered (moved out of their nesting): the thread
/// ends where it was before both, and neither owner is charged afterwards. The first drop
/// once restored at once, so the second restored the first's owner: the thread stayed in it
/// with no scope open, and once that owner was retired its id could go to a newcomer that
/// then received the thread's allocations.
#[test]
fn scopes_dropped_out_of_order_end_where_they_started() {
    let parent = Owner::named("sc_ooo_parent");
    let a = parent.child("a");
    let b = Owner::named("sc_ooo_b");
    let before = Owner::current();
    let scope_a = a.enter();
    let scope_b = b.enter();
    drop(scope_a);
    assert_eq!(Owner::current(), b, "b's scope is still open");
    drop(scope_b);
    assert_eq!(Owner::current(), before);
    a.retire().unwrap();
    let newcomer = parent.child("newcomer");
    let v = black_box(vec![0u8; 777]);
    assert_eq!(nums(newcomer), (0, 0, 0, 0));
    assert_eq!(nums(b), (0, 0, 0, 0));
    drop(v);
    newcomer.retire().unwrap();
    b.retire().unwrap();
    parent.retire().unwrap();
}

/// Two scopes of one owner, the outer dropped first: the inner is still open, so the thread
/// stays in the owner until it ends, and then both have ended and the id can be reused. The
/// outer once looked in order (its owner was current), restored the owner before it at
/// once, and the inner then waited for good, keeping the id: 4 092 such pairs filled the
/// registry.
#[test]
fn two_scopes_of_one_owner_dropped_outer_first_end_where_they_started() {
    let before = Owner::current();
    // Miri interprets every instruction: fewer rounds there, enough to pass 4 096 ids
    // natively.
    let rounds = if cfg!(miri) { 20 } else { 5_000 };
    for i in 0..rounds {
        let a = Owner::try_named(format!("sc_twice_{i}")).expect("ids are reused");
        let outer = a.enter();
        let inner = a.enter();
        drop(outer);
        assert_eq!(Owner::current(), a, "the inner scope is still open");
        if i == 0 {
            let v = black_box(vec![0u8; 1234]);
            assert_eq!(nums(a).0, 1234);
            drop(v);
        }
        drop(inner);
        assert_eq!(Owner::current(), before);
        a.retire().unwrap();
    }
}

/// The reserved owners are entered as themselves, inside a user owner's scope too, and each
/// scope gives the thread back the owner before it. Only the process itself (no handle to it
/// is public) is entered as the overflow owner: with that test inverted (`self.id ==
/// PROCESS`), entering root, the overflow or the internal owner entered the overflow owner,
/// and every other test passed.
#[test]
fn the_reserved_owners_are_entered_as_themselves() {
    let a = Owner::named("sc_reserved_around");
    a.in_scope(|| {
        for reserved in [Owner::root(), Owner::internal(), Owner::overflow()] {
            reserved.in_scope(|| assert_eq!(Owner::current(), reserved, "{}", reserved.name()));
            assert_eq!(Owner::current(), a);
        }
    });
    assert_eq!(Owner::current(), Owner::root());
}

/// Inside a scope that outlived its owner's retirement, `Owner::current()` is the retired
/// owner's handle (its name and stats), and entering it enters the overflow owner as for any
/// retired handle. It once matched no owner ("heapscope.stale", zero stats), and entering it
/// went on charging the retired owner.
#[test]
fn current_inside_a_retired_owners_scope_is_that_owner() {
    let a = Owner::named("sc_current_retired");
    let scope = a.enter();
    let kept = black_box(vec![0u8; 4001]);
    a.retire().unwrap();
    let current = Owner::current();
    assert_eq!(current, a);
    assert_eq!(current.name(), "sc_current_retired");
    assert_eq!(current.stats().live_bytes, 4001);
    let inner = current.enter();
    assert_eq!(Owner::current(), Owner::overflow());
    drop(inner);
    drop(scope);
    drop(kept);
}

#[test]
fn a_hundred_thousand_nested_scopes_charge_the_innermost_and_unwind_to_root() {
    // Scope nesting has no depth limit of its own (the depth and each owner's per-thread
    // count of open scopes are 32-bit): entered 100 000 deep, alternating two owners and
    // re-entering each, every level charges its own owner and dropping them innermost first
    // comes back to root, with every id free for reuse once the scopes are gone.
    let a = Owner::named("sc_deep_a");
    let b = Owner::named("sc_deep_b");
    let levels = crate::scaled(100_000, 1_000);
    let mut scopes = Vec::with_capacity(levels);
    for i in 0..levels {
        scopes.push(if i % 2 == 0 { a.enter() } else { b.enter() });
    }
    assert_eq!(Owner::current(), if levels % 2 == 1 { a } else { b });
    let innermost = black_box(vec![0u8; 100]);
    let (before_a, before_b) = (nums(a), nums(b));
    while let Some(scope) = scopes.pop() {
        drop(scope);
        let n = scopes.len();
        if n > 0 && n % 997 == 0 {
            assert_eq!(Owner::current(), if n % 2 == 1 { a } else { b }, "depth {n}");
        }
    }
    assert_eq!(Owner::current(), Owner::root());
    // The scopes' own Vec was allocated in root; the 100 bytes in the innermost owner.
    let inner_owner = if levels % 2 == 1 { a } else { b };
    assert_eq!(nums(inner_owner).0, 100);
    assert_eq!((nums(a).0 + nums(b).0), 100);
    assert_eq!((before_a, before_b), (nums(a), nums(b)));
    drop(innermost);
    assert_eq!((nums(a).0, nums(b).0), (0, 0));
    a.retire().unwrap();
    b.retire().unwrap();
}

/// Scopes dropped out of order on one thread, many at once: nine (one more than the thread's
/// fixed table of scopes dropped early) and 200, each dropped while the scopes entered after
/// it are open, then the innermost. The thread must come back to where it was, the owners
/// must not receive what it allocates afterwards, and their ids must be free once retired.
#[test]
fn many_scopes_dropped_out_of_order_end_where_they_started() {
    for n in [9, crate::scaled(200, 20)] {
        let before = Owner::current();
        let owners: Vec<Owner> =
            (0..n).map(|i| Owner::named(format!("sc_many_ooo_{n}_{i}"))).collect();
        let top = Owner::named(format!("sc_many_ooo_{n}_top"));
        let mut scopes: Vec<_> = owners.iter().map(|o| o.enter()).collect();
        let top_scope = top.enter();
        // Outer first: each is dropped while the scopes entered after it are open.
        for scope in scopes.drain(..) {
            drop(scope);
        }
        assert_eq!(Owner::current(), top, "n = {n}: the innermost scope is still open");
        drop(top_scope);
        let after = Owner::current();
        let v = black_box(vec![0u8; 999]);
        let charged: Vec<String> = owners
            .iter()
            .filter(|o| nums(**o) != (0, 0, 0, 0))
            .map(|o| format!("{} {:?}", o.name(), nums(*o)))
            .collect();
        drop(v);
        let mut pinned = Vec::new();
        for o in owners.iter().chain([&top]) {
            let name = o.name();
            o.retire().unwrap();
            // Retired holding nothing and with no scope open: its id is freed at once.
            if o.name() != "heapscope.stale" {
                pinned.push(name);
            }
        }
        assert_eq!(
            (after.name(), charged, pinned),
            (before.name(), vec![], vec![]),
            "n = {n}: (owner current after every scope was dropped, owners charged with the \
             999 bytes allocated then, ids kept from reuse after retirement)"
        );
    }
}
