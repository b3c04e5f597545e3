//! One mail folder as a single mbox file (RFC 4155), the oldest and most
//! portable backup format: every message starts with a "From " line
//! (sender and date), and messages simply follow each other.
//!
//! Because a line starting with "From " would look like the start of the
//! next message, such lines inside a message are quoted with ">". This
//! file uses the *mboxrd* variant: every line matching `>*From ` gets one
//! more ">" on writing and loses one on reading, so quoting can always be
//! undone and the bytes come back exactly. (The older mboxo quoted only
//! "From ", so a real ">From " in a message was changed for ever.)
//!
//! Flags travel the way mutt and Thunderbird store them: `Status: RO`
//! (R read, O old), `X-Status: AFTD` (answered, flagged, draft, deleted),
//! `X-Keywords:`. The writer puts these three lines first in every message
//! and the reader takes exactly those three away again, so a message
//! comes back byte for byte with its flags. One limit: a message that
//! does not end with a line end gets one (mbox cannot say otherwise).
//! Pure functions, no I/O.

use std::collections::BTreeSet;

use super::{Flag, Message};
use crate::calendar::{civil_from_days, days_from_civil, month_name, month_number};

/// One message read from an mbox file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub raw: Vec<u8>,
    pub flags: BTreeSet<Flag>,
    /// From the "From " line's date, as Unix seconds (UTC).
    pub internal_date: Option<i64>,
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday

/// `Thu Nov 26 04:16:00 2026`, the asctime form of the "From " line (UTC).
pub fn asctime(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    format!("{weekday} {} {day:2} {:02}:{:02}:{:02} {year}", month_name(month), secs / 3600, secs / 60 % 60, secs % 60)
}

/// Reads the date of a "From " line: `Www Mmm dd hh:mm:ss yyyy` (a time
/// zone or "remote from" after it is ignored).
pub fn parse_asctime(words: &[&str]) -> Option<i64> {
    let [_, month, day, time, year, ..] = words else { return None };
    let month = month_number(month)?;
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next().flatten().unwrap_or(0));
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&s) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// The envelope sender for the "From " line: the `Return-Path:` a server
/// added at delivery, or MAILER-DAEMON.
fn sender(raw: &[u8]) -> String {
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the header
        }
        if line.len() > 12 && line[..12].eq_ignore_ascii_case(b"Return-Path:") {
            let value = String::from_utf8_lossy(&line[12..]);
            let address = value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string();
            if !address.is_empty() && !address.contains(char::is_whitespace) {
                return address;
            }
        }
    }
    "MAILER-DAEMON".into()
}

/// True for lines that mboxrd quotes: `From `, `>From `, `>>From ` …
fn is_from_line(line: &[u8]) -> bool {
    let unquoted = &line[line.iter().take_while(|&&b| b == b'>').count()..];
    unquoted.starts_with(b"From ")
}

/// The three flag lines the writer puts first in a message.
fn status_lines(flags: &BTreeSet<Flag>, eol: &str) -> String {
    let read = if flags.contains(&Flag::Seen) { "RO" } else { "O" };
    let mut x = String::new();
    for (flag, letter) in [(Flag::Answered, 'A'), (Flag::Flagged, 'F'), (Flag::Draft, 'T'), (Flag::Deleted, 'D')] {
        if flags.contains(&flag) {
            x.push(letter);
        }
    }
    let keywords: Vec<&str> = flags.iter().filter_map(|f| if let Flag::Keyword(k) = f { Some(k.as_str()) } else { None }).collect();
    let spaced = |v: String| if v.is_empty() { v } else { format!(" {v}") };
    format!("Status: {read}{eol}X-Status:{}{eol}X-Keywords:{}{eol}", spaced(x), spaced(keywords.join(" ")))
}

