//! Retained items: one value and every byte it allocates, attributed to an owner of its own.
//!
//! [`Retained::build`] runs a closure under a fresh child of a parent owner, so the value's
//! bytes (now, and later through [`Retained::enter`] or [`Retained::with_mut`]) are that
//! item's alone; [`top`] lists the largest live items. Dropping the item frees the value and
//! retires its owner.

use crate::error::Result;
use crate::owner::{InOwner, Owner, OwnerScope};
use crate::registry::{self, ItemMeta};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Instant;

static HASH_LABELS: AtomicBool = AtomicBool::new(false);

/// Live items built under the overflow owner (no owner, label or registry entry of their
/// own), which [`top`] cannot list: counted so that what lists items can say it left some out.
static OVERFLOW_ITEMS: AtomicU64 = AtomicU64::new(0);

/// How retained items keep their labels. Labels can carry sensitive text (a file name, a
/// user's query): [`LabelPolicy::Hash`] keeps only a hash, so no report or snapshot can leak
/// the text.
///
/// ```
/// # heapscope::install!();
/// use heapscope::{Owner, Retained};
/// // `LabelPolicy::Text`, the default: the label is kept as given.
/// let item = Retained::build(Owner::named("uploads"), "report-q3.pdf", || vec![0u8; 64]);
/// assert_eq!(item.label(), "report-q3.pdf");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LabelPolicy {
    /// Keep the label as given (the default).
    Text,
    /// Keep `fnv1a64:<16 hex digits>` of the label instead of the text.
    Hash,
}

/// Sets how items built from now on keep their labels (items already built keep theirs).
///
/// ```
/// # heapscope::install!();
/// use heapscope::retained::{self, LabelPolicy};
/// retained::set_label_policy(LabelPolicy::Hash);
/// let item = heapscope::Retained::build(heapscope::Owner::named("tools"), "secret.txt", || 1u8);
/// assert!(item.label().starts_with("fnv1a64:"));
/// retained::set_label_policy(LabelPolicy::Text);
/// ```
pub fn set_label_policy(policy: LabelPolicy) {
    HASH_LABELS.store(policy == LabelPolicy::Hash, Relaxed);
}

fn fnv1a64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A value whose allocations are attributed to an owner of its own, a child of `parent`.
///
/// ```
/// # heapscope::install!();
/// use heapscope::{Owner, Retained};
///
/// let tools = Owner::named("tool_results");
/// let output = Retained::build(tools, "grep output", || "match\n".repeat(1000));
/// assert_eq!(output.len(), 6000);
/// # #[cfg(feature = "enabled")] if heapscope::is_tracking() {
/// assert_eq!(output.live_bytes(), 6000);
/// # }
/// // A tool result that becomes part of the conversation history:
/// output.transfer_to(Owner::named("history")).unwrap();
/// ```
///
/// It serializes (serde) and displays as its value, so a message that holds one serializes as
/// if it held the value itself:
///
/// ```
/// # heapscope::install!();
/// use heapscope::{Owner, Retained};
///
/// #[derive(serde::Serialize)]
/// struct Message {
///     role: &'static str,
///     content: Retained<serde_json::Value>,
/// }
/// let content = Retained::build(Owner::named("tool_results"), "ls", || serde_json::json!(["a", "b"]));
/// let message = Message { role: "tool", content };
/// assert_eq!(serde_json::to_string(&message).unwrap(), r#"{"role":"tool","content":["a","b"]}"#);
/// assert_eq!(message.content.to_string(), r#"["a","b"]"#);
/// ```
pub struct Retained<T> {
    value: ManuallyDrop<T>,
    owner: Owner,
}

