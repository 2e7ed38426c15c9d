//! heapscope's clocks. Intervals and positions in time (a sample's `at_ms`, where a phase
//! starts on a timeline) come from one monotonic clock, as milliseconds since a process-wide
//! anchor: the first time heapscope read the clock. Wall-clock time (Unix milliseconds) is only
//! a label: a suspend, which the monotonic clock does not count, or a clock step (NTP, an
//! administrator) moves it and nothing else. Until 2026-12-05 a timeline placed its phases by
//! their wall-clock starts and its samples by the monotonic clock, so after a suspend or a step
//! the chart drew phases away from the samples they happened in, or left them out.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static ANCHOR: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Added to every wall-clock reading: the test hook that steps the clock.
static WALL_STEP_MS: AtomicI64 = AtomicI64::new(0);

/// `at`, in milliseconds since the anchor (0 for an instant before it).
pub(crate) fn monotonic_ms(at: Instant) -> u64 {
    at.saturating_duration_since(*ANCHOR).as_millis() as u64
}

/// Now, on the monotonic clock and in milliseconds since the anchor, with the `Instant` read.
pub(crate) fn now() -> (Instant, u64) {
    let anchor = *ANCHOR;
    let now = Instant::now();
    (now, now.saturating_duration_since(anchor).as_millis() as u64)
}

/// Now, in milliseconds since the Unix epoch (0 for a clock set before it).
pub(crate) fn unix_ms() -> u64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    // Relaxed: a test sets the step before the readings it is about.
    ms.saturating_add(WALL_STEP_MS.load(Ordering::Relaxed)).max(0) as u64
}

/// Steps heapscope's wall clock by `ms` (negative: back) for every reading after the call,
/// as a suspend (forward) or an NTP correction would; tests only.
///
/// ```
/// # heapscope::install!();
/// heapscope::__step_wall_clock_for_tests(0);
/// ```
#[doc(hidden)]
pub fn __step_wall_clock_for_tests(ms: i64) {
    WALL_STEP_MS.fetch_add(ms, Ordering::Relaxed);
}
