//! Entry points for fuzzing: hostile bytes in, the server's answer out.
//!
//! A *fuzzer* feeds a program millions of generated inputs and watches for a
//! crash. The one used here (libFuzzer, through `cargo fuzz`, see
//! `fuzz/README.md`) is *coverage-guided*: it keeps every input that made
//! the code take a branch it had not taken before and mutates those, so it
//! digs its way into the protocol step by step — from `EHLO` to `MAIL` to
//! `DATA` — without being told the grammar. Network input is hostile
//! (RFC 3552 §3 assumes an attacker controls every byte), so every server
//! here must answer *anything* with a reply, never a panic.
//!
//! Each function below takes the bytes a client (or a scenario file, or a
//! DNS packet) might send and runs them through the same code the real
//! servers run. It panics only when the code it drives panics, or when an
//! answer breaks a rule the protocol sets (an SMTP reply a client cannot
//! read, two copies for one mailbox, a DNS answer that does not decode), so
//! the fuzzer reports those as findings too.
//!
//! The same functions are called by the fuzz targets (`fuzz/fuzz_targets/`)
//! and by the stable test `tests/fuzz_corpus.rs`, which replays every input
//! the fuzzers kept, so CI checks them on each run without a nightly
//! compiler.
//!
//! - [`smtp`]: the real SMTP server loop (`smtp::server`) over an in-memory
//!   connection: command parsing, the session state machine, AUTH, and the
//!   DATA reader (`Wire::read_block`, dot-unstuffing, RFC 5321 §4.5.2).
//! - [`pop3`]: the real POP3 server loop (`pop3::server::serve`).
//! - [`imap`]: the IMAP framing with literals (`parser::Assembler`), the
//!   grammar (`parser::parse_command`) and the session on an in-memory store.
//! - [`scenario`]: a scenario file through parsing and validation, and a
//!   valid one on to its DNS zones.
//! - [`dns`]: one DNS message through the fake DNS server's handler.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::conductor::{Conductor, Pace};
use crate::dns::{DnsHandler, Resolvers, Zones};
use crate::net::Net;
use crate::trace::{Protocol, Trace};
use crate::wire::{Endpoints, MessageSlot, Side, Wire};

/// One entry point: bytes in; a panic is a finding.
pub type Target = fn(&[u8]);

/// The fuzz targets by name (the names of `fuzz/fuzz_targets/*.rs` and of
/// the corpus folders), for the corpus replay test.
pub const TARGETS: [(&str, Target); 5] = [("smtp", smtp), ("pop3", pop3), ("imap", imap), ("scenario", scenario), ("dns", dns)];

// ---------------------------------------------------------------------
// An in-memory connection and a runtime to drive the async servers.
// ---------------------------------------------------------------------

/// The client's side of a connection, played from a byte string: each
/// read returns the next `chunk` bytes (so the framing meets lines cut at
/// every place), then end of stream; what the server writes is kept.
struct Played {
    input: Vec<u8>,
    read: usize,
    chunk: usize,
    written: Vec<u8>,
}

impl Played {
    /// The first byte chooses how TCP "cuts" the rest into reads.
    fn new(data: &[u8]) -> Played {
        let (chunk, input) = match data.split_first() {
            Some((&first, rest)) => ([1, 3, 16, 512, 65536][usize::from(first % 5)], rest),
            None => (1, data),
        };
        Played { input: input.to_vec(), read: 0, chunk, written: Vec::new() }
    }
}

