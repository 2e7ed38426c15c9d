//! Where a block keeps its owner: layout math and the trailer itself.
//!
//! Every decision here is a pure function of the caller's `(size, align)`, so `dealloc` and
//! `realloc`, which receive the same layout, recompute exactly what `alloc` chose. Nothing is
//! switched at run time (a block allocated one way and freed another would be read out of
//! bounds).
//!
//! | the block's size class has…           | the owner lives in…                     | inner size |
//! |---------------------------------------|-----------------------------------------|------------|
//! | at least 2 spare bytes after `size`   | a 2-byte trailer at `ptr + size`        | `size + 2` |
//! | 0 or 1 spare bytes (8, 16, 32, 64 …)  | the side table, keyed by address        | `size`     |
//!
//! The spare bytes are computed from jemalloc 5.3's size classes (x86_64 and aarch64 with 4 KiB
//! pages): classes are 8, then 16 apart up to 128, then four per doubling (spacing
//! `2^(lg-2)`), and above 16 KiB whole pages. A request on an exact class (what `Vec` and
//! `String` doubling produce) has no slack: a trailer would push it into the next class, +25 %
//! to +100 % real memory, so those blocks keep their owner in the side table instead. The
//! choice is only about memory: either home is correct for any inner allocator.

/// Bytes of the trailer tag: a little-endian `u16` owner id.
pub(crate) const TAG_BYTES: usize = 2;

/// `max(lo, min(hi, v))` in a `const fn`.
#[inline(always)]
const fn clamp(v: u32, lo: u32, hi: u32) -> u32 {
    let v = if v < lo { lo } else { v };
    if v > hi {
        hi
    } else {
        v
    }
}

/// Sizes below this are answered from [`TRAILER_BITS`].
const TABLE_SIZES: usize = 16 * 1024;

/// One bit per size below [`TABLE_SIZES`]: [`computed_trailer_room`] for alignments up to 16,
/// worked out at compile time. A 2 KiB table that stays in L1 for the sizes a program
/// uses, and a load and a shift instead of a dozen instructions twice per allocation.
static TRAILER_BITS: [u64; TABLE_SIZES / 64] = {
    let mut bits = [0u64; TABLE_SIZES / 64];
    let mut size = 0;
    while size < TABLE_SIZES {
        if computed_trailer_room(size, 16) {
            bits[size / 64] |= 1 << (size % 64);
        }
        size += 1;
    }
    bits
};

/// Sizes below this are answered from [`TRAILER_EXTRA`].
const BYTE_SIZES: usize = 4096;

/// [`TAG_BYTES`] for each size below [`BYTE_SIZES`] with trailer room at alignments up to 16,
/// else 0: one byte load gives the inner size's addend (4 KiB; sizes 16–256 use four cache
/// lines of it). Above, [`TRAILER_BITS`] and the computation take over.
static TRAILER_EXTRA: [u8; BYTE_SIZES] = {
    let mut extra = [0u8; BYTE_SIZES];
    let mut size = 0;
    while size < BYTE_SIZES {
        if computed_trailer_room(size, 16) {
            extra[size] = TAG_BYTES as u8;
        }
        size += 1;
    }
    extra
};

/// The bytes a block of this layout adds for its trailer: [`TAG_BYTES`] when it keeps its
/// owner in a trailer, 0 when in the side table (see [`has_trailer_room`]).
#[inline(always)]
pub(crate) fn trailer_extra(size: usize, align: usize) -> usize {
    match TRAILER_EXTRA.get(size) {
        Some(&extra) if align <= 16 => extra as usize,
        _ => {
            if wide_trailer_room(size, align) {
                TAG_BYTES
            } else {
                0
            }
        }
    }
}

/// Whether a block of this layout keeps its owner in a trailer (`true`) or in the side table.
///
/// `true` exactly when `size + 2` lands in the same jemalloc size class as `size`, so the
/// trailer costs no memory.
///
/// Never `true` when `size + 2` would make the layout invalid (sizes within a few bytes of
/// `isize::MAX`): those go to the side table, so the trailer's inner size never overflows and
/// the allocation path needs no check of its own.
#[inline(always)]
pub(crate) fn has_trailer_room(size: usize, align: usize) -> bool {
    trailer_extra(size, align) != 0
}

/// [`has_trailer_room`] for sizes of [`BYTE_SIZES`] and above, or alignments above 16.
#[inline(always)]
fn wide_trailer_room(size: usize, align: usize) -> bool {
    match TRAILER_BITS.get(size / 64) {
        Some(word) if align <= 16 => word >> (size % 64) & 1 != 0,
        _ => {
            computed_trailer_room(size, align)
                && size <= (isize::MAX as usize) - (align - 1) - TAG_BYTES
        }
    }
}

