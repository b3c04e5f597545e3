//! The client side of SMTP: the one dialogue that hands a message to a
//! server, used alike by a person's device submitting mail (port 587, with
//! AUTH) and by a mail server relaying it to the next hop (port 25).
//!
//! [`send`] walks the conversation of RFC 5321 §3: wait for the greeting
//! (at most 5 minutes, §4.5.3.2), `EHLO` (falling back to `HELO` for an
//! old server, §4.1.4), `AUTH PLAIN` when credentials are given (RFC 4954),
//! `MAIL FROM`, one `RCPT TO` per recipient, `DATA`, the message, `QUIT`.
//! When the server offers PIPELINING (RFC 2920) MAIL, the RCPTs and DATA
//! leave together in one packet and the replies are read afterwards, in the
//! same order: one round trip instead of two plus one per recipient.
//!
//! TLS, when the caller gives a [`ClientTls`]: after EHLO, if the server
//! offers STARTTLS (RFC 3207), the client asks for it, checks the server's
//! certificate against the world's CA and the server's name (RFC 6125),
//! and says EHLO again over the encrypted connection (§4.2) before it
//! logs in. Without STARTTLS in the EHLO reply an opportunistic client
//! goes on in plaintext, as mail servers do (RFC 7435); a client that
//! must not (the recipient domain requires TLS) gives up instead, and so
//! does every client whose check of the certificate failed: an unverified
//! server may be anyone. On port 465 (RFC 8314) the handshake comes first.
//!
//! Each send goes over the [`Wire`], so it is paced by the conductor and
//! traced by the server. The client decides nothing about policy: it
//! reports what the server said ([`Handover`], [`Unavailable`]) and lets its
//! caller (the device, or the mail host's relay) judge it. A failed TLS
//! handshake is the one thing the client traces itself (the server only
//! hears that the client hung up): the reason a student can act on.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncWrite};

use super::command::{describe_command, parse};
use super::reply::{MAX_REPLY_LINE, Reply, ReplyError, ReplyParser};
use crate::conductor::Clock;
use crate::tls::{ClientMode, ClientTls};
use crate::trace::{HandshakeStep, Kind};
use crate::wire::{Wire, WireError, dot};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the server's reply made no sense: {0}")]
    BadReply(#[from] ReplyError),
}

/// RFC 5321 §4.5.3.2: a client waits 5 minutes for the server's greeting.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(300);

/// One SMTP client connection: sends lines, reads whole replies.
pub struct SmtpClient<S> {
    pub wire: Wire<S>,
    /// When the connection was opened (simulated time), if the caller
    /// noted it: the greeting wait counts from then.
    opened_at: Option<Duration>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpClient<S> {
    pub fn new(wire: Wire<S>) -> Self {
        SmtpClient { wire, opened_at: None }
    }

    /// Notes when the connection was opened (read the clock *before*
    /// dialling): a slow server moves the simulated clock as soon as it
    /// accepts, which may be before this side gets to look at the clock.
    pub fn opened_at(mut self, at: Duration) -> Self {
        self.opened_at = Some(at);
        self
    }

    /// Reads one whole reply (all lines of a multi-line reply).
    pub async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let mut parser = ReplyParser::new();
        loop {
            let line = self.wire.read_line(MAX_REPLY_LINE).await?;
            if line.overlong {
                return Err(ClientError::BadReply(ReplyError::LineTooLong));
            }
            if let Some(reply) = parser.feed(&line.bytes)? {
                return Ok(reply);
            }
        }
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        let summary = match parse(line.as_bytes()) {
            Ok(command) => describe_command(&command),
            Err(_) => "client sends a line".to_string(),
        };
        self.wire.send(line, summary).await?;
        self.read_reply().await
    }

    /// Sends a continuation line of an AUTH exchange (never shown in full).
    pub async fn auth_response(&mut self, base64: &str) -> Result<Reply, ClientError> {
        self.wire.send(base64, "client answers the login challenge (hidden)").await?;
        self.read_reply().await
    }

    /// After `354`, sends the message itself as one dot-stuffed block and
    /// reads the final reply.
    pub async fn message(&mut self, data: &[u8], summary: impl Into<String>) -> Result<Reply, ClientError> {
        self.wire.send_block(&dot::stuff(data), summary).await?;
        self.read_reply().await
    }
}

/// Who is speaking: the name for EHLO, a login for submission, and how
/// to use TLS (None: never).
pub struct Sender<'a> {
    pub hello: &'a str,
    pub login: Option<Login<'a>>,
    pub tls: Option<ClientTls>,
}

/// A user name and password for AUTH PLAIN.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

/// One message to hand over: the envelope and the bytes.
pub struct Outgoing<'a> {
    /// `None` is the null sender `<>` of a bounce.
    pub from: Option<&'a str>,
    pub recipients: &'a [String],
    pub data: &'a [u8],
    /// The story's sentence for the message crossing the wire.
    pub summary: String,
}

