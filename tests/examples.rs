//! Every configuration in examples/ is valid.

mod common;
use common::*;

#[test]
fn every_example_passes_corral_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let (status, out, err) = run_cmd(&["check", "-c", path.to_str().unwrap()]);
            assert!(status.success(), "{}:\n{err}", path.display());
            assert!(out.contains("configuration is valid"), "{out}");
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} examples found");
}