impl<T> Retained<T> {
    /// Runs `make` under a fresh child owner of `parent` and keeps its value.
    ///
    /// When the registry is full (or `parent` was retired, or is at the deepest level), the
    /// value is built under the overflow owner, with the one `heapscope:` warning per process
    /// that [`Owner::named`] prints; [`Retained::try_build`] reports that instead.
    ///
    /// ```
    /// # heapscope::install!();
    /// let item = heapscope::Retained::build(heapscope::Owner::named("cache"), "page", || vec![0u8; 10]);
    /// assert_eq!(item.len(), 10);
    /// ```
    ///
    /// Only what `make` allocates is the item's: a value made before the call and moved into
    /// the closure stays charged to the owner that made it. A tool result taken from a cache
    /// as `let v = cache.get(key).clone(); Retained::build(tools, key, move || v)` made an item
    /// of 0 bytes (its 28 317 bytes were the caller's owner's), and `transfer_to` then moved
    /// nothing into the history. Make or clone the value inside the closure:
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{Owner, Retained};
    /// let tools = Owner::named("build_doc_tools");
    /// let cached = vec![0u8; 4096];
    /// let copied = Retained::build(tools, "cache hit", || cached.clone()); // the copy is the item's
    /// let made_before = cached.clone();
    /// let moved = Retained::build(tools, "cache hit", move || made_before); // made outside
    /// if heapscope::is_tracking() {
    ///     assert_eq!(copied.live_bytes(), 4096);
    ///     assert_eq!(moved.live_bytes(), 0);
    /// }
    /// ```
    pub fn build(parent: Owner, label: impl AsRef<str>, make: impl FnOnce() -> T) -> Retained<T> {
        // A fallback warns as `Owner::named`'s does: it once fell back without a word.
        Self::build_infallible(Owner::or_overflow(Self::register(parent, label.as_ref())), make)
    }

