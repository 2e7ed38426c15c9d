//! Tests that attribute growth: probes, growth assertions and leak checks.
//!
//! Every probe and check uses a fresh, uniquely named owner, so tests running in parallel in
//! one process (libtest's default) never see each other's bytes; the harness's own
//! allocations land in `root`, which these helpers ignore.
//!
//! Without the `enabled` feature (or without the allocator installed) nothing is measured:
//! the helpers run the code, print `heapscope: disabled, growth not checked` once to stderr,
//! and [`Probe::is_active`] returns `false`. They never pass silently. Their readings are
//! then empty (no owner in a [`LeakReport`], zero bytes in a probe), so assertions on them
//! belong under `if report.is_active()` (or [`is_tracking`](crate::is_tracking)), as in the
//! examples here, so that a test also passes in a build without tracking (your `memprof`
//! feature off).

use crate::owner::{Owner, OwnerScope};
use crate::snapshot::{OwnerKey, Snapshot};
use crate::stats::OwnerStats;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

static NEXT: AtomicU64 = AtomicU64::new(1);

fn unique_owner(prefix: &str, name: &str) -> Owner {
    let n = NEXT.fetch_add(1, Relaxed);
    // At most 96 bytes of the name, cut at a character boundary, so that the prefix and the
    // number fit the 128-byte limit (96 characters once let 100 `é` through as 200 bytes,
    // and the probe measured the overflow owner instead).
    let mut clean = String::with_capacity(name.len().min(96));
    for c in name.chars().map(|c| if c == '/' || c.is_control() { '_' } else { c }) {
        if clean.len() + c.len_utf8() > 96 {
            break;
        }
        clean.push(c);
    }
    let owner = Owner::named(format!("{prefix}:{clean}#{n}"));
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    PRIVATE.lock().push((owner, std::thread::current().id()));
    owner
}

/// The owners of probes and checks (made by [`unique_owner`]) still registered, with the thread
/// that made each: forgotten once retired and holding nothing (a retired owner still holding
/// bytes stays another test's). Each belongs to the test
/// running on that thread (libtest runs each test on a thread of its own; a probe cannot leave
/// its thread), so a [`leak_check`] does not judge those made on other threads, nor their
/// descendants: run beside another test's check whose body kept an 8-byte key per iteration
/// under that check's owner, a check of a body that kept nothing judged that owner leaking at
/// 8.0 bytes/iteration, under a name (`leak_check:#n`) that read as its own.
static PRIVATE: parking_lot::Mutex<Vec<(Owner, std::thread::ThreadId)>> =
    parking_lot::Mutex::new(Vec::new());

/// Retires an owner made by [`unique_owner`], then forgets the private owners gone from the
/// registry (this one, if it held nothing).
fn retire_private(owner: Owner) {
    let _ = owner.retire();
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    forget_departed(&mut PRIVATE.lock());
}

/// Forgets the private owners the registry no longer holds (retired and emptied): their ids
/// may be taken by other owners, under other generations.
fn forget_departed(private: &mut Vec<(Owner, std::thread::ThreadId)>) {
    crate::registry::with(|r| {
        private.retain(|(o, _)| r.any_entry(o.id(), o.generation()).is_ok());
    });
}

/// The keys of the private owners alive now that were made on threads other than this one.
fn other_threads_private_keys() -> Vec<OwnerKey> {
    let here = std::thread::current().id();
    let mut private = PRIVATE.lock();
    forget_departed(&mut private);
    private
        .iter()
        .filter(|(_, thread)| *thread != here)
        .map(|(o, _)| OwnerKey { id: o.id(), generation: o.generation() })
        .collect()
}

/// Whether the owner at `index` of a keyed snapshot, or one of its ancestors, is `hit`.
/// Ancestors are found by their full names in the same snapshot (an entry's parent is named as
/// the registry names it at that reading), at most 8 levels.
fn in_lineage(
    snap: &Snapshot,
    keys: &[OwnerKey],
    index: usize,
    hit: impl Fn(&OwnerKey) -> bool,
) -> bool {
    let mut at = Some(index);
    for _ in 0..8 {
        let Some(i) = at else { return false };
        if keys.get(i).is_some_and(&hit) {
            return true;
        }
        at = snap.owners.get(i).and_then(|o| o.parent.as_deref()).and_then(|parent| {
            snap.owners
                .binary_search_by(|o| o.name.as_str().cmp(parent))
                .ok()
                .or_else(|| snap.owners.iter().position(|o| o.name == parent))
        });
    }
    false
}

fn warn_inactive() -> bool {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let active = crate::is_tracking();
    if !active && !WARNED.swap(true, Relaxed) {
        // Not `eprintln!`, which panics when stderr is gone (a closed pipe).
        let _ = writeln!(std::io::stderr(), "heapscope: disabled, growth not checked");
    }
    active
}

