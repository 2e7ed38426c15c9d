//! README's Rust examples, compiled (and run where that is quick and writes nothing) with
//! the names they leave to the reader (`run_tool`, `agent`, `parse` …) filled in around
//! them. `every_readme_example_is_here` holds README to this file: each of its ```rust
//! blocks must appear here line for line (indentation aside; `heapscope::install!()`, which
//! this binary has once in main.rs, is the one line it may leave out), so an example that
//! stops compiling, or is edited without this file, fails the tests.

use heapscope::Owner;

/// Stands in for an agent in the examples: a history that compaction keeps short.
pub(crate) struct Agent {
    history: Vec<String>,
}

impl Agent {
    /// An agent whose history (three turns) is charged to `history`.
    fn new(history: Owner) -> Agent {
        Agent {
            history: history.in_scope(|| vec!["a".repeat(100), "b".repeat(100), "c".repeat(100)]),
        }
    }

    /// Handles one request and keeps nothing of it.
    fn handle(&mut self, request: String) {
        let reply = request.to_uppercase();
        std::hint::black_box(&reply);
    }

    /// Drops all but the last two turns; frees, never grows.
    fn compact(&mut self) {
        let keep = self.history.len().saturating_sub(2);
        self.history.drain(..keep);
    }

    #[allow(dead_code, reason = "used by an example that is compiled, not run")]
    fn compact_history(&mut self) {
        self.compact();
    }
}

/// README, "Use it in an agent": `main.rs`.
#[allow(unused_variables, reason = "the example keeps `turn` to show a scope")]
#[allow(clippy::redundant_closure, reason = "README writes the closure out, as callers do")]
mod agent_main {
    // main.rs: one line. Libraries never install the allocator; they only name owners.

    fn main() {
        let history = heapscope::owner!("history");
        let tools = heapscope::owner!("tool_results");

        let turn = history.in_scope(|| String::from("user: summarise the logs"));

        // One tool output as an item of its own: every byte it allocates is the item's.
        let output = heapscope::Retained::build(tools, "grep -r ERROR", || run_tool());
        output.transfer_to(history).unwrap(); // the result becomes part of the history

        println!("{:?}", history.stats()); // live/peak/total bytes and blocks, children included
        println!("{:?}", heapscope::retained::top(5));
        println!("{}", serde_json::to_string(&heapscope::Snapshot::capture()).unwrap());
    }

    fn run_tool() -> String {
        "src/main.rs: ERROR the disk is full".repeat(100)
    }

    #[test]
    fn runs() {
        main();
    }
}

/// README, "Use it in an agent": the panic hook. Compiled only: the hook is the process's
/// (tests/panic_hook.rs runs it in a process of its own).
#[allow(dead_code, reason = "compiled, not run")]
fn panic_hook() {
    heapscope::run_panic_hook_in(heapscope::owner!("panic_hook"));
}

/// README, "Use it in an agent": spans as owners.
#[cfg(feature = "tracing")]
#[test]
fn tracing_spans_as_owners() {
    use tracing_subscriber::layer::SubscriberExt;

    let subscriber = tracing_subscriber::registry().with(heapscope::OwnerLayer::new());
    // Everything allocated while this span is entered (also by an instrumented future, on
    // whichever thread polls it) is charged to `tool_results/call_42`.
    let span = tracing::info_span!("tool call", owner = "tool_results/call_42");
    drop((subscriber, span));
}

fn parse(input: &str) -> serde_json::Value {
    serde_json::from_str(input).unwrap()
}

fn request(i: usize) -> String {
    format!("request {i}")
}

/// README, "In tests".
#[test]
fn in_tests() {
    let input = r#"{"role": "tool", "content": "42 matches"}"#;

    use heapscope::testing::{leak_check_under, Probe};

    let probe = Probe::start("parse"); // a fresh owner, entered on this thread
    let doc = parse(input);
    assert!(probe.stats().live_bytes < 64 * 1024);

    let mine = heapscope::Owner::named("memory_test"); // this test's owners, under one parent
    let history = mine.child("history");
    let mut agent = Agent::new(history);
    heapscope::assert_owner_growth!(history, at_most = 4096, { agent.compact() });

    let report = leak_check_under(mine, 5, 30, |i| agent.handle(request(i)));
    assert!(report.leaking().is_empty(), "{report}"); // names only the leaking owners
    drop(doc);
}

/// README, "Diagnostics on disk": phases and timelines. Compiled only: `watch` blocks for
/// ten seconds.
#[allow(dead_code, unused_variables, reason = "compiled, not run")]
fn phases_and_timelines(agent: &mut Agent) -> heapscope::Result<()> {
    use std::time::Duration;

    {
        let _phase = heapscope::phase("compression"); // live at start/end, churn, peak during it
        agent.compact_history();
    }
    let sampler = heapscope::Sampler::start(Duration::from_secs(1), 3600)?; // background ring
    let timeline = heapscope::watch(Duration::from_secs(10), Duration::from_millis(100))?; // blocking
    println!("{:?}", timeline.series("owner:history")); // start, end, min, max, delta
    Ok(())
}

