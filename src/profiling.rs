//! Heap profiles on demand, never silently.
//!
//! Two backends, each behind its own cargo feature:
//! - **jemalloc** (`jemalloc-profiling`): jemalloc's sampling heap profiler is compiled in and
//!   configured `prof:true,prof_active:false` at start-up through the exported
//!   `_rjem_malloc_conf` symbol, so it samples nothing until [`activate`]. A
//!   [`capture`](crate::capture) then writes jemalloc's raw dump (`jemalloc.heap`, for `jeprof`)
//!   and the same profile as a gzipped pprof protobuf (`heap.pb.gz`, for `go tool pprof`,
//!   Pyroscope, Parca), symbolised in-process so no binary is needed to read it.
//! - **dhat** (`dhat`, with `Tracked<dhat::Alloc>` as the global allocator): `start_dhat`
//!   begins a dhat session; a capture writes `dhat-heap.json` (DHAT's viewer, `dh_view.html`)
//!   and starts the next session.
//!
//! [`status`] says which one is usable and, when none is, exactly why and what to change.
//! A profile's samples carry call stacks, not heapscope owners: jemalloc records the stack of
//! a sampled allocation but nothing of the thread's state, so owner attribution stays in
//! `report.json`, and the two are read side by side.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// jemalloc's default sampling interval (2^19 bytes), which [`activate`] uses.
///
/// ```
/// # heapscope::install!();
/// assert_eq!(heapscope::profiling::DEFAULT_SAMPLE_INTERVAL, 512 * 1024);
/// ```
pub const DEFAULT_SAMPLE_INTERVAL: u64 = 1 << 19;

/// The configuration heapscope gives jemalloc at start-up with `jemalloc-profiling`:
/// profiling compiled in and enabled, sampling off until [`activate`].
///
/// ```
/// # heapscope::install!();
/// assert!(heapscope::profiling::MALLOC_CONF.contains("prof_active:false"));
/// ```
pub const MALLOC_CONF: &str = "prof:true,prof_active:false";

/// Where heap profiling stands in this process.
///
/// ```
/// # heapscope::install!();
/// use heapscope::profiling::{self, ProfilingStatus};
/// let status = profiling::status();
/// let usable = matches!(status, ProfilingStatus::Jemalloc { .. } | ProfilingStatus::Dhat);
/// // Serialised, the variant is the `backend` field.
/// let json = serde_json::to_value(&status)?;
/// assert_eq!(json["backend"] != "unavailable", usable);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProfilingStatus {
    /// jemalloc's profiler is usable.
    Jemalloc {
        /// Whether it samples now (`prof.active`).
        active: bool,
        /// Average bytes between two samples (`2^prof.lg_sample`).
        sample_interval_bytes: u64,
        /// Whether it has sampled at any time since start-up: a profile taken before that is
        /// empty.
        ever_active: bool,
    },
    /// A dhat session started with `start_dhat` (feature `dhat`) is running.
    Dhat,
    /// No heap profile can be taken.
    Unavailable {
        /// Why.
        reason: String,
        /// What to change to get one.
        fix: String,
    },
}

/// How [`activate_with`] samples.
///
/// ```
/// # heapscope::install!();
/// let options = heapscope::profiling::ProfilingOptions::default().sample_interval(1 << 16);
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfilingOptions {
    sample_interval: u64,
}

impl Default for ProfilingOptions {
    /// [`DEFAULT_SAMPLE_INTERVAL`].
    fn default() -> Self {
        ProfilingOptions { sample_interval: DEFAULT_SAMPLE_INTERVAL }
    }
}

impl ProfilingOptions {
    /// The average number of allocated bytes between two samples: a power of two from 1 byte
    /// to 2^40 (others are rejected by [`activate_with`]). Smaller is more precise and slower:
    /// jemalloc takes a backtrace for every sample.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::profiling::{activate_with, ProfilingOptions};
    /// // One sample per 64 KiB allocated on average: 8 times finer than the default.
    /// let fine = ProfilingOptions::default().sample_interval(64 * 1024);
    /// assert_ne!(fine, ProfilingOptions::default());
    /// // Not a power of two: refused before jemalloc is asked.
    /// let odd = ProfilingOptions::default().sample_interval(100_000);
    /// assert!(matches!(activate_with(odd), Err(heapscope::Error::OutOfBounds { .. })));
    /// ```
    pub fn sample_interval(mut self, bytes: u64) -> Self {
        self.sample_interval = bytes;
        self
    }
}

