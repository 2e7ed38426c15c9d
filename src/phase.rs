//! Phases: named stretches of a program (startup, request assembly, tool execution,
//! streaming, compression, final response) and what each did to every owner: live bytes at
//! its start and end, bytes allocated during it (churn), and the peak reached during it. A
//! phase that deep-copies a large history stands out by its peak even though its end state is
//! unchanged.

use crate::snapshot::{OwnerKey, Snapshot};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

/// How many finished phases [`recent_phases`] keeps.
pub const PHASE_HISTORY: usize = 256;

/// How many owners a phase kept by [`recent_phases`] lists: those that moved most (see
/// [`PhaseRecord::other_owners`]). The record [`Phase::finish`] returns lists every owner.
pub const PHASE_OWNERS: usize = 32;

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
    /// Start, milliseconds since the Unix epoch: when it started by the wall clock, a label
    /// that a clock step or a suspend moves; timelines place phases by
    /// `started_at_monotonic_ms`.
    pub started_at_unix_ms: u64,
    /// Start on heapscope's monotonic clock, in milliseconds since heapscope first read it in
    /// this process: the clock a [`Timeline`](crate::Timeline)'s samples count on (see
    /// [`Timeline::phase_start_ms`](crate::Timeline::phase_start_ms)). `None` in files written
    /// before 2026-12-05.
    #[serde(default)]
    pub started_at_monotonic_ms: Option<u64>,
    /// Duration in milliseconds (monotonic clock).
    pub duration_ms: u64,
    /// Whether the numbers are real (tracking on).
    pub tracking: bool,
    /// The whole process.
    pub total: PhaseOwner,
    /// Owners whose bytes moved during the phase, largest peak rise (`peak - start`) first;
    /// an owner that existed at its start and was retired by its end too, with
    /// `live_end_bytes` 0 (one both registered and retired during the phase is not listed).
    ///
    /// An owner's start and end are paired by which owner it is, not by its name, and it is
    /// listed under its name at the end (or when its id was freed). So an owner renamed
    /// during the phase (a [`Retained`](crate::Retained) item moved by `transfer_to`, a
    /// retired owner renamed `<name> (retired #N)` when a new owner took its name) is one
    /// entry with its own figures, and an owner registered during the phase under a name
    /// that another had at its start starts at 0. Two entries can then share a name: an
    /// owner retired during the phase (`live_end_bytes` 0, its churn and peak until then)
    /// and the one that registered its name again before the phase ended. Both are listed,
    /// each with its own figures; ties in the order are broken by name, then by figures.
    ///
    /// A record kept by [`recent_phases`] (and so a report's or a timeline's) lists the
    /// [`PHASE_OWNERS`] owners that moved most (the larger of peak rise and live change), in
    /// this order; `other_owners` counts the others.
    pub owners: Vec<PhaseOwner>,
    /// Owners that moved during the phase but are not in `owners`: 0 in the record
    /// [`Phase::finish`] returns, which lists them all. A kept record listed every owner,
    /// so the ring held 77 KB per record with 1000 owners moving in each phase (19.8 MB in
    /// all, `tests/phase_memory.rs`). 0 in files written before 2026-12-05.
    #[serde(default)]
    pub other_owners: u64,
}

impl PhaseRecord {
    /// The entry of the owner with this full name: the first in [`PhaseRecord::owners`]'s
    /// order when two share it (see there). `None` when the owner did not move during the
    /// phase, in a record kept by [`recent_phases`] when it was not among the [`PHASE_OWNERS`]
    /// listed, and without tracking (`owners` is then empty).
    ///
    /// ```
    /// # heapscope::install!();
    /// let history = heapscope::Owner::named("phase_owner_doc");
    /// let turns = history.in_scope(|| vec![String::from("hello"); 100]);
    /// let record = {
    ///     let compaction = heapscope::phase("compaction");
    ///     drop(history.in_scope(|| turns.clone())); // a transient deep copy
    ///     compaction.finish()
    /// };
    /// if record.tracking {
    ///     let h = record.owner("phase_owner_doc").expect("moved during the phase");
    ///     assert_eq!(h.live_end_bytes, h.live_start_bytes);
    ///     assert!(h.peak_bytes > h.live_start_bytes);
    /// }
    /// ```
    pub fn owner(&self, name: &str) -> Option<&PhaseOwner> {
        self.owners.iter().find(|o| o.name == name)
    }