/// Why the conversation ended before any recipient was judged: the
/// message was not handed over, so a relay may try another server.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error(transparent)]
    Connection(#[from] ClientError),
    #[error("did not greet within the 5 minutes a sender waits (RFC 5321 §4.5.3.2), so it hangs up")]
    GreetingTimeout,
    #[error("greeted with {}", .0.one_line())]
    Greeting(Reply),
    #[error("refused our hello: {}", .0.one_line())]
    Hello(Reply),
    #[error("refused the login: {}", .0.one_line())]
    Login(Reply),
    #[error("offers no STARTTLS, and this mail must travel encrypted: no plaintext fallback, the sender keeps it")]
    TlsNotOffered,
    #[error("refused STARTTLS ({}), and this mail must travel encrypted: the sender keeps it", .0.one_line())]
    TlsRefused(Reply),
    #[error("failed the TLS check: {0}")]
    Tls(String),
}

/// What the server said about one message, step by step.
#[derive(Clone, Debug)]
pub struct Handover {
    /// The reply to `MAIL FROM`.
    pub mail: Reply,
    /// Each recipient with the reply to its `RCPT TO`.
    pub rcpt: Vec<(String, Reply)>,
    /// The reply to `DATA`, if it was sent (some recipient was accepted).
    pub data: Option<Reply>,
    /// The reply after the message, if DATA got `354`.
    pub end: Option<Reply>,
}

impl Handover {
    /// The reply that decides each recipient: a refused MAIL or RCPT, a
    /// refused DATA, or the one final reply after the message.
    pub fn verdicts(&self) -> Vec<(&str, &Reply)> {
        self.rcpt
            .iter()
            .map(|(recipient, rcpt)| {
                let decisive = if !self.mail.is_positive() || !rcpt.is_positive() {
                    rcpt_or_mail(&self.mail, rcpt)
                } else {
                    match (&self.data, &self.end) {
                        (_, Some(end)) => end,
                        (Some(data), None) => data,
                        (None, None) => rcpt,
                    }
                };
                (recipient.as_str(), decisive)
            })
            .collect()
    }

    /// Recipients the server accepted the message for.
    pub fn accepted(&self) -> Vec<String> {
        self.verdicts().into_iter().filter(|(_, r)| r.is_positive()).map(|(r, _)| r.to_string()).collect()
    }
}

fn rcpt_or_mail<'a>(mail: &'a Reply, rcpt: &'a Reply) -> &'a Reply {
    if mail.is_positive() { rcpt } else { mail }
}

/// The whole dialogue on a fresh connection (see the module docs). The
/// clock is the world's simulated one: a slow server's greeting wait is
/// simulated time. `QUIT` ends every conversation that got past hello.
pub async fn send<S>(client: &mut SmtpClient<S>, clock: &Clock, sender: &Sender<'_>, message: &Outgoing<'_>) -> Result<Handover, Unavailable>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ehlo = hello(client, clock, sender).await?;
    let handover = transfer(client, &ehlo, message).await?;
    let _ = client.command("QUIT").await;
    Ok(handover)
}

/// Greeting, EHLO (or HELO) and, when given, AUTH. Returns the hello reply
/// (its lines list the server's extensions).
async fn hello<S>(client: &mut SmtpClient<S>, clock: &Clock, sender: &Sender<'_>) -> Result<Reply, Unavailable>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Measured from before the greeting arrives: a slow server moves the
    // clock while we wait for it.
    let started = client.opened_at.unwrap_or_else(|| clock.now());
    if let Some(tls) = sender.tls.as_ref().filter(|t| t.mode == ClientMode::Implicit) {
        // Port 465: TLS before the server says anything (RFC 8314 §3.3).
        handshake(client, tls).await?;
    }
    let greeting = client.read_reply().await?;
    if clock.now().saturating_sub(started) >= GREETING_TIMEOUT {
        return Err(Unavailable::GreetingTimeout);
    }
    if !greeting.is_positive() {
        return Err(Unavailable::Greeting(greeting));
    }
    let mut hello = client.command(&format!("EHLO {}", sender.hello)).await?;
    if !hello.is_positive() {
        // An old server that knows only RFC 821: say HELO instead.
        hello = client.command(&format!("HELO {}", sender.hello)).await?;
    }
    if !hello.is_positive() {
        let _ = client.command("QUIT").await;
        return Err(Unavailable::Hello(hello));
    }
    if let Some(tls) = &sender.tls
        && client.wire.tls().is_none()
    {
        let required = tls.mode == ClientMode::Required;
        if has_extension(&hello, "STARTTLS") {
            let reply = client.command("STARTTLS").await?;
            if reply.code == 220 {
                handshake(client, tls).await?;
                // RFC 3207 §4.2: everything said before TLS is forgotten; hello again.
                hello = client.command(&format!("EHLO {}", sender.hello)).await?;
                if !hello.is_positive() {
                    let _ = client.command("QUIT").await;
                    return Err(Unavailable::Hello(hello));
                }
            } else if required {
                let _ = client.command("QUIT").await;
                return Err(Unavailable::TlsRefused(reply));
            }
        } else if required {
            let _ = client.command("QUIT").await;
            return Err(Unavailable::TlsNotOffered);
        }
    }
    if let Some(login) = sender.login {
        // AUTH PLAIN (RFC 4616): base64 of "\0user\0password" — encoded,
        // not encrypted! Real clients do this only after STARTTLS.
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{}\0{}", login.user, login.password));
        let auth = client.command(&format!("AUTH PLAIN {token}")).await?;
        if !auth.is_positive() {
            let _ = client.command("QUIT").await;
            return Err(Unavailable::Login(auth));
        }
    }
    Ok(hello)
}