/// A fresh owner entered on this thread until the probe is dropped.
///
/// The owner is top-level (`probe:<name>#n`), not a child of the owner current at `start`:
/// an outer probe does not count what is allocated while an inner one is entered.
///
/// It counts what code run for the first time on this thread keeps for good (tokio's first
/// `block_on` on a thread keeps 40 bytes of thread-local context): run such code once before
/// the probe starts.
///
/// It counts only what is allocated while its owner is current: code that enters owners of
/// its own allocates there, not in the probe. A probe around five turns of an agent that
/// enters its `history` owner for each message read 0 live bytes while that history held
/// 148 899. Measure such code through its owners
/// ([`assert_owner_growth!`](crate::assert_owner_growth), [`leak_check_under`]); a probe
/// shows what the code left unattributed.
///
/// ```
/// # heapscope::install!();
/// use heapscope::{testing::Probe, Owner};
/// let history = Owner::named("probe_doc_history");
/// let probe = Probe::start("turn");
/// let turn = history.in_scope(|| String::from("user: hi")); // the code enters its own owner
/// let stray = vec![0u8; 100]; // allocated where no owner was entered: the probe's
/// if probe.is_active() {
///     assert_eq!(probe.stats().live_bytes, 100);
///     assert_eq!(history.stats().live_bytes, 8);
/// }
/// # drop((turn, stray));
/// ```
///
/// ```
/// # heapscope::install!();
/// use heapscope::testing::Probe;
///
/// let probe = Probe::start("parse");
/// let v = vec![0u8; 1000];
/// if probe.is_active() {
///     assert_eq!(probe.stats().live_bytes, 1000);
/// }
/// # drop(v);
/// ```
#[derive(Debug)]
pub struct Probe {
    owner: Owner,
    scope: Option<OwnerScope>,
    active: bool,
}

impl Probe {
    /// Registers `probe:<name>#<n>` (unique in the process) and enters it on this thread.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::testing::Probe;
    /// let outer = Probe::start("request");
    /// let inner = Probe::start("decode");
    /// let body = vec![0u8; 512];
    /// if inner.is_active() {
    ///     assert_eq!(inner.stats().live_bytes, 512);
    ///     // Probes do not nest: the outer one does not count the inner one's bytes.
    ///     assert_eq!(outer.stats().live_bytes, 0);
    /// }
    /// # drop((body, inner, outer));
    /// ```
    pub fn start(name: &str) -> Probe {
        let active = warn_inactive();
        let owner = unique_owner("probe", name);
        Probe { owner, scope: Some(owner.enter()), active }
    }

    /// The probe's owner.
    ///
    /// ```
    /// # heapscope::install!();
    /// let p = heapscope::testing::Probe::start("x");
    /// assert!(p.owner().name().starts_with("probe:x#"));
    /// ```
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// The probe owner's numbers so far (including any children of it).
    ///
    /// ```
    /// # heapscope::install!();
    /// let p = heapscope::testing::Probe::start("x");
    /// assert_eq!(p.stats().live_bytes, 0);
    /// ```
    pub fn stats(&self) -> OwnerStats {
        self.owner.stats()
    }

    /// Whether the probe measures anything (tracking compiled in and installed).
    ///
    /// ```
    /// # heapscope::install!();
    /// let p = heapscope::testing::Probe::start("x");
    /// assert_eq!(p.is_active(), heapscope::is_tracking());
    /// ```
    pub fn is_active(&self) -> bool {
        self.active
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        drop(self.scope.take());
        retire_private(self.owner);
    }
}

/// Checks that `owner`'s live bytes grow by at most `at_most` bytes while `body` runs, and
/// returns `body`'s value. The body is *not* run under `owner`: measuring does not change
/// attribution. Prefer the [`assert_owner_growth!`](crate::assert_owner_growth) macro.
///
/// # Panics
/// When the owner grew by more than `at_most`, with a message that starts `heapscope:` and
/// a table of every owner that moved: the owner and its descendants first, then the others.
///
/// ```
/// # heapscope::install!();
/// use heapscope::{testing::check_growth, Owner};
/// let cache = Owner::named("check_growth_doc");
/// let v = check_growth(cache, 2048, || cache.in_scope(|| vec![0u8; 1024]), "fill");
/// assert_eq!(v.len(), 1024);
/// if heapscope::is_tracking() {
///     let too_much = std::panic::catch_unwind(|| {
///         check_growth(cache, 100, || cache.in_scope(|| vec![0u8; 1024]), "fill again")
///     });
///     assert!(too_much.is_err());
/// }
/// ```
pub fn check_growth<R>(owner: Owner, at_most: u64, body: impl FnOnce() -> R, at: &str) -> R {
    let check = GrowthCheck::start(owner, i128::from(at_most), at);
    let out = body();
    drop(check);
    out
}