impl tokio::io::AsyncRead for Played {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let start = self.read;
        let end = self.input.len().min(start + self.chunk.min(buf.remaining()));
        buf.put_slice(&self.input[start..end]);
        self.read = end;
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Played {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

thread_local! {
    // One single-threaded runtime per thread, reused for every input: a
    // fuzzer runs hundreds of thousands of inputs, and building a runtime
    // each time would cost more than the input itself.
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime");
}

/// Runs `work` to completion on this thread's runtime.
fn block_on<T>(work: impl Future<Output = T>) -> T {
    RUNTIME.with(|runtime| runtime.block_on(work))
}

/// A fresh trace and conductor (fast pace: simulated waits cost nothing),
/// so nothing piles up from one input to the next.
fn fresh_net() -> Net {
    let conductor = Conductor::new(Pace::Fast);
    let trace = Trace::new(conductor.clock().clone());
    let dns = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 9);
    let resolvers = Resolvers { dns, trace: trace.clone(), conductor: conductor.clone(), timeout: Duration::from_secs(1) };
    Net::new(trace, conductor, resolvers, 10000, Duration::from_secs(1))
}

/// The server's side of a [`Played`] connection.
fn server_wire(played: Played, net: &Net, protocol: Protocol) -> Wire<Played> {
    let ends = Endpoints { local: "mx1.example.org".into(), peer: "client".into(), protocol, side: Side::Server };
    Wire::new(played, ends, net.trace.clone(), net.conductor.clone(), MessageSlot::default(), Duration::from_secs(5))
}

// ---------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------

mod smtp_host {
    use crate::smtp::reply::Reply;
    use crate::smtp::server::{Accepted, Backend, HopInfo};
    use crate::smtp::session::{Envelope, Policy, RcptVerdict, Role, SessionConfig};
    use std::net::IpAddr;
    use std::sync::{Arc, Mutex};

    /// alice@school.test/wonderland may log in; example.org is ours, with
    /// bob and postmaster; grey@example.org is greylisted (4xx).
    pub struct Rules;

    impl Policy for Rules {
        fn authenticate(&self, user: &str, password: &str) -> crate::login::Attempt {
            crate::login::Attempt::from_check((user == "alice@school.test" && password == "wonderland").then(|| user.to_string()))
        }
        fn check_recipient(&self, _from: &str, to: &str, authenticated: Option<&str>) -> RcptVerdict {
            match to.rsplit_once('@') {
                None if to.eq_ignore_ascii_case("postmaster") => RcptVerdict::Accept,
                Some((local, domain)) if domain.eq_ignore_ascii_case("example.org") => match local.to_ascii_lowercase().as_str() {
                    "bob" | "postmaster" => RcptVerdict::Accept,
                    "grey" => RcptVerdict::TempFail(Reply::new(451, (4, 7, 1), "Greylisted, try again later")),
                    _ => RcptVerdict::UnknownUser,
                },
                _ if authenticated.is_some() => RcptVerdict::Accept,
                _ => RcptVerdict::RelayDenied,
            }
        }
    }

    /// The mail host: `config` as the first input byte chose it; every
    /// accepted envelope is kept so the checks can look at it.
    pub struct Host {
        pub config: SessionConfig,
        pub accepted: Arc<Mutex<Vec<Envelope>>>,
    }

