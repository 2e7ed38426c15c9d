//! Real write failures at each step of a bundle and of a pressure dump: `report.json` itself, the
//! heap profile after it, and phase 1 of a dump. Each leaves either the earlier files and a
//! clear record of what failed, or a clear error — never a partial file under a final name, and
//! no temporary file behind.
//!
//! The failures are real `write(2)` errors: `RLIMIT_FSIZE` caps the size of any file this
//! process writes (with SIGXFSZ ignored, an oversized write fails with `EFBIG`). File
//! permissions cannot be used (the tests may run as root) and `/dev/full` cannot stand in for a
//! bundle file (heapscope refuses to write through anything existing at a target name).
//!
//! Own process (`harness = false`): the file size limit and jemalloc's profiler are
//! process-wide.

use heapscope::{CaptureOptions, DumpOutcome, HeapProfile, PressureMonitor, ReportOptions};

mod common;
use common::file_names;

heapscope::install!();

const NO_LIMIT: libc::rlim_t = libc::RLIM_INFINITY;

fn limit_file_size(bytes: libc::rlim_t) {
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: a valid rlimit for this process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0);
}

/// Recursion to depth `depth`, allocating at every level: many distinct call stacks, so a
/// profile that samples every byte is large.
#[inline(never)]
fn deep_stacks(depth: usize, keep: &mut Vec<Box<[u8]>>) {
    keep.push(vec![depth as u8; 64].into_boxed_slice());
    if depth > 0 {
        deep_stacks(depth - 1, keep);
    }
    std::hint::black_box(&keep);
}

fn main() {
    // SAFETY: ignoring SIGXFSZ only turns oversized writes into EFBIG errors.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let base = std::env::temp_dir().join(format!("heapscope-wfail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    // 1. report.json cannot be written: a clear error, and no bundle directory is left. With
    //    100 owners more the report's JSON is over the 8 KiB the file's buffer holds, so the
    //    write fails while the report is being written, not at the buffer's last flush.
    let owners: Vec<heapscope::Owner> =
        (0..100).map(|i| heapscope::Owner::named(format!("wfail_owner_{i:03}"))).collect();
    let held: Vec<Vec<u8>> =
        owners.iter().map(|o| o.in_scope(|| std::hint::black_box(vec![1u8; 100]))).collect();
    let mut sized = Vec::new();
    heapscope::report().write_json(&mut sized).unwrap();
    assert!(sized.len() > 8 << 10, "the report is only {} bytes", sized.len());
    limit_file_size(64);
    let err = heapscope::capture(&CaptureOptions::new(&base)).unwrap_err();
    // EFBIG's kind, as a write of the report's bytes gave before the report was streamed: the
    // stream went through serde_json, and its error was wrapped as `Other`.
    let kind = std::io::ErrorKind::FileTooLarge;
    assert!(
        matches!(err, heapscope::Error::Io { action: "write", kind: k, .. } if k == kind),
        "{err:?}"
    );
    assert!(err.to_string().contains("too large"), "{err}");
    let memory = base.join("diagnostics").join("memory");
    let bundles: Vec<_> = std::fs::read_dir(&memory).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(bundles, Vec::<std::path::PathBuf>::new());
    limit_file_size(NO_LIMIT);
    drop(held);
    owners.into_iter().for_each(|o| o.retire().unwrap());
    // The same through the public writer: the writer's error comes back as it was.
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::StorageFull.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let full = heapscope::report().write_json(Full).unwrap_err();
    assert_eq!(full.kind(), std::io::ErrorKind::StorageFull, "{full:?}");

    // 2. The heap profile cannot be written after report.json was: the report, manifest and
    //    README are there, complete; the manifest says why there is no profile.
    heapscope::profiling::activate_with(
        heapscope::profiling::ProfilingOptions::default().sample_interval(1),
    )
    .unwrap();
    // The thread's next sample was scheduled at the old interval (512 KiB on average): pass it.
    for _ in 0..64 {
        drop(std::hint::black_box(vec![0u8; 64 << 10]));
    }
    let mut keep = Vec::new();
    deep_stacks(300, &mut keep);
    heapscope::profiling::deactivate().unwrap();
    let sizing = heapscope::capture(&CaptureOptions::new(base.join("sizing"))).unwrap();
    let size = |name: &str| sizing.manifest.files.iter().find(|f| f.name == name).map(|f| f.bytes);
    let report_bytes = size("report.json").unwrap();
    let profile_bytes = size("jemalloc.heap").unwrap();
    assert!(profile_bytes > 2 * report_bytes + 4096, "{profile_bytes} vs {report_bytes}");
    limit_file_size(report_bytes + 4096);
    let bundle = heapscope::capture(&CaptureOptions::new(base.join("profile"))).unwrap();
    limit_file_size(NO_LIMIT);
    match &bundle.manifest.heap_profile {
        HeapProfile::Unavailable { reason, .. } => {
            assert!(reason.contains("prof.dump"), "{reason}")
        }
        other => panic!("the profile cannot have been written: {other:?}"),
    }
    assert_eq!(file_names(&bundle.directory), ["README.txt", "manifest.json", "report.json"]);
    for f in &bundle.manifest.files {
        let on_disk = std::fs::read(bundle.directory.join(&f.name)).unwrap();
        assert_eq!(on_disk.len() as u64, f.bytes, "{} is complete", f.name);
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.directory.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["schema_version"], 1);
    drop(keep);

    // 3. Phase 1 of a pressure dump cannot be written: the slot is used, nothing is left under
    //    the dump's name, and no temporary file either.
    let monitor = PressureMonitor::builder()
        .directory(base.join("monitor"))
        .manual()
        .report(ReportOptions::default().budget_bytes(1 << 30).process_tree(false))
        .start()
        .unwrap();
    limit_file_size(16);
    let outcome = monitor.check_used(1 << 30).unwrap();
    limit_file_size(NO_LIMIT);
    assert!(matches!(outcome, DumpOutcome::Failed { number: 1, .. }), "{outcome:?}");
    assert!(file_names(monitor.directory()).is_empty(), "{:?}", file_names(monitor.directory()));

    std::fs::remove_dir_all(&base).unwrap();
    eprintln!("write_failures: ok");
}
