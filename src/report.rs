//! `heapscope::report()`: one call that says how much memory the process uses, who holds it,
//! how close it is to its limit, and what to do about it — as text for a person and as
//! versioned JSON for a program or a bug report.

use crate::allocator_stats::{self, AllocatorStats};
use crate::error::{Error, Result};
use crate::limits::{self, CgroupMemory, Rlimit};
use crate::phase::{PhaseOwner, PhaseRecord};
use crate::pressure::{PressureLevel, Thresholds};
use crate::printable::escape_control as printable;
use crate::procfs::{self, ChildProcess};
use crate::retained::{self, ItemInfo};
use crate::snapshot::{OwnerEntry, Snapshot};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// The JSON schema version of [`Report`]. Bumped whenever a field changes meaning or is
/// removed; new fields may appear without a bump.
pub const SCHEMA_VERSION: u32 = 1;

/// What a report reads and how it judges.
///
/// ```
/// # heapscope::install!();
/// use heapscope::{ReportOptions, Thresholds};
/// let options = ReportOptions::default()
///     .budget_bytes(2 << 30)
///     .thresholds(Thresholds::new(0.6, 0.8, 0.9).unwrap());
/// let report = heapscope::Report::capture_with(&options);
/// assert_eq!(report.limits.budget_bytes, Some(2 << 30));
/// ```
#[derive(Clone, Debug)]
pub struct ReportOptions {
    thresholds: Thresholds,
    budget_bytes: Option<u64>,
    top_items: usize,
    top_children: usize,
    process_tree: bool,
    proc_root: PathBuf,
    cgroup_root: PathBuf,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            thresholds: Thresholds::default(),
            budget_bytes: None,
            top_items: 10,
            top_children: 10,
            process_tree: true,
            proc_root: PathBuf::from("/proc"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

impl ReportOptions {
    pub(crate) fn thresholds_value(&self) -> Thresholds {
        self.thresholds
    }

    /// Pressure thresholds (default 0.70 / 0.85 / 0.95).
    pub fn thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// A memory budget the program sets itself, compared with its RSS.
    ///
    /// A budget of 0 is no budget: it shows in [`Limits::budget_bytes`] with a warning but is
    /// not a candidate for the effective limit, where it would hide every real limit and leave
    /// pressure "unknown" (so is a cgroup limit of 0). [`from_env`](Self::from_env) rejects 0.
    pub fn budget_bytes(mut self, bytes: u64) -> Self {
        self.budget_bytes = Some(bytes);
        self
    }

    /// How many retained items to list (default 10).
    pub fn top_items(mut self, n: usize) -> Self {
        self.top_items = n;
        self
    }

    /// How many child processes to list (default 10; all count toward the tree's RSS).
    pub fn top_children(mut self, n: usize) -> Self {
        self.top_children = n;
        self
    }

    /// Whether to walk `/proc` for child processes (default on).
    pub fn process_tree(mut self, on: bool) -> Self {
        self.process_tree = on;
        self
    }

    /// Reads `/proc` and the cgroup mount from other directories (for tests and containers
    /// with unusual mounts). Defaults: `/proc`, `/sys/fs/cgroup`.
    pub fn roots(mut self, proc_root: impl Into<PathBuf>, cgroup_root: impl Into<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self.cgroup_root = cgroup_root.into();
        self
    }

    /// Options from environment variables whose names start with `prefix`:
    /// `<prefix>BUDGET_BYTES` (a positive integer), `<prefix>PRESSURE_ELEVATED`, `<prefix>PRESSURE_HIGH`,
    /// `<prefix>PRESSURE_CRITICAL` (fractions). Unset variables keep the defaults; heapscope
    /// never reads a variable the caller did not name.
    ///
    /// # Errors
    /// [`Error::InvalidEnv`] naming the variable and its value when it does not parse or the
    /// budget is 0, [`Error::InvalidThresholds`] when the thresholds are out of order.
    ///
    /// ```
    /// # heapscope::install!();
    /// let options = heapscope::ReportOptions::from_env("MYAGENT_MEM_").unwrap();
    /// # let _ = options;
    /// ```
    pub fn from_env(prefix: &str) -> Result<ReportOptions> {
        let mut options = ReportOptions::default();
        if let Some(budget) =
            env_value(&format!("{prefix}BUDGET_BYTES"), "a positive whole number of bytes", |v| {
                v.parse::<u64>().ok().filter(|&bytes| bytes > 0)
            })?
        {
            options.budget_bytes = Some(budget);
        }
        let fraction = |v: &str| v.parse::<f64>().ok().filter(|f| f.is_finite());
        let defaults = Thresholds::default();
        let expected = "a fraction such as 0.85";
        let elevated = env_value(&format!("{prefix}PRESSURE_ELEVATED"), expected, fraction)?;
        let high = env_value(&format!("{prefix}PRESSURE_HIGH"), expected, fraction)?;
        let critical = env_value(&format!("{prefix}PRESSURE_CRITICAL"), expected, fraction)?;
        options.thresholds = Thresholds::new(
            elevated.unwrap_or(defaults.elevated()),
            high.unwrap_or(defaults.high()),
            critical.unwrap_or(defaults.critical()),
        )?;
        Ok(options)
    }
}

fn env_value<T>(
    variable: &str,
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    let Some(raw) = std::env::var_os(variable) else { return Ok(None) };
    let invalid = || Error::InvalidEnv {
        variable: variable.to_owned(),
        value: raw.to_string_lossy().into_owned(),
        expected,
    };
    let text = raw.to_str().ok_or_else(invalid)?;
    parse(text.trim()).map(Some).ok_or_else(invalid)
}

/// Who built and runs this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Runtime {
    /// heapscope's version.
    pub heapscope_version: String,
    /// `rustc --version` of the compiler that built heapscope.
    pub rustc_version: String,
    /// The target triple.
    pub target: String,
    /// heapscope's cargo features that are on, in Cargo.toml's order (`default` left out).
    pub features: Vec<String>,
    /// Whether allocations are being counted (see [`is_tracking`](crate::is_tracking)).
    pub tracking: bool,
    /// The inner allocator of [`Heapscope`](crate::Heapscope).
    pub inner_allocator: String,
    /// Process id.
    pub pid: u32,
    /// Time since the process started, in milliseconds.
    pub uptime_ms: Option<u64>,
    /// When the report was taken, RFC 3339 in UTC.
    pub timestamp: String,
}

/// The process and its descendants, from `/proc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// `VmRSS`.
    pub rss_bytes: Option<u64>,
    /// `VmHWM`: the highest RSS so far.
    pub rss_peak_bytes: Option<u64>,
    /// `VmSize`.
    pub virtual_bytes: Option<u64>,
    /// Threads in this process.
    pub threads: Option<u64>,
    /// RSS of this process plus all its descendants.
    pub tree_rss_bytes: Option<u64>,
    /// How many descendant processes there are.
    pub descendants: usize,
    /// The largest descendants by RSS.
    pub largest_children: Vec<ChildProcess>,
}

/// Every limit heapscope knows of, and the one that binds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// The cgroup's memory files, when there is a memory cgroup.
    pub cgroup: Option<CgroupMemory>,
    /// `RLIMIT_AS` (address space), `None` when unlimited. Shown only: it is compared with
    /// nothing (the process's virtual size is [`ProcessInfo::virtual_bytes`]) and is never the
    /// effective limit.
    pub rlimit_as_bytes: Option<u64>,
    /// `RLIMIT_DATA`, `None` when unlimited.
    pub rlimit_data_bytes: Option<u64>,
    /// `MemTotal` of `/proc/meminfo`.
    pub mem_total_bytes: Option<u64>,
    /// `MemAvailable` of `/proc/meminfo`.
    pub mem_available_bytes: Option<u64>,
    /// The budget from [`ReportOptions::budget_bytes`].
    pub budget_bytes: Option<u64>,
    /// The smallest of the cgroup's `memory.max` and `memory.high`, the budget and `MemTotal`
    /// (limits of 0 left out).
    pub effective_bytes: Option<u64>,
    /// Which one that is.
    pub effective_source: Option<String>,
}