    impl Backend for Host {
        fn name(&self) -> &str {
            "mx1.example.org"
        }
        fn session_config(&self, _: Role) -> SessionConfig {
            self.config.clone()
        }
        fn policy(&self, _: Role, _: IpAddr) -> Box<dyn Policy + Send + Sync> {
            Box::new(Rules)
        }
        async fn accept(&self, _: Role, envelope: Envelope, _: &HopInfo) -> Accepted {
            // Every third message finds the disk full, so the failure path runs too.
            let mut accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
            let result =
                if accepted.len() % 3 == 2 { Err(Reply::new(451, (4, 3, 0), "Cannot store the message now")) } else { Ok(format!("Q{}", accepted.len())) };
            accepted.push(envelope);
            Accepted { result, message: None }
        }
    }
}

/// An SMTP client's bytes through the real server loop. The first byte
/// chooses how reads are cut; the second the server's role and limits:
/// bit 0 submission (port 587) or relay (25), bit 1 STARTTLS offered, bit 2
/// a 200-byte size limit, bit 3 at most 2 recipients.
///
/// Checks: every reply parses with the client's own reply parser (so a
/// server never says what a client cannot read, RFC 5321 §4.2); an
/// accepted message has a sender state, at least one recipient and one
/// copy per mailbox, fits the size limit, and survives dot-stuffing back
/// and forth (RFC 5321 §4.5.2); no more messages are accepted than the
/// client sent end-of-data markers (`CRLF . CRLF`, so no smuggling).
pub fn smtp(data: &[u8]) {
    use crate::smtp::server::Backend as _;
    use crate::smtp::session::{Policy, Role, Session, SessionConfig};
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut config = SessionConfig::new("mx1.example.org", if flags & 1 != 0 { Role::Submission } else { Role::Relay });
    config.tls_available = flags & 2 != 0;
    if flags & 4 != 0 {
        config.max_message_size = 200;
    }
    if flags & 8 != 0 {
        config.max_recipients = 2;
    }
    let max_size = config.max_message_size;
    let role = config.role;
    let host = smtp_host::Host { config, accepted: Arc::default() };
    let net = fresh_net();
    let played = Played::new(rest);
    let markers = end_markers(&played.input);
    let mut wire = server_wire(played, &net, Protocol::Smtp);
    block_on(async {
        let mut session = Session::new(host.session_config(role));
        let policy = host.policy(role, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mut hop = crate::smtp::server::HopInfo { peer_name: "client".into(), peer_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), tls: None, world: true };
        let greeting = session.greeting();
        if wire.send(&greeting.to_wire(), String::new()).await.is_err() {
            return;
        }
        // The server's own loop body (Ok(false) after QUIT, STARTTLS or
        // too many errors; Err at the end of the input).
        while let Ok(true) = crate::smtp::server::one_exchange(&mut wire, &mut session, policy.as_ref(), &host, role, &mut hop, None).await {}
    });

    // The replies, read as a client reads them.
    // No TLS is started here, so the stream is still the plain one.
    let crate::wire::tls::Stream::Plain(played) = wire.into_stream() else { return };
    let written = played.written;
    let mut parser = crate::smtp::reply::ReplyParser::new();
    for line in written.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or_else(|| panic!("a reply line without CRLF: {:?}", String::from_utf8_lossy(line)));
        if let Err(err) = parser.feed(line) {
            panic!("the server sent a reply line a client cannot read ({err}): {:?}", String::from_utf8_lossy(line));
        }
    }

    let accepted = host.accepted.lock().unwrap_or_else(|e| e.into_inner());
    assert!(accepted.len() <= markers, "{} messages accepted from {markers} end-of-data markers", accepted.len());
    for envelope in accepted.iter() {
        assert!(!envelope.recipients.is_empty(), "a message accepted with no recipient");
        let keys: BTreeSet<String> = envelope.recipients.iter().map(|r| smtp_host::Rules.mailbox_key(r)).collect();
        assert_eq!(keys.len(), envelope.recipients.len(), "two copies for one mailbox: {:?}", envelope.recipients);
        assert!(envelope.data.len() <= max_size, "a message of {} bytes over the limit of {max_size}", envelope.data.len());
        let back = unstuff(&crate::wire::dot::stuff(&envelope.data));
        assert_eq!(back, envelope.data, "dot-stuffing and unstuffing changed the message");
    }
}

/// How many times the client ended a message: a line "." after CRLF
/// (RFC 5321 §4.1.1.4), or right after the DATA command line, which the
/// server's reader takes as ended by CRLF whatever it ended with.
fn end_markers(input: &[u8]) -> usize {
    (0..input.len())
        .filter(|&i| input[i..].starts_with(b".\r\n"))
        .filter(|&i| {
            let before = &input[..i];
            let after_data = before.strip_suffix(b"\n").is_some_and(|b| {
                let line = b.strip_suffix(b"\r").unwrap_or(b);
                let start = line.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
                line[start..].trim_ascii().eq_ignore_ascii_case(b"DATA")
            });
            before.ends_with(b"\r\n") || after_data
        })
        .count()
}

