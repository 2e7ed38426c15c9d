//! `PressureMonitor`: a background thread that watches memory pressure and, on `high` or
//! `critical`, writes a diagnostics file in two phases:
//!
//! 1. **immediately, without allocating**: a minimal JSON (level, dump number, the usage
//!    compared with the limit and what it is, the process's RSS, jemalloc's allocated and
//!    resident bytes, the owners holding most, `collection_complete: false`)
//!    formatted into a buffer allocated when the monitor started and written with plain
//!    system calls, so it lands even when the heap is exhausted;
//! 2. the full report, replacing that file atomically (`collection_complete: true`), keeping
//!    phase 1's figures as the ones taken at the moment of pressure;
//!
//! then the program's `on_pressure` callbacks run and a `tracing` event is emitted (feature
//! `tracing`). The `on_pressure_check` callbacks run at every check that finds `high` or
//! `critical`, after the dump if there is one, whether or not the cap or cooldown allowed one.
//! Dumps per session are capped (default 3) and spaced by a cooldown (default 30 s), which a
//! rise from `high` to `critical` does not wait for; a dump's slot is reserved before anything is written, so concurrent triggers cannot exceed the cap,
//! and a failed write still uses its slot.

use crate::bundle::CaptureOptions;
use crate::error::{Error, Result};
use crate::pressure::{PressureLevel, Thresholds};
use crate::report::{Report, ReportOptions};
use parking_lot::{Condvar, Mutex};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Callback run after a dump, with the level and the full report.
type Callback = Box<dyn Fn(PressureLevel, &Report) + Send + Sync>;
/// Callback run at every check that finds `high` or `critical`, dump or not.
type CheckCallback = Box<dyn Fn(PressureLevel) + Send + Sync>;
/// A monotonic clock, injectable for tests.
type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// The phase-1 buffer's size: enough for the figures and ten owner names of 128 bytes.
const PHASE1_BYTES: usize = 8192;
/// Bytes kept free while phase 1 lists owners, for what closes the document.
#[cfg(feature = "enabled")]
const CLOSING_ROOM: usize = 16;
/// How many owners phase 1 lists.
#[cfg(feature = "enabled")]
const PHASE1_OWNERS: usize = 8;

/// Builds a [`PressureMonitor`].
///
/// ```no_run
/// use std::time::Duration;
/// let monitor = heapscope::PressureMonitor::builder()
///     .directory("/var/tmp/agent")
///     .interval(Duration::from_secs(1))
///     .on_pressure(|level, report| eprintln!("memory pressure {level}: {:?}", report.suggestions))
///     .start()
///     .unwrap();
/// # drop(monitor);
/// ```
pub struct PressureMonitorBuilder {
    directory: PathBuf,
    interval: Duration,
    max_dumps: u32,
    cooldown: Duration,
    report: ReportOptions,
    callbacks: Vec<Callback>,
    check_callbacks: Vec<CheckCallback>,
    clock: Option<Clock>,
    background: bool,
    bundle_on_critical: Option<CaptureOptions>,
    limit_refresh: Duration,
}

impl std::fmt::Debug for PressureMonitorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PressureMonitorBuilder")
            .field("directory", &self.directory)
            .field("interval", &self.interval)
            .field("max_dumps", &self.max_dumps)
            .field("cooldown", &self.cooldown)
            .field("bundle_on_critical", &self.bundle_on_critical)
            .field("limit_refresh", &self.limit_refresh)
            .finish_non_exhaustive()
    }
}

impl PressureMonitorBuilder {
    /// Dumps go to `<directory>/diagnostics/memory/` (default: the working directory).
    pub fn directory(mut self, base: impl Into<PathBuf>) -> Self {
        self.directory = base.into();
        self
    }

    /// How often to check (default 1 s, at least 10 ms). One too long to add to an `Instant`
    /// (`Duration::MAX`) checks once, at start.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Dumps per session (default 3).
    pub fn max_dumps(mut self, n: u32) -> Self {
        self.max_dumps = n;
        self
    }

    /// The least time between two dumps (default 30 s), except that a rise from `high` to
    /// `critical` is dumped at once.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Report options: thresholds, a budget, roots (default [`ReportOptions::default`]).
    pub fn report(mut self, options: ReportOptions) -> Self {
        self.report = options;
        self
    }

