//! Parsing one SMTP command line from a client into a `Command`.
//!
//! This models the client's half of the SMTP dialogue (RFC 5321 §4.1): `EHLO`, `MAIL FROM`,
//! `RCPT TO`, `DATA` and friends, plus the extensions the server offers: `AUTH` (RFC 4954),
//! `SIZE=` (RFC 1870), `BODY=` (8BITMIME, RFC 6152) and `STARTTLS` (RFC 3207). It is the
//! first thing that happens to every line a client sends: the I/O layer cuts the line
//! (without CRLF), `parse` turns it into a `Command`, and `session.rs` decides what it
//! means in the current state. Parsing is pure and strict about syntax but liberal where
//! real clients are sloppy (lower-case verbs, a space after `FROM:`, extra spaces, an EHLO
//! name that is not a domain). A bad
//! line becomes a `ParseError` that already knows which reply the server should send.

use super::reply::Reply;
use std::net::{Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// RFC 5321 §4.5.3.1: longest local part, domain and path (inside the angle brackets).
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_PATH: usize = 256;

/// The `BODY=` parameter of MAIL (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// ESMTP parameters of `MAIL FROM`. Any other parameter is refused with 555.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// RFC 1870: the client's estimate of the message size, in octets.
    pub size: Option<u64>,
    pub body: Option<Body>,
    /// RFC 4954 §5: who originally submitted the message (`<>` = unknown).
    pub auth: Option<String>,
}

impl MailParams {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// `from: None` is the null reverse-path `<>`, used by bounces so they never bounce back.
    Mail {
        from: Option<String>,
        params: MailParams,
    },
    /// `to` is `local@domain`, or just `postmaster` (RFC 5321 §4.5.1).
    Rcpt {
        to: String,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Expn(String),
    Help(Option<String>),
    /// The mechanism is upper-cased; `initial` is the optional base64 initial response.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    StartTls,
}

/// Why a line is not a valid command. `reply()` gives the answer the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty command line")]
    Empty,
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    #[error("bad sender address: {0}")]
    BadSender(&'static str),
    #[error("bad recipient address: {0}")]
    BadRecipient(&'static str),
    #[error("unsupported parameter {0:?}")]
    UnsupportedParameter(String),
}

impl ParseError {
    pub fn reply(&self) -> Reply {
        match self {
            Self::Empty => Reply::new(500, (5, 5, 2), "Syntax error: empty command"),
            Self::UnknownCommand(_) => Reply::new(500, (5, 5, 1), "Command unrecognized"),
            Self::Syntax(why) => Reply::new(501, (5, 5, 4), format!("Syntax error in parameters: {why}")),
            // RFC 3463: X.1.7 / X.1.3 say precisely which address was malformed.
            Self::BadSender(why) => Reply::new(501, (5, 1, 7), format!("Bad sender address syntax: {why}")),
            Self::BadRecipient(why) => Reply::new(501, (5, 1, 3), format!("Bad recipient address syntax: {why}")),
            Self::UnsupportedParameter(p) => Reply::new(555, (5, 5, 4), format!("Unsupported parameter {p}")),
        }
    }
}

/// Parses one command line (without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut halves = line.splitn(2, |&b| b == b' ');
    let verb = halves.next().unwrap_or_default();
    let rest = halves.next().unwrap_or_default();
    if !verb.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::UnknownCommand(printable(&String::from_utf8_lossy(verb))));
    }
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    // Arguments are decoded only once the verb is known, so bad bytes there give 501, not 500.
    let args = || std::str::from_utf8(rest).map(str::trim_ascii).map_err(|_| ParseError::Syntax("arguments must be ASCII text"));
    let no_args = |cmd: Command| {
        if rest.is_empty() { Ok(cmd) } else { Err(ParseError::Syntax("this command takes no arguments")) }
    };
    match verb.as_str() {
        "EHLO" => Ok(Command::Ehlo(hello_domain(args()?)?)),
        "HELO" => Ok(Command::Helo(hello_domain(args()?)?)),
        "MAIL" => parse_mail(args()?),
        "RCPT" => parse_rcpt(args()?),
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        "QUIT" => no_args(Command::Quit),
        "STARTTLS" => no_args(Command::StartTls),
        "NOOP" => Ok(Command::Noop), // RFC 5321 §4.1.1.9: any argument is ignored
        "VRFY" | "EXPN" => {
            let arg = args()?;
            if arg.is_empty() {
                return Err(ParseError::Syntax("VRFY and EXPN need an argument"));
            }
            Ok(if verb == "VRFY" { Command::Vrfy(arg.into()) } else { Command::Expn(arg.into()) })
        }
        "HELP" => Ok(Command::Help(Some(args()?).filter(|a| !a.is_empty()).map(String::from))),
        "AUTH" => parse_auth(args()?),
        _ => Err(ParseError::UnknownCommand(printable(&verb))),
    }
}

