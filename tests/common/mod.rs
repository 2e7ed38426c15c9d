//! Helpers shared by integration tests (not a test target itself).

use std::path::PathBuf;

/// The file names in `dir`, sorted.
#[allow(dead_code, reason = "not every test that includes this module lists a directory")]
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The path of example `name`, which `cargo test` builds alongside the tests.
#[allow(dead_code, reason = "not every test that includes this module runs an example")]
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --all-features`, which builds the examples",
        path.display()
    );
    path
}

/// Forks; the child runs `in_child` and leaves with `_exit(0)` (nothing else of the parent's
/// runs there). Returns the child's wait status, or `None` when it had not exited within
/// `timeout` (it is then killed and reaped).
#[allow(dead_code, reason = "only the tests of fork safety use it")]
pub fn fork_and_wait(in_child: impl FnOnce(), timeout: std::time::Duration) -> Option<i32> {
    // SAFETY: the child only runs `in_child` and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        in_child();
        // SAFETY: ends the child without running anything else of the parent's.
        unsafe { libc::_exit(0) };
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: `pid` is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Bytes `owner` was charged for a block of `bytes` allocated now, on this thread: the growth
/// of its allocated total, not of its live bytes. A block the owner got earlier in a structure
/// shared between tests (tracing-core's list of dispatchers, grown while the owner was
/// current) may be freed by another test's thread at any moment, and the live difference
/// then came out 584 bytes short under load.
#[allow(dead_code, reason = "not every test that includes this module measures a charge")]
pub fn charged_to(owner: heapscope::Owner, bytes: usize) -> u64 {
    let before = owner.stats().total_bytes;
    let v = std::hint::black_box(vec![0u8; bytes]);
    let charged = owner.stats().total_bytes - before;
    drop(v);
    charged
}
