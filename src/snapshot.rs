//! Every owner's numbers at one moment, and what changed between two moments.

use crate::stats::OwnerStats;
use crate::units::signed_change;
use serde::{Deserialize, Serialize};

/// One owner in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OwnerEntry {
    /// Full name (`parent/child` for children).
    pub name: String,
    /// The parent's full name; `None` for top-level owners.
    pub parent: Option<String>,
    /// Retired but still holding bytes.
    pub retired: bool,
    /// Numbers including the owner's descendants.
    pub stats: OwnerStats,
    /// Live bytes of this owner alone, without descendants.
    pub own_live_bytes: u64,
}

/// Every owner's stats at one moment: sorted by name, so two captures of the same state
/// serialise identically.
///
/// ```
/// # heapscope::install!();
/// use heapscope::Snapshot;
///
/// let history = heapscope::Owner::named("history");
/// let turns = history.in_scope(|| vec![String::from("hi"); 10]);
/// let snap = Snapshot::capture();
/// let json = serde_json::to_string(&snap).unwrap();
/// let back: Snapshot = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, snap);
/// # drop(turns);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// Whether the numbers are real (see [`is_tracking`](crate::is_tracking)); when `false`
    /// every number is zero and `owners` is empty.
    pub tracking: bool,
    /// Capture time, milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// The whole process: every owner and root together. Its live bytes and blocks are the
    /// sum of the top-level `owners` as read (root and the reserved owners are top-level);
    /// its totals, which also keep the allocations of owners gone since, and its peak are the
    /// process's (see [`global_stats`](crate::global_stats)).
    pub total: OwnerStats,
    /// Every registered owner (and retired ones still holding bytes), sorted by name.
    pub owners: Vec<OwnerEntry>,
    /// Exact-class blocks charged to `heapscope.overflow` because the side table had no
    /// room for their owner, since the process started.
    pub side_table_overflows: u64,
}

impl Snapshot {
    /// Reads every owner's counters.
    ///
    /// ```
    /// # heapscope::install!();
    /// let snap = heapscope::Snapshot::capture();
    /// assert!(snap.owners.iter().all(|o| o.stats.peak_bytes >= o.stats.live_bytes));
    /// ```
    pub fn capture() -> Snapshot {
        Snapshot::capture_keyed().0
    }

    /// [`Snapshot::capture`], with which owner each entry is: `keys[i]` is `owners[i]`'s.
    /// Phases and leak checks pair two captures by these, not by name (see [`OwnerKey`]).
    pub(crate) fn capture_keyed() -> (Snapshot, Vec<OwnerKey>) {
        // The snapshot's own allocations are heapscope's, not the caller's current owner's.
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let taken_at_unix_ms = crate::clock::unix_ms();
        let tracking = crate::is_tracking();
        let (owners, keys) = if tracking { capture_owners() } else { (Vec::new(), Vec::new()) };
        #[cfg(feature = "enabled")]
        let side_table_overflows = crate::alloc::side_table::overflow_count();
        #[cfg(not(feature = "enabled"))]
        let side_table_overflows = 0;
        let mut total = crate::global_stats();
        if tracking {
            // Live figures from the owners' reading, not from `global_stats` a moment later:
            // the reading's own working memory (heapscope.internal's) was live when the owners
            // were read and is freed by then, so the total once stood below its top-level
            // owners' sum (by 1.4 KB and 3 blocks, `tests/cross_api.rs`). A freed top-level
            // owner held nothing, so this is every live byte; totals and the peak stay the
            // process's counters (which keep freed owners' allocations).
            let top = owners.iter().filter(|o| o.parent.is_none());
            total.live_bytes = top.clone().map(|o| o.stats.live_bytes).sum();
            total.live_blocks = top.map(|o| o.stats.live_blocks).sum();
            total.peak_bytes = total.peak_bytes.max(total.live_bytes);
        }
        let snapshot = Snapshot { tracking, taken_at_unix_ms, total, owners, side_table_overflows };
        (snapshot, keys)
    }

    /// The entry of the owner with this full name.
    ///
    /// ```
    /// # heapscope::install!();
    /// let snap = heapscope::Snapshot::capture();
    /// # if snap.tracking {
    /// assert!(snap.owner("root").is_some());
    /// # }
    /// ```
    pub fn owner(&self, name: &str) -> Option<&OwnerEntry> {
        // Sorted by name as captured; a snapshot read from a file need not be (edited by
        // hand, or written by another tool), so a miss looks through all of them.
        self.owners
            .binary_search_by(|o| o.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.owners.get(i))
            .or_else(|| self.owners.iter().find(|o| o.name == name))
    }

