//! From a trace to a sequence diagram's content: who takes part, and what
//! passes between them, in order. No drawing here — [`super::svg`] and
//! [`super::mermaid`] both draw the same [`Diagram`], so a handout in
//! either format tells the same story.
//!
//! What is kept, and why:
//! - every protocol line as one arrow (requests solid, replies dashed, as
//!   in RFC 5321 §4.3's command/reply picture); a multi-line reply
//!   (`250-...`) shows its first line, and a message body (SMTP `DATA`,
//!   IMAP `FETCH`) is already one `Data` event, so it is one arrow whatever
//!   its size;
//! - DNS questions and answers as arrows to and from the DNS server;
//! - notes for what happens *inside* a host: queue states (queued, retry,
//!   relayed, bounced), delivery, TLS agreed or failed, SPF/DKIM/DMARC
//!   verdicts, hosts going down, failures; and a divider per scenario step;
//! - left out: the encrypted bytes an eavesdropper sees (`tls_records`,
//!   the TLS view of the page), the world starting and finishing, and the
//!   lesson's longer "why" notes between two parties (the handout is the
//!   picture; the page keeps the explanations).

use std::collections::HashSet;

use crate::trace::{Direction, Event, HandshakeStep, Kind, Protocol, QueueState};

/// How long a label may be, in characters, before it is cut with "…".
/// The renderers cut again to the room they have.
pub const MAX_LABEL: usize = 90;
/// Notes wrap over a few lines, so they may be longer.
pub const MAX_NOTE: usize = 240;

/// A sequence diagram: participants left to right, items top to bottom.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagram {
    pub title: String,
    /// Node names, in the order they first appear in the story.
    pub participants: Vec<String>,
    pub items: Vec<Item>,
}

/// What an arrow carries, for its style and colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrowKind {
    /// A client's command or a DNS question: solid.
    Request,
    /// A server's reply or a DNS answer: dashed.
    Reply,
    /// A connection that could not be made: solid, ending in a cross.
    Failed,
}

/// What a note is about (its colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    Queue,
    Retry,
    Bounce,
    Delivered,
    Tls,
    Auth,
    Dns,
    Failure,
    Info,
}

/// One row of the diagram.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Arrow {
        from: usize,
        to: usize,
        protocol: Protocol,
        kind: ArrowKind,
        /// The hop was encrypted (TLS).
        encrypted: bool,
        text: String,
    },
    /// A note over one participant (`first == last`) or spanning two.
    Note { first: usize, last: usize, kind: NoteKind, text: String },
    /// A scenario step begins: a line across the whole diagram.
    Divider { text: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("the trace has no message with id {id:?}; its messages are: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    NoSuchMessage { id: String, known: Vec<String> },
    #[error("the trace shows nothing to draw (no hops between nodes)")]
    Empty,
}

/// The message ids a trace names, in order of first appearance.
pub fn message_ids<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<String> {
    let mut seen = HashSet::new();
    events.into_iter().filter_map(|e| e.message.as_ref()).filter(|m| seen.insert(m.id.clone())).map(|m| m.id.clone()).collect()
}

/// Builds the diagram of `events`, or of one message's hops when
/// `message` is given: every event that names it, plus the rest of each
/// connection it travelled on (the greeting, `EHLO`, `QUIT` of the SMTP
/// session that carried it; the IMAP session that fetched it).
pub fn build<'a>(events: impl IntoIterator<Item = &'a Event>, message: Option<&str>) -> Result<Diagram, ModelError> {
    let events: Vec<&Event> = events.into_iter().collect();
    let title_of_world = events
        .iter()
        .find(|e| matches!(e.kind, Kind::WorldUp))
        .map(|e| e.summary.trim_start_matches("the world of ").trim_end_matches(" is up").trim_matches('"').to_string());
    let (selected, title): (Vec<&Event>, String) = match message {
        None => (events.clone(), title_of_world.unwrap_or_else(|| "mailflow trace".to_string())),
        Some(id) => {
            let id = id.trim().trim_start_matches('<').trim_end_matches('>');
            let names = |e: &Event| e.message.as_ref().is_some_and(|m| m.id == id);
            let Some(first) = events.iter().find(|e| names(e)) else {
                return Err(ModelError::NoSuchMessage { id: id.to_string(), known: message_ids(events.iter().copied()) });
            };
            let label = first.message.as_ref().map(|m| m.label.clone()).unwrap_or_default();
            let sessions: HashSet<u64> = events.iter().filter(|e| names(e)).filter_map(|e| e.session).collect();
            let keep = |e: &&Event| names(e) || e.session.is_some_and(|s| sessions.contains(&s));
            (events.iter().copied().filter(keep).collect(), if label.is_empty() { id.to_string() } else { label })
        }
    };
    let mut diagram = Diagram { title, participants: Vec::new(), items: Vec::new() };
    for event in selected {
        add(&mut diagram, event);
    }
    if !diagram.items.iter().any(|i| matches!(i, Item::Arrow { .. })) {
        return Err(ModelError::Empty);
    }
    Ok(diagram)
}

