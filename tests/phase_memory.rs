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

fn owners() -> &'static [Owner] {
    static OWNERS: std::sync::OnceLock<Vec<Owner>> = std::sync::OnceLock::new();
    OWNERS.get_or_init(|| (0..1000).map(|i| Owner::named(format!("phase_mem_{i:04}"))).collect())
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
