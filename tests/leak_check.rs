//! `leak_check` in a process of its own (it observes every owner of the process, so the tests
//! here take turns): a leaking owner, a transient peak and a cache that fills during warm-up
//! are told apart, owners are judged with their descendants, and peaks of the warm-up do not
//! count.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::testing::{leak_check, leak_check_under, LeakReport, Probe, Trend};
use heapscope::{Owner, Retained};
use std::hint::black_box;
use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn leaking_names(report: &LeakReport) -> Vec<&str> {
    report.leaking().iter().map(|o| o.name.as_str()).collect()
}

#[test]
fn leak_transient_peak_and_cache_are_told_apart() {
    let _g = serial();
    const WARMUP: usize = 3;
    const ITERATIONS: usize = 24;
    let leak = Owner::named("lc_leaking_owner");
    let transient = Owner::named("lc_transient_owner");
    let cache = Owner::named("lc_cache_owner");
    // The leak's outer Vec is sized once, up front, so the leak is exactly 256 B/iteration.
    let mut kept: Vec<Vec<u8>> = leak.in_scope(|| Vec::with_capacity(WARMUP + ITERATIONS));
    let mut cached: Vec<Vec<u8>> = Vec::new();
    let report = leak_check(WARMUP, ITERATIONS, |i| {
        assert!(i < WARMUP + ITERATIONS);
        leak.in_scope(|| kept.push(black_box(vec![i as u8; 256])));
        transient.in_scope(|| drop(black_box(vec![1u8; 1 << 20])));
        if i < WARMUP {
            cache.in_scope(|| cached.push(black_box(vec![2u8; 16 << 10])));
        }
    });
    assert!(report.is_active());
    assert_eq!(kept.len(), WARMUP + ITERATIONS);

    let leaking = report.leaking();
    assert_eq!(leaking.len(), 1, "{report:?}\n{:#?}", report.all());
    let l = leaking[0];
    assert_eq!(l.name, "lc_leaking_owner");
    assert_eq!(l.trend, Trend::Leaking);
    assert!((l.bytes_per_iteration - 256.0).abs() < 1.0, "{}", l.bytes_per_iteration);
    // Own live bytes: the outer Vec (27 * 24) plus 256 per pushed block.
    let outer = ((WARMUP + ITERATIONS) * 24) as u64;
    assert_eq!(l.start_live_bytes, outer + WARMUP as u64 * 256);
    assert_eq!(l.end_live_bytes, outer + (WARMUP + ITERATIONS) as u64 * 256);

    let t = report.owner("lc_transient_owner").expect("transient owner observed");
    assert_eq!(t.trend, Trend::TransientPeak);
    assert_eq!(t.end_live_bytes, 0);
    assert_eq!(t.peak_bytes, 1 << 20);
    assert_eq!(t.bytes_per_iteration, 0.0);

    let c = report.owner("lc_cache_owner").expect("cache owner observed");
    assert_eq!(c.trend, Trend::Flat);
    // 3 blocks of 16 KiB plus the outer Vec grown by pushes: 4 slots * 24 bytes.
    assert_eq!(cached.capacity(), 4);
    assert_eq!(c.start_live_bytes, 3 * (16 << 10) + 4 * 24);
    assert_eq!(c.end_live_bytes, c.start_live_bytes);
    assert_eq!(c.bytes_per_iteration, 0.0);

    let shown = format!("{report}");
    let debugged = format!("{report:?}");
    for text in [&shown, &debugged] {
        assert!(text.contains("lc_leaking_owner"), "{text}");
        assert!(!text.contains("lc_transient_owner"), "{text}");
        assert!(!text.contains("lc_cache_owner"), "{text}");
    }
    assert!(shown.starts_with("heapscope: 1 leaking owner(s) over 24 iterations"), "{shown}");
    drop((kept, cached));
}

