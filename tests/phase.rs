//! Phases: a deep copy inside a phase shows as the phase's peak although its end state is
//! unchanged; nested phases; the record's numbers are exact against hand-computed sizes.
#![cfg(feature = "enabled")]

use heapscope::Owner;
use std::hint::black_box;

heapscope::install!();

const N: usize = 20_000;
const LEN: usize = 1000;

fn history() -> (Owner, Vec<String>) {
    let owner = Owner::named("phase_history");
    let turns = owner.in_scope(|| {
        let mut v = Vec::with_capacity(N);
        for i in 0..N {
            let mut s = String::with_capacity(LEN);
            s.extend(std::iter::repeat_n((b'a' + (i % 26) as u8) as char, LEN));
            v.push(s);
        }
        black_box(v)
    });
    (owner, turns)
}

#[test]
fn a_deep_copy_stands_out_by_its_peak() {
    let (owner, turns) = history();
    let live = (N * 24 + N * LEN) as u64; // outer Vec + each String's capacity
    assert_eq!(owner.stats().live_bytes, live);

    let outer = heapscope::phase("request");
    let inner = heapscope::phase("compression");
    let copy = owner.in_scope(|| black_box(turns.clone()));
    drop(copy);
    let compression = inner.finish();
    let small = owner.in_scope(|| black_box(vec![0u8; 100]));
    drop(small);
    let request = outer.finish();

    let h = compression.owners.iter().find(|o| o.name == "phase_history").expect("owner in phase");
    assert_eq!((h.live_start_bytes, h.live_end_bytes), (live, live));
    assert_eq!(h.allocated_bytes, live, "a clone allocates exactly what it copies");
    assert_eq!(h.peak_bytes, 2 * live, "{h:?}");
    assert_eq!(compression.owners[0].name, "phase_history", "largest peak rise first");
    assert!(compression.total.peak_bytes >= 2 * live);

    // The enclosing phase sees the inner peak and its own small allocation.
    let h = request.owners.iter().find(|o| o.name == "phase_history").unwrap();
    assert_eq!(h.peak_bytes, 2 * live);
    assert_eq!(h.allocated_bytes, live + 100);

    // A later phase without the copy has a peak at its start.
    let quiet = heapscope::phase("streaming");
    let v = owner.in_scope(|| black_box(vec![0u8; 1000]));
    drop(v);
    let quiet = quiet.finish();
    let h = quiet.owners.iter().find(|o| o.name == "phase_history").unwrap();
    assert_eq!(h.peak_bytes, live + 1000);

    let names: Vec<String> = heapscope::recent_phases().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["compression", "request", "streaming"]);

    let report = heapscope::report();
    assert_eq!(report.phases.len(), 3);
    assert!(
        report.suggestions.iter().any(|s| s.starts_with("phase \"compression\" peaked")
            || s.starts_with("phase \"request\" peaked")),
        "{:?}",
        report.suggestions
    );
    assert!(report.to_string().contains("compression"));
    drop(turns);
}
