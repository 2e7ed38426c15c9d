//! How memory moved over time: a bounded background [`Sampler`] and a bounded blocking
//! [`watch`], both producing a [`Timeline`] of RSS, jemalloc's numbers and every top-level
//! owner's live bytes, with per-series deltas and the phases that finished meanwhile.

use crate::error::{Error, Result};
use crate::phase::PhaseRecord;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shortest sampling interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The most samples a sampler keeps or a watch takes.
pub const MAX_SAMPLES: usize = 100_000;
/// The longest a [`watch`] may run.
pub const MAX_WATCH: Duration = Duration::from_secs(3600);

/// One moment of a [`Timeline`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sample {
    /// Milliseconds since the timeline started.
    pub at_ms: u64,
    /// Process RSS (`VmRSS`).
    pub rss_bytes: Option<u64>,
    /// jemalloc `stats.allocated`.
    pub allocated_bytes: Option<u64>,
    /// jemalloc `stats.resident`.
    pub resident_bytes: Option<u64>,
    /// Live bytes counted by heapscope.
    pub tracked_live_bytes: u64,
    /// Live bytes (children included) of every top-level owner.
    pub owners: BTreeMap<String, u64>,
}

/// How one series moved over a timeline.
///
/// `rss`, `allocated` and `resident` summarise the samples that could read them: a failed
/// reading is left out, never counted as 0, and a series never read has no summary. An owner's
/// series is 0 in the samples that do not list it (before it appeared, after it was retired).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SeriesSummary {
    /// `rss`, `allocated`, `resident`, `tracked`, or `owner:<name>`.
    pub name: String,
    /// First value.
    pub start: u64,
    /// Last value.
    pub end: u64,
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
    /// `end - start`.
    pub delta: i64,
}

/// Samples over time, with a summary per series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timeline {
    /// Start, milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// The sampling interval in milliseconds.
    pub interval_ms: u64,
    /// Samples, oldest first.
    pub samples: Vec<Sample>,
    /// Samples that a full sampler ring dropped (oldest first).
    pub dropped_samples: u64,
    /// One summary per series, sorted by name.
    pub series: Vec<SeriesSummary>,
    /// Phases that started after the timeline did.
    pub phases: Vec<PhaseRecord>,
}

impl Timeline {
    /// The summary of one series by name (`"rss"`, `"tracked"`, `"owner:history"`, …).
    pub fn series(&self, name: &str) -> Option<&SeriesSummary> {
        self.series.iter().find(|s| s.name == name)
    }

