//! TLS on retrieval (issue 10): IMAP STARTTLS and IMAPS, POP3 STLS and
//! POP3S, tried with the clients a student would use — `openssl
//! s_client`, `curl --cacert`, Python's `imaplib` and `poplib` — each
//! trusting only the world's CA. Also: LOGINDISABLED and refused USER
//! where TLS is required, each broken certificate refused by a careful
//! client, what the trace shows (handshake steps, TLS records, encrypted
//! hops) and the CA kept across restarts in `--data`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use mailflow::conductor::Pace;
use mailflow::scenario::{Scenario, Service};
use mailflow::trace::{Direction, HandshakeStep, Kind, Protocol};
use mailflow::world::{World, WorldOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{Net, TempDir, run_mailflow};

/// mx1.example.org keeps Bob's mail and serves IMAP, IMAPS, POP3, POP3S;
/// `tls` is its TLS setting (JSON). Alice sends Bob "Lunch?" at 0s.
fn scenario(tls: &str) -> Scenario {
    scenario_with(tls, r#""smtp", "imap", "imaps", "pop3", "pop3s""#)
}

fn scenario_with(tls: &str, services: &str) -> Scenario {
    let text = format!(
        r#"{{
  "title": "TLS test",
  "domains": {{
    "school.test": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "smtp.school.test" }} ] }},
    "example.org": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "mx1.example.org" }} ] }}
  }},
  "hosts": {{
    "smtp.school.test": {{ "services": ["submission", "smtp"], "domains": ["school.test"] }},
    "mx1.example.org": {{ "services": [{services}], "domains": ["example.org"], "tls": {tls} }}
  }},
  "users": {{
    "alice@school.test": {{ "password": "wonderland" }},
    "bob@example.org": {{ "password": "builder" }}
  }},
  "clients": {{ "alice-laptop": {{ "user": "alice@school.test", "submit_to": "smtp.school.test" }} }},
  "steps": [ {{ "at": "0s", "send": {{ "client": "alice-laptop", "to": ["bob@example.org"], "subject": "Lunch?", "body": "Hi Bob,\nlunch at noon?\nAlice\n" }} }} ]
}}"#
    );
    Scenario::parse("tls.json", &text).unwrap_or_else(|e| panic!("test scenario: {e}"))
}

/// A world with Bob's message delivered, and its CA in a file.
struct Lab {
    world: Arc<World>,
    _dir: TempDir,
    ca: PathBuf,
}

impl Lab {
    async fn start(tls: &str) -> Lab {
        Self::start_with(tls, None).await
    }

    async fn start_with(tls: &str, data_dir: Option<PathBuf>) -> Lab {
        let net = Net::random();
        let options = WorldOptions { subnet: net.subnet(), pace: Pace::Fast, data_dir, ..Default::default() };
        let world = World::start(scenario(tls), options).await.unwrap_or_else(|e| panic!("the world does not start: {e}"));
        if tls.contains("certificate") {
            // Alice's server would refuse mx1's broken certificate and keep
            // the message queued (tls_smtp.rs): put it in Bob's mailbox directly.
            let lunch = b"Subject: Lunch?\r\n\r\nHi Bob,\r\nlunch at noon?\r\nAlice\r\n".to_vec();
            world.hosts["mx1.example.org"].store.deliver("bob@example.org", lunch, std::time::Duration::ZERO).expect("delivered");
        } else {
            world.run_to_end().await;
        }
        assert!(!world.hosts["mx1.example.org"].store.inbox("bob@example.org").is_empty(), "Alice's message reached Bob");
        let dir = TempDir::new("tls");
        let ca = dir.write("ca.pem", world.tls.ca.pem());
        Lab { world, _dir: dir, ca }
    }

    fn addr(&self, service: Service) -> SocketAddr {
        let node = self.world.node("mx1.example.org").expect("mx1 exists");
        SocketAddr::new(IpAddr::V4(node.address), self.world.port(service))
    }

    fn ca(&self) -> &str {
        self.ca.to_str().expect("a UTF-8 temp path")
    }

