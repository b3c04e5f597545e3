//! The wire: one traced, paced line transport under every protocol.
//!
//! SMTP, POP3 and IMAP are line protocols: commands and replies are lines
//! ending in CRLF, plus blocks of message content. A [`Wire`] wraps one end
//! of a TCP connection and does the three things every protocol needs:
//!
//! 1. **bounded reading**: a line longer than the protocol allows is cut
//!    and reported, never buffered without limit; a silent peer times out;
//! 2. **pacing**: before anything is sent it passes the [`Conductor`], so
//!    step mode and live speed work for every protocol with no protocol
//!    code knowing about them;
//! 3. **tracing**: the server end turns every line that crosses the
//!    connection, both ways, into an [`Event`](crate::trace::Event). Only
//!    the server traces, so each line is traced exactly once, in the order
//!    the server saw it — and outside clients (swaks, Thunderbird) are
//!    traced just like our own.
//!
//! The protocol code stays in charge of meaning: it parses what
//! [`Wire::read_line`] returns and hands the wire a one-line summary (with
//! secrets masked) to trace.
//!
//! A wire can start TLS in place ([`Wire::start_tls_server`],
//! [`Wire::start_tls_client`]): see `tls.rs` for what then changes on the
//! link, and what an eavesdropper still sees.

pub mod dot;
pub mod peers;
pub mod tls;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::conductor::{Conductor, Pace};
use crate::trace::{Direction, Draft, HandshakeStep, Kind, MessageRef, Protocol, TlsInfo, Trace};
pub use dot::{Block, Unstuffer};
pub use peers::{MessageSlot, PeerInfo, Peers, Registration};
pub use tls::Stream;

/// Which end of the connection this wire is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("the peer sent nothing for {0:?}")]
    Timeout(Duration),
    /// The peer took none of our bytes for this long: it sends but never
    /// reads (its buffers and ours are full), or it is gone without a word.
    #[error("the peer read nothing for {0:?}")]
    Stalled(Duration),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("the TLS handshake failed: {0}")]
    Tls(String),
}

/// One line read from the wire, without its line end.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes (empty if it was too long).
    pub bytes: Vec<u8>,
    /// It was longer than allowed; the rest was read and dropped.
    pub overlong: bool,
}

impl Line {
    /// The line as text for the trace (invalid UTF-8 shown as �).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Who is talking on a wire, for events.
#[derive(Clone)]
pub struct Endpoints {
    /// This end's node name.
    pub local: String,
    /// The other end's node name (or address, for outside clients).
    pub peer: String,
    pub protocol: Protocol,
    pub side: Side,
}

/// One end of a traced, paced connection.
pub struct Wire<S> {
    io: BufReader<Stream<S>>,
    /// Set once TLS is up: every event of this connection carries it.
    tls: Option<Arc<TlsInfo>>,
    pub ends: Endpoints,
    session: u64,
    trace: Trace,
    conductor: Conductor,
    message: MessageSlot,
    idle_timeout: Duration,
    write_timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub fn new(stream: S, ends: Endpoints, trace: Trace, conductor: Conductor, message: MessageSlot, idle_timeout: Duration) -> Self {
        let session = trace.next_session();
        Wire { io: BufReader::new(Stream::Plain(stream)), tls: None, ends, session, trace, conductor, message, idle_timeout, write_timeout: idle_timeout }
    }

    /// How long a write may wait for the peer to make room (by reading)
    /// before the wire gives up with [`WireError::Stalled`]; the idle
    /// timeout by default. Servers use the world's network timeout: a
    /// client may think for minutes between commands, but one that asks
    /// for a 40 MB answer and reads none of it would otherwise hold its
    /// server task, and with POP3 the user's maildrop lock, forever.
    pub fn with_write_timeout(mut self, limit: Duration) -> Self {
        self.write_timeout = limit;
        self
    }