    /// Like [`Retained::build`], for a value whose making can fail (a tool output parsed as
    /// JSON): an `Ok` becomes the item, an `Err` is returned as it is, and the item's owner is
    /// retired. What the error holds was allocated under that owner and stays counted there
    /// (shown as retired) until the error is dropped.
    ///
    /// # Errors
    /// `make`'s error.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{Owner, Retained};
    /// let tools = Owner::named("tool_results");
    /// let parsed = Retained::build_fallible(tools, "ls --json", || {
    ///     serde_json::from_str::<serde_json::Value>(r#"["a", "b"]"#)
    /// });
    /// assert_eq!(parsed.unwrap()[1], "b");
    /// let failed = Retained::build_fallible(tools, "ls --json", || {
    ///     serde_json::from_str::<serde_json::Value>("[\"a\", ")
    /// });
    /// assert!(failed.is_err());
    /// ```
    pub fn build_fallible<E>(
        parent: Owner,
        label: impl AsRef<str>,
        make: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<Retained<T>, E> {
        Self::build_under(Owner::or_overflow(Self::register(parent, label.as_ref())), make)
    }

    /// Like [`Retained::build`], for a value an async computation makes (a tool call that
    /// fetches a page, a subprocess read to its end): the item's owner is current in every
    /// poll of `make`, on whichever thread polls it (see [`InOwner`]). The
    /// item is registered when this is called; dropping the returned future before it
    /// finishes (a cancelled tool call) retires the item's owner, as a panic in `make` does.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{Owner, Retained};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
    /// #             return v;
    /// #         }
    /// #     }
    /// # }
    /// let tools = Owner::named("tool_results");
    /// let page = block_on(Retained::build_async(tools, "GET /docs", async { "<html>".repeat(100) }));
    /// assert_eq!(page.len(), 600);
    /// # #[cfg(feature = "enabled")] if heapscope::is_tracking() {
    /// assert_eq!(page.live_bytes(), 600);
    /// # }
    /// ```
    ///
    /// The label is read at the call: the future ([`BuildAsync`]) borrows nothing of it, so a
    /// build labelled from a `format!`ed string can be spawned (`tokio::spawn` needs `'static`)
    /// and the string dropped at once.
    pub fn build_async<F: Future<Output = T>>(
        parent: Owner,
        label: impl AsRef<str>,
        make: F,
    ) -> BuildAsync<F> {
        let (owner, guard) = Self::register_for_async(parent, label.as_ref());
        BuildAsync { make: make.in_owner(owner), guard, owner }
    }

    /// [`Retained::build_async`] for a computation that can fail, as
    /// [`Retained::build_fallible`]: an `Err` is returned and the item's owner retired.
    ///
    /// # Errors
    /// `make`'s error.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{Owner, Retained};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
    /// #             return v;
    /// #         }
    /// #     }
    /// # }
    /// let tools = Owner::named("tool_results");
    /// let fetch = async { Err::<String, _>("connection refused".to_string()) };
    /// let failed = block_on(Retained::build_fallible_async(tools, "GET /docs", fetch));
    /// assert_eq!(failed.unwrap_err(), "connection refused");
    /// ```
    pub fn build_fallible_async<E, F: Future<Output = std::result::Result<T, E>>>(
        parent: Owner,
        label: impl AsRef<str>,
        make: F,
    ) -> BuildFallibleAsync<F> {
        let (owner, guard) = Self::register_for_async(parent, label.as_ref());
        BuildFallibleAsync { make: make.in_owner(owner), guard, owner }
    }

    /// The item's owner for an async build, with the guard that retires it: made at the call,
    /// so that a future dropped before its first poll retires the owner too.
    fn register_for_async(parent: Owner, label: &str) -> (Owner, RetireOnDrop) {
        let owner = Owner::or_overflow(Self::register(parent, label));
        (owner, RetireOnDrop::item(owner))
    }

    /// Like [`Retained::build`], but reports a registry that is full or a stale parent.
    ///
    /// # Errors
    /// [`Error::RegistryFull`](crate::Error::RegistryFull), [`Error::Stale`](crate::Error::Stale),
    /// [`Error::TooDeep`](crate::Error::TooDeep).
    ///
    /// ```
    /// # heapscope::install!();
    /// let item = heapscope::Retained::try_build(heapscope::Owner::named("cache"), "page", || 1).unwrap();
    /// assert_eq!(*item, 1);
    /// ```
    pub fn try_build(
        parent: Owner,
        label: impl AsRef<str>,
        make: impl FnOnce() -> T,
    ) -> Result<Retained<T>> {
        Ok(Self::build_infallible(Self::register(parent, label.as_ref())?, make))
    }

    fn register(parent: Owner, label: &str) -> Result<Owner> {
        let created = Instant::now();
        // Inside `registry::with`, which counts what it allocates as heapscope's own: the
        // label lives as long as the item, and was once charged to the caller's owner.
        let (id, generation) = registry::with(|r| {
            let label = if HASH_LABELS.load(Relaxed) {
                format!("fnv1a64:{:016x}", fnv1a64(label))
            } else {
                label.to_owned()
            };
            let meta = ItemMeta { label, type_name: std::any::type_name::<T>(), created };
            // The parent's generation is checked under the same lock as the registration.
            r.register_item((parent.id(), parent.generation()), meta)
        })?;
        Ok(Owner::from_parts(id, generation))
    }

    fn build_under<E>(
        owner: Owner,
        make: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<Retained<T>, E> {
        // Retires the item's owner if `make` panics or fails: no `Retained` will, and each
        // such panic once kept an id registered for good (an agent whose tool calls panic
        // would fill the registry).
        let mut guard = RetireOnDrop::item(owner);
        let value = owner.in_scope(make)?;
        guard.0 = None;
        Ok(Self::adopt(owner, value))
    }

    /// [`build_under`](Self::build_under) of a closure that cannot fail.
    fn build_infallible(owner: Owner, make: impl FnOnce() -> T) -> Retained<T> {
        match Self::build_under(owner, || Ok::<T, Infallible>(make())) {
            Ok(item) => item,
            Err(never) => match never {},
        }
    }

    /// The item of `value`, made under `owner`.
    fn adopt(owner: Owner, value: T) -> Retained<T> {
        if owner == Owner::overflow() {
            OVERFLOW_ITEMS.fetch_add(1, Relaxed);
        }
        Retained { value: ManuallyDrop::new(value), owner }
    }

    /// The item is gone (dropped or taken apart): one fewer that [`top`] cannot list.
    fn forget_overflow(&self) {
        if self.owner == Owner::overflow() {
            OVERFLOW_ITEMS.fetch_sub(1, Relaxed);
        }
    }

    /// The item's own owner (a child of its parent), to pass to code that enters owners.
    ///
    /// ```
    /// # heapscope::install!();
    /// let item = heapscope::Retained::build(heapscope::Owner::named("cache"), "x", || 0);
    /// assert!(item.owner().name().starts_with("cache/item#"));
    /// ```
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// The label (or its hash, under [`LabelPolicy::Hash`]).
    ///
    /// ```
    /// # heapscope::install!();
    /// let item = heapscope::Retained::build(heapscope::Owner::named("cache"), "readme", || 0);
    /// assert_eq!(item.label(), "readme");
    /// ```
    pub fn label(&self) -> String {
        registry::with(|r| {
            r.any_entry(self.owner.id(), self.owner.generation())
                .ok()
                .and_then(|e| e.item.as_ref().map(|m| m.label.clone()))
                .unwrap_or_default()
        })
    }

    /// Makes the item's owner current, so what is allocated while the scope lives is the
    /// item's.
    ///
    /// ```
    /// # heapscope::install!();
    /// let mut log = heapscope::Retained::build(heapscope::Owner::named("logs"), "log", Vec::<String>::new);
    /// let line = { let _scope = log.enter(); String::from("appended") };
    /// log.with_mut(|v| v.push(line));
    /// ```
    pub fn enter(&self) -> OwnerScope {
        self.owner.enter()
    }

    /// Runs `f` on the value with the item's owner current, so its growth is the item's.
    ///
    /// ```
    /// # heapscope::install!();
    /// let mut hist = heapscope::Retained::build(heapscope::Owner::named("h"), "turns", Vec::<u64>::new);
    /// hist.with_mut(|v| v.extend(0..100));
    /// assert_eq!(hist.len(), 100);
    /// ```
    pub fn with_mut<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let _scope = self.owner.enter();
        f(&mut self.value)
    }

    /// Exact live bytes of the item (its owner and any children of it). Zero without the
    /// `enabled` feature. An item that [`Retained::build`] had to build under the overflow
    /// owner (registry full, parent retired) has no owner of its own: this is then the
    /// overflow owner's live bytes, every such item's together.
    ///
    /// ```
    /// # heapscope::install!();
    /// let item = heapscope::Retained::build(heapscope::Owner::named("c"), "v", || vec![0u8; 300]);
    /// # #[cfg(feature = "enabled")] if heapscope::is_tracking() {
    /// assert_eq!(item.live_bytes(), 300);
    /// # }
    /// ```
    pub fn live_bytes(&self) -> u64 {
        self.owner.stats().live_bytes
    }

    /// Moves the item, and all its live bytes, under `new_parent`: from now on `new_parent`'s
    /// stats include it and its old parent's do not.
    ///
    /// The owners' `live_bytes` are always exact. Their peaks are exact when no other thread
    /// allocates or frees under the item during the move. One that does can leave each parent's
    /// peak bookkeeping off, for good, by what it allocated or freed there while the move ran,
    /// one way or the other: a block the move did not see but the thread counted under the old
    /// parent stays in it, so a later peak of the old parent reads that much above anything it
    /// held and one of the new parent that much below; a block the move saw and moved but the
    /// thread counted under the new parent does the opposite. 300 moves racing a thread that
    /// allocates 256 KiB blocks under the item left the old parent's later 64 MiB peak one
    /// block high in 11 to 27 of them, one block low in 19 to 34 (`tests/retained.rs`, which
    /// checks the bound). The move alone cannot tell which parent such a block was counted
    /// under: the allocating thread counts it before it reads the item's parent, and the move
    /// reads the item and re-points it in two steps, so a call that the reading saw may have
    /// read either parent.
    ///
    /// # Errors
    /// [`Error::Stale`](crate::Error::Stale) for a retired `new_parent`,
    /// [`Error::WouldCycle`](crate::Error::WouldCycle) for a parent inside the item itself,
    /// [`Error::TooDeep`](crate::Error::TooDeep), [`Error::Reserved`](crate::Error::Reserved)
    /// for an item that has no owner of its own (built when the registry was full, under
    /// `heapscope.overflow`).
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{Owner, Retained};
    /// let result = Retained::build(Owner::named("tool_results"), "ls", || "a b c".to_string());
    /// result.transfer_to(Owner::named("history")).unwrap();
    /// assert!(result.owner().name().starts_with("history/"));
    /// ```
    pub fn transfer_to(&self, new_parent: Owner) -> Result<()> {
        registry::with(|r| {
            // Checked under the same lock as the move: a parent retired and its id reused in
            // between would otherwise receive the item.
            r.check_live(new_parent.id(), new_parent.generation())?;
            r.reparent(self.owner.id(), self.owner.generation(), new_parent.id())
        })?;
        Ok(())
    }

    /// Takes the value out. Its bytes stay counted under the item's (now retired) owner until
    /// they are freed.
    ///
    /// ```
    /// # heapscope::install!();
    /// let item = heapscope::Retained::build(heapscope::Owner::named("c"), "v", || vec![1, 2]);
    /// assert_eq!(item.into_inner(), vec![1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used again and its Drop does not run, so the value is
        // taken exactly once.
        let value = unsafe { ManuallyDrop::take(&mut this.value) };
        this.forget_overflow();
        let _ = this.owner.retire();
        value
    }
}

