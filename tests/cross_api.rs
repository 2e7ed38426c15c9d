//! One agent-like session read through every API heapscope has, checking that they all tell the
//! same story: a conversation history, tool results built as `Retained` items and moved into
//! the history, a cache with two children (one filled by worker threads, the other emptied by
//! them: blocks freed on threads other than the one that allocated them), a compaction phase
//! that deep-copies the history and drops half of it, and a `Sampler` running throughout.
//!
//! At each quiescent point (every worker joined), each owner's live and total bytes and blocks
//! must be the hand-computed ones in `Owner::stats`, a `Snapshot`, the report's owner tree, the
//! report's JSON read back, `heapscope show`'s text of that JSON and the Prometheus gauges; a
//! parent must hold its own bytes plus its children's; `retained::top` must list each item at
//! its owner's figures; the phase record's start and end must be the snapshots taken at the
//! same moments; the sampler's samples before and after the phase must bracket it; a diff must
//! be the hand-computed growth; `global_stats` must move by exactly what the program did;
//! and a snapshot's total (the report's tracked bytes) must be the sum of its top-level owners
//! (root and the reserved owners among them).
//!
//! Without libtest's harness (`harness = false`): this process runs nothing else, so every
//! change between two readings is the scenario's.

use heapscope::retained::ItemInfo;
use heapscope::testing::{leak_check, Probe};
use heapscope::{Owner, OwnerStats, Report, Retained, Sampler, Snapshot, Timeline};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

heapscope::install!();

const TURNS: usize = 12;
/// The history's outer vector: `Vec<Vec<u8>>` with room for 64 turns, 24 bytes each.
const HISTORY_CAPACITY: usize = 64;
const VEC: u64 = std::mem::size_of::<Vec<u8>>() as u64;
const TOOL_SIZES: [u64; 4] = [10_000, 20_000, 30_000, 40_000];
const CACHE_INDEX: u64 = 5_000;
const PAGES: usize = 8;
/// Pages freed by each of the two workers (three each); the last two stay.
const FREED_PER_WORKER: usize = 3;

fn turn_len(i: usize) -> u64 {
    1000 + 37 * i as u64
}

fn page_len(i: usize) -> u64 {
    3000 + 10 * i as u64
}

/// Worker `w`'s three embeddings.
fn embedding_len(w: usize, j: usize) -> u64 {
    2000 + 100 * j as u64 + 1000 * w as u64
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What an owner should read: live and total bytes and blocks (children included), and its own
/// live bytes (without them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expected {
    live_bytes: u64,
    live_blocks: u64,
    total_bytes: u64,
    total_blocks: u64,
    own_live_bytes: u64,
}

fn figures(s: &OwnerStats) -> (u64, u64, u64, u64) {
    (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks)
}

/// Every reader's view of one quiescent moment.
struct Readings {
    snapshot: Snapshot,
    /// The snapshot the report was built from, as `Report` keeps no snapshot: one more
    /// capture at the same moment.
    report_snapshot: Snapshot,
    report: Report,
    /// The report's JSON, read back.
    json: Report,
    /// `heapscope show` on that JSON.
    shown: String,
    /// The Prometheus exposition after `publish_metrics_to_depth(usize::MAX)` (every owner).
    metrics: String,
    items: Vec<ItemInfo>,
}

fn read_everything(dir: &Path, tag: &str) -> Readings {
    let snapshot = Snapshot::capture();
    let report = heapscope::report();
    let report_snapshot = Snapshot::capture();
    let json = report.to_json();
    let path = dir.join(format!("{tag}.json"));
    heapscope::write_private(&path, json.as_bytes()).expect("write the report");
    let back: Report = serde_json::from_str(&json).expect("the report's JSON reads back");
    let out = Command::new(env!("CARGO_BIN_EXE_heapscope"))
        .arg("show")
        .arg(&path)
        .output()
        .expect("run heapscope show");
    assert!(out.status.success(), "heapscope show: {}", String::from_utf8_lossy(&out.stderr));
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || report.publish_metrics_to_depth(usize::MAX));
    Readings {
        snapshot,
        report_snapshot,
        report,
        json: back,
        shown: String::from_utf8_lossy(&out.stdout).into_owned(),
        metrics: handle.render(),
        items: heapscope::retained::top(100),
    }
}

