//! `Owner` handles, scopes that make an owner current, and the async wrapper.

#[cfg(test)]
use crate::error::Error;
use crate::error::Result;
use crate::registry::{self, INTERNAL, OVERFLOW, PROCESS, ROOT};
use crate::stats::OwnerStats;
#[cfg(feature = "enabled")]
use std::cell::Cell;
use std::future::Future;
use std::io::Write as _;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

/// A named holder of memory: conversation history, tool results, a cache, one retained item.
///
/// A small `Copy` handle (an id and a generation). Allocations made while an owner is current
/// on a thread (see [`Owner::enter`]) are charged to it; their frees credit it back, wherever
/// they happen. Owners form a tree: [`Owner::child`] makes a child, and an owner's
/// [`stats`](Owner::stats) include its children's.
///
/// ```
/// # heapscope::install!();
/// use heapscope::Owner;
///
/// let history = Owner::named("history");
/// let turn: Vec<String> = history.in_scope(|| vec!["hello".to_string()]);
/// assert_eq!(history.name(), "history");
/// # drop(turn);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Owner {
    id: u16,
    generation: u32,
}

/// How often [`Owner::named`], [`Owner::child`] or [`Retained::build`](crate::Retained::build)
/// fell back to the overflow owner.
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

impl Owner {
    pub(crate) const fn from_parts(id: u16, generation: u32) -> Owner {
        Owner { id, generation }
    }

    pub(crate) const fn id(self) -> u16 {
        self.id
    }

    pub(crate) const fn generation(self) -> u32 {
        self.generation
    }

    /// The top-level owner called `name`, registered on first use.
    ///
    /// Never fails: a name that is invalid (see [`Owner::try_named`]) or that does not fit in
    /// the registry gives the [overflow owner](Owner::overflow) instead, and prints one
    /// `heapscope:` warning to stderr the first time. Registration takes a lock and may
    /// allocate, so keep this off hot paths: [`owner!`](crate::owner!) caches it per call site.
    ///
    /// ```
    /// # heapscope::install!();
    /// let cache = heapscope::Owner::named("cache");
    /// assert_eq!(cache, heapscope::Owner::named(String::from("cache")));
    /// ```
    pub fn named(name: impl AsRef<str>) -> Owner {
        Self::or_overflow(Self::try_named(name))
    }

    /// The top-level owner called `name`, registered on first use.
    ///
    /// # Errors
    /// [`Error::InvalidName`](crate::Error::InvalidName) for an empty name, one longer than 128 bytes, or one containing
    /// `/` or a control character; [`Error::RegistryFull`](crate::Error::RegistryFull) when all 4096 owner ids are taken.
    ///
    /// ```
    /// # heapscope::install!();
    /// assert!(heapscope::Owner::try_named("").is_err());
    /// assert!(heapscope::Owner::try_named("tool_results").is_ok());
    /// ```
    pub fn try_named(name: impl AsRef<str>) -> Result<Owner> {
        let (id, generation) = registry::with(|r| r.get_or_register(PROCESS, name.as_ref()))?;
        Ok(Owner { id, generation })
    }

    /// `result`'s owner, or the overflow owner with one warning per process (the first
    /// fallback's, whichever API it came through).
    pub(crate) fn or_overflow(result: Result<Owner>) -> Owner {
        result.unwrap_or_else(|err| {
            if FALLBACKS.fetch_add(1, Relaxed) == 0 {
                // Not `eprintln!`, which panics when stderr is gone (a closed pipe).
                let _ = writeln!(
                    std::io::stderr(),
                    "{err}; charging to {:?} instead",
                    registry::OVERFLOW_NAME
                );
            }
            Owner::overflow()
        })
    }

    /// The owner of everything not attributed to another owner; current on every thread until
    /// something else is entered.
    ///
    /// ```
    /// # heapscope::install!();
    /// assert_eq!(heapscope::Owner::root().name(), "root");
    /// ```
    pub const fn root() -> Owner {
        Owner { id: ROOT, generation: 0 }
    }

