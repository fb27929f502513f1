//! The no-lock rule: nothing a worker runs takes a Mutex or RwLock or does
//! an atomic read-modify-write. Worker state is `Rc`/`Cell`; only messages
//! cross cores. This test reads the source and fails on any such use
//! outside the few places that run before workers exist.

use std::path::Path;

/// Files allowed to use a lock or an atomic, and why.
const ALLOWED: &[(&str, &str)] = &[(
    "src/io/ring_setup.rs",
    "counts rings at executor creation, before serving",
)];

/// What the connection path must not use.
const FORBIDDEN: &[&str] = &[
    "Mutex",
    "RwLock",
    "fetch_add",
    "fetch_sub",
    "fetch_or",
    "fetch_and",
    "fetch_update",
    "compare_exchange",
    "AtomicU",
    "AtomicI",
    "AtomicBool",
    "parking_lot",
];

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_lock_or_atomic_read_modify_write_in_worker_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut found = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if ALLOWED.iter().any(|(a, _)| *a == rel) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    found.push(format!("{rel}:{}: `{word}` in: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "locks or atomic read-modify-writes in worker code (keep state per worker in Rc/Cell and send messages):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_a_lock() {
    // The same scan on a sample, so the test above cannot pass vacuously.
    let sample = "let m = std::sync::Mutex::new(0); // fine in a comment: RwLock";
    let code = sample.split("//").next().unwrap();
    assert!(FORBIDDEN.iter().any(|w| code.contains(w)));
    assert!(!"// RwLock".split("//").next().unwrap().contains("RwLock"));
}
