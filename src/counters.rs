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
//! A thread that took a slot too late in its exit for the destructor to run (see
//! [`reclaim_slot`]) leaves it taken; a later thread that finds no slot free takes it again
//! once the kernel no longer knows the thread.
//!
//! # The fast path's one comparison
//! Counting an allocation or a free for a top-level owner is the counters' plain adds and one
//! comparison of the slot's pending bytes with a limit (`headroom` or `floor`, see Peaks).
//! Every rarer case fails that same comparison instead of being tested for: a thread without
//! a slot counts in the [`TRAP`], whose limits always fail (the call is then counted for real
//! out of line), and a child owner's limits are kept in fields of their own while its
//! `headroom` and `floor` always fail, so only a child's calls go on to its limits and its
//! ancestors' levels. Measured with callgrind, this took 5 to 8 instructions off every
//! allocation+free of a top-level owner (a thread-slot test and a child test per call) and
//! none from a child's.
//!
//! # Peaks
//! `peak_bytes` is kept for every owner *including its descendants*. For each owner `X`,
//! each slot keeps `pending`: the bytes its thread allocated minus freed in `X`'s subtree
//! that it has not yet published; beyond ±[`FLUSH_BYTES`] the slot publishes them into
//! `X`'s shared `flushed` total with one `fetch_add`. So, for every owner,
//!
//! ```text
//! flushed(X) + Σ over slots pending(X) == live bytes of X's subtree
//! ```
//!
//! Each level is kept on its own: an allocation by a child adds to the child's and every
//! ancestor's `pending` in the slot (owners with no parent but the process, the common case,
//! have a single level). Whenever a slot's `pending(X)` passes its `headroom(X)` (the last
//! known room below the peak), the slot raises `peak(X)` to `flushed(X)` plus the `pending(X)`
//! of *every* slot, read on this rare path: the exact live size whenever no other thread is
//! in the middle of an update.
//!
//! When that raise finds the slot *at* the peak (a thread growing the owner), the slot stops
//! looking: its headroom becomes the publication threshold and its `floor` [`AT_PEAK`], so
//! the slot's next free of `X` leaves the fast path and raises the peak to the live size
//! just before that free. A peak is always reached just before a decrease, and readers raise
//! the peak to the live size they read, so nothing is lost for a thread that allocates and
//! frees alone; growing at the peak costs a plain add per allocation instead of four atomic
//! maxima. Publication (every `FLUSH_BYTES`) records the peak too.
//!
//! So the peak is exact when one thread allocates and frees in the subtree. When more than
//! one thread does, a peak reached between two of a slot's records can be missed by what
//! the other threads changed meanwhile: at most `FLUSH_BYTES` per thread allocating or
//! freeing in it. That includes threads one after another: a slot at the peak waits for its
//! own next free, so a peak that another thread's free ends (even once the growing thread
//! has exited: its slot is handed back as it is) is recorded only up to the slot's last
//! record. A record can also overstate by as much: it sums
//! the other slots' `pending` one after another, so one slot's free and another's later
//! allocation can both be counted (each slot's `pending` stays within `FLUSH_BYTES`;
//! anything larger is in `flushed`, read before them).
//!
//! The whole process ([`PROCESS`]) receives what top-level owners publish. Its slots keep no
//! pending bytes of its own: its live size is its published total plus every slot's pending
//! bytes of every top-level owner. When a top-level owner's peak is recorded or its bytes
//! published, the published total plus this slot's pending bytes tells whether the process
//! peak could rise; only then is that whole sum read and the peak raised to it (see
//! [`raise_process_peak`]). The peak can miss the unpublished growth of a thread's *other*
//! top-level owners (at most `FLUSH_BYTES` each), which that first estimate does not see.
//!
//! Orderings are `Relaxed` but for one pair: counters are statistics, and exact reads rely
//! on the happens-before edges the program already has (joining a thread, a channel, a lock).
//! The pair: allocation counters are stored with `Release` and read with `Acquire` before
//! every free counter of the reading (a *cut*), so that a reading taken mid-run never counts
//! more than its owners held together at one moment, and can lift a peak (see [`read_cut`]);
//! on x86 that is the same plain store and load.

// Written on the allocation path: no unwrap, no indexing that can go out of range, no
// arithmetic that can overflow (RELIABILITY.md RTF-7), as in `alloc`.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::cell::Cell;
use std::sync::atomic::{
    AtomicI32, AtomicI64, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering::*,
};

pub(crate) use crate::registry::{MAX_DEPTH, MAX_OWNERS, NO_PARENT, OVERFLOW, PROCESS, ROOT};

/// How many threads count without atomic read-modify-writes at once.
#[cfg(not(miri))]
pub(crate) const MAX_THREAD_SLOTS: usize = 256;
/// Under Miri, which keeps metadata for every byte of a static: the full statics (these
/// slots' 64 MiB and the hashed side table's 44 MiB) took it past 10 GiB. Eight slots still
/// exercise slot reuse and the shared slot.
#[cfg(miri)]
pub(crate) const MAX_THREAD_SLOTS: usize = 8;
/// How far a thread's unpublished growth of one owner may drift before it is published.
pub(crate) const FLUSH_BYTES: i64 = 64 * 1024;

/// One owner's counters in one slot: a cache line of its own, indexed with a shift.
#[repr(C, align(64))]
struct Counts {
    alloc_bytes: AtomicU64,
    alloc_blocks: AtomicU64,
    free_bytes: AtomicU64,
    free_blocks: AtomicU64,
    /// This slot's allocated-minus-freed bytes of the owner's subtree not yet in `flushed`.
    pending: AtomicI64,
    /// `pending` above which the owner's peak may rise (`peak - flushed` when last looked
    /// at, capped at `FLUSH_BYTES`). Keeps the shared cell off the fast path.
    ///
    /// Zero until first looked at: a slot whose `pending` has not risen above zero has added
    /// nothing that could lift the peak, so the first allocation that takes it above zero
    /// is the one that must look. Zero rather than `i64::MIN` (which would send the very
    /// first allocation, too, out of line) because it keeps every slot all-zero: the
    /// tables are then `.bss`, address space that costs nothing until touched, instead of
    /// 48 MiB (as they were then) of initialised data in every binary built with tracking.
    headroom: AtomicI64,
    /// `pending` below which a free leaves the fast path: [`FLOOR`] (publish), or
    /// [`AT_PEAK`] while the slot grows at the owner's peak without recording it, so that its
    /// next free records the peak first (see the module docs). Zero until first looked at,
    /// which sends the first free that takes `pending` below zero out once.
    floor: AtomicI64,
    /// A child owner's headroom. A child's `headroom` and `floor` hold `i64::MIN` and
    /// `i64::MAX` once its limits are first set, so that every allocation and free of a
    /// child fails the fast path's one comparison and only then meets the child's own
    /// limits, here, and its ancestors' levels: a top-level owner's calls never test whether
    /// their owner is a child. Zero until first looked at, as `headroom`; clamped to `i32`,
    /// which only makes it look sooner.
    child_headroom: AtomicI32,
    /// A child owner's floor, as `floor`: `i32::MAX` stands for [`AT_PEAK`] (the pending bytes
    /// of a slot at the peak are at most `FLUSH_BYTES` plus one allocation: publication
    /// leaves them at zero).
    child_floor: AtomicI32,
}

/// The `floor` of a slot whose unpublished bytes may be past everything recorded.
const AT_PEAK: i64 = i64::MAX;
/// The `floor` below which a slot publishes what it freed.
const FLOOR: i64 = -FLUSH_BYTES;

const _: () = assert!(std::mem::size_of::<Counts>() == 64);

impl Counts {
    const fn new() -> Self {
        Counts::with_limits(0, 0, 0, 0)
    }

    /// Counters whose every allocation and free leave the fast path and look, child or not.
    const fn looking() -> Self {
        Counts::with_limits(i64::MIN, i64::MAX, i32::MIN, i32::MAX)
    }

    const fn with_limits(headroom: i64, floor: i64, child_headroom: i32, child_floor: i32) -> Self {
        Counts {
            alloc_bytes: AtomicU64::new(0),
            alloc_blocks: AtomicU64::new(0),
            free_bytes: AtomicU64::new(0),
            free_blocks: AtomicU64::new(0),
            pending: AtomicI64::new(0),
            headroom: AtomicI64::new(headroom),
            floor: AtomicI64::new(floor),
            child_headroom: AtomicI32::new(child_headroom),
            child_floor: AtomicI32::new(child_floor),
        }
    }

    /// Makes the next allocation and free (by any kind of owner) look at the limits.
    fn look_again(&self) {
        self.headroom.store(i64::MIN, Relaxed);
        self.floor.store(i64::MAX, Relaxed);
        self.child_headroom.store(i32::MIN, Relaxed);
        self.child_floor.store(i32::MAX, Relaxed);
    }

    /// The headroom of a child owner (`child`) or a top-level one.
    #[inline(always)]
    fn headroom_of(&self, child: bool) -> i64 {
        if child {
            i64::from(self.child_headroom.load(Relaxed))
        } else {
            self.headroom.load(Relaxed)
        }
    }

    /// The floor of a child owner (`child`) or a top-level one.
    #[inline(always)]
    fn floor_of(&self, child: bool) -> i64 {
        if child {
            i64::from(self.child_floor.load(Relaxed))
        } else {
            self.floor.load(Relaxed)
        }
    }

