//! `run_panic_hook_in`: a caught panic's report (std's backtrace cache above all) is charged
//! to the hook's owner, not to the owner that panicked. Its own process: the panic hook and
//! `RUST_BACKTRACE` are the process's.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::Owner;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

static EARLIER_HOOK_RAN: AtomicBool = AtomicBool::new(false);

/// One test: the hook and the environment are the whole process's.
#[test]
fn a_caught_panic_leaves_nothing_in_the_owner_that_panicked() {
    if !heapscope::is_tracking() {
        return;
    }
    // Read by std's default hook at the first panic (none yet in this process): with it, the
    // hook resolves a backtrace and fills std's symbol cache, which is never freed.
    std::env::set_var("RUST_BACKTRACE", "1");
    // A hook of the program's own, set before: it must still run, and std's default after it.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        EARLIER_HOOK_RAN.store(true, SeqCst);
        default(info);
    }));
    let hook_owner = Owner::named("panic_hook_test_hook");
    heapscope::run_panic_hook_in(hook_owner);

    let tool = Owner::named("panic_hook_test_tool");
    let outcome = std::panic::catch_unwind(|| {
        tool.in_scope(|| {
            let _output = vec![0u8; 1000];
            panic!("tool call {} failed", 42)
        })
    });
    assert!(outcome.is_err());
    drop(outcome); // the payload: the formatted message, allocated in the tool's scope
    assert!(EARLIER_HOOK_RAN.load(SeqCst), "the hook set before was not run");

    // Without the wrapper the tool kept the backtrace cache: 31 MiB in a release build, more
    // here (tests carry full debug information).
    let tool_stats = tool.stats();
    assert_eq!((tool_stats.live_bytes, tool_stats.live_blocks), (0, 0), "{tool_stats:?}");
    let hook_stats = hook_owner.stats();
    assert!(
        hook_stats.live_bytes > 1 << 20,
        "std's backtrace cache should be the hook owner's: {hook_stats:?}"
    );

    // A first backtrace formatted by the program keeps a few KiB of its own (4 368 bytes in
    // 2 blocks here): formatted under the hook's owner, as the docs say, it stays there, and
    // a later one under another owner keeps nothing.
    let first = hook_owner.in_scope(|| std::backtrace::Backtrace::force_capture().to_string());
    drop(first);
    let later = Owner::named("panic_hook_test_later");
    let text = later.in_scope(|| std::backtrace::Backtrace::force_capture().to_string());
    assert!(!text.is_empty());
    drop(text);
    assert_eq!(later.stats().live_bytes, 0, "{:?}", later.stats());
}
