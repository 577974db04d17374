//! Corpus replay: every file under `fuzz/corpus/<target>/` (the committed
//! seeds plus every input a fuzzer found worth keeping) is run through the
//! same property checks as the cargo-fuzz target of that name, so a change
//! that breaks a property fails `cargo test`, no fuzzer needed. A crash
//! found by fuzzing is pinned by copying its input into the corpus.

pub mod props;

use std::path::Path;

fn corpus_files(target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_target_has_a_seed_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for (name, _) in props::TARGETS {
        assert!(corpus_files(name).len() >= 5, "{name}: seed corpus too small");
        assert!(fuzz.join(format!("{name}.rs")).is_file(), "no fuzz target {name}.rs");
    }
}

#[test]
fn replay_every_corpus_file_through_its_properties() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, check) in props::TARGETS {
        for file in corpus_files(name) {
            let data = std::fs::read(&file).unwrap();
            count += 1;
            if let Err(e) = std::panic::catch_unwind(|| check(&data)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", file.display()));
            }
        }
    }
    assert!(count > 0);
    assert!(
        failures.is_empty(),
        "{} of {count} corpus files broke a property:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