    /// The owner charged when the real one cannot be recorded: names that could not be
    /// registered, handles of retired owners, and blocks the side table had no room for.
    ///
    /// ```
    /// # heapscope::install!();
    /// assert_eq!(heapscope::Owner::overflow().name(), "heapscope.overflow");
    /// ```
    pub const fn overflow() -> Owner {
        Owner { id: OVERFLOW, generation: 0 }
    }

    /// heapscope's own bookkeeping (the registry and labels).
    ///
    /// ```
    /// # heapscope::install!();
    /// assert_eq!(heapscope::Owner::internal().name(), "heapscope.internal");
    /// ```
    pub const fn internal() -> Owner {
        Owner { id: INTERNAL, generation: 0 }
    }

    /// The owner current on this thread (always [`Owner::root`] without the `enabled`
    /// feature).
    ///
    /// ```
    /// # heapscope::install!();
    /// let history = heapscope::Owner::named("history");
    /// history.in_scope(|| {
    /// #   #[cfg(feature = "enabled")]
    ///     assert_eq!(heapscope::Owner::current(), history);
    /// });
    /// ```
    pub fn current() -> Owner {
        #[cfg(feature = "enabled")]
        {
            let id = crate::counters::current() & (crate::registry::MAX_OWNERS as u16 - 1);
            let generation =
                crate::counters::OWNERS.get(id as usize).map_or(0, |c| c.generation.load(Relaxed));
            // A user owner's generation is odd while it is live and even once retired (see
            // `counters::reset_for_new_owner` and `counters::retire`): inside a scope that
            // outlived its owner's retirement, the handle is the retired owner's own (its
            // name and stats read, entering it enters the overflow owner), not one matching
            // no owner at all.
            let generation = if id >= registry::FIRST_USER_ID && generation.is_multiple_of(2) {
                generation.wrapping_sub(1)
            } else {
                generation
            };
            Owner { id, generation }
        }
        #[cfg(not(feature = "enabled"))]
        Owner::root()
    }

    /// Makes this owner current on this thread until the returned scope is dropped, which
    /// restores the previous owner (also during unwinding). Scopes nest to any depth.
    ///
    /// A retired owner's handle enters the [overflow owner](Owner::overflow) instead.
    ///
    /// A scope dropped before a scope entered after it (possible only by moving scopes) ends
    /// once every scope entered after it has ended, however many wait so at once: the thread
    /// then comes back to the owner current before it. Past eight waiting at once on a
    /// thread, they are kept in a list charged to `heapscope.internal`.
    ///
    /// Do not hold a scope across an `.await`: it is the *thread's* current owner, so while
    /// the task is suspended every other task the thread polls (on a single-threaded
    /// executor, or a `LocalSet`, where the scope's `!Send` does not stop it) allocates as
    /// this owner. Wrap the future with [`in_owner`](crate::InOwner::in_owner) instead,
    /// which enters the owner for each poll only.
    ///
    /// ```
    /// # heapscope::install!();
    /// let tools = heapscope::Owner::named("tool_results");
    /// let output = {
    ///     let _scope = tools.enter();
    ///     String::from("tool output")
    /// };
    /// # drop(output);
    /// ```
    ///
    /// The scope belongs to its thread:
    ///
    /// ```compile_fail
    /// let scope = heapscope::Owner::named("x").enter();
    /// std::thread::spawn(move || drop(scope));
    /// ```
    pub fn enter(self) -> OwnerScope {
        #[cfg(feature = "enabled")]
        {
            if self.id < registry::FIRST_USER_ID {
                // Root, overflow and internal are never retired (their generation stays 0),
                // so nothing can reuse them; the process itself is not entered.
                return enter_id(if self.id == PROCESS { OVERFLOW } else { self.id });
            }
            let Some(count) = crate::counters::pin(self.id, self.generation) else {
                return enter_id(OVERFLOW);
            };
            let mut scope = enter_id(self.id);
            scope.pin = count;
            scope
        }
        #[cfg(not(feature = "enabled"))]
        OwnerScope { _not_send: PhantomData }
    }

