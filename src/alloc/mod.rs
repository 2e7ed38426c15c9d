//! `Tracked<A>`: the global allocator wrapper. The only `unsafe impl GlobalAlloc` in the crate.
//!
//! With the `enabled` feature every block carries its owner (see [`tag`] for where) and every
//! call is counted in [`crate::counters`]. Without it each method forwards the caller's layout
//! untouched.
//!
//! The hot path (everything reachable from the four `GlobalAlloc` methods) takes no lock,
//! allocates nothing, makes no system call and cannot panic: indexing goes through `get`,
//! arithmetic that could overflow is checked and turns into a null return, and the
//! thread-local state is `const`-initialised without a destructor. The single exception is a
//! thread's first allocation, which claims a counter slot and registers a `pthread` key value:
//! never an allocation through us, and no system call while the key is one of the first 32
//! (glibc keeps those in the thread descriptor; past them its `pthread_setspecific` takes a
//! second-level table from its own `calloc`, which may call `mmap` or `brk` once per thread).
//! The process's very first allocation also creates the key (`pthread_key_create`).

// The hot path must not panic (a panic inside `GlobalAlloc` is undefined behaviour when it
// unwinds, and an abort otherwise): no unwrap, no indexing that can go out of bounds, no
// arithmetic that can overflow. Enforced here rather than trusted (RELIABILITY.md RTF-7).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

#[cfg(feature = "enabled")]
pub(crate) mod direct_map;
#[cfg(feature = "enabled")]
pub(crate) mod side_table;
#[cfg(feature = "enabled")]
pub(crate) mod tag;

use std::alloc::{GlobalAlloc, Layout};

/// A global allocator that charges every allocation to the owner current on the allocating
/// thread, wrapping the inner allocator `A`.
///
/// Install it with [`install!`](crate::install) (which uses [`Heapscope`]), or by hand:
///
/// ```
/// use heapscope::Tracked;
/// use std::alloc::System;
///
/// #[global_allocator]
/// static ALLOC: Tracked<System> = Tracked::new(System);
/// # fn main() {}
/// ```
///
/// Semantics (with the `enabled` feature):
/// - an allocation is charged to the owner current on the allocating thread;
/// - its free credits that same owner, whatever thread or scope frees it;
/// - `realloc` is a free of the old block plus an allocation of the new one (charged to the
///   owner current at the `realloc`);
/// - sizes are the requested `Layout::size()`;
/// - a failed allocation or `realloc` changes no counter and leaves the old block as it was.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tracked<A> {
    inner: A,
}

impl<A> Tracked<A> {
    /// Wraps `inner`.
    ///
    /// ```
    /// # heapscope::install!();
    /// let alloc = heapscope::Tracked::new(std::alloc::System);
    /// # let _ = alloc;
    /// ```
    pub const fn new(inner: A) -> Self {
        Tracked { inner }
    }

    /// The wrapped allocator.
    ///
    /// ```
    /// # heapscope::install!();
    /// let alloc = heapscope::Tracked::new(std::alloc::System);
    /// let _system: &std::alloc::System = alloc.inner();
    /// ```
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

#[cfg(feature = "jemalloc")]
type DefaultInner = tikv_jemallocator::Jemalloc;
#[cfg(not(feature = "jemalloc"))]
type DefaultInner = std::alloc::System;

/// [`Tracked`] over the default inner allocator: jemalloc with the `jemalloc` feature (on by
/// default), otherwise the system allocator. What [`install!`](crate::install) installs.
///
/// ```
/// #[global_allocator]
/// static ALLOC: heapscope::Heapscope = heapscope::Heapscope::new();
/// # fn main() {}
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Heapscope(Tracked<DefaultInner>);

impl Heapscope {
    /// `Tracked` over the default inner allocator, usable in a `static`.
    ///
    /// ```
    /// # heapscope::install!();
    /// static ALLOC: heapscope::Heapscope = heapscope::Heapscope::new();
    /// ```
    pub const fn new() -> Self {
        #[cfg(feature = "jemalloc")]
        {
            Heapscope(Tracked::new(tikv_jemallocator::Jemalloc))
        }
        #[cfg(not(feature = "jemalloc"))]
        {
            Heapscope(Tracked::new(std::alloc::System))
        }
    }
}

// SAFETY: forwards every call unchanged to `Tracked<DefaultInner>`, a `GlobalAlloc`.
unsafe impl GlobalAlloc for Heapscope {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc(layout) }
    }
    #[inline(always)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc_zeroed(layout) }
    }
    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

