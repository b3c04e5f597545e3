//! The SMTP server's I/O: one task per connection, feeding lines from the
//! [`Wire`] into the pure [`Session`] and sending its replies back.
//!
//! Everything that is policy (who may log in, which recipients are ours,
//! where an accepted message goes) comes from a [`Backend`], the mail
//! host this server belongs to. The order of events for one message is
//! the heart of "nothing accepted is ever lost": the body is read, the
//! backend stores or queues it, and only then does the client get `250`.
//!
//! TLS: on ports 25 and 587 the client may say STARTTLS (RFC 3207) when
//! the host offers it; after the `220` reply the same connection carries a
//! TLS handshake ([`Wire::start_tls_server`]) and the session starts over
//! (§4.2: EHLO again, nothing learnt before counts). On port 465
//! (`submissions`, RFC 8314 §3.3) the handshake comes first, before the
//! greeting, and AUTH is offered at once. What is allowed before TLS
//! (AUTH, MAIL) follows the host's policy; see `session.rs`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::command::{describe_command, parse};
use super::reply::{Reply, describe_reply};
use super::session::{DataOutcome, DataStep, Envelope, Expect, Policy, Role, Session, SessionConfig, Step, TEXT_LINE_MAX};
use crate::net::Net;
use crate::tls::{Offer, ServerTls, TlsPolicy};
use crate::trace::{Kind, MessageRef, Protocol, TlsInfo, human_bytes};
use crate::wire::{Block, Endpoints, Side, Wire, WireError};

/// How long a client may stay silent (real time). RFC 5321 §4.5.3.2 asks
/// for 5 minutes; a classroom server can be less patient.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a message came from, for the `Received:` header.
#[derive(Clone, Debug)]
pub struct HopInfo {
    pub peer_name: String,
    pub peer_ip: IpAddr,
    /// The TLS protecting the connection, if any (for `with ESMTPS`,
    /// RFC 3848, and a `tls` clause in `Received:`).
    pub tls: Option<Arc<TlsInfo>>,
    /// The client is one of the world's own devices (its login delays
    /// pass on the simulated clock), not an outside program.
    pub world: bool,
}

/// The mail host behind an SMTP server (a cheap handle, e.g. an `Arc`).
pub trait Backend: Send + Sync + 'static {
    /// This host's name (its greeting, its `Received:` headers).
    fn name(&self) -> &str;
    fn session_config(&self, role: Role) -> SessionConfig;
    /// The policy of one connection from `peer`.
    fn policy(&self, role: Role, peer: IpAddr) -> Box<dyn Policy + Send + Sync>;
    /// A slow host's delay before its greeting (simulated time).
    fn greeting_delay(&self) -> Option<Duration> {
        None
    }
    /// Takes responsibility for a message: store it or queue it. This must
    /// not return before the message is safe. Async, because a receiver may
    /// ask DNS about the sender first (SPF, DKIM, DMARC: see `auth`).
    fn accept(&self, role: Role, envelope: Envelope, hop: &HopInfo) -> impl std::future::Future<Output = Accepted> + Send;
}

/// What became of a message handed to [`Backend::accept`].
pub struct Accepted {
    /// The queue id for the `250` reply, or the reply refusing it.
    pub result: Result<String, Reply>,
    /// The message's label (from its headers), read once by the backend.
    pub message: Option<MessageRef>,
}