/// Client text that ends up in a reply: short and printable only.
fn printable(s: &str) -> String {
    s.chars().take(32).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

/// `prefix` matched case-insensitively (`from:` works as well as `FROM:`).
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) { s.get(prefix.len()..) } else { None }
}

/// The name a client gives in EHLO/HELO. RFC 5321 §4.1.1.1 asks for its domain or an address
/// literal, but the name proves nothing (any client can type any name), so refusing a sloppy
/// one only breaks real clients: curl, for one, sends the name of the file it uploads
/// (`EHLO tmp_message`). Like Postfix by default (`smtpd_helo_restrictions` empty), we
/// accept any non-empty name without control characters and let the story say when it is
/// not a valid domain (see [`hello_name_is_valid`] and [`describe_command`]). Extra words
/// ("HELO my laptop") are kept, as Postfix does. The name is echoed in the reply and ends up
/// in the `Received:` header, both ASCII without SMTPUTF8 (RFC 6531, which we do not offer), so
/// control characters (a tab, a NUL), non-ASCII text and names longer than a domain are refused.
fn hello_domain(arg: &str) -> Result<String, ParseError> {
    if arg.is_empty() {
        Err(ParseError::Syntax("EHLO/HELO need a name: your domain, or an address literal like [192.0.2.1]"))
    } else if !arg.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        Err(ParseError::Syntax("the EHLO/HELO name must be printable ASCII, without control characters"))
    } else if arg.len() > MAX_DOMAIN {
        Err(ParseError::Syntax("the EHLO/HELO name is longer than a domain name may be"))
    } else {
        Ok(arg.to_string())
    }
}

/// Is an EHLO/HELO name what RFC 5321 §4.1.1.1 asks for: a domain or an address literal?
pub fn hello_name_is_valid(name: &str) -> bool {
    is_domain(name) || is_address_literal(name)
}

/// RFC 5321 §4.1.2 `Domain`: dot-separated labels of letters, digits and inner hyphens.
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DOMAIN
        && s.split('.')
            .all(|l| (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-') && !l.ends_with('-'))
}

/// RFC 5321 §4.1.3: `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
fn is_address_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    match strip_prefix_ci(inner, "IPv6:") {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => inner.parse::<Ipv4Addr>().is_ok(),
    }
}

fn parse_mail(args: &str) -> Result<Command, ParseError> {
    let rest = strip_prefix_ci(args, "FROM:").ok_or(ParseError::Syntax("use MAIL FROM:<address>"))?;
    // Real clients often write "MAIL FROM: <a@b>"; RFC 5321 forbids the space but it is harmless.
    let (path, params) = split_path(rest.trim_start()).map_err(ParseError::BadSender)?;
    let from = if path.is_empty() { None } else { Some(mailbox(path).map_err(ParseError::BadSender)?) };
    Ok(Command::Mail { from, params: parse_mail_params(params)? })
}

