//! Builds a small agent-like heap and prints heapscope's memory report, as text and as JSON.
//!
//! `cargo run --example report --features enabled`

use heapscope::{Owner, Retained};

heapscope::install!();

fn main() {
    let history = heapscope::owner!("history");
    let tools = heapscope::owner!("tool_results");
    let cache = heapscope::owner!("embedding_cache");

    let turns: Vec<String> = history
        .in_scope(|| (0..2000).map(|i| format!("turn {i}: {}", "text ".repeat(200))).collect());
    let cached: Vec<Vec<f32>> = cache.in_scope(|| (0..500).map(|_| vec![0.5f32; 384]).collect());
    let big = Retained::build(tools, "cat huge.log", || "log line\n".repeat(400_000));

    // Compaction that deep-copies the history: its end state is unchanged, its peak is not.
    {
        let _compression = heapscope::phase("compression");
        let copy = history.in_scope(|| turns.clone());
        drop(copy);
    }
    let small = Retained::build(tools, "ls", || "a\nb\nc\n".to_string());
    let _ = Owner::root();

    let report = heapscope::report();
    println!("{report}");
    if std::env::args().any(|a| a == "--json") {
        println!("{}", report.to_json());
    }
    drop((turns, cached, big, small));
}
