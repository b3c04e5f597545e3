//! SMTP replies: what a server answers to every command, and how a client reads it back.
//!
//! A reply is a three-digit code (RFC 5321 §4.2: 2yz done, 3yz go on, 4yz try again
//! later, 5yz never) followed by text, optionally over several lines (`250-` ... `250 `).
//! Most replies also carry an RFC 3463 enhanced status code such as `5.1.1` (bad
//! mailbox) right after the basic code, as announced by ENHANCEDSTATUSCODES (RFC 2034).
//! In a message's journey this is the server's half of every step: the session
//! (`session.rs`) builds `Reply` values and the I/O layer sends `to_wire()`; a sending
//! MTA uses `ReplyParser` to read the answers of the next hop.

use std::fmt;
use thiserror::Error;

/// An RFC 3463 enhanced status code `class.subject.detail`, e.g. `5.7.1` (refused by policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedCode {
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self { class, subject, detail }
    }

    /// Parses `"5.1.1"`. RFC 3463 §2: the class is 2, 4 or 5; subject and detail 1-3 digits.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        let digits = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        if parts.next().is_some() || class.len() != 1 || !digits(class) || !digits(subject) || !digits(detail) {
            return None;
        }
        let class: u8 = class.parse().ok()?;
        matches!(class, 2 | 4 | 5).then_some(Self::new(class, subject.parse().ok()?, detail.parse().ok()?))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One complete server reply, possibly several lines long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<EnhancedCode>,
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced code: `Reply::new(250, (2, 1, 0), "Sender OK")`.
    pub fn new(code: u16, (class, subject, detail): (u8, u16, u16), text: impl Into<String>) -> Self {
        Self { code, enhanced: Some(EnhancedCode::new(class, subject, detail)), lines: vec![text.into()] }
    }

    /// A one-line reply without an enhanced code. Used for the greeting and HELO (RFC 2034 §3
    /// exempts them) and for 334/354: RFC 3463 has no class 3, and a 334 text is base64 data.
    pub fn bare(code: u16, text: impl Into<String>) -> Self {
        Self { code, enhanced: None, lines: vec![text.into()] }
    }

    pub fn multi(code: u16, enhanced: Option<EnhancedCode>, lines: Vec<String>) -> Self {
        Self { code, enhanced, lines }
    }

    /// The reply as sent: every line ends in CRLF, all but the last use `-` after the code.
    pub fn to_wire(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.len() + 16).sum::<usize>().max(16));
        let count = self.lines.len().max(1);
        for i in 0..count {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            // `write!` into `out` directly: no temporary String per piece.
            // (Writing to a String cannot fail.)
            let _ = write!(out, "{}{}", self.code, if i + 1 == count { ' ' } else { '-' });
            if let Some(e) = self.enhanced {
                let _ = write!(out, "{e} ");
            }
            // Replies echo client data (addresses, verbs): never let a CR or LF inside
            // a line split it into two replies.
            out.extend(text.chars().map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }));
            out.push_str("\r\n");
        }
        out
    }

    /// 2yz or 3yz: the command worked (or may go on).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// 4yz: refused for now; the client should try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    /// 5yz: refused for good; retrying the same command will not help.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The reply on one line, for a story sentence: "550 5.1.1 No such user here".
    pub fn one_line(&self) -> String {
        self.to_wire().trim_end().replace("\r\n", " / ")
    }
}

/// A short sentence for students explaining what a reply means.
pub fn describe_reply(reply: &Reply) -> String {
    let detail = reply.enhanced.map(|e| (e.subject, e.detail));
    let what = match (reply.code, detail) {
        (220, None) => "server greets the client and is ready",
        (220, Some(_)) => "server is ready to switch to TLS",
        (221, _) => "server says goodbye and closes the connection",
        (214, _) => "server lists the commands it knows",
        (235, _) => "server accepts the login",
        (250, Some((1, 0))) => "server accepts the envelope sender",
        (250, Some((1, 5))) => "server accepts the recipient",
        (250, None) => "server says hello (and lists its extensions after EHLO)",
        (250, _) if reply.lines.first().is_some_and(|l| l.starts_with("OK queued")) => "server has stored the message and is now responsible for it",
        (252, _) => "server will neither confirm nor deny that the user exists",
        (334, _) => "server asks for the next piece of login data (base64)",
        (354, _) => "server is ready for the message itself",
        (421, _) => "server is closing the connection",
        (452, Some((5, 3))) => "server takes no more recipients in this message",
        (503, _) => "server refuses: commands sent in the wrong order",
        (530, _) => "server requires the client to log in first",
        (535, _) => "server rejects the login",
        (550, Some((1, 1))) => "server rejects the recipient: no such user",
        (550, Some((7, 1))) if reply.lines.first().is_some_and(|l| l.contains("DMARC")) => {
            "server refuses the message: the From: domain's DMARC policy says reject"
        }
        (550, Some((7, 1))) => "server refuses to relay mail to a domain it does not handle",
        (552, _) => "server refuses: the message is too large",
        (553, _) => "server refuses the sender address",
        (c, _) if c >= 500 => "server refuses permanently",
        (c, _) if c >= 400 => "server refuses for now; the client may try again later",
        _ => "server accepts",
    };
    let code = match reply.enhanced {
        Some(e) => format!("{} {e}", reply.code),
        None => reply.code.to_string(),
    };
    format!("{what} ({code}: {})", reply.lines.first().map(String::as_str).unwrap_or(""))
}

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including CRLF.
pub const MAX_REPLY_LINE: usize = 512;
/// Our own bound: a server sending more lines than this is broken or hostile.
pub const MAX_REPLY_LINES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    #[error("reply line longer than {MAX_REPLY_LINE} octets")]
    LineTooLong,
    #[error("reply line is not UTF-8 text")]
    NotText,
    #[error("reply must start with a code from 200 to 559")]
    BadCode,
    #[error("reply code must be followed by a space, a hyphen or the end of the line")]
    BadSeparator,
    #[error("line with code {got} inside a {expected} reply")]
    InconsistentCode { expected: u16, got: u16 },
    #[error("reply has more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
}

