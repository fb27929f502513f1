//! The layering rule of ARCHITECTURE.md, checked on the source: every
//! module path a file of `src/` names (`crate::…`, `super::…`, and the
//! operational-log macros) must lie in its own layer or in a layer below
//! it, and no import circle may span two folders.
//!
//! The check reads the code as text: `use` lines, grouped imports and
//! paths written inline; comments are left out. `check_tree` takes the
//! files as (path, text) pairs so the tests below can show it failing on a
//! deliberately wrong import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, top to bottom. A file belongs to the longest entry its
/// module path starts with; it may name its own entry's modules and those
/// of any entry below it. Keep in step with ARCHITECTURE.md.
const LAYERS: &[&str] = &[
    "cli",
    "process::master",
    "process::generation",
    "process",
    "proxy::accept",
    "proxy::http",
    "proxy::tcp",
    "proxy::upstream",
    "proxy",
    "control",
    "health",
    "peers",
    "worker",
    "mesh",
    "balance",
    "stick",
    "observe",
    "config",
    "rules",
    "tls",
    "io",
    "acl",
    "model",
    "base",
];

/// Macros exported at the crate root, and the module that defines them.
const MACROS: &[(&str, &str)] = &[
    ("warning", "observe::log"),
    ("notice", "observe::log"),
    ("alert", "observe::log"),
];

/// A module path, as its segments (`["proxy", "http", "session"]`).
type Module = Vec<String>;

/// The module a source file defines (`src/a/b.rs` and `src/a/b/mod.rs` are
/// both `a::b`; `lib.rs` and `main.rs` are the root).
fn module_of(rel: &str) -> Module {
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The text without `//` comments (doc comments included) and `/* */`
/// blocks, so prose that names a module is not read as an import.
/// String literals are kept: corral's do not spell `crate::` paths.
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let (mut i, mut in_str) = (0, false);
    while i < b.len() {
        if in_str {
            if b[i] == b'\\' && i + 1 < b.len() {
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
                continue;
            }
            if b[i] == b'"' {
                in_str = false;
            }
            out.push(b[i]);
            i += 1;
        } else if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
            in_str = true;
            out.push(b'"');
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i = src[i..].find("*/").map_or(b.len(), |e| i + e + 2);
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Reads a path after a `crate::`/`super::` start at `i`: segments joined
/// by `::`, and a `{…}` group, whose items are read against the prefix.
fn read_path(code: &str, mut i: usize, prefix: Module, out: &mut Vec<Module>) -> usize {
    let b = code.as_bytes();
    let mut path = prefix;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            i += 1;
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return i + 1;
                }
                let before = i;
                i = read_path(code, i, path.clone(), out);
                // Skip `as name` and anything else up to the next item.
                while i < b.len() && b[i] != b',' && b[i] != b'}' {
                    i += 1;
                }
                if i == before {
                    i += 1;
                }
            }
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if start == i {
            break;
        }
        let seg = &code[start..i];
        if seg != "self" {
            path.push(seg.to_string());
        }
        if b[i..].starts_with(b"::") {
            i += 2;
        } else {
            break;
        }
    }
    out.push(path);
    i
}

/// Every module path file `module` names.
fn references(module: &Module, is_dir_module: bool, code: &str) -> Vec<Module> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b':' || b[i - 1] == b'$');
        let dollar = i > 0 && b[i - 1] == b'$';
        if (boundary || dollar) && b[i..].starts_with(b"crate::") {
            i = read_path(code, i + 7, Vec::new(), &mut out);
        } else if boundary && b[i..].starts_with(b"super::") {
            // `super` from `a/b.rs` (module a::b) is `a`; from `a/b/mod.rs`
            // (also a::b) it is `a` too.
            let mut base = module.clone();
            let _ = is_dir_module;
            let mut j = i;
            while b[j..].starts_with(b"super::") {
                base.pop();
                j += 7;
            }
            i = read_path(code, j, base, &mut out);
        } else if boundary && is_ident(b[i]) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word = &code[start..i];
            if b[i..].starts_with(b"!(")
                && let Some((_, m)) = MACROS.iter().find(|(name, _)| *name == word)
            {
                out.push(m.split("::").map(str::to_string).collect());
            }
        } else {
            i += 1;
        }
    }
    for p in &mut out {
        if let Some(last) = p.last()
            && let Some((_, m)) = MACROS.iter().find(|(name, _)| name == last)
            && p.len() == 1
        {
            *p = m.split("::").map(str::to_string).collect();
        }
    }
    out
}

/// The index in [`LAYERS`] of the longest entry `m` starts with.
fn layer_of(m: &[String]) -> Option<usize> {
    LAYERS
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            let l: Vec<&str> = l.split("::").collect();
            l.len() <= m.len() && l.iter().zip(m).all(|(a, b)| a == b)
        })
        .max_by_key(|(_, l)| l.split("::").count())
        .map(|(i, _)| i)
}