    /// Runs `f` with this owner current.
    ///
    /// ```
    /// # heapscope::install!();
    /// let cache = heapscope::Owner::named("cache");
    /// let v = cache.in_scope(|| vec![0u8; 100]);
    /// assert_eq!(v.len(), 100);
    /// ```
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let _scope = self.enter();
        f()
    }

    /// The child of this owner called `name`, registered on first use. Children nest up to 7
    /// levels below the process; a parent's stats include its children's.
    ///
    /// Falls back to the overflow owner like [`Owner::named`].
    ///
    /// ```
    /// # heapscope::install!();
    /// let tools = heapscope::Owner::named("tool_results");
    /// let call = tools.child("call_42");
    /// assert_eq!(call.name(), "tool_results/call_42");
    /// assert_eq!(call.parent(), Some(tools));
    /// ```
    pub fn child(self, name: impl AsRef<str>) -> Owner {
        Self::or_overflow(self.try_child(name))
    }

    /// The child of this owner called `name`.
    ///
    /// # Errors
    /// As [`Owner::try_named`], plus [`Error::Stale`](crate::Error::Stale) when this owner was retired and
    /// [`Error::TooDeep`](crate::Error::TooDeep) below the deepest level.
    ///
    /// ```
    /// # heapscope::install!();
    /// let a = heapscope::Owner::named("deep");
    /// let mut cur = a;
    /// for i in 0..6 { cur = cur.try_child(format!("l{i}")).unwrap(); }
    /// assert!(cur.try_child("one_too_many").is_err());
    /// ```
    pub fn try_child(self, name: impl AsRef<str>) -> Result<Owner> {
        let (id, generation) = registry::with(|r| {
            r.live_entry(self.id, self.generation)?;
            r.get_or_register(self.id, name.as_ref())
        })?;
        Ok(Owner { id, generation })
    }

    /// Retires this owner. Its name becomes free at once; its id is reused once it holds no
    /// live bytes, has no children and no scope entered on it is open on any thread, so
    /// millions of short-lived children fit in bounded memory. Blocks it still holds stay
    /// counted under it (and its parent) until freed; so do blocks allocated in a scope that
    /// was entered before the retirement and is still open. A scope that is never dropped
    /// (`mem::forget`) keeps the id from reuse for good.
    ///
    /// # Errors
    /// [`Error::Reserved`](crate::Error::Reserved) for root, overflow and internal; [`Error::Stale`](crate::Error::Stale) when already
    /// reused. Retiring a retired owner again is `Ok` until its id is reused.
    ///
    /// ```
    /// # heapscope::install!();
    /// let call = heapscope::Owner::named("tools").child("call_1");
    /// call.retire().unwrap();
    /// assert!(heapscope::Owner::root().retire().is_err());
    /// ```
    pub fn retire(self) -> Result<()> {
        registry::with(|r| r.retire(self.id, self.generation))
    }

    /// The full name: `parent/child` for children.
    ///
    /// A retired owner's handle reads `"heapscope.stale"` once its id is freed (it held
    /// nothing), reused or not.
    ///
    /// ```
    /// # heapscope::install!();
    /// assert_eq!(heapscope::Owner::named("history").name(), "history");
    /// ```
    pub fn name(self) -> String {
        registry::with(|r| match r.any_entry(self.id, self.generation) {
            Ok(e) => e.path.clone(),
            Err(_) => "heapscope.stale".to_owned(),
        })
    }

    /// The parent owner, or `None` for top-level owners (and stale handles).
    ///
    /// ```
    /// # heapscope::install!();
    /// assert_eq!(heapscope::Owner::named("history").parent(), None);
    /// ```
    pub fn parent(self) -> Option<Owner> {
        registry::with(|r| {
            let e = r.any_entry(self.id, self.generation).ok()?;
            (e.parent != PROCESS && e.parent != registry::NO_PARENT)
                .then(|| Owner { id: e.parent, generation: r.generation(e.parent) })
        })
    }

    /// This owner's numbers, including its descendants'. All zero without the `enabled`
    /// feature (see [`is_tracking`](crate::is_tracking)).
    ///
    /// ```
    /// # heapscope::install!();
    /// let history = heapscope::Owner::named("stats_doc");
    /// let v = history.in_scope(|| vec![0u8; 1000]);
    /// let stats = history.stats();
    /// # #[cfg(feature = "enabled")] if heapscope::is_tracking() {
    /// assert!(stats.live_bytes >= 1000);
    /// # }
    /// # drop(v);
    /// ```
    pub fn stats(self) -> OwnerStats {
        crate::stats::owner_stats(self)
    }
}