/// README, "Diagnostics on disk": the pressure monitor. Compiled only: it would write under
/// /var/tmp.
#[allow(dead_code, unused_variables, reason = "compiled, not run")]
#[allow(clippy::redundant_closure, reason = "README writes the closure out, as callers do")]
fn pressure_monitor() -> heapscope::Result<()> {
    fn log_pressure(_level: heapscope::PressureLevel, _report: &heapscope::Report) {}
    fn compact_history(_level: heapscope::PressureLevel) {}

    let monitor = heapscope::PressureMonitor::builder()
        .directory("/var/tmp/agent") // dumps in /var/tmp/agent/diagnostics/memory/
        .report(heapscope::ReportOptions::default().budget_bytes(8 << 30))
        .max_dumps(3) // per session (reset_session() starts anew)
        .cooldown(std::time::Duration::from_secs(30))
        .on_pressure(|level, report| log_pressure(level, report)) // after each dump only
        .on_pressure_check(|level| compact_history(level)) // at every check while it lasts
        .start()?;
    Ok(())
}

/// README, "Heap profiles": `main.rs` of an agent built with a `memory-debug` feature (which
/// this crate does not have, so the trigger is compiled out here, as in an agent's default
/// build). Runs: without `AGENT_HEAP_PROFILE` it activates nothing.
#[allow(unexpected_cfgs, reason = "`memory-debug` is the agent's feature, not this crate's")]
mod heap_profiles {
    #[rustfmt::skip] // README's layout: rustfmt joins the trigger's lines at this depth
    fn main() -> Result<(), heapscope::Error> {
        if std::env::var_os("AGENT_HEAP_PROFILE").is_some() {
            // Samples one allocation per 512 KiB on average; ProfilingOptions sets another rate.
            heapscope::profiling::activate()?;
        }
        // `kill -USR2 <pid>` writes a bundle; the capture runs on its own thread. The `signal`
        // module exists only with heapscope's `signal` feature, which `memory-debug` turns on.
        #[cfg(feature = "memory-debug")]
        let _trigger = heapscope::signal::SignalTrigger::start(
            heapscope::CaptureOptions::new("/var/tmp/agent"),
        )?;
        run_agent()
    }

    fn run_agent() -> Result<(), heapscope::Error> {
        Ok(())
    }

    #[test]
    fn runs() {
        assert!(std::env::var_os("AGENT_HEAP_PROFILE").is_none(), "would start profiling");
        main().unwrap();
    }
}

/// The ```rust blocks of README.md, each as its lines with leading whitespace trimmed and
/// `heapscope::install!()` lines left out.
fn readme_blocks() -> Vec<Vec<&'static str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in include_str!("../../README.md").lines() {
        match (&mut current, line.trim_start()) {
            (None, fence) if fence.starts_with("```rust") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take().map(trim_blank_ends)),
            (Some(block), text) if !text.starts_with("heapscope::install!();") => block.push(text),
            _ => {}
        }
    }
    blocks
}

fn trim_blank_ends(mut block: Vec<&'static str>) -> Vec<&'static str> {
    while block.first().is_some_and(|line| line.is_empty()) {
        block.remove(0);
    }
    while block.last().is_some_and(|line| line.is_empty()) {
        block.pop();
    }
    block
}

/// Where `block` (trimmed lines) starts in `source` (trimmed lines), compared as code: runs
/// of spaces before a `//` comment are one space, as rustfmt lays them out.
fn find_block(source: &[String], block: &[String]) -> Option<usize> {
    source.windows(block.len()).position(|window| window == block)
}

fn normalised(line: &str) -> String {
    let line = line.trim();
    match line.find("  //") {
        Some(at) => format!("{} {}", line[..at].trim_end(), &line[at..].trim_start()),
        None => line.to_string(),
    }
}

#[test]
fn every_readme_example_is_here() {
    let source: Vec<String> = include_str!("readme.rs").lines().map(normalised).collect();
    let blocks = readme_blocks();
    assert!(blocks.len() >= 7, "README's ```rust blocks were not found: {}", blocks.len());
    for block in blocks {
        let lines: Vec<String> = block.iter().map(|line| normalised(line)).collect();
        assert!(
            find_block(&source, &lines).is_some(),
            "this README example is not compiled in tests/it/readme.rs (add it there, \
             verbatim):\n{}",
            block.join("\n")
        );
    }
}

#[test]
fn a_changed_example_is_caught() {
    let source: Vec<String> = include_str!("readme.rs").lines().map(normalised).collect();
    let mut block: Vec<String> = readme_blocks()[0].iter().map(|line| normalised(line)).collect();
    assert!(find_block(&source, &block).is_some());
    let at = block.iter().position(|line| line.contains("owner!(\"history\")")).unwrap();
    block[at] = block[at].replace("history", "histories");
    assert_eq!(find_block(&source, &block), None);
}
