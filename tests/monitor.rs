//! PressureMonitor: two-phase dumps, the per-session cap and the cooldown with an injected
//! clock, concurrent triggers, callbacks, and an allocation-free phase 1. Runs without
//! libtest's harness so no other thread allocates while phase 1 is measured.

mod common;
use heapscope::{DumpOutcome, PressureLevel, PressureMonitor, ReportOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

heapscope::install!();

const GIB: u64 = 1 << 30;

fn base(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapscope-monitor-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// A monitor driven by hand, with a 10 GiB budget (the effective limit) and a fake clock.
fn monitor(dir: &Path, clock: Arc<AtomicU64>, calls: Arc<AtomicUsize>) -> PressureMonitor {
    PressureMonitor::builder()
        .directory(dir)
        .manual()
        .max_dumps(3)
        .cooldown(Duration::from_secs(30))
        .report(ReportOptions::default().budget_bytes(10 * GIB).process_tree(false))
        .clock(move || Duration::from_secs(clock.load(Ordering::SeqCst)))
        .on_pressure(move |level, report| {
            assert!(matches!(level, PressureLevel::High | PressureLevel::Critical));
            assert_eq!(report.schema_version, 1);
            calls.fetch_add(1, Ordering::SeqCst);
        })
        .start()
        .unwrap()
}

fn two_phase_dumps_cap_and_cooldown() {
    let dir = base("dumps");
    let clock = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let m = monitor(&dir, clock.clone(), calls.clone());
    let owner = heapscope::Owner::named("monitor_big_owner");
    let kept = owner.in_scope(|| vec![1u8; 4 << 20]);

    assert_eq!(m.check_used(5 * GIB), None, "50% of the budget is normal");
    let first = m.check_used(9 * GIB).expect("90%: high");
    let DumpOutcome::Written { path, number: 1, complete: true, bundle: None } = first else {
        panic!("{first:?}")
    };
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(dump["collection_complete"], true);
    assert_eq!(dump["trigger"]["level"], "high");
    assert_eq!(dump["trigger"]["used_bytes"], 9 * GIB, "phase 1's figures are kept");
    assert_eq!(dump["trigger"]["used_source"], "given to check_used");
    assert_eq!(dump["trigger"]["limit_bytes"], 10 * GIB);
    assert!(dump["trigger"]["allocated_bytes"].as_u64().unwrap() >= 4 << 20);
    let top = &dump["trigger"]["top_owners"][0];
    assert_eq!(top["owner"], "monitor_big_owner");
    assert_eq!(top["own_live_bytes"], 4 << 20);
    assert_eq!(dump["report"]["schema_version"], 1);
    assert!(dump["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().contains("monitor_big_owner")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Within the cooldown: `high` again waits, a rise to `critical` does not (it waited too,
    // and the dump of the moment before the limit was lost), and `critical` again waits.
    clock.store(10, Ordering::SeqCst);
    assert_eq!(m.check_used(9 * GIB), Some(DumpOutcome::CoolingDown));
    assert!(matches!(m.check_used(10 * GIB), Some(DumpOutcome::Written { number: 2, .. })));
    clock.store(20, Ordering::SeqCst);
    assert_eq!(m.check_used(10 * GIB), Some(DumpOutcome::CoolingDown));
    assert_eq!(m.check_used(9 * GIB), Some(DumpOutcome::CoolingDown));
    clock.store(41, Ordering::SeqCst);
    assert!(matches!(m.check_used(10 * GIB), Some(DumpOutcome::Written { number: 3, .. })));
    clock.store(1000, Ordering::SeqCst);
    assert_eq!(m.check_used(10 * GIB), Some(DumpOutcome::CapReached));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let dumps = std::fs::read_dir(m.directory()).unwrap().count();
    assert_eq!(dumps, 3);

    // A new session starts over, with new file names.
    m.reset_session();
    assert!(matches!(m.check_used(10 * GIB), Some(DumpOutcome::Written { number: 4, .. })));
    drop(kept);
    std::fs::remove_dir_all(&dir).ok();
}

fn concurrent_triggers_never_exceed_the_cap() {
    let dir = base("concurrent");
    let clock = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let m = Arc::new(
        PressureMonitor::builder()
            .directory(&dir)
            .manual()
            .max_dumps(2)
            .cooldown(Duration::ZERO)
            .report(ReportOptions::default().budget_bytes(GIB).process_tree(false))
            .clock(move || Duration::from_secs(clock.load(Ordering::SeqCst)))
            .on_pressure(move |_, _| {
                calls.fetch_add(1, Ordering::SeqCst);
            })
            .start()
            .unwrap(),
    );
    let written = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (m, written) = (m.clone(), written.clone());
            std::thread::spawn(move || {
                let used = if i % 2 == 0 { GIB } else { GIB * 9 / 10 }; // critical, high
                if let Some(DumpOutcome::Written { .. }) = m.check_used(used) {
                    written.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(written.load(Ordering::SeqCst), 2);
    assert_eq!(std::fs::read_dir(m.directory()).unwrap().count(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

fn phase_one_allocates_nothing() {
    let dir = base("phase1");
    std::fs::create_dir_all(&dir).unwrap();
    let owner = heapscope::Owner::named("monitor_phase1_owner");
    let kept = owner.in_scope(|| vec![0u8; 1 << 20]);
    let mut buffer = vec![0u8; 8192];
    let before = heapscope::global_stats();
    let result = heapscope::__phase1_for_tests(&mut buffer, &dir, 123_456_789, 7);
    let after = heapscope::global_stats();
    assert_eq!(result, Ok(()));
    assert_eq!(after.total_blocks, before.total_blocks, "phase 1 allocated");
    let path = dir.join(format!("pressure-{}-0-7.json", std::process::id()));
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(dump["collection_complete"], false);
    assert_eq!(dump["trigger"]["used_bytes"], 123_456_789);
    assert_eq!(dump["trigger"]["dump"], 7);
    assert!(dump["trigger"]["top_owners"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["owner"] == "monitor_phase1_owner"));
    // The same dump number again: the file exists, so phase 1 refuses (create-new).
    assert!(heapscope::__phase1_for_tests(&mut buffer, &dir, 1, 7).is_err());
    // A buffer too small says so instead of writing a truncated file.
    let mut tiny = [0u8; 16];
    assert!(heapscope::__phase1_for_tests(&mut tiny, &dir, 1, 8).is_err());
    assert!(!dir.join(format!("pressure-{}-0-8.json", std::process::id())).exists());
    drop(kept);
    std::fs::remove_dir_all(&dir).ok();
}

fn bad_settings_are_typed_errors() {
    let err =
        PressureMonitor::builder().interval(Duration::from_millis(1)).manual().start().unwrap_err();
    assert!(matches!(err, heapscope::Error::OutOfBounds { what: "monitor interval", .. }), "{err}");
    let err = PressureMonitor::builder().max_dumps(0).manual().start().unwrap_err();
    assert!(matches!(err, heapscope::Error::OutOfBounds { what: "max_dumps", .. }), "{err}");
}

/// `bundle_on_critical`: a bundle beside the dump on `critical` only, taking a slot of the
/// cap of its own; with one slot left the dump goes alone.
fn a_bundle_on_critical_shares_the_cap() {
    let dir = base("bundle");
    let clock = Arc::new(AtomicU64::new(0));
    let m = PressureMonitor::builder()
        .directory(&dir)
        .manual()
        .max_dumps(3)
        .cooldown(Duration::from_secs(30))
        .report(ReportOptions::default().budget_bytes(10 * GIB).process_tree(false))
        .clock({
            let clock = clock.clone();
            move || Duration::from_secs(clock.load(Ordering::SeqCst))
        })
        .bundle_on_critical(heapscope::CaptureOptions::new(dir.join("bundles")))
        .start()
        .unwrap();

    // High (90%): a dump, no bundle.
    let high = m.check_used(9 * GIB).unwrap();
    assert!(matches!(high, DumpOutcome::Written { number: 1, bundle: None, .. }), "{high:?}");
    clock.store(5, Ordering::SeqCst);
    // Critical (96%), within the cooldown, which a rise to critical does not wait for: dump 2
    // and a bundle, which takes slot 3.
    let critical = m.check_used(96 * GIB / 10).unwrap();
    let DumpOutcome::Written { number: 2, bundle: Some(Ok(bundle)), .. } = &critical else {
        panic!("{critical:?}")
    };
    assert!(bundle.starts_with(dir.join("bundles").join("diagnostics").join("memory")));
    assert!(bundle.join("report.json").is_file());
    assert!(bundle.join("manifest.json").is_file());
    clock.store(62, Ordering::SeqCst);
    assert_eq!(m.check_used(96 * GIB / 10), Some(DumpOutcome::CapReached));

    // A new session with one slot: the critical dump is written, without a bundle.
    let one = PressureMonitor::builder()
        .directory(dir.join("one"))
        .manual()
        .max_dumps(1)
        .report(ReportOptions::default().budget_bytes(10 * GIB).process_tree(false))
        .bundle_on_critical(heapscope::CaptureOptions::new(dir.join("one-bundles")))
        .start()
        .unwrap();
    let only = one.check_used(96 * GIB / 10).unwrap();
    assert!(matches!(only, DumpOutcome::Written { number: 1, bundle: None, .. }), "{only:?}");
    assert!(!dir.join("one-bundles").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// A monitor for one manual check at a time, no cooldown.
fn manual_monitor(dir: &Path) -> PressureMonitor {
    PressureMonitor::builder()
        .directory(dir)
        .manual()
        .max_dumps(3)
        .cooldown(Duration::ZERO)
        .report(ReportOptions::default().budget_bytes(10 * GIB).process_tree(false))
        .start()
        .unwrap()
}

/// What once lost dumps: a previous run of the same pid (pid 1 in a container, on a persistent
/// volume) left its dump and a temporary file under the names this run would use (names
/// now carry the monitor's start time); a directory whose name is not UTF-8; and owner
/// paths too long for phase 1's buffer (phase 1 now lists the owners that fit, and phase 2
/// is written whatever became of phase 1). Each case once ended in `Failed`, with no file.
fn dumps_survive_old_files_odd_directories_and_long_owner_names() {
    use std::os::unix::ffi::OsStrExt;
    let pid = std::process::id();
    let dir = base("leftovers");
    let memory = dir.join("diagnostics/memory");
    std::fs::create_dir_all(&memory).unwrap();
    for d in [dir.join("diagnostics"), memory.clone()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(memory.join(format!("pressure-{pid}-1.json")), b"{\"old run\":true}").unwrap();
    std::fs::write(memory.join(format!(".pressure-{pid}-1.json.tmp")), b"").unwrap();
    let m = manual_monitor(&dir);
    let outcome = m.check_used(99 * GIB / 10);
    assert!(matches!(outcome, Some(DumpOutcome::Written { complete: true, .. })), "{outcome:?}");
    let old = std::fs::read(memory.join(format!("pressure-{pid}-1.json"))).unwrap();
    assert_eq!(old, b"{\"old run\":true}", "the old file is left alone");
    drop(m);
    std::fs::remove_dir_all(&dir).ok();

    let parent = base("non-utf8");
    let m = manual_monitor(&parent.join(std::ffi::OsStr::from_bytes(b"agent-\xff")));
    let outcome = m.check_used(99 * GIB / 10);
    assert!(matches!(outcome, Some(DumpOutcome::Written { complete: true, .. })), "{outcome:?}");
    if let Some(DumpOutcome::Written { path, .. }) = &outcome {
        let dump: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(dump["collection_complete"], true);
    }
    drop(m);
    std::fs::remove_dir_all(&parent).ok();

    // Eight owners seven levels deep, each level 128 bytes of quotes (escaped to 256): about
    // 14 KiB of paths for an 8 KiB buffer.
    let dir = base("long-names");
    let mut kept = Vec::new();
    let mut owners = Vec::new();
    for i in 0..8u8 {
        let mut name = "\"".repeat(127);
        name.push(char::from(b'a' + i));
        let mut owner = heapscope::Owner::try_named(&name).unwrap();
        owners.push(owner);
        for _ in 0..6 {
            owner = owner.try_child("\"".repeat(128)).unwrap();
            owners.push(owner);
        }
        kept.push(owner.in_scope(|| vec![1u8; 1 << 20]));
    }
    let m = manual_monitor(&dir);
    let outcome = m.check_used(99 * GIB / 10);
    assert!(matches!(outcome, Some(DumpOutcome::Written { complete: true, .. })), "{outcome:?}");
    drop(m);
    drop(kept);
    for owner in owners.into_iter().rev() {
        owner.retire().unwrap();
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A background monitor checking every 10 ms for which every check is critical (a budget of
/// 1 byte), with no cooldown and a cap of 3 dumps.
fn critical_every_10ms(dir: &Path) -> heapscope::PressureMonitorBuilder {
    PressureMonitor::builder()
        .directory(dir)
        .interval(Duration::from_millis(10))
        .max_dumps(3)
        .cooldown(Duration::ZERO)
        .report(ReportOptions::default().budget_bytes(1).process_tree(false))
}

/// A background monitor whose callback panics once keeps monitoring: with every check
/// critical (a budget of 1 byte), no cooldown and a cap of 3, the callback runs three times.
/// The panic ended the monitor's thread: the callback ran once and no dump followed, while
/// the handle still said the monitor was running.
fn a_panicking_callback_does_not_stop_the_monitor() {
    let dir = base("panicking-callback");
    let calls = Arc::new(AtomicUsize::new(0));
    let m = critical_every_10ms(&dir)
        .on_pressure({
            let calls = calls.clone();
            move |_, _| {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("heapscope test: the first callback panics");
                }
            }
        })
        .start()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while calls.load(Ordering::SeqCst) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(m);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "callbacks run after the panicking one");
    std::fs::remove_dir_all(&dir).ok();
}

/// A panicking callback does not keep the other callbacks from hearing of the dump: with two
/// callbacks, the first panicking on every dump, every check critical (a budget of 1 byte),
/// no cooldown and a cap of 3, the second runs three times, once per dump. The panic left the
/// check at the first callback, so the second never ran (0 of 3 dumps) while the monitor
/// went on dumping.
fn a_panicking_callback_does_not_silence_the_others() {
    let dir = base("panicking-first-callback");
    let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let m = critical_every_10ms(&dir)
        .on_pressure({
            let first = first.clone();
            move |_, _| {
                first.fetch_add(1, Ordering::SeqCst);
                panic!("heapscope test: the first of two callbacks panics");
            }
        })
        .on_pressure({
            let second = second.clone();
            move |_, _| {
                second.fetch_add(1, Ordering::SeqCst);
            }
        })
        .start()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while first.load(Ordering::SeqCst) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The last dump's second callback may still be running.
    std::thread::sleep(Duration::from_millis(100));
    drop(m);
    std::fs::remove_dir_all(&dir).ok();
    let calls = (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst));
    assert_eq!(calls, (3, 3), "(first, second) callback runs");
}

/// A child forked while a background monitor runs has no monitor thread: dropping the monitor
/// there returns without joining it. It joined a thread that does not exist in the child and
/// panicked ("threads should not terminate unexpectedly"): the child died with status 101,
/// and a child dropping it while unwinding would abort.
fn dropping_a_monitor_in_a_forked_child_returns() {
    let dir = base("fork");
    let m = PressureMonitor::builder()
        .directory(&dir)
        .interval(Duration::from_millis(10))
        .report(ReportOptions::default().budget_bytes(1 << 62).process_tree(false))
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    // The child drops its copy; the parent's stays in `m` (the child's memory is a copy).
    let mut m = Some(m);
    let status = common::fork_and_wait(|| drop(m.take()), Duration::from_secs(10));
    drop(m);
    std::fs::remove_dir_all(&dir).ok();
    let status = status.expect("the child hung dropping the monitor");
    // 101 is a panic.
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
}

/// The longest interval the builder takes (`Duration::MAX`) waits until the monitor is
/// dropped. The deadline after the first check overflowed `Instant` and the thread panicked
/// (in a program built with `panic = "abort"`, the process ended).
fn the_longest_interval_waits_instead_of_panicking() {
    let dir = base("longest-interval");
    let panics = Arc::new(AtomicUsize::new(0));
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new({
        let panics = panics.clone();
        move |_| {
            panics.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let m = PressureMonitor::builder()
        .directory(&dir)
        .interval(Duration::MAX)
        .report(ReportOptions::default().budget_bytes(1 << 62).process_tree(false))
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(m);
    std::panic::set_hook(default_hook);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the monitor thread panicked");
}

/// Two monitors in one process never share a dump's name: forty started in pairs on one
/// directory, each dumping once, leave forty files under forty names. Names carried the pid,
/// the start time in ms and the dump number, so two monitors started in the same millisecond
/// both named their first dump alike: the second's phase 1 found the name taken and its
/// phase 2 replaced the first monitor's dump (with that dump's figures), both reporting it
/// written.
fn two_monitors_never_share_a_dump_name() {
    let dir = base("two-monitors");
    let mut paths = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let pair = [manual_monitor(&dir), manual_monitor(&dir)];
        for m in &pair {
            let outcome = m.check_used(99 * GIB / 10);
            let Some(DumpOutcome::Written { path, number: 1, complete: true, .. }) = outcome else {
                panic!("{outcome:?}")
            };
            paths.insert(path);
        }
    }
    let files = std::fs::read_dir(dir.join("diagnostics/memory")).unwrap().count();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!((paths.len(), files), (40, 40), "(distinct names, files) of 40 dumps");
}

/// Each directory the monitor adds below its base is held to the full rules, as a bundle's
/// are: a `diagnostics` that is a symbolic link (here to another private directory of the
/// user's) is refused with `UnsafePath`. Only `memory` was checked, so the link was followed
/// and the dumps went wherever it led.
fn a_linked_diagnostics_directory_is_refused() {
    let dir = base("linked-diagnostics");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("diagnostics")).unwrap();
    let started = PressureMonitor::builder().directory(&dir).manual().start();
    let memory_made = elsewhere.join("memory").exists();
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(started, Err(heapscope::Error::UnsafePath { .. })), "{started:?}");
    assert!(!memory_made, "the link was followed");
}

/// A monitor that finds no limit can never dump: it says so, and `limit_bytes` tells. With
/// `/proc` and the cgroup tree pointed at empty directories and no budget, no limit is known;
/// with a budget, that budget is the limit. The monitor used to start without a word and
/// stay silent however high usage went.
fn a_monitor_without_a_limit_says_so() {
    let dir = base("no-limit");
    let empty = dir.join("empty-root");
    std::fs::create_dir_all(&empty).unwrap();
    let blind = ReportOptions::default().roots(&empty, &empty).process_tree(false);
    let m =
        PressureMonitor::builder().directory(&dir).manual().report(blind.clone()).start().unwrap();
    assert_eq!((m.limit_bytes(), m.limit_source()), (None, String::new()));
    assert_eq!(m.check_used(u64::MAX), None, "no limit: never a dump");
    let budgeted = PressureMonitor::builder()
        .directory(&dir)
        .manual()
        .report(blind.budget_bytes(10 * GIB))
        .start()
        .unwrap();
    assert_eq!(
        (budgeted.limit_bytes(), budgeted.limit_source()),
        (Some(10 * GIB), "configured budget".to_owned())
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A dump directory removed after start (a cleaner of old files in /tmp) is made again,
/// private, by the next dump: every later dump failed, each using a slot of the cap.
fn a_dump_directory_removed_after_start_is_made_again() {
    let dir = base("removed");
    let m = manual_monitor(&dir);
    std::fs::remove_dir_all(dir.join("diagnostics")).unwrap();
    let outcome = m.check_used(10 * GIB).expect("critical");
    let DumpOutcome::Written { path, complete: true, .. } = &outcome else { panic!("{outcome:?}") };
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(dump["trigger"]["level"], "critical", "phase 1 written too");
    for made in [dir.join("diagnostics"), dir.join("diagnostics/memory")] {
        let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", made.display());
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A removed dump directory is made again 0700 whatever the umask, as at start: one that
/// takes the owner's own bits (0277 here) once left it 0500, so the directory below it could
/// not be made and the dump was lost.
fn a_dump_directory_made_again_is_0700_whatever_the_umask() {
    let dir = base("removed-umask");
    let m = manual_monitor(&dir);
    std::fs::remove_dir_all(dir.join("diagnostics")).unwrap();
    // SAFETY: umask only changes this process's file-creation mask; no other thread runs here.
    let old = unsafe { libc::umask(0o277) };
    let outcome = m.check_used(10 * GIB);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let outcome = outcome.expect("critical");
    assert!(matches!(outcome, DumpOutcome::Written { complete: true, .. }), "{outcome:?}");
    for made in [dir.join("diagnostics"), dir.join("diagnostics/memory")] {
        let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", made.display());
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The callbacks are the program's code: what they allocate is charged to the owner current
/// at the check, not to heapscope. A callback keeping 1 MiB (a compaction's new history,
/// say) during a check made in `monitor_callback_caller` adds exactly 1 MiB there; it was
/// charged to `heapscope.internal`, where the dump's own report is.
fn callbacks_allocate_as_the_owner_current_at_the_check() {
    let dir = base("callback-owner");
    let kept = Arc::new(std::sync::Mutex::new(Vec::with_capacity(4)));
    let m = PressureMonitor::builder()
        .directory(&dir)
        .manual()
        .report(ReportOptions::default().budget_bytes(10 * GIB).process_tree(false))
        .on_pressure({
            let kept = kept.clone();
            move |_, _| kept.lock().unwrap().push(vec![7u8; 1 << 20])
        })
        .start()
        .unwrap();
    let caller = heapscope::Owner::named("monitor_callback_caller");
    let outcome = caller.in_scope(|| m.check_used(10 * GIB));
    assert!(matches!(outcome, Some(DumpOutcome::Written { .. })), "{outcome:?}");
    assert_eq!(caller.stats().live_bytes, 1 << 20, "the callback's megabyte is the caller's");
    drop(outcome);
    kept.lock().unwrap().clear();
    assert_eq!(caller.stats().live_bytes, 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes `text` to `dir/path`, making the directories on the way (fake `/proc` and cgroup
/// trees).
fn write_fixture(dir: &Path, path: &str, text: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

/// A container's limit that changes while the program runs (Kubernetes resizes a running
/// pod's `memory.max` in place) is followed: the monitor read the limit once at start, so
/// after the limit was lowered from 4 GiB to 2 GiB, 1.95 GiB (97.5 % of the new limit, critical)
/// still counted as 49 % of the old one and was never dumped. The limit is read again at the
/// first check `limit_refresh` after the last read, on the monitor's clock.
fn a_changed_cgroup_limit_is_followed() {
    let dir = base("limit-change");
    let write = |path: &str, text: &str| write_fixture(&dir, path, text);
    write("proc/self/cgroup", "0::/agent\n");
    write("proc/meminfo", "MemTotal:       67108864 kB\n");
    write("cgroup/cgroup.controllers", "cpu memory\n");
    write("cgroup/agent/memory.max", &format!("{}\n", 4 * GIB));
    let clock = Arc::new(AtomicU64::new(0));
    let now = clock.clone();
    let m = PressureMonitor::builder()
        .directory(dir.join("out"))
        .manual()
        .max_dumps(10)
        .cooldown(Duration::ZERO)
        .limit_refresh(Duration::from_secs(60))
        .clock(move || Duration::from_secs(now.load(Ordering::SeqCst)))
        .report(
            ReportOptions::default()
                .roots(dir.join("proc"), dir.join("cgroup"))
                .process_tree(false),
        )
        .start()
        .unwrap();
    assert_eq!(m.limit_bytes(), Some(4 * GIB));
    assert!(m.limit_source().contains("agent/memory.max"), "{}", m.limit_source());
    let used = 39 * GIB / 20;
    write("cgroup/agent/memory.max", &format!("{}\n", 2 * GIB));
    clock.store(59, Ordering::SeqCst);
    assert_eq!(m.check_used(used), None, "before the refresh: 49 % of the old limit");
    assert_eq!(m.limit_bytes(), Some(4 * GIB));
    clock.store(60, Ordering::SeqCst);
    let Some(DumpOutcome::Written { path, .. }) = m.check_used(used) else {
        panic!("97.5 % of the lowered limit is critical and dumped");
    };
    assert_eq!(m.limit_bytes(), Some(2 * GIB));
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(dump["trigger"]["limit_bytes"], 2 * GIB);
    assert_eq!(dump["trigger"]["level"], "critical");
    assert!(dump["limit_source"].as_str().unwrap().contains("agent/memory.max"));
    // The limit removed: MemTotal (64 GiB) is the tightest left.
    write("cgroup/agent/memory.max", "max\n");
    clock.store(120, Ordering::SeqCst);
    assert_eq!(m.check_used(used), None);
    assert_eq!((m.limit_bytes(), m.limit_source()), (Some(64 * GIB), "MemTotal".to_owned()));
    std::fs::remove_dir_all(&dir).ok();
}

/// What a cgroup limit binds is its cgroup's usage, which holds this process, the tools it
/// runs as child processes, and page cache: the kernel OOM-kills once *that* reaches the
/// limit. The monitor compared every limit with this process's RSS, so a cgroup at 1000 MiB of
/// its 1 GiB (97.7 %, critical in the report; its working set, reclaimable page cache taken
/// off) stayed `None` for a process of a few MiB; the
/// same with `MemTotal` as the limit, which binds the system's `MemTotal - MemAvailable`.
/// The monitor now reads the usage the report's pressure compares (`used_source`), and
/// phase 1 names it beside the process's own RSS.
fn the_monitor_compares_each_limit_with_the_usage_it_binds() {
    let dir = base("usage");
    let write = |path: &str, text: &str| write_fixture(&dir, path, text);
    write("proc/self/cgroup", "0::/agents/me\n");
    write("proc/meminfo", "MemTotal:       16777216 kB\nMemAvailable:    524288 kB\n");
    write("cgroup/cgroup.controllers", "cpu memory\n");
    write("cgroup/agents/memory.max", &format!("{}\n", GIB));
    write("cgroup/agents/memory.current", &format!("{}\n", 1100 << 20));
    // 100 MiB of it reclaimable page cache: the working set is 1000 MiB.
    write("cgroup/agents/memory.stat", &format!("anon 1\ninactive_file {}\n", 100 << 20));
    write("cgroup/agents/me/memory.current", &format!("{}\n", 100 << 20));
    let options =
        ReportOptions::default().roots(dir.join("proc"), dir.join("cgroup")).process_tree(false);
    let report = heapscope::Report::capture_with(&options);
    assert_eq!(report.pressure.level, PressureLevel::Critical);
    assert_eq!(report.pressure.used_bytes, Some(1000 << 20));
    let monitor = |options: ReportOptions| {
        PressureMonitor::builder()
            .directory(dir.join("out"))
            .manual()
            .cooldown(Duration::ZERO)
            .report(options)
            .start()
            .unwrap()
    };
    let m = monitor(options.clone());
    let Some(DumpOutcome::Written { path, .. }) = m.check() else {
        panic!("the cgroup's 1000 MiB of its 1 GiB is critical");
    };
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let trigger = &dump["trigger"];
    assert_eq!(trigger["used_bytes"], 1000 << 20);
    assert_eq!(trigger["used_source"], report.pressure.used_source.unwrap().as_str());
    assert!(trigger["used_source"].as_str().unwrap().ends_with("agents/memory.current)"));
    assert!(trigger["used_source"].as_str().unwrap().contains("memory.current - inactive_file"));
    // Page cache that grows after the limit was read is taken off at each check too: with
    // 900 MiB of the cgroup's 1100 MiB reclaimable, 200 MiB is no pressure.
    write("cgroup/agents/memory.stat", &format!("anon 1\ninactive_file {}\n", 900 << 20));
    assert_eq!(m.check(), None, "200 MiB of 1 GiB");
    assert!(trigger["rss_bytes"].as_u64().unwrap() > 0, "the process's own RSS beside it");
    // Without a cgroup the tightest limit is MemTotal (16 GiB), and 15.5 GiB of it is in use.
    write("proc/self/cgroup", "");
    let m = monitor(options);
    let Some(DumpOutcome::Written { path, .. }) = m.check() else {
        panic!("15.5 GiB of MemTotal's 16 GiB is critical");
    };
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(dump["trigger"]["used_bytes"], 31 * GIB / 2);
    assert_eq!(dump["trigger"]["used_source"], "MemTotal - MemAvailable");
    std::fs::remove_dir_all(&dir).ok();
}

/// `monitor.report()` judges as the monitor does: with a 4 MiB budget (far below this test
/// process's RSS) its report's effective limit is 4 MiB and its level critical, while
/// `heapscope::report()`, with the defaults, measures against the machine's or cgroup's limit.
fn the_monitors_report_uses_its_budget() {
    let dir = base("own-report");
    let monitor = PressureMonitor::builder()
        .directory(&dir)
        .manual()
        .report(ReportOptions::default().budget_bytes(4 << 20).process_tree(false))
        .start()
        .unwrap();
    let report = monitor.report();
    assert_eq!(report.limits.effective_bytes, Some(4 << 20));
    assert_eq!(report.pressure.level, PressureLevel::Critical, "{:?}", report.pressure);
    let again = heapscope::Report::capture_with(monitor.report_options());
    assert_eq!(again.limits.budget_bytes, Some(4 << 20));
    let default = heapscope::report();
    assert_ne!(default.limits.effective_bytes, Some(4 << 20));
    drop(monitor);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn main() {
    phase_one_allocates_nothing();
    two_phase_dumps_cap_and_cooldown();
    concurrent_triggers_never_exceed_the_cap();
    bad_settings_are_typed_errors();
    a_bundle_on_critical_shares_the_cap();
    dumps_survive_old_files_odd_directories_and_long_owner_names();
    a_panicking_callback_does_not_stop_the_monitor();
    a_panicking_callback_does_not_silence_the_others();
    dropping_a_monitor_in_a_forked_child_returns();
    the_longest_interval_waits_instead_of_panicking();
    two_monitors_never_share_a_dump_name();
    a_linked_diagnostics_directory_is_refused();
    a_monitor_without_a_limit_says_so();
    a_dump_directory_removed_after_start_is_made_again();
    a_dump_directory_made_again_is_0700_whatever_the_umask();
    callbacks_allocate_as_the_owner_current_at_the_check();
    a_changed_cgroup_limit_is_followed();
    the_monitor_compares_each_limit_with_the_usage_it_binds();
    the_monitors_report_uses_its_budget();
    println!("monitor: 19 passed, 0 failed");
}
