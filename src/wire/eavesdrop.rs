//! The eavesdropper: what someone who can read a link (a shared Wi-Fi, a
//! hacked router, a curious provider) learns from a plaintext hop.
//!
//! Without TLS every byte crosses the link as it was written, so anyone on
//! the path reads the lines exactly as the endpoints do — the password
//! included. Mail protocols do not hide it: AUTH PLAIN (RFC 4616) and AUTH
//! LOGIN send it *base64-encoded*, which is a way of writing bytes as
//! letters, not encryption: anybody decodes it. IMAP `LOGIN` (RFC 3501
//! §6.2.3) and POP3 `PASS` (RFC 1939 §7) send it as it is.
//!
//! [`Listener`] follows one connection's client lines, as an attacker's
//! tool would, and decodes each login it hears into the user name and
//! password. It is pure (no I/O): the wire feeds it the raw lines of a
//! connection that has an eavesdropper on its link (see `links.rs`), and
//! only then — this is the one place a world shows a secret, on purpose,
//! so a class sees why TLS matters. Once TLS is up the wire stops feeding
//! it: all that is left to see are the TLS records (`tls.rs`).

use base64::Engine as _;

pub use crate::trace::Captured;

/// What the next client line is, in an exchange the listener follows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Expect {
    #[default]
    Command,
    /// The base64 "\0user\0password" of AUTH PLAIN (SMTP, POP3) or IMAP
    /// AUTHENTICATE PLAIN sent after the server's empty challenge.
    PlainToken(&'static str),
    /// AUTH LOGIN: the user name, then the password, each base64.
    LoginUser,
    LoginPassword(String),
}

/// One connection's eavesdropper: feed it each line the client sends.
#[derive(Debug, Default)]
pub struct Listener {
    expect: Expect,
    /// POP3 USER, waiting for its PASS.
    pop3_user: Option<String>,
}

impl Listener {
    /// Reads one line the client sent (without CRLF); returns the login
    /// it gives away, if it does.
    pub fn hear(&mut self, line: &[u8]) -> Option<Captured> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        match std::mem::take(&mut self.expect) {
            Expect::Command => self.command(text),
            Expect::PlainToken(mechanism) => plain(text, mechanism),
            Expect::LoginUser => {
                let user = decode(text)?;
                self.expect = Expect::LoginPassword(user);
                None
            }
            Expect::LoginPassword(user) => Some(Captured { mechanism: "AUTH LOGIN".into(), user, password: decode(text)? }),
        }
    }

    fn command(&mut self, text: &str) -> Option<Captured> {
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let upper: Vec<String> = words.iter().take(3).map(|w| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        match upper.as_slice() {
            // SMTP (RFC 4954) and POP3 (RFC 5034): AUTH PLAIN [token].
            ["AUTH", "PLAIN", ..] => match words.get(2) {
                Some(token) => plain(token, "AUTH PLAIN"),
                None => {
                    self.expect = Expect::PlainToken("AUTH PLAIN");
                    None
                }
            },
            ["AUTH", "LOGIN", ..] => {
                match words.get(2).and_then(|w| decode(w)) {
                    Some(user) => self.expect = Expect::LoginPassword(user),
                    None => self.expect = Expect::LoginUser,
                }
                None
            }
            // POP3 (RFC 1939 §7).
            ["USER", ..] => {
                self.pop3_user = words.get(1).map(|u| u.to_string());
                None
            }
            ["PASS", ..] => {
                let password = text.split_once(' ').map(|(_, p)| p.to_string()).unwrap_or_default();
                Some(Captured { mechanism: "POP3 USER/PASS".into(), user: self.pop3_user.take().unwrap_or_default(), password })
            }
            // IMAP: "tag LOGIN user password" (RFC 3501 §6.2.3).
            [_, "LOGIN", ..] => {
                let rest = text.splitn(3, ' ').nth(2).unwrap_or("");
                let (user, rest) = imap_string(rest)?;
                let (password, _) = imap_string(rest.trim_start())?;
                Some(Captured { mechanism: "IMAP LOGIN".into(), user, password })
            }
            [_, "AUTHENTICATE", "PLAIN"] => match words.get(3) {
                Some(token) => plain(token, "IMAP AUTHENTICATE PLAIN"),
                None => {
                    self.expect = Expect::PlainToken("IMAP AUTHENTICATE PLAIN");
                    None
                }
            },
            _ => None,
        }
    }
}

