//! `Event`: one thing that happened on the simulated network, as the class
//! sees it. Every line that crosses a wire, every DNS question and answer,
//! every step of the scenario becomes one event.
//!
//! The JSON form is stable (it is the `--record` file format and what the
//! web page reads): the fields below plus a `kind` tag whose extra fields
//! depend on the kind, e.g.
//!
//! ```json
//! {"seq":7,"sim_ms":0,"wall_ms":1764130000000,"from":"smtp.school.test","to":"dns",
//!  "protocol":"dns","kind":"dns_query","name":"example.org","rtype":"MX",
//!  "summary":"smtp.school.test asks DNS: which servers take mail for example.org?"}
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Which protocol an event belongs to (the colour on screen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Dns,
    Smtp,
    Pop3,
    Imap,
    /// The simulation itself: steps, notes, hosts going up or down.
    Sim,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Dns => "DNS",
            Protocol::Smtp => "SMTP",
            Protocol::Pop3 => "POP3",
            Protocol::Imap => "IMAP",
            Protocol::Sim => "SIM",
        }
    }
}

/// Which way a line travels on a client–server connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to server: shown as `C:` in transcripts.
    ToServer,
    /// Server to client: shown as `S:`.
    ToClient,
}

impl Direction {
    pub fn prefix(self) -> &'static str {
        match self {
            Direction::ToServer => "C:",
            Direction::ToClient => "S:",
        }
    }
}

/// The states of a message in a mail server's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Accepted and waiting to be sent on.
    Queued,
    /// A delivery attempt starts.
    Attempt,
    /// Could not be delivered now; will retry.
    Deferred,
    /// Handed to the next server.
    Relayed,
    /// Put into a local mailbox.
    Delivered,
    /// Undeliverable: a bounce goes back to the sender.
    Bounced,
    /// Undeliverable and no bounce possible (the sender was `<>`).
    Dropped,
}

/// The message an event concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The Message-ID header, without angle brackets.
    pub id: String,
    /// A short label for people, e.g. "Hi (alice → bob)".
    pub label: String,
}

/// What protects a hop: present on every event of a connection once TLS
/// is up (`"tls": {...}`), absent for a plaintext hop — that is how the
/// page knows where to draw the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// "TLSv1.3" or "TLSv1.2".
    pub version: String,
    /// e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher_suite: String,
    /// The server certificate's subject, e.g. "CN=mx1.example.org, O=mailflow world".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate: String,
}

/// The steps of a TLS handshake, as a student follows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeStep {
    /// The client says hello: the TLS versions and ciphers it knows, and
    /// which server name it wants.
    ClientHello,
    /// The server shows its certificate: who it is, signed by whom.
    Certificate,
    /// Both sides have agreed on fresh keys (only they know them).
    KeysAgreed,
    /// Done: from now on every byte is encrypted.
    Finished,
    /// The handshake broke off (an untrusted certificate, a client that
    /// spoke plaintext to a TLS port, ...).
    Failed,
}

/// One TLS record as an eavesdropper sees it on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRecord {
    /// "handshake", "change_cipher_spec", "alert", "application_data".
    pub content_type: String,
    /// The record's length (after its 5-byte header).
    pub length: u16,
    /// Its first bytes in hex: ciphertext, once the handshake is done.
    pub hex: String,
}

