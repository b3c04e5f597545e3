//! The client side of SMTP, as used by a device submitting mail and by a
//! server relaying it to the next hop. Each method sends one command over
//! the [`Wire`] (so it is paced by the conductor and traced by the server)
//! and reads the reply. The client decides nothing about policy; it
//! returns replies and lets its caller (the MUA or the MTA) judge them.

use tokio::io::{AsyncRead, AsyncWrite};

use super::command::{describe_command, parse};
use super::reply::{MAX_REPLY_LINE, Reply, ReplyError, ReplyParser};
use crate::wire::{Wire, WireError, dot};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the server's reply made no sense: {0}")]
    BadReply(#[from] ReplyError),
}

/// RFC 5321 §4.5.3.2: a client waits 5 minutes for the server's greeting.
pub const GREETING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// One SMTP client connection.
pub struct SmtpClient<S> {
    pub wire: Wire<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpClient<S> {
    pub fn new(wire: Wire<S>) -> Self {
        SmtpClient { wire }
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
