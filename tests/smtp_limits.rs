//! Limits, policy and hostile input, over a bare TCP socket: what a
//! server must refuse (open relaying, unauthenticated submission, wrong
//! passwords, oversized mail, too many recipients, overlong lines, garbage)
//! and that it keeps working for the next client afterwards.

use crate::smtp_common;

use std::sync::Arc;

use base64::Engine as _;
use mailflow::scenario::Service;
use mailflow::trace::Kind;
use mailflow::world::World;
use serde_json::json;
use smtp_common::*;
use tokio::io::AsyncWriteExt;

/// mx1 takes at most 4000 bytes and 2 recipients; example.org has bob,
/// carol and dave. No steps: the tests do the talking.
async fn strict_world() -> Arc<World> {
    start(scenario_with("alice-writes-to-bob", |s| {
        s["steps"] = json!([]);
        s["hosts"]["mx1.example.org"]["max_message_size"] = json!(4000);
        s["hosts"]["mx1.example.org"]["max_recipients"] = json!(2);
        s["users"]["carol@example.org"] = json!({ "password": "singer" });
        s["users"]["dave@example.org"] = json!({ "password": "diver" });
        // Raw logins in plaintext, to test the rules themselves.
        s["settings"] = json!({ "tls": { "plaintext_login": true } });
    }))
    .await
}

fn small_message(subject: &str) -> Vec<u8> {
    format!("From: <eve@outside.test>\r\nTo: <bob@example.org>\r\nSubject: {subject}\r\n\r\nHello.\r\n").into_bytes()
}

/// The server still delivers for a polite client (after whatever came before).
async fn still_delivers(world: &World, subject: &str) {
    let before = inbox(world, "mx1.example.org", "bob@example.org").len();
    let reply = deliver_raw(addr(world, "mx1.example.org", Service::Smtp), "eve@outside.test", &["bob@example.org"], &small_message(subject)).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let inbox = inbox(world, "mx1.example.org", "bob@example.org");
    assert_eq!(inbox.len(), before + 1);
    assert!(text(inbox.last().expect("a message")).contains(&format!("Subject: {subject}")));
}

/// No open relay: port 25 takes mail only for the server's own domains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_25_refuses_to_relay_for_strangers() {
    let world = strict_world().await;
    for host in ["mx1.example.org", "smtp.school.test"] {
        let mut smtp = RawSmtp::connect(addr(&world, host, Service::Smtp)).await;
        smtp.expect("EHLO spammer.test", "250").await;
        smtp.expect("MAIL FROM:<spammer@spammer.test>", "250").await;
        smtp.expect("RCPT TO:<victim@elsewhere.test>", "550 5.7.1").await;
        smtp.expect("DATA", "554").await; // no valid recipient
        smtp.expect("QUIT", "221").await;
    }
    // Not even to the school's own domain through mx1.
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    smtp.expect("EHLO spammer.test", "250").await;
    smtp.expect("MAIL FROM:<spammer@spammer.test>", "250").await;
    smtp.expect("RCPT TO:<alice@school.test>", "550 5.7.1").await;
    smtp.expect("AUTH PLAIN AGFsaWNlQHNjaG9vbC50ZXN0AHdvbmRlcmxhbmQ=", "502").await;
    assert!(world.hosts.values().all(|h| h.queue().is_empty()), "nothing was queued");
}

/// Submission needs a login (530 5.7.0), and a wrong password gets 535 5.7.8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_requires_a_correct_login() {
    let world = strict_world().await;
    let submission = addr(&world, "smtp.school.test", Service::Submission);
    let mut smtp = RawSmtp::connect(submission).await;
    let ehlo = smtp.expect("EHLO laptop.test", "250").await;
    assert!(ehlo.lines.iter().any(|l| l.contains("AUTH PLAIN LOGIN")), "{ehlo:?}");
    smtp.expect("MAIL FROM:<alice@school.test>", "530 5.7.0").await;

    let token = |user: &str, password: &str| base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    smtp.expect(&format!("AUTH PLAIN {}", token("alice@school.test", "guess")), "535 5.7.8").await;
    smtp.expect(&format!("AUTH PLAIN {}", token("mallory@school.test", "wonderland")), "535 5.7.8").await;
    smtp.expect("MAIL FROM:<alice@school.test>", "530 5.7.0").await;
    // The right password works, but only for one's own address.
    smtp.expect(&format!("AUTH PLAIN {}", token("alice@school.test", "wonderland")), "235 2.7.0").await;
    smtp.expect("MAIL FROM:<bob@example.org>", "553 5.7.1").await;
    smtp.expect("MAIL FROM:<alice@school.test>", "250").await;
    smtp.expect("QUIT", "221").await;
}