    /// The copy kept in the ring: the [`PHASE_OWNERS`] owners that moved most, in the
    /// record's order (stable, so ties keep that order too). The first, the largest peak
    /// rise, is always kept: the report names it for the phase (`most:`), even when more
    /// owners than that each shrank further.
    fn kept(&self) -> PhaseRecord {
        let moved = |o: &PhaseOwner| {
            (o.peak_bytes.saturating_sub(o.live_start_bytes))
                .max(o.live_start_bytes.abs_diff(o.live_end_bytes))
        };
        let mut listed: Vec<(usize, &PhaseOwner)> = self.owners.iter().enumerate().collect();
        if listed.len() > PHASE_OWNERS {
            listed.sort_by_key(|(i, o)| (*i != 0, std::cmp::Reverse(moved(o))));
            listed.truncate(PHASE_OWNERS);
            listed.sort_by_key(|(i, _)| *i);
        }
        let left_out = (self.owners.len() - listed.len()) as u64;
        PhaseRecord {
            name: self.name.clone(),
            started_at_unix_ms: self.started_at_unix_ms,
            started_at_monotonic_ms: self.started_at_monotonic_ms,
            duration_ms: self.duration_ms,
            tracking: self.tracking,
            total: self.total.clone(),
            owners: listed.into_iter().map(|(_, o)| o.clone()).collect(),
            other_owners: self.other_owners + left_out,
        }
    }
}

/// A running phase; see [`phase`]. Dropping it (or [`Phase::finish`]) records it, also when
/// it is dropped while its thread unwinds from a panic (nothing in the record says so). It is
/// `Send`: it may end on another thread than the one that started it.
#[must_use = "a phase ends when dropped; `let _ = ` ends it at once"]
#[derive(Debug)]
pub struct Phase {
    name: String,
    started: Instant,
    start: PhaseStart,
    window: PeakWindow,
    done: bool,
}

/// What an open phase keeps of its start: only what [`Phase::finish`] reads, 24 bytes per
/// owner. It kept a whole [`Snapshot`] (every owner's name, parent and figures) and each
/// owner's key, about 150 bytes per owner: 100 phases open at once with 1 000 owners held
/// 14.3 MB of `heapscope.internal` (`tests/phase_memory.rs`). Names are read at the end: from
/// the end's reading, or, for an owner freed meanwhile, from what its peak window kept.
#[derive(Debug, Default)]
struct PhaseStart {
    tracking: bool,
    taken_at_unix_ms: u64,
    /// The process's live bytes: its top-level owners' sum, as [`Snapshot::capture`] reads it.
    live_bytes: u64,
    /// The process's cumulative allocated bytes.
    total_bytes: u64,
    /// Every owner registered at the start (retired ones still holding bytes included), in
    /// key order.
    owners: Vec<StartOwner>,
}

/// One owner at a phase's start: which owner (not its name, see [`OwnerKey`]) and the two
/// figures its record is computed from.
#[derive(Debug, Clone, Copy)]
struct StartOwner {
    key: OwnerKey,
    live_bytes: u64,
    total_bytes: u64,
}

fn key_order(key: &OwnerKey) -> (u16, u32) {
    (key.id, key.generation)
}

