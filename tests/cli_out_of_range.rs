//! The `heapscope` command on files that parse but hold numbers out of any real range (a
//! depth of 2^62, sizes above `i64::MAX`, a phase of `u64::MAX / 2` ms): a clean exit, never a
//! crash. Each of the three once panicked (capacity overflow, subtraction and multiplication
//! overflow).
#![cfg(all(feature = "cli", feature = "enabled", unix))]

use heapscope::ReportOptions;
use std::path::PathBuf;
use std::process::{Command, Output};

heapscope::install!();

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("heapscope-cli-range-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn heapscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapscope")).args(args).output().expect("run heapscope")
}

fn report_value() -> serde_json::Value {
    let owner = heapscope::Owner::named("cli_range_history");
    let _kept = owner.in_scope(|| vec![0u8; 1 << 16]);
    let report = heapscope::Report::capture_with(&ReportOptions::default().process_tree(false));
    serde_json::from_str(&report.to_json()).unwrap()
}

/// A clean failure is exit 2 with one line on stderr; a crash is a signal or exit 101.
fn assert_clean(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(2),
        "{what}: heapscope crashed ({:?}): {stderr}",
        out.status
    );
}

#[test]
fn show_with_a_huge_depth_does_not_crash() {
    let d = dir("depth");
    let mut v = report_value();
    let tree = v["owners"]["tree"].as_array_mut().unwrap();
    assert!(!tree.is_empty());
    tree[0]["depth"] = serde_json::json!(1u64 << 62);
    let path = d.join("report.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = heapscope(&["show", path.to_str().unwrap()]);
    assert_clean(&out, "show");
}

#[test]
fn diff_with_sizes_above_i64_max_does_not_crash() {
    let d = dir("diff");
    let mut before = report_value();
    let mut after = before.clone();
    before["owners"]["tree"][0]["live_bytes"] = serde_json::json!(1u64 << 63);
    after["owners"]["tree"][0]["live_bytes"] = serde_json::json!(1u64);
    let (b, a) = (d.join("before.json"), d.join("after.json"));
    std::fs::write(&b, serde_json::to_vec(&before).unwrap()).unwrap();
    std::fs::write(&a, serde_json::to_vec(&after).unwrap()).unwrap();
    let out = heapscope(&["diff", b.to_str().unwrap(), a.to_str().unwrap()]);
    assert_clean(&out, "diff");
}

#[test]
fn timeline_with_a_huge_phase_duration_does_not_crash() {
    let d = dir("timeline");
    let sample = |at: u64| {
        serde_json::json!({"at_ms": at, "rss_bytes": 1000, "allocated_bytes": null,
            "resident_bytes": null, "tracked_live_bytes": 0, "owners": {"a": 10}})
    };
    let total = serde_json::json!({"name": "total", "live_start_bytes": 0, "live_end_bytes": 0,
        "allocated_bytes": 0, "peak_bytes": 5});
    let t = serde_json::json!({"started_at_unix_ms": 10_000, "interval_ms": 100,
        "samples": [sample(0), sample(100)], "dropped_samples": 0, "series": [],
        "phases": [{"name": "p", "started_at_unix_ms": 10_050, "duration_ms": u64::MAX / 2,
                    "tracking": true, "total": total, "owners": []}]});
    let path = d.join("timeline.json");
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    let out =
        heapscope(&["timeline", path.to_str().unwrap(), "-o", d.join("out.svg").to_str().unwrap()]);
    assert_clean(&out, "timeline");
}
