//! Side-by-side tables of allocators on the same loops (`ingredients`, `peers`).
//!
//! A child process times every allocator on each workload in rounds that run them all in
//! turn (the order alternating, so no allocator always runs first or last), and prints per
//! workload the raw jemalloc time per operation and each allocator's median ratio to raw
//! jemalloc in the same round. The parent runs fresh child processes and prints the medians
//! over processes as a Markdown table. Ratios of the same round cancel most of this VM's
//! drift, which moves raw times by tens of percent between minutes.

use super::median;
use std::time::Instant;

/// How long a run is: a smoke run (`cargo test --benches` runs bench targets without
/// `--bench`), `quick`, or the full run.
pub struct Plan {
    pub smoke: bool,
    pub quick: bool,
    pub rounds: usize,
    pub ops: usize,
}

impl Plan {
    /// The plan the command line asks for.
    pub fn from_args() -> Plan {
        let args: Vec<String> = std::env::args().collect();
        let quick = args.iter().any(|a| a == "quick");
        let smoke = !args.iter().any(|a| a == "--bench");
        let (rounds, ops) = if smoke {
            (1, 2_000)
        } else if quick {
            (7, 200_000)
        } else {
            (21, 1_000_000)
        };
        Plan { smoke, quick, rounds, ops }
    }

    /// Whether this process is a child (or a smoke run, which is its own single child).
    pub fn is_child(&self) -> bool {
        self.smoke || std::env::args().any(|a| a == "child")
    }
}

/// The child's part: for each of `workloads`, times `run(which, workload)` for the
/// `columns` allocators (0 is raw jemalloc) over `rounds` counted rounds after one warm-up
/// round, and prints `workload raw_ns ratio_1 … ratio_{columns-1}`. `run` returns how many
/// operations it performed.
pub fn child(
    columns: usize,
    workloads: &[(&str, &str)],
    rounds: usize,
    mut run: impl FnMut(usize, &str) -> usize,
) {
    for (workload, _) in workloads {
        let mut ns = vec![Vec::new(); columns];
        for round in 0..=rounds {
            for k in 0..columns {
                let which = if round % 2 == 0 { k } else { columns - 1 - k };
                let start = Instant::now();
                let ops = run(which, workload);
                let per_op = start.elapsed().as_nanos() as f64 / ops as f64;
                // Round 0 warms every allocator up and is not counted.
                if round > 0 {
                    ns[which].push(per_op);
                }
            }
        }
        let mut line = format!("{workload} {:.3}", median(ns[0].clone()));
        for k in 1..columns {
            let ratios = ns[k].iter().zip(&ns[0]).map(|(t, r)| t / r).collect();
            line += &format!(" {:.3}", median(ratios));
        }
        println!("{line}");
    }
}

/// The parent's part: runs `processes` children of this executable and prints the table
/// headed by `heading`, one column per name in `names` (the allocators after raw jemalloc),
/// one row per workload (its title).
pub fn parent(heading: &str, names: &[&str], workloads: &[(&str, &str)], plan: &Plan) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child_args = vec!["--bench", "child"];
    if plan.quick {
        child_args.push("quick");
    }
    let processes = 3;
    // Per workload: every process's values (raw ns, then one ratio per allocator).
    let mut values: Vec<Vec<Vec<f64>>> = vec![Vec::new(); workloads.len()];
    for _ in 0..processes {
        let out = std::process::Command::new(&exe).args(&child_args).output().expect("run child");
        assert!(out.status.success(), "child: {}", String::from_utf8_lossy(&out.stderr));
        for (w, line) in String::from_utf8_lossy(&out.stdout).lines().enumerate() {
            let numbers = line.split(' ').skip(1).map(|v| v.parse().expect("number")).collect();
            values[w].push(numbers);
        }
    }
    println!(
        "{heading}: ratio to raw jemalloc, median over {processes} processes × {} rounds × {} operations",
        plan.rounds, plan.ops
    );
    print!("| {:<36} | {:>6} |", "workload", "raw ns");
    for name in names {
        print!(" {name:>9} |");
    }
    println!();
    print!("|{:-<38}|{:-<8}|", "", "");
    for _ in names {
        print!("{:-<11}|", "");
    }
    println!();
    for ((_, title), per_process) in workloads.iter().zip(values) {
        let column = |k: usize| median(per_process.iter().map(|v| v[k]).collect());
        print!("| {title:<36} | {:>6.2} |", column(0));
        for k in 1..=names.len() {
            print!(" {:>8.2}x |", column(k));
        }
        println!();
    }
}
