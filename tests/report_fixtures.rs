//! `Report` against fixture `/proc` and cgroup trees written by the tests: the odd cases of
//! cgroup v1/v2, nested paths, "no limit" values, malformed files, missing files, zombies and
//! vanished processes in the tree walk, and environment configuration errors.
#![cfg(target_os = "linux")]

use heapscope::{Error, PressureLevel, Report, ReportOptions, Thresholds};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

const MIB: u64 = 1 << 20;

/// A fresh directory under the system temp dir, removed when dropped.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "heapscope-fixture-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).unwrap();
        Fixture { root }
    }

    fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    fn proc(&self) -> PathBuf {
        self.root.join("proc")
    }

    fn cgroup(&self) -> PathBuf {
        self.root.join("cgroup")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn stat_line(pid: u32, comm: &str, state: char, ppid: u32, rss_pages: u64) -> String {
    format!(
        "{pid} ({comm}) {state} {ppid} {pid} {ppid} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
         5000 104857600 {rss_pages} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
    )
}

/// A `/proc` with this process's status (RSS 100 MiB), stat, meminfo (16 GiB total, 10 GiB
/// available) and uptime.
fn base_proc(f: &Fixture) {
    let me = std::process::id();
    f.write(
        "proc/self/status",
        "Name:\tagent\nVmSize:\t  2097152 kB\nVmHWM:\t   153600 kB\nVmRSS:\t   102400 kB\nThreads:\t9\n",
    )
    .write("proc/self/stat", &stat_line(me, "agent", 'S', 1, 25600))
    .write("proc/meminfo", "MemTotal:       16777216 kB\nMemFree: 1 kB\nMemAvailable:   10485760 kB\n")
    .write("proc/uptime", "100.50 200.00\n");
}

fn capture(f: &Fixture, options: ReportOptions) -> Report {
    Report::capture_with(&options.roots(f.proc(), f.cgroup()))
}

#[test]
fn cgroup_v2_nested_limits_take_the_tightest() {
    let f = Fixture::new("v2");
    base_proc(&f);
    f.write("proc/self/cgroup", "0::/agents/session-7\n")
        .write("cgroup/cgroup.controllers", "cpu memory\n")
        .write("cgroup/agents/memory.max", &format!("{}\n", 1024 * MIB))
        .write("cgroup/agents/memory.high", "max\n")
        .write("cgroup/agents/session-7/memory.max", "max\n")
        .write("cgroup/agents/session-7/memory.high", &format!("{}\n", 800 * MIB))
        .write("cgroup/agents/session-7/memory.current", &format!("{}\n", 700 * MIB));
    let r = capture(&f, ReportOptions::default().process_tree(false));
    let cg = r.limits.cgroup.as_ref().expect("cgroup read");
    assert_eq!(cg.version, 2);
    assert_eq!(cg.path, "/agents/session-7");
    assert_eq!(cg.max_bytes, Some(1024 * MIB));
    assert!(cg.max_source.as_deref().unwrap().ends_with("agents/memory.max"));
    assert_eq!(cg.high_bytes, Some(800 * MIB));
    assert!(cg.high_source.as_deref().unwrap().ends_with("session-7/memory.high"));
    assert_eq!(cg.current_bytes, Some(700 * MIB));
    assert_eq!(cg.high_usage_bytes, Some(700 * MIB));
    assert_eq!(r.limits.effective_bytes, Some(800 * MIB));
    let source = r.limits.effective_source.as_deref().unwrap();
    // Named with its file, as memory.max is (it once said "cgroup v2 memory.high" alone).
    assert!(source.starts_with("cgroup v2 memory.high ("), "{source}");
    assert!(source.ends_with("session-7/memory.high)"), "{source}");
    assert_eq!(r.pressure.used_bytes, Some(700 * MIB));
    assert_eq!(r.pressure.ratio, Some(0.875));
    assert_eq!(r.pressure.level, PressureLevel::High);
    assert!(
        r.suggestions.iter().any(|s| s.contains("memory pressure is high")),
        "{:?}",
        r.suggestions
    );
    let p = r.process.as_ref().unwrap();
    assert_eq!(
        (p.rss_bytes, p.rss_peak_bytes, p.threads),
        (Some(100 * MIB), Some(150 * MIB), Some(9))
    );
    assert_eq!(p.virtual_bytes, Some(2048 * MIB));
    assert_eq!(r.limits.mem_total_bytes, Some(16 * 1024 * MIB));
}

#[test]
fn cgroup_v1_no_limit_values_and_hierarchical_limit() {
    let f = Fixture::new("v1");
    base_proc(&f);
    f.write("proc/self/cgroup", "11:cpu,cpuacct:/x\n5:memory:/docker/abc\n1:name=systemd:/y\n")
        .write("cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n")
        .write("cgroup/memory/docker/memory.limit_in_bytes", "18446744073709551615\n")
        .write(
            "cgroup/memory/docker/abc/memory.stat",
            &format!("cache 0\nhierarchical_memory_limit {}\nrss 1\n", 512 * MIB),
        )
        .write("cgroup/memory/docker/abc/memory.usage_in_bytes", &format!("{}\n", 500 * MIB));
    let r = capture(&f, ReportOptions::default().process_tree(false));
    let cg = r.limits.cgroup.as_ref().expect("cgroup read");
    assert_eq!((cg.version, cg.max_bytes, cg.current_bytes), (1, Some(512 * MIB), Some(500 * MIB)));
    assert_eq!(r.limits.effective_bytes, Some(512 * MIB));
    // Set above the visible levels: named for the memory.stat key it is, and compared with the
    // own cgroup's usage, the closest there is.
    let source = r.limits.effective_source.as_deref().unwrap();
    assert!(source.starts_with("cgroup v1 hierarchical_memory_limit ("), "{source}");
    assert!(source.ends_with("docker/abc/memory.stat)"), "{source}");
    assert_eq!(cg.max_usage_bytes, Some(500 * MIB));
    assert_eq!(r.pressure.level, PressureLevel::Critical);
}

/// A limit set on an ancestor cgroup binds that ancestor's usage: the kernel reclaims and
/// OOM-kills in `agents` once *its* `memory.current` reaches its `memory.max`, whatever this
/// process's own cgroup uses. The report once compared the ancestor's limit with the own
/// cgroup's usage (100 MiB of 1 GiB: "normal" while `agents` was at 99 %).
#[test]
fn cgroup_v2_ancestor_limit_is_compared_with_the_ancestors_usage() {
    let f = Fixture::new("v2-ancestor");
    base_proc(&f);
    f.write("proc/self/cgroup", "0::/agents/me\n")
        .write("cgroup/cgroup.controllers", "cpu memory\n")
        .write("cgroup/agents/memory.max", &format!("{}\n", 1024 * MIB))
        .write("cgroup/agents/memory.current", "1063004405\n")
        .write("cgroup/agents/me/memory.max", "max\n")
        .write("cgroup/agents/me/memory.current", &format!("{}\n", 100 * MIB));
    let r = capture(&f, ReportOptions::default().process_tree(false));
    let cg = r.limits.cgroup.as_ref().expect("cgroup read");
    assert_eq!((cg.current_bytes, cg.max_usage_bytes), (Some(100 * MIB), Some(1063004405)));
    assert_eq!(r.limits.effective_bytes, Some(1024 * MIB));
    assert_eq!(r.pressure.used_bytes, Some(1063004405));
    let used_source = r.pressure.used_source.as_deref().unwrap();
    assert!(used_source.ends_with("agents/memory.current)"), "{used_source}");
    assert_eq!(r.pressure.level, PressureLevel::Critical, "{:?}", r.pressure);
    // So does a memory.high set on the ancestor.
    f.write("cgroup/agents/memory.max", "max\n")
        .write("cgroup/agents/memory.high", &format!("{}\n", 1000 * MIB));
    let r = capture(&f, ReportOptions::default().process_tree(false));
    let source = r.limits.effective_source.as_deref().unwrap();
    assert!(source.ends_with("agents/memory.high)"), "{source}");
    assert_eq!(r.pressure.used_bytes, Some(1063004405));
    assert_eq!(r.pressure.level, PressureLevel::Critical, "{:?}", r.pressure);
}

/// The same for cgroup v1, where `memory.stat`'s `hierarchical_memory_limit` repeats the
/// ancestor's limit: the usage compared is the ancestor's `memory.usage_in_bytes`, and the
/// limit is named after the ancestor's `memory.limit_in_bytes` that sets it.
#[test]
fn cgroup_v1_hierarchical_limit_is_compared_with_the_limiting_cgroups_usage() {
    let f = Fixture::new("v1-ancestor");
    base_proc(&f);
    f.write("proc/self/cgroup", "5:memory:/agents/me\n")
        .write("cgroup/memory/agents/memory.limit_in_bytes", &format!("{}\n", 1024 * MIB))
        .write("cgroup/memory/agents/memory.usage_in_bytes", "1063004405\n")
        .write("cgroup/memory/agents/me/memory.limit_in_bytes", "9223372036854771712\n")
        .write("cgroup/memory/agents/me/memory.usage_in_bytes", &format!("{}\n", 100 * MIB))
        .write(
            "cgroup/memory/agents/me/memory.stat",
            &format!("cache 0\nhierarchical_memory_limit {}\n", 1024 * MIB),
        );
    let r = capture(&f, ReportOptions::default().process_tree(false));
    let cg = r.limits.cgroup.as_ref().expect("cgroup read");
    assert!(cg.max_source.as_deref().unwrap().ends_with("agents/memory.limit_in_bytes"), "{cg:?}");
    assert_eq!(r.limits.effective_bytes, Some(1024 * MIB));
    assert_eq!(r.pressure.used_bytes, Some(1063004405));
    assert_eq!(r.pressure.level, PressureLevel::Critical, "{:?}", r.pressure);
}

/// A cgroup's usage counts its page cache, which the kernel reclaims before it OOM-kills:
/// inactive file pages are taken off (the working set, as Kubernetes compares with the limit).
/// An agent that had read 500 MiB of files in a 1 GiB cgroup, with 500 MiB of its own, was
/// `critical` at 99 % though the kernel could free half of it at once (a machine here had
/// 24 GB of cgroup usage for 10 MB of RSS). Compared: v2 `memory.current - inactive_file`,
/// v1 `memory.usage_in_bytes - total_inactive_file`, each of the limiting cgroup.
#[test]
fn a_cgroups_reclaimable_page_cache_is_not_pressure() {
    let f = Fixture::new("v2-cache");
    base_proc(&f);
    let (usage, inactive) = (1063004405u64, 500 * MIB);
    f.write("proc/self/cgroup", "0::/agents/me\n")
        .write("cgroup/cgroup.controllers", "cpu memory\n")
        .write("cgroup/agents/memory.max", &format!("{}\n", 1024 * MIB))
        .write("cgroup/agents/memory.current", &format!("{usage}\n"))
        .write(
            "cgroup/agents/memory.stat",
            &format!("anon 524288000\nfile 538716405\nactive_anon 1\ninactive_file {inactive}\nactive_file 1\n"),
        )
        .write("cgroup/agents/me/memory.max", "max\n")
        .write("cgroup/agents/me/memory.current", &format!("{}\n", 100 * MIB))
        .write("cgroup/agents/me/memory.stat", "inactive_file 7\n");
    let r = capture(&f, ReportOptions::default().process_tree(false));
    let cg = r.limits.cgroup.as_ref().expect("cgroup read");
    assert_eq!((cg.max_usage_bytes, cg.max_inactive_file_bytes), (Some(usage), Some(inactive)));
    assert_eq!(r.pressure.used_bytes, Some(usage - inactive));
    assert_eq!(r.pressure.level, PressureLevel::Normal, "{:?}", r.pressure);
    let source = r.pressure.used_source.as_deref().unwrap();
    assert!(source.starts_with("cgroup v2 memory.current - inactive_file ("), "{source}");
    assert!(source.ends_with("agents/memory.current)"), "{source}");

    let f = Fixture::new("v1-cache");
    base_proc(&f);
    f.write("proc/self/cgroup", "5:memory:/agents/me\n")
        .write("cgroup/memory/agents/memory.limit_in_bytes", &format!("{}\n", 1024 * MIB))
        .write("cgroup/memory/agents/memory.usage_in_bytes", &format!("{usage}\n"))
        .write(
            "cgroup/memory/agents/memory.stat",
            &format!("cache 9\ninactive_file 3\ntotal_cache 9\ntotal_inactive_file {inactive}\n"),
        )
        .write("cgroup/memory/agents/me/memory.limit_in_bytes", "9223372036854771712\n")
        .write("cgroup/memory/agents/me/memory.usage_in_bytes", &format!("{}\n", 100 * MIB));
    let r = capture(&f, ReportOptions::default().process_tree(false));
    assert_eq!(r.pressure.used_bytes, Some(usage - inactive), "v1 takes the hierarchy's total");
    assert_eq!(r.pressure.level, PressureLevel::Normal, "{:?}", r.pressure);
    let source = r.pressure.used_source.as_deref().unwrap();
    assert!(source.contains("memory.usage_in_bytes - total_inactive_file"), "{source}");
}

/// Without `MemAvailable` (kernels before 3.14) `MemTotal` is a known limit with no usage to
/// compare: the text says what is missing instead of "no usable limit".
#[test]
fn a_known_limit_without_a_usage_reading_says_so() {
    let f = Fixture::new("no-memavailable");
    base_proc(&f);
    f.write("proc/meminfo", "MemTotal:       16777216 kB\nMemFree:    1000 kB\n");
    let r = capture(&f, ReportOptions::default().process_tree(false));
    assert_eq!(r.limits.effective_bytes, Some(16 * 1024 * MIB));
    assert_eq!((r.pressure.level, r.pressure.used_bytes), (PressureLevel::Unknown, None));
    let text = r.to_string();
    let line = text.lines().find(|l| l.starts_with("pressure")).unwrap();
    assert!(!line.contains("no usable limit"), "{line}");
    assert!(line.contains("no usage reading") && line.contains("MemTotal"), "{line}");
    // Without any limit the line still says that.
    let none = Fixture::new("no-limit");
    none.write("proc/self/status", "Name:\tx\nVmRSS:\t 1024 kB\n");
    let r = capture(&none, ReportOptions::default().process_tree(false));
    let text = r.to_string();
    let line = text.lines().find(|l| l.starts_with("pressure")).unwrap();
    assert!(line.contains("no usable limit"), "{line}");
}

/// A budget of 0 bytes is no budget: from the environment it is an error, and set in code it
/// (like a cgroup `memory.max` of 0) stays out of the candidate limits instead of becoming the
/// effective limit and turning pressure "unknown".
#[test]
fn a_zero_limit_never_hides_the_real_ones() {
    std::env::set_var("HSFIX_ZERO_BUDGET_BYTES", "0");
    assert_eq!(
        ReportOptions::from_env("HSFIX_ZERO_").unwrap_err(),
        Error::InvalidEnv {
            variable: "HSFIX_ZERO_BUDGET_BYTES".into(),
            value: "0".into(),
            expected: "a positive whole number of bytes"
        }
    );
    let f = Fixture::new("zero");
    base_proc(&f);
    f.write("proc/self/cgroup", "0::/agents/me\n")
        .write("cgroup/cgroup.controllers", "memory\n")
        .write("cgroup/agents/memory.max", &format!("{}\n", 1024 * MIB))
        .write("cgroup/agents/memory.current", &format!("{}\n", 512 * MIB))
        .write("cgroup/agents/me/memory.max", "0\n")
        .write("cgroup/agents/me/memory.current", &format!("{}\n", 100 * MIB));
    let r = capture(&f, ReportOptions::default().process_tree(false).budget_bytes(0));
    assert_eq!(r.limits.budget_bytes, Some(0));
    assert_eq!(r.limits.cgroup.as_ref().unwrap().max_bytes, Some(1024 * MIB));
    assert_eq!(r.limits.effective_bytes, Some(1024 * MIB));
    assert_eq!((r.pressure.level, r.pressure.ratio), (PressureLevel::Normal, Some(0.5)));
    for expected in ["budget of 0 bytes", "memory.max: a limit of 0 bytes"] {
        assert!(r.warnings.iter().any(|w| w.contains(expected)), "{expected}: {:?}", r.warnings);
    }

    // The same for cgroup v1's hierarchical_memory_limit in memory.stat (once dropped without
    // a word).
    let f = Fixture::new("zero-v1");
    base_proc(&f);
    f.write(
        "proc/self/cgroup",
        "5:memory:/docker/abc
",
    )
    .write(
        "cgroup/memory/docker/abc/memory.limit_in_bytes",
        &format!(
            "{}
",
            512 * MIB
        ),
    )
    .write("cgroup/memory/docker/abc/memory.stat", "cache 0\nhierarchical_memory_limit 0\n")
    .write("cgroup/memory/docker/abc/memory.usage_in_bytes", &format!("{}\n", 100 * MIB));
    let r = capture(&f, ReportOptions::default().process_tree(false));
    assert_eq!(r.limits.effective_bytes, Some(512 * MIB));
    let warned = "memory.stat: a hierarchical_memory_limit of 0 bytes is no usable limit";
    assert!(r.warnings.iter().any(|w| w.contains(warned)), "{:?}", r.warnings);
}

#[test]
fn no_cgroup_and_missing_files_degrade_with_warnings() {
    let f = Fixture::new("none");
    f.write("proc/self/status", "Name:\tx\n"); // no VmRSS: a kernel-thread-like status
    let r = capture(&f, ReportOptions::default().process_tree(false));
    assert!(r.limits.cgroup.is_none());
    assert_eq!(r.limits.mem_total_bytes, None);
    assert_eq!(r.limits.effective_bytes, None);
    assert_eq!(r.pressure.level, PressureLevel::Unknown);
    assert_eq!(r.pressure.ratio, None);
    assert_eq!(r.process.as_ref().unwrap().rss_bytes, None);
    let warnings = r.warnings.join("\n");
    for expected in
        ["cgroup limits unavailable", "meminfo unavailable", "no VmRSS", "uptime unavailable"]
    {
        assert!(warnings.contains(expected), "missing {expected:?} in:\n{warnings}");
    }
    // Nothing at all under the proc root: still a report, with the process unavailable.
    let empty = Fixture::new("empty");
    let r = capture(&empty, ReportOptions::default());
    assert!(r.process.is_none());
    assert!(r.warnings.iter().any(|w| w.contains("process memory unavailable")));
    let text = r.to_string();
    assert!(text.contains("process    unavailable"), "{text}");
}

#[test]
fn malformed_cgroup_files_are_ignored_with_a_warning() {
    let f = Fixture::new("garbage");
    base_proc(&f);
    f.write("proc/self/cgroup", "0::/\n")
        .write("cgroup/cgroup.controllers", "memory\n")
        .write("cgroup/memory.max", "lots of memory\n")
        .write("cgroup/memory.current", "\n");
    let r = capture(&f, ReportOptions::default().process_tree(false).budget_bytes(200 * MIB));
    let cg = r.limits.cgroup.as_ref().unwrap();
    assert_eq!((cg.max_bytes, cg.current_bytes), (None, None));
    assert!(
        r.warnings.iter().any(|w| w.contains("memory.max: malformed value \"lots of memory\"")),
        "{:?}",
        r.warnings
    );
    // The budget is the tightest limit left; compared with the process RSS (100 MiB).
    assert_eq!(r.limits.effective_source.as_deref(), Some("configured budget"));
    assert_eq!((r.pressure.used_bytes, r.pressure.ratio), (Some(100 * MIB), Some(0.5)));
    assert_eq!(r.pressure.used_source.as_deref(), Some("process RSS"));
    assert_eq!(r.pressure.level, PressureLevel::Normal);
    // The own cgroup's usage, read once for itself and for the limit set on it: one warning.
    f.write("cgroup/memory.max", &format!("{}\n", 1024 * MIB));
    let r = capture(&f, ReportOptions::default().process_tree(false));
    let current = r.warnings.iter().filter(|w| w.contains("memory.current: malformed")).count();
    assert_eq!(current, 1, "{:?}", r.warnings);
}

#[test]
fn process_tree_counts_descendants_skips_strangers_zombies_and_garbage() {
    let f = Fixture::new("tree");
    base_proc(&f);
    let me = std::process::id();
    // `rss` in /proc/<pid>/stat counts pages of the system's page size.
    // SAFETY: sysconf has no preconditions.
    let unit = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    // Pids far above any real one on this machine.
    f.write(
        &format!("proc/{}/stat", 4_000_001),
        &stat_line(4_000_001, "tool server", 'S', me, 2560),
    )
    .write(&format!("proc/{}/stat", 4_000_002), &stat_line(4_000_002, "sh", 'Z', 4_000_001, 999))
    .write(
        &format!("proc/{}/stat", 4_000_003),
        &stat_line(4_000_003, "python3 (x)", 'R', 4_000_001, 5120),
    )
    .write(&format!("proc/{}/stat", 4_000_004), &stat_line(4_000_004, "stranger", 'S', 1, 99999))
    .write(&format!("proc/{}/stat", 4_000_005), "garbage")
    .write("proc/4000006/status", "no stat file: vanished mid-walk\n");
    let r = capture(&f, ReportOptions::default());
    let p = r.process.as_ref().unwrap();
    assert_eq!(p.descendants, 3, "{:?}", p.largest_children);
    let pids: Vec<u32> = p.largest_children.iter().map(|c| c.pid).collect();
    assert_eq!(pids, vec![4_000_003, 4_000_001, 4_000_002], "largest first, zombie last");
    assert_eq!(p.largest_children[0].command, "python3 (x)");
    assert_eq!(p.largest_children[2].rss_bytes, 0, "a zombie holds no memory");
    assert_eq!(p.largest_children[0].rss_bytes, 5120 * unit);
    assert_eq!(p.tree_rss_bytes, Some(100 * MIB + (5120 + 2560) * unit));
    // No `children` files in this /proc: every process's stat was read, and the report says so.
    let scanned: Vec<&String> =
        r.warnings.iter().filter(|w| w.starts_with("process tree")).collect();
    assert_eq!(
        scanned,
        [&format!(
            "process tree: {root}/{me}/task/{me}/children unavailable (a kernel without \
             CONFIG_PROC_CHILDREN): read the stat of all 6 processes in {root} to find this \
             one's descendants",
            root = f.proc().display()
        )]
    );
}

/// With `/proc/<pid>/task/<tid>/children` the walk follows them from this process down,
/// through every thread (a child forked by a worker thread is listed in that thread's file),
/// and reads the stat of the processes listed only: a process whose stat names this one as
/// its parent but that no `children` file lists is not read (here it stands for the machine's
/// other processes, which the walk never reads), a listed pid whose stat names another parent
/// (exited, its pid reused) or that has no stat (exited) is left out.
#[test]
fn process_tree_follows_the_children_files_of_every_thread() {
    let f = Fixture::new("children");
    base_proc(&f);
    let me = std::process::id();
    // SAFETY: sysconf has no preconditions.
    let unit = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    f.write(&format!("proc/{me}/task/{me}/children"), "4000001 4000005 4000006 ")
        .write(&format!("proc/{me}/task/4000099/children"), "4000021 ")
        .write("proc/4000001/stat", &stat_line(4_000_001, "tool server", 'S', me, 2560))
        .write("proc/4000001/task/4000001/children", "4000002 ")
        .write("proc/4000001/task/4000008/children", "4000003")
        .write("proc/4000002/stat", &stat_line(4_000_002, "sh", 'Z', 4_000_001, 999))
        .write("proc/4000003/stat", &stat_line(4_000_003, "python3 (x)", 'R', 4_000_001, 5120))
        .write("proc/4000003/task/4000003/children", "")
        .write("proc/4000021/stat", &stat_line(4_000_021, "worker's tool", 'S', me, 100))
        .write("proc/4000004/stat", &stat_line(4_000_004, "unlisted", 'S', me, 99999))
        .write("proc/4000005/stat", &stat_line(4_000_005, "reused", 'S', 1, 77777));
    let r = capture(&f, ReportOptions::default());
    let p = r.process.as_ref().unwrap();
    let found: Vec<(u32, u32, &str, u64)> = p
        .largest_children
        .iter()
        .map(|c| (c.pid, c.ppid, c.command.as_str(), c.rss_bytes))
        .collect();
    assert_eq!(
        found,
        [
            (4_000_003, 4_000_001, "python3 (x)", 5120 * unit),
            (4_000_001, me, "tool server", 2560 * unit),
            (4_000_021, me, "worker's tool", 100 * unit),
            (4_000_002, 4_000_001, "sh", 0),
        ]
    );
    assert_eq!(p.descendants, 4);
    assert_eq!(p.tree_rss_bytes, Some(100 * MIB + (5120 + 2560 + 100) * unit));
    assert!(!r.warnings.iter().any(|w| w.starts_with("process tree")), "{:?}", r.warnings);
}

/// Children whose `rss` is garbage-large: the tree's RSS saturates instead of overflowing
/// (which panicked in debug builds and wrapped to a small number in release ones).
#[test]
fn garbage_child_rss_saturates_the_tree_rss() {
    let f = Fixture::new("huge-rss");
    base_proc(&f);
    let me = std::process::id();
    f.write("proc/4000011/stat", &stat_line(4_000_011, "a", 'S', me, u64::MAX / 2))
        .write("proc/4000012/stat", &stat_line(4_000_012, "b", 'S', me, u64::MAX / 2));
    let r = capture(&f, ReportOptions::default());
    let p = r.process.as_ref().unwrap();
    assert_eq!(p.descendants, 2);
    assert_eq!(p.tree_rss_bytes, Some(u64::MAX));
}

#[test]
fn environment_configuration_names_the_bad_variable() {
    // Each case uses its own variable names: tests run in parallel in this process.
    std::env::set_var("HSFIX_A_BUDGET_BYTES", "12GB");
    assert_eq!(
        ReportOptions::from_env("HSFIX_A_").unwrap_err(),
        Error::InvalidEnv {
            variable: "HSFIX_A_BUDGET_BYTES".into(),
            value: "12GB".into(),
            expected: "a positive whole number of bytes"
        }
    );
    std::env::set_var("HSFIX_B_PRESSURE_HIGH", "NaN");
    assert!(matches!(
        ReportOptions::from_env("HSFIX_B_"),
        Err(Error::InvalidEnv { variable, value, .. }) if variable == "HSFIX_B_PRESSURE_HIGH" && value == "NaN"
    ));
    std::env::set_var("HSFIX_C_PRESSURE_ELEVATED", "0.9");
    assert!(matches!(
        ReportOptions::from_env("HSFIX_C_"),
        Err(Error::InvalidThresholds { which: "high", .. })
    ));
    std::env::set_var("HSFIX_D_BUDGET_BYTES", " 1048576 ");
    std::env::set_var("HSFIX_D_PRESSURE_CRITICAL", "0.99");
    let f = Fixture::new("env");
    base_proc(&f);
    let r = capture(&f, ReportOptions::from_env("HSFIX_D_").unwrap().process_tree(false));
    assert_eq!(r.limits.budget_bytes, Some(MIB));
    assert_eq!(r.pressure.thresholds, Thresholds::new(0.70, 0.85, 0.99).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::env::set_var("HSFIX_E_BUDGET_BYTES", std::ffi::OsStr::from_bytes(b"\xff\xfe"));
        assert!(matches!(
            ReportOptions::from_env("HSFIX_E_"),
            Err(Error::InvalidEnv { variable, .. }) if variable == "HSFIX_E_BUDGET_BYTES"
        ));
    }
    assert!(ReportOptions::from_env("HSFIX_UNSET_").is_ok());
}

#[test]
fn json_is_versioned_and_round_trips() {
    let f = Fixture::new("json");
    base_proc(&f);
    let r = capture(&f, ReportOptions::default().process_tree(false));
    let mut out = Vec::new();
    r.write_json(&mut out).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["runtime"]["pid"], std::process::id());
    assert_eq!(value["process"]["rss_bytes"], 100 * MIB);
    assert_eq!(value["limits"]["mem_total_bytes"], 16 * 1024 * MIB);
    assert_eq!(value["pressure"]["level"], "normal");
    assert!(value["runtime"]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(value["runtime"]["rustc_version"].as_str().unwrap().starts_with("rustc "));
    let back: Report = serde_json::from_slice(&out).unwrap();
    assert_eq!(back, r);
}

/// `runtime.features` names every cargo feature of heapscope that is on (it once left out
/// `jemalloc-profiling` and `signal`).
#[test]
fn runtime_lists_every_feature_that_is_on() {
    let f = Fixture::new("features");
    base_proc(&f);
    let features = capture(&f, ReportOptions::default().process_tree(false)).runtime.features;
    let expected: Vec<&str> = [
        (cfg!(feature = "enabled"), "enabled"),
        (cfg!(feature = "jemalloc"), "jemalloc"),
        (cfg!(feature = "jemalloc-profiling"), "jemalloc-profiling"),
        (cfg!(feature = "signal"), "signal"),
        (cfg!(feature = "dhat"), "dhat"),
        (cfg!(feature = "tracing"), "tracing"),
        (cfg!(feature = "metrics"), "metrics"),
        (cfg!(feature = "cli"), "cli"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name)
    .collect();
    assert_eq!(features, expected);
}

#[test]
fn allocator_section_says_why_it_is_missing() {
    let f = Fixture::new("alloc");
    base_proc(&f);
    let r = capture(&f, ReportOptions::default().process_tree(false));
    if cfg!(feature = "jemalloc") {
        let a = r.allocator.as_ref().expect("jemalloc statistics");
        assert_eq!(a.name, "jemalloc");
        assert!(a.version.starts_with("5."), "{}", a.version);
        assert!(a.resident >= a.active && a.active >= a.allocated && a.mapped >= a.active, "{a:?}");
        assert_eq!(a.fragmentation, a.active - a.allocated);
    } else {
        // The system allocator keeps no statistics heapscope can read: unavailable, not 0.
        assert!(r.allocator.is_none());
        assert!(
            r.warnings.iter().any(|w| w.contains("allocator statistics unavailable")
                && w.contains("without the `jemalloc` feature")),
            "{:?}",
            r.warnings
        );
        assert!(r.to_string().contains("(statistics unavailable)"));
    }
}

/// README: the report reads "a budget of your own" and `RLIMIT_DATA`. A budget that is not
/// the effective limit was in the JSON (`limits.budget_bytes`) but nowhere in the text, and
/// neither was `RLIMIT_DATA`.
#[test]
fn the_limits_line_names_a_budget_that_does_not_bind_and_rlimit_data() {
    let f = Fixture::new("own-limit");
    base_proc(&f);
    let r = capture(&f, ReportOptions::default().process_tree(false).budget_bytes(32 * 1024 * MIB));
    assert_eq!(r.limits.budget_bytes, Some(32 * 1024 * MIB));
    assert_eq!(r.limits.effective_source.as_deref(), Some("MemTotal"));
    let text = r.to_string();
    let limits = text.lines().find(|l| l.starts_with("limits ")).unwrap();
    assert!(limits.contains("budget 32.0 GiB"), "{text}");
    assert!(limits.contains("RLIMIT_DATA "), "{text}");
}

/// RELIABILITY.md BAD-1's table of bad values, for the integer budget and for a fraction:
/// each is refused with a typed error naming the variable and the value (a fraction that
/// parses but is out of range is refused by the thresholds' own check), never a panic, and
/// no NaN or infinity reaches a comparison. An unset variable keeps the default.
#[test]
fn environment_values_from_the_checklist_table_are_typed_errors() {
    let not_numbers =
        ["", " ", "\t", "abc", "30s", "15%", "NaN", "nan", "inf", "-inf", "1e309", "0x10"];
    let budget_bad = ["-1", "0", "0.5", "1e3", "99999999999999999999", "18446744073709551616"];
    let mut case = 0;
    let mut next_prefix = || {
        case += 1;
        format!("HSBAD1_{case}_")
    };
    for value in not_numbers.iter().chain(&budget_bad) {
        let prefix = next_prefix();
        let variable = format!("{prefix}BUDGET_BYTES");
        std::env::set_var(&variable, value);
        let err = ReportOptions::from_env(&prefix).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidEnv {
                variable: variable.clone(),
                value: value.to_string(),
                expected: "a positive whole number of bytes"
            },
            "{value:?}"
        );
        let text = err.to_string();
        assert!(text.starts_with("heapscope:") && text.contains(&variable), "{text}");
    }
    for value in not_numbers {
        let prefix = next_prefix();
        let variable = format!("{prefix}PRESSURE_HIGH");
        std::env::set_var(&variable, value);
        assert!(
            matches!(
                ReportOptions::from_env(&prefix),
                Err(Error::InvalidEnv { variable: v, value: got, .. }) if v == variable && got == value
            ),
            "{value:?}"
        );
    }
    // Numbers that parse but are no fraction in (0, 1], or break the order.
    for (suffix, value, which) in [
        ("PRESSURE_HIGH", "150", "high"),
        ("PRESSURE_HIGH", "1.5", "high"),
        ("PRESSURE_HIGH", "-1", "high"),
        ("PRESSURE_HIGH", "0", "high"),
        ("PRESSURE_HIGH", "-0", "high"),
        ("PRESSURE_HIGH", "99999999999999999999", "high"),
        ("PRESSURE_ELEVATED", "0.95", "high"), // elevated above the default high
        ("PRESSURE_CRITICAL", "0.85", "critical"), // critical equal to the default high
        ("PRESSURE_ELEVATED", "1e-10", "elevated"),
    ] {
        let prefix = next_prefix();
        std::env::set_var(format!("{prefix}{suffix}"), value);
        assert!(
            matches!(
                ReportOptions::from_env(&prefix),
                Err(Error::InvalidThresholds { which: w, .. }) if w == which
            ),
            "{suffix}={value:?}: {:?}",
            ReportOptions::from_env(&prefix)
        );
    }
    // Surrounding whitespace is trimmed; an unset variable keeps the default.
    let prefix = next_prefix();
    std::env::set_var(format!("{prefix}PRESSURE_CRITICAL"), "\t1 ");
    std::env::set_var(format!("{prefix}BUDGET_BYTES"), " 18446744073709551615\n");
    assert!(ReportOptions::from_env(&prefix).is_ok());
}
