//! The POP3 server's I/O: one task per connection, feeding lines from the
//! [`Wire`] into the pure [`Session`] and sending its answers back.
//!
//! The wire traces every line both ways (this is the server side), so a
//! device of the scenario and an outside client (`curl pop3://…`,
//! Python's `poplib`, Thunderbird) appear in the trace alike. Key moments
//! — the maildrop being locked, a message marked, messages removed for
//! good, a connection dropped before QUIT — get a short lesson in the
//! trace as well.
//!
//! Protection against hostile clients comes from the layers below: the
//! wire keeps at most 255 octets of a line (RFC 2449 §4) and drops the
//! rest, a silent client is logged out after [`IDLE_TIMEOUT`], and the
//! session hangs up after repeated errors or three wrong passwords.
//!
//! TLS: on POP3S (port 995) the handshake comes before the greeting; on
//! port 110 the client may say STLS (RFC 2595 §4) and the connection is
//! upgraded in place after the server's `+OK`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::command::{COMMAND_LINE_MAX, describe_command, parse, shown};
use super::reply::Body;
use super::session::{EXPLAIN_DROPPED, Explain, Maildrops, Session, SessionConfig, Step};
use crate::login::Revocations;
use crate::message::summarize;
use crate::net::Net;
use crate::tls::Offer;
use crate::trace::human_bytes;
use crate::trace::{Draft, Kind, Protocol};
use crate::wire::{Endpoints, MessageSlot, Side, Wire, WireError, dot};

/// RFC 1939 §3: a server may log out an idle client, but not before 10
/// minutes. Real time: a class typing commands by hand needs it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The mail host behind a POP3 server.
pub trait Backend: Maildrops<Lock: Send> + Send + Sync + 'static {
    /// The host's name (its greeting, the trace).
    fn name(&self) -> &str;
    /// Wakes when app passwords are revoked (see `Maildrops::app_password_valid`).
    fn revocations(&self) -> Revocations {
        Revocations::never()
    }
}

/// Serves one POP3 connection until QUIT, an error, or shutdown.
/// `offer`: STLS, implicit TLS (POP3S) or none.
pub async fn serve_connection<B: Backend>(backend: Arc<B>, net: Net, stream: TcpStream, peer: SocketAddr, stop: watch::Receiver<bool>, offer: Offer) {
    let _ = stream.set_nodelay(true);
    let (peer_name, slot) = net.peers.identify(peer);
    let world = net.peers.lookup(peer).is_some();
    serve(backend.as_ref(), &net, stream, Client { name: peer_name, address: peer.ip(), world }, slot, stop, offer).await;
}

/// Who is on the other end of a connection.
pub struct Client {
    /// Its node name, or its address for an outside program.
    pub name: String,
    pub address: IpAddr,
    /// One of the world's own devices (login delays pass on the simulated clock).
    pub world: bool,
}

impl From<&str> for Client {
    /// A device of the world by name, at 127.0.0.1 (for tests and fuzzing).
    fn from(name: &str) -> Self {
        Client { name: name.to_string(), address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), world: true }
    }
}