    /// Per-owner growth from `baseline` to `self`, largest growth first.
    ///
    /// Owners are paired by full name, the only identity a snapshot carries (it may come from
    /// a file or another process). A name is not an owner, though: an item moved by
    /// [`Retained::transfer_to`](crate::Retained::transfer_to) between the two snapshots is
    /// listed as its old name gone and its new name new, with its lifetime's allocations as
    /// churn; a name retired and registered again, or taken from a retired owner still holding
    /// bytes (renamed `<name> (retired #N)`), pairs the newcomer with the old owner's
    /// baseline. [`phase`](crate::phase), [`leak_check`](crate::testing::leak_check) and
    /// the failure table of [`assert_owner_growth!`](crate::assert_owner_growth), which take
    /// both readings in one process, follow owners by identity instead.
    ///
    /// Against a baseline saved by an earlier run, items pair by chance: their names
    /// (`parent/item#N`) number the items built in that process, so they change with what
    /// else ran before (a test's five items were `history/item#1` to `#5` run alone and `#11`
    /// to `#15` beside two other tests, and the diff listed five gone and five new). Compare the
    /// owners your code names, whose figures include their items', and leave items out.
    ///
    /// ```
    /// # heapscope::install!();
    /// let base = heapscope::Snapshot::capture();
    /// let cache = heapscope::Owner::named("diff_doc_cache");
    /// let v = cache.in_scope(|| vec![0u8; 10_000]);
    /// let diff = heapscope::Snapshot::capture().diff(&base);
    /// # if diff.tracking {
    /// assert_eq!(diff.owners[0].name, "diff_doc_cache");
    /// # }
    /// # drop(v);
    /// ```
    pub fn diff(&self, baseline: &Snapshot) -> SnapshotDiff {
        let mut owners: Vec<OwnerDelta> = self
            .owners
            .iter()
            .map(|after| {
                let before = baseline.owner(&after.name).map(|o| o.stats).unwrap_or_default();
                OwnerDelta::between(&after.name, &before, &after.stats)
            })
            .collect();
        for gone in &baseline.owners {
            if self.owner(&gone.name).is_none() {
                owners.push(OwnerDelta::between(&gone.name, &gone.stats, &OwnerStats::default()));
            }
        }
        self.diff_of(baseline, owners)
    }

    /// [`Snapshot::diff`] of two captures of this process, pairing owners by which owner
    /// each is (`keys[i]` is `owners[i]`'s, as [`Snapshot::capture_keyed`] gives them), not
    /// by name: an owner renamed `<name> (retired #N)` between them keeps its baseline, and
    /// the newcomer that took its name starts from nothing. Each row has the owner's name at
    /// this capture (at the baseline's for owners gone since).
    pub(crate) fn diff_keyed(
        &self,
        keys: &[OwnerKey],
        baseline: &Snapshot,
        baseline_keys: &[OwnerKey],
    ) -> SnapshotDiff {
        use std::collections::{HashMap, HashSet};
        let before: HashMap<&OwnerKey, &OwnerEntry> =
            baseline_keys.iter().zip(&baseline.owners).collect();
        let present: HashSet<&OwnerKey> = keys.iter().collect();
        let mut owners: Vec<OwnerDelta> = keys
            .iter()
            .zip(&self.owners)
            .map(|(key, after)| {
                let before = before.get(key).map(|o| o.stats).unwrap_or_default();
                OwnerDelta::between(&after.name, &before, &after.stats)
            })
            .collect();
        for (key, gone) in baseline_keys.iter().zip(&baseline.owners) {
            if !present.contains(key) {
                owners.push(OwnerDelta::between(&gone.name, &gone.stats, &OwnerStats::default()));
            }
        }
        self.diff_of(baseline, owners)
    }

    /// The diff from `baseline` with these owners' deltas, sorted.
    fn diff_of(&self, baseline: &Snapshot, mut owners: Vec<OwnerDelta>) -> SnapshotDiff {
        owners.sort_by(|a, b| {
            b.live_bytes_delta.cmp(&a.live_bytes_delta).then_with(|| a.name.cmp(&b.name))
        });
        SnapshotDiff {
            tracking: self.tracking && baseline.tracking,
            elapsed_ms: self.taken_at_unix_ms.saturating_sub(baseline.taken_at_unix_ms),
            total: OwnerDelta::between("total", &baseline.total, &self.total),
            owners,
        }
    }
}

