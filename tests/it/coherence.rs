//! CON-2, snapshot coherence: four mutator threads allocate and free blocks of known sizes
//! under owners of their own (a top-level owner each, and a child each of one shared parent)
//! while a reader thread captures snapshots and reads `Owner::stats` in a loop.
//!
//! Every schedule is a pure function of `(thread, iteration)`, so the expected numbers are
//! worked out by replaying it in plain arithmetic (`expected`), never read from heapscope.
//! Each mutator owner has one allocating thread, so its peak is exact (documented); the shared
//! parent has four, so its peak is checked within the documented `(T - 1) × 64 KiB`.
#![cfg(feature = "enabled")]

use heapscope::{Owner, OwnerStats, Snapshot};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const MUTATORS: usize = 4;
/// Blocks a mutator holds at most at once (a ring of slots).
const RING: usize = 8;
const ITERS: usize = crate::scaled(200_000, 400);
/// Trailer sizes and exact class sizes; 20 000 and 40 000 push a thread's unpublished bytes
/// past the 64 KiB publication threshold, so publication runs too.
const SIZES: [usize; 11] = [24, 100, 1000, 16, 64, 4096, 5000, 33, 256, 20_000, 40_000];
/// The documented per-thread peak tolerance (`FLUSH_BYTES`).
const FLUSH: u64 = 64 * 1024;
/// Most readings the reader takes, and the wall-clock cap of the whole test.
const MAX_READINGS: usize = crate::scaled(100_000, 6);
/// Ten times longer under Miri, whose clock is the real one (isolation is off, see
/// `.ci/sanitizers`) and which runs this test in about 35 s.
const CAP: Duration = Duration::from_secs(crate::scaled(60, 600) as u64);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// The mutator's own top-level owner.
    Own,
    /// The mutator's child of the shared parent.
    Child,
}

/// What mutator `t` does at iteration `j`: free the block in `slot` (if any), then allocate
/// `size` bytes there under `kind`.
fn plan(t: usize, j: usize) -> (usize, usize, Kind) {
    let slot = (j * 3 + t) % RING;
    let size = SIZES[(j + 3 * t + j / 7) % SIZES.len()];
    let kind = if (j * 5 + t).is_multiple_of(3) { Kind::Own } else { Kind::Child };
    (slot, size, kind)
}

#[derive(Clone, Copy, Default, Debug)]
struct Tally {
    total_bytes: u64,
    total_blocks: u64,
    max_live_bytes: u64,
    max_live_blocks: u64,
}

/// Replays mutator `t`'s schedule by hand: `(own owner, child owner)`.
fn expected(t: usize) -> (Tally, Tally) {
    let mut held: [Option<(Kind, u64)>; RING] = [None; RING];
    let mut tally = [Tally::default(); 2];
    let mut live = [(0u64, 0u64); 2];
    let ix = |k: Kind| if k == Kind::Own { 0 } else { 1 };
    for j in 0..ITERS {
        let (slot, size, kind) = plan(t, j);
        if let Some((k, s)) = held[slot].take() {
            live[ix(k)].0 -= s;
            live[ix(k)].1 -= 1;
        }
        let i = ix(kind);
        live[i].0 += size as u64;
        live[i].1 += 1;
        tally[i].total_bytes += size as u64;
        tally[i].total_blocks += 1;
        tally[i].max_live_bytes = tally[i].max_live_bytes.max(live[i].0);
        tally[i].max_live_blocks = tally[i].max_live_blocks.max(live[i].1);
        held[slot] = Some((kind, size as u64));
    }
    (tally[0], tally[1])
}

struct Owners {
    parent: Owner,
    own: Vec<Owner>,
    child: Vec<Owner>,
}

/// Mutator `t`: runs its schedule, then frees everything it holds.
fn mutate(t: usize, owners: &Owners, started: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.load(SeqCst) && Instant::now() < deadline {
        thread::yield_now();
    }
    let mut held: [Option<Vec<u8>>; RING] = std::array::from_fn(|_| None);
    for j in 0..ITERS {
        let (slot, size, kind) = plan(t, j);
        drop(held[slot].take());
        let owner = if kind == Kind::Own { owners.own[t] } else { owners.child[t] };
        let block = owner.in_scope(|| black_box(Vec::<u8>::with_capacity(size)));
        held[slot] = Some(block);
    }
    drop(black_box(held));
}

