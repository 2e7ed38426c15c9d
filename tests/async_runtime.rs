//! An agent's tasks on a real multi-threaded executor (tokio): `fut.in_owner(owner)` keeps the
//! task's owner across awaits and worker threads, frees credit the allocating owner on any
//! thread, and nothing a task did (finishing, panicking, being cancelled) leaves its owner
//! current on the worker for the next task.

mod common;

use common::charged_to;
use heapscope::{InOwner, Owner};
use std::hint::black_box;
use tokio::sync::oneshot;

heapscope::install!();

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// A task allocates 1 001 bytes, waits for a message (its worker parks, and whichever worker
/// the wake-up reaches polls it again), allocates 2 002 bytes, and hands both blocks back
/// through its `JoinHandle`. One block is freed by the spawner, the other on a third thread:
/// both frees credit the task's owner, and nothing else was charged to it.
#[test]
fn a_task_keeps_its_owner_across_awaits_and_workers_and_frees_credit_it_anywhere() {
    const ATTEMPTS: usize = 400;
    let rt = runtime(2);
    let mut migrated = false;
    // Until the task resumes on the other worker, which the runtime decides: 20 runs were
    // not always enough with both cores busy (CI's system-allocator step, 2026-12-05).
    for attempt in 0..ATTEMPTS {
        let owner = Owner::named(format!("rt_migrate_{attempt}"));
        let (go_tx, go_rx) = oneshot::channel::<()>();
        // Both channels allocate when made, here: a std mpsc channel allocates its first block
        // of slots at the first send, which the task would then hold (256 bytes).
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        let task = rt.spawn(
            async move {
                let first = (std::thread::current().id(), Owner::current());
                let a = black_box(vec![1u8; 1_001]);
                ready_tx.send(()).unwrap();
                go_rx.await.unwrap();
                let second = (std::thread::current().id(), Owner::current());
                let b = black_box(vec![2u8; 2_002]);
                (a, b, first, second)
            }
            .in_owner(owner),
        );
        ready_rx.blocking_recv().unwrap();
        go_tx.send(()).unwrap();
        let (a, b, first, second) = rt.block_on(task).unwrap();
        assert_eq!((first.1, second.1), (owner, owner), "owner current in each poll");
        migrated |= first.0 != second.0;
        let stats = owner.stats();
        assert_eq!((stats.live_bytes, stats.live_blocks, stats.total_bytes), (3_003, 2, 3_003));
        drop(a); // by the spawner
        assert_eq!(owner.stats().live_bytes, 2_002);
        std::thread::spawn(move || drop(b)).join().unwrap(); // on a third thread
        let stats = owner.stats();
        assert_eq!((stats.live_bytes, stats.live_blocks, stats.total_bytes), (0, 0, 3_003));
        if migrated {
            break;
        }
    }
    assert!(migrated, "in {ATTEMPTS} runs the task never resumed on another worker");
}