/// Which owner an entry is: its id and which holder of the id (the generation the registry
/// gave it at registration, which neither retiring nor renaming changes). A name is not an
/// identity: a retired owner still holding bytes becomes `<name> (retired #N)` when a new
/// owner takes its name, [`Retained::transfer_to`](crate::Retained::transfer_to) renames an
/// item, and a name retired and registered again is another owner's. Crate-internal: the
/// snapshot's JSON names owners only, so that it stays comparable across processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct OwnerKey {
    pub(crate) id: u16,
    pub(crate) generation: u32,
}

#[cfg(feature = "enabled")]
fn capture_owners() -> (Vec<OwnerEntry>, Vec<OwnerKey>) {
    use crate::counters::Raw;
    use crate::registry::PROCESS;

    // Built under the registry's lock from its entries in place: each name is copied once,
    // into its entry. The reading once copied every entry (path, label) and then every path
    // again into a map of parents' names, and sorted pairs it then unzipped into two more
    // vectors: with 4 000 owners a report peaked 2.8 MB above what heapscope held
    // (`tests/diag_memory.rs`).
    crate::registry::with(|r| {
        let Registered { registry, mut entries, own, subtree, peaks } = read_registered_locked(r);
        entries.retain(|(id, _)| *id != PROCESS);
        entries.sort_unstable_by(|(_, a), (_, b)| a.path.cmp(&b.path));
        let mut owners = Vec::with_capacity(entries.len());
        let mut keys = Vec::with_capacity(entries.len());
        for (id, e) in &entries {
            let raw = subtree.get(*id).copied().unwrap_or_default();
            let parent = (e.parent != PROCESS)
                .then(|| registry.entry(e.parent).map(|p| p.path.clone()))
                .flatten();
            owners.push(OwnerEntry {
                name: e.path.clone(),
                parent,
                retired: e.retired,
                stats: OwnerStats::from_raw(&raw, peaks.get(*id).copied().unwrap_or(0)),
                own_live_bytes: own.get(*id).map_or(0, Raw::live_bytes),
            });
            keys.push(OwnerKey { id: *id, generation: e.generation });
        }
        (owners, keys)
    })
}

/// Values by owner id, in a table as long as the highest id read: what a reading of every
/// owner keeps per owner, 8 to 32 bytes an id, where a hash map took about twice that.
#[cfg(feature = "enabled")]
#[derive(Debug)]
pub(crate) struct ById<T>(Vec<T>);

#[cfg(feature = "enabled")]
impl<T: Default + Clone> ById<T> {
    fn for_ids(entries: &[(u16, &crate::registry::Entry)]) -> ById<T> {
        let len = entries.iter().map(|(id, _)| *id as usize + 1).max().unwrap_or(0);
        ById(vec![T::default(); len])
    }

    /// `id`'s value (the default for an id not read).
    pub(crate) fn get(&self, id: u16) -> Option<&T> {
        self.0.get(id as usize)
    }

    fn get_mut(&mut self, id: u16) -> Option<&mut T> {
        self.0.get_mut(id as usize)
    }
}

/// Every registered owner's entry with its counters, read while the registry is locked (see
/// [`read_registered`]); the entries are the registry's own, borrowed for as long as it stays
/// locked.
#[cfg(feature = "enabled")]
pub(crate) struct Registered<'r> {
    /// The registry read.
    pub(crate) registry: &'r crate::registry::Registry,
    /// Every registered owner, in id order.
    pub(crate) entries: Vec<(u16, &'r crate::registry::Entry)>,
    /// Each owner's own counters.
    pub(crate) own: ById<crate::counters::Raw>,
    /// Each owner's subtree's counters (see [`subtree_raws`]).
    pub(crate) subtree: ById<crate::counters::Raw>,
    /// Each owner's peak, after the reading lifted it to the subtree's live bytes.
    pub(crate) peaks: ById<u64>,
}

