//! The owner registry: names, the owner tree, retirement and id reuse. Never touched by the
//! allocation path; every operation here takes one `parking_lot` mutex.
//!
//! Owner ids are small integers (they are what a block's tag stores):
//!
//! | id | owner                 | notes                                                   |
//! |----|-----------------------|---------------------------------------------------------|
//! | 0  | the process           | parent of every top-level owner; never current          |
//! | 1  | `root`                | everything not attributed                               |
//! | 2  | `heapscope.overflow`  | registry full, stale handles, side-table overflow       |
//! | 3  | `heapscope.internal`  | heapscope's own bookkeeping                             |
//! | 4… | user owners           | top-level names, children, retained items               |
//!
//! An id's life: free → live → (retired →) free. A retired id is reused only once it holds
//! no live bytes, no owner names it as parent and no scope entered on it is still open, so
//! stale tags can never be charged to a newcomer, nor can a thread still inside the old
//! owner's scope; each reuse bumps the id's generation so old `Owner` handles are recognised.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Instant;

/// How many owner ids exist, including the four reserved ones.
pub(crate) const MAX_OWNERS: usize = 4096;
/// Levels from an owner up to, and including, the process.
pub(crate) const MAX_DEPTH: usize = 8;
/// Longest owner name, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 128;

pub(crate) const PROCESS: u16 = 0;
pub(crate) const ROOT: u16 = 1;
pub(crate) const OVERFLOW: u16 = 2;
pub(crate) const INTERNAL: u16 = 3;
pub(crate) const FIRST_USER_ID: u16 = 4;
pub(crate) const NO_PARENT: u16 = u16::MAX;

pub(crate) const ROOT_NAME: &str = "root";
pub(crate) const OVERFLOW_NAME: &str = "heapscope.overflow";
pub(crate) const INTERNAL_NAME: &str = "heapscope.internal";

/// What a retained item remembers about itself.
#[derive(Debug, Clone)]
pub(crate) struct ItemMeta {
    pub(crate) label: String,
    pub(crate) type_name: &'static str,
    pub(crate) created: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Full path, `parent/child`.
    pub(crate) path: String,
    pub(crate) parent: u16,
    pub(crate) generation: u32,
    pub(crate) retired: bool,
    pub(crate) item: Option<ItemMeta>,
    /// Totals (bytes, blocks) of descendants whose ids were freed: a parent's `total_*` keeps
    /// its children's history after they are gone.
    pub(crate) absorbed: (u64, u64),
    /// How many registered owners (live or retired) name this one as parent.
    children: u32,
}

#[derive(Debug)]
pub(crate) struct Registry {
    entries: Vec<Option<Entry>>,
    by_path: HashMap<String, u16>,
    free: Vec<u16>,
    retired: Vec<u16>,
    generations: Vec<u32>,
    next_item: u64,
    /// Numbers the names of retired owners renamed by [`Registry::rename_retired_holder_of`].
    next_retired: u64,
    /// The peak windows of phases and leak checks still open: here, so that they are opened,
    /// read and closed under this lock, and see every id freed (`free_id`).
    #[cfg(feature = "enabled")]
    pub(crate) windows: crate::counters::OpenWindows,
}

/// Without tracking (whose counters keep generations for the allocation path), the
/// generation of each id's live owner, or 0 while the id holds none (retired or free): lets
/// [`owner!`](crate::owner) see without the lock that its cached owner was retired, as it does
/// with tracking on. Set under the registry's lock; read `Relaxed`, as the counters' are.
#[cfg(not(feature = "enabled"))]
pub(crate) static LIVE_GENERATIONS: [std::sync::atomic::AtomicU32; MAX_OWNERS] =
    [const { std::sync::atomic::AtomicU32::new(0) }; MAX_OWNERS];

pub(crate) static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| {
    let mut entries = vec![None; MAX_OWNERS];
    let reserved = |path: &str, parent| {
        Some(Entry {
            path: path.to_owned(),
            parent,
            generation: 0,
            retired: false,
            item: None,
            absorbed: (0, 0),
            children: 0,
        })
    };
    entries[PROCESS as usize] = reserved("process", NO_PARENT);
    entries[ROOT as usize] = reserved(ROOT_NAME, PROCESS);
    entries[OVERFLOW as usize] = reserved(OVERFLOW_NAME, PROCESS);
    entries[INTERNAL as usize] = reserved(INTERNAL_NAME, PROCESS);
    let mut by_path = HashMap::new();
    for id in [ROOT, OVERFLOW, INTERNAL] {
        if let Some(e) = &entries[id as usize] {
            by_path.insert(e.path.clone(), id);
        }
    }
    // Hand out low ids first so counters touch as few pages as possible.
    let free = (FIRST_USER_ID..MAX_OWNERS as u16).rev().collect();
    Mutex::new(Registry {
        entries,
        by_path,
        free,
        retired: Vec::new(),
        generations: vec![0; MAX_OWNERS],
        next_item: 0,
        next_retired: 0,
        #[cfg(feature = "enabled")]
        windows: crate::counters::OpenWindows::new(),
    })
});

