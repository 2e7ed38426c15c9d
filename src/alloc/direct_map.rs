//! The owner of blocks larger than 256 bytes that have no slack for a trailer (the exact
//! classes `Vec` and `String` doubling produce: 512 B, 1 KiB … 4 KiB … 1 MiB), kept in a map
//! indexed directly by address.
//!
//! Two live blocks of more than 256 bytes start more than 256 bytes apart, so `addr >> 8` is
//! a key of its own for each: one `u16` entry per 256 bytes of address space, no hashing, no
//! probing and no compare-and-swap. Recording an owner is a plain store, finding it a load
//! and a store that clears it. Only the thread that frees a block touches its entry, and the
//! next block at that address is handed out after the free (the inner allocator orders
//! that), so relaxed loads and stores are enough, as in the hashed table.
//!
//! The map is a two-level radix tree in static memory (`.bss`, whose pages cost memory only
//! once touched): the address space is cut into regions of [`REGION_BYTES`], and a region
//! gets a leaf of entries from a fixed pool the first time a block in it is recorded. A leaf
//! page (4 KiB) covers 512 KiB of address space, so the map costs at most 0.8 % of the
//! address range its blocks are spread over, and much less when they are sparse.
//!
//! When the pool is used up (the large blocks of the program are spread over more than
//! [`LEAVES`] regions, 16 GiB of address space) or an address lies beyond 47 bits, [`insert`]
//! refuses and the caller keeps the owner in the hashed table instead: slower, equally
//! exact. A recorded entry carries [`MARK`], and [`remove`] clears it; an entry without it
//! means "not here" (never recorded, or recorded in the hashed table while the region had
//! no leaf yet), so a lookup never mistakes one block's entry for another's.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU16, AtomicUsize, Ordering::Relaxed};

/// Blocks of more than this many bytes may be recorded here (see the module docs).
pub(crate) const GRANULE: usize = 1 << GRANULE_SHIFT;
/// Bytes of address space per entry.
const GRANULE_SHIFT: u32 = 8;
/// Bytes of address space per leaf: 64 MiB (256 MiB under Miri, which keeps metadata for
/// every byte of a static: the same code on smaller tables).
#[cfg(not(miri))]
const REGION_SHIFT: u32 = 26;
#[cfg(miri)]
const REGION_SHIFT: u32 = 28;
/// Bytes of address space a leaf covers.
pub(crate) const REGION_BYTES: usize = 1 << REGION_SHIFT;
/// User-space addresses on x86_64 and aarch64 (48-bit virtual addresses, upper half kernel).
const ADDRESS_BITS: u32 = 47;
/// Regions in the address space: the first level, 16 MiB of leaf pointers (one page of it
/// covers 32 GiB of address space).
const REGIONS: usize = (1 << ADDRESS_BITS) / REGION_BYTES;
/// Entries per leaf: 512 KiB each.
const LEAF_ENTRIES: usize = 1 << (REGION_SHIFT - GRANULE_SHIFT);
/// Leaves in the pool: 128 MiB of `.bss`, covering 16 GiB of address space.
#[cfg(not(miri))]
pub(crate) const LEAVES: usize = 256;
#[cfg(miri)]
pub(crate) const LEAVES: usize = 1;
/// Set in every recorded entry. Owner tags are an id below 4096 and possibly
/// [`CHILD_BIT`](crate::counters::CHILD_BIT) (0x8000): this bit is never part of one.
const MARK: u16 = 0x4000;
const _: () = assert!(crate::counters::MAX_OWNERS <= MARK as usize);
const _: () = assert!(crate::counters::CHILD_BIT & MARK == 0);

struct Leaf {
    entries: [AtomicU16; LEAF_ENTRIES],
}

impl Leaf {
    const fn empty() -> Leaf {
        Leaf { entries: [const { AtomicU16::new(0) }; LEAF_ENTRIES] }
    }
}

/// Each region's leaf in [`POOL`], [`RESERVED`] while it is being given one (or when the
/// pool had none left for it), or null before any block of it was recorded. A pointer rather than an index:
/// no bounds check and no second base address on the hot path.
static REGION_LEAF: [AtomicPtr<Leaf>; REGIONS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; REGIONS];
static POOL: [Leaf; LEAVES] = [const { Leaf::empty() }; LEAVES];
/// The leaf of a region that is being given one, or that the pool could not give one: its
/// entries are never written, so every lookup there finds "not here" (its pages, never
/// touched but read, cost no memory).
static RESERVED: Leaf = Leaf::empty();
/// Regions that claimed a leaf of [`POOL`] so far: the leaves handed out, and past
/// [`LEAVES`] the regions that found the pool used up.
static LEAVES_USED: AtomicUsize = AtomicUsize::new(0);

