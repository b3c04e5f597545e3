//! Small facts about a message's text (RFC 5322) that servers need: its
//! Message-ID and subject for labels, and the trace headers each server
//! adds in front (`Received:`, `Return-Path:`).

use mail_parser::MessageParser;

use crate::trace::MessageRef;

/// The Message-ID, subject and sender of a raw message (headers only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
}

/// Reads the headers of `raw` (a parse failure just gives empty fields:
/// servers accept what they cannot parse, as real ones do).
pub fn summarize(raw: &[u8]) -> Summary {
    let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(raw.len());
    let Some(message) = MessageParser::new().parse_headers(&raw[..header_end]) else {
        return Summary::default();
    };
    let address = |a: &mail_parser::Address| a.first().and_then(|a| a.address()).map(str::to_string);
    Summary {
        message_id: message.message_id().map(str::to_string),
        subject: message.subject().map(str::to_string),
        from: message.from().and_then(address),
        to: message.to().map(|list| list.iter().filter_map(|a| a.address().map(str::to_string)).collect()).unwrap_or_default(),
    }
}

impl Summary {
    /// A label for the trace: `"Hi" (alice@school.test → bob@example.org)`.
    pub fn message_ref(&self) -> Option<MessageRef> {
        let id = self.message_id.clone()?;
        let subject = self.subject.clone().unwrap_or_default();
        let from = self.from.clone().unwrap_or_else(|| "?".into());
        let to = match self.to.as_slice() {
            [] => "?".to_string(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} +{}", rest.len()),
        };
        Some(MessageRef { id, label: format!("\"{subject}\" ({from} → {to})") })
    }
}

/// True if the header block of `raw` has a field called `name`.
pub fn has_header(raw: &[u8], name: &str) -> bool {
    let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let prefix = format!("{}:", name.to_ascii_lowercase());
    raw[..header_end].split(|&b| b == b'\n').any(|line| line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()))
}

/// What one server records about one hop in its `Received:` header.
pub struct ReceivedInfo<'a> {
    /// The name the client gave in EHLO/HELO.
    pub helo: &'a str,
    /// The client's node name (or address, for outside clients).
    pub peer_name: &'a str,
    pub peer_ip: std::net::IpAddr,
    /// This server.
    pub by: &'a str,
    /// ESMTP, ESMTPA (authenticated, RFC 3848), SMTP (HELO).
    pub with: &'a str,
    pub id: &'a str,
    /// The recipient, when there is just one (privacy: never list several).
    pub for_rcpt: Option<&'a str>,
    pub date: &'a str,
}

/// The `Received:` header a server puts in front of each message it
/// accepts (RFC 5321 §4.4). Read from the bottom up, a message's
/// Received headers are its route.
pub fn received_header(info: &ReceivedInfo) -> String {
    let for_part = info.for_rcpt.map(|r| format!("\r\n\tfor <{r}>")).unwrap_or_default();
    format!(
        "Received: from {} ({} [{}])\r\n\tby {} (mailflow) with {} id {}{for_part};\r\n\t{}\r\n",
        info.helo, info.peer_name, info.peer_ip, info.by, info.with, info.id, info.date
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_headers() {
        let raw = b"From: Alice <alice@school.test>\r\nTo: bob@example.org, carol@example.net\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\nMessage-ID: <1@school.test>\r\n\r\nbody\r\n";
        let s = summarize(raw);
        assert_eq!(s.message_id.as_deref(), Some("1@school.test"));
        assert_eq!(s.subject.as_deref(), Some("Café"));
        assert_eq!(s.message_ref().unwrap().label, "\"Café\" (alice@school.test → bob@example.org +1)");
        assert!(has_header(raw, "message-id") && !has_header(raw, "Date"));
        assert_eq!(summarize(b"\xff\xfe garbage"), Summary::default());
    }
}
