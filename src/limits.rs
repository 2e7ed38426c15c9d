//! Memory limits: cgroup v2 and v1, resource limits, physical memory and a configured budget.
//!
//! Parsers are pure functions over file contents; readers take the `/proc` and cgroup roots
//! so tests can point them at fixtures. A limit that cannot be read is `None` with a warning,
//! and "no limit" values (`max`, v1's huge page-counter maximum) are `None`, never a number
//! that could end up as a denominator.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// cgroup v1 reports "no limit" as the page counter's maximum (9223372036854771712 on 4 KiB
/// pages) and some kernels as `u64::MAX`; anything this large is no limit.
const V1_UNLIMITED_FROM: u64 = 1 << 60;

/// Where this process sits in the cgroup hierarchies, from `/proc/self/cgroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CgroupPaths {
    /// The unified (v2) path: the line `0::<path>`.
    pub(crate) v2: Option<String>,
    /// The v1 memory controller's path: the line `<n>:…memory…:<path>`.
    pub(crate) v1_memory: Option<String>,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> CgroupPaths {
    let mut paths = CgroupPaths::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            paths.v2 = Some(path.to_owned());
        } else if controllers.split(',').any(|c| c == "memory") {
            paths.v1_memory = Some(path.to_owned());
        }
    }
    paths
}

/// A limit file's value: `Ok(None)` for "no limit", `Err(())` for garbage.
pub(crate) fn parse_limit(text: &str) -> Result<Option<u64>, ()> {
    let value = text.trim();
    if value == "max" {
        return Ok(None);
    }
    let bytes: u64 = value.parse().map_err(|_| ())?;
    Ok((bytes < V1_UNLIMITED_FROM).then_some(bytes))
}

/// What the cgroup says about this process's memory.
///
/// A limit set on an ancestor cgroup binds that ancestor's usage, which includes every
/// sibling's: the kernel reclaims and OOM-kills there once *its* usage reaches *its* limit. So
/// each limit comes with the usage of the cgroup it is set on (`max_usage_bytes`,
/// `high_usage_bytes`), and that is what pressure compares it with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CgroupMemory {
    /// `2` or `1`.
    pub version: u8,
    /// The cgroup path from `/proc/self/cgroup`.
    pub path: String,
    /// The tightest `memory.max` (v2) or `memory.limit_in_bytes` (v1) of the cgroup and its
    /// ancestors, or v1's `hierarchical_memory_limit` from `memory.stat` when that is tighter
    /// still (set on an ancestor this mount does not show); `None` when unlimited. A limit of
    /// 0 is left out with a warning.
    pub max_bytes: Option<u64>,
    /// Which file `max_bytes` came from.
    pub max_source: Option<String>,
    /// The usage (`memory.current`, v1 `memory.usage_in_bytes`) of the cgroup `max_bytes` is
    /// set on. For a v1 `hierarchical_memory_limit` that no visible level's
    /// `memory.limit_in_bytes` matches, the process's own cgroup's: the closest usage there is
    /// to read, and no more than the limiting ancestor's.
    pub max_usage_bytes: Option<u64>,
    /// The reclaimable page cache of the cgroup `max_bytes` is set on: `inactive_file` of its
    /// `memory.stat` (v1 `total_inactive_file`, its hierarchy's). Pressure compares the limit
    /// with the usage less this (the working set, as Kubernetes does): the kernel reclaims it
    /// before it OOM-kills, and an agent that reads files fills it (24 GB of a machine's
    /// 24 GB cgroup usage here was page cache, for 10 MB of RSS). `None` when unreadable.
    /// Reports written before this field existed read as `None`.
    #[serde(default)]
    pub max_inactive_file_bytes: Option<u64>,
    /// v2 `memory.high`: the tightest throttling threshold of the cgroup and its ancestors;
    /// `None` when unlimited or v1.
    pub high_bytes: Option<u64>,
    /// Which file `high_bytes` came from.
    pub high_source: Option<String>,
    /// `memory.current` of the cgroup `high_bytes` is set on.
    pub high_usage_bytes: Option<u64>,
    /// `inactive_file` of the cgroup `high_bytes` is set on, as `max_inactive_file_bytes`.
    #[serde(default)]
    pub high_inactive_file_bytes: Option<u64>,
    /// v2 `memory.current` or v1 `memory.usage_in_bytes` of the process's own cgroup.
    pub current_bytes: Option<u64>,
}

