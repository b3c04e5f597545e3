//! TLS on the wire: what changes when a connection is encrypted, and what
//! an eavesdropper still sees.
//!
//! A connection starts in TLS (implicit TLS, RFC 8314: IMAPS, POP3S,
//! submissions) or is *upgraded in place* after the client asks for it
//! (STARTTLS, RFC 2595 and RFC 3207): the same TCP connection carries
//! first plaintext lines, then a TLS handshake, then encrypted records.
//! [`Stream`] is the wire's byte stream in either form, so a protocol's
//! server loop keeps its one [`Wire`](super::Wire) across the upgrade.
//!
//! Below TLS sits a [`Tap`]: it watches the bytes as they really cross the
//! link and reports, for the server side, the TLS records an eavesdropper
//! would capture (RFC 8446 §5.1: a 5-byte header — content type, legacy
//! version, length — then the payload). Before the handshake ends some of
//! that is readable (the client's hello names the server it wants); after,
//! only lengths and ciphertext. The capture is bounded: a few records per
//! event and [`CAPTURE_BUDGET`] records per connection.
//!
//! The transcript (what the endpoints read and write) is unchanged by TLS:
//! each line event just carries a `tls` field saying the hop was encrypted.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{client, server};

use super::MessageSlot;
use crate::trace::{Direction, Draft, Kind, Protocol, TlsRecord, Trace};

/// Records described per connection; the rest of a long session is more
/// of the same ciphertext and is only counted.
pub const CAPTURE_BUDGET: usize = 48;
/// Records listed in one event (one read or one write).
const RECORDS_PER_EVENT: usize = 6;
/// Payload bytes shown per record.
const HEX_BYTES: usize = 16;

/// The wire's byte stream: plaintext, or TLS over a [`Tap`].
pub enum Stream<S> {
    Plain(S),
    Server(Box<server::TlsStream<Tap<S>>>),
    Client(Box<client::TlsStream<Tap<S>>>),
    /// Between giving up the plaintext stream and a finished handshake
    /// (or after a failed one): nothing can be read or written.
    Closed,
}

impl<S> Stream<S> {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Server(_) | Stream::Client(_))
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed (a TLS handshake failed)")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Server(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Server(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Server(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Server(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// Where a tap reports: the server end of a connection.
pub struct Recorder {
    pub trace: Trace,
    /// The server's node name and the client's.
    pub server: String,
    pub client: String,
    pub protocol: Protocol,
    pub session: u64,
    pub message: MessageSlot,
}

/// Sees the bytes below TLS, both ways, and reports their records.
pub struct Tap<S> {
    inner: S,
    incoming: Scanner,
    outgoing: Scanner,
    recorder: Option<Recorder>,
    /// Records still to describe on this connection.
    budget: usize,
}

