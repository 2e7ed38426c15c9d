//! Phases: named stretches of a program (startup, request assembly, tool execution,
//! streaming, compression, final response) and what each did to every owner: live bytes at
//! its start and end, bytes allocated during it (churn), and the peak reached during it. A
//! phase that deep-copies a large history stands out by its peak even though its end state is
//! unchanged.

use crate::snapshot::Snapshot;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// How many finished phases [`recent_phases`] keeps.
pub const PHASE_HISTORY: usize = 256;

static HISTORY: Mutex<VecDeque<PhaseRecord>> = Mutex::new(VecDeque::new());

/// One owner during a phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PhaseOwner {
    /// Full owner name (`"total"` for the whole process).
    pub name: String,
    /// Live bytes (children included) when the phase started.
    pub live_start_bytes: u64,
    /// Live bytes when it ended.
    pub live_end_bytes: u64,
    /// Bytes allocated during the phase (churn; each `realloc` counts its new size).
    pub allocated_bytes: u64,
    /// The highest live bytes reached during the phase.
    pub peak_bytes: u64,
}

/// What one finished phase did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PhaseRecord {
    /// The phase's name.
    pub name: String,
    /// Start, milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Whether the numbers are real (tracking on).
    pub tracking: bool,
    /// The whole process.
    pub total: PhaseOwner,
    /// Owners whose bytes moved during the phase, largest peak rise (`peak - start`) first;
    /// an owner that existed at its start and was retired by its end too, with
    /// `live_end_bytes` 0 (one both registered and retired during the phase is not listed).
    pub owners: Vec<PhaseOwner>,
}

/// A running phase; see [`phase`]. Dropping it (or [`Phase::finish`]) records it.
#[must_use = "a phase ends when dropped; `let _ = ` ends it at once"]
#[derive(Debug)]
pub struct Phase {
    name: String,
    started: Instant,
    start: Snapshot,
    window: PeakWindow,
    done: bool,
}

/// Every owner's highest live bytes (descendants' included) from [`PeakWindow::open`] to
/// [`PeakWindow::close`]: what a phase reports, and what `leak_check` judges peaks by.
/// Windows may close in any order, each with the peaks of its own stretch (see
/// `counters::OpenWindows`); dropping one unclosed closes it.
#[derive(Debug)]
pub(crate) struct PeakWindow {
    #[cfg(feature = "enabled")]
    key: Option<crate::counters::WindowKey>,
}

/// What a [`PeakWindow`] saw, from [`PeakWindow::close`].
#[derive(Debug, Default)]
pub(crate) struct WindowPeaks {
    /// Every registered owner's peak, by full name.
    pub(crate) owners: HashMap<String, u64>,
    /// The whole process's peak.
    pub(crate) process: u64,
    /// Owners registered when the window opened whose ids were freed (retired, holding
    /// nothing) before it closed, by their full name then.
    pub(crate) departed: HashMap<String, DepartedOwner>,
}

/// An owner gone before its window closed: see [`WindowPeaks::departed`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct DepartedOwner {
    /// Its subtree's cumulative allocated bytes when its id was freed.
    pub(crate) total_bytes: u64,
    /// Its peak from the window's opening to its id's freeing.
    pub(crate) peak_bytes: u64,
}

impl PeakWindow {
    pub(crate) fn open() -> PeakWindow {
        PeakWindow {
            // Under the registry's lock, so that no id is reused while its window is replaced.
            #[cfg(feature = "enabled")]
            key: Some(crate::registry::with(|r| r.windows.open())),
        }
    }

    /// The window's peaks by owner name and the process's, and the owners that departed
    /// meanwhile; the window is closed. Read and closed under the registry's lock, so that no
    /// id is reused between its listing and its reading (see `snapshot::read_registered`).
    /// Once: a second call returns nothing.
    pub(crate) fn close(&mut self) -> WindowPeaks {
        #[cfg(feature = "enabled")]
        if let Some(key) = self.key.take() {
            return crate::registry::with(|r| {
                let owners =
                    r.all().into_iter().map(|(id, e)| (e.path, r.windows.peak(key, id))).collect();
                let process = r.windows.peak(key, crate::registry::PROCESS);
                let departed = r
                    .windows
                    .close(key)
                    .into_iter()
                    .map(|d| {
                        let gone =
                            DepartedOwner { total_bytes: d.total_bytes, peak_bytes: d.peak_bytes };
                        (d.path, gone)
                    })
                    .collect();
                WindowPeaks { owners, process, departed }
            });
        }
        WindowPeaks::default()
    }
}

impl Drop for PeakWindow {
    /// A window left open (a leak check whose body panicked) would keep its saved peaks, and
    /// a place in every later window's reading, for the rest of the process.
    fn drop(&mut self) {
        #[cfg(feature = "enabled")]
        if let Some(key) = self.key.take() {
            crate::registry::with(|r| r.windows.close(key));
        }
    }
}

