//! The kernel's modules form layers: no module reaches, through the names it uses, a module
//! that uses it back. A cycle is how a kernel's structure rots (the scheduler needs signals,
//! signals need exit, exit needs the scheduler...), and the compiler never objects to one, so
//! this test reads the sources and does.
//!
//! A module's dependencies are the `crate::` and `super::` paths in its code (comments and its
//! `#[cfg(test)]` tail left out), each taken as the longest module prefix it names. A module's
//! use of its own children does not count (`mod` declarations and re-exports are how Rust nests
//! files); a child's use of its parent does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// module name ("" is the crate root) -> (module it uses -> the first path that shows it, "file:line")
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn module_name(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "main" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

/// The source without comments, and without the `#[cfg(test)]` module at its end.
fn code_of(src: &str) -> String {
    let src = match src.find("#[cfg(test)]") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path after `prefix` ("crate::" or "super::"), braces expanded one level, over as
/// many lines as rustfmt spreads them: `crate::{a, b::c}` gives "a" and "b::c". Paired with
/// its line number.
fn paths_after(code: &str, prefix: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(prefix).map(|i| from + i) {
        from = i + prefix.len();
        let line = code[..i].matches('\n').count() + 1;
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro (the crate it expands in), `mycrate::`
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                if !item.is_empty() && item != "self" {
                    out.push((ident_path(item), line));
                }
            }
        } else {
            out.push((ident_path(rest), line));
        }
    }
    out
}

fn ident_path(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect::<String>()
        .trim_end_matches(':')
        .to_string()
}

/// The module `path` (relative to the crate root) lands in: its longest prefix that is one.
fn resolve<'a>(modules: &'a BTreeSet<String>, path: &str) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|k| modules.get(&parts[..k].join("::")))
}

fn kernel_graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/kernel/src");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("the kernel's sources") {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let named: Vec<(String, std::path::PathBuf)> = files
        .into_iter()
        .map(|p| (module_name(p.strip_prefix(&root).unwrap()), p))
        .collect();
    let modules: BTreeSet<String> = named.iter().map(|(m, _)| m.clone()).collect();
    let mut graph = Graph::new();
    for (m, file) in &named {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let shown = file.strip_prefix(&root).unwrap().display().to_string();
        let parent = m.rsplit_once("::").map_or("", |(p, _)| p);
        let mut uses: Vec<(String, usize)> = paths_after(&code, "crate::");
        for (p, n) in paths_after(&code, "super::") {
            uses.push((
                if parent.is_empty() {
                    p
                } else {
                    format!("{parent}::{p}")
                },
                n,
            ));
        }
        let entry = graph.entry(m.clone()).or_default();
        for (path, line) in uses {
            if let Some(t) = resolve(&modules, &path) {
                if t != m && !t.starts_with(&format!("{m}::")) {
                    entry
                        .entry(t.clone())
                        .or_insert_with(|| format!("{shown}:{line} `{path}`"));
                }
            }
        }
    }
    graph
}

/// A cycle in `g`, as the modules along it (the first repeated at the end), if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        g: &Graph,
        m: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(m) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|p| p == m).unwrap();
                let mut c = path[start..].to_vec();
                c.push(m.to_string());
                return Some(c);
            }
            None => {}
        }
        marks.insert(m.to_string(), Mark::Open);
        path.push(m.to_string());
        for next in g.get(m).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(g, next, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(m.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut marks, &mut Vec::new()))
}

#[test]
fn the_kernels_modules_import_nothing_above_them() {
    let g = kernel_graph();
    if let Some(cycle) = find_cycle(&g) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("  {} -> {}   ({})", w[0], w[1], g[&w[0]][&w[1]]))
            .collect();
        panic!(
            "the kernel's modules import each other in a circle:\n{}\nmove what the lower one needs below it (see README, \"The kernel's layers\")",
            steps.join("\n")
        );
    }
}

/// The reader sees what it must: if it saw nothing, the test above would pass on any tree.
#[test]
fn the_reader_sees_the_kernels_imports() {
    let g = kernel_graph();
    let edges: usize = g.values().map(|e| e.len()).sum();
    assert!(
        edges > 150,
        "only {edges} imports found between kernel modules"
    );
    for (from, to) in [
        ("scheduler", "wakeup"),
        ("signal::send", "wakeup"),
        ("signal::deliver", "exit"),
        ("process", "signal::state"),
        ("sys::fd", "sys"),
        ("report", "percpu"),
    ] {
        assert!(
            g.get(from).is_some_and(|e| e.contains_key(to)),
            "{from} -> {to} not seen; {from} uses {:?}",
            g.get(from).map(|e| e.keys().collect::<Vec<_>>())
        );
    }
    // And the cycle finder finds one where there is one.
    let mut c = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        c.entry(a.into())
            .or_default()
            .insert(b.into(), String::new());
    }
    assert_eq!(find_cycle(&c).unwrap(), ["a", "b", "c", "a"]);
}