/// What happened. Serialized flat into the event with a `kind` tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// The world is built and its servers listen.
    WorldUp,
    /// A scenario step begins.
    Step { index: usize, action: String },
    /// Narration for the class.
    Note,
    /// A protocol line (without its CRLF). Secrets are masked.
    Line { direction: Direction, line: String },
    /// A block of message content (e.g. an SMTP DATA body), traced as one
    /// hop so a 5 MB attachment is one event, not 70,000.
    Data { direction: Direction, bytes: u64, lines: u64, preview: String },
    /// A TCP connection opened.
    Connect,
    /// A TCP connection closed.
    Disconnect,
    /// A TCP connection could not be made (refused, timed out).
    ConnectFailed { reason: String },
    /// A DNS question.
    DnsQuery { name: String, rtype: String, transport: String },
    /// A DNS answer: `rcode` is NOERROR, NXDOMAIN, ...; `records` in
    /// zone-file form ("example.org. 300 IN MX 10 mx1.example.org.").
    DnsAnswer { name: String, rtype: String, rcode: String, records: Vec<String> },
    /// A DNS question that got no answer at all.
    DnsFailed { name: String, rtype: String, reason: String },
    /// A zone was changed while the world runs.
    DnsChange { domain: String, records: Vec<String> },
    /// A mail server's queue changed: one moment in a message's stay at a
    /// server (queued, attempt, deferred, relayed, delivered, bounced).
    Queue {
        queue_id: String,
        state: QueueState,
        recipients: Vec<String>,
        /// For `deferred`: when the next attempt is due (simulated ms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at_ms: Option<u64>,
    },
    /// A message landed in a mailbox.
    Delivered { mailbox: String, bytes: u64 },
    /// Messages left a mailbox for good (POP3 QUIT, IMAP EXPUNGE).
    Removed { mailbox: String, folder: String, count: u64 },
    /// A host was switched off or on.
    HostState { host: String, up: bool },
    /// Something went wrong that a student should see.
    Failure { reason: String },
    /// The scenario's steps are done and nothing is pending.
    Finished,
    /// A step of a TLS handshake (see [`HandshakeStep`]); `detail` names
    /// what was agreed or shown (versions, certificate, cipher).
    TlsHandshake {
        step: HandshakeStep,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// The bytes below TLS, as an eavesdropper on the link captures them:
    /// record headers and the first bytes of each record. Kept short: a
    /// few records per event and a budget per connection (`more` counts
    /// the records of this read or write not listed).
    TlsRecords {
        direction: Direction,
        records: Vec<TlsRecord>,
        #[serde(default, skip_serializing_if = "is_zero")]
        more: u64,
    },
    /// A quiz step asks the class (see `world::quiz`): the question and
    /// its choices, never the answer, since every viewer gets this event.
    QuizAsked { quiz: usize, question: String, choices: Vec<String> },
    /// The teacher revealed the answer (`answer` is an index into the
    /// choices); `counts` has the votes for each choice.
    QuizRevealed { quiz: usize, answer: usize, explanation: String, counts: Vec<u64>, votes: u64 },
    /// A server waits before answering a failed login (throttling): the
    /// delay grows with each failure. `simulated`: on the world's clock
    /// (its own devices) rather than real time (outside programs).
    LoginDelay { delay_ms: u64, simulated: bool },
    /// Too many failed logins: an account (`account`) or a client address
    /// (`client`) is refused until `until_ms` (on the clock `simulated`
    /// names), after `failures` failures.
    AccountLocked {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
        failures: u32,
        until_ms: u64,
        simulated: bool,
    },
    /// What an eavesdropper on the link reads of a plaintext hop: the raw
    /// bytes (as text, secrets NOT masked — that is the lesson) and a
    /// login it decoded. Only emitted where the scenario puts an
    /// eavesdropper on the link, never otherwise.
    Eavesdropped {
        direction: Direction,
        raw: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        captured: Option<Captured>,
    },
    /// A man in the middle changed a line on its way (STARTTLS stripping):
    /// what the server sent, and what the client got instead.
    Tampered { direction: Direction, original: String, forwarded: String },
    /// A password-guessing attack ended (`world/attack.rs`): how, after how
    /// many guesses the server answered, in how much simulated time.
    Attack { target: String, outcome: AttackOutcome, guesses: u32, sim_seconds: u64 },
}

/// A login an eavesdropper read off a plaintext hop (see `wire::eavesdrop`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// How it was sent: "AUTH PLAIN", "AUTH LOGIN", "IMAP LOGIN",
    /// "IMAP AUTHENTICATE PLAIN", "POP3 USER/PASS".
    pub mechanism: String,
    pub user: String,
    pub password: String,
}

/// How a guessing attack ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackOutcome {
    /// A guess worked: the attacker is in.
    Cracked,
    /// The server locked the account (or the attacker's address): the
    /// attack stalls, whatever it tries next.
    Locked,
    /// The password was guessed, but it opens nothing: the account has
    /// two-factor sign-in and mail logins need an app password.
    AppPasswordRequired,
    /// Every password of the list was wrong.
    Exhausted,
    /// The attacker's budget (`max_tries`, `budget`) ran out first.
    GaveUp,
    /// The server would not let it try (no connection, TLS required, ...).
    Blocked,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One numbered event of the trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the trace, from 0, with no gaps.
    pub seq: u64,
    /// Simulated time since the scenario started, in milliseconds.
    pub sim_ms: u64,
    /// Real time, milliseconds since 1970 (UTC).
    pub wall_ms: u64,
    /// Node names: a host, a client, "dns", or an outside address.
    pub from: String,
    pub to: String,
    pub protocol: Protocol,
    #[serde(flatten)]
    pub kind: Kind,
    /// One line a student understands.
    pub summary: String,
    /// Why this matters, for key moments of the lesson.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageRef>,
    /// The connection (or DNS exchange) this event belongs to, so a
    /// transcript can be shown per session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    /// Set when the hop is encrypted (see [`TlsInfo`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Arc<TlsInfo>>,
}

/// An event before the trace numbers and timestamps it.
#[derive(Clone, Debug)]
pub struct Draft {
    pub from: String,
    pub to: String,
    pub protocol: Protocol,
    pub kind: Kind,
    pub summary: String,
    pub explain: Option<String>,
    pub message: Option<MessageRef>,
    pub session: Option<u64>,
    pub tls: Option<Arc<TlsInfo>>,
}

impl Draft {
    pub fn new(from: impl Into<String>, to: impl Into<String>, protocol: Protocol, kind: Kind, summary: impl Into<String>) -> Self {
        Draft { from: from.into(), to: to.into(), protocol, kind, summary: summary.into(), explain: None, message: None, session: None, tls: None }
    }

    pub fn explain(mut self, text: impl Into<String>) -> Self {
        self.explain = Some(text.into());
        self
    }

    pub fn explain_opt(mut self, text: Option<String>) -> Self {
        if text.is_some() {
            self.explain = text;
        }
        self
    }

    pub fn message(mut self, message: Option<MessageRef>) -> Self {
        self.message = message;
        self
    }

    pub fn session(mut self, session: u64) -> Self {
        self.session = Some(session);
        self
    }

    /// Marks the hop as encrypted (or not, with `None`).
    pub fn tls(mut self, tls: Option<Arc<TlsInfo>>) -> Self {
        self.tls = tls;
        self
    }
}
