//! The shape of a scenario file. Field docs become the JSON Schema that
//! editors show (`mailflow schema`), so they are written for teachers.

use std::net::{IpAddr, Ipv4Addr};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SimDuration;

/// A whole lesson: the network, the people, and what happens when.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in the banner and as the page title.
    pub title: String,
    /// One or two sentences for the class.
    #[serde(default)]
    pub description: String,
    /// Hints for the teacher: where to pause, what to ask.
    #[serde(default)]
    pub teacher_notes: String,
    /// DNS zones, by domain name (e.g. "example.org").
    pub domains: IndexMap<String, Domain>,
    /// Mail servers, by host name (e.g. "mx1.example.org"). Each gets its
    /// own loopback address, published as its A record.
    pub hosts: IndexMap<String, Host>,
    /// Mail accounts, by address (e.g. "bob@example.org").
    #[serde(default)]
    pub users: IndexMap<String, User>,
    /// People's devices (mail programs), by name (e.g. "bob-phone").
    #[serde(default)]
    pub clients: IndexMap<String, Client>,
    /// What happens, in simulated time.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Queue and retry behaviour of every mail server.
    #[serde(default)]
    pub settings: Settings,
    /// For the lesson index: who the lesson is for (`first`, `beginner`,
    /// `intermediate`, `advanced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// For the lesson index: about how long the lesson takes in class, in
    /// minutes, with its questions and talk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// For the lesson index: what the class learns, a few words each
    /// (e.g. "MX records", "POP3 vs IMAP").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teaches: Vec<String>,
    /// Someone reading the network: on some links (pairs of node names)
    /// or on all of them. They read every plaintext hop — logins decoded
    /// to the password — and of a TLS hop only the encrypted records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eavesdropper: Option<Eavesdropper>,
    /// A man in the middle on these links (pairs of node names, e.g. a
    /// sending server and an MX) removes STARTTLS from the SMTP EHLO
    /// reply: a sender using TLS only when offered goes on in plaintext;
    /// one sending to a domain with `require_tls` refuses and keeps the mail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strip_starttls: Vec<[String; 2]>,
}

/// World-wide settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub retry: RetrySettings,
    /// TLS for every host that does not say otherwise.
    #[serde(default)]
    pub tls: TlsSettings,
    /// Login throttling on every host: delays and lockouts after failed
    /// logins.
    #[serde(default)]
    pub throttle: ThrottleSettings,
}

/// Whether a host offers TLS (encryption) to its clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsPolicy {
    /// TLS is offered (STARTTLS, and the implicit-TLS ports if listed);
    /// a client may still talk without it.
    #[default]
    Offered,
    /// Nothing but STARTTLS, CAPABILITY and goodbye before TLS: no login,
    /// no mail, until the connection is encrypted.
    Required,
    /// No TLS at all: everything crosses the wire readable.
    Off,
}

/// A certificate with something wrong, for lessons about what a careful
/// client refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertFault {
    /// Made out to another name than the host's.
    WrongName,
    /// Its validity ended a month ago.
    Expired,
    /// Signed by a certificate authority nobody in the world trusts.
    UnknownCa,
}

/// TLS settings: world-wide under `settings`, or for one host.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// `offered` (default), `required` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<TlsPolicy>,
    /// Allow logins (IMAP LOGIN, POP3 USER/PASS) before TLS, for the "why
    /// TLS" lesson. With `required` this must stay false, with `off` true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_login: Option<bool>,
    /// Present a broken certificate (host only): `wrong_name`, `expired`
    /// or `unknown_ca`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertFault>,
}

impl TlsSettings {
    /// The policy when neither the host nor `settings.tls` sets one.
    pub const DEFAULT_POLICY: TlsPolicy = TlsPolicy::Offered;
    /// Whether a host that offers TLS still allows logins before it, when
    /// nothing says otherwise: no, as RFC 8314 §4 and RFC 2595 §3.1 advise
    /// (the world's own devices use STARTTLS/STLS or the implicit-TLS
    /// ports). A "why TLS" lesson sets `plaintext_login: true`.
    pub const DEFAULT_PLAINTEXT_LOGIN: bool = false;

