//! `heapscope::capture`: a private bundle with the report first, a manifest whose sizes and
//! hashes match the files, a README with the privacy notice, an explicit "no heap profile"
//! outcome, the size cap, and refusal of unsafe directories.
#![cfg(all(feature = "enabled", unix))]

use heapscope::{capture, CaptureOptions, HeapProfile, Owner, Report, PRIVACY_NOTICE};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

mod common;
use common::file_names;

heapscope::install!();

fn base(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapscope-capture-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Bundle file names other than the heap profile's, which exists only in builds with a
/// profiler (`jemalloc-profiling`; tested in `profiling_jemalloc.rs`).
fn without_profile<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names.into_iter().filter(|n| !matches!(*n, "heap.pb.gz" | "jemalloc.heap")).collect()
}

fn profiler_compiled_in() -> bool {
    !matches!(
        heapscope::profiling::status(),
        heapscope::profiling::ProfilingStatus::Unavailable { .. }
    )
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_bundle_is_private_complete_and_self_describing() {
    let base = base("bundle");
    let owner = Owner::named("capture_owner");
    let kept = owner.in_scope(|| vec![7u8; 3 << 20]);
    let bundle = capture(&CaptureOptions::new(&base)).unwrap();
    let dir = &bundle.directory;
    assert!(
        dir.starts_with(std::path::absolute(base.join("diagnostics/memory")).unwrap()),
        "{dir:?}"
    );
    let leaf = dir.file_name().unwrap().to_str().unwrap();
    assert!(leaf.ends_with(&format!("-{}", std::process::id())), "{leaf}");
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&base.join("diagnostics")), 0o700);

    let names = without_profile(bundle.manifest.files.iter().map(|f| f.name.as_str()));
    assert_eq!(names, ["report.json", "README.txt", "manifest.json"]);
    let on_disk_manifest: heapscope::Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let listed = without_profile(on_disk_manifest.files.iter().map(|f| f.name.as_str()));
    assert_eq!(
        listed,
        ["report.json", "README.txt"],
        "manifest.json lists what was written before it"
    );
    let on_disk = file_names(dir);
    assert_eq!(
        without_profile(on_disk.iter().map(String::as_str)),
        ["README.txt", "manifest.json", "report.json"]
    );
    for name in &on_disk {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }

    let report_bytes = std::fs::read(dir.join("report.json")).unwrap();
    let entry = &bundle.manifest.files[0];
    assert_eq!(entry.bytes, report_bytes.len() as u64);
    assert_eq!(entry.sha256, format!("{:x}", Sha256::digest(&report_bytes)));
    let report: Report = serde_json::from_slice(&report_bytes).unwrap();
    assert_eq!(report.schema_version, 1);
    let line = report.owners.tree.iter().find(|o| o.name == "capture_owner").unwrap();
    assert_eq!(line.live_bytes, 3 << 20);

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["privacy_notice"], PRIVACY_NOTICE);
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains(PRIVACY_NOTICE));
    if profiler_compiled_in() {
        assert_eq!(manifest["heap_profile"]["status"], "written");
        assert!(readme.contains("heap.pb.gz"));
    } else {
        assert_eq!(manifest["heap_profile"]["status"], "unavailable");
        assert!(manifest["heap_profile"]["reason"].as_str().unwrap().len() > 10);
        assert!(matches!(bundle.manifest.heap_profile, HeapProfile::Unavailable { .. }));
        assert!(readme.contains("no heap profile"));
    }
    assert_eq!(bundle.privacy_notice, PRIVACY_NOTICE);

    // A second capture in the same millisecond gets a directory of its own.
    let again = capture(&CaptureOptions::new(&base)).unwrap();
    assert_ne!(again.directory, bundle.directory);
    drop(kept);
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn the_cap_is_enforced_and_reported() {
    let base = base("cap");
    // A cap the report alone exceeds: refused, with no bundle directory left behind.
    let err = capture(&CaptureOptions::new(&base).max_bytes(64)).unwrap_err();
    match &err {
        heapscope::Error::BundleCapTooSmall { max_bytes: 64, report_bytes } => {
            assert!(*report_bytes > 64, "{err}")
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("raise CaptureOptions::max_bytes"), "{err}");
    let memory = base.join("diagnostics/memory");
    assert_eq!(std::fs::read_dir(&memory).unwrap().count(), 0, "no empty bundle left behind");

    // A cap that holds the report but not 8 KiB more for the README (the privacy notice) and
    // the manifest: refused too. It once gave a bundle of `report.json` alone, with nothing
    // saying what the file contains. The report's size moves a little between captures,
    // hence the margins.
    let report_size =
        std::fs::read(capture(&CaptureOptions::new(&base)).unwrap().directory.join("report.json"))
            .unwrap()
            .len() as u64;
    let bundles_before = std::fs::read_dir(&memory).unwrap().count();
    for margin in [256, 768, 4 << 10] {
        let err = capture(&CaptureOptions::new(&base).max_bytes(report_size + margin)).unwrap_err();
        assert!(matches!(err, heapscope::Error::BundleCapTooSmall { .. }), "{err:?}");
        assert!(err.to_string().contains("8 KiB for its README and manifest"), "{err}");
    }
    assert_eq!(std::fs::read_dir(&memory).unwrap().count(), bundles_before);

    // A cap that holds the report and those 8 KiB: the report, the README and the manifest,
    // which lists the README; a profile (far more than the margin) is listed as skipped.
    let bundle = [256, 512, 768]
        .into_iter()
        .find_map(|margin| {
            capture(&CaptureOptions::new(&base).max_bytes(report_size + (8 << 10) + margin)).ok()
        })
        .expect("a cap a little above the report's size and 8 KiB holds it");
    let written = without_profile(bundle.manifest.files.iter().map(|f| f.name.as_str()));
    assert_eq!(written, ["report.json", "README.txt", "manifest.json"]);
    assert_eq!(file_names(&bundle.directory), ["README.txt", "manifest.json", "report.json"]);
    let on_disk: heapscope::Manifest =
        serde_json::from_slice(&std::fs::read(bundle.directory.join("manifest.json")).unwrap())
            .unwrap();
    let listed: Vec<&str> = on_disk.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(listed, ["report.json", "README.txt"], "the manifest lists the README");
    let readme = std::fs::read_to_string(bundle.directory.join("README.txt")).unwrap();
    assert!(readme.contains(heapscope::PRIVACY_NOTICE), "{readme}");
    if profiler_compiled_in() {
        // The profile was taken but did not fit: said so, with the fix.
        match &bundle.manifest.heap_profile {
            HeapProfile::Unavailable { reason, fix } => {
                assert!(reason.contains("bundle cap"), "{reason}");
                assert!(fix.contains("max_bytes"), "{fix}");
            }
            other => panic!("{other:?}"),
        }
        assert!(bundle.manifest.skipped[0].reason.contains("would exceed the bundle cap of"));
    }
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn unsafe_bases_are_refused_without_writing() {
    let base = base("unsafe");
    let elsewhere = base.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, base.join("diagnostics")).unwrap();
    let err = capture(&CaptureOptions::new(&base)).unwrap_err();
    assert!(matches!(err, heapscope::Error::UnsafePath { .. }), "{err}");
    assert!(err.to_string().starts_with("heapscope: refusing to write"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    // The same with a private `memory` directory already behind the link: once only `memory`
    // was checked, and the bundle went through the link.
    std::fs::create_dir(elsewhere.join("memory")).unwrap();
    std::fs::set_permissions(elsewhere.join("memory"), std::fs::Permissions::from_mode(0o700))
        .unwrap();
    let err = capture(&CaptureOptions::new(&base)).unwrap_err();
    assert!(matches!(err, heapscope::Error::UnsafePath { .. }), "{err}");
    assert_eq!(std::fs::read_dir(elsewhere.join("memory")).unwrap().count(), 0);

    let err = capture(&CaptureOptions::new("/proc/heapscope-cannot-exist")).unwrap_err();
    assert!(matches!(err, heapscope::Error::Io { .. }), "{err}");
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn captures_at_the_same_moment_each_get_a_directory_of_their_own() {
    // A signal's capture, a monitor's and the program's own can start together. The bundle
    // directory was once taken by whichever created it, and accepted by the others as an
    // existing private directory: all but one then failed on `report.json`.
    const THREADS: usize = 4;
    const ROUNDS: usize = 20;
    let base = base("concurrent");
    capture(&CaptureOptions::new(&base).pprof(false)).unwrap();
    let mut directories = Vec::new();
    for _ in 0..ROUNDS {
        let barrier = std::sync::Barrier::new(THREADS);
        std::thread::scope(|s| {
            let captures: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        capture(&CaptureOptions::new(&base).pprof(false))
                    })
                })
                .collect();
            for c in captures {
                let bundle = c.join().unwrap().expect("every capture succeeds");
                assert!(bundle.directory.join("report.json").is_file());
                directories.push(bundle.directory);
            }
        });
    }
    let all = directories.len();
    directories.sort();
    directories.dedup();
    assert_eq!(directories.len(), all, "bundles shared directories");
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn a_base_that_is_not_utf8_still_gets_a_complete_manifest() {
    use std::os::unix::ffi::OsStrExt;
    let parent = base("not-utf8");
    let bundle =
        capture(&CaptureOptions::new(parent.join(std::ffi::OsStr::from_bytes(b"agent-\xff"))))
            .unwrap();
    // Serde refuses such a path: the manifest was once written empty and listed as written.
    let on_disk: heapscope::Manifest =
        serde_json::from_slice(&std::fs::read(bundle.directory.join("manifest.json")).unwrap())
            .unwrap();
    assert!(on_disk.directory.to_str().unwrap().contains("agent-\u{fffd}"), "{on_disk:?}");
    assert_eq!(
        without_profile(on_disk.files.iter().map(|f| f.name.as_str())),
        ["report.json", "README.txt"]
    );
    assert!(bundle.manifest.skipped.is_empty(), "{:?}", bundle.manifest.skipped);
    std::fs::remove_dir_all(&parent).ok();
}

#[test]
fn a_heap_profile_never_takes_the_room_of_the_manifest_and_readme() {
    if !profiler_compiled_in() {
        return;
    }
    let base = base("profile-room");
    let options = CaptureOptions::new(&base).pprof(false);
    let sizing = capture(&options).unwrap();
    let size = |name: &str| {
        sizing.manifest.files.iter().find(|f| f.name == name).map(|f| f.bytes).unwrap()
    };
    let (report, heap) = (size("report.json"), size("jemalloc.heap"));
    // Room for the report, the profile, and 8 KiB less a few bytes for the files describing
    // them: the profile (the most sensitive file) was once kept, and the manifest and README
    // dropped. (The report may have grown a little since: it still fits, the profile not.)
    let tight = capture(&options.clone().max_bytes(report + heap + (8 << 10) - 300)).unwrap();
    assert_eq!(file_names(&tight.directory), ["README.txt", "manifest.json", "report.json"]);
    match &tight.manifest.heap_profile {
        HeapProfile::Unavailable { reason, .. } => {
            assert!(reason.contains("bundle cap"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // With 8 KiB more (and 2 KiB for the report's growth), everything.
    let roomy = capture(&options.max_bytes(report + heap + (10 << 10))).unwrap();
    assert_eq!(
        file_names(&roomy.directory),
        ["README.txt", "jemalloc.heap", "manifest.json", "report.json"]
    );
    std::fs::remove_dir_all(&base).ok();
}
