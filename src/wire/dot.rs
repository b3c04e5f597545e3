//! Dot-stuffing: how SMTP DATA (RFC 5321 §4.5.2) and POP3 multi-line
//! answers (RFC 1939 §3) carry a message whose end is a line with a single
//! ".": the sender doubles every "." that starts a line; the receiver
//! removes one again. Pure functions, shared by SMTP and POP3.

/// Prepares `body` for sending: lines starting with "." get another ".",
/// bare LF line ends become CRLF, the body ends with CRLF, and the final
/// ".\r\n" is appended.
pub fn stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut at_line_start = true;
    let mut previous = 0u8;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        previous = b;
    }
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// How a dot-terminated block ended up, after its final ".".
#[derive(Debug, PartialEq, Eq)]
pub enum Block {
    /// The unstuffed content, CRLF line ends.
    Complete(Vec<u8>),
    /// Bigger than allowed: the content was read and thrown away.
    TooLarge,
    /// A line was longer than allowed: read and thrown away.
    LineTooLong,
}

/// Most mail is text of a few KiB; bigger messages grow as usual.
const TYPICAL_MESSAGE: usize = 16 * 1024;

/// Collects a dot-terminated block line by line, with limits, so memory
/// stays bounded whatever the peer sends.
#[derive(Debug)]
pub struct Unstuffer {
    max_size: usize,
    max_line: usize,
    data: Vec<u8>,
    too_large: bool,
    line_too_long: bool,
    lines: u64,
}

impl Unstuffer {
    /// `max_size`: content bytes; `max_line`: octets per line with CRLF.
    pub fn new(max_size: usize, max_line: usize) -> Self {
        // Room for a typical message from the start, so it is not copied
        // again and again while it grows line by line. (The buffer lives
        // only until the message is stored, so nothing is kept for long.)
        let data = Vec::with_capacity(max_size.min(TYPICAL_MESSAGE));
        Unstuffer { max_size, max_line, data, too_large: false, line_too_long: false, lines: 0 }
    }

    /// Feeds one line *without* its line end. `overlong` says the reader
    /// had to cut it. Returns true at the final ".".
    pub fn line(&mut self, line: &[u8], overlong: bool) -> bool {
        if line == b"." && !overlong {
            return true;
        }
        self.lines += 1;
        if overlong || line.len() + 2 > self.max_line {
            self.line_too_long = true;
        }
        let line = line.strip_prefix(b".").unwrap_or(line);
        if self.too_large || self.line_too_long || self.data.len() + line.len() + 2 > self.max_size {
            self.too_large |= self.data.len() + line.len() + 2 > self.max_size;
            self.data = Vec::new(); // stop holding memory for a doomed block
            return false;
        }
        self.data.extend_from_slice(line);
        self.data.extend_from_slice(b"\r\n");
        false
    }

    /// Lines seen so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn finish(self) -> Block {
        if self.too_large {
            Block::TooLarge
        } else if self.line_too_long {
            Block::LineTooLong
        } else {
            Block::Complete(self.data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unstuff(wire: &[u8]) -> Block {
        let mut u = Unstuffer::new(1 << 20, 1000);
        for line in wire.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if u.line(line, false) {
                return u.finish();
            }
        }
        panic!("no final dot");
    }

    #[test]
    fn round_trips() {
        for body in [&b""[..], b"hello\r\n", b".hidden\r\n..two\r\n.\r\nend\r\n", b"no final newline", b"bare\nlf\n"] {
            let wire = stuff(body);
            assert!(wire.ends_with(b"\r\n.\r\n") || wire == b".\r\n");
            let expected = {
                let mut e = String::from_utf8(body.to_vec()).unwrap().replace("\r\n", "\n").replace('\n', "\r\n");
                if !e.is_empty() && !e.ends_with("\r\n") {
                    e.push_str("\r\n");
                }
                e.into_bytes()
            };
            assert_eq!(unstuff(&wire), Block::Complete(expected), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn limits_hold() {
        let mut u = Unstuffer::new(10, 1000);
        assert!(!u.line(b"0123456789abc", false));
        assert!(u.line(b".", false));
        assert_eq!(u.finish(), Block::TooLarge);
        let mut u = Unstuffer::new(1 << 20, 1000);
        assert!(!u.line(&[b'x'; 999], false));
        assert!(u.line(b".", false));
        assert_eq!(u.finish(), Block::LineTooLong);
    }
}