    /// This host's policy and login rule: the host's own settings first,
    /// then the world's (`settings.tls`), then the defaults above.
    pub fn effective(host: Option<&TlsSettings>, world: &TlsSettings) -> (TlsPolicy, bool) {
        let policy = host.and_then(|h| h.policy).or(world.policy).unwrap_or(Self::DEFAULT_POLICY);
        let plaintext = host.and_then(|h| h.plaintext_login).or(world.plaintext_login);
        let plaintext = match policy {
            TlsPolicy::Off => true,
            TlsPolicy::Required => false,
            TlsPolicy::Offered => plaintext.unwrap_or(Self::DEFAULT_PLAINTEXT_LOGIN),
        };
        (policy, plaintext)
    }
}

/// When a server retries a message it could not deliver (temporary
/// failure: host down, 4xx reply), and when it gives up and bounces it.
/// The defaults follow Postfix: first retry after 5 minutes, the wait
/// doubling up to an hour, and giving up after 5 days.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    #[serde(default = "RetrySettings::default_first")]
    pub first: SimDuration,
    #[serde(default = "RetrySettings::default_factor")]
    pub factor: f64,
    #[serde(default = "RetrySettings::default_max_delay")]
    pub max_delay: SimDuration,
    #[serde(default = "RetrySettings::default_give_up_after")]
    pub give_up_after: SimDuration,
}

impl RetrySettings {
    fn default_first() -> SimDuration {
        SimDuration::from_secs(300)
    }
    fn default_factor() -> f64 {
        2.0
    }
    fn default_max_delay() -> SimDuration {
        SimDuration::from_secs(3600)
    }
    fn default_give_up_after() -> SimDuration {
        SimDuration::from_secs(5 * 86_400)
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            first: Self::default_first(),
            factor: Self::default_factor(),
            max_delay: Self::default_max_delay(),
            give_up_after: Self::default_give_up_after(),
        }
    }
}

/// One DNS zone.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// The zone's records. Hosts inside the domain get A records
    /// automatically; list only what the lesson is about.
    #[serde(default)]
    pub records: Vec<RecordSpec>,
    /// The DKIM key this domain's mail server signs outgoing mail with
    /// (RFC 6376): "ed25519" (small and fast, RFC 8463) or "rsa2048" (what
    /// most of the Internet still uses), or "none" for a domain that does
    /// not sign. By default a domain whose mailboxes live on a host gets an
    /// Ed25519 key. The key is made when the world starts (kept under
    /// `--data`), and its public half is published in DNS as
    /// `mailflow._domainkey.<domain>` automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<DkimKey>,
    /// Mail for this domain must travel encrypted (STARTTLS, with a
    /// certificate the sender can verify for the MX host's name), as a
    /// domain can ask with MTA-STS (RFC 8461) or a sender with REQUIRETLS
    /// (RFC 8689). A sending server then never falls back to plaintext:
    /// if the MX offers no STARTTLS, or its certificate is wrong, the
    /// message stays queued. By default TLS is used when offered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tls: bool,
}

/// The kinds of DKIM key a domain can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DkimKey {
    /// Ed25519-SHA256 (RFC 8463): a 32-byte public key.
    Ed25519,
    /// RSA-SHA256 with a 2048-bit key (RFC 6376, RFC 8301).
    Rsa2048,
    /// Do not sign this domain's mail.
    None,
}

/// The record types a scenario may publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum RecordKind {
    MX,
    A,
    AAAA,
    TXT,
    CNAME,
}

/// One DNS record. Which fields are needed depends on `type`:
/// MX needs `preference` and `exchange`, A and AAAA need `address`,
/// TXT needs `text`, CNAME needs `target`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    #[serde(rename = "type")]
    pub kind: RecordKind,
    /// The owner name: absent or "@" for the domain itself, a relative name
    /// like "mx1" or "_dmarc", or a full name inside the domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MX: lower is tried first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<u16>,
    /// MX: the mail server's host name, or "." for a null MX (RFC 7505:
    /// "this domain accepts no mail").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    /// A or AAAA: the address. A records must be loopback (127.x.x.x):
    /// mailflow never sends traffic off this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// TXT: the text, e.g. "v=spf1 mx -all".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// CNAME: the name this one is an alias of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Time to live in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