impl<T> Deref for Retained<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Drop for Retained<T> {
    fn drop(&mut self) {
        // Retires the owner once the value is dropped, also if the value's drop panics: it
        // once stayed live for good then, listed by `top`, its id never reused.
        let _retire = RetireOnDrop(Some(self.owner));
        self.forget_overflow();
        // SAFETY: the value is dropped exactly once, here; `into_inner` skips this Drop.
        unsafe { ManuallyDrop::drop(&mut self.value) };
    }
}

/// Retires its owner (if any) when dropped, also while unwinding.
#[derive(Debug)]
struct RetireOnDrop(Option<Owner>);

impl RetireOnDrop {
    /// The guard of an item being built under `owner`: none for the overflow owner, which is
    /// never retired.
    fn item(owner: Owner) -> RetireOnDrop {
        RetireOnDrop(Some(owner).filter(|o| *o != Owner::overflow()))
    }
}

pin_project_lite::pin_project! {
    /// The future [`Retained::build_async`] returns: the item, once `F` is done.
    ///
    /// The item's owner is current in every poll of `F` and while `F` is dropped; dropped
    /// unfinished (a cancelled tool call), it retires the item's owner. It holds the item's
    /// owner, not the label, which was read at the call: it is `'static` and `Send` when `F`
    /// is, whatever the label borrowed.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled; dropped unfinished, the item is retired"]
    pub struct BuildAsync<F> {
        // Before `guard`: `F` is dropped (inside the item's owner) before the owner is retired.
        #[pin]
        make: crate::Owned<F>,
        guard: RetireOnDrop,
        owner: Owner,
    }
}