    fn set_headroom_of(&self, owner: u16, headroom: i64) {
        if owner & CHILD_BIT != 0 {
            self.mark_child();
            self.child_headroom.store(clamp_i32(headroom), Relaxed);
        } else {
            self.headroom.store(headroom, Relaxed);
        }
    }

    fn set_floor_of(&self, owner: u16, floor: i64) {
        if owner & CHILD_BIT != 0 {
            self.mark_child();
            self.child_floor
                .store(if floor == AT_PEAK { i32::MAX } else { clamp_i32(floor) }, Relaxed);
        } else {
            self.floor.store(floor, Relaxed);
        }
    }

    /// A child's `headroom` and `floor`: fail the fast path's comparison always.
    fn mark_child(&self) {
        self.headroom.store(i64::MIN, Relaxed);
        self.floor.store(i64::MAX, Relaxed);
    }
}

/// `value` within `i32`'s range.
fn clamp_i32(value: i64) -> i32 {
    value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

struct Slot {
    counts: [Counts; MAX_OWNERS],
}

impl Slot {
    const fn new() -> Self {
        Slot { counts: [const { Counts::new() }; MAX_OWNERS] }
    }
}

/// Shared, per-owner state, written rarely.
pub(crate) struct OwnerCell {
    /// Published subtree live bytes (see the module docs on peaks).
    flushed: AtomicI64,
    /// Highest subtree live bytes seen since the owner was registered.
    peak: AtomicI64,
    /// Highest subtree live bytes seen since the latest peak window opened (see
    /// [`OpenWindows`]); never above `peak`. Headrooms are computed from it.
    window_peak: AtomicI64,
    /// Bumped when the owner is retired and when its id is reused, so that stale `Owner`
    /// handles are recognised.
    pub(crate) generation: AtomicU32,
    /// Bumped when the id is reused (not when it is retired), so that a phase's saved window
    /// peak is never folded into the id's next owner (see [`OpenWindows`]).
    reuses: AtomicU32,
    /// Cumulative allocated bytes and blocks when the id was (re)registered.
    base_bytes: AtomicU64,
    base_blocks: AtomicU64,
}

impl OwnerCell {
    /// Raises the lifetime and the window peak to `live`.
    fn raise(&self, live: i64) {
        self.window_peak.fetch_max(live, Relaxed);
        self.peak.fetch_max(live, Relaxed);
    }

    const fn new() -> Self {
        OwnerCell {
            flushed: AtomicI64::new(0),
            peak: AtomicI64::new(0),
            window_peak: AtomicI64::new(0),
            generation: AtomicU32::new(0),
            reuses: AtomicU32::new(0),
            base_bytes: AtomicU64::new(0),
            base_blocks: AtomicU64::new(0),
        }
    }
}

static SLOTS: [Slot; MAX_THREAD_SLOTS] = [const { Slot::new() }; MAX_THREAD_SLOTS];
static SHARED_SLOT: Slot = Slot::new();
/// Where a thread without a slot of its own counts on the fast path, so that the fast path
/// needs no test for "has a slot": its headroom and floor send every allocation and free out
/// of line at once, where it is counted for real (in a slot taken then, or in the shared
/// slot). Written by many threads at once with plain stores, its counters mean nothing and
/// no reader sums them; its limits are never written. Initialised data, as its limits are
/// not zero: 256 KiB of the binary, of which only the pages of owners used by a thread's
/// first allocation (or after its exit) are ever touched.
static TRAP: Slot = Slot { counts: [const { Counts::looking() }; MAX_OWNERS] };
/// Who holds each slot: 0 when free, else the holder's [`exit_hook::holder`] (process and
/// thread id on Linux), by which a slot whose thread is gone without handing it back is found
/// and taken again (see [`reclaim_slot`]).
static SLOT_HOLDER: [AtomicU64; MAX_THREAD_SLOTS] = [const { AtomicU64::new(0) }; MAX_THREAD_SLOTS];
/// Where the next look for a slot to take again starts (see [`reclaim_slot`]).
static RECLAIM_CURSOR: AtomicUsize = AtomicUsize::new(0);
/// How many slots a thread that finds none free looks at for one whose thread is gone.
const RECLAIM_LOOKS: usize = 8;
/// One past the highest slot ever taken: readers sum no further.
static SLOTS_HIGH: AtomicUsize = AtomicUsize::new(0);
pub(crate) static OWNERS: [OwnerCell; MAX_OWNERS] = [const { OwnerCell::new() }; MAX_OWNERS];
/// Scopes entered on each owner and not yet dropped (see [`pin`]): a row per thread slot, so
/// that threads entering the same owner never write one cache line, and a last row shared by
/// threads without a slot of their own. 4 MiB of `.bss`, touched only where used.
static SCOPES: [[AtomicU32; MAX_OWNERS]; MAX_THREAD_SLOTS + 1] =
    [const { [const { AtomicU32::new(0) }; MAX_OWNERS] }; MAX_THREAD_SLOTS + 1];
/// Each owner's parent. Read on every allocation and free, written only when an owner is
/// registered or moved: kept apart from the cells that are written on publication.
/// The process itself has none ([`NO_PARENT`]): so a child whose parent is top-level is told
/// by one comparison, `PARENTS[parent] == PROCESS`, that also rules out the process.
static PARENTS: [AtomicU16; MAX_OWNERS] = {
    let mut parents = [const { AtomicU16::new(PROCESS) }; MAX_OWNERS];
    #[allow(clippy::indexing_slicing, reason = "constant evaluation: checked at compile time")]
    {
        parents[PROCESS as usize] = AtomicU16::new(NO_PARENT);
    }
    parents
};

/// The slot index of a thread that has not allocated yet.
const UNASSIGNED: usize = usize::MAX;
/// The slot index meaning "count in the shared slot".
const SHARED: usize = MAX_THREAD_SLOTS;
/// Owner ids are below this power of two, so `id & ID_MASK` is always in bounds.
const ID_MASK: usize = MAX_OWNERS - 1;
/// Set in the *tag* of an owner that has a parent other than the process (a child). The
/// allocation path stores the tag in blocks and thread state, so that the common case — a
/// top-level owner — needs no look-up of the parent: only tags with this bit walk ancestors.
/// Stable for an id's life: children stay children when moved (`transfer_to`), and an id
/// changes kind only when reused, which needs every block of its previous owner freed.
pub(crate) const CHILD_BIT: u16 = 0x8000;
const _: () = assert!(MAX_OWNERS <= CHILD_BIT as usize);
const _: () = assert!(MAX_OWNERS.is_power_of_two());

struct ThreadState {
    owner: Cell<u16>,
    /// `SLOTS[slot].counts[0]`, or [`TRAP`]'s while the thread has no slot of its own.
    base: Cell<*const Counts>,
    /// `base + owner`: the current owner's counters.
    current: Cell<*const Counts>,
    slot: Cell<usize>,
    /// Owner scopes entered on this thread and not yet ended (see `owner::OwnerScope`).
    open_scopes: Cell<u32>,
}

thread_local! {
    // `const`-initialised with no destructor: usable at any point of a thread's life,
    // including while other thread-locals are being destroyed.
    static STATE: ThreadState = const {
        ThreadState {
            owner: Cell::new(ROOT),
            base: Cell::new(trap_base()),
            current: Cell::new(trap_base().wrapping_add(ROOT as usize & ID_MASK)),
            slot: Cell::new(UNASSIGNED),
            open_scopes: Cell::new(0),
        }
    };
}

/// `base + id` with the id masked into range: for a `base` that is a slot's (or the trap's)
/// `counts`, a pointer into that same array.
#[inline(always)]
fn counts_in(base: *const Counts, id: u16) -> *const Counts {
    base.wrapping_add(id as usize & ID_MASK)
}

/// Whether `c` is one of [`TRAP`]'s counters.
#[inline(always)]
fn in_trap(c: &Counts) -> bool {
    let start = trap_base().addr();
    (c as *const Counts).addr().wrapping_sub(start) < std::mem::size_of::<Slot>()
}

/// `&table[index & ID_MASK]`: the one way a per-owner table is indexed, so that the
/// allocation path cannot index out of range (the hot path must not panic, RELIABILITY RTF-7).
///
/// A macro rather than a function taking `&[T; MAX_OWNERS]`: it borrows the one element
/// only. The compiled code is the same either way, but Miri retags a reference to a table
/// of atomics element by element, so a function made every call cost Miri 4096 retags (and a
/// whole slot's 37 000 fields where the table was a slot's counters): a test binary took
/// eight minutes to start under Miri.
macro_rules! masked {
    ($table:expr, $index:expr) => {{
        #[allow(
            clippy::indexing_slicing,
            reason = "index & ID_MASK < MAX_OWNERS, the length (asserted a power of two \
                      above): never out of range, and the compiler drops the bounds check"
        )]
        let element = &$table[($index) & ID_MASK];
        element
    }};
}

/// Owner `id`'s counters in slot `slot` (`SHARED` for the shared slot), borrowing that one
/// element only (see [`masked!`]).
fn counts_at(slot: usize, id: usize) -> &'static Counts {
    if slot < MAX_THREAD_SLOTS {
        masked!(SLOTS[slot].counts, id)
    } else {
        masked!(SHARED_SLOT.counts, id)
    }
}

