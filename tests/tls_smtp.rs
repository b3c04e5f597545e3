//! TLS on SMTP (issue 10): STARTTLS on ports 25 and 587 (RFC 3207) and
//! implicit TLS on port 465 (RFC 8314), tried with the clients a student
//! would use — `openssl s_client -starttls smtp`, `swaks --tls`, `curl
//! --ssl-reqd` and `smtps://`, Python's `smtplib.starttls` — each trusting
//! only the world's CA. Also: AUTH hidden and refused before TLS where
//! plaintext logins are off, MAIL refused before TLS where TLS is required,
//! and what the trace shows (handshake steps, encrypted hops).
//!
//! Then the world's own senders: a device submits with STARTTLS, a relay
//! hands mail on with STARTTLS and checks the next server's certificate; a
//! broken certificate or a missing STARTTLS where the recipient domain
//! requires TLS makes the sender keep the message queued.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use mailflow::conductor::Pace;
use mailflow::scenario::{Scenario, Service};
use mailflow::trace::{Event, HandshakeStep, Kind, QueueState};
use mailflow::world::{World, WorldOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{GENEROUS, Net, TempDir};

/// Alice (on smtp.school.test: submission, submissions, smtp) and Bob (on
/// mx1.example.org: smtp, imap). `school` and `mx1` are the two hosts' TLS
/// settings (JSON), `extra` more JSON members of the scenario (steps).
fn scenario(school: &str, mx1: &str, extra: &str) -> Scenario {
    let text = format!(
        r#"{{
  "title": "SMTP TLS test",
  "domains": {{
    "school.test": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "smtp.school.test" }} ] }},
    "example.org": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "mx1.example.org" }} ] }}
  }},
  "hosts": {{
    "smtp.school.test": {{ "services": ["submission", "submissions", "smtp"], "domains": ["school.test"], "tls": {school} }},
    "mx1.example.org": {{ "services": ["smtp", "imap"], "domains": ["example.org"], "tls": {mx1} }}
  }},
  "users": {{
    "alice@school.test": {{ "password": "wonderland" }},
    "bob@example.org": {{ "password": "builder" }}
  }},
  "clients": {{ "alice-laptop": {{ "user": "alice@school.test", "submit_to": "smtp.school.test" }} }}
  {extra}
}}"#
    );
    Scenario::parse("smtp-tls.json", &text).unwrap_or_else(|e| panic!("test scenario: {e}"))
}

/// A running world and its CA in a file.
struct Lab {
    world: Arc<World>,
    _dir: TempDir,
    ca: PathBuf,
}

impl Lab {
    async fn start(scenario: Scenario) -> Lab {
        let net = Net::random();
        let options = WorldOptions { subnet: net.subnet(), pace: Pace::Fast, ..Default::default() };
        let world = World::start(scenario, options).await.unwrap_or_else(|e| panic!("the world does not start: {e}"));
        let dir = TempDir::new("smtp-tls");
        let ca = dir.write("ca.pem", world.tls.ca.pem());
        Lab { world, _dir: dir, ca }
    }

    async fn servers(school: &str, mx1: &str) -> Lab {
        Self::start(scenario(school, mx1, "")).await
    }

    fn addr(&self, host: &str, service: Service) -> SocketAddr {
        let node = self.world.node(host).unwrap_or_else(|| panic!("{host} exists"));
        SocketAddr::new(IpAddr::V4(node.address), self.world.port(service))
    }

    fn ca(&self) -> &str {
        self.ca.to_str().expect("a UTF-8 temp path")
    }

    fn inbox(&self, user: &str) -> usize {
        self.world.hosts["mx1.example.org"].store.inbox(user).len()
    }

    /// Waits until every queued message has been delivered or given up on
    /// (the simulated clock is idle).
    async fn settle(&self) {
        tokio::time::timeout(GENEROUS, self.world.conductor.clock().until_idle()).await.expect("the world settles");
    }

