//! The owner of blocks that have no slack for a trailer, kept by address.
//!
//! Blocks of more than 256 bytes (every exact class from 320 B up) go first to the
//! [`direct_map`], where an owner is one plain store at an address-indexed entry. What it
//! cannot hold (small over-aligned blocks, blocks whose region found no leaf left, odd
//! sizes like 0) goes to the hashed levels below; a lookup tries the direct map first for
//! blocks of that size, and the hashed levels when it says "not here".
//!
//! The hashed levels are fixed, lock-free open-addressing tables of `AtomicU64` entries in static memory (`.bss`,
//! touched only where used). An entry packs the block address and its owner:
//!
//! | value                 | meaning                                        |
//! |-----------------------|------------------------------------------------|
//! | `0`                   | never used                                     |
//! | `1`                   | tombstone: was used, free again                |
//! | `addr << 16 \| owner` | the block at `addr` (below 2^48) is `owner`'s  |
//!
//! Inserting claims the first empty-or-tombstone slot within [`PROBE_LIMIT`] of the home slot
//! with one compare-and-swap. Removing finds the entry within the same window and stores a
//! tombstone: only the thread freeing that block touches its entry, so a plain store is
//! enough. We never search for an address that is not in the table (a block's address is in
//! it from its allocation until its free), so tombstones never lengthen a search: a lookup
//! stops at its entry, which was placed at the first free slot when it was inserted.
//!
//! There are five tables of growing size; an entry goes into the first whose window has a
//! free slot, and a lookup tries them in the same order. When no window has room (about
//! 5 million such blocks live at once: a level takes 98 % of its slots before it refuses the
//! first), insertion fails and the caller charges the block to the overflow owner; the free
//! then also misses and credits the overflow owner, so totals stay exact.
//!
//! A block is removed *before* it is handed back to the inner allocator, so a concurrent
//! allocation that receives the same address cannot meet the stale entry.
//!
//! Orderings are `Relaxed`: the happens-before edge between an allocation and the free of the
//! same block on another thread is the program's own hand-over of the pointer.

use super::direct_map::{self, GRANULE};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How far from its home slot an entry may be placed.
pub(crate) const PROBE_LIMIT: usize = 64;
const EMPTY: u64 = 0;
const TOMBSTONE: u64 = 1;

/// One open-addressing table of `1 << LG` entries.
struct Level<const N: usize> {
    slots: [AtomicU64; N],
}

impl<const N: usize> Level<N> {
    const fn new() -> Self {
        Level { slots: [const { AtomicU64::new(EMPTY) }; N] }
    }

    /// Home slot: the block's address (in units of 8 bytes, the smallest class) through a
    /// Fibonacci hash, top bits. Address patterns must not cluster: 8-byte blocks that sit
    /// next to each other, and page-aligned blocks (every exact class from 4 KiB up), fill
    /// whole probe windows when homes follow the address, and each entry that spills
    /// touches a page of a deeper level (measured: 5 % of insertions spilled, 1.7 MiB of
    /// table pages on the JSON benchmark with 582 blocks live).
    #[inline(always)]
    fn home(addr: usize) -> usize {
        const { assert!(N.is_power_of_two() && N > 1) };
        let hash = ((addr >> 3) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (hash >> 64u32.wrapping_sub(N.trailing_zeros())) as usize
    }

    /// The `i`-th slot of the probe window that starts at `start`, wrapping around the level.
    /// Indexed by place, borrowing the one slot: the compiled code is that of `get`, but Miri
    /// retags a reference to a whole array of atomics element by element.
    #[inline(always)]
    #[allow(
        clippy::indexing_slicing,
        reason = "`N` is a power of two, so the mask keeps the index below the length and the \
                  compiler drops the bounds check"
    )]
    fn probe(&self, start: usize, i: usize) -> &AtomicU64 {
        &self.slots[start.wrapping_add(i) & N.wrapping_sub(1)]
    }

    #[inline(always)]
    fn insert(&self, addr: usize, entry: u64) -> bool {
        let start = Self::home(addr);
        for i in 0..PROBE_LIMIT {
            let slot = self.probe(start, i);
            let mut seen = slot.load(Relaxed);
            while seen == EMPTY || seen == TOMBSTONE {
                match slot.compare_exchange_weak(seen, entry, Relaxed, Relaxed) {
                    Ok(_) => return true,
                    Err(now) => seen = now,
                }
            }
        }
        false
    }

    #[inline(always)]
    fn remove(&self, addr: usize, key: u64) -> Option<u16> {
        let start = Self::home(addr);
        for i in 0..PROBE_LIMIT {
            let slot = self.probe(start, i);
            let seen = slot.load(Relaxed);
            if seen > TOMBSTONE && seen >> 16 == key {
                slot.store(TOMBSTONE, Relaxed);
                return Some(seen as u16);
            }
        }
        None
    }
}