/// What [`assert_owner_growth!`](crate::assert_owner_growth) expands to: started before its
/// block and checked when dropped, after it, so that the block stays a block (its `return` or
/// `?` leaves the enclosing function, and the growth is checked on the way out). The macro
/// once ran the block as a closure: a `return;` in it only left the closure, and the code
/// after the assertion ran. The limit is signed: a negative one (a budget already overspent)
/// asks the owner to shrink by at least that much (the macro once cast it to `u64`, and `-1`
/// became 18 EB: every growth passed).
#[doc(hidden)]
#[derive(Debug)]
pub struct GrowthCheck<'a> {
    owner: Owner,
    at_most: i128,
    at: &'a str,
    /// Every owner, and the owner's live bytes, before the block; `None` without tracking.
    before: Option<(Snapshot, Vec<OwnerKey>, u64)>,
}

impl<'a> GrowthCheck<'a> {
    /// Reads every owner, and `owner`'s live bytes, to check against when dropped.
    #[doc(hidden)]
    pub fn start(owner: Owner, at_most: i128, at: &'a str) -> GrowthCheck<'a> {
        let before = warn_inactive().then(|| {
            let (all, keys) = Snapshot::capture_keyed();
            (all, keys, owner.stats().live_bytes)
        });
        GrowthCheck { owner, at_most, at, before }
    }
}

impl Drop for GrowthCheck<'_> {
    fn drop(&mut self) {
        // A block that panicked has failed already.
        if std::thread::panicking() {
            return;
        }
        let Some((before_all, before_keys, before)) = self.before.take() else { return };
        let after = self.owner.stats().live_bytes;
        let growth = after as i128 - before as i128;
        if growth > self.at_most {
            // Owners paired by identity, as `leak_check` and phases do: paired by name, an
            // owner retired during the body and renamed when a newcomer took its name showed
            // as grown by all it held, and the newcomer as shrunk by it.
            let (after_all, after_keys) = Snapshot::capture_keyed();
            let mut diff = after_all.diff_keyed(&after_keys, &before_all, &before_keys);
            // The checked owner and its descendants first (a stable sort keeps each group's
            // largest growth first), then every other owner that moved: sorted together, an
            // owner of another test running meanwhile, or heapscope's own, came first and the
            // checked one further down (a 1000-turn loop's `t_loop/history +675146` above the
            // failing `history +60594`).
            let name = self.owner.name();
            let prefix = format!("{name}/");
            diff.owners.sort_by_key(|d| !(d.name == name || d.name.starts_with(&prefix)));
            panic!(
                "heapscope: owner {name:?} grew by {growth} bytes, more than the {} allowed ({})\n{diff}",
                self.at_most,
                self.at
            );
        }
    }
}

/// Asserts that an owner's live bytes grow by at most `at_most` bytes while the block runs;
/// evaluates to the block's value. `at_most` is any integer; a negative one asks the owner to
/// shrink by at least that many bytes.
///
/// On failure it panics with `heapscope: owner "…" grew by N bytes, more than the M allowed`
/// and a table of every owner's growth: after the process's `total`, the owner and its
/// descendants, then every other owner that moved (other tests' too, when tests run in
/// parallel), each group largest growth first (owners followed by identity, not by
/// name, as in [`leak_check`]: one renamed during the block keeps its row). Without tracking
/// it runs the block and checks nothing (saying so once on stderr).
///
/// The block is run in place, not as a closure: its `return` and `?` leave the enclosing
/// function, and the growth is checked on the way out. A block that panics is not checked.
///
/// The owner's growth is everyone's: an owner named by the code under test (`owner!("history")`
/// is one owner per name in the process) also grows with the other tests running that code at
/// the same time. Give each test owners of its own.
///
/// ```
/// # heapscope::install!();
/// let cache = heapscope::Owner::named("growth_doc");
/// let v = heapscope::assert_owner_growth!(cache, at_most = 2048, {
///     cache.in_scope(|| vec![0u8; 1024])
/// });
/// # drop(v);
/// ```
#[macro_export]
macro_rules! assert_owner_growth {
    ($owner:expr, at_most = $at_most:expr, $body:block) => {{
        let __heapscope_growth = $crate::testing::GrowthCheck::start(
            $owner,
            ($at_most) as i128,
            concat!(file!(), ":", line!()),
        );
        let __heapscope_out = $body;
        ::std::mem::drop(__heapscope_growth);
        __heapscope_out
    }};
}

/// How an owner's retained bytes moved over the measured iterations of [`leak_check`].
///
/// ```
/// # heapscope::install!();
/// use heapscope::{testing::{leak_check, Trend}, Owner};
/// let (table, scratch) = (Owner::named("trend_table"), Owner::named("trend_scratch"));
/// let mut filled = Vec::new();
/// let report = leak_check(2, 12, |_| {
///     if filled.is_empty() {
///         filled = table.in_scope(|| vec![0u8; 4096]); // once, during warm-up
///     }
///     let buffer = scratch.in_scope(|| vec![0u8; 4096]); // freed every iteration
///     drop(buffer);
/// });
/// if report.is_active() {
///     assert_eq!(report.owner("trend_table").map(|o| o.trend), Some(Trend::Flat));
///     assert_eq!(report.owner("trend_scratch").map(|o| o.trend), Some(Trend::TransientPeak));
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trend {
    /// Grows in every part of the run: a leak.
    Leaking,
    /// Held more at some moment than at any iteration boundary, and not leaking: a
    /// transient peak (a deep copy, a temporary buffer, a batch emptied every few
    /// iterations). It may still have grown between the start and the end of the run (a
    /// table that grew by reallocation without growing in every third).
    TransientPeak,
    /// Neither: nothing retained, or a cache that filled (during warm-up, or before the last
    /// third) and stays. Compare `end_live_bytes` with `start_live_bytes` to see whether it
    /// grew at all.
    Flat,
}

