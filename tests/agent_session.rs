//! Runs `examples/agent_session` (built by `cargo test` alongside the tests) with small
//! settings and checks what it prints and writes: the deep-copy compression peaks at least by
//! the history's size, the shallow one far below; report.json and timeline.json parse.
#![cfg(all(feature = "enabled", feature = "jemalloc", target_os = "linux"))]

mod common;

use std::path::PathBuf;
use std::process::Command;

/// Runs the example and returns, per compression, (history bytes before, peak rise).
fn run(compression: &str) -> (Vec<(u64, u64)>, PathBuf) {
    let out =
        std::env::temp_dir().join(format!("heapscope-agent-{}-{compression}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = Command::new(common::example("agent_session"))
        .args([
            "--turns",
            "16",
            "--compress-every",
            "8",
            "--max-payload",
            "512KiB",
            "--compression",
            compression,
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let facts: Vec<(u64, u64)> = stdout
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("after turn ")?;
            let (_, rest) = rest.split_once(": history ")?;
            let (before, rest) = rest.split_once(" bytes before, peak rise during compression ")?;
            let rise = rest.strip_suffix(" bytes")?;
            Some((before.parse().ok()?, rise.parse().ok()?))
        })
        .collect();
    assert_eq!(facts.len(), 2, "two compressions in 16 turns:\n{stdout}");
    assert!(stdout.contains("heapscope 0.1.0 report"), "{stdout}");
    (facts, out)
}

#[test]
fn deep_copy_peaks_by_the_history_and_shallow_does_not() {
    let (deep, out) = run("deep-copy");
    for (history, rise) in &deep {
        assert!(
            rise >= history,
            "a deep copy clones the whole history: rise {rise} < history {history}"
        );
    }
    let report: heapscope::Report =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let last =
        report.phases.iter().rev().find(|p| p.name == "compression").expect("compression phase");
    let h = last.owners.iter().find(|o| o.name == "history").expect("history in the phase");
    assert!(h.peak_bytes - h.live_start_bytes >= deep[1].0, "{h:?}");
    assert!(h.live_end_bytes < h.live_start_bytes, "compression shrinks the history");
    let timeline: heapscope::Timeline =
        serde_json::from_slice(&std::fs::read(out.join("timeline.json")).unwrap()).unwrap();
    let history = timeline.series("owner:history").expect("history series");
    // Sampled every 20 ms, the series need not catch the instant before compression; it does
    // see the history hold bytes, and every phase of the run.
    assert!(history.max > 0 && timeline.samples.len() >= 2, "{history:?}");
    assert!(timeline.phases.iter().any(|p| p.name == "compression"));
    std::fs::remove_dir_all(&out).ok();

    let (shallow, out) = run("shallow");
    for ((history, rise), (deep_history, _)) in shallow.iter().zip(&deep) {
        assert_eq!(history, deep_history, "same session up to compression");
        assert!(
            rise * 2 < *history,
            "shallow compression copies no history: rise {rise}, history {history}"
        );
    }
    std::fs::remove_dir_all(&out).ok();
}