/// Returns `Pending` once, waking itself: the task is rescheduled, possibly on another worker.
/// Not `tokio::task::yield_now`, which puts the waker in the worker's list of deferred
/// wakers: that list's first growth on a worker (64 bytes) is charged to the yielding task's
/// owner and stays with the worker.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Allocates `DROP_BYTES` in its destructor and leaves the block in its sink: a cancelled
/// task's state that logs or buffers something as it goes. One sink per test, which run in
/// parallel.
struct AllocatesOnDrop(&'static Sink);

type Sink = std::sync::Mutex<Vec<Vec<u8>>>;
const DROP_BYTES: usize = 4_321;

impl Drop for AllocatesOnDrop {
    fn drop(&mut self) {
        let block = black_box(vec![3u8; DROP_BYTES]);
        self.0.lock().unwrap().push(block);
    }
}

/// On a one-worker runtime (every task on the same thread): a task that panics, and one
/// aborted while it waits, leave the worker in root for the next task; the aborted task's
/// destructors ran as its owner.
#[test]
fn a_panicking_or_cancelled_task_leaves_the_worker_in_root_for_the_next() {
    static SINK: Sink = Sink::new(Vec::new());
    SINK.lock().unwrap().reserve(1);
    let rt = runtime(1);
    // (Root itself is everyone's: other tests' threads allocate in it meanwhile.)
    let next_task = |rt: &tokio::runtime::Runtime, owner: Owner| {
        rt.block_on(rt.spawn(async move { (Owner::current(), charged_to(owner, 555)) })).unwrap()
    };

    let panicking = Owner::named("rt_panicking");
    let err = rt
        .block_on(
            rt.spawn(
                async move {
                    let _kept = black_box(vec![0u8; 100]);
                    yield_once().await;
                    panic!("heapscope test: a task panics on a worker");
                }
                .in_owner(panicking),
            ),
        )
        .unwrap_err();
    assert!(err.is_panic());
    drop(err);
    assert_eq!(next_task(&rt, panicking), (Owner::root(), 0));

    let cancelled = Owner::named("rt_cancelled");
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let state = AllocatesOnDrop(&SINK);
    let task = rt.spawn(
        async move {
            let _state = &state;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        }
        .in_owner(cancelled),
    );
    started_rx.blocking_recv().unwrap();
    let before = cancelled.stats().live_bytes;
    task.abort();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
    assert_eq!(cancelled.stats().live_bytes, before + DROP_BYTES as u64, "dropped as its owner");
    assert_eq!(next_task(&rt, cancelled), (Owner::root(), 0));
    SINK.lock().unwrap().clear();
    assert_eq!(cancelled.stats().live_bytes, before);
}

/// A future cancelled inside another task's poll (a timeout) drops as its own owner, and the
/// enclosing task's owner is current again right after.
#[test]
fn a_timed_out_inner_future_drops_as_its_owner_inside_the_outer_task() {
    static SINK: Sink = Sink::new(Vec::new());
    SINK.lock().unwrap().reserve(1);
    let rt = runtime(2);
    let (outer, inner) = (Owner::named("rt_outer_task"), Owner::named("rt_timed_out"));
    let (inner_before, seen, to_outer, to_inner) = rt
        .block_on(
            rt.spawn(
                async move {
                    let state = AllocatesOnDrop(&SINK);
                    let slow = async move {
                        let _state = &state;
                        std::future::pending::<()>().await;
                    }
                    .in_owner(inner);
                    let inner_before = inner.stats().live_bytes;
                    let timed_out =
                        tokio::time::timeout(std::time::Duration::from_millis(5), slow).await;
                    assert!(timed_out.is_err());
                    (inner_before, Owner::current(), charged_to(outer, 777), charged_to(inner, 777))
                }
                .in_owner(outer),
            ),
        )
        .unwrap();
    assert_eq!(seen, outer);
    assert_eq!((to_outer, to_inner), (777, 0));
    assert_eq!(inner.stats().live_bytes, inner_before + DROP_BYTES as u64);
    SINK.lock().unwrap().clear();
    assert_eq!(inner.stats().live_bytes, inner_before);
}

/// `spawn_blocking` runs its closure on another thread, which does not inherit the task's
/// owner (threads never do): the closure is in root unless it enters the owner itself.
#[test]
fn spawn_blocking_does_not_inherit_the_owner_unless_entered() {
    let rt = runtime(2);
    let owner = Owner::named("rt_blocking");
    let (plain, entered, after) = rt
        .block_on(
            rt.spawn(
                async move {
                    let plain = tokio::task::spawn_blocking(Owner::current).await.unwrap();
                    let me = Owner::current();
                    let entered = tokio::task::spawn_blocking(move || {
                        me.in_scope(|| (Owner::current(), charged_to(me, 2_048)))
                    })
                    .await
                    .unwrap();
                    (plain, entered, Owner::current())
                }
                .in_owner(owner),
            ),
        )
        .unwrap();
    assert_eq!(plain, Owner::root());
    assert_eq!(entered, (owner, 2_048));
    assert_eq!(after, owner);
}

/// `Retained::with_mut` inside tasks on different workers: the item's growth is the item's,
/// the task's own allocations its owner's.
#[test]
fn retained_items_grow_as_themselves_inside_tasks() {
    let rt = runtime(2);
    let session = Owner::named("rt_session");
    let history = Owner::named("rt_history");
    let item = heapscope::Retained::build(history, "turns", || Vec::<Vec<u8>>::with_capacity(8));
    let item_owner = item.owner();
    assert_eq!(item.live_bytes(), 8 * 24);
    let item = std::sync::Arc::new(tokio::sync::Mutex::new(item));
    let tasks: Vec<_> = (0..4usize)
        .map(|i| {
            let item = item.clone();
            rt.spawn(
                async move {
                    let scratch = black_box(vec![0u8; 10 + i]);
                    yield_once().await;
                    item.lock().await.with_mut(|v| v.push(black_box(vec![1u8; 1_000 + i])));
                    scratch
                }
                .in_owner(session),
            )
        })
        .collect();
    let scratch: Vec<Vec<u8>> = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).collect();
    // 8 * 24 for the vector of turns, then 1 000 + 1 001 + 1 002 + 1 003.
    assert_eq!(item_owner.stats().live_bytes, 192 + 4_006);
    assert_eq!(item_owner.stats().live_blocks, 5);
    // 10 + 11 + 12 + 13 scratch bytes; nothing of the item's.
    assert_eq!(session.stats().live_bytes, 46);
    drop(scratch);
    assert_eq!(session.stats().live_bytes, 0);
    drop(item);
    assert_eq!(history.stats().live_bytes, 0);
}