/// The services a mail host can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// SMTP between servers (port 25): receives mail for the host's domains.
    Smtp,
    /// SMTP submission (port 587): users' devices hand in outgoing mail, with AUTH.
    Submission,
    /// IMAP (port 143): mail stays on the server, seen from many devices.
    Imap,
    /// POP3 (port 110): mail is downloaded and usually deleted.
    Pop3,
    /// Submission over implicit TLS (port 465, RFC 8314).
    Submissions,
    /// IMAP over implicit TLS (port 993): encrypted from the first byte.
    Imaps,
    /// POP3 over implicit TLS (port 995).
    Pop3s,
}

impl Service {
    pub const ALL: [Service; 7] = [Service::Smtp, Service::Submission, Service::Imap, Service::Pop3, Service::Submissions, Service::Imaps, Service::Pop3s];

    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Imap => "imap",
            Service::Pop3 => "pop3",
            Service::Submissions => "submissions",
            Service::Imaps => "imaps",
            Service::Pop3s => "pop3s",
        }
    }

    /// Does this service speak TLS from the first byte (RFC 8314)?
    pub fn implicit_tls(self) -> bool {
        matches!(self, Service::Submissions | Service::Imaps | Service::Pop3s)
    }

    /// The same service without implicit TLS (imaps → imap).
    pub fn plain(self) -> Service {
        match self {
            Service::Submissions => Service::Submission,
            Service::Imaps => Service::Imap,
            Service::Pop3s => Service::Pop3,
            other => other,
        }
    }

    /// The well-known port (RFC 5321, RFC 6409, RFC 3501, RFC 1939, RFC 8314).
    pub fn standard_port(self) -> u16 {
        match self {
            Service::Smtp => 25,
            Service::Submission => 587,
            Service::Imap => 143,
            Service::Pop3 => 110,
            Service::Submissions => 465,
            Service::Imaps => 993,
            Service::Pop3s => 995,
        }
    }
}

/// A mail server.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// What it runs.
    pub services: Vec<Service>,
    /// Domains whose mailboxes live here (it is their final destination).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Domains it queues mail for when their primary server is down.
    #[serde(default)]
    pub backup_for: Vec<String>,
    /// A fixed address; normally one is given from the world's subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// Start switched off (a step can bring it up).
    #[serde(default)]
    pub down: bool,
    /// Greylisting: the first delivery attempt of a (sender address,
    /// recipient, client address) gets "451 4.7.1 try again later"; a retry
    /// after this long passes. Spam robots rarely retry; real servers do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greylist: Option<SimDuration>,
    /// A slow server: it waits this long before greeting. Senders give up
    /// after 5 minutes (RFC 5321 §4.5.3.2) and try the next MX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<SimDuration>,
    /// Largest message accepted, in bytes (default 10 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<usize>,
    /// Most recipients per message (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_recipients: Option<usize>,
    /// TLS on this host's services (overrides `settings.tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// Check who really sent the mail arriving on port 25: SPF (RFC 7208),
    /// DKIM (RFC 6376) and DMARC (RFC 7489), with `Authentication-Results`
    /// added and the sender's DMARC policy applied (reject, Junk, or
    /// deliver). On by default; `false` for the "before" half of a lesson,
    /// where a forged sender gets through unquestioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_checks: Option<bool>,
    /// A fault for the DKIM lesson: this host changes the body of every
    /// message it relays on to another server (it adds a line at the end,
    /// as a gateway that stamps "scanned" footers does), so a DKIM
    /// signature made before it no longer matches.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tamper: bool,
}

impl Host {
    /// Does this host check SPF, DKIM and DMARC on arriving mail?
    pub fn checks_senders(&self) -> bool {
        self.auth_checks.unwrap_or(true)
    }
}

/// A mail account.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub password: String,
    /// The host that keeps this user's mailbox; by default the host that
    /// lists the user's domain in `domains`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Forward this user's mail to another address (at another domain):
    /// the home host sends each arriving message on, as it came, from its
    /// own address and with the original envelope sender (a forwarder
    /// without SRS). SPF then fails at the next hop; DKIM survives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_to: Option<String>,
    /// The password is weak on purpose (short enough to type in class, or
    /// the lesson is about guessing it): `mailflow check` does not warn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weak_on_purpose: bool,
    /// Two-factor sign-in: the web sign-in asks for a code from the
    /// user's authenticator as well, and SMTP, IMAP and POP3 (which cannot
    /// ask for a code) refuse the main password: only app passwords open
    /// them, as at real providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_factor: Option<TwoFactor>,
    /// App passwords by name (one per device, e.g. `"bob-phone"`): each
    /// opens the mailbox over SMTP, IMAP and POP3 and can be revoked alone.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub app_passwords: IndexMap<String, String>,
}

