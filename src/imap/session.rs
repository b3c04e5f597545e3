//! The server side of one IMAP connection, as a pure state machine.
//!
//! IMAP (RFC 3501) is how a device *looks at* a mailbox that stays on the
//! server. A connection moves through four states (§3):
//!
//! ```text
//!  NotAuthenticated ──LOGIN/AUTHENTICATE──▶ Authenticated ──SELECT/EXAMINE──▶ Selected
//!         │                                     ▲   │                          │
//!         └──────────── LOGOUT ─────────────────┼───┴──── CLOSE ◀──────────────┘
//!                                               └──────── (any state) LOGOUT ──▶ Logout
//! ```
//!
//! In the Selected state the session keeps a **view** of the open mailbox:
//! the list of messages *as this client knows them*, numbered 1, 2, 3...
//! (sequence numbers), each with its UID and the flags the client was last
//! told. The mailbox itself lives in the shared [`Store`] and may change
//! under the view at any time — new mail arrives, the user's phone marks a
//! message read, another device deletes one. Before finishing each command
//! (and at once while the client IDLEs, RFC 2177) the session compares its
//! view with the store and tells the client what changed, with untagged
//! `* n EXISTS`, `* n FETCH (FLAGS ...)` and `* n EXPUNGE` responses. This
//! is the whole multi-device story: the laptop learns that a message was
//! read on the phone because the server reports the flag change.
//!
//! Keywords (flags a client makes up, like `$Label1`) follow the same
//! rule: a client may only meet a keyword it was told about in `* FLAGS`
//! (§7.2.6), so the view remembers which keywords it announced, and
//! before any FETCH that could show a new one the session sends an updated
//! `* FLAGS` and `* OK [PERMANENTFLAGS ...]` (§7.1; its `\*` says new
//! keywords may still be created). The list never shrinks in a session: a
//! client may still hold a message with a keyword another device removed.
//!
//! EXPUNGE is held back during FETCH, STORE, SEARCH and COPY (§7.4.1): a
//! message number that shifted mid-command would make the client act on
//! the wrong message.
//!
//! The session does no I/O: `server.rs` reads lines and literals (see
//! `parser.rs`), calls [`Session::command`] and friends, and sends the
//! [`Response`]s they return. Everything about accounts and mailboxes comes
//! through a [`Backend`] (the mail host), so tests drive the session with
//! a plain [`Store`] and transcripts.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_parser::MessageParser;

use super::mime;
use super::parser::{Command, CommandBody, FetchItem, ParseError, SearchKey, Section, SectionText, SequenceSet, StatusItem};
use super::response::{self, Lesson, Response, ResponseKind, Status};
use crate::login::{Attempt, Revocations, Verdict};
use crate::message::summarize;
use crate::store::{Flag, FlagChange, INBOX, MAX_KEYWORDS, Message, Snapshot, Store, StoreError};

/// What this server can do, announced in the greeting and by CAPABILITY.
/// LITERAL+ (RFC 7888): literals without waiting for `+`; SASL-IR (RFC
/// 4959): the login in the AUTHENTICATE line itself; IDLE (RFC 2177);
/// UIDPLUS (RFC 4315): the UIDs of appended and copied messages.
pub const CAPABILITIES: &str = "IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS AUTH=PLAIN";

/// After this many BAD replies the server hangs up: a client that keeps
/// sending nonsense is broken or probing.
pub const MAX_ERRORS: usize = 20;

/// The system flags a client may set (announced in FLAGS and
/// PERMANENTFLAGS, followed by the folder's keywords).
const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// The mail host behind an IMAP server.
pub trait Backend {
    /// This host's name (its greeting).
    fn hostname(&self) -> &str;
    /// Checks a login from `client`: the verdict (with the user's
    /// canonical address when welcome) and how long to wait before
    /// answering (throttling, see `mta::throttle`).
    fn authenticate(&self, user: &str, password: &str, client: IpAddr) -> Attempt;
    /// Wakes when app passwords are revoked (see [`Backend::app_password_valid`]).
    fn revocations(&self) -> Revocations {
        Revocations::never()
    }
    /// Does `user` still have the app password named `name`? A session
    /// logged in with one that was revoked ends with `* BYE`.
    fn app_password_valid(&self, _user: &str, _name: &str) -> bool {
        true
    }
    /// The mailboxes of this host.
    fn store(&self) -> &Store;
    /// Simulated now, the arrival time of an APPENDed message.
    fn now(&self) -> Duration;
    /// The largest literal (message) accepted.
    fn max_message_size(&self) -> usize;
}

/// What kind of line the server should read next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A command (possibly with literals; see `parser::Assembler`).
    Command,
    /// One base64 line answering the AUTHENTICATE challenge.
    AuthResponse,
    /// `DONE`, ending IDLE; meanwhile, report changes with [`Session::updates`].
    IdleDone,
    /// Nothing: the connection is over.
    Closed,
}

/// The answer to one input: responses to send, then maybe close.
#[derive(Debug, Default)]
pub struct Outcome {
    pub responses: Vec<Response>,
    pub close: bool,
}

/// The open mailbox as this client knows it.
#[derive(Debug)]
struct View {
    mailbox: String,
    read_only: bool,
    uid_validity: u32,
    /// Sequence number n is `known[n - 1]`.
    known: Vec<Known>,
    /// The keywords announced to the client in `* FLAGS` (only grows).
    keywords: Vec<String>,
}

impl View {
    /// Announces keywords of the folder's list the client has not heard
    /// of yet: an updated `* FLAGS` and PERMANENTFLAGS, which must come
    /// before any FETCH that shows them (RFC 3501 §7.2.6).
    fn announce_keywords(&mut self, user: &str, store: &Store, out: &mut Vec<Response>) {
        let Ok(keywords) = store.keywords(user, &self.mailbox) else { return };
        let before = self.keywords.len();
        for k in keywords {
            if !self.keywords.iter().any(|known| known.eq_ignore_ascii_case(&k)) {
                self.keywords.push(k);
            }
        }
        if self.keywords.len() > before {
            let new = self.keywords[before..].join(", ");
            let [flags, permanent] = flag_responses(&self.keywords, self.read_only);
            out.push(Response::update(flags, format!("news: a new keyword is in use in this folder: {new}")));
            out.push(Response::update(permanent, "server: you may set it too".to_string()));
        }
    }
}

/// `FLAGS (...)` and `OK [PERMANENTFLAGS (...)] ...` for a folder with
/// these keywords. `\*` (clients may make up keywords) only while the
/// folder can take more; a read-only folder changes nothing (§6.3.2).
fn flag_responses(keywords: &[String], read_only: bool) -> [String; 2] {
    let mut all = String::from(SYSTEM_FLAGS);
    for k in keywords {
        all.push(' ');
        all.push_str(k);
    }
    let permanent = match (read_only, keywords.len() < MAX_KEYWORDS) {
        (true, _) => String::new(),
        (false, true) => format!("{all} \\*"),
        (false, false) => all.clone(),
    };
    [format!("FLAGS ({all})"), format!("OK [PERMANENTFLAGS ({permanent})] Flags permitted")]
}

#[derive(Debug)]
struct Known {
    uid: u32,
    flags: BTreeSet<Flag>,
    /// Expunged elsewhere, but the client has not been told yet (the
    /// EXPUNGE is held back until a command that allows it).
    gone: bool,
}

#[derive(Debug)]
enum State {
    NotAuthenticated,
    Authenticated { user: String },
    Selected { user: String, view: View },
    Logout,
}

#[derive(Debug)]
enum Pending {
    None,
    /// AUTHENTICATE PLAIN sent `+`; the next line is the answer.
    Auth {
        tag: String,
    },
    /// IDLE sent `+ idling`; the next line should be DONE.
    Idle {
        tag: String,
    },
}

/// TLS on this connection (RFC 3501 §6.2.1, RFC 2595).
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsState {
    /// The server can do STARTTLS here.
    pub offered: bool,
    /// The connection is encrypted (after STARTTLS, or IMAPS).
    pub active: bool,
    /// Logins are allowed before TLS; if not, CAPABILITY says
    /// LOGINDISABLED and LOGIN gets `NO [PRIVACYREQUIRED]`.
    pub plaintext_login: bool,
    /// STARTTLS was accepted: the I/O layer runs the handshake next.
    upgrade: bool,
}

#[derive(Debug)]
pub struct Session {
    hostname: String,
    state: State,
    pending: Pending,
    errors: usize,
    tls: TlsState,
    /// The client's address (for throttling logins).
    client: IpAddr,
    /// The wait before the answer just computed (see [`Session::take_delay`]).
    delay: Duration,
    /// The app password this session logged in with, if any.
    app_password: Option<String>,
}

impl Session {
    pub fn new(hostname: impl Into<String>) -> Self {
        let tls = TlsState { offered: false, active: false, plaintext_login: true, upgrade: false };
        Session {
            hostname: hostname.into(),
            state: State::NotAuthenticated,
            pending: Pending::None,
            errors: 0,
            tls,
            client: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            delay: Duration::ZERO,
            app_password: None,
        }
    }

    /// Sets the client's address (logins are throttled per address too).
    pub fn with_client(mut self, client: IpAddr) -> Self {
        self.client = client;
        self
    }

