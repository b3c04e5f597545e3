//! Sender authentication wired into the mail hosts (issue 11), over real
//! sockets: the sending server DKIM-signs what its users submit, the
//! receiving MX checks SPF, DKIM and DMARC against the world's fake DNS,
//! and applies the From: domain's DMARC policy at the end of DATA.
//!
//! The honest message goes through the world (laptop → smtp.school.test →
//! mx1.example.org); the spoofs are sent by hand to port 25 from the
//! test's own address (127.0.0.1, outside the world), with
//! `From: principal@school.test`, as a student with swaks would.

use crate::imap_common::python;
use crate::smtp_common::*;

use mailflow::scenario::{Scenario, Service};
use mailflow::store::Flag;
use mailflow::trace::Kind;
use serde_json::{Value, json};

const BOB: &str = "bob@example.org";

/// The school's records, with a DMARC policy of `policy`.
fn school_records(policy: &str) -> Value {
    json!([
        { "type": "MX", "preference": 10, "exchange": "smtp.school.test" },
        { "type": "TXT", "text": "v=spf1 mx -all" },
        { "type": "TXT", "name": "_dmarc", "text": format!("v=DMARC1; p={policy}") },
    ])
}

/// alice-writes-to-bob with school.test publishing DMARC `policy`, and
/// `edit` for the rest.
fn lesson(policy: &str, edit: impl FnOnce(&mut Value)) -> Scenario {
    scenario_with("alice-writes-to-bob", |json| {
        json["domains"]["school.test"]["records"] = school_records(policy);
        edit(json);
    })
}

/// A forged message from the principal, as a spammer writes it.
fn spoof(subject: &str) -> Vec<u8> {
    format!(
        "From: Principal <principal@school.test>\r\nTo: bob@example.org\r\nSubject: {subject}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <spoof-{subject}@outside.test>\r\n\r\nPlease send me your password.\r\n"
    )
    .into_bytes()
}

fn notes(world: &mailflow::world::World, host: &str) -> Vec<String> {
    events(world).iter().filter(|e| e.kind == Kind::Note && e.from == host).map(|e| e.summary.clone()).collect()
}

fn header_block(raw: &[u8]) -> String {
    headers(raw)
}

/// Honest mail: signed by smtp.school.test, and at mx1 SPF, DKIM and DMARC
/// all pass. The DMARC record arrives by a `dns` step that replaces the
/// school's records, so DKIM passing also shows the key survived it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_mail_passes_spf_dkim_and_dmarc() {
    let scenario = scenario_with("alice-writes-to-bob", |json| {
        let steps = json["steps"].as_array_mut().expect("steps");
        steps[0]["at"] = json!("10s");
        steps.push(json!({ "at": "0s", "dns": { "domain": "school.test", "records": school_records("reject") } }));
    });
    let world = run(scenario).await;

    // The key is in DNS, where the receiver found it.
    let key = dns_answers(&world, "mailflow._domainkey.school.test", "TXT");
    assert!(key.iter().any(|(_, records)| records.iter().any(|r| r.contains("v=DKIM1; k=ed25519; p="))), "mx1 fetched the key: {key:?}\n{}", story(&world));

    let inbox = inbox(&world, "mx1.example.org", BOB);
    assert_eq!(inbox.len(), 1, "{}", story(&world));
    let headers = header_block(&inbox[0].raw);
    assert!(headers.contains("DKIM-Signature: ") && headers.contains("d=school.test"), "signed by school.test:\n{headers}");
    let results = headers.split("Authentication-Results: ").nth(1).expect("an Authentication-Results header");
    let results = results.split("\r\nReceived-SPF").next().unwrap_or(results);
    for word in ["spf=pass", "dkim=pass", "dmarc=pass"] {
        assert!(results.contains(word), "{word} in:\n{headers}");
    }
    assert!(headers.starts_with("Return-Path: <alice@school.test>\r\nAuthentication-Results: mx1.example.org"), "the verdict on top:\n{headers}");
    assert!(headers.contains("Received-SPF: pass"), "{headers}");
    assert_eq!(count_header(&inbox[0].raw, "DKIM-Signature"), 1, "signed once, by the first server");

    let school = notes(&world, "smtp.school.test");
    assert!(school.iter().any(|n| n.contains("signs the message with school.test's DKIM key")), "the signing is told: {school:#?}");
    let mx1 = notes(&world, "mx1.example.org");
    for expected in ["SPF: ", "DKIM: ", "DMARC: ", "takes the message"] {
        assert!(mx1.iter().any(|n| n.contains(expected)), "mx1 tells {expected:?}: {mx1:#?}");
    }
    let questions: Vec<String> =
        events(&world).iter().filter(|e| matches!(e.kind, Kind::DnsQuery { .. }) && e.from == "mx1.example.org").map(|e| e.summary.clone()).collect();
    for expected in ["asks DNS for school.test's SPF policy", "asks DNS for the DKIM public key at mailflow._domainkey.school.test"] {
        assert!(questions.iter().any(|n| n.contains(expected)), "mx1 {expected:?}: {questions:#?}");
    }
    // The checks' questions really reached the DNS server, from mx1.
    let asked: Vec<_> = events(&world)
        .into_iter()
        .filter(|e| {
            matches!(&e.kind, Kind::DnsQuery { name, rtype, .. } if name.starts_with("_dmarc.school.test") && rtype == "TXT") && e.from == "mx1.example.org"
        })
        .collect();
    assert!(!asked.is_empty(), "mx1 asks DNS for _dmarc.school.test:\n{}", story(&world));
}