/// Size limits: SIZE= over the limit is refused at MAIL (552), and so is a
/// body over the limit after the final dot; nothing is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_gets_552() {
    let world = strict_world().await;
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    let ehlo = smtp.expect("EHLO big.test", "250").await;
    assert!(ehlo.lines.iter().any(|l| l.ends_with("SIZE 4000")), "{ehlo:?}");
    smtp.expect("MAIL FROM:<eve@outside.test> SIZE=5000", "552 5.3.4").await;

    smtp.expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.expect("RCPT TO:<bob@example.org>", "250").await;
    smtp.expect("DATA", "354").await;
    let mut big = small_message("Too big");
    for _ in 0..100 {
        big.extend_from_slice(b"This line is here to make the message larger than the limit.\r\n");
    }
    smtp.write(&big).await;
    smtp.write(b".\r\n").await;
    let reply = smtp.reply().await;
    assert!(reply.text().starts_with("552 5.3.4"), "{reply:?}");
    assert!(inbox(&world, "mx1.example.org", "bob@example.org").is_empty(), "nothing delivered");
    // The session goes on.
    smtp.expect("NOOP", "250").await;
    smtp.expect("QUIT", "221").await;
    still_delivers(&world, "Small enough").await;
}

/// A command line over 512 octets gets 500 5.5.2, and the session keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_command_line_gets_500_and_session_survives() {
    let world = strict_world().await;
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    smtp.expect("EHLO long.test", "250").await;
    smtp.expect(&format!("NOOP {}", "x".repeat(600)), "500 5.5.2").await;
    smtp.expect(&format!("MAIL FROM:<{}@outside.test>", "a".repeat(1000)), "500 5.5.2").await;
    // A 100 KB line is drained too, without the server buffering it whole.
    smtp.expect(&"y".repeat(100_000), "500 5.5.2").await;
    smtp.expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.expect("RCPT TO:<bob@example.org>", "250").await;
    smtp.expect("DATA", "354").await;
    smtp.write(&small_message("After a long line")).await;
    smtp.expect(".", "250").await;
    smtp.expect("QUIT", "221").await;
    assert_eq!(inbox(&world, "mx1.example.org", "bob@example.org").len(), 1);
}

/// Too many recipients: the third gets 452 4.5.3; the first two get the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_recipients_gets_452() {
    let world = strict_world().await;
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    smtp.expect("EHLO many.test", "250").await;
    smtp.expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.expect("RCPT TO:<bob@example.org>", "250").await;
    smtp.expect("RCPT TO:<carol@example.org>", "250").await;
    smtp.expect("RCPT TO:<dave@example.org>", "452 4.5.3").await;
    smtp.expect("DATA", "354").await;
    smtp.write(&small_message("For two")).await;
    smtp.expect(".", "250").await;
    smtp.expect("QUIT", "221").await;
    assert_eq!(inbox(&world, "mx1.example.org", "bob@example.org").len(), 1);
    assert_eq!(inbox(&world, "mx1.example.org", "carol@example.org").len(), 1);
    assert!(inbox(&world, "mx1.example.org", "dave@example.org").is_empty(), "dave must be sent again in another transaction");
}

/// Commands out of order get 503 5.5.1, never a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sequence_gets_503() {
    let world = strict_world().await;
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    smtp.expect("MAIL FROM:<eve@outside.test>", "503 5.5.1").await; // before EHLO
    smtp.expect("EHLO order.test", "250").await;
    smtp.expect("RCPT TO:<bob@example.org>", "503 5.5.1").await; // before MAIL
    smtp.expect("DATA", "503 5.5.1").await; // before MAIL
    smtp.expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.expect("MAIL FROM:<eve@outside.test>", "503 5.5.1").await; // nested
    smtp.expect("DATA", "503 5.5.1").await; // before RCPT
    smtp.expect("RSET", "250").await;
    smtp.expect("QUIT", "221").await;
    still_delivers(&world, "In order").await;
}

/// Garbage (NUL, invalid UTF-8, binary) gets 500 and never crashes the
/// server; a client that keeps sending it is cut off with 421; the next
/// client delivers normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_500_and_the_server_survives() {
    let world = strict_world().await;
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    let garbage: [&[u8]; 5] =
        [b"\x00\x00\x00\r\n", b"\xff\xfe\xfd\xfc\r\n", b"\xc3\x28 \xa0\xa1\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", b"\r\n"];
    for line in garbage {
        smtp.write(line).await;
        let reply = smtp.reply().await;
        assert!(reply.text().starts_with("500"), "{line:?} got {reply:?}");
    }
    // Known verbs with bad bytes in the arguments: a syntax error, not a crash.
    smtp.expect("EHLO ok.test", "250").await;
    smtp.write(b"MAIL FROM:<\x00\xff@outside.test>\r\n").await;
    assert!(smtp.reply().await.code >= 500);
    smtp.expect("NOOP", "250").await;
    // Keep sending garbage: at the 10th error the server hangs up with 421.
    let mut closed = None;
    for i in 0..20 {
        smtp.write(b"\x00garbage\xff\r\n").await;
        match smtp.try_reply().await {
            Some(reply) if reply.code == 421 => {
                closed = Some(i);
                break;
            }
            Some(reply) => assert_eq!(reply.code, 500, "{reply:?}"),
            None => panic!("the server closed without 421"),
        }
    }
    assert!(closed.is_some(), "a client sending only garbage is cut off");
    assert!(smtp.try_reply().await.is_none(), "and the connection is closed after 421");
    still_delivers(&world, "After the garbage").await;
}

