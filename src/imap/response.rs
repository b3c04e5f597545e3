//! Writing IMAP responses: what the server sends back (RFC 3501 §7).
//!
//! Every response is one of three kinds:
//!
//! - **untagged** (`* 3 EXISTS`, `* 1 FETCH (FLAGS (\Seen))`): data, sent
//!   whenever the server has something to tell, even news the client did
//!   not ask for — that is how a device hears about mail other devices
//!   changed;
//! - **continuation** (`+ Ready`): "go on, send the rest" (a literal, the
//!   next step of a login);
//! - **tagged** (`a1 OK FETCH completed`): the end of command `a1`, with
//!   `OK` (done), `NO` (understood, but refused) or `BAD` (not understood).
//!
//! Strings go out *quoted* when they are short, plain ASCII, or as a
//! *literal* (`{310}` and then 310 raw bytes) when they hold line breaks or
//! 8-bit bytes — a message body is always a literal. This module also
//! writes the two structures a mail program uses to draw its message list
//! without downloading whole messages: ENVELOPE (who, to whom, subject,
//! date) and BODYSTRUCTURE (the tree of MIME parts, see `mime.rs`).
//!
//! Each response carries a one-line summary for the trace, written where
//! the meaning is known (the session), so the class reads "server: 2
//! messages, 1 unread" next to `* 2 EXISTS`.

use std::fmt::Write as _;

use mail_parser::{Address, MessageParser};

use super::mime::{self, Part, PartKind};
use crate::calendar::{civil_from_days, month_name};
use crate::store::Flag;
use crate::trace::MessageRef;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok,
    /// Understood but refused (wrong password, no such mailbox).
    No,
    /// Not understood, or not allowed in this state.
    Bad,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        }
    }
}

/// A lesson the server's trace explains the first time it happens in a
/// session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lesson {
    /// IMAP leaves mail on the server (after login).
    MailStaysOnServer,
    /// What UIDs and UIDVALIDITY are for (after SELECT).
    Uids,
    /// Reading a message sets \Seen on the server (the first BODY[] fetch).
    SeenFlag,
    /// News about another session's change (an unsolicited FETCH/EXISTS/EXPUNGE).
    OtherDevice,
    /// IDLE: the server pushes news without being asked.
    Idle,
    /// STARTTLS: the same connection becomes encrypted (RFC 2595).
    StartTls,
    /// A login refused because the connection is not encrypted.
    LoginDisabled,
}

impl Lesson {
    pub fn text(self) -> &'static str {
        match self {
            Lesson::MailStaysOnServer => {
                "IMAP keeps the mail on the server: a device only looks at it, downloads copies and changes flags. That is why the phone and the laptop see the same mailbox, unlike POP3, which usually downloads and deletes."
            }
            Lesson::Uids => {
                "Message numbers (1, 2, 3...) shift when a message is deleted; UIDs never change and are never reused. A device remembers the UIDs it has seen. UIDVALIDITY is the mailbox's identity: if it ever changes (the mailbox was re-created), every remembered UID is void and the device must download its list again."
            }
            Lesson::SeenFlag => {
                "Fetching BODY[] (not BODY.PEEK[]) marks the message \\Seen. The flag is stored on the server, so every other device of this user will show the message as read."
            }
            Lesson::OtherDevice => {
                "Nobody asked for this line: another session changed the mailbox (new mail, a flag, a deletion), and the server tells this client at its next command — or at once, if it is IDLE. This is how a laptop learns that a message was read on the phone."
            }
            Lesson::Idle => {
                "IDLE (RFC 2177) keeps the connection open so the server can push news the moment it happens, instead of the device asking every few minutes (polling)."
            }
            Lesson::StartTls => {
                "STARTTLS (RFC 2595) turns this very connection into an encrypted one: after the server's OK both sides run a TLS handshake, and every later line — the password, the mail — crosses the wire as ciphertext. Anything the client sent before TLS is forgotten, and it must ask for the capabilities again."
            }
            Lesson::LoginDisabled => {
                "LOGINDISABLED (RFC 3501 §6.2.3): this server refuses passwords on an unencrypted connection, because anyone on the path could read them. The client must say STARTTLS first (or connect to IMAPS, port 993)."
            }
        }
    }
}

