//! The IMAP client side a scenario's `fetch` step uses: a device's mail
//! program reading its user's mailbox.
//!
//! It does what a phone does when you open the mail app: connect, LOGIN,
//! SELECT INBOX, ask which messages are unread (`UID SEARCH UNSEEN`),
//! download those (`UID FETCH ... BODY[]`, which marks them \Seen on the
//! server), then act on them as the step says — flag, move to a folder,
//! delete — and LOGOUT. The messages stay on the server: that is IMAP.
//!
//! With `idle`, the device stays connected and waits (IDLE, RFC 2177) for
//! the server to push news, for that long in *simulated* time. Because a
//! scenario's step counts as "work" until its action returns, and the
//! simulated clock only moves when no work is going on, the waiting part
//! runs as a task of its own holding its own clock [`Activity`] that
//! sleeps: the fetch step is finished, the device stays online, and the
//! clock is free to move on to the next steps (the phone reading the
//! message) while the laptop listens.
//!
//! Like a real mail program it keeps the password off the wire: when the
//! server's capabilities list STARTTLS (RFC 3501 §6.2.1, RFC 2595 §3.1) it
//! asks for it before LOGIN, and on a server that serves only IMAPS (port
//! 993, RFC 8314) it speaks TLS from the first byte. Either way it checks
//! the server's certificate against the world's CA and the server's name;
//! a failed check ends the fetch before the password is sent. A server
//! that offers no TLS at all (the "why TLS" lesson) gets the login in
//! plaintext.
//!
//! The client traces nothing itself — the server traces every line, once
//! — except notes about what the device learns, failures, and a TLS check
//! that failed.

use std::net::IpAddr;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::conductor::Activity;
use crate::mua::Device;
use crate::net::Net;
use crate::scenario::{FetchStep, Service, SimDuration};
use crate::tls::{ClientMode, ClientTls};
use crate::trace::{Draft, Kind, Protocol};
use crate::wire::{Registration, Wire, WireError};

/// Longest response line the client accepts.
const MAX_RESPONSE_LINE: usize = 64 * 1024;
/// Largest literal the client accepts (a message).
const MAX_LITERAL: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the server's response made no sense: {0}")]
    BadResponse(String),
}

/// One response from the server: its line(s) with literal data inline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLine {
    /// The response text; each literal shows as `{n}`.
    pub text: String,
    /// The literals, in order.
    pub literals: Vec<Vec<u8>>,
}

/// The end of a command: the untagged data before it and the tagged status.
#[derive(Clone, Debug)]
pub struct Reply {
    pub untagged: Vec<ServerLine>,
    /// OK, NO or BAD.
    pub status: String,
    /// The rest of the tagged line.
    pub text: String,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }

    /// The numbers of `* SEARCH 1 2 3`.
    pub fn search(&self) -> Vec<u32> {
        self.untagged.iter().filter_map(|l| l.text.strip_prefix("* SEARCH")).flat_map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok())).collect()
    }

    /// "OK [READ-WRITE] SELECT completed".
    pub fn one_line(&self) -> String {
        format!("{} {}", self.status, self.text)
    }
}