/// A spoof to port 25 when school.test publishes p=reject: 550 5.7.1 at the
/// end of DATA, nothing stored, nothing queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoof_is_refused_when_the_domain_says_reject() {
    let world = start(lesson("reject", |_| {})).await;
    let reply = deliver_raw(addr(&world, "mx1.example.org", Service::Smtp), "principal@school.test", &[BOB], &spoof("reject")).await;
    assert_eq!(reply.code, 550, "{reply:?}\n{}", story(&world));
    assert!(reply.text().starts_with("550 5.7.1 ") && reply.text().contains("school.test"), "{reply:?}");
    assert!(inbox(&world, "mx1.example.org", BOB).is_empty(), "nothing stored");
    assert!(world.hosts["mx1.example.org"].store.list(BOB).iter().all(|f| f != "Junk"), "not even in Junk");
    assert!(world.hosts["mx1.example.org"].queue().is_empty(), "nothing queued");
    let mx1 = notes(&world, "mx1.example.org");
    assert!(mx1.iter().any(|n| n.contains("SPF: 127.0.0.1 is not among the addresses that 'mx' names for school.test")), "{mx1:#?}");
    assert!(mx1.iter().any(|n| n.contains("refuses the message")), "{mx1:#?}");
    world.shutdown().await;
}

/// p=quarantine: taken (250), into Bob's Junk folder with $Junk, which an
/// IMAP client sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoof_lands_in_junk_when_the_domain_says_quarantine() {
    // Bob's imaplib logs in before TLS: allowed here.
    let world = start(lesson("quarantine", |json| json["settings"] = serde_json::json!({ "tls": { "plaintext_login": true } }))).await;
    let reply = deliver_raw(addr(&world, "mx1.example.org", Service::Smtp), "principal@school.test", &[BOB], &spoof("quarantine")).await;
    assert_eq!(reply.code, 250, "{reply:?}\n{}", story(&world));
    let store = &world.hosts["mx1.example.org"].store;
    assert!(store.inbox(BOB).is_empty(), "not in the inbox");
    let junk = store.snapshot(BOB, "Junk").expect("a Junk folder").messages;
    assert_eq!(junk.len(), 1);
    assert!(junk[0].flags.contains(&Flag::Keyword("$Junk".into())), "{:?}", junk[0].flags);
    assert!(header_block(&junk[0].raw).contains("dmarc=fail"), "{}", header_block(&junk[0].raw));

    let script = r#"
import imaplib, sys
imap = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
imap.login("bob@example.org", "builder")
print(imap.list()[1])
typ, data = imap.select("Junk")
print(typ, data)
typ, data = imap.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (Authentication-Results)])")
print(data)
imap.logout()
"#;
    let out = python(script, addr(&world, "mx1.example.org", Service::Imap)).await;
    assert!(out.contains(r#"(\\HasNoChildren \\Junk) "/" "Junk""#) && out.contains("OK [b'1']"), "LIST marks Junk as \\Junk (RFC 6154): {out}");
    assert!(out.contains("$Junk") && out.contains("dmarc=fail"), "{out}");
    world.shutdown().await;
}

/// p=none: delivered to the inbox, with the failing results in its header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoof_is_delivered_with_its_results_when_the_domain_says_none() {
    let world = start(lesson("none", |_| {})).await;
    let reply = deliver_raw(addr(&world, "mx1.example.org", Service::Smtp), "principal@school.test", &[BOB], &spoof("none")).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let inbox = inbox(&world, "mx1.example.org", BOB);
    assert_eq!(inbox.len(), 1);
    let headers = header_block(&inbox[0].raw);
    for word in ["spf=fail", "dkim=none", "dmarc=fail"] {
        assert!(headers.contains(word), "{word}:\n{headers}");
    }
    assert!(headers.contains("Received-SPF: fail"), "{headers}");
    world.shutdown().await;
}

