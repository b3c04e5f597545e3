//! Data integrity: what goes in comes out, byte for byte. Dot-stuffing
//! (RFC 5321 §4.5.2) must be undone exactly once per hop, 8-bit text must
//! pass untouched, and a big attachment must survive two servers.

use crate::smtp_common;

use mail_parser::MimeHeaders;
use mailflow::scenario::Service;
use mailflow::trace::{Direction, Kind};
use serde_json::json;
use smtp_common::*;

/// Lines that look like the end of the message or like stuffing.
const DOTTY_BODY: &[u8] = b".\r\n..\r\n.starts with a dot\r\n..starts with two\r\n...three\r\nnot at the start.\r\n.\r\nlast line\r\n";

/// Stuffs a body by hand, as a client must: one more dot before a leading dot.
fn stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out
}

/// Dot-stuffing round trip over a raw socket: lines of dots arrive as sent,
/// and a lone "." inside the body (sent as "..") does not end the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_stuffing_round_trips_over_port_25() {
    let world = start(scenario_with("alice-writes-to-bob", |s| s["steps"] = json!([]))).await;
    let mx1 = addr(&world, "mx1.example.org", Service::Smtp);
    let mut message = b"From: <carol@outside.test>\r\nTo: <bob@example.org>\r\nSubject: Dots\r\n\r\n".to_vec();
    message.extend_from_slice(&stuff(DOTTY_BODY));
    let reply = deliver_raw(mx1, "carol@outside.test", &["bob@example.org"], &message).await;
    assert_eq!(reply.code, 250, "{reply:?}");

    let inbox = inbox(&world, "mx1.example.org", "bob@example.org");
    assert_eq!(inbox.len(), 1);
    assert_eq!(String::from_utf8_lossy(body(&inbox[0].raw)), String::from_utf8_lossy(DOTTY_BODY));
    world.shutdown().await;
}

/// One transaction, one copy per mailbox: the same address spelled in
/// other cases (pipelined, as a flood would send them) is one recipient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mailbox_gets_one_copy_however_the_address_is_spelled() {
    let world = start(scenario_with("alice-writes-to-bob", |s| s["steps"] = json!([]))).await;
    let mx1 = addr(&world, "mx1.example.org", Service::Smtp);
    let spellings = ["bob@example.org", "BOB@example.org", "Bob@EXAMPLE.ORG", "bOb@Example.Org"];
    let mut smtp = RawSmtp::connect(mx1).await;
    smtp.expect("EHLO outside.test", "250").await;
    let mut batch = String::from("MAIL FROM:<carol@outside.test>\r\n");
    for to in spellings.iter().cycle().take(40) {
        batch.push_str(&format!("RCPT TO:<{to}>\r\n"));
    }
    batch.push_str("DATA\r\n");
    smtp.write(batch.as_bytes()).await;
    for _ in 0..41 {
        assert_eq!(smtp.reply().await.code, 250);
    }
    assert_eq!(smtp.reply().await.code, 354);
    smtp.write(b"Subject: once\r\n\r\nOne copy, please.\r\n.\r\n").await;
    assert_eq!(smtp.reply().await.code, 250);
    smtp.expect("QUIT", "221").await;
    assert_eq!(inbox(&world, "mx1.example.org", "bob@example.org").len(), 1, "one copy for one mailbox");
    world.shutdown().await;
}

const SMTPLIB_8BIT: &str = r#"
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
body = sys.argv[3].encode("utf-8").replace(b"\n", b"\r\n")
message = (
    b"From: Alice <alice@school.test>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: Eight bits\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n" + body
)
with smtplib.SMTP(host, port, local_hostname="student.test", timeout=30) as smtp:
    smtp.ehlo()
    assert smtp.has_extn("8bitmime"), smtp.esmtp_features
    smtp.login("alice@school.test", "wonderland")
    smtp.sendmail("alice@school.test", ["bob@example.org"], message, mail_options=["BODY=8BITMIME"])
"#;

/// An 8-bit UTF-8 body with dotted lines, sent by smtplib (BODY=8BITMIME),
/// arrives unchanged after two hops (submission, then relay to mx1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_bit_utf8_body_survives_two_hops() {
    let python = tool("python3");
    // smtplib logs in before TLS here: allowed for this test.
    let world = start(scenario_with("alice-writes-to-bob", |s| {
        s["steps"] = json!([]);
        s["settings"] = json!({ "tls": { "plaintext_login": true } });
    }))
    .await;
    let submission = addr(&world, "smtp.school.test", Service::Submission);
    let text_body = "Grüße aus Köln! ☕ — naïve café, 日本語\n.a line with a leading dot\n..and two\n.\nEnde.\n";
    let out = run_tool(&python, &["-c", SMTPLIB_8BIT, &submission.ip().to_string(), &submission.port().to_string(), text_body], None).await;
    assert!(out.status.success(), "smtplib failed:\n{}{}", out.stdout, out.stderr);

    let message = wait_for("the 8-bit message in bob's INBOX", &world, || inbox(&world, "mx1.example.org", "bob@example.org").into_iter().next()).await;
    assert_eq!(count_header(&message.raw, "Received"), 2);
    let expected = text_body.replace('\n', "\r\n");
    assert_eq!(std::str::from_utf8(body(&message.raw)).expect("still valid UTF-8"), expected);
    // The relaying server says the body is 8-bit (RFC 6152), and its
    // connection is labelled with the message from the very first event.
    let events = world.trace.since(0);
    let relay: Vec<_> = events.iter().filter(|e| e.from == "smtp.school.test" && e.to == "mx1.example.org").collect();
    assert!(
        relay.iter().any(|e| matches!(&e.kind, mailflow::trace::Kind::Line { line, .. } if line.starts_with("MAIL FROM:") && line.ends_with(" BODY=8BITMIME")))
    );
    let connect = relay.iter().find(|e| matches!(e.kind, mailflow::trace::Kind::Connect)).expect("the relay's connect event");
    assert!(connect.message.is_some(), "{connect:?}");
    world.shutdown().await;
}

/// A 5 MiB attachment arrives intact, byte for byte, through two servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mib_attachment_arrives_intact() {
    const SIZE: usize = 5 * 1024 * 1024;
    let world = run(scenario_with("alice-writes-to-bob", |s| {
        s["steps"][0]["send"]["attachment"] = json!({ "name": "photo.bin", "size": SIZE });
    }))
    .await;

    let inbox = inbox(&world, "mx1.example.org", "bob@example.org");
    assert_eq!(inbox.len(), 1, "{}", story(&world));
    let message = mail_parser::MessageParser::new().parse(inbox[0].raw.as_slice()).expect("the message parses");
    let attachment = message.attachments().find(|a| a.attachment_name() == Some("photo.bin")).expect("the attachment photo.bin");
    let bytes = attachment.contents();
    assert_eq!(bytes.len(), SIZE);
    // The scenario's attachment is the pattern 0, 1, ..., 250, 0, 1, ...
    let first_wrong = bytes.iter().enumerate().position(|(i, &b)| b != (i % 251) as u8);
    assert_eq!(first_wrong, None, "the attachment differs at byte {first_wrong:?}");

    // Each hop carried it as one block of over 5 MiB (base64 makes it bigger).
    let blocks: Vec<u64> = events(&world)
        .iter()
        .filter_map(|e| match e.kind {
            Kind::Data { direction: Direction::ToServer, bytes, .. } => Some(bytes),
            _ => None,
        })
        .collect();
    assert_eq!(blocks.len(), 2, "submission and relay: {blocks:?}");
    assert!(blocks.iter().all(|&b| b > SIZE as u64), "{blocks:?}");
}