/// Makes the owner with this id current and returns the scope restoring the previous one.
#[allow(unused_variables)]
pub(crate) fn enter_id(id: u16) -> OwnerScope {
    #[cfg(feature = "enabled")]
    {
        let (previous, depth) = crate::counters::open_scope(crate::counters::tag_of(id));
        let pin = crate::counters::ScopePin::unpinned(id);
        OwnerScope { previous, pin, depth, _not_send: PhantomData }
    }
    #[cfg(not(feature = "enabled"))]
    OwnerScope { _not_send: PhantomData }
}

/// Restores the previous owner when dropped; see [`Owner::enter`].
///
/// Zero-sized without the `enabled` feature. Not `Send`: an owner is current on one thread.
#[must_use = "the owner is current only while the scope lives; `let _ = ` drops it at once"]
#[clippy::has_significant_drop]
#[derive(Debug)]
pub struct OwnerScope {
    #[cfg(feature = "enabled")]
    previous: u16,
    /// The owner this scope entered, and where it counted itself to keep a user owner's id
    /// from reuse (see `counters::pin`; reserved owners, never reused, count nothing).
    #[cfg(feature = "enabled")]
    pin: crate::counters::ScopePin,
    /// How many scopes were open on this thread once this one was entered: it is the
    /// innermost while the thread's count equals it.
    #[cfg(feature = "enabled")]
    depth: u32,
    _not_send: PhantomData<*const ()>,
}

impl Drop for OwnerScope {
    fn drop(&mut self) {
        #[cfg(feature = "enabled")]
        {
            if crate::counters::scope_depth() != self.depth {
                // Dropped before a scope entered after it (scopes moved out of their nesting
                // order): the scope inside it, when it ends, makes this one innermost again,
                // and this one ends then (see `end_early_drops`). Until then it keeps its
                // pin, so that the id is not reused while the thread may charge it: restoring
                // here once left the thread charging an owner whose id went to a newcomer.
                // Told by depth, not by owner: two scopes of one owner dropped outer first
                // once looked in order, the outer one restored its previous owner while the
                // inner was open, and the inner one then waited for good, keeping its id.
                let early = EarlyDrop { previous: self.previous, pin: self.pin, depth: self.depth };
                // Past the table's room, in a list of the thread's (see `SPILLED`). Where
                // neither can keep it (during thread exit, once the list is gone) the pin stays
                // for good, as a scope's that is never dropped.
                let _ = SCOPES.try_with(|scopes| {
                    let kept = match scopes.early.iter().find(|slot| slot.get().is_none()) {
                        Some(free) => {
                            free.set(Some(early));
                            true
                        }
                        None => spill(early),
                    };
                    if kept {
                        scopes.taken.set(scopes.taken.get().saturating_add(1));
                    }
                });
                return;
            }
            end_scope(self.previous, self.pin, self.depth);
            end_early_drops();
        }
    }
}

/// Ends the innermost scope: makes its previous owner current, lets its id be reused (only
/// once this thread no longer has it current), and makes the scope outside it innermost.
#[cfg(feature = "enabled")]
fn end_scope(previous: u16, pin: crate::counters::ScopePin, depth: u32) {
    crate::counters::close_scope(previous, depth);
    crate::counters::unpin(pin);
}

/// A scope dropped before a scope entered after it: it ends when it is innermost again.
#[cfg(feature = "enabled")]
#[derive(Clone, Copy)]
struct EarlyDrop {
    previous: u16,
    pin: crate::counters::ScopePin,
    depth: u32,
}

/// How many scopes dropped out of order a thread keeps for later at once.
#[cfg(feature = "enabled")]
const EARLY_DROP_SLOTS: usize = 8;

/// This thread's scopes dropped out of order, waiting to be innermost again (how many are
/// open is kept with the thread's current owner: `counters::scope_depth`).
#[cfg(feature = "enabled")]
struct Scopes {
    /// How many scopes dropped early wait, in `early` and in [`SPILLED`]: zero but after a
    /// misuse.
    taken: Cell<u32>,
    early: [Cell<Option<EarlyDrop>>; EARLY_DROP_SLOTS],
}