/// Items kept forever under one parent (an agent's history, each turn a `Retained` of its
/// own): every item grows once, so only the parent, judged with its descendants, grows in
/// every iteration. Judged on its own bytes (before 2026-12-05) nothing was leaking.
#[test]
fn items_kept_forever_make_their_parent_leaking() {
    let _g = serial();
    let history = Owner::named("lc_history");
    let mut kept: Vec<Retained<Vec<u8>>> = Vec::with_capacity(16);
    let report = leak_check(2, 12, |i| {
        kept.push(Retained::build(history, "turn", || black_box(vec![i as u8; 4096])));
    });
    assert_eq!(leaking_names(&report), ["lc_history"], "{report}");
    let h = report.owner("lc_history").unwrap();
    assert!((h.bytes_per_iteration - 4096.0).abs() < 1.0, "{h:?}");
    drop(kept);
    history.retire().unwrap();
}

/// A per-request owner that leaks and is re-created every iteration is a new owner each time
/// (the retired one is renamed `… (retired #N)` once its name is taken): none of them grows
/// twice. Made a child of one parent, the leak shows in the parent.
#[test]
fn a_leak_through_re_created_children_shows_in_their_parent() {
    let _g = serial();
    let requests = Owner::named("lc_requests");
    let mut kept = Vec::with_capacity(16);
    let report = leak_check(2, 12, |i| {
        let request = requests.child("current");
        kept.push(request.in_scope(|| black_box(vec![i as u8; 1000])));
        request.retire().unwrap();
    });
    assert_eq!(leaking_names(&report), ["lc_requests"], "{report}");
    drop(kept);
    requests.retire().unwrap();
}

/// A parent whose child holds a steady cache, and a cache that filled during warm-up by
/// reallocation (a `HashMap` holds its old and new tables while it grows), are flat: before
/// 2026-12-05 both were "transient peaks", the first because its own bytes (0) were compared
/// with its peak including the child, the second because the peak of the warm-up counted.
#[test]
fn steady_children_and_caches_filled_in_warm_up_are_flat() {
    let _g = serial();
    let parent = Owner::named("lc_parent");
    let child = parent.child("cache");
    let steady = child.in_scope(|| black_box(vec![0u8; 10_000]));
    let table_owner = Owner::named("lc_hash_cache");
    let mut table: std::collections::HashMap<u64, [u8; 64]> = Default::default();
    let report = leak_check(3, 12, |i| {
        if i < 3 {
            table_owner
                .in_scope(|| table.extend((0..1000u64).map(|k| (i as u64 * 1000 + k, [1; 64]))));
        }
        black_box(table.len());
    });
    for name in ["lc_parent", "lc_parent/cache", "lc_hash_cache"] {
        let o = report.owner(name).unwrap_or_else(|| panic!("{name} observed"));
        assert_eq!(o.trend, Trend::Flat, "{o:?}");
        assert_eq!(o.start_live_bytes, o.end_live_bytes, "{o:?}");
        assert_eq!(o.peak_bytes, o.end_live_bytes, "{o:?}");
    }
    assert_eq!(report.owner("lc_parent").unwrap().end_live_bytes, 10_000);
    drop((steady, table));
    child.retire().unwrap();
    parent.retire().unwrap();
    table_owner.retire().unwrap();
}

/// A probe's name is cut to fit the owner name limit by bytes, at a character boundary: cut
/// by characters, 100 `é` made a name of over 128 bytes and the probe measured the overflow
/// owner instead of one of its own.
#[test]
fn a_probe_with_a_long_non_ascii_name_gets_an_owner_of_its_own() {
    let _g = serial();
    let probe = Probe::start(&"é".repeat(100));
    assert_ne!(probe.owner(), Owner::overflow());
    assert!(probe.owner().name().starts_with("probe:éé"), "{}", probe.owner().name());
    let v = black_box(vec![0u8; 100]);
    assert_eq!(probe.stats().live_bytes, 100);
    drop(v);
}

