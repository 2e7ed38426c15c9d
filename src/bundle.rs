//! `heapscope::capture`: an on-demand diagnostics bundle — the full report first (so the
//! bundle has context whatever happens next), then a heap profile where one can be taken, then
//! a manifest and a README with the privacy notice. Private (0700/0600), local, opt-in.

use crate::artifacts::{self, WrittenFile};
use crate::error::{Error, Result};
use crate::profiling::{self, FileContents};
use crate::report::{Report, ReportOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What every bundle says about its contents; also returned to the caller to show the user.
pub const PRIVACY_NOTICE: &str = "\
This directory was written by heapscope on request. It may contain: owner and retained-item \
labels chosen by the program (which can include file names, commands or user text), the \
process id and command names of this process and its children, memory figures, and - when a \
heap profile is included - call stacks with function names, the paths of the program's binary \
and libraries, and (in a dhat profile) the program's full command line. Share it only with \
people who may see that. Nothing was sent anywhere: \
the files exist only on this machine, readable by this user alone.";

/// Options for [`capture`].
///
/// ```
/// # heapscope::install!();
/// let options = heapscope::CaptureOptions::new("/var/tmp/agent").max_bytes(64 << 20);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    base: PathBuf,
    max_bytes: u64,
    report: ReportOptions,
    pprof: bool,
}

impl Default for CaptureOptions {
    /// The base is the current working directory; bundles go to
    /// `./diagnostics/memory/<UTC timestamp>-<pid>/`; at most 256 MiB.
    fn default() -> Self {
        CaptureOptions {
            base: PathBuf::from("."),
            max_bytes: 256 << 20,
            report: ReportOptions::default(),
            pprof: true,
        }
    }
}

impl CaptureOptions {
    /// Bundles go under `<base>/diagnostics/memory/`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        CaptureOptions { base: base.into(), ..Default::default() }
    }

    /// The most bytes a bundle may hold; files that would exceed it are not written (and the
    /// manifest says so). A heap profile is written only if 8 KiB remain after it for the
    /// manifest and the README, which describe it and carry the privacy notice. A cap too small for the report itself makes [`capture`] fail with
    /// [`Error::BundleCapTooSmall`](crate::Error::BundleCapTooSmall).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Whether a jemalloc profile is also converted to `heap.pb.gz` (default: yes). The
    /// conversion symbolises in-process, which briefly needs memory to parse the binary's
    /// debug information (about 30–50 MiB for heapscope's own test binaries; given back
    /// afterwards). Under memory pressure (`PressureMonitorBuilder::bundle_on_critical`) turn
    /// it off: the raw `jemalloc.heap` is still written, and `jeprof` symbolises it later with
    /// the program's binary.
    ///
    /// ```
    /// # heapscope::install!();
    /// let options = heapscope::CaptureOptions::new("/var/tmp/agent").pprof(false);
    /// # let _ = options;
    /// ```
    pub fn pprof(mut self, convert: bool) -> Self {
        self.pprof = convert;
        self
    }

    /// Options for the report inside the bundle.
    pub fn report(mut self, options: ReportOptions) -> Self {
        self.report = options;
        self
    }
}

/// Whether the bundle has a heap profile, and if not, why and what to change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HeapProfile {
    /// A profile was written.
    Written {
        /// `jemalloc` or `dhat`.
        backend: String,
        /// Its file names in the bundle.
        files: Vec<String>,
        /// What the reader should know about it (an empty profile, a file that could not be
        /// made).
        notes: Vec<String>,
    },
    /// No profile could be taken.
    Unavailable {
        /// Why.
        reason: String,
        /// What to change to get one.
        fix: String,
    },
}

/// A file that was not written, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The file name.
    pub name: String,
    /// Why it is missing.
    pub reason: String,
}

/// The `manifest.json` of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// heapscope's version.
    pub heapscope_version: String,
    /// The bundle directory. In `manifest.json` a path that is not UTF-8 is written with
    /// U+FFFD in place of the bytes that are not (JSON strings are text).
    #[serde(serialize_with = "path_as_text")]
    pub directory: PathBuf,
    /// Files written before the manifest, in order.
    pub files: Vec<WrittenFile>,
    /// The heap profile's outcome.
    pub heap_profile: HeapProfile,
    /// Files that were not written.
    pub skipped: Vec<Skipped>,
    /// The privacy notice.
    pub privacy_notice: String,
}

