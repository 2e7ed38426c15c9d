//! Per-owner counters: written on the allocation path, summed by readers.
//!
//! # Design
//! Every thread that allocates takes one *slot* from a fixed table of [`MAX_THREAD_SLOTS`]
//! and is its only writer: counting an allocation is a relaxed load and a relaxed store
//! (a plain add), never a locked read-modify-write. A reader sums an owner's counters over
//! every slot. A free is counted in the *freeing* thread's slot under the owner read from the
//! block, so a slot's `free_bytes` may exceed its `alloc_bytes`; only the sum over slots means
//! anything, and it is exact once every allocation call happens-before the read.
//!
//! A thread that exits hands its slot back *without clearing it* (the sums stay right) through
//! a `pthread` key destructor; the next thread that takes the slot continues as its single
//! writer (the release store and the acquiring compare-and-swap order the two writers).
//! Threads that find no free slot, and threads already past their exit, count in one shared
//! slot with atomic read-modify-writes: slower, equally exact.
//!
//! # Peaks
//! `peak_bytes` is kept per owner *including its descendants* (and for the whole process, the
//! pseudo-owner [`PROCESS`]). Each slot keeps, per owner, the bytes it has allocated minus
//! freed that it has not yet published (`pending`); once that exceeds ±[`FLUSH_BYTES`] it is
//! added to the owner's shared `flushed` total with one `fetch_add`. On every allocation the
//! thread compares `flushed + pending` with the owner's peak and raises it when higher. With one
//! allocating thread that sum is the exact live size, so the peak is exact; with `T` threads it
//! can miss (or overshoot) the true peak by at most `(T - 1) * FLUSH_BYTES` per owner. Each
//! allocation or free walks from its owner up to [`PROCESS`] (at most [`MAX_DEPTH`] levels).
//!
//! All orderings are `Relaxed`: counters are statistics, and exact reads rely on the
//! happens-before edges the program already has (joining a thread, a channel, a lock).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU64, AtomicUsize, Ordering::*};

pub(crate) use crate::registry::{MAX_DEPTH, MAX_OWNERS, OVERFLOW, PROCESS, ROOT};

/// How many threads count without atomic read-modify-writes at once.
pub(crate) const MAX_THREAD_SLOTS: usize = 256;
/// How far a thread's unpublished growth of one owner may drift before it is published.
pub(crate) const FLUSH_BYTES: i64 = 64 * 1024;

/// One owner's counters in one slot.
struct Counts {
    alloc_bytes: AtomicU64,
    alloc_blocks: AtomicU64,
    free_bytes: AtomicU64,
    free_blocks: AtomicU64,
    /// This slot's allocated-minus-freed bytes of the owner not yet in its `flushed`.
    pending: AtomicI64,
    /// `pending` above which the owner's peak may rise: `peak - flushed` when last looked
    /// at. Keeps the shared cell off the fast path.
    headroom: AtomicI64,
}

impl Counts {
    const fn new() -> Self {
        Counts {
            alloc_bytes: AtomicU64::new(0),
            alloc_blocks: AtomicU64::new(0),
            free_bytes: AtomicU64::new(0),
            free_blocks: AtomicU64::new(0),
            pending: AtomicI64::new(0),
            headroom: AtomicI64::new(i64::MIN),
        }
    }
}

struct Slot {
    counts: [Counts; MAX_OWNERS],
}

impl Slot {
    const fn new() -> Self {
        Slot { counts: [const { Counts::new() }; MAX_OWNERS] }
    }
}

/// Shared, per-owner state: read on every allocation, written rarely.
pub(crate) struct OwnerCell {
    /// Published subtree live bytes (see the module docs on peaks).
    flushed: AtomicI64,
    /// Highest subtree live bytes seen since the owner was registered.
    peak: AtomicI64,
    /// Parent id (ignored for [`PROCESS`], where every walk ends).
    pub(crate) parent: AtomicU16,
    /// Bumped each time the id is reused, so stale `Owner` handles are recognised.
    pub(crate) generation: AtomicU16,
    /// Cumulative allocated bytes and blocks when the id was (re)registered.
    base_bytes: AtomicU64,
    base_blocks: AtomicU64,
}

