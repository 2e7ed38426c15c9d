//! More threads alive at once than the 256 per-thread counter slots, in a process of its own:
//! the threads past the 256th count in the shared slot with atomic adds, and counts stay
//! exact. Then, once they are all joined (their slots handed back), 300 more short threads.
//!
//! Only owner-level numbers are asserted: libtest's own threads allocate too (under `root`),
//! so the process totals of `global_stats` cannot be pinned here. Threads are spawned with
//! `root` current, so what std allocates for them is never charged to the owners under test.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::{Owner, OwnerStats};
use std::hint::black_box;
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Comfortably more than the 256 slots, even with libtest's threads holding some.
const THREADS: usize = 300;
/// Trailer sizes (24, 100, 1000; 16 and 64 one class up) and side-table sizes (512, 4096).
const SIZES: [usize; 7] = [24, 100, 1000, 16, 64, 512, 4096];
/// Wall-clock cap on every wait: a hang detector only, generous enough for 300 threads under
/// ThreadSanitizer on a loaded 2-core machine. Speed is measured by the benchmarks.
const CAP: Duration = Duration::from_secs(300);

fn size_of_thread(t: usize) -> usize {
    SIZES[t % SIZES.len()]
}

fn nums(s: OwnerStats) -> (u64, u64, u64, u64) {
    (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks)
}

/// A barrier whose waits give up at a deadline (`std::sync::Barrier` cannot).
struct Gate {
    arrived: Mutex<usize>,
    all_in: Condvar,
    parties: usize,
}

impl Gate {
    fn new(parties: usize) -> Gate {
        Gate { arrived: Mutex::new(0), all_in: Condvar::new(), parties }
    }

    /// Arrives and waits for every party, until `deadline`. `true` when all arrived.
    fn wait(&self, deadline: Instant) -> bool {
        let mut n = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        self.all_in.notify_all();
        while *n < self.parties {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = self.all_in.wait_timeout(n, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }
}

#[test]
fn three_hundred_threads_alive_at_once_count_exactly() {
    let deadline = Instant::now() + CAP;
    let o = Owner::named("slots_alive");
    // Blocks handed to the main thread: one `Option` per thread, made under root with room
    // for all, so storing into it allocates nothing.
    let handed: Mutex<Vec<Option<Vec<u8>>>> = Mutex::new((0..THREADS).map(|_| None).collect());
    let allocated = Gate::new(THREADS + 1);
    let release = Gate::new(THREADS + 1);

    let (sum, handed_bytes) = thread::scope(|s| {
        let (handed, allocated, release) = (&handed, &allocated, &release);
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(s, move || {
                        let size = size_of_thread(t);
                        // The first allocation of this thread: it takes a slot here, or finds
                        // none left and counts in the shared slot.
                        let block = o.in_scope(|| black_box(Vec::<u8>::with_capacity(size)));
                        let mine = if t % 3 == 0 {
                            handed.lock().unwrap()[t] = Some(block);
                            None
                        } else {
                            Some(block)
                        };
                        let all = allocated.wait(deadline);
                        // Held until the main thread has read the numbers with all alive.
                        let all = release.wait(deadline) && all;
                        drop(black_box(mine));
                        all
                    })
                    .expect("spawn")
            })
            .collect();
        assert!(allocated.wait(deadline), "not every thread allocated within {CAP:?}");

        // Every thread is alive and has allocated: the gate's lock ordered each allocation
        // before this read.
        let sum: u64 = (0..THREADS).map(|t| size_of_thread(t) as u64).sum();
        let n = THREADS as u64;
        assert_eq!(nums(o.stats()), (sum, n, sum, n), "all {THREADS} threads alive");

        // Free the handed-over blocks here, on the main thread (allocated in own slots and
        // in the shared slot alike).
        let blocks: Vec<Vec<u8>> =
            handed.lock().unwrap().iter_mut().filter_map(Option::take).collect();
        let handed_bytes: u64 = blocks.iter().map(|b| b.capacity() as u64).sum();
        let expected: u64 = (0..THREADS).step_by(3).map(|t| size_of_thread(t) as u64).sum();
        assert_eq!(handed_bytes, expected);
        let k = blocks.len() as u64;
        assert_eq!(k, THREADS.div_ceil(3) as u64);
        drop(black_box(blocks));
        assert_eq!(nums(o.stats()), (sum - expected, n - k, sum, n), "after freeing {k} here");

        assert!(release.wait(deadline), "not every thread reached the release within {CAP:?}");
        for (t, h) in handles.into_iter().enumerate() {
            assert!(h.join().expect("thread panicked"), "thread {t}: a gate timed out");
        }
        (sum, handed_bytes)
    });
    let n = THREADS as u64;
    assert!(handed_bytes > 0);
    assert_eq!(nums(o.stats()), (0, 0, sum, n), "after every thread freed its own and exited");
    // Not asserted: with 300 threads allocating at once the documented peak error is
    // 299 × 64 KiB, far above everything held here.
    println!("thread_slots: peak {} of {sum} held at once", o.stats().peak_bytes);

    // The slots were handed back at thread exit: 300 more short threads, each allocating and
    // freeing under a child (so the shared slot publishes to the parent too), and keeping
    // one block that the main thread frees after the join.
    let child = o.child("second_wave");
    let kept: Vec<Vec<u8>> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(s, move || {
                        child.in_scope(|| {
                            drop(black_box(Vec::<u8>::with_capacity(size_of_thread(t))));
                            black_box(Vec::<u8>::with_capacity(size_of_thread(t + 1)))
                        })
                    })
                    .expect("spawn")
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread panicked")).collect()
    });
    let freed: u64 = (0..THREADS).map(|t| size_of_thread(t) as u64).sum();
    let held: u64 = (0..THREADS).map(|t| size_of_thread(t + 1) as u64).sum();
    assert_eq!(nums(child.stats()), (held, n, freed + held, 2 * n));
    assert_eq!(nums(o.stats()), (held, n, sum + freed + held, 3 * n));
    drop(black_box(kept));
    assert_eq!(nums(child.stats()), (0, 0, freed + held, 2 * n));
    assert_eq!(nums(o.stats()), (0, 0, sum + freed + held, 3 * n));
}
