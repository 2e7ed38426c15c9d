//! `assert_owner_growth!`: its limit, and what its failure says. Sizes written out by hand.
#![cfg(feature = "enabled")]

use heapscope::Owner;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn panic_text(err: Box<dyn std::any::Any + Send>) -> String {
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn a_negative_limit_requires_the_owner_to_shrink() {
    let o = Owner::named("growth_negative_limit");
    let kept = o.in_scope(|| black_box(vec![0u8; 100]));
    // A limit computed at run time (a budget minus what is already used) can be negative.
    let (minus_1, minus_100, minus_101): (i64, i64, i64) = (-1, -100, -101);
    // Growing by 10 bytes where at least 1 byte had to be freed.
    let grew = catch_unwind(AssertUnwindSafe(|| {
        heapscope::assert_owner_growth!(o, at_most = minus_1, {
            o.in_scope(|| black_box(vec![0u8; 10]))
        })
    }));
    let text = panic_text(grew.expect_err("a growth of 10 bytes passed a limit of -1"));
    assert!(
        text.starts_with(
            "heapscope: owner \"growth_negative_limit\" grew by 10 bytes, more than the -1 allowed"
        ),
        "{text}"
    );
    // Freeing the 100 bytes is a growth of -100: within -100, not within -101.
    let mut kept = Some(kept);
    heapscope::assert_owner_growth!(o, at_most = minus_100, { drop(kept.take()) });
    let again = o.in_scope(|| black_box(vec![0u8; 100]));
    let mut again = Some(again);
    let shrank_too_little = catch_unwind(AssertUnwindSafe(|| {
        heapscope::assert_owner_growth!(o, at_most = minus_101, { drop(again.take()) })
    }));
    assert!(shrank_too_little.is_err());
}

/// The failure table's rows, as `name -> (live before, live after, growth)`.
fn table_rows(text: &str) -> Vec<(String, (i64, i64, i64))> {
    text.lines()
        .skip(2) // the message and the table's header
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [.., before, after, growth] = cols[..] else { return None };
            let n = |s: &str| s.parse::<i64>().ok();
            Some((cols[..cols.len() - 3].join(" "), (n(before)?, n(after)?, n(growth)?)))
        })
        .collect()
}

#[test]
fn the_failure_table_follows_owners_not_names() {
    let checked = Owner::named("growth_table_checked");
    let old = Owner::named("growth_table_renamed");
    let held = old.in_scope(|| black_box(vec![0u8; 1000]));
    let failed = catch_unwind(AssertUnwindSafe(|| {
        heapscope::assert_owner_growth!(checked, at_most = 0, {
            // Retired holding its 1000 bytes, then its name taken by a new owner: the old one
            // becomes `growth_table_renamed (retired #N)`, unchanged.
            old.retire().unwrap();
            let new = Owner::named("growth_table_renamed");
            let grown = checked.in_scope(|| black_box(vec![0u8; 64]));
            (grown, new.in_scope(|| black_box(vec![0u8; 10])))
        })
    }));
    let text = panic_text(failed.expect_err("a growth of 64 bytes passed a limit of 0"));
    let rows = table_rows(&text);
    let row = |name: &str| rows.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
    assert_eq!(row("growth_table_checked"), Some((0, 64, 64)), "{text}");
    // The new owner grew by its 10 bytes; the old one, still holding its 1000, did not move.
    assert_eq!(row("growth_table_renamed"), Some((0, 10, 10)), "{text}");
    assert!(!rows.iter().any(|(n, _)| n.starts_with("growth_table_renamed (retired")), "{text}");
    drop(held);
}

/// Grows `o` by 10 bytes (kept in `kept`) in an asserted block that then returns.
fn grows_then_returns(o: Owner, at_most: u64, kept: &mut Vec<Vec<u8>>, ran_past: &mut bool) {
    heapscope::assert_owner_growth!(o, at_most = at_most, {
        kept.push(o.in_scope(|| black_box(vec![0u8; 10])));
        if black_box(true) {
            return;
        }
    });
    *ran_past = true;
}

#[test]
fn the_asserted_block_is_a_block() {
    // The macro takes a block and evaluates to its value: its `return` leaves the enclosing
    // function, as any block's does, and the growth is still checked on the way out.
    let o = Owner::named("growth_block_return");
    let (mut kept, mut ran_past) = (Vec::with_capacity(2), false);
    grows_then_returns(o, 1000, &mut kept, &mut ran_past);
    assert!(!ran_past, "the block's `return` did not leave the function");
    let failed =
        catch_unwind(AssertUnwindSafe(|| grows_then_returns(o, 0, &mut kept, &mut ran_past)));
    let text = panic_text(failed.expect_err("a growth of 10 bytes passed a limit of 0"));
    assert!(
        text.starts_with(
            "heapscope: owner \"growth_block_return\" grew by 10 bytes, more than the 0 allowed"
        ),
        "{text}"
    );
    assert!(!ran_past);
}

/// Another owner (another test's, when tests run in parallel) that grew more during the block
/// than the checked one: its row came first, right under `total`, so the table's first owner
/// was not the one that failed (an agent's test beside another test's 1000-turn loop read
/// `t_loop/history +675146` above its own `history +60594`).
#[test]
fn the_failure_table_lists_the_checked_owners_subtree_first() {
    let checked = Owner::named("growth_first_checked");
    let child = checked.child("items");
    let bystander = Owner::named("growth_first_bystander");
    let failed = catch_unwind(AssertUnwindSafe(|| {
        heapscope::assert_owner_growth!(checked, at_most = 0, {
            let big = bystander.in_scope(|| black_box(vec![0u8; 100_000]));
            let own = checked.in_scope(|| black_box(vec![0u8; 64]));
            (big, own, child.in_scope(|| black_box(vec![0u8; 32])))
        })
    }));
    let text = panic_text(failed.expect_err("a growth of 96 bytes passed a limit of 0"));
    let rows = table_rows(&text);
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).skip(1).take(2).collect();
    assert_eq!(rows.first().map(|(n, _)| n.as_str()), Some("total"), "{text}");
    assert_eq!(names, ["growth_first_checked", "growth_first_checked/items"], "{text}");
    let row = |name: &str| rows.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
    assert_eq!(row("growth_first_bystander"), Some((0, 100_000, 100_000)), "{text}");
}