impl OwnerCell {
    const fn new() -> Self {
        OwnerCell {
            flushed: AtomicI64::new(0),
            peak: AtomicI64::new(0),
            parent: AtomicU16::new(PROCESS),
            generation: AtomicU16::new(0),
            base_bytes: AtomicU64::new(0),
            base_blocks: AtomicU64::new(0),
        }
    }
}

static SLOTS: [Slot; MAX_THREAD_SLOTS] = [const { Slot::new() }; MAX_THREAD_SLOTS];
static SHARED_SLOT: Slot = Slot::new();
static SLOT_TAKEN: [AtomicBool; MAX_THREAD_SLOTS] =
    [const { AtomicBool::new(false) }; MAX_THREAD_SLOTS];
/// One past the highest slot ever taken: readers sum no further.
static SLOTS_HIGH: AtomicUsize = AtomicUsize::new(0);
pub(crate) static OWNERS: [OwnerCell; MAX_OWNERS] = [const { OwnerCell::new() }; MAX_OWNERS];

/// The slot index of a thread that has not allocated yet.
const UNASSIGNED: usize = usize::MAX;
/// The slot index meaning "count in the shared slot".
const SHARED: usize = MAX_THREAD_SLOTS;
/// Owner ids are below this power of two, so `id & ID_MASK` is always in bounds.
const ID_MASK: usize = MAX_OWNERS - 1;
const _: () = assert!(MAX_OWNERS.is_power_of_two());

struct ThreadState {
    owner: Cell<u16>,
    /// `SLOTS[slot].counts[0]`, or null while the thread has no slot of its own.
    base: Cell<*const Counts>,
    /// `base + owner`: the current owner's counters, or null like `base`.
    current: Cell<*const Counts>,
    slot: Cell<usize>,
}

thread_local! {
    // `const`-initialised with no destructor: usable at any point of a thread's life,
    // including while other thread-locals are being destroyed.
    static STATE: ThreadState = const {
        ThreadState {
            owner: Cell::new(ROOT),
            base: Cell::new(std::ptr::null()),
            current: Cell::new(std::ptr::null()),
            slot: Cell::new(UNASSIGNED),
        }
    };
}

impl ThreadState {
    fn point_at(&self, owner: u16) {
        let base = self.base.get();
        // `wrapping_add` keeps this safe code; the result is only dereferenced when `base` is
        // non-null, and then it stays inside `SLOTS[slot].counts` (the index is masked).
        let current =
            if base.is_null() { base } else { base.wrapping_add(owner as usize & ID_MASK) };
        self.current.set(current);
    }
}

/// The owner current on this thread.
#[inline(always)]
pub(crate) fn current() -> u16 {
    STATE.with(|s| s.owner.get())
}

/// Makes `owner` current on this thread and returns the previous one.
#[inline]
pub(crate) fn replace_current(owner: u16) -> u16 {
    STATE.with(|s| {
        s.point_at(owner);
        s.owner.replace(owner)
    })
}

/// The current owner and its counters on this thread, read once per allocation.
#[derive(Clone, Copy)]
pub(crate) struct Here {
    pub(crate) owner: u16,
    counts: *const Counts,
}

#[inline(always)]
pub(crate) fn here() -> Here {
    STATE.with(|s| Here { owner: s.owner.get(), counts: s.current.get() })
}

#[inline(always)]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