/// Writes messages as one mboxrd file.
pub fn write(messages: &[Message]) -> Vec<u8> {
    let mut out = Vec::with_capacity(messages.iter().map(|m| m.raw.len() + 160).sum());
    for message in messages {
        let raw = message.raw.as_slice();
        out.extend_from_slice(format!("From {} {}\n", sender(raw), asctime(message.internal_date)).as_bytes());
        // The flag lines use the message's own line end, so they look at
        // home in it.
        let eol = if raw.split(|&b| b == b'\n').next().is_some_and(|l| l.ends_with(b"\r")) && raw.contains(&b'\n') { "\r\n" } else { "\n" };
        let mut body = status_lines(&message.flags, eol).into_bytes();
        body.extend_from_slice(raw);
        for line in body.split_inclusive(|&b| b == b'\n') {
            if is_from_line(line) {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
        if !body.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.push(b'\n'); // the empty line that ends every message (RFC 4155)
    }
    out
}

/// Reads an mbox file (mboxrd; mboxo files read the same, minus their
/// lost quoting).
pub fn read(bytes: &[u8]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut current: Option<(Option<i64>, Vec<u8>)> = None;
    let finish = |current: Option<(Option<i64>, Vec<u8>)>, entries: &mut Vec<Entry>| {
        if let Some((date, mut raw)) = current {
            // Take away the empty line that ended the message.
            if raw.ends_with(b"\n\n") || raw == b"\n" {
                raw.pop();
            } else if raw.ends_with(b"\r\n\r\n") || raw == b"\r\n" {
                raw.truncate(raw.len() - 2);
            }
            let (raw, flags) = take_status(raw);
            entries.push(Entry { raw, flags, internal_date: date });
        }
    };
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            finish(current.take(), &mut entries);
            let text = String::from_utf8_lossy(line);
            let words: Vec<&str> = text.split_ascii_whitespace().collect();
            current = Some((words.get(2..).and_then(parse_asctime), Vec::new()));
            continue;
        }
        let Some((_, raw)) = current.as_mut() else { continue }; // text before the first "From " is not mail
        if line.first() == Some(&b'>') && is_from_line(line) {
            raw.extend_from_slice(&line[1..]);
        } else {
            raw.extend_from_slice(line);
        }
    }
    finish(current, &mut entries);
    entries
}

