//! The account lessons (issue 12) end to end: the key events of each.
//! A guessing robot (`attack` steps) against a server that does nothing
//! about wrong passwords (a weak password falls, a passphrase never
//! does), then against one that slows down and locks (the attack stalls).

use crate::imap_common::start;
use mailflow::scenario::Scenario;
use mailflow::trace::{AttackOutcome, Event, Kind};

async fn run(file: &str) -> Vec<Event> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(file);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let world = start(scenario).await;
    world.run_to_end().await;
    world.trace.since(0).iter().map(|e| (**e).clone()).collect()
}

fn story(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| !matches!(e.kind, Kind::Line { .. }))
        .map(|e| format!("{} {} {}→{} {}", e.seq, e.sim_ms, e.from, e.to, e.summary))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The attack events: (target, outcome, guesses, simulated seconds, summary).
fn attacks(events: &[Event]) -> Vec<(String, AttackOutcome, u32, u64, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Attack { target, outcome, guesses, sim_seconds } => Some((target.clone(), *outcome, *guesses, *sim_seconds, e.summary.clone())),
            _ => None,
        })
        .collect()
}

/// No event of the run shows a secret of `passwords` in the clear.
fn assert_no_secret(events: &[Event], passwords: &[&str]) {
    for event in events {
        let json = serde_json::to_string(event).expect("events are JSON");
        for secret in passwords {
            assert!(!json.contains(secret), "event {} shows a password: {json}", event.seq);
        }
    }
}

// Without throttling, "sunshine" (46th on the list) falls at guess 46, one
// guess a simulated second; Carol's passphrase survives the whole list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_password_falls_and_a_passphrase_never_does() {
    let events = run("password-guessing.json").await;
    let found = attacks(&events);
    assert_eq!(found.len(), 2, "{}", story(&events));
    let (target, outcome, guesses, seconds, summary) = &found[0];
    assert_eq!((target.as_str(), *outcome, *guesses, *seconds), ("bob@example.org", AttackOutcome::Cracked, 46, 45), "{}", story(&events));
    assert_eq!(summary, "robot.botnet.test cracked bob@example.org's password after 46 guesses in 45 simulated seconds");
    let tries = events.iter().filter(|e| e.summary.starts_with("robot.botnet.test guess ") && e.summary.contains("bob@example.org")).count();
    assert_eq!(tries, 46, "each try is an event of its own");
    let list = mailflow::world::attack::common_passwords().count() as u32;
    let (target, outcome, guesses, _, _) = &found[1];
    assert_eq!((target.as_str(), *outcome, *guesses), ("carol@example.org", AttackOutcome::Exhausted, list), "{}", story(&events));
    // The password that worked is masked; the wrong guesses (from a public list) are shown.
    assert!(events.iter().any(|e| e.summary.contains("guess 46/") && e.summary.contains("\"********\": it works!")));
    assert!(events.iter().any(|e| e.summary.contains("guess 1/") && e.summary.contains("\"123456\"")));
    assert_no_secret(&events, &["sunshine", "marble-tractor-violet-orbit-71"]);
}

// With throttling the answers slow down and the 5th failure locks the
// account: the robot stops long before "sunshine".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_stalls_the_attack() {
    let events = run("password-lockout.json").await;
    let found = attacks(&events);
    assert_eq!(found.len(), 1, "{}", story(&events));
    let (target, outcome, guesses, seconds, summary) = &found[0];
    assert_eq!((target.as_str(), *outcome, *guesses), ("bob@example.org", AttackOutcome::Locked, 5), "{}", story(&events));
    assert_eq!(summary, &format!("the attack on bob@example.org was stopped by the lock after 5 guesses ({seconds} simulated seconds)"));
    // The delays (1 + 2 + 4 + 8 s at least, on top of the robot's own pace) show in simulated time.
    assert!(*seconds >= 4 + 1 + 2 + 4 + 8, "{seconds} s: the server's delays should show in simulated time\n{}", story(&events));
    assert!(!events.iter().any(|e| e.summary.contains("it works!")), "{}", story(&events));
    assert_no_secret(&events, &["sunshine"]);
}

