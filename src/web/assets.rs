//! The page's files (the top-level `web/` folder), built into the binary
//! so `mailflow demo` works offline, with no CDN and no build step.
//!
//! Why `include_bytes!` and not a crate such as rust-embed or include_dir:
//! the page is a handful of files, `include_bytes!` makes cargo rebuild
//! whenever one of them changes (proc-macro embedders only notice with
//! extra build scripts), and it adds no dependency. The price is this
//! list; a test checks that every file of `web/` is on it.

macro_rules! assets {
    ($($path:literal => $mime:literal),* $(,)?) => {
        &[$(($path, $mime, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)) as &[u8])),*]
    };
}

/// (path under `web/`, content type, bytes).
pub const ASSETS: &[(&str, &str, &[u8])] = assets![
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/main.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/stream.js" => "text/javascript; charset=utf-8",
    "js/model.js" => "text/javascript; charset=utf-8",
    "js/topology.js" => "text/javascript; charset=utf-8",
    "js/panels.js" => "text/javascript; charset=utf-8",
    "js/controls.js" => "text/javascript; charset=utf-8",
    "js/authentication.js" => "text/javascript; charset=utf-8",
    "js/diagram.js" => "text/javascript; charset=utf-8",
    "js/dns-edit.js" => "text/javascript; charset=utf-8",
    "js/share.js" => "text/javascript; charset=utf-8",
    "js/quiz.js" => "text/javascript; charset=utf-8",
    "js/wire.js" => "text/javascript; charset=utf-8",
    "js/account.js" => "text/javascript; charset=utf-8",
];

/// The file at `path` (no leading slash; "" is the index page).
pub fn get(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|(p, _, _)| *p == path).map(|(_, mime, bytes)| (*mime, *bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_web_folder_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                assert!(get(&relative).is_some(), "web/{relative} is not in the ASSETS list of src/web/assets.rs");
            }
        }
    }

    #[test]
    fn index_is_the_default() {
        assert_eq!(get("").unwrap().0, "text/html; charset=utf-8");
        assert!(get("../Cargo.toml").is_none());
    }
}
