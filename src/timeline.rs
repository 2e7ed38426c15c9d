//! How memory moved over time: a bounded background [`Sampler`] and a bounded blocking
//! [`watch`], both producing a [`Timeline`] of RSS, jemalloc's numbers and the top-level
//! owners' live bytes, with per-series deltas and the phases that finished meanwhile.
//!
//! Memory: a sample lists at most [`SAMPLE_OWNERS`] top-level owners by name, the largest,
//! and sums the others into [`Sample::other_owners_bytes`]; the samples a sampler or a watch
//! keeps hold each owner name once (interned), with a 4-byte index and the 8-byte live count
//! per listed owner. A kept sample costs at most about 660 bytes of heapscope's own memory
//! however many owners the program has (`benches/sampler_memory.rs`), so the largest ring,
//! 100 000 samples, stays near 63 MiB. A [`Timeline`] built from it lists owners by name, as
//! its JSON does: about 2.3 KB per sample while it is held. Until 2026-12-05 a sample listed
//! every top-level owner by name (files from then read as listing every owner): 210 KB per
//! kept sample with 4000 owners, 20 GiB for the largest ring.

use crate::error::{Error, Result};
use crate::phase::PhaseRecord;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shortest sampling interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The most samples a sampler keeps or a watch takes.
pub const MAX_SAMPLES: usize = 100_000;
/// The longest a [`watch`] may run.
pub const MAX_WATCH: Duration = Duration::from_secs(3600);
/// The most top-level owners a [`Sample`] lists by name: the largest by live bytes (ties by
/// name); the others are summed into [`Sample::other_owners_bytes`]. The chart draws ten.
///
/// ```
/// # heapscope::install!();
/// let t = heapscope::watch(std::time::Duration::ZERO, heapscope::MIN_INTERVAL).unwrap();
/// assert!(t.samples[0].owners.len() <= heapscope::SAMPLE_OWNERS);
/// ```
pub const SAMPLE_OWNERS: usize = 32;

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
    /// Live bytes counted by heapscope: the sum of every top-level owner's, so of `owners`
    /// and `other_owners_bytes`.
    pub tracked_live_bytes: u64,
    /// Live bytes (children included) of the [`SAMPLE_OWNERS`] largest top-level owners, or
    /// of every one when there are no more (retired owners still holding bytes included).
    pub owners: BTreeMap<String, u64>,
    /// How many top-level owners are not listed in `owners` (0 in files written before
    /// 2026-12-05, which listed every owner).
    #[serde(default)]
    pub other_owners: u64,
    /// Their live bytes, summed. Each of them holds at most as much as the smallest owner
    /// listed; when this is 0, each holds nothing.
    #[serde(default)]
    pub other_owners_bytes: u64,
}

impl Sample {
    /// An owner's live bytes in this sample: its entry in `owners`; 0 when it is not listed
    /// and the owners not listed hold nothing (it was not registered yet, was retired, or
    /// holds nothing); `None` when it may be among the [`other_owners`](Sample::other_owners)
    /// summed into `other_owners_bytes`, its own figure unknown.
    ///
    /// ```
    /// # heapscope::install!();
    /// let t = heapscope::watch(std::time::Duration::ZERO, heapscope::MIN_INTERVAL).unwrap();
    /// let s = &t.samples[0];
    /// if s.other_owners_bytes == 0 {
    ///     assert_eq!(s.owner_live_bytes("no_such_owner"), Some(0));
    /// } else {
    ///     assert_eq!(s.owner_live_bytes("no_such_owner"), None);
    /// }
    /// ```
    pub fn owner_live_bytes(&self, name: &str) -> Option<u64> {
        match self.owners.get(name) {
            Some(&live) => Some(live),
            None if self.other_owners_bytes == 0 => Some(0),
            None => None,
        }
    }
}