    /// The handshake steps the retrieval servers traced, in order (SMTP
    /// hops are encrypted too, but are not what these tests are about).
    fn handshake_steps(&self) -> Vec<HandshakeStep> {
        let retrieval = self.world.trace.since(0).into_iter().filter(|e| e.protocol != Protocol::Smtp);
        retrieval.filter_map(|e| if let Kind::TlsHandshake { step, .. } = &e.kind { Some(*step) } else { None }).collect()
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
    let output = tokio::time::timeout(crate::common::GENEROUS, child.wait_with_output()).await.expect("the client finishes").expect("the client ran");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// `openssl s_client` trusting only the world's CA, checking the name.
async fn s_client(lab: &Lab, service: Service, starttls: Option<&str>, commands: &str) -> (bool, String, String) {
    let addr = lab.addr(service).to_string();
    let mut args = vec!["s_client", "-connect", &addr, "-CAfile", lab.ca(), "-verify_return_error", "-verify_hostname", "mx1.example.org"];
    args.extend(["-servername", "mx1.example.org", "-crlf", "-quiet"]);
    if let Some(protocol) = starttls {
        args.extend(["-starttls", protocol]);
    }
    run("openssl", &args, commands).await
}

#[tokio::test]
async fn openssl_starttls_imap_logs_in_over_tls() {
    let lab = Lab::start("{}").await;
    let (ok, out, err) = s_client(&lab, Service::Imap, Some("imap"), "a1 LOGIN bob@example.org builder\na2 SELECT INBOX\na3 LOGOUT\n").await;
    assert!(ok, "openssl failed:\n{out}\n{err}");
    assert!(out.contains("a1 OK") && out.contains("* 1 EXISTS") && out.contains("a3 OK"), "{out}");
    assert!(err.contains("verify return:1"), "the certificate was verified: {err}");
    let steps = lab.handshake_steps();
    assert_eq!(steps, [HandshakeStep::ClientHello, HandshakeStep::Certificate, HandshakeStep::KeysAgreed, HandshakeStep::Finished]);
    let events = lab.world.trace.since(0);
    // Lines before STARTTLS are plaintext hops; the LOGIN after it is encrypted.
    let starttls = events.iter().find(|e| matches!(&e.kind, Kind::Line { line, .. } if line.ends_with(" STARTTLS")));
    assert!(starttls.is_some_and(|e| e.tls.is_none()), "STARTTLS itself crosses in plaintext");
    let login = events.iter().find(|e| matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("a1 LOGIN"))).expect("the LOGIN is traced");
    let tls = login.tls.as_ref().expect("the LOGIN hop is encrypted");
    assert!(tls.version.starts_with("TLSv1."), "{tls:?}");
    assert_eq!(tls.certificate, "CN=mx1.example.org, O=mailflow world");
    // The eavesdropper's view: records, never the password.
    let records: Vec<_> = events.iter().filter(|e| matches!(e.kind, Kind::TlsRecords { .. })).collect();
    assert!(
        records.iter().any(|e| matches!(&e.kind, Kind::TlsRecords { direction: Direction::ToServer, records, .. } if records.iter().any(|r| r.content_type == "application_data"))),
        "the client's encrypted lines are captured"
    );
    let json = serde_json::to_string(&records).expect("events serialize");
    assert!(!json.contains("builder") && !json.contains(&hex("builder")), "no password in the capture");
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn openssl_implicit_tls_on_imaps_and_pop3s() {
    let lab = Lab::start("{}").await;
    let (ok, out, err) = s_client(&lab, Service::Imaps, None, "a1 LOGIN bob@example.org builder\na2 STATUS INBOX (MESSAGES)\na3 LOGOUT\n").await;
    assert!(ok, "openssl (IMAPS) failed:\n{out}\n{err}");
    assert!(out.starts_with("* OK [CAPABILITY") && !out.lines().next().unwrap_or("").contains("STARTTLS"), "no STARTTLS on IMAPS: {out}");
    assert!(out.contains("* STATUS \"INBOX\" (MESSAGES 1)"), "{out}");
    let (ok, out, err) = s_client(&lab, Service::Pop3s, None, "USER bob@example.org\nPASS builder\nSTAT\nQUIT\n").await;
    assert!(ok, "openssl (POP3S) failed:\n{out}\n{err}");
    assert!(out.contains("+OK 1 "), "{out}");
}

#[tokio::test]
async fn openssl_starttls_pop3() {
    let lab = Lab::start("{}").await;
    let (ok, out, err) = s_client(&lab, Service::Pop3, Some("pop3"), "CAPA\nUSER bob@example.org\nPASS builder\nLIST\nQUIT\n").await;
    assert!(ok, "openssl failed:\n{out}\n{err}");
    assert!(out.contains("+OK bob@example.org has 1 message"), "{out}");
    // After STLS the capability list no longer offers STLS (RFC 2595 §4).
    let capa: String = out.split("\r\n.\r\n").next().unwrap_or_default().to_string();
    assert!(capa.contains("USER") && !capa.contains("STLS"), "{capa}");
}

#[tokio::test]
async fn curl_fetches_over_imaps_pop3s_and_imap_starttls() {
    let lab = Lab::start("{}").await;
    let imaps = format!("imaps://{}/INBOX;UID=1", lab.addr(Service::Imaps));
    let pop3s = format!("pop3s://{}/1", lab.addr(Service::Pop3s));
    let imap = format!("imap://{}/INBOX;UID=1", lab.addr(Service::Imap));
    for (url, extra) in [(&imaps, None), (&pop3s, None), (&imap, Some("--ssl-reqd"))] {
        let mut args = vec!["--silent", "--show-error", "--max-time", "20", "--cacert", lab.ca(), "-u", "bob@example.org:builder"];
        args.extend(extra);
        args.push(url);
        let (ok, out, err) = run("curl", &args, "").await;
        assert!(ok, "curl {url} failed: {err}");
        assert!(out.contains("Subject: Lunch?") && out.contains("lunch at noon?"), "{url}: {out}");
    }
}

/// A Python script trusting only the CA (argv[1]) at host argv[2].
async fn python(lab: &Lab, script: &str, service: Service) -> String {
    let addr = lab.addr(service);
    let (ok, out, err) = run("python3", &["-c", script, lab.ca(), &addr.ip().to_string(), &addr.port().to_string()], "").await;
    assert!(ok, "python failed:\n{out}\n{err}");
    out
}

const PY_PRELUDE: &str =
    "import imaplib, poplib, ssl, sys\nca, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])\nctx = ssl.create_default_context(cafile=ca)\n";

#[tokio::test]
async fn python_imap4_ssl_and_starttls() {
    let lab = Lab::start("{}").await;
    let ssl = format!(
        "{PY_PRELUDE}m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)\nm.login('bob@example.org', 'builder')\nprint(m.select('INBOX'))\nprint(m.socket().version())\nm.logout()\n"
    );
    let out = python(&lab, &ssl, Service::Imaps).await;
    assert!(out.contains("('OK', [b'1'])") && out.contains("TLSv1"), "{out}");
    let starttls = format!(
        "{PY_PRELUDE}m = imaplib.IMAP4(host, port)\nprint('STARTTLS' in m.capabilities)\nm.starttls(ssl_context=ctx)\nprint('STARTTLS' in m.capabilities)\nm.login('bob@example.org', 'builder')\nt, d = m.select('INBOX')\nprint(t, d)\nm.logout()\n"
    );
    let out = python(&lab, &starttls, Service::Imap).await;
    assert_eq!(out.lines().collect::<Vec<_>>(), ["True", "False", "OK [b'1']"], "{out}");
}

#[tokio::test]
async fn python_pop3_ssl_and_stls() {
    let lab = Lab::start("{}").await;
    let ssl = format!("{PY_PRELUDE}p = poplib.POP3_SSL(host, port, context=ctx)\np.user('bob@example.org')\np.pass_('builder')\nprint(p.stat())\np.quit()\n");
    let out = python(&lab, &ssl, Service::Pop3s).await;
    assert!(out.starts_with("(1, "), "{out}");
    let stls = format!(
        "{PY_PRELUDE}p = poplib.POP3(host, port)\nprint('STLS' in p.capa())\np.stls(context=ctx)\np.user('bob@example.org')\np.pass_('builder')\nprint(len(p.retr(1)[1]) > 0)\np.quit()\n"
    );
    let out = python(&lab, &stls, Service::Pop3).await;
    assert_eq!(out.lines().collect::<Vec<_>>(), ["True", "True"], "{out}");
}

/// A raw plaintext connection: what a client without TLS gets.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> (Raw, String) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut raw = Raw { reader: BufReader::new(stream) };
        let greeting = raw.line().await;
        (raw, greeting)
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(crate::common::GENEROUS, self.reader.read_line(&mut line)).await.expect("an answer").expect("read");
        line
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.reader.get_mut().write_all(format!("{line}\r\n").as_bytes()).await.expect("write");
        self.line().await
    }
}