/// A phase started inside a task and finished after awaits, on whichever worker: the task's
/// owner's start, end, churn and peak.
#[test]
fn a_phase_spans_awaits_and_workers() {
    let rt = runtime(2);
    let owner = Owner::named("rt_phase_owner");
    let (record, kept) = rt
        .block_on(
            rt.spawn(
                async move {
                    let phase = heapscope::phase("rt_phase");
                    let big = black_box(vec![0u8; 100_000]);
                    yield_once().await;
                    drop(big);
                    let kept = black_box(vec![0u8; 10_000]);
                    yield_once().await;
                    (phase.finish(), kept)
                }
                .in_owner(owner),
            ),
        )
        .unwrap();
    let o = record.owners.iter().find(|o| o.name == "rt_phase_owner").expect("listed");
    assert_eq!(
        (o.live_start_bytes, o.live_end_bytes, o.allocated_bytes, o.peak_bytes),
        (0, 10_000, 110_000, 100_000)
    );
    drop(kept);
}

/// With `OwnerLayer`: a task instrumented with a span naming an owner keeps that owner in
/// every poll, on whichever worker, and leaves the worker in root.
#[cfg(feature = "tracing")]
#[test]
fn an_instrumented_task_keeps_its_span_owner_across_workers() {
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    let rt = runtime(2);
    let subscriber = tracing_subscriber::registry().with(heapscope::OwnerLayer::new());
    // The span carries its subscriber: the workers need no default of their own.
    let span = tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("tool call", owner = "rt_span_task")
    });
    let owner = Owner::named("rt_span_task");
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let task = rt.spawn(
        async move {
            let first = Owner::current();
            let a = black_box(vec![1u8; 1_111]);
            ready_tx.send(()).unwrap();
            go_rx.await.unwrap();
            let b = black_box(vec![2u8; 2_222]);
            (a, b, first, Owner::current())
        }
        .instrument(span),
    );
    ready_rx.blocking_recv().unwrap();
    go_tx.send(()).unwrap();
    let (a, b, first, second) = rt.block_on(task).unwrap();
    assert_eq!((first, second), (owner, owner));
    let stats = owner.stats();
    assert_eq!((stats.live_bytes, stats.live_blocks, stats.total_bytes), (3_333, 2, 3_333));
    drop((a, b));
    assert_eq!(owner.stats().live_bytes, 0);
    let after = rt.block_on(rt.spawn(async { Owner::current() })).unwrap();
    assert_eq!(after, Owner::root());
}