#[cfg(not(feature = "enabled"))]
// SAFETY: every method forwards the caller's arguments unchanged to `A`, which upholds the
// `GlobalAlloc` contract itself.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Tracked<A> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.alloc(layout) }
    }
    #[inline(always)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.alloc_zeroed(layout) }
    }
    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.dealloc(ptr, layout) }
    }
    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[cfg(feature = "enabled")]
use crate::counters::{self, OVERFLOW};

#[cfg(feature = "enabled")]
impl<A: GlobalAlloc> Tracked<A> {
    /// Records the owner of a fresh block and counts it. Returns nothing: the block is the
    /// caller's whatever happens here.
    ///
    /// # Safety
    /// `ptr` is a live, non-null block from the inner allocator of `tag::inner_size(size,
    /// trailer)` bytes.
    #[inline(always)]
    unsafe fn adopt(ptr: *mut u8, size: usize, trailer: bool) {
        let here = counters::here();
        if trailer {
            // SAFETY: the block has `size + 2` bytes (caller's duty).
            unsafe { tag::write_trailer(ptr, size, here.owner) };
        } else if !side_table::insert(ptr.addr(), here.owner, size) {
            return counters::charge(OVERFLOW, size);
        }
        counters::charge_here(here, size);
    }

    #[inline(always)]
    unsafe fn alloc_with(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // Two copies of the same path: for small requests `extra` is a constant, so theirs
        // never tests where the owner goes.
        // SAFETY: caller's guarantees on `layout`; `extra` is `tag::trailer_extra(size, align)`.
        unsafe {
            if tag::is_small(size, align) {
                self.alloc_extra(size, align, tag::TAG_BYTES, zeroed)
            } else {
                self.alloc_extra(size, align, tag::trailer_extra(size, align), zeroed)
            }
        }
    }

    /// [`GlobalAlloc::alloc`] of `(size, align)` with the trailer's addend already known.
    ///
    /// # Safety
    /// `(size, align)` is a valid non-zero layout and `extra == tag::trailer_extra(size, align)`.
    #[inline(always)]
    unsafe fn alloc_extra(&self, size: usize, align: usize, extra: usize, zeroed: bool) -> *mut u8 {
        let trailer = extra != 0;
        // `tag::inner_size(size, trailer)`, with the addend the caller already has. Passing
        // `trailer: bool` instead and deriving the addend here measured worse: callgrind per
        // pair 133 -> 137 instructions, and a child owner's churn mispredicted 1.5 branches
        // per pair instead of 0.03.
        // Cannot wrap: `extra` is non-zero only where `has_trailer` allows it.
        let inner_size = size.wrapping_add(extra);
        // SAFETY: `inner_size` keeps the Layout invariant (`has_trailer` refuses sizes
        // where the trailer would break it), and `align` comes from a valid Layout.
        let inner_layout = unsafe { Layout::from_size_align_unchecked(inner_size, align) };
        // SAFETY: `inner_layout` is at least as large as the caller's non-zero layout.
        let ptr = unsafe {
            if zeroed {
                self.inner.alloc_zeroed(inner_layout)
            } else {
                self.inner.alloc(inner_layout)
            }
        };
        if !ptr.is_null() {
            // SAFETY: `ptr` is a fresh block of `inner_size` bytes.
            unsafe { Self::adopt(ptr, size, trailer) };
        }
        ptr
    }

