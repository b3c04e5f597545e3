//! tlsload — a bounded load generator for mail servers over TLS.
//!
//! `benches/mailload.rs` measures plaintext IMAP and POP3 sessions; this one
//! measures what TLS adds, with the same client against every server, so
//! the figures of two servers in one run can be compared:
//!
//! - `handshake`: connect, a **full** TLS handshake (session resumption is
//!   switched off, so every connection pays for the key exchange and the
//!   certificate check, RFC 8446 §2), read the server's greeting through
//!   TLS (proof that the server finished its side too), close with
//!   `close_notify`. Implicit TLS: IMAPS (993), POP3S (995), SMTPS (465).
//! - `imaps` / `imap`: one IMAP session per connection — (TLS,) greeting,
//!   `LOGIN`, `SELECT INBOX`, `FETCH 1:* (FLAGS BODY.PEEK[])`, `LOGOUT`.
//!   `imap` is the same session in plaintext, for the cost of TLS alone.
//! - `smtp`: SMTP intake with STARTTLS (RFC 3207) — greeting, `EHLO`,
//!   `STARTTLS`, the handshake, `EHLO` again, then `--messages` times
//!   `MAIL`, `RCPT`, `DATA`, and `QUIT`. With `--plain`, the same without
//!   STARTTLS (for servers that cannot do TLS, such as Postfix's
//!   smtp-sink, and for the cost of TLS alone).
//!
//! ```text
//! cargo bench --bench tlsload -- handshake --addr 127.67.0.2:10993 --ca ca.pem --name mx.bench.test
//! cargo bench --bench tlsload -- imaps --addr 127.67.0.2:10993 --ca ca.pem --name mx.bench.test \
//!     --user 'reader{i}@bench.test' --pass bench-secret --clients 10 --seconds 10
//! cargo bench --bench tlsload -- smtp --addr 127.67.0.2:10025 --ca ca.pem --name mx.bench.test \
//!     --to sink@bench.test --messages 10
//! ```
//!
//! The client trusts only the CA files given with `--ca` and checks the
//! certificate against `--name`, as a careful mail program does: a server
//! whose certificate does not verify counts errors, not sessions. TLS 1.3
//! and 1.2 are offered with rustls' default suites (aws-lc-rs, the same
//! crypto provider as mailflow's servers); the version and suite a server
//! chose are printed.
//!
//! Nothing is unbounded: a fixed number of clients, a timeout on every
//! read, a cap on a reply line's length, and the run ends by itself. Any
//! refusal, unexpected reply, early close or timeout is a protocol error;
//! the session is dropped and the client starts a new one. The last line
//! is a machine-readable `RESULT` line (`benches/tls.sh` reads it);
//! `all_sessions` and `all_messages` there count the warm-up's too, for
//! dividing a server's CPU time by and for checking that every message a
//! server accepted is in its mailbox.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// The longest reply line accepted (a guard against a runaway server).
const LINE_MAX: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Handshake,
    Imaps,
    Imap,
    Smtp,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Handshake => "handshake",
            Mode::Imaps => "imaps",
            Mode::Imap => "imap",
            Mode::Smtp => "smtp",
        }
    }
}

#[derive(Clone, Debug)]
struct Options {
    mode: Mode,
    addr: SocketAddr,
    name: ServerName<'static>,
    ca: Vec<String>,
    user: String,
    pass: String,
    from: String,
    to: String,
    messages: usize,
    size: usize,
    plain: bool,
    clients: usize,
    seconds: f64,
    warmup: f64,
    timeout: Duration,
}