impl<F: Future> Future for BuildAsync<F> {
    type Output = Retained<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let value = std::task::ready!(this.make.poll(cx));
        this.guard.0 = None;
        Poll::Ready(Retained::adopt(*this.owner, value))
    }
}

pin_project_lite::pin_project! {
    /// The future [`Retained::build_fallible_async`] returns: the item once `F` gives `Ok`, or
    /// `F`'s error, the item's owner then retired. Otherwise as [`BuildAsync`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled; dropped unfinished, the item is retired"]
    pub struct BuildFallibleAsync<F> {
        // Before `guard`: `F` is dropped (inside the item's owner) before the owner is retired.
        #[pin]
        make: crate::Owned<F>,
        guard: RetireOnDrop,
        owner: Owner,
    }
}

impl<T, E, F: Future<Output = std::result::Result<T, E>>> Future for BuildFallibleAsync<F> {
    type Output = std::result::Result<Retained<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.make.poll(cx)) {
            Ok(value) => {
                this.guard.0 = None;
                Poll::Ready(Ok(Retained::adopt(*this.owner, value)))
            }
            Err(error) => {
                // Retired now, as a failed `build_fallible` is: the error's bytes stay counted
                // under the item's owner until the error is dropped.
                drop(RetireOnDrop(this.guard.0.take()));
                Poll::Ready(Err(error))
            }
        }
    }
}

