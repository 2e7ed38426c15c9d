//! What the ring of recent phases keeps of heapscope's own memory, in a process of its own:
//! the 1000 owners that make every phase record large would slow the phases of other tests.
#![cfg(feature = "enabled")]

use heapscope::Owner;
use std::hint::black_box;

heapscope::install!();

/// 1000 owners, each allocating in every one of `PHASE_HISTORY + 10` phases: every record
/// lists all of them.
fn fill_the_ring(owners: &[Owner]) {
    for n in 0..heapscope::PHASE_HISTORY + 10 {
        let p = heapscope::phase(format!("phase_memory_{n}"));
        for o in owners {
            drop(o.in_scope(|| black_box(vec![0u8; 10])));
        }
        drop(p);
    }
}

/// Phases open and close every owner's peak window: the tests here take turns.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// 1000 owners; 200 under a sanitizer (`.ci/sanitizers` sets HEAPSCOPE_SANITIZER), which
/// checks every access rather than counts them: at 1000 this file took 74 s under
/// AddressSanitizer. The bounds below still tell the old costs from the new at 200.
fn owners() -> &'static [Owner] {
    static OWNERS: std::sync::OnceLock<Vec<Owner>> = std::sync::OnceLock::new();
    let count = if std::env::var_os("HEAPSCOPE_SANITIZER").is_some() { 200 } else { 1000 };
    OWNERS.get_or_init(|| (0..count).map(|i| Owner::named(format!("phase_mem_{i:04}"))).collect())
}

/// A report lists the last 20 phases, but cloned the whole ring (256 records) to keep them:
/// with 1000 owners in every record the process peaked 19.3 MB above its start during
/// `report()`, for 20 records of about 77 KB (1.5 MB since).
#[test]
fn a_report_copies_only_the_phases_it_lists() {
    let _serial = serial();
    fill_the_ring(owners());
    let p = heapscope::phase("phase_memory_report");
    let report = black_box(heapscope::report());
    assert_eq!(report.phases.len(), 20);
    drop(report);
    let record = p.finish();
    let rise = record.total.peak_bytes - record.total.live_start_bytes;
    assert!(rise < 4 << 20, "report() raised the process peak by {rise} bytes: {:?}", record.total);
}

/// heapscope.internal's live bytes: nothing else runs in this process while the tests take
/// turns, so one reading is enough.
fn internal_bytes() -> u64 {
    Owner::named("heapscope.internal").stats().live_bytes
}

/// Every record in the ring listed every owner that moved in its phase: 70 KB more of
/// heapscope.internal per record with 1000 owners than with none (19.8 MB for a full ring;
/// about 80 MB with 4000 owners). A kept record now lists the `PHASE_OWNERS` that moved
/// most: 2.2 KB more.
#[test]
fn a_kept_phase_costs_a_bounded_few_kilobytes_however_many_owners() {
    let _serial = serial();
    let owners = owners();
    // The ring full of records that list only heapscope.internal, then of records that list
    // every owner.
    for n in 0..heapscope::PHASE_HISTORY {
        drop(heapscope::phase(format!("phase_memory_quiet_{n}")));
    }
    let quiet = internal_bytes();
    fill_the_ring(owners);
    let full = internal_bytes();
    let per_record = full.saturating_sub(quiet) / heapscope::PHASE_HISTORY as u64;
    assert!(per_record < 8 << 10, "{per_record} B of heapscope.internal per kept phase");
}

/// The record `finish` returns lists every owner that moved; the ring's copy the
/// `PHASE_OWNERS` that moved most, counting the others, including one that only shrank.
#[test]
fn a_kept_phase_lists_the_owners_that_moved_most_and_counts_the_others() {
    let _serial = serial();
    let owners = owners();
    let big = Owner::named("phase_mem_big");
    let shrinking = Owner::named("phase_mem_shrinking");
    let held = shrinking.in_scope(|| black_box(vec![1u8; 1 << 20]));
    let p = heapscope::phase("phase_memory_listed");
    for o in owners {
        drop(o.in_scope(|| black_box(vec![0u8; 10])));
    }
    drop(big.in_scope(|| black_box(vec![0u8; 1 << 20])));
    drop(held); // rises by nothing, falls by 1 MiB
    let full = p.finish();
    assert!(full.owners.len() >= owners.len() + 2, "{}", full.owners.len());
    assert_eq!(full.other_owners, 0);

    let kept = heapscope::recent_phases().pop().unwrap();
    assert_eq!(kept.name, "phase_memory_listed");
    assert_eq!(kept.owners.len(), heapscope::PHASE_OWNERS);
    assert_eq!(kept.other_owners, (full.owners.len() - heapscope::PHASE_OWNERS) as u64);
    assert_eq!(kept.total, full.total);
    assert_eq!(kept.owners[0], full.owners[0], "the largest peak rise first, as in `finish`'s");
    let names: Vec<&str> = kept.owners.iter().map(|o| o.name.as_str()).collect();
    assert!(
        names.contains(&"phase_mem_big") && names.contains(&"phase_mem_shrinking"),
        "{names:?}"
    );
    let s = kept.owners.iter().find(|o| o.name == "phase_mem_shrinking").unwrap();
    assert_eq!((s.live_start_bytes, s.live_end_bytes, s.peak_bytes), (1 << 20, 0, 1 << 20));
    // In `finish`'s order.
    let order: Vec<usize> =
        kept.owners.iter().map(|k| full.owners.iter().position(|o| o == k).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

/// An open phase held a full `Snapshot` of every owner from its start (names, parents and
/// every figure: about 126 B per owner with its key) besides its peak window (16 B per owner
/// id): 100 phases open at once with 1000 owners held 14 256 896 B of heapscope.internal,
/// 142 B per owner per phase. It now holds only what `finish` reads, 24 B per owner:
/// 4 036 896 B, 40 B per owner per phase with the window.
#[test]
fn an_open_phase_costs_a_few_bytes_per_owner() {
    let _serial = serial();
    let owners = owners();
    const OPEN: usize = 100;
    // Registered and warmed up: the first phase's reading may grow heapscope's own tables.
    drop(heapscope::phase("phase_memory_open_warm_up"));
    let before = internal_bytes();
    let open: Vec<heapscope::Phase> =
        (0..OPEN).map(|n| heapscope::phase(format!("phase_memory_open_{n}"))).collect();
    let held = internal_bytes().saturating_sub(before);
    drop(open);
    let per_owner = held / (OPEN * owners.len()) as u64;
    assert!(
        per_owner < 48,
        "{held} B of heapscope.internal for {OPEN} open phases: {per_owner} B per owner each"
    );
}
