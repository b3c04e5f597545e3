//! Replays every input the fuzzers kept (`fuzz/corpus/<target>/`) through
//! the same entry points the fuzz targets call (`mailflow::fuzzing`), on
//! stable Rust, so each CI run checks them again: a crash found once (its
//! input is in the corpus, see `fuzz/README.md`) can never come back
//! unnoticed, and the deep inputs the fuzzers found keep exercising the
//! servers.

use std::path::Path;

#[test]
fn every_corpus_file_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut failures = Vec::new();
    for (target, run) in mailflow::fuzzing::TARGETS {
        let folder = root.join(target);
        let mut files: Vec<_> =
            std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())).map(|e| e.expect("a folder entry").path()).collect();
        files.sort();
        // A corpus that vanished would make this test pass without testing anything.
        assert!(files.len() >= 5, "{}: only {} inputs", folder.display(), files.len());
        for file in files {
            let data = std::fs::read(&file).expect("a corpus file");
            if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
                let why = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                failures.push(format!("{target}: {}: {why}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} corpus inputs fail:\n{}", failures.len(), failures.join("\n"));
}