/// Counts an allocation of `size` bytes by the current owner.
///
/// The fast path: three single-writer counters of the owner, reached through a pointer the
/// thread keeps, and one look at the owner's shared published total and peak. Everything that
/// walks the owner tree is out of line and rare.
#[inline(always)]
pub(crate) fn charge_here(here: Here, size: usize) {
    if here.counts.is_null() {
        return charge_cold(here.owner, size);
    }
    // SAFETY: a non-null `current` points into this thread's own slot (see `point_at`), which
    // lives in a `static` and has this thread as its only writer until the thread exits.
    let c = unsafe { &*here.counts };
    bump(&c.alloc_bytes, size as u64);
    bump(&c.alloc_blocks, 1);
    let pending = c.pending.load(Relaxed).wrapping_add(size as i64);
    c.pending.store(pending, Relaxed);
    if pending > c.headroom.load(Relaxed) {
        // A possible new peak, or time to publish: both out of line.
        raise_peaks(c, here.owner, pending);
    }
}

/// Counts an allocation of `size` bytes by `owner`, which is not the current one (the side
/// table had no room and the block went to the overflow owner).
#[cold]
#[inline(never)]
pub(crate) fn charge(owner: u16, size: usize) {
    let base = STATE.with(|s| s.base.get());
    let counts = if base.is_null() { base } else { base.wrapping_add(owner as usize & ID_MASK) };
    charge_here(Here { owner, counts }, size);
}

/// Counts a free of `size` bytes of a block owned by `owner`, on this thread.
#[inline(always)]
pub(crate) fn credit(owner: u16, size: usize) {
    let base = STATE.with(|s| s.base.get());
    if base.is_null() {
        return credit_cold(owner, size);
    }
    // SAFETY: `base` is this thread's own slot (see `charge_here`); the masked index stays
    // inside its `counts` array.
    let c = unsafe { &*base.add(owner as usize & ID_MASK) };
    bump(&c.free_bytes, size as u64);
    bump(&c.free_blocks, 1);
    let pending = c.pending.load(Relaxed).wrapping_sub(size as i64);
    c.pending.store(pending, Relaxed);
    if pending < -FLUSH_BYTES {
        publish(c, owner);
    }
}

/// Adds this slot's pending bytes of `owner` to the published total of `owner` and of each
/// ancestor, raising their peaks.
#[cold]
#[inline(never)]
fn publish(c: &Counts, owner: u16) {
    let pending = c.pending.load(Relaxed);
    c.pending.store(0, Relaxed);
    add_published(owner, pending);
    refresh_headroom(c, owner, 0);
}

/// `pending` has passed this slot's headroom: publish it if it is large, then raise the peaks
/// of `owner` and its ancestors with this thread's pending bytes on top of each one's
/// published total.
#[cold]
#[inline(never)]
fn raise_peaks(c: &Counts, owner: u16, pending: i64) {
    if pending > FLUSH_BYTES {
        return publish(c, owner);
    }
    let mut id = owner as usize;
    for _ in 0..MAX_DEPTH {
        let Some(shared) = OWNERS.get(id) else { return };
        shared.peak.fetch_max(shared.flushed.load(Relaxed).wrapping_add(pending), Relaxed);
        if id == PROCESS as usize {
            break;
        }
        id = shared.parent.load(Relaxed) as usize;
    }
    refresh_headroom(c, owner, pending);
}

/// Sets the slot's headroom for `owner`: the pending bytes at which its peak could rise, but
/// never past the point where `pending` must be published.
fn refresh_headroom(c: &Counts, owner: u16, pending: i64) {
    let Some(shared) = OWNERS.get(owner as usize) else { return };
    let room = shared.peak.load(Relaxed).wrapping_sub(shared.flushed.load(Relaxed));
    c.headroom.store(room.max(pending).min(FLUSH_BYTES), Relaxed);
}

/// Adds `delta` to the published totals of `owner` and its ancestors; growth raises peaks.
fn add_published(owner: u16, delta: i64) {
    let mut id = owner as usize;
    for _ in 0..MAX_DEPTH {
        let Some(shared) = OWNERS.get(id) else { return };
        let now = shared.flushed.fetch_add(delta, Relaxed).wrapping_add(delta);
        if delta > 0 {
            shared.peak.fetch_max(now, Relaxed);
        }
        if id == PROCESS as usize {
            return;
        }
        id = shared.parent.load(Relaxed) as usize;
    }
}

