//! The report's process tree on the live system, in a process of its own: it costs what the
//! tree holds, not what the machine runs, and finds the same descendants with the same RSS as
//! a scan of every `/proc/<pid>/stat` (the way the report found them until 2026-12-05).
//!
//! The test starts 2 000 `sleep` processes that are not its descendants (200 under a
//! sanitizer, `HEAPSCOPE_SANITIZER`): a launcher child starts a holder in a process group of
//! its own and exits, so the holder and its sleeps belong to another parent. Then 20 children
//! of its own: 10 `sleep`s and 10 shells that each run a `sleep` (a tool two levels down).
//! Every spawned process is killed by a guard's `Drop`, which runs when the test fails too, and
//! every `sleep` ends by itself after `LIFETIME` seconds should the test be killed outright.
//! Runs without libtest's harness: the binary re-runs itself as the launcher and the holder.

use heapscope::{Owner, Report, ReportOptions};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

heapscope::install!();

const ROLE_ENV: &str = "HEAPSCOPE_PROCESS_TREE_ROLE";
/// Seconds every spawned `sleep` lives at most.
const LIFETIME: &str = "120";
/// Children of the test's own: half `sleep`, half `sh -c 'sleep & wait'`.
const CHILDREN: usize = 20;

fn strangers() -> usize {
    if std::env::var_os("HEAPSCOPE_SANITIZER").is_some() {
        200
    } else {
        2000
    }
}

/// The launcher: starts the holder in a process group of its own and exits, so that the
/// holder is re-parented away from the test.
#[allow(
    clippy::zombie_processes,
    reason = "not waited for on purpose: the holder's new parent (a reaper) reaps it"
)]
fn launcher() {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE_ENV, "holder")
        .process_group(0)
        .spawn()
        .expect("heapscope: spawn the holder");
}

/// The holder: starts the strangers (in its process group), says `ready <its pid>` on the
/// stdout it shares with the test, and reaps them as they end.
fn holder() {
    let mut sleeps = Vec::with_capacity(strangers());
    for _ in 0..strangers() {
        match Command::new("sleep")
            .arg(LIFETIME)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => sleeps.push(child),
            Err(e) => {
                println!("failed {e} after {}", sleeps.len());
                std::io::stdout().flush().unwrap();
                // SAFETY: kill has no memory preconditions: the holder's group, itself included.
                unsafe { libc::kill(0, libc::SIGKILL) };
                return;
            }
        }
    }
    println!("ready {}", std::process::id());
    std::io::stdout().flush().unwrap();
    for mut sleep in sleeps {
        let _ = sleep.wait();
    }
}

/// A process group, killed (SIGKILL) when dropped.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; a group already gone gives ESRCH.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

/// The test's own children, each leading a process group of its own: dropping kills the
/// group (the shell's `sleep` with it) and reaps the child.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // SAFETY: as in `Group::drop`.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

fn start_strangers() -> Group {
    let mut launcher = Command::new(std::env::current_exe().unwrap())
        .env(ROLE_ENV, "launcher")
        .stdout(Stdio::piped())
        .spawn()
        .expect("heapscope: spawn the launcher");
    let stdout = launcher.stdout.take().unwrap();
    assert!(launcher.wait().unwrap().success(), "the launcher failed");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let pid: i32 = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("heapscope: the holder said {line:?}"));
    Group(pid)
}

fn start_children() -> Children {
    let mut children = Children(Vec::with_capacity(CHILDREN));
    for i in 0..CHILDREN {
        let mut command = if i % 2 == 0 {
            let mut c = Command::new("sleep");
            c.arg(LIFETIME);
            c
        } else {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("sleep {LIFETIME} & wait"));
            c
        };
        command.stdin(Stdio::null()).process_group(0);
        children.0.push(command.spawn().expect("heapscope: spawn a child"));
    }
    children
}

/// One process as `/proc/<pid>/stat` gives it: parent, command name, RSS in bytes (0 for a
/// zombie).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Proc {
    ppid: u32,
    command: String,
    rss_bytes: u64,
}