/// One past the highest id registered so far: scans for descendants stop there. The counters
/// keep it (readers of every owner's counters stop there too); without them, every id.
fn ids_high() -> u16 {
    #[cfg(feature = "enabled")]
    {
        crate::counters::IDS_HIGH.load(std::sync::atomic::Ordering::Relaxed).min(MAX_OWNERS) as u16
    }
    #[cfg(not(feature = "enabled"))]
    {
        MAX_OWNERS as u16
    }
}

/// Runs `f` with the registry locked, counting what it allocates as heapscope's own.
pub(crate) fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let _internal = crate::owner::enter_id(INTERNAL);
    f(&mut REGISTRY.lock())
}

pub(crate) fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_NAME_BYTES {
        "longer than 128 bytes"
    } else if name.contains('/') {
        "contains '/', which separates a child from its parent"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName { name: name.to_owned(), reason })
}

/// Whether id `id`, whose last registration got `registered`, is too near the end of its
/// generations to be reused: a reuse and a retirement take two more.
fn generation_exhausted(id: u16, registered: u32) -> bool {
    #[cfg(feature = "enabled")]
    let now = crate::counters::generation(id).max(registered);
    #[cfg(not(feature = "enabled"))]
    let now = {
        let _ = id;
        registered
    };
    now >= u32::MAX - 3
}

impl Registry {
    pub(crate) fn entry(&self, id: u16) -> Option<&Entry> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    /// The entry for `(id, generation)` if it is live (not retired), or `Stale`.
    pub(crate) fn live_entry(&self, id: u16, generation: u32) -> Result<&Entry> {
        match self.entry(id) {
            Some(e) if e.generation == generation && !e.retired => Ok(e),
            _ => Err(Error::Stale),
        }
    }

    /// `Ok` when `(id, generation)` names a live owner or a reserved one (whose handles
    /// never go stale), `Stale` otherwise.
    pub(crate) fn check_live(&self, id: u16, generation: u32) -> Result<()> {
        if id >= FIRST_USER_ID {
            self.live_entry(id, generation)?;
        }
        Ok(())
    }

    /// The entry for `(id, generation)`, live or retired (still holding bytes), or `Stale`.
    pub(crate) fn any_entry(&self, id: u16, generation: u32) -> Result<&Entry> {
        match self.entry(id) {
            Some(e) if e.generation == generation => Ok(e),
            _ => Err(Error::Stale),
        }
    }

    fn depth(&self, mut id: u16) -> usize {
        let mut depth = 0;
        while id != NO_PARENT && depth <= MAX_DEPTH {
            depth += 1;
            id = self.entry(id).map_or(NO_PARENT, |e| e.parent);
        }
        depth
    }

    /// Whether `ancestor` is `id` or one of its ancestors.
    pub(crate) fn is_ancestor(&self, ancestor: u16, mut id: u16) -> bool {
        for _ in 0..=MAX_DEPTH {
            if id == ancestor {
                return true;
            }
            match self.entry(id) {
                Some(e) if e.parent != NO_PARENT => id = e.parent,
                _ => return false,
            }
        }
        false
    }

    /// Returns the live owner at `parent/leaf` (or `leaf` at top level), registering it when
    /// new.
    pub(crate) fn get_or_register(&mut self, parent: u16, leaf: &str) -> Result<(u16, u32)> {
        validate_name(leaf)?;
        let path = self.child_path(parent, leaf);
        if let Some(&id) = self.by_path.get(&path) {
            return Ok((id, self.generations[id as usize]));
        }
        self.register(parent, path, None)
    }

    fn child_path(&self, parent: u16, leaf: &str) -> String {
        match self.entry(parent) {
            Some(p) if parent != PROCESS => format!("{}/{leaf}", p.path),
            _ => leaf.to_owned(),
        }
    }