/// Which backend can take a profile now, or why none can.
///
/// ```
/// # heapscope::install!();
/// match heapscope::profiling::status() {
///     heapscope::profiling::ProfilingStatus::Unavailable { reason, fix } => {
///         println!("no heap profiles: {reason} ({fix})")
///     }
///     other => println!("{other:?}"),
/// }
/// ```
pub fn status() -> ProfilingStatus {
    #[cfg(feature = "dhat")]
    if dhat_backend::running() {
        return ProfilingStatus::Dhat;
    }
    match jemalloc_backend::status() {
        Ok(status) => status,
        Err((reason, fix)) => {
            let fix = if cfg!(feature = "dhat") {
                format!(
                    "{fix}; or, with `Tracked<dhat::Alloc>` as the global allocator, start a dhat \
                     session with heapscope::profiling::start_dhat()"
                )
            } else {
                fix
            };
            ProfilingStatus::Unavailable { reason, fix }
        }
    }
}

/// Starts jemalloc's sampling at [`DEFAULT_SAMPLE_INTERVAL`]. Allocations from now on are
/// sampled; a later [`capture`](crate::capture) shows those still live.
///
/// # Errors
/// [`Error::ProfilingUnavailable`] with the reason and the fix when jemalloc profiling cannot
/// run in this process (see [`status`]).
///
/// ```
/// # heapscope::install!();
/// if let Err(e) = heapscope::profiling::activate() {
///     eprintln!("{e}");
/// }
/// # let _ = heapscope::profiling::deactivate();
/// ```
pub fn activate() -> Result<()> {
    activate_with(ProfilingOptions::default())
}

/// [`activate`] with options. Changing the sample interval restarts jemalloc's profile
/// (`prof.reset`): samples taken so far are dropped. Each thread's next sample point was drawn
/// under the old interval, so the new one takes effect on a thread after that point (on
/// average one old interval of allocated bytes later).
///
/// # Errors
/// [`Error::OutOfBounds`] for an interval that is not a power of two in 1..=2^40;
/// [`Error::ProfilingUnavailable`] as for [`activate`].
///
/// ```
/// # heapscope::install!();
/// use heapscope::profiling::{activate_with, ProfilingOptions};
/// let _ = activate_with(ProfilingOptions::default().sample_interval(1 << 18));
/// # let _ = heapscope::profiling::deactivate();
/// ```
pub fn activate_with(options: ProfilingOptions) -> Result<()> {
    let interval = options.sample_interval;
    if !interval.is_power_of_two() || interval > 1 << 40 {
        return Err(Error::OutOfBounds {
            what: "profiling sample interval",
            value: interval.to_string(),
            allowed: "a power of two from 1 to 2^40 bytes",
        });
    }
    jemalloc_backend::set_active(true, Some(interval.trailing_zeros()))
}

/// Stops jemalloc's sampling. Samples already taken stay in the profile until they are freed.
///
/// # Errors
/// [`Error::ProfilingUnavailable`] as for [`activate`].
///
/// ```
/// # heapscope::install!();
/// let _ = heapscope::profiling::deactivate();
/// ```
pub fn deactivate() -> Result<()> {
    jemalloc_backend::set_active(false, None)
}

#[cfg(feature = "dhat")]
pub use dhat_backend::{start_dhat, stop_dhat};

/// A profile taken for a bundle: files to write, or why there are none.
pub(crate) enum Taken {
    Files { backend: &'static str, files: Vec<(&'static str, FileContents)>, notes: Vec<String> },
    Unavailable { reason: String, fix: String },
}

/// A profile file's contents: in memory, or a file in the scratch directory that the bundle
/// copies from (jemalloc's own dump, which holds a record per sampled stack and the process's
/// whole memory map, is never read into memory whole).
pub(crate) enum FileContents {
    Bytes(Vec<u8>),
    File(std::path::PathBuf),
}