/// The entry of the block at `addr`, or `None` when its region has no leaf (or `addr` lies
/// beyond [`ADDRESS_BITS`]).
///
/// Only the entry itself is borrowed: the region table and the leaf are reached by place and
/// by raw pointer. The compiled code is the same as going through `&[_]::get` and `&Leaf`,
/// but Miri retags a reference to an array of atomics element by element, and those were
/// references to half a million region pointers and a million entries on every call.
#[inline(always)]
fn entry(addr: usize) -> Option<&'static AtomicU16> {
    let leaf = region(addr)?.load(Relaxed);
    if leaf.is_null() {
        return None;
    }
    // SAFETY: a non-null region pointer is `&raw const POOL[i]` or `&raw const RESERVED`
    // (see `give_leaf`).
    Some(unsafe { entry_of(leaf, addr) })
}

/// The entry of `addr` in `leaf`.
///
/// # Safety
/// `leaf` is `&raw const POOL[i]` or `&raw const RESERVED`: a `static` that lives for the
/// whole program and is only ever accessed through atomics.
#[inline(always)]
unsafe fn entry_of(leaf: *const Leaf, addr: usize) -> &'static AtomicU16 {
    // The mask keeps the index below `LEAF_ENTRIES`, the length of `entries`.
    let index = (addr >> GRANULE_SHIFT) & (LEAF_ENTRIES - 1);
    // SAFETY: `leaf` points at a live `static Leaf` (caller's duty); `index` is within its
    // `entries`, so the entry pointer stays inside that array and points at an initialised
    // `AtomicU16`.
    unsafe { &*(&raw const (*leaf).entries).cast::<AtomicU16>().add(index) }
}

/// The region pointer of the region holding `addr`, or `None` beyond [`ADDRESS_BITS`].
#[inline(always)]
fn region(addr: usize) -> Option<&'static AtomicPtr<Leaf>> {
    let region = addr >> REGION_SHIFT;
    #[allow(clippy::indexing_slicing, reason = "`region` is checked against the length first")]
    (region < REGIONS).then(|| &REGION_LEAF[region])
}

/// Records that the block at `addr`, of more than [`GRANULE`] bytes, belongs to
/// `owner`. `false` when the map cannot hold it (see the module docs).
#[inline(always)]
pub(crate) fn insert(addr: usize, owner: u16) -> bool {
    let Some(region) = region(addr) else {
        return false;
    };
    let leaf = region.load(Relaxed);
    if leaf.is_null() {
        return give_leaf(region, addr, owner);
    }
    // SAFETY: a region pointer, not null.
    unsafe { record_in(leaf, addr, owner) }
}

/// Records `owner` for `addr` in its region's `leaf`; `false` when the leaf is [`RESERVED`]:
/// another thread is giving the region a leaf, or the pool ran out (the caller then uses the
/// hashed table).
///
/// # Safety
/// `leaf` is a region pointer that is not null.
#[inline(always)]
unsafe fn record_in(leaf: *mut Leaf, addr: usize, owner: u16) -> bool {
    if ptr::eq(leaf, &raw const RESERVED) {
        return false;
    }
    // SAFETY: a region pointer that is neither null (caller's duty) nor `RESERVED` is
    // `&raw const POOL[i]`.
    unsafe { entry_of(leaf, addr) }.store(owner | MARK, Relaxed);
    true
}

/// Removes the block at `addr` and returns its owner, or `None` when it is not recorded here.
#[inline(always)]
pub(crate) fn remove(addr: usize) -> Option<u16> {
    let entry = entry(addr)?;
    let seen = entry.load(Relaxed);
    if seen & MARK == 0 {
        return None;
    }
    entry.store(0, Relaxed);
    Some(seen & !MARK)
}

