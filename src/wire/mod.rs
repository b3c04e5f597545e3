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

pub mod dot;
pub mod peers;

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::conductor::{Conductor, Pace};
use crate::trace::{Direction, Draft, Kind, MessageRef, Protocol, Trace};
pub use dot::{Block, Unstuffer};
pub use peers::{MessageSlot, PeerInfo, Peers, Registration};

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
    io: BufReader<S>,
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
        Wire { io: BufReader::new(stream), ends, session, trace, conductor, message, idle_timeout, write_timeout: idle_timeout }
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

    /// Gives back the stream, e.g. to start TLS. Buffered input is dropped
    /// on purpose: bytes sent before a TLS handshake must not be read as if
    /// they came after it (the STARTTLS injection attack, CVE-2011-0411).
    pub fn into_stream(self) -> S {
        self.io.into_inner()
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
        self.trace.emit(Draft::new(&self.ends.local, &self.ends.peer, self.ends.protocol, kind, summary).message(self.message()).session(self.session));
    }

    /// Traces something that comes from the peer's side (e.g. its
    /// connection arriving).
    pub fn emit_from_peer(&self, kind: Kind, summary: String) {
        self.trace.emit(Draft::new(&self.ends.peer, &self.ends.local, self.ends.protocol, kind, summary).message(self.message()).session(self.session));
    }

    fn emit_to_peer(&self, kind: Kind, summary: String) {
        self.emit(kind, summary)
    }
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
