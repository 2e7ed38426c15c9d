//! `Owner` handles, scopes that make an owner current, and the async wrapper.

#[cfg(test)]
use crate::error::Error;
use crate::error::Result;
use crate::registry::{self, INTERNAL, OVERFLOW, PROCESS, ROOT};
use crate::stats::OwnerStats;
use std::future::Future;
use std::io::Write as _;
use std::marker::PhantomData;
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

/// How often [`Owner::named`] fell back to the overflow owner.
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
    /// assert!(heapscope::Owner::try_named("").is_err());
    /// assert!(heapscope::Owner::try_named("tool_results").is_ok());
    /// ```
    pub fn try_named(name: impl AsRef<str>) -> Result<Owner> {
        let (id, generation) = registry::with(|r| r.get_or_register(PROCESS, name.as_ref()))?;
        Ok(Owner { id, generation })
    }

    fn or_overflow(result: Result<Owner>) -> Owner {
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
    /// assert_eq!(heapscope::Owner::root().name(), "root");
    /// ```
    pub const fn root() -> Owner {
        Owner { id: ROOT, generation: 0 }
    }

    /// The owner charged when the real one cannot be recorded: names that could not be
    /// registered, handles of retired owners, and blocks the side table had no room for.
    ///
    /// ```
    /// assert_eq!(heapscope::Owner::overflow().name(), "heapscope.overflow");
    /// ```
    pub const fn overflow() -> Owner {
        Owner { id: OVERFLOW, generation: 0 }
    }

    /// heapscope's own bookkeeping (the registry and labels).
    ///
    /// ```
    /// assert_eq!(heapscope::Owner::internal().name(), "heapscope.internal");
    /// ```
    pub const fn internal() -> Owner {
        Owner { id: INTERNAL, generation: 0 }
    }

    /// The owner current on this thread (always [`Owner::root`] without the `enabled`
    /// feature).
    ///
    /// ```
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
    /// ```
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
            scope.pinned = Some(count);
            scope
        }
        #[cfg(not(feature = "enabled"))]
        OwnerScope { _not_send: PhantomData }
    }

    /// Runs `f` with this owner current.
    ///
    /// ```
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
    /// reused.
    ///
    /// ```
    /// let call = heapscope::Owner::named("tools").child("call_1");
    /// call.retire().unwrap();
    /// assert!(heapscope::Owner::root().retire().is_err());
    /// ```
    pub fn retire(self) -> Result<()> {
        registry::with(|r| r.retire(self.id, self.generation))
    }

    /// The full name: `parent/child` for children.
    ///
    /// A retired-and-reused handle reads `"heapscope.stale"`.
    ///
    /// ```
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
        let previous = crate::counters::replace_current(crate::counters::tag_of(id));
        OwnerScope { previous, pinned: None, _not_send: PhantomData }
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
    /// Where this scope counted itself to keep a user owner's id from reuse (see
    /// `counters::pin`); `None` for reserved owners, which are never reused.
    #[cfg(feature = "enabled")]
    pinned: Option<crate::counters::ScopePin>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for OwnerScope {
    fn drop(&mut self) {
        #[cfg(feature = "enabled")]
        {
            crate::counters::replace_current(self.previous);
            // Only once this thread no longer has it current may the id be reused.
            if let Some(count) = self.pinned {
                crate::counters::unpin(count);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that makes its owner current on every poll; see [`InOwner::in_owner`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Owned<F> {
        #[pin]
        inner: F,
        owner: Owner,
    }
}

impl<F: Future> Future for Owned<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = this.owner.enter();
        this.inner.poll(cx)
    }
}

/// Attributes a future's allocations to an owner, whichever thread polls it.
pub trait InOwner: Future + Sized {
    /// Wraps this future so that `owner` is current during each of its polls, so a task keeps
    /// its owner across the threads of a multi-threaded executor.
    ///
    /// ```
    /// use heapscope::{InOwner, Owner};
    ///
    /// let tools = Owner::named("tool_results");
    /// let fut = async { vec![1u8; 64] }.in_owner(tools);
    /// # let _ = fut;
    /// ```
    fn in_owner(self, owner: Owner) -> Owned<Self> {
        Owned { inner: self, owner }
    }
}

impl<F: Future> InOwner for F {}

/// The owner called `name`, registered once and cached in a call-site `static`.
///
/// ```
/// let history = heapscope::owner!("history");
/// assert_eq!(history, heapscope::Owner::named("history"));
/// ```
#[macro_export]
macro_rules! owner {
    ($name:expr) => {{
        static OWNER: ::std::sync::OnceLock<$crate::Owner> = ::std::sync::OnceLock::new();
        *OWNER.get_or_init(|| $crate::Owner::named($name))
    }};
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