/// Client side: assembles a reply from the lines a server sends (CRLF already removed).
#[derive(Debug, Default)]
pub struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line. `Ok(None)`: more lines follow; `Ok(Some(reply))`: the reply is complete.
    /// After an error the parser starts afresh, so one bad line cannot poison the next reply.
    pub fn feed(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let result = self.feed_line(line);
        if !matches!(result, Ok(None)) {
            *self = Self::default();
        }
        result
    }

    fn feed_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        if line.len() + 2 > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let line = std::str::from_utf8(line).map_err(|_| ReplyError::NotText)?;
        let (digits, rest) = line.split_at_checked(3).ok_or(ReplyError::BadCode)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReplyError::BadCode);
        }
        let code: u16 = digits.parse().map_err(|_| ReplyError::BadCode)?;
        // RFC 5321 §4.2.1: first digit 2-5 (we never expect 1yz), second digit 0-5.
        if !(200..600).contains(&code) || code / 10 % 10 > 5 {
            return Err(ReplyError::BadCode);
        }
        let (last, text) = if rest.is_empty() {
            (true, "") // RFC 5321 §4.2: the text of the last line is optional
        } else if let Some(text) = rest.strip_prefix(' ') {
            (true, text)
        } else if let Some(text) = rest.strip_prefix('-') {
            (false, text)
        } else {
            return Err(ReplyError::BadSeparator);
        };
        if let Some(expected) = self.code
            && expected != code
        {
            return Err(ReplyError::InconsistentCode { expected, got: code });
        }
        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.code = Some(code);
        self.lines.push(text.to_string());
        if !last {
            return Ok(None);
        }
        // The enhanced code counts only if its class agrees with the basic code (RFC 3463 §2).
        let mut lines = std::mem::take(&mut self.lines);
        let enhanced = lines.first().and_then(|l| l.split(' ').next()).and_then(EnhancedCode::parse).filter(|e| u16::from(e.class) == code / 100);
        if let Some(e) = enhanced {
            let prefix = e.to_string();
            for l in &mut lines {
                if let Some(stripped) = l.strip_prefix(&prefix) {
                    *l = stripped.strip_prefix(' ').unwrap_or(stripped).to_string();
                }
            }
        }
        Ok(Some(Reply { code, enhanced, lines }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_and_round_trip() {
        let r = Reply::multi(250, Some(EnhancedCode::new(2, 0, 0)), vec!["one".into(), "two\r\nRSET".into()]);
        assert_eq!(r.to_wire(), "250-2.0.0 one\r\n250 2.0.0 two??RSET\r\n");
        assert_eq!(Reply::bare(334, "").to_wire(), "334 \r\n");
        let mut p = ReplyParser::new();
        assert_eq!(p.feed(b"250-2.0.0 one"), Ok(None));
        let back = p.feed(b"250 2.0.0 two").unwrap().unwrap();
        assert_eq!(back, Reply::multi(250, Some(EnhancedCode::new(2, 0, 0)), vec!["one".into(), "two".into()]));
        assert!(back.is_positive() && !back.is_transient() && !back.is_permanent());
        assert_eq!(p.feed(b"354").unwrap().unwrap(), Reply::bare(354, ""));
        // A 5.x.x code on a 2yz reply is not an enhanced code, just text.
        assert_eq!(p.feed(b"250 5.1.1 odd").unwrap().unwrap().enhanced, None);
    }

    #[test]
    fn parser_rejects_garbage() {
        let cases: &[(&[&[u8]], ReplyError)] = &[
            (&[b"ab"], ReplyError::BadCode),
            (&[b"099 too low"], ReplyError::BadCode),
            (&[b"600 too high"], ReplyError::BadCode),
            (&[b"260 second digit"], ReplyError::BadCode),
            (&[b"+50 sign"], ReplyError::BadCode),
            (&[b"\xe2\x82\xac50 x"], ReplyError::BadCode),
            (&[b"250x"], ReplyError::BadSeparator),
            (&[b"250-a", b"251 b"], ReplyError::InconsistentCode { expected: 250, got: 251 }),
            (&[b"250 \xff"], ReplyError::NotText),
            (&[&[b'x'; 511]], ReplyError::LineTooLong),
        ];
        for (lines, want) in cases {
            let mut p = ReplyParser::new();
            let got = lines.iter().map(|l| p.feed(l)).find(|r| r.is_err());
            assert_eq!(got, Some(Err(want.clone())), "{lines:?}");
        }
        let mut p = ReplyParser::new();
        for _ in 0..MAX_REPLY_LINES {
            assert_eq!(p.feed(b"250-x"), Ok(None));
        }
        assert_eq!(p.feed(b"250-x"), Err(ReplyError::TooManyLines));
        assert!(p.feed(b"250 fresh start").unwrap().is_some());
    }

    #[test]
    fn describes_replies() {
        let d = describe_reply(&Reply::new(550, (5, 7, 1), "Relay access denied"));
        assert_eq!(d, "server refuses to relay mail to a domain it does not handle (550 5.7.1: Relay access denied)");
        let d = describe_reply(&Reply::new(550, (5, 7, 1), "Message rejected: DMARC policy of school.test says reject (SPF fail, DKIM none)"));
        assert!(d.starts_with("server refuses the message: the From: domain's DMARC policy says reject (550 5.7.1"), "{d}");
    }
}