const USAGE: &str = "usage: tlsload handshake|imaps|imap|smtp --addr HOST:PORT [--ca CA.pem]... [--name SERVER-NAME]
  [--user USER --pass PASS]                 (imaps, imap; --user may contain {i}, the client's number)
  [--from ADDR] [--to ADDR] [--messages 10] [--size 1024] [--plain]   (smtp; --plain: no STARTTLS)
  [--clients 10] [--seconds 10] [--warmup 1] [--timeout 10]";

fn parse_args() -> Result<Options, String> {
    // `cargo bench` passes `--bench` to every bench binary: not ours.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut mode = None;
    let (mut addr, mut name, mut ca) = (None, None, Vec::new());
    let (mut user, mut pass) = (String::new(), String::new());
    let (mut from, mut to) = ("bench@client.test".to_string(), "sink@bench.test".to_string());
    let (mut messages, mut size, mut plain) = (10usize, 1024usize, false);
    let (mut clients, mut seconds, mut warmup, mut timeout) = (10usize, 10f64, 1f64, 10f64);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "handshake" => mode = Some(Mode::Handshake),
            "imaps" => mode = Some(Mode::Imaps),
            "imap" => mode = Some(Mode::Imap),
            "smtp" => mode = Some(Mode::Smtp),
            "--addr" => addr = Some(value("--addr")?.parse::<SocketAddr>().map_err(|e| format!("--addr: {e}"))?),
            "--name" => name = Some(value("--name")?),
            "--ca" => ca.push(value("--ca")?),
            "--user" => user = value("--user")?,
            "--pass" => pass = value("--pass")?,
            "--from" => from = value("--from")?,
            "--to" => to = value("--to")?,
            "--messages" => messages = value("--messages")?.parse().map_err(|e| format!("--messages: {e}"))?,
            "--size" => size = value("--size")?.parse().map_err(|e| format!("--size: {e}"))?,
            "--plain" => plain = true,
            "--clients" => clients = value("--clients")?.parse().map_err(|e| format!("--clients: {e}"))?,
            "--seconds" => seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--warmup" => warmup = value("--warmup")?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--timeout" => timeout = value("--timeout")?.parse().map_err(|e| format!("--timeout: {e}"))?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let mode = mode.ok_or("say handshake, imaps, imap or smtp")?;
    let addr = addr.ok_or("--addr is required")?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: tlsload only talks to loopback addresses"));
    }
    let name = match name {
        Some(n) => ServerName::try_from(n).map_err(|e| format!("--name: {e}"))?,
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let tls = matches!(mode, Mode::Handshake | Mode::Imaps) || (mode == Mode::Smtp && !plain);
    if tls && ca.is_empty() {
        return Err("TLS needs --ca FILE: the CA certificate(s) to trust".into());
    }
    if matches!(mode, Mode::Imaps | Mode::Imap) && (user.is_empty() || pass.is_empty()) {
        return Err("imap and imaps need --user and --pass".into());
    }
    if !(1..=1000).contains(&clients)
        || !(0.1..=600.0).contains(&seconds)
        || !(0.0..=60.0).contains(&warmup)
        || !(0.1..=120.0).contains(&timeout)
        || !(1..=10_000).contains(&messages)
        || !(64..=10 << 20).contains(&size)
    {
        return Err("--clients 1..1000, --seconds 0.1..600, --warmup 0..60, --timeout 0.1..120, --messages 1..10000, --size 64..10485760".into());
    }
    Ok(Options { mode, addr, name, ca, user, pass, from, to, messages, size, plain, clients, seconds, warmup, timeout: Duration::from_secs_f64(timeout) })
}

/// A client configuration that trusts only the given CAs and never resumes
/// a session: every connection is a full handshake.
fn client_config(ca_files: &[String]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for file in ca_files {
        let pem = std::fs::read(file).map_err(|e| format!("--ca {file}: {e}"))?;
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| format!("--ca {file}: {e}"))?).map_err(|e| format!("--ca {file}: {e}"))?;
            found += 1;
        }
        if found == 0 {
            return Err(format!("--ca {file}: no certificate in it"));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Why a session failed; every one counts as a protocol error.
#[derive(Debug)]
enum Failure {
    Connect(std::io::Error),
    Tls(std::io::Error),
    Io(std::io::Error),
    Timeout(&'static str),
    Closed(&'static str),
    /// A refusal or an answer that breaks the protocol.
    Protocol(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "connect: {e}"),
            Failure::Tls(e) => write!(f, "TLS handshake: {e}"),
            Failure::Io(e) => write!(f, "i/o: {e}"),
            Failure::Timeout(step) => write!(f, "timeout waiting for {step}"),
            Failure::Closed(step) => write!(f, "connection closed by the server during {step}"),
            Failure::Protocol(text) => write!(f, "{text}"),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

/// A plaintext or TLS byte stream.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What TLS a server chose (printed once per run).
type Negotiated = Option<String>;

/// One connection: a buffered reader over the stream, with a timeout on
/// every read so a stuck server ends the session instead of the run.
struct Conn {
    stream: BufReader<Box<dyn Io>>,
    timeout: Duration,
    line: Vec<u8>,
    scratch: Vec<u8>,
    negotiated: Negotiated,
}

impl Conn {
    async fn open(addr: SocketAddr, timeout: Duration) -> Result<Conn, Failure> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(Failure::Timeout("connect")),
            Ok(result) => result.map_err(Failure::Connect)?,
        };
        // Commands are small and each waits for its answer: send them now.
        stream.set_nodelay(true)?;
        let boxed: Box<dyn Io> = Box::new(stream);
        Ok(Conn { stream: BufReader::with_capacity(64 * 1024, boxed), timeout, line: Vec::with_capacity(512), scratch: Vec::new(), negotiated: None })
    }

    /// Runs the TLS handshake over the connection (at once for implicit
    /// TLS, after the server's go-ahead for STARTTLS). Bytes the server
    /// sent before the handshake and the client has not read would be
    /// plaintext injected ahead of TLS: a protocol error (CVE-2011-0411's
    /// mirror image).
    async fn start_tls(&mut self, tls: &Tls) -> Result<(), Failure> {
        if !self.stream.buffer().is_empty() {
            return Err(Failure::Protocol("bytes after the STARTTLS go-ahead, before the handshake".into()));
        }
        let placeholder: Box<dyn Io> = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.stream, BufReader::new(placeholder)).into_inner();
        let stream = match tokio::time::timeout(self.timeout, tls.connector.connect(tls.name.clone(), plain)).await {
            Err(_) => return Err(Failure::Timeout("the TLS handshake")),
            Ok(result) => result.map_err(Failure::Tls)?,
        };
        let (_, session) = stream.get_ref();
        self.negotiated = Some(format!(
            "{} {} {}",
            session.protocol_version().and_then(|v| v.as_str()).unwrap_or("?"),
            session.negotiated_cipher_suite().and_then(|s| s.suite().as_str()).unwrap_or("?"),
            session.negotiated_key_exchange_group().and_then(|g| g.name().as_str()).unwrap_or("?")
        ));
        let boxed: Box<dyn Io> = Box::new(stream);
        self.stream = BufReader::with_capacity(64 * 1024, boxed);
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream.get_mut().write_all(bytes).await?;
        self.stream.get_mut().flush().await?;
        Ok(())
    }

    /// Closes politely: TLS `close_notify` (if TLS) and the TCP FIN.
    async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.stream.get_mut().shutdown()).await;
    }

    /// Reads one line (CRLF or LF ended) into `self.line`, ending included.
    async fn read_line(&mut self, step: &'static str) -> Result<(), Failure> {
        self.line.clear();
        let mut limited = (&mut self.stream).take(LINE_MAX as u64);
        match tokio::time::timeout(self.timeout, limited.read_until(b'\n', &mut self.line)).await {
            Err(_) => Err(Failure::Timeout(step)),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(0)) => Err(Failure::Closed(step)),
            Ok(Ok(_)) if self.line.last() != Some(&b'\n') => {
                if self.line.len() >= LINE_MAX {
                    Err(Failure::Protocol(format!("{step}: a reply line longer than {LINE_MAX} bytes")))
                } else {
                    Err(Failure::Closed(step))
                }
            }
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Reads and discards exactly `n` bytes (an IMAP literal).
    async fn skip_bytes(&mut self, n: usize, step: &'static str) -> Result<(), Failure> {
        self.scratch.resize(n, 0);
        match tokio::time::timeout(self.timeout, self.stream.read_exact(&mut self.scratch[..n])).await {
            Err(_) => Err(Failure::Timeout(step)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Failure::Closed(step)),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

/// The TLS side of a run: one configuration shared by all clients.
#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

fn trimmed(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn show(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(trimmed(line));
    if text.len() > 120 { format!("{}…", &text[..text.floor_char_boundary(120)]) } else { text.into_owned() }
}

/// What one finished session did.
#[derive(Default)]
struct Done {
    messages: u64,
    bytes: u64,
    negotiated: Negotiated,
}

// ----------------------------------------------------------- handshake --

async fn handshake_session(options: &Options, tls: &Tls) -> Result<Done, Failure> {
    let mut conn = Conn::open(options.addr, options.timeout).await?;
    conn.start_tls(tls).await?;
    // The greeting comes through TLS only once the server has finished
    // its side of the handshake (with TLS 1.3 the client may finish first).
    conn.read_line("the greeting").await?;
    let negotiated = conn.negotiated.take();
    conn.close().await;
    Ok(Done { negotiated, ..Done::default() })
}

// ---------------------------------------------------------------- IMAP --

/// If `line` ends with a literal announcement `{n}` (before CRLF), its n.
fn literal_at_end(line: &[u8]) -> Result<Option<usize>, String> {
    let line = trimmed(line);
    let Some(body) = line.strip_suffix(b"}") else { return Ok(None) };
    let Some(open) = body.iter().rposition(|&b| b == b'{') else { return Ok(None) };
    let digits = &body[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits.len() > 9 {
        return Err(format!("a malformed literal announcement in {:?}", show(line)));
    }
    std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).map(Some).ok_or_else(|| "a literal size".to_string())
}

/// One complete IMAP response: its first line's start and its literals.
struct ImapResponse {
    head: Vec<u8>,
    literals: usize,
    literal_bytes: usize,
}

impl Conn {
    /// Reads one IMAP response: a line, and while a line ends with `{n}`,
    /// exactly n bytes of literal and the line that continues after it
    /// (RFC 9051 §4.3).
    async fn imap_response(&mut self, step: &'static str) -> Result<ImapResponse, Failure> {
        self.read_line(step).await?;
        let mut response = ImapResponse { head: self.line[..self.line.len().min(256)].to_vec(), literals: 0, literal_bytes: 0 };
        while let Some(n) = literal_at_end(&self.line).map_err(Failure::Protocol)? {
            self.skip_bytes(n, step).await?;
            response.literals += 1;
            response.literal_bytes += n;
            self.read_line(step).await?;
        }
        Ok(response)
    }

    /// Sends `tag command` and reads responses up to the tagged one, which
    /// must be OK. `on_untagged` sees each untagged response on the way.
    async fn imap_command(
        &mut self,
        tag: &str,
        command: &str,
        step: &'static str,
        mut on_untagged: impl FnMut(&ImapResponse) -> Result<(), String>,
    ) -> Result<(), Failure> {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        loop {
            let response = self.imap_response(step).await?;
            let head = trimmed(&response.head);
            if let Some(rest) = head.strip_prefix(tag.as_bytes()).and_then(|r| r.strip_prefix(b" ")) {
                let status = rest.split(|&b| b == b' ').next().unwrap_or_default();
                return if status.eq_ignore_ascii_case(b"OK") { Ok(()) } else { Err(Failure::Protocol(format!("{step}: {}", show(head)))) };
            }
            if head.starts_with(b"* ") {
                if step != "LOGOUT" && head.get(2..5).is_some_and(|w| w.eq_ignore_ascii_case(b"BYE")) {
                    return Err(Failure::Protocol(format!("{step}: unexpected {}", show(head))));
                }
                on_untagged(&response).map_err(|e| Failure::Protocol(format!("{step}: {e}")))?;
            } else {
                return Err(Failure::Protocol(format!("{step}: unexpected {}", show(head))));
            }
        }
    }
}

/// `* 20 EXISTS` → 20.
fn exists_count(head: &[u8]) -> Option<u64> {
    let rest = trimmed(head).strip_prefix(b"* ")?;
    let (number, word) = std::str::from_utf8(rest).ok()?.split_once(' ')?;
    word.eq_ignore_ascii_case("EXISTS").then(|| number.parse().ok()).flatten()
}

/// `* 3 FETCH (...)`?
fn is_fetch(head: &[u8]) -> bool {
    let Some(rest) = trimmed(head).strip_prefix(b"* ") else { return false };
    let mut words = rest.splitn(3, |&b| b == b' ');
    let number = words.next().unwrap_or_default();
    !number.is_empty() && number.iter().all(u8::is_ascii_digit) && words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"FETCH"))
}

fn imap_quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

async fn imap_session(options: &Options, tls: Option<&Tls>, user: &str) -> Result<Done, Failure> {
    let mut conn = Conn::open(options.addr, options.timeout).await?;
    if let Some(tls) = tls {
        conn.start_tls(tls).await?;
    }
    conn.read_line("the greeting").await?;
    if !trimmed(&conn.line).get(..4).is_some_and(|g| g.eq_ignore_ascii_case(b"* OK")) {
        return Err(Failure::Protocol(format!("greeting: {}", show(&conn.line))));
    }
    let login = format!("LOGIN {} {}", imap_quoted(user), imap_quoted(&options.pass));
    conn.imap_command("a1", &login, "LOGIN", |_| Ok(())).await?;
    let mut exists = None;
    conn.imap_command("a2", "SELECT INBOX", "SELECT", |r| {
        exists = exists_count(&r.head).or(exists);
        Ok(())
    })
    .await?;
    let exists = exists.ok_or_else(|| Failure::Protocol("SELECT: no * n EXISTS response".into()))?;
    if exists == 0 {
        return Err(Failure::Protocol("SELECT: the mailbox is empty (seed it first)".into()));
    }
    let mut done = Done::default();
    conn.imap_command("a3", "FETCH 1:* (FLAGS BODY.PEEK[])", "FETCH", |r| {
        if is_fetch(&r.head) {
            if r.literals != 1 {
                return Err(format!("a FETCH response with {} literals, expected the body as one: {}", r.literals, show(&r.head)));
            }
            done.messages += 1;
            done.bytes += r.literal_bytes as u64;
        }
        Ok(())
    })
    .await?;
    if done.messages != exists {
        return Err(Failure::Protocol(format!("FETCH: {} messages fetched of the {exists} that SELECT announced", done.messages)));
    }
    let mut bye = false;
    conn.imap_command("a4", "LOGOUT", "LOGOUT", |r| {
        bye |= trimmed(&r.head).get(2..5).is_some_and(|w| w.eq_ignore_ascii_case(b"BYE"));
        Ok(())
    })
    .await?;
    if !bye {
        return Err(Failure::Protocol("LOGOUT: no * BYE before the tagged OK".into()));
    }
    done.negotiated = conn.negotiated.take();
    conn.close().await;
    Ok(done)
}

// ---------------------------------------------------------------- SMTP --

impl Conn {
    /// Reads a (multi-line, RFC 5321 §4.2.1) reply whose code must start
    /// with `class`; returns all its lines' text joined by newlines.
    async fn smtp_reply(&mut self, class: u8, step: &'static str) -> Result<String, Failure> {
        let mut text = String::new();
        loop {
            self.read_line(step).await?;
            let line = trimmed(&self.line);
            if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
                return Err(Failure::Protocol(format!("{step}: not a reply: {}", show(line))));
            }
            if line[0] != class {
                return Err(Failure::Protocol(format!("{step}: {}", show(line))));
            }
            text.push_str(&String::from_utf8_lossy(line.get(4..).unwrap_or_default()));
            text.push('\n');
            match line.get(3) {
                Some(b'-') => continue,
                None | Some(b' ') => return Ok(text),
                Some(_) => return Err(Failure::Protocol(format!("{step}: a malformed reply line: {}", show(line)))),
            }
        }
    }

    async fn smtp_command(&mut self, command: &str, class: u8, step: &'static str) -> Result<String, Failure> {
        self.send(command.as_bytes()).await?;
        self.smtp_reply(class, step).await
    }
}

/// A message of about `size` bytes; no body line starts with a dot, so no
/// dot-stuffing is needed (RFC 5321 §4.5.2).
fn message(options: &Options, client: usize, number: u64) -> Vec<u8> {
    let mut text = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: tlsload message {number}\r\nDate: Mon, 01 Jan 2024 09:00:00 +0000\r\n\
         Message-ID: <tlsload-{client}-{number}@client.test>\r\n\r\n",
        from = options.from,
        to = options.to
    );
    let line = "the quick brown fox jumps over the lazy dog, again and again.\r\n";
    while text.len() + line.len() <= options.size {
        text.push_str(line);
    }
    text.push_str("end\r\n.\r\n");
    text.into_bytes()
}

