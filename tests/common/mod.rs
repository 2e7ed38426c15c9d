//! Helpers shared by integration tests (not a test target itself).

use std::path::PathBuf;

/// The file names in `dir`, sorted.
#[allow(dead_code, reason = "not every test that includes this module lists a directory")]
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The path of example `name`, which `cargo test` builds alongside the tests.
#[allow(dead_code, reason = "not every test that includes this module runs an example")]
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --all-features`, which builds the examples",
        path.display()
    );
    path
}