/// One owner in the report's owner tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OwnerLine {
    /// Full name.
    pub name: String,
    /// Nesting depth (0 for top-level owners).
    pub depth: usize,
    /// Live bytes including children.
    pub live_bytes: u64,
    /// Live blocks including children.
    pub live_blocks: u64,
    /// Peak bytes including children.
    pub peak_bytes: u64,
    /// Bytes ever allocated including children.
    pub total_bytes: u64,
    /// Blocks ever allocated including children.
    pub total_blocks: u64,
    /// `live_bytes` as a fraction of all tracked live bytes.
    pub share: f64,
    /// Retired (its name freed, see [`Owner::retire`](crate::Owner::retire)) and still holding
    /// bytes. Reports written before this field existed read as `false`.
    #[serde(default)]
    pub retired: bool,
}

/// Counted bytes by owner, beside what the OS and the allocator see.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OwnersSection {
    /// Live bytes counted by heapscope (every owner together).
    pub tracked_live_bytes: u64,
    /// Peak of the counted bytes.
    pub tracked_peak_bytes: u64,
    /// `resident - tracked`. With jemalloc's `resident`: pages jemalloc holds that no live
    /// block uses (dirty pages not yet given back, fragmentation, metadata); memory outside
    /// jemalloc (the system malloc of C libraries, stacks, code) is not in it. Without
    /// jemalloc's statistics the process RSS is used, which includes all of that.
    pub untracked_bytes: Option<u64>,
    /// The owner tree in depth-first order, children right after their parent, siblings by
    /// name. Owners that never allocated, and retired owners that hold nothing (with their
    /// children, whose bytes are part of theirs), are left out.
    pub tree: Vec<OwnerLine>,
}

/// How close to the limit the process is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pressure {
    /// The level.
    pub level: PressureLevel,
    /// `used / limit`, when a limit is known.
    pub ratio: Option<f64>,
    /// The usage compared.
    pub used_bytes: Option<u64>,
    /// What that usage is: for a cgroup limit the usage file of the cgroup the limit is set
    /// on, less its reclaimable page cache where `memory.stat` was readable
    /// (`cgroup v2 memory.current - inactive_file (/sys/fs/cgroup/…/memory.current)`), else
    /// `process RSS`, `MemTotal - MemAvailable`, ….
    pub used_source: Option<String>,
    /// The effective limit.
    pub limit_bytes: Option<u64>,
    /// Where the limit comes from.
    pub limit_source: Option<String>,
    /// The thresholds applied.
    pub thresholds: Thresholds,
}

/// Everything heapscope knows about the process's memory at one moment.
///
/// JSON schema (version [`SCHEMA_VERSION`]): every size is in bytes and named `*_bytes` or
/// after a jemalloc key; fields that could not be read are `null` and explained in
/// `warnings`. See the field docs for meanings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// [`SCHEMA_VERSION`] of the producer.
    pub schema_version: u32,
    /// Build and process identity.
    pub runtime: Runtime,
    /// `/proc` numbers of the process and its descendants.
    pub process: Option<ProcessInfo>,
    /// The inner allocator's own statistics.
    pub allocator: Option<AllocatorStats>,
    /// Limits and the effective one.
    pub limits: Limits,
    /// Counted bytes by owner.
    pub owners: OwnersSection,
    /// The largest live retained items.
    pub retained: Vec<ItemInfo>,
    /// The most recent finished phases (at most 20), oldest first, each listing the
    /// [`PHASE_OWNERS`](crate::PHASE_OWNERS) owners that moved most.
    pub phases: Vec<crate::phase::PhaseRecord>,
    /// Pressure level against the effective limit.
    pub pressure: Pressure,
    /// Short, actionable lines; empty when nothing stands out.
    pub suggestions: Vec<String>,
    /// Everything that could not be read, and why.
    pub warnings: Vec<String>,
}

/// A report with default options; see [`Report::capture_with`].
///
/// ```
/// # heapscope::install!();
/// let report = heapscope::report();
/// println!("{report}");
/// assert_eq!(report.schema_version, heapscope::SCHEMA_VERSION);
/// ```
pub fn report() -> Report {
    Report::capture_with(&ReportOptions::default())
}

impl Report {
    /// Reads everything. Never fails: what cannot be read is `None` with a warning.
    ///
    /// ```
    /// # heapscope::install!();
    /// let report = heapscope::Report::capture_with(&heapscope::ReportOptions::default());
    /// let json = report.to_json();
    /// let back: heapscope::Report = serde_json::from_str(&json).unwrap();
    /// assert_eq!(back, report);
    /// ```
    pub fn capture_with(options: &ReportOptions) -> Report {
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let mut warnings = Vec::new();
        let snapshot = Snapshot::capture();
        let allocator = match allocator_stats::read() {
            Ok(stats) => Some(stats),
            Err(why) => {
                warnings.push(format!("allocator statistics unavailable: {why}"));
                None
            }
        };
        let runtime = runtime(options, allocator.as_ref(), &mut warnings);
        let process = read_process(options, &mut warnings);
        if let (Some(stats), true) = (&allocator, snapshot.tracking) {
            if stats.allocated < snapshot.total.live_bytes {
                warnings.push(format!(
                    "jemalloc holds less ({} bytes) than heapscope counts live ({} bytes): jemalloc \
                     is probably not the inner allocator, so its numbers describe only its own heap",
                    stats.allocated, snapshot.total.live_bytes
                ));
            }
        }
        let limits = read_limits(options, &mut warnings);
        let tracking = snapshot.tracking;
        let overflow =
            snapshot.owner(crate::registry::OVERFLOW_NAME).map_or(0, |o| o.stats.live_bytes);
        // The snapshot is consumed: its names move into the tree rather than being copied.
        let owners = owners_section(snapshot, allocator.as_ref(), process.as_ref());
        if !tracking {
            warnings.push(
                "owner tracking is off (the `enabled` feature, or heapscope's allocator, is \
                 missing): owner numbers are empty"
                    .to_owned(),
            );
        }
        let retained = retained::top(options.top_items);
        // Items without an owner of their own are in no list: say so, or the list reads as
        // every item (4 200 items with 4 096 owners: 109 larger than any listed, unmentioned).
        let unlisted = retained::overflow_items();
        if unlisted > 0 {
            warnings.push(format!(
                "{unlisted} retained items are not listed: built when the owner registry was \
                 full (or their parent was retired), they have no owner of their own and count \
                 in heapscope.overflow ({} live there in all)",
                size(overflow)
            ));
        }
        let phases = crate::phase::last_phases(20);
        let pressure = pressure(options, &limits, process.as_ref());
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            runtime,
            process,
            allocator,
            limits,
            owners,
            retained,
            phases,
            pressure,
            suggestions: Vec::new(),
            warnings,
        };
        // The phase that made the largest transient may have left the 20 listed while the
        // phase around it ran on (a turn's compaction, then 20 tool calls): looked for among
        // every phase kept, cloning only the one named.
        let transient = transient_phase(&report.phases);
        let inner = transient.and_then(|(widest, _)| {
            crate::phase::shortest_phase(|p| made_the_transient_of(p, widest))
        });
        let transient = transient.map(|(widest, named)| {
            let inner = inner.as_ref().filter(|p| p.duration_ms < named.duration_ms);
            (widest, inner.unwrap_or(named))
        });
        report.suggestions = suggestions(&report, transient);
        note_pressure_change(&report.pressure);
        report
    }

    /// The report as pretty JSON.
    ///
    /// ```
    /// # heapscope::install!();
    /// let json = heapscope::report().to_json();
    /// assert!(json.contains("\"schema_version\": 1"));
    /// ```
    pub fn to_json(&self) -> String {
        // A Report holds only strings, numbers, options and vectors: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the report as JSON.
    ///
    /// # Errors
    /// The writer's I/O error, as the writer returned it (its kind too).
    ///
    /// ```
    /// # heapscope::install!();
    /// let mut out = Vec::new();
    /// heapscope::report().write_json(&mut out).unwrap();
    /// assert!(!out.is_empty());
    /// ```
    pub fn write_json(&self, writer: impl std::io::Write) -> std::io::Result<()> {
        // `From`, not `io::Error::other`: serde_json hands back the writer's own error, where
        // wrapping it made every failure `Other` (a full disk, EFBIG under a bundle's report).
        serde_json::to_writer_pretty(writer, self).map_err(std::io::Error::from)
    }
}