/// How one series moved over a timeline.
///
/// `rss`, `allocated` and `resident` summarise the samples that could read them: a failed
/// reading is left out, never counted as 0, and a series never read has no summary. An owner's
/// series is its [`Sample::owner_live_bytes`]: 0 in the samples that do not list it while the
/// owners they leave out hold nothing (before it appeared, after it was retired), and left out
/// where it may be one of the owners summed into [`Sample::other_owners_bytes`] (past the
/// [`SAMPLE_OWNERS`] largest). `unknown_samples` counts the samples left out either way, so
/// an owner's `min` over the samples that listed it says so.
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
    /// Samples left out of this summary: a failed reading, or an owner not listed in a sample
    /// that summed some owners' bytes into `other_owners_bytes` (0 in files written before
    /// 2026-12-05).
    #[serde(default)]
    pub unknown_samples: u64,
}

/// Samples over time, with a summary per series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timeline {
    /// Start, milliseconds since the Unix epoch: when it started by the wall clock, a label.
    /// Samples and phases are placed on the timeline by the monotonic clock, which a clock
    /// step or a suspend does not move (see [`Timeline::phase_start_ms`]).
    pub started_at_unix_ms: u64,
    /// Start on heapscope's monotonic clock: milliseconds since heapscope first read it in
    /// this process. `None` in files written before 2026-12-05.
    #[serde(default)]
    pub started_at_monotonic_ms: Option<u64>,
    /// The sampling interval in milliseconds.
    pub interval_ms: u64,
    /// Samples, oldest first.
    pub samples: Vec<Sample>,
    /// Samples that a full sampler ring dropped (oldest first).
    pub dropped_samples: u64,
    /// One summary per series, sorted by name.
    pub series: Vec<SeriesSummary>,
    /// Phases that started after the timeline did (by the monotonic clock).
    pub phases: Vec<PhaseRecord>,
}

impl Timeline {
    /// The summary of one series by name (`"rss"`, `"tracked"`, `"owner:history"`, …).
    pub fn series(&self, name: &str) -> Option<&SeriesSummary> {
        self.series.iter().find(|s| s.name == name)
    }

    /// Where `phase` starts on this timeline: milliseconds since it started, on the clock its
    /// samples' `at_ms` count on (the monotonic one), so a phase is drawn among the samples
    /// taken while it ran even when the wall clock was stepped or the machine suspended
    /// meanwhile. A timeline or phase from a file written before 2026-12-05 has no monotonic
    /// time: the wall-clock difference is used then.
    ///
    /// ```
    /// # heapscope::install!();
    /// use std::time::Duration;
    /// let sampler = heapscope::Sampler::start(Duration::from_millis(10), 100).unwrap();
    /// drop(heapscope::phase("phase_start_doc"));
    /// let t = sampler.stop();
    /// let p = t.phases.iter().find(|p| p.name == "phase_start_doc").unwrap();
    /// assert!(t.phase_start_ms(p) <= t.samples.last().unwrap().at_ms);
    /// ```
    pub fn phase_start_ms(&self, phase: &PhaseRecord) -> u64 {
        match (phase.started_at_monotonic_ms, self.started_at_monotonic_ms) {
            (Some(phase), Some(timeline)) => phase.saturating_sub(timeline),
            _ => phase.started_at_unix_ms.saturating_sub(self.started_at_unix_ms),
        }
    }