/// One owner in a [`LeakReport`].
///
/// ```
/// # heapscope::install!();
/// use heapscope::{testing::{leak_check, Trend}, Owner};
/// let history = Owner::named("owner_trend_doc");
/// let mut kept = Vec::with_capacity(16);
/// let report = leak_check(2, 12, |_| kept.push(history.in_scope(|| vec![0u8; 1024])));
/// if report.is_active() {
///     let trend = report.owner("owner_trend_doc").expect("observed");
///     assert_eq!(trend.trend, Trend::Leaking);
///     assert_eq!(trend.start_live_bytes, 2 * 1024); // kept during warm-up
///     assert_eq!(trend.end_live_bytes - trend.start_live_bytes, 12 * 1024);
///     assert!((trend.bytes_per_iteration - 1024.0).abs() < 1.0);
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct OwnerTrend {
    /// Full owner name.
    pub name: String,
    /// The verdict.
    pub trend: Trend,
    /// For a leaking owner, what it kept per iteration: how fast the lowest level it comes
    /// back to rose from the first third of the run to the last, so that a buffer emptied
    /// periodically in the same owner does not count. For the others, the least-squares slope
    /// of its live bytes (its descendants' included) against the iteration number. Until
    /// 2026-12-05 it was that slope for every owner: 20 bytes kept per turn in a history
    /// compacted every 20 turns read 2 646.7 bytes/iteration over 60 iterations, in which
    /// the history grew by 1 202 bytes.
    pub bytes_per_iteration: f64,
    /// Live bytes (descendants' included) after warm-up, before the first measured iteration.
    pub start_live_bytes: u64,
    /// Live bytes (descendants' included) after the last iteration.
    pub end_live_bytes: u64,
    /// The highest live bytes (descendants' included) during the measured iterations.
    pub peak_bytes: u64,
}

/// The result of [`leak_check`]. `Debug` and `Display` name only the leaking owners.
///
/// ```
/// # heapscope::install!();
/// use heapscope::{testing::leak_check, Owner};
/// let cache = Owner::named("leak_report_doc");
/// let mut cached: Option<Vec<u8>> = None;
/// let report = leak_check(2, 12, |_| {
///     cached.get_or_insert_with(|| cache.in_scope(|| vec![0u8; 4096]));
/// });
/// // `Display` lists the leaking owners: a failure message that says what grew.
/// assert!(report.leaking().is_empty(), "{report}");
/// ```
#[derive(Clone, PartialEq)]
pub struct LeakReport {
    warmup: usize,
    iterations: usize,
    owners: Vec<OwnerTrend>,
    active: bool,
}

impl LeakReport {
    /// The owners judged leaking, largest bytes per iteration first.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::Owner;
    /// let (log, index) = (Owner::named("leaking_log"), Owner::named("leaking_index"));
    /// let mut kept = Vec::with_capacity(64);
    /// let report = heapscope::testing::leak_check(2, 12, |_| {
    ///     kept.push(log.in_scope(|| vec![0u8; 1024]));
    ///     kept.push(index.in_scope(|| vec![0u8; 64]));
    /// });
    /// let names: Vec<&str> = report.leaking().iter().map(|o| o.name.as_str()).collect();
    /// if report.is_active() {
    ///     assert_eq!(names, ["leaking_log", "leaking_index"]);
    /// }
    /// ```
    pub fn leaking(&self) -> Vec<&OwnerTrend> {
        self.owners.iter().filter(|o| o.trend == Trend::Leaking).collect()
    }

    /// Every owner observed (except `root` and heapscope's own), largest bytes per iteration
    /// first, then by name.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{testing::{leak_check, Trend}, Owner};
    /// let config = Owner::named("all_doc");
    /// let mut loaded = Vec::new();
    /// let report = leak_check(2, 12, |i| {
    ///     if i == 0 {
    ///         loaded = config.in_scope(|| vec![0u8; 256]);
    ///     }
    /// });
    /// for owner in report.all() {
    ///     println!("{}: {:?}", owner.name, owner.trend);
    /// }
    /// if report.is_active() {
    ///     assert!(report.all().iter().any(|o| o.name == "all_doc" && o.trend == Trend::Flat));
    /// }
    /// ```
    pub fn all(&self) -> &[OwnerTrend] {
        &self.owners
    }