async fn smtp_session(options: &Options, tls: Option<&Tls>, client: usize, sequence: &mut u64) -> Result<Done, Failure> {
    let mut conn = Conn::open(options.addr, options.timeout).await?;
    conn.smtp_reply(b'2', "the greeting").await?;
    let capabilities = conn.smtp_command("EHLO client.test\r\n", b'2', "EHLO").await?;
    if let Some(tls) = tls {
        if !capabilities.lines().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
            return Err(Failure::Protocol("EHLO: STARTTLS is not offered".into()));
        }
        conn.smtp_command("STARTTLS\r\n", b'2', "STARTTLS").await?;
        conn.start_tls(tls).await?;
        // RFC 3207 §4.2: everything learnt before TLS is forgotten.
        conn.smtp_command("EHLO client.test\r\n", b'2', "EHLO after STARTTLS").await?;
    }
    let mut done = Done::default();
    for _ in 0..options.messages {
        *sequence += 1;
        conn.smtp_command(&format!("MAIL FROM:<{}>\r\n", options.from), b'2', "MAIL").await?;
        conn.smtp_command(&format!("RCPT TO:<{}>\r\n", options.to), b'2', "RCPT").await?;
        conn.smtp_command("DATA\r\n", b'3', "DATA").await?;
        let body = message(options, client, *sequence);
        conn.send(&body).await?;
        conn.smtp_reply(b'2', "end of data").await?;
        done.messages += 1;
        done.bytes += body.len() as u64;
    }
    conn.smtp_command("QUIT\r\n", b'2', "QUIT").await?;
    done.negotiated = conn.negotiated.take();
    conn.close().await;
    Ok(done)
}