    /// Runs `f` after each dump: on the monitor's thread, where what it allocates is root's,
    /// or in a manual [`check`](PressureMonitor::check), as the owner current there. If it
    /// panics on the monitor's thread, the panic is reported once on standard error and the
    /// monitor keeps running; in a manual check it is passed on to the caller. Either way the
    /// other callbacks still run for that dump.
    ///
    /// Only after a dump: at most [`max_dumps`](Self::max_dumps) times a session and once a
    /// [`cooldown`](Self::cooldown) (with the defaults, a callback ran once in ten checks
    /// under `critical` a second apart, and never again after the third dump). For relief
    /// that must go on while the pressure lasts (compacting the history, trimming a cache),
    /// use [`on_pressure_check`](Self::on_pressure_check).
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{PressureMonitor, ReportOptions};
    /// let monitor = PressureMonitor::builder()
    ///     .directory(std::env::temp_dir().join(format!("heapscope-doc-onp-{}", std::process::id())))
    ///     .report(ReportOptions::default().budget_bytes(1 << 30))
    ///     .on_pressure(|level, report| eprintln!("{level}: {:?}", report.suggestions))
    ///     .manual()
    ///     .start()?;
    /// monitor.check_used((1 << 30) / 100 * 99); // critical: a dump, then the callback
    /// # std::fs::remove_dir_all(monitor.directory().parent().unwrap().parent().unwrap()).ok();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn on_pressure(
        mut self,
        f: impl Fn(PressureLevel, &Report) + Send + Sync + 'static,
    ) -> Self {
        self.callbacks.push(Box::new(f));
        self
    }

    /// Runs `f` at every check that finds `high` or `critical`, whether a dump is written or
    /// not (the session's cap reached, cooling down), after the dump and its
    /// [`on_pressure`](Self::on_pressure) callbacks when there is one. It gets the level
    /// only: it runs every interval while pressure lasts, and a report costs milliseconds
    /// (call [`report`](crate::report) in it if you need one). Charged, and its panics
    /// handled, as `on_pressure`'s are.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{PressureLevel, PressureMonitor, ReportOptions};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let compactions = Arc::new(AtomicUsize::new(0));
    /// let counter = compactions.clone();
    /// let monitor = PressureMonitor::builder()
    ///     .directory(std::env::temp_dir().join(format!("heapscope-doc-relief-{}", std::process::id())))
    ///     .report(ReportOptions::default().budget_bytes(1 << 30))
    ///     .on_pressure_check(move |level| {
    ///         assert!(level >= PressureLevel::High);
    ///         counter.fetch_add(1, Ordering::Relaxed); // compact the history here
    ///     })
    ///     .manual()
    ///     .start()?;
    /// for _ in 0..5 {
    ///     monitor.check_used((1 << 30) / 100 * 99); // one dump, then cooling down
    /// }
    /// monitor.check_used(1 << 20); // normal: not called
    /// assert_eq!(compactions.load(Ordering::Relaxed), 5);
    /// # std::fs::remove_dir_all(monitor.directory().parent().unwrap().parent().unwrap()).ok();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn on_pressure_check(mut self, f: impl Fn(PressureLevel) + Send + Sync + 'static) -> Self {
        self.check_callbacks.push(Box::new(f));
        self
    }

    /// On `critical`, also write a diagnostics bundle ([`capture`](crate::capture): report and
    /// heap profile where one can be taken) with `options`, after the dump and before the
    /// callbacks. Off by default. A bundle takes a slot of the session's cap like a dump; when
    /// only the dump's slot is left, the dump is written without it. Consider
    /// [`CaptureOptions::pprof`]`(false)` here: the pprof conversion briefly needs tens of MiB
    /// at the moment memory is scarcest.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{CaptureOptions, DumpOutcome, PressureMonitor, ReportOptions};
    /// let dir = std::env::temp_dir().join(format!("heapscope-doc-{}", std::process::id()));
    /// let monitor = PressureMonitor::builder()
    ///     .directory(&dir)
    ///     .report(ReportOptions::default().budget_bytes(1 << 30))
    ///     .bundle_on_critical(CaptureOptions::new(&dir))
    ///     .manual()
    ///     .start()?;
    /// // 99 % of the budget is critical: a dump, and a bundle beside it.
    /// let outcome = monitor.check_used((1 << 30) / 100 * 99);
    /// assert!(matches!(outcome, Some(DumpOutcome::Written { bundle: Some(Ok(_)), .. })));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn bundle_on_critical(mut self, options: CaptureOptions) -> Self {
        self.bundle_on_critical = Some(options);
        self
    }

    /// How often a check reads the memory limits again (default 10 s; `Duration::MAX` reads
    /// them once, at start). A container's limit can change while the program runs
    /// (Kubernetes resizes a running pod's `memory.max` in place, an operator runs
    /// `systemctl set-property`): a monitor that kept the limit it started with compared
    /// usage with a limit that no longer held, and never dumped before an OOM kill under a
    /// lowered one. A change is said once on standard error. Measured on the
    /// [`clock`](Self::clock).
    ///
    /// ```
    /// # heapscope::install!();
    /// use std::time::Duration;
    /// let monitor = heapscope::PressureMonitor::builder()
    ///     .directory(std::env::temp_dir().join(format!("heapscope-doc-refresh-{}", std::process::id())))
    ///     .limit_refresh(Duration::from_secs(60))
    ///     .manual()
    ///     .start()
    ///     .unwrap();
    /// # std::fs::remove_dir_all(monitor.directory().parent().unwrap().parent().unwrap()).ok();
    /// ```
    pub fn limit_refresh(mut self, every: Duration) -> Self {
        self.limit_refresh = every;
        self
    }

    /// A monotonic clock for the cooldown (tests inject one; default: time since start).
    pub fn clock(mut self, clock: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Starts no thread: the program drives checks with [`PressureMonitor::check`] or
    /// [`PressureMonitor::check_used`].
    pub fn manual(mut self) -> Self {
        self.background = false;
        self
    }

    /// Creates the dump directory (0700) and starts the thread.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] for an interval under 10 ms or `max_dumps` of 0;
    /// [`Error::UnsafePath`]/[`Error::Io`] for the directory (`diagnostics` or `memory` that
    /// is a link, another user's, or writable by others, as for a bundle).
    pub fn start(self) -> Result<PressureMonitor> {
        if self.interval < crate::timeline::MIN_INTERVAL {
            return Err(Error::OutOfBounds {
                what: "monitor interval",
                value: format!("{:?}", self.interval),
                allowed: "at least 10 ms",
            });
        }
        if self.max_dumps == 0 {
            return Err(Error::OutOfBounds {
                what: "max_dumps",
                value: "0".into(),
                allowed: "1 or more",
            });
        }
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        // Each directory added below the base is held to the full rules, as a bundle's are:
        // checked only at `memory`, a link at `diagnostics` was followed wherever it led.
        let diagnostics = self.directory.join("diagnostics");
        crate::artifacts::private_dir(&diagnostics)?;
        let dir = diagnostics.join("memory");
        crate::artifacts::private_dir(&dir)?;
        let mut warnings = Vec::new();
        let limit = EffectiveLimit::read(&self.report, &mut warnings);
        if limit.bytes.is_none() {
            // Without a limit every check is `unknown` and no dump is ever written: said once,
            // at start, rather than by a monitor that silently never fires.
            let why = if warnings.is_empty() {
                String::new()
            } else {
                format!(" ({})", warnings.join("; "))
            };
            let when = if self.limit_refresh == Duration::MAX {
                "it will never dump".to_owned()
            } else {
                format!(
                    "it will not dump unless one appears (it reads the limits again every {})",
                    humantime::format_duration(self.limit_refresh)
                )
            };
            let _ = writeln!(
                std::io::stderr(),
                "heapscope: PressureMonitor found no memory limit{why}; {when}. Set \
                 ReportOptions::budget_bytes."
            );
        }
        let started = Instant::now();
        let clock = self.clock.unwrap_or_else(|| Arc::new(move || started.elapsed()));
        let read_at = clock();
        let shared = Arc::new(Shared {
            dir: crate::artifacts::absolute(&dir),
            limit: Mutex::new((limit, read_at)),
            limit_refresh: self.limit_refresh,
            thresholds: self.report.thresholds_value(),
            report: self.report,
            max_dumps: self.max_dumps,
            cooldown: self.cooldown,
            clock,
            callbacks: self.callbacks,
            check_callbacks: self.check_callbacks,
            bundle_on_critical: self.bundle_on_critical,
            session: Mutex::new(Session::default()),
            phase1: Mutex::new(vec![0u8; PHASE1_BYTES]),
            run: run_stamp(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        // Warm the registry so phase 1 never initialises it.
        let _ = crate::registry::with(|r| r.generation(0));
        let thread = if self.background {
            let worker = shared.clone();
            let interval = self.interval;
            Some(
                std::thread::Builder::new()
                    .name("heapscope-monitor".into())
                    .spawn(move || {
                        crate::threads::block_async_signals(None);
                        run(&worker, interval)
                    })
                    .map_err(|e| Error::Io {
                        path: PathBuf::new(),
                        action: "start the monitor thread",
                        kind: e.kind(),
                        message: e.to_string(),
                    })?,
            )
        } else {
            None
        };
        Ok(PressureMonitor { shared, thread, pid: std::process::id() })
    }
}

#[derive(Default)]
struct Session {
    dumps: u32,
    last_dump: Option<Duration>,
    /// The level of the last dump: a higher one does not wait for the cooldown.
    last_level: Option<PressureLevel>,
    sequence: u32,
}

/// The limit a monitor compares usage with, where it comes from, and which usage it binds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EffectiveLimit {
    bytes: Option<u64>,
    /// Empty when there is none.
    source: String,
    /// Where each check reads the usage, as the report's pressure does: a cgroup limit binds
    /// its cgroup's usage (this process, its children such as tools it runs, and siblings),
    /// not this process's RSS alone.
    usage: UsageFile,
    /// What `usage` is, as the report's `used_source`.
    usage_source: String,
}

/// A usage to read at every check, with its path made a C string once, so that reading it
/// allocates nothing (the monitor reads it every interval, under pressure too).
#[derive(Clone, Debug, PartialEq, Eq)]
enum UsageFile {
    ProcessRss,
    /// A cgroup's `memory.current` (v1 `memory.usage_in_bytes`), less the value of `key` in
    /// its `memory.stat` (`stat`) when the limit was read with one.
    Cgroup {
        usage: std::ffi::CString,
        stat: Option<std::ffi::CString>,
        key: &'static str,
    },
    /// `MemTotal - MemAvailable` of a `meminfo` file.
    Meminfo(std::ffi::CString),
}

impl EffectiveLimit {
    fn read(options: &ReportOptions, warnings: &mut Vec<String>) -> Self {
        use crate::report::UsageSource;
        let limits = crate::report::read_limits(options, warnings);
        let c_path = |path: &Path| std::ffi::CString::new(path.as_os_str().as_encoded_bytes());
        let (usage, usage_source) = match crate::report::usage_source(options, &limits) {
            (UsageSource::Cgroup { usage, stat, key }, what) => {
                match (c_path(&usage), stat.as_deref().map(c_path).transpose()) {
                    (Ok(usage), Ok(stat)) => (UsageFile::Cgroup { usage, stat, key }, what),
                    _ => (UsageFile::ProcessRss, "process RSS".to_owned()),
                }
            }
            (UsageSource::Meminfo(path), what) => match c_path(&path) {
                Ok(path) => (UsageFile::Meminfo(path), what),
                Err(_) => (UsageFile::ProcessRss, "process RSS".to_owned()),
            },
            (UsageSource::ProcessRss, what) => (UsageFile::ProcessRss, what),
        };
        EffectiveLimit {
            bytes: limits.effective_bytes,
            source: limits.effective_source.unwrap_or_default(),
            usage,
            usage_source,
        }
    }

    /// The usage this limit binds, read now without allocating; `None` when unreadable.
    fn read_usage(&self) -> Option<u64> {
        match &self.usage {
            UsageFile::ProcessRss => rss_bytes(),
            UsageFile::Cgroup { usage, stat, key } => {
                let mut buf = [0u8; 64];
                let usage: u64 = read_small_file(usage, &mut buf)?.trim().parse().ok()?;
                // The reclaimable page cache, as the report takes it off. Unreadable now, the
                // usage is taken whole: pressure overstated rather than missed. The buffer
                // holds a whole memory.stat (907 bytes of v1 on this machine, where the totals
                // come last; v2's is about 1.5 KiB).
                let mut stat_buf = [0u8; 8192];
                let inactive = stat
                    .as_deref()
                    .and_then(|stat| read_small_file(stat, &mut stat_buf))
                    .and_then(|text| crate::limits::stat_value(text, key))
                    .unwrap_or(0);
                Some(usage.saturating_sub(inactive))
            }
            UsageFile::Meminfo(path) => {
                // MemTotal and MemAvailable are among the first lines; a longer file is cut.
                let mut buf = [0u8; 1024];
                let info = crate::procfs::parse_meminfo(read_small_file(path, &mut buf)?);
                info.mem_total_bytes?.checked_sub(info.mem_available_bytes?)
            }
        }
    }
}

struct Shared {
    dir: PathBuf,
    /// The effective limit and when (on `clock`) it was read.
    limit: Mutex<(EffectiveLimit, Duration)>,
    limit_refresh: Duration,
    thresholds: Thresholds,
    report: ReportOptions,
    max_dumps: u32,
    cooldown: Duration,
    clock: Clock,
    callbacks: Vec<Callback>,
    check_callbacks: Vec<CheckCallback>,
    bundle_on_critical: Option<CaptureOptions>,
    session: Mutex<Session>,
    phase1: Mutex<Vec<u8>>,
    /// When the monitor started (Unix ms; see [`run_stamp`]), in every dump's name: with the
    /// pid alone, a process that restarts with the same pid (pid 1 in a container) found its
    /// previous run's dumps, or a temporary file a crash left, under its names, and lost every
    /// dump.
    run: u64,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// The last start stamp given to a monitor in this process.
static LAST_RUN: AtomicU64 = AtomicU64::new(0);

/// The monitor's start time in Unix ms, or the millisecond after the last monitor's of this
/// process if that is later: two monitors started in the same millisecond got one stamp, so
/// their dumps had the same names, and the second one's phase 2 replaced the first one's dump.
fn run_stamp() -> u64 {
    let now = crate::clock::unix_ms();
    let next = |last: u64| now.max(last.saturating_add(1));
    // The closure always returns `Some`: `Err` cannot happen.
    let last = LAST_RUN
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(next(last)))
        .unwrap_or_else(|last| last);
    next(last)
}

/// A running pressure monitor; stops when dropped. Its thread does not follow a `fork`: in a
/// child, dropping it leaves the thread alone and returns at once. Start a new monitor there
/// rather than checking with the parent's: a check the parent's thread was in the middle of at
/// the fork holds locks that never open in the child, where `check` would then wait for good.
pub struct PressureMonitor {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The process the thread runs in.
    pid: u32,
}

impl std::fmt::Debug for PressureMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PressureMonitor").field("dir", &self.shared.dir).finish_non_exhaustive()
    }
}

