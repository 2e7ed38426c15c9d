//! Phases on a timeline across a wall-clock step, in a process of its own: the step hook moves
//! heapscope's wall clock for every test of the binary.
//!
//! A timeline's samples are placed by the monotonic clock (`at_ms`), its phases were placed by
//! the wall clock (`started_at_unix_ms` minus the timeline's): after a suspend (the wall clock
//! moves on, the monotonic one does not count it) or a clock step (NTP, an administrator), the
//! chart drew a phase minutes from the samples it happened in, and a phase that started after
//! the clock was stepped back before the timeline's start was left out of the timeline.
#![cfg(feature = "enabled")]

use heapscope::{PhaseRecord, Sampler, Timeline};
use std::time::Duration;

heapscope::install!();

const MS: Duration = Duration::from_millis(1);

/// Where the chart draws a phase: milliseconds since the timeline started (until 2026-12-05
/// `p.started_at_unix_ms - t.started_at_unix_ms`).
fn start_ms(t: &Timeline, p: &PhaseRecord) -> u64 {
    t.phase_start_ms(p)
}

#[test]
fn phases_stay_with_their_samples_across_a_clock_step() {
    let sampler = Sampler::start(10 * MS, 10_000).unwrap();
    std::thread::sleep(30 * MS);
    // NTP steps the clock back an hour.
    heapscope::__step_wall_clock_for_tests(-3_600_000);
    let back = heapscope::phase("after_a_step_back");
    std::thread::sleep(30 * MS);
    drop(back);
    // The machine sleeps for ten minutes: the wall clock moves on, the monotonic one does not.
    heapscope::__step_wall_clock_for_tests(3_600_000 + 600_000);
    let suspend = heapscope::phase("after_a_suspend");
    std::thread::sleep(30 * MS);
    drop(suspend);
    std::thread::sleep(20 * MS);
    let t = sampler.stop();
    let last_ms = t.samples.last().unwrap().at_ms;
    for (name, after_ms) in [("after_a_step_back", 30), ("after_a_suspend", 60)] {
        let p = t.phases.iter().find(|p| p.name == name);
        let p = p.unwrap_or_else(|| panic!("{name} is not on the timeline: {:?}", t.phases));
        let start = start_ms(&t, p);
        assert!(
            start >= after_ms && start + p.duration_ms <= last_ms,
            "{name} drawn from {start} ms for {} ms, the samples from 0 to {last_ms} ms",
            p.duration_ms
        );
    }
}
