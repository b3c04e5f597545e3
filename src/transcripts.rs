//! Test support: one replay harness for every protocol's transcripts.
//!
//! A transcript (`tests/transcripts/<protocol>/*.txt`) is a protocol's contract written the
//! way RFCs write their examples (RFC 5321 Appendix D, RFC 1939 §10, RFC 3501 §8): `C:`
//! lines are what a client sends, `S:` lines what the server must answer. The same files are
//! replayed into each session state machine here (no sockets, no tokio) and over real
//! sockets by the integration tests.
//!
//! The rules of the format are the same for SMTP, POP3 and IMAP, so they live once, in
//! [`replay`]: blank lines and `#` comments are skipped; `! key value` is a directive;
//! `C: text` sends a line; `S: prefix` takes the next line the server sent to that client
//! and checks that it starts with `prefix` (a bare `S:` is an empty line, exactly); after
//! the last line nothing the server said may be left unchecked; an error names the line.
//! A digit after the letter picks a client (`C2:`, `S2:`) when a protocol has several;
//! `C:` and `C1:` are the first. Any other letter (IMAP's `L:` and `B:` literal lines) goes
//! to the protocol.
//!
//! What differs is small, and each protocol's session tests supply it as an [`Adapter`]:
//! which directives exist, how a client connects (its greeting), how a client line reaches
//! the session (SMTP's DATA body, IMAP's literals), and whether the connection is closed.
//!
//! [`through_wire`] re-feeds input through the servers' own line framing (a real [`Wire`]
//! over an in-memory stream) in pieces of 1, 2, 4 … 512 bytes ([`CHUNK_SIZES`]), so tests
//! can prove that where TCP happens to cut the bytes never changes what the server does.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::conductor::{Conductor, Pace};
use crate::trace::{Protocol, Trace};
use crate::wire::{Endpoints, MessageSlot, Side, Wire};

/// The lines the server sent, per client: a queue the `S:` lines take from, and everything
/// ever sent (so a test can compare whole conversations).
#[derive(Debug, Default)]
pub struct Sent {
    queues: Vec<VecDeque<String>>,
    all: Vec<Vec<String>>,
}

impl Sent {
    /// Queues what the server sent to `client` (0 is the first), cut into lines at CRLF.
    pub fn push(&mut self, client: usize, text: &str) {
        if self.queues.len() <= client {
            self.queues.resize_with(client + 1, VecDeque::new);
            self.all.resize_with(client + 1, Vec::new);
        }
        for line in text.split_terminator("\r\n") {
            self.queues[client].push_back(line.to_string());
            self.all[client].push(line.to_string());
        }
    }

    fn pop(&mut self, client: usize) -> Option<String> {
        self.queues.get_mut(client)?.pop_front()
    }
}

/// What one protocol supplies to [`replay`]. `client` is 0 for `C:`/`C1:`, 1 for `C2:` …
pub trait Adapter {
    /// How many clients a transcript may use.
    const CLIENTS: usize = 1;

    /// A `! key value` directive (`value` may be empty). `Err` says why it is wrong.
    fn directive(&mut self, key: &str, value: &str, sent: &mut Sent) -> Result<(), String>;

    /// `client` connects, at its first `C:` or `S:` line (so directives before it configure
    /// the server): start its session and queue its greeting.
    fn connect(&mut self, client: usize, sent: &mut Sent);

    /// One `C:` line (its text after `C: `), fed the way the server's I/O layer would.
    fn client_line(&mut self, client: usize, text: &str, sent: &mut Sent) -> Result<(), String>;

    /// A line with another letter, e.g. `L:`; by default there are none.
    fn other_line(&mut self, letter: &str, _client: usize, _text: &str, _sent: &mut Sent) -> Result<(), String> {
        Err(format!("unknown line kind {letter:?}"))
    }

    /// Has the server closed this client's connection?
    fn is_closed(&self, client: usize) -> bool;
}