/// A client that hangs up in the middle of DATA delivers nothing, and the
/// trace says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_mid_data_delivers_nothing() {
    let world = strict_world().await;
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    smtp.expect("EHLO flaky.test", "250").await;
    smtp.expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.expect("RCPT TO:<bob@example.org>", "250").await;
    smtp.expect("DATA", "354").await;
    smtp.write(b"Subject: Half\r\n\r\nThis message never gets its final dot\r\n").await;
    let mut stream = smtp.into_stream();
    stream.shutdown().await.expect("shutdown");
    drop(stream);

    let failure = wait_for("the server to notice the hang-up", &world, || {
        events(&world).into_iter().find(|e| matches!(&e.kind, Kind::Failure { reason } if reason.contains("during DATA")))
    })
    .await;
    assert_eq!(failure.from, "mx1.example.org");
    assert!(inbox(&world, "mx1.example.org", "bob@example.org").is_empty(), "nothing is delivered");
    assert!(deliveries(&world, "bob@example.org").is_empty());
    assert!(world.hosts["mx1.example.org"].queue().is_empty());
    still_delivers(&world, "After the hang-up").await;
}

/// PIPELINING: commands sent in one write get their replies in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_get_replies_in_order() {
    let world = strict_world().await;
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    let ehlo = smtp.expect("EHLO fast.test", "250").await;
    assert!(ehlo.lines.iter().any(|l| l.ends_with("PIPELINING")), "{ehlo:?}");
    smtp.write(b"MAIL FROM:<eve@outside.test>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n").await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let reply = smtp.reply().await;
        codes.push(reply.text().get(..9).unwrap_or(reply.text()).to_string());
    }
    assert_eq!(codes, ["250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354 End d"]);
    // The body, the final dot and the next commands in one write too.
    let mut rest = small_message("Pipelined");
    rest.extend_from_slice(b".\r\nNOOP\r\nQUIT\r\n");
    smtp.write(&rest).await;
    assert!(smtp.reply().await.text().starts_with("250 2.0.0 OK queued as"));
    assert_eq!(smtp.reply().await.code, 250);
    assert_eq!(smtp.reply().await.code, 221);
    assert_eq!(inbox(&world, "mx1.example.org", "bob@example.org").len(), 1);
    assert_eq!(inbox(&world, "mx1.example.org", "carol@example.org").len(), 1);
}

/// Every server takes mail for "postmaster" (RFC 5321 §4.5.1), bare or at
/// its own domains, and keeps it: no bounce, no relaying anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postmaster_is_always_accepted_and_kept() {
    let world = strict_world().await;
    let mx1 = addr(&world, "mx1.example.org", Service::Smtp);
    let reply = deliver_raw(mx1, "eve@outside.test", &["postmaster", "PostMaster@example.org"], &small_message("For the postmaster")).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    for mailbox in ["postmaster", "postmaster@example.org"] {
        let held = wait_for(&format!("{mailbox}'s copy"), &world, || inbox(&world, "mx1.example.org", mailbox).into_iter().next()).await;
        assert!(text(&held).contains("Subject: For the postmaster"));
    }
    // Not a postmaster of a domain mx1 does not serve: that would be relaying.
    let mut smtp = RawSmtp::connect(mx1).await;
    smtp.expect("EHLO outside.test", "250").await;
    smtp.expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.expect("RCPT TO:<postmaster@elsewhere.test>", "550 5.7.1").await;
    smtp.expect("QUIT", "221").await;
    world.conductor.clock().until_idle().await;
    let bounced = events(&world).into_iter().filter(|e| matches!(&e.kind, Kind::Queue { state: mailflow::trace::QueueState::Bounced, .. })).count();
    assert_eq!(bounced, 0, "nothing bounced:\n{}", story(&world));
}

/// SMTP smuggling: a "." between bare LFs is not the end of the message,
/// so a client cannot slip a second, forged message into one DATA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_lf_dot_does_not_end_data() {
    let world = strict_world().await;
    let mut smtp = RawSmtp::connect(addr(&world, "mx1.example.org", Service::Smtp)).await;
    smtp.expect("EHLO sly.test", "250").await;
    smtp.expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.expect("RCPT TO:<bob@example.org>", "250").await;
    smtp.expect("DATA", "354").await;
    smtp.write(b"Subject: One\r\n\r\nfirst\n.\nMAIL FROM:<admin@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: Smuggled\r\n\r\nhi\r\n.\r\n")
        .await;
    assert!(smtp.reply().await.text().starts_with("250 2.0.0"), "one message");
    smtp.expect("QUIT", "221").await; // the next reply answers QUIT: nothing else was read as a command
    let inbox = inbox(&world, "mx1.example.org", "bob@example.org");
    assert_eq!(inbox.len(), 1, "one message, not two");
    let text = text(&inbox[0]);
    assert!(text.contains("Subject: One") && text.contains("\r\n.\r\nMAIL FROM:<admin@example.org>\r\n"), "the rest is content:\n{text}");
}