    fn build(
        started_at_unix_ms: u64,
        interval: Duration,
        samples: Vec<Sample>,
        dropped: u64,
    ) -> Timeline {
        // Only for the summaries: the chart and every other reader take each value from its
        // sample, so a series here need not line up with the samples.
        let mut values: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        /// One value of a sample, `None` where it could not be read.
        type Reading = fn(&Sample) -> Option<u64>;
        let readings: [(&str, Reading); 4] = [
            ("rss", |s| s.rss_bytes),
            ("allocated", |s| s.allocated_bytes),
            ("resident", |s| s.resident_bytes),
            ("tracked", |s| Some(s.tracked_live_bytes)),
        ];
        for (name, read) in readings {
            // A reading that failed is left out: something unreadable is never a silent 0.
            values.insert(name.to_owned(), samples.iter().filter_map(read).collect());
        }
        let owners: BTreeSet<&str> =
            samples.iter().flat_map(|s| s.owners.keys().map(String::as_str)).collect();
        for owner in owners {
            // A sample lists every registered top-level owner and retired ones still holding
            // bytes: one it does not list was not registered yet, or was retired holding nothing.
            let live = samples.iter().map(|s| s.owners.get(owner).copied().unwrap_or(0));
            values.insert(format!("owner:{owner}"), live.collect());
        }
        let series = values
            .into_iter()
            .filter_map(|(name, v)| {
                let (start, end) = (*v.first()?, *v.last()?);
                Some(SeriesSummary {
                    name,
                    start,
                    end,
                    min: v.iter().copied().min()?,
                    max: v.iter().copied().max()?,
                    delta: crate::units::signed_change(start, end),
                })
            })
            .collect();
        let phases = crate::phase::recent_phases()
            .into_iter()
            .filter(|p| p.started_at_unix_ms >= started_at_unix_ms)
            .collect();
        Timeline {
            started_at_unix_ms,
            interval_ms: interval.as_millis() as u64,
            samples,
            dropped_samples: dropped,
            series,
            phases,
        }
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn take_sample(started: Instant) -> Sample {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let rss_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| crate::procfs::parse_status(&t).vm_rss_bytes);
    let allocator = crate::allocator_stats::read().ok();
    let snapshot = crate::snapshot::Snapshot::capture();
    let owners = snapshot
        .owners
        .iter()
        .filter(|o| o.parent.is_none())
        .map(|o| (o.name.clone(), o.stats.live_bytes))
        .collect();
    Sample {
        at_ms: started.elapsed().as_millis() as u64,
        rss_bytes,
        allocated_bytes: allocator.as_ref().map(|a| a.allocated),
        resident_bytes: allocator.as_ref().map(|a| a.resident),
        tracked_live_bytes: snapshot.total.live_bytes,
        owners,
    }
}

fn check_interval(interval: Duration) -> Result<()> {
    if interval < MIN_INTERVAL {
        return Err(Error::OutOfBounds {
            what: "sampling interval",
            value: format!("{interval:?}"),
            allowed: "at least 10 ms",
        });
    }
    Ok(())
}

/// Samples on the calling thread every `interval` for `duration`, then returns the timeline:
/// `duration / interval + 1` samples, fewer when a sample takes longer than the interval (the
/// ticks it missed are skipped, so the watch still ends at `duration`, with a sample there).
///
/// # Errors
/// [`Error::OutOfBounds`] for an interval under 10 ms, a duration over an hour, or more than
/// 100 000 samples.
///
/// ```
/// use std::time::Duration;
/// let timeline = heapscope::watch(Duration::from_millis(50), Duration::from_millis(10)).unwrap();
/// assert!(timeline.samples.len() >= 2);
/// assert!(heapscope::watch(Duration::from_secs(1), Duration::from_millis(1)).is_err());
/// ```
pub fn watch(duration: Duration, interval: Duration) -> Result<Timeline> {
    check_interval(interval)?;
    if duration > MAX_WATCH {
        return Err(Error::OutOfBounds {
            what: "watch duration",
            value: format!("{duration:?}"),
            allowed: "at most one hour",
        });
    }
    let count = duration.as_nanos() / interval.as_nanos() + 1;
    if count > MAX_SAMPLES as u128 {
        return Err(Error::OutOfBounds {
            what: "watch samples (duration / interval)",
            value: count.to_string(),
            allowed: "at most 100000",
        });
    }
    let started_at = now_unix_ms();
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count as usize);
    let last = count as u32 - 1;
    let mut i = 0;
    loop {
        // Deadlines, not sleeps: a slow sample does not push every later one back.
        let deadline = started + interval * i;
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        samples.push(take_sample(started));
        if i == last {
            break;
        }
        // Ticks whose time has passed (a sample slower than the interval, a suspended
        // process) are skipped, as the sampler does, and the last is taken at the end: taking
        // every one late made a watch last `count` times one sample, hours for `watch(1 h,
        // 40 ms)` when a sample took longer than 40 ms (`tests/timeline_slow_samples.rs`).
        let next_due = started.elapsed().as_nanos() / interval.as_nanos() + 1;
        i = (i + 1).max(next_due.min(u128::from(last)) as u32);
    }
    Ok(Timeline::build(started_at, interval, samples, 0))
}

struct Shared {
    ring: Mutex<Ring>,
    stop: Mutex<bool>,
    wake: Condvar,
}

struct Ring {
    samples: VecDeque<Sample>,
    capacity: usize,
    dropped: u64,
}

