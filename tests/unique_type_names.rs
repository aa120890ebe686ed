//! Every struct, enum, union, trait and type alias declared under `src/` has a name of its
//! own in the crate: two types with one name make a reader (and a `use`) guess which one
//! is meant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The name declared on `line`, if it declares a struct, enum, union, trait or type alias.
fn declared_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    // Visibility (`pub`, `pub(crate)`, `pub(super)`, `pub(in path)`) and qualifiers.
    while let Some(&w) = words.peek() {
        if w.starts_with("pub") || w == "unsafe" || w == "auto" {
            words.next();
        } else {
            break;
        }
    }
    let keyword = words.next()?;
    if !matches!(keyword, "struct" | "enum" | "union" | "trait" | "type") {
        return None;
    }
    let rest = words.next()?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..end];
    name.starts_with(|c: char| c.is_ascii_uppercase())
        .then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_type_name_is_declared_once() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 10,
        "found only {} files under src/",
        files.len()
    );

    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let rel = file
            .strip_prefix(&src)
            .unwrap_or(file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if let Some(name) = declared_name(code) {
                seen.entry(name.to_string())
                    .or_default()
                    .push(format!("src/{rel}:{}", n + 1));
            }
        }
    }
    assert!(
        seen.contains_key("Supervisor"),
        "the scan found no `Supervisor`"
    );

    let dups: Vec<String> = seen
        .iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(name, places)| format!("{name}: {}", places.join(", ")))
        .collect();
    assert!(
        dups.is_empty(),
        "type names declared more than once under src/ (give each a name that says what it \
         is):\n{}",
        dups.join("\n")
    );
}

#[test]
fn the_scanner_reads_declarations() {
    assert_eq!(declared_name("pub struct Foo {"), Some("Foo"));
    assert_eq!(declared_name("pub(crate) enum Bar<'a> {"), Some("Bar"));
    assert_eq!(declared_name("type Job = Box<dyn FnOnce()>;"), Some("Job"));
    assert_eq!(declared_name("pub(super) trait Baz: Send {"), Some("Baz"));
    assert_eq!(declared_name("pub struct NET_DVR_X {"), Some("NET_DVR_X"));
    assert_eq!(declared_name("let x = 3;"), None);
    assert_eq!(declared_name("fn struct_of() {}"), None);
}