/// The conversation itself, over any byte stream (tests use an in-memory
/// pipe).
pub async fn serve<S, B>(backend: &B, net: &Net, stream: S, client: Client, slot: MessageSlot, mut stop: watch::Receiver<bool>, offer: Offer)
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: Backend,
{
    let peer_name = client.name.clone();
    let host = backend.name().to_string();
    let ends = Endpoints { local: host.clone(), peer: peer_name.clone(), protocol: Protocol::Pop3, side: Side::Server };
    let mut wire = net.server_wire(stream, ends, slot, IDLE_TIMEOUT);
    let implicit = matches!(offer, Offer::Implicit(_));
    let how = if implicit { "POP3S, TLS from the first byte" } else { "POP3" };
    wire.emit_from_peer(Kind::Connect, format!("{peer_name} connects to {host} to fetch mail ({how})"));
    if let Offer::Implicit(tls) = &offer
        && wire.start_tls_server(tls).await.is_err()
    {
        wire.emit(Kind::Disconnect, format!("{host} hangs up on {peer_name}: no TLS, no POP3S"));
        return;
    }
    let mut config = SessionConfig::new(host.clone());
    config.stls = matches!(offer, Offer::StartTls(_));
    config.implicit_tls = implicit;
    config.plaintext_login = offer.plaintext_login();
    config.client = client.address;
    let mut session: Session<B::Lock> = Session::new(config);
    // Once logged in with an app password: (revocations, user, its name).
    let mut grant: Option<(Revocations, String, String)> = None;
    let greeting = session.greeting();
    if send_step(&mut wire, net, &greeting).await.is_err() {
        return;
    }
    loop {
        let read = tokio::select! {
            read = wire.read_line(COMMAND_LINE_MAX) => read,
            // The app password this device logged in with was revoked.
            () = crate::login::until_revoked(&mut grant, |user, name| backend.app_password_valid(user, name)) => {
                let step = session.revoked();
                let _ = send_step(&mut wire, net, &step).await;
                break;
            }
            // The world is shutting down: say so, delete nothing.
            _ = stop.changed() => {
                let step = session.shutdown();
                let _ = send_step(&mut wire, net, &step).await;
                break;
            }
        };
        let line = match read {
            Ok(line) => line,
            Err(WireError::Timeout(_)) => {
                let step = session.timeout();
                let _ = send_step(&mut wire, net, &step).await;
                break;
            }
            Err(_) => {
                if session.marked() > 0 {
                    let summary = format!("{peer_name} hung up without QUIT: the {} marked message(s) stay on {host}", session.marked());
                    lesson(&wire, net, EXPLAIN_DROPPED, Some(summary));
                }
                break;
            }
        };
        let step = if line.overlong {
            wire.trace_received("(a line too long to keep)", format!("{peer_name} sends a line longer than {COMMAND_LINE_MAX} octets"));
            session.line_too_long()
        } else {
            let parsed = parse(&line.bytes);
            // Label the line with the message it is about, if any.
            let about = parsed.as_ref().ok().and_then(|c| session.target(c)).and_then(|raw| summarize(&raw).message_ref());
            wire.set_message(about);
            let summary = match &parsed {
                Ok(command) => describe_command(command, &peer_name),
                Err(_) => format!("{peer_name} sends something the server cannot understand"),
            };
            wire.trace_received(&shown(&line.bytes), summary);
            session.command(parsed, backend)
        };
        if let Some(delay) = step.delay {
            // A failed login is answered late (throttling): on the
            // simulated clock for the world's devices, in real time for
            // outside programs.
            crate::login::hold(&wire, client.world, delay).await;
        }
        if grant.is_none()
            && let (Some(user), Some(name)) = (session.user(), session.app_password())
        {
            grant = Some((backend.revocations(), user.to_string(), name.to_string()));
        }
        let sent = send_step(&mut wire, net, &step).await;
        wire.set_message(None);
        if sent.is_err() || step.close {
            break;
        }
        if step.start_tls {
            // The +OK is out: the next bytes are the client's TLS hello.
            let Some(tls) = offer.server() else { break };
            if wire.start_tls_server(tls).await.is_err() {
                break;
            }
            session.tls_started();
        }
    }
    // Dropping the session here releases the maildrop lock.
    drop(session);
    wire.emit(Kind::Disconnect, format!("{peer_name} and {host} hang up"));
    linger(wire.into_stream()).await;
}

/// Closes politely: says "no more from me" (FIN), then reads and throws
/// away what the client still sends, for a moment. Closing a socket with
/// unread input makes the kernel send a reset, which can destroy our last
/// answer before the client reads it — e.g. a pipelining client that sent
/// more after its third wrong password.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        // Bounded: a client that keeps sending is cut off anyway.
        while total < 1 << 20 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// How long [`linger`] waits for the client to close (real time).
const LINGER: Duration = Duration::from_secs(2);