/// Every cargo feature of heapscope but `default`, in Cargo.toml's order, and whether it is on.
/// A unit test checks the names against Cargo.toml's `[features]`.
const FEATURES: [(bool, &str); 8] = [
    (cfg!(feature = "enabled"), "enabled"),
    (cfg!(feature = "jemalloc"), "jemalloc"),
    (cfg!(feature = "jemalloc-profiling"), "jemalloc-profiling"),
    (cfg!(feature = "signal"), "signal"),
    (cfg!(feature = "dhat"), "dhat"),
    (cfg!(feature = "tracing"), "tracing"),
    (cfg!(feature = "metrics"), "metrics"),
    (cfg!(feature = "cli"), "cli"),
];

fn runtime(
    options: &ReportOptions,
    allocator: Option<&AllocatorStats>,
    warnings: &mut Vec<String>,
) -> Runtime {
    let features =
        FEATURES.iter().filter(|(on, _)| *on).map(|(_, name)| (*name).to_owned()).collect();
    // The statistics read for the report's allocator section carry the version too.
    let inner_allocator = match (cfg!(feature = "jemalloc"), allocator) {
        (true, Some(stats)) => format!("jemalloc {}", stats.version),
        (true, None) => "jemalloc (version unknown)".to_owned(),
        (false, _) => "system".to_owned(),
    };
    let uptime_ms = uptime_ms(&options.proc_root);
    if uptime_ms.is_none() {
        warnings.push(format!(
            "process uptime unavailable: cannot read {}/self/stat or {}/uptime",
            options.proc_root.display(),
            options.proc_root.display()
        ));
    }
    Runtime {
        heapscope_version: env!("CARGO_PKG_VERSION").to_owned(),
        rustc_version: env!("HEAPSCOPE_RUSTC_VERSION").to_owned(),
        target: env!("HEAPSCOPE_TARGET").to_owned(),
        features,
        tracking: crate::is_tracking(),
        inner_allocator,
        pid: std::process::id(),
        uptime_ms,
        timestamp: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
    }
}