/// A background thread that samples every `interval` into a ring of fixed capacity, until
/// stopped (or dropped). The thread blocks all asynchronous signals, so a program's signal
/// handling is not disturbed, and its allocations are heapscope's own.
///
/// ```
/// use std::time::Duration;
/// let sampler = heapscope::Sampler::start(Duration::from_millis(10), 1000).unwrap();
/// std::thread::sleep(Duration::from_millis(50));
/// let timeline = sampler.stop();
/// assert!(!timeline.samples.is_empty());
/// ```
#[derive(Debug)]
pub struct Sampler {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    started_at_unix_ms: u64,
    interval: Duration,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Sampler {
    /// Starts sampling every `interval`, keeping the last `capacity` samples.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] for an interval under 10 ms or a capacity under 2 (a ring of
    /// one could not keep both samples [`stop`](Sampler::stop) promises) or over 100 000.
    pub fn start(interval: Duration, capacity: usize) -> Result<Sampler> {
        check_interval(interval)?;
        if !(2..=MAX_SAMPLES).contains(&capacity) {
            return Err(Error::OutOfBounds {
                what: "sampler capacity",
                value: capacity.to_string(),
                allowed: "2 to 100000 samples",
            });
        }
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let shared = Arc::new(Shared {
            ring: Mutex::new(Ring {
                samples: VecDeque::with_capacity(capacity),
                capacity,
                dropped: 0,
            }),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let started_at_unix_ms = now_unix_ms();
        let started = Instant::now();
        // The sample at start is taken here, before `start` returns: the thread took it once
        // it was scheduled, after what the caller did next (a history built right after the
        // start was in the "first" sample, `tests/cross_api.rs`).
        shared.ring.lock().samples.push_back(take_sample(started));
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("heapscope-sampler".into())
            .spawn(move || {
                crate::threads::block_async_signals(None);
                run(&worker, interval, started)
            })
            .map_err(|e| Error::OutOfBounds {
                what: "sampler thread",
                value: e.to_string(),
                allowed: "a thread the system can start",
            })?;
        Ok(Sampler { shared, thread: Some(thread), started_at_unix_ms, interval })
    }

    /// The samples so far, as a timeline (the sampler keeps running).
    pub fn timeline(&self) -> Timeline {
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let ring = self.shared.ring.lock();
        let samples = ring.samples.iter().cloned().collect();
        let dropped = ring.dropped;
        drop(ring);
        Timeline::build(self.started_at_unix_ms, self.interval, samples, dropped)
    }

    /// Stops the thread, which takes one last sample, and returns the final timeline: it
    /// has at least two samples, the last at the stop. The first is the one
    /// [`Sampler::start`] took before it returned, unless the ring was full and dropped it
    /// (then `dropped_samples` says how many went).
    pub fn stop(mut self) -> Timeline {
        self.halt();
        self.timeline()
    }

    fn halt(&mut self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                // Not `eprintln!`, which panics when stderr is gone (a closed pipe).
                let _ = writeln!(
                    std::io::stderr(),
                    "heapscope: the sampler thread panicked; its samples so far are kept"
                );
            }
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Samples every `interval` after the one [`Sampler::start`] took at `started`, and once more
/// when stopped.
fn run(shared: &Shared, interval: Duration, started: Instant) {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let mut next = started;
    let record = |sample: Sample| {
        let mut ring = shared.ring.lock();
        if ring.samples.len() == ring.capacity {
            ring.samples.pop_front();
            ring.dropped += 1;
        }
        ring.samples.push_back(sample);
    };
    loop {
        next += interval;
        let now = Instant::now();
        if next < now {
            // Fell behind (a slow read, a suspended process): skip the missed ticks.
            next = now + interval;
        }
        let mut stop = shared.stop.lock();
        while !*stop {
            if shared.wake.wait_until(&mut stop, next).timed_out() {
                break;
            }
        }
        let stopped = *stop;
        drop(stop);
        // The timeline ends when the sampler is stopped, not at its last tick.
        record(take_sample(started));
        if stopped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, rss_bytes: Option<u64>, owners: &[(&str, u64)]) -> Sample {
        Sample {
            at_ms,
            rss_bytes,
            allocated_bytes: None,
            resident_bytes: None,
            tracked_live_bytes: owners.iter().map(|(_, live)| live).sum(),
            owners: owners.iter().map(|(name, live)| (name.to_string(), *live)).collect(),
        }
    }

    fn build(samples: Vec<Sample>) -> Timeline {
        Timeline::build(0, Duration::from_millis(10), samples, 0)
    }

    #[test]
    fn a_failed_reading_is_left_out_of_its_series_not_counted_as_zero() {
        let t = build(vec![
            sample(0, Some(100 << 20), &[]),
            sample(10, None, &[]), // /proc/self/status could not be read this once
            sample(20, Some(120 << 20), &[]),
        ]);
        let rss = t.series("rss").unwrap();
        assert_eq!(
            (rss.start, rss.end, rss.min, rss.max),
            (100 << 20, 120 << 20, 100 << 20, 120 << 20)
        );
        assert_eq!(rss.delta, 20 << 20);
        // The failed reading stays in its sample, where the chart leaves a gap.
        assert_eq!(t.samples[1].rss_bytes, None);
        // A series never read has no summary rather than one of zeros.
        assert!(t.series("allocated").is_none());
        // A failed first reading: the series starts at the first one that worked.
        let t = build(vec![sample(0, None, &[]), sample(10, Some(7), &[])]);
        assert_eq!(t.series("rss").map(|s| (s.start, s.min)), Some((7, 7)));
    }

    #[test]
    fn a_top_level_owner_gone_from_later_samples_ends_at_zero() {
        // `cache` held 5 MiB, then freed it all and was retired: later samples no longer list
        // it. `late` appears in the second sample only, so it starts at 0 and ends at 0.
        let t = build(vec![
            sample(0, Some(1), &[("cache", 5 << 20)]),
            sample(10, Some(1), &[("cache", 5 << 20), ("late", 3)]),
            sample(20, Some(1), &[]),
        ]);
        let cache = t.series("owner:cache").unwrap();
        assert_eq!((cache.start, cache.end, cache.min), (5 << 20, 0, 0), "{cache:?}");
        assert_eq!(cache.delta, -(5 << 20));
        let late = t.series("owner:late").unwrap();
        assert_eq!((late.start, late.end, late.max, late.delta), (0, 0, 3, 0), "{late:?}");
        let names: Vec<&str> = t.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["owner:cache", "owner:late", "rss", "tracked"]);
    }
}