/// Checks off on mx1 (the "before" half of a lesson): the same spoof,
/// under p=reject, is delivered as it came, with no verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_checks_off_the_spoof_gets_through() {
    let world = start(lesson("reject", |json| json["hosts"]["mx1.example.org"]["auth_checks"] = json!(false))).await;
    let reply = deliver_raw(addr(&world, "mx1.example.org", Service::Smtp), "principal@school.test", &[BOB], &spoof("off")).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let inbox = inbox(&world, "mx1.example.org", BOB);
    assert_eq!(inbox.len(), 1);
    let headers = header_block(&inbox[0].raw);
    assert!(!headers.contains("Authentication-Results") && !headers.contains("Received-SPF"), "{headers}");
    assert!(!notes(&world, "mx1.example.org").iter().any(|n| n.contains("SPF")), "no checks are told");
    world.shutdown().await;
}

/// With `--data` the keys are kept: a second world publishes the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_keys_are_reused() {
    let dir = scratch_dir("auth-keys");
    let mut published = Vec::new();
    for _ in 0..2 {
        let options =
            mailflow::world::WorldOptions { subnet: random_subnet(), pace: mailflow::conductor::Pace::Fast, data_dir: Some(dir.clone()), ..Default::default() };
        let world = mailflow::world::World::start(scenario("alice-writes-to-bob"), options).await.expect("world");
        published.push(world.dkim.published());
        world.shutdown().await;
    }
    assert!(!published[0].is_empty() && published[0] == published[1], "{published:?}");
    assert!(dir.join("dkim").join("school.test.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A quarantined message whose first delivery could not be stored (the
/// Junk folder's disk broke) waits in the queue; the retry still puts it
/// in Junk, not in the inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_message_retried_from_the_queue_still_lands_in_junk() {
    const CAROL: &str = "carol@example.org";
    let dir = scratch_dir("auth-junk-retry");
    let scenario = lesson("quarantine", |json| {
        json["users"][CAROL] = json!({ "password": "carols-secret" });
    });
    let options =
        mailflow::world::WorldOptions { subnet: random_subnet(), pace: mailflow::conductor::Pace::Fast, data_dir: Some(dir.clone()), ..Default::default() };
    let world = mailflow::world::World::start(scenario, options).await.expect("world");
    let store = &world.hosts["mx1.example.org"].store;
    store.create(BOB, "Junk").expect("Bob's Junk folder");
    // Bob's Junk folder cannot take files: its cur/ is a plain file now.
    let junk = dir.join("mx1.example.org").join(BOB).join("Maildir").join(".Junk");
    std::fs::remove_dir_all(junk.join("cur")).expect("remove cur/");
    std::fs::write(junk.join("cur"), b"not a directory").expect("a file in its place");

    // While the test holds an activity the simulated clock cannot jump to
    // the retry, so the folder is mended before it.
    let hold = world.conductor.clock().activity();
    let reply = deliver_raw(addr(&world, "mx1.example.org", Service::Smtp), "principal@school.test", &[BOB, CAROL], &spoof("retry")).await;
    assert_eq!(reply.code, 250, "Carol's copy was stored: {reply:?}\n{}", story(&world));
    assert_eq!(world.hosts["mx1.example.org"].queue().len(), 1, "Bob's copy waits in the queue:\n{}", story(&world));
    std::fs::remove_file(junk.join("cur")).expect("remove the file");
    std::fs::create_dir(junk.join("cur")).expect("cur/ again");
    drop(hold);

    wait_for("the retry", &world, || world.hosts["mx1.example.org"].queue().is_empty().then_some(())).await;
    assert!(store.inbox(BOB).is_empty(), "not in Bob's inbox:\n{}", story(&world));
    let junk = store.snapshot(BOB, "Junk").expect("a Junk folder").messages;
    assert_eq!(junk.len(), 1, "{}", story(&world));
    assert!(junk[0].flags.contains(&Flag::Keyword("$Junk".into())), "{:?}", junk[0].flags);
    assert_eq!(store.snapshot(CAROL, "Junk").expect("Carol's Junk").messages.len(), 1, "Carol's copy went to Junk at once");
    world.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
