//! The `heapscope` command on files heapscope wrote: show, diff, check, and the error cases
//! (missing file, another schema version, truncated JSON, a phase-1-only dump), and files
//! that parse but hold numbers out of any real range (a depth of 2^62, sizes above
//! `i64::MAX` in an owner row, the total line and a retained item, a phase of `u64::MAX / 2`
//! ms): a clean exit, never a crash (each once panicked: capacity overflow, subtraction and
//! multiplication overflow).
#![cfg(all(feature = "cli", feature = "enabled", unix))]

use heapscope::{Owner, ReportOptions, Retained};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

heapscope::install!();

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("heapscope-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `timeline` to `<d>/timeline.json` and charts it into `<d>/out.svg`.
fn chart_of(d: &std::path::Path, timeline: &serde_json::Value) -> std::process::Output {
    let path = d.join("timeline.json");
    std::fs::write(&path, serde_json::to_vec(timeline).unwrap()).unwrap();
    heapscope(&["timeline", path.to_str().unwrap(), "-o", d.join("out.svg").to_str().unwrap()])
}

fn heapscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapscope")).args(args).output().expect("run heapscope")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_report(path: &Path) {
    let report = heapscope::Report::capture_with(&ReportOptions::default().process_tree(false));
    std::fs::write(path, report.to_json()).unwrap();
}