/// [`has_trailer_room`] computed from the size-class rules.
#[inline(always)]
const fn computed_trailer_room(size: usize, align: usize) -> bool {
    if align > 16 {
        // jemalloc rounds an over-aligned request up to a multiple of `align` first; the
        // trailer is free when that rounding leaves at least two bytes.
        let rem = size & (align - 1);
        return rem.wrapping_sub(1) < align - 2;
    }
    // Written without data-dependent branches: with mixed request sizes a mispredicted
    // branch here cost more than the rest of the bookkeeping together.
    //
    // size in (2^lg, 2^(lg+1)] has classes 2^(lg-2) apart, but never closer than 16 bytes
    // (the quantum) nor further than a page (whole pages above 16 KiB); sizes up to 8 share
    // the single class 8.
    let lg = usize::BITS - 1 - (size.wrapping_sub(1) | 1).leading_zeros();
    let spacing = 1usize << clamp(lg.saturating_sub(2), 4, 12);
    let spacing = if size <= 8 { 8 } else { spacing };
    let rem = size & (spacing - 1);
    rem.wrapping_sub(1) < spacing - 2
}

/// The size asked of the inner allocator for a caller's `size`: always a valid layout size,
/// since [`has_trailer_room`] refuses sizes where the trailer would overflow it.
#[inline(always)]
pub(crate) const fn inner_size(size: usize, trailer: bool) -> usize {
    if trailer {
        size + TAG_BYTES
    } else {
        size
    }
}

/// Writes `owner` as the trailer of the block at `ptr`.
///
/// # Safety
/// `ptr` must point to a live block of at least `size + TAG_BYTES` bytes.
#[inline(always)]
pub(crate) unsafe fn write_trailer(ptr: *mut u8, size: usize, owner: u16) {
    // SAFETY: the caller guarantees `ptr + size .. ptr + size + 2` is inside the block; the
    // write is unaligned because `size` can be odd.
    unsafe { ptr.add(size).cast::<[u8; TAG_BYTES]>().write_unaligned(owner.to_le_bytes()) }
}

/// Reads the owner from the trailer of the block at `ptr`.
///
/// # Safety
/// `ptr` must point to a live block of at least `size + TAG_BYTES` bytes whose trailer was
/// written by [`write_trailer`].
#[inline(always)]
pub(crate) unsafe fn read_trailer(ptr: *const u8, size: usize) -> u16 {
    // SAFETY: as in `write_trailer`, the two bytes after `size` belong to the block.
    u16::from_le_bytes(unsafe { ptr.add(size).cast::<[u8; TAG_BYTES]>().read_unaligned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// jemalloc 5.3's size class for an alignment of at most 16, written the slow, obvious way.
    fn class(size: usize) -> usize {
        let mut classes = vec![8usize, 16];
        let mut c = 16;
        while c < 128 {
            c += 16;
            classes.push(c);
        }
        let mut base = 128;
        while base < 16 * 1024 {
            for i in 1..=4 {
                classes.push(base + i * base / 4);
            }
            base *= 2;
        }
        if let Some(&c) = classes.iter().find(|&&c| c >= size.max(1)) {
            return c;
        }
        size.div_ceil(4096) * 4096
    }

    #[test]
    fn trailer_exactly_when_the_class_has_two_spare_bytes() {
        // Size 0 (outside the GlobalAlloc contract) goes to the side table; that is fine.
        for size in 1..70_000usize {
            let free = class(size + TAG_BYTES) == class(size);
            assert_eq!(has_trailer_room(size, 8), free, "size {size}");
            assert_eq!(has_trailer_room(size, 16), free, "size {size}");
            assert_eq!(computed_trailer_room(size, 1), free, "size {size}");
            assert_eq!(trailer_extra(size, 8), if free { TAG_BYTES } else { 0 }, "size {size}");
        }
    }

    #[test]
    fn doubling_sizes_use_the_side_table() {
        for lg in 3..30 {
            assert!(!has_trailer_room(1 << lg, 8), "2^{lg}");
        }
        assert!(has_trailer_room(100, 8));
        assert!(has_trailer_room(24, 8));
    }

    #[test]
    fn over_aligned_requests_use_alignment_padding() {
        assert!(has_trailer_room(100, 64));
        assert!(!has_trailer_room(128, 64));
        assert!(!has_trailer_room(127, 64));
        assert!(has_trailer_room(126, 64));
        assert!(has_trailer_room(5000, 4096));
        assert!(!has_trailer_room(8192, 4096));
    }

    #[test]
    fn no_trailer_where_it_would_overflow_the_layout() {
        assert_eq!(inner_size(10, true), 12);
        assert_eq!(inner_size(10, false), 10);
        let max = isize::MAX as usize;
        for size in [max - 7, max - 6, max - 1, max] {
            assert!(!has_trailer_room(size, 8), "{size}");
            assert!(!has_trailer_room(size & !4095, 4096), "{size}");
        }
        // `max - 9` has slack in its page class and `max - 9 + 2` is still a valid size.
        assert!(has_trailer_room(max - 9, 8));
        assert!(!has_trailer_room(max - 8, 8));
    }

    #[test]
    fn trailer_round_trips_at_odd_offsets() {
        let mut buf = [0u8; 16];
        for size in 0..14 {
            // SAFETY: buf has room for size + 2 bytes.
            unsafe { write_trailer(buf.as_mut_ptr(), size, 0xBEEF) };
            // SAFETY: written just above.
            assert_eq!(unsafe { read_trailer(buf.as_ptr(), size) }, 0xBEEF);
        }
    }
}
