//! The IMAP server's I/O: one task per connection, moving bytes between
//! the [`Wire`] and the pure [`Session`].
//!
//! For each command the task reads a line; if the line announces a literal
//! (`{310}`) it sends the `+` go-ahead (unless LITERAL+ `{310+}` was used),
//! reads exactly that many bytes, and goes on with the next line, until the
//! [`Assembler`] says the command is complete (see `parser.rs`). Every line
//! is traced as it arrives; a literal is traced as one `Data` event (a
//! password literal is hidden).
//!
//! While a client IDLEs (RFC 2177) the task waits for two things at once:
//! the client's `DONE`, and the store announcing a change to this user's
//! mailboxes ([`Store::watch`](crate::store::Store::watch)). A change makes
//! the session compare its view with the store and push the news — that is
//! the moment the laptop hears that the phone read a message.
//!
//! TLS: on IMAPS (port 993, RFC 8314) the handshake comes before the
//! greeting; on port 143 the client may say STARTTLS (RFC 3501 §6.2.1),
//! and after the server's OK the same connection is upgraded in place
//! ([`Wire::start_tls_server`]). Where the host's policy refuses
//! passwords before TLS the session announces LOGINDISABLED (RFC 2595 §3.2).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::describe::{describe_command, describe_partial, is_login, shown_line};
use super::parser::{Assembler, Framing, MAX_LINE, parse_command};
use super::response::{Lesson, Response, ResponseKind};
use super::session::{Backend, Expect, Outcome, Session};
use crate::login::Revocations;
use crate::net::Net;
use crate::tls::Offer;
use crate::trace::{Direction, Draft, Kind, Protocol};
use crate::wire::{Endpoints, Side, Wire, WireError};

/// How long a client may stay silent (real time). RFC 3501 §5.4: an
/// autologout timer must be at least 30 minutes — a client in IDLE says
/// nothing for a long time, on purpose.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// More untagged responses than this in one answer go out as one hop, so
/// `FETCH 1:* FLAGS` on a big folder does not take minutes in live mode.
const BATCH_OVER: usize = 10;

/// One connection's state besides the session.
struct Connection {
    offer: Offer,
    session: Session,
    assembler: Assembler,
    /// Lessons already explained on this connection.
    explained: HashSet<Lesson>,
    /// Changes to the logged-in user's mailboxes.
    changes: Option<watch::Receiver<u64>>,
    /// The client is one of the world's own devices (login delays pass on
    /// the simulated clock).
    world: bool,
    peer: String,
    host: String,
}