    /// How long to wait before sending the answer just computed (a failed
    /// login's throttling delay); zero otherwise. Reading it clears it.
    pub fn take_delay(&mut self) -> Duration {
        std::mem::take(&mut self.delay)
    }

    /// The app password this session logged in with, if it did.
    pub fn app_password(&self) -> Option<&str> {
        self.app_password.as_deref()
    }

    /// The app password this session logged in with was revoked: the
    /// session ends (RFC 3501 §7.1.5, an unsolicited BYE).
    pub fn revoked(&mut self) -> Response {
        self.state = State::Logout;
        Response::bye("Your app password was revoked; sign in again with a new one", "server: the app password of this device was revoked, goodbye")
    }

    /// Sets what TLS this connection offers (`active`: it is IMAPS).
    pub fn with_tls(mut self, offered: bool, active: bool, plaintext_login: bool) -> Self {
        self.tls = TlsState { offered, active, plaintext_login, upgrade: false };
        self
    }

    /// True once after STARTTLS was accepted: time for the handshake.
    pub fn take_start_tls(&mut self) -> bool {
        std::mem::take(&mut self.tls.upgrade)
    }

    /// The handshake after STARTTLS succeeded.
    pub fn tls_started(&mut self) {
        self.tls.active = true;
    }

    /// May a client log in now?
    fn login_allowed(&self) -> bool {
        self.tls.active || self.tls.plaintext_login
    }

    /// The capabilities right now: STARTTLS while it can still be used,
    /// LOGINDISABLED instead of AUTH=PLAIN while passwords are refused.
    pub fn capabilities(&self) -> String {
        let base = CAPABILITIES.trim_end_matches(" AUTH=PLAIN");
        let starttls = if self.tls.offered && !self.tls.active && matches!(self.state, State::NotAuthenticated) { " STARTTLS" } else { "" };
        let login = if self.login_allowed() { " AUTH=PLAIN" } else { " LOGINDISABLED" };
        format!("{base}{starttls}{login}")
    }

    /// The first thing the server says.
    pub fn greeting(&self) -> Response {
        Response::untagged(
            format!("OK [CAPABILITY {}] {} IMAP4rev1 mailflow ready", self.capabilities(), self.hostname),
            format!("{} greets: an IMAP4rev1 server, ready for a login", self.hostname),
        )
    }

