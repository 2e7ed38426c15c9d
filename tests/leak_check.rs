//! `leak_check` in a process of its own (it observes every owner of the process): a leaking
//! owner, a transient peak and a cache that fills during warm-up are told apart.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::testing::{leak_check, Trend};
use heapscope::Owner;
use std::hint::black_box;

#[test]
fn leak_transient_peak_and_cache_are_told_apart() {
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