/// Serves one IMAP connection until LOGOUT, an error, or shutdown.
/// `offer`: STARTTLS, implicit TLS (IMAPS) or none.
pub async fn serve_connection<B: Backend + Send + Sync + 'static>(
    backend: B,
    net: Net,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    offer: Offer,
) {
    let _ = stream.set_nodelay(true);
    let (peer_name, slot) = net.peers.identify(peer);
    let host = backend.hostname().to_string();
    let ends = Endpoints { local: host.clone(), peer: peer_name.clone(), protocol: Protocol::Imap, side: Side::Server };
    let mut wire = net.server_wire(stream, ends, slot, IDLE_TIMEOUT);
    let implicit = matches!(offer, Offer::Implicit(_));
    let how = if implicit { "IMAPS, port 993: TLS from the first byte" } else { "IMAP, port 143" };
    wire.emit_from_peer(Kind::Connect, format!("{peer_name} connects to {host} ({how})"));
    if let Offer::Implicit(tls) = &offer
        && wire.start_tls_server(tls).await.is_err()
    {
        wire.emit(Kind::Disconnect, format!("{host} hangs up on {peer_name}: no TLS, no IMAPS"));
        return;
    }
    let session = Session::new(host.clone()).with_tls(matches!(offer, Offer::StartTls(_)), implicit, offer.plaintext_login()).with_client(peer.ip());
    let greeting = session.greeting();
    let mut conn = Connection {
        offer,
        session,
        assembler: Assembler::new(backend.max_message_size()),
        explained: HashSet::new(),
        changes: None,
        world: net.peers.lookup(peer).is_some(),
        peer: peer_name.clone(),
        host: host.clone(),
    };
    if send_all(&mut wire, &mut conn, vec![greeting]).await.is_err() {
        return;
    }
    // Once logged in with an app password: (revocations, user, its name).
    let mut grant: Option<(Revocations, String, String)> = None;
    loop {
        if grant.is_none()
            && let (Some(user), Some(name)) = (conn.session.user(), conn.session.app_password())
        {
            grant = Some((backend.revocations(), user.to_string(), name.to_string()));
        }
        let result = tokio::select! {
            result = exchange(&mut wire, &mut conn, &backend) => result,
            // The app password this session logged in with was revoked:
            // end the session with BYE (RFC 3501 §7.1.5).
            () = crate::login::until_revoked(&mut grant, |user, name| backend.app_password_valid(user, name)) => {
                let bye = conn.session.revoked();
                let _ = send_all(&mut wire, &mut conn, vec![bye]).await;
                break;
            }
            // The world is shutting down: say BYE (RFC 3501 §7.1.5).
            _ = stop.changed() => {
                let bye = conn.session.shutdown();
                let _ = send_all(&mut wire, &mut conn, vec![bye]).await;
                break;
            }
        };
        match result {
            Ok(true) => continue,
            Ok(false) => break,
            Err(WireError::Timeout(_)) => {
                let bye = conn.session.timeout();
                let _ = send_all(&mut wire, &mut conn, vec![bye]).await;
                break;
            }
            Err(_) => break,
        }
    }
    wire.emit(Kind::Disconnect, format!("{peer_name} and {host} hang up"));
    wire.close().await;
}

/// Reads one input (a command, an AUTHENTICATE answer, or what ends an
/// IDLE) and sends the answer. Ok(false): close the connection.
async fn exchange<S, B>(wire: &mut Wire<S>, conn: &mut Connection, backend: &B) -> Result<bool, WireError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: Backend,
{
    let outcome = match conn.session.expecting() {
        Expect::Closed => return Ok(false),
        Expect::AuthResponse => {
            let line = wire.read_line(MAX_LINE + 2).await?;
            wire.trace_received("******** (base64, hidden)", format!("{} answers with its user name and password (base64, hidden)", conn.peer));
            let bytes = if line.overlong { Vec::new() } else { line.bytes };
            conn.session.auth_response(&bytes, backend)
        }
        Expect::IdleDone => idle(wire, conn, backend).await?,
        Expect::Command => read_command(wire, conn, backend).await?,
    };
    if conn.changes.is_none()
        && let Some(user) = conn.session.user()
    {
        conn.changes = Some(backend.store().watch(user));
    }
    // A failed login is answered late (throttling, see `mta::throttle`).
    crate::login::hold(wire, conn.world, conn.session.take_delay()).await;
    let close = outcome.close;
    send_all(wire, conn, outcome.responses).await?;
    if conn.session.take_start_tls() {
        // The OK is out: the next bytes on this connection are the
        // client's TLS hello. A failed handshake ends the connection.
        let Some(tls) = conn.offer.server().cloned() else { return Ok(false) };
        wire.start_tls_server(&tls).await?;
        conn.session.tls_started();
        conn.assembler.reset();
    }
    Ok(!close)
}

