//! The real `mailflow` binary, as a teacher uses it from a terminal.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;

use crate::common::{GENEROUS, Net, Output, TempDir, default_scenario_file, dig_at, mailflow, run_mailflow, short_lines};

/// Runs `mailflow <command> FILE --subnet <a fresh block> ARGS...`; if the
/// block's DNS port is taken (another test process), tries another block.
fn run_world(command: &str, file: &str, args: &[&str], stdin: &[u8]) -> (Output, Net) {
    for _ in 0..5 {
        let net = Net::random();
        let subnet = net.to_string();
        let mut all = vec![command, file, "--subnet", &subnet];
        all.extend_from_slice(args);
        let output = run_mailflow(&all, stdin);
        if !output.stderr.contains("cannot listen for DNS") {
            return (output, net);
        }
    }
    panic!("no free loopback block for `mailflow {command}` after 5 tries");
}

/// The story part of `run`'s output: everything after the banner.
fn story(stdout: &str) -> &str {
    let start = stdout.find("00:00:00.000  world  SIM").unwrap_or_else(|| panic!("no story in:\n{stdout}"));
    &stdout[start..]
}

// `check` on a good file says OK and succeeds, so it can guard a CI job or a git hook.
#[test]
fn check_accepts_a_good_file() {
    let output = run_mailflow(&["check", "scenarios/alice-writes-to-bob.json"], b"").expect_success(true);
    assert_eq!(output.stdout, "scenarios/alice-writes-to-bob.json: OK\n");
}

// `check` on bad files prints `file:line:col: path: message` for each problem and fails.
#[test]
fn check_reports_problems_and_fails() {
    let dir = TempDir::new("check");
    let bad = dir.write(
        "bad.json",
        r#"{
  "title": "Typo in a service",
  "domains": { "example.org": {} },
  "hosts": {
    "mx1.example.org": { "services": ["smpt"] }
  }
}"#,
    );
    let bad = bad.to_str().expect("a UTF-8 temp path");
    let output = run_mailflow(&["check", "scenarios/alice-writes-to-bob.json", bad], b"").expect_success(false);
    let expected = format!(
        "scenarios/alice-writes-to-bob.json: OK\n{bad}:5:44: hosts[\"mx1.example.org\"].services[0]: unknown variant `smpt`, expected one of `smtp`, `submission`, `imap`, `pop3`, `submissions`, `imaps`, `pop3s`\n"
    );
    assert_eq!(output.stdout, expected);
}

// `schema` prints the JSON Schema an editor can use for completion and checks.
#[test]
fn schema_prints_json() {
    let output = run_mailflow(&["schema"], b"").expect_success(true);
    let schema: serde_json::Value = serde_json::from_str(&output.stdout).expect("the schema is JSON");
    assert!(schema["properties"]["hosts"].is_object(), "{schema:#}");
    assert!(schema["properties"]["steps"].is_object(), "{schema:#}");
}

// `list` shows each scenario's title and its place in the lesson index
// (level, minutes, what it teaches), and points at `check` for broken ones.
#[test]
fn list_shows_titles() {
    let output = run_mailflow(&["list", "scenarios"], b"").expect_success(true);
    let line = output.stdout.lines().find(|l| l.starts_with("scenarios/alice-writes-to-bob.json")).expect("the default scenario is listed");
    assert!(line.contains(" Alice writes to Bob  [first; 10 min; the whole journey of one message"), "{line:?}");

    let dir = TempDir::new("list");
    dir.write("a-good.json", &std::fs::read_to_string(default_scenario_file()).expect("read the default scenario"));
    dir.write("b-broken.json", "{ \"title\": ");
    dir.write("notes.txt", "not a scenario");
    let folder = dir.path().to_str().expect("a UTF-8 temp path");
    let output = run_mailflow(&["list", folder], b"").expect_success(true);
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", output.stdout);
    assert!(lines[0].contains("a-good.json") && lines[0].contains(" Alice writes to Bob  [first; "), "{lines:?}");
    assert!(lines[1].contains("b-broken.json") && lines[1].contains("(has errors: run `mailflow check"), "{lines:?}");
}

