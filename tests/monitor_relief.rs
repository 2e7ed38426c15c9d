//! `on_pressure_check`: relief callbacks run at every check under pressure, past the dump
//! cap and the cooldown that bound `on_pressure` (which runs only after a dump).

use heapscope::{DumpOutcome, PressureLevel, PressureMonitor, ReportOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUDGET: u64 = 1 << 30;
const CRITICAL: u64 = BUDGET / 100 * 99;
const HIGH: u64 = BUDGET / 100 * 90;

fn dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("heapscope-relief-{name}-{}", std::process::id()))
}

fn counter() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let c = Arc::new(AtomicUsize::new(0));
    (c.clone(), c)
}

#[test]
fn check_callbacks_run_at_every_check_under_pressure_past_the_cooldown_and_the_cap() {
    let base = dir("every");
    let (dumps_seen, dumps_cb) = counter();
    let levels = Arc::new(Mutex::new(Vec::new()));
    let levels_cb = levels.clone();
    let monitor = PressureMonitor::builder()
        .directory(&base)
        .report(ReportOptions::default().budget_bytes(BUDGET))
        .max_dumps(2)
        .cooldown(Duration::from_secs(30))
        .on_pressure(move |_, _| {
            dumps_cb.fetch_add(1, Ordering::Relaxed);
        })
        .on_pressure_check(move |level| levels_cb.lock().unwrap().push(level))
        .manual()
        .start()
        .unwrap();
    let mut outcomes = Vec::new();
    for i in 0..10 {
        let used = if i < 5 { HIGH } else { CRITICAL };
        outcomes.push(match monitor.check_used(used) {
            Some(DumpOutcome::Written { .. }) => "written",
            Some(DumpOutcome::CoolingDown) => "cooling down",
            Some(DumpOutcome::CapReached) => "cap reached",
            other => panic!("unexpected outcome {other:?}"),
        });
    }
    // Below `high`: neither kind of callback.
    assert!(monitor.check_used(BUDGET / 2).is_none());
    // High dumped once and cooled down; the rise to critical dumped at once, then the cap.
    assert_eq!(
        outcomes[..6],
        ["written", "cooling down", "cooling down", "cooling down", "cooling down", "written"]
    );
    assert_eq!(outcomes[6..], ["cap reached"; 4]);
    assert_eq!(dumps_seen.load(Ordering::Relaxed), 2, "on_pressure runs only after a dump");
    let levels = levels.lock().unwrap().clone();
    let mut expected = vec![PressureLevel::High; 5];
    expected.extend([PressureLevel::Critical; 5]);
    assert_eq!(levels, expected, "on_pressure_check runs at every check under pressure");
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn a_panicking_check_callback_lets_the_others_run_and_is_passed_on() {
    let base = dir("panic");
    let (after, after_cb) = counter();
    let monitor = PressureMonitor::builder()
        .directory(&base)
        .report(ReportOptions::default().budget_bytes(BUDGET))
        .on_pressure_check(|_| panic!("relief failed"))
        .on_pressure_check(move |_| {
            after_cb.fetch_add(1, Ordering::Relaxed);
        })
        .manual()
        .start()
        .unwrap();
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| monitor.check_used(CRITICAL)));
    let payload = caught.expect_err("a manual check passes the panic on");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"relief failed"));
    assert_eq!(after.load(Ordering::Relaxed), 1);
    // The dump was written before the callbacks ran.
    let dumps = std::fs::read_dir(monitor.directory()).unwrap().count();
    assert_eq!(dumps, 1);
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn the_monitor_thread_keeps_calling_for_relief_while_pressure_lasts() {
    let base = dir("thread");
    let (dumps_seen, dumps_cb) = counter();
    let (checks, checks_cb) = counter();
    // A budget the process's RSS is always above: every check is critical.
    let monitor = PressureMonitor::builder()
        .directory(&base)
        .report(ReportOptions::default().budget_bytes(64 << 10))
        .interval(Duration::from_millis(10))
        .on_pressure(move |_, _| {
            dumps_cb.fetch_add(1, Ordering::Relaxed);
        })
        .on_pressure_check(move |level| {
            assert_eq!(level, PressureLevel::Critical);
            checks_cb.fetch_add(1, Ordering::Relaxed);
        })
        .start()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while checks.load(Ordering::Relaxed) < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(monitor);
    assert!(checks.load(Ordering::Relaxed) >= 5, "{} relief calls", checks.load(Ordering::Relaxed));
    assert_eq!(dumps_seen.load(Ordering::Relaxed), 1, "one dump in the 30 s cooldown");
    std::fs::remove_dir_all(&base).ok();
}