#[test]
fn a_check_whose_body_panics_retires_its_owner() {
    let _g = serial();
    let failed = std::panic::catch_unwind(|| leak_check(0, 6, |i| assert!(i < 3, "body fails")));
    assert!(failed.is_err());
    // The check's own owner (`leak_check:#n`) was once left registered for good.
    let left: Vec<String> = heapscope::Snapshot::capture()
        .owners
        .into_iter()
        .filter(|o| o.name.starts_with("leak_check:") && !o.retired)
        .map(|o| o.name)
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// An item moved under another parent during the check (`transfer_to` renames it from
/// `lc_move_tools/item#N` to `lc_move_history/item#N`) is one owner that held the same bytes
/// throughout. Sampled by name, it was two: the old name dropping to 0 and the new one
/// rising from 0.
#[test]
fn an_item_moved_during_the_check_is_one_flat_owner() {
    let _g = serial();
    let tools = Owner::named("lc_move_tools");
    let history = Owner::named("lc_move_history");
    let item = Retained::build(tools, "output", || black_box(vec![1u8; 4096]));
    let report = leak_check(2, 12, |i| {
        if i == 7 {
            item.transfer_to(history).unwrap();
        }
    });
    let items: Vec<_> = report.all().iter().filter(|o| o.name.contains("/item#")).collect();
    assert_eq!(items.len(), 1, "{items:#?}");
    let moved = items[0];
    assert!(moved.name.starts_with("lc_move_history/item#"), "{moved:?}");
    assert_eq!(moved.trend, Trend::Flat, "{moved:?}");
    assert_eq!((moved.start_live_bytes, moved.end_live_bytes), (4096, 4096), "{moved:?}");
    drop(item);
    tools.retire().unwrap();
    history.retire().unwrap();
}

/// "Grows in every third of the run": over 8 measured iterations the last third is iterations
/// 6 to 8. A cache that fills by 100 bytes in each of the first 5 iterations and then holds
/// still for the last 3 did not grow in it, yet was judged leaking: the thirds were cut at
/// samples 2 and 4 (`8 / 3` rounded down), so the last "third" (samples 4 to 8) was half the
/// run and took in the fifth fill.
#[test]
fn a_cache_that_fills_in_the_first_five_of_eight_iterations_is_not_leaking() {
    let _g = serial();
    let cache = Owner::named("lc_fills_five_of_eight");
    let mut kept: Vec<Vec<u8>> = cache.in_scope(|| Vec::with_capacity(8));
    let report = leak_check(0, 8, |i| {
        if i < 5 {
            cache.in_scope(|| kept.push(black_box(vec![0u8; 100])));
        }
    });
    let c = report.owner("lc_fills_five_of_eight").expect("cache owner observed");
    // The outer Vec (8 slots of 24 bytes), then 100 bytes per fill, 5 fills.
    assert_eq!((c.start_live_bytes, c.end_live_bytes, c.peak_bytes), (192, 692, 692), "{c:?}");
    assert_eq!(c.trend, Trend::Flat, "{c:?}");
    assert!(report.leaking().is_empty(), "{report}");
    drop(kept);
    cache.retire().unwrap();
}

/// An owner registered during the check (iteration 3), which held 1 MiB for a moment and 100
/// bytes across three iteration boundaries, and was retired holding nothing before the end
/// (iteration 6). Its highest live bytes were 1 MiB: a transient peak. Its id being freed,
/// the window kept the peaks only of owners present at its opening, so the report said
/// `peak_bytes: 0` (below the 100 bytes it sampled) and `Flat`.
#[test]
fn an_owner_registered_and_freed_during_the_check_keeps_its_peak() {
    let _g = serial();
    let mut held: Option<Vec<u8>> = None;
    let report = leak_check(0, 12, |i| {
        if i == 3 {
            let request = Owner::named("lc_mid_run_request");
            held = Some(request.in_scope(|| {
                drop(black_box(vec![0u8; 1 << 20]));
                black_box(vec![0u8; 100])
            }));
        }
        if i == 6 {
            held = None;
            Owner::named("lc_mid_run_request").retire().unwrap();
        }
    });
    let o = report.owner("lc_mid_run_request").expect("request owner observed");
    assert_eq!((o.start_live_bytes, o.end_live_bytes), (0, 0), "{o:?}");
    assert_eq!(o.peak_bytes, 1 << 20, "{o:?}");
    assert_eq!(o.trend, Trend::TransientPeak, "{o:?}");
}

/// A leak check run while a probe is entered (as in the README's "In tests", where the probe
/// is still alive at the check), of a body that allocates nothing: nothing leaks, and the
/// probe holds nothing. The check's own bookkeeping (a growing series of samples per owner)
/// was charged to the owner current on the calling thread, the probe's, which then grew in
/// every third of 24 iterations and was reported leaking.
#[test]
fn a_check_run_inside_a_probe_does_not_charge_its_bookkeeping_to_it() {
    let _g = serial();
    let probe = Probe::start("around_leak_check");
    let report = leak_check(5, 24, |i| {
        black_box(i);
    });
    assert!(report.leaking().is_empty(), "{report}");
    let p = report.owner(&probe.owner().name()).expect("probe owner observed");
    assert_eq!((p.start_live_bytes, p.end_live_bytes, p.peak_bytes), (0, 0, 0), "{p:?}");
    assert_eq!(p.trend, Trend::Flat, "{p:?}");
}

/// A bounded batch buffer (a telemetry batcher, a write buffer) that takes a 1 KiB item every
/// iteration and is emptied when it holds 9, checked with the README's `leak_check(5, 30, …)`.
/// It never holds more than 9 items: a transient peak, not a leak. The samples at the thirds'
/// edges (0, 10, 20, 30) fall on 5, 6, 7 and 8 items (30 / 3 = 10 ≡ 1 mod 9: the period
/// aliases), so "grew between the edges of every third" held and it was reported leaking at
/// 20.6 bytes/iteration, though each third emptied it to the same floor (216 bytes).
#[test]
fn a_batch_buffer_emptied_every_nine_iterations_is_not_leaking() {
    let _g = serial();
    let batcher = Owner::named("lc_batcher");
    // The outer Vec is sized once: 9 slots of 24 bytes, 216 bytes for the whole run.
    let mut batch: Vec<Vec<u8>> = batcher.in_scope(|| Vec::with_capacity(9));
    let report = leak_check(5, 30, |i| {
        batcher.in_scope(|| batch.push(black_box(vec![i as u8; 1024])));
        if batch.len() == 9 {
            batch.clear(); // sent: the items are freed, the outer Vec kept
        }
    });
    let b = report.owner("lc_batcher").expect("batcher observed");
    // After warm-up (5 iterations) it holds 5 items; after the 35th iteration 35 % 9 = 8.
    assert_eq!((b.start_live_bytes, b.end_live_bytes), (216 + 5 * 1024, 216 + 8 * 1024), "{b:?}");
    assert_eq!(b.peak_bytes, 216 + 9 * 1024, "{b:?}");
    assert_eq!(b.trend, Trend::TransientPeak, "{b:?}");
    assert!(report.leaking().is_empty(), "{report}");
    drop(batch);
    batcher.retire().unwrap();
}

/// The same buffer emptied every 7 iterations over 24 (`leak_check(3, 24, …)`: thirds of 8
/// iterations, 8 ≡ 1 mod 7) aliased the same way, and a small real leak next to it in another
/// owner must still be found, with its exact rate.
#[test]
fn a_buffer_emptied_every_seven_of_24_is_not_leaking_and_a_small_leak_beside_it_is() {
    let _g = serial();
    let buffer = Owner::named("lc_buffer_seven");
    let leak = Owner::named("lc_small_leak");
    let mut pending: Vec<Vec<u8>> = buffer.in_scope(|| Vec::with_capacity(7));
    let mut leaked: Vec<Box<[u8; 48]>> = leak.in_scope(|| Vec::with_capacity(27));
    let report = leak_check(3, 24, |i| {
        buffer.in_scope(|| pending.push(black_box(vec![1u8; 4096])));
        if pending.len() == 7 {
            pending.clear();
        }
        leak.in_scope(|| leaked.push(black_box(Box::new([i as u8; 48]))));
    });
    let b = report.owner("lc_buffer_seven").expect("buffer observed");
    assert_eq!(b.start_live_bytes, 7 * 24 + 3 * 4096, "{b:?}");
    assert_eq!(b.trend, Trend::TransientPeak, "{b:?}");
    let names: Vec<&str> = report.leaking().iter().map(|o| o.name.as_str()).collect();
    assert!(names.contains(&"lc_small_leak"), "{report}");
    assert!(!names.contains(&"lc_buffer_seven"), "{report}");
    let l = report.owner("lc_small_leak").unwrap();
    assert!((l.bytes_per_iteration - 48.0).abs() < 0.01, "{l:?}");
    drop((pending, leaked));
    buffer.retire().unwrap();
    leak.retire().unwrap();
}

/// Two tests running at once, as libtest runs them, each with its own check or probe: one
/// check's body keeps an 8-byte key per iteration under that check's own owner (a cache keyed
/// by a `format!`ed string, made outside any owner of the tested code), and another test's
/// probe keeps 16 bytes per iteration. A third check, of a body that keeps nothing, run in
/// step with both, judged every owner of the process: it reported the other check's owner
/// leaking at exactly 8.0 bytes/iteration (0 -> 240 bytes over 30 iterations) and the probe's
/// at 16.0 (0 -> 480), under names (`leak_check:#n`, `probe:…#n`) that read as its own. Run
/// with `--test-threads=1`, the same test passed. Those owners are another test's: a check
/// judges its own owner and the rest of the process, not other checks' or probes'.
#[test]
fn a_check_does_not_judge_another_tests_check_or_probe() {
    let _g = serial();
    const ITERATIONS: usize = 30;
    // Each iteration: every party waits once before the others' work and once after it, so
    // each sample of this check sees the other two after exactly as many iterations as it ran.
    let step = std::sync::Barrier::new(3);
    let (other, probed, report) = std::thread::scope(|s| {
        let other = s.spawn(|| {
            // Sized up front (in root, this thread has entered no owner): the leak is the
            // boxes alone, 8 bytes each.
            let mut kept: Vec<Box<u64>> = Vec::with_capacity(ITERATIONS);
            let report = leak_check(0, ITERATIONS, |i| {
                step.wait();
                kept.push(black_box(Box::new(i as u64)));
                step.wait();
            });
            (report, kept)
        });
        let probed = s.spawn(|| {
            let mut kept: Vec<Box<[u64; 2]>> = Vec::with_capacity(ITERATIONS);
            let probe = Probe::start("other_test");
            let name = probe.owner().name();
            for i in 0..ITERATIONS {
                step.wait();
                kept.push(black_box(Box::new([i as u64; 2])));
                step.wait();
            }
            let live = probe.stats().live_bytes;
            drop(probe);
            (name, live, kept.len())
        });
        let report = leak_check(0, ITERATIONS, |_| {
            step.wait();
            step.wait();
        });
        (other.join().unwrap(), probed.join().unwrap(), report)
    });
    let ((other, kept), (probe_name, probe_live, probe_kept)) = (other, probed);
    assert_eq!(
        (kept.len(), probe_kept, probe_live),
        (ITERATIONS, ITERATIONS, 16 * ITERATIONS as u64)
    );
    // The other check still judges its own owner: 8 bytes an iteration, 0 -> 240.
    let own = other.leaking();
    assert_eq!(own.len(), 1, "{other}");
    let own = own[0];
    assert!(own.name.starts_with("leak_check:#"), "{other}");
    assert_eq!((own.start_live_bytes, own.end_live_bytes), (0, 8 * ITERATIONS as u64), "{own:?}");
    assert!((own.bytes_per_iteration - 8.0).abs() < 1e-9, "{own:?}");
    // This check sees neither the other check's owner nor the other test's probe.
    assert!(report.leaking().is_empty(), "{report}");
    assert!(report.owner(&own.name).is_none(), "{:?}", report.owner(&own.name));
    assert!(report.owner(&probe_name).is_none(), "{:?}", report.owner(&probe_name));
    // Nor does the other check see this one's, or the probe.
    assert!(other.owner(&probe_name).is_none(), "{:?}", other.owner(&probe_name));
    let checks =
        |r: &LeakReport| r.all().iter().filter(|o| o.name.starts_with("leak_check:#")).count();
    assert_eq!(
        (checks(&report), checks(&other)),
        (1, 1),
        "{:#?}\n{:#?}",
        report.all(),
        other.all()
    );
    // The other check has ended and retired its owner, which still holds the 30 boxes: still
    // another test's, so a check started now does not judge it either.
    let later = leak_check(0, 6, |i| {
        black_box(i);
    });
    assert!(later.owner(&own.name).is_none(), "{:?}", later.owner(&own.name));
    assert_eq!(checks(&later), 1, "{:#?}", later.all());
    drop(kept);
}

/// `leak_check_under(parent, …)` judges `parent`, its descendants and the check's own owner,
/// and nothing else: an owner outside the subtree that leaks twice as fast (another test's
/// `owner!("history")`, say) is not in the report at all.
#[test]
fn a_check_under_an_owner_judges_its_subtree_and_its_own_owner_only() {
    let _g = serial();
    const WARMUP: usize = 3;
    const ITERATIONS: usize = 24;
    const ALL: usize = WARMUP + ITERATIONS;
    let mine = Owner::named("lc_under");
    let (history, cache) = (mine.child("history"), mine.child("cache"));
    let outside = Owner::named("lc_under_outside");
    // The outer Vecs are sized up front, outside every owner judged (this thread's root): the
    // leaks are the blocks alone.
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(ALL);
    let mut theirs: Vec<Vec<u8>> = Vec::with_capacity(ALL + 6);
    let mut keys: Vec<Box<u64>> = Vec::with_capacity(ALL);
    let mut cached: Vec<Vec<u8>> = Vec::with_capacity(WARMUP);
    let report = leak_check_under(mine, WARMUP, ITERATIONS, |i| {
        history.in_scope(|| kept.push(black_box(vec![1u8; 64])));
        outside.in_scope(|| theirs.push(black_box(vec![2u8; 128])));
        keys.push(black_box(Box::new(i as u64))); // under the check's own owner
        if i < WARMUP {
            cache.in_scope(|| cached.push(black_box(vec![3u8; 1024])));
        }
    });
    assert!(report.is_active());
    let rows: Vec<(&str, Trend, u64, u64)> = report
        .all()
        .iter()
        .map(|o| (o.name.as_str(), o.trend, o.start_live_bytes, o.end_live_bytes))
        .collect();
    let own = report.all().iter().find(|o| o.name.starts_with("leak_check:#")).expect("own owner");
    // Slopes 64, 64, 8, 0: the subtree's parent holds its children's bytes.
    assert_eq!(
        rows,
        [
            ("lc_under", Trend::Leaking, 3 * 1024 + 3 * 64, 3 * 1024 + ALL as u64 * 64),
            ("lc_under/history", Trend::Leaking, 3 * 64, ALL as u64 * 64),
            (own.name.as_str(), Trend::Leaking, 3 * 8, ALL as u64 * 8),
            ("lc_under/cache", Trend::Flat, 3 * 1024, 3 * 1024),
        ],
        "{:#?}",
        report.all()
    );
    assert!((own.bytes_per_iteration - 8.0).abs() < 1e-9, "{own:?}");
    assert!(report.owner("lc_under_outside").is_none(), "{report}");
    // The same body under `leak_check` reports the outside owner too, at 128 a iteration.
    let everything = leak_check(0, 6, |_| {
        outside.in_scope(|| theirs.push(black_box(vec![2u8; 128])));
    });
    let o = everything.owner("lc_under_outside").expect("observed by leak_check");
    assert_eq!(
        (o.trend, o.end_live_bytes - o.start_live_bytes),
        (Trend::Leaking, 6 * 128),
        "{o:?}"
    );
    drop((kept, theirs, keys, cached));
    for owner in [history, cache, mine, outside] {
        owner.retire().unwrap();
    }
}

/// A probe counts only what is allocated while its owner is current: code that enters an
/// owner of its own allocates there (an agent's turns under a probe read 0 live bytes while
/// the agent's history held 148 899). As `Probe`'s docs say, with their example's figures.
#[test]
fn a_probe_does_not_count_what_the_code_allocates_under_its_own_owners() {
    let _g = serial();
    let history = Owner::named("lc_probe_doc_history");
    let probe = Probe::start("turn");
    let turn = history.in_scope(|| black_box(String::from("user: hi")));
    let stray = black_box(vec![0u8; 100]);
    assert_eq!(probe.stats().live_bytes, 100);
    assert_eq!(history.stats().live_bytes, 8);
    drop((turn, stray, probe));
    history.retire().unwrap();
}
