//! POP3 responses: what the server answers, and how a client reads it back.
//!
//! Every POP3 response starts with a status line (RFC 1939 §3): `+OK` when
//! the command worked, `-ERR` when it did not, then free text for people.
//! Some answers go on over several lines (a list, a whole message) and end
//! with a line holding a single "." — lines that start with "." get a
//! second one so they cannot be mistaken for the end (byte-stuffing, the
//! same trick as SMTP DATA). RFC 2449 §8 adds *response codes* in square
//! brackets right after `-ERR`, so a program can tell "wrong password"
//! (`[AUTH]`) from "mailbox busy" (`[IN-USE]`) without reading the text.
//!
//! In a message's journey this is the last hop's server half: the session
//! (`session.rs`) builds a [`Reply`], the I/O layer sends it, and a device
//! reads it with [`parse_status`].

use std::fmt;
use std::sync::Arc;

/// RFC 2449 §4: a response line is at most 512 octets including CRLF.
pub const MAX_RESPONSE_LINE: usize = 512;

/// The two answers POP3 knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err,
}

/// Extended response codes (RFC 2449 §8, RFC 3206).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The maildrop is locked by another session.
    InUse,
    /// The user name or password was wrong.
    Auth,
    /// A temporary problem on the server (try again later).
    SysTemp,
    /// A permanent problem on the server.
    SysPerm,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InUse => "IN-USE",
            Code::Auth => "AUTH",
            Code::SysTemp => "SYS/TEMP",
            Code::SysPerm => "SYS/PERM",
        }
    }
}

/// What follows the status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    None,
    /// A multi-line list (LIST, UIDL, CAPA), without the final ".".
    Lines(Vec<String>),
    /// Message content (RETR, TOP), sent byte-stuffed as one block.
    Message(Arc<Vec<u8>>),
}

/// One complete server response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
    pub body: Body,
}

impl Reply {
    pub fn ok(text: impl Into<String>) -> Self {
        Reply { status: Status::Ok, code: None, text: text.into(), body: Body::None }
    }

    pub fn err(text: impl Into<String>) -> Self {
        Reply { status: Status::Err, code: None, text: text.into(), body: Body::None }
    }

    /// `-ERR [CODE] text`.
    pub fn err_code(code: Code, text: impl Into<String>) -> Self {
        Reply { code: Some(code), ..Reply::err(text) }
    }

    pub fn with_lines(mut self, lines: Vec<String>) -> Self {
        self.body = Body::Lines(lines);
        self
    }

    pub fn with_message(mut self, content: Arc<Vec<u8>>) -> Self {
        self.body = Body::Message(content);
        self
    }

    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The status line without its CRLF, e.g. `-ERR [IN-USE] maildrop already locked`.
    pub fn status_line(&self) -> String {
        let status = match self.status {
            Status::Ok => "+OK",
            Status::Err => "-ERR",
        };
        let mut line = status.to_string();
        if let Some(code) = self.code {
            line.push_str(&format!(" [{}]", code.as_str()));
        }
        if !self.text.is_empty() {
            line.push(' ');
            line.push_str(&self.text);
        }
        line
    }

    /// The status line and, for a list, its lines and the final "." — all
    /// CRLF-terminated. Message content is not included: it goes as a
    /// separate block (see `server.rs`).
    pub fn head_to_wire(&self) -> String {
        let mut out = self.status_line();
        out.push_str("\r\n");
        if let Body::Lines(lines) = &self.body {
            for line in lines {
                if line.starts_with('.') {
                    out.push('.'); // byte-stuffing (RFC 1939 §3)
                }
                out.push_str(line);
                out.push_str("\r\n");
            }
            out.push_str(".\r\n");
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.status_line())
    }
}

/// A status line as a client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    pub status: Status,
    /// The response code inside `[...]`, if any, e.g. "IN-USE".
    pub code: Option<String>,
    pub text: String,
}

/// Why a status line makes no sense.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the server's answer starts with neither +OK nor -ERR: {0:?}")]
    NoStatus(String),
    #[error("the server's answer line is longer than {MAX_RESPONSE_LINE} octets")]
    LineTooLong,
}

/// Reads a status line (without CRLF). Lenient about case, as RFC 1939
/// §3 says status indicators are upper case but clients should not care.
pub fn parse_status(line: &[u8]) -> Result<StatusLine, ReplyError> {
    // Compare bytes, not text: slicing a string inside a multi-byte
    // character would panic, and the server's bytes are not to be trusted.
    let (status, rest) = if line.len() >= 3 && line[..3].eq_ignore_ascii_case(b"+OK") {
        (Status::Ok, &line[3..])
    } else if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"-ERR") {
        (Status::Err, &line[4..])
    } else {
        return Err(ReplyError::NoStatus(String::from_utf8_lossy(line).chars().take(60).collect()));
    };
    let rest = String::from_utf8_lossy(rest);
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('[')
        && let Some((code, after)) = inner.split_once(']')
    {
        return Ok(StatusLine { status, code: Some(code.to_string()), text: after.trim_start().to_string() });
    }
    Ok(StatusLine { status, code: None, text: rest.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_reads_back() {
        let reply = Reply::err_code(Code::InUse, "maildrop already locked");
        assert_eq!(reply.head_to_wire(), "-ERR [IN-USE] maildrop already locked\r\n");
        let parsed = parse_status(reply.status_line().as_bytes()).unwrap();
        assert_eq!(parsed, StatusLine { status: Status::Err, code: Some("IN-USE".into()), text: "maildrop already locked".into() });
        let list = Reply::ok("2 messages").with_lines(vec!["1 120".into(), ".odd".into()]);
        assert_eq!(list.head_to_wire(), "+OK 2 messages\r\n1 120\r\n..odd\r\n.\r\n");
        assert_eq!(parse_status(b"+ok").unwrap().status, Status::Ok);
        assert_eq!(parse_status(b"+OK").unwrap().text, "");
        for bad in [&b""[..], b"OK", b"-ER", b"250 ok", b"\xff\xfe\xfd\xfc", b"-E\xc3\xa9"] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
    }
}
