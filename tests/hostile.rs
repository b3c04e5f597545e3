//! The adversarial suite (issue 9, item 9): every server of a world —
//! SMTP relay (port 25) and submission (587), POP3, IMAP, the DNS server
//! over UDP and TCP, and the web page's HTTP and WebSocket — is attacked
//! over real loopback sockets with what no polite client sends: overlong
//! lines, NUL bytes and invalid UTF-8, huge and LITERAL+ literals, deep
//! nesting, clients that dribble one byte at a time (slowloris), 500
//! connections at once, and a hang-up in every state of every protocol.
//!
//! After each attack the same check runs ([`Ledger::check`]): a polite
//! client is served normally by every protocol, and every message that
//! got a `250` (or an IMAP `OK`) is in the mailbox, byte for byte, in the
//! order it was accepted — nothing accepted is ever lost, nothing refused
//! is ever kept.
//!
//! The servers' own idle timeouts are minutes long (RFC 5321 §4.5.3.2,
//! RFC 1939 §3, RFC 3501 §5.4), far too long to wait for here, so slowloris
//! tests check the other half of the promise: while slow clients hold
//! connections open the server keeps serving everyone else, and a slow
//! line longer than the limit is cut and answered like a fast one (memory
//! stays bounded by the line limit, whatever the pace). Nothing here
//! measures time: waits poll for a condition, bounded by [`GUARD`] so a
//! hang fails clearly instead of stalling CI.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailflow::scenario::Service;
use mailflow::trace::{Kind, Protocol};
use mailflow::world::World;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::common::{DNS_PORT, Net, start_world};

/// Only to stop a hung test; never an assertion about speed.
const GUARD: Duration = Duration::from_secs(60);
/// A pause between the bytes of a slow client: long enough that the
/// server really reads them one by one, short enough to keep the suite quick.
const DRIBBLE: Duration = Duration::from_millis(15);
/// "Many connections at once", as issue 9 asks.
const CROWD: usize = 500;

const MX: &str = "mx1.example.org";
const MSA: &str = "smtp.school.test";
const BOB: &str = "bob@example.org";
/// The largest message mx1 takes (SMTP SIZE, IMAP APPEND literals).
const MAX_SIZE: usize = 200_000;

const SCENARIO: &str = r#"{
  "title": "Hostile clients",
  "settings": { "tls": { "plaintext_login": true } },
  "domains": {
    "school.test": { "records": [ { "type": "MX", "preference": 10, "exchange": "smtp.school.test" } ] },
    "example.org": { "records": [ { "type": "MX", "preference": 10, "exchange": "mx1.example.org" } ] }
  },
  "hosts": {
    "smtp.school.test": { "services": ["submission", "smtp"], "domains": ["school.test"] },
    "mx1.example.org": { "services": ["smtp", "imap", "pop3"], "domains": ["example.org"], "max_message_size": 200000 }
  },
  "users": {
    "alice@school.test": { "password": "wonderland" },
    "bob@example.org": { "password": "builder" },
    "carol@example.org": { "password": "secret" }
  }
}"#;

// ---------------------------------------------------------------------
// A world under attack, and what it has promised to keep.
// ---------------------------------------------------------------------

struct Target {
    world: Arc<World>,
    net: Net,
    /// Bob's messages that were acknowledged, as the client sent them, in
    /// order. The stored copy is this with trace headers (`Received:`...)
    /// in front.
    accepted: Vec<Vec<u8>>,
    probes: usize,
}

impl Target {
    async fn start() -> Target {
        raise_fd_limit();
        let (world, net) = start_world(SCENARIO).await;
        Target { world, net, accepted: Vec::new(), probes: 0 }
    }

    fn addr(&self, host: &str, service: Service) -> SocketAddr {
        let node = self.world.node(host).unwrap_or_else(|| panic!("no node {host}"));
        SocketAddr::new(node.address.into(), self.world.port(service))
    }

    fn smtp(&self) -> SocketAddr {
        self.addr(MX, Service::Smtp)
    }
    fn submission(&self) -> SocketAddr {
        self.addr(MSA, Service::Submission)
    }
    fn pop3(&self) -> SocketAddr {
        self.addr(MX, Service::Pop3)
    }
    fn imap(&self) -> SocketAddr {
        self.addr(MX, Service::Imap)
    }
    fn dns(&self) -> SocketAddr {
        SocketAddr::new(self.net.dns().into(), DNS_PORT)
    }

    /// Takes in messages accepted concurrently, in whatever order the
    /// server stored them: each of the newest stored messages must be
    /// exactly one of `sent`, and every one of `sent` must be there.
    fn accepted_unordered(&mut self, mut sent: Vec<Vec<u8>>) {
        let stored = self.stored();
        assert!(stored.len() >= self.accepted.len() + sent.len(), "{} stored, {} + {} accepted", stored.len(), self.accepted.len(), sent.len());
        for raw in &stored[self.accepted.len()..] {
            let i = sent.iter().position(|s| raw.ends_with(s)).unwrap_or_else(|| panic!("a stored message nobody sent:\n{}", String::from_utf8_lossy(raw)));
            self.accepted.push(sent.swap_remove(i));
        }
        assert!(sent.is_empty(), "{} accepted messages are missing", sent.len());
    }

    fn stored(&self) -> Vec<Vec<u8>> {
        self.world.hosts[MX].store.inbox(BOB).iter().map(|m| m.raw.to_vec()).collect()
    }

    /// Waits until the server has closed `count` connections of `protocol`
    /// in all (so e.g. a POP3 lock is released, an IDLE observer dropped).
    async fn disconnects(&self, protocol: Protocol, count: usize) {
        poll(&format!("{count} {protocol:?} disconnects"), || {
            let seen = self.world.trace.since(0).iter().filter(|e| e.protocol == protocol && matches!(e.kind, Kind::Disconnect)).count();
            (seen >= count).then_some(())
        })
        .await
    }

    /// The promise after every attack: polite clients of every protocol
    /// are served, and Bob's mailbox holds exactly what was accepted.
    async fn check(&mut self, after: &str) {
        self.probes += 1;
        let probe = format!("From: <eve@outside.test>\r\nTo: <bob@example.org>\r\nSubject: probe {} after {after}\r\n\r\nStill here.\r\n", self.probes);
        let reply = deliver(self.smtp(), "eve@outside.test", BOB, probe.as_bytes()).await;
        assert!(reply.starts_with("250 "), "after {after}: a polite delivery got {reply:?}");
        self.accepted.push(probe.into_bytes());

        // In the store, byte for byte, in order.
        let stored = self.stored();
        assert_eq!(stored.len(), self.accepted.len(), "after {after}: Bob's INBOX holds {} messages, {} were accepted", stored.len(), self.accepted.len());
        for (n, (stored, sent)) in stored.iter().zip(&self.accepted).enumerate() {
            assert!(stored.ends_with(sent), "after {after}: message {} is not what was accepted:\n{}", n + 1, String::from_utf8_lossy(stored));
        }

        // POP3 sees them (a dropped session may still hold the maildrop for
        // a moment: wait for the server to notice, never forever).
        let mut pop = Conn::open(self.pop3()).await;
        assert!(pop.line().await.unwrap_or_default().starts_with("+OK"));
        assert!(pop.pop("USER bob@example.org").await.starts_with("+OK"));
        let mut stat = pop.pop("PASS builder").await;
        while stat.contains("locked") || stat.contains("in use") {
            tokio::time::sleep(Duration::from_millis(20)).await;
            pop = Conn::open(self.pop3()).await;
            pop.line().await;
            pop.pop("USER bob@example.org").await;
            stat = pop.pop("PASS builder").await;
        }
        assert!(stat.starts_with("+OK"), "after {after}: POP3 login: {stat}");
        let total: usize = stored.iter().map(Vec::len).sum();
        assert_eq!(pop.pop("STAT").await, format!("+OK {} {total}", stored.len()), "after {after}");
        assert!(pop.pop("QUIT").await.starts_with("+OK"));

        // IMAP sees them, byte for byte.
        let mut imap = Conn::open(self.imap()).await;
        imap.line().await;
        assert!(imap.imap_ok("c1", "LOGIN bob@example.org builder").await, "after {after}: IMAP login");
        let (lines, _) = imap.imap("c2", "EXAMINE INBOX").await;
        assert!(lines.contains(&format!("* {} EXISTS", stored.len())), "after {after}: {lines:?}");
        if !stored.is_empty() {
            let (lines, literals) = imap.imap("c3", "FETCH 1:* BODY.PEEK[]").await;
            assert!(lines.last().is_some_and(|l| l.starts_with("c3 OK")), "after {after}: {lines:?}");
            assert_eq!(literals, stored, "after {after}: IMAP gives the stored bytes");
        }
        assert!(imap.imap_ok("c4", "LOGOUT").await);
    }
}