    /// Registers a retained item's owner under the live owner `(parent, generation)` with a
    /// unique name: checked here, under the same lock, so that a parent retired and its id
    /// reused meanwhile never receives the item.
    pub(crate) fn register_item(
        &mut self,
        (parent, generation): (u16, u32),
        meta: ItemMeta,
    ) -> Result<(u16, u32)> {
        self.check_live(parent, generation)?;
        let path = self.fresh_item_path(parent);
        self.register(parent, path, Some(meta))
    }

    /// `parent/item#N` for the next `N` whose name no live owner has: a child the caller
    /// named `item#N` keeps its name (the item once took it, and `child("item#N")` found the
    /// item).
    fn fresh_item_path(&mut self, parent: u16) -> String {
        loop {
            self.next_item += 1;
            let path = self.child_path(parent, &format!("item#{}", self.next_item));
            if !self.by_path.contains_key(&path) {
                return path;
            }
        }
    }

    fn register(
        &mut self,
        parent: u16,
        path: String,
        item: Option<ItemMeta>,
    ) -> Result<(u16, u32)> {
        if parent != PROCESS && self.depth(parent) >= MAX_DEPTH {
            let parent = self.entry(parent).map_or_else(String::new, |e| e.path.clone());
            return Err(Error::TooDeep { parent, max_depth: MAX_DEPTH - 1 });
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => self.reclaim().ok_or(Error::RegistryFull { capacity: MAX_OWNERS })?,
        };
        self.rename_retired_holder_of(&path);
        #[cfg(feature = "enabled")]
        let generation = crate::counters::reset_for_new_owner(id, parent);
        #[cfg(not(feature = "enabled"))]
        let generation = self.generations[id as usize].wrapping_add(1);
        #[cfg(not(feature = "enabled"))]
        LIVE_GENERATIONS[id as usize].store(generation, std::sync::atomic::Ordering::Relaxed);
        self.generations[id as usize] = generation;
        self.by_path.insert(path.clone(), id);
        self.entries[id as usize] = Some(Entry {
            path,
            parent,
            generation,
            retired: false,
            item,
            absorbed: (0, 0),
            children: 0,
        });
        self.adjust_children(parent, 1);
        Ok((id, generation))
    }

    /// Frees every retired id that holds nothing, and returns one of them.
    fn reclaim(&mut self) -> Option<u16> {
        self.free_emptied_retired();
        self.free.pop()
    }

    /// Frees every retired id that holds nothing any more: its last block was freed, or its
    /// last scope ended, after its retirement. Neither can take this lock (a free is counted
    /// on the allocation path), so such ids wait for this: a full registry, or a reading of
    /// every owner, which must not list them (a snapshot lists retired owners only while they
    /// hold bytes).
    pub(crate) fn free_emptied_retired(&mut self) {
        let retired = std::mem::take(&mut self.retired);
        for id in retired {
            // Freed meanwhile, with a child freed before it in this loop (`free_id` frees a
            // retired parent its last child leaves): listed again, the id would be freed a
            // second time while its next owner lives.
            if self.entry(id).is_none_or(|e| !e.retired) {
                continue;
            }
            if self.holds_nothing(id) {
                self.free_id(id);
            } else {
                self.retired.push(id);
            }
        }
    }

    fn adjust_children(&mut self, id: u16, by: i32) {
        if let Some(Some(e)) = self.entries.get_mut(id as usize) {
            e.children = e.children.saturating_add_signed(by);
        }
    }

    fn holds_nothing(&self, id: u16) -> bool {
        if self.entry(id).is_none_or(|e| e.children > 0) {
            return false;
        }
        #[cfg(feature = "enabled")]
        {
            // A scope still open on it (entered before the retirement) would charge the
            // id's next owner.
            if crate::counters::open_scopes(id) > 0 {
                return false;
            }
            let raw = crate::counters::read_own(id);
            raw.live_bytes() == 0 && raw.live_blocks() == 0
        }
        #[cfg(not(feature = "enabled"))]
        true
    }