/// Takes a profile with whichever backend [`status`] names. `scratch` is a fresh private
/// directory the backend may use for files its profiler writes itself; `pprof` says whether a
/// jemalloc dump is also converted to `heap.pb.gz`.
pub(crate) fn take(scratch: &std::path::Path, pprof: bool) -> Taken {
    match status() {
        #[cfg(feature = "dhat")]
        ProfilingStatus::Dhat => dhat_backend::take(scratch),
        #[cfg(not(feature = "dhat"))]
        ProfilingStatus::Dhat => Taken::Unavailable {
            reason: "dhat is not compiled into this build".to_owned(),
            fix: "build with heapscope's `dhat` feature".to_owned(),
        },
        ProfilingStatus::Jemalloc { active, ever_active, .. } => {
            let raw = match jemalloc_backend::dump(scratch) {
                Ok(raw) => raw,
                Err(reason) => {
                    let fix = "check that the bundle directory is writable and has room; the \
                               report was written"
                        .to_owned();
                    return Taken::Unavailable { reason, fix };
                }
            };
            let mut notes = Vec::new();
            if !ever_active {
                notes.push(
                    "jemalloc profiling was never active in this process, so the profile holds \
                     no samples: call heapscope::profiling::activate() (or start with \
                     _RJEM_MALLOC_CONF=prof_active:true) well before capturing"
                        .to_owned(),
                );
            } else if !active {
                notes.push(
                    "sampling was off at the time of the capture: the profile shows blocks \
                     sampled while it was on that are still live"
                        .to_owned(),
                );
            }
            let mut files = Vec::new();
            if !pprof {
                notes.push(
                    "heap.pb.gz was not written (CaptureOptions::pprof(false)): read \
                     jemalloc.heap with jeprof and the program's binary"
                        .to_owned(),
                );
            } else {
                match jemalloc_backend::to_pprof(&raw) {
                    Ok(pprof) => files.push(("heap.pb.gz", FileContents::Bytes(pprof))),
                    Err(e) => notes.push(format!(
                        "heap.pb.gz was not written: the dump could not be converted ({e}); \
                         jemalloc.heap can still be read with jeprof"
                    )),
                }
            }
            files.push(("jemalloc.heap", FileContents::File(raw)));
            Taken::Files { backend: "jemalloc", files, notes }
        }
        ProfilingStatus::Unavailable { reason, fix } => Taken::Unavailable { reason, fix },
    }
}

/// Why jemalloc, with profiling compiled in, started with `prof:false`, from the environment
/// (`_RJEM_MALLOC_CONF`, which this prefixed jemalloc reads, and `MALLOC_CONF`, which it does
/// not) and whether heapscope's start-up configuration was linked in.
#[cfg_attr(not(feature = "jemalloc"), allow(dead_code))]
fn explain_prof_off(
    prefixed: Option<&str>,
    unprefixed: Option<&str>,
    heapscope_conf: bool,
) -> (String, String) {
    let wanted = "_RJEM_MALLOC_CONF=prof:true,prof_active:false";
    if let Some(conf) = prefixed.filter(|c| c.contains("prof:false")) {
        return (
            format!("jemalloc started with prof:false, set by _RJEM_MALLOC_CONF={conf}"),
            format!("remove prof:false from _RJEM_MALLOC_CONF, or set {wanted}"),
        );
    }
    if let (None, Some(conf)) = (prefixed, unprefixed) {
        return (
            format!(
                "jemalloc started with prof:false: the environment sets MALLOC_CONF={conf}, \
                 which this jemalloc (tikv-jemallocator, prefixed symbols) does not read"
            ),
            format!("spell the variable _RJEM_MALLOC_CONF, e.g. {wanted}"),
        );
    }
    if heapscope_conf {
        (
            "jemalloc started with prof:false although heapscope asked for prof:true (another \
             `_rjem_malloc_conf` symbol or /etc/malloc.conf overrode it)"
                .to_owned(),
            format!("start the program with {wanted}"),
        )
    } else {
        (
            "jemalloc started with prof:false".to_owned(),
            format!(
                "build with heapscope's `jemalloc-profiling` feature (which sets \
                 prof:true,prof_active:false at start-up), or start with {wanted}"
            ),
        )
    }
}

