//! `write_private` takes what `std::fs::write` takes: a user saving a timeline wrote
//! `write_private(dir.join("timeline.json"), &serde_json::to_vec(&timeline)?)` and got
//! "expected `&Path`, found `PathBuf`".

use std::path::PathBuf;

#[test]
fn write_private_takes_what_fs_write_takes() {
    let dir = std::env::temp_dir().join(format!("heapscope-write-private-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("timeline.json");
    heapscope::write_private(dir.join("timeline.json"), serde_json::to_vec(&[1, 2]).unwrap())
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"[1,2]");
    heapscope::write_private(&path, String::from("{}")).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
    heapscope::write_private(path.to_str().unwrap(), "{\"s\":1}").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"s\":1}");
    heapscope::write_private(path.as_path(), b"x").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"x");
    std::fs::remove_dir_all(&dir).ok();
}