    pub fn session(&self) -> u64 {
        self.session
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The world's pacing (for a wait that passes on the simulated clock).
    pub fn conductor(&self) -> &Conductor {
        &self.conductor
    }

    pub fn message(&self) -> Option<MessageRef> {
        self.message.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_message(&self, message: Option<MessageRef>) {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message;
    }

    /// True if bytes the peer sent are already waiting (pipelining).
    pub fn has_buffered_input(&self) -> bool {
        !self.io.buffer().is_empty()
    }

    /// Gives back the stream (plain or TLS), e.g. to close it politely.
    /// Buffered input is dropped.
    pub fn into_stream(self) -> Stream<S> {
        self.io.into_inner()
    }

    /// Ends the conversation politely: over TLS a close_notify alert
    /// first (RFC 8446 §6.1; without it a client cannot tell a finished
    /// session from a cut connection), then the TCP FIN.
    pub async fn close(&mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.io.get_mut().shutdown()).await;
    }

    /// What protects this connection, once TLS is up.
    pub fn tls(&self) -> Option<&Arc<TlsInfo>> {
        self.tls.as_ref()
    }

    /// Takes the plaintext stream out for a TLS handshake. Input already
    /// buffered is thrown away on purpose: bytes sent before the handshake
    /// must not be read as if they came through it (the STARTTLS command
    /// injection attack, CVE-2011-0411).
    fn take_plain(&mut self) -> Result<S, WireError> {
        if !matches!(self.io.get_ref(), Stream::Plain(_)) {
            return Err(WireError::Tls("TLS is already on".into()));
        }
        let io = std::mem::replace(&mut self.io, BufReader::new(Stream::Closed));
        let dropped = io.buffer().len();
        if dropped > 0 && self.ends.side == Side::Server {
            let summary = format!("{} sent {dropped} bytes right after asking for TLS: thrown away, not read as if they came encrypted", self.ends.peer);
            self.emit_from_peer(Kind::Failure { reason: "plaintext injected before the TLS handshake (CVE-2011-0411)".into() }, summary);
        }
        match io.into_inner() {
            Stream::Plain(stream) => Ok(stream),
            other => {
                self.io = BufReader::new(other);
                Err(WireError::Tls("TLS is already on".into()))
            }
        }
    }

    /// The server side of a TLS handshake, now: right after the client
    /// asked (STARTTLS, STLS) or at once (implicit TLS). Each step is an
    /// event; so is a failure, with the reason a student can act on.
    pub async fn start_tls_server(&mut self, tls: &crate::tls::ServerTls) -> Result<(), WireError> {
        let stream = self.take_plain()?;
        let recorder = tls::Recorder {
            trace: self.trace.clone(),
            server: self.ends.local.clone(),
            client: self.ends.peer.clone(),
            protocol: self.ends.protocol,
            session: self.session,
            message: self.message.clone(),
        };
        let tap = tls::Tap::new(stream, Some(recorder));
        let acceptor = tokio_rustls::LazyConfigAcceptor::new(tokio_rustls::rustls::server::Acceptor::default(), tap);
        let (peer, local) = (self.ends.peer.clone(), self.ends.local.clone());
        let handshake = async {
            let start = acceptor.await?;
            let hello = start.client_hello();
            let asked = hello.server_name().map(|n| format!("asks for {n}")).unwrap_or_else(|| "names no server".into());
            let suites = hello.cipher_suites().len();
            let detail = format!("{asked}; offers {suites} cipher suites");
            self.emit_from_peer(
                Kind::TlsHandshake { step: HandshakeStep::ClientHello, detail },
                format!("TLS: {peer} says hello: the TLS versions and {suites} ciphers it knows ({asked})"),
            );
            start.into_stream(tls.config.clone()).await
        };
        let result = match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, handshake).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the client did not finish the handshake in time")),
        };
        let stream = match result {
            Ok(stream) => stream,
            Err(err) => {
                let reason = handshake_failure(&err);
                self.emit(Kind::TlsHandshake { step: HandshakeStep::Failed, detail: err.to_string() }, format!("TLS with {peer} failed: {reason}"));
                return Err(WireError::Tls(reason));
            }
        };
        let (_, connection) = stream.get_ref();
        let version = connection.protocol_version().map(|v| version_name(v.as_str().unwrap_or("?"))).unwrap_or_default();
        let suite = connection.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
        let group = connection.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name())).unwrap_or_default();
        let cert = &tls.cert;
        self.emit(
            Kind::TlsHandshake {
                step: HandshakeStep::Certificate,
                detail: format!("{}; issued by {}; valid for {}", cert.subject, cert.issuer, cert.names.join(", ")),
            },
            format!("TLS: {local} shows its certificate: {} (signed by {})", cert.subject, cert.issuer),
        );
        self.emit(
            Kind::TlsHandshake { step: HandshakeStep::KeysAgreed, detail: format!("{version}, {suite}, key exchange {group}") },
            format!("TLS: {local} and {peer} agree on fresh keys ({group}) and a cipher ({suite}); nobody else can compute them"),
        );
        self.tls = Some(Arc::new(TlsInfo { version: version.clone(), cipher_suite: suite, certificate: cert.subject.clone() }));
        self.emit(
            Kind::TlsHandshake { step: HandshakeStep::Finished, detail: version.clone() },
            format!("TLS: handshake finished ({version}); from now on every byte between {peer} and {local} is encrypted"),
        );
        self.io = BufReader::new(Stream::Server(Box::new(stream)));
        Ok(())
    }

    /// The client side of a TLS handshake: checks the server's
    /// certificate against `config`'s trusted CAs and `server_name`. The
    /// client side traces nothing (the server does); a failure comes back
    /// with the reason.
    pub async fn start_tls_client(&mut self, config: Arc<tokio_rustls::rustls::ClientConfig>, server_name: &str) -> Result<(), WireError> {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(server_name.to_string()).map_err(|e| WireError::Tls(e.to_string()))?;
        let stream = self.take_plain()?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let result = match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, connector.connect(name, tls::Tap::new(stream, None))).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the server did not finish the handshake in time")),
        };
        let stream = result.map_err(|e| WireError::Tls(handshake_failure(&e)))?;
        let (_, connection) = stream.get_ref();
        let version = connection.protocol_version().map(|v| version_name(v.as_str().unwrap_or("?"))).unwrap_or_default();
        let suite = connection.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
        self.tls = Some(Arc::new(TlsInfo { version, cipher_suite: suite, certificate: String::new() }));
        self.io = BufReader::new(Stream::Client(Box::new(stream)));
        Ok(())
    }

    /// Reads one line of at most `max` octets including CRLF. Bare LF ends
    /// a line too (lenient, as most servers are for commands).
    pub async fn read_line(&mut self, max: usize) -> Result<Line, WireError> {
        let mut bytes = Vec::new();
        let (overlong, _) = self.read_line_into(max, &mut bytes).await?;
        Ok(Line { bytes, overlong })
    }

    /// Like [`Wire::read_line`], but into a buffer the caller reuses, so a
    /// message body of many lines needs no new allocation per line.
    /// Returns (the line was too long and `bytes` is empty, it ended in
    /// CRLF rather than a bare LF).
    async fn read_line_into(&mut self, max: usize, bytes: &mut Vec<u8>) -> Result<(bool, bool), WireError> {
        let idle = self.idle_timeout;
        match tokio::time::timeout(idle, read_bounded_line(&mut self.io, max, bytes)).await {
            Ok(result) => result,
            Err(_) => Err(WireError::Timeout(idle)),
        }
    }

    /// Reads exactly `n` bytes (an IMAP literal: its size was announced
    /// and checked against a limit before). Memory grows with what
    /// arrives, not with what was announced, and a peer that stops
    /// sending times out like a silent one. Not traced: the caller knows
    /// what the bytes are (a message, a password) and traces them.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, WireError> {
        let idle = self.idle_timeout;
        let mut bytes = Vec::with_capacity(n.min(64 * 1024));
        while bytes.len() < n {
            let available = match tokio::time::timeout(idle, self.io.fill_buf()).await {
                Ok(result) => result?,
                Err(_) => return Err(WireError::Timeout(idle)),
            };
            if available.is_empty() {
                return Err(WireError::Closed);
            }
            let used = available.len().min(n - bytes.len());
            bytes.extend_from_slice(&available[..used]);
            self.io.consume(used);
        }
        Ok(bytes)
    }

    /// Reads a dot-terminated block (SMTP DATA, POP3 RETR) with limits.
    /// On the server side it is traced as one `Data` event. Only
    /// CRLF "." CRLF ends the block: a "." between bare LFs is content
    /// (RFC 5321 §4.1.1.4), or a client could smuggle a second message
    /// past a relay that reads line ends differently ("SMTP smuggling").
    pub async fn read_block(&mut self, max_size: usize, max_line: usize, summary: impl FnOnce(u64, u64) -> String) -> Result<Block, WireError> {
        let mut unstuffer = Unstuffer::new(max_size, max_line);
        let mut preview = String::new();
        let mut bytes = 0u64;
        let mut line = Vec::new(); // one buffer for all lines of the block
        let mut previous_crlf = true; // the command before the block ended in CRLF
        loop {
            // Read lines a bit longer than allowed so "too long" can be
            // told apart from "just right".
            let (overlong, crlf) = self.read_line_into(max_line.saturating_add(2), &mut line).await?;
            bytes += line.len() as u64 + 2;
            // Only CRLF "." CRLF ends the block: a "." between bare line
            // feeds would let a client smuggle a second message (the 2023
            // "SMTP smuggling" attacks).
            let end = line == b"." && crlf && previous_crlf;
            previous_crlf = crlf;
            if preview.len() < 2000 && !end {
                preview.push_str(&String::from_utf8_lossy(&line[..line.len().min(200)]));
                preview.push('\n');
            }
            // A lone "." that is not the end marker is kept as a dot.
            let content: &[u8] = if line == b"." && !end { b".." } else { &line };
            if unstuffer.line(content, overlong) {
                break;
            }
        }
        let lines = unstuffer.lines();
        // The preview stays in the trace for the whole run: give back the
        // spare room its String grew with.
        preview.shrink_to_fit();
        if self.ends.side == Side::Server {
            let text = summary(bytes, lines);
            self.emit_from_peer(Kind::Data { direction: Direction::ToServer, bytes, lines, preview }, text);
        }
        Ok(unstuffer.finish())
    }

    /// Traces a line the peer sent (server side only; pass the text with
    /// secrets masked).
    pub fn trace_received(&self, text: &str, summary: impl Into<String>) {
        if self.ends.side == Side::Server {
            self.emit_from_peer(Kind::Line { direction: Direction::ToServer, line: text.to_string() }, summary.into());
        }
    }

    /// Sends `text` (one or more lines; CRLF is added at the end if
    /// missing) as one hop: pass the conductor, trace, write.
    pub async fn send(&mut self, text: &str, summary: impl Into<String>) -> Result<(), WireError> {
        let summary = summary.into();
        self.pass_conductor(&summary).await;
        if self.ends.side == Side::Server {
            let shown = text.trim_end_matches("\r\n").replace("\r\n", "\n");
            let direction = Direction::ToClient;
            self.emit_to_peer(Kind::Line { direction, line: shown }, summary);
        }
        // One write, so one system call and one TCP segment per hop: a
        // command without its CRLF gets it added here, not in a second write.
        if text.ends_with("\r\n") { self.write_out(text.as_bytes()).await } else { self.write_out(format!("{text}\r\n").as_bytes()).await }
    }

    /// Sends a dot-stuffed block (see [`dot::stuff`]) as one hop.
    pub async fn send_block(&mut self, stuffed: &[u8], summary: impl Into<String>) -> Result<(), WireError> {
        let summary = summary.into();
        self.pass_conductor(&summary).await;
        if self.ends.side == Side::Server {
            let preview: String = String::from_utf8_lossy(&stuffed[..stuffed.len().min(2000)]).replace("\r\n", "\n");
            let lines = stuffed.iter().filter(|&&b| b == b'\n').count() as u64;
            self.emit_to_peer(Kind::Data { direction: Direction::ToClient, bytes: stuffed.len() as u64, lines, preview }, summary);
        }
        self.write_out(stuffed).await
    }

    /// Writes and flushes `bytes`, giving up when the peer takes nothing
    /// for the write timeout. The limit applies to each 64 KiB piece, so a
    /// big message to a slow but reading client is fine.
    async fn write_out(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let limit = self.write_timeout;
        let stream = self.io.get_mut();
        for piece in bytes.chunks(64 * 1024) {
            tokio::time::timeout(limit, stream.write_all(piece)).await.map_err(|_| WireError::Stalled(limit))??;
        }
        tokio::time::timeout(limit, stream.flush()).await.map_err(|_| WireError::Stalled(limit))??;
        Ok(())
    }

    /// Waits until the conductor lets this hop move. The hop's description
    /// is for the "next: ..." prompt of step mode; in fast mode (tests,
    /// benchmarks) nothing waits and nobody reads it, so it is not even
    /// written out — this runs for every line, and it adds up.
    async fn pass_conductor(&self, summary: &str) {
        if self.conductor.pace() != Pace::Fast {
            self.conductor.pass(&format!("{} → {}: {summary}", self.ends.local, self.ends.peer)).await;
        }
    }

    /// Traces anything else about this connection (connect, disconnect,
    /// a failure), from this end.
    pub fn emit(&self, kind: Kind, summary: impl Into<String>) {
        self.trace.emit(
            Draft::new(&self.ends.local, &self.ends.peer, self.ends.protocol, kind, summary)
                .message(self.message())
                .session(self.session)
                .tls(self.tls.clone()),
        );
    }

    /// Traces something that comes from the peer's side (e.g. its
    /// connection arriving).
    pub fn emit_from_peer(&self, kind: Kind, summary: String) {
        self.trace.emit(
            Draft::new(&self.ends.peer, &self.ends.local, self.ends.protocol, kind, summary)
                .message(self.message())
                .session(self.session)
                .tls(self.tls.clone()),
        );
    }

    fn emit_to_peer(&self, kind: Kind, summary: String) {
        self.emit(kind, summary)
    }
}