/// Lets this test process hold a crowd of connections at both ends (the
/// servers run in the test process): the soft limit on open files is
/// often 1024, the hard limit much higher.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Polls `check` until it gives a value (fails after [`GUARD`]).
async fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------
// A raw client for any line protocol.
// ---------------------------------------------------------------------

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::time::timeout(GUARD, TcpStream::connect(addr)).await.expect("connect in time").unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        let (read, writer) = stream.into_split();
        Conn { reader: BufReader::new(read), writer }
    }

    /// Writes bytes; a server that already hung up is for the next read to see.
    async fn send(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes).await;
    }

    /// Writes `bytes` one at a time with a pause between them.
    async fn dribble(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send(&[*b]).await;
            tokio::time::sleep(DRIBBLE).await;
        }
    }

    /// The next line without CRLF, or None when the server closed.
    async fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(GUARD, self.reader.read_until(b'\n', &mut buf)).await.expect("the server answers in time");
        match read {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string()),
        }
    }

    async fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(GUARD, self.reader.read_exact(&mut buf)).await.expect("the server answers in time").expect("read a literal");
        buf
    }

    /// Reads until the server closes its side (fails the test if it never does).
    async fn until_closed(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(GUARD, self.reader.read_to_end(&mut rest)).await.expect("the server closes in time");
        rest
    }

    /// One SMTP reply (all its lines) as "CODE text" of the last line, or
    /// "" when the server closed.
    async fn reply(&mut self) -> String {
        loop {
            let Some(line) = self.line().await else { return String::new() };
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }

    /// An SMTP command and its reply.
    async fn smtp(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes()).await;
        self.reply().await
    }

    async fn smtp_expect(&mut self, command: &str, code: &str) {
        let reply = self.smtp(command).await;
        assert!(reply.starts_with(code), "{command:?}: expected {code}, got {reply:?}");
    }

    /// A POP3 command and its status line.
    async fn pop(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes()).await;
        self.line().await.unwrap_or_default()
    }

    /// Reads IMAP responses up to the tagged one: the lines (a literal
    /// shown as `{n}`) and the literals' bytes.
    async fn until_tagged(&mut self, tag: &str) -> (Vec<String>, Vec<Vec<u8>>) {
        let mut lines = Vec::new();
        let mut literals = Vec::new();
        loop {
            let line = self.line().await.unwrap_or_else(|| panic!("the server closed; so far: {lines:?}"));
            if let Some(size) = line.strip_suffix('}').and_then(|l| l.rsplit_once('{')).and_then(|(_, n)| n.parse::<usize>().ok()) {
                literals.push(self.bytes(size).await);
            }
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return (lines, literals);
            }
        }
    }

    async fn imap(&mut self, tag: &str, command: &str) -> (Vec<String>, Vec<Vec<u8>>) {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until_tagged(tag).await
    }

    async fn imap_ok(&mut self, tag: &str, command: &str) -> bool {
        self.imap(tag, command).await.0.last().is_some_and(|l| l.starts_with(&format!("{tag} OK")))
    }

    /// The tagged line for `command` (its untagged lines are dropped).
    async fn imap_tagged(&mut self, tag: &str, command: &str) -> String {
        self.imap(tag, command).await.0.pop().unwrap_or_default()
    }
}

/// One delivery over port 25, EHLO to QUIT; the reply to the final dot.
async fn deliver(addr: SocketAddr, from: &str, to: &str, message: &[u8]) -> String {
    let mut smtp = Conn::open(addr).await;
    assert!(smtp.reply().await.starts_with("220"));
    smtp.smtp_expect("EHLO outside.test", "250").await;
    smtp.smtp_expect(&format!("MAIL FROM:<{from}>"), "250").await;
    smtp.smtp_expect(&format!("RCPT TO:<{to}>"), "250").await;
    smtp.smtp_expect("DATA", "354").await;
    smtp.send(&dot_stuff(message)).await;
    let reply = smtp.reply().await;
    smtp.smtp("QUIT").await;
    reply
}

/// The message dot-stuffed and terminated, as a client sends it after 354.
fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A greeted, logged-in IMAP connection.
async fn imap_login(addr: SocketAddr) -> Conn {
    let mut imap = Conn::open(addr).await;
    assert!(imap.line().await.unwrap_or_default().starts_with("* OK"));
    assert!(imap.imap_ok("l", "LOGIN bob@example.org builder").await, "IMAP login");
    imap
}

/// `AUTH PLAIN` for alice, base64.
fn alice_plain() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode("\0alice@school.test\0wonderland")
}

// ---------------------------------------------------------------------
// SMTP: relay (port 25) and submission (port 587).
// ---------------------------------------------------------------------

/// A message body with every byte a sloppy or hostile client might put in
/// it: NUL, invalid UTF-8, a lone CR, 8-bit text, a line of exactly 998
/// octets, dots to stuff. SMTP moves it as it is (RFC 5321 §2.4 asks for
/// 7-bit, but receivers accept more); it must come back byte for byte.
fn eight_bit_message(subject: &str) -> Vec<u8> {
    let mut m = format!("From: <eve@outside.test>\r\nTo: <bob@example.org>\r\nSubject: {subject}\r\n\r\n").into_bytes();
    m.extend_from_slice(b"NUL:\0\0 end\r\ninvalid UTF-8: \xff\xfe \xc3\x28 \xa0\xa1 \xed\xa0\x80\r\nlone CR:\rstill the same line\r\n");
    m.extend_from_slice("Grüße, ½ €\r\n".as_bytes());
    m.extend_from_slice(b".a leading dot\r\n..two\r\n.\x00\r\n");
    m.extend(std::iter::repeat_n(b'w', 998));
    m.extend_from_slice(b"\r\nend\r\n");
    m
}