/// Reads the cgroup memory files for the paths in `proc_root/self/cgroup`, under
/// `cgroup_root` (normally `/sys/fs/cgroup`). Returns `Err` with the reason when there is
/// no cgroup to read.
pub(crate) fn read_cgroup(
    proc_root: &Path,
    cgroup_root: &Path,
    warnings: &mut Vec<String>,
) -> Result<CgroupMemory, String> {
    let text = std::fs::read_to_string(proc_root.join("self/cgroup"))
        .map_err(|e| format!("{}: {e}", proc_root.join("self/cgroup").display()))?;
    let paths = parse_proc_cgroup(&text);
    let v2_controllers = cgroup_root.join("cgroup.controllers");
    if let (Some(path), true) = (&paths.v2, v2_controllers.exists()) {
        return Ok(read_v2(cgroup_root, path, warnings));
    }
    if let Some(path) = &paths.v1_memory {
        return read_v1(cgroup_root, path, warnings);
    }
    Err("no memory cgroup in /proc/self/cgroup".to_owned())
}

/// The directories from the cgroup's own up to the hierarchy root, keeping only those that
/// exist (in a container with its own cgroup namespace the path is `/`; with the host's, the
/// listed path may not exist below the mount and the walk starts where it does).
fn levels(mount: &Path, path: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut rel = PathBuf::from(path.trim_start_matches('/'));
    loop {
        let dir = mount.join(&rel);
        if dir.is_dir() {
            dirs.push(dir);
        }
        if !rel.pop() {
            break;
        }
    }
    dirs
}

/// A limit file: `None` when absent or unreadable or malformed (the latter with a warning),
/// `Some(None)` for "no limit".
fn read_value(path: &Path, warnings: &mut Vec<String>) -> Option<Option<u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    match parse_limit(&text) {
        Ok(value) => Some(value),
        Err(()) => {
            warnings.push(format!(
                "{}: malformed value {:?}, ignored",
                path.display(),
                text.trim()
            ));
            None
        }
    }
}

/// A limit file's limit, `None` when there is none to use. A limit of 0 is left out with a
/// warning: as the tightest limit it would hide every real one and, as a denominator, turn
/// pressure "unknown".
fn read_limit(path: &Path, warnings: &mut Vec<String>) -> Option<u64> {
    let limit = read_value(path, warnings).flatten()?;
    if limit == 0 {
        warnings
            .push(format!("{}: a limit of 0 bytes is no usable limit, ignored", path.display()));
        return None;
    }
    Some(limit)
}

/// The tightest limit of one kind found so far on the walk up the hierarchy, and the cgroup
/// directory it is set on, whose usage is the one the limit binds.
struct Tightest {
    bytes: u64,
    file: PathBuf,
    level: PathBuf,
}

/// Keeps `bytes` from `file` in `level` if it is at least as tight as `tightest`. Levels come
/// from the process's own cgroup upwards, so on a tie the outer level wins: its usage includes
/// the inner one's, so it reaches the shared value first.
fn tighten(tightest: &mut Option<Tightest>, bytes: u64, file: PathBuf, level: &Path) {
    if tightest.as_ref().is_none_or(|t| bytes <= t.bytes) {
        *tightest = Some(Tightest { bytes, file, level: level.to_owned() });
    }
}

/// The key of the reclaimable page cache in `memory.stat` of cgroup v`version`: v1's
/// `memory.usage_in_bytes` counts the whole hierarchy below, so its hierarchical total.
pub(crate) fn inactive_file_key(version: u8) -> &'static str {
    if version == 2 {
        "inactive_file"
    } else {
        "total_inactive_file"
    }
}

/// The value of `key` in the text of a `memory.stat` file.
pub(crate) fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