    pub fn expecting(&self) -> Expect {
        match (&self.state, &self.pending) {
            (State::Logout, _) => Expect::Closed,
            (_, Pending::Auth { .. }) => Expect::AuthResponse,
            (_, Pending::Idle { .. }) => Expect::IdleDone,
            _ => Expect::Command,
        }
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated { user } | State::Selected { user, .. } => Some(user),
            _ => None,
        }
    }

    /// The open mailbox, if any.
    pub fn selected(&self) -> Option<&str> {
        match &self.state {
            State::Selected { view, .. } => Some(&view.mailbox),
            _ => None,
        }
    }

    /// The server is stopping.
    pub fn shutdown(&mut self) -> Response {
        self.state = State::Logout;
        Response::bye(&format!("{} is shutting down", self.hostname), "server: I am shutting down, goodbye")
    }

    /// The client was silent too long (RFC 3501 §5.4 autologout).
    pub fn timeout(&mut self) -> Response {
        self.state = State::Logout;
        Response::bye("Autologout; you were idle too long", "server: you were silent too long, goodbye")
    }

    /// The client sent a line longer than `parser::MAX_LINE`; it was dropped.
    pub fn line_too_long(&mut self) -> Outcome {
        let bad = Response::untagged_bad("Line too long", "server: that line is too long to read, ignored");
        self.count_error(vec![bad])
    }

    /// A literal announced over the limit (see `parser::Framing::TooBig`).
    pub fn literal_too_big(&mut self, tag: Option<&str>, size: u64, synchronizing: bool) -> Outcome {
        let text = format!("Literal of {size} bytes is over the limit");
        if !synchronizing {
            // The client sends the bytes without waiting: the only safe
            // thing is to stop reading this connection.
            self.state = State::Logout;
            return Outcome { responses: vec![Response::bye(&format!("[TOOBIG] {text}"), "server: that is far too big; I hang up")], close: true };
        }
        let response = match tag {
            Some(tag) => {
                Response::tagged(tag, Status::No, Some("TOOBIG"), &text, "server refuses: that literal is too big (the client sends nothing more for it)")
            }
            None => Response::untagged_bad(&text, "server refuses: that literal is too big"),
        };
        self.count_error(vec![response])
    }

    /// A command that did not parse.
    pub fn parse_error(&mut self, error: ParseError) -> Outcome {
        let response = match &error.tag {
            Some(tag) => Response::tagged(tag, Status::Bad, None, &error.text, format!("server: I do not understand that ({})", error.text)),
            None => Response::untagged_bad(&error.text, format!("server: I do not understand that ({})", error.text)),
        };
        self.count_error(vec![response])
    }

    fn count_error(&mut self, mut responses: Vec<Response>) -> Outcome {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.state = State::Logout;
            responses.push(Response::bye("Too many errors", "server: too many errors, goodbye"));
            return Outcome { responses, close: true };
        }
        Outcome { responses, close: false }
    }

    /// Handles one complete command.
    pub fn command(&mut self, command: Command, backend: &dyn Backend) -> Outcome {
        let Command { tag, body } = command;
        if self.expecting() != Expect::Command {
            // Only a buggy I/O layer gets here.
            return Outcome { responses: vec![Response::tagged(&tag, Status::Bad, None, "Not now", "server: not now")], close: false };
        }
        // Updates may say EXPUNGE only where message numbers cannot be
        // misread (RFC 3501 §7.4.1).
        let expunge_ok = !matches!(body, CommandBody::Fetch { .. } | CommandBody::Store { .. } | CommandBody::Search { .. } | CommandBody::Copy { .. });
        let name = body.name();
        let mut out = Vec::new();
        let tagged = match self.check_state(&body) {
            Err(reason) => Some(Response::tagged(&tag, Status::Bad, None, reason, format!("server refuses {name}: {}", reason.to_lowercase()))),
            Ok(()) => self.dispatch(&tag, body, backend, &mut out),
        };
        let Some(tagged) = tagged else {
            return Outcome { responses: out, close: false }; // waiting for AUTHENTICATE or DONE
        };
        // News from other sessions comes before the tagged answer.
        if matches!(self.state, State::Selected { .. }) && name != "SELECT" && name != "EXAMINE" {
            self.sync(backend.store(), expunge_ok, &mut out);
        }
        let bad = tagged.kind == ResponseKind::Tagged(Status::Bad);
        out.push(tagged);
        if self.state_is_logout() {
            return Outcome { responses: out, close: true };
        }
        if bad { self.count_error(out) } else { Outcome { responses: out, close: false } }
    }

    fn state_is_logout(&self) -> bool {
        matches!(self.state, State::Logout)
    }

    /// Is `body` allowed in the current state? (RFC 3501 §6.)
    fn check_state(&self, body: &CommandBody) -> Result<(), &'static str> {
        use CommandBody as C;
        let any_state = matches!(body, C::Capability | C::Noop | C::Logout);
        let login = matches!(body, C::Login { .. } | C::Authenticate { .. } | C::StartTls);
        let selected_only = matches!(body, C::Check | C::Close | C::Expunge { .. } | C::Search { .. } | C::Fetch { .. } | C::Store { .. } | C::Copy { .. });
        match &self.state {
            _ if any_state => Ok(()),
            State::NotAuthenticated if login => Ok(()),
            State::NotAuthenticated => Err("Log in first (LOGIN or AUTHENTICATE)"),
            _ if login => Err("Already logged in"),
            State::Authenticated { .. } if selected_only => Err("No mailbox selected (SELECT one first)"),
            _ => Ok(()),
        }
    }

    /// Runs a command allowed in this state. `None` means the command goes
    /// on (a `+` was sent) and has no tagged answer yet.
    fn dispatch(&mut self, tag: &str, body: CommandBody, backend: &dyn Backend, out: &mut Vec<Response>) -> Option<Response> {
        use CommandBody as C;
        let ok = |text: &str, summary: String| Response::tagged(tag, Status::Ok, None, text, summary);
        let no = |code: Option<&str>, text: &str, summary: String| Response::tagged(tag, Status::No, code, text, summary);
        let store = backend.store();
        let user = self.user().unwrap_or_default().to_string();
        let reply = match body {
            C::Capability => {
                let summary = match (self.tls.offered && !self.tls.active, self.login_allowed()) {
                    (true, false) => "server lists what it can do: IMAP4rev1, IDLE, STARTTLS — and LOGINDISABLED: no password before TLS",
                    (true, true) => "server lists what it can do: IMAP4rev1, IDLE, STARTTLS, LOGIN with PLAIN...",
                    _ => "server lists what it can do: IMAP4rev1, IDLE, LOGIN with PLAIN...",
                };
                out.push(Response::untagged(format!("CAPABILITY {}", self.capabilities()), summary));
                ok("CAPABILITY completed", "server: that is all I can do".into())
            }
            C::StartTls if self.tls.active => {
                Response::tagged(tag, Status::Bad, None, "TLS is already active", "server refuses: this connection is already encrypted")
            }
            C::StartTls if !self.tls.offered => Response::tagged(tag, Status::Bad, None, "STARTTLS is not offered here", "server refuses: it offers no TLS"),
            C::StartTls => {
                self.tls.upgrade = true;
                Response::tagged(tag, Status::Ok, None, "Begin TLS negotiation now", "server: fine, let us encrypt — the TLS handshake starts now")
                    .with_lesson(Lesson::StartTls)
            }
            C::Login { .. } | C::Authenticate { .. } if !self.login_allowed() => Response::tagged(
                tag,
                Status::No,
                Some("PRIVACYREQUIRED"),
                "Plaintext login is disabled: use STARTTLS first",
                "server refuses: no passwords on an unencrypted connection (LOGINDISABLED); STARTTLS first",
            )
            .with_lesson(Lesson::LoginDisabled),
            C::Noop => ok("NOOP completed", "server: nothing else is new".into()),
            C::Check => ok("CHECK completed", "server: all saved".into()),
            C::Logout => {
                self.state = State::Logout;
                out.push(Response::bye(&format!("{} logging out", self.hostname), "server: goodbye"));
                ok("LOGOUT completed", "server confirms the logout and hangs up".into())
            }
            C::Login { user, password } => return Some(self.login(tag, &user, &password, backend)),
            C::Authenticate { mechanism, initial } => {
                if mechanism != "PLAIN" {
                    return Some(no(
                        None,
                        "Unsupported mechanism; this server offers AUTH=PLAIN",
                        format!("server: I do not know the {mechanism} login method"),
                    ));
                }
                match initial {
                    Some(response) => return Some(self.plain(tag, response.as_bytes(), backend)),
                    None => {
                        self.pending = Pending::Auth { tag: tag.to_string() };
                        out.push(Response::continuation("", "server: go ahead, send the user name and password (base64)"));
                        return None;
                    }
                }
            }
            C::Select { mailbox, read_only } => return Some(self.select(tag, &mailbox, read_only, store, out)),
            C::Create(name) => {
                let name = name.trim_end_matches('/');
                match store.create(&user, name) {
                    Ok(()) => ok("CREATE completed", format!("server: folder {name} created")),
                    Err(StoreError::Exists) => no(Some("ALREADYEXISTS"), "Mailbox already exists", format!("server: there is already a folder {name}")),
                    Err(e) => no(store_code(&e), &capitalized(&e), format!("server refuses to create {name}: {e}")),
                }
            }
            C::Delete(name) => match store.delete(&user, &name) {
                Ok(()) => ok("DELETE completed", format!("server: folder {name} and its messages are deleted")),
                Err(e) => no(store_code(&e), &capitalized(&e), format!("server refuses to delete {name}: {e}")),
            },
            C::Rename { from, to } => match store.rename(&user, &from, to.trim_end_matches('/')) {
                Ok(()) => ok("RENAME completed", format!("server: {from} is now called {to}")),
                Err(StoreError::Exists) => no(Some("ALREADYEXISTS"), "Mailbox already exists", format!("server: there is already a folder {to}")),
                Err(e) => no(store_code(&e), &capitalized(&e), format!("server refuses to rename {from}: {e}")),
            },
            C::Subscribe(name) if !store.list(&user).contains(&name) => no(None, "No such mailbox", format!("server: there is no folder {name}")),
            C::Subscribe(name) => {
                let _ = store.subscribe(&user, &name, true);
                ok("SUBSCRIBE completed", format!("server: {name} is now on the list of folders to show"))
            }
            C::Unsubscribe(name) => {
                let _ = store.subscribe(&user, &name, false);
                ok("UNSUBSCRIBE completed", format!("server: {name} is no longer on the list of folders to show"))
            }
            C::List { reference, pattern, subscribed_only } => self.list(tag, &user, &reference, &pattern, subscribed_only, store, out),
            C::Status { mailbox, items } => match store.snapshot(&user, &mailbox) {
                Ok(snapshot) => {
                    let (words, summary) = status_items(&snapshot, &items);
                    out.push(Response::untagged(
                        format!("STATUS {} ({words})", response::mailbox(&snapshot.name)),
                        format!("server: {} has {summary}", snapshot.name),
                    ));
                    ok("STATUS completed", "server: that is the status".into())
                }
                Err(_) => no(None, "No such mailbox", format!("server: there is no folder {mailbox}")),
            },
            // The client's date for the message is checked by the parser but
            // not kept: arrival times follow the simulated clock.
            C::Append { mailbox, flags, date: _, message } => {
                let size = message.len();
                let label = summarize(&message).subject.map(|s| format!("\"{s}\"")).unwrap_or_else(|| "a message".into());
                match store.append(&user, &mailbox, message, flags.into_iter().collect(), backend.now()) {
                    Ok((validity, uid)) => Response::tagged(
                        tag,
                        Status::Ok,
                        Some(&format!("APPENDUID {validity} {uid}")),
                        "APPEND completed",
                        format!("server: {label} ({}) is stored in {mailbox} as UID {uid}", human_bytes(size)),
                    ),
                    Err(StoreError::NoMailbox) => no(Some("TRYCREATE"), "No such mailbox", format!("server: there is no folder {mailbox} (create it first)")),
                    Err(e) => no(store_code(&e), &capitalized(&e), format!("server refuses the upload: {e}")),
                }
            }
            C::Idle => {
                self.pending = Pending::Idle { tag: tag.to_string() };
                out.push(Response::continuation("idling", "server: fine, I will tell you the moment anything changes").with_lesson(Lesson::Idle));
                if let State::Selected { .. } = self.state {
                    self.sync(store, true, out);
                }
                return None;
            }
            C::Close => {
                if let State::Selected { view, .. } = &self.state
                    && !view.read_only
                {
                    // CLOSE removes \Deleted messages silently (RFC 3501 §6.4.2).
                    let _ = store.expunge(&user, &view.mailbox, None);
                }
                self.state = State::Authenticated { user };
                ok("CLOSE completed", "server: the folder is closed (messages marked \\Deleted are gone)".into())
            }
            C::Expunge { uids } => self.expunge(tag, &user, uids.as_ref(), store),
            C::Search { uid, charset, criteria } => self.search(tag, uid, charset.as_deref(), &criteria, store, out),
            C::Fetch { uid, set, items } => self.fetch(tag, uid, &set, &items, store, out),
            C::Store { uid, set, change, silent, flags } => self.store_flags(tag, uid, &set, change, silent, &flags, store, out),
            C::Copy { uid, set, mailbox } => self.copy(tag, uid, &set, &mailbox, store),
        };
        Some(reply)
    }

    /// The login's answer: OK; `NO [AUTHENTICATIONFAILED]` (RFC 5530 §3)
    /// for wrong credentials, and with a hint for the main password of a
    /// two-factor account; `NO [UNAVAILABLE]` while locked (a temporary
    /// failure). The wait before a failure's answer is left for the
    /// server ([`Session::take_delay`]).
    fn login(&mut self, tag: &str, user: &str, password: &str, backend: &dyn Backend) -> Response {
        let attempt = backend.authenticate(user, password, self.client);
        self.delay = attempt.delay;
        match attempt.verdict {
            Verdict::Welcome { address, app_password } => {
                let summary = format!("server: welcome, {address}; your mailbox is open for you");
                self.state = State::Authenticated { user: address };
                self.app_password = app_password;
                Response::tagged(tag, Status::Ok, Some(&format!("CAPABILITY {CAPABILITIES}")), "Logged in", summary).with_lesson(Lesson::MailStaysOnServer)
            }
            Verdict::Refused => {
                Response::tagged(tag, Status::No, Some("AUTHENTICATIONFAILED"), "Invalid credentials", "server refuses: wrong user name or password")
            }
            Verdict::AppPasswordRequired => Response::tagged(
                tag,
                Status::No,
                Some("AUTHENTICATIONFAILED"),
                "Application-specific password required: this account has two-factor sign-in; use an app password",
                "server refuses the main password of a two-factor account: a mail program needs an app password",
            ),
            Verdict::Locked { .. } => Response::tagged(
                tag,
                Status::No,
                Some("UNAVAILABLE"),
                "Too many failed logins; temporarily locked, try again later",
                "server refuses: too many failed logins, the account is locked for now",
            ),
        }
    }

    /// The answer to AUTHENTICATE's `+` (or its initial response).
    pub fn auth_response(&mut self, line: &[u8], backend: &dyn Backend) -> Outcome {
        let Pending::Auth { tag } = std::mem::replace(&mut self.pending, Pending::None) else {
            return Outcome::default();
        };
        let response = self.plain(&tag, line, backend);
        let bad = response.kind == ResponseKind::Tagged(Status::Bad);
        if bad { self.count_error(vec![response]) } else { Outcome { responses: vec![response], close: false } }
    }

    /// SASL PLAIN (RFC 4616): base64 of `authzid NUL user NUL password`.
    fn plain(&mut self, tag: &str, line: &[u8], backend: &dyn Backend) -> Response {
        let line = line.trim_ascii();
        if line == b"*" {
            return Response::tagged(tag, Status::Bad, None, "Authentication cancelled", "server: login cancelled");
        }
        let decoded = if line == b"=" { Ok(Vec::new()) } else { BASE64.decode(line) };
        let Some(text) = decoded.ok().and_then(|d| String::from_utf8(d).ok()) else {
            return Response::tagged(tag, Status::Bad, None, "Invalid base64", "server: that is not valid base64");
        };
        let parts: Vec<&str> = text.splitn(4, '\0').collect();
        match parts.as_slice() {
            // Logging in as one user to act as another is not offered.
            [authzid, user, password] if authzid.is_empty() || authzid == user => self.login(tag, user, password, backend),
            [_, _, _] => Response::tagged(tag, Status::No, Some("AUTHENTICATIONFAILED"), "Invalid credentials", "server refuses: wrong user name or password"),
            _ => Response::tagged(tag, Status::Bad, None, "Malformed PLAIN response", "server: that login message is malformed"),
        }
    }

    fn select(&mut self, tag: &str, mailbox: &str, read_only: bool, store: &Store, out: &mut Vec<Response>) -> Response {
        let user = self.user().unwrap_or_default().to_string();
        let snapshot = match store.snapshot(&user, mailbox) {
            Ok(s) => s,
            Err(_) => {
                // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
                self.state = State::Authenticated { user };
                return Response::tagged(tag, Status::No, None, "No such mailbox", format!("server: there is no folder {mailbox}"));
            }
        };
        let total = snapshot.messages.len();
        let unseen = snapshot.messages.iter().filter(|m| !m.flags.contains(&Flag::Seen)).count();
        let first_unseen = snapshot.messages.iter().position(|m| !m.flags.contains(&Flag::Seen));
        // Read after the snapshot: the list only grows, so it names every
        // keyword the snapshot's messages carry.
        let keywords = store.keywords(&user, mailbox).unwrap_or_default();
        let [flags, permanent] = flag_responses(&keywords, read_only);
        let used = if keywords.is_empty() { String::new() } else { format!(", and the keywords used here: {}", keywords.join(", ")) };
        out.push(Response::untagged(flags, format!("server: these are the flags a message can have{used}")));
        let may = match (read_only, keywords.len() < MAX_KEYWORDS) {
            (true, _) => "server: this folder is read-only: no flag changes are kept",
            (false, true) => "server: you may change them, and invent keywords",
            (false, false) => "server: you may change them (this folder has all the keywords it can hold)",
        };
        out.push(Response::untagged(permanent, may));
        out.push(Response::untagged(format!("{total} EXISTS"), format!("server: {} holds {}", snapshot.name, plural(total, "message"))));
        out.push(Response::untagged("0 RECENT", "server: none is new since the last session (\\Recent is not tracked here)"));
        if let Some(i) = first_unseen {
            out.push(Response::untagged(format!("OK [UNSEEN {}] First unseen", i + 1), format!("server: message {} is the first unread one", i + 1)));
        }
        out.push(
            Response::untagged(
                format!("OK [UIDVALIDITY {}] UIDs valid", snapshot.uid_validity),
                format!("server: this folder's identity (UIDVALIDITY) is {}", snapshot.uid_validity),
            )
            .with_lesson(Lesson::Uids),
        );
        out.push(Response::untagged(
            format!("OK [UIDNEXT {}] Predicted next UID", snapshot.uid_next),
            format!("server: the next message to arrive will get UID {}", snapshot.uid_next),
        ));
        let known = snapshot.messages.iter().map(|m| Known { uid: m.uid, flags: m.flags.clone(), gone: false }).collect();
        let view = View { mailbox: snapshot.name.clone(), read_only, uid_validity: snapshot.uid_validity, known, keywords };
        self.state = State::Selected { user, view };
        let (code, mode) = if read_only { ("READ-ONLY", "read-only") } else { ("READ-WRITE", "read-write") };
        let name = if read_only { "EXAMINE" } else { "SELECT" };
        Response::tagged(
            tag,
            Status::Ok,
            Some(code),
            &format!("{name} completed"),
            format!("server: {} is open ({mode}): {}, {unseen} unread", snapshot.name, plural(total, "message")),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn list(&self, tag: &str, user: &str, reference: &str, pattern: &str, subscribed_only: bool, store: &Store, out: &mut Vec<Response>) -> Response {
        let name = if subscribed_only { "LSUB" } else { "LIST" };
        if pattern.is_empty() {
            // RFC 3501 §6.3.8: an empty pattern asks for the hierarchy delimiter.
            out.push(Response::untagged(format!("{name} (\\Noselect) \"/\" \"\""), "server: folder names use / to nest"));
            return Response::tagged(tag, Status::Ok, None, &format!("{name} completed"), "server: that is the delimiter".to_string());
        }
        let full = format!("{reference}{pattern}");
        let matches =
            |n: &str| wildcard_match(full.as_bytes(), n.as_bytes()) || (n == INBOX && wildcard_match(full.to_ascii_uppercase().as_bytes(), n.as_bytes()));
        let all = store.list(user);
        let names = if subscribed_only { store.subscriptions(user) } else { all.clone() };
        // Name → attribute, in name order.
        let mut rows: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
        for mailbox in names.iter().filter(|n| matches(n)) {
            let children =
                all.iter().any(|other| other.len() > mailbox.len() + 1 && other.starts_with(mailbox.as_str()) && other.as_bytes()[mailbox.len()] == b'/');
            rows.insert(mailbox, if children { "\\HasChildren" } else { "\\HasNoChildren" });
        }
        if subscribed_only {
            // "Archive/2024" subscribed, "Archive" not, and % stops at the
            // "/": LSUB still names "Archive", as \Noselect (§6.3.9).
            for subscribed in names.iter().filter(|n| !matches(n)) {
                for (i, _) in subscribed.match_indices('/') {
                    let parent = &subscribed[..i];
                    if matches(parent) && !names.iter().any(|n| n == parent) {
                        rows.entry(parent).or_insert("\\Noselect");
                    }
                }
            }
        }
        let count = rows.len();
        for (mailbox, attribute) in rows {
            let summary = if attribute == "\\Noselect" {
                format!("server: folders inside {mailbox} are subscribed (not {mailbox} itself)")
            } else {
                format!("server: there is a folder {mailbox}")
            };
            out.push(Response::untagged(format!("{name} ({attribute}) \"/\" {}", response::mailbox(mailbox)), summary));
        }
        Response::tagged(tag, Status::Ok, None, &format!("{name} completed"), format!("server: {} in all", plural(count, "folder")))
    }

    /// The view and user of the selected state (callers checked the state).
    fn view(&mut self) -> Option<(&str, &mut View)> {
        match &mut self.state {
            State::Selected { user, view } => Some((user.as_str(), view)),
            _ => None,
        }
    }

    /// Compares the view with the store and reports every difference as
    /// an untagged response (see the module docs).
    fn sync(&mut self, store: &Store, expunge_ok: bool, out: &mut Vec<Response>) {
        let Some((user, view)) = self.view() else { return };
        let snapshot = store.snapshot(user, &view.mailbox).ok().filter(|s| s.uid_validity == view.uid_validity);
        if snapshot.is_some() {
            view.announce_keywords(user, store, out);
        }
        let current: HashMap<u32, &Message> = snapshot.iter().flat_map(|s| &s.messages).map(|m| (m.uid, m)).collect();
        for i in (0..view.known.len()).rev() {
            if current.contains_key(&view.known[i].uid) {
                continue;
            }
            if expunge_ok {
                // Highest number first, so each number is right when read.
                let uid = view.known.remove(i).uid;
                out.push(Response::update(format!("{} EXPUNGE", i + 1), format!("news: message {} (UID {uid}) was deleted, by another session", i + 1)));
            } else {
                view.known[i].gone = true;
            }
        }
        for (i, known) in view.known.iter_mut().enumerate() {
            if let Some(message) = current.get(&known.uid).filter(|m| !known.gone && m.flags != known.flags) {
                known.flags = message.flags.clone();
                out.push(Response::update(
                    format!("{} FETCH (UID {} FLAGS {})", i + 1, known.uid, response::flag_list(&known.flags)),
                    format!("news: message {} is now {} — changed by another session", i + 1, flags_in_words(&known.flags)),
                ));
            }
        }
        let last = view.known.iter().map(|k| k.uid).max().unwrap_or(0);
        let before = view.known.len();
        if let Some(snapshot) = &snapshot {
            view.known.extend(snapshot.messages.iter().filter(|m| m.uid > last).map(|m| Known { uid: m.uid, flags: m.flags.clone(), gone: false }));
        }
        let added = view.known.len() - before;
        if added > 0 {
            out.push(Response::update(
                format!("{} EXISTS", view.known.len()),
                format!("news: {} arrived; the folder now holds {}", plural(added, "new message"), view.known.len()),
            ));
        }
    }

    /// Changes reported while the client IDLEs (call when the store's
    /// watch fires).
    pub fn updates(&mut self, backend: &dyn Backend) -> Vec<Response> {
        let mut out = Vec::new();
        if matches!(self.pending, Pending::Idle { .. }) {
            self.sync(backend.store(), true, &mut out);
        }
        out
    }

    /// The line ending IDLE: it should be DONE.
    pub fn idle_line(&mut self, line: &[u8], backend: &dyn Backend) -> Outcome {
        let Pending::Idle { tag } = std::mem::replace(&mut self.pending, Pending::None) else {
            return Outcome::default();
        };
        let mut out = Vec::new();
        if !line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
            out.push(Response::tagged(&tag, Status::Bad, None, "Expected DONE", "server: IDLE ends with DONE; stopped anyway"));
            return self.count_error(out);
        }
        self.sync(backend.store(), true, &mut out);
        out.push(Response::tagged(&tag, Status::Ok, None, "IDLE terminated", "server: OK, no more live news"));
        Outcome { responses: out, close: false }
    }

    /// The messages of the view that `set` names: (sequence number, UID).
    /// Sequence numbers past the end are an error (BAD). Messages expunged
    /// elsewhere are included: the caller finds them missing from the
    /// store, skips them and answers `OK [EXPUNGEISSUED]`.
    fn targets(&mut self, uid: bool, set: &SequenceSet) -> Result<Vec<(u32, u32)>, String> {
        let Some((_, view)) = self.view() else { return Ok(Vec::new()) };
        let count = view.known.len() as u32;
        if !uid && set.max_value() > count {
            return Err(format!("No message {} (the folder has {count})", set.max_value()));
        }
        let last_uid = view.known.last().map(|k| k.uid).unwrap_or(0);
        Ok(view
            .known
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u32 + 1, k))
            .filter(|(seq, k)| if uid { set.contains(k.uid, last_uid) } else { set.contains(*seq, count) })
            .map(|(seq, k)| (seq, k.uid))
            .collect())
    }

    fn expunge(&mut self, tag: &str, user: &str, uids: Option<&SequenceSet>, store: &Store) -> Response {
        let Some((_, view)) = self.view() else { return Response::tagged(tag, Status::Bad, None, "No mailbox selected", "") };
        if view.read_only {
            return Response::tagged(tag, Status::No, None, "Mailbox is read-only", "server refuses: this folder was opened read-only (EXAMINE)");
        }
        let mailbox = view.mailbox.clone();
        let snapshot = store.snapshot(user, &mailbox).map(|s| s.messages).unwrap_or_default();
        let last = snapshot.last().map(|m| m.uid).unwrap_or(0);
        let doomed: Vec<u32> =
            snapshot.iter().filter(|m| m.flags.contains(&Flag::Deleted) && uids.is_none_or(|set| set.contains(m.uid, last))).map(|m| m.uid).collect();
        if let Err(e) = store.expunge(user, &mailbox, Some(&doomed)) {
            return Response::tagged(tag, Status::No, store_code(&e), &capitalized(&e), format!("server cannot remove the messages: {e}"));
        }
        // The EXPUNGE lines themselves come from the sync that follows.
        Response::tagged(tag, Status::Ok, None, "EXPUNGE completed", format!("server: {} removed for good", plural(doomed.len(), "message")))
    }

    fn search(&mut self, tag: &str, uid: bool, charset: Option<&str>, criteria: &SearchKey, store: &Store, out: &mut Vec<Response>) -> Response {
        if charset.is_some_and(|c| c != "UTF-8" && c != "US-ASCII") {
            return Response::tagged(tag, Status::No, Some("BADCHARSET (UTF-8 US-ASCII)"), "Unsupported charset", "server: I only search in UTF-8");
        }
        let Some((user, view)) = self.view() else { return Response::tagged(tag, Status::Bad, None, "No mailbox selected", "") };
        let snapshot = store.snapshot(user, &view.mailbox).map(|s| s.messages).unwrap_or_default();
        let by_uid: HashMap<u32, &Message> = snapshot.iter().map(|m| (m.uid, m)).collect();
        let count = view.known.len() as u32;
        let last_uid = view.known.last().map(|k| k.uid).unwrap_or(0);
        let mut found = Vec::new();
        let mut expunged = false;
        for (i, known) in view.known.iter().enumerate() {
            let Some(message) = by_uid.get(&known.uid).filter(|_| !known.gone) else {
                expunged = true;
                continue;
            };
            let context = SearchContext { seq: i as u32 + 1, count, last_uid, message };
            if context.matches(criteria) {
                found.push(if uid { known.uid } else { i as u32 + 1 });
            }
        }
        let list: Vec<String> = found.iter().map(u32::to_string).collect();
        let what = if uid { "UIDs" } else { "message numbers" };
        let summary = match found.len() {
            0 => "server: no message matches".to_string(),
            1 => format!("server: 1 message matches ({} {})", what.trim_end_matches('s'), list[0]),
            n => format!("server: {n} messages match ({what} {})", list.join(", ")),
        };
        out.push(Response::untagged(format!("SEARCH{}{}", if list.is_empty() { "" } else { " " }, list.join(" ")), summary));
        Response::tagged(tag, Status::Ok, expunge_issued(expunged), "SEARCH completed", format!("server: search done{}", expunge_note(expunged)))
    }

    fn fetch(&mut self, tag: &str, uid: bool, set: &SequenceSet, items: &[FetchItem], store: &Store, out: &mut Vec<Response>) -> Response {
        let targets = match self.targets(uid, set) {
            Ok(t) => t,
            Err(text) => return Response::tagged(tag, Status::Bad, None, &text, format!("server: {}", text.to_lowercase())),
        };
        let Some((user, view)) = self.view() else { return Response::tagged(tag, Status::Bad, None, "No mailbox selected", "") };
        let user = user.to_string();
        let marks_seen =
            !view.read_only && items.iter().any(|i| matches!(i, FetchItem::Rfc822 | FetchItem::Rfc822Text | FetchItem::Section { peek: false, .. }));
        let snapshot = store.snapshot(&user, &view.mailbox).map(|s| s.messages).unwrap_or_default();
        view.announce_keywords(&user, store, out);
        let by_uid: HashMap<u32, &Message> = snapshot.iter().map(|m| (m.uid, m)).collect();
        let mut sent = 0;
        let mut expunged = false;
        for (seq, uid_value) in targets {
            let Some(message) = by_uid.get(&uid_value) else {
                expunged = true;
                continue;
            };
            let mut flags = message.flags.clone();
            let mut items = items.to_vec();
            let mut lesson = None;
            if marks_seen && !flags.contains(&Flag::Seen) {
                // Reading the message marks it read (RFC 3501 §6.4.5) — on the
                // server, so every device of the user will know.
                if let Ok(changed) = store.set_flags(&user, &view.mailbox, &[uid_value], FlagChange::Add, &BTreeSet::from([Flag::Seen])) {
                    flags = changed.into_iter().next().map(|(_, f)| f).unwrap_or(flags);
                }
                flags.insert(Flag::Seen);
                if !items.contains(&FetchItem::Flags) {
                    items.push(FetchItem::Flags);
                }
                lesson = Some(Lesson::SeenFlag);
            }
            if let Some(known) = view.known.get_mut(seq as usize - 1) {
                known.flags = flags.clone();
            }
            let (bytes, what, carries_message) = fetch_data(seq, uid_value, message, &flags, &items);
            let mut response = Response::untagged_bytes(bytes, format!("server sends message {seq} (UID {uid_value}): {what}"));
            response.lesson = lesson;
            if carries_message {
                response.message_ref = summarize(&message.raw).message_ref();
            }
            out.push(response);
            sent += 1;
        }
        Response::tagged(
            tag,
            Status::Ok,
            expunge_issued(expunged),
            "FETCH completed",
            format!("server: that was {}{}", plural(sent, "message"), expunge_note(expunged)),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn store_flags(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        change: FlagChange,
        silent: bool,
        flags: &[Flag],
        store: &Store,
        out: &mut Vec<Response>,
    ) -> Response {
        let targets = match self.targets(uid, set) {
            Ok(t) => t,
            Err(text) => return Response::tagged(tag, Status::Bad, None, &text, format!("server: {}", text.to_lowercase())),
        };
        let Some((user, view)) = self.view() else { return Response::tagged(tag, Status::Bad, None, "No mailbox selected", "") };
        if view.read_only {
            return Response::tagged(tag, Status::No, None, "Mailbox is read-only", "server refuses: this folder was opened read-only (EXAMINE)");
        }
        let uids: Vec<u32> = targets.iter().map(|&(_, u)| u).collect();
        let wanted: BTreeSet<Flag> = flags.iter().cloned().collect();
        if let Err(e) = store.set_flags(user, &view.mailbox, &uids, change, &wanted) {
            if e == StoreError::TooManyKeywords {
                return Response::tagged(
                    tag,
                    Status::No,
                    Some("LIMIT"),
                    &format!("Too many keywords in this mailbox (at most {MAX_KEYWORDS})"),
                    format!("server refuses: this folder already uses {MAX_KEYWORDS} keywords, the most it can keep"),
                );
            }
            return Response::tagged(tag, Status::No, store_code(&e), &capitalized(&e), format!("server cannot change the flags: {e}"));
        }
        let snapshot = store.snapshot(user, &view.mailbox).map(|s| s.messages).unwrap_or_default();
        view.announce_keywords(user, store, out);
        let by_uid: HashMap<u32, &Message> = snapshot.iter().map(|m| (m.uid, m)).collect();
        let mut expunged = false;
        for (seq, uid_value) in targets {
            let Some(message) = by_uid.get(&uid_value) else {
                expunged = true;
                continue;
            };
            if let Some(known) = view.known.get_mut(seq as usize - 1) {
                known.flags = message.flags.clone();
            }
            if !silent {
                let uid_part = if uid { format!("UID {uid_value} ") } else { String::new() };
                out.push(Response::untagged(
                    format!("{seq} FETCH ({uid_part}FLAGS {})", response::flag_list(&message.flags)),
                    format!("server: message {seq} is now {}", flags_in_words(&message.flags)),
                ));
            }
        }
        let verb = match change {
            FlagChange::Add => "added",
            FlagChange::Remove => "removed",
            FlagChange::Replace => "set",
        };
        Response::tagged(
            tag,
            Status::Ok,
            expunge_issued(expunged),
            "STORE completed",
            format!("server: flags {} {verb} on the server, for every device to see{}", response::flag_list(flags), expunge_note(expunged)),
        )
    }

    fn copy(&mut self, tag: &str, uid: bool, set: &SequenceSet, mailbox: &str, store: &Store) -> Response {
        let targets = match self.targets(uid, set) {
            Ok(t) => t,
            Err(text) => return Response::tagged(tag, Status::Bad, None, &text, format!("server: {}", text.to_lowercase())),
        };
        let Some((user, view)) = self.view() else { return Response::tagged(tag, Status::Bad, None, "No mailbox selected", "") };
        let uids: Vec<u32> = targets.iter().map(|&(_, u)| u).collect();
        match store.copy(user, &view.mailbox, &uids, mailbox) {
            Ok((validity, pairs)) => {
                let code = (!pairs.is_empty()).then(|| {
                    let old: Vec<String> = pairs.iter().map(|(o, _)| o.to_string()).collect();
                    let new: Vec<String> = pairs.iter().map(|(_, n)| n.to_string()).collect();
                    format!("COPYUID {validity} {} {}", old.join(","), new.join(","))
                });
                Response::tagged(tag, Status::Ok, code.as_deref(), "COPY completed", format!("server: {} copied to {mailbox}", plural(pairs.len(), "message")))
            }
            Err(StoreError::NoMailbox) => {
                Response::tagged(tag, Status::No, Some("TRYCREATE"), "No such mailbox", format!("server: there is no folder {mailbox} (create it first)"))
            }
            Err(e) => Response::tagged(tag, Status::No, store_code(&e), &capitalized(&e), format!("server refuses the copy: {e}")),
        }
    }
}

/// `STATUS` items: the wire words and a summary.
fn status_items(snapshot: &Snapshot, items: &[StatusItem]) -> (String, String) {
    let unseen = snapshot.messages.iter().filter(|m| !m.flags.contains(&Flag::Seen)).count() as u32;
    let mut words = Vec::new();
    let mut summary = Vec::new();
    for item in items {
        let value = match item {
            StatusItem::Messages => snapshot.messages.len() as u32,
            StatusItem::Recent => 0,
            StatusItem::UidNext => snapshot.uid_next,
            StatusItem::UidValidity => snapshot.uid_validity,
            StatusItem::Unseen => unseen,
        };
        words.push(format!("{} {value}", item.name()));
        summary.push(format!("{} {value}", item.name().to_lowercase()));
    }
    (words.join(" "), summary.join(", "))
}

/// Builds `n FETCH (...)` for one message. Returns the bytes, what was
/// sent in words, and whether message content was sent.
fn fetch_data(seq: u32, uid: u32, message: &Message, flags: &BTreeSet<Flag>, items: &[FetchItem]) -> (Vec<u8>, String, bool) {
    let raw = message.raw.as_slice();
    let needs_structure = items.iter().any(|i| !matches!(i, FetchItem::Flags | FetchItem::Uid | FetchItem::InternalDate | FetchItem::Rfc822Size));
    let root = needs_structure.then(|| mime::structure(raw));
    let mut out = format!("{seq} FETCH (").into_bytes();
    let mut words = Vec::new();
    let mut content = false;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match item {
            FetchItem::Flags => {
                out.extend_from_slice(format!("FLAGS {}", response::flag_list(flags)).as_bytes());
                words.push(format!("flags: {}", flags_in_words(flags)));
            }
            FetchItem::Uid => out.extend_from_slice(format!("UID {uid}").as_bytes()),
            FetchItem::InternalDate => {
                out.extend_from_slice(format!("INTERNALDATE {}", response::internal_date(message.internal_date)).as_bytes());
                words.push("arrival date".into());
            }
            FetchItem::Rfc822Size => {
                out.extend_from_slice(format!("RFC822.SIZE {}", raw.len()).as_bytes());
                words.push(format!("size {}", human_bytes(raw.len())));
            }
            FetchItem::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                let header = root.as_ref().map(|r| &raw[r.header.clone()]).unwrap_or_default();
                response::envelope(&mut out, header);
                words.push("sender, subject and date (envelope)".into());
            }
            FetchItem::Body | FetchItem::BodyStructure => {
                let extended = *item == FetchItem::BodyStructure;
                out.extend_from_slice(if extended { b"BODYSTRUCTURE " } else { b"BODY " });
                if let Some(root) = &root {
                    response::body_structure(&mut out, raw, root, extended);
                }
                words.push("its structure (the MIME parts)".into());
            }
            FetchItem::Rfc822 | FetchItem::Rfc822Header | FetchItem::Rfc822Text => {
                let (name, section) = match item {
                    FetchItem::Rfc822 => ("RFC822", Section::default()),
                    FetchItem::Rfc822Header => ("RFC822.HEADER", Section { part: vec![], text: Some(SectionText::Header) }),
                    _ => ("RFC822.TEXT", Section { part: vec![], text: Some(SectionText::Text) }),
                };
                let bytes = root.as_ref().and_then(|r| mime::section_bytes(raw, r, &section)).unwrap_or_default();
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
                response::literal(&mut out, &bytes);
                words.push(format!("{} ({})", section_in_words(&section), human_bytes(bytes.len())));
                content = true;
            }
            FetchItem::Section { section, partial, .. } => {
                let Some(bytes) = root.as_ref().and_then(|r| mime::section_bytes(raw, r, section)) else {
                    // No such part: an empty string, as most servers answer.
                    out.extend_from_slice(format!("BODY[{}] \"\"", section_name(section)).as_bytes());
                    words.push(format!("nothing: there is no {}", section_in_words(section)));
                    continue;
                };
                let (bytes, origin) = match partial {
                    Some((start, length)) => {
                        let from = (*start as usize).min(bytes.len());
                        let to = from.saturating_add(*length as usize).min(bytes.len());
                        (bytes[from..to].to_vec(), format!("<{start}>"))
                    }
                    None => (bytes, String::new()),
                };
                out.extend_from_slice(format!("BODY[{}]{origin} ", section_name(section)).as_bytes());
                response::literal(&mut out, &bytes);
                words.push(format!("{} ({})", section_in_words(section), human_bytes(bytes.len())));
                content = true;
            }
        }
    }
    out.push(b')');
    let what = if words.is_empty() { "its UID".to_string() } else { words.join(", ") };
    (out, what, content)
}

