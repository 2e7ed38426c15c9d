//! Every `heapscope` subcommand on the files a real `agent_session` run wrote: `show` on its
//! report, its bundle and its pressure dump, `diff` between the shallow and the deep-copy run,
//! `check` under and over a budget, and `timeline` (charted in `cli_timeline.rs`) here only as
//! one more reader of the same run.
#![cfg(all(feature = "enabled", feature = "jemalloc", feature = "cli", target_os = "linux"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn heapscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapscope")).args(args).output().expect("run heapscope")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a short session with a budget every process exceeds (so the monitor dumps) and a bundle.
fn session(compression: &str) -> PathBuf {
    let out = std::env::temp_dir()
        .join(format!("heapscope-session-cli-{}-{compression}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(common::example("agent_session"))
        .args(["--turns", "16", "--compress-every", "8", "--max-payload", "512KiB"])
        .args(["--budget", "1MiB", "--bundle", "--compression", compression, "--out"])
        .arg(&out)
        .output()
        .expect("run the example");
    assert!(run.status.success(), "{}\n{}", stdout(&run), String::from_utf8_lossy(&run.stderr));
    out
}

fn only_entry(dir: &Path, prefix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no {prefix}* in {}", dir.display());
    found.remove(0)
}

#[test]
fn every_subcommand_reads_what_the_example_wrote() {
    let deep = session("deep-copy");
    let shallow = session("shallow");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let memory = deep.join("diagnostics").join("memory");

    let out = heapscope(&["show", &s(&deep.join("report.json"))]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for owner in ["history", "tool_results", "cache"] {
        assert!(text.contains(owner), "show lists {owner}:\n{text}");
    }

    let bundle = only_entry(&memory, "2");
    let out = heapscope(&["show", &s(&bundle)]);
    let text = stdout(&out);
    assert!(out.status.success() && text.contains("bundle files:"), "{text}");

    // The monitor dumped under the 1 MiB budget (any process is over it); the dump shows as a
    // report. Which owners it lists depends on when the monitor's first sample ran: on a busy
    // machine that can be before the session allocated anything, so only the report's shape
    // is checked here (the report above lists the session's owners).
    let dump = only_entry(&memory, "pressure-");
    let out = heapscope(&["show", &s(&dump)]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for part in
        ["heapscope ", " report at ", "pressure   critical", "owners ", "heapscope.internal"]
    {
        assert!(text.contains(part), "the dump shows as a report ({part:?} missing):\n{text}");
    }

    let out = heapscope(&["diff", &s(&shallow.join("report.json")), &s(&deep.join("report.json"))]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.lines().next().unwrap().starts_with("owner"), "{text}");
    assert!(text.contains("history") && text.contains("total"), "{text}");

    let report = s(&deep.join("report.json"));
    let out = heapscope(&["check", &report, "--max-owner", "history=1GiB"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = heapscope(&["check", &report, "--max-owner", "history=1KiB"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("OVER history"), "{}", stdout(&out));

    let chart = deep.join("memory.svg");
    let out = heapscope(&["timeline", &s(&deep.join("timeline.json")), "-o", &s(&chart)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&chart).unwrap().contains("data-owner=\"history\""));

    std::fs::remove_dir_all(&deep).ok();
    std::fs::remove_dir_all(&shallow).ok();
}