/// The receiving side of dot-stuffing, line by line, as the DATA reader
/// feeds [`crate::wire::dot::Unstuffer`].
fn unstuff(wire: &[u8]) -> Vec<u8> {
    use crate::wire::dot::{Block, Unstuffer};
    let mut unstuffer = Unstuffer::new(usize::MAX, usize::MAX);
    for line in wire.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r\n").unwrap_or(line);
        if unstuffer.line(line, false) {
            break;
        }
    }
    match unstuffer.finish() {
        Block::Complete(data) => data,
        other => panic!("unstuffing with no limits gave {other:?}"),
    }
}

// ---------------------------------------------------------------------
// POP3
// ---------------------------------------------------------------------

mod pop3_host {
    use crate::pop3::session::{Entry, Maildrop, Maildrops};
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    const MESSAGE_1: &[u8] = b"From: alice@school.test\r\nTo: bob@example.org\r\nSubject: Lunch?\r\n\r\nHi Bob,\r\n.hidden dot line\r\nlunch?\r\n.\r\n";
    const MESSAGE_2: &[u8] = b"Subject: bare\n\nline 1\nline 2 with no end";

    /// bob@example.org/builder has two messages; carol@example.org/secret none.
    #[derive(Default)]
    pub struct Host {
        pub locked: Arc<Mutex<HashSet<String>>>,
        pub removed: Mutex<Vec<u32>>,
    }

    pub struct Lock(Arc<Mutex<HashSet<String>>>, String);

    impl Drop for Lock {
        fn drop(&mut self) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
        }
    }

    impl Maildrops for Host {
        type Lock = Lock;
        fn login(&self, user: &str, password: &str, _client: std::net::IpAddr) -> crate::login::Attempt {
            let user = user.to_ascii_lowercase();
            crate::login::Attempt::from_check(
                matches!((user.as_str(), password), ("bob@example.org", "builder") | ("carol@example.org", "secret")).then_some(user),
            )
        }
        fn lock(&self, user: &str) -> Option<Lock> {
            let fresh = self.locked.lock().unwrap_or_else(|e| e.into_inner()).insert(user.to_string());
            fresh.then(|| Lock(self.locked.clone(), user.to_string()))
        }
        fn open(&self, user: &str) -> Maildrop {
            let messages = if user == "bob@example.org" {
                vec![Entry { uid: 7, raw: Arc::new(MESSAGE_1.to_vec()) }, Entry { uid: 9, raw: Arc::new(MESSAGE_2.to_vec()) }]
            } else {
                Vec::new()
            };
            Maildrop { uid_validity: 1700, messages }
        }
        fn remove(&self, _: &str, uids: &[u32]) -> Result<usize, String> {
            self.removed.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(uids);
            Ok(uids.len())
        }
    }

    impl crate::pop3::server::Backend for Host {
        fn name(&self) -> &str {
            "mx1.example.org"
        }
    }
}

/// A POP3 client's bytes through the real server loop
/// (`pop3::server::serve`). The first byte chooses how reads are cut.
///
/// Checks: the server greets with `+OK`; every status line parses with the
/// client's status parser; nothing is removed without a `QUIT`
/// (RFC 1939 §6), only messages that exist, each once; the maildrop is
/// unlocked when the connection ends (§8).
pub fn pop3(data: &[u8]) {
    let host = pop3_host::Host::default();
    let net = fresh_net();
    let played = Played::new(data);
    let quit = played.input.windows(4).any(|w| w.eq_ignore_ascii_case(b"QUIT"));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let written = block_on(async {
        let mut played = played;
        crate::pop3::server::serve(&host, &net, &mut played, "client".into(), MessageSlot::default(), stop, crate::tls::Offer::None).await;
        played.written
    });
    drop(stop_tx);
    assert!(written.starts_with(b"+OK"), "no +OK greeting: {:?}", String::from_utf8_lossy(&written[..written.len().min(80)]));
    let removed = host.removed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(quit || removed.is_empty(), "messages removed without QUIT: {removed:?}");
    let unique: BTreeSet<u32> = removed.iter().copied().collect();
    assert_eq!(unique.len(), removed.len(), "a message removed twice: {removed:?}");
    assert!(unique.iter().all(|uid| [7, 9].contains(uid)), "removed a message that does not exist: {removed:?}");
    assert!(host.locked.lock().unwrap_or_else(|e| e.into_inner()).is_empty(), "the maildrop stays locked after the connection");
}