impl<S> Tap<S> {
    /// A tap that reports to `recorder` (server side) or only passes bytes
    /// (client side: the server traces each connection once).
    pub fn new(inner: S, recorder: Option<Recorder>) -> Self {
        Tap { inner, incoming: Scanner::default(), outgoing: Scanner::default(), recorder, budget: CAPTURE_BUDGET }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn observe(&mut self, direction: Direction, bytes: &[u8]) {
        let Some(recorder) = &self.recorder else { return };
        if self.budget == 0 || bytes.is_empty() {
            return;
        }
        let scanner = if direction == Direction::ToServer { &mut self.incoming } else { &mut self.outgoing };
        let mut records = scanner.feed(bytes);
        if records.is_empty() {
            return;
        }
        let found = records.len();
        records.truncate(RECORDS_PER_EVENT.min(self.budget));
        self.budget -= records.len();
        let more = (found - records.len()) as u64;
        let (from, to) = if direction == Direction::ToServer { (&recorder.client, &recorder.server) } else { (&recorder.server, &recorder.client) };
        let bytes_total: usize = records.iter().map(|r| r.length as usize + 5).sum();
        let kinds: Vec<&str> = records.iter().map(|r| r.content_type.as_str()).collect();
        let summary = format!("on the wire, {from} → {to}: {} ({bytes_total} bytes{})", describe_records(&kinds), if more > 0 { ", and more" } else { "" });
        let message = recorder.message.lock().unwrap_or_else(|e| e.into_inner()).clone();
        recorder
            .trace
            .emit(Draft::new(from, to, recorder.protocol, Kind::TlsRecords { direction, records, more }, summary).message(message).session(recorder.session));
        if self.budget == 0 {
            let note = format!("the eavesdropper's capture of this connection stops after {CAPTURE_BUDGET} records: the rest is more of the same ciphertext");
            recorder.trace.emit(Draft::new(&recorder.server, &recorder.client, recorder.protocol, Kind::Note, note).session(recorder.session));
        }
    }
}

fn describe_records(kinds: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < kinds.len() {
        let run = kinds[i..].iter().take_while(|k| **k == kinds[i]).count();
        let word = match kinds[i] {
            "handshake" => "handshake",
            "application_data" => "encrypted data",
            "change_cipher_spec" => "change cipher spec",
            "alert" => "alert",
            _ => "bytes that are not TLS",
        };
        parts.push(if run == 1 { format!("1 {word} record") } else { format!("{run} {word} records") });
        i += run;
    }
    parts.join(", ")
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            this.observe(Direction::ToServer, &buf.filled()[before..]);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            this.observe(Direction::ToClient, &buf[..*n]);
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Cuts one direction's bytes into TLS records (RFC 8446 §5.1), in any
/// chunking, keeping only each record's header and first bytes.
#[derive(Debug, Default)]
pub struct Scanner {
    header: [u8; 5],
    have: usize,
    /// Payload bytes of the current record still to come.
    left: usize,
    /// The current record, until its first bytes are known.
    pending: Option<TlsRecord>,
    shown: usize,
    /// The stream is not TLS; it was reported once.
    broken: bool,
}

impl Scanner {
    /// Feeds bytes; returns the records whose first bytes are now known.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<TlsRecord> {
        let mut out = Vec::new();
        while !bytes.is_empty() && !self.broken {
            if self.left > 0 {
                let take = self.left.min(bytes.len());
                if let Some(record) = &mut self.pending {
                    let wanted = HEX_BYTES.min(record.length as usize);
                    for b in &bytes[..take.min(wanted - self.shown)] {
                        if !record.hex.is_empty() {
                            record.hex.push(' ');
                        }
                        record.hex.push_str(&format!("{b:02x}"));
                        self.shown += 1;
                    }
                    if self.shown >= wanted {
                        // Reported as soon as its first bytes are known; the rest is skipped.
                        out.extend(self.pending.take());
                    }
                }
                self.left -= take;
                bytes = &bytes[take..];
                continue;
            }
            let take = (5 - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < 5 {
                break;
            }
            self.have = 0;
            let content_type = match self.header[0] {
                20 => "change_cipher_spec",
                21 => "alert",
                22 => "handshake",
                23 => "application_data",
                _ => "",
            };
            let length = u16::from_be_bytes([self.header[3], self.header[4]]);
            if content_type.is_empty() || self.header[1] != 3 || length > 16384 + 2048 {
                self.broken = true;
                let hex = self.header.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
                out.push(TlsRecord { content_type: "not_tls".into(), length: 0, hex });
                break;
            }
            let record = TlsRecord { content_type: content_type.into(), length, hex: String::new() };
            if length == 0 {
                out.push(record);
            } else {
                (self.pending, self.left, self.shown) = (Some(record), length as usize, 0);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_in_any_chunking() {
        let mut stream = vec![22, 3, 1, 0, 3, 1, 2, 3];
        stream.extend([23, 3, 3, 0, 20]);
        stream.extend(0u8..20);
        stream.extend([21, 3, 3, 0, 2, 2, 40]);
        for chunk in [1, 2, 3, 5, 7, 64] {
            let mut scanner = Scanner::default();
            let found: Vec<TlsRecord> = stream.chunks(chunk).flat_map(|c| scanner.feed(c)).collect();
            let kinds: Vec<(&str, u16)> = found.iter().map(|r| (r.content_type.as_str(), r.length)).collect();
            assert_eq!(kinds, [("handshake", 3), ("application_data", 20), ("alert", 2)], "chunk {chunk}");
            assert_eq!(found[0].hex, "01 02 03");
            assert_eq!(found[1].hex, "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f");
            assert_eq!(found[2].hex, "02 28");
        }
    }

    #[test]
    fn plaintext_is_reported_once_as_not_tls() {
        let mut scanner = Scanner::default();
        let found = scanner.feed(b"a1 LOGIN bob secret\r\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].content_type, "not_tls");
        assert!(scanner.feed(b"more\r\n").is_empty());
    }
}
