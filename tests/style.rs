//! The code's layout is checked like its behaviour: `cargo fmt --check`
//! with the project's `rustfmt.toml` (wide lines, as the code reads best
//! on a projector). Run `cargo fmt` to fix.

use std::process::Command;

#[test]
fn code_is_formatted() {
    let output = Command::new(env!("CARGO")).args(["fmt", "--check"]).current_dir(env!("CARGO_MANIFEST_DIR")).output();
    let output = output.unwrap_or_else(|e| panic!("cannot run `cargo fmt`: {e} (install it with `rustup component add rustfmt`)"));
    assert!(output.status.success(), "run `cargo fmt`; it would change:\n{}", String::from_utf8_lossy(&output.stdout));
}
