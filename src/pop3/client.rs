//! The POP3 client side a scenario's `fetch` step uses: a device
//! downloading its mail (RFC 1939), the last hop of a message's journey.
//!
//! The device connects from its own address, logs in with USER and PASS,
//! asks how much mail waits (STAT) and for every message's unique ID
//! (UIDL), downloads each message it does not have yet (RETR) and, unless
//! the step says `keep`, marks it for deletion (DELE). Only its QUIT makes
//! the server delete them. Like a real mail program with "leave a copy on
//! the server", the device remembers the UIDL ids it has downloaded, so a
//! second fetch downloads only what is new.
//!
//! Before USER and PASS the device protects the password: if CAPA lists
//! STLS (RFC 2595 §4) it asks for it, and on a server that serves only
//! POP3S (port 995, RFC 8314) it speaks TLS from the first byte; either
//! way it checks the server's certificate against the world's CA and the
//! server's name, and a failed check ends the fetch before the password
//! is sent. A server without TLS (the "why TLS" lesson) gets it in
//! plaintext.
//!
//! Each command goes over a client-side [`Wire`]: it passes the conductor
//! (so stepping works) and is traced by the server, once. The client only
//! traces what the server cannot know: failures, and what the device now
//! holds.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::command::{describe_command, parse};
use super::reply::{MAX_RESPONSE_LINE, ReplyError, Status, StatusLine, parse_status};
use crate::mua::Device;
use crate::net::Net;
use crate::scenario::{FetchStep, Service};
use crate::tls::{ClientMode, ClientTls};
use crate::trace::human_bytes;
use crate::trace::{Draft, Kind, Protocol};
use crate::wire::{Block, Wire, WireError};

/// The largest message a device downloads (the scenario allows 50 MiB
/// attachments; base64 makes them a third bigger).
pub const MAX_MESSAGE: usize = 128 * 1024 * 1024;
/// The longest line of message text a device accepts.
pub const MAX_TEXT_LINE: usize = 1024 * 1024;
/// The most lines a UIDL or LIST answer may have.
const MAX_LIST_LINES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    BadReply(#[from] ReplyError),
    #[error("the server sent a list longer than {MAX_LIST_LINES} lines")]
    ListTooLong,
    #[error("message {0} is too large to download or has a line too long")]
    MessageTooLarge(u32),
}