/// Reads every registered owner while the registry is locked, and keeps each subtree's live
/// size in its peak. Locked because an id listed, then retired, freed and reused before its
/// counters were read (or its peak lifted) would mix its next owner's bytes into what is
/// reported for the listed one, and lift peaks with them. The allocation path never takes
/// the lock; registering and retiring owners waits for the reading. Retired owners emptied
/// since their retirement (their last block freed, on any thread) are freed first: a
/// snapshot lists retired owners only while they hold bytes. A phase reads its start and
/// opens its peak window under one lock, so that no owner it read is freed before the window
/// opens.
#[cfg(feature = "enabled")]
pub(crate) fn read_registered_locked(r: &mut crate::registry::Registry) -> Registered<'_> {
    use crate::counters;
    r.free_emptied_retired();
    let registry: &crate::registry::Registry = r;
    let entries = registry.all_refs();
    let (own, subtree) = subtree_raws(&entries);
    let mut peaks = ById::for_ids(&entries);
    for (id, _) in entries.iter().filter(|(id, _)| *id != crate::registry::PROCESS) {
        let live = subtree.get(*id).map_or(0, counters::Raw::live_bytes);
        // A live size read is a fact: keep it, so later readings never show less.
        counters::raise_peak_to(*id, live);
        if let Some(peak) = peaks.get_mut(*id) {
            *peak = counters::read_peak(*id);
        }
    }
    Registered { registry, entries, own, subtree, peaks }
}

/// Every registered owner's own counters, and its subtree's (own plus descendants' plus the
/// totals of freed descendants), in one pass over the registry's entries.
#[cfg(feature = "enabled")]
pub(crate) fn subtree_raws(
    entries: &[(u16, &crate::registry::Entry)],
) -> (ById<crate::counters::Raw>, ById<crate::counters::Raw>) {
    use crate::counters::{self, Raw};
    use crate::registry::{NO_PARENT, PROCESS};

    let mut parents: ById<u16> = ById::for_ids(entries);
    for (id, e) in entries {
        if let Some(p) = parents.get_mut(*id) {
            *p = e.parent;
        }
    }
    let parent_of = |id: u16| match entries.binary_search_by_key(&id, |(id, _)| *id) {
        Ok(_) => parents.get(id).copied(),
        Err(_) => None,
    };
    // Each tree of owners (a top-level owner and its descendants) in one cut, so that a
    // block moved between two owners of a tree while they are read is counted once in the
    // tree's subtrees (see `counters::read_cut`). A cut per tree rather than one for every
    // owner: a cut reads each counter line twice, and over every owner at once the second
    // pass no longer found the lines in cache (a snapshot of 1 200 owners took 700 µs
    // instead of 450).
    let top_of = |mut id: u16| {
        for _ in 0..crate::registry::MAX_DEPTH {
            match parent_of(id) {
                Some(parent) if parent != PROCESS && parent != NO_PARENT => id = parent,
                _ => break,
            }
        }
        id
    };
    let mut by_tree: Vec<(u16, u16)> = entries.iter().map(|(id, _)| (top_of(*id), *id)).collect();
    by_tree.sort_unstable();
    let mut own: ById<Raw> = ById::for_ids(entries);
    let mut ids: Vec<u16> = Vec::new();
    let mut raws: Vec<Raw> = Vec::new();
    for tree in by_tree.chunk_by(|a, b| a.0 == b.0) {
        ids.clear();
        ids.extend(tree.iter().map(|&(_, id)| id));
        raws.clear();
        raws.resize(ids.len(), Raw::default());
        counters::read_cut(&ids, &mut raws);
        for (id, raw) in ids.iter().zip(&raws) {
            if let Some(slot) = own.get_mut(*id) {
                *slot = *raw;
            }
        }
    }
    let mut subtree: ById<Raw> = ById::for_ids(entries);
    for (id, entry) in entries {
        let mut raw = own.get(*id).copied().unwrap_or_default();
        raw.add_absorbed(entry.absorbed);
        let mut cur = *id;
        for _ in 0..crate::registry::MAX_DEPTH {
            if cur == PROCESS || cur == NO_PARENT {
                break;
            }
            if let Some(slot) = subtree.get_mut(cur) {
                slot.add(&raw);
            }
            cur = parent_of(cur).unwrap_or(NO_PARENT);
        }
    }
    (own, subtree)
}

#[cfg(not(feature = "enabled"))]
fn capture_owners() -> (Vec<OwnerEntry>, Vec<OwnerKey>) {
    (Vec::new(), Vec::new())
}