/// The limits a reading of one owner must respect.
#[derive(Clone, Copy, Debug)]
struct Bound {
    live_bytes: u64,
    live_blocks: u64,
    total_bytes: u64,
    total_blocks: u64,
}

/// Checks one reading against the invariants and the bounds, and that totals never go back.
fn check(what: &str, s: &OwnerStats, bound: &Bound, last: &mut (u64, u64)) {
    assert!(s.peak_bytes >= s.live_bytes, "{what}: peak < live: {s:?}");
    assert!(s.total_bytes >= s.live_bytes, "{what}: total < live: {s:?}");
    assert!(s.total_blocks >= s.live_blocks, "{what}: total blocks < live blocks: {s:?}");
    assert!(s.live_bytes <= bound.live_bytes, "{what}: live above {bound:?}: {s:?}");
    assert!(s.live_blocks <= bound.live_blocks, "{what}: live blocks above {bound:?}: {s:?}");
    assert!(s.total_bytes <= bound.total_bytes, "{what}: total above {bound:?}: {s:?}");
    assert!(s.total_blocks <= bound.total_blocks, "{what}: total blocks above {bound:?}: {s:?}");
    assert!(
        s.total_bytes >= last.0 && s.total_blocks >= last.1,
        "{what}: totals went back from {last:?}: {s:?}"
    );
    *last = (s.total_bytes, s.total_blocks);
}

/// Reads until every mutator is done (or a cap is hit). Returns the number of readings and
/// the highest live bytes seen for the parent.
fn read_loop(
    owners: &Owners,
    names: &[(String, Bound)],
    started: &AtomicBool,
    done: &AtomicUsize,
    stop_at: Instant,
) -> (usize, u64) {
    let mut last = vec![(0u64, 0u64); names.len() * 2];
    let handles: Vec<Owner> = std::iter::once(owners.parent)
        .chain(owners.own.iter().copied())
        .chain(owners.child.iter().copied())
        .collect();
    let mut readings = 0;
    let mut parent_max_live = 0;
    started.store(true, SeqCst);
    while readings < MAX_READINGS && Instant::now() < stop_at {
        let finished = done.load(SeqCst) == MUTATORS;
        // Through `Owner::stats`.
        for (i, (o, (name, bound))) in handles.iter().zip(names).enumerate() {
            let s = o.stats();
            check(&format!("stats({name}) #{readings}"), &s, bound, &mut last[i]);
            if i == 0 {
                parent_max_live = parent_max_live.max(s.live_bytes);
            }
        }
        // Through a snapshot.
        let snap = Snapshot::capture();
        assert!(snap.tracking);
        let t = snap.total;
        assert!(t.peak_bytes >= t.live_bytes, "process: {t:?}");
        assert!(t.total_bytes >= t.live_bytes && t.total_blocks >= t.live_blocks, "process: {t:?}");
        for (i, (name, bound)) in names.iter().enumerate() {
            let e = snap.owner(name).unwrap_or_else(|| panic!("{name} missing from the snapshot"));
            check(
                &format!("snapshot({name}) #{readings}"),
                &e.stats,
                bound,
                &mut last[names.len() + i],
            );
            if i == 0 {
                parent_max_live = parent_max_live.max(e.stats.live_bytes);
                assert_eq!(e.own_live_bytes, 0, "nothing is allocated under the parent itself");
            }
        }
        readings += 1;
        if finished {
            break;
        }
    }
    (readings, parent_max_live)
}