    /// Retires `(id, generation)`: its name is free again at once; the id itself once it holds
    /// nothing.
    pub(crate) fn retire(&mut self, id: u16, generation: u32) -> Result<()> {
        if id < FIRST_USER_ID {
            return Err(Error::Reserved { name: reserved_name(id) });
        }
        // Freed by an earlier retirement (it held nothing) and not reused since: retired
        // already, as one still holding bytes is (this once said `Stale`, so a second
        // retirement's answer hung on whether the owner happened to hold a byte).
        if self.entry(id).is_none_or(|e| e.generation != generation)
            && self.generation(id) == generation
        {
            return Ok(());
        }
        let entry = self.any_entry(id, generation)?;
        if entry.retired {
            return Ok(());
        }
        // From now on the old handles enter the overflow owner.
        #[cfg(feature = "enabled")]
        crate::counters::retire(id);
        #[cfg(not(feature = "enabled"))]
        LIVE_GENERATIONS[id as usize].store(0, std::sync::atomic::Ordering::Relaxed);
        let path = entry.path.clone();
        self.by_path.remove(&path);
        if let Some(e) = self.entries[id as usize].as_mut() {
            e.retired = true;
            e.item = None;
        }
        if self.holds_nothing(id) {
            self.free_id(id);
        } else {
            self.retired.push(id);
        }
        Ok(())
    }

    /// Frees an id that holds nothing, handing its totals (and those it absorbed) to its
    /// parent, and what it did in each open peak window to that window.
    fn free_id(&mut self, id: u16) {
        let Some(entry) = self.entries.get_mut(id as usize).and_then(Option::take) else { return };
        #[cfg(feature = "enabled")]
        let (bytes, blocks) = {
            let raw = crate::counters::read_own(id);
            (raw.alloc_bytes, raw.alloc_blocks)
        };
        #[cfg(not(feature = "enabled"))]
        let (bytes, blocks) = (0, 0);
        // The id may be reused before an open phase ends: the phase keeps what it did.
        #[cfg(feature = "enabled")]
        self.windows.depart(
            id,
            entry.generation,
            &entry.path,
            bytes.wrapping_add(entry.absorbed.0),
        );
        if let Some(Some(parent)) = self.entries.get_mut(entry.parent as usize) {
            parent.children = parent.children.saturating_sub(1);
            if entry.parent >= FIRST_USER_ID {
                parent.absorbed.0 = parent.absorbed.0.wrapping_add(bytes + entry.absorbed.0);
                parent.absorbed.1 = parent.absorbed.1.wrapping_add(blocks + entry.absorbed.1);
            }
        }
        // An id whose generation is about to wrap is never handed out again: a handle kept
        // from an earlier owner of the id would then read as the new one. The free list
        // hands out the id freed last, so items built and dropped one at a time all take one
        // id, whose generation (two steps per reuse) wraps after 2^31 items: under three
        // days at 10 000 items a second. Retiring ids instead makes that 4 092 times longer.
        if !generation_exhausted(id, self.generations[id as usize]) {
            self.free.push(id);
        }
        // A retired parent may hold nothing any more now that this child is gone.
        self.free_if_emptied(entry.parent);
    }

    /// Frees `id` if it is a retired user owner that holds nothing any more: its last child
    /// was freed or moved away.
    fn free_if_emptied(&mut self, id: u16) {
        if id >= FIRST_USER_ID
            && self.entry(id).is_some_and(|e| e.retired)
            && self.holds_nothing(id)
        {
            self.retired.retain(|&r| r != id);
            self.free_id(id);
        }
    }

    /// Moves `(id, generation)` under `new_parent`. Returns the previous parent.
    pub(crate) fn reparent(&mut self, id: u16, generation: u32, new_parent: u16) -> Result<u16> {
        if id < FIRST_USER_ID {
            return Err(Error::Reserved { name: reserved_name(id) });
        }
        let entry = self.live_entry(id, generation)?.clone();
        if self.is_ancestor(id, new_parent) {
            let new_parent = self.entry(new_parent).map_or_else(String::new, |e| e.path.clone());
            return Err(Error::WouldCycle { owner: entry.path, new_parent });
        }
        let height = self.subtree_height(id);
        if new_parent != PROCESS && self.depth(new_parent) + height > MAX_DEPTH {
            let parent = self.entry(new_parent).map_or_else(String::new, |e| e.path.clone());
            return Err(Error::TooDeep { parent, max_depth: MAX_DEPTH - 1 });
        }
        let leaf = entry.path.rsplit('/').next().unwrap_or(&entry.path).to_owned();
        let mut new_path = self.child_path(new_parent, &leaf);
        // Another live owner of that name (a child the caller named `item#N`) keeps it: the
        // item takes a fresh number. A retired one is renamed, as by a registration.
        if self.by_path.get(&new_path).is_some_and(|&other| other != id) {
            new_path = self.fresh_item_path(new_parent);
        }
        self.rename_retired_holder_of(&new_path);
        self.rename_subtree(id, &entry.path, &new_path);
        if let Some(e) = self.entries[id as usize].as_mut() {
            e.parent = new_parent;
        }
        self.adjust_children(entry.parent, -1);
        self.adjust_children(new_parent, 1);
        #[cfg(feature = "enabled")]
        {
            let live = self.subtree_live(id);
            crate::counters::move_owner(id, entry.parent, new_parent, live);
            // The new ancestors now hold the item: their peaks are at least what they hold.
            let mut ancestor = new_parent;
            for _ in 0..MAX_DEPTH {
                if ancestor == PROCESS || ancestor == NO_PARENT {
                    break;
                }
                crate::counters::raise_peak_to(ancestor, self.subtree_live(ancestor));
                ancestor = self.entry(ancestor).map_or(NO_PARENT, |e| e.parent);
            }
        }
        // A retired old parent whose last child this was holds nothing any more, as when
        // that child is freed: it once stayed registered, listed with 0 bytes, and became a
        // "(retired #N)" twin when its name was registered again.
        self.free_if_emptied(entry.parent);
        Ok(entry.parent)
    }