#[cfg(feature = "enabled")]
thread_local! {
    static SCOPES: Scopes = const {
        Scopes {
            taken: Cell::new(0),
            early: [const { Cell::new(None) }; EARLY_DROP_SLOTS],
        }
    };
}

#[cfg(feature = "enabled")]
thread_local! {
    /// Scopes dropped early past the fixed table's room, in no order. Until 2026-12-05 the
    /// ninth such scope open at once on a thread was not kept anywhere: it never ended, so
    /// the thread stayed in its owner with no scope open (everything it allocated afterwards
    /// charged there), and that id and the eight in the table were kept from reuse for good
    /// (`tests/it/scopes.rs`). Touched only then: a thread that never drops nine scopes out of
    /// order never allocates it (nor registers its destructor).
    static SPILLED: std::cell::RefCell<Vec<EarlyDrop>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// Keeps a scope dropped early in [`SPILLED`]; `false` when it cannot (during thread exit,
/// once the list is gone, or when its room cannot grow).
#[cfg(feature = "enabled")]
fn spill(early: EarlyDrop) -> bool {
    SPILLED
        .try_with(|spilled| {
            let Ok(mut spilled) = spilled.try_borrow_mut() else { return false };
            // The list's growth is heapscope's bookkeeping, not the owner's that is current.
            // Entered and ended here directly: ending an `OwnerScope` would look for scopes
            // dropped early, in this list, which is borrowed.
            let (previous, depth) =
                crate::counters::open_scope(crate::counters::tag_of(registry::INTERNAL));
            let room = spilled.try_reserve(1).is_ok();
            crate::counters::close_scope(previous, depth);
            if room {
                spilled.push(early);
            }
            room
        })
        .unwrap_or(false)
}

/// The scope dropped early at `depth`, taken out of [`SPILLED`].
#[cfg(feature = "enabled")]
fn unspill(depth: u32) -> Option<EarlyDrop> {
    SPILLED
        .try_with(|spilled| {
            let mut spilled = spilled.try_borrow_mut().ok()?;
            let at = spilled.iter().position(|e| e.depth == depth)?;
            Some(spilled.swap_remove(at))
        })
        .ok()
        .flatten()
}

/// A scope has ended and made the scope outside it innermost: if that one was dropped early,
/// it ends now, and so on outwards. So `a.enter(); b.enter();` dropped as `a`, then `b`,
/// leaves the thread where it was before `a`, with both ids free for reuse.
#[cfg(feature = "enabled")]
fn end_early_drops() {
    let _ = SCOPES.try_with(|scopes| {
        while scopes.taken.get() > 0 {
            let innermost = crate::counters::scope_depth();
            let early = match scopes
                .early
                .iter()
                .find(|slot| slot.get().is_some_and(|e| e.depth == innermost))
            {
                Some(slot) => slot.take(),
                None => unspill(innermost),
            };
            let Some(early) = early else { return };
            scopes.taken.set(scopes.taken.get().saturating_sub(1));
            end_scope(early.previous, early.pin, early.depth);
        }
    });
}

pin_project_lite::pin_project! {
    /// A future that makes its owner current on every poll, and while the future is dropped;
    /// see [`InOwner::in_owner`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Owned<F> {
        // Dropped by hand, inside the owner, in `PinnedDrop`: a cancelled task's destructors
        // (a `Drop` that logs, sends, or buffers) allocate as the task, not as whatever
        // owner the executor's thread happens to have.
        #[pin]
        inner: ManuallyDrop<F>,
        owner: Owner,
    }

    impl<F> PinnedDrop for Owned<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let _scope = this.owner.enter();
            // SAFETY: `PinnedDrop::drop` runs once, and `inner` is never touched after it:
            // dropping it in place is what dropping the field would do (a pinned value may be
            // dropped where it lies; it is not moved). `get_unchecked_mut` only gives the
            // `&mut` that `ManuallyDrop::drop` needs, without moving out.
            unsafe { ManuallyDrop::drop(this.inner.get_unchecked_mut()) }
        }
    }
}

