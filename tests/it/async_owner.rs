#![cfg(feature = "enabled")]

//! `fut.in_owner(owner)`: the owner is current during every poll, on whichever thread polls.

use heapscope::{InOwner, Owner};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

struct NoopWake;
impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// A task that allocates `n` bytes on each of three polls, returning `Pending` in between.
struct Steps {
    step: usize,
    kept: Vec<Vec<u8>>,
    seen: Vec<Owner>,
}

impl Future for Steps {
    type Output = (Vec<Vec<u8>>, Vec<Owner>);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let size = 100 * (self.step + 1) + 1; // 101, 201, 301: odd sizes, trailer path
        let block = black_box(vec![1u8; size]);
        self.kept.push(block);
        let current = Owner::current();
        self.seen.push(current);
        self.step += 1;
        if self.step < 3 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            let kept = std::mem::take(&mut self.kept);
            let seen = std::mem::take(&mut self.seen);
            Poll::Ready((kept, seen))
        }
    }
}

#[test]
fn a_task_keeps_its_owner_across_threads() {
    let owner = Owner::named("async_task_owner");
    let mut kept_outer: Vec<Vec<u8>> = Vec::with_capacity(3);
    let task =
        Steps { step: 0, kept: Vec::with_capacity(3), seen: Vec::with_capacity(3) }.in_owner(owner);
    let task = Arc::new(Mutex::new(Box::pin(task)));
    let waker = Waker::from(Arc::new(NoopWake));
    let mut result = None;
    // Poll on three different threads in turn, as a work-stealing executor would.
    for _ in 0..3 {
        let task = task.clone();
        let waker = waker.clone();
        let out = std::thread::spawn(move || {
            let mut cx = Context::from_waker(&waker);
            let mut guard = task.lock().unwrap();
            match guard.as_mut().poll(&mut cx) {
                Poll::Ready(v) => Some(v),
                Poll::Pending => None,
            }
        })
        .join()
        .unwrap();
        if out.is_some() {
            result = out;
        }
    }
    let (kept, seen) = result.expect("finished after three polls");
    assert!(seen.iter().all(|&o| o == owner), "{seen:?}");
    // The three blocks (101 + 201 + 301 bytes) are the owner's; the polling threads have exited.
    assert_eq!(owner.stats().live_bytes, 603);
    assert_eq!(owner.stats().live_blocks, 3);
    kept_outer.extend(kept);
    drop(kept_outer);
    assert_eq!(owner.stats().live_bytes, 0);
    // Outside the task nothing is charged to the owner.
    let _outside = black_box(vec![0u8; 50]);
    assert_eq!(owner.stats().total_bytes, 603);
}

/// Allocates `BYTES` in its destructor and leaves the block in `SINK`: what a cancelled
/// task's `Drop` does when it logs, sends a message, or buffers state.
struct AllocatesOnDrop;

static SINK: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
const BYTES: usize = 3_001;

impl Drop for AllocatesOnDrop {
    fn drop(&mut self) {
        let block = black_box(vec![2u8; BYTES]);
        SINK.lock().unwrap().push(block);
    }
}

#[test]
fn a_task_dropped_before_it_finished_drops_as_its_owner() {
    SINK.lock().unwrap().reserve(1);
    let owner = Owner::named("async_cancelled_owner");
    let state = AllocatesOnDrop;
    let task = Box::pin(
        async move {
            let _state = &state;
            std::future::pending::<()>().await;
        }
        .in_owner(owner),
    );
    let mut task = task;
    let waker = Waker::from(Arc::new(NoopWake));
    assert!(task.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    let before = owner.stats().live_bytes;
    drop(task); // cancelled: its state's destructor runs now, on this thread
    assert_eq!(owner.stats().live_bytes, before + BYTES as u64);
    SINK.lock().unwrap().clear();
    assert_eq!(owner.stats().live_bytes, before);
}