/// A gauge's value for one owner, from the exposition text.
fn gauge(body: &str, name: &str, owner: &str) -> Option<u64> {
    let prefix = format!("{name}{{owner=\"{owner}\"}} ");
    body.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(|v| {
        let value: f64 = v.trim().parse().expect("a number");
        value as u64
    })
}

/// One owner's figures in every reader, against the hand-computed ones.
fn check_owner(r: &Readings, owner: Owner, want: Expected) {
    let name = owner.name();
    let want4 = (want.live_bytes, want.live_blocks, want.total_bytes, want.total_blocks);
    let stats = owner.stats();
    assert_eq!(figures(&stats), want4, "{name}: Owner::stats {stats:?}");
    let entry = r.snapshot.owner(&name).unwrap_or_else(|| panic!("{name} not in the snapshot"));
    assert_eq!(figures(&entry.stats), want4, "{name}: snapshot {entry:?}");
    assert_eq!(entry.own_live_bytes, want.own_live_bytes, "{name}: snapshot's own bytes");
    assert_eq!(entry.stats.peak_bytes, stats.peak_bytes, "{name}: peaks of stats and snapshot");
    for (what, report) in [("report", &r.report), ("report JSON", &r.json)] {
        let line = report.owners.tree.iter().find(|l| l.name == name);
        let line = line.unwrap_or_else(|| panic!("{name} not in the {what}'s tree"));
        let got = (line.live_bytes, line.live_blocks, line.total_bytes, line.total_blocks);
        assert_eq!(got, want4, "{name}: {what} {line:?}");
        assert_eq!(line.peak_bytes, stats.peak_bytes, "{name}: {what}'s peak");
        assert_eq!(line.depth, name.matches('/').count(), "{name}: {what}'s depth");
    }
    // `heapscope show` prints the row as the report's Display does: the name, indented by its
    // depth, its live size, share, peak and live blocks.
    let row = r
        .shown
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in `heapscope show`:\n{}", r.shown));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let live = heapscope::format_bytes(want.live_bytes);
    let peak = heapscope::format_bytes(stats.peak_bytes);
    assert!(
        row.contains(&format!(" {live} "))
            && row.contains(&format!("peak {:>11}", peak))
            && row
                .trim_end_matches("  retired")
                .ends_with(&format!(" {} blocks", want.live_blocks)),
        "{name}: `heapscope show` row {cells:?}, expected live {live}, peak {peak}, {} blocks",
        want.live_blocks
    );
    for (gauge_name, value) in [
        ("heapscope_owner_live_bytes", want.live_bytes),
        ("heapscope_owner_allocated_bytes", want.total_bytes),
        ("heapscope_owner_peak_bytes", stats.peak_bytes),
    ] {
        assert_eq!(gauge(&r.metrics, gauge_name, &name), Some(value), "{name}: {gauge_name}");
    }
}

/// Every parent in the snapshot and the report: its own bytes plus its children's.
fn check_sums(r: &Readings) {
    let snap = &r.snapshot;
    for parent in &snap.owners {
        let children: Vec<_> =
            snap.owners.iter().filter(|o| o.parent.as_deref() == Some(&parent.name)).collect();
        if children.is_empty() {
            assert_eq!(parent.own_live_bytes, parent.stats.live_bytes, "{parent:?}");
            continue;
        }
        let below: u64 = children.iter().map(|c| c.stats.live_bytes).sum();
        assert_eq!(
            parent.own_live_bytes + below,
            parent.stats.live_bytes,
            "{}: own {} + children {below}",
            parent.name,
            parent.own_live_bytes
        );
        // The report's tree lists the same children (those holding bytes) right below it.
        let line = r.report.owners.tree.iter().position(|l| l.name == parent.name);
        if let Some(at) = line {
            let depth = r.report.owners.tree[at].depth;
            let listed: u64 = r.report.owners.tree[at + 1..]
                .iter()
                .take_while(|l| l.depth > depth)
                .filter(|l| l.depth == depth + 1)
                .map(|l| l.live_bytes)
                .sum();
            assert_eq!(listed, below, "{}: the report's children", parent.name);
        }
    }
    // The report is the snapshot: the same moment, read twice.
    assert_eq!(r.json, r.report, "the report's JSON reads back as the report");
    let text = format!("{}", r.json);
    assert_eq!(r.shown, text, "`heapscope show` prints the report's Display");
}

