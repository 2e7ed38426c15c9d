//! What tracking costs a whole program shaped like an agent runtime, rather than an
//! allocation loop: raw jemalloc against `Tracked<Jemalloc>`, each in its own process (the
//! global allocator is fixed at the first allocation, see `common/switch.rs`), the same
//! deterministic work in both, timed around the work only. Owners are entered in both
//! processes alike; only the allocator underneath differs.
//!
//! Workloads (one process runs one):
//! - `events`: a streamed reply, as server-sent events: 300 000 small JSON chunks
//!   (`{"type":"delta","index":…,"text":…}`) each parsed into a `serde_json::Value` and its
//!   text appended to the reply, a reply kept per 250 chunks. Small blocks, short lives.
//! - `documents`: tool outputs of 10-200 KiB read into a `String`, parsed into a `Retained`
//!   item, deep-copied into the history and the recent history serialised as the next
//!   request's body. Large and medium blocks, JSON trees.
//! - `session`: turns that do both, with a compaction (a deep copy of the whole history, then
//!   the older half dropped) every 25 turns.
//!
//! `cargo bench --bench agent --features enabled` (7 paired processes per workload; `-- quick`
//! for 3; `-- instructions` counts instructions under callgrind instead, a tenth of the work
//! but at least one compaction's turns, with two peers beside heapscope, cap and
//! tracking-allocator; needs valgrind). Without `--bench` (as `cargo test --benches` runs it)
//! it only smoke-runs.

mod common;
use common::{document, median, Rng};

use heapscope::{Owner, Retained};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static GLOBAL: common::switch::Switch = common::switch::Switch;

const TOKENS: [&str; 8] = ["the ", "model ", "said ", "a ", "token ", "x ", "streaming ", "of "];

/// Tool outputs "arrive" as copies of these (reading a tool's output makes a fresh `String`);
/// generated before the timed part, since producing them is not the runtime's work.
fn tool_outputs(rng: &mut Rng, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let target = 10 * 1024 + rng.below(190 * 1024) as usize;
            document(rng, target)
        })
        .collect()
}

