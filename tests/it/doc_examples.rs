//! Every doc example in `src/` installs heapscope's allocator (most with a hidden
//! `# heapscope::install!();` line), so that its assertions run with tracking: each doc test
//! is a process of its own, and without the allocator installed every figure reads zero and
//! the examples' `if heapscope::is_tracking()` guards skip their assertions. Until 2026-12-05
//! 125 examples did not install it, and the 26 of them whose assertions were guarded so never
//! ran those (`is_tracking`'s own example asserted that nothing was counted).

use std::path::Path;

/// The Rust doc examples of `text` (a source file) that run: their lines, `///` or `//!`
/// taken off, with the first line of each.
fn runnable_examples(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut examples = Vec::new();
    let mut open: Option<(usize, bool, Vec<String>)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let Some(doc) = trimmed.strip_prefix("///").or_else(|| trimmed.strip_prefix("//!")) else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        if let Some(attrs) = doc.trim_end().strip_prefix("```") {
            match open.take() {
                Some((first, runs, lines)) => {
                    if runs {
                        examples.push((first, lines));
                    }
                }
                None => {
                    let runs = attrs.is_empty()
                        || (attrs.starts_with("rust")
                            && !["ignore", "no_run", "compile_fail"]
                                .iter()
                                .any(|a| attrs.contains(a)));
                    open = Some((n + 1, runs, Vec::new()));
                }
            }
        } else if let Some((_, _, lines)) = open.as_mut() {
            lines.push(doc.to_owned());
        }
    }
    examples
}

/// Whether a line of `example` (hidden or not, not a comment) installs an allocator.
fn installs(example: &[String]) -> bool {
    example.iter().any(|line| {
        let code = line.trim_start();
        let code = code.strip_prefix("# ").unwrap_or(code).trim_start();
        code.starts_with("heapscope::install!(") || code.starts_with("#[global_allocator]")
    })
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_doc_example_installs_the_allocator() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut seen = 0;
    let mut missing = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, example) in runnable_examples(&text) {
            seen += 1;
            if !installs(&example) {
                missing.push(format!("{}:{line}", file.display()));
            }
        }
    }
    assert!(seen >= 100, "the doc examples were not found: {seen}");
    assert!(
        missing.is_empty(),
        "these doc examples run without heapscope's allocator, so their figures read zero: add \
         a hidden `# heapscope::install!();` line first:\n{}",
        missing.join("\n")
    );
}

#[test]
fn an_example_without_the_allocator_is_caught() {
    let text = "/// ```\n/// # heapscope::install!();\n/// let a = 1;\n/// ```\n\
                //! ```\n//! let b = 2;\n//! ```\n\
                /// ```text\n/// not Rust\n/// ```\n\
                /// ```no_run\n/// let c = 3;\n/// ```\n\
                /// ```\n/// // Without `heapscope::install!()`:\n/// let d = 4;\n/// ```\n";
    let examples = runnable_examples(text);
    assert_eq!(examples.len(), 3, "{examples:?}");
    assert!(installs(&examples[0].1));
    assert!(!installs(&examples[1].1));
    assert_eq!(examples[1].0, 5);
    assert!(!installs(&examples[2].1), "a comment naming install! does not install it");
}
