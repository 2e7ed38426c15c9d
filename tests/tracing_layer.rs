//! `OwnerLayer`: spans that name an owner attribute what is allocated inside them, also for
//! instrumented futures polled on other threads; phases and pressure changes become events.
#![cfg(all(feature = "enabled", feature = "tracing"))]

mod common;

use common::charged_to;
use heapscope::{Owner, OwnerLayer};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

heapscope::install!();

/// Records every event of target `heapscope` as "message field=value …".
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

struct Fields(String);
impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "heapscope" {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
}

fn with_layer<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(OwnerLayer::new()).with(events.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    let seen = events.0.lock().unwrap().clone();
    (out, seen)
}

#[test]
fn spans_attribute_allocations_and_restore_on_exit() {
    let ((a, b, c), _) = with_layer(|| {
        let outer = tracing::info_span!("tool", owner = "trace_tools");
        let _o = outer.enter();
        let a = black_box(vec![0u8; 1000]);
        let b = {
            let inner = tracing::info_span!("call", owner = "trace_tools/call_1");
            let _i = inner.enter();
            black_box(vec![0u8; 300])
        };
        let c = black_box(vec![0u8; 50]); // the outer owner again
        let plain = tracing::info_span!("no owner field");
        let _p = plain.enter();
        (a, b, c)
    });
    let tools = Owner::named("trace_tools");
    let call = tools.child("call_1");
    assert_eq!(call.stats().live_bytes, 300);
    assert_eq!(tools.stats().live_bytes, 1000 + 300 + 50);
    assert_eq!(tools.stats().live_blocks, 3);
    let after = black_box(vec![0u8; 77]);
    assert_eq!(tools.stats().live_bytes, 1350, "nothing charged after the span exited");
    drop((a, b, c, after));
}

struct NoopWake;
impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Allocates 501 bytes on each of two polls, yielding in between.
struct TwoPolls(usize, Vec<Vec<u8>>);
impl Future for TwoPolls {
    type Output = Vec<Vec<u8>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let block = black_box(vec![1u8; 501]);
        self.1.push(block);
        self.0 += 1;
        if self.0 < 2 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(std::mem::take(&mut self.1))
        }
    }
}

#[test]
fn instrumented_futures_keep_their_owner_across_threads() {
    let events = Events::default();
    let subscriber = Arc::new(tracing_subscriber::registry().with(OwnerLayer::new()).with(events));
    let task = {
        let _default = tracing::subscriber::set_default(subscriber.clone());
        TwoPolls(0, Vec::with_capacity(2))
            .instrument(tracing::info_span!("task", owner = "trace_async"))
    };
    let task = Arc::new(Mutex::new(Box::pin(task)));
    let mut result = None;
    for _ in 0..2 {
        let (task, subscriber) = (task.clone(), subscriber.clone());
        let out = std::thread::spawn(move || {
            let _default = tracing::subscriber::set_default(subscriber);
            let waker = Waker::from(Arc::new(NoopWake));
            let mut cx = Context::from_waker(&waker);
            match task.lock().unwrap().as_mut().poll(&mut cx) {
                Poll::Ready(v) => Some(v),
                Poll::Pending => None,
            }
        })
        .join()
        .unwrap();
        result = result.or(out);
    }
    let blocks = result.expect("ready after two polls");
    assert_eq!(Owner::named("trace_async").stats().live_bytes, 1002);
    drop(blocks);
    assert_eq!(Owner::named("trace_async").stats().live_bytes, 0);
}

#[test]
fn phases_and_pressure_changes_are_events() {
    let (_, events) = with_layer(|| {
        let owner = Owner::named("trace_phase_owner");
        let phase = heapscope::phase("trace_phase");
        // Large enough to be the top owner whatever the other tests of this binary do meanwhile.
        let v = owner.in_scope(|| black_box(vec![0u8; 8 << 20]));
        drop(v);
        drop(phase);
        drop(heapscope::report());
    });
    let phase = events.iter().find(|e| e.contains("phase=trace_phase")).expect("phase event");
    assert!(phase.contains("message=heapscope: phase finished"), "{phase}");
    assert!(phase.contains("allocated_bytes="), "{phase}");
    assert!(phase.contains("top_owner=\"trace_phase_owner\""), "{phase}");
    // The first report in a process always changes the level from "none".
    let pressure =
        events.iter().find(|e| e.contains("memory pressure changed")).expect("pressure event");
    assert!(pressure.contains("previous_level=none"), "{pressure}");
}

fn with_owner_layer<R>(f: impl FnOnce() -> R) -> R {
    let subscriber = tracing_subscriber::registry().with(OwnerLayer::new());
    tracing::subscriber::with_default(subscriber, f)
}