fn parse_rcpt(args: &str) -> Result<Command, ParseError> {
    let rest = strip_prefix_ci(args, "TO:").ok_or(ParseError::Syntax("use RCPT TO:<address>"))?;
    let (path, params) = split_path(rest.trim_start()).map_err(ParseError::BadRecipient)?;
    if let Some(p) = params.split_ascii_whitespace().next() {
        // We offer no RCPT extensions (such as DSN's NOTIFY=).
        return Err(ParseError::UnsupportedParameter(printable(p)));
    }
    let to = match path {
        "" => return Err(ParseError::BadRecipient("a recipient cannot be empty")),
        // Every server must accept plain <postmaster> (RFC 5321 §4.5.1).
        p if p.eq_ignore_ascii_case("postmaster") => "postmaster".to_string(),
        p => mailbox(p).map_err(ParseError::BadRecipient)?,
    };
    Ok(Command::Rcpt { to })
}

/// Splits `<path> params` into the text inside the brackets and the parameters.
fn split_path(s: &str) -> Result<(&str, &str), &'static str> {
    let inner = s.strip_prefix('<').ok_or("the address must be in angle brackets, like <user@example.org>")?;
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let (path, rest) = inner.split_at(i);
                let rest = rest.get(1..).unwrap_or_default(); // skip the '>' itself
                if path.len() > MAX_PATH {
                    return Err("the address is too long");
                }
                if !rest.is_empty() && !rest.starts_with(' ') {
                    return Err("unexpected text after the closing >");
                }
                return Ok((path, rest));
            }
            _ => {}
        }
    }
    Err("missing closing >")
}

/// Validates `local@domain` and returns it with the domain lower-cased: domains are
/// case-insensitive, but a local part belongs to the receiving server (RFC 5321 §2.4).
fn mailbox(path: &str) -> Result<String, &'static str> {
    // An obsolete source route "@relay1,@relay2:user@host" is accepted and ignored
    // (RFC 5321 §4.1.2 and Appendix C).
    let path = match path.strip_prefix('@') {
        Some(routed) => {
            let (route, mailbox) = routed.split_once(':').ok_or("bad source route")?;
            if !route.split(",@").all(is_domain) {
                return Err("bad source route");
            }
            mailbox
        }
        None => path,
    };
    // A domain never contains '@', so the last '@' splits even a quoted local part correctly.
    let (local, domain) = path.rsplit_once('@').ok_or("the address needs an @ and a domain")?;
    if local.is_empty() || local.len() > MAX_LOCAL {
        return Err("the local part (before @) is empty or too long");
    }
    if !is_dot_string(local) && !is_quoted_string(local) {
        return Err("the local part (before @) has characters that are not allowed");
    }
    if !is_domain(domain) && !is_address_literal(domain) {
        return Err("the domain (after @) is not valid");
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// RFC 5321 §4.1.2 `Dot-string`: atoms of `atext` joined by single dots.
fn is_dot_string(s: &str) -> bool {
    s.split('.').all(|atom| !atom.is_empty() && atom.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)))
}

/// RFC 5321 §4.1.2 `Quoted-string`: printable ASCII in quotes; `"` and `\` escaped by `\`.
fn is_quoted_string(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return false;
    };
    let mut escaped = false;
    for b in inner.bytes() {
        if !(32..=126).contains(&b) {
            return false;
        } else if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return false;
        }
    }
    !escaped
}

fn parse_mail_params(s: &str) -> Result<MailParams, ParseError> {
    let mut p = MailParams::default();
    for token in s.split_ascii_whitespace() {
        let (key, value) = token.split_once('=').unwrap_or((token, ""));
        let twice = ParseError::Syntax("a parameter is given twice");
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => {
                if p.size.is_some() {
                    return Err(twice);
                }
                let digits = !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
                p.size = Some(value.parse().ok().filter(|_| digits).ok_or(ParseError::Syntax("SIZE must be a number"))?);
            }
            "BODY" => {
                if p.body.is_some() {
                    return Err(twice);
                }
                p.body = Some(match value.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    _ => return Err(ParseError::Syntax("BODY must be 7BIT or 8BITMIME")),
                });
            }
            "AUTH" => {
                if p.auth.is_some() {
                    return Err(twice);
                }
                if value.is_empty() {
                    return Err(ParseError::Syntax("AUTH= needs a value"));
                }
                p.auth = Some(value.to_string());
            }
            _ => return Err(ParseError::UnsupportedParameter(printable(key))),
        }
    }
    Ok(p)
}