/// DATA carries NUL and invalid UTF-8 untouched; a line or a body over the
/// limit is refused and not kept; bad bytes in commands and in AUTH get
/// syntax errors, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_odd_bytes_long_lines_and_big_bodies() {
    let mut t = Target::start().await;
    t.check("nothing").await;

    let mut smtp = Conn::open(t.smtp()).await;
    assert!(smtp.reply().await.starts_with("220"));
    // Bad bytes in commands: a syntax error each, never a crash.
    for bad in [&b"EHLO \x00\xff\r\n"[..], b"\xc3\x28\r\n", b"HELO a\x00b\r\n"] {
        smtp.send(bad).await;
        let reply = smtp.reply().await;
        assert!(reply.starts_with('5') || reply.starts_with("250"), "{bad:?}: {reply:?}");
    }
    smtp.smtp_expect("EHLO outside.test", "250").await;
    smtp.send(b"MAIL FROM:<e\xffve@outside.test>\r\n").await;
    assert!(smtp.reply().await.starts_with('5'));
    smtp.smtp_expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.send(b"RCPT TO:<b\x00ob@example.org>\r\n").await;
    assert!(smtp.reply().await.starts_with('5'));
    smtp.smtp_expect("RCPT TO:<bob@example.org>", "250").await;
    smtp.smtp_expect("DATA", "354").await;
    let message = eight_bit_message("eight bits");
    smtp.send(&dot_stuff(&message)).await;
    assert!(smtp.reply().await.starts_with("250"));
    t.accepted.push(message);

    // A text line over 1000 octets (RFC 5321 §4.5.3.1.6) in the body.
    for (what, line) in [("a 1001-octet line", vec![b'x'; 999]), ("a 4 MiB line", vec![b'y'; 4 << 20])] {
        smtp.smtp_expect("MAIL FROM:<eve@outside.test>", "250").await;
        smtp.smtp_expect("RCPT TO:<bob@example.org>", "250").await;
        smtp.smtp_expect("DATA", "354").await;
        let mut body = b"Subject: too long\r\n\r\n".to_vec();
        body.extend_from_slice(&line);
        body.extend_from_slice(b"\r\n.\r\n");
        smtp.send(&body).await;
        let reply = smtp.reply().await;
        assert!(reply.starts_with("500") || reply.starts_with("552") || reply.starts_with("554"), "{what}: {reply:?}");
    }
    // A body over the size limit, in good lines: 552, and nothing kept.
    smtp.smtp_expect("MAIL FROM:<eve@outside.test>", "250").await;
    smtp.smtp_expect("RCPT TO:<bob@example.org>", "250").await;
    smtp.smtp_expect("DATA", "354").await;
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    while big.len() <= MAX_SIZE + 1000 {
        big.extend_from_slice(&[b'z'; 98]);
        big.extend_from_slice(b"\r\n");
    }
    smtp.send(&dot_stuff(&big)).await;
    assert!(smtp.reply().await.starts_with("552"));
    // 10 MiB without a single line end, on the command line: cut and answered.
    let mut flood = vec![b'N'; 10 << 20];
    flood.extend_from_slice(b"\r\n");
    smtp.send(&flood).await;
    assert!(smtp.reply().await.starts_with("500"));
    smtp.smtp_expect("NOOP", "250").await;
    smtp.smtp_expect("QUIT", "221").await;
    t.check("odd bytes and long lines on port 25").await;

    // Submission: odd bytes in AUTH, an endless AUTH answer, a cancelled AUTH.
    let mut sub = Conn::open(t.submission()).await;
    assert!(sub.reply().await.starts_with("220"));
    sub.smtp_expect("EHLO laptop.test", "250").await;
    sub.send(b"AUTH PLAIN \x00\xff\xfe==\r\n").await;
    assert!(sub.reply().await.starts_with('5'));
    sub.smtp_expect("AUTH PLAIN AGFsaWNlQHNjaG9vbC50ZXN0AHdvbmRlcv8AbGFuZA==", "5").await; // 0xff and an extra NUL in the decoded token
    sub.smtp_expect("AUTH LOGIN", "334").await;
    let mut endless = vec![b'Q'; 1 << 20];
    endless.extend_from_slice(b"\r\n");
    sub.send(&endless).await;
    assert!(sub.reply().await.starts_with('5'));
    sub.smtp_expect("AUTH LOGIN", "334").await;
    sub.smtp_expect("*", "501").await; // the client cancels (RFC 4954 §4)
    sub.smtp_expect("MAIL FROM:<alice@school.test>", "530").await;
    sub.smtp_expect(&format!("AUTH PLAIN {}", alice_plain()), "235").await;
    sub.smtp_expect("MAIL FROM:<alice@school.test>", "250").await;
    sub.smtp_expect("RCPT TO:<bob@example.org>", "250").await;
    sub.smtp_expect("DATA", "354").await;
    let submitted = eight_bit_message("submitted with eight bits");
    sub.send(&dot_stuff(&submitted)).await;
    assert!(sub.reply().await.starts_with("250"));
    sub.smtp_expect("QUIT", "221").await;
    // Relayed to mx1 through the queue: wait until it is there.
    let want = t.accepted.len() + 1;
    poll("the submitted message at mx1", || (t.stored().len() >= want).then_some(())).await;
    t.accepted.push(submitted);
    t.check("odd bytes in submission and AUTH").await;
    t.world.shutdown().await;
}

/// How a client vanishes: the commands it sends first (each answered
/// before the next), then the bytes it sends without waiting, then it
/// closes. `delivers`: the message the server must keep (its final dot
/// arrived, even if the client never read the 250).
struct HangUp {
    state: &'static str,
    submission: bool,
    commands: Vec<String>,
    tail: Vec<u8>,
    delivers: Option<Vec<u8>>,
}

fn hang_ups() -> Vec<HangUp> {
    let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let transaction = lines(&["EHLO gone.test", "MAIL FROM:<eve@outside.test>", "RCPT TO:<bob@example.org>", "DATA"]);
    let to_data = |state, tail: &[u8]| HangUp { state, submission: false, commands: transaction.clone(), tail: tail.to_vec(), delivers: None };
    let relay = |state, commands: &[&str], tail: &[u8]| HangUp { state, submission: false, commands: lines(commands), tail: tail.to_vec(), delivers: None };
    let submit = |state, commands: &[&str], tail: &[u8]| HangUp { state, submission: true, commands: lines(commands), tail: tail.to_vec(), delivers: None };
    let whole = b"Subject: the dot arrived, the reply was never read\r\n\r\nkept\r\n".to_vec();
    let login = format!("AUTH PLAIN {}", alice_plain());
    let mut over_limit = b"Subject: big\r\n\r\n".to_vec();
    while over_limit.len() < MAX_SIZE + 10_000 {
        over_limit.extend_from_slice(&[b'o'; 78]);
        over_limit.extend_from_slice(b"\r\n");
    }
    vec![
        relay("at once, before the greeting is read", &[], b""),
        relay("mid-command, half a line", &[], b"EHLO half-a-na"),
        relay("after EHLO", &["EHLO gone.test"], b""),
        relay("after MAIL", &["EHLO gone.test", "MAIL FROM:<eve@outside.test>"], b""),
        relay("after RCPT", &["EHLO gone.test", "MAIL FROM:<eve@outside.test>", "RCPT TO:<bob@example.org>"], b""),
        relay("after RSET", &["EHLO gone.test", "MAIL FROM:<eve@outside.test>", "RCPT TO:<bob@example.org>", "RSET"], b""),
        relay("pipelining, then gone before any reply", &[], b"EHLO gone.test\r\nMAIL FROM:<eve@outside.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"),
        to_data("after DATA's 354", b""),
        to_data("mid-DATA, half a line", b"Subject: cut\r\n\r\nhalf a li"),
        to_data("mid-DATA, whole lines but no final dot", b"Subject: cut\r\n\r\nno end\r\n"),
        to_data("inside the final CRLF.CRLF", b"Subject: cut\r\n\r\nalmost\r\n.\r"),
        to_data("mid-DATA, a body over the limit", &over_limit),
        HangUp { state: "after the final dot, without reading the 250", delivers: Some(whole.clone()), ..to_data("", &dot_stuff(&whole)) },
        submit("mid-AUTH, after AUTH LOGIN's 334", &["EHLO laptop.test", "AUTH LOGIN"], b""),
        submit("mid-AUTH, after the user name", &["EHLO laptop.test", "AUTH LOGIN", "YWxpY2VAc2Nob29sLnRlc3Q="], b""),
        submit("mid-AUTH, half the answer", &["EHLO laptop.test", "AUTH PLAIN"], b"AGFsaWNlQHNj"),
        submit(
            "logged in, mid-DATA",
            &["EHLO laptop.test", &login, "MAIL FROM:<alice@school.test>", "RCPT TO:<bob@example.org>", "DATA"],
            b"Subject: cut\r\n\r\nhalf",
        ),
    ]
}