/// Spans may exit out of order (entered guards moved around). Exiting the outer span first
/// keeps the inner span's owner current while it is entered, and once both have exited the
/// thread is back where it was. The layer once cut its stack at the exited span: the inner
/// span's allocations went to the outer owner, and after both exits the thread stayed in it.
#[test]
fn spans_exited_out_of_order_keep_the_entered_ones_owner_and_end_in_root() {
    let (inner_live, outer_live, after) = with_owner_layer(|| {
        let outer = tracing::info_span!("outer", owner = "tl_ooo_outer").entered();
        let inner = tracing::info_span!("inner", owner = "tl_ooo_inner").entered();
        drop(outer);
        let (inner_owner, outer_owner) =
            (Owner::named("tl_ooo_inner"), Owner::named("tl_ooo_outer"));
        // Allocated totals, as in `charged_to`.
        let before = (inner_owner.stats().total_bytes, outer_owner.stats().total_bytes);
        let v = black_box(vec![0u8; 333]);
        let inner_live = inner_owner.stats().total_bytes - before.0;
        let outer_live = outer_owner.stats().total_bytes - before.1;
        drop(v);
        drop(inner);
        (inner_live, outer_live, Owner::current())
    });
    assert_eq!((inner_live, outer_live), (333, 0));
    assert_eq!(after, Owner::root(), "{}", after.name());
}

/// An owner entered in code inside a span stays current when a span outside it exits out of
/// order, until its scope ends; then the still-entered span's owner is current again. The
/// layer ended and entered again the scopes of the spans inside the exited one, so the inner
/// span's owner went on top of the code's scope: the 377 bytes allocated in that scope were
/// charged to the inner span's owner and none to the scope's.
#[test]
fn a_scope_entered_inside_spans_stays_current_when_an_outer_span_exits_first() {
    let (in_scope, after_scope, after) = with_owner_layer(|| {
        let outer = tracing::info_span!("outer", owner = "tl_mix_outer").entered();
        let inner = tracing::info_span!("inner", owner = "tl_mix_inner").entered();
        let (code, inner_owner) = (Owner::named("tl_mix_code"), Owner::named("tl_mix_inner"));
        let scope = code.enter();
        drop(outer);
        let in_scope = (charged_to(code, 377), charged_to(inner_owner, 377));
        drop(scope);
        let after_scope = (charged_to(code, 255), charged_to(inner_owner, 255));
        drop(inner);
        (in_scope, after_scope, Owner::current())
    });
    assert_eq!(in_scope, (377, 0), "(code, inner span) while the code's scope is open");
    assert_eq!(after_scope, (0, 255), "(code, inner span) once it ended");
    assert_eq!(after, Owner::root(), "{}", after.name());
}

/// A span without an owner, of another subscriber, exiting with the same id as an entered
/// owner span of this one (ids are per subscriber) leaves that owner span entered.
#[test]
fn another_subscribers_span_with_the_same_id_does_not_end_an_owner_span() {
    let live = with_owner_layer(|| {
        let outer = tracing::info_span!("outer", owner = "tl_same_id");
        let _entered = outer.enter();
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(OwnerLayer::new()),
            || tracing::info_span!("plain").in_scope(|| ()),
        );
        charged_to(Owner::named("tl_same_id"), 919)
    });
    assert_eq!(live, 919);
}

/// An owner recorded after the span was created applies from its next entry.
#[test]
fn an_owner_recorded_later_applies_from_the_next_entry() {
    let live = with_owner_layer(|| {
        let span = tracing::info_span!("late", owner = tracing::field::Empty);
        span.record("owner", "tl_recorded_late");
        let owner = Owner::named("tl_recorded_late");
        let _entered = span.enter();
        charged_to(owner, 211)
    });
    assert_eq!(live, 211);
}

/// Ten owner spans entered one inside the other and exited outermost first: while the
/// innermost is entered its owner is current, and once all ten have exited the thread is back
/// in root. Each out-of-order exit ended the span's scope early, which takes one of the
/// thread's 8 slots for scopes dropped early; the ninth found none and never ended, so after
/// the last exit the thread stayed in `tl_many_8` for good (its 100 bytes charged there, none
/// to root).
#[test]
fn more_than_eight_spans_exited_out_of_order_end_in_root() {
    let (innermost, after, to_root, to_eighth) = with_owner_layer(|| {
        let names: Vec<String> = (0..10).map(|i| format!("tl_many_{i}")).collect();
        let mut spans: Vec<_> = names
            .iter()
            .map(|name| tracing::info_span!("nested", owner = name.as_str()).entered())
            .collect();
        let last = spans.pop();
        drop(spans);
        let innermost = Owner::current();
        drop(last);
        let after = Owner::current();
        (
            innermost,
            after,
            charged_to(Owner::root(), 100),
            charged_to(Owner::named("tl_many_8"), 100),
        )
    });
    assert_eq!(innermost, Owner::named("tl_many_9"), "{}", innermost.name());
    assert_eq!(after, Owner::root(), "{}", after.name());
    // Root is shared with the other tests of this binary, running on other threads: its
    // total can grow by their allocations between the two readings (CI read 164 once: a
    // 64-byte block of another test's). At least the block, then; the eighth owner's 0 is
    // exact, as no other test uses it.
    assert!(to_root >= 100, "root's total grew by {to_root} for a block of 100 bytes");
    assert_eq!(to_eighth, 0, "tl_many_8 was charged after every span exited");
}