/// How a device reads mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FetchProtocol {
    Pop3,
    Imap,
}

/// A person's device running a mail program.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// Whose device it is (an address from `users`).
    pub user: String,
    /// The host it submits outgoing mail to (must run `submission`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_to: Option<String>,
    /// How it reads mail, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchProtocol>,
    /// The host it reads mail from; by default the user's home host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_from: Option<String>,
    /// Send without a mail server of its own: the device asks DNS for each
    /// recipient domain's MX and delivers straight to it on port 25, with
    /// no login, as spam robots do. Port 25 takes mail for its own users
    /// from anyone, so only SPF, DKIM and DMARC can tell a forged sender
    /// (the spoofing lessons). Used instead of `submit_to`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub direct: bool,
    /// The name of one of the user's `app_passwords`: the device logs in
    /// with it instead of the main password (a two-factor account's
    /// devices need one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_password: Option<String>,
    /// Does its mail program use TLS (STARTTLS, or the implicit-TLS
    /// ports) when the server offers it? Yes by default; `false` is an old
    /// program that sends the password in plaintext wherever the server
    /// still allows it (`plaintext_login`), for the "why TLS" lesson.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
}

/// One timed step. Give `at` and exactly one action (`send`, `fetch`,
/// `lookup`, `dns`, `down`, `up`, `note`, `quiz`, `attack`, `revoke`).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// When it happens, in simulated time from the start.
    pub at: SimDuration,
    /// A sentence for the class, shown when the step starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<String>,
    /// A device sends a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendStep>,
    /// A device fetches its user's mail (POP3 or IMAP, as the client says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchStep>,
    /// A host or device asks DNS a question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<LookupStep>,
    /// Replace a domain's records while the world runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsStep>,
    /// Switch a host off: its servers refuse connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
    /// Switch a host on again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<String>,
    /// Only narrate (the `explain` text or this text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Ask the class a question: the story pauses until the teacher
    /// reveals the answer (live and step pace; at `--fast` it is revealed
    /// at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiz: Option<QuizStep>,
    /// A password-guessing attack on one account (see [`AttackStep`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<AttackStep>,
    /// The owner revokes one of their app passwords (a lost device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<RevokeStep>,
}

/// A message written on a device and submitted to its mail server.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// The device (a name from `clients`).
    pub client: String,
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// Blind copies: recipients in the envelope only, in no header.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// The sender the message claims: written in the `From:` header and
    /// given as the envelope sender (`MAIL FROM`). By default the device's
    /// own user; another address is a forgery (the spoofing lessons), which
    /// nothing in SMTP itself prevents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A device reads mail. POP3 downloads and, unless `keep` is true, deletes
/// from the server; IMAP reads new messages, marks them seen, and leaves
/// them on the server, optionally flagging, moving or deleting them.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchStep {
    /// The device (a name from `clients`, with `fetch` set).
    pub client: String,
    /// POP3: leave the messages on the server ("leave a copy on server").
    #[serde(default)]
    pub keep: bool,
    /// IMAP: also flag the fetched messages (\Flagged).
    #[serde(default)]
    pub flag: bool,
    /// IMAP: move the fetched messages to this folder (created if missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<String>,
    /// IMAP: delete the fetched messages (\Deleted, then EXPUNGE).
    #[serde(default)]
    pub delete: bool,
    /// IMAP: stay connected and wait (IDLE) this long for news from other
    /// devices, in simulated time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<SimDuration>,
}

/// A generated attachment (its bytes are a repeatable pattern).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// File name, e.g. "photo.jpg".
    pub name: String,
    /// Size in bytes.
    pub size: usize,
}