impl<F: Future> Future for Owned<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = this.owner.enter();
        // SAFETY: a projection through `ManuallyDrop`, which is `repr(transparent)` and never
        // moves its value: `F` stays pinned where `inner` is.
        let inner = unsafe { this.inner.map_unchecked_mut(|inner| &mut **inner) };
        inner.poll(cx)
    }
}

/// Attributes a future's allocations to an owner, whichever thread polls it.
pub trait InOwner: Future + Sized {
    /// Wraps this future so that `owner` is current during each of its polls, so a task keeps
    /// its owner across the threads of a multi-threaded executor, and while the future is
    /// dropped (a task cancelled before it finished runs its destructors as itself).
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{InOwner, Owner};
    ///
    /// let tools = Owner::named("tool_results");
    /// let fut = async { vec![1u8; 64] }.in_owner(tools);
    /// # let _ = fut;
    /// ```
    fn in_owner(self, owner: Owner) -> Owned<Self> {
        Owned { inner: ManuallyDrop::new(self), owner }
    }
}

impl<F: Future> InOwner for F {}

/// The owner called `name` (a constant `&str`), registered once and cached in a call-site
/// `static`. If that owner is retired, the next call registers the name again, as
/// [`Owner::named`] would (with the `enabled` feature or without).
///
/// ```
/// # heapscope::install!();
/// let history = heapscope::owner!("history");
/// assert_eq!(history, heapscope::Owner::named("history"));
/// ```
///
/// The name must be a constant: one cached owner per call site cannot follow a name that
/// changes (a `format!` here once returned the first name's owner for every name).
///
/// ```compile_fail
/// let i = 3;
/// let call = heapscope::owner!(format!("call_{i}"));
/// ```
#[macro_export]
macro_rules! owner {
    ($name:expr) => {{
        const NAME: &str = $name;
        static OWNER: ::std::sync::atomic::AtomicU64 = ::std::sync::atomic::AtomicU64::new(0);
        $crate::Owner::__cached(&OWNER, NAME)
    }};
}

impl Owner {
    /// What [`owner!`](crate::owner) expands to: the owner cached in `slot` (`0` before the
    /// first call), or `name`'s owner registered again when the cached one was retired. One
    /// atomic load when the cached owner is live.
    ///
    /// Only a registered owner is cached: while registration fails (a full registry) each
    /// call falls back as [`Owner::named`] does and tries again next time. A cached fallback
    /// once charged the overflow owner from that call site for good, ids freed or not.
    #[doc(hidden)]
    pub fn __cached(slot: &AtomicU64, name: &'static str) -> Owner {
        let packed = slot.load(Relaxed);
        let cached = Owner { id: (packed >> 32) as u16, generation: packed as u32 };
        if packed != 0 && cached.is_current_generation() {
            return cached;
        }
        match Owner::try_named(name) {
            Ok(owner) => {
                slot.store(u64::from(owner.id) << 32 | u64::from(owner.generation), Relaxed);
                owner
            }
            Err(_) => Owner::named(name),
        }
    }

    /// Whether the id still holds this handle's owner, unretired (without the registry's lock).
    fn is_current_generation(self) -> bool {
        #[cfg(feature = "enabled")]
        {
            self.id < registry::FIRST_USER_ID
                || crate::counters::OWNERS
                    .get(self.id as usize)
                    .is_some_and(|c| c.generation.load(Relaxed) == self.generation)
        }
        // Without tracking the registry keeps the live generations (a handle cached before a
        // retirement once stayed cached: `owner!` returned the stale handle for good, named
        // "heapscope.stale" once its id was reused, where `Owner::named` gave the name's owner).
        #[cfg(not(feature = "enabled"))]
        {
            self.id < registry::FIRST_USER_ID
                || registry::LIVE_GENERATIONS
                    .get(self.id as usize)
                    .is_some_and(|g| g.load(Relaxed) == self.generation)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_zero_sized_when_disabled() {
        #[cfg(not(feature = "enabled"))]
        assert_eq!(std::mem::size_of::<OwnerScope>(), 0);
        assert!(std::mem::size_of::<Owner>() <= 8);
    }

    #[test]
    fn stale_handles_are_rejected() {
        let parent = Owner::named("unit_stale");
        let child = parent.child("gone");
        child.retire().unwrap();
        assert_eq!(child.try_child("x"), Err(Error::Stale));
    }
}