/// What one triggered check did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DumpOutcome {
    /// A dump was written (phase 2 may have failed: see `complete`).
    Written {
        /// The dump file.
        path: PathBuf,
        /// The dump's number since the monitor started (1-based; it goes on counting across
        /// [`PressureMonitor::reset_session`], so file names never repeat).
        number: u32,
        /// Whether phase 2 (the full report) replaced the file.
        complete: bool,
        /// The diagnostics bundle written on `critical` (see
        /// [`PressureMonitorBuilder::bundle_on_critical`]): its directory, or why it failed.
        /// `None` when none was asked for, the level was `high`, or the cap left no slot.
        bundle: Option<std::result::Result<PathBuf, String>>,
    },
    /// The slot was used but phase 1 could not be written.
    Failed {
        /// The dump's number since the monitor started, as in `Written`.
        number: u32,
        /// Why.
        error: String,
    },
    /// No dump: the session's cap is reached.
    CapReached,
    /// No dump: the last one, at the same level or a higher one, was less than the cooldown
    /// ago.
    CoolingDown,
}

impl PressureMonitor {
    /// A builder with the defaults (working directory, 1 s, 3 dumps, 30 s cooldown).
    pub fn builder() -> PressureMonitorBuilder {
        PressureMonitorBuilder {
            directory: PathBuf::from("."),
            interval: Duration::from_secs(1),
            max_dumps: 3,
            cooldown: Duration::from_secs(30),
            report: ReportOptions::default(),
            callbacks: Vec::new(),
            check_callbacks: Vec::new(),
            clock: None,
            background: true,
            bundle_on_critical: None,
            limit_refresh: Duration::from_secs(10),
        }
    }