/// One IMAP client connection.
pub struct ImapClient<S> {
    pub wire: Wire<S>,
    next_tag: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ImapClient<S> {
    pub fn new(wire: Wire<S>) -> Self {
        ImapClient { wire, next_tag: 1 }
    }

    /// Reads one response: a line, plus literal data where a line ends in `{n}`.
    pub async fn read_response(&mut self) -> Result<ServerLine, ClientError> {
        self.read_response_from(Vec::new()).await
    }

    /// Like [`read_response`](Self::read_response), with the first bytes
    /// already read.
    async fn read_response_from(&mut self, start: Vec<u8>) -> Result<ServerLine, ClientError> {
        let mut text = String::new();
        let mut literals = Vec::new();
        let mut start = Some(start);
        loop {
            let mut bytes = start.take().unwrap_or_default();
            if bytes != b"\n" {
                let line = self.wire.read_line(MAX_RESPONSE_LINE).await?;
                if line.overlong {
                    return Err(ClientError::BadResponse("a response line is too long".into()));
                }
                bytes.extend_from_slice(&line.bytes);
            }
            text.push_str(String::from_utf8_lossy(&bytes).trim_end_matches(['\r', '\n']));
            match super::parser::literal_announcement(text.as_bytes()) {
                Some((size, _)) if size as usize <= MAX_LITERAL => {
                    literals.push(self.wire.read_exact(size as usize).await?);
                    if literals.len() > 1000 {
                        return Err(ClientError::BadResponse("too many literals in one response".into()));
                    }
                }
                Some((size, _)) => return Err(ClientError::BadResponse(format!("a literal of {size} bytes is too big"))),
                None => return Ok(ServerLine { text, literals }),
            }
        }
    }

    /// Waits for the next response without losing anything if the wait is
    /// abandoned (used in a `select!`): only the first byte is awaited
    /// there, the rest is read after.
    pub async fn first_byte(&mut self) -> Result<u8, ClientError> {
        Ok(self.wire.read_exact(1).await?[0])
    }

    /// Sends `tag command` and reads until the tagged answer.
    pub async fn command(&mut self, command: &str, summary: &str) -> Result<Reply, ClientError> {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        self.wire.send(&format!("{tag} {command}"), summary).await?;
        self.read_until_tagged(&tag).await
    }

    async fn read_until_tagged(&mut self, tag: &str) -> Result<Reply, ClientError> {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_response().await?;
            if let Some(rest) = line.text.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
                return Ok(Reply { untagged, status: status.to_ascii_uppercase(), text: text.to_string() });
            }
            if untagged.len() > 100_000 {
                return Err(ClientError::BadResponse("too many responses".into()));
            }
            untagged.push(line);
        }
    }
}

/// Does a capability list ("IMAP4rev1 STARTTLS LOGINDISABLED") name `capability`?
fn has_capability(list: &str, capability: &str) -> bool {
    list.split_ascii_whitespace().any(|c| c.eq_ignore_ascii_case(capability))
}