fn unavailable(reason: String, fix: String) -> Error {
    Error::ProfilingUnavailable { reason, fix }
}

#[cfg(feature = "jemalloc")]
mod jemalloc_backend {
    use super::{unavailable, ProfilingStatus};
    use crate::error::Result;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use tikv_jemalloc_ctl::raw;

    /// Sampling was switched on by [`super::activate`] at some point.
    static EVER_ACTIVATED: AtomicBool = AtomicBool::new(false);

    /// The configuration jemalloc reads at start-up, before any environment variable: the
    /// `_rjem_malloc_conf` symbol of tikv-jemallocator's prefixed build.
    #[cfg(all(feature = "jemalloc-profiling", not(target_env = "msvc"), not(target_os = "macos")))]
    mod start_up_conf {
        /// A C string pointer, read by jemalloc as `const char *malloc_conf`.
        #[repr(transparent)]
        struct ConfString(*const std::ffi::c_char);

        // SAFETY: the pointer is to a `'static` immutable C string literal, never written.
        unsafe impl Sync for ConfString {}

        #[export_name = "_rjem_malloc_conf"]
        static MALLOC_CONF_SYMBOL: ConfString = ConfString(c"prof:true,prof_active:false".as_ptr());

        const _: () = {
            // The symbol and the documented constant say the same thing.
            let a = super::super::MALLOC_CONF.as_bytes();
            let b = c"prof:true,prof_active:false".to_bytes();
            assert!(a.len() == b.len());
            let mut i = 0;
            while i < a.len() {
                assert!(a[i] == b[i]);
                i += 1;
            }
        };
    }

    fn read_bool(name: &'static [u8]) -> Option<bool> {
        // SAFETY: every name passed here is a NUL-terminated jemalloc `bool` mallctl.
        unsafe { raw::read::<bool>(name) }.ok()
    }

    fn read_usize(name: &'static [u8]) -> Option<usize> {
        // SAFETY: every name passed here is a NUL-terminated jemalloc `size_t` mallctl.
        unsafe { raw::read::<usize>(name) }.ok()
    }

    /// Whether jemalloc serves this thread's allocations: its per-thread allocated counter
    /// moves when a block is allocated through the global allocator. Probed once per process
    /// (the global allocator does not change): the probe is a 64 KiB block, and `status` runs
    /// at every capture, the one under memory pressure too.
    fn jemalloc_is_global() -> bool {
        use std::sync::atomic::AtomicU8;
        // 0: not probed yet, 1: jemalloc is global, 2: it is not.
        static PROBED: AtomicU8 = AtomicU8::new(0);
        match PROBED.load(Relaxed) {
            1 => return true,
            2 => return false,
            _ => {}
        }
        let global = probe_jemalloc_is_global();
        PROBED.store(if global { 1 } else { 2 }, Relaxed);
        global
    }

    fn probe_jemalloc_is_global() -> bool {
        let Ok(counter) = tikv_jemalloc_ctl::thread::allocatedp::read() else {
            // Without the counter (statistics compiled out) assume the common case.
            return true;
        };
        // The probe is heapscope's own allocation, not the caller's owner's.
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let before = counter.get();
        let block = std::hint::black_box(vec![0u8; 64 << 10]);
        let after = counter.get();
        drop(block);
        after.wrapping_sub(before) >= 64 << 10
    }

