//! A real jemalloc heap profile, end to end: heapscope's start-up configuration leaves
//! profiling compiled in but inactive, `activate` starts sampling, `capture` writes the raw dump
//! and a gzipped pprof, and the real readers (`go tool pprof` from Debian's `golang-go`, `jeprof`
//! from `libjemalloc-dev`) find the function that holds the memory.
//!
//! Own process (`harness = false`): jemalloc's profiler is process-wide. With
//! `HEAPSCOPE_REQUIRE_TOOLS=1` (set by `.ci/run`, which installs them) a missing reader fails
//! the test instead of skipping that check.

use heapscope::profiling::{self, ProfilingOptions, ProfilingStatus};
use heapscope::{CaptureOptions, HeapProfile};
use std::path::Path;
use std::process::Command;

heapscope::install!();

/// 8 MiB in 128 blocks of 64 KiB, held by one recognisable function.
#[inline(never)]
fn hold_eight_mebibytes_for_the_profile() -> Vec<Box<[u8]>> {
    let held = (0..128).map(|i| vec![i as u8; 64 << 10].into_boxed_slice()).collect();
    // Work after the call keeps this frame on the stack (no tail call in release builds).
    std::hint::black_box(held)
}

/// A method that holds 8 MiB too: in-process symbolisation leaves methods' frames unnamed
/// (`[binary]` in `go tool pprof -top`), so only the file and line identify it.
struct Agent;

impl Agent {
    /// The line of the allocation, as `go tool pprof -lines` shows the method's frame.
    const HOLD_LINE: u32 = line!() + 4;

    #[inline(never)]
    fn hold_eight_mebibytes(&self) -> Vec<Box<[u8]>> {
        let held = (0..128).map(|i| vec![i as u8; 64 << 10].into_boxed_slice()).collect();
        std::hint::black_box(held)
    }
}

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("HEAPSCOPE_REQUIRE_TOOLS").is_none(),
            "{name} is required (HEAPSCOPE_REQUIRE_TOOLS is set) but not installed"
        );
        eprintln!("skipping the {name} check: not installed");
    }
    found
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

/// Run as a child with `_RJEM_MALLOC_CONF=prof:false`: profiling is compiled in but off, and
/// every entry point says so with the setting to blame.
fn prof_off_child(base: &Path) {
    match profiling::status() {
        ProfilingStatus::Unavailable { reason, fix } => {
            assert!(reason.contains("_RJEM_MALLOC_CONF=prof:false"), "{reason}");
            assert!(fix.contains("remove prof:false"), "{fix}");
        }
        other => panic!("expected unavailable profiling, got {other:?}"),
    }
    let err = profiling::activate().unwrap_err();
    assert!(matches!(err, heapscope::Error::ProfilingUnavailable { .. }), "{err}");
    let bundle = heapscope::capture(&CaptureOptions::new(base)).unwrap();
    assert!(
        matches!(&bundle.manifest.heap_profile, HeapProfile::Unavailable { reason, .. } if reason.contains("prof:false")),
        "{:?}",
        bundle.manifest.heap_profile
    );
    assert!(bundle.directory.join("report.json").is_file());
    assert!(!bundle.directory.join("jemalloc.heap").exists());
    let manifest = std::fs::read_to_string(bundle.directory.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"status\": \"unavailable\""), "{manifest}");
}