impl PhaseStart {
    /// Reads every owner's start figures and opens the phase's peak window, under one lock
    /// of the registry: an owner read is then present when the window opens, so the window
    /// keeps its name, churn and peak should it be freed before the phase ends.
    fn read() -> (PhaseStart, PeakWindow) {
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let taken_at_unix_ms = crate::clock::unix_ms();
        let tracking = crate::is_tracking();
        #[cfg(feature = "enabled")]
        let (window, (owners, top_live)) =
            PeakWindow::open_after(|r| if tracking { start_owners(r) } else { (Vec::new(), 0) });
        #[cfg(not(feature = "enabled"))]
        let (window, owners, top_live) = (PeakWindow::open(), Vec::new(), 0);
        let total = crate::global_stats();
        // As `Snapshot::capture_keyed`: live bytes from the owners' reading, the cumulative
        // total from the process's counters.
        let live_bytes = if tracking { top_live } else { total.live_bytes };
        let start = PhaseStart {
            tracking,
            taken_at_unix_ms,
            live_bytes,
            total_bytes: total.total_bytes,
            owners,
        };
        (start, window)
    }

    fn owner(&self, key: &OwnerKey) -> Option<&StartOwner> {
        let at = self.owners.binary_search_by_key(&key_order(key), |o| key_order(&o.key));
        at.ok().and_then(|i| self.owners.get(i))
    }
}

/// Every registered owner's live and allocated bytes (its subtree's, as a [`Snapshot`]'s
/// entries), in key order, and the top-level owners' live sum.
#[cfg(feature = "enabled")]
fn start_owners(r: &mut crate::registry::Registry) -> (Vec<StartOwner>, u64) {
    use crate::registry::{INTERNAL, PROCESS};
    // Retired owners that hold nothing go first (the reading would free them too): what that
    // frees is gone before the phase begins, and is not in its start.
    r.free_emptied_retired();
    // heapscope.internal's own bytes before the reading, which allocates under it (every
    // owner's entry and name, and its counters, about 240 KB with 1 000 owners) and frees all
    // of it before the phase begins. Its start is taken as this: counted at the reading, that
    // working memory was in the start of the total and of heapscope.internal, so a 50 MiB
    // copy rose the total by 242 217 bytes less than it held (`tests/phase_total_peak.rs`).
    let internal_before = crate::counters::read_own(INTERNAL).live_bytes();
    let crate::snapshot::Registered { entries, own, subtree, .. } =
        crate::snapshot::read_registered_locked(r);
    let working = own
        .get(INTERNAL)
        .map_or(0, crate::counters::Raw::live_bytes)
        .saturating_sub(internal_before);
    // Exactly one slot per owner (and one for the process): collecting a filter would let
    // the vector grow by doubling.
    let mut owners = Vec::with_capacity(entries.len());
    let mut top_live = 0u64;
    for (id, e) in entries.iter().filter(|(id, _)| *id != PROCESS) {
        let raw = subtree.get(*id).copied().unwrap_or_default();
        let mut stats = crate::stats::OwnerStats::from_raw(&raw, 0);
        if *id == INTERNAL {
            // A top-level owner: the total's start loses the working memory with it.
            stats.live_bytes = stats.live_bytes.saturating_sub(working);
        }
        // Top-level as a snapshot's entry is (no parent): under the process, or under an id
        // not registered.
        let listed = |parent: u16| entries.binary_search_by_key(&parent, |(id, _)| *id).is_ok();
        if e.parent == PROCESS || !listed(e.parent) {
            top_live += stats.live_bytes;
        }
        owners.push(StartOwner {
            key: OwnerKey { id: *id, generation: e.generation },
            live_bytes: stats.live_bytes,
            total_bytes: stats.total_bytes,
        });
    }
    owners.sort_unstable_by_key(|o| key_order(&o.key));
    (owners, top_live)
}

