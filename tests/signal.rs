//! SIGUSR2 writes a diagnostics bundle from the trigger's own thread; repeated signals are held
//! to the cooldown and the cap; the trigger stops cleanly; signals that cannot be handled are
//! refused with a typed error.
//!
//! Own process (`harness = false`): signal dispositions are process-wide.

mod common;
use heapscope::signal::{SignalOutcome, SignalTrigger, DEFAULT_SIGNAL};
use heapscope::CaptureOptions;
use std::sync::mpsc;
use std::time::Duration;

heapscope::install!();

fn send() {
    // SAFETY: sending a signal to this very process, which handles it.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) }, 0);
}

fn main() {
    let base = std::env::temp_dir().join(format!("heapscope-signal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    let (sent, received) = mpsc::channel();
    let trigger = SignalTrigger::builder(CaptureOptions::new(&base))
        .cooldown(Duration::from_secs(1))
        .max_bundles(2)
        .on_capture(move |outcome| {
            let _ = sent.send((outcome, std::thread::current().name().map(str::to_owned)));
        })
        .start()
        .unwrap();
    assert_eq!(trigger.signal(), libc::SIGUSR2);
    assert_eq!(trigger.signal(), DEFAULT_SIGNAL);
    let next =
        || received.recv_timeout(Duration::from_secs(60)).expect("an outcome within a minute");

    // 1st signal: a bundle, written off the handler, on the trigger's thread.
    send();
    let (outcome, thread) = next();
    let SignalOutcome::Written(bundle) = outcome else { panic!("{outcome:?}") };
    assert_eq!(thread.as_deref(), Some("heapscope-signal"));
    assert!(bundle.directory.starts_with(base.join("diagnostics").join("memory")));
    for name in ["report.json", "manifest.json", "README.txt"] {
        assert!(bundle.directory.join(name).is_file(), "{name}");
    }
    // At once again: within the cooldown, ignored and said so.
    send();
    let (outcome, _) = next();
    assert!(matches!(outcome, SignalOutcome::CoolingDown { .. }), "{outcome:?}");
    // After the cooldown: the 2nd bundle; then the cap.
    std::thread::sleep(Duration::from_millis(1200));
    send();
    assert!(matches!(next().0, SignalOutcome::Written(_)));
    std::thread::sleep(Duration::from_millis(1200));
    send();
    let (outcome, _) = next();
    assert!(matches!(outcome, SignalOutcome::CapReached { max_bundles: 2 }), "{outcome:?}");
    trigger.stop();
    let bundles = std::fs::read_dir(base.join("diagnostics").join("memory")).unwrap().count();
    assert_eq!(bundles, 2);

    // A failed capture does not use up the cap: with a file where `diagnostics` should be,
    // the first signal fails; once it is gone, the next writes the trigger's one bundle. The
    // failure once counted, and the second signal was refused as `CapReached`.
    let blocked = base.join("blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("diagnostics"), b"in the way").unwrap();
    let (sent, received) = mpsc::channel();
    let trigger = SignalTrigger::builder(CaptureOptions::new(&blocked))
        .cooldown(Duration::from_millis(100))
        .max_bundles(1)
        .on_capture(move |outcome| {
            let _ = sent.send(outcome);
        })
        .start()
        .unwrap();
    let next = || received.recv_timeout(Duration::from_secs(60)).expect("an outcome");
    send();
    let outcome = next();
    assert!(matches!(outcome, SignalOutcome::Failed(_)), "{outcome:?}");
    std::fs::remove_file(blocked.join("diagnostics")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    send();
    let outcome = next();
    assert!(matches!(outcome, SignalOutcome::Written(_)), "{outcome:?}");
    trigger.stop();

    let refuse = |signal| SignalTrigger::builder(CaptureOptions::new(&base)).signal(signal).start();
    match refuse(libc::SIGKILL) {
        Err(heapscope::Error::Signal { signal, .. }) => assert_eq!(signal, libc::SIGKILL),
        other => panic!("SIGKILL must be refused, got {other:?}"),
    }
    assert!(refuse(100_000).is_err());
    assert!(refuse(0).is_err());
    let none = SignalTrigger::builder(CaptureOptions::new(&base)).max_bundles(0).start();
    assert!(matches!(none, Err(heapscope::Error::OutOfBounds { .. })), "{none:?}");
    std::fs::remove_dir_all(&base).unwrap();

    a_panicking_on_capture_does_not_end_the_trigger();
    dropping_a_trigger_in_a_forked_child_returns();
    eprintln!("signal: ok");
}

/// A callback that panics does not end the trigger: with no cooldown and a cap of 2, the
/// callback panicking on the first outcome still hears of the second signal (a second bundle).
/// The panic ended the trigger's thread: the callback was dropped with it, and every later
/// signal was taken by the handler and answered by nobody, while the trigger looked alive.
fn a_panicking_on_capture_does_not_end_the_trigger() {
    let base = std::env::temp_dir().join(format!("heapscope-signal-panic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (sent, received) = mpsc::channel();
    let mut calls = 0;
    let trigger = SignalTrigger::builder(CaptureOptions::new(&base))
        .cooldown(Duration::ZERO)
        .max_bundles(2)
        .on_capture(move |outcome| {
            calls += 1;
            let _ = sent.send(outcome);
            if calls == 1 {
                panic!("heapscope test: the first on_capture panics");
            }
        })
        .start()
        .unwrap();
    let next = || received.recv_timeout(Duration::from_secs(60));
    send();
    assert!(matches!(next(), Ok(SignalOutcome::Written(_))));
    send();
    let second = next();
    trigger.stop();
    std::fs::remove_dir_all(&base).ok();
    assert!(matches!(second, Ok(SignalOutcome::Written(_))), "second signal: {second:?}");
}

/// A child forked while a trigger runs has no trigger thread: dropping the trigger there
/// returns at once (status 0). It joined a thread that does not exist in the child and
/// panicked: the child died with status 101 (and one dropping it while unwinding aborted).
fn dropping_a_trigger_in_a_forked_child_returns() {
    let trigger = SignalTrigger::builder(CaptureOptions::new(std::env::temp_dir()))
        .on_capture(|_| {})
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    // The child drops its copy; the parent's stays in `trigger` (the child's memory is a copy).
    let mut trigger = Some(trigger);
    let status = common::fork_and_wait(|| drop(trigger.take()), Duration::from_secs(10));
    drop(trigger);
    let status = status.expect("the child hung dropping the trigger");
    // 101 is a panic.
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
}