fn main() {
    if let Some(base) = std::env::var_os("HEAPSCOPE_PROF_OFF_CHILD") {
        prof_off_child(Path::new(&base));
        return;
    }
    let base = std::env::temp_dir().join(format!("heapscope-prof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    // Compiled in and enabled, not sampling: what `jemalloc-profiling` promises at start-up.
    match profiling::status() {
        ProfilingStatus::Jemalloc { active: false, ever_active: false, sample_interval_bytes } => {
            assert_eq!(sample_interval_bytes, profiling::DEFAULT_SAMPLE_INTERVAL)
        }
        other => panic!("expected inactive jemalloc profiling at start-up, got {other:?}"),
    }

    // A capture before activation writes an empty profile and says why it is empty.
    let early = heapscope::capture(&CaptureOptions::new(&base)).unwrap();
    match &early.manifest.heap_profile {
        HeapProfile::Written { backend, notes, .. } => {
            assert_eq!(backend, "jemalloc");
            assert!(notes.iter().any(|n| n.contains("never active")), "{notes:?}");
        }
        other => panic!("expected a (sample-less) profile, got {other:?}"),
    }

    // Asking, starting and stopping charge the caller's owner nothing: `status` probes
    // jemalloc with a 64 KiB block of heapscope's own (once charged to the caller: a 64 KiB
    // peak and 192 KiB allocated by three calls).
    let caller = heapscope::Owner::named("profiling_caller");
    caller.in_scope(|| {
        let _ = std::hint::black_box(profiling::status());
        profiling::activate().unwrap();
        profiling::deactivate().unwrap();
    });
    let charged = caller.stats();
    assert_eq!((charged.peak_bytes, charged.total_bytes), (0, 0), "{charged:?}");
    // Whether jemalloc is the global allocator is probed once (with a 64 KiB block): asking
    // again, as every capture does, allocates nothing of heapscope's own. Each call probed
    // anew: 65 594 B of heapscope.internal a call.
    let internal = heapscope::Owner::internal();
    let before = internal.stats().total_bytes;
    let _ = std::hint::black_box(profiling::status());
    let asked = internal.stats().total_bytes - before;
    assert!(asked < 1024, "status() allocated {asked} bytes of heapscope.internal");

    assert!(profiling::activate_with(ProfilingOptions::default().sample_interval(3)).is_err());
    profiling::activate_with(ProfilingOptions::default().sample_interval(1 << 14)).unwrap();
    match profiling::status() {
        ProfilingStatus::Jemalloc { active: true, ever_active: true, sample_interval_bytes } => {
            assert_eq!(sample_interval_bytes, 1 << 14)
        }
        other => panic!("expected active profiling, got {other:?}"),
    }
    // A thread's next sample point was drawn under the previous interval (512 KiB on
    // average): until it is reached nothing is sampled, which once made the held 8 MiB show
    // as 5.7 MB. 8 MiB allocated and freed first passes it (a miss now has odds of e^-16).
    for _ in 0..128 {
        drop(std::hint::black_box(vec![0u8; 64 << 10]));
    }
    let held = hold_eight_mebibytes_for_the_profile();
    let held_by_method = Agent.hold_eight_mebibytes();

    let bundle = heapscope::capture(&CaptureOptions::new(&base)).unwrap();
    let files = match &bundle.manifest.heap_profile {
        HeapProfile::Written { backend, files, notes } => {
            assert_eq!(backend, "jemalloc");
            assert!(notes.is_empty(), "{notes:?}");
            files.clone()
        }
        other => panic!("expected a heap profile, got {other:?}"),
    };
    assert_eq!(files, ["heap.pb.gz", "jemalloc.heap"]);
    let dir = &bundle.directory;
    assert_eq!(mode(dir), 0o700);
    for name in ["report.json", "heap.pb.gz", "jemalloc.heap", "manifest.json", "README.txt"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    assert!(!dir.join(".profile-scratch").exists(), "the scratch directory is removed");
    // The manifest lists report.json first, then the profile, with sizes that match the disk.
    let names: Vec<_> = bundle.manifest.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(&names[..3], ["report.json", "heap.pb.gz", "jemalloc.heap"]);
    for f in &bundle.manifest.files {
        assert_eq!(std::fs::metadata(dir.join(&f.name)).unwrap().len(), f.bytes, "{}", f.name);
    }
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("go tool pprof") && readme.contains("jeprof"), "{readme}");

    let raw = std::fs::read_to_string(dir.join("jemalloc.heap")).unwrap();
    assert!(raw.starts_with("heap_v2/16384"), "{}", &raw[..raw.len().min(80)]);
    assert!(raw.contains("MAPPED_LIBRARIES:"));

    if tool("go") {
        let text = pprof(&["-top"], &dir.join("heap.pb.gz"), &base);
        let line = text
            .lines()
            .find(|l| l.contains("hold_eight_mebibytes_for_the_profile"))
            .unwrap_or_else(|| panic!("go tool pprof -top does not show the holder:\n{text}"));
        // The `cum` column: sampled and un-biased, it is near the 8 MiB held.
        let cum_mb = cumulative_megabytes(line);
        assert!((6.0..=11.0).contains(&cum_mb), "cum {cum_mb} MB in: {line}");
        eprintln!("go tool pprof: {line}");

        // The method is found with the command heapscope prints (`heapscope show`,
        // README.txt), by its file and line.
        let text = pprof(&["-top", "-cum", "-lines"], &dir.join("heap.pb.gz"), &base);
        let at = format!("profiling_jemalloc.rs:{}", Agent::HOLD_LINE);
        let line = text.lines().find(|l| l.ends_with(&at)).unwrap_or_else(|| {
            panic!("go tool pprof -top -cum -lines does not show {at}:\n{text}")
        });
        let cum_mb = cumulative_megabytes(line);
        assert!((6.0..=11.0).contains(&cum_mb), "cum {cum_mb} MB in: {line}");
        let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
        assert!(readme.contains("go tool pprof -top -cum -lines heap.pb.gz"), "{readme}");
    }

    if tool("jeprof") {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("jeprof")
            .args(["--text", "--inuse_space"])
            .arg(&exe)
            .arg(dir.join("jemalloc.heap"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            text.contains("hold_eight_mebibytes_for_the_profile"),
            "jeprof does not show the holder:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Without the pprof conversion (for captures under memory pressure): the raw dump only,
    // and a note saying how to read it.
    let raw_only = heapscope::capture(&CaptureOptions::new(&base).pprof(false)).unwrap();
    match &raw_only.manifest.heap_profile {
        HeapProfile::Written { files, notes, .. } => {
            assert_eq!(files, &["jemalloc.heap"]);
            assert!(notes.iter().any(|n| n.contains("pprof(false)")), "{notes:?}");
        }
        other => panic!("expected the raw dump, got {other:?}"),
    }
    assert!(!raw_only.directory.join("heap.pb.gz").exists());

    // The same binary started with prof:false in the environment.
    let child_base = base.join("prof-off");
    let status = Command::new(std::env::current_exe().unwrap())
        .env("HEAPSCOPE_PROF_OFF_CHILD", &child_base)
        .env("_RJEM_MALLOC_CONF", "prof:false")
        .status()
        .unwrap();
    assert!(status.success(), "the prof:false child failed");

    a_large_dump_is_never_read_into_memory(&base.join("large"));
    captures_while_threads_allocate(&base.join("busy"));
    repeated_captures_keep_no_memory(&base.join("repeat"));

    profiling::deactivate().unwrap();
    assert!(matches!(profiling::status(), ProfilingStatus::Jemalloc { active: false, .. }));
    drop((held, held_by_method));
    std::fs::remove_dir_all(&base).unwrap();
    eprintln!("profiling_jemalloc: ok");
}

/// jemalloc's dump holds the process's whole memory map (`MAPPED_LIBRARIES:`, a copy of
/// `/proc/self/maps`), so it grows with the process, not with what heapscope writes about it.
/// 30 000 mappings (one region of 30 000 pages, every other page made inaccessible so that
/// no two neighbours merge) give a dump of about 1.5 MB. A capture without the pprof
/// conversion (the one for memory pressure) links it into the bundle, reading it once through
/// a buffer for its hash, so what heapscope.internal allocates during the capture (an upper
/// bound of its peak above what it held) does not grow with the dump: 359 315 B with a 7 KB
/// dump and 359 305 B with the large one (the report's reading of /proc, 357 KB in all, freed
/// as it goes). Asserted: it grows by less than a fifth of the large dump. It read the dump
/// whole (and skipped it afterwards if it exceeded the cap): 1 903 204 B against 433 210 B.
fn a_large_dump_is_never_read_into_memory(base: &Path) {
    const PAGES: usize = 30_000;
    let page = 4096;
    let internal = heapscope::Owner::internal();
    let allocated_by_capture = || {
        let before = internal.stats().total_bytes;
        let bundle = heapscope::capture(&CaptureOptions::new(base).pprof(false)).unwrap();
        let dump = bundle.manifest.files.iter().find(|f| f.name == "jemalloc.heap");
        let dump = dump.unwrap_or_else(|| panic!("no dump: {:?}", bundle.manifest)).bytes;
        (internal.stats().total_bytes - before, dump, bundle.directory)
    };
    let (small_cost, small_dump, _) = allocated_by_capture();
    // SAFETY: a fresh private anonymous mapping; no pointer into it exists yet.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGES * page,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(region, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
    for i in (0..PAGES).step_by(2) {
        // SAFETY: page `i` lies inside the mapping made above, which nothing reads.
        let done = unsafe { libc::mprotect(region.cast::<u8>().add(i * page).cast(), page, 0) };
        assert_eq!(done, 0, "mprotect: {}", std::io::Error::last_os_error());
    }
    let (large_cost, dump, dir) = allocated_by_capture();
    // SAFETY: the mapping made above, unmapped once; nothing points into it.
    assert_eq!(unsafe { libc::munmap(region, PAGES * page) }, 0);
    assert!(dump > 1 << 20, "the dump is only {dump} bytes");
    let raw = std::fs::read(dir.join("jemalloc.heap")).unwrap();
    assert_eq!(raw.len() as u64, dump);
    assert!(raw.starts_with(b"heap_v2/") && raw.ends_with(b"\n"));
    assert_eq!(mode(&dir.join("jemalloc.heap")), 0o600);
    eprintln!(
        "captures allocated {small_cost} B with a {small_dump}-byte dump, {large_cost} B with a \
         {dump}-byte one"
    );
    assert!(
        large_cost.saturating_sub(small_cost) < dump / 5,
        "a {dump}-byte dump: the capture allocated {large_cost} B, {small_cost} B with a \
         {small_dump}-byte one"
    );
}

/// Three captures while four threads allocate and free under owners, sampled every 16 KiB:
/// no deadlock between jemalloc's dump lock and the allocation path (a watchdog aborts after
/// 60 s), every capture has its profile, and the threads' owners are back to zero.
fn captures_while_threads_allocate(base: &Path) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..600 {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            eprintln!("captures under load did not finish within 60 s");
            std::process::abort();
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let owner = heapscope::Owner::named(format!("busy_{t}"));
                let _scope = owner.enter();
                let mut rounds = 0u64;
                while !stop.load(Ordering::SeqCst) || rounds < 100 {
                    let v: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 100 + i * 37]).collect();
                    drop(std::hint::black_box(v));
                    rounds += 1;
                }
                owner
            })
        })
        .collect();
    for _ in 0..3 {
        let bundle = heapscope::capture(&CaptureOptions::new(base)).unwrap();
        assert!(
            matches!(&bundle.manifest.heap_profile, HeapProfile::Written { files, .. } if files.len() == 2),
            "{:?}",
            bundle.manifest.heap_profile
        );
    }
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        let owner = worker.join().unwrap();
        assert_eq!(owner.stats().live_bytes, 0, "{owner:?}");
    }
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
}