// ---------------------------------------------------------------------
// IMAP
// ---------------------------------------------------------------------

mod imap_host {
    use crate::imap::session::Backend;
    use crate::store::Store;
    use std::time::Duration;

    /// bob@example.org/builder and alice@example.org/wonderland have
    /// mailboxes; bob's INBOX holds three messages, one of them MIME.
    pub struct Host {
        pub store: Store,
    }

    impl Host {
        pub fn new() -> Host {
            let store = Store::new(1_700_000_000);
            store.ensure_user("alice@example.org");
            for raw in [
                &b"From: Alice <alice@school.test>\r\nTo: bob@example.org\r\nSubject: Lunch\r\nDate: Thu, 26 Nov 2026 04:16:00 +0000\r\nMessage-ID: <1@school.test>\r\n\r\nAt noon?\r\n"[..],
                b"From: carol@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n",
                b"Subject: no end of line",
            ] {
                let _ = store.deliver("bob@example.org", raw.to_vec(), Duration::from_secs(5));
            }
            Host { store }
        }
    }

    impl Backend for Host {
        fn hostname(&self) -> &str {
            "mx1.example.org"
        }
        fn authenticate(&self, user: &str, password: &str, _client: std::net::IpAddr) -> crate::login::Attempt {
            let user = user.to_ascii_lowercase();
            crate::login::Attempt::from_check(
                matches!((user.as_str(), password), ("bob@example.org", "builder") | ("alice@example.org", "wonderland")).then_some(user),
            )
        }
        fn store(&self) -> &Store {
            &self.store
        }
        fn now(&self) -> Duration {
            Duration::from_secs(60)
        }
        fn max_message_size(&self) -> usize {
            1000
        }
    }
}

/// Cuts lines from a byte string the way `Wire::read_line(max)` does: a
/// line ends at LF (CR before it removed); a line longer than `max` octets
/// with its line end is dropped whole and reported as overlong.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    /// The next line and whether it was too long; `None` at the end of input
    /// (an unfinished last line is never read, as on a closed connection).
    fn next(&mut self, max: usize) -> Option<(&'a [u8], bool)> {
        let end = self.rest.iter().position(|&b| b == b'\n')?;
        let (line, rest) = (&self.rest[..end], &self.rest[end + 1..]);
        self.rest = rest;
        if end + 1 > max {
            return Some((&[], true));
        }
        Some((line.strip_suffix(b"\r").unwrap_or(line), false))
    }

    /// Exactly `n` bytes (a literal), or `None` if the input ends first.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (bytes, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(bytes)
    }
}

