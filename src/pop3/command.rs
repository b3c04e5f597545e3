//! Parsing one POP3 command line from a client into a [`Command`].
//!
//! This models the client's half of the POP3 dialogue (RFC 1939 §4–§7):
//! a keyword of 3–4 letters, case-insensitive, and up to two arguments
//! separated by single spaces — `USER bob@example.org`, `RETR 1`,
//! `TOP 2 10` — plus `CAPA` from RFC 2449. It is the first thing that
//! happens to every line a device sends to fetch its mail: the I/O layer
//! cuts the line (at most 255 octets with CRLF, RFC 2449 §4), [`parse`]
//! turns it into a `Command`, and `session.rs` decides what it means in
//! the current state. Parsing is pure and never panics, whatever the
//! bytes; a bad line becomes a [`ParseError`] that knows its `-ERR` text.
//!
//! [`Receiver`] does the same line cutting as the I/O layer's `Wire`, but
//! on bytes handed to it in any pieces. It lets the tests prove that the
//! way TCP happens to split a stream never changes what is parsed, and it
//! feeds the transcript tests of `session.rs`.

use super::reply::Reply;

/// RFC 2449 §4: a command line is at most 255 octets including CRLF.
pub const COMMAND_LINE_MAX: usize = 255;

/// One POP3 command. Message numbers count from 1, as on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// AUTHORIZATION: the mailbox name.
    User(String),
    /// AUTHORIZATION: the password (the rest of the line, spaces included).
    Pass(String),
    /// How many messages, how many octets.
    Stat,
    /// The size of one message, or of all.
    List(Option<u32>),
    /// The unique id of one message, or of all (RFC 1939 §7).
    Uidl(Option<u32>),
    /// The whole message.
    Retr(u32),
    /// The headers and the first `lines` lines of the body.
    Top {
        msg: u32,
        lines: u32,
    },
    /// Mark for deletion at QUIT.
    Dele(u32),
    /// Unmark everything.
    Rset,
    Noop,
    Quit,
    /// What the server can do (RFC 2449 §5).
    Capa,
    /// Switch this connection to TLS (RFC 2595 §4).
    Stls,
}

/// Why a line is not a valid command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command line")]
    Empty,
    #[error("unknown command {0:?}")]
    Unknown(String),
    #[error("{0}")]
    Syntax(&'static str),
}

impl ParseError {
    /// The answer the server sends.
    pub fn reply(&self) -> Reply {
        match self {
            ParseError::Empty => Reply::err("empty command"),
            ParseError::Unknown(verb) => Reply::err(format!("unknown command {verb}")),
            ParseError::Syntax(why) => Reply::err(*why),
        }
    }
}