    pub(super) fn status() -> std::result::Result<ProfilingStatus, (String, String)> {
        // Only `ProfilingStatus::Jemalloc` is ever returned as `Ok`.
        let compiled = read_bool(b"config.prof\0").unwrap_or(false);
        if !compiled {
            return Err((
                "jemalloc was built without heap profiling".to_owned(),
                "build with heapscope's `jemalloc-profiling` feature".to_owned(),
            ));
        }
        if !jemalloc_is_global() {
            return Err((
                "jemalloc is not this program's global allocator, so its profiler sees none of \
                 the program's allocations"
                    .to_owned(),
                "install heapscope::Heapscope (heapscope::install!()) or \
                 Tracked<tikv_jemallocator::Jemalloc> as the #[global_allocator]"
                    .to_owned(),
            ));
        }
        if !read_bool(b"opt.prof\0").unwrap_or(false) {
            return Err(why_prof_off());
        }
        let active = read_bool(b"prof.active\0").unwrap_or(false);
        let lg_sample = read_usize(b"prof.lg_sample\0").unwrap_or(19).min(63);
        let started_active = read_bool(b"opt.prof_active\0").unwrap_or(false);
        Ok(ProfilingStatus::Jemalloc {
            active,
            sample_interval_bytes: 1u64 << lg_sample,
            ever_active: active || started_active || EVER_ACTIVATED.load(Relaxed),
        })
    }

    /// jemalloc has profiling compiled in but started with `prof:false`: say which setting did
    /// that.
    fn why_prof_off() -> (String, String) {
        let var = |name: &str| std::env::var(name).ok();
        super::explain_prof_off(
            var("_RJEM_MALLOC_CONF").as_deref(),
            var("MALLOC_CONF").as_deref(),
            cfg!(feature = "jemalloc-profiling"),
        )
    }

    pub(super) fn set_active(active: bool, lg_sample: Option<u32>) -> Result<()> {
        if let Err((reason, fix)) = status() {
            return Err(unavailable(reason, fix));
        }
        if let Some(lg) = lg_sample {
            if read_usize(b"prof.lg_sample\0") != Some(lg as usize) {
                // SAFETY: `prof.reset` takes a `size_t`, the new lg sample interval.
                unsafe { raw::write::<usize>(b"prof.reset\0", lg as usize) }.map_err(|e| {
                    unavailable(
                        format!("jemalloc refused prof.reset: {e}"),
                        "keep the default sample interval".to_owned(),
                    )
                })?;
            }
        }
        // SAFETY: `prof.active` takes a `bool`.
        unsafe { raw::write::<bool>(b"prof.active\0", active) }.map_err(|e| {
            unavailable(
                format!("jemalloc refused prof.active: {e}"),
                "check that jemalloc started with prof:true".to_owned(),
            )
        })?;
        if active {
            EVER_ACTIVATED.store(true, Relaxed);
        }
        Ok(())
    }

    /// Dumps jemalloc's profile into `scratch` (a fresh private directory: jemalloc creates
    /// the file itself, following links and with mode 0644, so only a directory nobody else
    /// can enter keeps it private), makes it 0600 and returns its path. Not its contents: the
    /// dump holds a record per sampled stack and the process's whole memory map
    /// (`/proc/self/maps`), so it grows with the process, and it was once read whole into
    /// memory (and skipped afterwards if it exceeded the bundle's cap), at the moment a
    /// capture under pressure could least afford it.
    pub(super) fn dump(
        scratch: &std::path::Path,
    ) -> std::result::Result<std::path::PathBuf, String> {
        let path = scratch.join("jemalloc.heap");
        // jemalloc copies the name into a PATH_MAX + 1 buffer: refuse longer ones before.
        if path.as_os_str().len() >= 4096 {
            return Err(format!(
                "the dump path is {} bytes long, longer than jemalloc accepts (4095)",
                path.as_os_str().len()
            ));
        }
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("the path {} contains a NUL byte", path.display()))?;
        // SAFETY: `prof.dump` takes a `const char *` file name; `c_path` outlives the call.
        unsafe { raw::write::<*const std::ffi::c_char>(b"prof.dump\0", c_path.as_ptr()) }
            .map_err(|e| format!("jemalloc's prof.dump to {} failed: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| format!("making jemalloc's dump {} private failed: {e}", path.display()),
            )?;
        }
        Ok(path)
    }

    /// Converts a raw jemalloc dump (the file at `raw`, read line by line) to a gzipped
    /// pprof protobuf, symbolised in-process.
    #[cfg(feature = "jemalloc-profiling")]
    pub(super) fn to_pprof(raw: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
        let file = std::fs::File::open(raw).map_err(|e| e.to_string())?;
        let reader = std::io::BufReader::new(file);
        let profile = pprof_util::parse_jeheap(reader, mappings::MAPPINGS.as_deref())
            .map_err(|e| e.to_string())?;
        let pprof = profile.to_pprof(("inuse_space", "bytes"), ("space", "bytes"), None);
        // Symbolising parses the binary's debug information into a process-wide cache (tens
        // of MiB for a binary with full debug info) that would otherwise stay for the life of
        // the process: a capture may be taken under memory pressure, so give it back.
        backtrace::clear_symbol_cache();
        Ok(pprof)
    }

    #[cfg(not(feature = "jemalloc-profiling"))]
    pub(super) fn to_pprof(_raw: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
        Err("the pprof converter is part of heapscope's `jemalloc-profiling` feature".to_owned())
    }
}