/// The first of slot `slot`'s counters, as the thread state keeps it: a raw pointer to the
/// whole array (no reference is taken, so none is retagged), `None` for the shared slot.
fn slot_base(slot: usize) -> Option<*const Counts> {
    #[allow(clippy::indexing_slicing, reason = "`slot` is checked against the length first")]
    (slot < MAX_THREAD_SLOTS).then(|| (&raw const SLOTS[slot].counts).cast::<Counts>())
}

/// The first of the trap's counters, as [`slot_base`]; also where a new thread's state starts.
const fn trap_base() -> *const Counts {
    (&raw const TRAP.counts).cast::<Counts>()
}

/// The owner current on this thread.
#[inline(always)]
pub(crate) fn current() -> u16 {
    STATE.with(|s| s.owner.get())
}

/// The tag the allocation path uses for owner `id`: the id, with [`CHILD_BIT`] for children.
#[inline]
pub(crate) fn tag_of(id: u16) -> u16 {
    let index = id as usize & ID_MASK;
    if masked!(PARENTS, index).load(Relaxed) == PROCESS || index == PROCESS as usize {
        index as u16
    } else {
        index as u16 | CHILD_BIT
    }
}

/// Opens an owner scope on this thread: makes the owner with tag `owner` (see [`tag_of`])
/// current and returns the previous tag and the scope's depth (how many scopes are open
/// with it).
#[inline]
pub(crate) fn open_scope(owner: u16) -> (u16, u32) {
    STATE.with(|s| {
        s.current.set(counts_in(s.base.get(), owner));
        let depth = s.open_scopes.get().wrapping_add(1);
        s.open_scopes.set(depth);
        (s.owner.replace(owner), depth)
    })
}

/// How many owner scopes are open on this thread: the depth of the innermost.
#[inline]
pub(crate) fn scope_depth() -> u32 {
    STATE.with(|s| s.open_scopes.get())
}

