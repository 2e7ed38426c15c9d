//! Sampler and watch: bounds are enforced with typed errors, the ring stays at its capacity,
//! and a growing owner shows in the timeline with the bytes it really gained.
#![cfg(feature = "enabled")]

use heapscope::{Error, Owner, Sampler, Timeline};
use std::hint::black_box;
use std::time::Duration;

heapscope::install!();

const MS: Duration = Duration::from_millis(1);

/// Polls `done` every 5 ms for at most 10 s.
fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(5 * MS);
    }
}

#[test]
fn bounds_are_typed_errors() {
    assert!(matches!(
        heapscope::watch(100 * MS, 5 * MS),
        Err(Error::OutOfBounds { what: "sampling interval", .. })
    ));
    assert!(matches!(
        heapscope::watch(Duration::from_secs(7200), Duration::from_secs(1)),
        Err(Error::OutOfBounds { what: "watch duration", .. })
    ));
    assert!(matches!(
        heapscope::watch(Duration::from_secs(3000), 10 * MS),
        Err(Error::OutOfBounds { what: "watch samples (duration / interval)", .. })
    ));
    assert!(matches!(
        Sampler::start(MS, 10),
        Err(Error::OutOfBounds { what: "sampling interval", .. })
    ));
    assert!(matches!(
        Sampler::start(10 * MS, 0),
        Err(Error::OutOfBounds { what: "sampler capacity", .. })
    ));
    // `stop` promises a sample at the start and one at the stop: a ring of one cannot keep both.
    assert!(matches!(
        Sampler::start(10 * MS, 1),
        Err(Error::OutOfBounds { what: "sampler capacity", allowed: "2 to 100000 samples", .. })
    ));
    assert!(matches!(
        Sampler::start(10 * MS, 100_001),
        Err(Error::OutOfBounds { what: "sampler capacity", .. })
    ));
    let message = Sampler::start(10 * MS, 0).unwrap_err().to_string();
    assert!(message.starts_with("heapscope: sampler capacity = 0 is out of bounds"), "{message}");
}

#[test]
fn the_ring_keeps_its_capacity() {
    let sampler = Sampler::start(10 * MS, 3).unwrap();
    wait_until(|| sampler.timeline().dropped_samples >= 5);
    let t = sampler.stop();
    assert_eq!(t.samples.len(), 3);
    assert!(t.dropped_samples >= 5, "{}", t.dropped_samples);
    assert!(t.samples.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}

#[test]
fn the_smallest_ring_keeps_a_sample_and_the_one_at_the_stop() {
    let sampler = Sampler::start(10 * MS, 2).unwrap();
    std::thread::sleep(50 * MS);
    let t = sampler.stop();
    assert_eq!(t.samples.len(), 2, "{} dropped", t.dropped_samples);
    assert!(t.samples[0].at_ms <= t.samples[1].at_ms, "{:?}", t.samples);
}

#[test]
fn a_growing_owner_shows_in_the_timeline() {
    let owner = Owner::named("timeline_growing");
    let sampler = Sampler::start(10 * MS, 10_000).unwrap();
    let mut kept = Vec::new();
    for _ in 0..8 {
        kept.push(owner.in_scope(|| black_box(vec![1u8; 1 << 20])));
        std::thread::sleep(15 * MS);
    }
    // Wait for a sample taken after the last allocation (bounded, for a loaded machine).
    wait_until(|| {
        sampler.timeline().samples.last().and_then(|s| s.owners.get("timeline_growing").copied())
            == Some(8 << 20)
    });
    let t: Timeline = sampler.stop();
    let s = t.series("owner:timeline_growing").expect("owner series");
    // The owner may be sampled before its first MiB; by the last sample it holds all 8.
    assert!(s.start <= 1 << 20, "{s:?}");
    assert_eq!((s.end, s.max), (8 << 20, 8 << 20));
    assert!(s.delta >= 7 << 20);
    // Process-wide: other tests of this binary allocate too, so only a lower bound holds.
    assert!(t.series("tracked").unwrap().max >= 8 << 20);
    assert!(t.series("rss").is_some());
    if cfg!(feature = "jemalloc") {
        assert!(t.series("allocated").unwrap().max >= 8 << 20);
    } else {
        assert!(t.series("allocated").is_none(), "no allocator statistics without jemalloc");
    }
    let json = serde_json::to_string(&t).unwrap();
    let back: Timeline = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    drop(kept);
    let after = heapscope::watch(20 * MS, 10 * MS).unwrap();
    // Three ticks; one is skipped when a sample takes longer than the interval (a loaded
    // machine), and the last is always taken.
    assert!((2..=3).contains(&after.samples.len()), "{}", after.samples.len());
    assert_eq!(after.series("owner:timeline_growing").unwrap().end, 0);
}

#[test]
fn phases_during_a_watch_are_on_its_timeline() {
    let sampler = Sampler::start(10 * MS, 100).unwrap();
    drop(heapscope::phase("timeline_phase"));
    let t = sampler.stop();
    assert!(t.phases.iter().any(|p| p.name == "timeline_phase"));
}