#[tokio::test]
async fn where_tls_is_required_no_password_crosses_in_plaintext() {
    let lab = Lab::start(r#"{ "policy": "required" }"#).await;
    let (mut imap, greeting) = Raw::connect(lab.addr(Service::Imap)).await;
    assert!(greeting.contains("STARTTLS LOGINDISABLED") && !greeting.contains("AUTH=PLAIN"), "{greeting}");
    let refused = imap.cmd("a1 LOGIN bob@example.org builder").await;
    assert!(refused.starts_with("a1 NO [PRIVACYREQUIRED]"), "{refused}");
    let refused = imap.cmd("a2 AUTHENTICATE PLAIN AGJvYkBleGFtcGxlLm9yZwBidWlsZGVy").await;
    assert!(refused.starts_with("a2 NO [PRIVACYREQUIRED]"), "{refused}");
    assert!(lab.world.hosts["mx1.example.org"].store.inbox("bob@example.org").len() == 1);

    let (mut pop3, _) = Raw::connect(lab.addr(Service::Pop3)).await;
    let refused = pop3.cmd("USER bob@example.org").await;
    assert!(refused.starts_with("-ERR [AUTH]") && refused.contains("STLS"), "{refused}");
    let refused = pop3.cmd("PASS builder").await;
    assert!(refused.starts_with("-ERR [AUTH]"), "{refused}");
    pop3.reader.get_mut().write_all(b"CAPA\r\n").await.expect("write");
    let mut capa = Vec::new();
    loop {
        let line = pop3.line().await;
        if line == ".\r\n" {
            break;
        }
        capa.push(line.trim_end().to_string());
    }
    assert!(capa.contains(&"STLS".to_string()) && !capa.contains(&"USER".to_string()), "{capa:?}");

    // Python's imaplib without STARTTLS is refused too; with it, it works.
    let plain = format!(
        "{PY_PRELUDE}m = imaplib.IMAP4(host, port)\ntry:\n    m.login('bob@example.org', 'builder')\n    print('logged in')\nexcept imaplib.IMAP4.error as e:\n    print('refused', e)\n"
    );
    let out = python(&lab, &plain, Service::Imap).await;
    assert!(out.starts_with("refused") && out.contains("PRIVACYREQUIRED"), "{out}");
    let tls = format!("{PY_PRELUDE}m = imaplib.IMAP4(host, port)\nm.starttls(ssl_context=ctx)\nprint(m.login('bob@example.org', 'builder')[0])\n");
    assert_eq!(python(&lab, &tls, Service::Imap).await.trim(), "OK");
    let json = serde_json::to_string(&lab.world.trace.since(0)).expect("serialize");
    assert!(!json.contains("builder"), "the refused password is not in the trace");
}

#[tokio::test]
async fn plaintext_login_can_be_allowed_for_the_why_tls_lesson() {
    let lab = Lab::start(r#"{ "policy": "offered", "plaintext_login": true }"#).await;
    let (mut imap, greeting) = Raw::connect(lab.addr(Service::Imap)).await;
    assert!(greeting.contains("STARTTLS AUTH=PLAIN") && !greeting.contains("LOGINDISABLED"), "{greeting}");
    assert!(imap.cmd("a1 LOGIN bob@example.org builder").await.starts_with("a1 OK"));
    let login = lab.world.trace.since(0).iter().rev().find(|e| matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("a1 LOGIN"))).cloned();
    assert!(login.is_some_and(|e| e.tls.is_none()), "a plaintext hop carries no tls field");
}

#[tokio::test]
async fn with_tls_off_nothing_offers_it() {
    let net = Net::random();
    let s = scenario_with(r#"{ "policy": "off" }"#, r#""smtp", "imap""#);
    let world = World::start(s, WorldOptions { subnet: net.subnet(), pace: Pace::Fast, ..Default::default() }).await.expect("world");
    let node = world.node("mx1.example.org").expect("mx1");
    let (mut imap, greeting) = Raw::connect(SocketAddr::new(IpAddr::V4(node.address), world.port(Service::Imap))).await;
    assert!(!greeting.contains("STARTTLS"), "{greeting}");
    assert!(imap.cmd("a1 STARTTLS").await.starts_with("a1 BAD"));
    assert!(world.tls.host("mx1.example.org").is_none());
}

#[tokio::test]
async fn a_tls_port_refuses_plaintext_and_says_why() {
    let lab = Lab::start("{}").await;
    let mut stream = TcpStream::connect(lab.addr(Service::Imaps)).await.expect("connect");
    stream.write_all(b"a1 LOGIN bob@example.org builder\r\n").await.expect("write");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(crate::common::GENEROUS, stream.read_to_end(&mut rest)).await;
    assert!(!String::from_utf8_lossy(&rest).contains("OK"), "no IMAP answer to plaintext on IMAPS");
    let failed = wait_for(&lab, |e| matches!(&e.kind, Kind::TlsHandshake { step: HandshakeStep::Failed, .. })).await;
    assert!(failed.summary.contains("does not speak TLS"), "{}", failed.summary);
    let events = lab.world.trace.since(0);
    assert!(events.iter().any(|e| matches!(&e.kind, Kind::TlsRecords { records, .. } if records.iter().any(|r| r.content_type == "not_tls"))));
}

#[tokio::test]
async fn starttls_drops_commands_sent_before_the_handshake() {
    let lab = Lab::start("{}").await;
    let (mut imap, _) = Raw::connect(lab.addr(Service::Imap)).await;
    // CVE-2011-0411: a command smuggled after STARTTLS in the same packet.
    imap.reader.get_mut().write_all(b"a1 STARTTLS\r\na2 LOGIN bob@example.org builder\r\n").await.expect("write");
    assert!(imap.line().await.starts_with("a1 OK"));
    drop(imap);
    let injected = wait_for(&lab, |e| matches!(&e.kind, Kind::Failure { reason } if reason.contains("CVE-2011-0411"))).await;
    assert!(injected.summary.contains("thrown away"), "{}", injected.summary);
    let events = lab.world.trace.since(0);
    assert!(!events.iter().any(|e| matches!(&e.kind, Kind::Line { line, .. } if line.starts_with("a2"))), "a2 was never read");
}

#[tokio::test]
async fn each_broken_certificate_is_refused_and_traced() {
    for (fault, curl_says, server_says) in [
        ("wrong_name", "certificate", "the client refused the certificate"),
        ("expired", "expired", "the certificate has expired"),
        ("unknown_ca", "certificate", "a CA the client does not trust"),
    ] {
        let lab = Lab::start(&format!(r#"{{ "certificate": "{fault}" }}"#)).await;
        let url = format!("imaps://{}/INBOX", lab.addr(Service::Imaps));
        let (ok, _, err) =
            run("curl", &["--silent", "--show-error", "--max-time", "20", "--cacert", lab.ca(), "-u", "bob@example.org:builder", &url], "").await;
        assert!(!ok && err.contains(curl_says), "{fault}: curl said {err}");
        let (ok, out, err) = s_client(&lab, Service::Imaps, None, "a1 LOGOUT\n").await;
        assert!(!ok && !out.contains("a1 OK"), "{fault}: openssl accepted it: {err}");
        // The server hears the client's alert a moment after the client gave up.
        let failed = wait_for(&lab, |e| matches!(&e.kind, Kind::TlsHandshake { step: HandshakeStep::Failed, .. })).await;
        assert!(failed.summary.contains(server_says), "{fault}: {failed:#?}");
    }
}

#[tokio::test]
async fn idle_over_imaps_hears_new_mail_at_once() {
    use tokio_rustls::rustls::pki_types::ServerName;
    let lab = Lab::start("{}").await;
    let config = lab.world.tls.ca.client_config().expect("a client config");
    let tcp = TcpStream::connect(lab.addr(Service::Imaps)).await.expect("connect");
    let name = ServerName::try_from("mx1.example.org").expect("a name");
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.expect("the handshake verifies against the world's CA");
    let mut imap = BufReader::new(tls);
    let mut line = String::new();
    let mut expect = async |imap: &mut BufReader<_>, send: &str, until: &str| -> String {
        if !send.is_empty() {
            AsyncWriteExt::write_all(imap.get_mut(), format!("{send}\r\n").as_bytes()).await.expect("write");
        }
        let mut seen = String::new();
        while !seen.contains(until) {
            line.clear();
            let n = tokio::time::timeout(crate::common::GENEROUS, imap.read_line(&mut line)).await.expect("an answer").expect("read");
            assert!(n > 0, "closed early; so far: {seen}");
            seen.push_str(&line);
        }
        seen
    };
    expect(&mut imap, "", "mailflow ready").await;
    expect(&mut imap, "a1 LOGIN bob@example.org builder", "a1 OK").await;
    expect(&mut imap, "a2 SELECT INBOX", "a2 OK").await;
    expect(&mut imap, "a3 IDLE", "+ idling").await;
    let clock = std::time::Duration::ZERO;
    lab.world.hosts["mx1.example.org"].store.deliver("bob@example.org", b"Subject: news\r\n\r\nhi\r\n".to_vec(), clock).expect("delivered");
    expect(&mut imap, "", "* 2 EXISTS").await;
    expect(&mut imap, "DONE", "a3 OK").await;
    let events = lab.world.trace.since(0);
    let done = events.iter().find(|e| matches!(&e.kind, Kind::Line { line, .. } if line == "DONE")).expect("DONE is traced");
    assert!(done.tls.is_some(), "every hop of an IMAPS session is marked encrypted");
}

/// Waits until the trace has an event matching `wanted` (or fails the
/// test after a generous time).
async fn wait_for(lab: &Lab, wanted: impl Fn(&mailflow::trace::Event) -> bool) -> mailflow::trace::Event {
    let deadline = std::time::Instant::now() + crate::common::GENEROUS;
    loop {
        if let Some(e) = lab.world.trace.since(0).iter().find(|e| wanted(e)) {
            return (**e).clone();
        }
        assert!(std::time::Instant::now() < deadline, "the expected event never came");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_ca_survives_a_restart_with_data() {
    let data = TempDir::new("tls-data");
    let first = Lab::start_with("{}", Some(data.path().to_path_buf())).await;
    let pem = first.world.tls.ca.pem().to_string();
    let ca_file = data.write("trusted-ca.pem", &pem);
    first.world.shutdown().await;
    drop(first);
    let second = Lab::start_with("{}", Some(data.path().to_path_buf())).await;
    assert_eq!(second.world.tls.ca.pem(), pem, "the same CA after the restart");
    let url = format!("imaps://{}/INBOX;UID=1", second.addr(Service::Imaps));
    let ca = ca_file.to_str().expect("utf-8");
    let (ok, out, err) = run("curl", &["--silent", "--show-error", "--max-time", "20", "--cacert", ca, "-u", "bob@example.org:builder", &url], "").await;
    assert!(ok && out.contains("Subject: Lunch?"), "{err}");
    // `mailflow ca --data DIR -o FILE` writes that same certificate.
    let out_file = data.join("exported.pem");
    let output = run_mailflow(&["ca", "--data", data.path().to_str().expect("utf-8"), "-o", out_file.to_str().expect("utf-8")], b"");
    assert!(output.status.success(), "{}", output.stderr);
    assert_eq!(std::fs::read_to_string(&out_file).expect("written"), pem);
    let printed = run_mailflow(&["ca", "--data", data.path().to_str().expect("utf-8")], b"");
    assert_eq!(printed.stdout, pem);
}