/// `1.2.HEADER.FIELDS (FROM SUBJECT)`: the section as the response names it.
fn section_name(section: &Section) -> String {
    let mut parts: Vec<String> = section.part.iter().map(u32::to_string).collect();
    match &section.text {
        None => {}
        Some(SectionText::Header) => parts.push("HEADER".into()),
        Some(SectionText::Text) => parts.push("TEXT".into()),
        Some(SectionText::Mime) => parts.push("MIME".into()),
        Some(SectionText::HeaderFields { not, fields }) => {
            let names: Vec<String> = fields
                .iter()
                .map(|f| if !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') { f.to_ascii_uppercase() } else { response::mailbox(f) })
                .collect();
            parts.push(format!("HEADER.FIELDS{} ({})", if *not { ".NOT" } else { "" }, names.join(" ")));
        }
    }
    parts.join(".")
}

/// "the whole message", "part 2", "the headers"...
pub fn section_in_words(section: &Section) -> String {
    let part = section.part.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
    let of = if part.is_empty() { String::new() } else { format!(" of part {part}") };
    match &section.text {
        None if part.is_empty() => "the whole message".into(),
        None => format!("part {part}"),
        Some(SectionText::Header) => format!("the headers{of}"),
        Some(SectionText::Text) => format!("the text{of}"),
        Some(SectionText::Mime) => format!("the MIME header{of}"),
        Some(SectionText::HeaderFields { not: false, fields }) => format!("the {} header{}{of}", fields.join(", "), if fields.len() == 1 { "" } else { "s" }),
        Some(SectionText::HeaderFields { not: true, fields }) => format!("the headers except {}{of}", fields.join(", ")),
    }
}

/// "read, flagged" / "unread".
pub fn flags_in_words(flags: &BTreeSet<Flag>) -> String {
    let mut words = vec![if flags.contains(&Flag::Seen) { "read".to_string() } else { "unread".to_string() }];
    for flag in flags {
        match flag {
            Flag::Seen => {}
            Flag::Answered => words.push("answered".into()),
            Flag::Flagged => words.push("flagged".into()),
            Flag::Deleted => words.push("marked for deletion".into()),
            Flag::Draft => words.push("a draft".into()),
            Flag::Keyword(k) => words.push(format!("tagged {k}")),
        }
    }
    words.join(", ")
}

/// "1 message", "3 messages".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn human_bytes(n: usize) -> String {
    crate::trace::human_bytes(n as u64)
}

