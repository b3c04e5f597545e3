//! The lesson scenarios of `scenarios/`, run for real on loopback: each
//! test runs one scenario to its end and checks the moments the lesson is
//! about (in the trace) and where the mail ended up (in the mailboxes).

use crate::smtp_common;

use mailflow::trace::{Kind, QueueState};
use serde_json::json;
use smtp_common::*;

/// The SMTP lessons: each explains itself to the class.
const LESSONS: [&str; 7] = ["mx-failover", "no-mx-a-fallback", "unknown-recipient-bounce", "greylisting", "three-domains", "null-mx", "slow-server"];

/// Every scenario file in `scenarios/` passes `mailflow check`'s checks,
/// and every SMTP lesson has a description, teacher notes and explained steps.
#[test]
fn every_scenario_file_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("scenarios")).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            mailflow::scenario::Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
    }
    assert!(checked > LESSONS.len(), "found only {checked} scenarios");
    for name in LESSONS {
        let lesson = scenario(name);
        assert!(!lesson.description.is_empty() && !lesson.teacher_notes.is_empty(), "{name}: needs a description and teacher notes");
        assert!(lesson.steps.iter().any(|s| s.explain.is_some() && s.send.is_some()), "{name}: explain the sending step");
    }
}

/// MX failover: mx1 refuses, the backup mx2 queues, and hands the message
/// to mx1 once it is back up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_failover_goes_through_the_backup() {
    let world = run(scenario("mx-failover")).await;

    assert!(!connect_failures(&world, "smtp.school.test", "mx1.example.org").is_empty(), "the sender first tries mx1, which refuses:\n{}", story(&world));
    let handed = queue_events(&world, "smtp.school.test", QueueState::Relayed);
    assert!(handed.iter().any(|e| e.summary.contains("mx2.example.org")), "the sender hands the message to mx2:\n{}", story(&world));
    let deferred = queue_events(&world, "mx2.example.org", QueueState::Deferred);
    assert!(!deferred.is_empty(), "mx2 queues it while mx1 is down:\n{}", story(&world));
    assert!(!connect_failures(&world, "mx2.example.org", "mx1.example.org").is_empty(), "mx2's first try fails too");

    let up =
        events(&world).into_iter().find(|e| matches!(&e.kind, Kind::HostState { host, up: true } if host == "mx1.example.org")).expect("mx1 comes back up");
    let relayed = queue_events(&world, "mx2.example.org", QueueState::Relayed);
    assert_eq!(relayed.len(), 1, "mx2 passes it on once:\n{}", story(&world));
    assert!(relayed[0].seq > up.seq && relayed[0].sim_ms >= up.sim_ms && up.sim_ms > 0, "only after mx1 is up again");
    let delivered = deliveries(&world, "bob@example.org");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].from, "mx1.example.org");

    let inbox = inbox(&world, "mx1.example.org", "bob@example.org");
    assert_eq!(inbox.len(), 1);
    let headers = headers(&inbox[0].raw);
    for server in ["smtp.school.test", "mx2.example.org", "mx1.example.org"] {
        assert!(headers.contains(&format!("by {server} ")), "a Received header by {server}:\n{headers}");
    }
    assert_eq!(count_header(&inbox[0].raw, "Received"), 3, "{headers}");
    assert!(headers.starts_with("Return-Path: <alice@school.test>\r\n"), "{headers}");
    assert!(world.hosts["mx2.example.org"].queue().is_empty(), "mx2's queue is empty at the end");
    assert!(world.hosts["mx2.example.org"].store.total() == 0, "a backup keeps no mailboxes");
}

/// A domain without MX gets its mail at its own address (implicit MX).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mx_falls_back_to_the_a_record() {
    let world = run(scenario("no-mx-a-fallback")).await;

    let mx = dns_answers(&world, "tiny.test", "MX");
    assert!(!mx.is_empty(), "the sender asks for MX records:\n{}", story(&world));
    assert!(mx.iter().all(|(rcode, records)| rcode == "No Error" && records.is_empty()), "the name exists but has no MX records: {mx:?}");
    let a = dns_answers(&world, "tiny.test", "A");
    let address = world.node("tiny.test").expect("host tiny.test").address.to_string();
    assert!(a.iter().any(|(_, records)| records.iter().any(|r| r.contains(&address))), "then for the A record of tiny.test: {a:?}");
    assert!(queue_events(&world, "smtp.school.test", QueueState::Relayed).iter().any(|e| e.summary.contains("tiny.test")));
    assert!(queue_events(&world, "smtp.school.test", QueueState::Deferred).is_empty(), "no retry was needed");

    let inbox = inbox(&world, "tiny.test", "carol@tiny.test");
    assert_eq!(inbox.len(), 1, "{}", story(&world));
    assert!(text(&inbox[0]).contains("Subject: Band practice"));
}