/// Gives `addr`'s region a leaf from the pool and records `owner` there; `false` when the
/// pool is used up or another thread is giving the region its leaf at this moment (the
/// caller then keeps the owner in the hashed table).
///
/// The region is claimed first, with [`RESERVED`], and only its claimer takes a leaf: taking
/// the leaf first left the loser of two threads racing into a fresh region with a leaf that
/// was never used nor given back (40 regions reached by 4 threads at once took 41 or 42
/// leaves of the pool). A region stays `RESERVED` for good once the pool is used up.
#[cold]
#[inline(never)]
fn give_leaf(region: &AtomicPtr<Leaf>, addr: usize, owner: u16) -> bool {
    let reserved = (&raw const RESERVED).cast_mut();
    if let Err(leaf) = region.compare_exchange(ptr::null_mut(), reserved, Relaxed, Relaxed) {
        // Another thread claimed it first: its leaf may already be there.
        // SAFETY: the region pointer the exchange found instead of null.
        return unsafe { record_in(leaf, addr, owner) };
    }
    let used = LEAVES_USED.fetch_add(1, Relaxed);
    let Some(leaf) = POOL.get(used) else {
        return false;
    };
    // The leaf's memory is static and zero from the start, so the pointer is all there is
    // to publish.
    let leaf = (&raw const *leaf).cast_mut();
    region.store(leaf, Relaxed);
    // SAFETY: the region pointer just stored, `&raw const POOL[used]`.
    unsafe { record_in(leaf, addr, owner) }
}

/// How many leaves are in use.
#[cfg(test)]
pub(crate) fn leaves_used() -> usize {
    LEAVES_USED.load(Relaxed).min(LEAVES)
}

/// Held by every test that may give a region a leaf, use up the pool or count its leaves:
/// run at once, one counted the others' leaves.
#[cfg(test)]
pub(crate) static POOL_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    // Addresses far above anything the test process maps (but below 2^47), so entries never
    // meet real blocks of the allocator tests that share this process.
    const BASE: usize = 0x7e00_0000_0000;

    #[test]
    fn insert_then_remove_returns_the_owner_once() {
        let _pool = POOL_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        assert!(insert(BASE, 7));
        assert!(insert(BASE + 257, 0x8000 | 4095));
        assert_eq!(remove(BASE), Some(7));
        assert_eq!(remove(BASE), None, "cleared by the first removal");
        assert_eq!(remove(BASE + 257), Some(0x8000 | 4095));
    }

    #[test]
    fn blocks_more_than_a_granule_apart_never_share_an_entry() {
        let _pool = POOL_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Start and end offsets within a granule, block sizes of 257 B upwards.
        let base = BASE + REGION_BYTES;
        let mut addr = base + 255;
        let mut placed = Vec::new();
        for (i, size) in [257usize, 300, 511, 512, 4096, 257, 257].into_iter().enumerate() {
            assert!(insert(addr, i as u16));
            placed.push((addr, i as u16));
            addr += size;
        }
        for (addr, owner) in placed {
            assert_eq!(remove(addr), Some(owner), "{addr:#x}");
        }
    }

    #[test]
    fn threads_racing_into_fresh_regions_take_one_leaf_each() {
        // Four threads record a block in the same fresh region at once, 40 times over. Each
        // region must take exactly one leaf of the pool; a block that meets a region while
        // another thread gives it its leaf is refused (the hashed table then keeps it).
        const THREADS: usize = 4;
        const ROUNDS: usize = 40;
        let base = 0x7a00_0000_0000usize;
        let _pool = POOL_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let claimed = LEAVES_USED.load(Relaxed);
        let barrier = std::sync::Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let barrier = &barrier;
                s.spawn(move || {
                    for r in 0..ROUNDS {
                        let addr = base + r * REGION_BYTES + t * 4096;
                        barrier.wait();
                        let owner = (t * ROUNDS + r) as u16;
                        let recorded = insert(addr, owner);
                        assert_eq!(remove(addr), recorded.then_some(owner));
                    }
                });
            }
        });
        // Counted whether or not the pool still had leaves for them.
        assert_eq!(LEAVES_USED.load(Relaxed) - claimed, ROUNDS, "one leaf claimed per region");
        for r in 0..ROUNDS {
            let addr = base + r * REGION_BYTES + 8192;
            let recorded = insert(addr, 9);
            assert_eq!(recorded, claimed + r < LEAVES, "region {r}: a leaf if the pool had one");
            assert_eq!(remove(addr), recorded.then_some(9));
        }
    }

    #[test]
    fn unrecorded_and_out_of_range_addresses_are_not_found() {
        let _pool = POOL_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        assert_eq!(remove(BASE + 2 * REGION_BYTES + 4096), None, "in a leaf, never recorded");
        assert!(!insert(1 << 47, 1), "beyond 47 bits");
        assert_eq!(remove(1 << 47), None);
        assert_eq!(remove(usize::MAX), None);
    }
}