#[test]
fn show_diff_and_check_on_real_reports() {
    let d = dir("real");
    let owner = Owner::named("cli_history");
    let first = owner.in_scope(|| vec![0u8; 1 << 20]);
    write_report(&d.join("before.json"));
    let second = owner.in_scope(|| vec![0u8; 3 << 20]);
    let item = Retained::build(Owner::named("cli_tools"), "cli big output", || "y".repeat(2 << 20));
    write_report(&d.join("after.json"));

    let out = heapscope(&["show", d.join("after.json").to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("heapscope 0.1.0 report"), "{stdout}");
    assert!(stdout.contains("cli_history"), "{stdout}");

    let out = heapscope(&[
        "diff",
        d.join("before.json").to_str().unwrap(),
        d.join("after.json").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(rows[0].starts_with("owner"), "{stdout}");
    // Largest growth first: 3 MiB for the history, then the tool output's owner (2 MiB).
    let history_row = rows.iter().position(|r| r.starts_with("cli_history ")).unwrap();
    let tools_row = rows.iter().position(|r| r.starts_with("cli_tools ")).unwrap();
    assert!(history_row < tools_row, "{stdout}");
    assert!(rows[history_row].trim_end().ends_with("+3.0 MiB"), "{}", rows[history_row]);
    assert!(
        stdout
            .contains("\"cli big output\" under cli_tools (alloc::string::String): 2.0 MiB (new)"),
        "{stdout}"
    );

    let after = d.join("after.json");
    let out = heapscope(&["check", after.to_str().unwrap(), "--max-owner", "cli_history=8MiB"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(text(&out).0.contains("ok   cli_history: 4.0 MiB of 8.0 MiB"), "{:?}", text(&out));
    let out = heapscope(&[
        "check",
        after.to_str().unwrap(),
        "--max-owner",
        "cli_history=2MiB",
        "--max-owner",
        "cli_tools=1GiB",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).0.contains("OVER cli_history: 4.0 MiB of 2.0 MiB"), "{:?}", text(&out));

    // A bundle directory shows its report.json.
    let bundle = heapscope::capture(&heapscope::CaptureOptions::new(&d)).unwrap();
    let out = heapscope(&["show", bundle.directory.to_str().unwrap()]);
    let shown = text(&out).0;
    assert!(out.status.success() && shown.contains("cli_history"), "{shown}");
    // ...then the files the manifest lists and the heap profile's outcome.
    assert!(shown.contains("bundle files:") && shown.contains("report.json"), "{shown}");
    match &bundle.manifest.heap_profile {
        heapscope::HeapProfile::Written { .. } => {
            assert!(shown.contains("go tool pprof -top -cum -lines"), "{shown}")
        }
        _ => assert!(shown.contains("no heap profile: "), "{shown}"),
    }
    drop((first, second, item));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let d = dir("errors");
    let cases: Vec<(PathBuf, &str)> = vec![
        (d.join("missing.json"), "cannot read"),
        (d.join("truncated.json"), "is not complete JSON"),
        (d.join("future.json"), "schema version 99, but this heapscope reads version 1"),
        (d.join("other.json"), "not a heapscope report"),
        // A syntax error inside is not a file cut short, and is not called one.
        (d.join("garbled.json"), "is not valid JSON (expected `:` at line 1 column 19)"),
    ];
    std::fs::write(&cases[1].0, "{\"schema_version\": 1, \"runtime\": {").unwrap();
    std::fs::write(&cases[2].0, "{\"schema_version\": 99}").unwrap();
    std::fs::write(&cases[3].0, "{\"hello\": 1}").unwrap();
    std::fs::write(&cases[4].0, "{\"schema_version\" 1, \"runtime\": {}}").unwrap();
    for (path, expected) in &cases {
        let out = heapscope(&["show", path.to_str().unwrap()]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("heapscope: ") && stderr.contains(expected), "{stderr}");
    }
    let out = heapscope(&["check", "x.json", "--max-owner", "history=lots"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_phase_one_dump_is_shown_with_a_notice() {
    let d = dir("partial");
    let dump = d.join("pressure-1-1.json");
    std::fs::write(
        &dump,
        "{\"heapscope_pressure_dump\":1,\"collection_complete\":false,\"trigger\":{\"level\":\"critical\",\"dump\":1,\"used_bytes\":123,\"used_source\":\"process RSS\",\"rss_bytes\":123}}\n",
    )
    .unwrap();
    let out = heapscope(&["show", dump.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(stdout.contains("collection_complete: false"), "{stdout}");
    assert!(stdout.contains("\"rss_bytes\": 123"), "{stdout}");
    let out = heapscope(&["diff", dump.to_str().unwrap(), dump.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&d).ok();
}

/// A complete pressure dump is shown with the moment of pressure first: its report was taken
/// after the callbacks ran (a compaction may have freed gigabytes by then), so the figures
/// that triggered the dump are the ones to read first. `show` printed the report alone and
/// left out the level, the usage and the limit at the moment of pressure.
#[test]
fn a_complete_dump_shows_the_moment_of_pressure_before_its_report() {
    let d = dir("complete-dump");
    let dump = d.join("pressure-1-2.json");
    let source = "cgroup v2 memory.current (/sys/fs/cgroup/agent/memory.current)";
    let value = serde_json::json!({
        "heapscope_pressure_dump": 1,
        "collection_complete": true,
        "trigger": {
            "level": "critical", "dump": 2, "used_bytes": 2_040_109_465u64,
            "used_source": source, "rss_bytes": 1_610_612_736u64,
            "limit_bytes": 2_147_483_648u64, "allocated_bytes": 1_073_741_824u64,
            "resident_bytes": 1_207_959_552u64,
            "top_owners": [{"owner": "history", "own_live_bytes": 805_306_368u64}],
        },
        "limit_source": "cgroup v2 memory.max (/sys/fs/cgroup/agent/memory.max)",
        "report": report_with_history(),
    });
    std::fs::write(&dump, serde_json::to_vec(&value).unwrap()).unwrap();
    let out = heapscope(&["show", dump.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let (moment, report) = stdout.split_once("cli_range_history").expect("the report follows");
    for expected in [
        "pressure dump 2: critical",
        "used 1.9 GiB of the 2.0 GiB limit (95 %)",
        source,
        "cgroup v2 memory.max (/sys/fs/cgroup/agent/memory.max)",
        "process RSS 1.5 GiB",
        "jemalloc allocated 1.0 GiB, resident 1.1 GiB",
        "history",
        "768.0 MiB",
        "the report below was taken after",
    ] {
        assert!(moment.contains(expected), "{expected:?} not before the report:\n{moment}");
    }
    assert!(!report.is_empty());
    std::fs::remove_dir_all(&d).ok();
}

fn report_with_history() -> serde_json::Value {
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
    let mut v = report_with_history();
    let tree = v["owners"]["tree"].as_array_mut().unwrap();
    assert!(!tree.is_empty());
    tree[0]["depth"] = serde_json::json!(1u64 << 62);
    let path = d.join("report.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = heapscope(&["show", path.to_str().unwrap()]);
    assert_clean(&out, "show");
    std::fs::remove_dir_all(&d).ok();
}

/// `heapscope diff` of two edited reports, in `d`.
fn diff_of(d: &Path, before: &serde_json::Value, after: &serde_json::Value) -> Output {
    let (b, a) = (d.join("before.json"), d.join("after.json"));
    std::fs::write(&b, serde_json::to_vec(before).unwrap()).unwrap();
    std::fs::write(&a, serde_json::to_vec(after).unwrap()).unwrap();
    heapscope(&["diff", b.to_str().unwrap(), a.to_str().unwrap()])
}

#[test]
fn diff_with_sizes_above_i64_max_does_not_crash() {
    let d = dir("diff");
    let _item =
        Retained::build(Owner::named("cli_range_tools"), "cli range item", || "y".repeat(4096));
    let report = report_with_history();
    // Other tests of this binary keep items too.
    let item = report["retained"]
        .as_array()
        .unwrap()
        .iter()
        .position(|i| i["label"] == "cli range item")
        .expect("the item in the report");
    // One owner row, the total line and one retained item's change, each from 2^63 bytes
    // down to 1 or up from 1: the total and the item once panicked after the rows were fixed.
    let (mut before, mut after) = (report.clone(), report);
    before["owners"]["tree"][0]["live_bytes"] = serde_json::json!(1u64 << 63);
    after["owners"]["tree"][0]["live_bytes"] = serde_json::json!(1u64);
    before["owners"]["tracked_live_bytes"] = serde_json::json!(1u64 << 63);
    after["owners"]["tracked_live_bytes"] = serde_json::json!(1u64);
    before["retained"][item]["live_bytes"] = serde_json::json!(1u64);
    after["retained"][item]["live_bytes"] = serde_json::json!(1u64 << 63);
    let out = diff_of(&d, &before, &after);
    assert_clean(&out, "diff");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // Clamped to i64, with the sign of the real change.
    let total = stdout.lines().find(|l| l.starts_with("total ")).unwrap();
    assert!(
        total.trim_end().ends_with(&format!("-{}", heapscope::format_bytes(i64::MAX as u64))),
        "{stdout}"
    );
    let item_line = stdout.lines().find(|l| l.contains("\"cli range item\"")).unwrap();
    assert!(
        item_line.ends_with(&format!("(+{})", heapscope::format_bytes(i64::MAX as u64))),
        "{stdout}"
    );
    std::fs::remove_dir_all(&d).ok();
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
    let out = chart_of(&d, &t);
    assert_clean(&out, "timeline");
    std::fs::remove_dir_all(&d).ok();
}

/// Two owners of 2^63 bytes each: their stack is above `u64::MAX` (the sum overflowed: exit 101).
#[test]
fn timeline_with_owners_summing_past_u64_max_does_not_crash() {
    let d = dir("stack-overflow");
    let sample = |at: u64, v: u64| {
        serde_json::json!({"at_ms": at, "rss_bytes": 1000, "allocated_bytes": null,
            "resident_bytes": null, "tracked_live_bytes": 0, "owners": {"a": v, "b": v}})
    };
    let t = serde_json::json!({"started_at_unix_ms": 10_000, "interval_ms": 100,
        "samples": [sample(0, 1u64 << 63), sample(100, 1)], "dropped_samples": 0,
        "series": [], "phases": []});
    let out = chart_of(&d, &t);
    assert_clean(&out, "timeline");
    std::fs::remove_dir_all(&d).ok();
}

/// The owner tree is depth-first, children right after their parent: a sibling whose name
/// extends the parent's with a character below '/' ('-', '.', ' ') sorted between them as
/// plain strings, and the child was shown indented under the wrong owner.
#[test]
fn owner_tree_lists_children_right_after_their_parent() {
    let parent = Owner::named("cli_sort");
    let sibling = Owner::named("cli_sort-l2");
    let _a = parent.in_scope(|| vec![0u8; 4096]);
    let _b = sibling.in_scope(|| vec![0u8; 4096]);
    let item = Retained::build(parent, "cli sort item", || vec![0u8; 4096]);
    let report = heapscope::Report::capture_with(&ReportOptions::default().process_tree(false));
    let names: Vec<&str> = report.owners.tree.iter().map(|o| o.name.as_str()).collect();
    let p = names.iter().position(|n| *n == "cli_sort").unwrap();
    let child = item.owner().name();
    assert_eq!(names[p + 1], child, "{names:?}");
    assert_eq!(names[p + 2], "cli_sort-l2", "{names:?}");
    assert_eq!(report.owners.tree[p + 1].depth, 1);
    drop(item);
}

/// A label is free text: a newline in it (a multi-line tool command) split the retained
/// item's line and its suggestion, and a hostile file could put escape sequences on the
/// terminal through `heapscope show` and `heapscope diff`. Both print it escaped.
#[test]
fn labels_are_escaped_in_text_output() {
    let d = dir("label");
    let before = report_with_history();
    let label = "cat <<EOF\nowners     tracked 0 B\u{1b}[2J";
    let item = Retained::build(Owner::named("cli_label"), label, || vec![0u8; 4 << 20]);
    let report = heapscope::Report::capture_with(&ReportOptions::default().process_tree(false));
    let shown = report.to_string();
    let owners_lines = shown.lines().filter(|l| l.starts_with("owners ")).count();
    assert_eq!(owners_lines, 1, "{shown}");
    assert!(shown.contains(r#""cat <<EOF\nowners     tracked 0 B\u{1b}[2J""#), "{shown}");
    assert!(!shown.contains('\u{1b}'), "{shown}");
    let after: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let out = diff_of(&d, &before, &after);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains('\u{1b}') && !stdout.contains("EOF\n"), "{stdout}");
    drop(item);
    std::fs::remove_dir_all(&d).ok();
}

/// README: `heapscope`'s output prints free text with control characters escaped. `show` and
/// `diff` did, while `check` printed an owner's name (from a file, which may hold anything)
/// as it was: an escape sequence reached the terminal and a newline started a line of its own.
#[test]
fn check_escapes_owner_names() {
    let d = dir("check-escape");
    let mut v = report_with_history();
    let hostile = "cli_range_history\u{1b}[2J\nOVER x";
    let tree = v["owners"]["tree"].as_array_mut().unwrap();
    let row = tree.iter_mut().find(|o| o["name"] == "cli_range_history").unwrap();
    row["name"] = serde_json::json!(hostile);
    let path = d.join("report.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let budget = format!("{hostile}=1GiB");
    let out = heapscope(&["check", path.to_str().unwrap(), "--max-owner", &budget]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert!(stdout.starts_with(r"ok   cli_range_history\u{1b}[2J\nOVER x: "), "{stdout}");
    std::fs::remove_dir_all(&d).ok();
}

/// `check` is a CI gate: a report in which nothing was counted (tracking compiled out)
/// passed any budget with exit 0.
#[test]
fn check_refuses_a_report_that_counted_nothing() {
    let d = dir("check-untracked");
    let mut v = report_with_history();
    v["runtime"]["tracking"] = serde_json::json!(false);
    v["owners"]["tree"] = serde_json::json!([]);
    v["owners"]["tracked_live_bytes"] = serde_json::json!(0);
    let path = d.join("report.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = heapscope(&["check", path.to_str().unwrap(), "--max-owner", "history=1B"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("counted nothing"), "{stderr}");
    std::fs::remove_dir_all(&d).ok();
}

/// An owner named in `--max-owner` that the report does not hold (a typo, a renamed owner)
/// passed as 0 B of its budget.
#[test]
fn check_names_a_budgeted_owner_missing_from_the_report() {
    let d = dir("check-missing");
    let path = d.join("report.json");
    std::fs::write(&path, serde_json::to_vec(&report_with_history()).unwrap()).unwrap();
    let out = heapscope(&[
        "check",
        path.to_str().unwrap(),
        "--max-owner",
        "cli_range_history=1GiB",
        "--max-owner",
        "cli_no_such_owner=1GiB",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cli_no_such_owner") && stderr.contains("not in the report"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// Items were matched by owner name (`parent/item#N`), which restarts at #1 in every process:
/// diffing two runs' reports called a different, new item "grown", or left it out.
#[test]
fn diff_matches_items_by_parent_label_and_type() {
    let d = dir("items");
    let _item = Retained::build(Owner::named("cli_items"), "cli old item", || "y".repeat(8192));
    let before = report_with_history();
    let i = before["retained"]
        .as_array()
        .unwrap()
        .iter()
        .position(|i| i["label"] == "cli old item")
        .unwrap();
    // The next run: another process, whose item under the same owner name is another one.
    let mut after = before.clone();
    after["runtime"]["pid"] = serde_json::json!(before["runtime"]["pid"].as_u64().unwrap() + 1);
    after["retained"][i]["label"] = serde_json::json!("cli new item");
    after["retained"][i]["live_bytes"] = serde_json::json!(4096);
    let out = diff_of(&d, &before, &after);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let line = stdout.lines().find(|l| l.contains("\"cli new item\"")).unwrap_or_default();
    assert!(line.ends_with("(new)"), "{stdout}");
    std::fs::remove_dir_all(&d).ok();
}

/// An owner name longer than the 36-character name column pushed that row's numbers right.
#[test]
fn owner_columns_stay_aligned_past_36_characters() {
    let long = Owner::named("cli_a_rather_long_owner_name_for_alignment");
    let short = Owner::named("cli_short");
    let _a = long.in_scope(|| vec![0u8; 4096]);
    let _b = short.in_scope(|| vec![0u8; 4096]);
    let report = heapscope::Report::capture_with(&ReportOptions::default().process_tree(false));
    let text = report.to_string();
    let col = |name: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(&format!("{name} "))).unwrap();
        line.find("peak").unwrap()
    };
    assert_eq!(col("cli_short"), col("cli_a_rather_long_owner_name_for_alignment"), "{text}");
}

/// `show` on a directory with a report.json that is not a bundle (an agent_session `--out`)
/// said a capture had stopped early.
#[test]
fn show_of_a_plain_directory_says_nothing_about_a_bundle() {
    let d = dir("plain");
    write_report(&d.join("report.json"));
    let out = heapscope(&["show", d.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("bundle"), "{stdout}");
    std::fs::remove_dir_all(&d).ok();
}

/// `heapscope show report.json | head -1`: the reader goes away and the next print panicked
/// (exit 101 with a backtrace on stderr); a closed pipe is a normal, quiet end.
#[test]
fn show_into_a_closed_pipe_exits_quietly() {
    let d = dir("pipe");
    let path = d.join("report.json");
    write_report(&path);
    let mut child = Command::new(env!("CARGO_BIN_EXE_heapscope"))
        .args(["show", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `head` exited
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    std::fs::remove_dir_all(&d).ok();
}

/// README: a retired owner keeps showing "while it still holds bytes". A dropped item holds
/// nothing, yet the report listed it (0 B, unmarked) until its id happened to be reused.
#[test]
fn retired_owners_holding_nothing_are_left_out_of_the_tree() {
    // Into the history, as agent_session does: the item is retired holding its bytes...
    let item = Retained::build(Owner::named("cli_dropped"), "cli dropped item", || vec![0u8; 4096]);
    let name = item.owner().name();
    let value = item.into_inner();
    let report = heapscope::Report::capture_with(&ReportOptions::default().process_tree(false));
    let listed = report.owners.tree.iter().find(|o| o.name == name).expect("holding bytes");
    assert!(listed.retired, "{listed:?}");
    let line =
        report.to_string().lines().find(|l| l.contains(&name)).unwrap_or_default().to_owned();
    assert!(line.ends_with("retired"), "{line}");
    // ...which a compaction frees later.
    drop(value);
    let report = heapscope::Report::capture_with(&ReportOptions::default().process_tree(false));
    let listed = report.owners.tree.iter().find(|o| o.name == name);
    assert!(listed.is_none(), "{listed:?}\n{report}");
}

/// The HTML page's tooltips format bytes with page.js's copy of `format_bytes`, which picked
/// the unit before rounding: 1 048 575 bytes was "1024.0 KiB" on hover and "1.0 MiB" in the
/// SVG's titles. Needs `node`; skipped without it.
#[test]
fn page_js_formats_bytes_as_format_bytes_does() {
    let script = include_str!("../src/bin/heapscope/chart/page.js");
    let start = script.find("function formatBytes").unwrap();
    let end = start + script[start..].find("\n  }\n").unwrap() + 4;
    let function = &script[start..end];
    let values = [1023u64, 1024, 1_048_524, 1_048_575, 1_073_741_823, 5 << 20, 1 << 50];
    let program = format!("{function}\nfor (const v of {values:?}) console.log(formatBytes(v));");
    let Ok(out) = Command::new("node").args(["-e", &program]).output() else {
        eprintln!("no node: skipped");
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let js: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    let rust: Vec<String> = values.iter().map(|&v| heapscope::format_bytes(v)).collect();
    assert_eq!(js, rust);
}

/// Runs heapscope, killing it if it has not finished within `limit`: `None` when it hung.
fn heapscope_within(args: &[&std::ffi::OsStr], limit: std::time::Duration) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heapscope"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drained as it comes, so that a long output never blocks the child on a full pipe.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut pipe, &mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Some(Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() })
}

/// A copied or hostile bundle may hold anything under a file's name: a FIFO (reading it waited
/// for a writer forever: `show`, `check`, `diff` and `timeline` hung), a device (a link to
/// /dev/zero was read until memory ran out), or a file far larger than any heapscope writes
/// (read whole, whatever its size). Each is one line naming the file, exit status 2.
#[test]
fn inputs_that_are_not_regular_files_or_too_large_are_refused() {
    let d = dir("not-regular");
    let fifo = d.join("fifo.json");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    // A bundle-like directory whose report.json is a FIFO.
    let bundle = d.join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    assert!(Command::new("mkfifo").arg(bundle.join("report.json")).status().unwrap().success());
    // One whose report.json is a link to /dev/zero (checked once the fix was in: before it,
    // this read until memory ran out, which `ulimit -v` showed as "out of memory").
    let zero = d.join("zero");
    std::fs::create_dir(&zero).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero.join("report.json")).unwrap();
    // A sparse file one byte over the cap: no disk is used.
    let huge = d.join("huge.json");
    std::fs::File::create(&huge).unwrap().set_len((1 << 30) + 1).unwrap();
    let svg = d.join("o.svg");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &Path, &str)> = vec![
        (vec!["show".as_ref(), fifo.as_os_str()], &fifo, "not a regular file"),
        (vec!["show".as_ref(), bundle.as_os_str()], &bundle, "not a regular file"),
        (
            vec!["check".as_ref(), fifo.as_os_str(), "--max-owner".as_ref(), "a=1".as_ref()],
            &fifo,
            "not a regular file",
        ),
        (
            vec!["timeline".as_ref(), fifo.as_os_str(), "-o".as_ref(), svg.as_os_str()],
            &fifo,
            "not a regular file",
        ),
        (vec!["show".as_ref(), zero.as_os_str()], &zero, "not a regular file"),
        (vec!["show".as_ref(), huge.as_os_str()], &huge, "larger than 1.0 GiB"),
        (
            vec!["timeline".as_ref(), huge.as_os_str(), "-o".as_ref(), svg.as_os_str()],
            &huge,
            "larger than 1.0 GiB",
        ),
    ];
    for (args, path, expected) in cases {
        let out = heapscope_within(&args, std::time::Duration::from_secs(10))
            .unwrap_or_else(|| panic!("heapscope {args:?} hung"));
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&d).ok();
}

/// `show <bundle>` listed each file with the size and SHA-256 from manifest.json and never
/// looked at the file: a bundle damaged in a copy (a file cut short, changed, gone, or swapped
/// for a link) was shown as whole, and its heap profile's command then failed on a broken
/// file. Each file is now checked against its entry; a mismatch is marked on its line and is
/// one line on stderr naming the file, exit status 2.
#[test]
fn show_checks_a_bundles_files_against_its_manifest() {
    let d = dir("manifest");
    let bundle = heapscope::capture(&heapscope::CaptureOptions::new(&d)).unwrap();
    let readme = bundle.directory.join("README.txt");
    let original = std::fs::read(&readme).unwrap();
    let out = heapscope(&["show", bundle.directory.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    let mut changed = original.clone();
    changed[0] ^= 1;
    let copy = d.join("README.copy");
    std::fs::write(&copy, &original).unwrap();
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(Damage, String)> = vec![
        (Box::new(move |p| std::fs::write(p, &changed).unwrap()), "SHA-256 differs".into()),
        (
            Box::new({
                let cut = original[..original.len() / 2].to_vec();
                move |p| std::fs::write(p, &cut).unwrap()
            }),
            format!("{} bytes, not {}", original.len() / 2, original.len()),
        ),
        (Box::new(|p| std::fs::remove_file(p).unwrap()), "missing".into()),
        (
            Box::new(move |p| {
                std::fs::remove_file(p).unwrap();
                std::os::unix::fs::symlink(&copy, p).unwrap();
            }),
            "a symbolic link".into(),
        ),
    ];
    for (damage, expected) in cases {
        std::fs::remove_file(&readme).ok();
        std::fs::write(&readme, &original).unwrap();
        damage(&readme);
        let out = heapscope(&["show", bundle.directory.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{expected}: {stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&readme.display().to_string()), "{stderr}");
        assert!(stderr.contains(&expected), "{expected}: {stderr}");
        let line = stdout.lines().find(|l| l.trim_start().starts_with("README.txt")).unwrap();
        assert!(line.contains(&expected), "{line}");
    }
    std::fs::remove_dir_all(&d).ok();
}

/// `diff` looked each owner up by a linear search of both trees: quadratic in the owners. A
/// report holds at most the registry's 4096, but a file may hold any number: 100 000 owners
/// (a 19 MB report) took 265 s in a debug build, and a file near the 1 GiB input cap would
/// take days. Looked up through a map, it takes about as long as `show`.
#[test]
fn diff_of_reports_with_many_owners_is_not_quadratic() {
    let d = dir("many-owners");
    let mut v = report_with_history();
    let row = v["owners"]["tree"][0].clone();
    // A tenth under a sanitizer (`.ci/sanitizers` sets HEAPSCOPE_SANITIZER), whose checked
    // binary is several times slower (the test took 64 s in all under ThreadSanitizer).
    let owners = if std::env::var_os("HEAPSCOPE_SANITIZER").is_some() { 10_000 } else { 100_000 };
    let tree: Vec<serde_json::Value> = (0..owners)
        .map(|i| {
            let mut r = row.clone();
            r["name"] = serde_json::json!(format!("owner{i}"));
            r["depth"] = serde_json::json!(0);
            r
        })
        .collect();
    v["owners"]["tree"] = serde_json::json!(tree);
    let path = d.join("report.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let args = ["diff".as_ref(), path.as_os_str(), path.as_os_str()];
    let out = heapscope_within(&args, std::time::Duration::from_secs(60))
        .expect("diff of that many owners finishes within 60 s");
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out).1);
    assert_eq!(text(&out).0.lines().filter(|l| l.starts_with("owner")).count(), owners + 1);
    std::fs::remove_dir_all(&d).ok();
}