#[cfg(not(feature = "jemalloc"))]
mod jemalloc_backend {
    use super::{unavailable, ProfilingStatus};
    use crate::error::Result;

    fn why() -> (String, String) {
        (
            "this build's allocator is not jemalloc".to_owned(),
            "build with heapscope's `jemalloc-profiling` feature and install \
             heapscope::Heapscope as the global allocator"
                .to_owned(),
        )
    }

    pub(super) fn status() -> std::result::Result<ProfilingStatus, (String, String)> {
        Err(why())
    }

    pub(super) fn set_active(_active: bool, _lg_sample: Option<u32>) -> Result<()> {
        let (reason, fix) = why();
        Err(unavailable(reason, fix))
    }

    pub(super) fn dump(
        _scratch: &std::path::Path,
    ) -> std::result::Result<std::path::PathBuf, String> {
        Err(why().0)
    }

    pub(super) fn to_pprof(_raw: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
        Err(why().0)
    }
}

#[cfg(feature = "dhat")]
mod dhat_backend {
    use super::{unavailable, Taken};
    use crate::error::Result;
    use parking_lot::Mutex;
    use std::path::{Path, PathBuf};

    struct Session {
        profiler: dhat::Profiler,
        /// Private directory (0700) dhat writes its file into when the profiler is dropped.
        dir: PathBuf,
    }

    static SESSION: Mutex<Option<Session>> = Mutex::new(None);

    const FILE: &str = "dhat-heap.json";

    pub(super) fn running() -> bool {
        SESSION.lock().is_some()
    }

    /// Starts a dhat heap-profiling session: from now on dhat records every allocation with
    /// its call stack (slow: dhat costs far more than heapscope, so use it to investigate,
    /// not in production). [`capture`](crate::capture) writes the session so far as
    /// `dhat-heap.json` and starts the next one; [`stop_dhat`] ends it.
    ///
    /// Needs `Tracked<dhat::Alloc>` (or `dhat::Alloc`) as the global allocator.
    ///
    /// # Errors
    /// [`Error::ProfilingUnavailable`](crate::Error::ProfilingUnavailable) when a session is
    /// already running, a dhat profiler was started outside heapscope, or dhat is not the
    /// global allocator; [`Error::Io`](crate::Error::Io) when its private scratch directory
    /// cannot be created.
    ///
    /// ```
    /// # heapscope::install!();
    /// // With `Tracked<dhat::Alloc>` installed this starts a session; here it says why not.
    /// if let Err(e) = heapscope::profiling::start_dhat() {
    ///     eprintln!("{e}");
    /// }
    /// # let _ = heapscope::profiling::stop_dhat();
    /// ```
    pub fn start_dhat() -> Result<()> {
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let mut session = SESSION.lock();
        if session.is_some() {
            return Err(unavailable(
                "a dhat session is already running".to_owned(),
                "capture() writes it; stop_dhat() ends it".to_owned(),
            ));
        }
        let dir = std::env::temp_dir().join(format!("heapscope-dhat-{}", std::process::id()));
        crate::artifacts::private_dir(&dir)?;
        *session = Some(begin(dir)?);
        Ok(())
    }

    /// Ends the dhat session started by [`start_dhat`] without writing anything. Returns
    /// whether one was running.
    ///
    /// ```
    /// # heapscope::install!();
    /// assert!(!heapscope::profiling::stop_dhat());
    /// ```
    pub fn stop_dhat() -> bool {
        let Some(session) = SESSION.lock().take() else { return false };
        finish(session, None);
        true
    }

