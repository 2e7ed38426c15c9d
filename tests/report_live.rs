//! `heapscope::report()` on the live system: real child processes that allocate memory show
//! in the process tree, and a growing owner and a large retained item show in the
//! suggestions. Runs without libtest's harness: the binary re-runs itself as the children.

use heapscope::{Owner, Retained};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

heapscope::install!();

const CHILD_ENV: &str = "HEAPSCOPE_REPORT_LIVE_CHILD";
const CHILD_BYTES: usize = 48 << 20;

/// The child: touch 48 MiB so it is resident, say so, and live until stdin closes (at most
/// 30 s).
fn child() {
    let mut block = vec![0u8; CHILD_BYTES];
    for (i, byte) in block.iter_mut().enumerate().step_by(4096) {
        *byte = i as u8;
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = done_tx.send(());
    });
    let _ = done_rx.recv_timeout(Duration::from_secs(30));
    std::hint::black_box(&block);
}

fn spawn_child() -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

fn children_show_in_the_process_tree() {
    let children: Vec<Child> = (0..2).map(|_| spawn_child()).collect();
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let report = heapscope::report();
    let process = report.process.as_ref().expect("process section");
    for pid in &pids {
        let found = process.largest_children.iter().find(|c| c.pid == *pid);
        let found =
            found.unwrap_or_else(|| panic!("child {pid} missing: {:?}", process.largest_children));
        assert!(found.rss_bytes >= CHILD_BYTES as u64, "{found:?}");
        assert_eq!(found.ppid, std::process::id());
    }
    assert!(process.descendants >= 2);
    let own = process.rss_bytes.unwrap();
    assert!(process.tree_rss_bytes.unwrap() >= own + 2 * CHILD_BYTES as u64);
    let text = report.to_string();
    for pid in &pids {
        assert!(text.contains(&format!("child {pid} ")), "{text}");
    }
    for mut child in children {
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "child did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Gone children are gone from the next report.
    let after = heapscope::report();
    let left = &after.process.as_ref().unwrap().largest_children;
    assert!(pids.iter().all(|pid| left.iter().all(|c| c.pid != *pid)), "{left:?}");
}

fn growing_owner_and_large_item_are_suggested() {
    let growing = Owner::named("report_live_growing");
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for _ in 0..10 {
        kept.push(growing.in_scope(|| vec![1u8; 1 << 20]));
    }
    let item = Retained::build(Owner::named("report_live_tools"), "big tool output", || {
        "x".repeat(3 << 20)
    });
    let report = heapscope::report();
    assert!(report.runtime.tracking);
    let line =
        report.owners.tree.iter().find(|o| o.name == "report_live_growing").expect("owner listed");
    assert_eq!(line.live_bytes, 10 << 20);
    assert!(line.share > 0.5);
    assert!(
        report.suggestions.iter().any(|s| s.starts_with("owner \"report_live_growing\" holds")),
        "{:?}",
        report.suggestions
    );
    assert_eq!(report.retained[0].label, "big tool output");
    assert_eq!(report.retained[0].live_bytes, 3 << 20);
    assert!(
        report
            .suggestions
            .iter()
            .any(|s| s.contains("\"big tool output\"") && s.contains("3.0 MiB")),
        "{:?}",
        report.suggestions
    );
    let alloc = report.allocator.as_ref().expect("jemalloc stats");
    assert!(alloc.allocated >= report.owners.tracked_live_bytes);
    assert!(alloc.resident >= alloc.active && alloc.active >= alloc.allocated);
    drop((kept, item));
}

/// RELIABILITY.md ACC-8 against jemalloc: 64 blocks of 1 MiB less 5000 bytes (each in
/// jemalloc's 1 MiB class, its trailer in the slack) move jemalloc's `stats.allocated` and
/// heapscope's process live bytes by the same amount within 5 % (tikv_alloc's tolerance), and
/// freeing them moves both back. Large blocks bypass the thread cache, so no flush is needed.
fn jemalloc_and_heapscope_agree_on_what_a_large_allocation_moved() {
    const BLOCKS: usize = 64;
    const SIZE: usize = (1 << 20) - 5000;
    let o = Owner::named("live_conservation");
    let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(BLOCKS);
    let allocated = || heapscope::report().allocator.expect("jemalloc stats").allocated as f64;
    let live = || heapscope::global_stats().live_bytes as f64;
    let (a0, g0) = (allocated(), live());
    o.in_scope(|| blocks.extend((0..BLOCKS).map(|_| std::hint::black_box(vec![1u8; SIZE]))));
    let (a1, g1) = (allocated(), live());
    assert_eq!(o.stats().live_bytes, (BLOCKS * SIZE) as u64);
    let (jemalloc, ours) = (a1 - a0, g1 - g0);
    assert!(
        (jemalloc - ours).abs() <= 0.05 * ours && ours >= (BLOCKS * SIZE) as f64 * 0.95,
        "jemalloc moved {jemalloc} bytes, heapscope {ours}"
    );
    drop(blocks);
    let (a2, g2) = (allocated(), live());
    assert!((a1 - a2 - (g1 - g2)).abs() <= 0.05 * (g1 - g2), "freed: {a1}->{a2}, {g1}->{g2}");
    assert_eq!(o.stats().live_bytes, 0);
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    children_show_in_the_process_tree();
    growing_owner_and_large_item_are_suggested();
    jemalloc_and_heapscope_agree_on_what_a_large_allocation_moved();
    println!("report_live: 3 passed, 0 failed");
}