impl Drop for RetireOnDrop {
    fn drop(&mut self) {
        if let Some(owner) = self.0.take() {
            let _ = owner.retire();
        }
    }
}

impl<T> AsRef<T> for Retained<T> {
    fn as_ref(&self) -> &T {
        &self.value
    }
}

/// The value's own form: the item is how it is held, not part of what it says.
impl<T: Serialize> Serialize for Retained<T> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        (*self.value).serialize(serializer)
    }
}

impl<T: fmt::Display> fmt::Display for Retained<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (*self.value).fmt(f)
    }
}

impl<T: fmt::Debug> fmt::Debug for Retained<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retained").field("owner", &self.owner).field("value", &*self.value).finish()
    }
}

/// One live retained item, as listed by [`top`].
///
/// ```
/// # heapscope::install!();
/// use heapscope::{Owner, Retained};
/// let page = Retained::build(Owner::named("pages"), "index.html", || vec![0u8; 4096]);
/// // Nothing tracked (the feature off, or no `install!`), `top` lists nothing.
/// if let Some(info) = heapscope::retained::top(10).into_iter().find(|i| i.label == "index.html") {
///     assert_eq!(info.parent, "pages");
///     assert!(info.owner.starts_with("pages/"));
///     assert!(info.type_name.contains("Vec<u8>"));
///     # #[cfg(feature = "enabled")] if heapscope::is_tracking() {
///     assert_eq!(info.live_bytes, 4096);
///     # }
/// }
/// # if heapscope::is_tracking() {
/// # assert!(heapscope::retained::top(10).iter().any(|i| i.label == "index.html"));
/// # }
/// # drop(page);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemInfo {
    /// The label, or its hash under [`LabelPolicy::Hash`].
    pub label: String,
    /// The item's own owner name (`parent/item#N`).
    pub owner: String,
    /// The parent owner's full name (after any [`Retained::transfer_to`]).
    pub parent: String,
    /// `std::any::type_name` of the value.
    pub type_name: String,
    /// Exact live bytes of the item.
    pub live_bytes: u64,
    /// Milliseconds since the item was built.
    pub age_ms: u64,
}

/// How many live items were built under the overflow owner, which [`top`] cannot list (see
/// [`Retained::build`]). Their bytes are in `heapscope.overflow`'s figures.
///
/// ```
/// # heapscope::install!();
/// assert_eq!(heapscope::retained::overflow_items(), 0);
/// ```
pub fn overflow_items() -> u64 {
    OVERFLOW_ITEMS.load(Relaxed)
}