    /// The verdict for one owner, by full name: the first in [`LeakReport::all`]'s order when
    /// two owners shared the name (one retired during the check, the other registered under
    /// its name; see [`leak_check`]).
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::Owner;
    /// let parser = Owner::named("owner_doc");
    /// let report = heapscope::testing::leak_check(2, 12, |_| {
    ///     parser.in_scope(|| drop(vec![0u8; 128]));
    /// });
    /// // Found only when something was measured.
    /// assert_eq!(report.owner("owner_doc").is_some(), report.is_active());
    /// assert!(report.owner("no_such_owner").is_none());
    /// ```
    pub fn owner(&self, name: &str) -> Option<&OwnerTrend> {
        self.owners.iter().find(|o| o.name == name)
    }

    /// Whether anything was measured (tracking compiled in and installed).
    ///
    /// ```
    /// # heapscope::install!();
    /// let report = heapscope::testing::leak_check(1, 6, |_| {});
    /// assert_eq!(report.is_active(), heapscope::is_tracking());
    /// if !report.is_active() {
    ///     assert_eq!(report.to_string(), "heapscope: disabled, leaks not checked\n");
    /// }
    /// ```
    pub fn is_active(&self) -> bool {
        self.active
    }
}

impl fmt::Debug for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakReport")
            .field("warmup", &self.warmup)
            .field("iterations", &self.iterations)
            .field("leaking", &self.leaking())
            .finish()
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leaking = self.leaking();
        if !self.active {
            return writeln!(f, "heapscope: disabled, leaks not checked");
        }
        if leaking.is_empty() {
            return writeln!(f, "heapscope: no leaking owner over {} iterations", self.iterations);
        }
        writeln!(
            f,
            "heapscope: {} leaking owner(s) over {} iterations:",
            leaking.len(),
            self.iterations
        )?;
        for o in leaking {
            writeln!(
                f,
                "  {:<40} {:>10.1} bytes/iteration ({} -> {} bytes)",
                o.name, o.bytes_per_iteration, o.start_live_bytes, o.end_live_bytes
            )?;
        }
        Ok(())
    }
}

/// Runs `body(i)` `warmup` times, then `iterations` times while sampling every owner's live
/// bytes (its descendants' included) after each iteration, and judges each owner's
/// [`Trend`]:
///
/// - **leaking**: the least-squares slope is positive, the owner grew within each third of
///   the measured run (so one late cache fill is not a leak), *and* the lowest live bytes of
///   each third are above those of the third before, the last third's by at least a tenth of
///   what the owner grew from the first sample to the last (so a buffer, queue, batch or
///   compacted history emptied periodically is not a leak, wherever the thirds' edges fall in
///   its period, even when the level it comes back to moves by a few bytes);
/// - **transient peak**: not leaking, and its peak during the measured iterations exceeds
///   every sampled value;
/// - **flat**: neither.
///
/// An owner is judged with its descendants: items kept forever under `history` (each a
/// [`Retained`](crate::Retained) of its own, which grows once) make `history` leaking, and a
/// leaking child makes its ancestors leaking too. Peaks reached during warm-up (a cache that
/// filled, a table that grew) do not count.
///
/// Owners are followed by identity, not by name, and reported under their latest name: an item
/// moved by [`Retained::transfer_to`](crate::Retained::transfer_to) during the check is one
/// owner, and an owner retired whose name is registered again is two, which may then share a
/// name (ordered by their figures; [`LeakReport::owner`] finds the first).
///
/// Every iteration runs under the check's own owner, `leak_check:#n` (one fresh owner per
/// check), so growth the body does not attribute anywhere on the calling thread still shows.
/// Another thread that has entered no owner allocates in `root`, which is not judged: enter
/// an owner there. Other threads' owners are observed too: run leak checks in
/// a test process of their own, or give every test unique owner names. Probes and checks
/// started on other threads are not judged, nor their descendants: each belongs to the test
/// on that thread (libtest runs each test on a thread of its own), and another test's check
/// whose body kept 8 bytes an iteration under its own owner was reported here as leaking
/// (`leak_check:#n`, a name that read as this check's). Use at least 6
/// iterations (each third needs two samples), at least three times the period of a leak that
/// does not happen every iteration, and a warm-up that fills caches (one still filling in the
/// last third is judged leaking). Growth only by a collection's capacity doubling is seldom
/// seen in every third; the README's "In tests" lists what the verdict misses.
///
/// ```
/// # heapscope::install!();
/// use heapscope::Owner;
/// let leak = Owner::named("leak_doc");
/// let mut kept = Vec::new();
/// let report = heapscope::testing::leak_check(2, 12, |i| {
///     kept.push(leak.in_scope(|| vec![i as u8; 256]));
/// });
/// if report.is_active() {
///     assert_eq!(report.leaking()[0].name, "leak_doc");
/// }
/// ```
pub fn leak_check(warmup: usize, iterations: usize, body: impl FnMut(usize)) -> LeakReport {
    run_leak_check(None, warmup, iterations, body)
}

