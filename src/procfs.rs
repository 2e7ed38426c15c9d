//! Reading `/proc`: this process's memory and threads, the machine's memory, and the
//! process tree. Pure parsers over text, plus readers over a root directory that tests point
//! at fixtures. Anything missing or malformed is `None` (and a warning in the report), never 0.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The fields of `/proc/<pid>/status` a report needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) vm_rss_bytes: Option<u64>,
    pub(crate) vm_hwm_bytes: Option<u64>,
    pub(crate) vm_size_bytes: Option<u64>,
    pub(crate) threads: Option<u64>,
}

/// Parses `/proc/<pid>/status`. Sizes there are in kB (1024 bytes).
pub(crate) fn parse_status(text: &str) -> Status {
    let mut status = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key {
            "VmRSS" => status.vm_rss_bytes = parse_kib(value),
            "VmHWM" => status.vm_hwm_bytes = parse_kib(value),
            "VmSize" => status.vm_size_bytes = parse_kib(value),
            "Threads" => status.threads = value.parse().ok(),
            _ => {}
        }
    }
    status
}

/// `"1234 kB"` → 1234 × 1024.
fn parse_kib(value: &str) -> Option<u64> {
    let number = value.strip_suffix("kB").unwrap_or(value).trim();
    number.parse::<u64>().ok()?.checked_mul(1024)
}

/// The fields of `/proc/<pid>/stat` a report needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) pid: u32,
    /// The command name (at most 15 bytes, may contain spaces and parentheses).
    pub(crate) comm: String,
    pub(crate) state: char,
    pub(crate) ppid: u32,
    /// Resident set size in pages.
    pub(crate) rss_pages: u64,
    /// Start time after boot, in clock ticks.
    pub(crate) start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name sits between the first `(` and the *last*
/// `)`, since it can contain both.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text.get(..open)?.trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_owned();
    // Fields after the name, numbered as in proc(5): 3 state, 4 ppid, 22 starttime, 24 rss.
    // Taken from the iterator in order, not gathered: a `Vec` of the 50 fields allocated
    // 1 984 bytes a process as it grew.
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let start_ticks = rest.nth(22 - 5)?.parse().ok()?;
    let rss_pages = rest.nth(24 - 23)?.parse().ok()?;
    Some(Stat { pid, comm, state, ppid, rss_pages, start_ticks })
}

/// The fields of `/proc/meminfo` a report needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub(crate) mem_total_bytes: Option<u64>,
    pub(crate) mem_available_bytes: Option<u64>,
}

/// Parses `/proc/meminfo`.
pub(crate) fn parse_meminfo(text: &str) -> MemInfo {
    let mut info = MemInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key {
            "MemTotal" => info.mem_total_bytes = parse_kib(value.trim()),
            "MemAvailable" => info.mem_available_bytes = parse_kib(value.trim()),
            _ => {}
        }
    }
    info
}

/// One descendant process in the report's process tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildProcess {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Command name from `/proc/<pid>/stat`.
    pub command: String,
    /// Resident set size in bytes (0 for zombies).
    pub rss_bytes: u64,
}

/// This process and all its descendants, from `/proc`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tree {
    /// Every descendant (children, grandchildren, …), largest RSS first, then by pid.
    pub(crate) descendants: Vec<ChildProcess>,
    /// How many `/proc` entries vanished or could not be read during the walk.
    pub(crate) unreadable: usize,
    /// `Some(n)` when the kernel has no `children` files and every one of the `n` processes
    /// in `/proc` was read to find the descendants; `None` when the walk followed `children`.
    pub(crate) scanned: Option<usize>,
}

/// The descendants of `pid`. `page_size` converts `rss` pages to bytes.
///
/// Follows `<pid>/task/<tid>/children` (every thread's children, as the kernel lists them)
/// from `pid` down, reading the `stat` of each descendant only, so its time and memory grow
/// with the process tree. A kernel built without `CONFIG_PROC_CHILDREN` has no such file:
/// then every `/proc/<pid>/stat` of the machine is read ([`scan_tree`]), and
/// [`Tree::scanned`] says so.
pub(crate) fn process_tree(proc_root: &Path, pid: u32, page_size: u64) -> std::io::Result<Tree> {
    let own = proc_root.join(pid.to_string()).join("task").join(pid.to_string()).join("children");
    if std::fs::metadata(&own).is_err() {
        return scan_tree(proc_root, pid, page_size);
    }
    let mut tree = Tree::default();
    // One buffer for every file read: a `children` file of up to 512 pids (a page, which the
    // kernel fills in one read) and each `stat` (under 1 KiB).
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut frontier = vec![pid];
    // Bounded: each pid is visited once, and a pid cannot be its own ancestor.
    let mut seen = std::collections::HashSet::from([pid]);
    while let Some(parent) = frontier.pop() {
        let parent_dir = proc_root.join(parent.to_string());
        // A descendant that exited since it was listed has no tasks: its children are no
        // longer in this tree (the kernel re-parents them to a reaper).
        let Ok(tasks) = std::fs::read_dir(parent_dir.join("task")) else { continue };
        for task in tasks {
            let Ok(task) = task else {
                tree.unreadable += 1;
                continue;
            };
            // Read in one go: the kernel may skip a child between two reads of the file if
            // another child exits in between (proc(5)).
            if read_into(&task.path().join("children"), &mut buf).is_err() {
                continue; // the thread exited
            }
            let listed = std::str::from_utf8(&buf).unwrap_or("");
            let pids: Vec<u32> = listed.split_whitespace().filter_map(|p| p.parse().ok()).collect();
            for child in pids {
                if !seen.insert(child) {
                    continue;
                }
                // A child may exit (and its pid be reused) between the listing and this read:
                // a `stat` of another pid or parent is not this child.
                let stat = read_into(&proc_root.join(child.to_string()).join("stat"), &mut buf)
                    .ok()
                    .and_then(|()| std::str::from_utf8(&buf).ok())
                    .and_then(parse_stat);
                match stat {
                    Some(stat) if stat.pid == child && stat.ppid == parent => {
                        frontier.push(child);
                        tree.descendants.push(child_process(stat, page_size));
                    }
                    _ => tree.unreadable += 1,
                }
            }
        }
    }
    tree.descendants.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    Ok(tree)
}

