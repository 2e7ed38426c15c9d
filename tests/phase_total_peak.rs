//! A phase's total peak rise against a transient, in a process of its own: exact figures need
//! a process in which nothing else allocates while the phase runs, and 1000 owners, which make
//! the phase's start reading large.
#![cfg(feature = "enabled")]

use heapscope::Owner;
use std::hint::black_box;

heapscope::install!();

const COPY: usize = 50 << 20;

/// 1000 owners (200 under a sanitizer, as in `tests/phase_memory.rs`), each holding 100 bytes;
/// the last holds a 50 MiB history, which a phase clones and drops a moment later.
///
/// The phase's total must rise by the copy plus what the phase itself held from its start:
/// 24 bytes per registered id, the process's included (its start figures), and 16 per id for
/// its peak window. With the 4 reserved ids and 1000 owners: 52 428 800 + 1004 x 40 = 52 468 960
/// bytes. The start reading's working memory (every owner's entry, name and counters, about
/// 190 KB with 1000 owners) was counted in `live_start_bytes` although freed before the phase
/// began, so the rise read 52 226 743 bytes, 242 217 short. The end is the start plus what
/// the phase held (its end reading's working memory is freed as soon as it is read).
#[test]
fn a_transient_copy_raises_the_phases_total_by_exactly_its_size_and_the_phases_own_bookkeeping() {
    let count = if std::env::var_os("HEAPSCOPE_SANITIZER").is_some() { 200 } else { 1000 };
    let owners: Vec<Owner> =
        (0..count).map(|i| Owner::named(format!("phase_total_peak_{i:04}"))).collect();
    let held: Vec<Vec<u8>> = owners.iter().map(|o| o.in_scope(|| vec![1u8; 100])).collect();
    let history = *owners.last().unwrap();
    let turns = history.in_scope(|| vec![7u8; COPY]);
    // Every reserved id and every owner, nothing else: the figures below count ids.
    let ids = 4 + count as u64;
    assert_eq!(heapscope::Snapshot::capture().owners.len() as u64, ids - 1, "owners registered");
    // The first phases size the registry's list of open windows and the ring of records.
    for _ in 0..2 {
        drop(heapscope::phase("warm-up"));
    }

    let before = heapscope::global_stats().live_bytes;
    let p = heapscope::phase("copy");
    let copy = history.in_scope(|| black_box(turns.clone()));
    drop(copy);
    let record = p.finish();

    let phase_held = ids * 24 + ids * 16;
    let name = "copy".len() as u64;
    assert_eq!(
        record.total.live_start_bytes,
        before + name,
        "the total's start is the process before the phase plus its name: {:?}",
        record.total
    );
    assert_eq!(
        record.total.peak_bytes - record.total.live_start_bytes,
        COPY as u64 + phase_held,
        "the total's peak rise is the copy plus the phase's own start and window: {:?}",
        record.total
    );
    assert_eq!(
        record.total.live_end_bytes - record.total.live_start_bytes,
        phase_held,
        "the total ends up by what the phase holds, not its end reading's working memory: {:?}",
        record.total
    );
    let internal = record.owners.iter().find(|o| o.name == "heapscope.internal").unwrap();
    assert_eq!(internal.live_end_bytes - internal.live_start_bytes, phase_held);
    let h = record.owners.iter().find(|o| o.name == history.name()).unwrap();
    assert_eq!(h.peak_bytes - h.live_start_bytes, COPY as u64);
    assert_eq!(h.live_end_bytes, h.live_start_bytes);
    drop((held, turns));
}