    /// Renames `id` (now at `old_path`) and every descendant to start with `new_path`.
    fn rename_subtree(&mut self, id: u16, old_path: &str, new_path: &str) {
        for other in 0..ids_high() {
            if !self.is_ancestor(id, other) {
                continue;
            }
            if let Some(e) = self.entries[other as usize].as_mut() {
                let renamed = format!("{new_path}{}", e.path.get(old_path.len()..).unwrap_or(""));
                if !e.retired {
                    self.by_path.remove(&e.path);
                    self.by_path.insert(renamed.clone(), other);
                }
                e.path = renamed;
            }
        }
    }

    /// A retired owner that still holds bytes keeps its name until a new owner takes it:
    /// then it (and its descendants) become `<name> (retired #N)`, so that snapshots, diffs
    /// and leak checks never see two owners of one name, and a new parent's `child("x")`
    /// never finds the old parent's child. Before 2026-12-05 both owners kept the name: a
    /// diff compared both with one baseline, and the re-created parent's child was the
    /// retired one's, whose bytes its stats missed.
    fn rename_retired_holder_of(&mut self, path: &str) {
        let Some(&id) =
            self.retired.iter().find(|&&id| self.entry(id).is_some_and(|e| e.path == path))
        else {
            return;
        };
        // A number whose name no owner has, live or retired: a program may name an owner
        // `x (retired #1)` itself (until 2026-12-05 the retired `x` took that name too, and
        // two owners shared it).
        let renamed = loop {
            self.next_retired += 1;
            let renamed = format!("{path} (retired #{})", self.next_retired);
            if !self.by_path.contains_key(&renamed)
                && !self.retired.iter().any(|&r| self.entry(r).is_some_and(|e| e.path == renamed))
            {
                break renamed;
            }
        };
        self.rename_subtree(id, path, &renamed);
    }

    fn subtree_height(&self, id: u16) -> usize {
        (0..ids_high())
            .filter(|&d| self.is_ancestor(id, d))
            .map(|d| {
                let mut h = 1;
                let mut cur = d;
                while cur != id && h <= MAX_DEPTH {
                    cur = self.entry(cur).map_or(id, |e| e.parent);
                    h += 1;
                }
                h
            })
            .max()
            .unwrap_or(1)
    }