/// Replays one transcript through `adapter`. Returns every line the server sent, per client
/// (index 0 for the first), or the first failure with its line number.
pub fn replay(text: &str, adapter: &mut impl Adapter) -> Result<Vec<Vec<String>>, String> {
    let mut sent = Sent::default();
    let mut connected = vec![false; adapter_clients(adapter)];
    for (n, raw) in text.lines().enumerate() {
        let at = |msg: String| format!("line {}: {msg}", n + 1);
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        if let Some(directive) = raw.strip_prefix("! ") {
            let (key, value) = directive.split_once(' ').unwrap_or((directive, ""));
            adapter.directive(key, value, &mut sent).map_err(at)?;
            continue;
        }
        let (letter, client, text) = split_line(raw).ok_or_else(|| at(format!("unknown line {raw:?}")))?;
        if client >= connected.len() {
            return Err(at(format!("there is no client {}", client + 1)));
        }
        if !std::mem::replace(&mut connected[client], true) {
            adapter.connect(client, &mut sent);
        }
        match letter {
            "S" => match sent.pop(client) {
                // A bare "S:" is an empty line, exactly; otherwise a prefix.
                Some(got) if got.starts_with(text) && (!text.is_empty() || got.is_empty()) => {}
                got => return Err(at(format!("expected {text:?}, server sent {got:?}"))),
            },
            "C" if adapter.is_closed(client) => return Err(at("client spoke after the connection was closed".into())),
            "C" => adapter.client_line(client, text, &mut sent).map_err(at)?,
            other => adapter.other_line(other, client, text, &mut sent).map_err(at)?,
        }
    }
    if !connected.contains(&true) {
        return Err("the transcript has no C: or S: lines".into());
    }
    for (client, queue) in sent.queues.iter().enumerate() {
        if !queue.is_empty() {
            let who = if connected.len() > 1 { format!("client {}: ", client + 1) } else { String::new() };
            return Err(format!("{who}server lines the transcript does not check: {queue:?}"));
        }
    }
    Ok(sent.all)
}

fn adapter_clients<A: Adapter>(_: &A) -> usize {
    A::CLIENTS
}

/// `S2: text` → ("S", 1, "text"). The letter is one capital; one space after the colon is
/// dropped, more are part of the text (a server line may start with a space).
fn split_line(raw: &str) -> Option<(&str, usize, &str)> {
    let (prefix, text) = raw.split_once(':')?;
    let (letter, number) = prefix.split_at_checked(1)?;
    if !letter.bytes().all(|b| b.is_ascii_uppercase()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let client = match number {
        "" => 0,
        n => n.parse::<usize>().ok()?.checked_sub(1)?,
    };
    Some((letter, client, text.strip_prefix(' ').unwrap_or(text)))
}

/// Replays every `.txt` file in `folder` (relative to the crate root) with `replay`, and
/// panics listing each failing file, or if fewer than `at_least` files were found (a moved
/// folder must not pass silently).
pub fn replay_all(folder: &str, at_least: usize, replay: impl Fn(&str) -> Result<(), String>) {
    let failures: Vec<String> =
        transcripts(folder, at_least).into_iter().filter_map(|(path, text)| replay(&text).err().map(|e| format!("{}: {e}", path.display()))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The `.txt` files of `folder` (relative to the crate root) with their text, in name order;
/// panics if fewer than `at_least` are found.
pub fn transcripts(folder: &str, at_least: usize) -> Vec<(std::path::PathBuf, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= at_least, "found only {} transcripts in {}", paths.len(), dir.display());
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, text)
        })
        .collect()
}

// ----- Re-feeding input through the servers' own framing -----

/// Chunk sizes for re-feed tests: a client's bytes arrive in pieces of any size (one byte
/// at a time from a slow terminal, a whole pipelined batch at once), and the result must
/// never depend on where the pieces are cut.
pub const CHUNK_SIZES: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// An in-memory connection for a server-side [`Wire`]: each read returns the next piece of
/// `input`, at most `chunk` bytes, then end of stream; everything written is kept.
pub struct Chunked {
    input: Vec<u8>,
    read: usize,
    chunk: usize,
    written: Vec<u8>,
}

