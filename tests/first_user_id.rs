//! The first owner a process registers takes the lowest user id, in a process of its own
//! where nothing registers before it.
//!
//! Entering a user owner pins its id and checks the handle's generation; only the reserved
//! owners below the first user id skip both. With that bound taken one too far
//! (`self.id <= FIRST_USER_ID` in `Owner::enter`, or `==`), the first user owner was entered
//! as a reserved one and its retired handle went on charging its id, and the unit tests,
//! `tests/it` and `tests/async_runtime` passed (none knows which owner holds that id).
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::Owner;

#[test]
fn the_first_user_owner_is_entered_as_a_user_owner() {
    let first = Owner::named("first_user_id");
    assert_eq!(first.in_scope(Owner::current), first);
    first.retire().unwrap();
    // A retired handle enters the overflow owner, whichever id it held.
    assert_eq!(first.in_scope(Owner::current), Owner::overflow());
}