/// The slow path of [`charge_here`]: the thread has no slot yet, or has none to be had.
#[cold]
#[inline(never)]
fn charge_cold(owner: u16, size: usize) {
    let owner = if (owner as usize) < MAX_OWNERS { owner } else { OVERFLOW };
    if let Some(base) = take_slot_if_unassigned() {
        // SAFETY: `base` is the slot this thread just took; the masked index is in bounds.
        let counts = unsafe { base.add(owner as usize & ID_MASK) };
        return charge_here(Here { owner, counts }, size);
    }
    let Some(c) = SHARED_SLOT.counts.get(owner as usize) else { return };
    c.alloc_bytes.fetch_add(size as u64, Relaxed);
    c.alloc_blocks.fetch_add(1, Relaxed);
    add_published(owner, size as i64);
}

/// The slow path of [`credit`], as [`charge_cold`].
#[cold]
#[inline(never)]
fn credit_cold(owner: u16, size: usize) {
    let owner = if (owner as usize) < MAX_OWNERS { owner } else { OVERFLOW };
    if take_slot_if_unassigned().is_some() {
        return credit(owner, size);
    }
    let Some(c) = SHARED_SLOT.counts.get(owner as usize) else { return };
    c.free_bytes.fetch_add(size as u64, Relaxed);
    c.free_blocks.fetch_add(1, Relaxed);
    add_published(owner, -(size as i64));
}

/// For a thread that never allocated: takes a slot and returns its counters' base.
fn take_slot_if_unassigned() -> Option<*const Counts> {
    if STATE.with(|s| s.slot.get()) != UNASSIGNED {
        return None;
    }
    let index = take_slot();
    SLOTS.get(index).map(|slot| slot.counts.as_ptr())
}

/// Gives this thread a slot of its own (or the shared one) and remembers it.
fn take_slot() -> usize {
    let mut taken = SHARED;
    for (i, flag) in SLOT_TAKEN.iter().enumerate() {
        if !flag.load(Relaxed) && flag.compare_exchange(false, true, Acquire, Relaxed).is_ok() {
            if exit_hook::register(i) {
                SLOTS_HIGH.fetch_max(i + 1, Relaxed);
                taken = i;
            } else {
                // Without a way to hear of this thread's exit the slot would be lost for good.
                flag.store(false, Release);
            }
            break;
        }
    }
    // `try_with` cannot fail for a const thread-local without destructor; ignoring is fine.
    let _ = STATE.try_with(|s| {
        s.slot.set(taken);
        s.base.set(SLOTS.get(taken).map_or(std::ptr::null(), |slot| slot.counts.as_ptr()));
        s.point_at(s.owner.get());
    });
    taken
}

/// Called when a thread that holds slot `index` exits.
fn release_slot(index: usize) {
    let _ = STATE.try_with(|s| {
        s.slot.set(SHARED);
        s.base.set(std::ptr::null());
        s.current.set(std::ptr::null());
    });
    if let Some(flag) = SLOT_TAKEN.get(index) {
        flag.store(false, Release);
    }
}

#[cfg(unix)]
mod exit_hook {
    //! Hears of thread exit through a `pthread` key destructor, which needs no allocation
    //! through our allocator (glibc keeps the first 32 keys' values in the thread descriptor
    //! and allocates any further ones with its own `calloc`).
    use std::sync::atomic::{AtomicUsize, Ordering::*};

    /// `pthread_key_t + 1`, or 0 before the key exists.
    static KEY: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn on_exit(value: *mut libc::c_void) {
        let index = (value as usize).wrapping_sub(1);
        super::release_slot(index);
    }