/// A client that hangs up in any state costs nothing: what got no final
/// dot is not delivered, what did is (even if the 250 was never read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_hang_up_in_every_state() {
    let mut t = Target::start().await;
    let mut closed = 0;
    for hang_up in hang_ups() {
        let addr = if hang_up.submission { t.submission() } else { t.smtp() };
        let mut conn = Conn::open(addr).await;
        if !hang_up.commands.is_empty() {
            assert!(conn.reply().await.starts_with("220"));
        }
        for command in &hang_up.commands {
            let reply = conn.smtp(command).await;
            assert!(reply.starts_with('2') || reply.starts_with('3'), "{}: {command}: {reply}", hang_up.state);
        }
        conn.send(&hang_up.tail).await;
        drop(conn);
        closed += 1;
        t.disconnects(Protocol::Smtp, closed).await;
        if let Some(message) = hang_up.delivers {
            t.accepted.push(message);
        }
        // Each check adds one polite delivery (a connection of its own).
        t.check(hang_up.state).await;
        closed += 1;
    }
    // Nothing was queued for later either: mx1 holds exactly what was accepted.
    t.world.conductor.clock().until_idle().await;
    assert!(t.world.hosts.values().all(|h| h.queue().is_empty()), "a half-sent message was queued");
    t.check("all the hang-ups").await;
    t.world.shutdown().await;
}

/// 500 clients at once, each delivering its own message: all get 250, all
/// are stored, byte for byte; then 500 idle connections are held open and
/// the server still serves a polite client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_500_connections_at_once() {
    let mut t = Target::start().await;
    let addr = t.smtp();
    let sent: Vec<Vec<u8>> =
        (0..CROWD).map(|i| format!("Subject: crowd {i}\r\nMessage-ID: <{i}@crowd.test>\r\n\r\nfrom client {i}\r\n").into_bytes()).collect();
    let tasks: Vec<_> = sent.iter().cloned().map(|m| tokio::spawn(async move { deliver(addr, "eve@outside.test", BOB, &m).await })).collect();
    for task in tasks {
        let reply = task.await.expect("a client task");
        assert!(reply.starts_with("250"), "{reply:?}");
    }
    t.accepted_unordered(sent);
    t.check("500 deliveries at once").await;

    // 500 connections that say nothing after the greeting.
    let mut idle = Vec::new();
    for _ in 0..CROWD {
        idle.push(Conn::open(addr).await);
    }
    for conn in &mut idle {
        assert!(conn.reply().await.starts_with("220"));
    }
    t.check("500 silent connections held open").await;
    drop(idle);
    t.world.shutdown().await;
}

/// Slow clients (one byte every few milliseconds) hold connections while
/// others are served; a slow line over the limit is cut like a fast one;
/// slow but complete transactions are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_slowloris() {
    let mut t = Target::start().await;
    let (relay, submission) = (t.smtp(), t.submission());
    let mut slow = Vec::new();
    for i in 0..10 {
        slow.push(tokio::spawn(async move {
            let mut conn = Conn::open(relay).await;
            assert!(conn.reply().await.starts_with("220"));
            let message = format!("Subject: slow {i}\r\n\r\none byte at a time\r\n").into_bytes();
            let script = [b"EHLO slow.test\r\nMAIL FROM:<eve@outside.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".to_vec(), dot_stuff(&message)].concat();
            conn.dribble(&script).await;
            let replies = [conn.reply().await, conn.reply().await, conn.reply().await, conn.reply().await, conn.reply().await];
            assert!(replies[4].starts_with("250"), "{replies:?}");
            message
        }));
    }
    // A slow overlong command: 600 octets, ten at a time.
    let long = tokio::spawn(async move {
        let mut conn = Conn::open(relay).await;
        assert!(conn.reply().await.starts_with("220"));
        for chunk in [b"NOOP ".to_vec(), vec![b'x'; 600], b"\r\n".to_vec()].concat().chunks(10) {
            conn.send(chunk).await;
            tokio::time::sleep(DRIBBLE).await;
        }
        conn.reply().await
    });
    // A slow login on the submission port.
    let login = tokio::spawn(async move {
        let mut conn = Conn::open(submission).await;
        assert!(conn.reply().await.starts_with("220"));
        conn.dribble(format!("EHLO slow.test\r\nAUTH PLAIN {}\r\n", alice_plain()).as_bytes()).await;
        [conn.reply().await, conn.reply().await]
    });
    // Meanwhile: polite clients, served as usual.
    t.check("while slow clients dribble").await;
    t.check("still while slow clients dribble").await;
    let mut sent = Vec::new();
    for task in slow {
        sent.push(task.await.expect("a slow client"));
    }
    assert!(long.await.expect("the slow long line").starts_with("500 5.5.2"));
    assert!(login.await.expect("the slow login")[1].starts_with("235"));
    t.accepted_unordered(sent);
    t.check("slow clients").await;
    t.world.shutdown().await;
}

// ---------------------------------------------------------------------
// POP3
// ---------------------------------------------------------------------

/// A POP3 connection past its greeting.
async fn pop3(addr: SocketAddr) -> Conn {
    let mut pop = Conn::open(addr).await;
    assert!(pop.line().await.unwrap_or_default().starts_with("+OK"), "POP3 greeting");
    pop
}

/// Bad bytes get -ERR; a hang-up in any state, even after DELE or in the
/// middle of a RETR, deletes nothing and frees the maildrop; only DELE
/// then QUIT removes a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_odd_bytes_and_hang_ups_in_every_state() {
    let mut t = Target::start().await;
    // A big message, so that RETR is still being sent when the client goes.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    while big.len() < MAX_SIZE - 1000 {
        big.extend_from_slice(b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n");
    }
    assert!(deliver(t.smtp(), "eve@outside.test", BOB, &big).await.starts_with("250"));
    t.accepted.push(big);
    t.check("a big message").await;

    let mut pop = pop3(t.pop3()).await;
    for bad in [&b"USER b\x00b@example.org\r\n"[..], b"USER \xff\xfe\r\n", b"\x00\x00\x00\r\n", b"PASS \xc3\x28\r\n", b"ST\xffAT\r\n"] {
        pop.send(bad).await;
        assert!(pop.line().await.unwrap_or_default().starts_with("-ERR"), "{bad:?}");
    }
    assert!(pop.pop("USER bob@example.org").await.starts_with("+OK"));
    let mut endless = b"PASS ".to_vec();
    endless.extend(std::iter::repeat_n(b'p', 1 << 20));
    endless.extend_from_slice(b"\r\n");
    pop.send(&endless).await;
    assert!(pop.line().await.unwrap_or_default().starts_with("-ERR"));
    assert!(pop.pop("USER bob@example.org").await.starts_with("+OK"));
    pop.send(b"PASS build\x00er\r\n").await;
    assert!(pop.line().await.unwrap_or_default().starts_with("-ERR"));
    drop(pop);
    let mut closed = 1;
    t.disconnects(Protocol::Pop3, closed).await;
    t.check("odd bytes over POP3").await;
    closed += 1;

    let login = ["USER bob@example.org", "PASS builder"];
    let hang_ups: Vec<(&str, Vec<&str>, &[u8])> = vec![
        ("at once", vec![], b""),
        ("mid-command", vec![], b"USER bob@exa"),
        ("after USER", vec![login[0]], b""),
        ("mid-PASS", vec![login[0]], b"PASS buil"),
        ("logged in", login.to_vec(), b""),
        ("after DELE", [&login[..], &["DELE 1", "DELE 2"]].concat(), b""),
        ("after DELE and RSET", [&login[..], &["DELE 1", "RSET"]].concat(), b""),
        ("after DELE, mid-QUIT", [&login[..], &["DELE 1"]].concat(), b"QUI"),
        ("mid-RETR of a big message", login.to_vec(), b"RETR 1\r\n"),
        ("mid-RETR, after DELE", [&login[..], &["DELE 2"]].concat(), b"RETR 1\r\n"),
    ];
    for (state, commands, tail) in hang_ups {
        let mut pop = pop3(t.pop3()).await;
        for command in commands {
            let answer = pop.pop(command).await;
            assert!(answer.starts_with("+OK"), "{state}: {command}: {answer}");
        }
        pop.send(tail).await;
        drop(pop);
        t.disconnects(Protocol::Pop3, closed).await;
        t.check(state).await;
        closed += 1;
    }

    // DELE then QUIT is the one way a message goes.
    let mut pop = pop3(t.pop3()).await;
    for command in [login[0], login[1], "DELE 1"] {
        assert!(pop.pop(command).await.starts_with("+OK"));
    }
    assert!(pop.pop("QUIT").await.starts_with("+OK"));
    t.disconnects(Protocol::Pop3, closed).await;
    t.accepted.remove(0);
    t.check("DELE and QUIT").await;
    t.world.shutdown().await;
}

