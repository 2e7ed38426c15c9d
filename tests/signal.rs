//! SIGUSR2 writes a diagnostics bundle from the trigger's own thread; the trigger stops
//! cleanly; signals that cannot be handled are refused with a typed error.
//!
//! Own process (`harness = false`): signal dispositions are process-wide.

use heapscope::signal::{SignalTrigger, DEFAULT_SIGNAL};
use heapscope::CaptureOptions;
use std::sync::mpsc;
use std::time::Duration;

heapscope::install!();

fn main() {
    let base = std::env::temp_dir().join(format!("heapscope-signal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    let (sent, received) = mpsc::channel();
    let trigger = SignalTrigger::start_on(DEFAULT_SIGNAL, CaptureOptions::new(&base), move |r| {
        let _ = sent.send((r, std::thread::current().name().map(str::to_owned)));
    })
    .unwrap();
    assert_eq!(trigger.signal(), libc::SIGUSR2);

    for round in 1..=2 {
        // SAFETY: sending a signal to this very process, which handles it.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) }, 0);
        let (outcome, thread) = received
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no bundle {round} within a minute of SIGUSR2"));
        let bundle = outcome.unwrap();
        assert_eq!(thread.as_deref(), Some("heapscope-signal"), "captured off the handler");
        assert!(bundle.directory.starts_with(base.join("diagnostics").join("memory")));
        for name in ["report.json", "manifest.json", "README.txt"] {
            assert!(bundle.directory.join(name).is_file(), "{name} in round {round}");
        }
    }
    trigger.stop();
    let bundles = std::fs::read_dir(base.join("diagnostics").join("memory")).unwrap().count();
    assert_eq!(bundles, 2);

    match SignalTrigger::start_on(libc::SIGKILL, CaptureOptions::new(&base), |_| {}) {
        Err(heapscope::Error::Signal { signal, .. }) => assert_eq!(signal, libc::SIGKILL),
        other => panic!("SIGKILL must be refused, got {other:?}"),
    }
    assert!(SignalTrigger::start_on(100_000, CaptureOptions::new(&base), |_| {}).is_err());
    std::fs::remove_dir_all(&base).unwrap();
    eprintln!("signal: ok");
}