impl Step {
    /// The names of the actions this step sets (valid steps set one).
    pub fn actions(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.send.is_some() {
            names.push("send");
        }
        if self.fetch.is_some() {
            names.push("fetch");
        }
        if self.lookup.is_some() {
            names.push("lookup");
        }
        if self.dns.is_some() {
            names.push("dns");
        }
        if self.down.is_some() {
            names.push("down");
        }
        if self.up.is_some() {
            names.push("up");
        }
        if self.note.is_some() {
            names.push("note");
        }
        if self.quiz.is_some() {
            names.push("quiz");
        }
        if self.attack.is_some() {
            names.push("attack");
        }
        if self.revoke.is_some() {
            names.push("revoke");
        }
        names
    }
}

/// The questions a lookup step can ask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum LookupKind {
    /// Which servers take mail for this domain? Done as a mail server does
    /// it: MX, then the A record if there is no MX, and the address of
    /// each exchange.
    #[default]
    MX,
    A,
    AAAA,
    TXT,
    CNAME,
}

/// A DNS question asked by a host or a device.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupStep {
    /// Who asks: a host or a client name.
    pub from: String,
    /// The name asked about.
    pub name: String,
    /// The record type (default MX).
    #[serde(default, rename = "type")]
    pub kind: LookupKind,
}

/// New records for one domain, replacing the old ones.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsStep {
    pub domain: String,
    pub records: Vec<RecordSpec>,
}

impl Scenario {
    /// What `client`'s device types as its password: its app password if
    /// it has one, else the user's main password.
    pub fn device_password(&self, client: &Client) -> String {
        let user = self.users.get(&client.user);
        let app = client.app_password.as_ref().and_then(|name| user?.app_passwords.get(name));
        app.or(user.map(|u| &u.password)).cloned().unwrap_or_default()
    }

    /// The host that keeps `address`'s mailbox: the user's `home`, or the
    /// host whose `domains` include the address's domain.
    pub fn home_host(&self, address: &str) -> Option<String> {
        if let Some(home) = self.users.get(address).and_then(|u| u.home.clone()) {
            return Some(home);
        }
        let domain = address.rsplit_once('@')?.1;
        self.hosts.iter().find(|(_, h)| h.domains.iter().any(|d| d == domain)).map(|(n, _)| n.clone())
    }
}

/// A question for the class (see `world::quiz`). Students answer on their
/// own page; only the teacher's page sees the answer before it is revealed.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuizStep {
    /// The question, e.g. "Which server does smtp.school.test try first?".
    pub question: String,
    /// Two to five possible answers, each shown as a button.
    pub choices: Vec<String>,
    /// The right choice, written exactly as in `choices`.
    pub answer: String,
    /// Why it is right: shown to everyone when the teacher reveals it.
    #[serde(default)]
    pub explanation: String,
}

impl QuizStep {
    /// The position of the right choice in `choices` (valid quizzes have one).
    pub fn answer_index(&self) -> Option<usize> {
        self.choices.iter().position(|c| *c == self.answer)
    }
}

/// Who a lesson is for, in the lesson index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The lesson to start with: no knowledge of email needed.
    First,
    /// Knows what an email address and a mail program are.
    Beginner,
    /// Knows the hops of a message (submission, MX, relay, mailbox).
    Intermediate,
    /// Reads protocol lines and DNS records with ease.
    Advanced,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::First => "first",
            Level::Beginner => "beginner",
            Level::Intermediate => "intermediate",
            Level::Advanced => "advanced",
        }
    }
}

/// A guessing attack: a robot on `from` tries the most common passwords
/// (a list shipped with mailflow, most common first) against `target`'s
/// account, over a real login (IMAP LOGIN, POP3 USER/PASS or SMTP AUTH),
/// one after another, until one works, the list ends, the server locks the
/// account, or the attacker's budget (`max_tries`, `budget`) runs out.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttackStep {
    /// The attacker's machine: a client or a host of the scenario.
    pub from: String,
    /// The account attacked (an address from `users`).
    pub target: String,
    /// The server attacked; by default the target's home host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// How it logs in: `imap` (default), `pop3` or `smtp` (submission AUTH).
    #[serde(default)]
    pub protocol: AttackProtocol,
    /// Simulated time between two guesses (default 1s: a patient robot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<SimDuration>,
    /// Stop after this many guesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tries: Option<u32>,
    /// Stop when this much simulated time has passed since the first guess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<SimDuration>,
    /// Try these instead of the shipped list: e.g. the password a phishing
    /// page stole, to show what it opens (and what it does not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passwords: Vec<String>,
}