/// Ends the innermost scope, of depth `depth`: makes `previous` current again.
#[inline]
pub(crate) fn close_scope(previous: u16, depth: u32) {
    STATE.with(|s| {
        s.current.set(counts_in(s.base.get(), previous));
        s.owner.set(previous);
        s.open_scopes.set(depth.wrapping_sub(1));
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

/// Adds `by` to a counter this thread alone writes: a load and a store, never a locked
/// read-modify-write. Stored with `Release` (on x86 a plain store): for the allocation
/// counters, so that a reader that sees an allocation also sees every free its thread
/// counted before it (see [`read_cut`]); for the free counters, so that the registry, once
/// it sees an owner's last block freed, also sees everything the freeing thread wrote for
/// that owner before (see [`credit`]).
#[inline(always)]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Release);
}

/// Counts an allocation of `size` bytes by the current owner.
///
/// The fast path: the owner's counters in this thread's slot (or the trap), reached through
/// a pointer the thread keeps. A child also counts at its parent's level (inline) and at any
/// further levels (out of line); peaks, publication and threads without a slot of their own
/// are out of line and rare.
#[inline(always)]
pub(crate) fn charge_here(here: Here, size: usize) {
    // SAFETY: `current` points into this thread's own slot, which lives in a `static` and has
    // this thread as its only writer until it exits, or into the trap, a `static` too (see
    // `ThreadState` and `counts_in`).
    let c = unsafe { &*here.counts };
    bump(&c.alloc_bytes, size as u64);
    bump(&c.alloc_blocks, 1);
    let pending = c.pending.load(Relaxed).wrapping_add(size as i64);
    c.pending.store(pending, Relaxed);
    if pending > c.headroom.load(Relaxed) {
        // Rare for a top-level owner; every time for a child (see `Counts::child_headroom`).
        if here.owner & CHILD_BIT == 0 || pending > c.headroom_of(true) {
            return charged_past_headroom(c, here.owner, size, pending);
        }
        // The slot's base, set together with `current`.
        let base = STATE.with(|s| s.base.get());
        if base == trap_base() {
            // A child in the trap goes out too: the trap's pending bytes are written by every
            // slot-less thread at once, and next to a block of over 2 GiB they pass a child's
            // `i32` limits, which the trap's then fail to send it out.
            return charged_past_headroom(c, here.owner, size, pending);
        }
        let parent = masked!(PARENTS, here.owner as usize).load(Relaxed);
        ancestors::<true>(base, parent, size as i64);
    }
}

/// Counts an allocation of `size` bytes by `owner`, which is not the current one (the side
/// table had no room and the block went to the overflow owner).
#[cold]
#[inline(never)]
pub(crate) fn charge(owner: u16, size: usize) {
    let base = STATE.with(|s| s.base.get());
    charge_here(Here { owner, counts: counts_in(base, owner) }, size);
}

/// Counts a free of `size` bytes of a block owned by `owner`, on this thread.
#[inline(always)]
pub(crate) fn credit(owner: u16, size: usize) {
    let base = STATE.with(|s| s.base.get());
    // SAFETY: `base` is this thread's own slot or the trap (see `charge_here`); `counts_in`
    // keeps the index inside its `counts` array.
    let c = unsafe { &*counts_in(base, owner) };
    let pending = c.pending.load(Relaxed).wrapping_sub(size as i64);
    c.pending.store(pending, Relaxed);
    if pending < c.floor.load(Relaxed) {
        // Rare for a top-level owner; every time for a child, as in `charge_here` (and the
        // trap's children out, as there).
        if owner & CHILD_BIT == 0 || pending < c.floor_of(true) || base == trap_base() {
            credited_past_floor(c, base, owner, size, pending);
        } else {
            ancestors::<false>(base, masked!(PARENTS, owner as usize).load(Relaxed), size as i64);
        }
    }
    // Last, and with `Release`: once the free counters show the owner's last block freed,
    // the registry may reuse its id and clear its bookkeeping (`reset_for_new_owner`, which
    // reads them with `Acquire`), so every write above must be visible before. Counted the
    // other way round, a thread stopped between the two could write its `pending` (or
    // publish, or raise a peak) into the next owner of the id. In the trap (a thread without
    // a slot, counted for real out of line) these two stores count nothing anyone reads.
    bump(&c.free_bytes, size as u64);
    bump(&c.free_blocks, 1);
}

/// An allocation took the slot's pending bytes of `owner` past its headroom: count it for
/// real if that was the trap (the thread has no slot), otherwise look at the peak; then go on
/// to the ancestors' levels as [`charge_here`] would have.
#[cold]
#[inline(never)]
fn charged_past_headroom(c: &Counts, owner: u16, size: usize, pending: i64) {
    if in_trap(c) {
        // Keeps the trap's (meaningless) pending bytes far from the limits' extremes.
        c.pending.store(0, Relaxed);
        return charge_cold(owner, size);
    }
    raise_peak(c, owner, pending);
    if owner & CHILD_BIT != 0 {
        let base = STATE.with(|s| s.base.get());
        ancestors::<true>(base, masked!(PARENTS, owner as usize).load(Relaxed), size as i64);
    }
}

/// A free took the slot's pending bytes of `owner` below its floor: as
/// [`charged_past_headroom`].
#[cold]
#[inline(never)]
fn credited_past_floor(c: &Counts, base: *const Counts, owner: u16, size: usize, pending: i64) {
    if in_trap(c) {
        c.pending.store(0, Relaxed);
        return credit_cold(owner, size);
    }
    past_floor(c, owner, pending, size as i64);
    if owner & CHILD_BIT != 0 {
        ancestors::<false>(base, masked!(PARENTS, owner as usize).load(Relaxed), size as i64);
    }
}

/// A descendant's allocation at the level of ancestor `owner` (its tag), a child if `CHILD`.
#[inline(always)]
fn grow<const CHILD: bool>(c: &Counts, owner: u16, size: i64) {
    let pending = c.pending.load(Relaxed).wrapping_add(size);
    c.pending.store(pending, Relaxed);
    if pending > c.headroom_of(CHILD) {
        // A possible new peak, or time to publish: both out of line.
        raise_peak(c, owner, pending);
    }
}

/// A descendant's free at ancestor `owner`'s level, as [`grow`].
#[inline(always)]
fn shrink<const CHILD: bool>(c: &Counts, owner: u16, size: i64) {
    let pending = c.pending.load(Relaxed).wrapping_sub(size);
    c.pending.store(pending, Relaxed);
    if pending < c.floor_of(CHILD) {
        // A peak to record, or time to publish: both out of line.
        past_floor(c, owner, pending, size);
    }
}

/// A free took `pending` below the slot's `floor` for `owner`: if the slot was growing at the
/// owner's peak without recording it, the bytes just before this free are the peak; then
/// publish if the slot has freed enough.
#[cold]
#[inline(never)]
fn past_floor(c: &Counts, owner: u16, pending: i64, size: i64) {
    if c.floor_of(owner & CHILD_BIT != 0) == FLOOR {
        // Below the publication floor itself: nothing unrecorded.
        return publish(c, owner);
    }
    c.set_floor_of(owner, FLOOR);
    let index = owner as usize & ID_MASK;
    let elsewhere = record_peak(c, index, pending.wrapping_add(size));
    if pending < FLOOR {
        publish(c, owner);
    } else {
        set_headroom(c, owner, masked!(OWNERS, index), pending, elsewhere);
    }
}

/// Raises owner `index`'s peak (and, for a top-level owner, the process's) to the live size
/// when this slot's pending bytes are `pending`: the published total plus `pending` plus
/// every other slot's pending bytes, which it returns.
fn record_peak(c: &Counts, index: usize, pending: i64) -> i64 {
    // Other threads' unpublished bytes of this owner: frees of its blocks on other threads
    // (negative) and their own allocations (positive). With them the estimate is the exact
    // live size whenever no other thread is mid-update.
    //
    // The published total first, then the other slots' unpublished bytes: a slot that
    // publishes clears its `pending` before adding it to `flushed` (with `Release`), so read
    // in this order its bytes are counted at most once. Read the other way round, a
    // publication between the two reads counted them twice, up to 64 KiB above any size that
    // was ever live.
    let cell = masked!(OWNERS, index);
    let flushed = cell.flushed.load(Acquire);
    let elsewhere = pending_elsewhere(index, c);
    cell.raise(flushed.wrapping_add(pending).wrapping_add(elsewhere));
    if masked!(PARENTS, index).load(Relaxed) == PROCESS {
        raise_process_peak(Some(c), pending);
    }
    elsewhere
}

/// Raises the process's peak to its live size when this slot's pending bytes of a top-level
/// owner (counters `c`, if any) are `pending`.
///
/// The process's published total alone overstates what it holds while slots keep frees of
/// *other* top-level owners unpublished (up to 64 KiB each): raised from it, the peak of a
/// process whose 100 owners had each freed 60 000 bytes unpublished stood 5.9 MB above
/// anything it ever held. So the estimate from the published total only decides whether
/// the peak could rise at all; if it could, every slot's pending bytes of every top-level
/// owner are summed (published total first, as in [`record_peak`]). That sum is exact
/// whenever no other thread is mid-update, and is read only while the process grows past
/// its window peak.
fn raise_process_peak(c: Option<&Counts>, pending: i64) {
    let process = masked!(OWNERS, PROCESS as usize);
    let estimate = process.flushed.load(Relaxed).wrapping_add(pending);
    // Against the window peak (never above the lifetime one), so that a phase sees the process
    // grow past its own start and not only past every earlier peak: compared with the
    // lifetime peak, a phase after a larger spike reported no process peak above its end.
    if estimate > process.window_peak.load(Relaxed) {
        process.raise(process_live(c, pending));
    }
}

/// The process's live bytes: its published total plus every slot's pending bytes of every
/// top-level owner, with `pending` in place of those in counters `c`.
fn process_live(c: Option<&Counts>, pending: i64) -> i64 {
    let process = masked!(OWNERS, PROCESS as usize);
    // `Acquire`, before the pending bytes: see `record_peak`.
    let mut live = process.flushed.load(Acquire).wrapping_add(pending);
    let ids = IDS_HIGH.load(Relaxed).min(MAX_OWNERS);
    for id in (0..ids).filter(|&id| masked!(PARENTS, id).load(Relaxed) == PROCESS) {
        for other in slots_in_use().map(|slot| counts_at(slot, id)) {
            if !c.is_some_and(|c| std::ptr::eq(other, c)) {
                live = live.wrapping_add(other.pending.load(Relaxed));
            }
        }
    }
    live
}

/// The ancestors' levels of a child's allocation (`GROW`) or free, in this thread's slot at
/// `base`: the parent inline (a `Retained` item's parent most often is top-level), any
/// further levels out of line.
#[inline(always)]
fn ancestors<const GROW: bool>(base: *const Counts, parent: u16, size: i64) {
    // SAFETY: `base` is this thread's own slot (`charge_here` and `credit` send a child in
    // the trap out before), and `counts_in` keeps the index inside its `counts`.
    let c = unsafe { &*counts_in(base, parent) };
    let next = masked!(PARENTS, parent as usize).load(Relaxed);
    if next == PROCESS {
        return level::<GROW, false>(c, parent, size);
    }
    // A parent that is a child itself, or (after a move) the process, whose parent is
    // `NO_PARENT`: the rare cases.
    if parent != PROCESS {
        level::<GROW, true>(c, parent | CHILD_BIT, size);
        higher_ancestors::<GROW>(base, next, size);
    }
}

/// The levels of a child's ancestors from `id` up, as [`ancestors`].
#[inline(never)]
fn higher_ancestors<const GROW: bool>(base: *const Counts, mut id: u16, size: i64) {
    for _ in 0..MAX_DEPTH {
        if id == PROCESS {
            return;
        }
        let next = masked!(PARENTS, id as usize).load(Relaxed);
        // SAFETY: `base` is this thread's own slot (`charge_here` and `credit` send a child
        // in the trap out before), and `counts_in` keeps the index inside its `counts`.
        let c = unsafe { &*counts_in(base, id) };
        if next == PROCESS {
            level::<GROW, false>(c, id, size);
        } else {
            level::<GROW, true>(c, id | CHILD_BIT, size);
        }
        id = next;
    }
}

/// One ancestor's level (`owner` is its tag; a child if `CHILD`): [`grow`] or [`shrink`].
#[inline(always)]
fn level<const GROW: bool, const CHILD: bool>(c: &Counts, owner: u16, size: i64) {
    if GROW {
        grow::<CHILD>(c, owner, size)
    } else {
        shrink::<CHILD>(c, owner, size)
    }
}

/// Adds this slot's pending bytes of `owner` to the owner's published total (and, for a
/// top-level owner, the process's), raising peaks.
#[cold]
#[inline(never)]
fn publish(c: &Counts, owner: u16) {
    let index = owner as usize & ID_MASK;
    let pending = c.pending.load(Relaxed);
    c.pending.store(0, Relaxed);
    let cell = masked!(OWNERS, index);
    // `Release`: a reader that sees the bytes in `flushed` sees them gone from `pending` (see
    // `record_peak`).
    let now = cell.flushed.fetch_add(pending, Release).wrapping_add(pending);
    // With the other slots' unpublished bytes, as in `raise_peak`: the published total alone
    // overstates the live size while other threads hold unpublished frees.
    let elsewhere = pending_elsewhere(index, c);
    cell.raise(now.wrapping_add(elsewhere));
    if masked!(PARENTS, index).load(Relaxed) == PROCESS {
        // `Release`, as the owner's: a reader that sees the bytes here sees them gone from
        // `pending` (see `process_live`).
        masked!(OWNERS, PROCESS as usize).flushed.fetch_add(pending, Release);
        raise_process_peak(Some(c), 0);
    }
    set_headroom(c, owner, cell, 0, elsewhere);
}

/// `pending` has passed this slot's headroom for `owner`: publish it if it is large,
/// otherwise raise the owner's peak (and, for a top-level owner, the process's) to the
/// published total plus this thread's pending bytes.
#[cold]
#[inline(never)]
fn raise_peak(c: &Counts, owner: u16, pending: i64) {
    if pending > FLUSH_BYTES {
        return publish(c, owner);
    }
    let index = owner as usize & ID_MASK;
    let elsewhere = record_peak(c, index, pending);
    set_headroom(c, owner, masked!(OWNERS, index), pending, elsewhere);
}

/// `published` (owner `index`'s published total, read first) plus every slot's `pending` of it:
/// its live size whenever no thread is mid-update.
fn plus_pending(index: usize, published: i64) -> i64 {
    slots_in_use()
        .fold(published, |sum, slot| sum.wrapping_add(counts_at(slot, index).pending.load(Relaxed)))
}

/// The sum of `pending` for owner `index` over every slot but `mine`.
fn pending_elsewhere(index: usize, mine: &Counts) -> i64 {
    slots_in_use()
        .map(|slot| counts_at(slot, index))
        .filter(|c| !std::ptr::eq(*c, mine))
        .fold(0i64, |sum, c| sum.wrapping_add(c.pending.load(Relaxed)))
}

/// Sets the slot's headroom for the owner with tag `owner`: the pending bytes at which its peak
/// could rise, but never past the point where `pending` must be published.
fn set_headroom(c: &Counts, owner: u16, cell: &OwnerCell, pending: i64, elsewhere: i64) {
    let room = cell
        .window_peak
        .load(Relaxed)
        .wrapping_sub(cell.flushed.load(Relaxed))
        .wrapping_sub(elsewhere);
    if room <= pending {
        // At the peak: grow to the point of publication without looking again, and let the
        // next free record the peak (which is always reached just before a decrease).
        // Looking at every allocation of a growing owner cost four atomic maxima each: a
        // third of all the instructions tracking added to parsing 10-200 KiB JSON documents.
        c.set_headroom_of(owner, FLUSH_BYTES);
        c.set_floor_of(owner, AT_PEAK);
    } else {
        c.set_headroom_of(owner, room.min(FLUSH_BYTES));
    }
}

/// Shared-slot counting: publish a change at every level at once (no pending).
fn publish_directly(owner: u16, delta: i64) {
    let mut id = owner;
    for _ in 0..=MAX_DEPTH {
        let cell = masked!(OWNERS, id as usize);
        // `AcqRel`: the published total before the slots' pending bytes, as in `record_peak`.
        let now = cell.flushed.fetch_add(delta, AcqRel).wrapping_add(delta);
        if id == PROCESS {
            if delta > 0 {
                raise_process_peak(None, 0);
            }
            return;
        }
        if delta > 0 {
            // With the slots' unpublished bytes: the published total alone overstates the
            // live size while they hold unpublished frees.
            cell.raise(plus_pending(id as usize, now));
        }
        id = masked!(PARENTS, id as usize).load(Relaxed);
    }
}

/// The slow path of [`charge_here`]: the thread has no slot yet, or has none to be had.
#[cold]
#[inline(never)]
fn charge_cold(owner: u16, size: usize) {
    if let Some(base) = take_slot_if_unassigned() {
        return charge_here(Here { owner, counts: counts_in(base, owner) }, size);
    }
    let c = masked!(SHARED_SLOT.counts, owner as usize);
    c.alloc_bytes.fetch_add(size as u64, Release);
    c.alloc_blocks.fetch_add(1, Release);
    publish_directly(owner, size as i64);
}

/// The slow path of [`credit`], as [`charge_cold`].
#[cold]
#[inline(never)]
fn credit_cold(owner: u16, size: usize) {
    if take_slot_if_unassigned().is_some() {
        return credit(owner, size);
    }
    // Published first and the frees counted after, as in `credit`.
    publish_directly(owner, (size as i64).wrapping_neg());
    let c = masked!(SHARED_SLOT.counts, owner as usize);
    c.free_bytes.fetch_add(size as u64, Release);
    c.free_blocks.fetch_add(1, Release);
}

/// For a thread that never allocated: takes a slot and returns its counters' base.
fn take_slot_if_unassigned() -> Option<*const Counts> {
    if STATE.with(|s| s.slot.get()) != UNASSIGNED {
        return None;
    }
    let index = take_slot();
    slot_base(index)
}

/// Gives this thread a slot of its own (or the shared one) and remembers it.
fn take_slot() -> usize {
    let me = exit_hook::holder();
    let mut claimed = None;
    for (i, holder) in SLOT_HOLDER.iter().enumerate() {
        if holder.load(Relaxed) == 0 && holder.compare_exchange(0, me, Acquire, Relaxed).is_ok() {
            claimed = Some((i, holder));
            break;
        }
    }
    let mut taken = SHARED;
    if let Some((i, holder)) = claimed.or_else(|| reclaim_slot(me)) {
        if exit_hook::register(i) {
            // `SeqCst`: a scope this thread enters is counted in row `i` of `SCOPES`,
            // which `open_scopes` must then scan (see `pin`).
            SLOTS_HIGH.fetch_max(i.wrapping_add(1), SeqCst);
            taken = i;
        } else {
            // Without a way to hear of this thread's exit the slot would be lost for good.
            holder.store(0, Release);
        }
    }
    // `try_with` cannot fail for a const thread-local without destructor; ignoring is fine.
    let _ = STATE.try_with(|s| {
        s.slot.set(taken);
        s.base.set(slot_base(taken).unwrap_or_else(trap_base));
        s.current.set(counts_in(s.base.get(), s.owner.get()));
    });
    taken
}

/// Called when a thread that holds slot `index` exits (Unix only: elsewhere no thread gets a
/// slot of its own, see `exit_hook`).
#[cfg_attr(not(unix), allow(dead_code))]
fn release_slot(index: usize) {
    let _ = STATE.try_with(|s| {
        s.slot.set(SHARED);
        s.base.set(trap_base());
        s.current.set(counts_in(s.base.get(), s.owner.get()));
    });
    if let Some(holder) = SLOT_HOLDER.get(index) {
        holder.store(0, Release);
    }
}

/// No slot is free: looks at up to [`RECLAIM_LOOKS`] slots, from where the last look
/// stopped, for one whose thread is gone without handing it back, and takes it as `me`.
///
/// A thread hands its slot back from a `pthread` key destructor, which glibc calls in at most
/// `PTHREAD_DESTRUCTOR_ITERATIONS` (4) rounds: a thread whose first allocation comes in the
/// last round, from another key's destructor, registers that destructor too late for it to
/// run, and its slot stays taken after it exits. 300 such threads took all 256 slots, after
/// which every new thread counted in the shared slot for the rest of the process
/// (`tests/thread_slots_exit.rs`). A slot is taken again only once the kernel no longer knows
/// its thread ([`exit_hook::gone`]), when no more of its code runs: its counts stay in the
/// slot, continued by the new holder as after a hand-back. Its last stores come before its
/// exit, and the kernel reports it gone only after that exit: both sides cross into the
/// kernel, which orders them on the hardware (outside the language's model: there is no
/// release store of the gone thread's to pair with this `Acquire`).
///
/// Costs a thread that finds no slot free up to 8 `tgkill` calls with signal 0, once, at its
/// first allocation: in a process with more than 256 threads alive, every thread past them.
fn reclaim_slot(me: u64) -> Option<(usize, &'static AtomicU64)> {
    for _ in 0..RECLAIM_LOOKS {
        let i = RECLAIM_CURSOR.fetch_add(1, Relaxed) & (MAX_THREAD_SLOTS - 1);
        let holder = SLOT_HOLDER.get(i)?;
        let seen = holder.load(Acquire);
        if seen != 0
            && exit_hook::gone(seen)
            && holder.compare_exchange(seen, me, AcqRel, Relaxed).is_ok()
        {
            return Some((i, holder));
        }
    }
    None
}
const _: () = assert!(MAX_THREAD_SLOTS.is_power_of_two());
/// For tests: how many thread slots are taken, and whether the calling thread counts in a slot
/// of its own (it has allocated, and found a slot free). Not part of the API.
#[doc(hidden)]
pub fn __thread_slots_for_tests() -> (usize, bool) {
    let taken = SLOT_HOLDER.iter().filter(|holder| holder.load(Acquire) != 0).count();
    (taken, STATE.with(|s| s.slot.get()) < MAX_THREAD_SLOTS)
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
        let index = value.addr().wrapping_sub(1);
        super::release_slot(index);
    }

    fn key() -> Option<libc::pthread_key_t> {
        let known = KEY.load(Acquire);
        if known != 0 {
            return Some(known.wrapping_sub(1) as libc::pthread_key_t);
        }
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer and `on_exit` has the destructor signature.
        if unsafe { libc::pthread_key_create(&mut key, Some(on_exit)) } != 0 {
            return None;
        }
        match KEY.compare_exchange(0, (key as usize).wrapping_add(1), AcqRel, Acquire) {
            Ok(_) => Some(key),
            Err(winner) => {
                // Another thread created one first; use theirs and drop ours.
                // SAFETY: `key` was created above and never handed out.
                unsafe { libc::pthread_key_delete(key) };
                Some(winner.wrapping_sub(1) as libc::pthread_key_t)
            }
        }
    }

    /// The calling thread as a slot's holder: its process id and thread id, never 0.
    #[cfg(all(target_os = "linux", not(miri)))]
    pub(super) fn holder() -> u64 {
        // SAFETY: `getpid` and `gettid` take nothing and cannot fail.
        let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
        (u64::from(pid as u32) << 32) | u64::from(tid as u32)
    }

    /// Whether the thread that took a slot as `holder` is gone: a thread of this process
    /// that the kernel no longer knows. A holder from before a `fork` is never gone in the
    /// child (the thread that forked lives on there under another id, still counting in the
    /// slot); nor is a thread id the kernel has given to a new thread of this process since.
    #[cfg(all(target_os = "linux", not(miri)))]
    pub(super) fn gone(holder: u64) -> bool {
        let (pid, tid) = ((holder >> 32) as libc::pid_t, holder as u32 as libc::pid_t);
        // SAFETY: `getpid` takes nothing and cannot fail.
        if tid <= 0 || pid != unsafe { libc::getpid() } {
            return false;
        }
        // SAFETY: signal 0 sends nothing: the call only asks whether thread `tid` of process
        // `pid` exists.
        let sent = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) };
        sent != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }

    /// Elsewhere (and under Miri) a holder is not told apart: a slot whose thread is gone
    /// without handing it back stays taken.
    #[cfg(not(all(target_os = "linux", not(miri))))]
    pub(super) fn holder() -> u64 {
        1
    }

    #[cfg(not(all(target_os = "linux", not(miri))))]
    pub(super) fn gone(_holder: u64) -> bool {
        false
    }

    /// Arranges for `release_slot(index)` when the calling thread exits.
    pub(super) fn register(index: usize) -> bool {
        let Some(key) = key() else { return false };
        // A pointer without provenance: an integer that is never dereferenced.
        let value = std::ptr::without_provenance::<libc::c_void>(index.wrapping_add(1));
        // SAFETY: `key` is a live key; `value` is only ever handed back to `on_exit`.
        unsafe { libc::pthread_setspecific(key, value) == 0 }
    }
}

