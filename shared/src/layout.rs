//! The crate's module graph has no cycles: a top-level module (`record`,
//! `callback`, `ports`, …) only uses modules below it, so each can be read,
//! and changed, knowing only what it stands on. Read from the sources, so a
//! new `use crate::…` that closes a loop fails here, naming the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module and the top-level modules its non-test code names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("src is readable").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src");
            let name = relative.to_string_lossy();
            // Test-only files may use anything.
            if name == "lib.rs" || name == "layout.rs" || name.ends_with("tests.rs") {
                continue;
            }
            let top = name
                .split('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".rs")
                .to_owned();
            let text = std::fs::read_to_string(&path).expect("a source file is readable");
            // A file's tests come last, after `#[cfg(test)] mod …`.
            let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
            let uses = graph.entry(top.clone()).or_insert_with(BTreeSet::new);
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let used: String = line[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !used.is_empty() && used != top {
                        uses.insert(used);
                    }
                }
            }
        }
    }
    graph
}

/// A path `from` → … → `from`, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("paths are never empty");
        for next in graph.get(last).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_top_level_module_depends_on_itself_through_others() {
    let graph = module_graph();
    assert!(graph.contains_key("record") && graph.contains_key("dispatch"));
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_through(&graph, module))
        .map(|cycle| cycle.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "module cycles: {cycles:#?}");
}

#[test]
fn a_loop_like_the_old_record_and_callback_one_is_found() {
    let graph = BTreeMap::from([
        ("record".to_owned(), BTreeSet::from(["callback".to_owned()])),
        ("callback".to_owned(), BTreeSet::from(["record".to_owned()])),
        ("view".to_owned(), BTreeSet::from(["record".to_owned()])),
    ]);
    assert_eq!(
        cycle_through(&graph, "record"),
        Some(vec!["record".into(), "callback".into(), "record".into()])
    );
    assert_eq!(cycle_through(&graph, "view"), None);
}