    /// [`GlobalAlloc::dealloc`] with the trailer question already answered.
    ///
    /// # Safety
    /// `ptr` was allocated by `self` with `(size, align)`, and `trailer == tag::has_trailer(size,
    /// align)`.
    #[inline(always)]
    unsafe fn dealloc_as(&self, ptr: *mut u8, size: usize, align: usize, trailer: bool) {
        let owner = if trailer {
            // SAFETY: `ptr` was allocated by us with this layout, hence with a trailer.
            unsafe { tag::read_trailer(ptr, size) }
        } else {
            // Removed before the block goes back to `A`, which may hand it out at once.
            side_table::remove(ptr.addr(), size).unwrap_or(OVERFLOW)
        };
        let inner_size = tag::inner_size(size, trailer);
        // SAFETY: the layout `A` allocated this block with (see the impl's SAFETY).
        unsafe { self.inner.dealloc(ptr, Layout::from_size_align_unchecked(inner_size, align)) };
        // Counted after the block is gone (only its owner had to be read before): the counter
        // updates then overlap with the caller's next allocation instead of delaying the
        // free. Allocating and freeing at once ran 2.3x raw jemalloc counted first, 1.9x so.
        counters::credit(owner, size);
    }
}

#[cfg(feature = "enabled")]
// SAFETY: every block is handed to `A` with a layout computed from the caller's `(size,
// align)` by the same pure function on every path (`tag::has_trailer` and
// `tag::inner_size`), so `A` always receives back exactly the layout it allocated with; the
// alignment is passed through unchanged, and the trailer lies past the caller's `size`.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Tracked<A> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: caller's guarantees on `layout`.
        unsafe { self.alloc_with(layout, false) }
    }

    #[inline(always)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: caller's guarantees on `layout`. The trailer is written after the inner
        // allocator zeroed the block, over bytes past the caller's size.
        unsafe { self.alloc_with(layout, true) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: caller's guarantees; `trailer` is `tag::has_trailer(size, align)` either way
        // (small requests always have one), in two copies as in `alloc_with`.
        unsafe {
            if tag::is_small(size, align) {
                self.dealloc_as(ptr, size, align, true)
            } else {
                self.dealloc_as(ptr, size, align, tag::has_trailer(size, align))
            }
        }
    }

    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_size, align) = (layout.size(), layout.align());
        let old_trailer = tag::has_trailer(old_size, align);
        let new_trailer = tag::has_trailer(new_size, align);
        let old_inner = tag::inner_size(old_size, old_trailer);
        let new_inner = tag::inner_size(new_size, new_trailer);
        // Take the old block's owner out of the side table first: once `A` has moved the
        // block, its old address may be handed to another thread at once.
        let (old_owner, in_table) = if old_trailer {
            // SAFETY: allocated by us with this layout, hence with a trailer.
            (unsafe { tag::read_trailer(ptr, old_size) }, false)
        } else {
            match side_table::remove(ptr.addr(), old_size) {
                Some(owner) => (owner, true),
                None => (OVERFLOW, false),
            }
        };
        // SAFETY: `ptr` was allocated by `A` with `(old_inner, align)`; `new_inner` keeps the
        // Layout invariant (see `has_trailer`).
        let new_ptr = unsafe {
            self.inner.realloc(ptr, Layout::from_size_align_unchecked(old_inner, align), new_inner)
        };
        if new_ptr.is_null() {
            // The old block is untouched and still ours: put its owner back.
            if in_table && !side_table::insert(ptr.addr(), old_owner, old_size) {
                // No room left to put it back: from now on it is the overflow owner's.
                counters::credit(old_owner, old_size);
                counters::charge(OVERFLOW, old_size);
            }
            return new_ptr;
        }
        counters::credit(old_owner, old_size);
        // SAFETY: `new_ptr` is a live block of `new_inner` bytes.
        unsafe { Self::adopt(new_ptr, new_size, new_trailer) };
        new_ptr
    }
}
