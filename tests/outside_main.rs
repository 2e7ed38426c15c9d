//! Allocations outside `main` (RELIABILITY.md RTF-4): a block allocated by a constructor that
//! runs before `main` (`.init_array`), and allocations made by a `libc::atexit` hook that runs
//! after `std::process::exit` was called from a worker thread while other threads allocate.
//! Runs without libtest's harness (`harness = false`): before the child process is spawned
//! only the main thread runs, so root's numbers move only by what this file does.

use heapscope::Owner;
use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicPtr, Ordering::SeqCst};
use std::time::{Duration, Instant};

heapscope::install!();

const PRE_MAIN_BYTES: usize = 777;
const CHILD_ENV: &str = "HEAPSCOPE_TEST_OUTSIDE_MAIN_CHILD";

/// The block allocated before `main`.
static PRE_MAIN: AtomicPtr<[u8; PRE_MAIN_BYTES]> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn before_main() {
    PRE_MAIN.store(Box::into_raw(black_box(Box::new([7u8; PRE_MAIN_BYTES]))), SeqCst);
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static BEFORE_MAIN: extern "C" fn() = before_main;

/// A block allocated before `main` was charged to root (no scope can be open yet), and its
/// free inside a scope credits root, not the scope's owner.
fn a_block_allocated_before_main_is_roots() {
    let p = PRE_MAIN.swap(std::ptr::null_mut(), SeqCst);
    assert!(!p.is_null(), "the constructor did not run");
    // SAFETY: `p` came from `Box::into_raw` and was taken out of `PRE_MAIN` once.
    let block = unsafe { Box::from_raw(p) };
    assert!(block.iter().all(|&b| b == 7));
    let freer = Owner::named("om_freer");
    let root = Owner::root();
    let r0 = root.stats();
    freer.in_scope(|| drop(black_box(block)));
    let r1 = root.stats();
    assert_eq!(
        (r0.live_bytes - r1.live_bytes, r0.live_blocks - r1.live_blocks),
        (PRE_MAIN_BYTES as u64, 1),
        "{r0:?} -> {r1:?}"
    );
    let f = freer.stats();
    assert_eq!((f.live_bytes, f.total_bytes, f.total_blocks), (0, 0, 0), "{f:?}");
}

extern "C" fn at_exit() {
    // Runs on the thread that called `exit`, while other threads may still allocate.
    let o = Owner::named("om_atexit");
    let v = o.in_scope(|| black_box(vec![1u8; 300]));
    let held = o.stats();
    drop(v);
    let after = o.stats();
    let line = if (held.live_bytes, after.live_bytes, after.total_bytes) == (300, 0, 300) {
        "atexit ok\n".to_owned()
    } else {
        format!("atexit wrong: {held:?} then {after:?}\n")
    };
    // Raw write: std's stdout may already be flushed and torn down.
    // SAFETY: writes `line`'s bytes, which live across the call, to fd 1.
    unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
}

/// The child: registers the hook, starts allocating threads, and has one of them call
/// `std::process::exit` while the others (and the main thread) keep allocating.
fn child() -> ! {
    // SAFETY: `at_exit` is an `extern "C" fn()` that does not unwind (nothing in it panics).
    assert_eq!(unsafe { libc::atexit(at_exit) }, 0);
    for t in 0..3 {
        std::thread::spawn(move || {
            let o = Owner::named(format!("om_worker_{t}"));
            let _s = o.enter();
            let mut keep = Vec::new();
            for i in 0u64.. {
                keep.push(black_box(vec![i as u8; 64 + (i % 512) as usize]));
                if keep.len() > 100 {
                    keep.clear();
                }
                if t == 0 && i == 20_000 {
                    std::process::exit(0);
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        drop(black_box(vec![0u8; 100]));
    }
    eprintln!("the worker never called exit");
    std::process::exit(3)
}

/// `std::process::exit` from a worker runs the atexit hook, whose allocations are counted
/// exactly, and the process ends normally.
fn exit_from_a_worker_runs_an_allocating_atexit_hook() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the child hung at exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert_eq!(stdout, "atexit ok\n", "{stderr}");
}

fn main() {
    assert!(heapscope::is_tracking());
    if !cfg!(target_os = "linux") {
        println!("outside_main: skipped (the constructor is an ELF .init_array entry)");
        return;
    }
    a_block_allocated_before_main_is_roots();
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
    }
    println!("test a_block_allocated_before_main_is_roots ... ok");
    exit_from_a_worker_runs_an_allocating_atexit_hook();
    println!("test exit_from_a_worker_runs_an_allocating_atexit_hook ... ok");
    let _ = std::io::stdout().flush();
    println!("outside_main: 2 passed, 0 failed");
}
