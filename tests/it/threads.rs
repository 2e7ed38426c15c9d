//! Cross-thread accounting: frees on other threads and after the allocating thread exited,
//! `realloc` across owners, a multi-threaded stress run with hand-counted totals, and many
//! short-lived threads whose thread-locals allocate during teardown.
//!
//! Threads are always spawned with `root` current, so what std allocates for a thread is
//! never charged to the owners under test.
#![cfg(feature = "enabled")]

use heapscope::Owner;
use std::cell::RefCell;
use std::hint::black_box;
use std::sync::{mpsc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::rng::{seed, Rng};

/// `(live_bytes, live_blocks, total_bytes, total_blocks)` of an owner.
fn nums(o: Owner) -> (u64, u64, u64, u64) {
    let s = o.stats();
    (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks)
}

#[test]
fn free_on_another_thread_under_another_owner() {
    let a = Owner::named("thr_cross_a");
    let b = Owner::named("thr_cross_b");
    let (tx, rx) = mpsc::channel::<(Vec<u8>, Vec<u8>, Box<[u8; 48]>)>();
    let done = Barrier::new(2);
    thread::scope(|s| {
        let done = &done;
        s.spawn(move || {
            // 1000 carries a trailer, 48 is an exact class one class up (trailer), 1024 an exact
            // class in the side table.
            let blocks = a.in_scope(|| {
                (
                    black_box(vec![1u8; 1000]),
                    black_box(vec![2u8; 1024]),
                    black_box(Box::new([3u8; 48])),
                )
            });
            tx.send(blocks).unwrap();
            // Stay alive until the other thread has freed everything.
            done.wait();
        });
        s.spawn(move || {
            let (x, y, z) = rx.recv().unwrap();
            assert_eq!(nums(a), (2072, 3, 2072, 3));
            assert!(x.iter().all(|&v| v == 1) && y.iter().all(|&v| v == 2));
            assert!(z.iter().all(|&v| v == 3));
            b.in_scope(|| drop((x, y, z)));
            assert_eq!(nums(a), (0, 0, 2072, 3));
            done.wait();
        });
    });
    assert_eq!(nums(a), (0, 0, 2072, 3));
    assert_eq!(nums(b), (0, 0, 0, 0));
}

#[test]
fn free_after_the_allocating_thread_exited() {
    let a = Owner::named("thr_exited_a");
    let b = Owner::named("thr_exited_b");
    let v = thread::spawn(move || a.in_scope(|| black_box(vec![7u64; 100])))
        .join()
        .expect("allocating thread");
    assert_eq!(nums(a), (800, 1, 800, 1));
    b.in_scope(|| drop(v));
    assert_eq!(nums(a), (0, 0, 800, 1));
    assert_eq!(nums(b), (0, 0, 0, 0));
}

#[test]
fn free_after_the_owner_was_retired() {
    let a = Owner::named("thr_retired_a");
    let b = Owner::named("thr_retired_b");
    let v = a.in_scope(|| black_box(vec![0u8; 321]));
    a.retire().unwrap();
    // Retired but holding bytes: still counted under it.
    assert_eq!(nums(a), (321, 1, 321, 1));
    thread::spawn(move || b.in_scope(|| drop(v))).join().unwrap();
    assert_eq!(nums(a).0, 0);
    assert_eq!(nums(b), (0, 0, 0, 0));
}

#[test]
fn realloc_credits_the_old_owner_and_charges_the_current_one() {
    let a = Owner::named("thr_realloc_a");
    let b = Owner::named("thr_realloc_b");
    let c = Owner::named("thr_realloc_c");
    let mut v: Vec<u8> = a.in_scope(|| black_box(Vec::with_capacity(100)));
    v.extend((0..100).map(|i| i as u8)); // within capacity: no allocation
    assert_eq!(nums(a), (100, 1, 100, 1));

    // Grow under b: the old 100 bytes are credited to a, the new 1000 charged to b.
    b.in_scope(|| v.reserve_exact(900));
    assert_eq!(v.capacity(), 1000);
    assert_eq!(nums(a), (0, 0, 100, 1));
    assert_eq!(nums(b), (1000, 1, 1000, 1));
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u8));

    // Shrink under c: b credited 1000, c charged 100.
    c.in_scope(|| v.shrink_to_fit());
    assert_eq!(v.capacity(), 100);
    assert_eq!(nums(b), (0, 0, 1000, 1));
    assert_eq!(nums(c), (100, 1, 100, 1));
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u8));

    // Grow on another thread under a: trailer (64, one class up) -> side table (4096) ->
    // trailer (5000).
    let mut w: Vec<u8> = b.in_scope(|| black_box(vec![9u8; 64]));
    let w = thread::spawn(move || {
        a.in_scope(|| w.reserve_exact(4096 - 64));
        assert_eq!(w.capacity(), 4096);
        c.in_scope(|| w.reserve_exact(5000 - 64));
        assert_eq!(w.capacity(), 5000);
        w
    })
    .join()
    .unwrap();
    assert!(w.iter().all(|&x| x == 9));
    assert_eq!(nums(a), (0, 0, 100 + 4096, 2));
    assert_eq!(nums(b), (0, 0, 1000 + 64, 2));
    assert_eq!(nums(c), (100 + 5000, 2, 100 + 5000, 2));
    drop((v, w));
    assert_eq!(nums(c), (0, 0, 5100, 2));
}