    /// Checks the usage the effective limit binds now, as the report's
    /// [`Pressure`](crate::report::Pressure) does (a cgroup limit: that cgroup's
    /// `memory.current` less its reclaimable page cache; `MemTotal`: `MemTotal -
    /// MemAvailable`; a budget: the process's RSS);
    /// dumps on `high` or `critical`, then runs the
    /// [`on_pressure_check`](PressureMonitorBuilder::on_pressure_check) callbacks. `None` when
    /// pressure is below `high`, no limit is known, or the usage could not be read.
    pub fn check(&self) -> Option<DumpOutcome> {
        check(&self.shared, None)
    }

    /// Like [`check`](Self::check) with a given usage (tests, or programs that measure usage
    /// their own way).
    pub fn check_used(&self, used_bytes: u64) -> Option<DumpOutcome> {
        check(&self.shared, Some(used_bytes))
    }

    /// Starts a new session: the dump count and cooldown start over.
    pub fn reset_session(&self) {
        let mut session = self.shared.session.lock();
        session.dumps = 0;
        session.last_dump = None;
        session.last_level = None;
    }

    /// A report judged as this monitor judges: with the [`ReportOptions`] it was built with
    /// (its budget, thresholds and roots), where [`report()`](crate::report) uses the
    /// defaults. With a budget of 4 MiB set on the monitor, `heapscope::report()` still
    /// measures pressure against the cgroup's limit or `MemTotal`; this one against 4 MiB.
    ///
    /// ```
    /// # heapscope::install!();
    /// let monitor = heapscope::PressureMonitor::builder()
    ///     .directory(std::env::temp_dir().join(format!("heapscope-doc-report-{}", std::process::id())))
    ///     .manual()
    ///     .report(heapscope::ReportOptions::default().budget_bytes(4 << 20))
    ///     .start()
    ///     .unwrap();
    /// let report = monitor.report();
    /// assert_eq!(report.limits.effective_bytes, Some(4 << 20));
    /// # std::fs::remove_dir_all(monitor.directory().parent().unwrap().parent().unwrap()).ok();
    /// ```
    pub fn report(&self) -> crate::Report {
        crate::Report::capture_with(&self.shared.report)
    }

