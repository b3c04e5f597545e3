//! Finding where a field sits in a JSON file, so an error can say
//! `scenarios/x.json:12:7` and not just "somewhere in hosts".
//!
//! serde_json reports line and column for syntax and type errors, but the
//! checks that run *after* parsing (does this client's user exist?) only know
//! the field path. This small scanner walks the original text once and
//! records the line and column at which every value starts, keyed by its
//! path, e.g. `hosts["mx1.example.org"].services[0]`.
//!
//! The same walk finds what serde cannot see: a key written twice in one
//! object. RFC 8259 §4 only says names "SHOULD be unique" and leaves the
//! meaning of duplicates to the reader; serde_json (like most parsers)
//! keeps the last one, so a second `"bob@example.org"` would silently
//! replace the first user. The scanner remembers every key of every object
//! and reports each repeat with both positions. For the maps whose keys are
//! DNS names or mail addresses (`domains`, `hosts`, `users`) it compares
//! keys ignoring case too: DNS names are case-insensitive (RFC 4343) and
//! this server matches mailboxes without case, so `MX1.example.org` and
//! `mx1.example.org` would be the same machine.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

/// One step of a path into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path like `clients["bob-phone"].user` or `steps[2].at`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }
    pub fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Seg::Key(key.to_string()));
        next
    }
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Seg::Index(index));
        next
    }
    /// The path without its last step (the enclosing object or array).
    pub fn parent(&self) -> Option<Self> {
        if self.0.is_empty() {
            return None;
        }
        Some(FieldPath(self.0[..self.0.len() - 1].to_vec()))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                // Plain names read as fields; names with dots or dashes (host
                // and client names) are quoted so the path stays unambiguous.
                Seg::Key(k) if is_identifier(k) => {
                    if i > 0 {
                        write!(f, ".")?;
                    }
                    write!(f, "{k}")?
                }
                Seg::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A key written twice in one object (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The path of the later key, e.g. `users["bob@example.org"]`.
    pub path: FieldPath,
    /// Where the later key starts (its opening quote).
    pub at: Position,
    /// The earlier key as written, and where it starts.
    pub first: String,
    pub first_at: Position,
    /// True when the two keys differ, but only in case.
    pub case_only: bool,
}

/// Where each value of a JSON document starts, and the keys written twice.
#[derive(Debug, Default)]
pub struct Locations {
    values: HashMap<FieldPath, Position>,
    /// Repeated keys, in file order.
    pub duplicates: Vec<Duplicate>,
}

impl Locations {
    /// Scans `text`. On malformed JSON it keeps what it found so far; serde
    /// reports the syntax error itself.
    pub fn scan(text: &str) -> Self {
        let mut scanner = Scanner { bytes: text.as_bytes(), pos: 0, line: 1, column: 1, out: HashMap::new(), duplicates: Vec::new() };
        scanner.skip_ws();
        scanner.value(FieldPath::root(), 0);
        Locations { values: scanner.out, duplicates: scanner.duplicates }
    }

    /// The position of `path`, or of its nearest ancestor that exists
    /// (a missing field is reported at the object that lacks it).
    pub fn find(&self, path: &FieldPath) -> Option<Position> {
        let mut path = Some(path.clone());
        while let Some(p) = path {
            if let Some(pos) = self.values.get(&p) {
                return Some(*pos);
            }
            path = p.parent();
        }
        None
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    column: usize,
    out: HashMap<FieldPath, Position>,
    duplicates: Vec<Duplicate>,
}

/// The maps keyed by DNS names or mail addresses, where keys that differ
/// only in case name the same thing.
fn keys_ignore_case(path: &FieldPath) -> bool {
    matches!(path.0.as_slice(), [Seg::Key(k)] if matches!(k.as_str(), "domains" | "hosts" | "users"))
}

/// Scenario files are small and shallow; this bound only stops a hostile
/// file from overflowing the stack.
const MAX_DEPTH: usize = 64;

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) {
        if let Some(&b) = self.bytes.get(self.pos) {
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if b & 0xC0 != 0x80 {
                // Count characters, not UTF-8 continuation bytes.
                self.column += 1;
            }
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.bump();
        }
    }

    fn value(&mut self, path: FieldPath, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.out.insert(path.clone(), Position { line: self.line, column: self.column });
        match self.peek()? {
            b'{' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == b'}' {
                    self.bump();
                    return Some(());
                }
                // Every key of this object, as written and folded to
                // lowercase, with where it starts. Hash maps keep a
                // 10,000-domain file linear.
                let fold = keys_ignore_case(&path);
                let mut seen: HashMap<String, (String, Position)> = HashMap::new();
                loop {
                    self.skip_ws();
                    let at = Position { line: self.line, column: self.column };
                    let key = self.string()?;
                    let folded = if fold { key.to_lowercase() } else { key.clone() };
                    match seen.entry(folded) {
                        Entry::Occupied(first) => {
                            let (first, first_at) = first.get().clone();
                            let case_only = first != key;
                            self.duplicates.push(Duplicate { path: path.key(&key), at, first, first_at, case_only });
                        }
                        Entry::Vacant(slot) => {
                            slot.insert((key.clone(), at));
                        }
                    }
                    self.skip_ws();
                    (self.peek()? == b':').then_some(())?;
                    self.bump();
                    self.skip_ws();
                    self.value(path.key(&key), depth + 1)?;
                    self.skip_ws();
                    match self.peek()? {
                        b',' => self.bump(),
                        b'}' => {
                            self.bump();
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == b']' {
                    self.bump();
                    return Some(());
                }
                let mut index = 0;
                loop {
                    self.skip_ws();
                    self.value(path.index(index), depth + 1)?;
                    index += 1;
                    self.skip_ws();
                    match self.peek()? {
                        b',' => self.bump(),
                        b']' => {
                            self.bump();
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                // number, true, false, null
                while matches!(self.peek(), Some(b) if !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')) {
                    self.bump();
                }
                Some(())
            }
        }
    }

    /// Reads a string token and returns its decoded text (escapes handled
    /// well enough for keys; `\uXXXX` is decoded, surrogates are replaced).
    fn string(&mut self) -> Option<String> {
        (self.peek()? == b'"').then_some(())?;
        self.bump();
        let mut text = Vec::new();
        loop {
            let b = self.peek()?;
            self.bump();
            match b {
                b'"' => return Some(String::from_utf8_lossy(&text).into_owned()),
                b'\\' => {
                    let esc = self.peek()?;
                    self.bump();
                    match esc {
                        b'n' => text.push(b'\n'),
                        b't' => text.push(b'\t'),
                        b'r' => text.push(b'\r'),
                        b'b' => text.push(8),
                        b'f' => text.push(12),
                        b'u' => {
                            let hex: String = (0..4)
                                .map(|_| {
                                    let c = self.peek().unwrap_or(b'0') as char;
                                    self.bump();
                                    c
                                })
                                .collect();
                            let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
                            text.extend_from_slice(c.to_string().as_bytes());
                        }
                        other => text.push(other),
                    }
                }
                other => text.push(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let text = "{\n  \"hosts\": {\n    \"mx1.example.org\": { \"services\": [\"smtp\", \"imap\"] }\n  },\n  \"steps\": [ {\"at\": \"0s\"} ]\n}";
        let locations = Locations::scan(text);
        let services = FieldPath::root().key("hosts").key("mx1.example.org").key("services");
        assert_eq!(locations.find(&services.index(1)), Some(Position { line: 3, column: 47 }));
        assert_eq!(services.index(1).to_string(), "hosts[\"mx1.example.org\"].services[1]");
        let at = FieldPath::root().key("steps").index(0).key("at");
        assert_eq!(locations.find(&at), Some(Position { line: 5, column: 21 }));
        // A missing field falls back to the object that should hold it.
        let missing = FieldPath::root().key("steps").index(0).key("send");
        assert_eq!(locations.find(&missing), Some(Position { line: 5, column: 14 }));
    }

    #[test]
    fn survives_garbage() {
        for text in ["", "{", "[[[[", "{\"a\":", "\"\\u12", "{\"a\" 1}", &"[".repeat(10_000)] {
            let _ = Locations::scan(text);
        }
    }
}