/// `path` as a JSON string: lossily where it is not UTF-8. Serde's own refuses such a path,
/// and `manifest.json` was then written empty.
fn path_as_text<S: serde::Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// What [`capture`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bundle {
    /// The bundle directory (absolute).
    pub directory: PathBuf,
    /// The manifest, as written to `manifest.json`.
    pub manifest: Manifest,
    /// [`PRIVACY_NOTICE`], to show the user.
    pub privacy_notice: &'static str,
}

/// Writes a diagnostics bundle to `<base>/diagnostics/memory/<UTC timestamp>-<pid>/`:
/// `report.json` (written and synced first), a heap profile where one can be taken (otherwise
/// the manifest says why and how to get one), `manifest.json` (files, sizes, SHA-256, what is
/// missing and why) and `README.txt` (what the files contain, the privacy notice).
///
/// Directories are created 0700 and files 0600; nothing existing is replaced or followed.
/// Files that would take the bundle past [`CaptureOptions::max_bytes`] are skipped, and the
/// manifest lists them, except `report.json`: a bundle that cannot hold its report and the
/// room its `README.txt` and `manifest.json` need after it is refused, so that no bundle goes
/// without the privacy notice.
///
/// # Errors
/// [`Error::UnsafePath`] for a directory that is a link, not a directory, another user's, or
/// writable by others; [`Error::BundleCapTooSmall`] when `report.json` and 8 KiB for the
/// README and manifest exceed the cap;
/// [`Error::Io`] when `report.json` cannot be written. With either of the last two, the bundle
/// directory is removed again. Failures after `report.json` are recorded in the manifest
/// instead.
///
/// ```no_run
/// let bundle = heapscope::capture(&heapscope::CaptureOptions::new("/var/tmp/agent")).unwrap();
/// eprintln!("{}\nwritten to {}", bundle.privacy_notice, bundle.directory.display());
/// ```
pub fn capture(options: &CaptureOptions) -> Result<Bundle> {
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    // Each directory heapscope adds below the base is held to the full rules (a real
    // directory, ours, private): checked only at `memory`, a link at `diagnostics` was
    // followed to wherever it led.
    let diagnostics = options.base.join("diagnostics");
    artifacts::private_dir(&diagnostics)?;
    let root = diagnostics.join("memory");
    artifacts::private_dir(&root)?;
    let dir = fresh_bundle_dir(&root)?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();

    // A bundle without its report is no bundle: refuse it (past the cap, or unwritable), and
    // leave no empty directory. Nor is one without its README (the privacy notice): the report
    // leaves room for it and the manifest, as a profile does (a cap that held the report alone
    // once gave a bundle of `report.json` and nothing saying what it contains). Streamed to
    // the file: the report was made one string first, 2.5 MB above what heapscope held with
    // 4 000 owners where the report itself peaked at 1.0 MB (`tests/diag_memory.rs`).
    let report = Report::capture_with(&options.report);
    let room = options.max_bytes.saturating_sub(DESCRIPTION_ROOM);
    let written =
        artifacts::write_new_streamed(&dir, "report.json", room, |out| report.write_json(out));
    let mut used = match written {
        Ok(Some(written)) => {
            let bytes = written.bytes;
            files.push(written);
            bytes
        }
        failed => {
            let _ = std::fs::remove_dir(&dir);
            let mut counted = ByteCount(0);
            let _ = report.write_json(&mut counted);
            let too_big =
                Error::BundleCapTooSmall { max_bytes: options.max_bytes, report_bytes: counted.0 };
            return Err(failed.err().unwrap_or(too_big));
        }
    };
    drop(report);
    // Writes a file if it fits under the cap with `keep_free` bytes still left after it.
    let mut write = |name: &str,
                     contents: &FileContents,
                     keep_free: u64,
                     files: &mut Vec<WrittenFile>,
                     skipped: &mut Vec<Skipped>|
     -> Result<bool> {
        let len = match contents {
            FileContents::Bytes(bytes) => bytes.len() as u64,
            FileContents::File(path) => std::fs::metadata(path)
                .map_err(|e| Error::Io {
                    path: path.clone(),
                    action: "inspect",
                    kind: e.kind(),
                    message: e.to_string(),
                })?
                .len(),
        };
        let needed = used.saturating_add(len).saturating_add(keep_free);
        if needed > options.max_bytes {
            let kept = if keep_free == 0 {
                String::new()
            } else {
                format!(" with {keep_free} bytes kept for the manifest and README")
            };
            skipped.push(Skipped {
                name: name.to_owned(),
                reason: format!(
                    "{len} bytes would exceed the bundle cap of {} bytes{kept}",
                    options.max_bytes
                ),
            });
            return Ok(false);
        }
        let written = match contents {
            FileContents::Bytes(bytes) => artifacts::write_new(&dir, name, bytes)?,
            // Linked into the bundle (the scratch directory is inside it), read once for its
            // hash: never read whole into memory, nor copied.
            FileContents::File(path) => artifacts::publish_file(&dir, name, path)?,
        };
        used += written.bytes;
        files.push(written);
        Ok(true)
    };

    // A profile is written only if the manifest and the README (with the privacy notice)
    // still fit after it: under a cap that held the report and the profile but not them, the
    // most sensitive file was kept and the files describing it were dropped.
    let heap_profile = heap_profile(&dir, options.pprof, &mut |name, contents| {
        write(name, contents, DESCRIPTION_ROOM, &mut files, &mut skipped)
    });

    let manifest = |files: &[WrittenFile], skipped: &[Skipped]| Manifest {
        heapscope_version: env!("CARGO_PKG_VERSION").to_owned(),
        directory: artifacts::absolute(&dir),
        files: files.to_vec(),
        heap_profile: heap_profile.clone(),
        skipped: skipped.to_vec(),
        privacy_notice: PRIVACY_NOTICE.to_owned(),
    };
    // After report.json, failures are recorded rather than returned: the bundle stays useful.
    // The README first (it carries the privacy notice), then the manifest, which lists it.
    let readme = FileContents::Bytes(readme(&manifest(&files, &skipped)).into_bytes());
    if let Err(e) = write("README.txt", &readme, 0, &mut files, &mut skipped) {
        skipped.push(Skipped { name: "README.txt".to_owned(), reason: e.to_string() });
    }
    let on_disk = manifest(&files, &skipped);
    let written =
        serde_json::to_vec_pretty(&on_disk).map_err(|e| e.to_string()).and_then(|contents| {
            write("manifest.json", &FileContents::Bytes(contents), 0, &mut files, &mut skipped)
                .map_err(|e| e.to_string())
        });
    if let Err(reason) = written {
        skipped.push(Skipped { name: "manifest.json".to_owned(), reason });
    }
    Ok(Bundle {
        directory: artifacts::absolute(&dir),
        // Unlike manifest.json, which cannot list itself, this also says how the manifest and
        // the README fared.
        manifest: manifest(&files, &skipped),
        privacy_notice: PRIVACY_NOTICE,
    })
}