    /// The report options this monitor was built with (see [`report`](Self::report)).
    ///
    /// ```
    /// # heapscope::install!();
    /// let options = heapscope::ReportOptions::default().budget_bytes(4 << 20);
    /// let monitor = heapscope::PressureMonitor::builder()
    ///     .directory(std::env::temp_dir().join(format!("heapscope-doc-options-{}", std::process::id())))
    ///     .manual()
    ///     .report(options)
    ///     .start()
    ///     .unwrap();
    /// let capture = heapscope::CaptureOptions::new(monitor.directory())
    ///     .report(monitor.report_options().clone());
    /// # let _ = capture;
    /// # std::fs::remove_dir_all(monitor.directory().parent().unwrap().parent().unwrap()).ok();
    /// ```
    pub fn report_options(&self) -> &ReportOptions {
        &self.shared.report
    }

    /// The directory dumps go to.
    pub fn directory(&self) -> &Path {
        &self.shared.dir
    }

    /// The effective limit the monitor compares usage with, as last read (at start, then every
    /// [`limit_refresh`](PressureMonitorBuilder::limit_refresh) at a check): `None` when none
    /// was found, and then the monitor does not dump (`start` says so on standard error).
    ///
    /// ```
    /// # heapscope::install!();
    /// let monitor = heapscope::PressureMonitor::builder()
    ///     .directory(std::env::temp_dir().join(format!("heapscope-doc-limit-{}", std::process::id())))
    ///     .manual()
    ///     .report(heapscope::ReportOptions::default().budget_bytes(1 << 30))
    ///     .start()
    ///     .unwrap();
    /// assert!(monitor.limit_bytes().is_some_and(|limit| limit <= 1 << 30));
    /// # std::fs::remove_dir_all(monitor.directory().parent().unwrap().parent().unwrap()).ok();
    /// ```
    pub fn limit_bytes(&self) -> Option<u64> {
        self.shared.limit.lock().0.bytes
    }

    /// Which limit [`limit_bytes`](Self::limit_bytes) is (`"configured budget"`, a cgroup
    /// limit with its file, `"MemTotal"`), empty when none.
    ///
    /// ```
    /// # heapscope::install!();
    /// let monitor = heapscope::PressureMonitor::builder()
    ///     .directory(std::env::temp_dir().join(format!("heapscope-doc-source-{}", std::process::id())))
    ///     .manual()
    ///     .start()
    ///     .unwrap();
    /// println!("pressure is measured against {}", monitor.limit_source());
    /// # std::fs::remove_dir_all(monitor.directory().parent().unwrap().parent().unwrap()).ok();
    /// ```
    pub fn limit_source(&self) -> String {
        self.shared.limit.lock().0.source.clone()
    }
}

impl Drop for PressureMonitor {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        if std::process::id() != self.pid {
            // A forked child: the thread exists only in the parent (whose copy of the stop
            // lock it may have held at the fork). Joining it panicked in the child.
            std::mem::forget(thread);
            return;
        }
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        let _ = thread.join();
    }
}

fn run(shared: &Shared, interval: Duration) {
    // Root is current on this thread, not heapscope.internal: the callbacks run here under the
    // owner current outside the dump (see `dump`), which is root for this thread. Whatever
    // heapscope allocates itself (the report, the dump file) `dump` charges to internal.
    let mut panicked = false;
    loop {
        // A callback that panics must not end the thread: it did, silently, and no later
        // pressure was ever dumped.
        let checked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(shared, None)));
        if checked.is_err() && !panicked {
            panicked = true;
            // Not `eprintln!`, which panics when stderr is gone (a closed pipe).
            let _ = writeln!(
                std::io::stderr(),
                "heapscope: a pressure check panicked (in a callback?); the monitor keeps running"
            );
        }
        let mut stop = shared.stop.lock();
        // An interval past what `Instant` can hold (`Duration::MAX`) waits for the stop: the
        // addition overflowed and panicked.
        let deadline = Instant::now().checked_add(interval);
        while !*stop {
            match deadline {
                Some(deadline) => {
                    if shared.wake.wait_until(&mut stop, deadline).timed_out() {
                        break;
                    }
                }
                None => shared.wake.wait(&mut stop),
            }
        }
        if *stop {
            return;
        }
    }
}

/// The effective limit, read again first when `limit_refresh` has passed since the last read
/// (what it allocates is heapscope's own). Never under the phase-1 lock: phase 1 allocates
/// nothing, this does.
fn current_limit(shared: &Shared) -> EffectiveLimit {
    let now = (shared.clock)();
    let mut limit = shared.limit.lock();
    if now.saturating_sub(limit.1) < shared.limit_refresh {
        return limit.0.clone();
    }
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let fresh = EffectiveLimit::read(&shared.report, &mut Vec::new());
    if fresh != limit.0 {
        let describe = |l: &EffectiveLimit| match l.bytes {
            Some(bytes) => format!("{} ({})", crate::units::format_bytes(bytes), l.source),
            None => "none".to_owned(),
        };
        // Not `eprintln!`, which panics when stderr is gone (a closed pipe).
        let _ = writeln!(
            std::io::stderr(),
            "heapscope: PressureMonitor's memory limit changed from {} to {}",
            describe(&limit.0),
            describe(&fresh)
        );
    }
    *limit = (fresh, now);
    limit.0.clone()
}

