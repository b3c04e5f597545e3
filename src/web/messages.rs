//! The message inspector's data: every message in every host's mailboxes,
//! its header fields, the route its `Received:` headers tell, and the
//! trace events that carried it (its hops).
//!
//! Each server that accepts a message writes one `Received:` line on top
//! (RFC 5321 §4.4), so read from the bottom up the headers are the route.
//! [`received_chain`] returns them in that travel order.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::message::summarize;
use crate::trace::Event;
use crate::world::World;

/// One stored copy of a message.
#[derive(Clone, Debug, Serialize)]
pub struct Copy {
    pub host: String,
    pub user: String,
    pub mailbox: String,
    pub uid: u32,
    pub size: usize,
    pub flags: Vec<String>,
    /// When it arrived, in simulated milliseconds.
    pub arrived_ms: u64,
}

/// A message in the list.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The Message-ID without angle brackets ("" if it has none).
    pub id: String,
    pub subject: String,
    pub from: String,
    pub to: Vec<String>,
    pub copies: Vec<Copy>,
}

/// Everything the inspector shows about one message.
#[derive(Debug, Serialize)]
pub struct Detail {
    pub id: String,
    /// The trace's label, e.g. `"Hi" (alice@school.test → bob@example.org)`.
    pub label: Option<String>,
    pub copies: Vec<CopyDetail>,
    /// Every event that carries this message id, in order.
    pub hops: Vec<Arc<Event>>,
}

#[derive(Debug, Serialize)]
pub struct CopyDetail {
    #[serde(flatten)]
    pub copy: Copy,
    pub headers: Vec<Header>,
    pub received: Vec<Received>,
    /// The message as stored (lossy UTF-8), headers and body.
    pub raw: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Header {
    pub name: String,
    /// Unfolded value, as written (encoded words are left as they are).
    pub value: String,
}

/// One hop of the route, from one `Received:` header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Received {
    /// The name the sending machine gave in EHLO/HELO.
    pub from: String,
    /// What the receiving server saw: name and [address].
    pub from_detail: String,
    pub by: String,
    pub with: String,
    pub id: String,
    #[serde(rename = "for")]
    pub for_rcpt: String,
    pub date: String,
}

struct Stored {
    copy: Copy,
    raw: Arc<Vec<u8>>,
}