/// An IMAP client's bytes through the server's framing (the
/// [`Assembler`](crate::imap::parser::Assembler) with literals, as
/// `imap::server::read_command` drives it), the grammar and the session,
/// on an in-memory store; IDLE is asked for its updates after each input.
///
/// Checks: every response ends in CRLF; a command that parses also gives
/// the same command when parsed again; the session ends after `BYE`.
pub fn imap(data: &[u8]) {
    use crate::imap::describe::describe_command;
    use crate::imap::parser::{Assembler, Framing, MAX_LINE, parse_command};
    use crate::imap::session::{Backend, Expect, Outcome, Session};

    let host = imap_host::Host::new();
    let mut session = Session::new(host.hostname());
    let mut assembler = Assembler::new(host.max_message_size());
    let mut input = Lines { rest: data };
    let check = |outcome: &Outcome| {
        for response in &outcome.responses {
            assert!(response.bytes.ends_with(b"\r\n"), "a response without CRLF: {:?}", String::from_utf8_lossy(&response.bytes));
        }
    };
    check(&Outcome { responses: vec![session.greeting()], close: false });
    'connection: loop {
        let outcome = match session.expecting() {
            Expect::Closed => break,
            Expect::AuthResponse => match input.next(MAX_LINE + 2) {
                None => break,
                Some((_, true)) => session.line_too_long(),
                Some((line, false)) => session.auth_response(line, &host),
            },
            Expect::IdleDone => {
                check(&Outcome { responses: session.updates(&host), close: false });
                match input.next(MAX_LINE) {
                    None => break,
                    Some((line, _)) => session.idle_line(line.trim_ascii(), &host),
                }
            }
            // One command: lines and literals until the assembler has it all.
            Expect::Command => loop {
                let Some((line, overlong)) = input.next(MAX_LINE + 2) else { break 'connection };
                if overlong {
                    assembler.reset();
                    break session.line_too_long();
                }
                match assembler.line(line) {
                    Framing::Complete(bytes) => {
                        break match parse_command(&bytes) {
                            Ok(command) => {
                                let again = parse_command(&bytes).expect("the same bytes parse twice");
                                assert_eq!(format!("{again:?}"), format!("{command:?}"), "parsing is not deterministic");
                                let _ = describe_command("client", &command.body);
                                session.command(command, &host)
                            }
                            Err(error) => session.parse_error(error),
                        };
                    }
                    Framing::TooBig { tag, size, synchronizing } => break session.literal_too_big(tag.as_deref(), size, synchronizing),
                    Framing::Literal { size, .. } => match input.take(size) {
                        Some(bytes) => assembler.literal(bytes),
                        None => break 'connection,
                    },
                }
            },
        };
        check(&outcome);
        if outcome.close {
            assert_eq!(session.expecting(), Expect::Closed, "the server closes but the session goes on");
            break;
        }
    }
}

// ---------------------------------------------------------------------
// Scenario files
// ---------------------------------------------------------------------

/// A scenario file (as text; other bytes are refused before parsing)
/// through parsing and validation.
///
/// Checks: every problem names a line and column inside the file (or 0:0
/// for the file as a whole) and prints; a scenario that passes validation
/// builds its DNS zones, as starting a world does.
pub fn scenario(data: &[u8]) {
    use crate::scenario::Scenario;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.split('\n').count();
    match Scenario::parse("fuzz.json", text) {
        Err(error) => {
            let _ = error.to_string();
            for problem in &error.problems {
                assert!(problem.line <= lines, "problem at line {} of a {lines}-line file: {problem}", problem.line);
                if problem.line > 0 {
                    let width = text.split('\n').nth(problem.line - 1).map_or(0, |l| l.chars().count());
                    assert!(problem.column <= width + 1, "problem at column {} of a {width}-character line: {problem}", problem.column);
                }
            }
        }
        Ok(scenario) => {
            let hosts: Vec<(String, IpAddr)> =
                scenario.hosts.keys().enumerate().map(|(i, name)| (name.clone(), IpAddr::V4(Ipv4Addr::from(0x7f00_0002 + i as u32)))).collect();
            let domains: Vec<_> = scenario.domains.iter().map(|(d, z)| (d.clone(), z.records.clone())).collect();
            if let Err(err) = Zones::new(&domains, &hosts) {
                panic!("a valid scenario whose zones cannot be built: {err}");
            }
        }
    }
}