/// A counted block with its cookie: byte `i` is `tag + i` (wrapping).
struct Block {
    tag: u64,
    data: Vec<u8>,
}

impl Block {
    fn check(&self, seed: u64) {
        let ok =
            self.data.iter().enumerate().all(|(i, &x)| x == (self.tag as u8).wrapping_add(i as u8));
        assert!(
            ok,
            "cookie corrupted in a block of {} bytes (tag {}, seed {seed})",
            self.data.len(),
            self.tag
        );
    }
}

#[test]
fn stress_four_threads_four_owners_cross_thread_frees() {
    const THREADS: usize = 4;
    const ITERS: usize = crate::scaled(4000, 40);
    const OWNERS: usize = 4;
    const KEEP: usize = 64;
    const POOL: usize = 256;
    // Exact jemalloc classes (side table, or a trailer one class up for 17-256 B) mixed with
    // odd sizes (trailer).
    const EXACT: [usize; 12] = [8, 16, 32, 48, 64, 128, 256, 512, 1024, 2048, 4096, 4095];
    let seed = seed("stress_four_threads_four_owners_cross_thread_frees");
    let owners: Vec<Owner> = (0..OWNERS).map(|i| Owner::named(format!("thr_stress_{i}"))).collect();
    let pool: Mutex<Vec<Block>> = Mutex::new(Vec::with_capacity(POOL));
    let started = Instant::now();

    // Per thread: (blocks, bytes) allocated under each owner, counted by hand.
    let counts: Vec<[(u64, u64); OWNERS]> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (owners, pool) = (&owners, &pool);
                s.spawn(move || {
                    let mut rng =
                        Rng::new(seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let mut counted = [(0u64, 0u64); OWNERS];
                    let mut kept: Vec<Block> = Vec::with_capacity(KEEP);
                    for i in 0..ITERS {
                        let k = rng.below(OWNERS);
                        let size =
                            if rng.below(2) == 0 { rng.pick(&EXACT) } else { 1 + rng.below(5000) };
                        let tag = ((t as u64) << 32) | i as u64;
                        let mut data =
                            owners[k].in_scope(|| black_box(Vec::<u8>::with_capacity(size)));
                        // Filled under root, within capacity: no further allocation.
                        data.extend((0..size).map(|j| (tag as u8).wrapping_add(j as u8)));
                        counted[k].0 += 1;
                        counted[k].1 += size as u64;
                        let block = Block { tag, data };
                        match rng.below(4) {
                            0 => {
                                block.check(seed);
                                drop(block);
                            }
                            1 => {
                                let mut p = pool.lock().unwrap();
                                if p.len() < POOL {
                                    p.push(block);
                                } else {
                                    // Full: free one from another thread instead, keep ours.
                                    let other = p.swap_remove(rng.below(POOL));
                                    p.push(block);
                                    drop(p);
                                    other.check(seed);
                                    drop(other);
                                }
                            }
                            _ => {
                                if kept.len() == KEEP {
                                    let old = kept.swap_remove(rng.below(KEEP));
                                    old.check(seed);
                                }
                                kept.push(block);
                            }
                        }
                        // Now and then, free a block some other thread allocated, under an
                        // owner that is current here.
                        if rng.below(3) == 0 {
                            let taken = pool.lock().unwrap().pop();
                            if let Some(b) = taken {
                                b.check(seed);
                                let o = owners[rng.below(OWNERS)];
                                o.in_scope(|| drop(b));
                            }
                        }
                    }
                    for b in &kept {
                        b.check(seed);
                    }
                    counted
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("stress thread")).collect()
    });
    for b in pool.lock().unwrap().drain(..) {
        b.check(seed);
    }
    // Under Miri (real clock, see `.ci/sanitizers`) the scaled-down run takes about three
    // minutes: its cap is ten times longer.
    let cap = Duration::from_secs(crate::scaled(120, 1200) as u64);
    assert!(started.elapsed() < cap, "stress run too slow (seed {seed})");

    for (k, &o) in owners.iter().enumerate() {
        let blocks: u64 = counts.iter().map(|c| c[k].0).sum();
        let bytes: u64 = counts.iter().map(|c| c[k].1).sum();
        assert!(blocks > 0);
        assert_eq!(nums(o), (0, 0, bytes, blocks), "owner {k} (seed {seed})");
    }
    let all: u64 = counts.iter().flat_map(|c| c.iter().map(|x| x.0)).sum();
    assert_eq!(all, (THREADS * ITERS) as u64);
}