/// The longest known module `path` starts with (what it names is an item
/// of that module, or the module itself).
fn target_module(path: &[String], modules: &BTreeSet<Module>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

/// The folder a module's code is in, as a module path: a module with
/// children (`a/b.rs` beside `a/b/`, or `a/b/mod.rs`) is its own folder.
fn folder_of(m: &Module, dirs: &BTreeSet<Module>) -> Module {
    if dirs.contains(m) {
        m.clone()
    } else {
        m[..m.len().saturating_sub(1)].to_vec()
    }
}

/// What is wrong with the tree: imports that run up a layer or name a
/// module outside every layer, and circles between folders.
fn check_tree(files: &[(String, String)]) -> Vec<String> {
    let mut modules = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    for (rel, _) in files {
        let dir: Module = match rel.rsplit_once('/') {
            Some((d, _)) => d.split('/').map(str::to_string).collect(),
            None => Vec::new(),
        };
        dirs.insert(dir);
        modules.insert(module_of(rel));
    }
    let mut problems = Vec::new();
    let mut edges: BTreeMap<Module, BTreeMap<Module, String>> = BTreeMap::new();
    for (rel, text) in files {
        let m = module_of(rel);
        if m.is_empty() {
            continue; // lib.rs and main.rs sit above every layer
        }
        let Some(own) = layer_of(&m) else {
            problems.push(format!(
                "src/{rel}: `{}` is in no layer of tests/layers.rs",
                m.join("::")
            ));
            continue;
        };
        let code = strip_comments(text);
        let is_dir = rel.ends_with("mod.rs");
        for r in references(&m, is_dir, &code) {
            let t = target_module(&r, &modules);
            if t.is_empty() {
                continue;
            }
            let Some(theirs) = layer_of(&t) else {
                problems.push(format!(
                    "src/{rel}: names `{}`, which is in no layer",
                    r.join("::")
                ));
                continue;
            };
            if theirs < own {
                problems.push(format!(
                    "src/{rel}: `{}` imports `{}` from layer `{}`, above its own layer `{}`",
                    m.join("::"),
                    r.join("::"),
                    LAYERS[theirs],
                    LAYERS[own]
                ));
            }
            let (from, to) = (folder_of(&m, &dirs), folder_of(&t, &dirs));
            if from != to {
                edges
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| format!("src/{rel} names `{}`", r.join("::")));
            }
        }
    }
    problems.extend(circles(&edges));
    problems
}

/// Circles in the folder graph (one report per strongly connected set).
fn circles(edges: &BTreeMap<Module, BTreeMap<Module, String>>) -> Vec<String> {
    let nodes: BTreeSet<&Module> = edges
        .keys()
        .chain(edges.values().flat_map(BTreeMap::keys))
        .collect();
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for next in edges.get(&n).into_iter().flat_map(BTreeMap::keys) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for n in nodes {
        if reported.contains(n) {
            continue;
        }
        let from_n = reach(n);
        if !from_n.contains(n) {
            continue;
        }
        let set: Vec<Module> = from_n
            .iter()
            .filter(|m| reach(m).contains(n))
            .cloned()
            .collect();
        let mut why = Vec::new();
        for a in &set {
            for (b, how) in edges.get(a).into_iter().flatten() {
                if set.contains(b) {
                    why.push(how.clone());
                }
            }
        }
        let names: Vec<String> = set
            .iter()
            .map(|m| format!("src/{}/", m.join("/")))
            .collect();
        out.push(format!(
            "an import circle spans {}: {}",
            names.join(", "),
            why.join("; ")
        ));
        reported.extend(set);
    }
    out
}

fn read_src(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            read_src(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src/");
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            out.push((rel.to_string_lossy().into_owned(), text));
        }
    }
}

#[test]
fn every_import_runs_down_the_layers_and_no_circle_spans_two_folders() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_src(&root, &root, &mut files);
    files.sort();
    assert!(
        files.len() > 100,
        "found only {} files under src/",
        files.len()
    );
    let problems = check_tree(&files);
    assert!(
        problems.is_empty(),
        "the layering rule of ARCHITECTURE.md is broken:\n{}",
        problems.join("\n")
    );
}

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn the_check_fails_on_an_import_that_runs_up_a_layer() {
    let files = tree(&[
        (
            "config/mod.rs",
            "use crate::proxy::http::session::Session;\n",
        ),
        ("proxy/http/session.rs", "pub struct Session;\n"),
        (
            "acl/mod.rs",
            "use crate::model::table::Query; // crate::worker in a comment\n",
        ),
        ("model/table.rs", "pub struct Query;\n"),
    ]);
    let problems = check_tree(&files);
    assert_eq!(
        problems,
        [
            "src/config/mod.rs: `config` imports `proxy::http::session::Session` from layer \
             `proxy::http`, above its own layer `config`"
        ]
    );
}

#[test]
fn the_check_reads_grouped_imports_super_paths_and_log_macros() {
    let files = tree(&[
        (
            "base/hash.rs",
            "use crate::{model::table, io::{stream::Stream, conn}};\n",
        ),
        ("model/table.rs", "fn f() { warning!(\"x\"); }\n"),
        ("io/stream.rs", "pub struct Stream;\n"),
        ("io/conn.rs", "use super::super::tls::Acceptor;\n"),
        ("tls/mod.rs", "pub struct Acceptor;\n"),
        ("observe/log.rs", "\n"),
    ]);
    let problems = check_tree(&files);
    let firsts: Vec<&str> = problems
        .iter()
        .map(|p| &p[..p.find(':').unwrap()])
        .collect();
    assert_eq!(
        firsts,
        [
            "src/base/hash.rs",
            "src/base/hash.rs",
            "src/base/hash.rs",
            "src/model/table.rs",
            "src/io/conn.rs"
        ],
        "{problems:#?}"
    );
}

#[test]
fn the_check_finds_a_circle_between_two_folders_of_one_layer() {
    let files = tree(&[
        (
            "cli/mod.rs",
            "use crate::cli::import::convert;\npub fn report() {}\n",
        ),
        (
            "cli/import/mod.rs",
            "use crate::cli::report;\npub fn convert() {}\n",
        ),
    ]);
    let problems = check_tree(&files);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("an import circle spans src/cli/, src/cli/import/"),
        "{}",
        problems[0]
    );
}