/// A check of `given` usage (from [`PressureMonitor::check_used`]), or of the usage the limit
/// binds, read now.
fn check(shared: &Shared, given: Option<u64>) -> Option<DumpOutcome> {
    let limit = current_limit(shared);
    let used = match given {
        Some(used) => Usage { bytes: used, source: "given to check_used" },
        None => Usage { bytes: limit.read_usage()?, source: &limit.usage_source },
    };
    let level = shared.thresholds.classify(used.bytes, limit.bytes);
    if !matches!(level, PressureLevel::High | PressureLevel::Critical) {
        return None;
    }
    // The dump (and its callbacks) first, so it shows the moment before any relief; the
    // check callbacks run whatever became of it, a panic in either passed on after them.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reserve_and_dump(shared, &limit, level, used)
    }));
    let (outcome, first_panic) = match outcome {
        Ok(outcome) => (Some(outcome), None),
        Err(payload) => (None, Some(payload)),
    };
    let panicked = call_each(&shared.check_callbacks, |callback| callback(level));
    if let Some(payload) = first_panic.or(panicked) {
        std::panic::resume_unwind(payload);
    }
    outcome
}

/// Reserves a dump's slot (or says why none) and writes the dump.
fn reserve_and_dump(
    shared: &Shared,
    limit: &EffectiveLimit,
    level: PressureLevel,
    used: Usage<'_>,
) -> DumpOutcome {
    // Reserve the slot before writing anything: concurrent triggers cannot pass the cap.
    let (number, with_bundle) = {
        let mut session = shared.session.lock();
        if session.dumps >= shared.max_dumps {
            return DumpOutcome::CapReached;
        }
        let now = (shared.clock)();
        // The cooldown spaces dumps of one level. A rise from `high` to `critical` is dumped at
        // once: it is the moment before the limit, which a dump taken at `high` seconds
        // earlier does not show (and `bundle_on_critical`'s bundle was skipped for it).
        let escalated = session.last_level.is_some_and(|last| level > last);
        if !escalated
            && session.last_dump.is_some_and(|last| now.saturating_sub(last) < shared.cooldown)
        {
            return DumpOutcome::CoolingDown;
        }
        session.dumps += 1;
        // A bundle on `critical` takes a slot of its own, reserved with the dump's.
        let with_bundle = level == PressureLevel::Critical
            && shared.bundle_on_critical.is_some()
            && session.dumps < shared.max_dumps;
        if with_bundle {
            session.dumps += 1;
        }
        session.last_dump = Some(now);
        session.last_level = Some(level);
        session.sequence += 1;
        (session.sequence, with_bundle)
    };
    dump(shared, limit, level, used, number, with_bundle)
}

/// The usage a check compared with the limit, and what it is.
struct Usage<'a> {
    bytes: u64,
    source: &'a str,
}

fn dump(
    shared: &Shared,
    limit: &EffectiveLimit,
    level: PressureLevel,
    used: Usage<'_>,
    number: u32,
    with_bundle: bool,
) -> DumpOutcome {
    let phase1 = {
        let mut buffer = shared.phase1.lock();
        phase1_write(&mut buffer, &shared.dir, level, &used, limit.bytes, shared.run, number)
    };
    // The callbacks are the program's code, charged to the owner current here (the caller's
    // for a manual check, root on the monitor's thread): run under heapscope.internal, a
    // compaction's new history was charged to heapscope itself.
    let caller = crate::Owner::current();
    // Phase 2 is attempted whatever became of phase 1: the full report may still be written.
    let internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let name = dump_name(shared.run, number);
    let path = shared.dir.join(&name);
    // Phase 2: the full report, keeping phase 1's figures as the moment of pressure.
    let phase1_json: Option<serde_json::Value> =
        std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let report = Report::capture_with(&shared.report);
    // Streamed to the file, the report borrowed: phase 2 once made the report a
    // `serde_json::Value` tree and that a byte vector before writing it, 5.6 MB above what
    // heapscope held with 4 000 owners where the report itself peaked at 1.0 MB
    // (`tests/diag_memory.rs`).
    let full = FullDump {
        heapscope_pressure_dump: 1,
        collection_complete: true,
        trigger: phase1_json.as_ref().and_then(|v| v.get("trigger")),
        limit_source: &limit.source,
        suggestions: &report.suggestions,
        report: &report,
    };
    let complete = crate::artifacts::replace_streamed(&shared.dir, name.as_ref(), |out| {
        serde_json::to_writer_pretty(out, &full).map_err(std::io::Error::from)
    })
    .is_ok();
    if let Err(error) = phase1 {
        if !complete {
            return DumpOutcome::Failed { number, error: error.to_owned() };
        }
    }
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "heapscope",
        level = %level,
        file = %path.display(),
        dump = number,
        top_owner = report.owners.tree.iter().filter(|o| o.depth == 0).max_by_key(|o| o.live_bytes).map_or("", |o| o.name.as_str()),
        "heapscope: memory pressure dump written"
    );
    let bundle = match &shared.bundle_on_critical {
        Some(options) if with_bundle => {
            Some(crate::bundle::capture(options).map(|b| b.directory).map_err(|e| e.to_string()))
        }
        _ => None,
    };
    // Every callback hears of the dump, also after one panicked: the first panic is passed
    // on once they have all run (the monitor's thread reports it and keeps going). It once
    // left the dump at the panicking callback, and the ones after it never ran.
    drop(internal);
    let _caller = caller.enter();
    if let Some(payload) = call_each(&shared.callbacks, |callback| callback(level, &report)) {
        std::panic::resume_unwind(payload);
    }
    DumpOutcome::Written { path, number, complete, bundle }
}

