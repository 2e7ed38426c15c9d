//! Installs heapscope, attributes memory to two owners and one retained item, and prints a
//! snapshot as JSON.
//!
//! `cargo run --example quickstart --features enabled`

use heapscope::{Owner, Retained, Snapshot};

heapscope::install!();

fn main() {
    let history = heapscope::owner!("history");
    let tools = heapscope::owner!("tool_results");

    // A conversation history: every turn allocated under `history`.
    let mut turns: Vec<String> = Vec::new();
    for i in 0..100 {
        let turn = history.in_scope(|| format!("turn {i}: {}", "lorem ipsum ".repeat(20)));
        history.in_scope(|| turns.push(turn));
    }

    // One large tool output, tracked as an item of its own under `tool_results`.
    let grep = Retained::build(tools, "grep -r TODO", || "src/main.rs:1: TODO\n".repeat(50_000));

    // The agent decides to keep the tool output in the history.
    grep.transfer_to(history).expect("history is live");

    let snapshot = Snapshot::capture();
    println!("{}", serde_json::to_string_pretty(&snapshot).expect("serialise snapshot"));
    eprintln!(
        "tracking: {}; history holds {} bytes (the tool output's {} included); largest item: {:?}",
        heapscope::is_tracking(),
        history.stats().live_bytes,
        grep.live_bytes(),
        heapscope::retained::top(1).first().map(|item| (&item.label, item.live_bytes)),
    );
    let _ = Owner::root();
    drop((turns, grep));
}
