//! The web page in a real browser, as part of `cargo test`: runs the node
//! tests of `tests/browser/` (playwright-core driving Debian's Chromium)
//! against the mailflow binary cargo just built. `a11y.test.mjs` checks
//! every page state at a phone (390×844), a projector (1024×768) and a
//! laptop (1440×900) with axe-core, the usual engine for WCAG 2.1 A/AA
//! checks (loaded into the page by the test, never by the page itself), and
//! checks that nothing is cut off or overlapping. `authentication.test.mjs`
//! checks the sender-authentication view (SPF, DKIM, DMARC per message).
//! `share.test.mjs` decodes the `--share` QR code with jsQR (pure
//! JavaScript) from the pixels the browser drew. Every `*.test.mjs` file of
//! that folder runs.
//!
//! This test fails, on purpose, when node, Chromium or playwright-core is
//! missing: the page is the product's face and must not go untested
//! silently. To install them:
//!
//! ```sh
//! apt-get install -y nodejs npm chromium
//! npm ci            # playwright-core, axe-core and jsqr; it never downloads a browser
//! ```

use std::path::Path;
use std::process::Command;

#[test]
fn the_page_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut missing = Vec::new();
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout);
            let major: u32 = version.trim().trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
            if major < 18 {
                missing.push(format!("node 18 or newer (found {})", version.trim()));
            }
        }
        _ => missing.push("node (apt-get install -y nodejs npm)".to_string()),
    }
    if !Path::new(&chromium).exists() {
        missing.push(format!("Chromium at {chromium} (apt-get install -y chromium, or set CHROMIUM)"));
    }
    for package in ["playwright-core", "axe-core", "jsqr"] {
        if !root.join("node_modules").join(package).join("package.json").exists() {
            missing.push(format!("{package} (run `npm ci` in the repository root)"));
        }
    }
    assert!(missing.is_empty(), "the browser test cannot run; missing: {}", missing.join("; "));

    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tests/browser/"])
        .current_dir(root)
        .env("MAILFLOW_BIN", env!("CARGO_BIN_EXE_mailflow"))
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser tests failed:\n{report}");
    println!("{report}");
}