/// Calls `call` with each callback, every one of them even if some panic: the first panic's
/// payload, to pass on once all have run.
fn call_each<C>(
    callbacks: &[C],
    call: impl Fn(&C),
) -> Option<Box<dyn std::any::Any + Send + 'static>> {
    let mut first_panic = None;
    for callback in callbacks {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(callback)));
        if let Err(payload) = ran {
            first_panic.get_or_insert(payload);
        }
    }
    first_panic
}

/// Phase 2's document: phase 1's trigger and the full report.
#[derive(serde::Serialize)]
struct FullDump<'a> {
    heapscope_pressure_dump: u32,
    collection_complete: bool,
    trigger: Option<&'a serde_json::Value>,
    limit_source: &'a str,
    suggestions: &'a [String],
    report: &'a Report,
}

/// A `fmt::Write` into a fixed buffer: never allocates, fails when full.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Cursor<'_> {
    fn write_bytes(&mut self, bytes: &[u8]) -> std::fmt::Result {
        let end = self.len.checked_add(bytes.len()).ok_or(std::fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl std::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.write_bytes(s.as_bytes())
    }
}

fn json_str(out: &mut Cursor<'_>, s: &str) -> std::fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// The dump file's name for dump `number` of the monitor started at `run` (Unix ms).
fn dump_name(run: u64, number: u32) -> String {
    format!("pressure-{}-{run}-{number}.json", std::process::id())
}

/// Phase 1: formats the figures into `buffer` and writes them to `dir`/[`dump_name`] with plain
/// system calls. Allocates nothing: the buffer was allocated when the monitor started, the
/// path's C string is built on the stack, owner names are read in place under the registry's
/// lock, and errors are static strings.
fn phase1_write(
    buffer: &mut [u8],
    dir: &Path,
    level: PressureLevel,
    used: &Usage<'_>,
    limit: Option<u64>,
    run: u64,
    number: u32,
) -> std::result::Result<(), &'static str> {
    let (allocated, resident) = allocator_figures();
    let mut out = Cursor { buf: buffer, len: 0 };
    let formatted = (|| -> std::fmt::Result {
        write!(out, "{{\"heapscope_pressure_dump\":1,\"collection_complete\":false,\"trigger\":{{\"level\":\"{level}\",\"dump\":{number},\"used_bytes\":{},\"used_source\":", used.bytes)?;
        json_str(&mut out, used.source)?;
        out.write_str(",\"rss_bytes\":")?;
        match rss_bytes() {
            Some(rss) => write!(out, "{rss}")?,
            None => out.write_str("null")?,
        }
        out.write_str(",\"limit_bytes\":")?;
        match limit {
            Some(l) => write!(out, "{l}")?,
            None => out.write_str("null")?,
        }
        write!(out, ",\"allocated_bytes\":")?;
        match allocated {
            Some(a) => write!(out, "{a}")?,
            None => out.write_str("null")?,
        }
        write!(out, ",\"resident_bytes\":")?;
        match resident {
            Some(r) => write!(out, "{r}")?,
            None => out.write_str("null")?,
        }
        out.write_str(",\"top_owners\":[")?;
        write_top_owners(&mut out)?;
        out.write_str("]}}\n")
    })();
    if formatted.is_err() {
        return Err("phase 1 figures did not fit the preallocated buffer");
    }
    let len = out.len;
    write_file_raw(dir, run, number, buffer.get(..len).unwrap_or_default())
}

fn allocator_figures() -> (Option<u64>, Option<u64>) {
    #[cfg(feature = "jemalloc")]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        if epoch::advance().is_ok() {
            return (
                stats::allocated::read().ok().map(|v| v as u64),
                stats::resident::read().ok().map(|v| v as u64),
            );
        }
    }
    (None, None)
}

/// The owners with the most live bytes of their own, written as JSON objects.
fn write_top_owners(out: &mut Cursor<'_>) -> std::fmt::Result {
    #[cfg(feature = "enabled")]
    {
        let registry = crate::registry::REGISTRY.lock();
        let mut top: [(u64, u16); PHASE1_OWNERS] = [(0, 0); PHASE1_OWNERS];
        for id in 0..crate::registry::MAX_OWNERS as u16 {
            if registry.entry(id).is_none() || id == crate::registry::PROCESS {
                continue;
            }
            let live = crate::counters::read_own(id).live_bytes();
            if let Some(smallest) = top.iter_mut().min_by_key(|(bytes, _)| *bytes) {
                if live > smallest.0 {
                    *smallest = (live, id);
                }
            }
        }
        top.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
        let mut first = true;
        // Owners are listed while they fit, leaving room to close the document: names of up
        // to 128 bytes a level, seven levels deep, escaped, once overflowed the buffer and
        // lost the whole dump.
        let room = out.buf.len().saturating_sub(CLOSING_ROOM);
        for (live, id) in top.iter().filter(|(live, _)| *live > 0) {
            let Some(entry) = registry.entry(*id) else { continue };
            let before = out.len;
            let listed = (|| {
                if !first {
                    out.write_char(',')?;
                }
                out.write_str("{\"owner\":")?;
                json_str(out, &entry.path)?;
                write!(out, ",\"own_live_bytes\":{live}}}")
            })();
            if listed.is_err() || out.len > room {
                out.len = before;
                break;
            }
            first = false;
        }
    }
    #[cfg(not(feature = "enabled"))]
    let _ = out;
    Ok(())
}