/// The login an attack uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttackProtocol {
    /// IMAP LOGIN (port 143).
    #[default]
    Imap,
    /// POP3 USER and PASS (port 110).
    Pop3,
    /// SMTP AUTH PLAIN on the submission port (587).
    Smtp,
}

impl AttackProtocol {
    /// The service the attack connects to.
    pub fn service(self) -> Service {
        match self {
            AttackProtocol::Imap => Service::Imap,
            AttackProtocol::Pop3 => Service::Pop3,
            AttackProtocol::Smtp => Service::Submission,
        }
    }
}

/// A user's second factor: the shared secret of a time-based one-time
/// password (TOTP, RFC 6238), as an authenticator app stores it after
/// scanning the provider's QR code.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwoFactor {
    /// The secret in base32 (RFC 4648, e.g. `"JBSWY3DPEHPK3PXP..."`), at
    /// least 128 bits (26 base32 letters; RFC 4226 §4 asks for 128, and
    /// recommends 160).
    pub totp_secret: String,
}

/// Login throttling (see `mta::throttle`): after each failed login the
/// answer comes later (`first_delay`, doubling up to `max_delay`); after
/// `lock_after` failures on one account, or `address_lock_after` from one
/// client address, that account or address is refused for `lock_for`,
/// even with the right password. Failures older than `window` are
/// forgotten. The defaults are those of a careful real provider.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Off: every wrong password is answered at once and nothing locks
    /// (the "before" half of a guessing lesson).
    #[serde(default = "ThrottleSettings::default_enabled")]
    pub enabled: bool,
    #[serde(default = "ThrottleSettings::default_first_delay")]
    pub first_delay: SimDuration,
    #[serde(default = "ThrottleSettings::default_max_delay")]
    pub max_delay: SimDuration,
    #[serde(default = "ThrottleSettings::default_lock_after")]
    pub lock_after: u32,
    #[serde(default = "ThrottleSettings::default_address_lock_after")]
    pub address_lock_after: u32,
    #[serde(default = "ThrottleSettings::default_lock_for")]
    pub lock_for: SimDuration,
    #[serde(default = "ThrottleSettings::default_window")]
    pub window: SimDuration,
}

impl ThrottleSettings {
    fn default_enabled() -> bool {
        true
    }
    fn default_first_delay() -> SimDuration {
        SimDuration::from_secs(1)
    }
    fn default_max_delay() -> SimDuration {
        SimDuration::from_secs(32)
    }
    fn default_lock_after() -> u32 {
        10
    }
    fn default_address_lock_after() -> u32 {
        20
    }
    fn default_lock_for() -> SimDuration {
        SimDuration::from_secs(15 * 60)
    }
    fn default_window() -> SimDuration {
        SimDuration::from_secs(15 * 60)
    }
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            enabled: Self::default_enabled(),
            first_delay: Self::default_first_delay(),
            max_delay: Self::default_max_delay(),
            lock_after: Self::default_lock_after(),
            address_lock_after: Self::default_address_lock_after(),
            lock_for: Self::default_lock_for(),
            window: Self::default_window(),
        }
    }
}

impl User {
    /// What a mail program (swaks, curl) must type to log in: for a
    /// two-factor account its first app password (the main password is
    /// refused there), else the password.
    pub fn mail_password(&self) -> &str {
        match (&self.two_factor, self.app_passwords.values().next()) {
            (Some(_), Some(app)) => app,
            _ => &self.password,
        }
    }
}

/// Where the scenario's eavesdropper listens.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Eavesdropper {
    /// On every link of the world.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// On these links: pairs of node names (a client or host, either
    /// order), e.g. `["alice-laptop", "smtp.school.test"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<[String; 2]>,
}

/// The owner revokes an app password, as on the provider's account page:
/// the device that logs in with it is refused from its next login on, and
/// its open sessions are ended.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeStep {
    /// The account (an address from `users`).
    pub user: String,
    /// The name of one of its `app_passwords`.
    pub app_password: String,
}