/// The usage file of cgroup v`version`.
pub(crate) fn usage_file_name(version: u8) -> &'static str {
    if version == 2 {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    }
}

impl CgroupMemory {
    /// The usage of the cgroup at `level`: `current_bytes` (read first) for the process's own
    /// cgroup `own`, so a malformed file there is warned about once.
    fn usage_at(&self, level: &Path, own: &Path, warnings: &mut Vec<String>) -> Option<u64> {
        if level == own {
            return self.current_bytes;
        }
        read_value(&level.join(usage_file_name(self.version)), warnings).flatten()
    }

    /// `inactive_file` of the cgroup at `level` (see [`inactive_file_key`]).
    fn inactive_file_at(&self, level: &Path) -> Option<u64> {
        let text = std::fs::read_to_string(level.join("memory.stat")).ok()?;
        stat_value(&text, inactive_file_key(self.version))
    }

    /// Fills `max_*` from the tightest limit found, with the usage of its cgroup.
    fn set_max(&mut self, tightest: Option<Tightest>, own: &Path, warnings: &mut Vec<String>) {
        let Some(t) = tightest else { return };
        self.max_usage_bytes = self.usage_at(&t.level, own, warnings);
        self.max_inactive_file_bytes = self.inactive_file_at(&t.level);
        self.max_bytes = Some(t.bytes);
        self.max_source = Some(t.file.display().to_string());
    }

    /// Fills `high_*` from the tightest `memory.high` found, with the usage of its cgroup.
    fn set_high(&mut self, tightest: Option<Tightest>, own: &Path, warnings: &mut Vec<String>) {
        let Some(t) = tightest else { return };
        self.high_usage_bytes = self.usage_at(&t.level, own, warnings);
        self.high_inactive_file_bytes = self.inactive_file_at(&t.level);
        self.high_bytes = Some(t.bytes);
        self.high_source = Some(t.file.display().to_string());
    }

    /// What `max_bytes` is, for a report: the key and the file it came from, such as
    /// `cgroup v2 memory.max (/sys/fs/cgroup/agents/memory.max)`.
    pub(crate) fn max_description(&self) -> String {
        let source = self.max_source.as_deref().unwrap_or_default();
        let key = if self.version == 2 {
            "memory.max"
        } else if Path::new(source).file_name().is_some_and(|name| name == "memory.stat") {
            "hierarchical_memory_limit"
        } else {
            "memory.limit_in_bytes"
        };
        format!("cgroup v{} {key} ({source})", self.version)
    }

    /// The usage a limit whose file is `source` is compared with: the usage file beside it,
    /// less `memory.stat`'s reclaimable page cache when `less_inactive_file`, such as
    /// `cgroup v2 memory.current - inactive_file (/sys/fs/cgroup/agents/memory.current)`.
    pub(crate) fn usage_description(
        &self,
        source: Option<&str>,
        less_inactive_file: bool,
    ) -> String {
        let file = usage_file_name(self.version);
        let path = source.map(|s| Path::new(s).with_file_name(file).display().to_string());
        let less = if less_inactive_file {
            format!(" - {}", inactive_file_key(self.version))
        } else {
            String::new()
        };
        format!("cgroup v{} {file}{less} ({})", self.version, path.unwrap_or_default())
    }
}

fn read_v2(mount: &Path, path: &str, warnings: &mut Vec<String>) -> CgroupMemory {
    let dirs = levels(mount, path);
    let mut memory = CgroupMemory { version: 2, path: path.to_owned(), ..Default::default() };
    // Every level's memory.max and memory.high apply; the tightest one binds.
    let (mut max, mut high) = (None, None);
    for dir in &dirs {
        let file = dir.join("memory.max");
        if let Some(limit) = read_limit(&file, warnings) {
            tighten(&mut max, limit, file, dir);
        }
        let file = dir.join("memory.high");
        if let Some(limit) = read_limit(&file, warnings) {
            tighten(&mut high, limit, file, dir);
        }
    }
    if let Some(own) = dirs.first() {
        memory.current_bytes = read_value(&own.join("memory.current"), warnings).flatten();
        memory.set_max(max, own, warnings);
        memory.set_high(high, own, warnings);
    }
    memory
}