/// The response code (RFC 5530) that tells a client what kind of refusal
/// this is: LIMIT (a name too long to store, a 27th keyword), SERVERBUG (the disk failed:
/// nothing was changed, try again later).
fn store_code(error: &StoreError) -> Option<&'static str> {
    match error {
        StoreError::NameTooLong | StoreError::TooManyKeywords => Some("LIMIT"),
        StoreError::Storage(_) => Some("SERVERBUG"),
        _ => None,
    }
}

/// `[EXPUNGEISSUED]` (RFC 5530) when a command had to leave out messages
/// another session expunged (their EXPUNGE is held back, §7.4.1).
fn expunge_issued(expunged: bool) -> Option<&'static str> {
    expunged.then_some("EXPUNGEISSUED")
}

fn expunge_note(expunged: bool) -> &'static str {
    if expunged { " (leaving out what another session deleted meanwhile; you will hear of it soon)" } else { "" }
}

/// `[LIMIT]` (RFC 5530) for a refusal because the folder is full of keywords.
fn capitalized(error: &StoreError) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

/// `*` matches anything, `%` anything but the hierarchy delimiter `/`
/// (RFC 3501 §6.3.8). Dynamic programming, so no pattern is slow.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    if pattern.len() > 1024 {
        return false;
    }
    // row[j]: does the pattern so far match name[..j]?
    let mut row = vec![false; name.len() + 1];
    row[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                for j in 0..=name.len() {
                    next[j] = row[j] || (j > 0 && next[j - 1] && (p == b'*' || name[j - 1] != b'/'));
                }
            }
            _ => {
                for j in 1..=name.len() {
                    next[j] = row[j - 1] && name[j - 1] == p;
                }
            }
        }
        row = next;
    }
    row[name.len()]
}