/// [`leak_check`] judging only `owner`, its descendants and the check's own owner: the owners
/// a test gave the code it tests, under one parent of its own, without the rest of the process
/// (an `owner!("history")` shared with every other test running that code, which a test whose
/// own agent was fine saw leaking at 10 029 bytes/iteration beside a test whose agent kept
/// every turn). An owner is judged if it was in the subtree at any sample (an item moved in by
/// [`Retained::transfer_to`](crate::Retained::transfer_to) is, with its samples from before).
///
/// ```
/// # heapscope::install!();
/// use heapscope::{testing::leak_check_under, Owner};
/// // The tested code's owners, under a parent of this test's own.
/// let mine = Owner::named("under_doc");
/// let history = mine.child("history");
/// let shared = Owner::named("under_doc_shared"); // another test's leak, say
/// let (mut kept, mut theirs) = (Vec::with_capacity(16), Vec::with_capacity(16));
/// let report = leak_check_under(mine, 2, 12, |_| {
///     kept.push(history.in_scope(|| vec![0u8; 64]));
///     theirs.push(shared.in_scope(|| vec![0u8; 64]));
/// });
/// if report.is_active() {
///     let names: Vec<&str> = report.leaking().iter().map(|o| o.name.as_str()).collect();
///     assert_eq!(names, ["under_doc", "under_doc/history"]);
///     assert!(report.owner("under_doc_shared").is_none());
/// }
/// ```
pub fn leak_check_under(
    owner: Owner,
    warmup: usize,
    iterations: usize,
    body: impl FnMut(usize),
) -> LeakReport {
    run_leak_check(Some(owner), warmup, iterations, body)
}

/// [`leak_check`], judging every owner (`under: None`) or `under`'s subtree and the check's own.
fn run_leak_check(
    under: Option<Owner>,
    warmup: usize,
    iterations: usize,
    mut body: impl FnMut(usize),
) -> LeakReport {
    let active = warn_inactive();
    // The check's own bookkeeping (samples, names, the report) is heapscope's: charged to the
    // caller's current owner (a probe entered around the check), its series grew with every
    // sample and made that owner "leaking". The body still runs under the check's owner.
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    // Retired however the check ends: a panicking body once left it registered for good.
    let retire_at_end = RetireOnDrop(unique_owner("leak_check", ""));
    let run_owner = retire_at_end.0;
    for i in 0..warmup {
        run_owner.in_scope(|| body(i));
    }
    if !active {
        for i in warmup..warmup + iterations {
            run_owner.in_scope(|| body(i));
        }
        return LeakReport { warmup, iterations, owners: Vec::new(), active };
    }
    // Each owner's samples and its latest name, by which owner it is rather than by name (see
    // `snapshot::OwnerKey`): an item moved by `transfer_to`, or a retired owner renamed when its
    // name was taken, keeps one series; a name retired and registered again is two owners.
    let mut series: HashMap<OwnerKey, (String, Vec<u64>)> = HashMap::new();
    // Other threads' (tests') probes and checks, with their descendants: seen private at any
    // sample, left out (one registered just before a sample is seen with nothing yet, then
    // private). One whose whole life fell between two samples is judged, retired: nothing is
    // charged to a retired owner, so it is never leaking.
    let mut others: HashSet<OwnerKey> = HashSet::new();
    // With `under`: the owners seen in its subtree at any sample, and the check's own.
    let key_of = |o: Owner| OwnerKey { id: o.id(), generation: o.generation() };
    let mut judged: HashSet<OwnerKey> = HashSet::from([key_of(run_owner)]);
    let mut record = |(snap, keys): &(Snapshot, Vec<OwnerKey>), sample: usize| {
        let private = other_threads_private_keys();
        for (index, (o, key)) in snap.owners.iter().zip(keys).enumerate() {
            if !private.is_empty() && in_lineage(snap, keys, index, |k| private.contains(k)) {
                others.insert(*key);
            }
            if let Some(top) = under.map(key_of) {
                if in_lineage(snap, keys, index, |k| *k == top) {
                    judged.insert(*key);
                }
            }
            let (name, s) = series.entry(*key).or_insert_with(|| (o.name.clone(), vec![0; sample]));
            name.clone_from(&o.name);
            s.resize(sample, 0);
            s.push(o.stats.live_bytes);
        }
    };
    // Peaks from here on only: one reached in warm-up (a cache filling, a table growing by
    // reallocation) once made a cache that stays "transient".
    let mut window = crate::phase::PeakWindow::open();
    // Every owner sampled is followed by the window, so that one registered during the check
    // and freed before its end keeps its peak (it once had a peak of 0, below its samples).
    let mut sample = |i: usize| {
        let keyed = Snapshot::capture_keyed();
        window.follow(&keyed.1);
        record(&keyed, i);
    };
    sample(0);
    for i in 0..iterations {
        run_owner.in_scope(|| body(warmup + i));
        sample(i + 1);
    }
    let window = window.close();
    // Owners retired and freed during the check (present at its start or sampled since) keep
    // the peaks they reached before, and are named as they were then.
    let mut peaks = window.owners;
    for (key, gone) in window.departed {
        peaks.entry(key).or_insert(gone.peak_bytes);
        if let Some((name, _)) = series.get_mut(&key) {
            *name = gone.name;
        }
    }
    let mut owners: Vec<OwnerTrend> = series
        .into_iter()
        .filter(|(key, (name, _))| {
            name != crate::registry::ROOT_NAME
                && !name.starts_with("heapscope.")
                && !others.contains(key)
                && (under.is_none() || judged.contains(key))
        })
        .map(|(key, (name, mut ys))| {
            ys.resize(iterations + 1, 0);
            let peak = peaks.get(&key).copied().unwrap_or(0);
            judge(name, &ys, peak)
        })
        .collect();
    // Two owners may share a name (one retired, its name registered again): still one order.
    owners.sort_by(|a, b| {
        b.bytes_per_iteration
            .total_cmp(&a.bytes_per_iteration)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.start_live_bytes.cmp(&b.start_live_bytes))
            .then_with(|| a.end_live_bytes.cmp(&b.end_live_bytes))
            .then_with(|| a.peak_bytes.cmp(&b.peak_bytes))
    });
    LeakReport { warmup, iterations, owners, active }
}

