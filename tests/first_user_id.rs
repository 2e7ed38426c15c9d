//! The first owner a process registers takes the lowest user id, in a process of its own
//! where nothing registers before it.
//!
//! Entering a user owner pins its id and checks the handle's generation, and an `owner!`
//! call site trusts its cached handle only while the generation matches; only the reserved
//! owners below the first user id skip those checks. With that bound taken one too far, the
//! first user owner was treated as a reserved one, and the unit tests, `tests/it` and
//! `tests/async_runtime` passed (none knows which owner holds that id): `self.id <
//! FIRST_USER_ID` in `Owner::enter` as `<=` or `==` (its retired handle went on charging its
//! id), and in `Owner::is_current_generation` as `<=` or `==` (its call site kept returning
//! the retired handle).
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::Owner;

fn site() -> Owner {
    heapscope::owner!("first_user_id")
}

#[test]
fn the_first_user_owner_is_checked_as_a_user_owner() {
    // The process's first registration: the lowest user id, cached at the call site.
    let first = site();
    assert_eq!(first.in_scope(Owner::current), first);
    assert_eq!(site(), first, "cached");
    first.retire().unwrap();
    // A retired handle enters the overflow owner, whichever id it held.
    assert_eq!(first.in_scope(Owner::current), Owner::overflow());
    // The call site sees the retirement and registers the name again.
    let again = site();
    assert_ne!(again, first);
    assert_eq!(again.name(), "first_user_id");
    assert_eq!(again.in_scope(Owner::current), again);
}