/// 500 POP3 clients at once (one holding Bob's maildrop, the others told
/// it is locked), and slow clients dribbling commands and an overlong
/// line while others are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_500_connections_and_slowloris() {
    let mut t = Target::start().await;
    t.check("nothing").await;
    let addr = t.pop3();
    let tasks: Vec<_> = (0..CROWD)
        .map(|_| {
            tokio::spawn(async move {
                let mut pop = pop3(addr).await;
                assert!(pop.pop("CAPA").await.starts_with("+OK"));
                while pop.line().await.is_some_and(|l| l != ".") {}
                assert!(pop.pop("USER bob@example.org").await.starts_with("+OK"));
                let pass = pop.pop("PASS builder").await;
                assert!(pass.starts_with("+OK") || pass.contains("locked"), "{pass}");
                let stat = pop.pop("STAT").await;
                assert!(pop.pop("QUIT").await.starts_with("+OK"));
                pass.starts_with("+OK").then_some(stat)
            })
        })
        .collect();
    let mut logged_in = 0;
    for task in tasks {
        if let Some(stat) = task.await.expect("a POP3 client") {
            assert!(stat.starts_with("+OK 1 "), "{stat}");
            logged_in += 1;
        }
    }
    assert!(logged_in >= 1, "at least one of the crowd got the maildrop");
    t.disconnects(Protocol::Pop3, CROWD + 1).await;
    t.check("500 POP3 clients").await;

    let slow: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(async move {
                let mut pop = pop3(addr).await;
                pop.dribble(b"USER carol@example.org\r\nNOOP\r\nQUIT\r\n").await;
                [pop.line().await, pop.line().await, pop.line().await]
            })
        })
        .collect();
    let long = tokio::spawn(async move {
        let mut pop = pop3(addr).await;
        for chunk in [vec![b'U'; 300], b"\r\nUSER carol@example.org\r\n".to_vec()].concat().chunks(10) {
            pop.send(chunk).await;
            tokio::time::sleep(DRIBBLE).await;
        }
        [pop.line().await, pop.line().await]
    });
    t.check("while slow POP3 clients dribble").await;
    for task in slow {
        let answers = task.await.expect("a slow client");
        let answers: Vec<String> = answers.into_iter().map(Option::unwrap_or_default).collect();
        assert!(answers[0].starts_with("+OK") && answers[1].starts_with("-ERR") && answers[2].starts_with("+OK"), "{answers:?}");
    }
    let answers = long.await.expect("the slow long line");
    assert!(answers[0].as_deref().is_some_and(|a| a.starts_with("-ERR line too long")), "{answers:?}");
    assert!(answers[1].as_deref().is_some_and(|a| a.starts_with("+OK")), "the session goes on after a cut line: {answers:?}");
    t.check("slow POP3 clients").await;
    t.world.shutdown().await;
}

// ---------------------------------------------------------------------
// IMAP
// ---------------------------------------------------------------------

/// A message whose MIME parts nest `depth` deep (multipart in multipart,
/// or a message/rfc822 in a message/rfc822...).
fn nested_message(depth: usize, rfc822: bool) -> Vec<u8> {
    let mut m = format!("Subject: nested {depth} deep\r\nMIME-Version: 1.0\r\n").into_bytes();
    for level in 0..depth {
        if rfc822 {
            m.extend_from_slice(format!("Content-Type: message/rfc822\r\n\r\nSubject: level {level}\r\n").as_bytes());
        } else {
            m.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n").as_bytes());
        }
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nthe bottom\r\n");
    if !rfc822 {
        for level in (0..depth).rev() {
            m.extend_from_slice(format!("--b{level}--\r\n").as_bytes());
        }
    }
    m
}

/// Literals (synchronising and LITERAL+, with any bytes, too many, too
/// big, absurd sizes), deep nesting (SEARCH parentheses, NOT and OR chains,
/// BODY[1.1.1...] sections, MIME parts 300 deep) and odd bytes: each gets
/// an answer (OK, NO or BAD), nothing wedges the session, and what was
/// appended comes back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_literals_nesting_and_odd_bytes() {
    let mut t = Target::start().await;
    for message in [nested_message(300, false), nested_message(300, true)] {
        assert!(deliver(t.smtp(), "eve@outside.test", BOB, &message).await.starts_with("250"));
        t.accepted.push(message);
    }
    t.check("MIME nested 300 deep").await;
    let mut imap = imap_login(t.imap()).await;
    assert!(imap.imap_ok("s", "SELECT INBOX").await);

    // APPEND with a synchronising literal of odd bytes, and with LITERAL+.
    let odd = eight_bit_message("appended with odd bytes");
    imap.send(format!("a1 APPEND INBOX {{{}}}\r\n", odd.len()).as_bytes()).await;
    assert!(imap.line().await.unwrap_or_default().starts_with('+'), "the go-ahead");
    imap.send(&odd).await;
    imap.send(b"\r\n").await;
    let (lines, _) = imap.until_tagged("a1").await;
    if lines.last().is_some_and(|l| l.starts_with("a1 OK")) {
        t.accepted.push(odd);
    }
    let plus = nested_message(20, false);
    imap.send(format!("a2 APPEND INBOX (\\Seen $Hostile) {{{}+}}\r\n", plus.len()).as_bytes()).await;
    imap.send(&plus).await;
    imap.send(b"\r\n").await;
    assert!(imap.until_tagged("a2").await.0.last().is_some_and(|l| l.starts_with("a2 OK")), "APPEND with LITERAL+");
    t.accepted.push(plus);
    // Literals in a login, both kinds.
    let mut other = Conn::open(t.imap()).await;
    other.line().await;
    other.send(b"l1 LOGIN {15+}\r\nbob@example.org {7}\r\n").await;
    assert!(other.line().await.unwrap_or_default().starts_with('+'));
    other.send(b"builder\r\n").await;
    assert!(other.until_tagged("l1").await.0.last().is_some_and(|l| l.starts_with("l1 OK")));
    // 65 literals in one command: the one over the limit is refused.
    let mut refused = false;
    other.send(b"m1 SEARCH").await;
    for _ in 0..65 {
        other.send(b" TEXT {1}\r\n").await;
        let answer = other.line().await.unwrap_or_default();
        if answer.starts_with("m1 NO") || answer.starts_with("m1 BAD") {
            refused = true;
            break;
        }
        assert!(answer.starts_with('+'), "{answer}");
        other.send(b"x").await;
    }
    assert!(refused, "a command may not carry any number of literals");
    assert!(other.imap_ok("m2", "NOOP").await);
    // Sizes: one over the limit, one over u64, zero.
    for size in [format!("{}", MAX_SIZE + 1), "18446744073709551616".into(), "99999999999999999999999999".into()] {
        let tag = "z1";
        let answer = other.imap_tagged(tag, &format!("APPEND INBOX {{{size}}}")).await;
        assert!(answer.starts_with("z1 NO") || answer.starts_with("z1 BAD"), "{{{size}}}: {answer}");
    }
    other.send(b"z2 APPEND INBOX {0}\r\n").await;
    let answer = other.line().await.unwrap_or_default();
    if answer.starts_with('+') {
        other.send(b"\r\n").await;
        // Dovecot refuses an empty message; accepting it is allowed too,
        // and then it is a message like any other.
        if other.until_tagged("z2").await.0.last().is_some_and(|l| l.starts_with("z2 OK")) {
            t.accepted.push(Vec::new());
        }
    }
    assert!(other.imap_ok("z3", "LOGOUT").await);

    // Deep nesting.
    let deep = |n: usize| format!("{}ALL{}", "(".repeat(n), ")".repeat(n));
    let answers = [
        ("30 parentheses", format!("SEARCH {}", deep(30)), "OK"),
        ("33 parentheses", format!("SEARCH {}", deep(33)), "BAD"),
        ("20,000 parentheses", format!("SEARCH {}", deep(20_000)), "BAD"),
        ("10,000 NOTs", format!("SEARCH {}ALL", "NOT ".repeat(10_000)), "BAD"),
        ("an OR chain 5,000 deep", format!("SEARCH {}ALL{}", "OR ALL ".repeat(5_000), ""), "BAD"),
        ("a part path 10,000 deep", format!("FETCH 1 BODY.PEEK[{}]", vec!["1"; 10_000].join(".")), "OK"),
        ("a part path 300 deep", format!("FETCH 1:* (BODYSTRUCTURE BODY.PEEK[{}.MIME])", vec!["1"; 300].join(".")), "OK"),
        ("5,000 header names", format!("FETCH 1 BODY.PEEK[HEADER.FIELDS ({})]", (0..5_000).map(|i| format!("X-{i}")).collect::<Vec<_>>().join(" ")), "OK"),
        ("5,000 fetch items", format!("FETCH 1 ({})", vec!["FLAGS"; 5_000].join(" ")), "OK"),
        ("8,000 ranges", format!("FETCH {} UID", (1..=8_000).map(|i| format!("{}:{}", i % 3 + 1, i % 2 + 1)).collect::<Vec<_>>().join(",")), "OK"),
        ("3,000 keywords to remove", format!("STORE 1 -FLAGS.SILENT ({})", (0..3_000).map(|i| format!("k{i}")).collect::<Vec<_>>().join(" ")), "OK"),
        ("a huge UID range", "UID FETCH 1:4294967295 (UID FLAGS)".to_string(), "OK"),
        ("a flag list 1,000 deep", format!("STORE 1 +FLAGS {}\\Seen{}", "(".repeat(1_000), ")".repeat(1_000)), "BAD"),
        ("a fetch list 1,000 deep", format!("FETCH 1 {}FLAGS{}", "(".repeat(1_000), ")".repeat(1_000)), "BAD"),
        ("a status list 1,000 deep", format!("STATUS INBOX {}MESSAGES{}", "(".repeat(1_000), ")".repeat(1_000)), "BAD"),
        ("a NUL in a quoted string", "SELECT \"IN\0BOX\"".to_string(), "BAD"),
        ("non-ASCII text in a search", "SEARCH SUBJECT \"Grüße\"".to_string(), "OK"),
    ];
    for (n, (what, command, expected)) in answers.iter().enumerate() {
        let tag = format!("d{n}");
        let answer = imap.imap_tagged(&tag, command).await;
        assert!(answer.starts_with(&format!("{tag} {expected}")), "{what}: {answer}");
    }
    // Raw odd bytes on the command line.
    for bad in [&b"\xff\xfe SEARCH ALL\r\n"[..], b"e1 SEARCH SUBJECT \xff\xfe\r\n", b"e2 SEL\x00ECT INBOX\r\n", b"e3 FETCH 1 BODY[\xc3\x28]\r\n"] {
        imap.send(bad).await;
        let line = imap.line().await.unwrap_or_default();
        assert!(line.contains("BAD") || line.contains("OK") || line.starts_with("* SEARCH"), "{bad:?}: {line}");
        if line.starts_with("* SEARCH") {
            imap.line().await;
        }
    }
    assert!(imap.imap_ok("f", "NOOP").await, "the session survived all of it");
    assert!(imap.imap_ok("g", "LOGOUT").await);
    t.check("IMAP literals, nesting and odd bytes").await;
    t.world.shutdown().await;
}

