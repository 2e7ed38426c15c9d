//! `OwnerLayer`: attributes allocations to the owner named by a span field, so instrumented
//! code (and instrumented async tasks, on whichever thread polls them) is attributed without
//! code changes. Feature `tracing`.

use crate::owner::{Owner, OwnerScope};
use std::cell::RefCell;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// A [`Layer`] that makes an owner current while a span that names it is entered.
///
/// A span with the field `owner = "tool_results"` (the field name is configurable) charges
/// everything allocated while it is entered to the owner `tool_results`; a path such as
/// `owner = "tool_results/call_42"` names the child `call_42` of `tool_results`. Spans without
/// the field change nothing. Invalid names fall back to the overflow owner, as
/// [`Owner::named`] does.
///
/// ```
/// # heapscope::install!();
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(heapscope::OwnerLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("tool", owner = "tool_results");
///     let _entered = span.enter();
///     let output = String::from("allocated under tool_results");
/// #   drop(output);
/// });
/// ```
#[derive(Debug, Clone)]
pub struct OwnerLayer {
    field: &'static str,
}

impl OwnerLayer {
    /// A layer reading the span field `owner`.
    pub fn new() -> Self {
        OwnerLayer { field: "owner" }
    }

    /// A layer reading the span field `field` instead.
    ///
    /// ```
    /// # heapscope::install!();
    /// let layer = heapscope::OwnerLayer::with_field("memory_owner");
    /// # let _ = layer;
    /// ```
    pub fn with_field(field: &'static str) -> Self {
        OwnerLayer { field }
    }
}

impl Default for OwnerLayer {
    fn default() -> Self {
        Self::new()
    }
}

/// The owner at `parent/child/…`, registered on first use.
fn owner_at_path(path: &str) -> Owner {
    let mut parts = path.split('/');
    let top = Owner::named(parts.next().unwrap_or_default());
    parts.fold(top, |parent, child| parent.child(child))
}

/// The owner a span names, kept in the span's extensions.
struct SpanOwner(Owner);

struct FindOwner<'a> {
    field: &'a str,
    found: Option<String>,
}

impl Visit for FindOwner<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.field {
            self.found = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == self.field && self.found.is_none() {
            self.found = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

thread_local! {
    /// The owner-naming spans entered on this thread, innermost last, each with the scope that
    /// entered its owner; `None` for a span that exited while one entered after it was still
    /// entered (its scope ends once those have exited).
    static ENTERED: RefCell<Vec<(Option<Id>, OwnerScope)>> = const { RefCell::new(Vec::new()) };
}

impl<S> Layer<S> for OwnerLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // The layer's record of the span's owner is heapscope's bookkeeping: the registry
        // keeps a span's extension map, allocated by the first insert, for the next span in
        // its slot. Made under the owner current where the span was created (an agent's
        // session), it stayed charged to that owner after the span closed, for as long as the
        // subscriber lives (148 bytes per span slot: tests/async_runtime.rs).
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let mut visitor = FindOwner { field: self.field, found: None };
        attrs.record(&mut visitor);
        if let (Some(name), Some(span)) = (visitor.found, ctx.span(id)) {
            span.extensions_mut().insert(SpanOwner(owner_at_path(&name)));
        }
    }

    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        // `owner = tracing::field::Empty` at creation, `span.record("owner", "x")` later: the
        // owner applies from the span's next entry (a span keeps the first owner it named).
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<SpanOwner>().is_some() {
            return;
        }
        // Heapscope's bookkeeping, as in `on_new_span`.
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        let mut visitor = FindOwner { field: self.field, found: None };
        values.record(&mut visitor);
        if let Some(name) = visitor.found {
            span.extensions_mut().insert(SpanOwner(owner_at_path(&name)));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(owner) = span.extensions().get::<SpanOwner>().map(|o| o.0) else { return };
        // `try_with`: a span entered by another thread-local's destructor, after this one is
        // gone, is not attributed rather than a panic.
        let _ = ENTERED.try_with(|entered| {
            let mut entered = entered.borrow_mut();
            {
                // The stack's own growth is heapscope's bookkeeping, not the span owner's.
                let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
                entered.reserve(1);
            }
            entered.push((Some(id.clone()), owner.enter()));
        });
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        // Only spans that name an owner are on the stack: another span with the same id (of
        // another subscriber, ids are per subscriber) must not take one of them off.
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<SpanOwner>().is_none() {
            return;
        }
        let _ = ENTERED.try_with(|entered| {
            let mut entered = entered.borrow_mut();
            let Some(at) =
                entered.iter().rposition(|(entered_id, _)| entered_id.as_ref() == Some(id))
            else {
                return;
            };
            // Spans may exit out of order (an entered span moved, then dropped). One exited
            // under a span still entered keeps its place and its scope, which is not current
            // (a scope above it is), until the spans above it exit: then their scopes end
            // innermost first, in order, and any scope the program entered inside them keeps
            // its owner. Ending its scope at once, out of order, took one of the thread's few
            // slots for scopes dropped early: the ninth such exit found none, its scope never
            // ended, and the thread stayed in its owner for good.
            if let Some((entered_id, _)) = entered.get_mut(at) {
                *entered_id = None;
            }
            while entered.last().is_some_and(|(entered_id, _)| entered_id.is_none()) {
                drop(entered.pop());
            }
        });
    }
}
