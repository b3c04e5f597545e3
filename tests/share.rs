//! `--share ADDR`: students' own mail programs join the teacher's world
//! through one address. ADDR is a second loopback address of the test's
//! own block (`127.X.Y.200`), standing for the teacher's address on the
//! classroom network, and the "student's laptop" is `127.X.Y.150`: nothing
//! leaves this machine.
//!
//! Python's `smtplib`, `imaplib` and `poplib` (with STARTTLS, trusting the
//! CA fetched from the page's `/ca.pem` and checking the certificate
//! against ADDR) send a message as Alice through the shared submission
//! port and read it as Bob through the shared IMAP and POP3 ports; the
//! story shows those hops, named by the student's address; `dig` asks the
//! shared DNS port; `/api/share` and the QR code name the students' page.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mailflow::conductor::Pace;
use mailflow::scenario::{DEFAULT_SCENARIO, DEFAULT_SCENARIO_NAME, Scenario, Service};
use mailflow::trace::{Kind, Protocol};
use mailflow::web::{AppState, Control, WebConfig, WebServer};
use mailflow::world::WorldOptions;
use mailflow::world::share;

use crate::common::{self, GENEROUS, Net, TempDir};

const BOB: &str = "bob@example.org";

/// A world of the built-in scenario shared on `127.X.Y.200`, with its page
/// on `127.0.0.1` and on the shared address (the same port), as `demo
/// --share` serves it.
struct Shared {
    net: Net,
    state: Arc<AppState>,
    servers: Vec<WebServer>,
    address: IpAddr,
}

impl Shared {
    async fn start() -> Shared {
        let net = Net::random();
        let address = IpAddr::V4(net.addr(200));
        let config = WebConfig {
            world: WorldOptions { subnet: net.subnet(), network_timeout: Duration::from_secs(5), share: Some(address), ..WorldOptions::default() },
            control_token: Some("teacher".into()),
            scenarios_dir: common::repo().join("scenarios"),
            limits: Default::default(),
        };
        let state =
            AppState::start(config, Control::from_pace(Pace::Fast), Scenario::default_scenario(), DEFAULT_SCENARIO_NAME.into(), DEFAULT_SCENARIO.into())
                .await
                .expect("the shared world starts");
        let teacher = WebServer::start("127.0.0.1:0".parse().unwrap(), state.clone()).await.expect("the teacher's page");
        let students = WebServer::start(SocketAddr::new(address, teacher.addr.port()), state.clone()).await.expect("the page on the shared address");
        Shared { net, state, servers: vec![teacher, students], address }
    }

    fn page(&self) -> String {
        format!("http://{}/", self.servers[1].addr)
    }

    async fn stop(mut self) {
        while let Some(server) = self.servers.pop() {
            server.shutdown().await;
        }
    }
}

