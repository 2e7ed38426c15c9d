//! heapscope's background threads keep asynchronous signals blocked: a program that blocks
//! SIGUSR1 on its own threads and takes it with `sigwait` (the heaptrack scenario) gets it,
//! even with a sampler and a pressure monitor running. Were either thread to leave SIGUSR1
//! unblocked, the kernel could deliver it there and its default action would end the process.
//!
//! Own process (`harness = false`): signal masks and dispositions are process-wide.

use std::time::Duration;

heapscope::install!();

fn main() {
    let sampler = heapscope::Sampler::start(Duration::from_millis(10), 1000).unwrap();
    let base = std::env::temp_dir().join(format!("heapscope-sigmask-{}", std::process::id()));
    let monitor = heapscope::PressureMonitor::builder()
        .directory(&base)
        .interval(Duration::from_millis(10))
        .report(heapscope::ReportOptions::default().budget_bytes(1 << 40).process_tree(false))
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));

    // The program's own arrangement, made after heapscope started its threads.
    // SAFETY: a zeroed sigset_t initialised by sigemptyset; only this thread's mask changes
    // (and the waiter's, which inherits it).
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        assert_eq!(libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()), 0);
        set
    };
    let waiter = std::thread::spawn(move || {
        let mut received = 0;
        // SAFETY: `set` is a valid sigset_t; sigwait writes the signal number to `received`.
        assert_eq!(unsafe { libc::sigwait(&set, &mut received) }, 0);
        received
    });
    for _ in 0..20 {
        // SAFETY: sends SIGUSR1 to this process, which blocks it on every thread of its own.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
        std::thread::sleep(Duration::from_millis(5));
        if waiter.is_finished() {
            break;
        }
    }
    assert_eq!(waiter.join().unwrap(), libc::SIGUSR1);
    drop(monitor);
    let timeline = sampler.stop();
    assert!(!timeline.samples.is_empty());
    std::fs::remove_dir_all(&base).ok();
    eprintln!("signal_mask: ok");
}