fn read_v1(root: &Path, path: &str, warnings: &mut Vec<String>) -> Result<CgroupMemory, String> {
    let mount = root.join("memory");
    let dirs = levels(&mount, path);
    let own = dirs.first().ok_or_else(|| format!("{} does not exist", mount.display()))?;
    let mut memory = CgroupMemory { version: 1, path: path.to_owned(), ..Default::default() };
    let mut max = None;
    for dir in &dirs {
        let file = dir.join("memory.limit_in_bytes");
        if let Some(limit) = read_limit(&file, warnings) {
            tighten(&mut max, limit, file, dir);
        }
    }
    // memory.stat's hierarchical_memory_limit is the minimum over the cgroup and all its
    // ancestors, those above this mount included. Equal to a level's limit it adds nothing (that
    // level is named, and its usage compared); tighter, it is set on an ancestor out of sight,
    // and the own cgroup's usage is the closest one there is to compare with it.
    let stat = own.join("memory.stat");
    if let Ok(text) = std::fs::read_to_string(&stat) {
        let value = text.lines().find_map(|line| line.strip_prefix("hierarchical_memory_limit "));
        if let Some(Ok(Some(limit))) = value.map(parse_limit) {
            if limit == 0 {
                // As a 0 in the limit files: warned about, not silently dropped.
                warnings.push(format!(
                    "{}: a hierarchical_memory_limit of 0 bytes is no usable limit, ignored",
                    stat.display()
                ));
            } else if max.as_ref().is_none_or(|t: &Tightest| limit < t.bytes) {
                max = Some(Tightest { bytes: limit, file: stat, level: own.to_owned() });
            }
        }
    }
    memory.current_bytes = read_value(&own.join("memory.usage_in_bytes"), warnings).flatten();
    memory.set_max(max, own, warnings);
    Ok(memory)
}

/// `getrlimit`'s soft limit, `None` for `RLIM_INFINITY` or where there is none.
pub(crate) fn rlimit(which: Rlimit) -> Option<u64> {
    #[cfg(unix)]
    {
        let resource = match which {
            Rlimit::As => libc::RLIMIT_AS,
            Rlimit::Data => libc::RLIMIT_DATA,
        };
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `limit` is a valid out-pointer for getrlimit.
        if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
            return None;
        }
        (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        let _ = which;
        None
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Rlimit {
    As,
    Data,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroup_lines() {
        let v2 = parse_proc_cgroup("0::/user.slice/user-0.slice/session-1.scope\n");
        assert_eq!(v2.v2.as_deref(), Some("/user.slice/user-0.slice/session-1.scope"));
        assert_eq!(v2.v1_memory, None);
        let v1 = parse_proc_cgroup("12:cpu,cpuacct:/a\n5:memory:/docker/abc\n1:name=systemd:/x\n");
        assert_eq!(v1.v1_memory.as_deref(), Some("/docker/abc"));
        assert_eq!(v1.v2, None);
        let hybrid = parse_proc_cgroup("4:memory:/m\n0::/u\n");
        assert_eq!((hybrid.v1_memory.as_deref(), hybrid.v2.as_deref()), (Some("/m"), Some("/u")));
        assert_eq!(parse_proc_cgroup("garbage\n\n"), CgroupPaths::default());
    }

    #[test]
    fn limit_values() {
        assert_eq!(parse_limit("max\n"), Ok(None));
        assert_eq!(parse_limit("536870912\n"), Ok(Some(536_870_912)));
        assert_eq!(parse_limit("0"), Ok(Some(0)));
        assert_eq!(parse_limit("9223372036854771712"), Ok(None));
        assert_eq!(parse_limit("18446744073709551615"), Ok(None));
        assert_eq!(parse_limit(""), Err(()));
        assert_eq!(parse_limit("lots"), Err(()));
        assert_eq!(parse_limit("-1"), Err(()));
    }
}
