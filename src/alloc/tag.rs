//! Where a block keeps its owner: layout math and the trailer itself.
//!
//! Every decision here is a pure function of the caller's `(size, align)`, so `dealloc` and
//! `realloc`, which receive the same layout, recompute exactly what `alloc` chose. Nothing is
//! switched at run time (a block allocated one way and freed another would be read out of
//! bounds).
//!
//! | the request…                                              | the owner lives in…                | inner size |
//! |-----------------------------------------------------------|------------------------------------|------------|
//! | leaves at least 2 spare bytes in its size class           | a 2-byte trailer at `ptr + size`   | `size + 2` |
//! | has no slack, 256 bytes or less, alignment ≤ 16           | a trailer too: one class up        | `size + 2` |
//! | has no slack otherwise (320, 512, 4096 … bytes)           | the side table, keyed by address   | `size`     |
//!
//! The spare bytes are computed from jemalloc 5.3's size classes (x86_64 and aarch64 with 4 KiB
//! pages): classes are 8, then 16 apart up to 128, then four per doubling (spacing
//! `2^(lg-2)`), and above 16 KiB whole pages. A request on an exact class (what `Vec` and
//! `String` doubling produce) has no slack: a trailer pushes it into the next class.
//!
//! Which of those go one class up is a trade of memory for time. Above 256 bytes the next
//! class costs +25 % (64 bytes to a page per block), so those keep their owner in the side
//! table. Up to 256 bytes it costs 8 to 64 bytes (at most one cache line), and the side table
//! would cost more than the allocation itself: a locked compare-and-swap per block, and a
//! branch that mixed sizes mispredict (about 1 in 10 random small sizes sits on a class), which
//! together made small churn 0.45–0.8× slower. So they take a trailer. That includes the 8-
//! and 16-byte classes, which double (8 → 16, 16 → 32): a side-table entry is 8 bytes too, and
//! more once its level's pages are scattered (28 bytes per block measured with 100 000
//! `Box<u64>` live), so for them the table saved no memory and cost 2.5× the time of raw
//! jemalloc.
//! The choice is only about memory and speed: either home is correct for any inner allocator.

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

/// Requests up to this size take a trailer even when it moves them one class up (see the
/// module docs): it costs 8 to 64 bytes per block.
const BUMP_MAX: usize = 256;

/// Whether a block of this layout keeps its owner in a trailer: the class has room, or the
/// request is small enough that going one class up is cheaper than the side table. The one
/// definition every path (tables and computation) derives from.
#[inline(always)]
const fn keeps_trailer(size: usize, align: usize) -> bool {
    computed_trailer_room(size, align) || (align <= 16 && size > 0 && size <= BUMP_MAX)
}

/// Sizes below this are answered from [`TRAILER_BITS`].
const TABLE_SIZES: usize = 16 * 1024;

/// One bit per size below [`TABLE_SIZES`]: [`keeps_trailer`] for alignments up to 16,
/// worked out at compile time. A 2 KiB table that stays in L1 for the sizes a program
/// uses, and a load and a shift instead of a dozen instructions twice per allocation.
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "evaluated at compile time: an index out of range fails the build, it never runs"
)]
static TRAILER_BITS: [u64; TABLE_SIZES / 64] = {
    let mut bits = [0u64; TABLE_SIZES / 64];
    let mut size = 0;
    while size < TABLE_SIZES {
        if keeps_trailer(size, 16) {
            bits[size / 64] |= 1 << (size % 64);
        }
        size += 1;
    }
    bits
};