/// Serves one SMTP connection until QUIT, an error, or shutdown.
/// `offer`: STARTTLS (ports 25 and 587), implicit TLS (port 465) or none.
pub async fn serve_connection<B: Backend>(
    backend: B,
    role: Role,
    net: Net,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    offer: Offer,
) {
    let _ = stream.set_nodelay(true);
    let (peer_name, slot) = net.peers.identify(peer);
    let ends = Endpoints { local: backend.name().to_string(), peer: peer_name.clone(), protocol: Protocol::Smtp, side: Side::Server };
    let mut wire = net.server_wire(stream, ends, slot, IDLE_TIMEOUT);
    let port_role = match (role, &offer) {
        (Role::Relay, _) => "port 25, server to server",
        (Role::Submission, Offer::Implicit(_)) => "port 465, submission with TLS from the first byte",
        (Role::Submission, _) => "port 587, submission",
    };
    wire.emit_from_peer(Kind::Connect, format!("{peer_name} connects to {} ({port_role})", backend.name()));
    // RFC 8314 §3.3: on port 465 the TLS handshake comes before anything else.
    if let Offer::Implicit(tls) = &offer
        && wire.start_tls_server(tls).await.is_err()
    {
        wire.emit(Kind::Disconnect, format!("{} hangs up on {peer_name}: no TLS, no submission on port 465", backend.name()));
        return;
    }

    if let Some(delay) = backend.greeting_delay() {
        // A slow server: the wait passes on the simulated clock (see
        // `Clock::advance`). A sender gives up after 5 minutes, so no
        // more than that is played out; the sender then sees it waited
        // the full 5 minutes and hangs up, at 5 minutes on the clock.
        let played = delay.min(super::client::GREETING_TIMEOUT);
        net.conductor.advance(played).await;
        let shown = crate::scenario::SimDuration(played);
        let summary = if played < delay {
            format!("{} is slow: {shown} pass and it has still not greeted (it would need {})", backend.name(), crate::scenario::SimDuration(delay))
        } else {
            format!("{} is slow: it took {shown} to answer", backend.name())
        };
        wire.emit(Kind::Note, summary);
    }

    let mut session = Session::new(tls_config(backend.session_config(role), &offer));
    if wire.tls().is_some() {
        session.tls_started();
    }
    let policy = backend.policy(role, peer.ip());
    let mut hop = HopInfo { peer_name: peer_name.clone(), peer_ip: peer.ip(), tls: wire.tls().cloned(), world: net.peers.lookup(peer).is_some() };
    let greeting = session.greeting();
    if wire.send(&greeting.to_wire(), describe_reply(&greeting)).await.is_err() {
        return;
    }
    loop {
        let outcome = tokio::select! {
            outcome = one_exchange(&mut wire, &mut session, policy.as_ref(), &backend, role, &mut hop, offer.server()) => outcome,
            // The world is shutting down: tell the client, as RFC 5321 §3.8 asks.
            _ = stop.changed() => {
                let reply = session.shutdown();
                let _ = wire.send(&reply.to_wire(), describe_reply(&reply)).await;
                break;
            }
        };
        match outcome {
            Ok(true) => continue,
            Ok(false) => break,
            Err(WireError::Timeout(_)) => {
                let reply = session.timeout();
                let _ = wire.send(&reply.to_wire(), describe_reply(&reply)).await;
                break;
            }
            Err(WireError::Closed) if session.expecting() == Expect::DataBody => {
                wire.emit(Kind::Failure { reason: "connection closed during DATA".into() }, "the client hung up before the final dot: nothing is delivered");
                break;
            }
            Err(_) => break,
        }
    }
    wire.emit(Kind::Disconnect, format!("{peer_name} and {} hang up", backend.name()));
    // Over TLS a close_notify first, so the client can tell "done" from "cut off".
    if wire.tls().is_some() {
        wire.close().await;
    }
}

/// The host's TLS policy, applied to one listener's sessions: STARTTLS
/// offered on a plaintext port of a host with a certificate; logins and
/// mail before TLS as the policy says.
fn tls_config(mut config: SessionConfig, offer: &Offer) -> SessionConfig {
    config.tls_available = matches!(offer, Offer::StartTls(_));
    config.plaintext_login = offer.plaintext_login();
    config.tls_required = offer.server().is_some_and(|tls| tls.policy.policy == TlsPolicy::Required);
    config
}

/// Reads one command (or one message body) and answers it. Ok(false)
/// means the connection should close.
pub(crate) async fn one_exchange<S, B>(
    wire: &mut Wire<S>,
    session: &mut Session,
    policy: &(dyn Policy + Send + Sync),
    backend: &B,
    role: Role,
    hop: &mut HopInfo,
    tls: Option<&Arc<ServerTls>>,
) -> Result<bool, WireError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: Backend,
{
    let expecting = session.expecting();
    if expecting == Expect::DataBody {
        let max_size = session.config().max_message_size;
        let block =
            wire.read_block(max_size, TEXT_LINE_MAX, |bytes, lines| format!("client sends the message itself: {lines} lines, {}", human_bytes(bytes))).await?;
        let outcome = match block {
            Block::Complete(data) => DataOutcome::Complete(data),
            Block::TooLarge => DataOutcome::TooLarge,
            Block::LineTooLong => DataOutcome::LineTooLong,
        };
        // Our own clients name the message they carry when they connect
        // (see `wire::peers`); an outside client (swaks, smtp-source) does
        // not, so the server names the connection after this message until
        // its final reply, then forgets the name again: the next message on
        // a persistent connection must not be shown under this one's.
        let mut labelled_here = false;
        let reply = match session.data_finished(outcome) {
            DataStep::Accept(envelope) => {
                let accepted = backend.accept(role, envelope, hop).await;
                if wire.message().is_none() {
                    wire.set_message(accepted.message);
                    labelled_here = true;
                }
                session.message_stored(accepted.result)
            }
            DataStep::Reply(reply) => reply,
        };
        wire.send(&reply.to_wire(), describe_reply(&reply)).await?;
        if labelled_here {
            wire.set_message(None);
        }
        return Ok(true);
    }

    let line = wire.read_line(expecting.line_limit()).await?;
    let step = if line.overlong {
        wire.trace_received("(a line too long to keep)", format!("client sends a line longer than {} octets", expecting.line_limit()));
        session.line_too_long()
    } else {
        let (shown, summary) = describe_input(expecting, &line.bytes);
        wire.trace_received(&shown, summary);
        session.command(&line.bytes, policy)
    };
    // A failed login is answered late (throttling, see `mta::throttle`).
    crate::login::hold(wire, hop.world, session.take_delay()).await;
    let reply = step.reply();
    wire.send(&reply.to_wire(), describe_reply(reply)).await?;
    match step {
        Step::Reply(_) => Ok(true),
        Step::Close(_) => Ok(false),
        Step::StartTls(_) => {
            // The 220 is out: the next bytes are the client's TLS hello. A
            // failed handshake leaves nothing to talk over (the wire traced why).
            let Some(tls) = tls else { return Ok(false) };
            wire.start_tls_server(tls).await?;
            session.tls_started();
            hop.tls = wire.tls().cloned();
            Ok(true)
        }
    }
}

