//! A simulated LLM agent session, measured by heapscope: a conversation history of JSON
//! messages, tool results kept as retained items and later moved into the history, an LRU cache
//! of parsed documents with a byte budget, streaming, and a compression step every few turns —
//! either the real-world bug (`--compression deep-copy`: the whole history is cloned before
//! summarising) or the fix (`--compression shallow`).
//!
//! ```text
//! cargo run --release --example agent_session --features enabled
//! cargo run --release --example agent_session --features enabled -- --compression shallow
//! cargo run --release --example agent_session --features enabled -- --budget 64MiB --out /tmp/run
//! ```
//!
//! Prints the report at the end and writes `report.json` and `timeline.json` (0600) into
//! `--out`; `--bundle` also writes a diagnostics bundle there.

use clap::{Parser, ValueEnum};
use heapscope::{Owner, Retained};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

heapscope::install!();

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Compression {
    /// Clone the whole history, then summarise the clone (what went wrong in production).
    DeepCopy,
    /// Summarise the history in place, by reference.
    Shallow,
}

#[derive(Parser, Debug)]
#[command(about = "A simulated agent session measured by heapscope")]
struct Args {
    /// Conversation turns.
    #[arg(long, default_value_t = 60)]
    turns: usize,
    /// How compression treats the history.
    #[arg(long, value_enum, default_value_t = Compression::DeepCopy)]
    compression: Compression,
    /// Compress every this many turns.
    #[arg(long, default_value_t = 20)]
    compress_every: usize,
    /// Largest tool payload, e.g. `5MiB`.
    #[arg(long, default_value = "5MiB", value_parser = heapscope::parse_bytes)]
    max_payload: u64,
    /// Memory budget for the pressure monitor, e.g. `256MiB` (no monitor without it).
    #[arg(long, value_parser = heapscope::parse_bytes)]
    budget: Option<u64>,
    /// Output directory for report.json, timeline.json and dumps.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Also write a diagnostics bundle into the output directory.
    #[arg(long)]
    bundle: bool,
    /// Sample with jemalloc's heap profiler from the start (feature `jemalloc-profiling`), so
    /// the bundle holds a heap profile; implies `--bundle`.
    #[arg(long)]
    heap_profile: bool,
}

/// A deterministic xorshift generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A JSON payload of about `bytes` bytes, as a tool returning search hits would.
fn payload(rng: &mut Rng, bytes: u64) -> Value {
    let mut hits = Vec::new();
    let mut size = 0;
    while size < bytes {
        let text: String = (0..40).map(|_| format!("w{} ", rng.below(10_000))).collect();
        size += text.len() as u64 + 40;
        hits.push(json!({"id": rng.next() % 1_000_000, "score": rng.below(1000), "text": text}));
    }
    json!({"hits": hits})
}

/// An LRU of parsed documents with a byte budget.
struct Cache {
    owner: Owner,
    budget: u64,
    used: u64,
    entries: VecDeque<(String, Value, u64)>,
}

impl Cache {
    fn get_or_parse(&mut self, key: &str, text: &str) -> usize {
        if let Some(i) = self.entries.iter().position(|(k, _, _)| k == key) {
            let hit = self.entries.remove(i).expect("present");
            let len = hit.1.as_array().map_or(0, Vec::len);
            self.entries.push_back(hit);
            return len;
        }
        let _scope = self.owner.enter();
        let value: Value = text.lines().map(|l| Value::String(l.to_owned())).collect();
        let size = text.len() as u64 * 2;
        let len = value.as_array().map_or(0, Vec::len);
        self.entries.push_back((key.to_owned(), value, size));
        self.used += size;
        while self.used > self.budget && self.entries.len() > 1 {
            if let Some((_, _, s)) = self.entries.pop_front() {
                self.used -= s;
            }
        }
        len
    }
}