/// Reads the lines and literals of one command and runs it.
async fn read_command<S, B>(wire: &mut Wire<S>, conn: &mut Connection, backend: &B) -> Result<Outcome, WireError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: Backend,
{
    let mut first = true;
    let mut secret = false;
    loop {
        let line = wire.read_line(MAX_LINE + 2).await?;
        if line.overlong {
            wire.trace_received("(a line too long to keep)", format!("{} sends a line longer than {} KiB", conn.peer, MAX_LINE / 1024));
            conn.assembler.reset();
            return Ok(conn.session.line_too_long());
        }
        if first {
            secret = is_login(&line.bytes);
        }
        let framing = conn.assembler.line(&line.bytes);
        let summary = match &framing {
            Framing::Complete(bytes) if first => match parse_command(bytes) {
                Ok(command) => describe_command(&conn.peer, &command.body),
                Err(_) => format!("{} sends something the server cannot understand", conn.peer),
            },
            Framing::Complete(_) => format!("{} finishes the command", conn.peer),
            Framing::Literal { size, .. } if first => describe_partial(&conn.peer, &line.bytes, *size),
            Framing::Literal { size, .. } => format!("{} goes on; {size} more bytes follow", conn.peer),
            Framing::TooBig { size, .. } => format!("{} announces {size} bytes of data", conn.peer),
        };
        wire.trace_received(&shown_line(&line.bytes, secret && !first), summary);
        first = false;
        match framing {
            Framing::Complete(bytes) => {
                // Any change from now on wakes an IDLE; this command's own
                // answer includes everything up to here.
                if let Some(changes) = conn.changes.as_mut() {
                    changes.borrow_and_update();
                }
                return Ok(match parse_command(&bytes) {
                    Ok(command) => conn.session.command(command, backend),
                    Err(error) => conn.session.parse_error(error),
                });
            }
            Framing::TooBig { tag, size, synchronizing } => return Ok(conn.session.literal_too_big(tag.as_deref(), size, synchronizing)),
            Framing::Literal { size, synchronizing } => {
                if synchronizing {
                    let go = Response::continuation("Ready for literal data", format!("server: go ahead, send the {size} bytes"));
                    send_all(wire, conn, vec![go]).await?;
                }
                let data = wire.read_exact(size).await?;
                let preview = if secret { "(hidden)".to_string() } else { String::from_utf8_lossy(&data[..data.len().min(2000)]).replace("\r\n", "\n") };
                let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
                let what = if secret { "(a login detail, hidden)" } else { "" };
                wire.emit_from_peer(
                    Kind::Data { direction: Direction::ToServer, bytes: size as u64, lines, preview },
                    format!("{} sends {} of literal data {what}", conn.peer, crate::trace::human_bytes(size as u64)).trim_end().to_string(),
                );
                conn.assembler.literal(&data);
            }
        }
    }
}

/// IDLE: waits for DONE while pushing every change to the client.
async fn idle<S, B>(wire: &mut Wire<S>, conn: &mut Connection, backend: &B) -> Result<Outcome, WireError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: Backend,
{
    // Each change to the user's mailboxes hands us a clock activity at the
    // moment it happens (see `Store::observe`): simulated time then waits
    // until we have told the client, as it would for any other hop.
    let (tx, mut news) = tokio::sync::mpsc::unbounded_channel();
    let clock = wire.trace().clock().clone();
    let _observer = conn.session.user().map(|user| backend.store().observe(user, move || drop(tx.send(clock.activity()))));
    loop {
        // Reading one byte is safe to abandon (nothing is consumed until
        // it completes), so a change arriving meanwhile cannot eat half of
        // the client's DONE.
        let first = tokio::select! {
            // News first: if a change and the client's DONE are both
            // waiting, the change happened before DONE was sent.
            biased;
            Some(work) = news.recv() => {
                if let Some(changes) = conn.changes.as_mut() {
                    changes.borrow_and_update();
                }
                let updates = conn.session.updates(backend);
                send_all(wire, conn, updates).await?;
                // Changes that came meanwhile are in these updates too.
                while news.try_recv().is_ok() {}
                drop(work);
                continue;
            }
            byte = wire.read_exact(1) => byte?,
        };
        let mut line = first;
        if line != b"\n" {
            let rest = wire.read_line(MAX_LINE).await?;
            line.extend_from_slice(&rest.bytes);
        }
        let line = line.trim_ascii().to_vec();
        let summary = if line.eq_ignore_ascii_case(b"DONE") {
            format!("{} stops idling (DONE)", conn.peer)
        } else {
            format!("{} sends something other than DONE", conn.peer)
        };
        wire.trace_received(&String::from_utf8_lossy(&line), summary);
        return Ok(conn.session.idle_line(&line, backend));
    }
}

