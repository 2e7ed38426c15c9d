//! What producing diagnostics allocates, measured with heapscope's own numbers, each call in a
//! process of its own: the diagnostics run exactly when memory is scarce, so their cost must
//! grow with what they show, not with everything registered.
//!
//! Each child registers `ITEMS` retained items (so as many owners) under one parent, then
//! makes one call with `heapscope.internal` current (heapscope enters it itself for its own
//! work; the test enters it around the caller's part too, such as formatting the text) and
//! prints internal's live bytes before, its peak after and the bytes it allocated meanwhile.
//! The call's peak above what heapscope held is at most `peak after - live before` (the peak
//! is exact with one thread), and at most what it allocated: the setup's own transient (the
//! registry's name map growing) leaves internal's peak about 110 KB above its live bytes, so
//! for calls that allocate less than that the allocated bytes are the tighter bound. The
//! parent asserts the smaller of the two against a bound computed from what the call shows.

use heapscope::{Owner, Retained};
use std::process::Command;

heapscope::install!();

const CHILD_ENV: &str = "HEAPSCOPE_DIAG_MEMORY_OP";

/// Retained items, each an owner of its own: 4 000 of the registry's 4 092 ids (800 under a
/// sanitizer, which checks every access rather than the scale).
fn items() -> usize {
    if std::env::var_os("HEAPSCOPE_SANITIZER").is_some() {
        800
    } else {
        4000
    }
}

struct Measured {
    op: String,
    /// Internal's peak after the call less its live bytes before.
    peak_rise: u64,
    /// Bytes internal allocated during the call.
    allocated: u64,
    /// What the call produced (entries listed, bytes written), to show in messages.
    out: u64,
}

impl Measured {
    /// The call's peak above what heapscope held before: at most either figure.
    fn peak_extra(&self) -> u64 {
        self.peak_rise.min(self.allocated)
    }
}

