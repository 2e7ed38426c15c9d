//! RTF-5, fork, in a process of its own: while two threads allocate and free under owners of
//! their own, the main thread forks 20 times. Each child frees a block allocated before the
//! fork, allocates and frees under an owner, checks that owner's exact numbers, and leaves
//! with `_exit` (status 0, or a check number). The parent waits at most 5 s per child (killing
//! it on timeout), and its own owners show nothing of the children's activity.
//!
//! The child only allocates, reads stats and calls `_exit`: it never prints, panics or
//! unwinds (the threads that held std's locks at the fork do not exist in it).
#![cfg(all(unix, feature = "enabled"))]

heapscope::install!();

use heapscope::{Owner, OwnerStats};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

const FORKS: usize = 20;
/// A hang detector (a child deadlocked after fork), not a speed check: generous for sanitizers.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// Most iterations a worker runs before it stops on its own.
const MAX_WORKER_ITERS: u64 = 50_000_000;
const WORKER_SIZES: [usize; 5] = [24, 64, 100, 4096, 1000];
/// The pre-fork block each child frees, and what each child allocates: trailer and exact
/// class sizes.
const PRE: usize = 5000;
const CHILD_SIZES: [usize; 4] = [100, 64, 4096, 24];

fn nums(s: OwnerStats) -> (u64, u64, u64, u64) {
    (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks)
}

/// The child's checks; returns the number of the first one that failed, or 0. Never panics
/// on a wrong value.
fn child_checks(owner: Owner, pre_owner: Owner, pre_block: Vec<u8>, fork_no: u64) -> i32 {
    // The pre-fork block: allocated in the parent under `pre_owner`, freed here.
    let pre_before = nums(pre_owner.stats());
    let (pre_live, pre_blocks, pre_total, pre_total_blocks) = pre_before;
    let n = fork_no + 1;
    if pre_before != (PRE as u64, 1, n * PRE as u64, n) {
        return 2;
    }
    drop(black_box(pre_block));
    if nums(pre_owner.stats())
        != (pre_live - PRE as u64, pre_blocks - 1, pre_total, pre_total_blocks)
    {
        return 3;
    }
    // `owner` was registered in the parent and never used there: it starts at zero in every
    // child, whatever earlier children did.
    if nums(owner.stats()) != (0, 0, 0, 0) {
        return 4;
    }
    let blocks: Vec<Vec<u8>> = Vec::with_capacity(CHILD_SIZES.len());
    let mut blocks = black_box(blocks);
    owner.in_scope(|| {
        for size in CHILD_SIZES {
            blocks.push(black_box(Vec::with_capacity(size)));
        }
    });
    let sum: u64 = CHILD_SIZES.iter().map(|&s| s as u64).sum();
    let k = CHILD_SIZES.len() as u64;
    let s = owner.stats();
    if nums(s) != (sum, k, sum, k) {
        return 5;
    }
    if s.peak_bytes != sum {
        return 6;
    }
    let first = blocks.remove(0);
    drop(black_box(first));
    if nums(owner.stats()) != (sum - CHILD_SIZES[0] as u64, k - 1, sum, k) {
        return 7;
    }
    drop(black_box(blocks));
    let s = owner.stats();
    if nums(s) != (0, 0, sum, k) || s.peak_bytes != sum {
        return 8;
    }
    // A new owner registered in the child works too.
    let fresh = Owner::named("fork_child_fresh");
    let v = fresh.in_scope(|| black_box(Vec::<u8>::with_capacity(777)));
    if nums(fresh.stats()) != (777, 1, 777, 1) {
        return 9;
    }
    drop(black_box(v));
    if nums(fresh.stats()) != (0, 0, 777, 1) {
        return 10;
    }
    0
}

