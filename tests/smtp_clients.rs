//! Real mail programs against a running world: Python's smtplib, swaks and
//! curl submit to the school's server exactly as a student would, and the
//! message must arrive in Bob's mailbox on mx1. swaks and curl run the very
//! commands the banner prints. The programs are required: if one is
//! missing the test fails with a message saying what to install.

use crate::smtp_common;

use std::sync::Arc;

use mailflow::scenario::Service;
use mailflow::trace::{Direction, Kind};
use mailflow::world::World;
use smtp_common::*;

/// The default world with no steps of its own: only our clients send.
async fn quiet_world() -> Arc<World> {
    start(scenario_with("alice-writes-to-bob", |s| s["steps"] = serde_json::json!([]))).await
}

/// The same, with logins allowed before TLS: these clients are scripted
/// in plaintext (TLS is `tls_smtp.rs`'s business).
async fn plaintext_world() -> Arc<World> {
    start(scenario_with("alice-writes-to-bob", |s| {
        s["steps"] = serde_json::json!([]);
        s["settings"] = serde_json::json!({ "tls": { "plaintext_login": true } });
    }))
    .await
}

/// Waits until Bob's INBOX on mx1 holds a message whose text contains `marker`.
async fn arrives(world: &World, marker: &str) -> Vec<u8> {
    let found = wait_for(&format!("a message with {marker:?} in bob's INBOX"), world, || {
        inbox(world, "mx1.example.org", "bob@example.org").into_iter().find(|m| text(m).contains(marker))
    })
    .await;
    found.raw.to_vec()
}

/// The route a student reads from the headers: submission server, then mx1.
fn assert_two_hops(raw: &[u8]) {
    let headers = headers(raw);
    assert_eq!(count_header(raw, "Received"), 2, "exactly two Received headers (smtp.school.test and mx1):\n{headers}");
    // ESMTPSA when the client used STARTTLS (the banner's commands), ESMTPA when not (RFC 3848).
    let authenticated = headers.contains("by smtp.school.test (mailflow) with ESMTPA") || headers.contains("by smtp.school.test (mailflow) with ESMTPSA");
    assert!(authenticated, "the submission server's, authenticated:\n{headers}");
    // The relay hop uses STARTTLS (mx1 offers it): ESMTPS, RFC 3848.
    assert!(headers.contains("by mx1.example.org (mailflow) with ESMTPS "), "mx1's, over TLS:\n{headers}");
    assert!(headers.starts_with("Return-Path: <alice@school.test>\r\n"), "{headers}");
}

const SMTPLIB_SEND: &str = r#"
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
message = (
    "From: Alice <alice@school.test>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Subject: Hello from Python\r\n"
    "Message-ID: <smtplib-1@student.test>\r\n"
    "\r\n"
    "Sent with smtplib.\r\n"
)
with smtplib.SMTP(host, port, local_hostname="student.test", timeout=30) as smtp:
    smtp.ehlo()
    assert smtp.has_extn("auth"), smtp.esmtp_features
    smtp.login("alice@school.test", "wonderland")
    refused = smtp.sendmail("alice@school.test", ["bob@example.org"], message)
    assert refused == {}, refused
print("sent")
"#;

/// Python's smtplib submits with AUTH; the message arrives with the
/// submission server's and mx1's Received headers and a Return-Path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_submits_to_bobs_inbox() {
    let python = tool("python3");
    let world = plaintext_world().await;
    let submission = addr(&world, "smtp.school.test", Service::Submission);
    let out = run_tool(&python, &["-c", SMTPLIB_SEND, &submission.ip().to_string(), &submission.port().to_string()], None).await;
    assert!(out.status.success(), "smtplib failed:\n{}{}\n{}", out.stdout, out.stderr, story(&world));

    let raw = arrives(&world, "Subject: Hello from Python").await;
    assert_two_hops(&raw);
    assert!(String::from_utf8_lossy(&raw).contains("Sent with smtplib.\r\n"));
    assert_eq!(inbox(&world, "mx1.example.org", "bob@example.org").len(), 1, "exactly one copy");
    assert_secret_hidden(&world);
    world.shutdown().await;
}

/// The trace of an outside client's session shows neither the password
/// nor its base64 form (AUTH PLAIN is encoded, not encrypted).
fn assert_secret_hidden(world: &World) {
    use base64::Engine as _;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0alice@school.test\0wonderland");
    let trace = story(world);
    assert!(trace.contains("AUTH PLAIN") || trace.contains("login challenge"), "the login is in the trace:\n{trace}");
    assert!(!trace.contains("wonderland") && !trace.contains(&plain), "the secret leaked into the trace:\n{trace}");
}

/// The lines of the banner that start with `program` (after the indent).
fn banner_command(world: &World, program: &str) -> String {
    let banner = world.banner();
    banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{program} ")) || (program.contains(' ') && l.starts_with(program)))
        .unwrap_or_else(|| panic!("the banner has no {program} command:\n{banner}"))
        .to_string()
}