impl Diagram {
    fn participant(&mut self, name: &str) -> usize {
        match self.participants.iter().position(|p| p == name) {
            Some(i) => i,
            None => {
                self.participants.push(name.to_string());
                self.participants.len() - 1
            }
        }
    }

    fn arrow(&mut self, event: &Event, kind: ArrowKind, text: String) {
        let (from, to) = (self.participant(&event.from), self.participant(&event.to));
        self.items.push(Item::Arrow { from, to, protocol: event.protocol, kind, encrypted: event.tls.is_some(), text: cut(&text) });
    }

    fn note(&mut self, a: &str, b: &str, kind: NoteKind, text: String) {
        let (a, b) = (self.participant(a), self.participant(b));
        self.items.push(Item::Note { first: a.min(b), last: a.max(b), kind, text: cut_to(&text, MAX_NOTE) });
    }
}

/// The simulation's own pseudo-nodes, never drawn as participants.
fn is_pseudo(name: &str) -> bool {
    matches!(name, "script" | "world")
}

fn add(d: &mut Diagram, e: &Event) {
    let request_or_reply = |direction: Direction| if direction == Direction::ToServer { ArrowKind::Request } else { ArrowKind::Reply };
    match &e.kind {
        Kind::Line { direction, line } => {
            let first = line.lines().next().unwrap_or_default();
            let more = if line.lines().count() > 1 { " …" } else { "" };
            d.arrow(e, request_or_reply(*direction), format!("{first}{more}"));
        }
        Kind::Data { direction, bytes, lines, .. } => {
            let what = if e.protocol == Protocol::Smtp { "message (DATA)" } else { "message" };
            d.arrow(e, request_or_reply(*direction), format!("{what}: {}, {lines} lines", crate::trace::human_bytes(*bytes)));
        }
        Kind::Connect => d.arrow(e, ArrowKind::Request, format!("connects ({})", e.protocol.label())),
        Kind::ConnectFailed { reason } => d.arrow(e, ArrowKind::Failed, format!("cannot connect: {reason}")),
        Kind::DnsQuery { name, rtype, .. } => d.arrow(e, ArrowKind::Request, format!("{rtype} {}?", name.trim_end_matches('.'))),
        Kind::DnsAnswer { rtype, rcode, records, .. } => d.arrow(e, ArrowKind::Reply, dns_answer(rtype, rcode, records)),
        Kind::DnsFailed { reason, .. } => d.arrow(e, ArrowKind::Failed, format!("no answer: {reason}")),
        Kind::DnsChange { domain, records } => {
            let dns = if is_pseudo(&e.from) { "dns" } else { &e.from };
            d.note(dns, dns, NoteKind::Dns, format!("zone {domain} changed ({} records)", records.len()));
        }
        Kind::Queue { queue_id, state, retry_at_ms, .. } => {
            let (kind, text) = match state {
                QueueState::Queued => (NoteKind::Queue, format!("queued as {queue_id}")),
                QueueState::Attempt => (NoteKind::Queue, format!("{queue_id}: delivery attempt")),
                QueueState::Deferred => {
                    let when = retry_at_ms.map(|ms| format!(", retry at {}", clock(ms))).unwrap_or_default();
                    (NoteKind::Retry, format!("{queue_id} deferred{when}"))
                }
                QueueState::Relayed => (NoteKind::Queue, format!("{queue_id} handed on")),
                QueueState::Delivered => (NoteKind::Delivered, format!("{queue_id} delivered")),
                QueueState::Bounced => (NoteKind::Bounce, format!("{queue_id} undeliverable: bounce to the sender")),
                QueueState::Dropped => (NoteKind::Bounce, format!("{queue_id} undeliverable, dropped (no bounce to <>)")),
            };
            d.note(&e.from, &e.from, kind, text);
        }
        Kind::Delivered { mailbox, bytes } => {
            d.note(&e.from, &e.from, NoteKind::Delivered, format!("into {mailbox}'s mailbox ({})", crate::trace::human_bytes(*bytes)))
        }
        Kind::Removed { mailbox, folder, count } => d.note(&e.from, &e.from, NoteKind::Info, format!("{count} removed from {mailbox} {folder}")),
        Kind::HostState { host, up } => {
            d.note(host, host, if *up { NoteKind::Info } else { NoteKind::Failure }, format!("{host} is {}", if *up { "up" } else { "down" }))
        }
        Kind::Failure { reason } if !is_pseudo(&e.from) => d.note(&e.from, &e.from, NoteKind::Failure, reason.clone()),
        Kind::Failure { reason } => d.items.push(Item::Divider { text: cut(reason) }),
        Kind::TlsHandshake { step: HandshakeStep::Finished, .. } => {
            let how = e.tls.as_ref().map(|t| format!("{}, {}", t.version, t.cipher_suite)).unwrap_or_else(|| "TLS".into());
            d.note(&e.from, &e.to, NoteKind::Tls, format!("encrypted from here: {how}"));
        }
        Kind::TlsHandshake { step: HandshakeStep::Failed, detail } => d.note(&e.from, &e.to, NoteKind::Failure, format!("TLS failed: {detail}")),
        Kind::Note if e.from == e.to && !is_pseudo(&e.from) => {
            let auth = ["SPF", "DKIM", "DMARC", "ARC"].iter().any(|p| e.summary.starts_with(&format!("{p}:")));
            d.note(&e.from, &e.from, if auth { NoteKind::Auth } else { NoteKind::Info }, e.summary.clone());
        }
        Kind::Step { .. } => d.items.push(Item::Divider { text: cut(&e.summary) }),
        _ => {}
    }
}