// A phished password is useless against a two-factor account: SMTP answers
// 534 5.7.9, IMAP and POP3 say an app password is required; the password
// never shows in the story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phished_password_opens_nothing_on_a_two_factor_account() {
    let events = run("phished-password.json").await;
    let found = attacks(&events);
    let outcomes: Vec<(AttackOutcome, u32)> = found.iter().map(|a| (a.1, a.2)).collect();
    assert_eq!(outcomes, vec![(AttackOutcome::AppPasswordRequired, 1); 3], "{}", story(&events));
    let replies = |text: &str| events.iter().filter(|e| matches!(&e.kind, Kind::Line { line, .. } if line.contains(text))).count();
    assert_eq!(replies("534 5.7.9 Application-specific password required"), 1, "{}", story(&events));
    assert!(replies("NO [AUTHENTICATIONFAILED] Application-specific password required") == 1, "the IMAP hint:\n{}", story(&events));
    assert!(replies("-ERR [AUTH] Application-specific password required") == 1, "the POP3 hint:\n{}", story(&events));
    assert!(!events.iter().any(|e| e.summary.contains("it works!")));
    assert_no_secret(&events, &["violet-harbor-lantern-1987", "qzxkmvnprtwbhcjd", "lfgsyueodiakwnbv", "JBSWY3DPEHPK3PXP"]);
}

// One app password per device: the lost laptop's is revoked, its next
// login fails; the phone, with its own app password, still reads the mail.
// (The * BYE that ends the laptop's open IDLE session is pushed by the
// server on its own time, not the simulated clock's, so this run-to-end
// test does not time it; tests/accounts.rs checks it with imaplib.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_app_password_cuts_off_one_device_only() {
    let events = run("lost-device.json").await;
    let seq_of =
        |what: &str, test: &dyn Fn(&Event) -> bool| events.iter().find(|e| test(e)).map(|e| e.seq).unwrap_or_else(|| panic!("no {what}:\n{}", story(&events)));
    let idling = seq_of("the laptop idling", &|e| e.from == "bob-laptop" && e.summary.contains("stays connected to mx1.example.org and waits for news"));
    let revoked = seq_of("revocation", &|e| e.summary == "bob@example.org revokes the app password \"bob-laptop\" on mx1.example.org");
    let refused = seq_of("refused login", &|e| e.from == "bob-laptop" && e.summary.contains("could not read its mail: login refused"));
    let phone = seq_of("the phone's mail", &|e| e.from == "bob-phone" && e.summary.starts_with("bob-phone shows 1 new message: \"Dinner\""));
    assert!(idling < revoked && revoked < refused && refused < phone, "{idling} {revoked} {refused} {phone}:\n{}", story(&events));
    assert_no_secret(&events, &["quiet-otter-brings-47-lanterns", "mhqwzrtkplvbxnse", "ydcfjgaoeiuwbrkt", "KRSXG5CTMVRXEZLU"]);
}

// An attack or a revocation that points nowhere is an error with its field path.
#[test]
fn attack_and_revoke_steps_are_checked() {
    let text = r#"{
  "title": "Typos",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] } },
  "users": { "bob@example.org": { "password": "correct horse battery staple", "app_passwords": { "bob-phone": "abcdefghijklmnop" } } },
  "steps": [
    { "at": "0s", "attack": { "from": "nowhere", "target": "bob@example.org" } },
    { "at": "1s", "revoke": { "user": "bob@example.org", "app_password": "bob-tablet" } }
  ]
}"#;
    let err = Scenario::parse("typos.json", text).expect_err("three problems");
    let lines: Vec<String> = err.problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    assert_eq!(
        lines,
        [
            "steps[0].attack.from: found \"nowhere\", expected a host (\"mx1.example.org\") or a client (none defined)",
            "steps[0].attack.target: host \"mx1.example.org\" does not run \"imap\"; add it to its `services`",
            "steps[1].revoke.app_password: found \"bob-tablet\", expected one of bob@example.org's app passwords: \"bob-phone\"",
        ],
        "{err}"
    );
}