/// Waits for `pid` for at most [`CHILD_TIMEOUT`]; kills it on timeout. Its exit status, or an
/// error.
fn wait_for(pid: libc::pid_t) -> Result<i32, String> {
    let deadline = Instant::now() + CHILD_TIMEOUT;
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return Ok(libc::WEXITSTATUS(status));
            }
            return Err(format!("child {pid} did not exit normally: status {status:#x}"));
        }
        if r == -1 {
            return Err(format!("waitpid({pid}): {}", std::io::Error::last_os_error()));
        }
        if Instant::now() >= deadline {
            // SAFETY: plain system calls on our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(format!("child {pid} hung for {CHILD_TIMEOUT:?} and was killed"));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// What a worker allocated under its owner: `(bytes, blocks)`, counted by hand.
fn work(owner: Owner, stop: &AtomicBool) -> (u64, u64) {
    let (mut bytes, mut blocks) = (0u64, 0u64);
    let mut held: [Option<Vec<u8>>; 4] = std::array::from_fn(|_| None);
    for i in 0..MAX_WORKER_ITERS {
        if stop.load(SeqCst) {
            break;
        }
        let size = WORKER_SIZES[i as usize % WORKER_SIZES.len()];
        let v = owner.in_scope(|| black_box(Vec::<u8>::with_capacity(size)));
        bytes += size as u64;
        blocks += 1;
        held[i as usize % 4] = Some(v);
    }
    drop(black_box(held));
    (bytes, blocks)
}

#[test]
fn forking_while_threads_allocate() {
    let workers = [Owner::named("fork_worker_a"), Owner::named("fork_worker_b")];
    let child_owner = Owner::named("fork_child_owner");
    let pre_owner = Owner::named("fork_pre");
    let stop = AtomicBool::new(false);

    let (results, failures) = thread::scope(|s| {
        let stop = &stop;
        let handles: Vec<_> = workers.iter().map(|&o| s.spawn(move || work(o, stop))).collect();
        let mut failures = Vec::new();
        for fork_no in 0..FORKS as u64 {
            // A block the child will free; the parent keeps its copy until after the wait.
            let pre_block = pre_owner.in_scope(|| black_box(Vec::<u8>::with_capacity(PRE)));
            // Let the workers run a little between forks.
            thread::sleep(Duration::from_millis(1));
            // SAFETY: the child only allocates, reads counters and calls `_exit`.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = child_checks(child_owner, pre_owner, pre_block, fork_no);
                // SAFETY: ends the child at once, without running the parent's atexit
                // handlers or unwinding through libtest.
                unsafe { libc::_exit(code) };
            }
            if pid < 0 {
                failures.push(format!("fork {fork_no}: {}", std::io::Error::last_os_error()));
                drop(pre_block);
                break;
            }
            match wait_for(pid) {
                Ok(0) => {}
                Ok(code) => failures.push(format!("fork {fork_no}: child check {code} failed")),
                Err(e) => failures.push(format!("fork {fork_no}: {e}")),
            }
            // The child freed its copy; the parent still holds this one.
            let s = pre_owner.stats();
            let n = fork_no + 1;
            if nums(s) != (PRE as u64, 1, n * PRE as u64, n) {
                failures.push(format!("fork {fork_no}: parent's pre-fork owner changed: {s:?}"));
            }
            drop(pre_block);
        }
        stop.store(true, SeqCst);
        let results: Vec<(u64, u64)> =
            handles.into_iter().map(|h| h.join().expect("worker panicked")).collect();
        (results, failures)
    });
    assert!(failures.is_empty(), "{failures:#?}");

    // The parent's owners saw nothing of the children: workers have exactly their own
    // counts, the child owner none at all, the child-registered name does not exist here.
    for (o, (bytes, blocks)) in workers.iter().zip(&results) {
        assert!(*blocks > 0);
        assert_eq!(nums(o.stats()), (0, 0, *bytes, *blocks), "{}", o.name());
    }
    let s = child_owner.stats();
    assert_eq!((nums(s), s.peak_bytes), ((0, 0, 0, 0), 0));
    let n = FORKS as u64;
    assert_eq!(nums(pre_owner.stats()), (0, 0, n * PRE as u64, n));
    let snap = heapscope::Snapshot::capture();
    assert!(snap.owner("fork_child_fresh").is_none(), "a child's owner leaked into the parent");
}