fn all_stored(world: &World) -> Vec<Stored> {
    let mut out = Vec::new();
    for (host_name, host) in &world.hosts {
        for user in host.store.users() {
            for mailbox in host.store.list(&user) {
                let Ok(snapshot) = host.store.snapshot(&user, &mailbox) else { continue };
                for message in snapshot.messages {
                    out.push(Stored {
                        copy: Copy {
                            host: host_name.clone(),
                            user: user.clone(),
                            mailbox: snapshot.name.clone(),
                            uid: message.uid,
                            size: message.size(),
                            flags: message.flags.iter().map(|f| f.as_str().to_string()).collect(),
                            arrived_ms: message.arrived.as_millis() as u64,
                        },
                        raw: message.raw.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Every stored message, grouped by Message-ID, in order of arrival.
pub fn list(world: &World) -> Vec<Summary> {
    let mut by_id: BTreeMap<String, Summary> = BTreeMap::new();
    let mut order: Vec<(u64, String)> = Vec::new();
    for stored in all_stored(world) {
        let facts = summarize(&stored.raw);
        let id = facts.message_id.clone().unwrap_or_default();
        let entry = by_id.entry(id.clone()).or_insert_with(|| {
            order.push((stored.copy.arrived_ms, id.clone()));
            Summary {
                id: id.clone(),
                subject: facts.subject.clone().unwrap_or_default(),
                from: facts.from.clone().unwrap_or_default(),
                to: facts.to.clone(),
                copies: Vec::new(),
            }
        });
        entry.copies.push(stored.copy);
    }
    order.sort();
    order.into_iter().filter_map(|(_, id)| by_id.remove(&id)).collect()
}

/// One message by Message-ID: its stored copies and its hops. `None` if
/// no mailbox holds it and no event mentions it.
pub fn detail(world: &World, id: &str) -> Option<Detail> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let copies: Vec<CopyDetail> = all_stored(world)
        .into_iter()
        .filter(|s| summarize(&s.raw).message_id.as_deref() == Some(id))
        .map(|s| {
            let headers = headers(&s.raw);
            let received = received_chain(&headers);
            CopyDetail { copy: s.copy, headers, received, raw: String::from_utf8_lossy(&s.raw).into_owned() }
        })
        .collect();
    let hops: Vec<Arc<Event>> = world.trace.since(0).into_iter().filter(|e| e.message.as_ref().is_some_and(|m| m.id == id)).collect();
    if copies.is_empty() && hops.is_empty() {
        return None;
    }
    let label = hops.iter().find_map(|e| e.message.as_ref().map(|m| m.label.clone()));
    Some(Detail { id: id.to_string(), label, copies, hops })
}

/// The header fields of a raw message, unfolded (RFC 5322 §2.2.3), in
/// order. Stops at the first empty line.
pub fn headers(raw: &[u8]) -> Vec<Header> {
    let text = String::from_utf8_lossy(raw);
    let mut out: Vec<Header> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push(Header { name: name.trim().to_string(), value: value.trim().to_string() });
        }
    }
    out
}

/// The route told by the `Received:` headers, first hop first.
pub fn received_chain(headers: &[Header]) -> Vec<Received> {
    let mut chain: Vec<Received> = headers.iter().filter(|h| h.name.eq_ignore_ascii_case("received")).map(|h| parse_received(&h.value)).collect();
    chain.reverse();
    chain
}

/// Reads `from X (Y [ip]) by Z (comment) with W id I for <r>; date`
/// (RFC 5321 §4.4). Unknown clauses are ignored; missing ones stay empty.
pub fn parse_received(value: &str) -> Received {
    let (clauses, date) = match value.rfind(';') {
        Some(cut) => (&value[..cut], value[cut + 1..].trim()),
        None => (value, ""),
    };
    let mut received = Received { date: date.to_string(), ..Received::default() };
    // Split into words, keeping each (comment) as one word.
    let mut words: Vec<String> = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in clauses.chars() {
        match c {
            '(' => {
                if depth == 0 && !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                depth += 1;
                current.push(c);
            }
            ')' if depth > 0 => {
                depth -= 1;
                current.push(c);
                if depth == 0 {
                    words.push(std::mem::take(&mut current));
                }
            }
            c if c.is_whitespace() && depth == 0 => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    let mut i = 0;
    while i < words.len() {
        let keyword = words[i].to_ascii_lowercase();
        let value = words.get(i + 1).filter(|w| !w.starts_with('(')).cloned();
        let comment = words.get(i + 2).filter(|w| w.starts_with('(')).map(|w| w.trim_start_matches('(').trim_end_matches(')').to_string());
        let target = match keyword.as_str() {
            "from" => Some(&mut received.from),
            "by" => Some(&mut received.by),
            "with" => Some(&mut received.with),
            "id" => Some(&mut received.id),
            "for" => Some(&mut received.for_rcpt),
            _ => None,
        };
        match (target, value) {
            (Some(target), Some(value)) => {
                *target = value.trim_start_matches('<').trim_end_matches('>').to_string();
                if keyword == "from"
                    && let Some(comment) = comment
                {
                    received.from_detail = comment;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    received
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"Return-Path: <alice@school.test>\r\nReceived: from smtp.school.test (smtp.school.test [127.88.0.2])\r\n\tby mx1.example.org (mailflow) with ESMTP id MX1-1\r\n\tfor <bob@example.org>;\r\n\tThu, 26 Nov 2026 04:50:35 +0000\r\nReceived: from alice-laptop (alice-laptop [127.88.1.1])\r\n\tby smtp.school.test (mailflow) with ESMTPA id SMTP-1\r\n\tfor <bob@example.org>;\r\n\tThu, 26 Nov 2026 04:50:35 +0000\r\nSubject: Lunch?\r\n\r\nHi\r\nX-Not: a header\r\n";

    #[test]
    fn unfolds_headers_until_the_body() {
        let h = headers(RAW);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0], Header { name: "Return-Path".into(), value: "<alice@school.test>".into() });
        assert!(h[1].value.starts_with("from smtp.school.test (smtp.school.test [127.88.0.2]) by mx1.example.org"), "{}", h[1].value);
        assert_eq!(h[3].value, "Lunch?");
    }

    #[test]
    fn received_chain_is_the_route_in_travel_order() {
        let chain = received_chain(&headers(RAW));
        assert_eq!(chain.len(), 2);
        assert_eq!(
            chain[0],
            Received {
                from: "alice-laptop".into(),
                from_detail: "alice-laptop [127.88.1.1]".into(),
                by: "smtp.school.test".into(),
                with: "ESMTPA".into(),
                id: "SMTP-1".into(),
                for_rcpt: "bob@example.org".into(),
                date: "Thu, 26 Nov 2026 04:50:35 +0000".into(),
            }
        );
        assert_eq!(chain[1].from, "smtp.school.test");
        assert_eq!(chain[1].by, "mx1.example.org");
        assert_eq!(chain[1].with, "ESMTP");
    }

    #[test]
    fn odd_received_headers_do_not_panic() {
        for odd in ["", ";", "from", "by (x", "from a (b (c) d) by e; date", "with with with"] {
            let _ = parse_received(odd);
        }
        assert_eq!(parse_received("from a (b (c) d) by e; date").from_detail, "b (c) d");
    }
}