/// An unknown user: 550 5.1.1 from the destination, and a bounce report
/// in the sender's mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_recipient_bounces_to_the_sender() {
    let world = run(scenario("unknown-recipient-bounce")).await;

    assert!(!server_lines(&world, "mx1.example.org", "550 5.1.1").is_empty(), "mx1 refuses the unknown user:\n{}", story(&world));
    let bounced = queue_events(&world, "smtp.school.test", QueueState::Bounced);
    assert_eq!(bounced.len(), 1, "{}", story(&world));
    assert!(matches!(&bounced[0].kind, Kind::Queue { recipients, .. } if recipients == &["bobb@example.org"]));
    assert!(queue_events(&world, "smtp.school.test", QueueState::Deferred).is_empty(), "a 5xx is not retried");

    let inbox = inbox(&world, "smtp.school.test", "alice@school.test");
    assert_eq!(inbox.len(), 1, "one bounce for Alice:\n{}", story(&world));
    let raw = &inbox[0].raw;
    let report = text(&inbox[0]);
    assert!(headers(raw).starts_with("Return-Path: <>\r\n"), "a bounce comes from the null sender:\n{report}");
    assert!(report.contains("Content-Type: multipart/report; report-type=delivery-status"), "{report}");
    assert!(report.contains("Final-Recipient: rfc822; bobb@example.org") && report.contains("Status: 5.1.1"), "{report}");
    assert!(report.contains("Remote-MTA: dns; mx1.example.org"), "{report}");
    let parsed = mail_parser::MessageParser::new().parse(raw.as_slice()).expect("the bounce parses");
    assert_eq!(parsed.subject(), Some("Undelivered Mail Returned to Sender"));
    assert!(world.hosts["mx1.example.org"].store.total() == 0, "nothing was delivered at mx1");
}

/// Greylisting: 451 4.7.1 first, then the retry 5 minutes later passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greylisting_defers_then_accepts_the_retry() {
    let world = run(scenario("greylisting")).await;

    let refused = server_lines(&world, "mx1.example.org", "451 4.7.1");
    assert_eq!(refused.len(), 1, "the first attempt is greylisted:\n{}", story(&world));
    let deferred = queue_events(&world, "smtp.school.test", QueueState::Deferred);
    assert_eq!(deferred.len(), 1, "{}", story(&world));
    assert!(deferred[0].summary.contains("451 4.7.1"), "the deferral names the reason: {}", deferred[0].summary);

    let delivered = deliveries(&world, "bob@example.org");
    assert_eq!(delivered.len(), 1, "{}", story(&world));
    assert!(delivered[0].seq > refused[0].seq && delivered[0].sim_ms >= 5 * 60_000, "delivered at {} ms, after the greylist delay", delivered[0].sim_ms);
    assert_eq!(inbox(&world, "mx1.example.org", "bob@example.org").len(), 1);
}

/// To, Cc and Bcc across three domains: one lookup and one copy per domain,
/// and the Bcc recipient appears in no header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_domains_each_get_their_copy() {
    let world = run(scenario("three-domains")).await;

    for domain in ["example.org", "example.net", "example.com"] {
        assert!(!dns_answers(&world, domain, "MX").is_empty(), "an MX lookup for {domain}:\n{}", story(&world));
    }
    let relayed = queue_events(&world, "smtp.school.test", QueueState::Relayed);
    for server in ["mx1.example.org", "mail.example.net", "mx.example.com"] {
        assert_eq!(relayed.iter().filter(|e| e.summary.contains(server)).count(), 1, "one relay to {server}:\n{}", story(&world));
    }
    let copies = [("mx1.example.org", "bob@example.org"), ("mail.example.net", "carol@example.net"), ("mx.example.com", "dave@example.com")];
    for (host, user) in copies {
        let inbox = inbox(&world, host, user);
        assert_eq!(inbox.len(), 1, "{user} has one copy on {host}");
        let headers = headers(&inbox[0].raw);
        assert!(headers.contains("To: <bob@example.org>") || headers.contains("To: bob@example.org"), "{headers}");
        assert!(headers.contains("carol@example.net"), "Cc names Carol:\n{headers}");
        assert!(!headers.contains("dave@example.com") || user == "dave@example.com", "Bcc stays blind:\n{headers}");
        assert!(!headers.to_ascii_lowercase().contains("\nbcc:"), "no Bcc header:\n{headers}");
    }
    // Dave's own copy names him only in its trace headers, never in To/Cc.
    let dave = text(&inbox(&world, "mx.example.com", "dave@example.com")[0]);
    let visible: Vec<&str> = dave.lines().filter(|l| l.starts_with("To:") || l.starts_with("Cc:")).collect();
    assert!(visible.iter().all(|l| !l.contains("dave")), "{visible:?}");
}

/// Null MX: the domain takes no mail, so the sender bounces at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_mx_bounces_at_once() {
    let world = run(scenario("null-mx")).await;

    let mx = dns_answers(&world, "noreply.test", "MX");
    assert!(mx.iter().any(|(_, records)| records.iter().any(|r| r.ends_with("MX 0 ."))), "the null MX record: {mx:?}");
    assert!(queue_events(&world, "smtp.school.test", QueueState::Deferred).is_empty(), "no waiting: {}", story(&world));
    assert_eq!(queue_events(&world, "smtp.school.test", QueueState::Bounced).len(), 1);
    assert!(events(&world).iter().all(|e| !matches!(e.kind, Kind::ConnectFailed { .. })), "nothing is even tried");
    let inbox = inbox(&world, "smtp.school.test", "alice@school.test");
    assert_eq!(inbox.len(), 1, "{}", story(&world));
    let report = text(&inbox[0]);
    assert!(report.contains("multipart/report") && report.contains("Status: 5.1.10") && report.contains("news@noreply.test"), "{report}");
}