/// Sends a step's answer: the status line (and list), then any message
/// content as one dot-stuffed block, then the lesson if there is one.
async fn send_step<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<S>, net: &Net, step: &Step) -> Result<(), WireError> {
    let host = wire.ends.local.clone();
    wire.send(&step.reply.head_to_wire(), format!("{host} {}", step.summary)).await?;
    if let Body::Message(content) = &step.reply.body {
        let stuffed = dot::stuff(content);
        let lines = content.iter().filter(|&&b| b == b'\n').count();
        wire.send_block(&stuffed, format!("{host} sends the message text: {lines} lines, {}", human_bytes(content.len() as u64))).await?;
    }
    if let Some(explain) = step.explain {
        lesson(wire, net, explain, None);
    }
    Ok(())
}

/// A lesson in the trace, in this connection's session.
fn lesson<S: AsyncRead + AsyncWrite + Unpin>(wire: &Wire<S>, net: &Net, explain: Explain, summary: Option<String>) {
    let summary = summary.unwrap_or_else(|| format!("POP3: {}", explain.title));
    net.trace.emit(
        Draft::new(&wire.ends.local, &wire.ends.peer, Protocol::Pop3, Kind::Note, summary)
            .explain(explain.text)
            .message(wire.message())
            .session(wire.session()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conductor::{Conductor, Pace};
    use crate::dns::Resolvers;
    use crate::pop3::session::{Entry, Maildrop};
    use crate::store::{INBOX, MaildropLock, Store};
    use crate::trace::Trace;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One user, bob/builder, with two messages in a real [`Store`].
    struct Host {
        store: Store,
    }

    impl Maildrops for Host {
        type Lock = MaildropLock;
        fn login(&self, user: &str, password: &str, _client: std::net::IpAddr) -> crate::login::Attempt {
            crate::login::Attempt::from_check((user == "bob@example.org" && password == "builder").then(|| user.to_string()))
        }
        fn lock(&self, user: &str) -> Option<MaildropLock> {
            self.store.lock_maildrop(user)
        }
        fn open(&self, user: &str) -> Maildrop {
            let inbox = self.store.snapshot(user, INBOX).unwrap_or_else(|_| panic!("{user} has an inbox"));
            Maildrop { uid_validity: inbox.uid_validity, messages: inbox.messages.into_iter().map(|m| Entry { uid: m.uid, raw: m.raw }).collect() }
        }
        fn remove(&self, user: &str, uids: &[u32]) -> Result<usize, String> {
            self.store.expunge(user, INBOX, Some(uids)).map(|r| r.len()).map_err(|e| e.to_string())
        }
    }
    impl Backend for Host {
        fn name(&self) -> &str {
            "mx1.example.org"
        }
    }

    fn net() -> Net {
        let conductor = Conductor::new(Pace::Fast);
        let trace = Trace::new(conductor.clock().clone());
        let resolvers = Resolvers { dns: "127.0.0.1:53".parse().unwrap(), trace: trace.clone(), conductor: conductor.clone(), timeout: Duration::from_secs(1) };
        Net::new(trace, conductor, resolvers, 10_000, Duration::from_secs(5))
    }

    /// Runs a whole session over an in-memory pipe, the client's bytes
    /// written in pieces of `chunk`; returns everything the server said.
    async fn converse(host: &Host, net: &Net, input: &[u8], chunk: usize) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let (_stop_tx, stop) = watch::channel(false);
        let pieces: Vec<Vec<u8>> = input.chunks(chunk).map(<[u8]>::to_vec).collect();
        let writer = async move {
            for piece in pieces {
                client.write_all(&piece).await.unwrap();
            }
            // The client is done talking (after QUIT, or it just leaves).
            client.shutdown().await.unwrap();
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.unwrap();
            out
        };
        let (out, ()) = tokio::join!(writer, serve(host, net, server, "bob-laptop".into(), MessageSlot::default(), stop, Offer::None));
        out
    }

    #[tokio::test]
    async fn answers_do_not_depend_on_how_tcp_splits_the_input() {
        let net = net();
        let input = b"CAPA\r\nUSER bob@example.org\r\nPASS builder\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n";
        let mut first: Option<Vec<u8>> = None;
        for chunk in [1, 2, 4, 8, 64, 512] {
            let host = Host { store: Store::new(1_700_000_000) };
            host.store.deliver("bob@example.org", b"Subject: one\r\n\r\n.dot\r\nbody\r\n".to_vec(), Duration::ZERO).expect("delivered");
            host.store.deliver("bob@example.org", b"Subject: two\r\n\r\nfirst\r\nsecond\r\n".to_vec(), Duration::ZERO).expect("delivered");
            let out = converse(&host, &net, input, chunk).await;
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("+OK 2 59\r\n"), "{text}");
            assert!(text.contains("\r\n..dot\r\nbody\r\n.\r\n"), "RETR is byte-stuffed: {text}");
            assert!(text.contains("Subject: two\r\n\r\nfirst\r\n.\r\n"), "TOP 2 1: {text}");
            assert!(text.ends_with("signing off\r\n"), "{text}");
            assert_eq!(host.store.inbox("bob@example.org").len(), 2, "RSET unmarked message 1");
            match &first {
                None => first = Some(out),
                Some(expected) => assert_eq!(&out, expected, "pieces of {chunk}"),
            }
        }
    }

    #[tokio::test]
    async fn dele_then_quit_removes_and_the_trace_tells_the_story() {
        let net = net();
        let host = Host { store: Store::new(0) };
        host.store.deliver("bob@example.org", b"Subject: one\r\n\r\nbody\r\n".to_vec(), Duration::ZERO).expect("delivered");
        let out = converse(&host, &net, b"USER bob@example.org\r\nPASS builder\r\nDELE 1\r\nQUIT\r\n", 512).await;
        assert!(String::from_utf8_lossy(&out).contains("(1 message deleted)"));
        assert!(host.store.inbox("bob@example.org").is_empty());
        let events = net.trace.since(0);
        let lines: Vec<String> = events.iter().map(|e| e.summary.clone()).collect();
        assert!(lines.iter().any(|s| s == "bob-laptop sends the password (in clear text: POP3 without TLS hides nothing)"), "{lines:#?}");
        assert!(events.iter().all(|e| !format!("{:?}", e.kind).contains("builder")), "the password never shows");
        assert!(events.iter().any(|e| e.explain.as_deref() == Some(super::super::session::EXPLAIN_REMOVED.text)));
        assert!(matches!(events.last().map(|e| &e.kind), Some(Kind::Disconnect)));
    }

    #[tokio::test]
    async fn a_dropped_connection_deletes_nothing_and_unlocks() {
        let net = net();
        let host = Host { store: Store::new(0) };
        host.store.deliver("bob@example.org", b"Subject: one\r\n\r\nbody\r\n".to_vec(), Duration::ZERO).expect("delivered");
        // No QUIT: the client just goes away after DELE.
        let out = converse(&host, &net, b"USER bob@example.org\r\nPASS builder\r\nDELE 1\r\n", 512).await;
        assert!(String::from_utf8_lossy(&out).ends_with("+OK message 1 deleted\r\n"));
        assert_eq!(host.store.inbox("bob@example.org").len(), 1);
        assert!(host.store.lock_maildrop("bob@example.org").is_some(), "the lock went with the connection");
        assert!(net.trace.since(0).iter().any(|e| e.explain.as_deref() == Some(EXPLAIN_DROPPED.text)));
    }

    #[tokio::test]
    async fn shutdown_says_so_and_deletes_nothing() {
        let net = net();
        let host = Host { store: Store::new(0) };
        host.store.deliver("bob@example.org", b"x\r\n".to_vec(), Duration::ZERO).expect("delivered");
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (stop_tx, stop) = watch::channel(false);
        let task = async {
            client.write_all(b"USER bob@example.org\r\nPASS builder\r\nDELE 1\r\n").await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            // Wait until DELE was answered, then stop the world.
            while !String::from_utf8_lossy(&seen).contains("deleted\r\n") {
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0, "server closed early");
                seen.extend_from_slice(&buf[..n]);
            }
            stop_tx.send_replace(true);
            client.read_to_end(&mut seen).await.unwrap();
            seen
        };
        let (seen, ()) = tokio::join!(task, serve(&host, &net, server, "bob-laptop".into(), MessageSlot::default(), stop, Offer::None));
        assert!(String::from_utf8_lossy(&seen).ends_with("-ERR [SYS/TEMP] server shutting down, nothing was deleted\r\n"));
        assert_eq!(host.store.inbox("bob@example.org").len(), 1);
    }
}
