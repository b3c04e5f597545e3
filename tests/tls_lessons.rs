//! The TLS lessons end to end (issue 10): what an eavesdropper reads of a
//! plaintext hop and of a TLS hop, STARTTLS stripped by a man in the
//! middle (and `require_tls` stopping it), and a certificate the world's
//! clients refuse. Each runs its scenario file and checks the key events.
//!
//! Also: with no eavesdropper in the scenario nothing secret reaches the
//! trace, and the banner's TLS commands (curl over IMAPS and POP3S, the CA
//! saved as the banner says) work as printed.

use std::sync::Arc;
use std::time::Duration;

use mailflow::conductor::Pace;
use mailflow::scenario::Scenario;
use mailflow::trace::{Direction, Event, HandshakeStep, Kind, QueueState};
use mailflow::world::{World, WorldOptions};
use serde_json::{Value, json};

use crate::common::{GENEROUS, Net, TempDir, repo};

/// Loads `scenarios/NAME.json`, lets `edit` change its JSON.
fn lesson(name: &str, edit: impl FnOnce(&mut Value)) -> Scenario {
    let path = repo().join("scenarios").join(format!("{name}.json"));
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the lesson file")).expect("JSON");
    edit(&mut json);
    Scenario::parse(&path.display().to_string(), &json.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

async fn start(scenario: Scenario) -> Arc<World> {
    let net = Net::random();
    let options = WorldOptions { subnet: net.subnet(), pace: Pace::Fast, ..Default::default() };
    World::start(scenario, options).await.unwrap_or_else(|e| panic!("the world does not start: {e}"))
}

fn events(world: &World) -> Vec<Event> {
    world.trace.since(0).iter().map(|e| (**e).clone()).collect()
}

fn story(world: &World) -> String {
    events(world).iter().map(|e| format!("{} {}→{} {}", e.seq, e.from, e.to, e.summary)).collect::<Vec<_>>().join("\n")
}

/// Waits (real time, bounded) until an event matches.
async fn wait_for(world: &World, what: &str, check: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        if let Some(found) = events(world).into_iter().find(|e| check(e)) {
            return found;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("never saw {what}:\n{}", story(world));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn overheard(e: &Event) -> Option<(&Direction, &str, Option<&mailflow::trace::Captured>)> {
    match &e.kind {
        Kind::Eavesdropped { direction, raw, captured } => Some((direction, raw.as_str(), captured.as_ref())),
        _ => None,
    }
}

fn between(e: &Event, a: &str, b: &str) -> bool {
    (e.from == a && e.to == b) || (e.from == b && e.to == a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eavesdropper_reads_the_plaintext_password_and_nothing_of_the_tls_hop() {
    let world = start(lesson("tls-eavesdropper", |_| {})).await;
    world.run_to_end().await;
    let all = events(&world);

    // The old laptop: no STARTTLS, AUTH PLAIN in plaintext, decoded.
    let stolen: Vec<&Event> =
        all.iter().filter(|e| between(e, "alice-old-laptop", "smtp.school.test") && overheard(e).is_some_and(|o| o.2.is_some())).collect();
    assert_eq!(stolen.len(), 1, "{}", story(&world));
    let (_, raw, captured) = overheard(stolen[0]).unwrap();
    let captured = captured.unwrap();
    assert_eq!((captured.mechanism.as_str(), captured.user.as_str(), captured.password.as_str()), ("AUTH PLAIN", "alice@school.test", "wonderland"));
    assert!(raw.starts_with("AUTH PLAIN "), "the raw line as it crossed: {raw}");
    assert!(stolen[0].summary.contains("wonderland") && stolen[0].tls.is_none());
    // The message text too, and the transcript still masks the login.
    assert!(all.iter().any(|e| between(e, "alice-old-laptop", "smtp.school.test") && overheard(e).is_some_and(|o| o.1.contains("my password is on the wire"))));
    let auth_line = all.iter().find(|e| e.from == "alice-old-laptop" && matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("AUTH PLAIN")));
    assert!(auth_line.is_some_and(|e| matches!(&e.kind, Kind::Line { line, .. } if !line.contains(&captured_token()))), "{}", story(&world));

    // The new laptop: plaintext until STARTTLS, then only TLS records.
    let new: Vec<&Event> = all.iter().filter(|e| between(e, "alice-laptop", "smtp.school.test")).collect();
    let finished = new.iter().position(|e| matches!(e.kind, Kind::TlsHandshake { step: HandshakeStep::Finished, .. })).expect("a TLS handshake");
    let heard: Vec<&str> = new[..finished].iter().filter_map(|e| overheard(e).map(|o| o.1)).collect();
    assert!(heard.iter().any(|r| r.starts_with("EHLO")) && heard.contains(&"STARTTLS"), "before TLS the eavesdropper reads: {heard:?}");
    assert!(new[finished..].iter().all(|e| overheard(e).is_none()), "nothing readable after the handshake:\n{}", story(&world));
    assert!(new.iter().all(|e| overheard(e).is_none_or(|o| o.2.is_none())), "no password captured over TLS");
    let records = new[finished..]
        .iter()
        .filter(|e| matches!(&e.kind, Kind::TlsRecords { records, .. } if records.iter().any(|r| r.content_type == "application_data")))
        .count();
    assert!(records > 0, "the eavesdropper sees encrypted records");
    assert!(new.iter().any(|e| matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("AUTH")) && e.tls.is_some()), "the login went encrypted");

    // No eavesdropper on the other links (relay, Bob's IMAP).
    assert!(all.iter().filter(|e| overheard(e).is_some()).all(|e| e.from.starts_with("alice") || e.to.starts_with("alice")));
    // Both messages arrived.
    assert_eq!(world.net.devices.messages("bob-phone").len(), 2, "{}", story(&world));
    world.shutdown().await;
}

/// The base64 of Alice's AUTH PLAIN: never in a transcript line.
fn captured_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode("\0alice@school.test\0wonderland")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_eavesdropper_no_secret_reaches_the_trace() {
    // The same plaintext login, with nobody listening.
    let world = start(lesson("tls-eavesdropper", |json| {
        json.as_object_mut().unwrap().remove("eavesdropper");
    }))
    .await;
    world.run_to_end().await;
    let all = events(&world);
    assert!(
        all.iter().any(|e| e.from == "alice-old-laptop" && matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("AUTH PLAIN"))),
        "the plaintext login happened"
    );
    assert!(all.iter().all(|e| overheard(e).is_none()));
    let json = serde_json::to_string(&all).unwrap();
    for secret in ["wonderland", "builder", &captured_token()] {
        assert!(!json.contains(secret), "{secret} leaked into the trace");
    }
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_stripped_falls_back_to_plaintext_unless_the_domain_requires_tls() {
    let world = start(lesson("tls-starttls-stripping", |_| {})).await;
    let _steps = world.start_steps();

    // example.org: the man in the middle rewrites STARTTLS, the relay goes on in plaintext.
    let tampered = wait_for(&world, "the STARTTLS line rewritten", |e| {
        between(e, "smtp.school.test", "mx.example.org") && matches!(&e.kind, Kind::Tampered { forwarded, .. } if forwarded.ends_with("XXXXXXXA"))
    })
    .await;
    assert!(tampered.summary.contains("man in the middle"), "{}", tampered.summary);
    wait_for(&world, "bob's message delivered", |e| matches!(&e.kind, Kind::Delivered { mailbox, .. } if mailbox == "bob@example.org")).await;
    let relay: Vec<Event> = events(&world).into_iter().filter(|e| between(e, "smtp.school.test", "mx.example.org")).collect();
    assert!(relay.iter().any(|e| matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("MAIL FROM")) && e.tls.is_none()), "relayed in plaintext");
    assert!(!relay.iter().any(|e| matches!(&e.kind, Kind::Line { line, .. } if line == "STARTTLS")), "the sender never asked for TLS");
    assert!(relay.iter().any(|e| overheard(e).is_some_and(|o| o.1.contains("the answers are in the attachment"))), "the eavesdropper reads the message");

    // bank.test requires TLS: same trick, but the sender refuses and keeps the message.
    wait_for(&world, "the STARTTLS line to bank.test rewritten", |e| between(e, "smtp.school.test", "mx.bank.test") && matches!(e.kind, Kind::Tampered { .. }))
        .await;
    let refusal = wait_for(&world, "the relay's refusal", |e| e.from == "smtp.school.test" && e.summary.contains("no plaintext fallback")).await;
    assert!(refusal.summary.contains("mx.bank.test"), "{}", refusal.summary);
    wait_for(
        &world,
        "carol's message deferred",
        |e| matches!(&e.kind, Kind::Queue { state: QueueState::Deferred, recipients, .. } if recipients.iter().any(|r| r == "carol@bank.test")),
    )
    .await;
    let bank: Vec<Event> = events(&world).into_iter().filter(|e| between(e, "smtp.school.test", "mx.bank.test")).collect();
    assert!(!bank.iter().any(|e| matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("MAIL"))), "nothing sent to the bank in plaintext");
    assert!(!bank.iter().any(|e| overheard(e).is_some_and(|o| o.1.contains("call me about my account"))));
    assert!(world.hosts["mx.bank.test"].store.inbox("carol@bank.test").is_empty());
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused_by_the_relay_and_the_phone() {
    let world = start(lesson("tls-bad-certificate", |_| {})).await;
    let _steps = world.start_steps();
    let relay = wait_for(&world, "the relay's failed check", |e| {
        e.from == "smtp.school.test" && e.to == "mx1.example.org" && matches!(e.kind, Kind::TlsHandshake { step: HandshakeStep::Failed, .. })
    })
    .await;
    assert!(relay.summary.contains("expired"), "{}", relay.summary);
    let phone =
        wait_for(&world, "the phone's failed check", |e| e.from == "bob-phone" && matches!(e.kind, Kind::TlsHandshake { step: HandshakeStep::Failed, .. }))
            .await;
    assert!(phone.summary.contains("expired"), "{}", phone.summary);
    let failure = wait_for(&world, "the phone's failure", |e| e.from == "bob-phone" && matches!(e.kind, Kind::Failure { .. })).await;
    assert!(failure.summary.contains("password was not sent"), "{}", failure.summary);
    let all = events(&world);
    assert!(!all.iter().any(|e| e.from == "bob-phone" && matches!(&e.kind, Kind::Line { line, .. } if line.contains("LOGIN"))), "no LOGIN:\n{}", story(&world));
    assert!(!all.iter().any(|e| between(e, "smtp.school.test", "mx1.example.org") && matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("MAIL"))));
    assert!(world.hosts["mx1.example.org"].store.inbox("bob@example.org").is_empty());
    world.shutdown().await;
}

/// The banner's CA line and its curl commands for IMAPS and POP3S, run as
/// printed (`sh -c`), on a world that serves the implicit-TLS ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banners_tls_commands_work_as_printed() {
    let world = start(lesson("alice-writes-to-bob", |json| {
        json["hosts"]["mx1.example.org"]["services"] = json!(["smtp", "imap", "imaps", "pop3s"]);
        json["steps"] = json!([{ "at": "0s", "send": { "client": "alice-laptop", "to": ["bob@example.org"], "subject": "Over TLS", "body": "Hi Bob\n" } }]);
    }))
    .await;
    world.run_to_end().await;
    let banner = world.banner();
    let command = |start: &str| {
        banner.lines().map(str::trim).find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no {start:?} in the banner:\n{banner}")).to_string()
    };
    let save_ca = command("printf '%s\\n'");
    let dir = TempDir::new("banner-tls");
    for (start, expect) in [("curl --cacert ca.pem 'imaps://", "Subject: Over TLS"), ("curl --cacert ca.pem 'pop3s://", "Subject: Over TLS")] {
        let line = command(start);
        let out = tokio::process::Command::new("sh").args(["-c", &format!("{save_ca} && {line}")]).current_dir(dir.path()).kill_on_drop(true).output();
        let out = tokio::time::timeout(GENEROUS, out).await.expect("in time").expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains(expect), "{line}\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(banner.contains("openssl s_client -starttls smtp -connect") && banner.contains("-CAfile ca.pem"), "{banner}");
    world.shutdown().await;
}