fn parse_auth(args: &str) -> Result<Command, ParseError> {
    let mut words = args.split_ascii_whitespace();
    let mechanism = words.next().ok_or(ParseError::Syntax("AUTH needs a mechanism, like AUTH PLAIN"))?;
    let initial = words.next().map(String::from);
    if words.next().is_some() || !mechanism.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ParseError::Syntax("use AUTH mechanism [initial-response]"));
    }
    Ok(Command::Auth { mechanism: mechanism.to_ascii_uppercase(), initial })
}

/// The story's note on an EHLO/HELO name that is not a domain or an address literal.
fn hello_note(name: &str) -> &'static str {
    if hello_name_is_valid(name) {
        ""
    } else {
        ". Note: that is not a domain name or an address literal as RFC 5321 §4.1.1.1 asks; \
         the server accepts it anyway, as Postfix does by default, because the name proves nothing \
         (curl, for one, sends the name of the file it uploads)"
    }
}

/// A short sentence for students explaining what a command asks for.
pub fn describe_command(cmd: &Command) -> String {
    match cmd {
        Command::Ehlo(d) => format!("client says hello as {d} and asks for the server's extensions (ESMTP){}", hello_note(d)),
        Command::Helo(d) => format!("client says hello as {d} (plain SMTP, no extensions){}", hello_note(d)),
        Command::Mail { from: None, .. } => "client starts a message with the null sender <> (a bounce)".into(),
        Command::Mail { from: Some(f), params } => match params.size {
            Some(n) => format!("client names the envelope sender {f} and announces {n} octets"),
            None => format!("client names the envelope sender {f}"),
        },
        Command::Rcpt { to } => format!("client names the envelope recipient {to}"),
        Command::Data => "client asks to send the message itself".into(),
        Command::Rset => "client abandons the current message".into(),
        Command::Noop => "client checks that the connection is alive".into(),
        Command::Quit => "client says goodbye".into(),
        Command::Vrfy(who) => format!("client asks whether the user {who} exists"),
        Command::Expn(list) => format!("client asks who is on the mailing list {list}"),
        Command::Help(_) => "client asks for help".into(),
        // Never echo the initial response: it is the base64 of the password.
        Command::Auth { mechanism, initial } => match initial {
            Some(_) => format!("client logs in with {mechanism} and sends its credentials at once"),
            None => format!("client starts logging in with {mechanism}"),
        },
        Command::StartTls => "client asks to encrypt the connection (STARTTLS)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(from: Option<&str>, params: MailParams) -> Command {
        Command::Mail { from: from.map(String::from), params }
    }

    /// Lines every server must understand, and what they mean.
    fn valid_cases() -> Vec<(&'static str, Command)> {
        let p = MailParams::default();
        vec![
            ("EHLO laptop.school.test", Command::Ehlo("laptop.school.test".into())),
            ("ehlo [192.0.2.1]", Command::Ehlo("[192.0.2.1]".into())),
            ("EHLO [IPv6:2001:db8::1]", Command::Ehlo("[IPv6:2001:db8::1]".into())),
            ("HELO localhost", Command::Helo("localhost".into())),
            // Not domains, accepted anyway (Postfix's default): curl sends its upload's file name.
            ("EHLO tmp_message", Command::Ehlo("tmp_message".into())),
            ("EHLO bad_host!", Command::Ehlo("bad_host!".into())),
            ("HELO [999.1.1.1]", Command::Helo("[999.1.1.1]".into())),
            ("HELO my laptop", Command::Helo("my laptop".into())),
            ("MAIL FROM:<Alice@School.TEST>", mail(Some("Alice@school.test"), p.clone())),
            ("mail from: <alice@school.test>", mail(Some("alice@school.test"), p.clone())),
            ("MAIL FROM:<>", mail(None, p.clone())),
            ("MAIL FROM:<@relay.test,@b.test:bob@example.org>", mail(Some("bob@example.org"), p.clone())),
            ("MAIL FROM:<\"john >doe\"@example.org>", mail(Some("\"john >doe\"@example.org"), p.clone())),
            ("MAIL FROM:<a@[192.0.2.1]>", mail(Some("a@[192.0.2.1]"), p.clone())),
            (
                "MAIL FROM:<a@b.c>  size=1000 BODY=8bitmime AUTH=<>",
                mail(Some("a@b.c"), MailParams { size: Some(1000), body: Some(Body::EightBitMime), auth: Some("<>".into()) }),
            ),
            ("RCPT TO:<Postmaster>", Command::Rcpt { to: "postmaster".into() }),
            ("rcpt to:<bob@EXAMPLE.org>", Command::Rcpt { to: "bob@example.org".into() }),
            ("DATA", Command::Data),
            ("rset", Command::Rset),
            ("NOOP are you there", Command::Noop),
            ("  QUIT  ", Command::Quit),
            ("VRFY bob", Command::Vrfy("bob".into())),
            ("EXPN staff", Command::Expn("staff".into())),
            ("HELP", Command::Help(None)),
            ("HELP mail", Command::Help(Some("mail".into()))),
            ("AUTH plain AGFsaWNl", Command::Auth { mechanism: "PLAIN".into(), initial: Some("AGFsaWNl".into()) }),
            ("auth login", Command::Auth { mechanism: "LOGIN".into(), initial: None }),
            ("StartTLS", Command::StartTls),
        ]
    }

    #[test]
    fn parses_valid_commands() {
        for (line, want) in valid_cases() {
            assert_eq!(parse(line.as_bytes()), Ok(want), "{line}");
        }
    }

    /// Bad lines, with the reply code and enhanced code each must get.
    fn invalid_cases() -> Vec<(Vec<u8>, u16, &'static str)> {
        let long_local = format!("MAIL FROM:<{}@b.c>", "x".repeat(65));
        let long_hello = format!("EHLO {}", "x".repeat(256));
        let cases: Vec<(&[u8], u16, &str)> = vec![
            (b"", 500, "5.5.2"),
            (b"   ", 500, "5.5.2"),
            (b"FOO bar", 500, "5.5.1"),
            (b"\xff\xfe", 500, "5.5.1"),
            (b"MAIL\tFROM:<a@b.c>", 500, "5.5.1"),
            (b"MAIL FROM:<\xff@x.y>", 501, "5.5.4"),
            (b"EHLO", 501, "5.5.4"),
            (b"EHLO \t", 501, "5.5.4"),
            (b"EHLO bad\x00host", 501, "5.5.4"),
            (b"HELO a\tb", 501, "5.5.4"),
            (b"EHLO \xc3", 501, "5.5.4"),
            ("EHLO r\u{e9}seau".as_bytes(), 501, "5.5.4"),
            (b"MAIL TO:<a@b.c>", 501, "5.5.4"),
            (b"MAIL FROM:alice@school.test", 501, "5.1.7"),
            (b"MAIL FROM:<alice>", 501, "5.1.7"),
            (b"MAIL FROM:<a..b@c.d>", 501, "5.1.7"),
            (b"MAIL FROM:<a@b.c", 501, "5.1.7"),
            (b"MAIL FROM:<a@b.c>x", 501, "5.1.7"),
            (b"MAIL FROM:<a@-b.c>", 501, "5.1.7"),
            (long_local.as_bytes(), 501, "5.1.7"),
            (long_hello.as_bytes(), 501, "5.5.4"),
            (b"MAIL FROM:<a@b.c> FOO=1", 555, "5.5.4"),
            (b"MAIL FROM:<a@b.c> SMTPUTF8", 555, "5.5.4"),
            (b"MAIL FROM:<a@b.c> SIZE=abc", 501, "5.5.4"),
            (b"MAIL FROM:<a@b.c> SIZE=+5", 501, "5.5.4"),
            (b"MAIL FROM:<a@b.c> SIZE=99999999999999999999999", 501, "5.5.4"),
            (b"MAIL FROM:<a@b.c> SIZE=1 SIZE=2", 501, "5.5.4"),
            (b"MAIL FROM:<a@b.c> BODY=BINARYMIME", 501, "5.5.4"),
            (b"RCPT TO:<>", 501, "5.1.3"),
            (b"RCPT TO:bob@example.org", 501, "5.1.3"),
            (b"RCPT TO:<bob@example.org> NOTIFY=NEVER", 555, "5.5.4"),
            (b"DATA now", 501, "5.5.4"),
            (b"VRFY", 501, "5.5.4"),
            (b"AUTH", 501, "5.5.4"),
            (b"AUTH PLAIN a b", 501, "5.5.4"),
        ];
        cases.into_iter().map(|(line, code, enhanced)| (line.to_vec(), code, enhanced)).collect()
    }

    #[test]
    fn rejects_bad_commands_with_the_right_reply() {
        for (line, code, enhanced) in invalid_cases() {
            let reply = parse(&line).expect_err(&String::from_utf8_lossy(&line)).reply();
            assert_eq!((reply.code, reply.enhanced.map(|e| e.to_string())), (code, Some(enhanced.into())), "{line:?}");
        }
    }

    /// Every table line, sent as one pipelined stream, is re-fed through the server's own
    /// line reader (`Wire::read_line`) in pieces of 1, 2, 4 … 512 bytes: each line must parse
    /// exactly as it does alone, whatever the pieces. A bare LF also ends a command, and an
    /// overlong line is cut and reported (`None`) without swallowing the next one.
    #[test]
    fn parses_the_same_in_any_chunking_through_the_servers_framing() {
        use crate::smtp::session::COMMAND_LINE_MAX;
        use crate::transcripts::{CHUNK_SIZES, through_wire};
        let lines: Vec<Vec<u8>> = valid_cases().into_iter().map(|(l, _)| l.as_bytes().to_vec()).chain(invalid_cases().into_iter().map(|(l, ..)| l)).collect();
        let mut input: Vec<u8> = lines.iter().flat_map(|l| [l.as_slice(), b"\r\n"].concat()).collect();
        input.extend_from_slice(format!("NOOP\nRSET\r\n{}\r\nQUIT\r\n", "x".repeat(COMMAND_LINE_MAX)).as_bytes());
        let mut expected: Vec<Option<Result<Command, ParseError>>> = lines.iter().map(|l| Some(parse(l))).collect();
        expected.extend([Some(Ok(Command::Noop)), Some(Ok(Command::Rset)), None, Some(Ok(Command::Quit))]);
        for chunk in CHUNK_SIZES {
            let (got, _) = through_wire(&input, chunk, async |wire| {
                let mut got = Vec::new();
                while let Ok(line) = wire.read_line(COMMAND_LINE_MAX).await {
                    got.push((!line.overlong).then(|| parse(&line.bytes)));
                }
                got
            });
            assert_eq!(got, expected, "pieces of {chunk}");
        }
    }

    #[test]
    fn hello_names_that_are_not_domains_get_a_note() {
        let described = |line: &str| describe_command(&parse(line.as_bytes()).unwrap());
        assert_eq!(described("EHLO mx.school.test"), "client says hello as mx.school.test and asks for the server's extensions (ESMTP)");
        assert_eq!(described("HELO [192.0.2.1]"), "client says hello as [192.0.2.1] (plain SMTP, no extensions)");
        for line in ["EHLO tmp_message", "HELO my laptop", "EHLO [999.1.1.1]"] {
            assert!(described(line).contains("Note: that is not a domain name or an address literal"), "{line}");
        }
    }

    #[test]
    fn descriptions_never_leak_credentials() {
        let cmd = parse(b"AUTH PLAIN AGFsaWNlQHNjaG9vbC50ZXN0AHdvbmRlcmxhbmQ=").unwrap();
        assert!(!describe_command(&cmd).contains("AGFs"));
        assert_eq!(describe_command(&parse(b"RCPT TO:<bob@example.org>").unwrap()), "client names the envelope recipient bob@example.org");
    }
}