/// Parses one command line (without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    // Only the line end is trimmed from the right: a password may end in
    // a space. Leading spaces are a client's sloppiness, forgiven.
    let line = line.trim_ascii_start();
    if line.trim_ascii_end().is_empty() {
        return Err(ParseError::Empty);
    }
    let (verb, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b""[..]),
    };
    if verb.is_empty() || verb.len() > 8 || !verb.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::Unknown(printable(verb)));
    }
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    let words = || rest.split(|&b| b == b' ').filter(|w| !w.is_empty()).collect::<Vec<&[u8]>>();
    let none = |cmd: Command| if rest.trim_ascii().is_empty() { Ok(cmd) } else { Err(ParseError::Syntax("this command takes no arguments")) };
    match verb.as_str() {
        "USER" => {
            let name = rest.trim_ascii();
            if name.is_empty() {
                return Err(ParseError::Syntax("USER needs a mailbox name, like USER bob@example.org"));
            }
            if name.contains(&b' ') || !name.iter().all(|b| b.is_ascii_graphic()) {
                return Err(ParseError::Syntax("the mailbox name must be printable ASCII without spaces"));
            }
            Ok(Command::User(String::from_utf8_lossy(name).into_owned()))
        }
        "PASS" => {
            // RFC 1939 §7: the password is everything after "PASS ", so it
            // may contain spaces.
            if rest.is_empty() {
                return Err(ParseError::Syntax("PASS needs a password"));
            }
            let password = std::str::from_utf8(rest).map_err(|_| ParseError::Syntax("the password must be UTF-8 text"))?;
            Ok(Command::Pass(password.to_string()))
        }
        "STAT" => none(Command::Stat),
        "RSET" => none(Command::Rset),
        "NOOP" => none(Command::Noop),
        "QUIT" => none(Command::Quit),
        "CAPA" => none(Command::Capa),
        "STLS" => none(Command::Stls),
        "LIST" | "UIDL" => {
            let args = words();
            let msg = match args.as_slice() {
                [] => None,
                [n] => Some(number(n)?),
                _ => return Err(ParseError::Syntax("use LIST or UIDL with at most one message number")),
            };
            Ok(if verb == "LIST" { Command::List(msg) } else { Command::Uidl(msg) })
        }
        "RETR" | "DELE" => match words().as_slice() {
            [n] => {
                let n = number(n)?;
                Ok(if verb == "RETR" { Command::Retr(n) } else { Command::Dele(n) })
            }
            _ => Err(ParseError::Syntax("use RETR or DELE with one message number, like RETR 1")),
        },
        "TOP" => match words().as_slice() {
            [n, k] => Ok(Command::Top { msg: number(n)?, lines: number(k)? }),
            _ => Err(ParseError::Syntax("use TOP message lines, like TOP 1 10")),
        },
        "APOP" | "AUTH" => Err(ParseError::Unknown(verb)),
        _ => Err(ParseError::Unknown(printable(verb.as_bytes()))),
    }
}

/// A decimal number of at most 9 digits (so it always fits).
fn number(word: &[u8]) -> Result<u32, ParseError> {
    if word.is_empty() || word.len() > 9 || !word.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Syntax("a message number must be a positive decimal number"));
    }
    std::str::from_utf8(word).ok().and_then(|w| w.parse().ok()).ok_or(ParseError::Syntax("a message number must be a positive decimal number"))
}

/// Client text that ends up in a reply: short and printable only.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(16).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

/// What a line says, for students; `who` is the client's node name. Never
/// contains the password.
pub fn describe_command(command: &Command, who: &str) -> String {
    match command {
        Command::User(name) => format!("{who} says which mailbox it wants: {name}"),
        Command::Pass(_) => format!("{who} sends the password (in clear text: POP3 without TLS hides nothing)"),
        Command::Stat => format!("{who} asks: how many messages, how big?"),
        Command::List(None) => format!("{who} asks for the size of every message"),
        Command::List(Some(n)) => format!("{who} asks for the size of message {n}"),
        Command::Uidl(None) => format!("{who} asks for the unique ID of every message"),
        Command::Uidl(Some(n)) => format!("{who} asks for the unique ID of message {n}"),
        Command::Retr(n) => format!("{who} asks for message {n}"),
        Command::Top { msg, lines } => format!("{who} asks for the headers and first {lines} lines of message {msg}"),
        Command::Dele(n) => format!("{who} asks to delete message {n}"),
        Command::Rset => format!("{who} changes its mind: undelete everything"),
        Command::Noop => format!("{who} checks that the server is still there"),
        Command::Quit => format!("{who} says goodbye"),
        Command::Capa => format!("{who} asks what the server can do"),
        Command::Stls => format!("{who} asks to encrypt this connection (STLS)"),
    }
}

/// What the trace shows of a client line: PASS is masked.
pub fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim_start();
    if trimmed.len() >= 4 && trimmed.as_bytes()[..4].eq_ignore_ascii_case(b"PASS") && trimmed.as_bytes().get(4).is_none_or(|&b| b == b' ') {
        return "PASS ********".into();
    }
    text.into_owned()
}

/// One line cut from the byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A line without its CRLF (or bare LF).
    Line(Vec<u8>),
    /// A line longer than allowed; its bytes were dropped.
    TooLong,
}