// Five levels, each used only when the one before is crowded, each four times the size of the
// one before: 128 KiB, 512 KiB, 2 MiB, 8 MiB and 32 MiB of `.bss`, whose pages cost memory
// only once touched. Homes are scattered, so a level's pages are all touched soon after a
// few hundred of its entries came and went: a program pays for the levels its exact-class
// blocks fill, plus at most the next one. With up to about 16 000 such blocks live that is
// the first level alone; at 20 000 it was 4 MiB when the second level was 4 MiB (6 % of peak
// RSS for 20 000 streamed messages of 200 B-4 KiB, `benches/memory.rs`).
static L0: Level<{ 1 << (14 - SHRINK) }> = Level::new();
static L1: Level<{ 1 << (16 - SHRINK) }> = Level::new();
static L2: Level<{ 1 << (18 - SHRINK) }> = Level::new();
static L3: Level<{ 1 << (20 - SHRINK) }> = Level::new();
static L4: Level<{ 1 << (22 - SHRINK) }> = Level::new();

/// Under Miri every level is 64 times smaller: Miri keeps metadata for every byte of a
/// static, and the full statics (these 44 MiB with the counters' 48 MiB) took it past
/// 10 GiB. Same code, less room.
#[cfg(miri)]
const SHRINK: usize = 6;
#[cfg(not(miri))]
const SHRINK: usize = 0;

/// Insertions refused because every level's window was full (exposed in snapshots).
static OVERFLOWS: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
fn pack(addr: usize, owner: u16) -> Option<u64> {
    let addr = addr as u64;
    if addr >> 48 != 0 {
        return None;
    }
    Some((addr << 16) | owner as u64)
}

/// Records that the block at `addr`, of `size` bytes, belongs to `owner`. `false` when the
/// tables had no room.
///
/// Blocks of more than [`GRANULE`] bytes go to the [`direct_map`] (a store, no search) when it
/// covers their address; the rest, and those it cannot hold, to the hashed levels.
#[inline(always)]
pub(crate) fn insert(addr: usize, owner: u16, size: usize) -> bool {
    (size > GRANULE && direct_map::insert(addr, owner)) || insert_hashed(addr, owner)
}

/// Out of line: most blocks carry a trailer or go to the direct map, and inlined into the
/// allocation path the probing loop cost the trailer path a register and a hoisted load.
#[inline(never)]
fn insert_hashed(addr: usize, owner: u16) -> bool {
    if let Some(entry) = pack(addr, owner) {
        if L0.insert(addr, entry) || insert_deeper(addr, entry) {
            return true;
        }
    }
    OVERFLOWS.fetch_add(1, Relaxed);
    false
}

#[cold]
#[inline(never)]
fn insert_deeper(addr: usize, entry: u64) -> bool {
    L1.insert(addr, entry)
        || L2.insert(addr, entry)
        || L3.insert(addr, entry)
        || L4.insert(addr, entry)
}

/// Removes the block at `addr`, of `size` bytes, and returns its owner, or `None` when it was
/// never inserted (its insertion overflowed).
#[inline(always)]
pub(crate) fn remove(addr: usize, size: usize) -> Option<u16> {
    if size > GRANULE {
        if let Some(owner) = direct_map::remove(addr) {
            return Some(owner);
        }
    }
    remove_hashed(addr)
}

/// Out of line, as [`insert_hashed`].
#[inline(never)]
fn remove_hashed(addr: usize) -> Option<u16> {
    let key = addr as u64;
    if key >> 48 != 0 {
        return None;
    }
    match L0.remove(addr, key) {
        Some(owner) => Some(owner),
        None => remove_deeper(addr, key),
    }
}