/// Finds the flags of a message: our three lines at the top are removed;
/// otherwise `Status:`/`X-Status:`/`X-Keywords:` headers are read where
/// they are and left in place.
fn take_status(raw: Vec<u8>) -> (Vec<u8>, BTreeSet<Flag>) {
    let lines: Vec<&[u8]> = raw.split_inclusive(|&b| b == b'\n').take(3).collect();
    let ours = lines.len() == 3 && lines[0].starts_with(b"Status: ") && lines[1].starts_with(b"X-Status:") && lines[2].starts_with(b"X-Keywords:");
    let mut flags = BTreeSet::new();
    let mut header_lines: Vec<&[u8]> = Vec::new();
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare.is_empty() {
            break;
        }
        header_lines.push(bare);
        if ours && header_lines.len() == 3 {
            break;
        }
    }
    for line in header_lines {
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else { continue };
        match name.to_ascii_lowercase().as_str() {
            "status" if value.contains('R') => {
                flags.insert(Flag::Seen);
            }
            "x-status" => {
                for (letter, flag) in [('A', Flag::Answered), ('F', Flag::Flagged), ('T', Flag::Draft), ('D', Flag::Deleted)] {
                    if value.contains(letter) {
                        flags.insert(flag);
                    }
                }
            }
            "x-keywords" => {
                for word in value.split([' ', ',']).filter(|w| !w.is_empty()) {
                    if let Some(flag) = Flag::parse(word).filter(|f| matches!(f, Flag::Keyword(_))) {
                        flags.insert(flag);
                    }
                }
            }
            _ => {}
        }
    }
    if !ours {
        return (raw, flags);
    }
    let cut: usize = lines.iter().map(|l| l.len()).sum();
    (raw[cut..].to_vec(), flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn message(raw: &[u8], flags: &[Flag], date: i64) -> Message {
        Message { uid: 1, raw: Arc::new(raw.to_vec()), flags: flags.iter().cloned().collect(), arrived: Duration::ZERO, internal_date: date }
    }

    #[test]
    fn dates() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_764_130_560), "Wed Nov 26 04:16:00 2025");
        assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        for t in [0, 951_782_400, 1_764_130_560, 4_102_444_799] {
            let text = asctime(t);
            let words: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(parse_asctime(&words), Some(t), "{text}");
        }
        assert_eq!(parse_asctime(&["Mon", "Foo", "1", "00:00:00", "2020"]), None);
        assert_eq!(parse_asctime(&["Mon", "Jan", "1", "25:00:00", "2020"]), None);
        assert_eq!(parse_asctime(&["Mon"]), None);
    }

    #[test]
    fn round_trips_byte_for_byte_with_flags() {
        let tricky =
            b"Return-Path: <alice@school.test>\r\nSubject: From here\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\n From indented\r\n\r\n\r\n";
        let messages = vec![
            message(tricky, &[Flag::Seen, Flag::Flagged, Flag::Keyword("$Junk".into())], 1_764_130_560),
            message(b"Subject: lf only\n\nFrom x\nbody\n", &[Flag::Answered, Flag::Draft, Flag::Deleted], 0),
            message(b"Status: RO\r\nSubject: had its own Status\r\n\r\nbody\r\n", &[], 5),
            message(b"Return-Path: <>\r\n\r\n", &[], 7),
        ];
        let file = write(&messages);
        let text = String::from_utf8_lossy(&file);
        assert!(text.starts_with("From alice@school.test Wed Nov 26 04:16:00 2025\nStatus: RO\r\nX-Status: F\r\nX-Keywords: $Junk\r\n"), "{text}");
        assert!(text.contains("\r\n>From the start\r\n>>From quoted\r\n>>>From twice\r\n From indented\r\n"), "{text}");
        assert!(text.contains("\nFrom MAILER-DAEMON Thu Jan  1 00:00:07 1970\n"), "{text}");
        let back = read(&file);
        assert_eq!(back.len(), messages.len());
        for (m, e) in messages.iter().zip(&back) {
            assert_eq!(e.raw, *m.raw, "{:?}", String::from_utf8_lossy(&e.raw));
            assert_eq!(e.flags, m.flags);
            assert_eq!(e.internal_date, Some(m.internal_date));
        }
    }

    #[test]
    fn reads_other_programs_files() {
        let file = b"junk before\nFrom bob@example.org Mon Jan  5 10:00:00 2026\nStatus: RO\nX-Status: A\nSubject: hi\n\nbody\n>From me\n\nFrom MAILER-DAEMON Sat Jan 10 10:00:00 2026\nSubject: no flags\n\nx\n";
        let entries = read(file);
        assert_eq!(entries.len(), 2);
        // Not our three lines: the flags are read, the bytes stay; only the quoting is undone.
        assert_eq!(entries[0].raw, b"Status: RO\nX-Status: A\nSubject: hi\n\nbody\nFrom me\n");
        assert_eq!(entries[0].flags, BTreeSet::from([Flag::Seen, Flag::Answered]));
        assert_eq!(entries[1].raw, b"Subject: no flags\n\nx\n");
        assert!(entries[1].flags.is_empty());
        assert!(read(b"").is_empty());
        assert!(read(b"no mbox at all\n").is_empty());
        // Garbage never panics.
        let mut seed = 7u64;
        for _ in 0..2000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let bytes: Vec<u8> = (0..(seed % 64)).map(|i| b"From >\r\n: SX-tatus"[((seed >> (i % 48)) % 18) as usize]).collect();
            let _ = read(&bytes);
        }
    }
}
