//! The inner allocator's own statistics (jemalloc's, read through `tikv-jemalloc-ctl`).

use serde::{Deserialize, Serialize};

/// jemalloc's view of the heap, read after an `epoch` advance (jemalloc caches its statistics
/// until the epoch moves). All sizes in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AllocatorStats {
    /// `"jemalloc"`.
    pub name: String,
    /// jemalloc's `version` string.
    pub version: String,
    /// `stats.allocated`: bytes in blocks the program holds (jemalloc's rounded sizes).
    pub allocated: u64,
    /// `stats.active`: bytes in pages that hold blocks.
    pub active: u64,
    /// `stats.resident`: bytes of jemalloc's pages that are resident (data and metadata).
    pub resident: u64,
    /// `stats.mapped`: bytes in mapped extents.
    pub mapped: u64,
    /// `stats.retained`: bytes unmapped-but-kept virtual memory (not resident).
    pub retained: u64,
    /// `stats.metadata`: jemalloc's own bookkeeping.
    pub metadata: u64,
    /// `active - allocated`: room inside active pages that no block uses.
    pub fragmentation: u64,
    /// `stats.arenas.<all>.pdirty` × page size: freed pages not yet returned to the OS.
    pub dirty: Option<u64>,
}

/// Reads jemalloc's statistics, or says why they are unavailable.
pub(crate) fn read() -> Result<AllocatorStats, String> {
    #[cfg(feature = "jemalloc")]
    {
        use tikv_jemalloc_ctl::{epoch, stats, version};
        let err = |key: &str, e: tikv_jemalloc_ctl::Error| format!("jemalloc {key}: {e}");
        epoch::advance().map_err(|e| err("epoch", e))?;
        let allocated = stats::allocated::read().map_err(|e| err("stats.allocated", e))? as u64;
        let active = stats::active::read().map_err(|e| err("stats.active", e))? as u64;
        let resident = stats::resident::read().map_err(|e| err("stats.resident", e))? as u64;
        let mapped = stats::mapped::read().map_err(|e| err("stats.mapped", e))? as u64;
        let retained = stats::retained::read().map_err(|e| err("stats.retained", e))? as u64;
        let metadata = stats::metadata::read().map_err(|e| err("stats.metadata", e))? as u64;
        // SAFETY: the key is NUL-terminated and `stats.arenas.<i>.pdirty` is a `size_t`.
        let dirty_pages =
            unsafe { tikv_jemalloc_ctl::raw::read::<usize>(b"stats.arenas.4096.pdirty\0") }.ok();
        let page = crate::procfs::page_size();
        Ok(AllocatorStats {
            name: "jemalloc".to_owned(),
            version: version::read().map_or_else(
                |_| "unknown".to_owned(),
                |v| v.trim_end_matches(['\0', ' ']).to_owned(),
            ),
            allocated,
            active,
            resident,
            mapped,
            retained,
            metadata,
            fragmentation: active.saturating_sub(allocated),
            dirty: dirty_pages.map(|p| (p as u64).saturating_mul(page)),
        })
    }
    #[cfg(not(feature = "jemalloc"))]
    Err("built without the `jemalloc` feature: the inner allocator keeps no statistics heapscope can read".to_owned())
}