#[cold]
#[inline(never)]
fn remove_deeper(addr: usize, key: u64) -> Option<u16> {
    L1.remove(addr, key)
        .or_else(|| L2.remove(addr, key))
        .or_else(|| L3.remove(addr, key))
        .or_else(|| L4.remove(addr, key))
}

/// How many insertions were refused for lack of room since the process started.
pub(crate) fn overflow_count() -> u64 {
    OVERFLOWS.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Addresses far above anything the test process maps, so entries never meet real blocks
    // of the allocator tests that share this process.
    const BASE: usize = 0x7f00_0000_0000;

    #[test]
    fn insert_then_remove_returns_the_owner() {
        assert!(insert(BASE + 0x40, 7, 64));
        assert!(insert(BASE + 0x80, 9, 64));
        assert_eq!(remove(BASE + 0x40, 64), Some(7));
        assert_eq!(remove(BASE + 0x40, 64), None);
        assert_eq!(remove(BASE + 0x80, 64), Some(9));
    }

    #[test]
    fn neighbours_are_all_found() {
        let base = BASE + 0x1000_0000;
        let mut placed = Vec::new();
        for i in 0..(PROBE_LIMIT * 3) {
            let addr = base + i * 16;
            if insert(addr, 3, 16) {
                placed.push(addr);
            }
        }
        // Every address was placed (their homes are scattered).
        assert_eq!(placed.len(), PROBE_LIMIT * 3);
        for addr in placed {
            assert_eq!(remove(addr, 16), Some(3));
        }
    }

    #[test]
    fn dense_and_page_aligned_blocks_do_not_crowd_a_window() {
        // 8-byte blocks side by side and page-aligned blocks: the address patterns that once
        // filled whole probe windows and spilled into the next level.
        let level: Box<Level<{ 1 << 14 }>> = Box::new(Level::new());
        let dense = (0..4000).map(|i| BASE + 0x2000_0000 + i * 8);
        let pages = (0..4000).map(|i| BASE + 0x4000_0000 + i * 4096);
        for addr in dense.chain(pages) {
            assert!(level.insert(addr, (addr as u64) << 16 | 5), "refused {addr:#x}");
        }
        assert_eq!(
            level.remove(BASE + 0x2000_0000 + 8 * 3999, (BASE + 0x2000_0000 + 8 * 3999) as u64),
            Some(5)
        );
    }

    /// A probe window that starts at a level's last slot goes on at its first. No other test
    /// filled a window there, and the index mask written as `^` instead of `&` (probing the
    /// window backwards, the same way on insertion and removal) passed them all, though it
    /// indexes past the end of the level, a panic on the allocation path, as soon as a window
    /// wraps.
    #[test]
    fn a_probe_window_wraps_around_the_end_of_a_level() {
        const N: usize = 1 << 8;
        let level: Box<Level<N>> = Box::new(Level::new());
        // Three addresses whose home is the last slot (one in 256 addresses is).
        let homed_last: Vec<usize> = (0..)
            .map(|i| BASE + 0x6000_0000 + i * 8)
            .filter(|&addr| Level::<N>::home(addr) == N - 1)
            .take(3)
            .collect();
        for (owner, &addr) in homed_last.iter().enumerate() {
            assert!(level.insert(addr, (addr as u64) << 16 | owner as u64), "refused {addr:#x}");
        }
        // The last slot, then the first two.
        let held = |slot: usize| level.probe(slot, 0).load(Relaxed) >> 16;
        let addrs: Vec<u64> = homed_last.iter().map(|&addr| addr as u64).collect();
        assert_eq!(vec![held(N - 1), held(0), held(1)], addrs);
        for (owner, &addr) in homed_last.iter().enumerate().rev() {
            assert_eq!(level.remove(addr, addr as u64), Some(owner as u16));
        }
        assert!((0..N).all(|slot| level.probe(slot, 0).load(Relaxed) <= TOMBSTONE));
    }

    /// `count` addresses from `base` up that share one home in a level of `HOMES` slots.
    #[allow(clippy::arithmetic_side_effects, reason = "a test's search, far below overflow")]
    fn sharing_a_home<const HOMES: usize>(base: usize, count: usize) -> Vec<usize> {
        let target = Level::<HOMES>::home(base);
        (0..)
            .map(|i| base + i * 8)
            .filter(|&addr| Level::<HOMES>::home(addr) == target)
            .take(count)
            .collect()
    }

    /// Entries go to the next level when a window of the ones before is full, and are found
    /// there. Addresses with one home in the third level have one in the first two too, so
    /// 194 of them fill a window of each and put the last two in the fourth (under Miri or a
    /// sanitizer, where finding them takes long, 65 sharing a home in the first level reach
    /// the second); each level holds an entry once. No other test filled a window of the
    /// first level, and the deeper levels were never reached: `insert_deeper` returning
    /// `true` or `false`, `remove_deeper` returning `None`, and each `||` of `insert_deeper`
    /// as `&&` (an entry put in two levels) all passed.
    #[test]
    fn crowded_windows_spill_into_the_deeper_levels() {
        let base = BASE + 0x7000_0000;
        let crowd = if cfg!(miri) || std::env::var_os("HEAPSCOPE_SANITIZER").is_some() {
            sharing_a_home::<{ 1 << (14 - SHRINK) }>(base, PROBE_LIMIT + 1)
        } else {
            sharing_a_home::<{ 1 << (18 - SHRINK) }>(base, 3 * PROBE_LIMIT + 2)
        };
        for (owner, &addr) in crowd.iter().enumerate() {
            assert!(insert(addr, owner as u16, 16), "refused entry {owner}");
        }
        for (owner, &addr) in crowd.iter().enumerate() {
            assert_eq!(remove(addr, 16), Some(owner as u16), "entry {owner}");
        }
        for &addr in &crowd {
            let key = addr as u64;
            let left = [L0.remove(addr, key), L1.remove(addr, key), L2.remove(addr, key)];
            assert_eq!(left, [None; 3], "{addr:#x} left in a level");
            assert_eq!((L3.remove(addr, key), L4.remove(addr, key)), (None, None));
        }
    }

    #[test]
    fn large_blocks_go_to_the_hashed_levels_where_the_direct_map_has_no_leaf() {
        use direct_map::{leaves_used, LEAVES, POOL_TESTS, REGION_BYTES};
        let _pool = POOL_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Regions of this test's own, below `BASE` and the direct map tests' addresses.
        let base = 0x7c00_0000_0000usize;
        // Give the direct map tests' regions their leaves first, so that they find them
        // whichever order the tests run in.
        for region in 0..3 {
            let addr = 0x7e00_0000_0000 + region * REGION_BYTES;
            assert!(direct_map::insert(addr, 1));
            assert_eq!(direct_map::remove(addr), Some(1));
        }

        // A block recorded in the hashed levels while its region had no leaf is still found
        // there once the region has one (a lookup that finds no mark goes on to the levels).
        let early = base + 4096;
        assert!(insert_hashed(early, 5));
        assert!(insert(base + 8192, 6, 4096), "the region's first block in the direct map");
        assert_eq!(remove(early, 4096), Some(5));
        assert_eq!(remove(base + 8192, 4096), Some(6));

        // Use up the pool, one region at a time.
        let mut region = base + REGION_BYTES;
        while leaves_used() < LEAVES {
            assert!(direct_map::insert(region, 2), "leaf {}", leaves_used());
            assert_eq!(direct_map::remove(region), Some(2));
            region += REGION_BYTES;
        }
        // Past it: no leaf, and the block goes to the hashed levels instead, found there.
        let late = region + 512;
        assert!(!direct_map::insert(late, 7));
        let overflows = overflow_count();
        assert!(insert(late, 7, 512));
        assert_eq!(overflow_count(), overflows, "not an overflow: the hashed levels took it");
        assert_eq!(remove(late, 512), Some(7));
        assert_eq!(remove(late, 512), None);
        // Regions that have a leaf keep using it.
        assert!(insert(base + 8192, 8, 4096));
        assert_eq!(direct_map::remove(base + 8192), Some(8));
    }

    #[test]
    fn refused_addresses_miss_consistently_and_are_counted() {
        let before = overflow_count();
        assert!(!insert(1 << 50, 1, 64));
        assert!(!insert(1 << 50, 1, 4096), "nor in the direct map");
        assert_eq!(remove(1 << 50, 64), None);
        assert_eq!(remove(1 << 50, 4096), None);
        assert!(overflow_count() > before);
    }
}