/// One response line (or several lines, when it holds literals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The bytes to send, ending in CRLF.
    pub bytes: Vec<u8>,
    pub kind: ResponseKind,
    /// For the trace: what it means, in one line.
    pub summary: String,
    /// A lesson to explain the first time it comes up.
    pub lesson: Option<Lesson>,
    /// The message whose content this response carries (for the trace).
    pub message_ref: Option<MessageRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseKind {
    Untagged,
    /// Unsolicited news about a change made elsewhere (EXISTS, EXPUNGE,
    /// FETCH FLAGS).
    Update,
    Continuation,
    Tagged(Status),
    /// `* BYE`: the server closes the connection.
    Bye,
}

impl Response {
    /// `* <text>`.
    pub fn untagged(text: impl AsRef<str>, summary: impl Into<String>) -> Self {
        Self::untagged_bytes(text.as_ref().as_bytes().to_vec(), summary)
    }

    /// `* <bytes>` (bytes may hold literals).
    pub fn untagged_bytes(data: Vec<u8>, summary: impl Into<String>) -> Self {
        let mut bytes = b"* ".to_vec();
        bytes.extend_from_slice(&data);
        bytes.extend_from_slice(b"\r\n");
        Response { bytes, kind: ResponseKind::Untagged, summary: summary.into(), lesson: None, message_ref: None }
    }

    /// News about a change made by another session.
    pub fn update(text: impl AsRef<str>, summary: impl Into<String>) -> Self {
        Response { kind: ResponseKind::Update, lesson: Some(Lesson::OtherDevice), ..Self::untagged(text, summary) }
    }

    pub fn continuation(text: &str, summary: impl Into<String>) -> Self {
        Response { bytes: format!("+ {text}\r\n").into_bytes(), kind: ResponseKind::Continuation, summary: summary.into(), lesson: None, message_ref: None }
    }

    /// `<tag> OK|NO|BAD [code] text`.
    pub fn tagged(tag: &str, status: Status, code: Option<&str>, text: &str, summary: impl Into<String>) -> Self {
        let code = code.map(|c| format!("[{c}] ")).unwrap_or_default();
        let bytes = format!("{tag} {} {code}{text}\r\n", status.as_str()).into_bytes();
        Response { bytes, kind: ResponseKind::Tagged(status), summary: summary.into(), lesson: None, message_ref: None }
    }

    /// `* BAD text`: an error that belongs to no command the server could read.
    pub fn untagged_bad(text: &str, summary: impl Into<String>) -> Self {
        Response { kind: ResponseKind::Tagged(Status::Bad), ..Self::untagged(format!("BAD {text}"), summary) }
    }

    pub fn bye(text: &str, summary: impl Into<String>) -> Self {
        Response { kind: ResponseKind::Bye, ..Self::untagged(format!("BYE {text}"), summary) }
    }

    pub fn with_lesson(mut self, lesson: Lesson) -> Self {
        self.lesson = Some(lesson);
        self
    }

    /// The response as text, if it is valid UTF-8 and holds no literal.
    pub fn as_text(&self) -> Option<&str> {
        let text = std::str::from_utf8(&self.bytes).ok()?;
        let body = text.strip_suffix("\r\n").unwrap_or(text);
        (!body.contains('\n')).then_some(text)
    }
}

/// Appends `bytes` as a quoted string if that is safe, else as a literal.
pub fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    let quotable = bytes.len() <= 1024 && bytes.iter().all(|&b| (0x20..0x7f).contains(&b));
    if quotable {
        out.push(b'"');
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, bytes);
    }
}

/// Appends `{n}` CRLF and the bytes.
pub fn literal(out: &mut Vec<u8>, bytes: &[u8]) {
    let _ = write!(Sink(out), "{{{}}}\r\n", bytes.len());
    out.extend_from_slice(bytes);
}