/// Retires its owner when dropped, also while unwinding.
struct RetireOnDrop(Owner);

impl Drop for RetireOnDrop {
    fn drop(&mut self) {
        retire_private(self.0);
    }
}

fn judge(name: String, ys: &[u64], peak_bytes: u64) -> OwnerTrend {
    let n = ys.len();
    let slope = slope(ys);
    // The samples nearest a third and two thirds of the way, so the thirds differ by at most
    // one iteration. Rounded down, the remainder went to the last: over 8 iterations it was
    // samples 4 to 8, and a cache that filled in the first 5 iterations "grew in every third".
    let steps = n.saturating_sub(1);
    let (first, second) = ((2 * steps + 3) / 6, (4 * steps + 3) / 6);
    let grew_in = |a: usize, b: usize| match (ys.get(a), ys.get(b)) {
        (Some(x), Some(y)) => y > x,
        _ => false,
    };
    let every_third_grew =
        n >= 4 && grew_in(0, first) && grew_in(first, second) && grew_in(second, steps);
    // The comparison above reads one sample at each edge of a third, and a series that goes up
    // and down with a period aliases there: a buffer emptied every 9 iterations, sampled over
    // 30 (edges 10 apart, 10 ≡ 1 mod 9), is read at 5, 6, 7 and 8 items, rising, though every
    // third empties it to the same level. A leak is memory that is not given back, so the
    // lowest level an owner comes back to within a third (its floor) rises from third to
    // third as well; a bounded buffer, queue or batch comes back to the same floor in every
    // third that spans one of its periods, whatever the edges land on. On a series that only
    // grows (or holds), each floor is the third's first sample, already compared above, so a
    // steady leak, a leak every other iteration and a cache that fills early keep their verdicts.
    // Iid noise in the samples (another thread allocating under the owner) rises at the edges
    // 1 time in 24; with the floors too, about 1 in 100 over 24 iterations. Still missed: a
    // leak smaller per third than the swings of a buffer in the same owner when the edges land
    // on falling phases (the edge test fails; the floors would have seen it), and a leak that
    // grows less than once per third.
    //
    // The floors must also hold a real share of the growth the edges saw: at least a tenth of
    // what the owner grew from the first sample to the last. A leak keeps what it grows (its
    // floors rise by about two thirds of that), while a period aliased at the edges grows there
    // by up to its whole swing and gives it back: an agent's history compacted every 20 turns
    // (65 KB after compaction, up to 616 KB before the next), checked over 246 iterations, was
    // read at the edges 0, 2, 4 and 6 turns after a compaction (65 416 -> 240 048 bytes) while
    // its floors, only the summary's length changing, went 65 336 -> 65 338 -> 65 418: judged
    // leaking at 59 bytes/iteration though it never grew (and so over 17 other counts of
    // iterations between 241 and 259).
    // Such floors rose by 0.3 % of the edges' growth at most; a steady leak's by 67 %.
    // Each floor with where it is: its first sample at that level.
    let floor = |a: usize, b: usize| {
        let window = ys.get(a..=b)?;
        let (at, &low) = window.iter().enumerate().min_by_key(|&(_, y)| *y)?;
        Some((a + at, low))
    };
    let edges_grew_by =
        ys.last().copied().unwrap_or(0).saturating_sub(ys.first().copied().unwrap_or(0));
    // What the owner kept per iteration, from the first third's floor to the last's.
    let floors_rise = match (floor(0, first), floor(first, second), floor(second, steps)) {
        (Some((at_x, x)), Some((_, y)), Some((at_z, z)))
            if x < y && y < z && u128::from(z - x) * 10 >= u128::from(edges_grew_by) =>
        {
            // `at_z > at_x`: the windows follow each other, and `z != x`.
            Some((z - x) as f64 / at_z.saturating_sub(at_x).max(1) as f64)
        }
        _ => None,
    };
    let max_sampled = ys.iter().copied().max().unwrap_or(0);
    let (trend, bytes_per_iteration) = match floors_rise {
        Some(kept) if slope > 0.0 && every_third_grew => (Trend::Leaking, kept),
        _ if peak_bytes > max_sampled => (Trend::TransientPeak, slope),
        _ => (Trend::Flat, slope),
    };
    OwnerTrend {
        name,
        trend,
        bytes_per_iteration,
        start_live_bytes: ys.first().copied().unwrap_or(0),
        end_live_bytes: ys.last().copied().unwrap_or(0),
        peak_bytes,
    }
}