/// open(O_CREAT|O_EXCL|O_NOFOLLOW, 0600) + write + fsync + close of `dir`/[`dump_name`],
/// with the path's C string built on the stack.
fn write_file_raw(
    dir: &Path,
    run: u64,
    number: u32,
    bytes: &[u8],
) -> std::result::Result<(), &'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // Two NUL-terminated paths on the stack: a temporary name, and the final name it is
        // linked to once complete, so a failed write never leaves a partial dump under the
        // final name.
        let mut temp_path = [0u8; 4096];
        let mut final_path = [0u8; 4096];
        // The directory's bytes as they are: a name need not be UTF-8 (such a directory once
        // got no dump at all).
        let dir = dir.as_os_str().as_bytes();
        if dir.contains(&0) {
            return Err("dump directory contains a NUL byte");
        }
        let pid = std::process::id();
        let mut out = Cursor { buf: &mut temp_path[..4095], len: 0 };
        out.write_bytes(dir).map_err(|_| "dump path too long")?;
        write!(out, "/.pressure-{pid}-{run}-{number}.json.tmp")
            .map_err(|_| "dump path too long")?;
        let mut out = Cursor { buf: &mut final_path[..4095], len: 0 };
        out.write_bytes(dir).map_err(|_| "dump path too long")?;
        write!(out, "/pressure-{pid}-{run}-{number}.json").map_err(|_| "dump path too long")?;
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let open = || {
            // SAFETY: `temp_path` is NUL-terminated (zero-filled past what was written, and its
            // last byte is never written); open has no other preconditions.
            unsafe { libc::open(temp_path.as_ptr().cast(), flags, 0o600 as libc::c_uint) }
        };
        let mut fd = open();
        if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
            // The directory went away since start (a cleaner of old files in /tmp, say):
            // made again, private, and the dump written there. Every later dump failed.
            recreate_dump_dirs(dir);
            fd = open();
        }
        if fd < 0 {
            return Err("cannot create the dump file (it exists, or the directory is gone)");
        }
        let mut written = 0;
        let mut result = Ok(());
        while written < bytes.len() {
            let rest = bytes.get(written..).unwrap_or_default();
            // SAFETY: `rest` is a valid slice; `fd` is open for writing.
            let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                result = Err("writing the dump file failed (disk full?)");
                break;
            }
            written += n as usize;
        }
        // SAFETY: `fd` is open; fsync and close have no other preconditions.
        unsafe {
            if result.is_ok() && libc::fsync(fd) != 0 {
                result = Err("syncing the dump file failed");
            }
            libc::close(fd);
        }
        // SAFETY: both paths are NUL-terminated (see above); link and unlink have no other
        // preconditions. `link` refuses to replace anything at the final name.
        unsafe {
            if result.is_ok()
                && libc::link(temp_path.as_ptr().cast(), final_path.as_ptr().cast()) != 0
            {
                result = Err("cannot publish the dump file (the name exists)");
            }
            libc::unlink(temp_path.as_ptr().cast());
        }
        result
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, run, number, bytes);
        Err("phase-1 dumps need a Unix system")
    }
}

/// Makes the dump directory `dir` (`<base>/diagnostics/memory`) and its parent again, 0700
/// whatever the umask (as `artifacts::private_dir` at start), where they
/// are missing: paths built on the stack, no allocation. What exists is left as it is (`mkdir`
/// follows no link and replaces nothing); the base itself is not made.
#[cfg(unix)]
fn recreate_dump_dirs(dir: &[u8]) {
    let parent_len = dir.iter().rposition(|&b| b == b'/').unwrap_or(0);
    for len in [parent_len, dir.len()] {
        let mut path = [0u8; 4096];
        let Some(prefix) = dir.get(..len).filter(|p| !p.is_empty() && p.len() < path.len()) else {
            continue;
        };
        if let Some(dst) = path.get_mut(..prefix.len()) {
            dst.copy_from_slice(prefix);
        }
        // SAFETY: `path` is NUL-terminated (zero-filled past the prefix, which is shorter
        // than the buffer); mkdir has no other preconditions.
        if unsafe { libc::mkdir(path.as_ptr().cast(), 0o700) } == 0 {
            // The umask can only remove bits: one that took the owner's (0277) left it 0500,
            // and nothing could be made in it. Set 0700 exactly on what was just made.
            // SAFETY: as above; chmod has no other preconditions.
            unsafe { libc::chmod(path.as_ptr().cast(), 0o700) };
        }
    }
}

/// Resident set size from `/proc/self/statm`, read into a stack buffer (no allocation).
fn rss_bytes() -> Option<u64> {
    let mut buf = [0u8; 256];
    let text = read_small_file(c"/proc/self/statm", &mut buf)?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(crate::procfs::page_size()))
}

/// The start of the file at `path`, read with one `read` into `buf`, without allocating, in
/// whole lines when `buf` was too small for all of it; `None` when it cannot be read or is
/// not UTF-8 (or off Linux, where the files read here do not exist).
fn read_small_file<'b>(path: &std::ffi::CStr, buf: &'b mut [u8]) -> Option<&'b str> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `path` is NUL-terminated.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `buf` is writable for its length; `fd` is open.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        // SAFETY: `fd` is open.
        unsafe { libc::close(fd) };
        let n = usize::try_from(n).ok()?;
        let read = buf.get(..n)?;
        // A file longer than `buf` is cut: its last line may be cut inside a number, which
        // would then read as a smaller one. Keep whole lines only.
        let read = if n == buf.len() {
            read.get(..read.iter().rposition(|&b| b == b'\n')?.wrapping_add(1))?
        } else {
            read
        };
        // A file cut by the buffer may end inside a character: keep the whole ones.
        match std::str::from_utf8(read) {
            Ok(text) => Some(text),
            Err(e) => std::str::from_utf8(read.get(..e.valid_up_to())?).ok(),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, buf);
        None
    }
}

/// Phase 1 on its own, for the allocation-free test: writes dump `number` into `dir`, as
/// `pressure-<pid>-0-<number>.json`.
#[doc(hidden)]
pub fn __phase1_for_tests(
    buffer: &mut [u8],
    dir: &Path,
    used: u64,
    number: u32,
) -> std::result::Result<(), &'static str> {
    let used = Usage { bytes: used, source: "test" };
    phase1_write(buffer, dir, PressureLevel::Critical, &used, Some(used.bytes), 0, number)
}