/// Sends responses, each as one traced hop (many untagged ones as one),
/// and explains each lesson the first time it comes up.
async fn send_all<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<S>, conn: &mut Connection, responses: Vec<Response>) -> Result<(), WireError> {
    let untagged = responses.iter().filter(|r| r.kind == ResponseKind::Untagged).count();
    let mut batch: Vec<Response> = Vec::new();
    for response in responses {
        if untagged > BATCH_OVER && response.kind == ResponseKind::Untagged {
            batch.push(response);
            continue;
        }
        if !batch.is_empty() {
            send_batch(wire, conn, std::mem::take(&mut batch)).await?;
        }
        send_one(wire, conn, response).await?;
    }
    if !batch.is_empty() {
        send_batch(wire, conn, batch).await?;
    }
    Ok(())
}

async fn send_one<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<S>, conn: &mut Connection, response: Response) -> Result<(), WireError> {
    let summary = match response.kind {
        ResponseKind::Update => format!("{} tells {} without being asked: {}", conn.host, conn.peer, response.summary.trim_start_matches("news: ")),
        _ => response.summary.clone(),
    };
    let before = wire.message();
    if response.message_ref.is_some() {
        wire.set_message(response.message_ref.clone());
    }
    match response.as_text() {
        Some(text) => wire.send(text, summary).await?,
        None => wire.send_block(&response.bytes, summary).await?,
    }
    if response.message_ref.is_some() {
        wire.set_message(before);
    }
    if let Some(lesson) = response.lesson {
        explain(wire, conn, lesson);
    }
    Ok(())
}

async fn send_batch<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<S>, conn: &mut Connection, batch: Vec<Response>) -> Result<(), WireError> {
    let first = batch.first().map(|r| r.summary.clone()).unwrap_or_default();
    let last = batch.last().map(|r| r.summary.clone()).unwrap_or_default();
    let summary = format!("server sends {} answers at once: {first} … {last}", batch.len());
    let bytes: Vec<u8> = batch.iter().flat_map(|r| r.bytes.iter().copied()).collect();
    let lessons: Vec<Lesson> = batch.iter().filter_map(|r| r.lesson).collect();
    match std::str::from_utf8(&bytes) {
        Ok(text) if batch.iter().all(|r| r.as_text().is_some()) => wire.send(text, summary).await?,
        _ => wire.send_block(&bytes, summary).await?,
    }
    for lesson in lessons {
        explain(wire, conn, lesson);
    }
    Ok(())
}

/// A note for the class, once per lesson and connection.
fn explain<S: AsyncRead + AsyncWrite + Unpin>(wire: &Wire<S>, conn: &mut Connection, lesson: Lesson) {
    if !conn.explained.insert(lesson) {
        return;
    }
    let title = match lesson {
        Lesson::MailStaysOnServer => "why IMAP keeps the mail on the server".to_string(),
        Lesson::Uids => "what a UID is, and why UIDVALIDITY".to_string(),
        Lesson::SeenFlag => "reading a message marks it \\Seen, on the server".to_string(),
        Lesson::OtherDevice => format!("how {} learns what other devices did", conn.peer),
        Lesson::Idle => "IDLE: the server pushes news".to_string(),
        Lesson::StartTls => "STARTTLS: this connection becomes encrypted".to_string(),
        Lesson::LoginDisabled => "why the server refuses a password before TLS".to_string(),
    };
    wire.trace()
        .emit(Draft::new(&conn.host, &conn.peer, Protocol::Imap, Kind::Note, title).explain(lesson.text()).message(wire.message()).session(wire.session()));
}
