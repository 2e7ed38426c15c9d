//! heapscope's "doctor memory": prints the memory report; `--heap-snapshot` also writes a
//! private diagnostics bundle; `--watch <seconds>` samples a bounded timeline and prints how
//! every series moved.
//!
//! ```text
//! cargo run --example doctor --features enabled
//! cargo run --example doctor --features enabled -- --heap-snapshot --dir /var/tmp/agent
//! cargo run --example doctor --features enabled -- --watch 5
//! cargo run --example doctor --features enabled,jemalloc-profiling -- --heap-profile --heap-snapshot
//! ```
//!
//! `--heap-profile` starts jemalloc's sampling before the work (needs the `jemalloc-profiling`
//! feature), so the snapshot's `heap.pb.gz` and `jemalloc.heap` hold samples.

use std::io::Write;
use std::time::Duration;

heapscope::install!();

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value =
        |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();

    if flag("--heap-profile") {
        if let Err(e) = heapscope::profiling::activate() {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
    let history = heapscope::owner!("history");
    let turns: Vec<String> =
        history.in_scope(|| (0..500).map(|i| format!("turn {i}: {}", "x".repeat(500))).collect());

    println!("{}", heapscope::report());

    if let Some(seconds) = value("--watch") {
        let seconds: u64 = match seconds.parse() {
            Ok(s) if (1..=3600).contains(&s) => s,
            _ => {
                eprintln!("heapscope doctor: --watch takes 1 to 3600 seconds, not {seconds:?}");
                std::process::exit(2);
            }
        };
        let interval = Duration::from_millis(100);
        let sampler = heapscope::Sampler::start(interval, 36_000).expect("bounded sampler");
        for tick in 1..=seconds * 10 {
            std::thread::sleep(interval);
            let done = tick * 40 / (seconds * 10);
            print!("\r[{:<40}] {:>4}/{} s", "#".repeat(done as usize), tick / 10, seconds);
            let _ = std::io::stdout().flush();
        }
        println!();
        let timeline = sampler.stop();
        println!("{:<40} {:>14} {:>14} {:>14} {:>14}", "series", "start", "end", "max", "delta");
        for s in &timeline.series {
            println!("{:<40} {:>14} {:>14} {:>14} {:>+14}", s.name, s.start, s.end, s.max, s.delta);
        }
    }

    if flag("--heap-snapshot") {
        let options =
            heapscope::CaptureOptions::new(value("--dir").unwrap_or_else(|| ".".to_owned()));
        match heapscope::capture(&options) {
            Ok(bundle) => {
                println!("\n{}\n", bundle.privacy_notice);
                println!("bundle: {}", bundle.directory.display());
                for f in &bundle.manifest.files {
                    println!("  {} ({} bytes, sha256 {})", f.name, f.bytes, f.sha256);
                }
                match &bundle.manifest.heap_profile {
                    heapscope::HeapProfile::Unavailable { reason, fix } => {
                        println!("  no heap profile: {reason}; {fix}")
                    }
                    heapscope::HeapProfile::Written { backend, files, notes } => {
                        println!("  heap profile ({backend}): {}", files.join(", "));
                        for note in notes {
                            println!("  note: {note}");
                        }
                    }
                    other => println!("  heap profile: {other:?}"),
                }
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    drop(turns);
}