/// heapscope's own live bytes (the `heapscope.internal` owner, which every capture runs under:
/// report, pprof conversion, symbolisation) stay small and do not grow with the number of
/// captures: the symboliser's cache of parsed debug information is given back each time.
fn repeated_captures_keep_no_memory(base: &Path) {
    let internal = || {
        heapscope::Snapshot::capture().owner("heapscope.internal").map_or(0, |o| o.stats.live_bytes)
    };
    for _ in 0..3 {
        heapscope::capture(&CaptureOptions::new(base)).unwrap();
    }
    let warm = internal();
    for _ in 0..10 {
        heapscope::capture(&CaptureOptions::new(base)).unwrap();
    }
    let after = internal();
    // The symboliser's cache (tens of MiB of parsed debug information) is given back.
    assert!(warm < 4 << 20, "heapscope.internal keeps {warm} bytes after 3 captures");
    assert!(
        after <= warm + (64 << 10),
        "10 more captures grew heapscope.internal from {warm} to {after} bytes"
    );
    let peak = heapscope::Snapshot::capture()
        .owner("heapscope.internal")
        .map_or(0, |o| o.stats.peak_bytes);
    eprintln!("heapscope.internal after 3 captures: {warm} B, after 13: {after} B, peak {peak} B");
}

/// `go tool pprof <flags> -sample_index=inuse_space <profile>`'s standard output; fails the
/// test when the tool fails. `home` is its cache's home.
fn pprof(flags: &[&str], profile: &std::path::Path, home: &std::path::Path) -> String {
    let out = Command::new("go")
        .args(["tool", "pprof"])
        .args(flags)
        .arg("-sample_index=inuse_space")
        .arg(profile)
        .env("HOME", home)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// The `cum` column (the 4th number) of a `go tool pprof -top` line, in MB.
fn cumulative_megabytes(line: &str) -> f64 {
    let cum = line.split_whitespace().nth(3).unwrap();
    let (number, unit) = cum.split_at(cum.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let value: f64 = number.parse().unwrap();
    match unit {
        "kB" => value / 1024.0,
        "MB" => value,
        "GB" => value * 1024.0,
        _ => panic!("unexpected unit in {line}"),
    }
}