/// Whether this is a request of 1 to 256 bytes at an alignment up to 8 that `size + 2`
/// already satisfies: it carries a trailer whatever its class. One range compare once the
/// alignment is a constant (as it is after inlining), and no table load on the path to the
/// inner allocator's call (pairs 1.9x -> 1.78x, churn 1.63x -> 1.59x); the
/// allocator's paths also branch on it first, so the compiler lays out a small-block path that
/// never asks where the owner is.
///
/// Narrower than "up to 256 bytes at alignments up to 16" (which [`keeps_trailer`] also gives
/// a trailer, through the table): with `align <= 8` and `align <= size + 2` the inner call
/// needs no alignment of its own, and the compiler drops the alignment test that
/// `Jemalloc`'s and `System`'s methods make on every call (callgrind: 5 instructions fewer
/// per allocation+free on churn, 40 -> 35; blocks filled 1.155x -> 1.12x raw jemalloc).
/// Alignment-16 requests, and those smaller than their alignment less 2 (1 to 5 bytes at
/// alignment 8, 1 byte at alignment 4), take the table instead: a trailer all the same.
#[inline(always)]
pub(crate) fn is_small(size: usize, align: usize) -> bool {
    align <= 8 && align <= size.wrapping_add(TAG_BYTES) && size.wrapping_sub(1) < BUMP_MAX
}

/// The bytes a block of this layout adds for its trailer: [`TAG_BYTES`] when it keeps its
/// owner in a trailer, 0 when in the side table (see [`has_trailer`]).
#[inline(always)]
pub(crate) fn trailer_extra(size: usize, align: usize) -> usize {
    if is_small(size, align) || wide_trailer_room(size, align) {
        TAG_BYTES
    } else {
        0
    }
}

/// Whether a block of this layout keeps its owner in a trailer (`true`) or in the side table.
///
/// `true` when `size + 2` lands in the same jemalloc size class as `size` (the trailer costs no
/// memory), and for requests of up to 256 bytes at alignments up to 16, which go one class up
/// rather than into the side table (see the module docs).
///
/// Never `true` when `size + 2` would make the layout invalid (sizes within a few bytes of
/// `isize::MAX`): those go to the side table, so the trailer's inner size never overflows and
/// the allocation path needs no check of its own.
#[inline(always)]
pub(crate) fn has_trailer(size: usize, align: usize) -> bool {
    trailer_extra(size, align) != 0
}

/// [`has_trailer`] for requests that are not [`is_small`]: from [`TRAILER_BITS`] below
/// [`TABLE_SIZES`], computed above it or for alignments above 16.
#[inline(always)]
fn wide_trailer_room(size: usize, align: usize) -> bool {
    match TRAILER_BITS.get(size / 64) {
        Some(word) if align <= 16 => word >> (size % 64) & 1 != 0,
        // The largest size whose trailer and alignment padding keep the layout valid
        // (saturating: an alignment near `isize::MAX` leaves room for no trailer at all).
        _ => {
            keeps_trailer(size, align)
                && size
                    <= (isize::MAX as usize)
                        .saturating_sub(align.wrapping_sub(1))
                        .saturating_sub(TAG_BYTES)
        }
    }
}

/// Whether `size + 2` stays in `size`'s jemalloc size class, computed from the class rules.
#[inline(always)]
const fn computed_trailer_room(size: usize, align: usize) -> bool {
    if align > 16 {
        // jemalloc rounds an over-aligned request up to a multiple of `align` first; the
        // trailer is free when that rounding leaves at least two bytes.
        // `align` is a power of two above 16, so neither subtraction wraps.
        let rem = size & align.wrapping_sub(1);
        return rem.wrapping_sub(1) < align.wrapping_sub(2);
    }
    // Written without data-dependent branches: with mixed request sizes a mispredicted
    // branch here cost more than the rest of the bookkeeping together.
    //
    // size in (2^lg, 2^(lg+1)] has classes 2^(lg-2) apart, but never closer than 16 bytes
    // (the quantum) nor further than a page (whole pages above 16 KiB); sizes up to 8 share
    // the single class 8.
    let lg = (usize::BITS - 1).wrapping_sub((size.wrapping_sub(1) | 1).leading_zeros());
    let spacing = 1usize << clamp(lg.saturating_sub(2), 4, 12);
    let spacing = if size <= 8 { 8 } else { spacing };
    // `spacing` is at least 8, so neither subtraction wraps.
    let rem = size & spacing.wrapping_sub(1);
    rem.wrapping_sub(1) < spacing.wrapping_sub(2)
}