/// `NIL` or a string.
pub fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => string(out, v),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A quoted mailbox name for LIST, STATUS and friends.
pub fn mailbox(name: &str) -> String {
    let mut out = Vec::new();
    string(&mut out, name.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// `(\Seen \Flagged)`.
pub fn flag_list<'a>(flags: impl IntoIterator<Item = &'a Flag>) -> String {
    let names: Vec<&str> = flags.into_iter().map(Flag::as_str).collect();
    format!("({})", names.join(" "))
}

/// Unix seconds → `"26-Nov-2026 04:16:00 +0000"` (INTERNALDATE).
pub fn internal_date(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!("\"{day:02}-{}-{year:04} {:02}:{:02}:{:02} +0000\"", month_name(month), secs / 3600, secs / 60 % 60, secs % 60)
}

/// Lets `write!` append to a byte vector.
struct Sink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// ENVELOPE (RFC 3501 §7.4.2): date, subject, from, sender, reply-to, to,
/// cc, bcc, in-reply-to, message-id — from the header of `part`.
pub fn envelope(out: &mut Vec<u8>, header: &[u8]) {
    let raw = |name: &str| mime::header_value(header, name);
    let parsed = MessageParser::new().parse_headers(header);
    out.push(b'(');
    nstring(out, raw("Date").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Subject").as_deref().map(str::as_bytes));
    let from = parsed.as_ref().and_then(|m| m.from());
    let lists = [
        from,
        parsed.as_ref().and_then(|m| m.sender()).or(from),
        parsed.as_ref().and_then(|m| m.reply_to()).or(from),
        parsed.as_ref().and_then(|m| m.to()),
        parsed.as_ref().and_then(|m| m.cc()),
        parsed.as_ref().and_then(|m| m.bcc()),
    ];
    for list in lists {
        out.push(b' ');
        address_list(out, list);
    }
    out.push(b' ');
    nstring(out, raw("In-Reply-To").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Message-ID").as_deref().map(str::as_bytes));
    out.push(b')');
}

/// `((name adl mailbox host) ...)` or NIL; a group is written as
/// `(NIL NIL "group" NIL) ... (NIL NIL NIL NIL)` (RFC 3501 §7.4.2).
fn address_list(out: &mut Vec<u8>, list: Option<&Address>) {
    let one = |out: &mut Vec<u8>, name: Option<&str>, address: Option<&str>| {
        let (local, host) = match address {
            Some(a) => match a.rsplit_once('@') {
                Some((l, h)) => (Some(l), Some(h)),
                None => (Some(a), None),
            },
            None => (None, None),
        };
        out.push(b'(');
        nstring(out, name.map(str::as_bytes));
        out.extend_from_slice(b" NIL ");
        nstring(out, local.map(str::as_bytes));
        out.push(b' ');
        nstring(out, host.map(str::as_bytes));
        out.push(b')');
    };
    let start = out.len();
    out.push(b'(');
    match list {
        Some(Address::List(addrs)) => {
            for a in addrs {
                one(out, a.name.as_deref(), a.address.as_deref());
            }
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                if let Some(name) = &g.name {
                    out.extend_from_slice(b"(NIL NIL ");
                    string(out, name.as_bytes());
                    out.extend_from_slice(b" NIL)");
                }
                for a in &g.addresses {
                    one(out, a.name.as_deref(), a.address.as_deref());
                }
                if g.name.is_some() {
                    out.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
        None => {}
    }
    if out.len() == start + 1 {
        out.truncate(start);
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b')');
    }
}

/// BODY (`extended` false) or BODYSTRUCTURE (`extended` true) of a part,
/// RFC 3501 §7.4.2.
pub fn body_structure(out: &mut Vec<u8>, raw: &[u8], part: &Part, extended: bool) {
    let header = &raw[part.header.clone()];
    out.push(b'(');
    match &part.kind {
        PartKind::Multipart(children) if !children.is_empty() => {
            for child in children {
                body_structure(out, raw, child, extended);
            }
            out.push(b' ');
            string(out, part.mime_type.1.to_ascii_uppercase().as_bytes());
            if extended {
                out.push(b' ');
                params(out, &part.params);
                extension(out, header);
            }
        }
        _ => {
            string(out, part.mime_type.0.to_ascii_uppercase().as_bytes());
            out.push(b' ');
            string(out, part.mime_type.1.to_ascii_uppercase().as_bytes());
            out.push(b' ');
            let mut p = part.params.clone();
            if part.mime_type.0 == "text" && !p.iter().any(|(k, _)| k == "charset") {
                p.push(("charset".into(), "us-ascii".into())); // RFC 2045 §5.2 default
            }
            params(out, &p);
            for field in ["Content-ID", "Content-Description"] {
                out.push(b' ');
                nstring(out, mime::header_value(header, field).as_deref().map(str::as_bytes));
            }
            out.push(b' ');
            let encoding = mime::header_value(header, "Content-Transfer-Encoding").map(|e| e.to_ascii_uppercase()).unwrap_or_else(|| "7BIT".into());
            string(out, encoding.as_bytes());
            let body = &raw[part.body.clone()];
            let _ = write!(Sink(out), " {}", body.len());
            if let PartKind::Message(inner) = &part.kind {
                out.push(b' ');
                envelope(out, &raw[inner.header.clone()]);
                out.push(b' ');
                body_structure(out, raw, inner, extended);
                let _ = write!(Sink(out), " {}", mime::line_count(body));
            } else if part.mime_type.0 == "text" {
                let _ = write!(Sink(out), " {}", mime::line_count(body));
            }
            if extended {
                out.extend_from_slice(b" NIL"); // body MD5: not computed
                extension(out, header);
            }
        }
    }
    out.push(b')');
}

/// `("name" "value" ...)` or NIL.
fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k.to_ascii_uppercase().as_bytes());
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}

/// Disposition, language and location (the extension data).
fn extension(out: &mut Vec<u8>, header: &[u8]) {
    out.push(b' ');
    match mime::disposition(header) {
        Some((kind, p)) => {
            out.push(b'(');
            string(out, kind.to_ascii_uppercase().as_bytes());
            out.push(b' ');
            params(out, &p);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    nstring(out, mime::header_value(header, "Content-Language").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, mime::header_value(header, "Content-Location").as_deref().map(str::as_bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_quoted_or_literal() {
        assert_eq!(text(|o| string(o, b"plain")), "\"plain\"");
        assert_eq!(text(|o| string(o, b"a \"b\" \\")), "\"a \\\"b\\\" \\\\\"");
        assert_eq!(text(|o| string(o, b"two\r\nlines")), "{10}\r\ntwo\r\nlines");
        assert_eq!(text(|o| string(o, "Café".as_bytes())), "{5}\r\nCafé");
        assert_eq!(text(|o| nstring(o, None)), "NIL");
        assert_eq!(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(internal_date(837_596_665), "\"17-Jul-1996 09:44:25 +0000\"");
        assert_eq!(flag_list(&[Flag::Seen, Flag::Keyword("$Junk".into())]), "(\\Seen $Junk)");
        let r = Response::tagged("a1", Status::No, Some("TRYCREATE"), "No such mailbox", "");
        assert_eq!(r.bytes, b"a1 NO [TRYCREATE] No such mailbox\r\n");
        assert_eq!(r.as_text(), Some("a1 NO [TRYCREATE] No such mailbox\r\n"));
        assert_eq!(Response::untagged_bytes(b"1 FETCH (BODY[] {2}\r\nhi)".to_vec(), "").as_text(), None);
    }

    #[test]
    fn envelope_and_structure() {
        let raw = b"Date: Thu, 26 Nov 2026 04:16:00 +0000\r\nFrom: Alice <alice@school.test>\r\nTo: bob@example.org, \"Carol C\" <carol@example.net>\r\nSubject: Lunch?\r\nMessage-ID: <1@school.test>\r\n\r\nHi Bob\r\n";
        let root = mime::structure(raw);
        let env = text(|o| envelope(o, &raw[root.header.clone()]));
        assert_eq!(
            env,
            "(\"Thu, 26 Nov 2026 04:16:00 +0000\" \"Lunch?\" ((\"Alice\" NIL \"alice\" \"school.test\")) ((\"Alice\" NIL \"alice\" \"school.test\")) \
((\"Alice\" NIL \"alice\" \"school.test\")) ((NIL NIL \"bob\" \"example.org\")(\"Carol C\" NIL \"carol\" \"example.net\")) NIL NIL NIL \"<1@school.test>\")"
        );
        let body = text(|o| body_structure(o, raw, &root, false));
        assert_eq!(body, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 8 1)");
        let mixed = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=x.pdf\r\n\r\nAAAA\r\n--b--\r\n";
        let root = mime::structure(mixed);
        let full = text(|o| body_structure(o, mixed, &root, true));
        assert_eq!(
            full,
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 2 0 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" NIL NIL NIL \"BASE64\" 4 NIL (\"ATTACHMENT\" (\"FILENAME\" \"x.pdf\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL)"
        );
    }
}