    /// Every registered id with its entry (live and retired), in id order, read in place.
    #[cfg_attr(not(feature = "enabled"), allow(dead_code))]
    pub(crate) fn all_refs(&self) -> Vec<(u16, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(id, e)| Some((id as u16, e.as_ref()?)))
            .collect()
    }

    /// `id` and all its descendants.
    #[cfg_attr(not(feature = "enabled"), allow(dead_code))]
    pub(crate) fn subtree(&self, id: u16) -> Vec<(u16, (u64, u64))> {
        // Most owners have no children: their subtree is themselves, without a scan of every
        // id (which made `stats()` cost about 15 µs).
        if let Some(e) = self.entry(id).filter(|e| e.children == 0) {
            return vec![(id, e.absorbed)];
        }
        (0..ids_high())
            .filter_map(|d| {
                let e = self.entry(d)?;
                self.is_ancestor(id, d).then_some((d, e.absorbed))
            })
            .collect()
    }

    /// Every live (not retired) retained item's id, entry and metadata, in id order, read in
    /// place: what lists items ranks them here without copying the registry.
    pub(crate) fn live_items(&self) -> impl Iterator<Item = (u16, &Entry, &ItemMeta)> {
        (0..ids_high()).filter_map(|id| {
            let e = self.entry(id).filter(|e| !e.retired)?;
            Some((id, e, e.item.as_ref()?))
        })
    }

    /// Exact live bytes of `id` and its descendants: its own counters when it has no
    /// children (most items), else one cut over its subtree.
    #[cfg(feature = "enabled")]
    pub(crate) fn live_bytes(&self, id: u16) -> u64 {
        match self.entry(id) {
            Some(e) if e.children == 0 => crate::counters::read_own(id).live_bytes(),
            _ => self.subtree_live(id),
        }
    }

    /// Exact live bytes of `id` and its descendants.
    #[cfg(feature = "enabled")]
    fn subtree_live(&self, id: u16) -> u64 {
        let ids: Vec<u16> = self.subtree(id).iter().map(|(d, _)| *d).collect();
        // One cut, as `owner_stats` reads a subtree.
        crate::counters::read_owns(&ids).iter().map(crate::counters::Raw::live_bytes).sum()
    }

    pub(crate) fn generation(&self, id: u16) -> u32 {
        self.generations.get(id as usize).copied().unwrap_or(0)
    }
}

pub(crate) fn reserved_name(id: u16) -> &'static str {
    match id {
        PROCESS => "process",
        ROOT => ROOT_NAME,
        OVERFLOW => OVERFLOW_NAME,
        _ => INTERNAL_NAME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("history").is_ok());
        assert!(validate_name("tool results 2").is_ok());
        for bad in ["", "a/b", "tab\there"] {
            assert!(matches!(validate_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        assert!(validate_name(&"x".repeat(128)).is_ok());
        assert!(validate_name(&"x".repeat(129)).is_err());
    }

    /// An id whose generation would wrap is not reused: its handles from the first owner
    /// would read as the owner after the wrap.
    #[test]
    fn an_id_at_the_end_of_its_generations_is_not_reused() {
        with(|r| {
            let set = |r: &mut Registry, id: u16, generation: u32| {
                r.generations[id as usize] = generation;
                if let Some(e) = r.entries[id as usize].as_mut() {
                    e.generation = generation;
                }
                #[cfg(feature = "enabled")]
                crate::counters::set_generation_for_tests(id, generation);
            };
            // Far from the end: the id freed last is the next one handed out.
            let (id, _) = r.get_or_register(PROCESS, "unit_generations").unwrap();
            set(r, id, u32::MAX - 10);
            r.retire(id, u32::MAX - 10).unwrap();
            let (again, _) = r.get_or_register(PROCESS, "unit_generations").unwrap();
            assert_eq!(again, id, "reused");
            // At the end: retired for good.
            set(r, again, u32::MAX - 3);
            r.retire(again, u32::MAX - 3).unwrap();
            assert!(!r.free.contains(&id), "an id about to wrap went back to the free list");
            let (other, _) = r.get_or_register(PROCESS, "unit_generations").unwrap();
            assert_ne!(other, id);
            let generation = r.generation(other);
            r.retire(other, generation).unwrap();
        });
    }

    #[test]
    fn a_renamed_retired_owner_never_takes_a_live_owners_name() {
        with(|r| {
            let (old, generation) = r.get_or_register(PROCESS, "unit_renamed").unwrap();
            // A child keeps the retired owner registered, under its name, as bytes would.
            r.get_or_register(old, "kept").unwrap();
            r.retire(old, generation).unwrap();
            // A live owner already has the name the next renaming would give.
            let next = format!("unit_renamed (retired #{})", r.next_retired + 1);
            let (live, _) = r.get_or_register(PROCESS, &next).unwrap();
            let (new, _) = r.get_or_register(PROCESS, "unit_renamed").unwrap();
            let paths: Vec<String> =
                r.all_refs().into_iter().map(|(_, e)| e.path.clone()).collect();
            assert_eq!(paths.iter().filter(|p| **p == next).count(), 1, "{paths:?}");
            assert_eq!(r.entry(live).map(|e| e.path.as_str()), Some(next.as_str()));
            assert_eq!(r.entry(new).map(|e| e.path.as_str()), Some("unit_renamed"));
            let renamed = r.entry(old).map(|e| e.path.clone()).unwrap();
            assert!(renamed.starts_with("unit_renamed (retired #"), "{renamed}");
            assert_ne!(renamed, next);
        });
    }
}