    /// The line event the server traced that starts with `prefix`.
    fn line(&self, prefix: &str) -> Event {
        let events = self.world.trace.since(0);
        let found = events.iter().find(|e| matches!(&e.kind, Kind::Line { line, .. } if line.starts_with(prefix)));
        (**found.unwrap_or_else(|| panic!("no line {prefix:?} in the trace"))).clone()
    }

    fn handshakes(&self, step: HandshakeStep) -> Vec<Event> {
        self.world.trace.since(0).iter().filter(|e| matches!(&e.kind, Kind::TlsHandshake { step: s, .. } if *s == step)).map(|e| (**e).clone()).collect()
    }
}

/// Runs a program with `stdin`; returns (success, stdout, stderr).
async fn run(program: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed for this test (apt-get install {program}): {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).await.expect("write stdin");
    drop(input);
    let output = tokio::time::timeout(GENEROUS, child.wait_with_output()).await.expect("the client finishes").expect("the client ran");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn auth_plain(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

/// A raw plaintext SMTP connection: what a client without TLS gets.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> (Raw, String) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut raw = Raw { reader: BufReader::new(stream) };
        let greeting = raw.reply().await;
        (raw, greeting)
    }

    /// One whole reply (every line of a multi-line one).
    async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(GENEROUS, self.reader.read_line(&mut line)).await.expect("an answer").expect("read");
            assert!(n > 0, "the server hung up; so far: {reply}");
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.reader.get_mut().write_all(format!("{line}\r\n").as_bytes()).await.expect("write");
        self.reply().await
    }
}

// ---------------------------------------------------------------------------
// The server side, with outside clients.