/// What the trace shows of a client line: AUTH secrets are masked.
fn describe_input(expecting: Expect, line: &[u8]) -> (String, String) {
    if expecting == Expect::AuthResponse {
        return ("******** (base64, hidden)".into(), "client answers the login challenge (hidden)".into());
    }
    let mut shown = String::from_utf8_lossy(&line[..line.len().min(512)]).into_owned();
    let words: Vec<&str> = shown.split_whitespace().collect();
    if words.len() >= 3 && words[0].eq_ignore_ascii_case("AUTH") {
        // "AUTH PLAIN <base64 of user and password>": never show the secret.
        shown = format!("{} {} ********", words[0], words[1]);
    }
    let summary = match parse(line) {
        Ok(command) => describe_command(&command),
        Err(_) => "client sends something the server cannot understand".to_string(),
    };
    (shown, summary)
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, RandomState};

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    use crate::conductor::Pace;
    use crate::scenario::Scenario;
    use crate::trace::{Direction, Kind};
    use crate::world::{World, WorldOptions};

    const WORLD: &str = r#"{
        "title": "One mail exchanger",
        "domains": { "bench.test": { "records": [ { "type": "MX", "preference": 10, "exchange": "mx.bench.test" } ] } },
        "hosts": { "mx.bench.test": { "services": ["smtp"], "domains": ["bench.test"] } },
        "users": { "sink@bench.test": { "password": "unused" } }
    }"#;

    /// Sends `line` and reads the reply's lines up to the last one ("250 ...").
    async fn say(stream: &mut BufReader<TcpStream>, line: &str) -> String {
        stream.get_mut().write_all(line.as_bytes()).await.unwrap();
        let mut reply = String::new();
        loop {
            let mut one = String::new();
            stream.read_line(&mut one).await.unwrap();
            reply.push_str(&one);
            if one.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    #[tokio::test]
    async fn each_message_on_a_persistent_connection_is_traced_under_its_own_name() {
        let scenario = Scenario::parse("test", WORLD).unwrap();
        let octet = 20 + RandomState::new().hash_one(std::process::id()) % 200;
        let options = WorldOptions { subnet: format!("127.{octet}.0.0/16").parse().unwrap(), pace: Pace::Fast, ..WorldOptions::default() };
        let world = World::start(scenario, options).await.unwrap();
        let mx = world.node("mx.bench.test").unwrap().address;

        // An outside client (like swaks or smtp-source): it registers no
        // label, and sends two messages over one connection.
        let mut client = BufReader::new(TcpStream::connect((mx, 10025)).await.unwrap());
        say(&mut client, "").await; // the greeting
        assert!(say(&mut client, "EHLO outside.test\r\n").await.starts_with("250"));
        for id in ["one@outside.test", "two@outside.test"] {
            assert!(say(&mut client, "MAIL FROM:<a@outside.test>\r\n").await.starts_with("250"));
            assert!(say(&mut client, "RCPT TO:<sink@bench.test>\r\n").await.starts_with("250"));
            assert!(say(&mut client, "DATA\r\n").await.starts_with("354"));
            let message = format!("Message-ID: <{id}>\r\nSubject: {id}\r\n\r\nHello.\r\n.\r\n");
            assert!(say(&mut client, &message).await.starts_with("250"));
        }
        say(&mut client, "QUIT\r\n").await;
        world.shutdown().await;

        let line_events: Vec<_> = world
            .trace
            .since(0)
            .into_iter()
            .filter_map(|e| match &e.kind {
                Kind::Line { direction, line } => Some((*direction, line.clone(), e.message.as_ref().map(|m| m.id.clone()))),
                _ => None,
            })
            .collect();
        let stored: Vec<_> = line_events.iter().filter(|(d, l, _)| *d == Direction::ToClient && l.contains("queued as")).map(|(_, _, id)| id.clone()).collect();
        assert_eq!(stored, [Some("one@outside.test".to_string()), Some("two@outside.test".to_string())]);
        // The second MAIL FROM is not shown as part of the first message.
        let mails: Vec<_> = line_events.iter().filter(|(d, l, _)| *d == Direction::ToServer && l.starts_with("MAIL")).map(|(_, _, id)| id.clone()).collect();
        assert_eq!(mails, [None, None]);
        assert_eq!(world.hosts["mx.bench.test"].store.total(), 2);
    }
}
