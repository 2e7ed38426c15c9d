//! heapscope's background threads (sampler, pressure monitor, signal trigger) keep
//! asynchronous signals blocked, so a signal sent to the process reaches the program's own
//! threads: a program that blocks, say, SIGTERM everywhere and waits for it with `sigwait` on a
//! thread of its own must not have it delivered to, and its default action run on, one of ours.

/// Blocks every asynchronous signal on the calling thread except `except`. The signals a
/// fault raises on the faulting thread (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) stay
/// unblocked: blocking them would turn a crash into undefined behaviour.
pub(crate) fn block_async_signals(except: Option<i32>) {
    #[cfg(unix)]
    {
        // SAFETY: `set` is a properly sized sigset_t, initialised by sigfillset before use;
        // these calls only change this thread's signal mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            for sync in [
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGFPE,
                libc::SIGILL,
                libc::SIGTRAP,
                libc::SIGSYS,
            ] {
                libc::sigdelset(&mut set, sync);
            }
            if let Some(signal) = except {
                libc::sigdelset(&mut set, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
    }
    #[cfg(not(unix))]
    let _ = except;
}