    fn key() -> Option<libc::pthread_key_t> {
        let known = KEY.load(Acquire);
        if known != 0 {
            return Some((known - 1) as libc::pthread_key_t);
        }
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer and `on_exit` has the destructor signature.
        if unsafe { libc::pthread_key_create(&mut key, Some(on_exit)) } != 0 {
            return None;
        }
        match KEY.compare_exchange(0, key as usize + 1, AcqRel, Acquire) {
            Ok(_) => Some(key),
            Err(winner) => {
                // Another thread created one first; use theirs and drop ours.
                // SAFETY: `key` was created above and never handed out.
                unsafe { libc::pthread_key_delete(key) };
                Some((winner - 1) as libc::pthread_key_t)
            }
        }
    }

    /// Arranges for `release_slot(index)` when the calling thread exits.
    pub(super) fn register(index: usize) -> bool {
        let Some(key) = key() else { return false };
        // SAFETY: `key` is a live key; the value is an integer smuggled as a pointer, never
        // dereferenced.
        unsafe { libc::pthread_setspecific(key, (index + 1) as *const libc::c_void) == 0 }
    }
}

#[cfg(not(unix))]
mod exit_hook {
    //! No portable exit hook without allocating: every thread counts in the shared slot.
    pub(super) fn register(_index: usize) -> bool {
        false
    }
}

/// One owner's own counters (not its descendants'), summed over every slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Raw {
    pub(crate) alloc_bytes: u64,
    pub(crate) alloc_blocks: u64,
    pub(crate) free_bytes: u64,
    pub(crate) free_blocks: u64,
}

impl Raw {
    pub(crate) fn live_bytes(&self) -> u64 {
        self.alloc_bytes.saturating_sub(self.free_bytes)
    }
    pub(crate) fn live_blocks(&self) -> u64 {
        self.alloc_blocks.saturating_sub(self.free_blocks)
    }
    /// Adds the totals of freed descendants (allocated and freed alike: they hold nothing).
    pub(crate) fn add_absorbed(&mut self, (bytes, blocks): (u64, u64)) {
        self.alloc_bytes = self.alloc_bytes.wrapping_add(bytes);
        self.free_bytes = self.free_bytes.wrapping_add(bytes);
        self.alloc_blocks = self.alloc_blocks.wrapping_add(blocks);
        self.free_blocks = self.free_blocks.wrapping_add(blocks);
    }

    pub(crate) fn add(&mut self, other: &Raw) {
        self.alloc_bytes = self.alloc_bytes.wrapping_add(other.alloc_bytes);
        self.alloc_blocks = self.alloc_blocks.wrapping_add(other.alloc_blocks);
        self.free_bytes = self.free_bytes.wrapping_add(other.free_bytes);
        self.free_blocks = self.free_blocks.wrapping_add(other.free_blocks);
    }
}

/// Sums `id`'s own counters over every slot, minus what a previous holder of the id
/// allocated (its live remainder was zero when the id was reused).
pub(crate) fn read_own(id: u16) -> Raw {
    let mut raw = Raw::default();
    let high = SLOTS_HIGH.load(Relaxed).min(MAX_THREAD_SLOTS);
    let slots = SLOTS.iter().take(high).chain(std::iter::once(&SHARED_SLOT));
    for slot in slots {
        if let Some(c) = slot.counts.get(id as usize) {
            raw.alloc_bytes = raw.alloc_bytes.wrapping_add(c.alloc_bytes.load(Relaxed));
            raw.alloc_blocks = raw.alloc_blocks.wrapping_add(c.alloc_blocks.load(Relaxed));
            raw.free_bytes = raw.free_bytes.wrapping_add(c.free_bytes.load(Relaxed));
            raw.free_blocks = raw.free_blocks.wrapping_add(c.free_blocks.load(Relaxed));
        }
    }
    if let Some(cell) = OWNERS.get(id as usize) {
        let (bytes, blocks) = (cell.base_bytes.load(Relaxed), cell.base_blocks.load(Relaxed));
        raw.alloc_bytes = raw.alloc_bytes.wrapping_sub(bytes);
        raw.free_bytes = raw.free_bytes.wrapping_sub(bytes);
        raw.alloc_blocks = raw.alloc_blocks.wrapping_sub(blocks);
        raw.free_blocks = raw.free_blocks.wrapping_sub(blocks);
    }
    raw
}

