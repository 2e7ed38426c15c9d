//! What reading costs: `global_stats`, `Snapshot::capture`, `report()` with and without the
//! process-tree walk, in a process with 200 owners and 1000 retained items.
//!
//! `cargo bench --bench report --features enabled`

use heapscope::{Owner, ReportOptions, Retained, Snapshot};
use std::time::Instant;

heapscope::install!();

fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let runs = if smoke { 3 } else { 101 };
    let owners: Vec<Owner> = (0..200).map(|i| Owner::named(format!("report_bench_{i}"))).collect();
    let kept: Vec<Vec<u8>> = owners.iter().map(|o| o.in_scope(|| vec![0u8; 4096])).collect();
    let items: Vec<Retained<String>> = (0..1000)
        .map(|i| Retained::build(owners[i % 200], format!("item {i}"), || "x".repeat(100 + i)))
        .collect();
    println!("heapscope reading cost: 200 owners, 1000 retained items, median of {runs} runs");
    println!("| {:<40} | {:>10} |", "call", "median µs");
    println!("|{:-<42}|{:-<12}|", "", "");
    type Row<'a> = (&'static str, Box<dyn FnMut() + 'a>);
    // A retained item's owner has no children; each of the 200 owners has 5 items under it.
    let (leaf, parent) = (items[0].owner(), owners[0]);
    let rows: [Row; 6] = [
        (
            "global_stats()",
            Box::new(|| {
                std::hint::black_box(heapscope::global_stats());
            }),
        ),
        (
            "owner.stats(), an owner without children",
            Box::new(move || {
                std::hint::black_box(leaf.stats());
            }),
        ),
        (
            "owner.stats(), an owner with 5 children",
            Box::new(move || {
                std::hint::black_box(parent.stats());
            }),
        ),
        ("Snapshot::capture()", Box::new(|| drop(std::hint::black_box(Snapshot::capture())))),
        (
            "report() without the process tree",
            Box::new(|| {
                let options = ReportOptions::default().process_tree(false);
                drop(std::hint::black_box(heapscope::Report::capture_with(&options)))
            }),
        ),
        ("report()", Box::new(|| drop(std::hint::black_box(heapscope::report())))),
    ];
    for (name, mut f) in rows {
        println!("| {:<40} | {:>10.1} |", name, median_us(runs, &mut f));
    }
    drop((kept, items));
}