/// The `n` largest live retained items, largest first (ties by owner name).
///
/// Items built under the overflow owner (the registry was full, or the parent retired: see
/// [`Retained::build`]) have no owner or label of their own and are not listed, however large;
/// [`overflow_items`] counts them, and a report says how many it left out. Empty when nothing
/// is tracked ([`is_tracking`](crate::is_tracking) is `false`: the `enabled` feature off, or
/// heapscope's allocator not installed), as a snapshot's owners are: nothing is measured, so
/// nothing is largest.
///
/// ```
/// # heapscope::install!();
/// use heapscope::{Owner, Retained};
/// let a = Retained::build(Owner::named("top_doc"), "small", || vec![0u8; 10]);
/// let b = Retained::build(Owner::named("top_doc"), "big", || vec![0u8; 10_000]);
/// let top = heapscope::retained::top(1);
/// # #[cfg(feature = "enabled")] if heapscope::is_tracking() {
/// assert_eq!(top[0].label, "big");
/// # }
/// ```
pub fn top(n: usize) -> Vec<ItemInfo> {
    ranked(n, None)
}

/// The `n` largest live retained items under `owner` (its descendants, and `owner` itself if
/// it is an item), largest first (ties by owner name), as [`top`] lists them. [`top`] lists
/// the whole process's: in tests running in parallel, other tests' items too. Empty when
/// `owner` was retired and its id went to another owner.
///
/// ```
/// # heapscope::install!();
/// use heapscope::{Owner, Retained};
/// let mine = Owner::named("top_under_doc");
/// let theirs = Owner::named("top_under_doc_other");
/// let small = Retained::build(mine.child("history"), "small", || vec![0u8; 10]);
/// let big = Retained::build(theirs, "big", || vec![0u8; 10_000]);
/// let top = heapscope::retained::top_under(mine, 5);
/// if heapscope::is_tracking() {
///     assert_eq!(top.len(), 1);
///     assert_eq!(top[0].label, "small");
///     assert_eq!(top[0].parent, "top_under_doc/history");
/// }
/// ```
pub fn top_under(owner: Owner, n: usize) -> Vec<ItemInfo> {
    ranked(n, Some(owner))
}

/// [`top`], of the items under `under` when given.
fn ranked(n: usize, under: Option<Owner>) -> Vec<ItemInfo> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    // Nothing measured (tracking compiled out, or heapscope's allocator not installed), nothing
    // largest: with the feature on but no `install!`, every item was listed at 0 B.
    if n == 0 || !crate::is_tracking() {
        return Vec::new();
    }
    let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
    let now = Instant::now();
    // Ranked in place under the registry's lock, keeping only the `n` best so far in a heap
    // whose top is the worst of them, and only those are copied out. `top` once copied every
    // registered owner's entry (with labels and paths) and every owner's counters to rank the
    // items, and sorted them all: 1.5 MB above what heapscope held for `top(10)` with 4 000
    // items (`tests/diag_memory.rs`), the moment a caller looks at what is large.
    registry::with(|r| {
        if under.is_some_and(|o| r.any_entry(o.id(), o.generation()).is_err()) {
            return Vec::new();
        }
        #[cfg(feature = "enabled")]
        let live = |id: u16| r.live_bytes(id);
        #[cfg(not(feature = "enabled"))]
        let live = |_: u16| 0u64;
        // Largest first, ties by owner name: the heap's greatest is the smallest, then the
        // last by name.
        let mut best: BinaryHeap<(Reverse<u64>, &str, u16)> =
            BinaryHeap::with_capacity(n.min(registry::MAX_OWNERS).saturating_add(1));
        for (id, e, _) in r.live_items() {
            if under.is_some_and(|o| !r.is_ancestor(o.id(), id)) {
                continue;
            }
            best.push((Reverse(live(id)), e.path.as_str(), id));
            if best.len() > n {
                best.pop();
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .filter_map(|(Reverse(live_bytes), path, id)| {
                let e = r.entry(id)?;
                let meta = e.item.as_ref()?;
                Some(ItemInfo {
                    label: meta.label.clone(),
                    owner: path.to_owned(),
                    parent: r.entry(e.parent).map_or_else(String::new, |p| p.path.clone()),
                    type_name: meta.type_name.to_owned(),
                    live_bytes,
                    age_ms: now.saturating_duration_since(meta.created).as_millis() as u64,
                })
            })
            .collect()
    })
}