/// Counts what is written to it, keeping nothing: a report's size without its text.
struct ByteCount(u64);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes the report and a heap profile leave free under the cap for `manifest.json` and
/// `README.txt`: each
/// is about 1.5 KiB with the privacy notice, and well under 4 KiB with every note and skipped
/// file a bundle can have.
const DESCRIPTION_ROOM: u64 = 8 << 10;

/// `<root>/<UTC timestamp>-<pid>`, with `-2`, `-3`… if that exists already.
fn fresh_bundle_dir(root: &Path) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    let pid = std::process::id();
    for n in 1..=100 {
        let name = if n == 1 { format!("{stamp}-{pid}") } else { format!("{stamp}-{pid}-{n}") };
        let dir = root.join(name);
        // Exclusively: two captures in the same millisecond (a signal's, a monitor's and the
        // program's own) once both took the one directory, and all but one failed.
        if artifacts::fresh_private_dir(&dir)? {
            return Ok(dir);
        }
    }
    Err(Error::UnsafePath {
        path: root.to_owned(),
        reason: "already holds 100 bundles for this moment",
    })
}

/// Takes a heap profile with the backend `profiling::status` names and writes its files with
/// `write` (which applies the bundle cap). Never fails: what went wrong is in the outcome.
fn heap_profile(
    dir: &Path,
    pprof: bool,
    write: &mut dyn FnMut(&str, &FileContents) -> Result<bool>,
) -> HeapProfile {
    // jemalloc writes its dump itself (following links, mode 0644): give it a directory only
    // this process has seen.
    let scratch = dir.join(".profile-scratch");
    if let Err(e) = artifacts::private_dir(&scratch) {
        return HeapProfile::Unavailable {
            reason: format!("no scratch directory for the profiler: {e}"),
            fix: "check that the bundle directory is writable".to_owned(),
        };
    }
    let taken = profiling::take(&scratch, pprof);
    // The scratch directory (jemalloc's dump, which the bundle copies) goes once the files
    // are written.
    let outcome = write_profile(taken, write);
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

/// Writes the files of a profile `taken` with `write`; what went wrong is in the outcome.
fn write_profile(
    taken: profiling::Taken,
    write: &mut dyn FnMut(&str, &FileContents) -> Result<bool>,
) -> HeapProfile {
    match taken {
        profiling::Taken::Unavailable { reason, fix } => HeapProfile::Unavailable { reason, fix },
        profiling::Taken::Files { backend, files, mut notes } => {
            let mut written = Vec::new();
            for (name, contents) in files {
                match write(name, &contents) {
                    Ok(true) => written.push(name.to_owned()),
                    Ok(false) => notes.push(format!("{name} would exceed the bundle cap")),
                    Err(e) => notes.push(format!("{name} could not be written: {e}")),
                }
            }
            if written.is_empty() {
                return HeapProfile::Unavailable {
                    reason: format!(
                        "the {backend} profile was taken but not written: {}",
                        notes.join("; ")
                    ),
                    fix: "raise CaptureOptions::max_bytes, or free room in the bundle directory"
                        .to_owned(),
                };
            }
            HeapProfile::Written { backend: backend.to_owned(), files: written, notes }
        }
    }
}

/// What a heap profile file is and how to read it, for README.txt.
fn describe_profile_file(name: &str) -> &'static str {
    match name {
        "heap.pb.gz" => {
            "jemalloc heap profile as gzipped pprof (sampled live bytes by call stack, \
             symbolised; methods' frames may be unnamed, so read it by file and line):\n  \
             go tool pprof -top -cum -lines heap.pb.gz, or open it in Pyroscope or Parca."
        }
        "jemalloc.heap" => {
            "jemalloc's raw heap profile dump (heap_v2 text with the process's memory maps):\n  \
             jeprof --text <the program's binary> jemalloc.heap"
        }
        "dhat-heap.json" => {
            "dhat heap profile (every allocation of the session, by call stack):\n  open it \
             with DHAT's viewer, dh_view.html (shipped with valgrind)."
        }
        _ => "heap profile.",
    }
}

fn readme(manifest: &Manifest) -> String {
    let mut text = String::from("heapscope diagnostics bundle\n\n");
    text.push_str(PRIVACY_NOTICE);
    text.push_str("\n\nFiles:\n");
    text.push_str("- report.json: heapscope's memory report (schema in heapscope's docs: `Report`):\n  process and child-process memory, allocator statistics, limits, owners, retained items,\n  phases, pressure, suggestions.\n");
    match &manifest.heap_profile {
        HeapProfile::Written { files, notes, .. } => {
            for f in files {
                text.push_str(&format!("- {f}: {}\n", describe_profile_file(f)));
            }
            for note in notes {
                text.push_str(&format!("  note: {note}\n"));
            }
        }
        HeapProfile::Unavailable { reason, fix } => {
            text.push_str(&format!("- no heap profile: {reason}. To get one: {fix}.\n"));
        }
    }
    text.push_str(
        "- manifest.json: every file with its size and SHA-256, and what is missing and why.\n",
    );
    for s in &manifest.skipped {
        text.push_str(&format!("- missing {}: {}\n", s.name, s.reason));
    }
    text
}
