//! What a `Sampler` keeps of heapscope's own memory, in a process of its own: the 1000 owners
//! that make every sample large would slow the samplers of other tests too.
//!
//! Every sample kept every top-level owner by name (`BTreeMap<String, u64>`): 53 KB of
//! `heapscope.internal` per sample with 1000 owners (210 KB with 4000, `benches/sampler_memory.rs`),
//! so the largest ring (100 000 samples) could grow to 20 GiB. A sample now lists its `SAMPLE_OWNERS` largest
//! top-level owners and sums the rest into `other_owners_bytes`; the ring keeps owner names
//! interned.
#![cfg(feature = "enabled")]

use heapscope::{Owner, Sampler};
use std::hint::black_box;
use std::time::Duration;

heapscope::install!();

/// heapscope.internal's live bytes, the smallest of 20 readings 3 ms apart (a sample being
/// taken at one of them holds a snapshot of every owner for a moment).
fn quiet_internal_bytes() -> u64 {
    let internal = Owner::named("heapscope.internal");
    (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(3));
            internal.stats().live_bytes
        })
        .min()
        .unwrap()
}

#[test]
fn a_sample_costs_a_bounded_few_hundred_bytes_however_many_owners() {
    let owners: Vec<Owner> = (0..1000).map(|i| Owner::named(format!("mem_{i:04}"))).collect();
    let kept: Vec<_> = owners
        .iter()
        .enumerate()
        .map(|(i, o)| o.in_scope(|| black_box(vec![1u8; 64 * (1 + i % 50)])))
        .collect();
    let capacity = 60;
    let before = quiet_internal_bytes();
    let sampler = Sampler::start(Duration::from_millis(10), capacity).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sampler.timeline().dropped_samples == 0 {
        assert!(std::time::Instant::now() < deadline, "the ring did not fill in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let full = quiet_internal_bytes();
    let per_sample = full.saturating_sub(before) / capacity as u64;
    // At most 32 owners listed, names interned: 660 B in `benches/sampler_memory.rs`; this
    // test measured 42 773 B here before.
    assert!(per_sample < 2048, "{per_sample} B of heapscope.internal per sample kept");
    let t = sampler.stop();
    drop(kept);
    for s in &t.samples {
        assert!(s.owners.len() <= heapscope::SAMPLE_OWNERS, "{} listed", s.owners.len());
        // Every top-level owner is counted, listed or summed: 1000 and the reserved ones.
        assert!(s.other_owners >= 1000 - heapscope::SAMPLE_OWNERS as u64, "{}", s.other_owners);
        let listed: u64 = s.owners.values().sum();
        assert_eq!(listed + s.other_owners_bytes, s.tracked_live_bytes);
    }
    // The largest are listed: `mem_0049` (64 × 50 B) and those like it, not `mem_0000` (64 B),
    // whose series is unknown where it was summed, not 0.
    let last = t.samples.last().unwrap();
    assert_eq!(last.owner_live_bytes("mem_0049"), Some(64 * 50));
    assert_eq!(last.owner_live_bytes("mem_0000"), None);
    assert!(t.series("owner:mem_0000").is_none(), "never listed, so no series");
}
