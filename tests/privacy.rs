//! What heapscope writes does not carry what it was never asked to: a secret in the command
//! line, in the environment, in heap memory, and in a retained item's label under
//! `LabelPolicy::Hash` appears in none of report.json, a bundle's files (the jemalloc profile
//! included) or a pressure dump's two phases.
//!
//! Own process (`harness = false`): the test re-runs itself with the secret in its arguments and
//! environment, and the label policy is global.

use heapscope::retained::{self, LabelPolicy};
use heapscope::{CaptureOptions, DumpOutcome, Owner, PressureMonitor, ReportOptions, Retained};
use std::path::Path;
use std::process::Command;

heapscope::install!();

const SECRET: &str = "SECRET_CANARY_7f3a";

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn child(base: &Path) {
    let _ = heapscope::profiling::activate();
    let history = Owner::named("history");
    let kept: Vec<String> =
        history.in_scope(|| (0..1000).map(|i| format!("{SECRET} heap string {i}")).collect());
    retained::set_label_policy(LabelPolicy::Hash);
    let item = Retained::build(history, format!("{SECRET}-file.txt"), || vec![1u8; 100_000]);

    std::fs::create_dir_all(base).unwrap();
    let report = heapscope::report();
    std::fs::write(base.join("report.json"), report.to_json()).unwrap();
    heapscope::capture(&CaptureOptions::new(base)).unwrap();
    let monitor = PressureMonitor::builder()
        .directory(base)
        .report(ReportOptions::default().budget_bytes(1 << 20).process_tree(false))
        .manual()
        .start()
        .unwrap();
    let outcome = monitor.check_used(1 << 20).unwrap();
    assert!(matches!(outcome, DumpOutcome::Written { complete: true, .. }), "{outcome:?}");
    // Phase 1 on its own, as a dump whose phase 2 never ran would look.
    let mut buffer = vec![0u8; 64 << 10];
    heapscope::__phase1_for_tests(&mut buffer, monitor.directory(), 99, 99).unwrap();
    drop((kept, item));
}

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--child") {
        child(Path::new(&args.next().unwrap()));
        return;
    }
    let base = std::env::temp_dir().join(format!("heapscope-privacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let status = Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .arg(&base)
        .arg(format!("--token={SECRET}"))
        .env("HEAPSCOPE_TEST_TOKEN", SECRET)
        .status()
        .unwrap();
    assert!(status.success(), "the child failed");

    let mut files = Vec::new();
    files_under(&base, &mut files);
    let names: Vec<String> =
        files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["report.json", "manifest.json", "README.txt", "heap.pb.gz", "jemalloc.heap"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    assert!(names.iter().filter(|n| n.starts_with("pressure-")).count() >= 2, "{names:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let bytes = if file.extension().is_some_and(|e| e == "gz") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .unwrap();
            out
        } else {
            bytes
        };
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} contains the secret",
            file.display()
        );
    }
    std::fs::remove_dir_all(&base).unwrap();
    eprintln!("privacy: ok ({} files checked)", files.len());
}