/// The phase's end: every owner's reading, with heapscope.internal's (and so the total's) live
/// bytes as they were before the reading, as at the start (see [`start_owners`]): the reading's
/// working memory is freed as soon as it is read. Its peak stays in the phase's peaks.
fn end_reading() -> (Snapshot, Vec<OwnerKey>) {
    #[cfg(feature = "enabled")]
    {
        use crate::registry::INTERNAL;
        // As at the start: what freeing emptied retired owners frees is gone before the read.
        crate::registry::with(|r| r.free_emptied_retired());
        let internal_before = crate::counters::read_own(INTERNAL).live_bytes();
        let (mut end, keys) = Snapshot::capture_keyed();
        let at = keys.iter().position(|k| k.id == INTERNAL);
        if let Some(internal) = at.and_then(|at| end.owners.get_mut(at)) {
            let working = internal.own_live_bytes.saturating_sub(internal_before);
            internal.own_live_bytes -= working;
            internal.stats.live_bytes = internal.stats.live_bytes.saturating_sub(working);
            // A top-level owner: the total's live bytes are the top-level owners' sum.
            end.total.live_bytes = end.total.live_bytes.saturating_sub(working);
        }
        (end, keys)
    }
    #[cfg(not(feature = "enabled"))]
    Snapshot::capture_keyed()
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

/// What a [`PeakWindow`] saw, from [`PeakWindow::close`]. Keyed by which owner (id and
/// holder of the id), not by name: names change (see [`OwnerKey`]).
#[derive(Debug, Default)]
pub(crate) struct WindowPeaks {
    /// Every registered owner's peak.
    pub(crate) owners: HashMap<OwnerKey, u64>,
    /// The whole process's peak.
    pub(crate) process: u64,
    /// Owners registered when the window opened, or followed ([`PeakWindow::follow`]), whose
    /// ids were freed (retired, holding nothing) before it closed. Their ids may hold other
    /// owners by then, even under the same name.
    pub(crate) departed: HashMap<OwnerKey, DepartedOwner>,
}

/// An owner gone before its window closed: see [`WindowPeaks::departed`].
#[derive(Debug, Clone)]
pub(crate) struct DepartedOwner {
    /// Its full name when its id was freed.
    pub(crate) name: String,
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

    /// Runs `read` and opens the window under one lock of the registry: no owner `read`
    /// saw is freed before the window opens (see `counters::OpenWindows::depart`).
    #[cfg(feature = "enabled")]
    pub(crate) fn open_after<R>(
        read: impl FnOnce(&mut crate::registry::Registry) -> R,
    ) -> (PeakWindow, R) {
        crate::registry::with(|r| {
            let read = read(r);
            (PeakWindow { key: Some(r.windows.open()) }, read)
        })
    }

    /// Keeps the peaks of these owners, should they be freed before the window closes, also
    /// if they were registered after it opened (see [`WindowPeaks::departed`]).
    #[cfg_attr(not(feature = "enabled"), allow(unused_variables))]
    pub(crate) fn follow(&self, owners: &[OwnerKey]) {
        #[cfg(feature = "enabled")]
        if let Some(key) = self.key {
            crate::registry::with(|r| {
                r.windows.follow(key, owners.iter().map(|o| (o.id, o.generation)));
            });
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
                let owners = r
                    .all_refs()
                    .into_iter()
                    .map(|(id, e)| {
                        let owner = OwnerKey { id, generation: e.generation };
                        (owner, r.windows.peak(key, id))
                    })
                    .collect();
                let process = r.windows.peak(key, crate::registry::PROCESS);
                let departed = r
                    .windows
                    .close(key)
                    .into_iter()
                    .map(|d| {
                        let owner = OwnerKey { id: d.id, generation: d.generation };
                        let gone = DepartedOwner {
                            name: d.path,
                            total_bytes: d.total_bytes,
                            peak_bytes: d.peak_bytes,
                        };
                        (owner, gone)
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
/// A phase is a stretch of time, not of a thread: every figure (live, churn, peak, per owner
/// and in total) counts every thread. Two threads each running a phase at the same time both
/// see both threads' work (3 MiB allocated on one, 5 MiB on the other: both records list
/// both); give each thread's work its own owner to tell them apart.
///
/// heapscope's bookkeeping for the phase is counted too, as `heapscope.internal` (listed in
/// every record) and in `total`: what the phase holds from its start (24 bytes per owner, and
/// 16 per owner id for its peak window) is in `live_end_bytes` but not `live_start_bytes`,
/// and the reading at its end raises `peak_bytes` and `allocated_bytes` (with 1 000 owners, a
/// phase in which nothing else happened: end +40 KB, peak +682 KB, allocated 1.1 MB). The
/// working memory of the readings at its start and end, freed as soon as they are read, is
/// in neither `live_start_bytes` nor `live_end_bytes` (of the total and heapscope.internal),
/// so a transient shows whole: with 1 000 owners a 50 MiB copy made and dropped in a phase
/// rose the total by 52 468 960 bytes, the copy and the phase's 40 160 (until 2026-12-05 the
/// start reading's 242 217 bytes were in the start, and the rise read that much short).
/// Exact when no other thread allocates meanwhile (under heapscope.internal, during the
/// readings); owners' own figures are exact.
///
/// ```
/// # heapscope::install!();
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
    // The name, made from a `&str` here, is heapscope's bookkeeping, and made before the
    // start is read: made under the caller's owner after it, its bytes were in that owner's
    // figures for the phase (the 8 bytes of "rt_phase" in tests/async_runtime.rs).
    let name = {
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        name.into()
    };
    let (start, window) = PhaseStart::read();
    Phase { name, started: crate::clock::now().0, start, window, done: false }
}

impl Phase {
    /// Ends the phase and returns its record (also kept in [`recent_phases`]).
    pub fn finish(mut self) -> PhaseRecord {
        self.record()
    }

    fn record(&mut self) -> PhaseRecord {
        self.done = true;
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let (end, end_keys) = end_reading();
        let WindowPeaks { owners: window_peaks, process: process_peak, departed } =
            self.window.close();
        let total = PhaseOwner {
            name: "total".to_owned(),
            live_start_bytes: self.start.live_bytes,
            live_end_bytes: end.total.live_bytes,
            allocated_bytes: end.total.total_bytes.saturating_sub(self.start.total_bytes),
            peak_bytes: process_peak.max(self.start.live_bytes).max(end.total.live_bytes),
        };
        // Paired by which owner, not by name (see `PhaseRecord::owners`).
        let mut owners: Vec<PhaseOwner> = end
            .owners
            .iter()
            .zip(&end_keys)
            .map(|(after, key)| {
                let (live_start, total_start) =
                    self.start.owner(key).map_or((0, 0), |o| (o.live_bytes, o.total_bytes));
                let window = window_peaks.get(key).copied().unwrap_or(0);
                PhaseOwner {
                    name: after.name.clone(),
                    live_start_bytes: live_start,
                    live_end_bytes: after.stats.live_bytes,
                    allocated_bytes: after.stats.total_bytes.saturating_sub(total_start),
                    peak_bytes: window.max(live_start).max(after.stats.live_bytes),
                }
            })
            .collect();
        // Owners of the start that are gone at the end: retired, and their ids freed once they
        // held nothing (their ids, and names, may even have gone to other owners since). The
        // window, opened with the start's reading, kept each one's name when its id was freed.
        let at_end: HashSet<OwnerKey> = end_keys.iter().copied().collect();
        for start in self.start.owners.iter().filter(|o| !at_end.contains(&o.key)) {
            let gone = departed.get(&start.key);
            owners.push(PhaseOwner {
                // Not reached: only tracking lists owners, and with tracking the window keeps
                // every owner of the start that was freed before it closed.
                name: gone.map_or_else(|| format!("<owner #{}>", start.key.id), |g| g.name.clone()),
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
                // Two owners of one name (see `PhaseRecord::owners`): still one order.
                .then_with(|| {
                    let figures =
                        |o: &PhaseOwner| (o.live_start_bytes, o.live_end_bytes, o.allocated_bytes);
                    figures(a).cmp(&figures(b))
                })
        });
        let record = PhaseRecord {
            name: std::mem::take(&mut self.name),
            started_at_unix_ms: self.start.taken_at_unix_ms,
            started_at_monotonic_ms: Some(crate::clock::monotonic_ms(self.started)),
            duration_ms: self.started.elapsed().as_millis() as u64,
            tracking: self.start.tracking,
            total,
            owners,
            other_owners: 0,
        };
        {
            // Trimmed before the lock: the ring's memory is bounded by owners listed, not
            // by owners registered.
            let kept = record.kept();
            let mut history = HISTORY.lock();
            if history.len() == PHASE_HISTORY {
                history.pop_front();
            }
            history.push_back(kept);
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

/// The last [`PHASE_HISTORY`] finished phases, in the order they finished (so a phase after
/// the phases nested in it, however long it ran), each listing at most [`PHASE_OWNERS`]
/// owners (see [`PhaseRecord::owners`]). The phase that finished first drops out first.
///
/// ```
/// # heapscope::install!();
/// drop(heapscope::phase("startup"));
/// assert_eq!(heapscope::recent_phases().last().unwrap().name, "startup");
/// ```
pub fn recent_phases() -> Vec<PhaseRecord> {
    last_phases(PHASE_HISTORY)
}

/// The last `n` finished phases, oldest first, cloning only those: a report lists 20, and
/// cloning the whole ring to keep them cost it a peak of 18 MB with 1000 owners in every
/// record (`tests/phase_memory.rs`).
pub(crate) fn last_phases(n: usize) -> Vec<PhaseRecord> {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let history = HISTORY.lock();
    history.iter().skip(history.len().saturating_sub(n)).cloned().collect()
}

/// The shortest of the kept phases (see [`recent_phases`]) that `matches`, cloning only it:
/// a report names the phase that made a transient copy even when it has left the 20 the
/// report lists.
pub(crate) fn shortest_phase(matches: impl Fn(&PhaseRecord) -> bool) -> Option<PhaseRecord> {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let history = HISTORY.lock();
    history.iter().filter(|p| matches(p)).min_by_key(|p| p.duration_ms).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str, start: u64, end: u64, peak: u64) -> PhaseOwner {
        let (live_start_bytes, live_end_bytes, peak_bytes) = (start, end, peak);
        PhaseOwner {
            name: name.into(),
            live_start_bytes,
            live_end_bytes,
            allocated_bytes: 0,
            peak_bytes,
        }
    }

    /// One owner rose by 10 bytes, 40 shrank by 1000 each: the kept copy lists the riser
    /// (the report names the first owner) and the 31 first shrinkers, and counts 9 others.
    #[test]
    fn the_kept_copy_keeps_the_largest_rise_and_what_shrank_most() {
        let mut owners = vec![owner("riser", 0, 0, 10)];
        owners.extend((0..40).map(|i| owner(&format!("shrinker{i:02}"), 1000, 0, 1000)));
        owners.push(owner("quiet", 5, 5, 5));
        let record = PhaseRecord {
            name: "p".into(),
            started_at_unix_ms: 0,
            started_at_monotonic_ms: Some(0),
            duration_ms: 1,
            tracking: true,
            total: owner("total", 0, 0, 0),
            owners,
            other_owners: 0,
        };
        let kept = record.kept();
        assert_eq!(kept.owners.len(), PHASE_OWNERS);
        assert_eq!(kept.owners[0].name, "riser");
        assert_eq!(kept.owners[1].name, "shrinker00");
        assert_eq!(kept.owners[PHASE_OWNERS - 1].name, "shrinker30");
        assert_eq!(kept.other_owners, 42 - PHASE_OWNERS as u64);
        assert_eq!((kept.name, kept.total), (record.name, record.total));
    }
}