/// Starts a phase called `name`. Its peaks are every owner's (and the process's) highest live
/// bytes between its start and its end, whichever thread allocated them. So phases may nest
/// (an inner phase's peak also counts toward the outer one's) or overlap and end in any
/// order: each reports its own stretch.
///
/// ```
/// let history = heapscope::Owner::named("phase_doc_history");
/// let turns = history.in_scope(|| vec![String::from("hello"); 1000]);
/// let record = {
///     let compression = heapscope::phase("compression");
///     let copy = history.in_scope(|| turns.clone()); // a transient deep copy
///     drop(copy);
///     compression.finish()
/// };
/// assert_eq!(record.name, "compression");
/// # if record.tracking {
/// let h = record.owners.iter().find(|o| o.name == "phase_doc_history").unwrap();
/// assert_eq!(h.live_end_bytes, h.live_start_bytes);
/// assert!(h.peak_bytes > h.live_start_bytes);
/// # }
/// ```
pub fn phase(name: impl Into<String>) -> Phase {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let start = Snapshot::capture();
    Phase {
        name: name.into(),
        started: Instant::now(),
        window: PeakWindow::open(),
        start,
        done: false,
    }
}

impl Phase {
    /// Ends the phase and returns its record (also kept in [`recent_phases`]).
    pub fn finish(mut self) -> PhaseRecord {
        self.record()
    }

    fn record(&mut self) -> PhaseRecord {
        self.done = true;
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let end = Snapshot::capture();
        let WindowPeaks { owners: window_peaks, process: process_peak, departed } =
            self.window.close();
        let total = PhaseOwner {
            name: "total".to_owned(),
            live_start_bytes: self.start.total.live_bytes,
            live_end_bytes: end.total.live_bytes,
            allocated_bytes: end.total.total_bytes.saturating_sub(self.start.total.total_bytes),
            peak_bytes: process_peak.max(self.start.total.live_bytes).max(end.total.live_bytes),
        };
        let mut owners: Vec<PhaseOwner> = end
            .owners
            .iter()
            .map(|after| {
                let before = self.start.owner(&after.name).map(|o| o.stats).unwrap_or_default();
                let window = window_peaks.get(&after.name).copied().unwrap_or(0);
                PhaseOwner {
                    name: after.name.clone(),
                    live_start_bytes: before.live_bytes,
                    live_end_bytes: after.stats.live_bytes,
                    allocated_bytes: after.stats.total_bytes.saturating_sub(before.total_bytes),
                    peak_bytes: window.max(before.live_bytes).max(after.stats.live_bytes),
                }
            })
            .collect();
        // Owners of the start that are gone at the end: retired, and their ids freed once they
        // held nothing (their ids may even have gone to other owners since).
        for before in self.start.owners.iter().filter(|o| end.owner(&o.name).is_none()) {
            let gone = departed.get(&before.name);
            let start = before.stats;
            owners.push(PhaseOwner {
                name: before.name.clone(),
                live_start_bytes: start.live_bytes,
                live_end_bytes: 0,
                allocated_bytes: gone
                    .map_or(0, |g| g.total_bytes.saturating_sub(start.total_bytes)),
                peak_bytes: gone.map_or(0, |g| g.peak_bytes).max(start.live_bytes),
            });
        }
        owners.retain(|o| o.allocated_bytes > 0 || o.live_end_bytes != o.live_start_bytes);
        owners.sort_by(|a, b| {
            (b.peak_bytes - b.live_start_bytes)
                .cmp(&(a.peak_bytes - a.live_start_bytes))
                .then_with(|| a.name.cmp(&b.name))
        });
        let record = PhaseRecord {
            name: std::mem::take(&mut self.name),
            started_at_unix_ms: self.start.taken_at_unix_ms,
            duration_ms: self.started.elapsed().as_millis() as u64,
            tracking: self.start.tracking,
            total,
            owners,
        };
        {
            let mut history = HISTORY.lock();
            if history.len() == PHASE_HISTORY {
                history.pop_front();
            }
            history.push_back(record.clone());
        }
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "heapscope",
            phase = %record.name,
            duration_ms = record.duration_ms,
            live_start_bytes = record.total.live_start_bytes,
            live_end_bytes = record.total.live_end_bytes,
            peak_bytes = record.total.peak_bytes,
            allocated_bytes = record.total.allocated_bytes,
            top_owner = record.owners.first().map_or("", |o| o.name.as_str()),
            "heapscope: phase finished"
        );
        record
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if !self.done {
            self.record();
        }
    }
}

/// The last [`PHASE_HISTORY`] finished phases, oldest first.
///
/// ```
/// drop(heapscope::phase("startup"));
/// assert_eq!(heapscope::recent_phases().last().unwrap().name, "startup");
/// ```
pub fn recent_phases() -> Vec<PhaseRecord> {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    HISTORY.lock().iter().cloned().collect()
}