/// A hang-up in every IMAP state: mid-command, mid-literal (both kinds),
/// mid-AUTHENTICATE, during IDLE (while news arrives), after flagging
/// \Deleted without EXPUNGE, in the middle of a big FETCH, and right after
/// an APPEND's bytes (its OK never read: the message is kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_hang_up_in_every_state() {
    let mut t = Target::start().await;
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    while big.len() < MAX_SIZE - 1000 {
        big.extend_from_slice(b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n");
    }
    assert!(deliver(t.smtp(), "eve@outside.test", BOB, &big).await.starts_with("250"));
    t.accepted.push(big);
    t.check("a big message").await;
    // Every check makes one IMAP connection of its own.
    let mut closed = 1;

    let kept = b"Subject: appended, OK never read\r\n\r\nkept\r\n".to_vec();
    let login = "LOGIN bob@example.org builder";
    let cases: Vec<(&str, Vec<&str>, Vec<u8>, bool)> = vec![
        ("at once", vec![], Vec::new(), false),
        ("mid-command", vec![], b"a1 LOGIN bob@exa".to_vec(), false),
        ("mid-LOGIN literal", vec![], b"a1 LOGIN {15+}\r\nbob@ex".to_vec(), false),
        ("mid-AUTHENTICATE", vec!["AUTHENTICATE PLAIN"], Vec::new(), false),
        ("logged in", vec![login], Vec::new(), false),
        ("mid-APPEND literal (synchronising)", vec![login], b"a9 APPEND INBOX {1000}\r\n".to_vec(), false),
        ("mid-APPEND literal (LITERAL+)", vec![login], b"a9 APPEND INBOX {1000+}\r\nSubject: cut\r\n\r\nonly this".to_vec(), false),
        (
            "after a whole APPEND, before its OK",
            vec![login],
            [format!("a9 APPEND INBOX {{{}+}}\r\n", kept.len()).into_bytes(), kept.clone(), b"\r\n".to_vec()].concat(),
            true,
        ),
        ("after STORE \\Deleted, no EXPUNGE", vec![login, "SELECT INBOX", "STORE 1:* +FLAGS (\\Deleted)"], Vec::new(), false),
        ("mid-FETCH of a big message", vec![login, "SELECT INBOX"], b"a9 FETCH 1:* BODY[]\r\n".to_vec(), false),
        ("mid-IDLE DONE", vec![login, "SELECT INBOX"], b"a9 IDLE\r\nDO".to_vec(), false),
    ];
    for (state, commands, tail, delivers) in cases {
        let mut imap = Conn::open(t.imap()).await;
        assert!(imap.line().await.unwrap_or_default().starts_with("* OK"));
        for (n, command) in commands.iter().enumerate() {
            if command.starts_with("AUTHENTICATE") {
                imap.send(format!("h{n} {command}\r\n").as_bytes()).await;
                assert!(imap.line().await.unwrap_or_default().starts_with('+'), "{state}");
                continue;
            }
            assert!(imap.imap_ok(&format!("h{n}"), command).await, "{state}: {command}");
        }
        if tail.starts_with(b"a9 APPEND") && tail.ends_with(b"{1000}\r\n") {
            imap.send(&tail).await;
            assert!(imap.line().await.unwrap_or_default().starts_with('+'));
            imap.send(b"Subject: cut\r\n\r\nhalf").await;
        } else {
            imap.send(&tail).await;
        }
        if delivers {
            // The server has the bytes; it acts on them whether or not we read.
            let want = t.accepted.len() + 1;
            poll("the appended message", || (t.stored().len() >= want).then_some(())).await;
            t.accepted.push(kept.clone());
        }
        drop(imap);
        t.disconnects(Protocol::Imap, closed).await;
        t.check(state).await;
        closed += 2;
    }

    // During IDLE, with news arriving just as the client vanishes.
    let mut idler = imap_login(t.imap()).await;
    assert!(idler.imap_ok("i1", "SELECT INBOX").await);
    idler.send(b"i2 IDLE\r\n").await;
    assert!(idler.line().await.unwrap_or_default().starts_with('+'));
    drop(idler);
    let news = b"Subject: news for a client that just left\r\n\r\nhello\r\n".to_vec();
    assert!(deliver(t.smtp(), "eve@outside.test", BOB, &news).await.starts_with("250"));
    t.accepted.push(news);
    t.disconnects(Protocol::Imap, closed).await;
    t.check("a hang-up during IDLE").await;
    t.world.shutdown().await;
}