#[cfg(not(unix))]
mod exit_hook {
    //! No portable exit hook without allocating: every thread counts in the shared slot.
    pub(super) fn register(_index: usize) -> bool {
        false
    }

    pub(super) fn holder() -> u64 {
        1
    }

    pub(super) fn gone(_holder: u64) -> bool {
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
    /// Takes away a reused id's base: its previous holders' totals, allocated and freed alike
    /// (their live remainder was zero when the id was reused).
    fn sub_absorbed(&mut self, (bytes, blocks): (u64, u64)) {
        self.alloc_bytes = self.alloc_bytes.wrapping_sub(bytes);
        self.free_bytes = self.free_bytes.wrapping_sub(bytes);
        self.alloc_blocks = self.alloc_blocks.wrapping_sub(blocks);
        self.free_blocks = self.free_blocks.wrapping_sub(blocks);
    }
    /// A cut's first pass over one slot's counters of one owner (see [`read_cut`]).
    fn add_allocations(&mut self, c: &Counts) {
        self.alloc_bytes = self.alloc_bytes.wrapping_add(c.alloc_bytes.load(Acquire));
        self.alloc_blocks = self.alloc_blocks.wrapping_add(c.alloc_blocks.load(Acquire));
    }
    /// A cut's second pass. `Acquire`: see `credit` (the registry reuses an id on a reading).
    fn add_frees(&mut self, c: &Counts) {
        self.free_bytes = self.free_bytes.wrapping_add(c.free_bytes.load(Acquire));
        self.free_blocks = self.free_blocks.wrapping_add(c.free_blocks.load(Acquire));
    }
    pub(crate) fn add(&mut self, other: &Raw) {
        self.alloc_bytes = self.alloc_bytes.wrapping_add(other.alloc_bytes);
        self.alloc_blocks = self.alloc_blocks.wrapping_add(other.alloc_blocks);
        self.free_bytes = self.free_bytes.wrapping_add(other.free_bytes);
        self.free_blocks = self.free_blocks.wrapping_add(other.free_blocks);
    }
}

/// The slots readers sum over: those ever taken, then the shared slot ([`SHARED`]). Indices,
/// read through [`counts_at`], rather than references to whole slots (see [`masked!`]).
///
/// `SeqCst` for [`open_scopes`] (see [`pin`]); on x86 the same plain load as `Relaxed`.
fn slots_in_use() -> impl Iterator<Item = usize> {
    let high = SLOTS_HIGH.load(SeqCst).min(MAX_THREAD_SLOTS);
    (0..high).chain(std::iter::once(SHARED))
}

/// Sums the counters of every owner in `ids` over every slot into `raws` (one each, same
/// order) as one *cut*: every allocation counter first, with `Acquire`, then every free
/// counter. Exact once every counted call happens-before the read; while threads allocate
/// and free, never above what the owners held together at one moment between the two
/// passes, so a reading can safely lift a peak.
///
/// Reading each owner (or each slot) whole, one after another, was not: a thread that moved
/// a block from one owner to another with `realloc` (a free under the first, then an
/// allocation under the second) between the reads of the two was counted twice, and a
/// reader on another thread lifted the subtree's peak to twice the block, which never was
/// (`tests/it/peaks.rs`; a CI run of the shadow model caught it as a peak 15 682 bytes too
/// high). In a cut the allocations read are at most those counted by the time of the last
/// allocation read, and the frees read at least those: a thread's allocation counters are
/// stored with `Release`, so seeing one shows every free its thread counted before it.
/// With `Relaxed` on both sides a reader could also pair new allocations with stale frees
/// within one slot: Miri, which models weak memory, found a child that never held more than
/// 6 blocks read as holding 14 (x86 orders stores anyway; ARM does not).
///
/// The slots are listed again for the frees: a thread that took its slot after the first
/// pass may have freed blocks whose allocations were read in it.
pub(crate) fn read_cut(ids: &[u16], raws: &mut [Raw]) {
    for (raw, &id) in raws.iter_mut().zip(ids) {
        slots_in_use().for_each(|slot| raw.add_allocations(counts_at(slot, id as usize)));
    }
    for (raw, &id) in raws.iter_mut().zip(ids) {
        slots_in_use().for_each(|slot| raw.add_frees(counts_at(slot, id as usize)));
    }
    for (raw, &id) in raws.iter_mut().zip(ids) {
        let cell = masked!(OWNERS, id as usize);
        raw.sub_absorbed((cell.base_bytes.load(Relaxed), cell.base_blocks.load(Relaxed)));
    }
}

/// Sums `id`'s own counters over every slot (a cut, see [`read_cut`]), minus what a
/// previous holder of the id allocated.
pub(crate) fn read_own(id: u16) -> Raw {
    let mut raw = [Raw::default()];
    read_cut(&[id], &mut raw);
    let [raw] = raw;
    raw
}

/// The own counters of every id in `ids`, read together as one cut (see [`read_cut`]): what
/// a reading of a subtree, or of every owner, must use, so that a block moved between two
/// of them during the reading is not counted twice.
pub(crate) fn read_owns(ids: &[u16]) -> Vec<Raw> {
    let mut raws = vec![Raw::default(); ids.len()];
    read_cut(ids, &mut raws);
    raws
}

/// The peak subtree live bytes recorded for `id`.
pub(crate) fn read_peak(id: u16) -> u64 {
    masked!(OWNERS, id as usize).peak.load(Relaxed).max(0) as u64
}

/// Raises `id`'s peak to at least `live` (an exact reading taken by the registry).
pub(crate) fn raise_peak_to(id: u16, live: u64) {
    masked!(OWNERS, id as usize).raise(live.min(i64::MAX as u64) as i64);
}

/// A window peak that [`open_window`] replaced, and which holder of the id it was for.
#[derive(Debug, Clone, Copy)]
struct SavedWindow {
    peak: i64,
    reuses: u32,
}

/// Opens a new peak window for every owner: each window peak drops to the owner's live bytes
/// now (published plus every slot's pending), and every slot's headroom is cleared so its next
/// allocation re-reads it. Returns the window peaks it replaced (see [`OpenWindows`]).
///
/// A thread in the middle of raising a peak at this very moment may write back a headroom
/// computed from the old window; its growth in the new window is then seen only once it
/// passes that old headroom (at most the old window's peak minus the published total).
fn open_window() -> Vec<SavedWindow> {
    let ids = IDS_HIGH.load(Relaxed).min(MAX_OWNERS);
    let saved: Vec<SavedWindow> = OWNERS
        .iter()
        .take(ids)
        .enumerate()
        .map(|(index, cell)| {
            let live = if index == PROCESS as usize {
                // The process's slots hold no pending bytes of its own: its top-level
                // owners' do (see `process_live`).
                process_live(None, 0)
            } else {
                // The published total before the slots' unpublished bytes, as in
                // `record_peak`.
                plus_pending(index, cell.flushed.load(Acquire))
            };
            let reuses = cell.reuses.load(Relaxed);
            SavedWindow { peak: cell.window_peak.swap(live, Relaxed), reuses }
        })
        .collect();
    for slot in slots_in_use() {
        for c in (0..ids).map(|id| counts_at(slot, id)) {
            c.headroom.store(i64::MIN, Relaxed);
            c.child_headroom.store(i32::MIN, Relaxed);
        }
    }
    saved
}

/// Folds `saved` back into the live window peaks: the interval it covered joins the live one.
/// An id reused since (by [`reset_for_new_owner`]) keeps its new owner's window: the saved
/// peak was another owner's.
fn fold_into_live(saved: &[SavedWindow]) {
    for (cell, before) in OWNERS.iter().zip(saved) {
        if cell.reuses.load(Relaxed) == before.reuses {
            cell.window_peak.fetch_max(before.peak, Relaxed);
        }
    }
}

/// Which window of [`OpenWindows`] a phase (or a leak check) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowKey(u64);

/// What an owner that held bytes when a window opened, and whose id was freed before the
/// window closed, did in the window (see [`OpenWindows::depart`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Departed {
    /// Its id (freed, and possibly reused since).
    pub(crate) id: u16,
    /// Its full name when its id was freed.
    pub(crate) path: String,
    /// Which holder of the id it was: its registry generation (see `snapshot::OwnerKey`).
    pub(crate) generation: u32,
    /// Its subtree's cumulative allocated bytes when its id was freed.
    pub(crate) total_bytes: u64,
    /// Its subtree's highest live bytes from the window's opening to the id's freeing.
    pub(crate) peak_bytes: u64,
}

