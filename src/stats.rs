//! Reading the counters: one owner, the whole process, and whether tracking is live at all.

use crate::owner::Owner;
use serde::{Deserialize, Serialize};

/// An owner's numbers (including its descendants'), or the whole process's.
///
/// `live_*` and `total_*` are exact once every allocation call of every thread happens-before
/// the read (joined threads, a channel receive, a lock); read while threads still allocate,
/// `live_*` never shows more than the owner and its descendants held at one moment.
/// `peak_bytes` is exact when one thread allocates and frees in the owner's subtree; when
/// more than one thread does (at the same time, or one after another) it can be off by at
/// most 64 KiB per thread allocating or freeing in it, either way (see the crate docs); it is never
/// below a `live_bytes` that was read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OwnerStats {
    /// Requested bytes of blocks allocated and not yet freed.
    pub live_bytes: u64,
    /// Blocks allocated and not yet freed.
    pub live_blocks: u64,
    /// The highest `live_bytes` reached since the owner was registered.
    pub peak_bytes: u64,
    /// Requested bytes of every block ever allocated (each `realloc` counts its new size).
    pub total_bytes: u64,
    /// Blocks ever allocated (each `realloc` counts one).
    pub total_blocks: u64,
}

#[cfg(feature = "enabled")]
impl OwnerStats {
    pub(crate) fn from_raw(raw: &crate::counters::Raw, peak: u64) -> OwnerStats {
        let live_bytes = raw.live_bytes();
        OwnerStats {
            live_bytes,
            live_blocks: raw.live_blocks(),
            peak_bytes: peak.max(live_bytes),
            total_bytes: raw.alloc_bytes,
            total_blocks: raw.alloc_blocks,
        }
    }
}

pub(crate) fn owner_stats(owner: Owner) -> OwnerStats {
    #[cfg(feature = "enabled")]
    {
        use crate::counters;
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        // All under the registry's lock, as `snapshot::read_registered`: an id of the
        // subtree freed and reused between listing and reading would add its next owner's
        // bytes, and the peak lifted with them.
        crate::registry::with(|r| {
            if r.any_entry(owner.id(), owner.generation()).is_err()
                && owner.id() >= crate::registry::FIRST_USER_ID
            {
                return OwnerStats::default();
            }
            let ids = r.subtree(owner.id());
            if ids.is_empty() {
                return OwnerStats::default();
            }
            // One cut over the whole subtree: a block moved between two of its owners while
            // they are read is counted once.
            let own = counters::read_owns(&ids.iter().map(|(id, _)| *id).collect::<Vec<_>>());
            let mut raw = counters::Raw::default();
            for ((_, absorbed), own) in ids.iter().zip(&own) {
                raw.add(own);
                raw.add_absorbed(*absorbed);
            }
            // A live size read here is a fact: keep it, so a later reading's peak is never
            // lower.
            counters::raise_peak_to(owner.id(), raw.live_bytes());
            OwnerStats::from_raw(&raw, counters::read_peak(owner.id()))
        })
    }
    #[cfg(not(feature = "enabled"))]
    {
        let _ = owner;
        OwnerStats::default()
    }
}

/// The whole process's numbers: every owner and root together.
///
/// Takes no lock and allocates nothing, so it can be called from anywhere (a signal-free
/// watchdog, a panic hook). All zero without the `enabled` feature.
///
/// ```
/// # heapscope::install!();
/// let before = heapscope::global_stats();
/// let v = vec![0u8; 4096];
/// let after = heapscope::global_stats();
/// # #[cfg(feature = "enabled")] if heapscope::is_tracking() {
/// assert!(after.total_bytes >= before.total_bytes + 4096);
/// # }
/// # drop(v);
/// ```
pub fn global_stats() -> OwnerStats {
    #[cfg(feature = "enabled")]
    {
        let raw = crate::counters::read_all_unbased();
        // Keep the live size read here in the peak, as an owner's reading does, so that a
        // later reading never shows a lower peak (one atomic maximum: no lock, no allocation).
        crate::counters::raise_peak_to(crate::registry::PROCESS, raw.live_bytes());
        OwnerStats::from_raw(&raw, crate::counters::read_peak(crate::registry::PROCESS))
    }
    #[cfg(not(feature = "enabled"))]
    OwnerStats::default()
}

/// Whether allocations are being counted: the `enabled` feature is on *and* a heapscope
/// [`Tracked`](crate::Tracked) allocator is the installed global allocator.
///
/// Checked by allocating one small block under heapscope's internal owner and seeing it
/// counted; the answer is cached once `true`.
///
/// ```
/// # heapscope::install!();
/// // With `heapscope::install!()` in this binary: counted whenever tracking is compiled in.
/// assert_eq!(heapscope::is_tracking(), cfg!(feature = "enabled"));
/// ```
pub fn is_tracking() -> bool {
    #[cfg(feature = "enabled")]
    {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        static SEEN: AtomicBool = AtomicBool::new(false);
        if SEEN.load(Relaxed) {
            return true;
        }
        let id = crate::registry::INTERNAL;
        let before = crate::counters::read_own(id).alloc_blocks;
        {
            let _internal = crate::owner::enter_id(id);
            drop(std::hint::black_box(Box::new(std::hint::black_box(0x5eed_u64))));
        }
        let after = crate::counters::read_own(id).alloc_blocks;
        let tracking = after != before;
        if tracking {
            SEEN.store(true, Relaxed);
        }
        tracking
    }
    #[cfg(not(feature = "enabled"))]
    false
}