/// The peak subtree live bytes recorded for `id`.
pub(crate) fn read_peak(id: u16) -> u64 {
    OWNERS.get(id as usize).map_or(0, |c| c.peak.load(Relaxed).max(0) as u64)
}

/// Prepares `id` for a new owner under `parent`: records the totals so far as its baseline,
/// resets its peak, moves its parent link (and its published remainder, see
/// [`move_published`]) and bumps its generation. Returns the new generation.
///
/// Called by the registry with the id's previous live bytes and blocks at zero.
pub(crate) fn reset_for_new_owner(id: u16, parent: u16) -> u16 {
    let Some(cell) = OWNERS.get(id as usize) else { return 0 };
    cell.base_bytes.store(0, Relaxed);
    cell.base_blocks.store(0, Relaxed);
    let raw = read_own(id);
    // `alloc` totals so far become the base. The frees equal them (live was zero), so both
    // sides of `live` shift alike.
    cell.base_bytes.store(raw.alloc_bytes, Relaxed);
    cell.base_blocks.store(raw.alloc_blocks, Relaxed);
    move_published(id, parent);
    cell.peak.store(0, Relaxed);
    // Every slot recomputes its headroom for the new owner on its next allocation. The id
    // held nothing and no thread allocates under a retired owner, so no slot writes it now.
    for slot in SLOTS.iter().take(SLOTS_HIGH.load(Relaxed).min(MAX_THREAD_SLOTS)) {
        if let Some(c) = slot.counts.get(id as usize) {
            c.headroom.store(i64::MIN, Relaxed);
        }
    }
    IDS_HIGH.fetch_max(id as usize + 1, Relaxed);
    cell.generation.fetch_add(1, Relaxed).wrapping_add(1)
}

/// Moves owner `id` (with its subtree) under `new_parent`, for peaks: its published total
/// leaves its old ancestors and joins the new ones. Bytes still pending in threads' slots are
/// published later along the new parent link, so every byte is published to each ancestor
/// exactly once. (Exact `live` sums never need this: they are recomputed from the tree.)
pub(crate) fn move_published(id: u16, new_parent: u16) {
    let Some(cell) = OWNERS.get(id as usize) else { return };
    let published = cell.flushed.load(Relaxed);
    let old_parent = cell.parent.swap(new_parent, Relaxed);
    if id == PROCESS || published == 0 {
        return;
    }
    add_published(old_parent, -published);
    add_published(new_parent, published);
}

/// One past the highest owner id ever registered: readers sum no further.
pub(crate) static IDS_HIGH: AtomicUsize = AtomicUsize::new(crate::registry::FIRST_USER_ID as usize);

/// Every id's counters without subtracting reuse baselines: the whole process's totals.
pub(crate) fn read_all_unbased() -> Raw {
    let mut raw = Raw::default();
    let high = SLOTS_HIGH.load(Relaxed).min(MAX_THREAD_SLOTS);
    let ids = IDS_HIGH.load(Relaxed).min(MAX_OWNERS);
    for slot in SLOTS.iter().take(high).chain(std::iter::once(&SHARED_SLOT)) {
        for c in slot.counts.iter().take(ids) {
            raw.alloc_bytes = raw.alloc_bytes.wrapping_add(c.alloc_bytes.load(Relaxed));
            raw.alloc_blocks = raw.alloc_blocks.wrapping_add(c.alloc_blocks.load(Relaxed));
            raw.free_bytes = raw.free_bytes.wrapping_add(c.free_bytes.load(Relaxed));
            raw.free_blocks = raw.free_blocks.wrapping_add(c.free_blocks.load(Relaxed));
        }
    }
    raw
}