// ----------------------------------------------------------- the run --

/// What one client counted.
#[derive(Default)]
struct Tally {
    sessions: u64,
    messages: u64,
    bytes: u64,
    latencies: Vec<Duration>,
    /// Sessions that ran (partly) during the warm-up, not counted above,
    /// and the messages they carried.
    warmup_sessions: u64,
    warmup_messages: u64,
    errors: u64,
    samples: Vec<String>,
    negotiated: Negotiated,
}

async fn client(options: Arc<Options>, tls: Option<Tls>, number: usize, measure_from: Instant, until: Instant) -> Tally {
    let user = options.user.replace("{i}", &number.to_string());
    let mut tally = Tally::default();
    let mut sequence = 0u64;
    while Instant::now() < until {
        let start = Instant::now();
        let result = match (options.mode, tls.as_ref()) {
            (Mode::Handshake, Some(tls)) => handshake_session(&options, tls).await,
            (Mode::Imaps | Mode::Imap, tls) => imap_session(&options, tls, &user).await,
            (Mode::Smtp, tls) => smtp_session(&options, tls, number, &mut sequence).await,
            (Mode::Handshake, None) => Err(Failure::Protocol("handshake mode without TLS".into())),
        };
        let took = start.elapsed();
        match result {
            Ok(done) => {
                if tally.negotiated.is_none() {
                    tally.negotiated = done.negotiated;
                }
                if start >= measure_from {
                    tally.sessions += 1;
                    tally.messages += done.messages;
                    tally.bytes += done.bytes;
                    tally.latencies.push(took);
                } else {
                    tally.warmup_sessions += 1;
                    tally.warmup_messages += done.messages;
                }
            }
            Err(failure) => {
                tally.errors += 1;
                if tally.samples.len() < 3 {
                    tally.samples.push(format!("client {number}: {failure}"));
                }
                // Do not spin on a server that refuses at once.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(options: Options, tls: Option<Tls>) {
    let options = Arc::new(options);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(options.warmup);
    let until = measure_from + Duration::from_secs_f64(options.seconds);
    let mode = options.mode.name();
    let tls_word = if tls.is_some() { "TLS" } else { "plaintext" };
    eprintln!(
        "tlsload: {mode} ({tls_word}) against {}, {} clients, {} s after {} s of warm-up",
        options.addr, options.clients, options.seconds, options.warmup
    );
    // All clients are tasks on this one thread (see main): the load
    // generator stays on the one core `taskset` gives it.
    let tasks: Vec<_> = (1..=options.clients).map(|n| tokio::spawn(client(options.clone(), tls.clone(), n, measure_from, until))).collect();
    let mut total = Tally::default();
    for task in tasks {
        let Ok(tally) = task.await else {
            total.errors += 1;
            continue;
        };
        total.sessions += tally.sessions;
        total.messages += tally.messages;
        total.bytes += tally.bytes;
        total.latencies.extend(tally.latencies);
        total.warmup_sessions += tally.warmup_sessions;
        total.warmup_messages += tally.warmup_messages;
        total.errors += tally.errors;
        total.samples.extend(tally.samples);
        total.negotiated = total.negotiated.or(tally.negotiated);
    }
    // Sessions still running at `until` were allowed to finish and are
    // counted, so the measured time runs to the last one's end.
    let seconds = measure_from.elapsed().as_secs_f64();
    total.latencies.sort();
    let (p50, p95) = (percentile(&total.latencies, 50.0), percentile(&total.latencies, 95.0));
    let per_s = |n: u64| n as f64 / seconds;
    let negotiated = total.negotiated.clone().unwrap_or_else(|| "none".into());
    println!("{mode} {}: {} clients for {seconds:.2} s, {tls_word} ({negotiated})", options.addr, options.clients);
    println!("  sessions      {:>9}   {:>10.1} /s", total.sessions, per_s(total.sessions));
    println!("  messages      {:>9}   {:>10.1} /s", total.messages, per_s(total.messages));
    println!("  bytes         {:>9}   {:>10.1} KiB/s", total.bytes, per_s(total.bytes) / 1024.0);
    println!("  errors        {:>9}   (warm-up sessions not counted: {})", total.errors, total.warmup_sessions);
    println!("  latency       p50 {:.2} ms, p95 {:.2} ms", ms(p50), ms(p95));
    for sample in &total.samples {
        println!("  error: {sample}");
    }
    println!(
        "RESULT mode={mode} addr={} tls={} clients={} seconds={seconds:.3} sessions={} all_sessions={} sessions_per_s={:.1} messages={} all_messages={} messages_per_s={:.1} bytes_per_s={:.0} errors={} p50_ms={:.3} p95_ms={:.3}",
        options.addr,
        negotiated.replace(' ', "/"),
        options.clients,
        total.sessions,
        total.sessions + total.warmup_sessions,
        per_s(total.sessions),
        total.messages,
        total.messages + total.warmup_messages,
        per_s(total.messages),
        per_s(total.bytes),
        total.errors,
        ms(p50),
        ms(p95)
    );
}

fn main() -> std::process::ExitCode {
    let prepared = parse_args().and_then(|options| {
        let wants_tls = match options.mode {
            Mode::Handshake | Mode::Imaps => true,
            Mode::Imap => false,
            Mode::Smtp => !options.plain,
        };
        let tls = if wants_tls { Some(Tls { connector: TlsConnector::from(client_config(&options.ca)?), name: options.name.clone() }) } else { None };
        Ok((options, tls))
    });
    let (options, tls) = match prepared {
        Ok(prepared) => prepared,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("tlsload: {problem}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    // One thread: the server gets the other core, and a single-threaded
    // runtime has no cross-thread wake-ups to pay for.
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("tlsload: cannot start a tokio runtime");
        return std::process::ExitCode::FAILURE;
    };
    runtime.block_on(run(options, tls));
    std::process::ExitCode::SUCCESS
}