/// Many tasks of eight owners, interleaved with plain tasks, on two workers: each owner is
/// charged exactly its tasks' bytes, and every plain task runs in root, whatever ran on its
/// worker before.
#[test]
fn interleaved_tasks_of_many_owners_charge_exactly_their_own() {
    let rt = runtime(2);
    let owners: Vec<Owner> = (0..8).map(|i| Owner::named(format!("rt_many_{i}"))).collect();
    let mut owned = Vec::new();
    let mut plain = Vec::new();
    for round in 0..50usize {
        for (i, &owner) in owners.iter().enumerate() {
            owned.push(
                rt.spawn(
                    async move {
                        let a = black_box(vec![0u8; 100 + i]);
                        yield_once().await;
                        let b = black_box(vec![0u8; 1_000 + round]);
                        yield_once().await;
                        (a, b, Owner::current())
                    }
                    .in_owner(owner),
                ),
            );
            plain.push(rt.spawn(async {
                let first = Owner::current();
                yield_once().await;
                (first, Owner::current())
            }));
        }
    }
    let kept: Vec<_> = owned.into_iter().map(|t| rt.block_on(t).unwrap()).collect();
    for t in plain {
        assert_eq!(rt.block_on(t).unwrap(), (Owner::root(), Owner::root()));
    }
    for (i, &owner) in owners.iter().enumerate() {
        // 50 blocks of 100 + i, and 1 000 + round for round 0..50 (sum 50 * 1 000 + 1 225).
        let expected = 50 * (100 + i as u64) + 50_000 + 1_225;
        let stats = owner.stats();
        assert_eq!(
            (stats.live_bytes, stats.live_blocks, stats.total_bytes),
            (expected, 100, expected)
        );
        assert!(kept.iter().filter(|k| k.2 == owner).count() == 50);
    }
    drop(kept);
    assert!(owners.iter().all(|o| o.stats().live_bytes == 0));
}
/// Spans naming an owner (at creation, or recorded later), made and closed while an agent's
/// session owner is current: once they are gone, the session holds nothing of them. The layer's record of the span's
/// owner goes in the span's extensions, whose map tracing-subscriber's registry keeps for the
/// next span in that slot: allocated under the session, it stayed charged to the session
/// after the span closed, for as long as the registry lives.
#[cfg(feature = "tracing")]
#[test]
fn a_span_created_inside_an_owner_leaves_nothing_charged_to_it_once_closed() {
    use tracing_subscriber::layer::SubscriberExt;

    let session = Owner::named("rt_span_session");
    let call = Owner::named("rt_span_tool").child("call_1");
    let (session_live, call_live, output) = std::thread::spawn(move || {
        let subscriber = tracing_subscriber::registry().with(heapscope::OwnerLayer::new());
        tracing::subscriber::with_default(subscriber, || {
            // The registry's own storage for this thread's spans (a slab page, the stack of
            // entered spans: 104 bytes of it grow at the first entry), made outside the session.
            tracing::info_span!("warm-up").in_scope(|| ());
            let output = session.in_scope(|| {
                let span = tracing::info_span!("tool call", owner = "rt_span_tool/call_1");
                // One whose owner is recorded later, made while the first is open (a slot of
                // its own).
                let late = tracing::info_span!("late", owner = tracing::field::Empty);
                late.record("owner", "rt_span_tool/call_1");
                let first = span.in_scope(|| black_box(vec![0u8; 300]));
                (first, late.in_scope(|| black_box(vec![0u8; 200])))
            });
            (session.stats().live_bytes, call.stats().live_bytes, output)
        })
    })
    .join()
    .unwrap();
    assert_eq!((session_live, call_live), (0, 500), "(session, call) after the span closed");
    drop(output);
}