/// "TLSv1_3" → "TLSv1.3".
fn version_name(rustls_name: &str) -> String {
    rustls_name.replace('_', ".")
}

/// Why a handshake failed, in words a student can act on.
pub fn handshake_failure(err: &io::Error) -> String {
    let text = err.to_string();
    let why = if text.contains("UnknownIssuer") || text.contains("UnknownCA") || text.contains("unknown ca") {
        "the certificate is signed by a CA the client does not trust"
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        "the certificate is made out to another name"
    } else if text.contains("Expired") || text.contains("expired") {
        "the certificate has expired"
    } else if text.contains("BadCertificate") || text.contains("CertificateUnknown") || text.contains("bad certificate") {
        "the client refused the certificate"
    } else if text.contains("InvalidContentType")
        || text.contains("corrupt message")
        || text.contains("HandshakeNotComplete")
        || text.contains("InvalidMessage")
    {
        "the other side does not speak TLS here (plaintext on a TLS port?)"
    } else if text.contains("timed out") || text.contains("in time") {
        "no answer in time"
    } else if err.kind() == io::ErrorKind::UnexpectedEof {
        "the other side hung up during the handshake"
    } else {
        return text;
    };
    format!("{why} ({text})")
}

/// Reads up to and including '\n' into `bytes` (emptied first), keeping
/// at most `max` octets; the rest of an overlong line is consumed and
/// dropped so memory stays bounded. Returns (overlong, ended in CRLF).
async fn read_bounded_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, max: usize, bytes: &mut Vec<u8>) -> Result<(bool, bool), WireError> {
    bytes.clear();
    let mut overlong = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // End of stream; a half line without its end is not a line.
            return Err(WireError::Closed);
        }
        let (chunk, found_end) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !overlong {
            if bytes.len() + used > max {
                overlong = true;
                bytes.clear();
            } else {
                bytes.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if found_end {
            break;
        }
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
    }
    // An overlong line lost its bytes; say CRLF so it never looks like a bare LF.
    let crlf = overlong || bytes.ends_with(b"\r");
    if bytes.ends_with(b"\r") {
        bytes.pop();
    }
    Ok((overlong, crlf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire<S: AsyncRead + AsyncWrite + Unpin>(stream: S, side: Side) -> Wire<S> {
        let conductor = Conductor::new(Pace::Fast);
        let trace = Trace::new(conductor.clock().clone());
        let ends = Endpoints { local: "server".into(), peer: "client".into(), protocol: Protocol::Smtp, side };
        Wire::new(stream, ends, trace, conductor, MessageSlot::default(), Duration::from_secs(5))
    }

    #[tokio::test]
    async fn lines_are_bounded_in_any_chunking() {
        let input = b"HELO a\r\nbare lf\nthis line is far too long for the limit\r\nok\r\n.\r\n";
        for chunk in [1, 2, 4, 8, 512] {
            let (mut client, server) = tokio::io::duplex(chunk);
            let writer = tokio::spawn(async move {
                for piece in input.chunks(chunk) {
                    client.write_all(piece).await.unwrap();
                }
                client
            });
            let mut w = wire(server, Side::Server);
            assert_eq!(w.read_line(16).await.unwrap().bytes, b"HELO a");
            assert_eq!(w.read_line(16).await.unwrap().bytes, b"bare lf");
            let long = w.read_line(16).await.unwrap();
            assert!(long.overlong && long.bytes.is_empty());
            assert_eq!(w.read_line(16).await.unwrap().bytes, b"ok");
            assert_eq!(w.read_line(16).await.unwrap().bytes, b".");
            drop(writer.await.unwrap());
            assert!(matches!(w.read_line(16).await, Err(WireError::Closed)));
        }
    }

    #[tokio::test]
    async fn only_crlf_dot_crlf_ends_a_block() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        client.write_all(b"a\n.\nMAIL FROM:<x@y.test>\r\n.\r\n").await.unwrap();
        let mut s = wire(server, Side::Server);
        let block = s.read_block(1000, 1000, |_, _| String::new()).await.unwrap();
        assert_eq!(block, Block::Complete(b"a\r\n.\r\nMAIL FROM:<x@y.test>\r\n".to_vec()));
    }

    #[tokio::test]
    async fn server_traces_both_directions_and_blocks_once() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut c = wire(client, Side::Client);
        let mut s = wire(server, Side::Server);
        c.send("HELO a", "hello").await.unwrap();
        let line = s.read_line(512).await.unwrap();
        s.trace_received(&line.text(), "client says hello");
        s.send("250 hi", "server greets").await.unwrap();
        c.send_block(&dot::stuff(b".dot\r\nbody\r\n"), "the message").await.unwrap();
        let block = s.read_block(1000, 1000, |bytes, lines| format!("{bytes} bytes, {lines} lines")).await.unwrap();
        assert_eq!(block, Block::Complete(b".dot\r\nbody\r\n".to_vec()));
        assert_eq!(c.read_line(512).await.unwrap().bytes, b"250 hi");
        let events = s.trace().since(0);
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[0].kind, Kind::Line { direction: Direction::ToServer, line } if line == "HELO a"));
        assert_eq!((events[0].from.as_str(), events[0].to.as_str()), ("client", "server"));
        assert!(matches!(&events[1].kind, Kind::Line { direction: Direction::ToClient, .. }));
        assert!(matches!(&events[2].kind, Kind::Data { lines: 2, .. }));
        assert!(c.trace().is_empty(), "the client side never traces");
    }

    #[tokio::test]
    async fn a_wire_upgrades_in_place_and_traces_what_the_eavesdropper_sees() {
        use crate::tls::{HostPolicy, ServerTls, TlsPolicy, WorldCa};
        let ca = WorldCa::generate().unwrap();
        let cert = ca.issue(&["mx1.example.org".into()], &[]).unwrap();
        let server_tls = ServerTls { config: cert.server_config().unwrap(), cert, policy: HostPolicy { policy: TlsPolicy::Offered, plaintext_login: false } };
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut c = wire(client, Side::Client);
        let mut s = wire(server, Side::Server);
        // A plaintext exchange first, then both ends upgrade the same connection.
        c.send("a STARTTLS", "asks").await.unwrap();
        s.read_line(512).await.unwrap();
        let config = ca.client_config().unwrap();
        let (upgraded, client_side) = tokio::join!(s.start_tls_server(&server_tls), c.start_tls_client(config, "mx1.example.org"));
        upgraded.unwrap();
        client_side.unwrap();
        c.send("a LOGIN bob secret-password", "logs in").await.unwrap();
        let line = s.read_line(512).await.unwrap();
        assert_eq!(line.bytes, b"a LOGIN bob secret-password");
        s.trace_received("a LOGIN bob ********", "logs in");
        let events = s.trace().since(0);
        let steps: Vec<HandshakeStep> = events.iter().filter_map(|e| if let Kind::TlsHandshake { step, .. } = e.kind { Some(step) } else { None }).collect();
        assert_eq!(steps, [HandshakeStep::ClientHello, HandshakeStep::Certificate, HandshakeStep::KeysAgreed, HandshakeStep::Finished]);
        let login = events.last().unwrap();
        assert!(matches!(&login.kind, Kind::Line { .. }));
        assert_eq!(login.tls.as_ref().map(|t| t.certificate.as_str()), Some("CN=mx1.example.org, O=mailflow world"));
        let records: Vec<&crate::trace::TlsRecord> =
            events.iter().filter_map(|e| if let Kind::TlsRecords { records, .. } = &e.kind { Some(records) } else { None }).flatten().collect();
        assert!(records.iter().any(|r| r.content_type == "handshake"));
        assert!(records.iter().any(|r| r.content_type == "application_data" && r.hex.split(' ').count() == 16));
        assert!(c.trace().is_empty(), "the client side never traces");
        assert!(c.tls().is_some() && s.tls().is_some());
        // A second upgrade is refused, and the connection goes on.
        assert!(matches!(s.start_tls_server(&server_tls).await, Err(WireError::Tls(_))));
        s.send("a OK", "fine").await.unwrap();
        assert_eq!(c.read_line(512).await.unwrap().bytes, b"a OK");
    }

    #[tokio::test]
    async fn read_exact_takes_just_the_literal() {
        for chunk in [1, 3, 512] {
            let (mut client, server) = tokio::io::duplex(chunk);
            let writer = tokio::spawn(async move {
                for piece in b"{5}\r\nhe\r\nl done\r\n".chunks(chunk) {
                    client.write_all(piece).await.unwrap();
                }
                client
            });
            let mut w = wire(server, Side::Server);
            assert_eq!(w.read_line(64).await.unwrap().bytes, b"{5}");
            assert_eq!(w.read_exact(5).await.unwrap(), b"he\r\nl");
            assert_eq!(w.read_line(64).await.unwrap().bytes, b" done");
            drop(writer.await.unwrap());
            assert!(matches!(w.read_exact(1).await, Err(WireError::Closed)));
        }
    }
}