/// Runs on drop, so the others hear of a thread's end even when it panics.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn snapshots_and_stats_stay_coherent_under_four_mutators() {
    let started_at = Instant::now();
    let parent = Owner::named("coh_parent");
    let owners = Owners {
        parent,
        own: (0..MUTATORS).map(|t| Owner::named(format!("coh_m{t}"))).collect(),
        child: (0..MUTATORS).map(|t| parent.child(format!("m{t}"))).collect(),
    };
    let exp: Vec<(Tally, Tally)> = (0..MUTATORS).map(expected).collect();

    // Bounds: a mutator owner never holds more than its replayed maximum, nor has allocated
    // more than its replayed total; the parent holds at most what all children can hold at
    // once (the sum of their maxima), and has allocated at most the children's totals.
    let bound = |t: &Tally| Bound {
        live_bytes: t.max_live_bytes,
        live_blocks: t.max_live_blocks,
        total_bytes: t.total_bytes,
        total_blocks: t.total_blocks,
    };
    let children: Vec<Tally> = exp.iter().map(|e| e.1).collect();
    let parent_bound = Bound {
        live_bytes: children.iter().map(|c| c.max_live_bytes).sum(),
        live_blocks: children.iter().map(|c| c.max_live_blocks).sum(),
        total_bytes: children.iter().map(|c| c.total_bytes).sum(),
        total_blocks: children.iter().map(|c| c.total_blocks).sum(),
    };
    assert!(parent_bound.live_blocks <= (MUTATORS * RING) as u64);
    let mut names = vec![("coh_parent".to_owned(), parent_bound)];
    names.extend((0..MUTATORS).map(|t| (format!("coh_m{t}"), bound(&exp[t].0))));
    names.extend((0..MUTATORS).map(|t| (format!("coh_parent/m{t}"), bound(&exp[t].1))));

    let started = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    let stop_at = started_at + CAP / 2;
    let (readings, parent_max_live) = thread::scope(|s| {
        let (owners, names, started, done) = (&owners, &names, &started, &done);
        let reader = {
            let tx = tx.clone();
            s.spawn(move || {
                let _guard = OnDrop(move || {
                    let _ = tx.send(());
                });
                read_loop(owners, names, started, done, stop_at)
            })
        };
        let mutators: Vec<_> = (0..MUTATORS)
            .map(|t| {
                let tx = tx.clone();
                s.spawn(move || {
                    let _guard = OnDrop(move || {
                        done.fetch_add(1, SeqCst);
                        let _ = tx.send(());
                    });
                    mutate(t, owners, started);
                })
            })
            .collect();
        for _ in 0..=MUTATORS {
            let left = CAP.saturating_sub(started_at.elapsed());
            if rx.recv_timeout(left).is_err() {
                // Scoped threads cannot be abandoned: end the process instead of hanging.
                eprintln!("coherence: threads still running after {CAP:?}");
                std::process::abort();
            }
        }
        for m in mutators {
            m.join().expect("mutator panicked");
        }
        reader.join().expect("reader panicked")
    });
    assert!(readings >= 1, "the reader took no reading");
    println!("coherence: {readings} readings in {:?}", started_at.elapsed());

    // After the joins every owner is back to zero, with exactly the replayed totals; single-
    // threaded owners have exact peaks.
    let nums = |s: OwnerStats| (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks);
    for (t, (own, child)) in exp.iter().enumerate() {
        for (o, tally) in [(owners.own[t], own), (owners.child[t], child)] {
            let s = o.stats();
            assert_eq!(nums(s), (0, 0, tally.total_bytes, tally.total_blocks), "{}", o.name());
            assert_eq!(s.peak_bytes, tally.max_live_bytes, "{}: exact peak", o.name());
        }
    }
    let p = parent.stats();
    assert_eq!(nums(p), (0, 0, parent_bound.total_bytes, parent_bound.total_blocks));
    // Four threads allocate in the parent's subtree: its peak is within 3 × 64 KiB of the
    // true peak, which is at least every live reading and at most the sum of the maxima.
    let slack = (MUTATORS as u64 - 1) * FLUSH;
    assert!(p.peak_bytes + slack >= parent_max_live, "{p:?} vs seen {parent_max_live}");
    assert!(p.peak_bytes <= parent_bound.live_bytes + slack, "{p:?} vs {parent_bound:?}");
    let biggest_child = children.iter().map(|c| c.max_live_bytes).max().unwrap_or(0);
    assert!(p.peak_bytes + slack >= biggest_child, "{p:?} vs {biggest_child}");
}