// `run --fast` prints the banner and the whole story (submission, MX lookup, relay, delivery), records it, and `replay` tells the same story.
#[test]
fn run_fast_records_and_replay_repeats_the_story() {
    let dir = TempDir::new("run");
    let trace = dir.join("lesson.jsonl");
    let trace = trace.to_str().expect("a UTF-8 temp path");
    let (run, net) = run_world("run", "scenarios/alice-writes-to-bob.json", &["--fast", "--record", trace], b"");
    let run = run.expect_success(true);
    for expected in [
        "mailflow — Alice writes to Bob".to_string(),
        format!("World {net} — ports: standard port + 10000"),
        // Aligned columns: names padded to the longest ("smtp.school.test"), addresses to 15.
        format!("\n  {:16}  {:15}  DNS 10053 (UDP and TCP)\n", "dns", net.dns().to_string()),
        format!("\n  {:16}  {:15}  smtp 10025, imap 10143, pop3 10110\n", "mx1.example.org", net.addr(3).to_string()),
        format!("dig @{} -p 10053 MX example.org", net.dns()),
        "smtp.school.test → dns  DNS  smtp.school.test asks DNS: which servers take mail for example.org? (MX)".to_string(),
        "DNS answers: mx1.example.org (preference 10), mx2.example.org (preference 20)".to_string(),
        format!("mx1.example.org is at {}", net.addr(3)),
        "alice-laptop → smtp.school.test  SMTP  client asks to send the message itself".to_string(),
        "smtp.school.test hands SMTP-".to_string(),
        "the message lands in bob@example.org's mailbox on mx1.example.org".to_string(),
        "DNS answers: \"v=spf1 mx -all\"".to_string(),
        "all steps are done and nothing is pending".to_string(),
    ] {
        assert!(run.stdout.contains(&expected), "missing {expected:?} in:\n{}", run.stdout);
    }
    let replay = run_mailflow(&["replay", trace], b"").expect_success(true);
    assert_eq!(replay.stdout, story(&run.stdout), "replay must print the story exactly as the run did");
}

// `run` on a broken file shows the problems and fails before building anything.
#[test]
fn run_rejects_a_bad_file() {
    let dir = TempDir::new("run-bad");
    let bad = dir.write("bad.json", "{ \"title\": \"No hosts\", \"domains\": {} }");
    let bad = bad.to_str().expect("a UTF-8 temp path");
    let (output, _) = run_world("run", bad, &["--fast"], b"");
    let output = output.expect_success(false);
    assert_eq!(output.stderr.trim_end(), format!("{bad}:1:38: (top level): missing field `hosts`"));
    assert!(output.stdout.is_empty(), "{}", output.stdout);
}

// `replay` of a file that is not there fails with a message naming it.
#[test]
fn replay_of_a_missing_file_fails() {
    let output = run_mailflow(&["replay", "/nonexistent/mailflow/trace.jsonl"], b"").expect_success(false);
    assert!(output.stderr.contains("/nonexistent/mailflow/trace.jsonl"), "{}", output.stderr);
}

// `run --step` without a terminal: the Enters given step some hops, then end of input plays the rest.
#[test]
fn run_step_finishes_when_stdin_closes() {
    let (output, _) = run_world("run", "scenarios/alice-writes-to-bob.json", &["--step"], b"\n\n\n");
    let output = output.expect_success(true);
    assert!(output.stderr.contains("Step mode: press Enter to let the next hop move."), "{}", output.stderr);
    assert!(output.stdout.contains("lands in bob@example.org's mailbox"), "{}", output.stdout);
    assert!(output.stdout.contains("all steps are done and nothing is pending"), "{}", output.stdout);
}