fn child(op: &str) {
    let n = items();
    let parent = Owner::named("diag_tools");
    let mut items: Vec<Retained<Vec<u8>>> = Vec::with_capacity(n);
    for i in 0..n {
        items.push(Retained::build(parent, format!("tool output {i:05}"), || vec![0u8; 64 + i]));
    }
    let dir = std::env::temp_dir().join(format!("heapscope-diag-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let budget = 1 << 30;
    let monitor = (op == "monitor").then(|| {
        heapscope::PressureMonitor::builder()
            .directory(&dir)
            .report(heapscope::ReportOptions::default().budget_bytes(budget))
            .manual()
            .start()
            .unwrap()
    });
    let internal = Owner::internal();
    // Made before the measurement, to measure what formatting it takes on its own.
    let report = (op == "format_text").then(|| internal.in_scope(heapscope::report));
    let before = internal.stats();
    let out: u64 = internal.in_scope(|| match op {
        "top10" => heapscope::retained::top(10).len() as u64,
        "capture" => heapscope::report().owners.tree.len() as u64,
        "text" => heapscope::report().to_string().len() as u64,
        "format_text" => report.as_ref().unwrap().to_string().len() as u64,
        "json_file" => {
            let file = std::fs::File::create(dir.join("report.json")).unwrap();
            heapscope::report().write_json(std::io::BufWriter::new(file)).unwrap();
            std::fs::metadata(dir.join("report.json")).unwrap().len()
        }
        "monitor" => {
            let outcome = monitor.as_ref().unwrap().check_used(budget / 100 * 99);
            let Some(heapscope::DumpOutcome::Written { path, complete: true, .. }) = outcome else {
                panic!("heapscope: no complete dump: {outcome:?}")
            };
            std::fs::metadata(path).unwrap().len()
        }
        "bundle" => {
            let options = heapscope::CaptureOptions::new(&dir).pprof(false);
            let bundle = heapscope::capture(&options).unwrap();
            bundle.manifest.files.iter().find(|f| f.name == "report.json").unwrap().bytes
        }
        _ => panic!("heapscope: unknown op {op}"),
    });
    let after = internal.stats();
    println!(
        "{op} {} {} {out}",
        after.peak_bytes - before.live_bytes,
        after.total_bytes - before.total_bytes
    );
    drop(monitor);
    let _ = std::fs::remove_dir_all(&dir);
    drop(items);
}

fn measure(op: &str) -> Measured {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, op)
        .output()
        .expect("heapscope: run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{op}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with(op)).expect("a line of figures");
    let f: Vec<u64> = line.split(' ').skip(1).map(|v| v.parse().unwrap()).collect();
    let m = Measured { op: op.to_owned(), peak_rise: f[0], allocated: f[1], out: f[2] };
    println!(
        "{op}: peak {} above heapscope's live bytes, {} allocated (out {})",
        m.peak_rise, m.allocated, m.out
    );
    m
}

fn assert_within(m: &Measured, bound: u64, why: &str) {
    assert!(
        m.peak_extra() <= bound,
        "{}: peaked {} B above what heapscope held ({} allocated), bound {bound} B: {why}",
        m.op,
        m.peak_rise,
        m.allocated
    );
}

/// `retained::top(10)` copies out ten items: for each a label (`tool output 01234`, 17 B), its
/// owner's name (`diag_tools/item#1234`, 20 B), its parent's (10 B) and type name
/// (`alloc::vec::Vec<u8>`, 19 B), in a 112-byte `ItemInfo`, 10 x 178 = 1 780 B, and ranks
/// with a heap of 11 entries of 32 B (352 B): 2.1 KB, whatever the number of items. Bound
/// 16 KiB. It copied every registered owner's entry to rank them: a peak 1 535 136 B above
/// what heapscope held, and 2 798 974 B allocated (4 000 items).
fn top_ten_costs_what_it_lists() {
    let m = measure("top10");
    assert_eq!(m.out, 10);
    assert_within(&m, 16 << 10, "ten items listed");
}

/// Owners a report lists with `n` items: the items, their parent, root and heapscope.internal.
fn listed(n: usize) -> u64 {
    n as u64 + 3
}

/// A report lists every owner (its JSON does, by design), so it costs per owner listed: the
/// report's own line (an 88-byte `OwnerLine` and its name, up to 20 B here), and while it is
/// read, the snapshot's entry (a 104-byte `OwnerEntry`, its name moved into the line later,
/// its parent's name, 10 B, and an 8-byte key) and the reading's tables by id (the entry's
/// reference 16 B, own and subtree counters 2 x 32 B, peak 8 B, parent and tree 6 B): 236 B
/// at the peak, the line not yet made. Bound: 256 B per owner listed and 64 KiB for the rest
/// (suggestions, limits, phases, ten retained items): 1 090 304 B with 4 000 items. The text
/// and a JSON file written with `write_json` cost no more than the report (the text lists 20
/// top-level owners and 10 children of each; `write_json` streams). With 4 000 items the
/// report peaked 2 824 932 B above what heapscope held: the reading copied every registry
/// entry and every path again, `retained::top` copied them all once more while the snapshot
/// was held, and the tree copied the snapshot's names.
fn a_report_costs_a_few_hundred_bytes_per_owner_listed() {
    let bound = listed(items()) * 256 + (64 << 10);
    let m = measure("capture");
    assert_eq!(m.out, listed(items()));
    assert_within(&m, bound, "256 B per owner listed and 64 KiB");
    for op in ["text", "json_file"] {
        assert_within(&measure(op), bound, "the report's bound: writing it adds nothing per owner");
    }
}

/// A pressure dump is phase 1 (in a buffer allocated at start) and then the report, with
/// phase 1's trigger read back (its file is at most 8 KiB) and the file written through an
/// 8 KiB buffer: the report's bound and 32 KiB. Phase 2 made the report a `serde_json::Value`
/// tree and that a byte vector: 5 598 107 B above what heapscope held with 4 000 items.
fn a_pressure_dump_costs_its_report() {
    let m = measure("monitor");
    assert!(m.out > listed(items()) * 100, "the dump lists every owner: {} bytes", m.out);
    let bound = listed(items()) * 256 + (64 << 10) + (32 << 10);
    assert_within(&m, bound, "the report's bound and 32 KiB");
}

/// A bundle (no heap profile in this build) writes the report, then a README and a manifest
/// of a few KiB each: the report's bound and 32 KiB. It made the report one string first:
/// 2 531 789 B above what heapscope held with 4 000 items.
fn a_bundle_costs_its_report() {
    let m = measure("bundle");
    assert!(m.out > listed(items()) * 100, "report.json lists every owner: {} bytes", m.out);
    let bound = listed(items()) * 256 + (64 << 10) + (32 << 10);
    assert_within(&m, bound, "the report's bound and 32 KiB");
}

/// The text lists 20 top-level owners and under each its 10 largest children (here: root,
/// heapscope.internal, diag_tools, its ten largest items and a row summing 3 990 others):
/// formatting a report already made takes its text (3 088 B, grown by doubling: 8 KiB
/// allocated in all), a row and a name of at most 64 characters per line shown (16 lines,
/// 2.5 KB), a heap of 11 and the groups pending (1 KB each, one per level), and each line's
/// figures formatted (a few dozen bytes each): 16 KB. Bound 32 KiB. Each group was gathered
/// into a list of its own (every owner's, 4 003 of them) and a large one copied twice more:
/// 272 445 B allocated.
fn the_text_costs_what_it_shows() {
    let m = measure("format_text");
    assert!(m.out < 8 << 10, "{} bytes of text", m.out);
    assert_within(&m, 32 << 10, "the text and its 16 rows");
}

fn main() {
    if let Ok(op) = std::env::var(CHILD_ENV) {
        return child(&op);
    }
    top_ten_costs_what_it_lists();
    a_report_costs_a_few_hundred_bytes_per_owner_listed();
    a_pressure_dump_costs_its_report();
    a_bundle_costs_its_report();
    the_text_costs_what_it_shows();
    println!("diag_memory: 5 passed, 0 failed");
}