    fn begin(dir: PathBuf) -> Result<Session> {
        let file = dir.join(FILE);
        let _ = std::fs::remove_file(&file);
        let built = std::panic::catch_unwind(|| dhat::Profiler::builder().file_name(&file).build());
        let Ok(profiler) = built else {
            return Err(unavailable(
                "a dhat profiler started outside heapscope is already running".to_owned(),
                "drop that dhat::Profiler first".to_owned(),
            ));
        };
        // dhat records only what `dhat::Alloc` allocates: check that it saw this block.
        let before = dhat::HeapStats::get().total_blocks;
        drop(std::hint::black_box(Box::new([0u8; 64])));
        if dhat::HeapStats::get().total_blocks == before {
            finish(Session { profiler, dir }, None);
            return Err(unavailable(
                "dhat::Alloc is not this program's global allocator, so dhat sees no \
                 allocations"
                    .to_owned(),
                "install Tracked<dhat::Alloc> (or dhat::Alloc) as the #[global_allocator]"
                    .to_owned(),
            ));
        }
        Ok(Session { profiler, dir })
    }

    /// Drops the profiler (dhat writes its file then) and removes the session's directory.
    /// With `keep_in` (the bundle's scratch directory, from where the bundle links it), the
    /// file is moved there first, 0600, and its new path returned. Moved, not read: it lists
    /// every allocation site of the session, and until 2026-12-05 each capture read it whole
    /// into memory and wrote a copy.
    fn finish(session: Session, keep_in: Option<&Path>) -> Option<PathBuf> {
        let file = session.dir.join(FILE);
        drop(session.profiler);
        let kept = keep_in.and_then(|to| {
            let to = to.join(FILE);
            crate::artifacts::move_private(&file, &to).ok().map(|()| to)
        });
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_dir(&session.dir);
        kept
    }

    /// Ends the session, keeps its file in `scratch` and starts the next session.
    pub(super) fn take(scratch: &Path) -> Taken {
        let mut guard = SESSION.lock();
        let Some(session) = guard.take() else {
            return Taken::Unavailable {
                reason: "the dhat session ended before the capture".to_owned(),
                fix: "start one with heapscope::profiling::start_dhat()".to_owned(),
            };
        };
        let dir = session.dir.clone();
        let kept = finish(session, Some(scratch));
        let mut notes = Vec::new();
        match crate::artifacts::private_dir(&dir).and_then(|()| begin(dir)) {
            Ok(next) => *guard = Some(next),
            Err(e) => notes.push(format!("the next dhat session could not start: {e}")),
        }
        match kept {
            Some(path) => {
                let files = vec![(FILE, super::FileContents::File(path))];
                Taken::Files { backend: "dhat", files, notes }
            }
            None => Taken::Unavailable {
                reason: "dhat did not write its profile (see its message on standard error)"
                    .to_owned(),
                fix: "check that the temporary directory and the bundle's directory are \
                      writable and have room"
                    .to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::explain_prof_off;

    #[test]
    fn a_misspelled_variable_is_named() {
        let (reason, fix) = explain_prof_off(None, Some("prof:true"), false);
        assert!(reason.contains("MALLOC_CONF=prof:true") && reason.contains("does not read"));
        assert!(fix.contains("_RJEM_MALLOC_CONF"), "{fix}");
    }

    #[test]
    fn prof_false_in_the_environment_is_named() {
        let (reason, fix) = explain_prof_off(Some("prof:false,narenas:2"), None, true);
        assert!(reason.contains("_RJEM_MALLOC_CONF=prof:false,narenas:2"), "{reason}");
        assert!(fix.contains("remove prof:false"), "{fix}");
    }

    #[test]
    fn without_the_feature_the_feature_is_the_fix() {
        let (_, fix) = explain_prof_off(None, None, false);
        assert!(fix.contains("`jemalloc-profiling`"), "{fix}");
        let (reason, _) = explain_prof_off(Some("narenas:2"), None, true);
        assert!(reason.contains("overrode"), "{reason}");
    }
}