/// One message being checked against SEARCH criteria.
struct SearchContext<'a> {
    seq: u32,
    count: u32,
    last_uid: u32,
    message: &'a Message,
}

impl SearchContext<'_> {
    fn header(&self) -> &[u8] {
        let raw = self.message.raw.as_slice();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(raw.len());
        &raw[..end]
    }

    fn header_has(&self, name: &str, needle: &str) -> bool {
        mime::fields(self.header())
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .any(|(_, field)| contains_ignore_case(&field[name.len().min(field.len())..], needle.as_bytes()))
    }

    /// The day written in the Date: header, "disregarding time and
    /// timezone" (RFC 3501 §6.4.4): 00:30 +0200 on the 25th is the 25th,
    /// although it is still the 24th in UTC.
    fn sent_day(&self) -> Option<i64> {
        let parsed = MessageParser::new().parse_headers(self.header())?;
        let date = parsed.date()?;
        (1..=12).contains(&date.month).then(|| crate::calendar::days_from_civil(date.year.into(), date.month.into(), date.day.into()))
    }

    fn matches(&self, key: &SearchKey) -> bool {
        let flags = &self.message.flags;
        let day = self.message.internal_date.div_euclid(86_400);
        let raw = self.message.raw.as_slice();
        match key {
            SearchKey::All => true,
            SearchKey::Answered => flags.contains(&Flag::Answered),
            SearchKey::Deleted => flags.contains(&Flag::Deleted),
            SearchKey::Draft => flags.contains(&Flag::Draft),
            SearchKey::Flagged => flags.contains(&Flag::Flagged),
            SearchKey::Seen => flags.contains(&Flag::Seen),
            SearchKey::Unanswered => !flags.contains(&Flag::Answered),
            SearchKey::Undeleted => !flags.contains(&Flag::Deleted),
            SearchKey::Undraft => !flags.contains(&Flag::Draft),
            SearchKey::Unflagged => !flags.contains(&Flag::Flagged),
            SearchKey::Unseen => !flags.contains(&Flag::Seen),
            // \Recent is not tracked: nothing is recent, everything is old.
            SearchKey::New | SearchKey::Recent => false,
            SearchKey::Old => true,
            SearchKey::Keyword(k) => flags.iter().any(|f| matches!(f, Flag::Keyword(x) if x.eq_ignore_ascii_case(k))),
            SearchKey::Unkeyword(k) => !flags.iter().any(|f| matches!(f, Flag::Keyword(x) if x.eq_ignore_ascii_case(k))),
            SearchKey::Bcc(s) => self.header_has("Bcc", s),
            SearchKey::Cc(s) => self.header_has("Cc", s),
            SearchKey::From(s) => self.header_has("From", s),
            SearchKey::To(s) => self.header_has("To", s),
            SearchKey::Subject(s) => self.header_has("Subject", s),
            SearchKey::Header(name, s) => self.header_has(name, s),
            SearchKey::Body(s) => contains_ignore_case(&raw[self.header().len()..], s.as_bytes()),
            SearchKey::Text(s) => contains_ignore_case(raw, s.as_bytes()),
            SearchKey::Before(d) => day < *d,
            SearchKey::On(d) => day == *d,
            SearchKey::Since(d) => day >= *d,
            SearchKey::SentBefore(d) => self.sent_day().is_some_and(|s| s < *d),
            SearchKey::SentOn(d) => self.sent_day() == Some(*d),
            SearchKey::SentSince(d) => self.sent_day().is_some_and(|s| s >= *d),
            SearchKey::Larger(n) => raw.len() > *n as usize,
            SearchKey::Smaller(n) => raw.len() < *n as usize,
            SearchKey::Uid(set) => set.contains(self.message.uid, self.last_uid),
            SearchKey::Sequence(set) => set.contains(self.seq, self.count),
            // The parser bounds the nesting, so this recursion is bounded too.
            SearchKey::Not(k) => !self.matches(k),
            SearchKey::Or(a, b) => self.matches(a) || self.matches(b),
            SearchKey::And(keys) => keys.iter().all(|k| self.matches(k)),
        }
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::super::parser::{Assembler, Framing, parse_command};
    use super::*;
    use crate::transcripts::{Adapter, Sent, replay};

    /// bob@example.org/builder and alice@example.org/wonderland have
    /// mailboxes here.
    struct FakeHost {
        store: Store,
    }

    impl Backend for FakeHost {
        fn hostname(&self) -> &str {
            "mx1.example.org"
        }
        fn authenticate(&self, user: &str, password: &str, _client: std::net::IpAddr) -> crate::login::Attempt {
            let user = user.to_ascii_lowercase();
            crate::login::Attempt::from_check(
                matches!((user.as_str(), password), ("bob@example.org", "builder") | ("alice@example.org", "wonderland")).then_some(user),
            )
        }
        fn store(&self) -> &Store {
            &self.store
        }
        fn now(&self) -> Duration {
            Duration::from_secs(60)
        }
        fn max_message_size(&self) -> usize {
            1000
        }
    }

    const TRANSCRIPT_DIR: &str = "tests/transcripts/imap";

    fn message(subject: &str, body: &str) -> Vec<u8> {
        format!("From: Alice <alice@school.test>\r\nTo: bob@example.org\r\nSubject: {subject}\r\nDate: Thu, 26 Nov 2026 04:16:00 +0000\r\nMessage-ID: <{subject}@school.test>\r\n\r\n{body}\r\n").into_bytes()
    }

    /// One client of a transcript: its session and the framing of its lines.
    struct Client {
        session: Session,
        assembler: Assembler,
    }

    /// What the server sent, as a client reads it.
    fn wire_text(responses: &[Response]) -> String {
        responses.iter().map(|r| String::from_utf8_lossy(&r.bytes)).collect()
    }

    /// The IMAP side of the transcript harness (`crate::transcripts`), for two clients
    /// (`C1:`/`S1:`, `C2:`/`S2:`) of one host. After a `C:` line that announces a literal,
    /// `L: text` adds literal bytes (CRLF added) and `B: text` adds them without CRLF; the
    /// next `C:` line continues the command. Directives: `! deliver SUBJECT` puts a message in
    /// bob's INBOX, `! updates 2` asks client 2's IDLE for news.
    struct ImapReplay {
        host: FakeHost,
        clients: [Option<Client>; 2],
        /// The literal being sent: its announced size and the bytes so far.
        literal: Option<(usize, Vec<u8>)>,
    }

    impl ImapReplay {
        fn new() -> Self {
            let host = FakeHost { store: Store::new(1_700_000_000) };
            host.store.ensure_user("bob@example.org");
            Self { host, clients: [None, None], literal: None }
        }
    }

    impl Adapter for ImapReplay {
        const CLIENTS: usize = 2;

        fn directive(&mut self, key: &str, value: &str, sent: &mut Sent) -> Result<(), String> {
            match key {
                "deliver" => {
                    self.host.store.deliver("bob@example.org", message(value, "Hello Bob"), Duration::ZERO).expect("delivered");
                }
                "updates" => {
                    let index = value.parse::<usize>().ok().and_then(|i| i.checked_sub(1)).ok_or("bad client")?;
                    let host = &self.host;
                    let client = self.clients.get_mut(index).and_then(Option::as_mut).ok_or("client not connected")?;
                    sent.push(index, &wire_text(&client.session.updates(host)));
                }
                _ => return Err(format!("bad directive {key:?}")),
            }
            Ok(())
        }

        fn connect(&mut self, index: usize, sent: &mut Sent) {
            let session = Session::new(self.host.hostname());
            sent.push(index, &wire_text(&[session.greeting()]));
            if let Some(slot) = self.clients.get_mut(index) {
                *slot = Some(Client { session, assembler: Assembler::new(self.host.max_message_size()) });
            }
        }

        /// Feeds one client line the way the server's I/O layer would.
        fn client_line(&mut self, index: usize, text: &str, sent: &mut Sent) -> Result<(), String> {
            let literal = self.literal.take();
            let host = &self.host;
            let client = self.clients.get_mut(index).and_then(Option::as_mut).ok_or("client not connected")?;
            if let Some((size, data)) = literal {
                // Continuation of a command after its literal.
                if data.len() != size {
                    return Err(format!("literal has {} bytes, {size} announced", data.len()));
                }
                client.assembler.literal(&data);
            }
            let outcome = match client.session.expecting() {
                Expect::AuthResponse => client.session.auth_response(text.as_bytes(), host),
                Expect::IdleDone => client.session.idle_line(text.as_bytes(), host),
                Expect::Closed => return Err("the client spoke after the connection was closed".into()),
                Expect::Command => match client.assembler.line(text.as_bytes()) {
                    Framing::Complete(bytes) => match parse_command(&bytes) {
                        Ok(command) => client.session.command(command, host),
                        Err(error) => client.session.parse_error(error),
                    },
                    Framing::Literal { size, synchronizing } => {
                        if synchronizing {
                            sent.push(index, "+ Ready\r\n");
                        }
                        self.literal = Some((size, Vec::new()));
                        return Ok(());
                    }
                    Framing::TooBig { tag, size, synchronizing } => client.session.literal_too_big(tag.as_deref(), size, synchronizing),
                },
            };
            sent.push(index, &wire_text(&outcome.responses));
            Ok(())
        }

        fn other_line(&mut self, letter: &str, _: usize, text: &str, _: &mut Sent) -> Result<(), String> {
            let Some((_, data)) = self.literal.as_mut() else {
                return Err("a literal line without an announced literal".into());
            };
            match letter {
                "L" => data.extend_from_slice(format!("{text}\r\n").as_bytes()),
                "B" => data.extend_from_slice(text.as_bytes()),
                _ => return Err(format!("unknown line kind {letter:?}")),
            }
            Ok(())
        }

        fn is_closed(&self, index: usize) -> bool {
            self.clients.get(index).and_then(Option::as_ref).is_some_and(|c| c.session.expecting() == Expect::Closed)
        }
    }

    #[test]
    fn transcripts() {
        crate::transcripts::replay_all(TRANSCRIPT_DIR, 8, |text| replay(text, &mut ImapReplay::new()).map(drop));
    }

    #[test]
    fn wildcards() {
        for (pattern, name, expected) in [
            ("*", "Archive/2026", true),
            ("%", "Archive/2026", false),
            ("Archive/%", "Archive/2026", true),
            ("A*6", "Archive/2026", true),
            ("INBOX", "INBOX", true),
            ("", "INBOX", false),
            ("%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ] {
            assert_eq!(wildcard_match(pattern.as_bytes(), name.as_bytes()), expected, "{pattern} {name}");
        }
    }

    #[test]
    fn hostile_commands_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let commands = [
            "FETCH 1:* (FLAGS BODY[] BODYSTRUCTURE ENVELOPE)",
            "FETCH * BODY[1.2.3.HEADER]",
            "FETCH 2 (BODY[TEXT]<5.1000> RFC822)",
            "STORE 1:* +FLAGS (\\Deleted)",
            "EXPUNGE",
            "SEARCH OR FROM alice NOT TEXT x",
            "UID FETCH 1:* FULL",
            "COPY 1:* Archive",
            "CREATE Archive",
            "DELETE INBOX",
            "SELECT INBOX",
            "EXAMINE Archive",
            "CLOSE",
            "IDLE",
            "STATUS INBOX (MESSAGES UNSEEN)",
            "LIST \"\" *",
            "UID EXPUNGE 1:*",
            "APPEND INBOX {3+}\r\nabc",
            "FETCH 9 FLAGS",
            "RENAME INBOX Old",
        ];
        for round in 0..200 {
            // A fresh mailbox each round keeps the test fast.
            let host = FakeHost { store: Store::new(0) };
            host.store.deliver("bob@example.org", message("one", "x"), Duration::ZERO).expect("delivered");
            host.store.deliver("bob@example.org", b"garbage without header end".to_vec(), Duration::ZERO).expect("delivered");
            let mut s = Session::new("mx1");
            s.command(parse_command(b"a LOGIN bob@example.org builder").unwrap(), &host);
            if round % 3 != 0 {
                s.command(parse_command(b"a SELECT INBOX").unwrap(), &host);
            }
            for _ in 0..15 {
                let pick = commands[next() as usize % commands.len()];
                let command = parse_command(format!("t {pick}").as_bytes());
                let outcome = match command {
                    Ok(c) => s.command(c, &host),
                    Err(e) => s.parse_error(e),
                };
                for r in &outcome.responses {
                    assert!(r.bytes.ends_with(b"\r\n"));
                }
                if s.expecting() == Expect::IdleDone {
                    host.store.deliver("bob@example.org", message("more", "y"), Duration::ZERO).expect("delivered");
                    s.updates(&host);
                    s.idle_line(b"DONE", &host);
                }
            }
        }
    }
}