/// A child process killed when the test ends, pass or fail.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mailflow serve FILE --fast` on a fresh block and waits for its
/// banner; returns the child, its block and its stdout lines as they come.
fn start_serve() -> (KillOnDrop, Net, mpsc::Receiver<String>) {
    for _ in 0..5 {
        let net = Net::random();
        let mut child = KillOnDrop(
            mailflow()
                .args(["serve", "scenarios/alice-writes-to-bob.json", "--fast", "--subnet", &net.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start mailflow serve"),
        );
        let (lines_tx, lines) = mpsc::channel();
        let stdout = child.0.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The banner is printed once the DNS server listens.
        loop {
            match lines.recv_timeout(GENEROUS) {
                Ok(line) if line == "Ask the fake DNS yourself:" => return (child, net, lines),
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("`mailflow serve` printed no banner"),
                Err(mpsc::RecvTimeoutError::Disconnected) => break, // it exited: maybe the block was taken
            }
        }
        let status = child.0.wait().expect("wait for mailflow serve");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().expect("piped stderr"), &mut stderr).ok();
        assert!(stderr.contains("cannot listen for DNS"), "`mailflow serve` ended ({status}) before its banner:\n{stderr}");
    }
    panic!("no free loopback block for `mailflow serve` after 5 tries");
}

// `serve` keeps the world up for the class's own clients: dig gets the MX records, in the order the scenario lists them.
#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_dig() {
    let (child, net, lines) = start_serve();
    let mx = dig_at(&net, &["+short", "MX", "example.org"]).await;
    assert_eq!(short_lines(&mx), vec!["10 mx1.example.org.", "20 mx2.example.org."]);
    // The outside question shows up in the served story, under the asker's address.
    let question = "asks DNS: which servers take mail for example.org? (MX)";
    loop {
        match lines.recv_timeout(GENEROUS) {
            Ok(line) if line.contains(question) && line.contains(" → dns  DNS  127.") => break,
            Ok(_) => continue,
            Err(err) => panic!("dig's question never appeared in the story: {err}"),
        }
    }
    drop(child);
}

/// How often `needle` occurs in `haystack`.
fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

// A busy DNS port is reported with its cause once, for `run` and for `serve` (which builds the world for the
// web page), not "…: Address already in use (os error 98): … (os error 98)".
#[test]
fn a_busy_dns_port_prints_its_cause_once() {
    for command in ["run", "serve"] {
        let net = Net::random();
        // Hold the world's DNS address (UDP, as the server binds it first) so the world cannot start.
        let _squatter = std::net::UdpSocket::bind((net.dns(), crate::common::DNS_PORT)).expect("bind the DNS address first");
        let output = run_mailflow(&[command, "scenarios/alice-writes-to-bob.json", "--fast", "--subnet", &net.to_string()], b"").expect_success(false);
        let expected = format!(
            "mailflow: cannot build the world of scenarios/alice-writes-to-bob.json: cannot listen for DNS on {}:10053: Address already in use (os error 98)",
            net.dns()
        );
        assert_eq!(output.stderr.trim_end(), expected, "{command}");
    }
}

// The same for a mail service's port: one "cannot listen", one cause, then the hint.
#[test]
fn a_busy_service_port_prints_its_cause_once() {
    let net = Net::random();
    // Every service port of every host address the default world hands out: whichever it binds first is taken.
    let squatters: Vec<std::net::TcpListener> =
        (2..=8).flat_map(|n| [10025, 10587, 10143, 10110].map(|port| (net.addr(n), port))).filter_map(|addr| std::net::TcpListener::bind(addr).ok()).collect();
    assert!(!squatters.is_empty());
    let output = run_mailflow(&["run", "scenarios/alice-writes-to-bob.json", "--fast", "--subnet", &net.to_string()], b"").expect_success(false);
    let stderr = output.stderr.trim_end();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!((count(stderr, "cannot listen for"), count(stderr, "Address already in use (os error 98)")), (1, 1), "{stderr}");
    assert!(stderr.ends_with("Address already in use (os error 98) (is another mailflow running? try --subnet)"), "{stderr}");
}

// A missing trace file: its name and the cause, once each.
#[test]
fn replay_of_a_missing_file_prints_its_cause_once() {
    let output = run_mailflow(&["replay", "/nonexistent/mailflow/trace.jsonl"], b"").expect_success(false);
    assert_eq!(output.stderr.trim_end(), "mailflow: /nonexistent/mailflow/trace.jsonl: No such file or directory (os error 2)");
}

// A scenario saved as Latin-1: `check` names the line and column of the first bad byte, not 0:0.
#[test]
fn check_names_the_first_byte_that_is_not_utf8() {
    let dir = TempDir::new("latin1");
    let file = dir.join("latin1.json");
    std::fs::write(&file, b"{\n  \"title\": \"Caf\xE9\",\n  \"domains\": {}, \"hosts\": {}\n}").expect("write the file");
    let file = file.to_str().expect("a UTF-8 temp path");
    let output = run_mailflow(&["check", file], b"").expect_success(false);
    assert!(output.stdout.starts_with(&format!("{file}:2:16: (top level): the file is not UTF-8 text: byte 0xE9")), "{}", output.stdout);
}