/// One POP3 client connection.
pub struct Pop3Client<S> {
    pub wire: Wire<S>,
    who: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3Client<S> {
    /// `who` is the device's name, for the conductor's step prompts.
    pub fn new(wire: Wire<S>, who: &str) -> Self {
        Pop3Client { wire, who: who.to_string() }
    }

    /// Reads one status line (`+OK …` or `-ERR …`).
    pub async fn read_status(&mut self) -> Result<StatusLine, ClientError> {
        let line = self.wire.read_line(MAX_RESPONSE_LINE).await?;
        if line.overlong {
            return Err(ReplyError::LineTooLong.into());
        }
        Ok(parse_status(&line.bytes)?)
    }

    /// Sends one command line and reads its status line.
    pub async fn command(&mut self, line: &str) -> Result<StatusLine, ClientError> {
        let summary = match parse(line.as_bytes()) {
            Ok(command) => describe_command(&command, &self.who),
            Err(_) => format!("{} sends a line", self.who),
        };
        self.wire.send(line, summary).await?;
        self.read_status().await
    }

    /// Sends a command whose `+OK` answer goes on over several lines (LIST,
    /// UIDL, CAPA); returns the status and the lines, un-stuffed.
    pub async fn command_lines(&mut self, line: &str) -> Result<(StatusLine, Vec<String>), ClientError> {
        let status = self.command(line).await?;
        let mut lines = Vec::new();
        if status.status == Status::Ok {
            loop {
                let line = self.wire.read_line(MAX_RESPONSE_LINE).await?;
                if line.overlong {
                    return Err(ReplyError::LineTooLong.into());
                }
                if line.bytes == b"." {
                    break;
                }
                if lines.len() >= MAX_LIST_LINES {
                    return Err(ClientError::ListTooLong);
                }
                let text = line.text();
                lines.push(text.strip_prefix('.').map(str::to_string).unwrap_or(text));
            }
        }
        Ok((status, lines))
    }

    /// RETR: the message `n`, or the server's refusal.
    pub async fn retrieve(&mut self, n: u32) -> Result<Result<Vec<u8>, StatusLine>, ClientError> {
        let status = self.command(&format!("RETR {n}")).await?;
        if status.status != Status::Ok {
            return Ok(Err(status));
        }
        match self.wire.read_block(MAX_MESSAGE, MAX_TEXT_LINE, |_, _| String::new()).await? {
            Block::Complete(content) => Ok(Ok(content)),
            Block::TooLarge | Block::LineTooLong => Err(ClientError::MessageTooLarge(n)),
        }
    }
}

/// Fetches `device`'s new mail from `server`; returns how many messages
/// were fetched. Every problem is also in the trace.
/// `service` is `Pop3` (STLS when offered) or `Pop3s` (TLS at once).
pub async fn fetch(net: &Net, device: &Device, server: (&str, IpAddr), service: Service, step: &FetchStep) -> Result<usize, String> {
    let fail = |reason: String| {
        net.trace.emit(Draft::new(
            &device.name,
            server.0,
            Protocol::Pop3,
            Kind::Failure { reason: reason.clone() },
            format!("{} could not fetch mail: {reason}", device.name),
        ));
        reason
    };
    let (wire, _registration) = net.dial(&device.name, device.address, server, service, None).await.map_err(|e| e.to_string())?;
    let mut client = Pop3Client::new(wire, &device.name);
    let mode = if service.implicit_tls() { ClientMode::Implicit } else { ClientMode::Opportunistic };
    let tls = net.tls.as_ref().map(|tls| tls.client(server.0, mode));
    match conversation(&mut client, net, device, server.0, step.keep, tls.as_ref()).await {
        Ok(Ok(count)) => Ok(count),
        Ok(Err(refused)) => {
            // QUIT after a refusal is harmless: nothing was marked, or the
            // marks should not stay half-done.
            let _ = client.command("QUIT").await;
            Err(fail(refused))
        }
        Err(err) => Err(fail(err.to_string())),
    }
}

/// The fetch dialogue. The outer error is the connection failing, the
/// inner one the server refusing.
async fn conversation<S>(
    client: &mut Pop3Client<S>,
    net: &Net,
    device: &Device,
    server: &str,
    keep: bool,
    tls: Option<&ClientTls>,
) -> Result<Result<usize, String>, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let refused = |what: &str, status: &StatusLine| {
        let code = status.code.as_ref().map(|c| format!("[{c}] ")).unwrap_or_default();
        Ok(Err(format!("{what}: -ERR {code}{}", status.text)))
    };
    let unverified = |reason: String| Ok(Err(format!("the TLS check failed ({reason}); the password was not sent")));
    if let Some(tls) = tls.filter(|t| t.mode == ClientMode::Implicit)
        && let Err(reason) = client.wire.start_tls_checked(tls).await
    {
        return unverified(reason);
    }
    let greeting = client.read_status().await?;
    if greeting.status != Status::Ok {
        return refused("the server refused the connection", &greeting);
    }
    if let Some(tls) = tls
        && client.wire.tls().is_none()
    {
        // CAPA (RFC 2449) says whether STLS is offered; a server without
        // CAPA answers -ERR and gets no STLS either.
        let (capa, lines) = client.command_lines("CAPA").await?;
        if capa.status == Status::Ok && lines.iter().any(|l| l.split_ascii_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case("STLS"))) {
            let stls = client.command("STLS").await?;
            if stls.status == Status::Ok
                && let Err(reason) = client.wire.start_tls_checked(tls).await
            {
                return unverified(reason);
            }
        }
    }
    let user = client.command(&format!("USER {}", device.user)).await?;
    if user.status != Status::Ok {
        return refused("USER refused", &user);
    }
    let pass = client.command(&format!("PASS {}", device.password)).await?;
    if pass.status != Status::Ok {
        return refused("login refused", &pass);
    }
    let stat = client.command("STAT").await?;
    if stat.status != Status::Ok {
        return refused("STAT refused", &stat);
    }
    // UIDL: "1 1764130000.1" per message. A server without UIDL gets every
    // message downloaded (and, with `keep`, again next time).
    let (uidl, lines) = client.command_lines("UIDL").await?;
    let mut listing: Vec<(u32, Option<String>)> = Vec::new();
    if uidl.status == Status::Ok {
        for line in &lines {
            let mut words = line.split_ascii_whitespace();
            if let (Some(Ok(n)), Some(id)) = (words.next().map(str::parse::<u32>), words.next()) {
                listing.push((n, Some(id.to_string())));
            }
        }
    } else {
        let (list, lines) = client.command_lines("LIST").await?;
        if list.status != Status::Ok {
            return refused("LIST refused", &list);
        }
        listing = lines.iter().filter_map(|l| l.split_ascii_whitespace().next()?.parse().ok()).map(|n| (n, None)).collect();
    }

    let (mut downloaded, mut bytes, mut marked) = (0usize, 0u64, 0usize);
    for (n, id) in &listing {
        let known = id.as_ref().is_some_and(|id| net.devices.knows_uidl(&device.name, server, id));
        if !known {
            match client.retrieve(*n).await? {
                Ok(content) => {
                    bytes += content.len() as u64;
                    downloaded += 1;
                    net.devices.record(&device.name, Arc::new(content));
                    // Remembered whether or not the message stays on the
                    // server: if QUIT never arrives, it is still there, and
                    // the next fetch must not download it twice.
                    if let Some(id) = id {
                        net.devices.remember_uidl(&device.name, server, id);
                    }
                }
                Err(status) => return refused(&format!("RETR {n} refused"), &status),
            }
        }
        if !keep {
            let dele = client.command(&format!("DELE {n}")).await?;
            if dele.status != Status::Ok {
                return refused(&format!("DELE {n} refused"), &dele);
            }
            marked += 1;
        }
    }
    let quit = client.command("QUIT").await?;
    if quit.status != Status::Ok {
        return refused("QUIT failed: the server may not have deleted the messages", &quit);
    }
    let summary = match (downloaded, keep) {
        (0, true) => format!("{} has no new mail: it already has every message on {server} (it remembers their UIDL ids)", device.name),
        (0, false) if marked == 0 => format!("{} finds no mail on {server}", device.name),
        (0, false) => format!("{} downloads nothing new and deletes {marked} message(s) it already had from {server}", device.name),
        (n, true) => format!("{} downloads {n} new message(s) ({}) and leaves copies on {server}", device.name, human_bytes(bytes)),
        (n, false) => format!("{} downloads {n} message(s) ({}); {server} deletes them, the device now holds the only copy", device.name, human_bytes(bytes)),
    };
    net.trace.emit(Draft::new(&device.name, &device.name, Protocol::Pop3, Kind::Note, summary));
    Ok(Ok(downloaded))
}
