//! The owner registry at its limits, in a process of its own: filling all 4096 ids, the
//! overflow owner, id reuse after retirement, a long churn of short-lived children, and
//! name validation.
//!
//! Every test that registers owners holds `SERIAL` and retires what it registered before it
//! ends, so each starts from a registry holding only the reserved owners.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::{Error, Owner, Retained, Snapshot};
use std::hint::black_box;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// 4096 ids, of which 4 are reserved (the process, root, overflow, internal).
const USER_IDS: usize = 4096 - 4;

/// Wall-clock cap on the long loops (RELIABILITY.md H4): a hang detector, not a speed check
/// (speed is the benchmarks' business), generous enough for ThreadSanitizer on 2 cores.
const HANG_CAP: Duration = Duration::from_secs(600);

fn registered_names() -> Vec<String> {
    Snapshot::capture().owners.into_iter().map(|o| o.name).collect()
}

#[test]
fn invalid_names_are_refused() {
    let _g = serial();
    let long = "x".repeat(129);
    let long_multibyte = "é".repeat(65); // 130 bytes
    for bad in [
        "",
        long.as_str(),
        long_multibyte.as_str(),
        "a/b",
        "/",
        "line\nbreak",
        "tab\there",
        "nul\0",
        "del\u{7f}",
    ] {
        match Owner::try_named(bad) {
            Err(Error::InvalidName { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?}: {other:?}"),
        }
        assert_eq!(Owner::named(bad), Owner::overflow(), "{bad:?}");
        let parent = Owner::named("reg_invalid_parent");
        assert!(matches!(parent.try_child(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        parent.retire().unwrap();
    }
    // The limits themselves are fine.
    for good in [
        "x".repeat(128),
        "é".repeat(64),
        "with spaces and ünïcode".to_owned(),
        "a.b-c_d:e#1".to_owned(),
    ] {
        let o = Owner::try_named(&good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        assert_eq!(o.name(), good);
        o.retire().unwrap();
    }
    // An invalid name's error says why, starting with "heapscope:".
    let msg = Owner::try_named("a/b").unwrap_err().to_string();
    assert!(msg.starts_with("heapscope: invalid owner name \"a/b\""), "{msg}");
}

#[test]
fn exhausting_the_registry_then_reusing_retired_ids() {
    let _g = serial();
    assert_eq!(registered_names(), ["heapscope.internal", "heapscope.overflow", "root"]);
    let mut owners = Vec::new();
    let mut full = None;
    for i in 0..2 * USER_IDS {
        match Owner::try_named(format!("reg_full_{i}")) {
            Ok(o) => owners.push(o),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    assert_eq!(full, Some(Error::RegistryFull { capacity: 4096 }));
    assert_eq!(owners.len(), USER_IDS);
    assert!(full.unwrap().to_string().starts_with("heapscope: owner registry full"));

    // Names already registered are still found; new ones fall back to the overflow owner.
    assert_eq!(Owner::named("reg_full_7"), owners[7]);
    let extra = Owner::named("reg_full_extra");
    assert_eq!(extra, Owner::overflow());
    assert_eq!(extra.name(), "heapscope.overflow");
    assert_eq!(owners[0].try_child("kid"), Err(Error::RegistryFull { capacity: 4096 }));
    assert_eq!(owners[0].child("kid"), Owner::overflow());
    // `owner!` falls back the same way, and does not keep the fallback (below).
    fn macro_site() -> Owner {
        heapscope::owner!("reg_full_macro_site")
    }
    assert_eq!(macro_site(), Owner::overflow());
    assert!(matches!(
        Retained::try_build(owners[0], "item", || 0u8),
        Err(Error::RegistryFull { .. })
    ));

    // Allocations under the fallback are counted under "heapscope.overflow".
    let ov = Owner::overflow();
    let before = ov.stats();
    let v = extra.in_scope(|| black_box(vec![0u8; 1000]));
    let item = Retained::build(owners[0], "falls back", || black_box(vec![0u8; 24]));
    assert_eq!(item.owner(), Owner::overflow());
    let after = ov.stats();
    assert_eq!(after.live_bytes, before.live_bytes + 1024);
    assert_eq!(after.total_blocks, before.total_blocks + 2);
    let snap = Snapshot::capture();
    assert_eq!(
        snap.owner("heapscope.overflow").unwrap().stats.live_bytes,
        before.live_bytes + 1024
    );
    assert!(snap.owner("reg_full_extra").is_none());
    drop((v, item));
    assert_eq!(ov.stats().live_bytes, before.live_bytes);

    // Retiring owners that hold nothing frees their ids at once.
    for o in owners.drain(..10) {
        o.retire().unwrap();
    }
    let mut again = Vec::new();
    for i in 0..10 {
        again.push(Owner::try_named(format!("reg_again_{i}")).expect("a freed id"));
    }
    assert_eq!(Owner::try_named("reg_again_10"), Err(Error::RegistryFull { capacity: 4096 }));

    // An owner retired while holding bytes keeps its id until they are freed.
    let holder = owners.pop().unwrap();
    let held = holder.in_scope(|| black_box(vec![0u8; 4096]));
    holder.retire().unwrap();
    assert_eq!(holder.stats().live_bytes, 4096);
    assert_eq!(Owner::try_named("reg_waits"), Err(Error::RegistryFull { capacity: 4096 }));
    drop(held);
    let waited = Owner::try_named("reg_waits").expect("the holder's id, reclaimed");

    // Once an id is free, the `owner!` call site that fell back registers its name: the
    // fallback was once cached there for good.
    owners.pop().unwrap().retire().unwrap();
    let site = macro_site();
    assert_eq!(site.name(), "reg_full_macro_site");
    assert_eq!(macro_site(), site);

    for o in owners.into_iter().chain(again).chain([waited, site]) {
        o.retire().unwrap();
    }
    assert_eq!(registered_names(), ["heapscope.internal", "heapscope.overflow", "root"]);
}

#[test]
fn a_long_churn_of_short_lived_children_never_fills_the_registry() {
    let _g = serial();
    // One million children; each allocates and frees a little, then is retired. Boundedness
    // is what is asserted: the registry ends with room for a full set of owners. Under a
    // sanitizer (`.ci/sanitizers` sets HEAPSCOPE_SANITIZER), which checks every access rather
    // than the scale, 100 000: still 24 times the registry, so every id is reused many times.
    let children: usize =
        if std::env::var_os("HEAPSCOPE_SANITIZER").is_some() { 100_000 } else { 1_000_000 };
    let parent = Owner::named("reg_churn");
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 0..children {
        let c = parent.try_child(format!("c{i}")).unwrap_or_else(|e| panic!("child {i}: {e}"));
        let size = 1 + i % 200;
        c.in_scope(|| drop(black_box(vec![0u8; size])));
        bytes += size as u64;
        c.retire().unwrap_or_else(|e| panic!("child {i}: {e}"));
        if i % 4096 == 0 {
            assert!(started.elapsed() < HANG_CAP, "hung? only {i} children in {HANG_CAP:?}");
        }
    }
    let elapsed = started.elapsed();
    println!("{children} children created and retired in {elapsed:?} ({bytes} bytes churned)");
    assert_eq!(parent.stats().live_bytes, 0);
    assert_eq!(parent.stats().live_blocks, 0);
    // Room is left: a full registry minus the parent.
    let mut fresh = Vec::new();
    for i in 0..USER_IDS - 1 {
        fresh.push(Owner::try_named(format!("reg_after_churn_{i}")).expect("ids were reused"));
    }
    for o in fresh {
        o.retire().unwrap();
    }
    parent.retire().unwrap();
}

#[test]
fn a_retired_handle_enters_the_overflow_owner() {
    // Documented on `Owner::enter`: "A retired owner's handle enters the overflow owner
    // instead." Otherwise its blocks carry an id that the registry has already freed, and the
    // next owner to get that id inherits them.
    let _g = serial();
    let x = Owner::named("reg_retired_x");
    x.retire().unwrap();
    let ov = Owner::overflow();
    let before = ov.stats().live_bytes;
    let v = x.in_scope(|| black_box(vec![0u8; 100]));
    let y = Owner::named("reg_retired_y");
    let w = y.in_scope(|| black_box(vec![0u8; 50]));
    let (ov_live, y_live) = (ov.stats().live_bytes, y.stats().live_bytes);
    drop((v, w));
    let y_after = y.stats();
    y.retire().unwrap();
    assert_eq!(y_live, 50, "a fresh owner must hold only what it allocated");
    assert_eq!(ov_live, before + 100, "the retired handle's block must be the overflow owner's");
    assert_eq!((y_after.live_bytes, y_after.total_bytes), (0, 50));
}

#[test]
fn retiring_an_owner_inside_its_own_scope_keeps_its_id_until_the_scope_ends() {
    // Documented on `Owner::retire`: an id is reused only once no scope entered on it is
    // open. Otherwise the thread still in the scope charges whichever owner gets the id next
    // (ids are reused last-freed first, so the very next registration would).
    let _g = serial();
    let x = Owner::named("reg_scoped_x");
    let scope = x.enter();
    x.retire().unwrap(); // holds nothing: without the scope its id would be free at once
    let y = Owner::named("reg_scoped_y");
    let v = black_box(vec![0u8; 100]); // still in x's scope
    let y_live = y.stats().live_bytes;
    drop(scope);
    let w = y.in_scope(|| black_box(vec![0u8; 30]));
    let y_after = y.stats().live_bytes;
    drop((v, w));
    y.retire().unwrap();
    assert_eq!(y_live, 0, "a block allocated in a retired owner's open scope went to a new owner");
    assert_eq!(y_after, 30);

    // The same one level down: x entered, then z inside it, x retired while it waits to be
    // current again.
    let x = Owner::named("reg_scoped_outer");
    let z = Owner::named("reg_scoped_inner");
    let outer = x.enter();
    let inner = z.enter();
    x.retire().unwrap();
    let fresh = Owner::named("reg_scoped_fresh");
    drop(inner);
    let v = black_box(vec![0u8; 64]); // x is current again
    let fresh_live = fresh.stats().live_bytes;
    drop(outer);
    drop(v);
    for o in [z, fresh] {
        o.retire().unwrap();
    }
    assert_eq!(fresh_live, 0, "x's restored scope charged the owner that took its id");

    // A retained item dropped inside its own scope.
    let parent = Owner::named("reg_scoped_items");
    let item = Retained::build(parent, "first", || black_box(vec![0u8; 10]));
    let scope = item.enter();
    drop(item);
    let second = Retained::build(parent, "second", Vec::<u8>::new);
    let v = black_box(vec![0u8; 200]);
    let second_live = second.live_bytes();
    drop(scope);
    drop(v);
    drop(second);
    parent.retire().unwrap();
    assert_eq!(second_live, 0, "a dropped item's open scope charged the next item");
}

#[test]
fn ids_retired_inside_their_scopes_are_reused_once_the_scopes_end() {
    // Twice as many owners as there are ids, each retired inside its own scope (holding a
    // block then) and the scope closed after: none of them may keep its id, so the registry
    // never fills, and afterwards a whole set of fresh owners fits.
    // Every 64th on a new thread, whose scope is entered before its first allocation (so
    // before it has a counter slot) and ends in a thread-local's destructor, after the
    // thread gave its slot back.
    let _g = serial();
    thread_local! {
        static HELD: std::cell::RefCell<Option<heapscope::OwnerScope>> =
            const { std::cell::RefCell::new(None) };
    }
    for i in 0..2 * USER_IDS {
        let owner = Owner::try_named(format!("reg_scoped_churn_{i}"))
            .unwrap_or_else(|e| panic!("registration {i}: {e}"));
        if i % 64 == 0 {
            std::thread::spawn(move || {
                let scope = owner.enter();
                let v = black_box(vec![0u8; 16]);
                owner.retire().unwrap();
                drop(v);
                HELD.with(|h| *h.borrow_mut() = Some(scope));
            })
            .join()
            .unwrap();
            continue;
        }
        let scope = owner.enter();
        let v = black_box(vec![0u8; 16]);
        owner.retire().unwrap();
        drop(v);
        drop(scope);
    }
    let fresh: Vec<Owner> = (0..USER_IDS)
        .map(|i| {
            Owner::try_named(format!("reg_scoped_refill_{i}"))
                .unwrap_or_else(|e| panic!("refill {i}: an id stayed pinned: {e}"))
        })
        .collect();
    for o in fresh {
        o.retire().unwrap();
    }
    assert_eq!(registered_names(), ["heapscope.internal", "heapscope.overflow", "root"]);
}

#[test]
fn nesting_past_seven_levels_is_a_typed_error_and_changes_nothing() {
    // Documented on `Owner::try_child`, `Retained::try_build` and `transfer_to`: owners nest
    // 7 levels deep; one more is `Error::TooDeep`, and `child()` falls back to the overflow
    // owner.
    let _g = serial();
    let mut chain = vec![Owner::named("reg_deep")];
    for i in 1..7 {
        let next = chain[i - 1].try_child(format!("l{i}")).unwrap();
        chain.push(next);
    }
    let deepest = chain[6];
    assert_eq!(deepest.name(), "reg_deep/l1/l2/l3/l4/l5/l6");
    assert_eq!(
        deepest.try_child("l7"),
        Err(Error::TooDeep { parent: "reg_deep/l1/l2/l3/l4/l5/l6".into(), max_depth: 7 })
    );
    let ov = Owner::overflow();
    let before = ov.stats();
    let fallback = deepest.child("l7");
    assert_eq!(fallback, Owner::overflow());
    let v = fallback.in_scope(|| black_box(vec![0u8; 100]));
    let after = ov.stats();
    drop(v);
    assert_eq!(after.live_bytes, before.live_bytes + 100);
    assert!(matches!(
        Retained::try_build(deepest, "too deep", || 0u8),
        Err(Error::TooDeep { max_depth: 7, .. })
    ));

    // An item (one level) moved under the deepest owner would make eight: refused, and
    // nothing moves.
    let item = Retained::build(chain[0], "mover", || black_box(vec![0u8; 300]));
    let top_before = chain[0].stats().live_bytes;
    assert!(matches!(item.transfer_to(deepest), Err(Error::TooDeep { max_depth: 7, .. })));
    assert_eq!(item.owner().parent(), Some(chain[0]));
    assert_eq!(item.live_bytes(), 300);
    assert_eq!(chain[0].stats().live_bytes, top_before);
    assert_eq!(deepest.stats().live_bytes, 0);
    // One level up it fits.
    item.transfer_to(chain[5]).unwrap();
    assert_eq!(chain[5].stats().live_bytes, 300);
    drop(item);
    for o in chain.into_iter().rev() {
        o.retire().unwrap();
    }
}

#[test]
fn a_stale_handle_stays_stale_however_often_its_id_is_reused() {
    // Documented on `Owner::name`: "A retired-and-reused handle reads heapscope.stale".
    let _g = serial();
    let parent = Owner::named("reg_generations");
    let first = parent.child("first");
    first.retire().unwrap();
    assert_eq!(first.name(), "heapscope.stale");
    // 65 535 more registrations of (very likely) the same id, then one more.
    let started = Instant::now();
    for i in 0..u16::MAX as usize {
        let c = parent.try_child(format!("n{i}")).unwrap();
        c.retire().unwrap();
        if i % 4096 == 0 {
            assert!(started.elapsed() < HANG_CAP, "hung? only {i} registrations in {HANG_CAP:?}");
        }
    }
    let fresh = parent.child("fresh");
    let (same, name) = (fresh == first, first.name());
    fresh.retire().unwrap();
    parent.retire().unwrap();
    assert!(!same, "a handle retired 65 536 registrations ago compares equal to a new owner");
    assert_eq!(name, "heapscope.stale");
}

/// A reading of an owner with children lists its subtree's ids and then reads their counters.
/// If one of those children were retired and its id reused by an unrelated owner in between,
/// the reading would count the newcomer's bytes in the old parent and keep them in the
/// parent's peak. Here a reader thread reads a parent of 2 000 empty children in a loop (each
/// reading takes some microseconds) while this thread retires the last child, lets a new
/// top-level owner take its id and hold 1 MiB, and brings the child back. The parent never
/// holds a byte, so its peak must stay zero.
#[test]
fn a_child_id_reused_during_a_reading_is_not_counted_in_its_old_parent() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    let _serial = serial();
    let parent = Owner::named("reuse_reading_parent");
    let mut children: Vec<Owner> = (0..2_000).map(|i| parent.child(format!("c{i}"))).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut readings = 0u64;
            while !stop.load(SeqCst) {
                black_box(parent.stats());
                readings += 1;
            }
            readings
        })
    };
    let started = Instant::now();
    for round in 0..2_000 {
        let last = children.pop().expect("a child");
        last.retire().expect("retire the child");
        let other = Owner::named("reuse_reading_other");
        let held = other.in_scope(|| black_box(Vec::<u8>::with_capacity(1 << 20)));
        // Held for a while, so that readings overlap it.
        let until = Instant::now() + Duration::from_micros(50);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        drop(held);
        other.retire().expect("retire the other owner");
        children.push(parent.child(format!("c{round}_again")));
        assert!(started.elapsed() < HANG_CAP, "hung after {round} rounds");
    }
    stop.store(true, SeqCst);
    let readings = reader.join().expect("reader");
    let s = parent.stats();
    assert_eq!(s.live_bytes, 0);
    assert_eq!(
        s.peak_bytes, 0,
        "the parent never held a byte ({readings} readings alongside): {s:?}"
    );
    for child in children {
        child.retire().expect("retire");
    }
    parent.retire().expect("retire the parent");
}

/// A child retired while it holds bytes, then its parent: the retired list is `[child,
/// parent]`. Freeing the child frees the parent too; `reclaim` once went on to list the
/// parent's id as retired again, although it was free, and a later `reclaim` freed it under
/// the live owner that had taken it (its name read `heapscope.stale` and its bytes went to
/// the overflow owner).
#[test]
fn a_parent_freed_with_its_last_child_is_never_freed_twice() {
    let _g = serial();
    let parent = Owner::named("twice_parent");
    let child = parent.child("child");
    let kept = child.in_scope(|| black_box(vec![0u8; 100]));
    child.retire().unwrap();
    parent.retire().unwrap();
    drop(kept);
    // Fill the registry: the first `reclaim` frees both, a later one would free again.
    let mut live: Vec<(String, Owner)> = Vec::new();
    for i in 0.. {
        let name = format!("twice_fill_{i}");
        match Owner::try_named(&name) {
            Ok(owner) => live.push((name, owner)),
            Err(Error::RegistryFull { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(live.len(), USER_IDS);
    for (name, owner) in &live {
        assert_eq!(&owner.name(), name);
        assert_eq!(Owner::named(name), *owner, "{name} names another owner");
    }
    for (_, owner) in live {
        owner.retire().unwrap();
    }
}

/// A retired owner that still holds bytes keeps its name until a new owner takes it; then it
/// is renamed `<name> (retired #N)`, with its descendants. Both once kept the name: a diff
/// compared both with one baseline (the new owner's growth was reported twice, once as the
/// retired owner's), and the new parent's `child("buf")` was the retired parent's child.
#[test]
fn a_new_owner_takes_a_retired_owners_name_and_the_old_one_is_renamed() {
    let _g = serial();
    let old = Owner::named("renamed_session");
    let old_child = old.child("buf");
    let kept = old_child.in_scope(|| black_box(vec![0u8; 1000]));
    old.retire().unwrap();
    assert_eq!(
        Snapshot::capture().owner("renamed_session").map(|o| o.retired),
        Some(true),
        "until the name is taken, the retired owner keeps it"
    );

    let new = Owner::named("renamed_session");
    assert_ne!(new, old);
    let new_child = new.child("buf");
    assert_ne!(new_child, old_child, "the new parent's child is a new owner");
    assert_eq!(new_child.parent(), Some(new));
    let base = Snapshot::capture();
    let grown = new_child.in_scope(|| black_box(vec![0u8; 5000]));
    assert_eq!(new.stats().live_bytes, 5000);

    let after = Snapshot::capture();
    let entry = after.owner("renamed_session").unwrap();
    assert!(!entry.retired);
    assert_eq!(entry.stats.live_bytes, 5000);
    let retired: Vec<&str> = after
        .owners
        .iter()
        .filter(|o| o.name.starts_with("renamed_session (retired #"))
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(retired.len(), 2, "the retired owner and its child: {retired:?}");
    assert!(retired[1].ends_with(")/buf"), "{retired:?}");
    assert_eq!(old_child.name(), retired[1]);
    let diff = after.diff(&base);
    let deltas: Vec<(&str, i64)> = diff
        .owners
        .iter()
        .filter(|d| d.name.starts_with("renamed_session"))
        .map(|d| (d.name.as_str(), d.live_bytes_delta))
        .collect();
    assert_eq!(deltas.iter().filter(|(_, d)| *d != 0).count(), 2, "{deltas:?}");
    assert!(deltas.contains(&("renamed_session", 5000)), "{deltas:?}");
    assert!(deltas.contains(&("renamed_session/buf", 5000)), "{deltas:?}");

    drop((kept, grown));
    old_child.retire().unwrap();
    new_child.retire().unwrap();
    new.retire().unwrap();
    assert!(registered_names().iter().all(|n| !n.starts_with("renamed_session")));
}

/// `Retained::build` and `transfer_to` check their parent and register or move the item
/// under one lock: checked under one and registered under another, a parent retired and
/// its id reused in between received the item (9 of 50 000 rounds, the item named under an
/// unrelated owner).
#[test]
fn items_never_land_under_an_owner_that_reused_their_retired_parents_id() {
    let _g = serial();
    const ROUNDS: usize = 20_000;
    let started = Instant::now();
    let barrier = std::sync::Barrier::new(2);
    let parent_now: Mutex<Option<Owner>> = Mutex::new(None);
    let home = Owner::named("race_home");
    let misplaced = std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..ROUNDS {
                barrier.wait(); // the parent is registered
                let parent = parent_now.lock().unwrap().unwrap();
                parent.retire().unwrap();
                let newcomer = Owner::named(format!("race_newcomer_{}", i % 2));
                barrier.wait(); // the item is built and moved
                newcomer.retire().unwrap();
            }
        });
        let mut misplaced = Vec::new();
        for i in 0..ROUNDS {
            let parent = Owner::named("race_parent");
            *parent_now.lock().unwrap() = Some(parent);
            barrier.wait();
            let item = if i % 2 == 0 {
                Retained::build(parent, "built", || 1u8)
            } else {
                let item = Retained::build(home, "moved", || 1u8);
                let _ = item.transfer_to(parent);
                item
            };
            let name = item.owner().name();
            if name.starts_with("race_newcomer") {
                misplaced.push(name);
            }
            drop(item);
            barrier.wait();
            assert!(started.elapsed() < HANG_CAP, "hung");
        }
        misplaced
    });
    assert!(misplaced.is_empty(), "{} items under another owner: {misplaced:?}", misplaced.len());
    home.retire().unwrap();
}

/// `Owner::named` never panics, also when it warns (once) and stderr is a pipe whose reader
/// is gone: `eprintln!` panics there (Rust ignores SIGPIPE, so the write fails with EPIPE).
/// The test runs itself again as a child whose stderr is closed before it writes.
#[test]
fn a_fallback_with_stderr_closed_does_not_panic() {
    if std::env::var_os("HEAPSCOPE_TEST_STDERR_CLOSED").is_some() {
        std::thread::sleep(Duration::from_millis(200)); // the parent closes the pipe
        assert_eq!(Owner::named("bad/name"), Owner::overflow());
        println!("fell back without panicking");
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_fallback_with_stderr_closed_does_not_panic", "--nocapture"])
        .env("HEAPSCOPE_TEST_STDERR_CLOSED", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{stdout}", out.status);
    assert!(stdout.contains("fell back without panicking"), "{stdout}");
}

/// Checks that owners retired while holding bytes leave snapshots once those bytes are freed
/// later on another thread: a snapshot lists "every registered owner (and retired ones still
/// holding bytes)", and its `retired` entries are "retired but still holding bytes". A free
/// cannot take the registry's lock, so these ids waited for a full registry to be reclaimed,
/// and until then every snapshot, report and leak check listed them with 0 bytes (a retired
/// item, a retired owner, and a retired parent kept by its retired item), as `transfer_to`
/// once left an emptied parent.
#[test]
fn owners_retired_holding_bytes_leave_snapshots_once_another_thread_frees_them() {
    let _g = serial();
    let listed = || -> Vec<(String, bool, u64)> {
        Snapshot::capture()
            .owners
            .into_iter()
            .filter(|o| o.name.starts_with("reg_emptied"))
            .map(|o| (o.name, o.retired, o.stats.live_bytes))
            .collect()
    };
    let parent = Owner::named("reg_emptied_parent");
    let item = Retained::build(parent, "taken", || black_box(vec![0u8; 100]));
    let item_name = item.owner().name();
    let value = item.into_inner(); // the item's owner is retired, holding 100 bytes
    let plain = Owner::named("reg_emptied_plain");
    let kept = plain.in_scope(|| black_box(vec![0u8; 200]));
    plain.retire().unwrap();
    parent.retire().unwrap(); // holds its retired item's 100 bytes
    assert_eq!(
        listed(),
        [
            ("reg_emptied_parent".to_owned(), true, 100),
            (item_name, true, 100),
            ("reg_emptied_plain".to_owned(), true, 200),
        ]
    );
    std::thread::spawn(move || drop((value, kept))).join().unwrap();
    assert_eq!(listed(), [], "retired owners that hold nothing are still listed");
    assert_eq!(registered_names(), ["heapscope.internal", "heapscope.overflow", "root"]);
}

/// ACC-7 ("an overflow bucket is used, with one warning"): every way of falling back to the
/// overflow owner warns, once per process, on the first fallback whichever it is: a
/// `Retained::build` under a retired parent once fell back without a word, so a program whose
/// only fallbacks were items learned of none. Run in a child process, whose stderr is read.
#[test]
fn every_fallback_to_the_overflow_owner_warns_once_per_process() {
    const MARK: &str = "-- first fallback done --";
    if std::env::var_os("HEAPSCOPE_TEST_FALLBACK_WARNING").is_some() {
        let parent = Owner::named("reg_warn_parent");
        parent.retire().unwrap();
        let item = Retained::build(parent, "orphan", || black_box(vec![0u8; 10]));
        assert_eq!(item.owner(), Owner::overflow());
        eprintln!("{MARK}");
        assert_eq!(Owner::named(""), Owner::overflow());
        assert_eq!(Owner::named("a/b"), Owner::overflow());
        assert_eq!(Owner::named("x".repeat(129)), Owner::overflow());
        assert_eq!(parent.child("kid"), Owner::overflow());
        let again = Retained::build(parent, "orphan 2", || 0u8);
        assert_eq!(again.owner(), Owner::overflow());
        println!("fell back six times");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "every_fallback_to_the_overflow_owner_warns_once_per_process"])
        .args(["--nocapture", "--test-threads=1"])
        .env("HEAPSCOPE_TEST_FALLBACK_WARNING", "1")
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("fell back six times"), "{stdout}");
    let warnings: Vec<&str> =
        stderr.lines().filter(|l| l.contains("instead") && l.starts_with("heapscope:")).collect();
    assert_eq!(warnings.len(), 1, "one warning per process:\n{stderr}");
    let (first, _) = stderr.split_once(MARK).expect("the marker");
    assert!(first.contains(warnings[0]), "the first fallback (an item's) warns:\n{stderr}");
    assert!(warnings[0].contains("heapscope.overflow"), "{stderr}");
}

/// `transfer_to` counts the whole subtree an item carries, not just the item: an item whose
/// owner has a child and a grandchild (three levels) fits under the fourth level and not the
/// fifth, and a refused move changes nothing, grandchild included.
#[test]
fn moving_an_item_with_descendants_counts_their_levels() {
    let _g = serial();
    let mut chain = vec![Owner::named("reg_deep_move")];
    for i in 1..7 {
        let next = chain[i - 1].try_child(format!("m{i}")).unwrap();
        chain.push(next);
    }
    let item = Retained::build(chain[0], "carrier", || black_box(vec![0u8; 40]));
    let kid = item.owner().try_child("kid").unwrap();
    let grandkid = kid.try_child("grandkid").unwrap();
    let held = grandkid.in_scope(|| black_box(vec![0u8; 60]));
    assert_eq!(item.live_bytes(), 100);
    for too_deep in &chain[4..] {
        assert!(
            matches!(item.transfer_to(*too_deep), Err(Error::TooDeep { max_depth: 7, .. })),
            "under {}",
            too_deep.name()
        );
        assert_eq!(item.owner().parent(), Some(chain[0]));
        assert_eq!(grandkid.name(), format!("{}/kid/grandkid", item.owner().name()));
        assert_eq!(too_deep.stats().live_bytes, 0);
    }
    item.transfer_to(chain[3]).unwrap();
    assert_eq!(chain[3].stats().live_bytes, 100);
    assert_eq!(grandkid.name().matches('/').count(), 6, "{}", grandkid.name());
    // Seven levels: the grandchild can take no child.
    assert!(matches!(grandkid.try_child("x"), Err(Error::TooDeep { .. })));
    drop(held);
    grandkid.retire().unwrap();
    kid.retire().unwrap();
    drop(item);
    for o in chain.into_iter().rev() {
        o.retire().unwrap();
    }
}

#[test]
fn retiring_twice_is_ok_until_the_id_is_reused() {
    // Documented on `Owner::retire`: `Error::Stale` "when already reused". An owner holding
    // nothing has its id freed at its first retirement, but not reused until a registration.
    let _g = serial();
    let empty = Owner::named("reg_retire_twice_empty");
    empty.retire().unwrap();
    assert_eq!(empty.retire(), Ok(()), "freed, not reused: retired already");
    let holding = Owner::named("reg_retire_twice_holding");
    let v = holding.in_scope(|| black_box(vec![0u8; 100]));
    holding.retire().unwrap();
    assert_eq!(holding.retire(), Ok(()));
    drop(v);
    // Its id reused (ids are handed out last freed first, and a reading frees emptied ones).
    let _ = Snapshot::capture();
    let next = Owner::named("reg_retire_twice_next");
    let other = Owner::named("reg_retire_twice_other");
    assert_eq!(holding.retire(), Err(Error::Stale));
    assert_eq!(empty.retire(), Err(Error::Stale));
    next.retire().unwrap();
    other.retire().unwrap();
}