/// Parses `chunks` streamed events into one reply message.
fn stream_reply(rng: &mut Rng, chunks: usize) -> Value {
    let mut reply = String::new();
    for index in 0..chunks {
        let token = TOKENS[rng.below(TOKENS.len() as u64) as usize];
        let chunk = format!(r#"{{"type":"delta","index":{index},"text":"{token}"}}"#);
        let event: Value = serde_json::from_str(&chunk).expect("valid event");
        reply.push_str(event["text"].as_str().unwrap_or_default());
    }
    json!({ "role": "assistant", "content": reply })
}

#[inline(never)]
fn work_events(scale: usize, rng: &mut Rng) -> usize {
    let replies: Vec<Value> = (0..scale / 250).map(|_| stream_reply(rng, 250)).collect();
    replies.iter().map(|r| r["content"].as_str().map_or(0, str::len)).sum()
}

/// One tool call: its output parsed into a retained item, a copy joining the history, the
/// request body of the newest messages serialised. Returns the body's length.
fn tool_turn(
    text: &str,
    tools: Owner,
    history: &mut Vec<Value>,
    kept: &mut VecDeque<Retained<Value>>,
) -> usize {
    let output = text.to_owned();
    let result = Retained::build(tools, "tool_output", || {
        serde_json::from_str::<Value>(&output).expect("valid document")
    });
    history.push(json!({ "role": "tool", "content": (*result).clone() }));
    kept.push_back(result);
    if kept.len() > 8 {
        kept.pop_front();
    }
    let recent = &history[history.len().saturating_sub(6)..];
    serde_json::to_string(recent).expect("serialisable").len()
}

#[inline(never)]
fn work_documents(scale: usize, outputs: &[String], tools: Owner) -> usize {
    let (mut history, mut kept) = (Vec::new(), VecDeque::new());
    let mut check = 0;
    for i in 0..scale {
        check += tool_turn(&outputs[i % outputs.len()], tools, &mut history, &mut kept);
        if history.len() > 24 {
            history.drain(..12);
        }
    }
    check
}

/// A session compacts its history every this many turns.
const COMPACT_EVERY: usize = 25;

#[inline(never)]
fn work_session(scale: usize, rng: &mut Rng, outputs: &[String], tools: Owner) -> usize {
    let (mut history, mut kept) = (Vec::new(), VecDeque::new());
    let mut check = 0;
    for turn in 0..scale {
        let chunks = 50 + rng.below(200) as usize;
        history.push(stream_reply(rng, chunks));
        check += tool_turn(&outputs[turn % outputs.len()], tools, &mut history, &mut kept);
        if turn % COMPACT_EVERY == COMPACT_EVERY - 1 {
            // Compaction: a deep copy of the whole history (the transient peak of issue #2's
            // story), then the older half summarised away.
            let copy = history.clone();
            history.drain(..history.len() / 2);
            check += copy.len();
        }
    }
    check
}

/// Runs one workload in this process: makes its inputs, then times the work alone (the
/// `work_*` functions, which the `instructions` mode counts) and prints the time.
fn child(workload: &str, scale: usize) {
    let seed = match workload {
        "events" => 0x51_7CC1_B727_220A,
        "documents" => 0x2545_F491_4F6C_DD1D,
        "session" => 0x9E37_79B9_7F4A_7C15,
        other => panic!("agent bench: unknown workload {other}"),
    };
    if std::env::var("HEAPSCOPE_BENCH_ALLOC").as_deref() == Ok("header") {
        // tracking-allocator as its users run it: a tracker, and this thread in a group.
        common::peer_tracker::install();
    }
    let mut rng = Rng(seed);
    let outputs = if workload == "events" { Vec::new() } else { tool_outputs(&mut rng, 16) };
    let tools = Owner::named("tool_results");
    let _scope = Owner::named(if workload == "events" { "replies" } else { "history" }).enter();
    let start = Instant::now();
    let checksum = match workload {
        "events" => work_events(scale, &mut rng),
        "documents" => work_documents(scale, &outputs, tools),
        _ => work_session(scale, &mut rng, &outputs, tools),
    };
    println!("time_ns {}", start.elapsed().as_nanos());
    println!("checksum {checksum} tracking {}", heapscope::is_tracking());
}

/// Runs one child; returns its timed part in milliseconds.
fn run(workload: &str, scale: usize, tracked: bool) -> f64 {
    let text = common::switch::run_child(workload, scale, tracked);
    let field = |name: &str| {
        text.split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    assert_eq!(field("tracking") == "true", tracked && cfg!(feature = "enabled"), "tracking");
    field("time_ns").parse::<f64>().expect("time") / 1e6
}

/// Instructions of one child's work (`work_*` only, not making its inputs) under callgrind.
fn instructions(workload: &str, scale: usize, alloc: &str) -> u64 {
    let exe = std::env::current_exe().expect("current exe");
    let dir = std::env::temp_dir().join(format!("heapscope-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out_file = dir.join("callgrind.out");
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--toggle-collect=agent::work_*")
        .arg(&exe)
        .args(["child", workload, &scale.to_string()])
        .env("HEAPSCOPE_BENCH_ALLOC", alloc)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run valgrind (is it installed?)");
    assert!(status.success(), "valgrind child failed");
    let text = std::fs::read_to_string(&out_file).expect("callgrind output");
    let _ = std::fs::remove_dir_all(&dir);
    text.lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("callgrind summary")
}

/// `-- instructions`: callgrind's instruction counts of each workload's work, raw against
/// tracked, and beside them two peers as a user runs them: the cap crate (one atomic counter)
/// and the tracking-allocator crate (an 8-byte header, a group per thread, a tracker keeping
/// each group's live bytes). They repeat to the instruction, unlike the timings on a shared
/// 2-core machine.
fn instruction_table(scales: &[(&str, &str, usize)]) {
    println!(
        "heapscope agent workloads: instructions (callgrind, the work only), scale / 10 (at least {COMPACT_EVERY}: one compaction)"
    );
    println!(
        "| {:<52} | {:>14} | {:>14} | {:>9} | {:>7} | {:>8} |",
        "workload", "raw", "tracked", "heapscope", "cap", "tracking"
    );
    println!("|{:-<54}|{:-<16}|{:-<16}|{:-<11}|{:-<9}|{:-<10}|", "", "", "", "", "", "");
    for &(name, label, scale) in scales {
        // A tenth of the work, but never fewer turns than one compaction takes: 20 turns of
        // the session would never compact.
        let scale = (scale / 10).max(COMPACT_EVERY);
        let count = |alloc| instructions(name, scale, alloc);
        let raw = count("raw");
        let tracked = count("tracked");
        let ratio = |n: u64| n as f64 / raw as f64;
        println!(
            "| {:<52} | {:>14} | {:>14} | {:>8.3}x | {:>6.3}x | {:>7.3}x |",
            label,
            raw,
            tracked,
            ratio(tracked),
            ratio(count("cap")),
            ratio(count("header"))
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(&args[2], args[3].parse().expect("scale"));
    }
    let smoke = !args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "quick");
    let pairs = if smoke {
        1
    } else if quick {
        3
    } else {
        7
    };
    let scales: [(&str, &str, usize); 3] = [
        ("events", "streamed reply: 300 k small JSON events parsed", 300_000),
        ("documents", "tool outputs: 10-200 KiB JSON parsed, copied, sent", 400),
        ("session", "turns of both, compaction every 25 turns", 200),
    ];
    if !smoke && args.iter().any(|a| a == "instructions") {
        return instruction_table(&scales);
    }
    println!(
        "heapscope agent workloads: tracking compiled in = {}, {pairs} paired processes",
        cfg!(feature = "enabled")
    );
    println!(
        "| {:<52} | {:>8} | {:>8} | {:>7} | {:>13} |",
        "workload (time of the work)", "raw ms", "tracked", "ratio", "range"
    );
    println!("|{:-<54}|{:-<10}|{:-<10}|{:-<9}|{:-<15}|", "", "", "", "", "");
    for (name, label, scale) in scales {
        let scale = if smoke { scale / 100 } else { scale };
        let [raw, tracked, ratios] =
            common::switch::paired(pairs, |tracked| run(name, scale, tracked));
        let (lo, hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
        println!(
            "| {:<52} | {:>8.1} | {:>8.1} | {:>6.3}x | {:>5.2}x-{:.2}x |",
            label,
            median(raw),
            median(tracked),
            median(ratios),
            lo,
            hi
        );
    }
}