    fn build(
        (started_at_unix_ms, started_at_monotonic_ms): (u64, u64),
        interval: Duration,
        samples: Vec<Sample>,
        dropped: u64,
    ) -> Timeline {
        // Only for the summaries: the chart and every other reader take each value from its
        // sample, so a series here need not line up with the samples.
        let mut values: BTreeMap<String, Vec<Option<u64>>> = BTreeMap::new();
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
            values.insert(name.to_owned(), samples.iter().map(read).collect());
        }
        let owners: BTreeSet<&str> =
            samples.iter().flat_map(|s| s.owners.keys().map(String::as_str)).collect();
        for owner in owners {
            // A sample lists the largest top-level owners: one it does not list was not
            // registered yet, was retired holding nothing, or is among the smaller ones it
            // summed (unknown then, unless those held nothing).
            let live = samples.iter().map(|s| s.owner_live_bytes(owner));
            values.insert(format!("owner:{owner}"), live.collect());
        }
        let series = values
            .into_iter()
            .filter_map(|(name, all)| {
                let v: Vec<u64> = all.iter().copied().flatten().collect();
                let (start, end) = (*v.first()?, *v.last()?);
                Some(SeriesSummary {
                    name,
                    start,
                    end,
                    min: v.iter().copied().min()?,
                    max: v.iter().copied().max()?,
                    delta: crate::units::signed_change(start, end),
                    unknown_samples: (all.len() - v.len()) as u64,
                })
            })
            .collect();
        // By the monotonic clock: a phase that started after the wall clock was stepped back
        // past the timeline's start was left out (`tests/timeline_clock_step.rs`).
        let phases = crate::phase::recent_phases()
            .into_iter()
            .filter(|p| p.started_at_monotonic_ms.is_some_and(|m| m >= started_at_monotonic_ms))
            .collect();
        Timeline {
            started_at_unix_ms,
            started_at_monotonic_ms: Some(started_at_monotonic_ms),
            interval_ms: interval.as_millis() as u64,
            samples,
            dropped_samples: dropped,
            series,
            phases,
        }
    }
}

/// A sample now, `at_ms` counted from `started_ms` on the monotonic clock.
fn take_sample(started_ms: u64) -> Sample {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let rss_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| crate::procfs::parse_status(&t).vm_rss_bytes);
    let allocator = crate::allocator_stats::read().ok();
    let snapshot = crate::snapshot::Snapshot::capture();
    let mut top: Vec<(&str, u64)> = snapshot
        .owners
        .iter()
        .filter(|o| o.parent.is_none())
        .map(|o| (o.name.as_str(), o.stats.live_bytes))
        .collect();
    let (mut other_owners, mut other_owners_bytes) = (0, 0u64);
    if top.len() > SAMPLE_OWNERS {
        // The largest first, ties by name: which owners are listed does not depend on the
        // order the registry read them in.
        top.select_nth_unstable_by(SAMPLE_OWNERS - 1, |a, b| {
            b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0))
        });
        for (_, live) in top.drain(SAMPLE_OWNERS..) {
            other_owners += 1;
            other_owners_bytes = other_owners_bytes.saturating_add(live);
        }
    }
    let owners = top.into_iter().map(|(name, live)| (name.to_owned(), live)).collect();
    Sample {
        at_ms: crate::clock::now().1.saturating_sub(started_ms),
        rss_bytes,
        allocated_bytes: allocator.as_ref().map(|a| a.allocated),
        resident_bytes: allocator.as_ref().map(|a| a.resident),
        tracked_live_bytes: snapshot.total.live_bytes,
        owners,
        other_owners,
        other_owners_bytes,
    }
}

/// Samples as a sampler's ring or a watch keeps them: owner names interned, so a kept sample
/// costs its fields and 12 bytes per listed owner (see the module's docs), not a map of
/// strings. Oldest first; past `capacity`, the oldest is dropped.
struct Store {
    samples: VecDeque<Kept>,
    names: Names,
    capacity: usize,
    dropped: u64,
}

/// One kept sample: a [`Sample`] with its owners as indexes into [`Names`].
struct Kept {
    at_ms: u64,
    rss_bytes: Option<u64>,
    allocated_bytes: Option<u64>,
    resident_bytes: Option<u64>,
    tracked_live_bytes: u64,
    other_owners: u64,
    other_owners_bytes: u64,
    /// `(name index, live bytes)`, in name order (as `Sample::owners` lists them).
    owners: Box<[(u32, u64)]>,
}