fn source_files() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn main() {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out).expect("create --out");
    if args.heap_profile {
        if let Err(e) = heapscope::profiling::activate() {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
    let history_owner = heapscope::owner!("history");
    let tools = heapscope::owner!("tool_results");
    let mut cache = Cache {
        owner: heapscope::owner!("cache"),
        budget: 8 << 20,
        used: 0,
        entries: VecDeque::new(),
    };
    let monitor = args.budget.map(|budget| {
        heapscope::PressureMonitor::builder()
            .directory(&args.out)
            .interval(Duration::from_millis(50))
            .report(heapscope::ReportOptions::default().budget_bytes(budget).process_tree(false))
            .on_pressure(|level, report| {
                eprintln!("memory pressure {level}: {:?}", report.suggestions.first())
            })
            .start()
            .expect("start the pressure monitor")
    });
    let sampler = heapscope::Sampler::start(Duration::from_millis(20), 50_000).expect("sampler");
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let files = source_files();
    let mut history: Vec<Value> = Vec::new();
    let mut pending: VecDeque<Retained<Value>> = VecDeque::new();
    let bar = indicatif::ProgressBar::new(args.turns as u64);
    let mut compressions = Vec::new();

    for turn in 0..args.turns {
        {
            let _phase = heapscope::phase("request assembly");
            let message = history_owner.in_scope(|| json!({"role": "user", "turn": turn, "text": format!("step {turn}: {}", "please continue ".repeat(20))}));
            history_owner.in_scope(|| history.push(message));
        }
        {
            let _phase = heapscope::phase("tool execution");
            let item = match turn % 4 {
                0 if !files.is_empty() => {
                    let path = &files[turn / 4 % files.len()];
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    cache.get_or_parse(&path.display().to_string(), &text);
                    Retained::build(
                        tools,
                        format!("read {}", path.display()),
                        || json!({"file": path.display().to_string(), "content": text}),
                    )
                }
                1 => Retained::build(
                    tools,
                    "ls src",
                    || json!({"entries": files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()}),
                ),
                2 => Retained::build(
                    tools,
                    format!("cargo test (turn {turn})"),
                    || json!({"stdout": "test ok\n".repeat(2000 + rng.below(2000) as usize)}),
                ),
                _ => {
                    let bytes = 10 * 1024 + rng.below(args.max_payload.saturating_sub(10 * 1024));
                    Retained::build(tools, format!("search #{turn}"), || payload(&mut rng, bytes))
                }
            };
            pending.push_back(item);
            // The model keeps the result of two turns ago: it becomes part of the history.
            if pending.len() > 2 {
                if let Some(kept) = pending.pop_front() {
                    kept.transfer_to(history_owner).expect("history is live");
                    history_owner.in_scope(|| {
                        history.push(json!({"role": "tool", "result_bytes": kept.live_bytes()}))
                    });
                    let value = kept.into_inner();
                    history_owner.in_scope(|| history.push(value));
                }
            }
        }
        {
            let _phase = heapscope::phase("streaming");
            let mut answer = String::new();
            history_owner.in_scope(|| {
                for token in 0..400 {
                    answer.push_str(&format!("tok{token} "));
                }
                history.push(json!({"role": "assistant", "text": answer}));
            });
        }
        if (turn + 1) % args.compress_every == 0 {
            let before = history_owner.stats().live_bytes;
            let phase = heapscope::phase("compression");
            history_owner.in_scope(|| {
                let summary_source: Vec<Value> = match args.compression {
                    // The bug: a full deep copy of the history, alive while summarising.
                    Compression::DeepCopy => history.clone(),
                    Compression::Shallow => Vec::new(),
                };
                let counted = if args.compression == Compression::DeepCopy {
                    summary_source.iter().map(|m| m.to_string().len()).sum::<usize>()
                } else {
                    history.iter().map(|m| m.to_string().len()).sum::<usize>()
                };
                let keep = history.split_off(history.len().saturating_sub(4));
                history = vec![json!({"role": "summary", "covers_bytes": counted})];
                history.extend(keep);
                drop(summary_source);
            });
            let record = phase.finish();
            let rise = record
                .owners
                .iter()
                .find(|o| o.name == "history")
                .map_or(0, |o| o.peak_bytes.saturating_sub(o.live_start_bytes));
            compressions.push((turn + 1, before, rise));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let timeline = sampler.stop();
    drop(monitor);
    let report = heapscope::report();
    println!("{report}");
    println!("compression ({:?}):", args.compression);
    for (turn, before, rise) in &compressions {
        println!("  after turn {turn}: history {before} bytes before, peak rise during compression {rise} bytes");
    }
    heapscope::write_private(args.out.join("report.json"), report.to_json().as_bytes())
        .expect("write report.json");
    let timeline_json = serde_json::to_vec_pretty(&timeline).expect("timeline json");
    heapscope::write_private(args.out.join("timeline.json"), &timeline_json)
        .expect("write timeline.json");
    println!(
        "wrote {} and {}",
        args.out.join("report.json").display(),
        args.out.join("timeline.json").display()
    );
    if args.bundle || args.heap_profile {
        match heapscope::capture(&heapscope::CaptureOptions::new(&args.out)) {
            Ok(bundle) => {
                println!("bundle: {}\n{}", bundle.directory.display(), bundle.privacy_notice);
                match &bundle.manifest.heap_profile {
                    heapscope::HeapProfile::Written { backend, files, .. } => {
                        println!("heap profile ({backend}): {}", files.join(", "))
                    }
                    heapscope::HeapProfile::Unavailable { reason, fix } => {
                        println!("no heap profile: {reason}; {fix}")
                    }
                    other => println!("heap profile: {other:?}"),
                }
            }
            Err(e) => eprintln!("{e}"),
        }
    }
    drop((history, pending));
}