/// STARTTLS and LOGINDISABLED (RFC 3501 §6.2.1, RFC 2595 §3.2), kept apart
/// from the transcript tests above.
#[cfg(test)]
mod tls_tests {
    use super::super::parser::parse_command;
    use super::*;

    struct Host(Store);

    impl Backend for Host {
        fn hostname(&self) -> &str {
            "mx1.example.org"
        }
        fn authenticate(&self, user: &str, password: &str, _client: std::net::IpAddr) -> crate::login::Attempt {
            crate::login::Attempt::from_check((user == "bob@example.org" && password == "builder").then(|| user.to_string()))
        }
        fn store(&self) -> &Store {
            &self.0
        }
        fn now(&self) -> Duration {
            Duration::ZERO
        }
        fn max_message_size(&self) -> usize {
            1 << 20
        }
    }

    /// Runs one command; returns everything the server answered.
    fn say(session: &mut Session, host: &Host, line: &str) -> String {
        let outcome = session.command(parse_command(line.as_bytes()).unwrap(), host);
        outcome.responses.iter().map(|r| String::from_utf8_lossy(&r.bytes).into_owned()).collect()
    }

    #[test]
    fn passwords_wait_for_tls_where_plaintext_login_is_off() {
        let host = Host(Store::new(0));
        let mut session = Session::new("mx1.example.org").with_tls(true, false, false);
        let greeting = String::from_utf8_lossy(&session.greeting().bytes).into_owned();
        assert!(greeting.contains("STARTTLS LOGINDISABLED]"), "{greeting}");
        assert!(say(&mut session, &host, "a1 LOGIN bob@example.org builder").starts_with("a1 NO [PRIVACYREQUIRED]"));
        assert!(say(&mut session, &host, "a2 AUTHENTICATE PLAIN").starts_with("a2 NO [PRIVACYREQUIRED]"), "no + before TLS either");
        assert!(session.user().is_none());
        assert!(say(&mut session, &host, "a3 STARTTLS").starts_with("a3 OK Begin TLS"));
        assert!(session.take_start_tls() && !session.take_start_tls(), "the upgrade is asked for once");
        session.tls_started();
        let capability = say(&mut session, &host, "a4 CAPABILITY");
        assert!(capability.contains("AUTH=PLAIN") && !capability.contains("STARTTLS") && !capability.contains("LOGINDISABLED"), "{capability}");
        assert!(say(&mut session, &host, "a5 STARTTLS").starts_with("a5 BAD"), "TLS twice");
        assert!(say(&mut session, &host, "a6 LOGIN bob@example.org builder").starts_with("a6 OK"));
        assert!(say(&mut session, &host, "a7 STARTTLS").starts_with("a7 BAD"), "not after login");
    }

    #[test]
    fn without_tls_nothing_changes() {
        let host = Host(Store::new(0));
        let mut session = Session::new("mx1.example.org");
        let greeting = String::from_utf8_lossy(&session.greeting().bytes).into_owned();
        assert!(greeting.contains(&format!("[CAPABILITY {CAPABILITIES}]")), "{greeting}");
        assert!(say(&mut session, &host, "a1 STARTTLS").starts_with("a1 BAD"));
        assert!(!session.take_start_tls());
        assert!(say(&mut session, &host, "a2 LOGIN bob@example.org builder").starts_with("a2 OK"));
    }
}