/// The client's side of the TLS handshake, checking the server's
/// certificate. A failure is traced from this side, with the reason
/// (unknown CA, wrong name, expired): the connection is then unusable.
async fn handshake<S>(client: &mut SmtpClient<S>, tls: &ClientTls) -> Result<(), Unavailable>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match client.wire.start_tls_client(tls.config.clone(), &tls.server_name).await {
        Ok(()) => Ok(()),
        Err(err) => {
            let reason = match err {
                WireError::Tls(reason) => reason,
                other => other.to_string(),
            };
            let (local, peer) = (client.wire.ends.local.clone(), client.wire.ends.peer.clone());
            client.wire.emit(
                Kind::TlsHandshake { step: HandshakeStep::Failed, detail: reason.clone() },
                format!("TLS: {local} gives up on {peer}: {reason}; nothing more is sent over this connection"),
            );
            Err(Unavailable::Tls(reason))
        }
    }
}

/// MAIL, RCPT, DATA and the message: pipelined when the server allows it.
async fn transfer<S>(client: &mut SmtpClient<S>, ehlo: &Reply, message: &Outgoing<'_>) -> Result<Handover, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mail_line = format!("MAIL FROM:<{}>{}", message.from.unwrap_or(""), mail_parameters(ehlo, message.data));
    let rcpt_lines: Vec<String> = message.recipients.iter().map(|r| format!("RCPT TO:<{r}>")).collect();
    let (mail, rcpt, data) = if has_extension(ehlo, "PIPELINING") {
        // RFC 2920 §3.1: DATA may end a group; the server answers each
        // command in order, and refuses DATA itself if no RCPT succeeded.
        let mut batch = vec![mail_line.as_str()];
        batch.extend(rcpt_lines.iter().map(String::as_str));
        batch.push("DATA");
        let summary = format!("client sends MAIL FROM, {} RCPT TO and DATA in one go (PIPELINING)", rcpt_lines.len());
        client.wire.send(&batch.join("\r\n"), summary).await?;
        let mail = client.read_reply().await?;
        let mut rcpt = Vec::with_capacity(rcpt_lines.len());
        for recipient in message.recipients {
            rcpt.push((recipient.clone(), client.read_reply().await?));
        }
        let data = client.read_reply().await?;
        let any_accepted = mail.is_positive() && rcpt.iter().any(|(_, r)| r.is_positive());
        (mail, rcpt, any_accepted.then_some(data))
    } else {
        let mail = client.command(&mail_line).await?;
        let mut rcpt = Vec::with_capacity(rcpt_lines.len());
        if mail.is_positive() {
            for (recipient, line) in message.recipients.iter().zip(&rcpt_lines) {
                rcpt.push((recipient.clone(), client.command(line).await?));
            }
        } else {
            rcpt.extend(message.recipients.iter().map(|r| (r.clone(), mail.clone())));
        }
        let data = if rcpt.iter().any(|(_, r)| r.is_positive()) { Some(client.command("DATA").await?) } else { None };
        (mail, rcpt, data)
    };
    let end = match &data {
        Some(reply) if reply.code == 354 => Some(client.message(message.data, message.summary.clone()).await?),
        _ => None,
    };
    Ok(Handover { mail, rcpt, data, end })
}

/// Did the server announce this EHLO keyword (e.g. "SIZE", "AUTH")?
pub fn has_extension(ehlo: &Reply, keyword: &str) -> bool {
    ehlo.lines.iter().skip(1).any(|line| line.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case(keyword)))
}

/// The MAIL FROM parameters for `data` that the server's EHLO allows:
/// SIZE (RFC 1870) so a server can refuse a too-big message before it is
/// sent, and BODY=8BITMIME (RFC 6152) when the message has 8-bit bytes.
pub fn mail_parameters(ehlo: &Reply, data: &[u8]) -> String {
    let mut parameters = String::new();
    if has_extension(ehlo, "SIZE") {
        parameters.push_str(&format!(" SIZE={}", data.len()));
    }
    if has_extension(ehlo, "8BITMIME") && data.iter().any(|&b| b >= 0x80) {
        parameters.push_str(" BODY=8BITMIME");
    }
    parameters
}
