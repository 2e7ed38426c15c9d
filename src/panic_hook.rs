//! The panic hook under an owner of its own.
//!
//! A panic's report is allocated by the hook, on the panicking thread, under whatever owner
//! that thread has: the message, and with `RUST_BACKTRACE` set, std's cache of the binary's
//! debug information, which resolving the first backtrace fills and nothing ever frees (31 MiB
//! for a small release binary here; more with full debug information). Charged to a tool
//! call's owner, or to a `Retained` item built in it, that cache reads as the largest holder
//! of the heap for the rest of the process. Running the hook under an owner of its own puts
//! it where it belongs.

use crate::Owner;

#[cfg(feature = "enabled")]
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The owner every wrapper [`run_panic_hook_in`] installed runs its hook under: the owner of
/// the latest call, as `id << 32 | generation`.
#[cfg(feature = "enabled")]
static HOOK_OWNER: AtomicU64 = AtomicU64::new(0);

/// Makes the panic hook installed now (std's default, or one of yours, such as a crash
/// reporter) run under `owner`, so that what it allocates is charged there rather than to the
/// owner of the thread that panicked.
///
/// What a panic's report keeps is the reason: with `RUST_BACKTRACE` set, std's default hook
/// resolves the backtrace through a cache of the binary's debug information that is never
/// freed (31 MiB for a small release binary on this project's machine). Without this call that
/// cache stays charged to whichever owner panicked first (a tool call, a `Retained` item
/// built in one) for the rest of the process; with it, to `owner`.
///
/// Call it at start-up, after installing any hook of your own: it wraps the hook that is
/// installed at the call, and a hook set later replaces the wrapper. Calling it again wraps
/// the hook current then; every wrapper uses the owner of the latest call. Without the
/// `enabled` feature it does nothing and leaves the hook as it is. Like
/// [`std::panic::set_hook`], it panics if called while the thread is panicking.
///
/// Backtraces your own code formats (`std::backtrace::Backtrace`, or errors that capture one
/// with `RUST_LIB_BACKTRACE`) fill the same cache, and the first one keeps a few KiB more of
/// its own (4 368 bytes in a test here): format the first one under the same owner to keep
/// those there too; later ones keep nothing.
///
/// ```
/// # heapscope::install!();
/// heapscope::run_panic_hook_in(heapscope::owner!("panic_hook"));
///
/// let tool = heapscope::Owner::named("tool_call");
/// let outcome = std::panic::catch_unwind(|| tool.in_scope(|| panic!("the tool failed")));
/// assert!(outcome.is_err());
/// drop(outcome);
/// // The report and std's backtrace cache are panic_hook's; the tool call holds nothing.
/// assert_eq!(tool.stats().live_bytes, 0);
/// ```
pub fn run_panic_hook_in(owner: Owner) {
    #[cfg(feature = "enabled")]
    {
        let packed = u64::from(owner.id()) << 32 | u64::from(owner.generation());
        HOOK_OWNER.store(packed, Relaxed);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let packed = HOOK_OWNER.load(Relaxed);
            let owner = Owner::from_parts((packed >> 32) as u16, packed as u32);
            owner.in_scope(|| hook(info));
        }));
    }
    #[cfg(not(feature = "enabled"))]
    let _ = owner;
}
