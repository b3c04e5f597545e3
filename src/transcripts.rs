//! Test support: every protocol's transcripts (`tests/transcripts/<protocol>/*.txt`,
//! `C:`/`S:` lines) are its contract. Each protocol's session tests replay
//! them with their own `replay` function; this runs that over every file of
//! a folder and reports all failures at once.

/// Replays every `.txt` file in `folder` (relative to the crate root) with
/// `replay`, and panics listing each failing file, or if fewer than
/// `at_least` files were found (a moved folder must not pass silently).
pub fn replay_all(folder: &str, at_least: usize, replay: impl Fn(&str) -> Result<(), String>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= at_least, "found only {} transcripts in {}", paths.len(), dir.display());
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string());
            text.and_then(|text| replay(&text)).err().map(|e| format!("{}: {e}", path.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