// ---------------------------------------------------------------------
// DNS
// ---------------------------------------------------------------------

/// Keeps the answer the handler sends, as bytes on the wire.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Option<Vec<u8>>>>);

#[async_trait::async_trait]
impl hickory_server::server::ResponseHandler for Captured {
    async fn send_response<'a>(
        &mut self,
        response: hickory_server::zone_handler::MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        >,
    ) -> Result<hickory_server::server::ResponseInfo, hickory_server::net::NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = hickory_proto::serialize::binary::BinEncoder::new(&mut bytes);
        let info = response.destructive_emit(&mut encoder)?;
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(info)
    }
}

/// The zones of the built-in scenario, built once.
fn demo_zones() -> Arc<Zones> {
    static ZONES: OnceLock<Arc<Zones>> = OnceLock::new();
    ZONES
        .get_or_init(|| {
            let scenario = crate::scenario::Scenario::default_scenario();
            let hosts: Vec<(String, IpAddr)> =
                scenario.hosts.keys().enumerate().map(|(i, name)| (name.clone(), IpAddr::V4(Ipv4Addr::from(0x7f00_0002 + i as u32)))).collect();
            let domains: Vec<_> = scenario.domains.iter().map(|(d, z)| (d.clone(), z.records.clone())).collect();
            Arc::new(Zones::new(&domains, &hosts).expect("the built-in scenario's zones"))
        })
        .clone()
}

/// One DNS message (as a UDP datagram or a TCP frame carries it, RFC 1035
/// §4) through the fake DNS server's handler, zones of the built-in
/// scenario. A message hickory cannot decode never reaches the handler
/// (hickory answers FORMERR itself), so it ends here too.
///
/// Checks: every decodable question gets exactly one answer; the answer
/// decodes, is marked a response and carries the question's ID (RFC 1035
/// §4.1.1).
pub fn dns(data: &[u8]) {
    use hickory_server::server::{Request, RequestHandler};
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 99)), 5353);
    let Ok(request) = Request::from_bytes(data.to_vec(), src, hickory_server::net::xfer::Protocol::Tcp) else { return };
    let net = fresh_net();
    let handler = DnsHandler { zones: demo_zones(), trace: net.trace.clone(), nodes: Arc::default() };
    let captured = Captured::default();
    block_on(handler.handle_request::<_, hickory_server::net::runtime::TokioTime>(&request, captured.clone()));
    let Some(bytes) = captured.0.lock().unwrap_or_else(|e| e.into_inner()).take() else { panic!("a question got no answer") };
    let answer = hickory_proto::op::Message::from_vec(&bytes).unwrap_or_else(|err| panic!("our answer does not decode ({err}): {bytes:02x?}"));
    assert_eq!(answer.metadata.message_type, hickory_proto::op::MessageType::Response, "the answer is not marked as a response");
    assert_eq!(answer.metadata.id, request.metadata.id, "the answer has another ID than the question");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_as_the_wire_cuts_them() {
        let mut lines = Lines { rest: b"ab\r\nabcdef\r\n{3}\r\nxyz\nend" };
        assert_eq!(lines.next(4), Some((&b"ab"[..], false)));
        assert_eq!(lines.next(4), Some((&b""[..], true)), "8 octets with CRLF are over 4");
        assert_eq!(lines.next(5), Some((&b"{3}"[..], false)), "exactly 5 octets with CRLF fit");
        assert_eq!(lines.take(3), Some(&b"xyz"[..]));
        assert_eq!(lines.next(9), Some((&b""[..], false)));
        assert_eq!(lines.next(9), None, "an unfinished last line is never read");
        assert_eq!(lines.take(4), None);
    }

    #[test]
    fn unstuffing_undoes_stuffing() {
        for body in [&b""[..], b"a\r\n", b".\r\n..\r\nx\r\r\n"] {
            assert_eq!(unstuff(&crate::wire::dot::stuff(body)), body);
        }
    }
}