/// Allocates and frees under its owner while the thread's thread-locals are destroyed.
struct TeardownAlloc {
    owner: Owner,
    bytes: usize,
}

impl Drop for TeardownAlloc {
    fn drop(&mut self) {
        let v = self.owner.in_scope(|| black_box(vec![0xA5u8; self.bytes]));
        assert!(v.iter().all(|&x| x == 0xA5));
        drop(v);
        // And an allocation under whatever is current (root) during teardown.
        drop(black_box(vec![1u8; 17]));
    }
}

thread_local! {
    static TEARDOWN_FIRST: RefCell<Option<TeardownAlloc>> = const { RefCell::new(None) };
    static TEARDOWN_SECOND: RefCell<Option<TeardownAlloc>> = const { RefCell::new(None) };
}

#[test]
fn two_thousand_short_threads_with_allocating_thread_local_destructors() {
    const THREADS: usize = crate::scaled(2000, 24);
    const BATCH: usize = crate::scaled(50, 12);
    let o = Owner::named("thr_short_lived");
    let started = Instant::now();
    for batch in 0..THREADS / BATCH {
        let handles: Vec<_> = (0..BATCH)
            .map(|_| {
                thread::spawn(move || {
                    // Registered before this thread's first counted allocation.
                    TEARDOWN_FIRST
                        .with(|t| *t.borrow_mut() = Some(TeardownAlloc { owner: o, bytes: 40 }));
                    let kept = o.in_scope(|| {
                        drop(black_box(vec![0u8; 100]));
                        black_box(Box::new([0u64; 4])) // 32 bytes, exact class (one class up)
                    });
                    // Registered after it.
                    TEARDOWN_SECOND
                        .with(|t| *t.borrow_mut() = Some(TeardownAlloc { owner: o, bytes: 64 }));
                    drop(kept);
                })
            })
            .collect();
        for h in handles {
            h.join().expect("short-lived thread");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "batch {batch}: too slow");
    }
    // pthread_join returns after the thread-local destructors ran: everything is counted.
    let n = THREADS as u64;
    assert_eq!(nums(o), (0, 0, n * (100 + 32 + 40 + 64), n * 4));
}