/// How one owner's numbers moved between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OwnerDelta {
    /// Full owner name.
    pub name: String,
    /// Live bytes at the baseline.
    pub before_live_bytes: u64,
    /// Live bytes at the later snapshot.
    pub after_live_bytes: u64,
    /// `after - before` live bytes (negative when the owner shrank), clamped to `i64`
    /// (snapshots read from files may hold more than `i64::MAX`).
    pub live_bytes_delta: i64,
    /// `after - before` live blocks, clamped to `i64`.
    pub live_blocks_delta: i64,
    /// Bytes allocated between the two snapshots (churn).
    pub allocated_bytes: u64,
    /// Peak at the later snapshot.
    pub peak_bytes: u64,
}

impl OwnerDelta {
    fn between(name: &str, before: &OwnerStats, after: &OwnerStats) -> OwnerDelta {
        OwnerDelta {
            name: name.to_owned(),
            before_live_bytes: before.live_bytes,
            after_live_bytes: after.live_bytes,
            live_bytes_delta: signed_change(before.live_bytes, after.live_bytes),
            live_blocks_delta: signed_change(before.live_blocks, after.live_blocks),
            allocated_bytes: after.total_bytes.saturating_sub(before.total_bytes),
            peak_bytes: after.peak_bytes,
        }
    }
}

/// What changed between two snapshots; see [`Snapshot::diff`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SnapshotDiff {
    /// Both snapshots had real numbers.
    pub tracking: bool,
    /// Time between the two snapshots.
    pub elapsed_ms: u64,
    /// The whole process.
    pub total: OwnerDelta,
    /// Every owner in either snapshot, largest live growth first.
    pub owners: Vec<OwnerDelta>,
}

impl std::fmt::Display for SnapshotDiff {
    /// A table of owners whose live bytes or allocations moved, largest growth first.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<40} {:>14} {:>14} {:>14}", "owner", "live before", "live after", "growth")?;
        for d in std::iter::once(&self.total)
            .chain(self.owners.iter().filter(|d| d.live_bytes_delta != 0 || d.allocated_bytes != 0))
        {
            writeln!(
                f,
                "{:<40} {:>14} {:>14} {:>+14}",
                d.name, d.before_live_bytes, d.after_live_bytes, d.live_bytes_delta
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_finds_entries_of_an_unsorted_snapshot_read_from_a_file() {
        let mut snapshot = Snapshot::capture();
        for name in ["zeta", "alpha", "mid"] {
            snapshot.owners.push(OwnerEntry {
                name: name.to_owned(),
                parent: None,
                retired: false,
                stats: OwnerStats::default(),
                own_live_bytes: 0,
            });
        }
        let text = serde_json::to_string(&snapshot).unwrap();
        let read: Snapshot = serde_json::from_str(&text).unwrap();
        for name in ["zeta", "alpha", "mid"] {
            assert_eq!(read.owner(name).map(|o| o.name.as_str()), Some(name));
        }
        assert!(read.owner("absent").is_none());
    }

    /// A snapshot holding `bytes` live bytes in `bytes` blocks, in the total and in one owner.
    fn holding(bytes: u64) -> Snapshot {
        let stats = OwnerStats {
            live_bytes: bytes,
            live_blocks: bytes,
            peak_bytes: bytes,
            total_bytes: bytes,
            total_blocks: bytes,
        };
        let big = OwnerEntry {
            name: "big".to_owned(),
            parent: None,
            retired: false,
            stats,
            own_live_bytes: bytes,
        };
        Snapshot {
            tracking: true,
            taken_at_unix_ms: 1,
            total: stats,
            owners: vec![big],
            side_table_overflows: 0,
        }
    }

    #[test]
    fn a_diff_beyond_i64_is_clamped_with_the_sign_of_the_change() {
        // Snapshots read from files may hold anything up to u64::MAX: `as i64` turned 2^63
        // into a negative number and the subtraction overflowed (a panic in debug builds).
        let (small, huge) = (holding(1), holding(1 << 63));
        let grew = huge.diff(&small);
        for d in [&grew.total, &grew.owners[0]] {
            assert_eq!((d.live_bytes_delta, d.live_blocks_delta), (i64::MAX, i64::MAX), "{d:?}");
        }
        let shrank = holding(0).diff(&holding(u64::MAX));
        for d in [&shrank.total, &shrank.owners[0]] {
            assert_eq!((d.live_bytes_delta, d.live_blocks_delta), (i64::MIN, i64::MIN), "{d:?}");
        }
    }
}