/// `retained::top` lists each live item at its owner's figures, under its parent.
fn check_items(r: &Readings, items: &[(&Retained<Vec<u8>>, Owner)]) {
    for (item, parent) in items {
        let owner = item.owner();
        let info = r.items.iter().find(|i| i.owner == owner.name());
        let info = info.unwrap_or_else(|| panic!("{} not in retained::top", owner.name()));
        assert_eq!(info.live_bytes, owner.stats().live_bytes, "{info:?}");
        assert_eq!(info.live_bytes, item.capacity() as u64, "{info:?}");
        assert_eq!(info.parent, parent.name(), "{info:?}");
        assert_eq!(info.label, item.label(), "{info:?}");
        let listed = r.report.retained.iter().find(|i| i.owner == info.owner);
        assert_eq!(listed.map(|i| i.live_bytes), Some(info.live_bytes), "report's {info:?}");
    }
}

/// A snapshot's (and so the report's) total is every top-level owner of it together (root and
/// the reserved owners are top-level), and the report's tracked bytes are its top-level rows.
fn check_total(r: &Readings) {
    for snapshot in [&r.snapshot, &r.report_snapshot] {
        let top: Vec<_> = snapshot.owners.iter().filter(|o| o.parent.is_none()).collect();
        let live: u64 = top.iter().map(|o| o.stats.live_bytes).sum();
        let blocks: u64 = top.iter().map(|o| o.stats.live_blocks).sum();
        let listed: Vec<_> = top.iter().map(|o| (&o.name, o.stats.live_bytes)).collect();
        assert_eq!(
            (live, blocks),
            (snapshot.total.live_bytes, snapshot.total.live_blocks),
            "a snapshot's total against its top-level owners {listed:?}"
        );
        assert!(snapshot.total.peak_bytes >= snapshot.total.live_bytes, "{:?}", snapshot.total);
    }
    let rows: u64 =
        r.report.owners.tree.iter().filter(|l| l.depth == 0).map(|l| l.live_bytes).sum();
    assert_eq!(rows, r.report.owners.tracked_live_bytes, "the report's top-level rows");
    let tracked = r.metrics.lines().find_map(|l| l.strip_prefix("heapscope_tracked_live_bytes "));
    let tracked = tracked.map(|v| v.trim().parse::<f64>().expect("a number") as u64);
    assert_eq!(tracked, Some(rows), "heapscope_tracked_live_bytes");
}