/// Base64 to text; None if it is not base64 (or "*", a cancelled login).
fn decode(text: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// An AUTH PLAIN token: base64 of "authzid \0 user \0 password" (RFC 4616 §2).
fn plain(token: &str, mechanism: &str) -> Option<Captured> {
    let decoded = decode(token)?;
    let mut parts = decoded.split('\0');
    let (_authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    Some(Captured { mechanism: mechanism.into(), user: user.into(), password: password.into() })
}

/// One IMAP atom or quoted string (RFC 3501 §4.3) and the rest of the line.
fn imap_string(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?.1),
                '"' => return Some((out, &quoted[i + 1..])),
                c => out.push(c),
            }
        }
        None
    } else {
        let end = text.find(' ').unwrap_or(text.len());
        (end > 0).then(|| (text[..end].to_string(), &text[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(lines: &[&str]) -> Vec<Captured> {
        let mut listener = Listener::default();
        lines.iter().filter_map(|l| listener.hear(l.as_bytes())).collect()
    }

    fn login(mechanism: &str, user: &str, password: &str) -> Captured {
        Captured { mechanism: mechanism.into(), user: user.into(), password: password.into() }
    }

    #[test]
    fn every_plaintext_login_gives_its_password_away() {
        // "\0alice@school.test\0wonderland"
        let token = base64::engine::general_purpose::STANDARD.encode("\0alice@school.test\0wonderland");
        assert_eq!(heard(&["EHLO laptop", &format!("AUTH PLAIN {token}")]), [login("AUTH PLAIN", "alice@school.test", "wonderland")]);
        assert_eq!(heard(&["AUTH PLAIN", &token]), [login("AUTH PLAIN", "alice@school.test", "wonderland")]);
        let b = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        assert_eq!(heard(&["AUTH LOGIN", &b("alice"), &b("wonder land")]), [login("AUTH LOGIN", "alice", "wonder land")]);
        assert_eq!(heard(&[&format!("AUTH LOGIN {}", b("alice")), &b("pw")]), [login("AUTH LOGIN", "alice", "pw")]);
        assert_eq!(heard(&["a1 LOGIN \"bob@example.org\" \"build\\\"er\""]), [login("IMAP LOGIN", "bob@example.org", "build\"er")]);
        assert_eq!(heard(&["a1 login bob secret"]), [login("IMAP LOGIN", "bob", "secret")]);
        assert_eq!(heard(&["a2 AUTHENTICATE PLAIN", &token]), [login("IMAP AUTHENTICATE PLAIN", "alice@school.test", "wonderland")]);
        assert_eq!(heard(&["CAPA", "USER bob@example.org", "PASS my secret"]), [login("POP3 USER/PASS", "bob@example.org", "my secret")]);
    }

    #[test]
    fn other_lines_and_garbage_give_nothing() {
        assert!(heard(&["EHLO x", "MAIL FROM:<a@b>", "a1 SELECT INBOX", "STAT", "AUTH PLAIN !!!", "a LOGIN \"unterminated"]).is_empty());
        // A cancelled AUTH LOGIN ("*") is not a password.
        assert!(heard(&["AUTH LOGIN", "*"]).is_empty());
        // Hostile bytes never panic.
        let mut listener = Listener::default();
        for line in [&b"\xff\xfe LOGIN \xff"[..], b"", b" ", b"AUTH", b"a LOGIN", b"a LOGIN \"\\"] {
            let _ = listener.hear(line);
        }
    }
}