/// Cuts a byte stream into lines, keeping at most `max` octets (CRLF
/// included) of any line, exactly as `Wire::read_line` does.
#[derive(Debug)]
pub struct Receiver {
    max: usize,
    partial: Vec<u8>,
    overlong: bool,
}

impl Receiver {
    pub fn new(max: usize) -> Self {
        Receiver { max, partial: Vec::new(), overlong: false }
    }

    /// Takes the next piece of the stream; returns the lines it completed.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Input> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (chunk, found_end) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..=i], true),
                None => (bytes, false),
            };
            bytes = &bytes[chunk.len()..];
            if !self.overlong {
                if self.partial.len() + chunk.len() > self.max {
                    self.overlong = true;
                    self.partial = Vec::new(); // memory stays bounded
                } else {
                    self.partial.extend_from_slice(chunk);
                }
            }
            if found_end {
                if std::mem::take(&mut self.overlong) {
                    out.push(Input::TooLong);
                } else {
                    let mut line = std::mem::take(&mut self.partial);
                    line.pop(); // the '\n'
                    if line.ends_with(b"\r") {
                        line.pop();
                    }
                    out.push(Input::Line(line));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case is fed through a [`Receiver`] in pieces of 1, 2, 4 …
    /// 512 bytes: the result must never depend on the pieces.
    fn parse_chunked(input: &[u8]) -> Vec<Result<Command, ParseError>> {
        let mut first: Option<Vec<Result<Command, ParseError>>> = None;
        for size in [1, 2, 3, 4, 8, 16, 64, 512] {
            let mut receiver = Receiver::new(COMMAND_LINE_MAX);
            let mut got = Vec::new();
            for piece in input.chunks(size) {
                for item in receiver.feed(piece) {
                    got.push(match item {
                        Input::Line(line) => parse(&line),
                        Input::TooLong => Err(ParseError::Syntax("too long")),
                    });
                }
            }
            match &first {
                None => first = Some(got),
                Some(expected) => assert_eq!(&got, expected, "pieces of {size} changed the result for {input:?}"),
            }
        }
        first.unwrap_or_default()
    }

    #[test]
    fn parses_valid_commands_in_any_chunking() {
        let cases: Vec<(&[u8], Command)> = vec![
            (b"USER bob@example.org\r\n", Command::User("bob@example.org".into())),
            (b"user bob\n", Command::User("bob".into())),
            (b"PASS builder\r\n", Command::Pass("builder".into())),
            (b"PASS two words \r\n", Command::Pass("two words ".into())),
            (b"STAT\r\n", Command::Stat),
            (b"  stat  \r\n", Command::Stat),
            (b"LIST\r\n", Command::List(None)),
            (b"LIST 2\r\n", Command::List(Some(2))),
            (b"UIDL\r\n", Command::Uidl(None)),
            (b"uidl 1\r\n", Command::Uidl(Some(1))),
            (b"RETR 1\r\n", Command::Retr(1)),
            (b"TOP 1 0\r\n", Command::Top { msg: 1, lines: 0 }),
            (b"TOP  3   10\r\n", Command::Top { msg: 3, lines: 10 }),
            (b"DELE 7\r\n", Command::Dele(7)),
            (b"RSET\r\n", Command::Rset),
            (b"NOOP\r\n", Command::Noop),
            (b"QUIT\r\n", Command::Quit),
            (b"Capa\r\n", Command::Capa),
            (b"STLS\r\n", Command::Stls),
            (b"RETR 000000001\r\n", Command::Retr(1)),
        ];
        for (line, want) in cases {
            assert_eq!(parse_chunked(line), vec![Ok(want)], "{:?}", String::from_utf8_lossy(line));
        }
        // Several commands in one stream (pipelining, RFC 2449 §6.6).
        let all = parse_chunked(b"USER bob\r\nPASS x\r\nSTAT\r\nQUIT\r\n");
        assert_eq!(all, vec![Ok(Command::User("bob".into())), Ok(Command::Pass("x".into())), Ok(Command::Stat), Ok(Command::Quit)]);
    }

    #[test]
    fn rejects_bad_commands_with_the_right_answer() {
        let long = [b"NOOP ".as_slice(), &[b'x'; 300], b"\r\n"].concat();
        let cases: Vec<(&[u8], &str)> = vec![
            (b"\r\n", "-ERR empty command"),
            (b"   \r\n", "-ERR empty command"),
            (b"FOO\r\n", "-ERR unknown command FOO"),
            (b"HELO there\r\n", "-ERR unknown command HELO"),
            (b"APOP bob 1234\r\n", "-ERR unknown command APOP"),
            (b"ST\x00AT\r\n", "-ERR unknown command ST?AT"),
            (b"\xff\xfe\r\n", "-ERR unknown command ??"),
            (b"USER\r\n", "-ERR USER needs"),
            (b"USER bob smith\r\n", "-ERR the mailbox name"),
            (b"USER b\x01b\r\n", "-ERR the mailbox name"),
            (b"PASS\r\n", "-ERR PASS needs"),
            (b"PASS \xff\r\n", "-ERR the password"),
            (b"STAT now\r\n", "-ERR this command takes no arguments"),
            (b"QUIT please\r\n", "-ERR this command takes no arguments"),
            (b"RETR\r\n", "-ERR use RETR"),
            (b"RETR 1 2\r\n", "-ERR use RETR"),
            (b"RETR x\r\n", "-ERR a message number"),
            (b"RETR -1\r\n", "-ERR a message number"),
            (b"RETR 99999999999999999999\r\n", "-ERR a message number"),
            (b"DELE +1\r\n", "-ERR a message number"),
            (b"LIST 1 2\r\n", "-ERR use LIST"),
            (b"TOP 1\r\n", "-ERR use TOP"),
            (b"TOP 1 x\r\n", "-ERR a message number"),
            (&long, "-ERR too long"),
        ];
        for (line, want) in cases {
            let got = parse_chunked(line);
            let [Err(err)] = got.as_slice() else { panic!("{line:?} parsed as {got:?}") };
            let text = if let ParseError::Syntax("too long") = err { "-ERR too long".to_string() } else { err.reply().status_line() };
            assert!(text.starts_with(want), "{:?}: {text:?} should start with {want:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn receiver_keeps_memory_bounded_and_recovers() {
        let mut receiver = Receiver::new(COMMAND_LINE_MAX);
        for _ in 0..100 {
            assert!(receiver.feed(&[b'x'; 1024]).is_empty());
            assert!(receiver.partial.len() <= COMMAND_LINE_MAX);
        }
        assert_eq!(receiver.feed(b"\r\nNOOP\r\n"), vec![Input::TooLong, Input::Line(b"NOOP".to_vec())]);
        // Exactly 255 octets with CRLF is allowed; 256 is not.
        let ok = [vec![b'a'; 253], b"\r\n".to_vec()].concat();
        assert_eq!(receiver.feed(&ok), vec![Input::Line(vec![b'a'; 253])]);
        let too_long = [vec![b'a'; 254], b"\r\n".to_vec()].concat();
        assert_eq!(receiver.feed(&too_long), vec![Input::TooLong]);
    }

    #[test]
    fn never_panics_and_never_shows_a_password() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let alphabet = b"USERPASTOPRETRLIST 19\x00\xff\xc3 -";
            let line: Vec<u8> = (0..len).map(|i| alphabet[(seed as usize >> (i % 32)) % alphabet.len()]).collect();
            let _ = parse(&line);
            let _ = shown(&line);
        }
        for line in [&b"PASS secret"[..], b"pass secret words", b"  Pass x"] {
            assert_eq!(shown(line), "PASS ********");
            assert!(!describe_command(&parse(line).unwrap(), "bob-laptop").contains("secret"));
        }
        assert_eq!(shown(b"PASSWORD"), "PASSWORD");
    }
}