/// Ordinary least squares slope of `ys` against `0, 1, 2, …`.
fn slope(ys: &[u64]) -> f64 {
    let n = ys.len() as f64;
    if ys.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = ys.iter().map(|&y| y as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, &y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y as f64 - mean_y);
        den += dx * dx;
    }
    num / den
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line() {
        assert!((slope(&[0, 10, 20, 30]) - 10.0).abs() < 1e-9);
        assert_eq!(slope(&[5, 5, 5]), 0.0);
    }

    #[test]
    fn judge_tells_leak_cache_and_peak_apart() {
        let leak: Vec<u64> = (0..13).map(|i| i * 100).collect();
        assert_eq!(judge("l".into(), &leak, 1200).trend, Trend::Leaking);
        let mut cache = vec![0u64; 13];
        for y in cache.iter_mut().skip(3) {
            *y = 5000;
        }
        assert_eq!(judge("c".into(), &cache, 5000).trend, Trend::Flat);
        let flat = vec![64u64; 13];
        assert_eq!(judge("t".into(), &flat, 1 << 20).trend, Trend::TransientPeak);
        // Doubling growth (a leaking Vec) still grows in every third.
        let doubling: Vec<u64> = (0..13u64).map(|i| (i * 100).next_power_of_two()).collect();
        assert_eq!(judge("d".into(), &doubling, 2048).trend, Trend::Leaking);
        // A buffer emptied every 7 samples, over 24 iterations (thirds of 8): the edges 0, 8,
        // 16, 24 read 0, 1, 2, 3 items, but every third comes back to 0.
        let sawtooth: Vec<u64> = (0..25u64).map(|i| 100 * (i % 7)).collect();
        assert_eq!(judge("s".into(), &sawtooth, 700).trend, Trend::TransientPeak);
        // The same buffer on top of a leak of 10 per sample: the floors rise by 80 a third.
        let leak_and_buffer: Vec<u64> = (0..25u64).map(|i| 10 * i + 100 * (i % 7)).collect();
        assert_eq!(judge("lb".into(), &leak_and_buffer, 1000).trend, Trend::Leaking);
    }

    /// An agent's history compacted every 20 turns (29 000 bytes a turn on a 65 336-byte
    /// floor), checked over 246 iterations: the edges 0, 82, 164, 246 fall 0, 2, 4 and 6 turns
    /// after a compaction, so they rise by 58 000 bytes a third, and the floors, which only
    /// the summary's length moves, rise by 2 and 80 bytes. It was judged leaking at 59
    /// bytes/iteration; a leak of 300 bytes a turn on top of it still is.
    /// A leak beside a periodic buffer in the same owner is reported at what it keeps: 20
    /// bytes a turn in a history compacted every 20 turns (29 000 bytes a turn), over 60
    /// iterations, whose least-squares slope is 2 642.4 bytes/iteration.
    #[test]
    fn a_leak_beside_a_periodic_buffer_is_reported_at_what_it_keeps() {
        let history: Vec<u64> = (0..61u64).map(|k| 65_336 + 20 * k + (k % 20) * 29_000).collect();
        let judged = judge("h".into(), &history, history.iter().max().unwrap() + 1);
        assert_eq!(judged.trend, Trend::Leaking, "{judged:?}");
        assert_eq!(judged.bytes_per_iteration, 20.0, "{judged:?}");
        assert!(slope(&history) > 1000.0, "{}", slope(&history));
        // A steady leak: the floors are the thirds' first samples, so the same as the slope.
        let steady: Vec<u64> = (0..25u64).map(|k| 100 + 64 * k).collect();
        assert_eq!(judge("s".into(), &steady, 0).bytes_per_iteration, 64.0);
    }

    #[test]
    fn a_compacted_history_whose_floor_moves_by_a_few_bytes_is_not_leaking() {
        let floor = |k: u64| 65_336 + [0, 2, 82][usize::from(k > 82) + usize::from(k > 164)];
        let history: Vec<u64> = (0..247u64).map(|k| floor(k) + (k % 20) * 29_000).collect();
        let peak = history.iter().max().unwrap() + 1;
        let judged = judge("h".into(), &history, peak);
        assert_eq!(judged.trend, Trend::TransientPeak, "{judged:?}");
        let leaking: Vec<u64> = history.iter().zip(0..).map(|(y, k)| y + 300 * k).collect();
        let peak = leaking.iter().max().unwrap() + 1;
        assert_eq!(judge("hl".into(), &leaking, peak).trend, Trend::Leaking);
    }
}