/// Empties `buf` and reads the file at `path` into it.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf).map(drop)
}

fn child_process(stat: Stat, page_size: u64) -> ChildProcess {
    let rss_bytes = if stat.state == 'Z' { 0 } else { stat.rss_pages.saturating_mul(page_size) };
    ChildProcess { pid: stat.pid, ppid: stat.ppid, command: stat.comm, rss_bytes }
}

/// The descendants of `pid` from every `/proc/*/stat` of the machine, holding a record per
/// process while it walks: the way without `children` files.
fn scan_tree(proc_root: &Path, pid: u32, page_size: u64) -> std::io::Result<Tree> {
    let mut by_parent: HashMap<u32, Vec<Stat>> = HashMap::new();
    let mut unreadable = 0;
    let mut processes = 0;
    for entry in std::fs::read_dir(proc_root)? {
        let Ok(entry) = entry else {
            unreadable += 1;
            continue;
        };
        let name = entry.file_name();
        let Some(child_pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        processes += 1;
        // A process may exit between the listing and this read: that is not an error.
        match std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            Some(stat) if stat.pid == child_pid => {
                by_parent.entry(stat.ppid).or_default().push(stat)
            }
            _ => unreadable += 1,
        }
    }
    let mut descendants = Vec::new();
    let mut frontier = vec![pid];
    // Bounded: each pid is visited once, and a pid cannot be its own ancestor.
    let mut seen = std::collections::HashSet::from([pid]);
    while let Some(parent) = frontier.pop() {
        for stat in by_parent.remove(&parent).unwrap_or_default() {
            if !seen.insert(stat.pid) {
                continue;
            }
            frontier.push(stat.pid);
            descendants.push(child_process(stat, page_size));
        }
    }
    descendants.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    Ok(Tree { descendants, unreadable, scanned: Some(processes) })
}

/// The system page size.
pub(crate) fn page_size() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            return size as u64;
        }
    }
    4096
}

/// Clock ticks per second, for `/proc/<pid>/stat` times.
pub(crate) fn clock_ticks() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 {
            return ticks as u64;
        }
    }
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_in_bytes() {
        let text = "Name:\tagent\nVmSize:\t  123456 kB\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\nThreads:\t17\n";
        let s = parse_status(text);
        assert_eq!(s.vm_rss_bytes, Some(1024 * 1024));
        assert_eq!(s.vm_hwm_bytes, Some(2048 * 1024));
        assert_eq!(s.vm_size_bytes, Some(123_456 * 1024));
        assert_eq!(s.threads, Some(17));
    }

    #[test]
    fn status_without_memory_lines_is_unknown_not_zero() {
        // Kernel threads and zombies have no Vm* lines.
        let s = parse_status("Name:\tkthreadd\nState:\tS (sleeping)\nThreads:\t1\n");
        assert_eq!(s.vm_rss_bytes, None);
        assert_eq!(s.threads, Some(1));
        assert_eq!(parse_status("VmRSS:\tgarbage kB\n").vm_rss_bytes, None);
        assert_eq!(parse_status("").threads, None);
    }

    #[test]
    fn stat_with_spaces_and_parentheses_in_the_name() {
        let text = "4242 (tool (x) y) S 4000 4242 4000 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 \
                    987654 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(text).expect("parses");
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "tool (x) y");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 4000);
        assert_eq!(s.start_ticks, 987_654);
        assert_eq!(s.rss_pages, 2560);
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(parse_stat("12 (sh) S 1"), None);
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn meminfo() {
        let m = parse_meminfo(
            "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n",
        );
        assert_eq!(m.mem_total_bytes, Some(24_576_000 * 1024));
        assert_eq!(m.mem_available_bytes, Some(20_000_000 * 1024));
        assert_eq!(parse_meminfo("MemTotal: x kB").mem_total_bytes, None);
    }

    #[test]
    fn the_live_system_parses() {
        if let Ok(text) = std::fs::read_to_string("/proc/self/status") {
            let s = parse_status(&text);
            assert!(s.vm_rss_bytes.is_some_and(|r| r > 0));
            assert!(s.threads.is_some_and(|t| t >= 1));
        }
        if let Ok(text) = std::fs::read_to_string("/proc/self/stat") {
            let s = parse_stat(&text).expect("live stat parses");
            assert_eq!(s.pid, std::process::id());
        }
    }
}