#[derive(Debug)]
struct OpenWindow {
    key: WindowKey,
    /// Every id's window peak over the interval that ended when this window opened: since the
    /// opening of the window before it in the list (see [`OpenWindows`]).
    before: Vec<SavedWindow>,
    /// Owners present at the opening, or followed since ([`OpenWindows::follow`]), whose ids
    /// were freed since.
    departed: Vec<Departed>,
    /// Owners (id, registry generation) that the window's holder follows, registered after
    /// the opening or not: a leak check's sampled owners.
    followed: std::collections::HashSet<(u16, u32)>,
}

/// The peak windows open (phases, leak checks), in the order they opened: kept by the
/// registry, and used only under its lock, so that no id is reused while windows are opened,
/// read, folded or closed.
///
/// Windows may close in any order. The openings cut time into intervals; the live window
/// peaks (`OwnerCell::window_peak`) cover the last, since the latest opening, and each open
/// window keeps the window peaks of the interval that ended at its opening. So a window's
/// peak is the highest of the intervals from its opening on: the live one and those kept by
/// the windows opened after it ([`OpenWindows::peak`]). A window that closes merges the
/// interval it kept (which ended at its opening, so belongs to the windows opened before it)
/// into the interval after it: the one the next window keeps, or the live one if it was the
/// latest. Closing once always folded it into the live one, which is right only when windows
/// close in the reverse order of their opening: with `a` opened, then `b`, and `a` closed
/// first, `a` missed its peaks from before `b` opened and `b` was handed peaks from before
/// either opened. Memory: one saved peak per id per open window.
#[derive(Debug)]
pub(crate) struct OpenWindows {
    open: Vec<OpenWindow>,
    next_key: u64,
}

