//! `mailflow check` warns about weak user passwords (issue 12), with
//! zxcvbn's estimate of the guesses an attacker needs, and never prints
//! the password itself.

use crate::common::{TempDir, run_mailflow};

const SCENARIO: &str = r#"{
  "title": "Three passwords",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["imap"], "domains": ["example.org"] } },
  "users": {
    "bob@example.org": { "password": "password1" },
    "carol@example.org": { "password": "marble-tractor-violet-orbit-71" },
    "dave@example.org": { "password": "qwerty", "weak_on_purpose": true }
  }
}"#;

// A weak password is a warning with file:line:col and the estimate; the file is still OK.
#[test]
fn check_warns_about_a_weak_password_and_says_how_many_guesses() {
    let dir = TempDir::new("passwords");
    let file = dir.write("three.json", SCENARIO);
    let file = file.to_str().expect("a UTF-8 temp path");
    let output = run_mailflow(&["check", file], b"").expect_success(true);
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "OK and one warning (carol's passphrase is strong, dave's is weak on purpose):\n{}", output.stdout);
    assert_eq!(lines[0], format!("{file}: OK"));
    let warning = lines[1];
    assert!(warning.starts_with(&format!("{file}:6:38: users[\"bob@example.org\"].password: warning: bob@example.org's password is weak")), "{warning}");
    assert!(warning.contains("guesses") && warning.contains("zxcvbn score 0 of 4") && warning.contains("10 a second"), "{warning}");
    assert!(!warning.contains("password1"), "the password itself is never printed: {warning}");
}

// The lesson files stay clean: every weak password in them is marked as meant.
#[test]
fn the_lesson_files_have_no_password_warnings() {
    let files: Vec<String> = std::fs::read_dir(crate::common::repo().join("scenarios"))
        .expect("the scenarios folder")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.display().to_string())
        .collect();
    let args: Vec<&str> = std::iter::once("check").chain(files.iter().map(String::as_str)).collect();
    let output = run_mailflow(&args, b"").expect_success(true);
    let warnings: Vec<&str> = output.stdout.lines().filter(|l| l.contains("password is weak")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}