/// 500 IMAP sessions at once (log in, select, fetch, log out), then slow
/// clients: a login and a LITERAL+ APPEND one byte at a time, and an
/// overlong line in 1 KiB pieces, while others are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_500_connections_and_slowloris() {
    let mut t = Target::start().await;
    t.check("nothing").await;
    let addr = t.imap();
    let tasks: Vec<_> = (0..CROWD)
        .map(|i| {
            tokio::spawn(async move {
                let mut imap = imap_login(addr).await;
                let (lines, _) = imap.imap("c1", "SELECT INBOX").await;
                assert!(lines.iter().any(|l| l == "* 1 EXISTS"), "client {i}: {lines:?}");
                let (lines, literals) = imap.imap("c2", "FETCH 1 BODY.PEEK[HEADER]").await;
                assert!(lines.last().is_some_and(|l| l.starts_with("c2 OK")) && literals.len() == 1, "client {i}: {lines:?}");
                assert!(imap.imap_ok("c3", "LOGOUT").await);
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("an IMAP client");
    }
    t.check("500 IMAP sessions").await;

    let slow: Vec<_> = (0..10)
        .map(|i| {
            tokio::spawn(async move {
                let mut imap = Conn::open(addr).await;
                imap.line().await;
                let message = format!("Subject: slow append {i}\r\n\r\nbyte by byte\r\n").into_bytes();
                let script =
                    [format!("s1 LOGIN bob@example.org builder\r\ns2 APPEND INBOX {{{}+}}\r\n", message.len()).into_bytes(), message.clone(), b"\r\n".to_vec()]
                        .concat();
                imap.dribble(&script).await;
                assert!(imap.until_tagged("s1").await.0.last().is_some_and(|l| l.starts_with("s1 OK")));
                assert!(imap.until_tagged("s2").await.0.last().is_some_and(|l| l.starts_with("s2 OK")), "slow APPEND {i}");
                message
            })
        })
        .collect();
    let long = tokio::spawn(async move {
        let mut imap = Conn::open(addr).await;
        imap.line().await;
        for chunk in [b"x1 NOOP ".to_vec(), vec![b'x'; 70 * 1024], b"\r\nx2 NOOP\r\n".to_vec()].concat().chunks(1024) {
            imap.send(chunk).await;
            tokio::time::sleep(DRIBBLE).await;
        }
        [imap.line().await, imap.line().await]
    });
    t.check("while slow IMAP clients dribble").await;
    let mut sent = Vec::new();
    for task in slow {
        sent.push(task.await.expect("a slow client"));
    }
    let answers = long.await.expect("the slow long line");
    assert_eq!(answers[0].as_deref(), Some("* BAD Line too long"), "{answers:?}");
    assert!(answers[1].as_deref().is_some_and(|a| a.starts_with("x2 OK")), "{answers:?}");
    t.accepted_unordered(sent);
    t.check("slow IMAP clients").await;
    t.world.shutdown().await;
}

// ---------------------------------------------------------------------
// DNS, over UDP and TCP
// ---------------------------------------------------------------------

/// A DNS query (RFC 1035 §4.1) for `labels` of type `rtype`, RD set.
fn dns_query(id: u16, labels: &[&[u8]], rtype: u16) -> Vec<u8> {
    let mut q = Vec::new();
    for word in [id, 0x0100, 1, 0, 0, 0] {
        q.extend_from_slice(&word.to_be_bytes());
    }
    for label in labels {
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&rtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

const MX_TYPE: u16 = 15;

fn mx_query(id: u16) -> Vec<u8> {
    dns_query(id, &[b"example", b"org"], MX_TYPE)
}

/// (id, rcode, answer count) of a DNS response.
fn dns_answer(reply: &[u8]) -> (u16, u8, u16) {
    assert!(reply.len() >= 12 && reply[2] & 0x80 != 0, "not a DNS response: {reply:02x?}");
    (u16::from_be_bytes([reply[0], reply[1]]), reply[3] & 0x0F, u16::from_be_bytes([reply[6], reply[7]]))
}

/// Asks over UDP from a fresh socket; a lost datagram is asked again.
async fn udp_ask(server: SocketAddr, from: std::net::Ipv4Addr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = tokio::net::UdpSocket::bind((from, 0)).await.expect("a UDP socket");
    for _ in 0..3 {
        socket.send_to(query, server).await.expect("send");
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

/// One TCP exchange: the 2-byte length, the query; the answer's bytes.
async fn tcp_ask(conn: &mut Conn) -> Vec<u8> {
    let len = conn.bytes(2).await;
    conn.bytes(usize::from(u16::from_be_bytes([len[0], len[1]]))).await
}

fn framed(query: &[u8]) -> Vec<u8> {
    [&(query.len() as u16).to_be_bytes()[..], query].concat()
}

/// The fake DNS answers 500 clients at once over UDP and over TCP, shrugs
/// off names no resolver would send, serves others while TCP clients
/// dribble their questions, closes a TCP client that stops halfway (its
/// real 10 s idle limit), and mail that needs an MX lookup still flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_odd_names_crowds_and_slowloris() {
    let mut t = Target::start().await;
    let server = t.dns();
    let client_ip = t.net.addr(200);

    // A TCP client that sends half a length prefix and then nothing: the
    // server's idle limit closes it (this runs while everything else does).
    let mut stuck = Conn::open(server).await;
    stuck.send(&[0x00]).await;
    let stuck = tokio::spawn(async move { stuck.until_closed().await });

    // Names no resolver would send: each is answered (an error code) or
    // ignored, never a crash, never a made-up record.
    let long_label = [b'a'; 63];
    let odd: Vec<(&str, Vec<u8>)> = vec![
        ("a NUL in a label", dns_query(1, &[b"exa\0mple", b"org"], MX_TYPE)),
        ("invalid UTF-8 in a label", dns_query(2, &[b"\xff\xfe\xc3\x28", b"org"], MX_TYPE)),
        ("a name over 255 octets", dns_query(3, &[&long_label, &long_label, &long_label, &long_label, b"org"], MX_TYPE)),
        ("127 one-letter labels", dns_query(4, &vec![&b"a"[..]; 127], MX_TYPE)),
        ("a pointer past the end", [&mx_query(5)[..12], &[0xC0, 0xFF, 0, 15, 0, 1]].concat()),
        ("a label type 0x40 (extended labels)", [&mx_query(6)[..12], &[0x41, b'a', 0, 0, 15, 0, 1]].concat()),
        ("type ANY", dns_query(7, &[b"example", b"org"], 255)),
        ("type 0", dns_query(8, &[b"example", b"org"], 0)),
        ("two questions promised, one sent", {
            let mut q = mx_query(9);
            q[5] = 2;
            q
        }),
    ];
    for (what, query) in &odd {
        if let Some(reply) = udp_ask(server, client_ip, query).await {
            let (_, rcode, answers) = dns_answer(&reply);
            assert!(rcode != 0 || answers == 0 || what.starts_with("type ANY"), "{what}: rcode {rcode}, {answers} answers");
        }
        let mut tcp = Conn::open(server).await;
        tcp.send(&framed(query)).await;
        let _ = tcp.writer.shutdown().await;
        let rest = tcp.until_closed().await;
        if rest.len() >= 14 {
            let (_, rcode, answers) = dns_answer(&rest[2..]);
            assert!(rcode != 0 || answers == 0 || what.starts_with("type ANY"), "{what} over TCP: rcode {rcode}, {answers} answers");
        }
    }

    // 500 UDP clients at once.
    let udp: Vec<_> = (0..CROWD as u16).map(|id| tokio::spawn(async move { udp_ask(server, client_ip, &mx_query(id)).await.map(|r| (id, r)) })).collect();
    for task in udp {
        let (id, reply) = task.await.expect("a UDP client").expect("every UDP question is answered");
        assert_eq!(dns_answer(&reply), (id, 0, 1));
    }
    // 500 TCP clients at once, each with two pipelined questions.
    let tcp: Vec<_> = (0..CROWD as u16)
        .map(|id| {
            tokio::spawn(async move {
                let mut conn = Conn::open(server).await;
                conn.send(&[framed(&mx_query(id)), framed(&mx_query(id ^ 0x8000))].concat()).await;
                [dns_answer(&tcp_ask(&mut conn).await), dns_answer(&tcp_ask(&mut conn).await)]
            })
        })
        .collect();
    for (id, task) in (0..CROWD as u16).zip(tcp) {
        assert_eq!(task.await.expect("a TCP client"), [(id, 0, 1), (id ^ 0x8000, 0, 1)]);
    }

    // Slow TCP clients, one byte at a time, while a quick one is answered.
    let slow: Vec<_> = (0..10u16)
        .map(|id| {
            tokio::spawn(async move {
                let mut conn = Conn::open(server).await;
                conn.dribble(&framed(&mx_query(id))).await;
                dns_answer(&tcp_ask(&mut conn).await)
            })
        })
        .collect();
    let quick = udp_ask(server, client_ip, &mx_query(4242)).await.expect("answered while slow clients dribble");
    assert_eq!(dns_answer(&quick), (4242, 0, 1));
    for (id, task) in (0..10u16).zip(slow) {
        assert_eq!(task.await.expect("a slow client"), (id, 0, 1));
    }
    stuck.await.expect("the stuck client is closed by the server");

    // Submission needs the MX of example.org: the mail still flows.
    let mut sub = Conn::open(t.submission()).await;
    assert!(sub.reply().await.starts_with("220"));
    let message = b"Subject: through DNS\r\n\r\nafter the DNS attacks\r\n".to_vec();
    for (command, code) in [
        ("EHLO laptop.test", "250"),
        (&format!("AUTH PLAIN {}", alice_plain()), "235"),
        ("MAIL FROM:<alice@school.test>", "250"),
        ("RCPT TO:<bob@example.org>", "250"),
        ("DATA", "354"),
    ] {
        sub.smtp_expect(command, code).await;
    }
    sub.send(&dot_stuff(&message)).await;
    assert!(sub.reply().await.starts_with("250"));
    let want = t.accepted.len() + 1;
    poll("the relayed message", || (t.stored().len() >= want).then_some(())).await;
    t.accepted.push(message);
    t.check("DNS attacks").await;
    t.world.shutdown().await;
}

// ---------------------------------------------------------------------
// The web page: HTTP and the WebSocket event stream
// ---------------------------------------------------------------------

/// One raw HTTP/1.1 request on its own connection; the status code (0 if
/// the server closed without an answer).
async fn http_status(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut conn = Conn::open(addr).await;
    conn.send(request).await;
    let status = conn.line().await.unwrap_or_default();
    status.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

const GET_STATE: &[u8] = b"GET /api/state HTTP/1.1\r\nHost: mailflow.test\r\nConnection: close\r\n\r\n";

/// Overlong headers, odd bytes in the request line, slow clients, 500
/// requests at once, and a WebSocket viewer sending a message far bigger
/// than a page ever sends: every one is answered or cut off, and the page
/// and its live stream keep working for everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_http_and_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let state = crate::web_support::start(mailflow::conductor::Pace::Fast, None).await;
    let server = mailflow::web::WebServer::start("127.0.0.1:0".parse().expect("an address"), state.clone()).await.expect("the web server starts");
    let addr = server.addr;
    assert_eq!(http_status(addr, GET_STATE).await, 200);

    // A 1 MiB header, odd bytes in the request line: refused, never served.
    let mut huge = b"GET /api/state HTTP/1.1\r\nHost: mailflow.test\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'h', 1 << 20));
    huge.extend_from_slice(b"\r\n\r\n");
    let status = http_status(addr, &huge).await;
    assert!(status == 431 || status == 400 || status == 0, "a 1 MiB header got {status}");
    for odd in [
        &b"GET /api/st\x00ate HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    ] {
        let status = http_status(addr, odd).await;
        assert!(status == 0 || (400..500).contains(&status), "{odd:?} got {status}");
    }
    let status = http_status(addr, b"GET /api/messages/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!((400..500).contains(&status), "a path outside the API got {status}");

    // Slow clients, one byte at a time, while others are served.
    let slow: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(async move {
                let mut conn = Conn::open(addr).await;
                conn.dribble(GET_STATE).await;
                conn.line().await.unwrap_or_default()
            })
        })
        .collect();
    assert_eq!(http_status(addr, GET_STATE).await, 200, "served while slow clients dribble");
    for task in slow {
        assert!(task.await.expect("a slow client").starts_with("HTTP/1.1 200"));
    }
    // 500 at once.
    let crowd: Vec<_> = (0..CROWD).map(|_| tokio::spawn(async move { http_status(addr, GET_STATE).await })).collect();
    for task in crowd {
        assert_eq!(task.await.expect("a client"), 200);
    }

    // The event stream: a viewer that sends a 1 MiB message (the page
    // never sends anything) is cut off; another viewer is unaffected.
    let url = format!("ws://{addr}/api/stream?since=0");
    let (mut rude, _) = tokio_tungstenite::connect_async(&url).await.expect("the stream accepts");
    let (mut polite, _) = tokio_tungstenite::connect_async(&url).await.expect("the stream accepts");
    let _ = rude.send(Message::Text("x".repeat(1 << 20).into())).await;
    let cut = tokio::time::timeout(GUARD, async {
        loop {
            match rude.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(cut.unwrap_or(false), "the server keeps reading a viewer that sends megabytes");
    let first = tokio::time::timeout(GUARD, polite.next()).await.expect("the polite viewer hears the server");
    assert!(matches!(first, Some(Ok(Message::Text(ref t))) if t.contains("hello")), "{first:?}");
    assert_eq!(http_status(addr, GET_STATE).await, 200);
    drop((rude, polite));
    server.shutdown().await;
}

// ---------------------------------------------------------------------
// Clients that send but never read
// ---------------------------------------------------------------------

/// A client that asks for megabytes and never reads them fills the
/// socket buffers, and the server's next write waits for room that never
/// comes. Reads have idle limits; writes need one too, or such a client
/// holds its server task forever — and with POP3, Bob's maildrop lock, so
/// Bob could never fetch his mail again. The server gives up on a peer
/// that takes no bytes for the world's network timeout (5 s in tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_are_let_go() {
    let mut t = Target::start().await;
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    while big.len() < MAX_SIZE - 1000 {
        big.extend_from_slice(b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n");
    }
    assert!(deliver(t.smtp(), "eve@outside.test", BOB, &big).await.starts_with("250"));
    t.accepted.push(big);

    // POP3: log in, ask for the big message 200 times (40 MB), read nothing.
    let mut pop = pop3(t.pop3()).await;
    assert!(pop.pop("USER bob@example.org").await.starts_with("+OK"));
    assert!(pop.pop("PASS builder").await.starts_with("+OK"));
    pop.send("RETR 1\r\n".repeat(200).as_bytes()).await;
    // IMAP: the same with FETCH.
    let mut imap = imap_login(t.imap()).await;
    assert!(imap.imap_ok("s", "SELECT INBOX").await);
    imap.send((0..200).map(|i| format!("f{i} FETCH 1 BODY.PEEK[]\r\n")).collect::<String>().as_bytes()).await;
    // SMTP: 60,000 pipelined HELPs, 6 MB of answers (RFC 2920 lets a
    // client send without waiting, not without ever reading).
    let mut smtp = Conn::open(t.smtp()).await;
    smtp.send(b"EHLO greedy.test\r\n").await;
    let noops = "HELP\r\n".repeat(60_000);
    let writer = tokio::spawn(async move {
        smtp.send(noops.as_bytes()).await;
        smtp
    });

    // The server lets them go: Bob's maildrop is free again...
    poll("Bob's maildrop to be released", || {
        let free = t.world.hosts[MX].store.lock_maildrop(BOB);
        free.is_some().then_some(())
    })
    .await;
    // ...and all three connections are closed by the server.
    for protocol in [Protocol::Pop3, Protocol::Imap, Protocol::Smtp] {
        let count = if protocol == Protocol::Smtp { 2 } else { 1 }; // the delivery above, then the greedy one
        t.disconnects(protocol, count).await;
    }
    drop((pop, imap, writer.await.expect("the writer")));
    t.check("clients that never read").await;
    t.world.shutdown().await;
}