/// "MX 10 mx1.example.org, MX 20 mx2.example.org" or "NXDOMAIN".
fn dns_answer(rtype: &str, rcode: &str, records: &[String]) -> String {
    if records.is_empty() {
        return match rcode {
            "No Error" | "NOERROR" => format!("no {rtype} records"),
            "Non-Existent Domain" => "NXDOMAIN: no such name".into(),
            other => other.to_string(),
        };
    }
    // Zone-file form: "owner ttl class type rdata...": keep "type rdata".
    let short: Vec<String> = records
        .iter()
        .take(2)
        .map(|r| {
            let fields: Vec<&str> = r.split_whitespace().collect();
            fields.get(3..).map(|f| f.join(" ")).unwrap_or_else(|| r.clone()).trim_end_matches('.').to_string()
        })
        .collect();
    let more = if records.len() > 2 { format!(" (+{} more)", records.len() - 2) } else { String::new() };
    format!("{}{more}", short.join(", "))
}

/// Simulated time as the story prints it: "00:15:00".
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Cuts `text` to [`MAX_LABEL`] characters.
pub fn cut(text: &str) -> String {
    cut_to(text, MAX_LABEL)
}

/// Cuts `text` to at most `max` characters, ending in "…" if it was longer.
pub fn cut_to(text: &str, max: usize) -> String {
    let text = text.replace(['\r', '\n', '\t'], " ");
    if text.chars().count() <= max {
        return text;
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::trace::{Draft, MessageRef};

    /// A small story: a submission with a body, a DNS question, a queue
    /// and a delivery, and one unrelated message's hop.
    pub(crate) fn story() -> Vec<Event> {
        let m = Some(MessageRef { id: "1@school.test".into(), label: "\"Hi\" (alice → bob)".into() });
        let other = Some(MessageRef { id: "2@school.test".into(), label: "other".into() });
        let drafts = vec![
            Draft::new("world", "world", Protocol::Sim, Kind::WorldUp, "the world of \"Alice writes to Bob\" is up"),
            Draft::new("script", "script", Protocol::Sim, Kind::Step { index: 0, action: "send".into() }, "step 1: alice-laptop sends"),
            Draft::new("alice-laptop", "smtp.school.test", Protocol::Smtp, Kind::Connect, "connects").session(2),
            Draft::new("smtp.school.test", "alice-laptop", Protocol::Smtp, Kind::Line { direction: Direction::ToClient, line: "220 hi".into() }, "").session(2),
            Draft::new("alice-laptop", "smtp.school.test", Protocol::Smtp, Kind::Line { direction: Direction::ToServer, line: "MAIL FROM:<a@b>".into() }, "")
                .session(2)
                .message(m.clone()),
            Draft::new(
                "smtp.school.test",
                "alice-laptop",
                Protocol::Smtp,
                Kind::Line { direction: Direction::ToClient, line: "250-first\n250 second".into() },
                "",
            )
            .session(2),
            Draft::new(
                "alice-laptop",
                "smtp.school.test",
                Protocol::Smtp,
                Kind::Data { direction: Direction::ToServer, bytes: 5_000_000, lines: 70_000, preview: String::new() },
                "",
            )
            .session(2)
            .message(m.clone()),
            Draft::new(
                "smtp.school.test",
                "smtp.school.test",
                Protocol::Smtp,
                Kind::Queue { queue_id: "SMTP-1".into(), state: QueueState::Deferred, recipients: vec![], retry_at_ms: Some(900_000) },
                "",
            )
            .message(m.clone()),
            Draft::new(
                "smtp.school.test",
                "dns",
                Protocol::Dns,
                Kind::DnsQuery { name: "example.org.".into(), rtype: "MX".into(), transport: "UDP".into() },
                "",
            )
            .session(3)
            .message(m.clone()),
            Draft::new(
                "dns",
                "smtp.school.test",
                Protocol::Dns,
                Kind::DnsAnswer {
                    name: "example.org.".into(),
                    rtype: "MX".into(),
                    rcode: "No Error".into(),
                    records: vec!["example.org. 300 IN MX 10 mx1.example.org.".into(), "example.org. 300 IN MX 20 mx2.example.org.".into()],
                },
                "",
            )
            .session(3)
            .message(m.clone()),
            Draft::new("mx1.example.org", "mx1.example.org", Protocol::Smtp, Kind::Note, "SPF: 127.0.0.2 is allowed → pass").message(m.clone()),
            Draft::new("bob-phone", "mx1.example.org", Protocol::Imap, Kind::Line { direction: Direction::ToServer, line: "a1 LOGIN".into() }, "")
                .session(9)
                .message(other),
        ];
        drafts
            .into_iter()
            .enumerate()
            .map(|(seq, d)| Event {
                seq: seq as u64,
                sim_ms: 0,
                wall_ms: 0,
                from: d.from,
                to: d.to,
                protocol: d.protocol,
                kind: d.kind,
                summary: d.summary,
                explain: None,
                message: d.message,
                session: d.session,
                tls: None,
            })
            .collect()
    }

    #[test]
    fn participants_in_story_order_and_one_arrow_per_hop() {
        let d = build(&story(), None).unwrap();
        assert_eq!(d.title, "Alice writes to Bob");
        assert_eq!(d.participants, ["alice-laptop", "smtp.school.test", "dns", "mx1.example.org", "bob-phone"]);
        let arrows: Vec<&str> = d.items.iter().filter_map(|i| if let Item::Arrow { text, .. } = i { Some(text.as_str()) } else { None }).collect();
        assert_eq!(
            arrows,
            [
                "connects (SMTP)",
                "220 hi",
                "MAIL FROM:<a@b>",
                "250-first …",
                "message (DATA): 4.8 MB, 70000 lines",
                "MX example.org?",
                "MX 10 mx1.example.org, MX 20 mx2.example.org",
                "a1 LOGIN"
            ]
        );
        assert!(matches!(d.items[0], Item::Divider { .. }), "a step is a divider");
        let notes: Vec<(NoteKind, &str)> =
            d.items.iter().filter_map(|i| if let Item::Note { kind, text, .. } = i { Some((*kind, text.as_str())) } else { None }).collect();
        assert_eq!(notes, [(NoteKind::Retry, "SMTP-1 deferred, retry at 00:15:00"), (NoteKind::Auth, "SPF: 127.0.0.2 is allowed → pass")]);
    }

    #[test]
    fn one_message_keeps_its_sessions_and_drops_the_rest() {
        let d = build(&story(), Some("<1@school.test>")).unwrap();
        assert_eq!(d.title, "\"Hi\" (alice → bob)");
        assert!(!d.participants.iter().any(|p| p == "bob-phone"), "the other message's hop is left out");
        assert!(d.items.iter().any(|i| matches!(i, Item::Arrow { text, .. } if text == "220 hi")), "the greeting of its session stays");
        assert!(!d.items.iter().any(|i| matches!(i, Item::Divider { .. })), "steps name no message");
    }

    #[test]
    fn unknown_message_names_the_known_ones() {
        let err = build(&story(), Some("nope")).unwrap_err();
        assert_eq!(err, ModelError::NoSuchMessage { id: "nope".into(), known: vec!["1@school.test".into(), "2@school.test".into()] });
        assert!(err.to_string().contains("1@school.test, 2@school.test"));
        assert_eq!(build(&story()[..2], None).unwrap_err(), ModelError::Empty);
    }

    #[test]
    fn labels_are_cut() {
        assert_eq!(cut_to("abcdef", 4), "abc…");
        assert_eq!(cut_to("a\r\nb", 10), "a  b");
        assert_eq!(cut(&"x".repeat(500)).chars().count(), MAX_LABEL);
    }
}