/// The size asked of the inner allocator for a caller's `size`: always a valid layout size,
/// since [`has_trailer`] refuses sizes where the trailer would overflow it.
#[inline(always)]
pub(crate) const fn inner_size(size: usize, trailer: bool) -> usize {
    if trailer {
        // Cannot wrap: `has_trailer` is false where `size + TAG_BYTES` would leave the layout.
        size.wrapping_add(TAG_BYTES)
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
#[allow(
    clippy::arithmetic_side_effects,
    reason = "a test's reference model, not the allocator: a panic here fails the test"
)]
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
    fn trailer_when_the_class_has_two_spare_bytes_or_one_class_up_costs_at_most_64_bytes() {
        // Size 0 (outside the GlobalAlloc contract) goes to the side table; that is fine.
        for size in 1..70_000usize {
            let free = class(size + TAG_BYTES) == class(size);
            assert_eq!(computed_trailer_room(size, 1), free, "size {size}");
            let bump = class(size + TAG_BYTES) - class(size);
            // The documented rule, restated: one class up only for 1..=256 bytes, where it
            // costs at most 64 bytes.
            let trailer = free || (1..=256).contains(&size);
            assert!(free || !trailer || bump <= 64, "size {size}");
            assert_eq!(has_trailer(size, 8), trailer, "size {size}");
            assert_eq!(has_trailer(size, 16), trailer, "size {size}");
            assert_eq!(trailer_extra(size, 8), if trailer { TAG_BYTES } else { 0 }, "size {size}");
        }
        for size in [7, 8, 15, 16, 255, 256] {
            assert!(has_trailer(size, 8), "size {size} goes one class up");
        }
        for size in [319, 320, 512, 4096] {
            assert!(!has_trailer(size, 8), "size {size} keeps its class");
        }
    }

    #[test]
    fn the_small_path_is_a_subset_of_the_trailer_rule() {
        // `alloc` and `dealloc` pick their path by `is_small`, `realloc` by `has_trailer`: a
        // block must get the same answer from both, for every layout.
        for align in [1, 2, 4, 8, 16, 32] {
            for size in 0..600usize {
                if is_small(size, align) {
                    assert!(keeps_trailer(size, align), "size {size} align {align}");
                    assert!(has_trailer(size, align), "size {size} align {align}");
                    assert!(align <= size + TAG_BYTES, "size {size} align {align}");
                }
                assert_eq!(
                    has_trailer(size, align),
                    size > 0 && keeps_trailer(size, align),
                    "size {size} align {align}"
                );
            }
        }
        assert!(is_small(6, 8) && is_small(256, 8) && is_small(1, 2) && is_small(2, 4));
        assert!(!is_small(5, 8) && !is_small(1, 4) && !is_small(100, 16) && !is_small(257, 1));
    }

    #[test]
    fn doubling_sizes_above_256_bytes_use_the_side_table() {
        for lg in 9..30 {
            assert!(!has_trailer(1 << lg, 8), "2^{lg}");
        }
        for lg in 0..9 {
            assert!(has_trailer(1 << lg, 8), "2^{lg}");
        }
        // Over-aligned requests follow jemalloc's alignment rounding only.
        assert!(!has_trailer(64, 64));
        assert!(has_trailer(100, 8));
        assert!(has_trailer(24, 8));
    }

    #[test]
    fn over_aligned_requests_use_alignment_padding() {
        assert!(has_trailer(100, 64));
        assert!(!has_trailer(128, 64));
        assert!(!has_trailer(127, 64));
        assert!(has_trailer(126, 64));
        assert!(has_trailer(5000, 4096));
        assert!(!has_trailer(8192, 4096));
    }

    #[test]
    fn no_trailer_where_it_would_overflow_the_layout() {
        assert_eq!(inner_size(10, true), 12);
        assert_eq!(inner_size(10, false), 10);
        let max = isize::MAX as usize;
        for size in [max - 7, max - 6, max - 1, max] {
            assert!(!has_trailer(size, 8), "{size}");
            assert!(!has_trailer(size & !4095, 4096), "{size}");
        }
        // `max - 9` has slack in its page class and `max - 9 + 2` is still a valid size.
        assert!(has_trailer(max - 9, 8));
        assert!(!has_trailer(max - 8, 8));
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