impl tokio::io::AsyncRead for Chunked {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let start = self.read;
        let end = self.input.len().min(start + self.chunk.min(buf.remaining()));
        buf.put_slice(&self.input[start..end]);
        self.read = end;
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Chunked {
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

/// Runs `serve` on the server end of a [`Wire`] whose client sends `input` in pieces of
/// `chunk` bytes and then hangs up. Returns what `serve` returned and every byte the server
/// wrote. The wire is the one the servers use (`Wire::read_line`, `Wire::read_block`), so a
/// test through it proves the real framing, not a copy of it.
pub fn through_wire<T>(input: &[u8], chunk: usize, serve: impl AsyncFnOnce(&mut Wire<Chunked>) -> T) -> (T, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a test runtime");
    runtime.block_on(async {
        let conductor = Conductor::new(Pace::Fast);
        let trace = Trace::new(conductor.clock().clone());
        let ends = Endpoints { local: "server".into(), peer: "client".into(), protocol: Protocol::Smtp, side: Side::Server };
        let stream = Chunked { input: input.to_vec(), read: 0, chunk, written: Vec::new() };
        let mut wire = Wire::new(stream, ends, trace, conductor, MessageSlot::default(), Duration::from_secs(5));
        let result = serve(&mut wire).await;
        // The test never starts TLS, so the stream is still the plain one.
        let written = match wire.into_stream() {
            crate::wire::tls::Stream::Plain(stream) => stream.written,
            _ => Vec::new(),
        };
        (result, written)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server: it greets with "hello", answers each line with "you said: …", and
    /// closes after "bye". Enough to prove the harness itself.
    #[derive(Default)]
    struct Echo {
        closed: Vec<bool>,
        greeting: String,
    }

    impl Adapter for Echo {
        const CLIENTS: usize = 2;
        fn directive(&mut self, key: &str, value: &str, _: &mut Sent) -> Result<(), String> {
            if key != "greeting" {
                return Err(format!("bad directive {key:?}"));
            }
            self.greeting = value.to_string();
            Ok(())
        }
        fn connect(&mut self, client: usize, sent: &mut Sent) {
            self.closed.resize(client.max(self.closed.len()) + 1, false);
            sent.push(client, &format!("{}\r\n", if self.greeting.is_empty() { "hello" } else { &self.greeting }));
        }
        fn client_line(&mut self, client: usize, text: &str, sent: &mut Sent) -> Result<(), String> {
            self.closed[client] = text == "bye";
            sent.push(client, &format!("you said: {text}\r\n\r\n"));
            Ok(())
        }
        fn is_closed(&self, client: usize) -> bool {
            self.closed.get(client).copied().unwrap_or(false)
        }
    }

    #[test]
    fn the_harness_checks_what_it_says() {
        let good = "# comment\n! greeting hi there\nS: hi\nC: a\nS: you said: a\nS:\nC2: b\nS2: hi\nS2: you said\nS2:\n";
        let all = replay(good, &mut Echo::default()).unwrap();
        assert_eq!(all, [vec!["hi there", "you said: a", ""], vec!["hi there", "you said: b", ""]]);
        let cases = [
            ("", "the transcript has no C: or S: lines"),
            ("S: hello\nC: x\nS: you said: y\n", "line 3: expected \"you said: y\", server sent Some(\"you said: x\")"),
            ("S: hello\nC: x\nS: you said: x\n", "server lines the transcript does not check: [\"\"]"),
            ("S: hello\nC: x\nS: you said: x\nS: z\n", "line 4: expected \"z\", server sent Some(\"\")"),
            ("S: hello\nC: bye\nS: you\nS:\nC: more\n", "line 5: client spoke after the connection was closed"),
            ("! colour red\n", "line 1: bad directive \"colour\""),
            ("S: hello\nfrom: me\n", "line 2: unknown line \"from: me\""),
            ("C3: x\n", "line 1: there is no client 3"),
            ("S: hello\nL: x\n", "line 2: unknown line kind \"L\""),
        ];
        for (text, error) in cases {
            let got = replay(text, &mut Echo::default()).expect_err(text);
            assert!(got.ends_with(error), "{text:?}: {got}");
        }
    }
}
