//! What entering and leaving an owner's scope costs: `owner.enter()` and the scope's drop,
//! with no allocation in between, on one thread and on two at once (in the same owner, and
//! in an owner each). A scope of a user owner counts itself in its thread's row of a
//! per-owner table so that a retired owner's id is not reused while a scope on it is open;
//! the two-thread rows check that two threads entering the same owner at once write no
//! shared cache line (a first version shared one atomic per owner). Reserved owners (`root`)
//! count nothing: their row is the scope's cost without the count. The two-thread rows give
//! the main thread's figure.
//!
//! `cargo bench --bench scopes --features enabled` (`-- quick` for a short run). Prints ns per
//! enter+drop, the median of rounds of 1 M each.

mod common;
use common::columns::Plan;
use common::median;
use heapscope::Owner;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

heapscope::install!();

/// Enters and leaves `owner` `n` times; returns ns per enter+drop.
fn enter_leave(owner: Owner, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let _scope = black_box(owner).enter();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// `enter_leave` on this thread and on a second one at once; returns this thread's figure.
fn on_two_threads(mine: Owner, other: Owner, n: usize) -> f64 {
    let start = Barrier::new(2);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            start.wait();
            enter_leave(other, n)
        });
        start.wait();
        enter_leave(mine, n)
    })
}

fn main() {
    let Plan { rounds, ops: n, .. } = Plan::from_args();
    let a = Owner::named("scopes_a");
    let b = Owner::named("scopes_b");
    let root = Owner::root();
    let item = a.child("item");
    let rows: [(&str, &dyn Fn() -> f64); 5] = [
        ("root (reserved, nothing counted), 1 thread", &|| enter_leave(root, n)),
        ("a top-level owner, 1 thread", &|| enter_leave(a, n)),
        ("a child owner, 1 thread", &|| enter_leave(item, n)),
        ("one owner, 2 threads at once", &|| on_two_threads(a, a, n)),
        ("an owner each, 2 threads at once", &|| on_two_threads(a, b, n)),
    ];
    println!(
        "scopes: ns per enter+drop, median of {rounds} rounds × {n} (tracking compiled in = {})",
        cfg!(feature = "enabled")
    );
    println!("| scope | ns |\n|---|---|");
    for (name, run) in rows {
        let ns: Vec<f64> = (0..rounds).map(|_| run()).collect();
        println!("| {name} | {:.2} |", median(ns));
    }
}