/// `global_stats` allocates nothing: between two readings it moves by exactly what the
/// program did, here on two threads, one freeing what the other allocated.
fn check_global_moves(history: Owner, tools: Owner) {
    let g0 = heapscope::global_stats();
    let kept = history.in_scope(|| black_box(vec![1u8; 12_345]));
    let handed = tools.in_scope(|| black_box(vec![2u8; 6_000]));
    let worker = std::thread::spawn(move || {
        drop(black_box(handed));
        tools.in_scope(|| black_box(vec![3u8; 700]))
    });
    let back = worker.join().expect("worker");
    let g1 = heapscope::global_stats();
    // The thread's own bookkeeping (its handle, name and result slot) is root's: counted in
    // the process, but not by hand. Only the tracked owners' share is checked exactly.
    let grew = (g1.total_bytes - g0.total_bytes, g1.total_blocks - g0.total_blocks);
    assert!(grew.0 >= 12_345 + 6_000 + 700 && grew.1 >= 3, "{g0:?} -> {g1:?}");
    drop((kept, back));
    let g2 = heapscope::global_stats();
    assert_eq!(g2.total_bytes, g1.total_bytes, "freeing allocates nothing");
    assert_eq!(g1.live_bytes - g2.live_bytes, 12_345 + 700, "{g1:?} -> {g2:?}");
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapscope-xapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The samples taken strictly between two moments (Unix ms), with a margin for the sampler's
/// clock (its start is read in Unix ms, its samples' offsets from an `Instant`).
fn samples_between(timeline: &Timeline, from: u64, to: u64) -> Vec<&BTreeMap<String, u64>> {
    timeline
        .samples
        .iter()
        .filter(|s| {
            let at = timeline.started_at_unix_ms + s.at_ms;
            at > from + 5 && at + 5 < to
        })
        .map(|s| &s.owners)
        .collect()
}

fn main() {
    assert!(heapscope::is_tracking(), "heapscope is the global allocator here");
    let dir = temp_dir();
    let history = Owner::named("xapi_history");
    let tools = Owner::named("xapi_tools");
    let cache = Owner::named("xapi_cache");
    let emb = cache.child("emb");
    let pages = cache.child("pages");
    let mut items: Vec<Retained<Vec<u8>>> = Vec::with_capacity(TOOL_SIZES.len());
    let sampler = Sampler::start(Duration::from_millis(10), 10_000).expect("sampler");
    let s0 = Snapshot::capture();

    // The conversation: 12 turns in a history with room for 64.
    let mut turns: Vec<Vec<u8>> = history.in_scope(|| {
        let mut t = Vec::with_capacity(HISTORY_CAPACITY);
        for i in 0..TURNS {
            t.push(black_box(vec![b'h'; turn_len(i) as usize]));
        }
        t
    });
    let turns_bytes: u64 = (0..TURNS).map(turn_len).sum();
    assert_eq!(turns_bytes, 14_442);
    let outer = HISTORY_CAPACITY as u64 * VEC;
    // Four tool results; the first and third become part of the history.
    for (i, size) in TOOL_SIZES.iter().enumerate() {
        items.push(Retained::build(tools, format!("xapi tool {i}"), || {
            black_box(vec![b't'; *size as usize])
        }));
    }
    items[0].transfer_to(history).expect("transfer");
    items[2].transfer_to(history).expect("transfer");
    // The cache: an index of its own, pages, and embeddings computed by two workers, which
    // also free six of the pages the main thread allocated.
    let index = cache.in_scope(|| black_box(vec![b'c'; CACHE_INDEX as usize]));
    let mut page_list: Vec<Vec<u8>> = Vec::with_capacity(PAGES);
    for i in 0..PAGES {
        page_list.push(pages.in_scope(|| black_box(vec![b'p'; page_len(i) as usize])));
    }
    let mut kept_pages = page_list.split_off(2 * FREED_PER_WORKER);
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let mine: Vec<Vec<u8>> = page_list.drain(..FREED_PER_WORKER).collect();
            std::thread::spawn(move || {
                drop(black_box(mine));
                emb.in_scope(|| {
                    let mut e = Vec::with_capacity(3);
                    for j in 0..3 {
                        e.push(black_box(vec![b'e'; embedding_len(w, j) as usize]));
                    }
                    e
                })
            })
        })
        .collect();
    let embeddings: Vec<Vec<Vec<u8>>> =
        workers.into_iter().map(|w| w.join().expect("worker")).collect();
    let quiet_before = now_ms();

    // Quiescent point 1.
    let history_1 = Expected {
        live_bytes: outer + turns_bytes + TOOL_SIZES[0] + TOOL_SIZES[2],
        live_blocks: 1 + TURNS as u64 + 2,
        total_bytes: outer + turns_bytes + TOOL_SIZES[0] + TOOL_SIZES[2],
        total_blocks: 1 + TURNS as u64 + 2,
        own_live_bytes: outer + turns_bytes,
    };
    assert_eq!(history_1.live_bytes, 55_978);
    // Moved items take their allocations along: the old parent's totals no longer hold them.
    let tools_1 = Expected {
        live_bytes: TOOL_SIZES[1] + TOOL_SIZES[3],
        live_blocks: 2,
        total_bytes: TOOL_SIZES[1] + TOOL_SIZES[3],
        total_blocks: 2,
        own_live_bytes: 0,
    };
    let all_pages: u64 = (0..PAGES).map(page_len).sum();
    let pages_1 = Expected {
        live_bytes: page_len(6) + page_len(7),
        live_blocks: 2,
        total_bytes: all_pages,
        total_blocks: PAGES as u64,
        own_live_bytes: page_len(6) + page_len(7),
    };
    let all_emb: u64 =
        (0..2).flat_map(|w| (0..3).map(move |j| embedding_len(w, j))).sum::<u64>() + 2 * 3 * VEC;
    let emb_1 = Expected {
        live_bytes: all_emb,
        live_blocks: 8,
        total_bytes: all_emb,
        total_blocks: 8,
        own_live_bytes: all_emb,
    };
    let cache_1 = Expected {
        live_bytes: CACHE_INDEX + pages_1.live_bytes + emb_1.live_bytes,
        live_blocks: 1 + 2 + 8,
        total_bytes: CACHE_INDEX + all_pages + all_emb,
        total_blocks: 1 + PAGES as u64 + 8,
        own_live_bytes: CACHE_INDEX,
    };
    assert_eq!((cache_1.live_bytes, cache_1.total_bytes), (26_874, 45_024));
    let r1 = read_everything(&dir, "q1");
    for (owner, want) in
        [(history, history_1), (tools, tools_1), (cache, cache_1), (pages, pages_1), (emb, emb_1)]
    {
        check_owner(&r1, owner, want);
    }
    for (i, item) in items.iter().enumerate() {
        let size = TOOL_SIZES[i];
        let want = Expected {
            live_bytes: size,
            live_blocks: 1,
            total_bytes: size,
            total_blocks: 1,
            own_live_bytes: size,
        };
        check_owner(&r1, item.owner(), want);
    }
    check_sums(&r1);
    check_total(&r1);
    let parents = [history, tools, history, tools];
    let held: Vec<_> = items.iter().zip(parents).collect();
    check_items(&r1, &held);
    // Growth since the start, by hand.
    let diff = r1.snapshot.diff(&s0);
    for (owner, want) in [(history, history_1), (tools, tools_1), (cache, cache_1)] {
        let d = diff.owners.iter().find(|d| d.name == owner.name()).expect("in the diff");
        assert_eq!(
            (d.before_live_bytes, d.live_bytes_delta, d.live_blocks_delta, d.allocated_bytes),
            (0, want.live_bytes as i64, want.live_blocks as i64, want.total_bytes),
            "{d:?}"
        );
    }

    // The compaction: deep-copy the history, keep the copy's second half, and drop the first
    // tool result it held.
    std::thread::sleep(Duration::from_millis(150));
    let before = Snapshot::capture();
    let phase_start = now_ms();
    let compaction = heapscope::phase("xapi_compaction");
    let copy = history.in_scope(|| black_box(turns.clone()));
    let copy_bytes = TURNS as u64 * VEC + turns_bytes;
    drop(std::mem::replace(&mut turns, copy));
    turns.drain(..TURNS / 2);
    let dropped_item = items.remove(0);
    let dropped_name = dropped_item.owner().name();
    drop(dropped_item);
    let record = compaction.finish();
    let after = Snapshot::capture();
    let phase_end = now_ms();
    std::thread::sleep(Duration::from_millis(150));
    let quiet_after = now_ms();

    let kept_turns: u64 = (TURNS / 2..TURNS).map(turn_len).sum();
    let history_2 = Expected {
        live_bytes: TURNS as u64 * VEC + kept_turns + TOOL_SIZES[2],
        live_blocks: 1 + (TURNS / 2) as u64 + 1,
        // The dropped item's allocation stays in its parent's totals.
        total_bytes: history_1.total_bytes + copy_bytes,
        total_blocks: history_1.total_blocks + 1 + TURNS as u64,
        own_live_bytes: TURNS as u64 * VEC + kept_turns,
    };
    // A scratch owner retired while it and its child still hold bytes, its name taken again.
    let scratch_old = Owner::named("xapi_scratch");
    let part = scratch_old.child("part");
    let old_block = scratch_old.in_scope(|| black_box(vec![b's'; 4_321]));
    let old_part = part.in_scope(|| black_box(vec![b'p'; 1_234]));
    scratch_old.retire().expect("retire");
    let scratch_new = Owner::named("xapi_scratch");
    let new_block = scratch_new.in_scope(|| black_box(vec![b'n'; 999]));
    let r2 = read_everything(&dir, "q2");
    assert!(scratch_old.name().starts_with("xapi_scratch (retired #"), "{}", scratch_old.name());
    let exactly = |live: u64, blocks: u64, own: u64| Expected {
        live_bytes: live,
        live_blocks: blocks,
        total_bytes: live,
        total_blocks: blocks,
        own_live_bytes: own,
    };
    check_owner(&r2, scratch_old, exactly(5_555, 2, 4_321));
    check_owner(&r2, part, exactly(1_234, 1, 1_234));
    check_owner(&r2, scratch_new, exactly(999, 1, 999));
    for (owner, want) in
        [(history, history_2), (tools, tools_1), (cache, cache_1), (pages, pages_1), (emb, emb_1)]
    {
        check_owner(&r2, owner, want);
    }
    check_sums(&r2);
    check_total(&r2);
    let parents = [tools, history, tools];
    let held: Vec<_> = items.iter().zip(parents).collect();
    check_items(&r2, &held);
    assert!(r2.snapshot.owner(&dropped_name).is_none(), "{dropped_name} was dropped");

    // `heapscope diff` and `check` on the two reports read the same bytes.
    let cli = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_heapscope")).args(args).output().expect("run heapscope")
    };
    let (q1, q2) = (dir.join("q1.json"), dir.join("q2.json"));
    let out = cli(&["diff".as_ref(), q1.as_os_str(), q2.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let size = heapscope::format_bytes;
    let shrink = history_1.live_bytes - history_2.live_bytes;
    for (name, before, after, growth) in [
        ("xapi_history", history_1.live_bytes, history_2.live_bytes, format!("-{}", size(shrink))),
        (&dropped_name, TOOL_SIZES[0], 0, format!("-{}", size(TOOL_SIZES[0]))),
        ("xapi_cache", cache_1.live_bytes, cache_1.live_bytes, "+0 B".to_owned()),
        ("total", r1.report.owners.tracked_live_bytes, r2.report.owners.tracked_live_bytes, {
            let (a, b) = (r1.report.owners.tracked_live_bytes, r2.report.owners.tracked_live_bytes);
            if b < a {
                format!("-{}", size(a - b))
            } else {
                format!("+{}", size(b - a))
            }
        }),
    ] {
        let row = text.lines().find(|l| l.split_whitespace().next() == Some(name));
        let row = row.unwrap_or_else(|| panic!("{name} not in `heapscope diff`:\n{text}"));
        let want = format!("{name:<40} {:>12} {:>12} {growth:>12}", size(before), size(after));
        assert_eq!(row, want, "`heapscope diff`");
    }
    for (limit, status) in [(history_2.live_bytes, 0), (history_2.live_bytes - 1, 1)] {
        let budget = format!("xapi_history={limit}");
        let out = cli(&["check".as_ref(), q2.as_os_str(), "--max-owner".as_ref(), budget.as_ref()]);
        assert_eq!(out.status.code(), Some(status), "check {budget}: {out:?}");
    }

    // The phase record: its start and end are the snapshots taken around it; the history's
    // peak is the copy on top of what it held (one thread allocates and frees there: exact).
    let h = record.owners.iter().find(|o| o.name == "xapi_history").expect("history moved");
    assert_eq!(
        (h.live_start_bytes, h.live_end_bytes, h.allocated_bytes, h.peak_bytes),
        (history_1.live_bytes, history_2.live_bytes, copy_bytes, history_1.live_bytes + copy_bytes),
        "{record:?}"
    );
    for o in record.owners.iter().filter(|o| o.name.starts_with("xapi")) {
        let at = |s: &Snapshot| s.owner(&o.name).map_or(0, |e| e.stats.live_bytes);
        if o.name == dropped_name {
            assert_eq!((o.live_start_bytes, o.live_end_bytes), (TOOL_SIZES[0], 0), "{o:?}");
            continue;
        }
        assert_eq!((o.live_start_bytes, o.live_end_bytes), (at(&before), at(&after)), "{o:?}");
        let total = |s: &Snapshot| s.owner(&o.name).map_or(0, |e| e.stats.total_bytes);
        assert_eq!(o.allocated_bytes, total(&after) - total(&before), "{o:?}");
    }
    let names: Vec<&str> = record.owners.iter().map(|o| o.name.as_str()).collect();
    assert!(!names.contains(&"xapi_cache") && !names.contains(&"xapi_tools"), "{names:?}");
    assert!(r2.report.phases.contains(&record), "the report lists the phase");
    // And the diff across it.
    let diff = after.diff(&before);
    let d = diff.owners.iter().find(|d| d.name == "xapi_history").expect("history");
    assert_eq!(
        (d.live_bytes_delta, d.live_blocks_delta, d.allocated_bytes),
        (
            history_2.live_bytes as i64 - history_1.live_bytes as i64,
            history_2.live_blocks as i64 - history_1.live_blocks as i64,
            copy_bytes
        ),
        "{d:?}"
    );
    let gone = diff.owners.iter().find(|d| d.name == dropped_name).expect("the dropped item");
    assert_eq!((gone.live_bytes_delta, gone.after_live_bytes), (-(TOOL_SIZES[0] as i64), 0));

    // A probe and a leak check see the same bytes as the owners they follow.
    let probe = Probe::start("xapi");
    let scratch = black_box(vec![0u8; 777]);
    let probe_stats = probe.stats();
    assert_eq!(figures(&probe_stats), (777, 1, 777, 1), "{probe_stats:?}");
    assert_eq!(figures(&probe.owner().stats()), figures(&probe_stats));
    let probe_owner = probe.owner();
    drop(probe);
    let probe_entry = Snapshot::capture();
    let probe_entry =
        probe_entry.owner(&probe_owner.name()).expect("a retired owner holding bytes");
    assert!(probe_entry.retired);
    assert_eq!(figures(&probe_entry.stats), (777, 1, 777, 1));
    drop(scratch);
    let cache_start = cache.stats().live_bytes;
    let leaks = leak_check(1, 9, |i| {
        kept_pages.push(pages.in_scope(|| black_box(vec![b'l'; 500 + i])));
    });
    let trend = leaks.owner("xapi_cache").expect("the cache is followed");
    // Warm-up pushed one page (500 B) and moved `kept_pages` to a larger buffer (root's).
    assert_eq!(trend.start_live_bytes, cache_start + 500, "{trend:?}");
    assert_eq!(trend.end_live_bytes, cache.stats().live_bytes, "{trend:?}");
    assert_eq!(
        trend.end_live_bytes - trend.start_live_bytes,
        (1..10).map(|i| 500 + i).sum::<u64>()
    );

    // The sampler: samples in the quiet stretches before and after the phase read what the
    // snapshots there read, and none during it exceeds the phase's peak.
    let timeline = sampler.stop();
    let json = serde_json::to_string(&timeline).expect("timeline JSON");
    let back: Timeline = serde_json::from_str(&json).expect("timeline.json reads back");
    assert_eq!(back, timeline);
    let pre = samples_between(&timeline, quiet_before, phase_start);
    let post = samples_between(&timeline, phase_end, quiet_after);
    assert!(!pre.is_empty() && !post.is_empty(), "samples in the quiet stretches");
    for (stretch, want) in [(&pre, &r1), (&post, &r2)] {
        for owner in [history, tools, cache] {
            let snap = want.snapshot.owner(&owner.name()).map(|e| e.stats.live_bytes);
            for s in stretch.iter() {
                assert_eq!(s.get(&owner.name()).copied(), snap, "{} in a sample", owner.name());
            }
        }
    }
    let during = samples_between(&timeline, phase_start.saturating_sub(10), phase_end + 10);
    for s in during {
        assert!(s.get("xapi_history").copied().unwrap_or(0) <= h.peak_bytes, "{s:?}");
    }
    assert!(timeline.phases.contains(&record), "the timeline lists the phase");
    // The series' summary: registered before the sampler started (0 in the first sample), and
    // at the stop what the history held then; never above the phase's peak.
    let series = timeline.series("owner:xapi_history").expect("the history's series");
    assert_eq!((series.start, series.end), (0, history_2.live_bytes), "{series:?}");
    assert!(series.max <= h.peak_bytes && series.max >= history_1.live_bytes, "{series:?}");
    for s in &timeline.samples {
        // A sample lists every top-level owner: their sum is its tracked bytes.
        assert_eq!(s.tracked_live_bytes, s.owners.values().sum::<u64>(), "at {} ms", s.at_ms);
    }
    let last = timeline.samples.last().expect("a sample at the stop");
    assert_eq!(last.owners.get("xapi_cache").copied(), Some(cache.stats().live_bytes));
    let path = dir.join("timeline.json");
    heapscope::write_private(&path, json.as_bytes()).expect("write timeline.json");
    let svg = dir.join("timeline.svg");
    let out = cli(&["timeline".as_ref(), path.as_os_str(), "-o".as_ref(), svg.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let drawn = std::fs::read_to_string(&svg).expect("the chart");
    for owner in ["xapi_history", "xapi_tools", "xapi_cache"] {
        assert!(drawn.contains(&format!("data-owner=\"{owner}\"")), "{owner} not charted");
    }

    check_global_moves(history, tools);
    drop((turns, items, index, kept_pages, embeddings, old_block, old_part, new_block));
    std::fs::remove_dir_all(&dir).ok();
    println!("cross_api: every reader agreed");
}