/// Runs a Python script with `args`; its stdout. Every connection it
/// opens leaves from `student` (the student's laptop).
async fn python(script: &str, student: IpAddr, args: &[&str]) -> String {
    let prelude = format!(
        "import socket\n_connect = socket.create_connection\n\
         def _from_student(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kw):\n\
         \x20   return _connect(address, timeout, ('{student}', 0), **kw)\n\
         socket.create_connection = _from_student\n"
    );
    let output = tokio::process::Command::new("python3").arg("-c").arg(format!("{prelude}{script}")).args(args).kill_on_drop(true).output();
    let output = tokio::time::timeout(GENEROUS, output)
        .await
        .expect("python hung")
        .unwrap_or_else(|e| panic!("python3 is needed for this test (apt-get install python3): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "the python script failed ({}):\nstdout:\n{stdout}\nstderr:\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    stdout
}

/// Fetches the CA from the students' page, then sends as Alice through
/// the shared submission port with STARTTLS (argv: page addr port subject).
const SEND: &str = r#"
import smtplib, ssl, sys, urllib.request
page, addr, port, subject = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
pem = urllib.request.urlopen(page + "ca.pem", timeout=20).read().decode()
open(sys.argv[5], "w").write(pem)
tls = ssl.create_default_context(cafile=sys.argv[5])
with smtplib.SMTP(addr, port, timeout=30) as s:
    s.ehlo("student-laptop")
    s.starttls(context=tls)
    s.ehlo("student-laptop")
    s.login("alice@school.test", "wonderland")
    msg = "From: alice@school.test\r\nTo: bob@example.org\r\nSubject: %s\r\n\r\nSent from a student's own mail program.\r\n" % subject
    refused = s.sendmail("alice@school.test", ["bob@example.org"], msg)
    print("sent", refused)
"#;

/// Reads Bob's mail through the shared IMAP and POP3 ports, STARTTLS and
/// STLS first (argv: addr imap_port pop3_port cafile subject).
const READ: &str = r#"
import imaplib, poplib, ssl, sys
addr, imap_port, pop3_port, cafile, subject = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
tls = ssl.create_default_context(cafile=cafile)
m = imaplib.IMAP4(addr, imap_port, timeout=30)
m.starttls(ssl_context=tls)
m.login("bob@example.org", "builder")
m.select("INBOX", readonly=True)
typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
ids = data[0].split()
typ, fetched = m.fetch(ids[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("imap", len(ids), fetched[0][1].decode().strip())
m.logout()
p = poplib.POP3(addr, pop3_port, timeout=30)
p.stls(context=tls)
p.user("bob@example.org"); p.pass_("builder")
count, size = p.stat()
found = [n for n in range(1, count + 1) if any(subject.encode() in line for line in p.top(n, 0)[1])]
print("pop3", len(found))
p.quit()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_students_mail_programs_send_and_read_through_the_shared_ports() {
    let shared = Shared::start().await;
    let world = shared.state.session().world.clone();
    let plan = world.share.clone().expect("the world is shared");
    let student = IpAddr::V4(shared.net.addr(150));
    let addr = shared.address.to_string();
    let (submission, imap, pop3) = (
        plan.port_of("smtp.school.test", Service::Submission).unwrap(),
        plan.port_of("mx1.example.org", Service::Imap).unwrap(),
        plan.port_of("mx1.example.org", Service::Pop3).unwrap(),
    );
    assert_eq!((submission, imap, pop3), (20187, 20243, 20210), "host 1 is smtp.school.test, host 2 mx1.example.org (the 2HHSS rule)");

    let temp = TempDir::new("share");
    let ca = temp.join("ca.pem");
    let subject = format!("From the back row {}", shared.net.y);
    let sent = python(SEND, student, &[&shared.page(), &addr, &submission.to_string(), &subject, ca.to_str().unwrap()]).await;
    assert_eq!(sent.trim(), "sent {}");
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), world.tls.ca.pem(), "/ca.pem is the world's CA");

    // The message travels on by itself: smtp.school.test relays it to mx1.
    let mx1 = world.hosts["mx1.example.org"].clone();
    let arrived = tokio::time::timeout(GENEROUS, async {
        loop {
            if mx1.store.inbox(BOB).iter().any(|m| String::from_utf8_lossy(&m.raw).contains(&subject)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(arrived.is_ok(), "the student's message reaches Bob's mailbox on mx1.example.org");

    let read = python(READ, student, &[&addr, &imap.to_string(), &pop3.to_string(), ca.to_str().unwrap(), &subject]).await;
    assert_eq!(read.lines().collect::<Vec<_>>(), [format!("imap 1 Subject: {subject}").as_str(), "pop3 1"], "{read}");

    // The story: the student's laptop, by its real address, through the shared ports.
    let events = world.trace.since(0);
    let name = student.to_string();
    for (host, port, protocol) in
        [("smtp.school.test", submission, Protocol::Smtp), ("mx1.example.org", imap, Protocol::Imap), ("mx1.example.org", pop3, Protocol::Pop3)]
    {
        let door = format!("{}:{port}", shared.address);
        assert!(
            events.iter().any(|e| matches!(e.kind, Kind::Note) && e.from == name && e.to == host && e.protocol == protocol && e.summary.contains(&door)),
            "a note says {name} came in through {door} to {host}"
        );
        assert!(
            events.iter().any(|e| matches!(e.kind, Kind::Connect) && e.from == name && e.to == host && e.protocol == protocol),
            "{host}'s {protocol:?} server tells of {name} connecting"
        );
        assert!(
            events.iter().any(|e| e.protocol == protocol && (e.from == name || e.to == name) && matches!(e.kind, Kind::TlsHandshake { .. })),
            "{protocol:?} over TLS"
        );
    }
    // The relay hop of the student's message, as for any other message.
    assert!(
        events.iter().any(|e| e.from == "smtp.school.test" && e.to == "mx1.example.org" && e.message.as_ref().is_some_and(|m| m.label.contains(&subject))),
        "smtp.school.test relays the student's message to mx1.example.org"
    );
    // No password in the story.
    assert!(events.iter().all(|e| !e.summary.contains("wonderland") && !e.summary.contains("builder")), "no password in the story");
    shared.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_asks_the_shared_dns_port() {
    let shared = Shared::start().await;
    let at = [format!("@{}", shared.address), "-p".into(), share::DNS_PORT.to_string()];
    for transport in ["+notcp", "+tcp"] {
        let args: Vec<String> = at.iter().cloned().chain([transport.into(), "+short".into(), "MX".into(), "example.org".into()]).collect();
        let answer = common::short_lines(&common::dig(&args).await);
        assert_eq!(answer, ["10 mx1.example.org.", "20 mx2.example.org."], "{transport}");
    }
    let args: Vec<String> = at.iter().cloned().chain(["+short".into(), "A".into(), "mx1.example.org".into()]).collect();
    assert_eq!(common::short_lines(&common::dig(&args).await), [shared.net.addr(3).to_string()], "the A record is the host's own address");
    // The teacher loads another lesson: the new world is shared on the same
    // address (the old one let go of the ports first), with its own hosts.
    let text = std::fs::read_to_string(common::repo().join("scenarios/mx-change.json")).unwrap();
    let scenario = Scenario::parse("scenarios/mx-change.json", &text).unwrap();
    shared.state.replace(scenario.clone(), "scenarios/mx-change.json".into(), text).await.expect("the next lesson starts");
    let world = shared.state.session().world.clone();
    assert_eq!(world.share.as_ref().map(|p| p.services.len()), Some(scenario.hosts.values().map(|h| h.services.len()).sum()));
    let domain = scenario.domains.keys().next().unwrap().clone();
    let args: Vec<String> = at.iter().cloned().chain(["+short".into(), "SOA".into(), domain.clone()]).collect();
    assert!(!common::short_lines(&common::dig(&args).await).is_empty(), "the new world's DNS answers for {domain} on the shared port");
    shared.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_tells_students_their_settings_and_shows_the_qr_code() {
    let shared = Shared::start().await;
    // The teacher's page (127.0.0.1) and the students' (ADDR) name the same students' page.
    for server in &shared.servers {
        let base = format!("http://{}", server.addr);
        let body = http_get(&format!("{base}/api/share")).await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["page"], shared.page(), "{body}");
        assert_eq!(json["ca"], format!("{}ca.pem", shared.page()));
        assert_eq!(json["dns"]["port"], 20053);
        let bob = json["users"].as_array().unwrap().iter().find(|u| u["user"] == BOB).expect("bob's settings");
        assert_eq!(bob["incoming"][0]["protocol"], "IMAP");
        assert_eq!(bob["incoming"][0]["server"], shared.address.to_string());
        assert_eq!(bob["incoming"][0]["port"], 20243);
        assert_eq!(bob["incoming"][0]["security"], "STARTTLS");
        assert!(!body.contains("builder") && !body.contains("wonderland"), "no passwords on the page: {body}");
        let svg = http_get(&format!("{base}/api/share/qr.svg")).await;
        assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
    }
    shared.stop().await;
}

#[test]
fn the_command_line_prints_the_table_and_refuses_a_wildcard() {
    let net = Net::random();
    let address = net.addr(200).to_string();
    let out = common::run_mailflow(&["run", "scenarios/alice-writes-to-bob.json", "--fast", "--quiet", "--subnet", &net.subnet().to_string()], b"");
    assert!(!out.stdout.contains("Thunderbird"), "run does not share: {}", out.stdout);
    let out = common::run_mailflow(&["demo", "--share", "0.0.0.0", "--no-web", "--fast", "--quiet", "--subnet", &net.subnet().to_string()], b"")
        .expect_success(false);
    assert!(out.stderr.contains("the address students will type"), "{}", out.stderr);
    // `serve --no-web --share` prints the table, then stays up: stop it with SIGTERM.
    let mut child = common::mailflow()
        .args(["serve", "scenarios/alice-writes-to-bob.json", "--no-web", "--fast", "--quiet", "--share", &address, "--subnet", &net.subnet().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mailflow starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let deadline = std::time::Instant::now() + GENEROUS;
    while !text.contains("POP3     server") && std::time::Instant::now() < deadline {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap_or(0) == 0 {
            break;
        }
        text.push_str(&line);
    }
    // Only this child, by its own id.
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert!(text.contains(&format!("Shared for students' own mail programs on {address}")), "{text}");
    assert!(text.contains(&format!("IMAP     server {address}  port 20243  STARTTLS")), "{text}");
    assert!(text.contains(&format!("outgoing server {address}  port 20187  STARTTLS")), "{text}");
}

/// A plain HTTP/1.1 GET with curl (installed for the other tests); the body.
async fn http_get(url: &str) -> String {
    let output = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "20", url])
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs");
    assert!(output.status.success(), "curl {url}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_share_the_page_offers_the_ca_but_no_settings() {
    let state = crate::web_support::start(Pace::Fast, None).await;
    assert_eq!(crate::web_support::get(&state, "/api/share").await.status, 404);
    assert_eq!(crate::web_support::get(&state, "/api/share/qr.svg").await.status, 404);
    let ca = crate::web_support::get(&state, "/ca.pem").await;
    assert_eq!(ca.status, 200);
    assert_eq!(ca.text(), state.session().world.tls.ca.pem(), "a certificate is public: anyone may fetch it");
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_port_follows_its_host_down_and_up() {
    let shared = Shared::start().await;
    let world = shared.state.session().world.clone();
    let door = SocketAddr::new(shared.address, share::port(2, Service::Imap));
    let greeting = |stream: tokio::net::TcpStream| async move {
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stream);
        tokio::time::timeout(GENEROUS, tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line)).await.expect("a greeting").expect("read");
        line
    };
    let first = tokio::net::TcpStream::connect(door).await.expect("mx1's IMAP through the shared port");
    assert!(greeting(first).await.starts_with("* OK"), "mx1.example.org's IMAP greets through {door}");
    // The host goes down: its forwarded port refuses, like its own address.
    world.hosts["mx1.example.org"].set_up(false);
    let refused = tokio::time::timeout(GENEROUS, async {
        loop {
            if tokio::net::TcpStream::connect(door).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "{door} refuses while mx1.example.org is down");
    world.hosts["mx1.example.org"].set_up(true);
    let back = tokio::time::timeout(GENEROUS, async {
        loop {
            if let Ok(stream) = tokio::net::TcpStream::connect(door).await {
                return stream;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the shared port opens again");
    assert!(greeting(back).await.starts_with("* OK"));
    shared.stop().await;
}
