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