/// The swaks command of the banner works as printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_command_from_the_banner_delivers() {
    let sh = tool("sh");
    tool("swaks");
    let world = quiet_world().await;
    let command = banner_command(&world, "swaks");
    let submission = addr(&world, "smtp.school.test", Service::Submission);
    assert!(command.contains(&format!("--server {} --port {}", submission.ip(), submission.port())), "{command}");
    assert!(command.contains("--auth-user alice@school.test --auth-password wonderland") && command.contains("--to bob@example.org"), "{command}");

    // Over STARTTLS, trusting the world's CA that the banner's printf line saves.
    assert!(command.ends_with(" --tls --tls-verify --tls-ca-path ca.pem"), "{command}");
    let dir = scratch_dir("swaks");
    let save_ca = banner_command(&world, "printf '%s\\n'");
    let out = run_tool(&sh, &["-c", &format!("{save_ca} && {command}")], Some(&dir)).await;
    assert!(out.status.success(), "{command}\nfailed:\n{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("235 2.7.0"), "swaks logged in:\n{}", out.stdout);
    assert!(out.stdout.contains("STARTTLS") && out.stdout.contains("TLS started"), "swaks used TLS:\n{}", out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    let raw = arrives(&world, "Subject: Hello from swaks").await;
    assert_two_hops(&raw);
    assert_secret_hidden(&world);
    world.shutdown().await;
}

/// The curl commands of the banner (write message.txt, upload it) work as printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_commands_from_the_banner_deliver() {
    let sh = tool("sh");
    tool("curl");
    let world = quiet_world().await;
    let save_ca = banner_command(&world, "printf '%s\\n'");
    let write_file = banner_command(&world, "printf 'From:");
    let command = banner_command(&world, "curl");
    let submission = addr(&world, "smtp.school.test", Service::Submission);
    assert!(command.starts_with(&format!("curl smtp://{}:{} --ssl-reqd --cacert ca.pem ", submission.ip(), submission.port())), "{command}");
    assert!(command.contains("--user 'alice@school.test:wonderland'") && command.contains("--mail-rcpt bob@example.org"), "{command}");

    let dir = scratch_dir("curl");
    let out = run_tool(&sh, &["-c", &format!("{save_ca} && {write_file} && {command}")], Some(&dir)).await;
    assert!(out.status.success(), "{write_file}\n{command}\nfailed:\n{}{}", out.stdout, out.stderr);
    let raw = arrives(&world, "Subject: Hello from curl").await;
    assert_two_hops(&raw);
    assert!(String::from_utf8_lossy(&raw).contains("This message came by curl."));
    assert_secret_hidden(&world);
    let _ = std::fs::remove_dir_all(dir);
    world.shutdown().await;
}

/// curl names itself after the file it uploads (`EHLO tmp_message`): not a
/// domain, since `_` is not allowed in one, and once refused with 501. The
/// server accepts it as Postfix does by default, and the story notes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_upload_with_a_file_name_that_is_not_a_domain_delivers() {
    let curl = tool("curl");
    let world = plaintext_world().await;
    let submission = addr(&world, "smtp.school.test", Service::Submission);
    let dir = scratch_dir("curl-helo");
    let message = "From: alice@school.test\r\nTo: bob@example.org\r\nSubject: Uploaded as tmp_message\r\n\r\nThe EHLO name was a file name.\r\n";
    std::fs::write(dir.join("tmp_message"), message).expect("write tmp_message");
    let url = format!("smtp://{}:{}", submission.ip(), submission.port());
    let args = [
        url.as_str(),
        "--mail-from",
        "alice@school.test",
        "--mail-rcpt",
        "bob@example.org",
        "--user",
        "alice@school.test:wonderland",
        "--upload-file",
        "tmp_message",
    ];
    let out = run_tool(&curl, &args, Some(&dir)).await;
    assert!(out.status.success(), "curl {args:?} failed:\n{}{}\n{}", out.stdout, out.stderr, story(&world));
    let raw = arrives(&world, "Subject: Uploaded as tmp_message").await;
    assert_two_hops(&raw);
    let hello = events(&world)
        .into_iter()
        .find(|e| e.to == "smtp.school.test" && matches!(&e.kind, Kind::Line { direction: Direction::ToServer, line } if line == "EHLO tmp_message"));
    let summary = hello.map(|e| e.summary.clone()).unwrap_or_else(|| panic!("no EHLO tmp_message in the story:\n{}", story(&world)));
    assert!(summary.contains("Note: that is not a domain name"), "{summary}");
    let _ = std::fs::remove_dir_all(dir);
    world.shutdown().await;
}

const SMTPLIB_BAD_PASSWORD: &str = r#"
import smtplib, sys
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="student.test", timeout=30) as smtp:
    try:
        smtp.login("alice@school.test", "not-the-password")
    except smtplib.SMTPAuthenticationError as e:
        print(e.smtp_code, e.smtp_error.decode())
        sys.exit(0)
sys.exit("logged in with a wrong password")
"#;

/// A wrong password is refused to a real client too: 535 5.7.8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_wrong_password_gets_535() {
    let python = tool("python3");
    let world = plaintext_world().await;
    let submission = addr(&world, "smtp.school.test", Service::Submission);
    let out = run_tool(&python, &["-c", SMTPLIB_BAD_PASSWORD, &submission.ip().to_string(), &submission.port().to_string()], None).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("535 5.7.8"), "{}", out.stdout);
    world.shutdown().await;
}