/// `Retained::build_async`: a tool call's output made by a task, with the item's owner current
/// in every poll on whichever worker: 1 001 bytes before the task waits, 2 002 after, all the
/// item's, none the spawning task's.
#[test]
fn an_item_built_by_an_async_tool_call_holds_what_every_poll_allocated() {
    let rt = runtime(2);
    let tools = Owner::named("rt_async_tools");
    let session = Owner::named("rt_async_session");
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let task = rt.spawn(
        async move {
            heapscope::Retained::build_async(tools, "fetch", async move {
                let head = black_box(vec![1u8; 1_001]);
                go_rx.await.unwrap();
                yield_once().await;
                (head, black_box(vec![2u8; 2_002]), Owner::current())
            })
            .await
        }
        .in_owner(session),
    );
    go_tx.send(()).unwrap();
    let item = rt.block_on(task).unwrap();
    assert_eq!(item.2, item.owner(), "the item's owner was current in the last poll");
    assert_eq!((item.live_bytes(), item.owner().stats().live_blocks), (3_003, 2));
    assert_eq!(tools.stats().live_bytes, 3_003);
    assert_eq!(session.stats().live_bytes, 0, "the spawning task holds nothing");
    let listed = heapscope::retained::top(100);
    let listed = listed.iter().find(|i| i.label == "fetch").expect("listed by top");
    assert!(listed.type_name.starts_with("(alloc::vec::Vec<u8>"), "{}", listed.type_name);
    drop(item);
    assert_eq!(tools.stats().live_bytes, 0);
}

/// A tool call cancelled while it waits (its task aborted), and one whose building future is
/// dropped before its first poll: both items' owners are retired and hold nothing; the
/// cancelled call's 1 001 bytes were freed as the item's.
#[test]
fn a_cancelled_async_build_retires_its_item() {
    let rt = runtime(2);
    let tools = Owner::named("rt_cancelled_tools");
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let task = rt.spawn(heapscope::Retained::build_async(tools, "hangs", async move {
        let head = black_box(vec![1u8; 1_001]);
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
        head
    }));
    started_rx.blocking_recv().unwrap();
    assert_eq!(tools.stats().live_bytes, 1_001, "held by the item while it waits");
    task.abort();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
    drop(heapscope::Retained::build_async(tools, "never polled", async { vec![0u8; 10] }));
    let open: Vec<_> = heapscope::Snapshot::capture()
        .owners
        .into_iter()
        .filter(|o| o.name.starts_with("rt_cancelled_tools/") && !o.retired)
        .collect();
    assert!(open.is_empty(), "items left live: {open:?}");
    let stats = tools.stats();
    assert_eq!((stats.live_bytes, stats.total_bytes), (0, 1_001));
}

/// An async build's label is read when the build is made: the future borrows nothing of it, so
/// builds labelled from a `format!`ed string are spawned (`tokio::spawn` needs `'static`) and
/// the string dropped before they run. They did not compile ("`label` does not live long
/// enough ... argument requires that `label` is borrowed for `'static`"): the returned
/// `impl Future` captured the label's type. The fetch's 700 bytes are its item's; the failed
/// call's 40-byte error was made under its item's owner, retired when the error came back.
#[test]
fn an_async_build_labelled_from_a_borrowed_string_can_be_spawned() {
    let rt = runtime(2);
    let tools = Owner::named("rt_label_tools");
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let label = format!("GET /docs/{}", 7);
    let fetched = rt.spawn(heapscope::Retained::build_async(tools, &label, async move {
        go_rx.await.unwrap();
        black_box(vec![3u8; 700])
    }));
    let failed = rt.spawn(heapscope::Retained::build_fallible_async(tools, &label, async {
        Err::<Vec<u8>, _>(black_box(vec![4u8; 40]))
    }));
    drop(label);
    go_tx.send(()).unwrap();
    let item = rt.block_on(fetched).unwrap();
    let error = rt.block_on(failed).unwrap().unwrap_err();
    assert_eq!((item.label().as_str(), item.live_bytes()), ("GET /docs/7", 700));
    assert_eq!(tools.stats().live_bytes, 740, "the item's 700 and the error's 40");
    let open: Vec<String> = heapscope::Snapshot::capture()
        .owners
        .into_iter()
        .filter(|o| o.name.starts_with("rt_label_tools/") && !o.retired)
        .map(|o| o.name)
        .collect();
    assert_eq!(open, [item.owner().name()], "only the fetch's item is live");
    drop(error);
    assert_eq!(tools.stats().live_bytes, 700);
    drop(item);
    let stats = tools.stats();
    assert_eq!((stats.live_bytes, stats.total_bytes), (0, 740));
}