/// A string as an IMAP quoted string.
pub fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Fetches `device`'s new mail from `server`; returns how many messages
/// were fetched. Every problem is also in the trace.
/// `service` is `Imap` (STARTTLS when offered) or `Imaps` (TLS at once).
pub async fn fetch(net: &Net, device: &Device, server: (&str, IpAddr), service: Service, step: &FetchStep) -> Result<usize, String> {
    let fail = |summary: String| {
        net.trace.emit(Draft::new(
            &device.name,
            server.0,
            Protocol::Imap,
            Kind::Failure { reason: summary.clone() },
            format!("{} could not read its mail: {summary}", device.name),
        ));
        summary
    };
    let (wire, registration) = net.dial(&device.name, device.address, server, service, None).await.map_err(|e| e.to_string())?;
    let mut client = ImapClient::new(wire);
    let mode = if service.implicit_tls() { ClientMode::Implicit } else { ClientMode::Opportunistic };
    let tls = net.tls.as_ref().map(|tls| tls.client(server.0, mode));
    let fetched = match read_new_mail(&mut client, device, step, &net.devices, tls.as_ref()).await {
        Ok(Ok(fetched)) => fetched,
        Ok(Err(refused)) => {
            let _ = client.command("LOGOUT", &format!("{} logs out", device.name)).await;
            return Err(fail(refused));
        }
        Err(err) => return Err(fail(err.to_string())),
    };
    let count = fetched.len();
    let story = match count {
        0 => format!("{} finds no new mail on {}", device.name, server.0),
        n => format!(
            "{} shows {n} new message{}: {} (copies: the originals stay on {})",
            device.name,
            if n == 1 { "" } else { "s" },
            fetched.join(", "),
            server.0
        ),
    };
    net.trace.emit(Draft::new(&device.name, &device.name, Protocol::Imap, Kind::Note, story));
    match step.idle {
        Some(duration) => {
            // The clock activity is taken before the step ends, so time
            // cannot jump past the IDLE before it has begun.
            let activity = net.conductor.clock().activity();
            let (net, name, server) = (net.clone(), device.name.clone(), server.0.to_string());
            tokio::spawn(async move {
                if let Err(err) = idle(&mut client, &net, &name, &server, duration.0, activity, registration).await {
                    net.trace.emit(Draft::new(
                        &name,
                        &server,
                        Protocol::Imap,
                        Kind::Failure { reason: err.to_string() },
                        format!("{name} lost its IDLE connection: {err}"),
                    ));
                }
            });
        }
        None => {
            client.command("LOGOUT", &format!("{} logs out", device.name)).await.map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(count)
}

/// LOGIN, SELECT, SEARCH, FETCH and the step's actions. Returns the
/// subjects of the messages fetched. The outer error is the connection
/// failing, the inner one the server refusing.
async fn read_new_mail<S>(
    client: &mut ImapClient<S>,
    device: &Device,
    step: &FetchStep,
    devices: &crate::net::Devices,
    tls: Option<&ClientTls>,
) -> Result<Result<Vec<String>, String>, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let who = &device.name;
    if let Some(tls) = tls.filter(|t| t.mode == ClientMode::Implicit)
        && let Err(reason) = client.wire.start_tls_checked(tls).await
    {
        return Ok(Err(format!("the TLS check failed ({reason}); the password was not sent")));
    }
    let greeting = client.read_response().await?;
    if !greeting.text.starts_with("* OK") {
        return Ok(Err(format!("the server greeted with {}", greeting.text)));
    }
    if let Some(tls) = tls
        && client.wire.tls().is_none()
    {
        // The greeting usually lists the capabilities (RFC 3501 §7.1);
        // otherwise ask.
        let offered = match greeting.text.split_once("[CAPABILITY ") {
            Some((_, rest)) => has_capability(rest.split(']').next().unwrap_or(""), "STARTTLS"),
            None => {
                let caps = client.command("CAPABILITY", &format!("{who} asks what the server can do")).await?;
                caps.untagged.iter().filter_map(|l| l.text.strip_prefix("* CAPABILITY ")).any(|c| has_capability(c, "STARTTLS"))
            }
        };
        if offered {
            let reply = client.command("STARTTLS", &format!("{who} asks to encrypt the connection before it logs in (STARTTLS)")).await?;
            if reply.is_ok()
                && let Err(reason) = client.wire.start_tls_checked(tls).await
            {
                return Ok(Err(format!("the TLS check failed ({reason}); the password was not sent")));
            }
        }
    }
    let login = client.command(&format!("LOGIN {} {}", quote(&device.user), quote(&device.password)), &format!("{who} logs in")).await?;
    if !login.is_ok() {
        return Ok(Err(format!("login refused: {}", login.one_line())));
    }
    let select = client.command("SELECT INBOX", &format!("{who} opens INBOX")).await?;
    if !select.is_ok() {
        return Ok(Err(format!("SELECT refused: {}", select.one_line())));
    }
    let search = client.command("UID SEARCH UNSEEN", &format!("{who} asks which messages are unread")).await?;
    let uids = search.search();
    if uids.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let fetch = client.command(&format!("UID FETCH {set} BODY[]"), &format!("{who} downloads the unread messages")).await?;
    if !fetch.is_ok() {
        return Ok(Err(format!("FETCH refused: {}", fetch.one_line())));
    }
    // The device now has its own copy (the original stays on the server).
    for line in fetch.untagged.iter().filter(|l| l.text.contains(" FETCH ") && !l.literals.is_empty()) {
        devices.record(who, std::sync::Arc::new(line.literals[0].clone()));
    }
    let subjects: Vec<String> = fetch
        .untagged
        .iter()
        .filter(|l| l.text.contains(" FETCH ") && !l.literals.is_empty())
        .map(|l| crate::message::summarize(&l.literals[0]).subject.map(|s| format!("\"{s}\"")).unwrap_or_else(|| "(no subject)".into()))
        .collect();
    if step.flag {
        let r = client.command(&format!("UID STORE {set} +FLAGS (\\Flagged)"), &format!("{who} flags the messages")).await?;
        if !r.is_ok() {
            return Ok(Err(format!("STORE refused: {}", r.one_line())));
        }
    }
    if let Some(folder) = &step.move_to {
        // CREATE fails if the folder exists; that is fine.
        client.command(&format!("CREATE {}", quote(folder)), &format!("{who} makes sure the folder {folder} exists")).await?;
        let r = client.command(&format!("UID COPY {set} {}", quote(folder)), &format!("{who} copies the messages to {folder}")).await?;
        if !r.is_ok() {
            return Ok(Err(format!("COPY refused: {}", r.one_line())));
        }
    }
    if step.move_to.is_some() || step.delete {
        let r = client.command(&format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"), &format!("{who} marks the messages for deletion")).await?;
        if !r.is_ok() {
            return Ok(Err(format!("STORE refused: {}", r.one_line())));
        }
        let r = client.command("EXPUNGE", &format!("{who} removes them for good")).await?;
        if !r.is_ok() {
            return Ok(Err(format!("EXPUNGE refused: {}", r.one_line())));
        }
    }
    Ok(Ok(subjects))
}

/// Stays in IDLE for `duration` of simulated time, noting every piece of
/// news, then DONE and LOGOUT.
async fn idle<S>(
    client: &mut ImapClient<S>,
    net: &Net,
    who: &str,
    server: &str,
    duration: std::time::Duration,
    activity: Activity,
    registration: Registration,
) -> Result<(), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _registration = registration; // keeps the server's view of who we are
    let tag = format!("a{}", client.next_tag);
    client.next_tag += 1;
    client.wire.send(&format!("{tag} IDLE"), &format!("{who} starts idling")).await?;
    loop {
        let line = client.read_response().await?;
        if line.text.starts_with('+') {
            break;
        }
        if line.text.starts_with(&format!("{tag} ")) {
            return Err(ClientError::BadResponse(format!("IDLE refused: {}", line.text)));
        }
        learn(net, who, &line);
    }
    net.trace.emit(Draft::new(
        who,
        who,
        Protocol::Imap,
        Kind::Note,
        format!("{who} stays connected to {server} and waits for news, for {}", SimDuration(duration)),
    ));
    {
        let wake = activity.sleep(duration);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                _ = &mut wake => break,
                byte = client.first_byte() => {
                    let byte = match byte {
                        Ok(byte) => byte,
                        // Silence for a while in real time (a paused class in
                        // step mode) is normal while idling: keep waiting.
                        Err(ClientError::Wire(WireError::Timeout(_))) => continue,
                        Err(err) => return Err(err),
                    };
                    let line = client.read_response_from(vec![byte]).await?;
                    learn(net, who, &line);
                }
            }
        }
    }
    client.wire.send("DONE", &format!("{who} stops idling")).await?;
    let done = client.read_until_tagged(&tag).await?;
    for line in &done.untagged {
        learn(net, who, line);
    }
    client.command("LOGOUT", &format!("{who} logs out")).await?;
    drop(activity);
    Ok(())
}