/// Every descendant of this process, found the way the report found them until 2026-12-05:
/// every `/proc/<pid>/stat` of the machine read, then the tree walked from this pid.
fn scan_descendants() -> HashMap<u32, Proc> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let mut all: HashMap<u32, Proc> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else { continue };
        let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
        let state = rest[0];
        let rss: u64 = rest[21].parse().unwrap();
        all.insert(
            pid,
            Proc {
                ppid: rest[1].parse().unwrap(),
                command: text[open + 1..close].to_owned(),
                rss_bytes: if state == "Z" { 0 } else { rss * page },
            },
        );
    }
    let mut found = HashMap::new();
    let mut frontier = vec![std::process::id()];
    while let Some(parent) = frontier.pop() {
        for (pid, p) in &all {
            if p.ppid == parent && !found.contains_key(pid) {
                found.insert(*pid, p.clone());
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Waits until the tree is what the test started: 20 children and 10 grandchildren, each
/// `sleep` or `sh` having exec'd, and the same in two scans in a row.
fn settled_tree(children: &Children) -> HashMap<u32, Proc> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = HashMap::new();
    loop {
        let now = scan_descendants();
        let ours = children.0.iter().map(Child::id).collect::<Vec<_>>();
        let sleeps = now.values().filter(|p| p.command == "sleep").count();
        let grandchildren = now.values().filter(|p| ours.contains(&p.ppid) && p.command == "sleep");
        if now.len() == CHILDREN + CHILDREN / 2
            && sleeps == CHILDREN
            && grandchildren.count() == CHILDREN / 2
            && now == last
        {
            return now;
        }
        assert!(Instant::now() < deadline, "the tree did not settle: {now:?}");
        last = now;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A report's allocation under `heapscope.internal` (bytes allocated during it) and its time.
fn measure(options: &ReportOptions) -> (Report, u64, Duration) {
    let internal = Owner::internal();
    let before = internal.stats().total_bytes;
    let start = Instant::now();
    let report = Report::capture_with(options);
    let took = start.elapsed();
    (report, internal.stats().total_bytes - before, took)
}

fn the_tree_costs_what_it_holds_and_matches_a_full_scan() {
    let strangers = start_strangers();
    let children = start_children();
    let expected = settled_tree(&children);

    let with_tree = ReportOptions::default();
    let without = ReportOptions::default().process_tree(false);
    // Warm-up: first-use state (the registry's readings, std's caches) on both paths.
    for _ in 0..2 {
        measure(&with_tree);
        measure(&without);
    }
    let (report, with_bytes, with_time) = measure(&with_tree);
    let (_, without_bytes, without_time) = measure(&without);
    let extra = with_bytes.saturating_sub(without_bytes);
    let process = report.process.as_ref().expect("process section");
    let threads = process.threads.expect("threads");
    println!(
        "process tree: {} descendants, {} threads, {} processes on the machine: the report \
         allocated {with_bytes} B with the tree, {without_bytes} B without ({extra} B more), \
         took {with_time:?} against {without_time:?}",
        process.descendants,
        threads,
        processes_on_machine(),
    );

    // The same descendants with the same figures as the full scan, grandchildren included.
    assert_eq!(scan_descendants(), expected, "the tree changed during the report");
    assert_eq!(process.descendants, expected.len(), "{:?}", process.largest_children);
    let mut by_size: Vec<(&u32, &Proc)> = expected.iter().collect();
    by_size.sort_by(|a, b| b.1.rss_bytes.cmp(&a.1.rss_bytes).then(a.0.cmp(b.0)));
    let listed: Vec<(u32, u32, &str, u64)> = process
        .largest_children
        .iter()
        .map(|c| (c.pid, c.ppid, c.command.as_str(), c.rss_bytes))
        .collect();
    let top: Vec<(u32, u32, &str, u64)> = by_size
        .iter()
        .take(10)
        .map(|(pid, p)| (**pid, p.ppid, p.command.as_str(), p.rss_bytes))
        .collect();
    assert_eq!(listed, top, "the ten largest descendants");
    let sum: u64 = expected.values().map(|p| p.rss_bytes).sum();
    assert_eq!(process.tree_rss_bytes.unwrap() - process.rss_bytes.unwrap(), sum, "their RSS");
    assert!(
        !report.warnings.iter().any(|w| w.contains("process tree")),
        "this kernel has /proc/<pid>/task/<tid>/children: {:?}",
        report.warnings
    );

    // The cost: per descendant, its task directory's listing, its threads' `children` files
    // and its `stat` (paths, read into one buffer) and its record; per thread of this process
    // a `children` file. 18 240 B here for 30 descendants and 1 thread (about 590 B each);
    // reading every process's stat, 6 683 866 B (2 112 processes), 2 511 982 B once a stat's
    // fields were no longer gathered into a `Vec`. Bound: 8 KiB and 1 KiB for each.
    if heapscope::is_tracking() {
        let bound = 8 * 1024 + 1024 * (process.descendants as u64 + threads);
        assert!(
            extra <= bound,
            "the process tree allocated {extra} B for {} descendants and {threads} threads, \
             bound {bound} B: it grows with the machine's {} processes",
            process.descendants,
            processes_on_machine()
        );
    } else {
        println!("heapscope: disabled, the tree's allocation not checked");
    }
    drop(children);
    drop(strangers);
}

fn processes_on_machine() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok()))
        .count()
}

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("launcher") => return launcher(),
        Ok("holder") => return holder(),
        _ => {}
    }
    the_tree_costs_what_it_holds_and_matches_a_full_scan();
    println!("process_tree: 1 passed, 0 failed");
}
