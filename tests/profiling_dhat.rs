//! The dhat backend: with `Tracked<dhat::Alloc>` as the global allocator, `start_dhat` begins
//! a session, `capture` writes `dhat-heap.json` with every field DHAT's viewer
//! (`dh_view.html`, valgrind) checks before it draws anything, and the next session starts.
//! jemalloc is not the global allocator here, which is also the "no jemalloc profile" case.
//!
//! Own process (`harness = false`): dhat's profiler is process-wide.

use heapscope::profiling::{self, ProfilingStatus};
use heapscope::{CaptureOptions, HeapProfile, Tracked};
use serde_json::Value;

#[global_allocator]
static ALLOC: Tracked<dhat::Alloc> = Tracked::new(dhat::Alloc);

const HELD: usize = 12_345;

#[inline(never)]
fn hold_for_dhat() -> Vec<u8> {
    vec![7u8; HELD]
}

/// The fields `dh_view.js` (`buildTree`, `checkPP`) requires, for a heap profile with
/// lifetimes (`bklt`) and without access counts (`bkacc`).
fn check_viewer_fields(data: &Value) {
    for field in
        ["dhatFileVersion", "mode", "verb", "bklt", "bkacc", "tu", "Mtu", "cmd", "pid", "te"]
            .into_iter()
            .chain(["pps", "ftbl", "tg", "tuth"])
    {
        assert!(data.get(field).is_some(), "dhat-heap.json lacks {field}");
    }
    assert_eq!(data["dhatFileVersion"], 2, "dh_view.js expects version 2");
    assert_eq!(data["bklt"], true);
    for pp in data["pps"].as_array().unwrap() {
        for field in ["tb", "tbk", "fs", "mb", "mbk", "gb", "gbk", "eb", "ebk"] {
            assert!(pp.get(field).is_some(), "a program point lacks {field}: {pp}");
        }
    }
}

fn main() {
    let base = std::env::temp_dir().join(format!("heapscope-dhat-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    // jemalloc is compiled in (all features) but serves no allocation: no jemalloc profile,
    // and the fix names both ways out.
    match profiling::status() {
        ProfilingStatus::Unavailable { reason, fix } => {
            assert!(reason.contains("not this program's global allocator"), "{reason}");
            assert!(fix.contains("start_dhat"), "{fix}");
        }
        other => panic!("expected no profiler before start_dhat, got {other:?}"),
    }
    assert!(matches!(profiling::activate(), Err(heapscope::Error::ProfilingUnavailable { .. })));
    let without = heapscope::capture(&CaptureOptions::new(&base)).unwrap();
    assert!(
        matches!(without.manifest.heap_profile, HeapProfile::Unavailable { .. }),
        "{:?}",
        without.manifest.heap_profile
    );
    assert!(without.directory.join("report.json").is_file());

    profiling::start_dhat().unwrap();
    assert_eq!(profiling::status(), ProfilingStatus::Dhat);
    assert!(profiling::start_dhat().is_err(), "one session at a time");
    let held = hold_for_dhat();

    // Dropping dhat's profiler writes its file and symbolises every stack first, in the
    // capture, so under heapscope.internal: shown for README's figures.
    let internal = heapscope::Owner::internal();
    let before = internal.stats();
    let bundle = heapscope::capture(&CaptureOptions::new(&base)).unwrap();
    let after = internal.stats();
    eprintln!(
        "profiling_dhat: the capture allocated {} B in heapscope.internal, which went from {} \
         to {} live bytes",
        after.total_bytes - before.total_bytes,
        before.live_bytes,
        after.live_bytes
    );
    match &bundle.manifest.heap_profile {
        HeapProfile::Written { backend, files, notes } => {
            assert_eq!(backend, "dhat");
            assert_eq!(files, &["dhat-heap.json"]);
            assert!(notes.is_empty(), "{notes:?}");
        }
        other => panic!("expected a dhat profile, got {other:?}"),
    }
    // dhat creates its file 0644 (in a private directory); the bundle's copy is 0600.
    let path = bundle.directory.join("dhat-heap.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let data: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    check_viewer_fields(&data);
    assert_eq!(data["pid"], std::process::id());
    eprintln!(
        "profiling_dhat: dhat-heap.json has {} bytes",
        std::fs::metadata(&path).unwrap().len()
    );

    // The held block is there, at its requested size plus heapscope's 2-byte owner trailer,
    // with the function that allocated it in the frame table.
    let frames = data["ftbl"].as_array().unwrap();
    let holder = frames
        .iter()
        .position(|f| f.as_str().unwrap().contains("hold_for_dhat"))
        .unwrap_or_else(|| panic!("hold_for_dhat not in the frame table"));
    let pp = data["pps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pp| pp["fs"].as_array().unwrap().iter().any(|f| f == holder))
        .expect("a program point through hold_for_dhat");
    assert_eq!(pp["tb"], HELD + 2, "{pp}");
    assert_eq!(pp["tbk"], 1);

    // The capture started the next session.
    assert_eq!(profiling::status(), ProfilingStatus::Dhat);
    assert!(profiling::stop_dhat());
    assert!(!profiling::stop_dhat());
    assert!(matches!(profiling::status(), ProfilingStatus::Unavailable { .. }));
    drop(held);
    std::fs::remove_dir_all(&base).unwrap();
    eprintln!("profiling_dhat: ok");
}