/// Notes what an unsolicited response tells the device.
fn learn(net: &Net, who: &str, line: &ServerLine) {
    let words: Vec<&str> = line.text.split_whitespace().collect();
    let news = match words.as_slice() {
        ["*", n, "EXISTS", ..] => format!("{who} learns that new mail arrived ({n} in INBOX now) and shows it in its list"),
        ["*", n, "EXPUNGE", ..] => format!("{who} learns that message {n} was deleted elsewhere, and removes it from its list"),
        ["*", n, "FETCH", ..] if line.text.contains("FLAGS") => {
            let read = if line.text.contains("\\Seen") { "read" } else { "unread" };
            format!("{who} learns that message {n} is now {read} (changed on another device) and shows it {read} too")
        }
        _ => return,
    };
    net.trace.emit(Draft::new(who, who, Protocol::Imap, Kind::Note, news));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conductor::{Conductor, Pace};
    use crate::trace::Trace;
    use crate::wire::{Endpoints, MessageSlot, Side};
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn responses_with_literals_are_read_whole() {
        let (mut server, client) = tokio::io::duplex(64);
        let conductor = Conductor::new(Pace::Fast);
        let trace = Trace::new(conductor.clock().clone());
        let ends = Endpoints { local: "phone".into(), peer: "mx".into(), protocol: Protocol::Imap, side: Side::Client };
        let mut c = ImapClient::new(Wire::new(client, ends, trace, conductor, MessageSlot::default(), std::time::Duration::from_secs(5)));
        let writer = tokio::spawn(async move {
            server.write_all(b"* SEARCH 2 5\r\n* 1 FETCH (UID 2 BODY[] {6}\r\nhi\r\nyo)\r\na1 OK done\r\n").await.unwrap();
            server
        });
        let reply = c.command("UID SEARCH UNSEEN", "x").await.unwrap();
        assert!(reply.is_ok());
        assert_eq!(reply.search(), vec![2, 5]);
        assert_eq!(reply.untagged[1], ServerLine { text: "* 1 FETCH (UID 2 BODY[] {6})".into(), literals: vec![b"hi\r\nyo".to_vec()] });
        drop(writer.await.unwrap());
        assert_eq!(quote("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
