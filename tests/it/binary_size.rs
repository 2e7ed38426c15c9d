//! The tracking tables must cost address space, not file size: they are all-zero statics,
//! so the linker puts them in `.bss`. A single non-zero initialiser in them (as a headroom
//! of `i64::MIN` once was) moves all of them into `.data`: 48 MiB more in every binary built
//! with tracking, and in every page cache that loads it.

use object::{Object, ObjectSection};

/// Sizes of this test binary's `.data` and `.bss` sections, in bytes.
fn data_and_bss() -> (u64, u64) {
    let exe = std::env::current_exe().expect("path of the test binary");
    let bytes = std::fs::read(&exe).expect("read the test binary");
    let file = object::File::parse(&*bytes).expect("parse the test binary");
    let size = |name: &str| file.section_by_name(name).map_or(0, |s| s.size());
    (size(".data"), size(".bss"))
}

#[test]
fn the_tracking_tables_are_bss_not_initialised_data() {
    let (data, bss) = data_and_bss();
    // The per-thread counter slots alone are 64 MiB (256 slots of 4096 owners × 64 B): if
    // they are anywhere in the file, they are in `.data`.
    assert!(bss >= 64 << 20, ".bss is only {bss} bytes: where are the counter slots?");
    assert!(data < 4 << 20, ".data is {data} bytes: a tracking table has a non-zero initialiser");
}