fn uptime_ms(proc_root: &std::path::Path) -> Option<u64> {
    let stat = procfs::parse_stat(&std::fs::read_to_string(proc_root.join("self/stat")).ok()?)?;
    let boot_secs: f64 = std::fs::read_to_string(proc_root.join("uptime"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let started_secs = stat.start_ticks as f64 / procfs::clock_ticks() as f64;
    let up = boot_secs - started_secs;
    (up.is_finite() && up >= 0.0).then_some((up * 1000.0) as u64)
}

fn read_process(options: &ReportOptions, warnings: &mut Vec<String>) -> Option<ProcessInfo> {
    let path = options.proc_root.join("self/status");
    let status = match std::fs::read_to_string(&path) {
        Ok(text) => procfs::parse_status(&text),
        Err(e) => {
            warnings.push(format!("process memory unavailable: {}: {e}", path.display()));
            return None;
        }
    };
    if status.vm_rss_bytes.is_none() {
        warnings.push(format!("{} has no VmRSS line", path.display()));
    }
    let mut info = ProcessInfo {
        rss_bytes: status.vm_rss_bytes,
        rss_peak_bytes: status.vm_hwm_bytes,
        virtual_bytes: status.vm_size_bytes,
        threads: status.threads,
        tree_rss_bytes: None,
        descendants: 0,
        largest_children: Vec::new(),
    };
    if options.process_tree {
        match procfs::process_tree(&options.proc_root, std::process::id(), procfs::page_size()) {
            Ok(tree) => {
                if let Some(processes) = tree.scanned {
                    warnings.push(format!(
                        "process tree: {root}/{pid}/task/{pid}/children unavailable (a kernel \
                         without CONFIG_PROC_CHILDREN): read the stat of all {processes} \
                         processes in {root} to find this one's descendants",
                        root = options.proc_root.display(),
                        pid = std::process::id(),
                    ));
                }
                info.descendants = tree.descendants.len();
                // Saturating: the figures come from /proc, which may hold anything.
                let children =
                    tree.descendants.iter().fold(0u64, |sum, c| sum.saturating_add(c.rss_bytes));
                info.tree_rss_bytes = status.vm_rss_bytes.map(|own| own.saturating_add(children));
                info.largest_children =
                    tree.descendants.into_iter().take(options.top_children).collect();
            }
            Err(e) => warnings
                .push(format!("process tree unavailable: {}: {e}", options.proc_root.display())),
        }
    }
    Some(info)
}

pub(crate) fn read_limits(options: &ReportOptions, warnings: &mut Vec<String>) -> Limits {
    let cgroup = match limits::read_cgroup(&options.proc_root, &options.cgroup_root, warnings) {
        Ok(cgroup) => Some(cgroup),
        Err(why) => {
            warnings.push(format!("cgroup limits unavailable: {why}"));
            None
        }
    };
    let meminfo = match std::fs::read_to_string(options.proc_root.join("meminfo")) {
        Ok(text) => procfs::parse_meminfo(&text),
        Err(e) => {
            warnings.push(format!("{}/meminfo unavailable: {e}", options.proc_root.display()));
            procfs::MemInfo::default()
        }
    };
    let mut candidates: Vec<(u64, String)> = Vec::new();
    if let Some(cg) = &cgroup {
        if let Some(max) = cg.max_bytes {
            candidates.push((max, cg.max_description()));
        }
        if let Some(high) = cg.high_bytes {
            // Named with its file, as memory.max is: it may be an ancestor's.
            let file = cg.high_source.as_deref().unwrap_or_default();
            candidates.push((high, format!("{CGROUP_HIGH_SOURCE} ({file})")));
        }
    }
    match options.budget_bytes {
        Some(0) => warnings.push("a configured budget of 0 bytes is no limit, ignored".to_owned()),
        Some(budget) => candidates.push((budget, "configured budget".to_owned())),
        None => {}
    }
    if let Some(total) = meminfo.mem_total_bytes {
        candidates.push((total, "MemTotal".to_owned()));
    }
    // A limit of 0 would be the smallest and hide every real one, and no ratio can use it.
    let effective =
        candidates.into_iter().filter(|(bytes, _)| *bytes > 0).min_by_key(|(bytes, _)| *bytes);
    Limits {
        cgroup,
        rlimit_as_bytes: limits::rlimit(Rlimit::As),
        rlimit_data_bytes: limits::rlimit(Rlimit::Data),
        mem_total_bytes: meminfo.mem_total_bytes,
        mem_available_bytes: meminfo.mem_available_bytes,
        budget_bytes: options.budget_bytes,
        effective_bytes: effective.as_ref().map(|(b, _)| *b),
        effective_source: effective.map(|(_, s)| s),
    }
}

/// Emits a `tracing` event (target `heapscope`) when the pressure level differs from the one
/// the previous report saw.
fn note_pressure_change(pressure: &Pressure) {
    static LAST: parking_lot::Mutex<Option<PressureLevel>> = parking_lot::Mutex::new(None);
    let previous = LAST.lock().replace(pressure.level);
    #[cfg(feature = "tracing")]
    if previous != Some(pressure.level) {
        tracing::warn!(
            target: "heapscope",
            level = %pressure.level,
            previous_level = %previous.map_or_else(|| "none".to_owned(), |l| l.to_string()),
            ratio = pressure.ratio.unwrap_or(f64::NAN),
            used_bytes = pressure.used_bytes.unwrap_or(0),
            limit_bytes = pressure.limit_bytes.unwrap_or(0),
            limit_source = pressure.limit_source.as_deref().unwrap_or(""),
            "heapscope: memory pressure changed"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = previous;
}

/// The effective source of a cgroup v2 `memory.high` limit.
const CGROUP_HIGH_SOURCE: &str = "cgroup v2 memory.high";

/// Where the usage compared with the effective limit is read, for a reader that reads it
/// again on its own, as often as it likes (the pressure monitor, every interval). It follows
/// [`pressure`]'s choice: a cgroup limit's own cgroup's usage less its reclaimable page cache,
/// `MemTotal - MemAvailable` for `MemTotal`, the process's RSS otherwise (and for a cgroup
/// whose usage file was not readable, where the report may use the process tree's RSS, which
/// is too costly to read every interval).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UsageSource {
    /// `/proc/self/statm`'s resident pages.
    ProcessRss,
    /// A cgroup's `memory.current` (v1 `memory.usage_in_bytes`), less the value of `key` in
    /// its `memory.stat` when that was readable (`stat`).
    Cgroup { usage: PathBuf, stat: Option<PathBuf>, key: &'static str },
    /// `MemTotal - MemAvailable` of this `meminfo` file.
    Meminfo(PathBuf),
}

/// Which usage a cgroup limit binds, from the effective limit's source: `(usage, its
/// inactive_file, the limit's file)`.
fn cgroup_usage(cg: &CgroupMemory, source: &str) -> (Option<u64>, Option<u64>, Option<String>) {
    if source.starts_with(CGROUP_HIGH_SOURCE) {
        (cg.high_usage_bytes, cg.high_inactive_file_bytes, cg.high_source.clone())
    } else {
        (cg.max_usage_bytes, cg.max_inactive_file_bytes, cg.max_source.clone())
    }
}

/// The [`UsageSource`] for `limits` and its description (as `Pressure::used_source`).
pub(crate) fn usage_source(options: &ReportOptions, limits: &Limits) -> (UsageSource, String) {
    let source = limits.effective_source.as_deref().unwrap_or("");
    if source.starts_with("cgroup") {
        if let Some(cg) = &limits.cgroup {
            if let (Some(_), inactive, Some(file)) = cgroup_usage(cg, source) {
                let file = Path::new(&file);
                let usage = file.with_file_name(crate::limits::usage_file_name(cg.version));
                let stat = inactive.map(|_| file.with_file_name("memory.stat"));
                let what = cg.usage_description(file.to_str(), stat.is_some());
                let key = crate::limits::inactive_file_key(cg.version);
                return (UsageSource::Cgroup { usage, stat, key }, what);
            }
        }
    } else if source == "MemTotal" {
        return (
            UsageSource::Meminfo(options.proc_root.join("meminfo")),
            "MemTotal - MemAvailable".to_owned(),
        );
    }
    (UsageSource::ProcessRss, "process RSS".to_owned())
}

fn pressure(options: &ReportOptions, limits: &Limits, process: Option<&ProcessInfo>) -> Pressure {
    let rss = process.and_then(|p| p.rss_bytes);
    let source = limits.effective_source.as_deref().unwrap_or("");
    // Compare each limit with the usage it constrains: a cgroup limit with the usage of the
    // cgroup it is set on, which may be an ancestor holding siblings' memory too.
    // Less the cgroup's reclaimable page cache: the kernel reclaims that before it OOM-kills.
    let cgroup_usage = limits.cgroup.as_ref().and_then(|cg| {
        let (usage, inactive, limit_file) = cgroup_usage(cg, source);
        let described = cg.usage_description(limit_file.as_deref(), inactive.is_some());
        usage.map(|usage| (usage.saturating_sub(inactive.unwrap_or(0)), described))
    });
    let (used, used_source) = if source.starts_with("cgroup") {
        match cgroup_usage {
            Some((usage, file)) => (Some(usage), file),
            // The process tree's RSS when it was read, else the process's own: named as
            // what it is (the fallback was called "process tree RSS" too).
            None => match process.and_then(|p| p.tree_rss_bytes) {
                Some(tree) => (Some(tree), "process tree RSS".to_owned()),
                None => (rss, "process RSS".to_owned()),
            },
        }
    } else if source == "MemTotal" {
        let used = limits
            .mem_total_bytes
            .zip(limits.mem_available_bytes)
            .map(|(t, a)| t.saturating_sub(a));
        (used, "MemTotal - MemAvailable".to_owned())
    } else {
        (rss, "process RSS".to_owned())
    };
    let level = match used {
        Some(used) => options.thresholds.classify(used, limits.effective_bytes),
        None => PressureLevel::Unknown,
    };
    let ratio =
        used.zip(limits.effective_bytes.filter(|&l| l > 0)).map(|(u, l)| u as f64 / l as f64);
    Pressure {
        level,
        ratio,
        used_bytes: used,
        used_source: used.map(|_| used_source),
        limit_bytes: limits.effective_bytes,
        limit_source: limits.effective_source.clone(),
        thresholds: options.thresholds,
    }
}

fn owners_section(
    mut snapshot: Snapshot,
    allocator: Option<&AllocatorStats>,
    process: Option<&ProcessInfo>,
) -> OwnersSection {
    let tracked = snapshot.total.live_bytes;
    let resident = allocator.map(|a| a.resident).or_else(|| process.and_then(|p| p.rss_bytes));
    let order = depth_first(&snapshot.owners);
    let mut tree = Vec::with_capacity(order.len());
    for (depth, i) in order {
        let Some(entry) = snapshot.owners.get_mut(i) else { continue };
        tree.push(OwnerLine {
            // Moved: each owner is listed once, and the snapshot is dropped after.
            name: std::mem::take(&mut entry.name),
            depth,
            live_bytes: entry.stats.live_bytes,
            live_blocks: entry.stats.live_blocks,
            peak_bytes: entry.stats.peak_bytes,
            total_bytes: entry.stats.total_bytes,
            total_blocks: entry.stats.total_blocks,
            share: if tracked == 0 { 0.0 } else { entry.stats.live_bytes as f64 / tracked as f64 },
            retired: entry.retired,
        });
    }
    OwnersSection {
        tracked_live_bytes: tracked,
        tracked_peak_bytes: snapshot.total.peak_bytes,
        untracked_bytes: resident.filter(|_| snapshot.tracking).map(|r| r.saturating_sub(tracked)),
        tree,
    }
}

/// The owners to show, each with its depth and its index in `owners`, in depth-first order:
/// every owner right after its parent, siblings by name. Sorting full names is not
/// depth-first: `cache-l2` sorts between `cache` and `cache/item#1`, since '-' (like ' ',
/// '#', '.') is below '/'.
///
/// An owner that never allocated, or a retired one that holds nothing, is left out with its
/// subtree: an owner's numbers include its children's, so the children never allocated or hold
/// nothing either. An owner whose parent is not listed counts as top-level.
///
/// Works in a few bytes per owner: `owners` is sorted by name, as a snapshot's are (a parent
/// is found by binary search, and each owner's children, gathered in `owners`' order, are in
/// name order), so no map of names and no list per owner is built (with 4 000 owners they
/// cost about 300 KB, at the moment memory is scarce). Unsorted owners (a snapshot edited by
/// hand) are sorted by index first.
fn depth_first(owners: &[OwnerEntry]) -> Vec<(usize, usize)> {
    let n = owners.len();
    let sorted = owners.windows(2).all(|w| w[0].name <= w[1].name);
    // Indices in name order: the owners themselves when sorted.
    let by_name: Vec<u32> = if sorted {
        Vec::new()
    } else {
        let mut v: Vec<u32> = (0..n as u32).collect();
        v.sort_by(|&a, &b| owners[a as usize].name.cmp(&owners[b as usize].name));
        v
    };
    let nth = |k: usize| if sorted { k } else { by_name[k] as usize };
    let find = |name: &str| {
        let at = |k: usize| owners[nth(k)].name.as_str();
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match at(mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(nth(mid)),
            }
        }
        None
    };
    // Each owner's parent's index (`u32::MAX` at the top level), then the children of each
    // owner as one list with offsets (`start[p]..start[p + 1]`), in name order.
    const TOP: u32 = u32::MAX;
    let mut parent: Vec<u32> = vec![TOP; n];
    let mut start: Vec<u32> = vec![0; n + 2];
    for k in 0..n {
        let i = nth(k);
        if let Some(p) = owners[i].parent.as_deref().and_then(find).filter(|&p| p != i) {
            parent[i] = p as u32;
            start[p + 2] += 1;
        }
    }
    for p in 2..n + 2 {
        start[p] += start[p - 1];
    }
    let mut children: Vec<u32> = vec![0; start[n + 1] as usize];
    let mut top_level = Vec::new();
    for k in 0..n {
        let i = nth(k);
        match parent[i] {
            TOP => top_level.push(i as u32),
            p => {
                let slot = &mut start[p as usize + 1];
                children[*slot as usize] = i as u32;
                *slot += 1;
            }
        }
    }
    // Now `start[p]..start[p + 1]` are `p`'s children.
    drop(parent);
    // Holding bytes, or not retired and allocated at some time.
    let shown = |o: &OwnerEntry| o.stats.live_bytes > 0 || (o.stats.total_bytes > 0 && !o.retired);
    let mut order = Vec::new();
    // Reversed, so that the stack pops siblings in name order. Each owner has one parent, so
    // the walk from the top level reaches every owner at most once.
    let mut stack: Vec<(usize, u32)> = top_level.iter().rev().map(|&i| (0, i)).collect();
    while let Some((depth, i)) = stack.pop() {
        let i = i as usize;
        if !shown(&owners[i]) {
            continue;
        }
        order.push((depth, i));
        let kids = &children[start[i] as usize..start[i + 1] as usize];
        stack.extend(kids.iter().rev().map(|&child| (depth + 1, child)));
    }
    order
}

/// Top-level owners the text report lists; the rest are summed in one row.
const TOP_LEVEL_SHOWN: usize = 20;
/// Children of one owner the text report lists: a parent with a `Retained` item per tool
/// output or a child per call has thousands (4 091 items made a text report of 4 091 item
/// rows, 403 KB), and the largest few are what a reader looks for. The JSON lists them all.
const CHILDREN_SHOWN: usize = 10;

/// A row of the text report's owner tree.
enum TreeRow<'a> {
    Owner(&'a OwnerLine),
    /// Siblings not listed, at `depth`, summed.
    More {
        depth: usize,
        count: usize,
        live_bytes: u64,
        share: f64,
        live_blocks: u64,
    },
}

/// The rows of `tree` (depth-first, as [`OwnersSection::tree`]) the text shows: under each
/// owner its [`CHILDREN_SHOWN`] largest children by live bytes ([`TOP_LEVEL_SHOWN`] at the top
/// level), each with its own subtree, in the tree's order, then one row summing the others.
/// A group with one more than that is listed whole: a row for one owner says more than a sum.
fn shown_tree(tree: &[OwnerLine]) -> Vec<TreeRow<'_>> {
    let depth = |i: usize| tree.get(i).map_or(0, |l| l.depth);
    let live = |i: usize| tree.get(i).map_or(0, |l| l.live_bytes);
    // A group's members, scanned in place: a row's parent is the nearest row above it that
    // is less deep, so the children of `parent` are the rows after it, up to the next row no
    // deeper than it, that are no deeper than any row between (`None`: the top level). Each
    // group was once gathered into a list of its own, and each large one copied twice more,
    // for a text that shows 20 owners and 10 children of each: 272 KB for 3 KB of text with
    // 4 000 owners (`tests/diag_memory.rs`).
    let members = move |parent: Option<usize>| {
        let from = parent.map_or(0, |p| p.saturating_add(1));
        let floor = parent.map(depth);
        let mut lowest = usize::MAX;
        (from..tree.len()).take_while(move |&j| floor.is_none_or(|f| depth(j) > f)).filter(
            move |&j| {
                let d = depth(j);
                let member = d <= lowest;
                lowest = lowest.min(d);
                member
            },
        )
    };
    // Rows to emit, the next on top: a row (with its subtree after it), or a group's sum.
    enum Pending {
        Row(usize),
        More { depth: usize, count: usize, live_bytes: u64, share: f64, live_blocks: u64 },
    }
    // The rows of `parent`'s group, reversed for the stack: every member when at most one
    // more than the cap, else the cap's largest by live bytes (earlier first on ties) in the
    // tree's order and one row summing the others, kept in a heap of the cap's size.
    let select = |parent: Option<usize>| -> Vec<Pending> {
        use std::cmp::Reverse;
        let cap = if parent.is_none() { TOP_LEVEL_SHOWN } else { CHILDREN_SHOWN };
        let count = members(parent).count();
        if count <= cap.saturating_add(1) {
            let mut all: Vec<Pending> = members(parent).map(Pending::Row).collect();
            all.reverse();
            return all;
        }
        // The heap's greatest is the least of the largest: the smallest, then the latest.
        let mut largest: std::collections::BinaryHeap<(Reverse<u64>, usize)> =
            std::collections::BinaryHeap::with_capacity(cap.saturating_add(1));
        for i in members(parent) {
            largest.push((Reverse(live(i)), i));
            if largest.len() > cap {
                largest.pop();
            }
        }
        let mut shown: Vec<usize> = largest.into_iter().map(|(_, i)| i).collect();
        shown.sort_unstable();
        let (mut live_bytes, mut share, mut live_blocks) = (0u64, 0.0, 0u64);
        let mut first = None;
        for line in members(parent).filter(|i| shown.binary_search(i).is_err()) {
            let Some(l) = tree.get(line) else { continue };
            first.get_or_insert(l.depth);
            // Saturating: a report read from a file may hold any figures.
            live_bytes = live_bytes.saturating_add(l.live_bytes);
            share += l.share;
            live_blocks = live_blocks.saturating_add(l.live_blocks);
        }
        let depth = members(parent).next().map_or(0, depth);
        let rest = count.saturating_sub(shown.len());
        let mut pending =
            vec![Pending::More { depth, count: rest, live_bytes, share, live_blocks }];
        pending.extend(shown.iter().rev().map(|&i| Pending::Row(i)));
        pending
    };
    let mut rows = Vec::new();
    let mut stack = select(None);
    while let Some(next) = stack.pop() {
        match next {
            Pending::Row(i) => {
                if let Some(line) = tree.get(i) {
                    rows.push(TreeRow::Owner(line));
                    stack.extend(select(Some(i)));
                }
            }
            Pending::More { depth, count, live_bytes, share, live_blocks } => {
                rows.push(TreeRow::More { depth, count, live_bytes, share, live_blocks });
            }
        }
    }
    rows
}

/// How far an owner's peak in a phase rose above both its start and its end.
fn owner_transient_bytes(o: &PhaseOwner) -> u64 {
    o.peak_bytes.saturating_sub(o.live_end_bytes.max(o.live_start_bytes))
}

/// The owner with the largest transient in a phase: of a parent and its child that rose by
/// as much (the child's bytes are in its parent's), the child.
fn transient_owner(p: &PhaseRecord) -> Option<&PhaseOwner> {
    let depth = |o: &PhaseOwner| o.name.matches('/').count();
    p.owners.iter().filter(|o| owner_transient_bytes(o) > 0).max_by(|a, b| {
        (owner_transient_bytes(a), depth(a))
            .cmp(&(owner_transient_bytes(b), depth(b)))
            .then_with(|| b.name.cmp(&a.name))
    })
}

/// A phase's transient: how far one owner's peak rose above both its start and its end (the
/// largest such rise). Judged per owner: the process total's rise hid a 50 MiB copy in one
/// owner while another freed as much in the same phase.
fn transient_bytes(p: &PhaseRecord) -> u64 {
    transient_owner(p).map_or(0, owner_transient_bytes)
}

/// The phase with the largest transient, and the phase to name for it: the shortest phase
/// nested in that one (its span within the other's, to the millisecond) whose transient is at
/// least half of it. A phase around the one that made the copy (a `turn` around its
/// `compaction`) saw the same peak from a lower start, so it always has the larger transient.
fn transient_phase(phases: &[PhaseRecord]) -> Option<(&PhaseRecord, &PhaseRecord)> {
    let widest = phases.iter().filter(|p| p.tracking).max_by_key(|p| transient_bytes(p))?;
    let named = phases
        .iter()
        .filter(|p| made_the_transient_of(p, widest))
        .min_by_key(|p| p.duration_ms)
        .unwrap_or(widest);
    Some((widest, named))
}

/// Whether `p` is nested in `widest` (or is it) with at least half its transient: a phase
/// [`transient_phase`] may name for it.
fn made_the_transient_of(p: &PhaseRecord, widest: &PhaseRecord) -> bool {
    // By the monotonic clock, which a clock step between two phases does not move (this
    // process's phases all have it).
    let start = |p: &PhaseRecord| p.started_at_monotonic_ms.unwrap_or(p.started_at_unix_ms);
    let end = |p: &PhaseRecord| start(p) + p.duration_ms;
    // Start and duration are each rounded down, so a nested phase's end can read up to 1 ms
    // past its enclosing phase's.
    p.tracking
        && start(p) >= start(widest)
        && end(p) <= end(widest) + 1
        && transient_bytes(p) * 2 >= transient_bytes(widest)
}

/// The suggestion for the largest transient copy, made in `widest` and named after `p` (see
/// [`transient_phase`]), if it is worth a look: at least 16 MiB in one owner, and at least a
/// quarter of what the process held at the phase's start.
fn transient_suggestion(widest: &PhaseRecord, p: &PhaseRecord) -> Option<String> {
    let largest = transient_bytes(widest);
    if largest < 16 << 20 || largest * 4 < widest.total.live_start_bytes.max(1) {
        return None;
    }
    let owner = transient_owner(p)?;
    Some(format!(
        "phase \"{}\" peaked {} above where it started and ended in owner \"{}\": a transient \
         copy; avoid the copy or shrink what is copied",
        p.name.escape_debug(),
        size(owner_transient_bytes(owner)),
        owner.name.escape_debug()
    ))
}

/// `transient`: the phase with the largest transient among the report's, and the phase to name
/// for it (see [`transient_phase`]).
fn suggestions(report: &Report, transient: Option<(&PhaseRecord, &PhaseRecord)>) -> Vec<String> {
    let mut out = Vec::new();
    let tracked = report.owners.tracked_live_bytes;
    let top_owner = report
        .owners
        .tree
        .iter()
        .filter(|o| {
            o.depth == 0
                && o.name != crate::registry::ROOT_NAME
                && !o.name.starts_with("heapscope.")
        })
        .max_by_key(|o| o.live_bytes);
    if let Some(owner) = top_owner.filter(|o| tracked > 0 && o.share >= 0.5) {
        out.push(format!(
            "owner \"{}\" holds {:.0}% of the tracked heap ({}); look there first",
            owner.name,
            owner.share * 100.0,
            size(owner.live_bytes)
        ));
    }
    if let Some(item) = report.retained.first() {
        if item.live_bytes >= 1 << 20 || (tracked > 0 && item.live_bytes * 10 >= tracked) {
            out.push(format!(
                "the largest retained item is \"{}\" ({}) under \"{}\": {}, {:.1} s old",
                item.label.escape_debug(),
                printable(&item.type_name),
                item.parent,
                size(item.live_bytes),
                item.age_ms as f64 / 1000.0
            ));
        }
    }
    out.extend(transient.and_then(|(widest, p)| transient_suggestion(widest, p)));
    if matches!(report.pressure.level, PressureLevel::High | PressureLevel::Critical) {
        out.push(format!(
            "memory pressure is {}: {:.0}% of {} ({}); free or compact the largest owner before \
             the limit is reached",
            report.pressure.level,
            report.pressure.ratio.unwrap_or(0.0) * 100.0,
            report.pressure.limit_source.as_deref().unwrap_or("the limit"),
            report.pressure.limit_bytes.map_or_else(|| "?".into(), size)
        ));
    }
    if let Some(a) = &report.allocator {
        if a.active > 64 << 20 && a.fragmentation * 4 > a.active {
            out.push(format!(
                "jemalloc's active pages are {:.0}% unused ({} of {}): fragmentation from freed \
                 small blocks",
                a.fragmentation as f64 * 100.0 / a.active as f64,
                size(a.fragmentation),
                size(a.active)
            ));
        }
    }
    if let (Some(untracked), Some(rss)) =
        (report.owners.untracked_bytes, report.process.as_ref().and_then(|p| p.rss_bytes))
    {
        if untracked > 256 << 20 && untracked * 2 > rss {
            // What `untracked` holds depends on what it was taken from (see `untracked_bytes`):
            // jemalloc's resident pages never include the system malloc's (C libraries).
            let what = if report.allocator.is_some() {
                "pages jemalloc holds that no live block uses (dirty pages not yet given back \
                 after a transient peak, fragmentation, metadata)"
            } else {
                "allocator overhead, C libraries on the system malloc, stacks and code"
            };
            out.push(format!(
                "{} of resident memory is not counted by any owner: {what}",
                size(untracked)
            ));
        }
    }
    if let Some(p) = &report.process {
        if let (Some(tree), Some(own)) = (p.tree_rss_bytes, p.rss_bytes) {
            if let Some(child) = p.largest_children.first() {
                if tree > own.saturating_mul(2) && child.rss_bytes > 64 << 20 {
                    out.push(format!(
                        "child processes hold more than this process: the largest is {} (pid {}) with {}",
                        printable(&child.command),
                        child.pid,
                        size(child.rss_bytes)
                    ));
                }
            }
        }
    }
    out
}

pub(crate) use crate::units::format_bytes as size;

/// The owner name column's width in characters (indent included) when every name fits.
const MIN_NAME_COLUMN: usize = 36;
/// The widest the owner name column grows; longer names are cut with '…'.
const MAX_NAME_COLUMN: usize = 64;

/// `text` cut to [`MAX_NAME_COLUMN`] characters, the last one '…' when it was longer.
fn fit_to_column(text: &str) -> String {
    if text.chars().count() <= MAX_NAME_COLUMN {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_NAME_COLUMN - 1).collect();
    cut.push('…');
    cut
}

fn opt_size(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "unavailable".to_owned(), size)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.runtime;
        let uptime =
            r.uptime_ms.map_or_else(|| "?".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
        writeln!(
            f,
            "heapscope {} report at {} (pid {}, up {uptime}, tracking {})",
            printable(&r.heapscope_version),
            printable(&r.timestamp),
            r.pid,
            if r.tracking { "on" } else { "off" }
        )?;
        match &self.process {
            Some(p) => {
                write!(
                    f,
                    "process    RSS {} (peak {}), virtual {}, {} threads",
                    opt_size(p.rss_bytes),
                    opt_size(p.rss_peak_bytes),
                    opt_size(p.virtual_bytes),
                    p.threads.map_or_else(|| "?".into(), |t| t.to_string())
                )?;
                if p.descendants > 0 {
                    write!(
                        f,
                        "; with {} descendants {}",
                        p.descendants,
                        opt_size(p.tree_rss_bytes)
                    )?;
                }
                writeln!(f)?;
                for c in &p.largest_children {
                    writeln!(
                        f,
                        "             child {} {} {}",
                        c.pid,
                        printable(&c.command),
                        size(c.rss_bytes)
                    )?;
                }
            }
            None => writeln!(f, "process    unavailable")?,
        }
        match &self.allocator {
            Some(a) => writeln!(
                f,
                "allocator  {} {}: allocated {}, active {}, resident {}, mapped {}, retained {}, metadata {}, fragmentation {}, dirty {}",
                printable(&a.name),
                printable(&a.version),
                size(a.allocated),
                size(a.active),
                size(a.resident),
                size(a.mapped),
                size(a.retained),
                size(a.metadata),
                size(a.fragmentation),
                opt_size(a.dirty)
            )?,
            None => writeln!(
                f,
                "allocator  {} (statistics unavailable)",
                printable(&r.inner_allocator)
            )?,
        }
        let l = &self.limits;
        write!(
            f,
            "limits     effective {} ({}); MemTotal {}, MemAvailable {}, RLIMIT_AS {}, RLIMIT_DATA {}",
            opt_size(l.effective_bytes),
            printable(l.effective_source.as_deref().unwrap_or("none known")),
            opt_size(l.mem_total_bytes),
            opt_size(l.mem_available_bytes),
            l.rlimit_as_bytes.map_or_else(|| "unlimited".to_owned(), size),
            l.rlimit_data_bytes.map_or_else(|| "unlimited".to_owned(), size)
        )?;
        // Shown whether it binds or not: a budget above another limit is not the effective one,
        // yet it is the program's own setting (and the JSON has it).
        if let Some(budget) = l.budget_bytes {
            write!(f, ", budget {}", size(budget))?;
        }
        writeln!(f)?;
        if let Some(cg) = &l.cgroup {
            writeln!(
                f,
                "           cgroup v{} {}: max {}, high {}, current {}",
                cg.version,
                printable(&cg.path),
                cg.max_bytes.map_or_else(|| "unlimited".to_owned(), size),
                cg.high_bytes.map_or_else(|| "unlimited".to_owned(), size),
                opt_size(cg.current_bytes)
            )?;
        }
        let p = &self.pressure;
        // Say which side of the ratio is missing: a known limit without a usage reading (no
        // MemAvailable, no VmRSS) is not "no usable limit".
        match (p.ratio, p.limit_bytes.filter(|&l| l > 0), p.used_bytes) {
            (Some(ratio), _, _) => writeln!(
                f,
                "pressure   {}: {:.1}% ({} of {}, {} against {})",
                p.level,
                ratio * 100.0,
                opt_size(p.used_bytes),
                opt_size(p.limit_bytes),
                printable(p.used_source.as_deref().unwrap_or("?")),
                printable(p.limit_source.as_deref().unwrap_or("?"))
            )?,
            (None, Some(limit), None) => writeln!(
                f,
                "pressure   {} (no usage reading to compare with the limit, {} from {})",
                p.level,
                size(limit),
                printable(p.limit_source.as_deref().unwrap_or("?"))
            )?,
            (None, _, _) => writeln!(f, "pressure   {} (no usable limit)", p.level)?,
        }
        let o = &self.owners;
        writeln!(
            f,
            "owners     tracked {} live (peak {}), untracked {}",
            size(o.tracked_live_bytes),
            size(o.tracked_peak_bytes),
            opt_size(o.untracked_bytes)
        )?;
        // Each row as indent + name, cut to the widest column allowed; the column is as wide as
        // the widest row, so that every row's numbers line up.
        let indent = |depth: usize| {
            // Bounded: a report read from a file may claim any depth (owners nest 7 deep).
            "  ".repeat(depth.min(crate::registry::MAX_DEPTH))
        };
        let rows: Vec<(TreeRow<'_>, String)> = shown_tree(&o.tree)
            .into_iter()
            .map(|row| {
                let shown = match &row {
                    TreeRow::Owner(line) => {
                        format!("{}{}", indent(line.depth), printable(&line.name))
                    }
                    TreeRow::More { depth, count, .. } => {
                        format!("{}... {count} more owners", indent(*depth))
                    }
                };
                (row, fit_to_column(&shown))
            })
            .collect();
        let width =
            rows.iter().map(|(_, shown)| shown.chars().count()).fold(MIN_NAME_COLUMN, usize::max);
        for (row, shown) in rows {
            match row {
                TreeRow::Owner(line) => writeln!(
                    f,
                    "             {shown:<width$} {:>11} {:>6.1}%  peak {:>11}  {} blocks{}",
                    size(line.live_bytes),
                    line.share * 100.0,
                    size(line.peak_bytes),
                    line.live_blocks,
                    if line.retired { "  retired" } else { "" },
                )?,
                TreeRow::More { live_bytes, share, live_blocks, .. } => writeln!(
                    f,
                    "             {shown:<width$} {:>11} {:>6.1}%  {:>16}  {live_blocks} blocks",
                    size(live_bytes),
                    share * 100.0,
                    "",
                )?,
            }
        }
        if !self.retained.is_empty() {
            writeln!(f, "retained")?;
            for (i, item) in self.retained.iter().enumerate() {
                writeln!(
                    f,
                    "  {}. \"{}\" ({}) {} under {}, {:.1} s old",
                    i + 1,
                    item.label.escape_debug(),
                    printable(&item.type_name),
                    size(item.live_bytes),
                    printable(&item.parent),
                    item.age_ms as f64 / 1000.0
                )?;
            }
        }
        if !self.phases.is_empty() {
            writeln!(f, "phases")?;
            for p in &self.phases {
                let rise = p.total.peak_bytes.saturating_sub(p.total.live_start_bytes);
                write!(
                    f,
                    "  {:<20} {:>8} ms  live {} -> {}, peak +{}, allocated {}",
                    printable(&p.name),
                    p.duration_ms,
                    size(p.total.live_start_bytes),
                    size(p.total.live_end_bytes),
                    size(rise),
                    size(p.total.allocated_bytes)
                )?;
                // heapscope's own reading at the phase's end rises in every phase (about 3 KiB
                // with 20 owners): a compaction whose history rose 1.5 KiB read "most:
                // heapscope.internal". Named only when no other owner rose.
                let top = p
                    .owners
                    .iter()
                    .find(|o| {
                        o.name != crate::registry::INTERNAL_NAME
                            && o.peak_bytes > o.live_start_bytes
                    })
                    .or_else(|| p.owners.first());
                if let Some(top) = top {
                    write!(
                        f,
                        "; most: {} (peak +{})",
                        printable(&top.name),
                        size(top.peak_bytes.saturating_sub(top.live_start_bytes))
                    )?;
                }
                writeln!(f)?;
            }
        }
        if !self.suggestions.is_empty() {
            writeln!(f, "suggestions")?;
            for s in &self.suggestions {
                writeln!(f, "  - {}", printable(s))?;
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f, "warnings")?;
            for w in &self.warnings {
                writeln!(f, "  - {}", printable(w))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, depth: usize, live_bytes: u64) -> OwnerLine {
        OwnerLine {
            name: name.into(),
            depth,
            live_bytes,
            live_blocks: 1,
            peak_bytes: live_bytes,
            total_bytes: live_bytes,
            total_blocks: 1,
            share: 0.01,
            retired: false,
        }
    }

    /// A parent with an item per tool output: the text lists its ten largest children, each
    /// with its subtree, in the tree's order, and one row summing the rest; a group of eleven
    /// is listed whole. 4 091 items once made 4 091 rows.
    #[test]
    fn the_text_lists_the_largest_children_and_sums_the_rest() {
        let mut tree = vec![line("tools", 0, 0)];
        for i in 0..25u64 {
            // Items 0..25 with live bytes 100 * i; item 24 (the largest) has a child.
            tree.push(line(&format!("tools/item#{i:02}"), 1, 100 * i));
            if i == 24 {
                tree.push(line("tools/item#24/parsed", 2, 50));
            }
        }
        tree.push(line("cache", 0, 7));
        for i in 0..11u64 {
            tree.push(line(&format!("cache/e{i:02}"), 1, i));
        }
        let rows = shown_tree(&tree);
        let names: Vec<String> = rows
            .iter()
            .map(|r| match r {
                TreeRow::Owner(l) => l.name.clone(),
                TreeRow::More { depth, count, live_bytes, live_blocks, .. } => {
                    format!("{depth}: {count} more, {live_bytes} B, {live_blocks} blocks")
                }
            })
            .collect();
        let mut expected = vec!["tools".to_owned()];
        for i in 15..25 {
            expected.push(format!("tools/item#{i}"));
        }
        expected.insert(expected.len(), "tools/item#24/parsed".to_owned());
        // Items 0..15 summed: 100 * (0 + 1 + ... + 14) bytes.
        expected.push("1: 15 more, 10500 B, 15 blocks".to_owned());
        expected.push("cache".to_owned());
        expected.extend((0..11).map(|i| format!("cache/e{i:02}")));
        assert_eq!(names, expected);
    }

    #[test]
    fn long_owner_names_are_cut_to_the_column_at_a_character() {
        let long = "é".repeat(MAX_NAME_COLUMN + 5);
        let cut = fit_to_column(&long);
        assert_eq!(cut.chars().count(), MAX_NAME_COLUMN);
        assert!(cut.ends_with("é…"), "{cut}");
        assert_eq!(fit_to_column("cache"), "cache");
        assert_eq!(fit_to_column(&"x".repeat(MAX_NAME_COLUMN)), "x".repeat(MAX_NAME_COLUMN));
    }

    fn phase_record(name: &str, start_ms: u64, duration_ms: u64, live: [u64; 3]) -> PhaseRecord {
        let [live_start_bytes, peak_bytes, live_end_bytes] = live;
        PhaseRecord {
            name: name.into(),
            started_at_unix_ms: start_ms,
            started_at_monotonic_ms: Some(start_ms),
            duration_ms,
            tracking: true,
            total: PhaseOwner {
                name: "total".into(),
                live_start_bytes,
                live_end_bytes,
                allocated_bytes: peak_bytes - live_start_bytes,
                peak_bytes,
            },
            // One owner made all of it.
            owners: vec![phase_owner("history", live)],
            other_owners: 0,
        }
    }

    /// A `turn` phase around a `compaction` that deep-copies 100 MiB of history: the turn
    /// started 2 MiB lower (its message), so its transient is the larger, and the suggestion
    /// named "turn" rather than the compaction that made the copy (seen with an agent that
    /// wraps both in phases, as the README's first step says to).
    #[test]
    fn the_transient_copy_is_named_after_the_innermost_phase_that_made_it() {
        const MIB: u64 = 1 << 20;
        let compaction = phase_record("compaction", 1_000, 38, [52 * MIB, 152 * MIB, 30 * MIB]);
        let turn = phase_record("turn", 999, 40, [50 * MIB, 152 * MIB, 30 * MIB]);
        let later = phase_record("turn", 1_100, 1, [30 * MIB, 32 * MIB, 32 * MIB]);
        let phases = [compaction, turn, later];
        let (widest, named) = transient_phase(&phases).unwrap();
        assert_eq!(widest.name, "turn");
        assert_eq!(named.name, "compaction");
        assert_eq!(transient_bytes(named), 100 * MIB);

        // Alone, the enclosing phase is named.
        let (_, named) = transient_phase(&phases[1..]).unwrap();
        assert_eq!(named.name, "turn");
    }

    fn phase_owner(name: &str, live: [u64; 3]) -> PhaseOwner {
        let [live_start_bytes, peak_bytes, live_end_bytes] = live;
        PhaseOwner {
            name: name.into(),
            live_start_bytes,
            live_end_bytes,
            allocated_bytes: peak_bytes - live_start_bytes,
            peak_bytes,
        }
    }

    /// A 50 MiB transient copy in `history` while `cache` frees 60 MiB in the same phase: the
    /// process's peak never rose above its start (70 MiB), so judged by the total the copy was
    /// hidden (a transient of 0, no suggestion). Judged per owner, `history` rose 50 MiB above
    /// both its start and its end.
    #[test]
    fn a_transient_copy_in_one_owner_shows_while_another_frees_as_much() {
        const MIB: u64 = 1 << 20;
        let mut phase = phase_record("compaction", 1_000, 38, [70 * MIB, 70 * MIB, 10 * MIB]);
        phase.owners = vec![
            phase_owner("history", [10 * MIB, 60 * MIB, 10 * MIB]),
            phase_owner("cache", [60 * MIB, 60 * MIB, 0]),
        ];
        let mut phases = [phase];
        let (_, named) = transient_phase(&phases).unwrap();
        assert_eq!(transient_bytes(named), 50 * MIB);
        assert_eq!(transient_owner(named).unwrap().name, "history");
        let suggest = |phases: &[PhaseRecord]| {
            transient_phase(phases).and_then(|(w, p)| transient_suggestion(w, p))
        };
        assert_eq!(
            suggest(&phases).as_deref(),
            Some(
                "phase \"compaction\" peaked 50.0 MiB above where it started and ended in owner \
                 \"history\": a transient copy; avoid the copy or shrink what is copied"
            )
        );

        // A child that made the copy rose as much as its parent: the child is named.
        phases[0].owners.push(phase_owner("history/turns", [0, 50 * MIB, 0]));
        assert_eq!(transient_owner(&phases[0]).unwrap().name, "history/turns");
        // Below 16 MiB in any one owner: nothing to suggest.
        phases[0].owners = vec![phase_owner("history", [10 * MIB, 25 * MIB, 10 * MIB])];
        assert_eq!(suggest(&phases), None);
    }

    #[test]
    fn sizes_are_base_1024_and_labelled() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 << 20), "5.0 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }

    /// Under a cgroup limit whose usage file could not be read, pressure is compared with the
    /// process tree's RSS, or, when the tree was not read either, with the process's own RSS,
    /// and the source says which: the fallback was called "process tree RSS" as well.
    #[test]
    fn a_cgroup_limit_without_usage_names_the_rss_it_falls_back_to() {
        let limits = Limits {
            cgroup: None,
            rlimit_as_bytes: None,
            rlimit_data_bytes: None,
            mem_total_bytes: None,
            mem_available_bytes: None,
            budget_bytes: None,
            effective_bytes: Some(1000),
            effective_source: Some("cgroup v2 memory.max (/sys/fs/cgroup/a/memory.max)".into()),
        };
        let mut process = ProcessInfo {
            rss_bytes: Some(900),
            rss_peak_bytes: None,
            virtual_bytes: None,
            threads: None,
            tree_rss_bytes: None,
            descendants: 0,
            largest_children: Vec::new(),
        };
        let options = ReportOptions::default();
        let own = pressure(&options, &limits, Some(&process));
        assert_eq!((own.used_bytes, own.used_source.as_deref()), (Some(900), Some("process RSS")));
        assert_eq!(own.level, PressureLevel::High);
        process.tree_rss_bytes = Some(960);
        let tree = pressure(&options, &limits, Some(&process));
        assert_eq!(
            (tree.used_bytes, tree.used_source.as_deref()),
            (Some(960), Some("process tree RSS"))
        );
        assert_eq!(tree.level, PressureLevel::Critical);
    }

    /// `runtime.features` can only name the features `FEATURES` lists: it must list every one
    /// of Cargo.toml (it once missed `jemalloc-profiling` and `signal`).
    #[test]
    fn the_feature_list_is_cargo_tomls() {
        let manifest = include_str!("../Cargo.toml");
        let section = manifest.split("\n[features]\n").nth(1).expect("a [features] table");
        let section = section.split("\n[").next().unwrap_or(section);
        let declared: Vec<&str> = section
            .lines()
            .filter_map(|line| line.split_once(" = ").map(|(name, _)| name))
            .filter(|name| !name.starts_with(['#', ' ']) && *name != "default")
            .collect();
        let listed: Vec<&str> = FEATURES.iter().map(|(_, name)| *name).collect();
        assert_eq!(listed, declared);
    }
}