impl OpenWindows {
    pub(crate) const fn new() -> OpenWindows {
        OpenWindows { open: Vec::new(), next_key: 0 }
    }

    /// Opens a window for every owner (and the process).
    pub(crate) fn open(&mut self) -> WindowKey {
        let key = WindowKey(self.next_key);
        self.next_key = self.next_key.wrapping_add(1);
        let (before, followed) = (open_window(), std::collections::HashSet::new());
        self.open.push(OpenWindow { key, before, departed: Vec::new(), followed });
        key
    }

    /// Window `key` keeps the departure of these owners (id, registry generation) too,
    /// although registered after its opening: a leak check follows the owners it sampled, so
    /// that one freed before the check ends keeps its peak. Only those: departures of every
    /// owner registered meanwhile (per-request owners) would grow without bound.
    pub(crate) fn follow(&mut self, key: WindowKey, owners: impl IntoIterator<Item = (u16, u32)>) {
        if let Some(window) = self.open.iter_mut().find(|w| w.key == key) {
            window.followed.extend(owners);
        }
    }

    fn position(&self, key: WindowKey) -> Option<usize> {
        self.open.iter().position(|w| w.key == key)
    }

    /// The highest subtree live bytes of `id` (its current holder's) since the window at
    /// `position` opened.
    fn peak_since(&self, position: usize, id: u16) -> u64 {
        let cell = masked!(OWNERS, id as usize);
        let reuses = cell.reuses.load(Relaxed);
        self.open
            .iter()
            .skip(position)
            .skip(1)
            .filter_map(|later| later.before.get(id as usize))
            .filter(|saved| saved.reuses == reuses)
            .fold(cell.window_peak.load(Relaxed), |peak, saved| peak.max(saved.peak))
            .max(0) as u64
    }

    /// The highest subtree live bytes of `id` since window `key` opened (0 for a window
    /// already closed).
    pub(crate) fn peak(&self, key: WindowKey, id: u16) -> u64 {
        self.position(key).map_or(0, |position| self.peak_since(position, id))
    }

    /// Closes window `key`: its interval merges into the next one (see [`OpenWindows`]).
    /// Returns the owners that departed while it was open. Once: closing it again does
    /// nothing.
    pub(crate) fn close(&mut self, key: WindowKey) -> Vec<Departed> {
        let Some(position) = self.position(key) else { return Vec::new() };
        let closed = self.open.remove(position);
        match self.open.get_mut(position) {
            // Opened after the closed one, so at least as long (ids only grow).
            Some(next) => {
                for (into, from) in next.before.iter_mut().zip(&closed.before) {
                    // Another holder's interval (the id was reused between the two
                    // openings) is dropped: it belongs to no window still open that this
                    // id's current holder could be read for.
                    if into.reuses == from.reuses {
                        into.peak = into.peak.max(from.peak);
                    }
                }
            }
            None => fold_into_live(&closed.before),
        }
        closed.departed
    }

    /// Owner `id` (its holder of registry generation `generation`, now at `path`, with
    /// `total_bytes` allocated by its subtree) is being freed: every open window that it was
    /// present at the opening of, or that follows it, keeps what it did there, since its id
    /// may be reused before the window closes (the peak of one registered after the opening
    /// counts from its registration, which reset the id's window peak). At most once per
    /// holder of an id per window.
    pub(crate) fn depart(&mut self, id: u16, generation: u32, path: &str, total_bytes: u64) {
        let reuses = masked!(OWNERS, id as usize).reuses.load(Relaxed);
        for position in 0..self.open.len() {
            let kept = self.open.get(position).is_some_and(|window| {
                window.before.get(id as usize).is_some_and(|saved| saved.reuses == reuses)
                    || window.followed.contains(&(id, generation))
            });
            if !kept {
                continue;
            }
            let peak_bytes = self.peak_since(position, id);
            if let Some(window) = self.open.get_mut(position) {
                let path = path.to_owned();
                window.departed.push(Departed { id, path, generation, total_bytes, peak_bytes });
            }
        }
    }
}

/// Prepares `id` for a new owner under `parent`: records the totals so far as its baseline,
/// clears every slot's unpublished bytes of it, resets its peak and parent, and bumps its
/// generation. Returns the new generation.
///
/// Called by the registry for an id that holds no bytes, has no children and is not current
/// on any thread (a retired handle enters the overflow owner), so no thread writes its
/// counters meanwhile: the thread that freed its last block counted the free counters last,
/// with `Release`, after everything else it wrote for the id (see [`credit`]), and the
/// registry saw them with `Acquire`.
pub(crate) fn reset_for_new_owner(id: u16, parent: u16) -> u32 {
    let index = id as usize & ID_MASK;
    let cell = masked!(OWNERS, index);
    cell.base_bytes.store(0, Relaxed);
    cell.base_blocks.store(0, Relaxed);
    let raw = read_own(id);
    // `alloc` totals so far become the base. The frees equal them (live was zero), so both
    // sides of `live` shift alike.
    cell.base_bytes.store(raw.alloc_bytes, Relaxed);
    cell.base_blocks.store(raw.alloc_blocks, Relaxed);
    // The previous holder's unpublished bytes sum to minus its published total. For a
    // top-level owner the process counted the published part; hand it the rest, so
    // `flushed + Σ pending` stays the live total for the process too.
    let mut residue: i64 = 0;
    for slot in slots_in_use() {
        let c = counts_at(slot, index);
        residue = residue.wrapping_add(c.pending.swap(0, Relaxed));
        // The id may change kind (child or not): both kinds' limits look again.
        c.look_again();
    }
    if masked!(PARENTS, index).load(Relaxed) == PROCESS && residue != 0 {
        masked!(OWNERS, PROCESS as usize).flushed.fetch_add(residue, Relaxed);
    }
    cell.flushed.store(0, Relaxed);
    cell.peak.store(0, Relaxed);
    cell.window_peak.store(0, Relaxed);
    cell.reuses.fetch_add(1, Relaxed);
    masked!(PARENTS, index).store(parent, Relaxed);
    IDS_HIGH.fetch_max(index.wrapping_add(1), Relaxed);
    cell.generation.fetch_add(1, Relaxed).wrapping_add(1)
}

/// The generation of id `id`'s counters now (bumped at each reuse and each retirement).
pub(crate) fn generation(id: u16) -> u32 {
    masked!(OWNERS, id as usize).generation.load(Relaxed)
}

/// Sets id `id`'s generation, so that unit tests reach its last values.
#[cfg(test)]
pub(crate) fn set_generation_for_tests(id: u16, generation: u32) {
    masked!(OWNERS, id as usize).generation.store(generation, Relaxed);
}

/// Makes a retired owner's handles stale: entering them enters the overflow owner.
///
/// `SeqCst`, as in [`pin`]: a scope entered at the same moment either sees the new
/// generation (and enters the overflow owner) or is seen by [`open_scopes`] afterwards.
pub(crate) fn retire(id: u16) -> u32 {
    masked!(OWNERS, id as usize).generation.fetch_add(1, SeqCst).wrapping_add(1)
}

/// Counts a scope about to enter `(id, generation)` in this thread's row of [`SCOPES`], so
/// that the id is not reused while the scope is open, and returns where it counted (row and
/// id, as a [`ScopePin`]) to hand back to [`unpin`]. Returns `None`, counting nothing, when
/// the handle is stale (retired or reused): the caller enters the overflow owner instead.
///
/// Counting first and checking the generation after, both `SeqCst`, pairs with [`retire`]
/// (generation bumped, then [`open_scopes`] read): of a retirement and an entry that race,
/// at least one sees the other. The count is a read-modify-write although one thread alone
/// normally writes its row: a scope dropped by a thread-local's destructor may end after
/// the thread's slot went to another thread.
pub(crate) fn pin(id: u16, generation: u32) -> Option<ScopePin> {
    let cell = OWNERS.get(id as usize)?;
    let row = STATE.with(|s| s.slot.get()).min(SHARED);
    let count = SCOPES.get(row)?.get(id as usize)?;
    count.fetch_add(1, SeqCst);
    if cell.generation.load(SeqCst) == generation {
        // Both fit: `row <= MAX_THREAD_SLOTS` and `id < MAX_OWNERS`.
        return Some(ScopePin { row: row as u16, id });
    }
    count.fetch_sub(1, Release);
    None
}

/// Where [`pin`] counted a scope: row and owner in [`SCOPES`]. Two `u16`s rather than a
/// reference, so that an `OwnerScope` stays small enough to be returned in a register: as a
/// 16-byte value it went through memory, and reading it back at the drop cost a scope 8 ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScopePin {
    row: u16,
    id: u16,
}

impl ScopePin {
    /// A scope on `id` that counted nothing (reserved owners, which are never reused):
    /// [`unpin`] finds no row for it.
    pub(crate) const fn unpinned(id: u16) -> ScopePin {
        ScopePin { row: u16::MAX, id }
    }
}

