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