#[tokio::test]
async fn openssl_starttls_submission_logs_in_and_sends_over_tls() {
    let lab = Lab::servers("{}", "{}").await;
    let addr = lab.addr("smtp.school.test", Service::Submission).to_string();
    let commands = format!(
        "EHLO laptop.school.test\nAUTH PLAIN {}\nMAIL FROM:<alice@school.test>\nRCPT TO:<bob@example.org>\nDATA\nSubject: over TLS\n\nHello Bob.\n.\nQUIT\n",
        auth_plain("alice@school.test", "wonderland")
    );
    let args = [
        "s_client",
        "-connect",
        &addr,
        "-starttls",
        "smtp",
        "-CAfile",
        lab.ca(),
        "-verify_return_error",
        "-verify_hostname",
        "smtp.school.test",
        "-servername",
        "smtp.school.test",
        "-crlf",
        "-quiet",
    ];
    let (ok, out, err) = run("openssl", &args, &commands).await;
    assert!(ok, "openssl failed:\n{out}\n{err}");
    assert!(err.contains("verify return:1"), "the certificate was verified: {err}");
    assert!(out.contains("AUTH PLAIN LOGIN") && !out.contains("STARTTLS"), "after TLS: AUTH offered, STARTTLS no more: {out}");
    assert!(out.contains("235 2.7.0") && out.contains("queued as") && out.contains("221 "), "{out}");
    lab.settle().await;
    assert_eq!(lab.inbox("bob@example.org"), 1, "the message reached Bob");

    let steps: Vec<_> = lab
        .world
        .trace
        .since(0)
        .iter()
        .filter(|e| e.to == "smtp.school.test" || e.from == "smtp.school.test")
        .filter_map(|e| match &e.kind {
            Kind::TlsHandshake { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(steps[..4], [HandshakeStep::ClientHello, HandshakeStep::Certificate, HandshakeStep::KeysAgreed, HandshakeStep::Finished]);
    // STARTTLS crosses readable; the login after it does not.
    assert!(lab.line("STARTTLS").tls.is_none(), "STARTTLS itself is plaintext");
    let auth = lab.line("AUTH PLAIN");
    let tls = auth.tls.as_ref().expect("the AUTH hop is encrypted");
    assert!(tls.version.starts_with("TLSv1."), "{tls:?}");
    assert_eq!(tls.certificate, "CN=smtp.school.test, O=mailflow world");
    let json = serde_json::to_string(&lab.world.trace.since(0)).expect("serialize");
    assert!(!json.contains("wonderland") && !json.contains(&auth_plain("alice@school.test", "wonderland")), "no password in the trace");
}

#[tokio::test]
async fn swaks_sends_with_starttls_and_on_port_465() {
    let lab = Lab::servers("{}", "{}").await;
    for (service, tls_flag) in [(Service::Submission, "--tls"), (Service::Submissions, "--tls-on-connect")] {
        let server = lab.addr("smtp.school.test", service).to_string();
        let args = [
            "--server",
            &server,
            tls_flag,
            "--tls-verify",
            "--tls-ca-path",
            lab.ca(),
            "--tls-sni",
            "smtp.school.test",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@school.test",
            "--auth-password",
            "wonderland",
            "--from",
            "alice@school.test",
            "--to",
            "bob@example.org",
            "--header",
            "Subject: swaks over TLS",
            "--body",
            "Hello Bob.",
            "--timeout",
            "20",
        ];
        let (ok, out, err) = run("swaks", &args, "").await;
        assert!(ok, "swaks {tls_flag} failed:\n{out}\n{err}");
        assert!(out.contains("TLS started") && out.contains("235 2.7.0") && out.contains("queued as"), "{tls_flag}: {out}");
    }
    lab.settle().await;
    assert_eq!(lab.inbox("bob@example.org"), 2);
    let connects: Vec<String> =
        lab.world.trace.since(0).iter().filter(|e| matches!(e.kind, Kind::Connect) && e.to == "smtp.school.test").map(|e| e.summary.clone()).collect();
    assert!(connects.iter().any(|s| s.contains("port 465")), "{connects:?}");
}

#[tokio::test]
async fn curl_sends_with_ssl_reqd_and_over_smtps() {
    let lab = Lab::servers("{}", "{}").await;
    let dir = TempDir::new("curl-mail");
    let mail = dir.write("mail.txt", "From: alice@school.test\r\nTo: bob@example.org\r\nSubject: curl over TLS\r\n\r\nHello Bob.\r\n");
    let starttls = format!("smtp://{}", lab.addr("smtp.school.test", Service::Submission));
    let implicit = format!("smtps://{}", lab.addr("smtp.school.test", Service::Submissions));
    for (url, extra) in [(&starttls, Some("--ssl-reqd")), (&implicit, None)] {
        let mut args = vec!["--silent", "--show-error", "--max-time", "20", "--cacert", lab.ca(), "-u", "alice@school.test:wonderland"];
        args.extend(extra);
        args.extend(["--mail-from", "alice@school.test", "--mail-rcpt", "bob@example.org", "--upload-file", mail.to_str().expect("utf-8"), url]);
        let (ok, out, err) = run("curl", &args, "").await;
        assert!(ok, "curl {url} failed: {out}\n{err}");
    }
    lab.settle().await;
    assert_eq!(lab.inbox("bob@example.org"), 2);
    // Without the CA curl refuses the certificate (it trusts only real roots).
    let (ok, _, err) = run("curl", &["--silent", "--show-error", "--max-time", "20", "--ssl-reqd", "-u", "alice@school.test:wonderland", &starttls], "").await;
    assert!(!ok && err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn python_smtplib_starttls() {
    let lab = Lab::servers("{}", "{}").await;
    let addr = lab.addr("smtp.school.test", Service::Submission);
    let script = "import smtplib, ssl, sys\n\
        ca, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])\n\
        s = smtplib.SMTP(host, port)\n\
        s.ehlo()\n\
        print(s.has_extn('starttls'))\n\
        s.starttls(context=ssl.create_default_context(cafile=ca))\n\
        s.ehlo()\n\
        print(s.has_extn('starttls'), s.sock.version())\n\
        s.login('alice@school.test', 'wonderland')\n\
        print(s.sendmail('alice@school.test', ['bob@example.org'], 'Subject: smtplib over TLS\\r\\n\\r\\nHello Bob.\\r\\n'))\n\
        s.quit()\n";
    let (ok, out, err) = run("python3", &["-c", script, lab.ca(), &addr.ip().to_string(), &addr.port().to_string()], "").await;
    assert!(ok, "python failed:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"True"), "{out}");
    assert!(lines.get(1).is_some_and(|l| l.starts_with("False TLSv1.")), "{out}");
    assert_eq!(lines.get(2), Some(&"{}"), "no recipient refused: {out}");
    lab.settle().await;
    assert_eq!(lab.inbox("bob@example.org"), 1);
}

#[tokio::test]
async fn where_plaintext_logins_are_off_auth_waits_for_starttls() {
    let lab = Lab::servers(r#"{ "plaintext_login": false }"#, "{}").await;
    let (mut smtp, _) = Raw::connect(lab.addr("smtp.school.test", Service::Submission)).await;
    let ehlo = smtp.cmd("EHLO laptop.school.test").await;
    assert!(ehlo.contains("250-STARTTLS") || ehlo.contains("250 STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "no AUTH offered before TLS: {ehlo}");
    let refused = smtp.cmd(&format!("AUTH PLAIN {}", auth_plain("alice@school.test", "wonderland"))).await;
    assert_eq!(refused, "530 5.7.0 Must issue a STARTTLS command first\r\n");
    assert!(smtp.cmd("MAIL FROM:<alice@school.test>").await.starts_with("530 5.7.0"));
    // Python's smtplib without STARTTLS cannot log in; with it, it can.
    let addr = lab.addr("smtp.school.test", Service::Submission);
    let script = "import smtplib, ssl, sys\n\
        ca, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])\n\
        s = smtplib.SMTP(host, port)\n\
        try:\n    s.login('alice@school.test', 'wonderland')\n    print('logged in')\nexcept smtplib.SMTPNotSupportedError:\n    print('no AUTH before TLS')\n\
        s.starttls(context=ssl.create_default_context(cafile=ca))\n\
        print(s.login('alice@school.test', 'wonderland')[0])\n";
    let (ok, out, err) = run("python3", &["-c", script, lab.ca(), &addr.ip().to_string(), &addr.port().to_string()], "").await;
    assert!(ok, "python failed:\n{out}\n{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["no AUTH before TLS", "235"], "{out}");
    let json = serde_json::to_string(&lab.world.trace.since(0)).expect("serialize");
    assert!(!json.contains("wonderland"), "the refused password is not in the trace");
}

#[tokio::test]
async fn where_tls_is_required_mail_waits_for_starttls_on_port_25() {
    let lab = Lab::servers("{}", r#"{ "policy": "required" }"#).await;
    let port25 = lab.addr("mx1.example.org", Service::Smtp);
    let (mut smtp, _) = Raw::connect(port25).await;
    assert!(smtp.cmd("EHLO outside.test").await.contains("STARTTLS"));
    assert_eq!(smtp.cmd("MAIL FROM:<carol@outside.test>").await, "530 5.7.0 Must issue a STARTTLS command first\r\n");
    assert!(smtp.cmd("RCPT TO:<bob@example.org>").await.starts_with("503"));
    assert!(smtp.cmd("QUIT").await.starts_with("221"));
    // The same with STARTTLS first is delivered.
    let addr = port25.to_string();
    let commands = "EHLO outside.test\nMAIL FROM:<carol@outside.test>\nRCPT TO:<bob@example.org>\nDATA\nSubject: hi\n\nHello.\n.\nQUIT\n";
    let args = ["s_client", "-connect", &addr, "-starttls", "smtp", "-CAfile", lab.ca(), "-verify_return_error", "-crlf", "-quiet"];
    let (ok, out, err) = run("openssl", &args, commands).await;
    assert!(ok && out.contains("queued as"), "{out}\n{err}");
    assert_eq!(lab.inbox("bob@example.org"), 1);
}

#[tokio::test]
async fn port_465_speaks_tls_from_the_first_byte() {
    let lab = Lab::servers("{}", "{}").await;
    let mut stream = TcpStream::connect(lab.addr("smtp.school.test", Service::Submissions)).await.expect("connect");
    stream.write_all(b"EHLO plaintext.test\r\n").await.expect("write");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(GENEROUS, stream.read_to_end(&mut rest)).await;
    assert!(!String::from_utf8_lossy(&rest).contains("220"), "no SMTP greeting in plaintext on port 465");
    let deadline = std::time::Instant::now() + GENEROUS;
    while lab.handshakes(HandshakeStep::Failed).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no failed handshake traced");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(lab.handshakes(HandshakeStep::Failed)[0].summary.contains("does not speak TLS"));
    // With TLS, the greeting comes after the handshake and AUTH is offered at once.
    let addr = lab.addr("smtp.school.test", Service::Submissions).to_string();
    let args = ["s_client", "-connect", &addr, "-CAfile", lab.ca(), "-verify_return_error", "-verify_hostname", "smtp.school.test", "-crlf", "-quiet"];
    let (ok, out, err) = run("openssl", &args, "EHLO laptop.school.test\nQUIT\n").await;
    assert!(ok, "{out}\n{err}");
    assert!(out.starts_with("220 smtp.school.test ESMTP") && out.contains("AUTH PLAIN LOGIN") && !out.contains("STARTTLS"), "{out}");
}

#[tokio::test]
async fn with_tls_off_smtp_offers_no_starttls() {
    // (smtp.school.test lists submissions, which TLS off would contradict: a host of its own.)
    let text = r#"{
  "title": "No TLS",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp", "submission"], "domains": ["example.org"], "tls": { "policy": "off" } } },
  "users": { "bob@example.org": { "password": "builder" } }
}"#;
    let lab = Lab::start(Scenario::parse("off.json", text).expect("valid")).await;
    let (mut smtp, _) = Raw::connect(lab.addr("mx1.example.org", Service::Submission)).await;
    let ehlo = smtp.cmd("EHLO laptop").await;
    assert!(!ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    assert_eq!(smtp.cmd("STARTTLS").await, "502 5.5.1 STARTTLS not available\r\n");
}

// ---------------------------------------------------------------------------
// The world's own senders: devices and relaying hosts.

/// Alice's laptop sends Bob "Lunch?" at 0s.
const SEND: &str = r#", "steps": [ { "at": "0s", "send": { "client": "alice-laptop", "to": ["bob@example.org"], "subject": "Lunch?", "body": "Hi Bob" } } ]"#;

impl Lab {
    /// Waits until the trace has an event matching `wanted`.
    async fn wait_for(&self, what: &str, wanted: impl Fn(&Event) -> bool) -> Event {
        let deadline = std::time::Instant::now() + GENEROUS;
        loop {
            if let Some(e) = self.world.trace.since(0).iter().find(|e| wanted(e)) {
                return (**e).clone();
            }
            assert!(std::time::Instant::now() < deadline, "no {what} in the trace");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The lines one host sent to another, with whether each was encrypted.
    fn lines_between(&self, from: &str, to: &str) -> Vec<(String, bool)> {
        let events = self.world.trace.since(0);
        events
            .iter()
            .filter(|e| e.from == from && e.to == to)
            .filter_map(|e| if let Kind::Line { line, .. } = &e.kind { Some((line.clone(), e.tls.is_some())) } else { None })
            .collect()
    }

    fn queue_states(&self, host: &str) -> Vec<QueueState> {
        let events = self.world.trace.since(0);
        events.iter().filter(|e| e.from == host).filter_map(|e| if let Kind::Queue { state, .. } = &e.kind { Some(*state) } else { None }).collect()
    }
}

/// Asserts that `lines` has STARTTLS in plaintext, then the rest (from the
/// second EHLO on) encrypted, and returns the encrypted ones.
fn encrypted_after_starttls(lines: &[(String, bool)]) -> Vec<String> {
    let at = lines.iter().position(|(l, _)| l == "STARTTLS").unwrap_or_else(|| panic!("no STARTTLS in {lines:?}"));
    assert!(lines[..=at].iter().all(|(_, tls)| !tls), "before and with STARTTLS: plaintext: {lines:?}");
    assert!(lines[at + 1..].iter().all(|(_, tls)| *tls), "after STARTTLS: every line encrypted: {lines:?}");
    lines[at + 1..].iter().map(|(l, _)| l.clone()).collect()
}

#[tokio::test]
async fn a_device_submission_and_a_relay_hop_are_encrypted() {
    // Passwords only over TLS at Alice's server: the device must do STARTTLS to send at all.
    let lab = Lab::start(scenario(r#"{ "plaintext_login": false }"#, "{}", SEND)).await;
    lab.world.run_to_end().await;
    assert_eq!(lab.inbox("bob@example.org"), 1, "the message reached Bob");

    let submission = encrypted_after_starttls(&lab.lines_between("alice-laptop", "smtp.school.test"));
    assert!(submission[0].starts_with("EHLO ") && submission[1].starts_with("AUTH PLAIN"), "hello again, then the login: {submission:?}");
    let auth = lab.line("AUTH PLAIN");
    assert_eq!(auth.tls.as_ref().map(|t| t.certificate.as_str()), Some("CN=smtp.school.test, O=mailflow world"));

    let relay = encrypted_after_starttls(&lab.lines_between("smtp.school.test", "mx1.example.org"));
    assert!(relay.iter().any(|l| l.starts_with("MAIL FROM:<alice@school.test>")), "{relay:?}");
    let mail = lab
        .world
        .trace
        .since(0)
        .into_iter()
        .find(|e| e.to == "mx1.example.org" && matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("MAIL FROM")))
        .expect("MAIL FROM to mx1");
    let tls = mail.tls.as_ref().expect("the relay hop is encrypted");
    assert!(tls.version.starts_with("TLSv1.") && !tls.cipher_suite.is_empty(), "{tls:?}");
    assert_eq!(tls.certificate, "CN=mx1.example.org, O=mailflow world");
    // Two handshakes, each with its four steps, each seen by its server.
    assert_eq!(lab.handshakes(HandshakeStep::Finished).len(), 2);
    assert!(lab.handshakes(HandshakeStep::Failed).is_empty());
    let json = serde_json::to_string(&lab.world.trace.since(0)).expect("serialize");
    assert!(!json.contains("wonderland"), "no password in the trace");
}

#[tokio::test]
async fn a_device_submits_on_port_465_when_that_is_all_its_server_serves() {
    let text = scenario("{}", "{}", SEND);
    let mut text = serde_json::to_value(&text).expect("serialize");
    text["hosts"]["smtp.school.test"]["services"] = serde_json::json!(["submissions", "smtp"]);
    let lab = Lab::start(Scenario::parse("465.json", &text.to_string()).expect("valid")).await;
    lab.world.run_to_end().await;
    assert_eq!(lab.inbox("bob@example.org"), 1);
    let lines = lab.lines_between("alice-laptop", "smtp.school.test");
    assert!(!lines.is_empty() && lines.iter().all(|(_, tls)| *tls), "every line on port 465 is encrypted: {lines:?}");
    assert!(!lines.iter().any(|(l, _)| l == "STARTTLS"), "{lines:?}");
    let connect = lab.wait_for("connect on 465", |e| matches!(e.kind, Kind::Connect) && e.from == "alice-laptop").await;
    assert!(connect.summary.contains("port 465"), "{}", connect.summary);
}

#[tokio::test]
async fn a_broken_certificate_on_the_mx_keeps_the_mail_queued() {
    for (fault, why) in [("wrong_name", "another name"), ("expired", "expired"), ("unknown_ca", "a CA the client does not trust")] {
        let lab = Lab::start(scenario("{}", &format!(r#"{{ "certificate": "{fault}" }}"#), SEND)).await;
        let _steps = lab.world.start_steps();
        // The relay checks the certificate, gives up on mx1 and keeps the message.
        let refused = lab
            .wait_for("client-side TLS failure", |e| e.from == "smtp.school.test" && matches!(e.kind, Kind::TlsHandshake { step: HandshakeStep::Failed, .. }))
            .await;
        assert!(refused.summary.contains(why) && refused.to == "mx1.example.org", "{fault}: {}", refused.summary);
        lab.wait_for("deferred", |e| matches!(&e.kind, Kind::Queue { state: QueueState::Deferred, .. })).await;
        assert_eq!(lab.inbox("bob@example.org"), 0, "{fault}: nothing delivered");
        let relay = lab.lines_between("smtp.school.test", "mx1.example.org");
        assert!(!relay.iter().any(|(l, _)| l.starts_with("MAIL")), "{fault}: no mail sent to an unverified server: {relay:?}");
        let queued = lab.world.hosts["smtp.school.test"].queue();
        assert_eq!(queued.len(), 1, "{fault}: the message waits in the queue");
        assert!(lab.queue_states("smtp.school.test").contains(&QueueState::Deferred));
        lab.world.shutdown().await;
    }
}

#[tokio::test]
async fn a_domain_that_requires_tls_never_gets_plaintext() {
    for require in [false, true] {
        let mut text = serde_json::to_value(scenario("{}", r#"{ "policy": "off" }"#, SEND)).expect("serialize");
        text["domains"]["example.org"]["require_tls"] = serde_json::json!(require);
        let lab = Lab::start(Scenario::parse("require.json", &text.to_string()).expect("valid")).await;
        let _steps = lab.world.start_steps();
        if require {
            let note = lab.wait_for("the relay's reason", |e| e.from == "smtp.school.test" && e.summary.contains("STARTTLS")).await;
            assert!(note.summary.contains("offers no STARTTLS") && note.summary.contains("no plaintext fallback"), "{}", note.summary);
            lab.wait_for("deferred", |e| matches!(&e.kind, Kind::Queue { state: QueueState::Deferred, .. })).await;
            assert_eq!(lab.inbox("bob@example.org"), 0);
            let relay = lab.lines_between("smtp.school.test", "mx1.example.org");
            assert!(!relay.iter().any(|(l, _)| l.starts_with("MAIL")), "nothing sent in plaintext: {relay:?}");
            // Each attempt is EHLO then QUIT (the queue keeps retrying, so a
            // new attempt's EHLO may already be the last line read).
            assert!(relay.iter().any(|(l, _)| l == "QUIT"), "the sender says goodbye: {relay:?}");
            assert!(relay.iter().all(|(l, _)| l.starts_with("EHLO") || l == "QUIT"), "only hello and goodbye: {relay:?}");
        } else {
            // Opportunistic TLS: no STARTTLS on offer, so the mail goes in plaintext.
            lab.world.conductor.clock().until_idle().await;
            assert_eq!(lab.inbox("bob@example.org"), 1);
            let relay = lab.lines_between("smtp.school.test", "mx1.example.org");
            assert!(relay.iter().any(|(l, tls)| l.starts_with("MAIL") && !tls), "{relay:?}");
        }
        lab.world.shutdown().await;
    }
}

#[tokio::test]
async fn a_device_refuses_a_submission_server_with_a_broken_certificate() {
    let lab = Lab::start(scenario(r#"{ "certificate": "wrong_name" }"#, "{}", SEND)).await;
    lab.world.run_to_end().await;
    let refused = lab.handshakes(HandshakeStep::Failed);
    let device = refused.iter().find(|e| e.from == "alice-laptop").expect("the device traces why it gave up");
    assert!(device.summary.contains("another name"), "{}", device.summary);
    let failure = lab.wait_for("the device's failure", |e| e.from == "alice-laptop" && matches!(e.kind, Kind::Failure { .. })).await;
    assert!(failure.summary.contains("TLS"), "{}", failure.summary);
    let lines = lab.lines_between("alice-laptop", "smtp.school.test");
    assert!(!lines.iter().any(|(l, _)| l.starts_with("AUTH")), "the password never left the laptop: {lines:?}");
    assert!(lab.world.hosts["smtp.school.test"].queue().is_empty() && lab.inbox("bob@example.org") == 0);
}