/// A scope counted by [`pin`] has ended (its thread no longer has the owner current).
pub(crate) fn unpin(pin: ScopePin) {
    if let Some(count) = SCOPES.get(pin.row as usize).and_then(|row| row.get(pin.id as usize)) {
        count.fetch_sub(1, Release);
    }
}

/// How many scopes entered on `id` are open, on every thread.
pub(crate) fn open_scopes(id: u16) -> u32 {
    // A thread slot's row, and the last row (`SHARED`) for threads without one.
    slots_in_use()
        .filter_map(|row| SCOPES.get(row)?.get(id as usize))
        .fold(0u32, |sum, count| sum.wrapping_add(count.load(SeqCst)))
}

/// Moves owner `id` (with its subtree, `live` bytes now) from under `old_parent` to under
/// `new_parent`: `live` leaves the published totals of the old ancestors and joins those of
/// the new ones. Bytes still pending in slots stay with the levels they were counted at,
/// which the invariant `flushed + Σ pending == live` then keeps for every owner. Exact when
/// no thread allocates or frees in the subtree during the move; otherwise each ancestor's
/// level is left off, for good, by the bytes of every such call that read the parent on the
/// other side of the re-pointing than the reading of `live` put it (see
/// `tests::a_move_that_races_an_allocation_leaves_each_parents_level_off_by_that_allocation`).
pub(crate) fn move_owner(id: u16, old_parent: u16, new_parent: u16, live: u64) {
    let live = live.min(i64::MAX as u64) as i64;
    for (start, delta) in [(old_parent, live.wrapping_neg()), (new_parent, live)] {
        let mut level = start;
        for _ in 0..MAX_DEPTH {
            if level == PROCESS {
                break;
            }
            masked!(OWNERS, level as usize).flushed.fetch_add(delta, Relaxed);
            level = masked!(PARENTS, level as usize).load(Relaxed);
        }
    }
    masked!(PARENTS, id as usize).store(new_parent, Relaxed);
}

/// One past the highest owner id ever registered: readers sum no further.
pub(crate) static IDS_HIGH: AtomicUsize = AtomicUsize::new(crate::registry::FIRST_USER_ID as usize);

/// Every id's counters without subtracting reuse baselines: the whole process's totals, read
/// as one cut (see [`read_cut`]) without allocating. The ids are listed once: an owner
/// registered after the first pass cannot have blocks whose allocation that pass read.
pub(crate) fn read_all_unbased() -> Raw {
    let mut raw = Raw::default();
    let ids = IDS_HIGH.load(Relaxed).min(MAX_OWNERS);
    for slot in slots_in_use() {
        (0..ids).for_each(|id| raw.add_allocations(counts_at(slot, id)));
    }
    for slot in slots_in_use() {
        (0..ids).for_each(|id| raw.add_frees(counts_at(slot, id)));
    }
    raw
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    reason = "a test: a panic is its failure, not the allocator's"
)]
mod tests {
    use super::*;

    /// Ids no other test registers: the registry hands out the lowest free ids first.
    const CHILD: u16 = (MAX_OWNERS - 1) as u16;
    const PARENT: u16 = (MAX_OWNERS - 2) as u16;

    /// What a `transfer_to` racing an allocation under the item does to the parents' levels
    /// (`flushed + Σ pending`, what their peaks are raised from), step by step: the move
    /// reads the item's live bytes (100), another thread allocates 50 more under it while it
    /// still sees the old parent, then the move takes the 100 it read from the old parent and
    /// re-points the item, and the 150 are freed under the new parent. Neither parent holds
    /// anything, yet the old parent's level stays 50 above what it holds and the new parent's
    /// 50 below, for good: a later 1000-byte block alone in each peaks the old parent at
    /// 1050 and the new at 950. The bound README states: off by what other threads allocated
    /// or freed under the item while the move ran, each way. Not fixable in the move alone:
    /// the allocating thread counts the block before it reads the parent, and the move reads
    /// the item and re-points it in two steps, so a call that the reading saw may have read
    /// either parent.
    #[test]
    fn a_move_that_races_an_allocation_leaves_each_parents_level_off_by_that_allocation() {
        const ITEM: u16 = (MAX_OWNERS - 6) as u16;
        const OLD: u16 = (MAX_OWNERS - 5) as u16;
        const NEW: u16 = (MAX_OWNERS - 4) as u16;
        let level =
            |id: u16| plus_pending(id as usize, masked!(OWNERS, id as usize).flushed.load(SeqCst));
        std::thread::spawn(move || {
            masked!(PARENTS, ITEM as usize).store(OLD, Relaxed);
            let tag = ITEM | CHILD_BIT;
            charge(tag, 100);
            let live = read_own(ITEM).live_bytes(); // the move's reading
            charge(tag, 50); // another thread, still seeing the old parent
            move_owner(ITEM, OLD, NEW, live);
            credit(tag, 150); // freed later, under the new parent
            assert_eq!(read_own(ITEM).live_bytes(), 0);
            assert_eq!((level(ITEM), level(OLD), level(NEW)), (0, 50, -50));
            for parent in [OLD, NEW] {
                charge(parent, 1000);
                credit(parent, 1000);
            }
            assert_eq!((read_peak(OLD), read_peak(NEW)), (1050, 950));
        })
        .join()
        .unwrap();
    }

    /// A thread without a slot of its own (past 256 threads, past its exit, every thread off
    /// Unix) counts in the shared slot and publishes each call at every level at once: a
    /// child's allocation reaches its own and its parent's published totals and peaks, and the
    /// process's peak, before the call returns. `tests/thread_slots.rs` reaches this path
    /// with 300 threads but asserts no peak or level (their documented error is 299 × 64 KiB
    /// there), and passed with `publish_directly` a no-op, stopping at the first level
    /// (`id == PROCESS` inverted), or raising the process peak on frees (`delta > 0` as `<`).
    #[test]
    fn a_thread_without_a_slot_publishes_every_call_at_every_level() {
        const TOP: u16 = (MAX_OWNERS - 8) as u16;
        const ITEM: u16 = (MAX_OWNERS - 7) as u16;
        // Far above anything the other tests of this binary count (none allocate for real).
        const HUGE: usize = 1 << 40;
        let level =
            |id: u16| plus_pending(id as usize, masked!(OWNERS, id as usize).flushed.load(SeqCst));
        masked!(PARENTS, ITEM as usize).store(TOP, Relaxed);
        let tag = ITEM | CHILD_BIT;
        std::thread::spawn(move || {
            // As after the thread's exit: counted in the shared slot.
            STATE.with(|s| s.slot.set(SHARED));
            charge(tag, 1000);
            assert_eq!((level(ITEM), level(TOP)), (1000, 1000));
            assert_eq!((read_peak(ITEM), read_peak(TOP)), (1000, 1000));
            credit(tag, 400);
            charge(TOP, 50);
            assert_eq!((level(ITEM), level(TOP)), (600, 650));
            assert_eq!((read_peak(ITEM), read_peak(TOP)), (1000, 1000));
            credit(tag, 600);
            credit(TOP, 50);
            assert_eq!((level(ITEM), level(TOP)), (0, 0));
            let item = Raw { alloc_bytes: 1000, alloc_blocks: 1, free_bytes: 1000, free_blocks: 2 };
            assert_eq!(read_own(ITEM), item);
            let top = Raw { alloc_bytes: 50, alloc_blocks: 1, free_bytes: 50, free_blocks: 1 };
            assert_eq!(read_own(TOP), top);
            // The process's peak rises with an allocation, not with a free.
            charge(TOP, HUGE);
            let peak = read_peak(PROCESS);
            credit(TOP, HUGE);
            assert!(peak >= HUGE as u64, "process peak {peak} below {HUGE}");
        })
        .join()
        .unwrap();
    }

    /// The trap's pending bytes are shared by every thread without a slot (past 256 threads,
    /// past a thread's exit, every thread off Unix). Next to a block of more than 2 GiB on
    /// another such thread they pass a child's `i32` limits, and a child's allocation or free
    /// once stayed on the fast path and was counted in the trap, which no reader sums: lost.
    #[test]
    fn a_child_counted_in_the_trap_is_counted_for_real_whatever_the_traps_pending_bytes() {
        masked!(PARENTS, CHILD as usize).store(PARENT, Relaxed);
        let tag = CHILD | CHILD_BIT;
        let trap: &'static Counts = masked!(TRAP.counts, tag as usize);
        let before = read_own(CHILD);
        // Fresh threads: no slot yet, so their state points into the trap.
        std::thread::spawn(move || {
            trap.pending.store(-(3 << 30), Relaxed); // another thread freed 3 GiB
            charge_here(Here { owner: tag, counts: trap }, 100);
        })
        .join()
        .unwrap();
        std::thread::spawn(move || {
            trap.pending.store(3 << 30, Relaxed); // another thread allocated 3 GiB
            credit(tag, 100);
        })
        .join()
        .unwrap();
        let after = read_own(CHILD);
        assert_eq!(after.alloc_bytes - before.alloc_bytes, 100, "the allocation was lost");
        assert_eq!(after.free_bytes - before.free_bytes, 100, "the free was lost");
        assert_eq!(after.live_bytes(), before.live_bytes());
    }
}