/// Owner names of the kept samples, each held once, with how many kept samples list it: a
/// name no kept sample lists any more is freed, so owners that come and go under new names
/// (one per request, say) do not grow it past what the kept samples list.
#[derive(Default)]
struct Names {
    /// Name and reference count by index; a count of 0 is a free slot (listed in `free`).
    slots: Vec<(Arc<str>, u32)>,
    index: HashMap<Arc<str>, u32>,
    free: Vec<u32>,
}

impl Names {
    fn acquire(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            self.slots[i as usize].1 += 1;
            return i;
        }
        let name: Arc<str> = Arc::from(name);
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = (name.clone(), 1);
                i
            }
            None => {
                self.slots.push((name.clone(), 1));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(name, i);
        i
    }

    fn release(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        slot.1 -= 1;
        if slot.1 == 0 {
            self.index.remove(&slot.0);
            slot.0 = Arc::from("");
            self.free.push(i);
        }
    }

    fn name(&self, i: u32) -> &str {
        &self.slots[i as usize].0
    }
}

impl Store {
    fn new(capacity: usize) -> Store {
        Store {
            // Grown as samples come: a ring of 100 000 stopped after ten samples holds ten.
            samples: VecDeque::new(),
            names: Names::default(),
            capacity,
            dropped: 0,
        }
    }

    fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            if let Some(old) = self.samples.pop_front() {
                for &(name, _) in old.owners.iter() {
                    self.names.release(name);
                }
            }
            self.dropped += 1;
        }
        let owners =
            sample.owners.iter().map(|(name, &live)| (self.names.acquire(name), live)).collect();
        self.samples.push_back(Kept {
            at_ms: sample.at_ms,
            rss_bytes: sample.rss_bytes,
            allocated_bytes: sample.allocated_bytes,
            resident_bytes: sample.resident_bytes,
            tracked_live_bytes: sample.tracked_live_bytes,
            other_owners: sample.other_owners,
            other_owners_bytes: sample.other_owners_bytes,
            owners,
        });
    }

    /// The kept samples, oldest first.
    fn samples(&self) -> Vec<Sample> {
        self.samples
            .iter()
            .map(|k| Sample {
                at_ms: k.at_ms,
                rss_bytes: k.rss_bytes,
                allocated_bytes: k.allocated_bytes,
                resident_bytes: k.resident_bytes,
                tracked_live_bytes: k.tracked_live_bytes,
                owners: k
                    .owners
                    .iter()
                    .map(|&(name, live)| (self.names.name(name).to_owned(), live))
                    .collect(),
                other_owners: k.other_owners,
                other_owners_bytes: k.other_owners_bytes,
            })
            .collect()
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
/// # heapscope::install!();
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
    let started_at_unix_ms = crate::clock::unix_ms();
    let (started, started_ms) = crate::clock::now();
    let mut samples = Store::new(count as usize);
    let last = count as u32 - 1;
    let mut i = 0;
    loop {
        // Deadlines, not sleeps: a slow sample does not push every later one back.
        let deadline = started + interval * i;
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        samples.push(take_sample(started_ms));
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
    Ok(Timeline::build((started_at_unix_ms, started_ms), interval, samples.samples(), 0))
}

struct Shared {
    ring: Mutex<Store>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// A background thread that samples every `interval` into a ring of fixed capacity, until
/// stopped (or dropped). The thread blocks all asynchronous signals, so a program's signal
/// handling is not disturbed, and its allocations are heapscope's own.
///
/// ```
/// # heapscope::install!();
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
    /// The start by the wall clock and by the monotonic one (see [`Timeline`]).
    started_at: (u64, u64),
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
            ring: Mutex::new(Store::new(capacity)),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let started_at_unix_ms = crate::clock::unix_ms();
        let (started, started_ms) = crate::clock::now();
        // The sample at start is taken here, before `start` returns: the thread took it once
        // it was scheduled, after what the caller did next (a history built right after the
        // start was in the "first" sample, `tests/cross_api.rs`).
        shared.ring.lock().push(take_sample(started_ms));
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("heapscope-sampler".into())
            .spawn(move || {
                crate::threads::block_async_signals(None);
                run(&worker, interval, (started, started_ms))
            })
            .map_err(|e| Error::OutOfBounds {
                what: "sampler thread",
                value: e.to_string(),
                allowed: "a thread the system can start",
            })?;
        let started_at = (started_at_unix_ms, started_ms);
        Ok(Sampler { shared, thread: Some(thread), started_at, interval })
    }

    /// The samples so far, as a timeline (the sampler keeps running).
    pub fn timeline(&self) -> Timeline {
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let ring = self.shared.ring.lock();
        let samples = ring.samples();
        let dropped = ring.dropped;
        drop(ring);
        Timeline::build(self.started_at, self.interval, samples, dropped)
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

/// Samples every `interval` after the one [`Sampler::start`] took at `started` (`started_ms` on
/// the monotonic clock), and once more
/// when stopped.
fn run(shared: &Shared, interval: Duration, (started, started_ms): (Instant, u64)) {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let mut next = started;
    let record = |sample: Sample| shared.ring.lock().push(sample);
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
        record(take_sample(started_ms));
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
            other_owners: 0,
            other_owners_bytes: 0,
        }
    }

    fn build(samples: Vec<Sample>) -> Timeline {
        Timeline::build((0, 0), Duration::from_millis(10), samples, 0)
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

    #[test]
    fn an_owner_summed_with_the_smaller_ones_is_unknown_there_not_zero() {
        let mut folded = sample(10, Some(1), &[("big", 900)]);
        // `small` is one of the two owners summed into `other_owners_bytes` here.
        (folded.other_owners, folded.other_owners_bytes) = (2, 70);
        folded.tracked_live_bytes += 70;
        let mut folded_empty = sample(30, Some(1), &[("big", 900)]);
        // Owners summed, but holding nothing: `small` is known to hold 0.
        folded_empty.other_owners = 5;
        let t = build(vec![
            sample(0, Some(1), &[("big", 800), ("small", 40)]),
            folded,
            sample(20, Some(1), &[("big", 900), ("small", 60)]),
            folded_empty,
        ]);
        assert_eq!(t.samples[1].owner_live_bytes("small"), None);
        assert_eq!(t.samples[3].owner_live_bytes("small"), Some(0));
        let small = t.series("owner:small").unwrap();
        assert_eq!(
            (small.start, small.end, small.min, small.max, small.unknown_samples),
            (40, 0, 0, 60, 1),
            "{small:?}"
        );
        let big = t.series("owner:big").unwrap();
        assert_eq!((big.min, big.unknown_samples), (800, 0));
        // A failed reading is an unknown sample too.
        let t = build(vec![sample(0, None, &[]), sample(10, Some(7), &[])]);
        assert_eq!(t.series("rss").unwrap().unknown_samples, 1);
    }

    #[test]
    fn kept_samples_hold_each_name_once_and_free_names_no_sample_lists() {
        let mut store = Store::new(3);
        for i in 0..10u64 {
            // `steady` in every sample; `request_<i>` in one each.
            let request = format!("request_{i}");
            store.push(sample(i, None, &[("steady", i), (&request, 1)]));
        }
        assert_eq!((store.samples.len(), store.dropped), (3, 7));
        let live: Vec<&str> =
            store.names.index.keys().map(|n| &**n).collect::<BTreeSet<_>>().into_iter().collect();
        assert_eq!(live, ["request_7", "request_8", "request_9", "steady"]);
        // Freed slots are reused: never more slots than names listed at once.
        assert!(store.names.slots.len() <= 6, "{}", store.names.slots.len());
        let back = store.samples();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].at_ms, 7);
        assert_eq!(back[2].owners, [("request_9".to_owned(), 1), ("steady".to_owned(), 9)].into());
    }
}