/// A slow primary: the sender stops waiting for the greeting after 5
/// minutes and uses the backup, which cannot do better and finally bounces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_is_given_up_on() {
    let world = run(scenario("slow-server")).await;

    let gave_up: Vec<_> = events(&world)
        .into_iter()
        .filter(|e| e.from == "smtp.school.test" && e.summary.contains("did not greet within the 5 minutes a sender waits"))
        .collect();
    assert_eq!(gave_up.len(), 1, "the sender stops waiting for mx1:\n{}", story(&world));
    let handed = queue_events(&world, "smtp.school.test", QueueState::Relayed);
    assert!(handed.len() == 1 && handed[0].summary.contains("mx2.example.org"), "and uses the backup:\n{}", story(&world));
    assert!(handed[0].seq > gave_up[0].seq);
    assert_eq!(gave_up[0].sim_ms, 5 * 60_000, "the sender hangs up after exactly 5 minutes");
    assert!(queue_events(&world, "mx2.example.org", QueueState::Deferred).len() >= 2, "mx2 keeps trying:\n{}", story(&world));
    assert!(deliveries(&world, "bob@example.org").is_empty(), "mx1 never answers in time");

    let bounced = queue_events(&world, "mx2.example.org", QueueState::Bounced);
    assert_eq!(bounced.len(), 1, "{}", story(&world));
    assert!(bounced[0].sim_ms <= 60 * 60_000, "within the hour");
    let inbox = inbox(&world, "smtp.school.test", "alice@school.test");
    assert_eq!(inbox.len(), 1);
    let report = text(&inbox[0]);
    assert!(report.contains("Status: 4.4.7") && report.contains("did not greet within the 5 minutes"), "{report}");
}

/// Queue expiry: the primary never comes back, so the backup gives up after
/// `give_up_after` and bounces with status 4.4.7, back through Alice's server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_message_bounces_with_4_4_7() {
    let scenario = scenario_with("mx-failover", |s| {
        s["settings"]["retry"] = json!({ "first": "2m", "give_up_after": "10m" });
        let steps = s["steps"].as_array_mut().expect("steps");
        steps.retain(|step| step.get("up").is_none());
    });
    let world = run(scenario).await;

    let deferred = queue_events(&world, "mx2.example.org", QueueState::Deferred);
    assert!(deferred.len() >= 2, "mx2 retries a few times first:\n{}", story(&world));
    let bounced = queue_events(&world, "mx2.example.org", QueueState::Bounced);
    assert_eq!(bounced.len(), 1, "{}", story(&world));
    assert!(bounced[0].sim_ms <= 10 * 60_000, "it gives up within the 10 minutes ({} ms)", bounced[0].sim_ms);
    assert!(deliveries(&world, "bob@example.org").is_empty());

    let inbox = inbox(&world, "smtp.school.test", "alice@school.test");
    assert_eq!(inbox.len(), 1, "the bounce reached Alice:\n{}", story(&world));
    let report = text(&inbox[0]);
    assert!(report.contains("Status: 4.4.7") && report.contains("Final-Recipient: rfc822; bob@example.org"), "{report}");
    assert!(report.contains("Reporting-MTA: dns; mx2.example.org"), "{report}");
}

/// The binary tells the default story: submission, MX lookup, relay, mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailflow_run_prints_the_whole_story() {
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_mailflow"));
    let file = root().join("scenarios/alice-writes-to-bob.json");
    let mut last = None;
    for _ in 0..5 {
        let subnet = random_subnet().to_string();
        let out = run_tool(&binary, &["run", file.to_str().expect("path"), "--fast", "--subnet", &subnet], None).await;
        if out.status.success() {
            last = Some(out);
            break;
        }
        assert!(out.stderr.contains("cannot"), "mailflow run failed: {}\n{}", out.stderr, out.stdout);
        last = Some(out); // an address was taken by someone else: try another subnet
    }
    let out = last.expect("ran");
    assert!(out.status.success(), "mailflow run failed: {}", out.stderr);
    let story = out.stdout;
    for wanted in [
        "alice-laptop connects to smtp.school.test (port 587, submission)",
        "AUTH PLAIN ********",
        "which servers take mail for example.org?",
        "smtp.school.test hands",
        "lands in bob@example.org's mailbox",
    ] {
        assert!(story.contains(wanted), "the story lacks {wanted:?}:\n{story}");
    }
    // The banner offers the password for swaks and curl; the story never shows it.
    let trace = story.split_once("\n00:00:00.000").map(|(_, t)| t).expect("the story after the banner");
    assert!(!trace.contains("wonderland"), "the password never shows in the trace:\n{trace}");
}
