//! The server side of one POP3 connection, as a pure state machine.
//!
//! POP3 (RFC 1939) is how a device *downloads* its mail: it logs in, lists
//! what waits in its maildrop (the INBOX), retrieves each message, marks
//! it for deletion and says goodbye — and only then does the server delete
//! anything. A session walks through three states (RFC 1939 §3):
//!
//! 1. **AUTHORIZATION**: the client names its mailbox (`USER`) and proves
//!    it is the owner (`PASS`). A wrong password costs time and, after
//!    three, the connection. The server then *locks* the maildrop so no
//!    second POP3 session can change it meanwhile (RFC 1939 §8).
//! 2. **TRANSACTION**: the client works on a fixed list of messages,
//!    numbered 1, 2, 3 … for this session only (mail arriving now waits
//!    for the next session). `DELE` only *marks* a message.
//! 3. **UPDATE**: entered by `QUIT`; now the marked messages are removed
//!    for good. A connection that breaks before `QUIT` never gets here, so
//!    it deletes nothing.
//!
//! This file does no I/O: the I/O layer (`server.rs`) feeds it parsed
//! lines and sends back the [`Step`]s it returns. Who may log in, which
//! messages there are and how they are removed come from a [`Maildrops`]
//! backend, the mail host's store. It is where a message leaves its
//! server for the last hop of its journey, onto the device.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::command::{Command, ParseError};
use super::reply::{Code, Reply};
use crate::login::{Attempt, Verdict};
use crate::trace::human_bytes;

/// How a server behaves.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The host's name, in the greeting.
    pub hostname: String,
    /// Wrong passwords allowed before the server hangs up.
    pub max_auth_failures: u32,
    /// The client's address: logins are throttled per account and per
    /// address (the wait before a wrong password's answer comes from the
    /// host's accounts, see `mta::throttle`).
    pub client: IpAddr,
    /// Unknown or misplaced commands allowed before the server hangs up.
    pub max_errors: u32,
    /// The server can do STLS on this connection (RFC 2595 §4).
    pub stls: bool,
    /// USER and PASS are accepted before TLS. If not, they get
    /// `-ERR [AUTH]` and CAPA leaves out USER until the connection is
    /// encrypted.
    pub plaintext_login: bool,
    /// The connection is encrypted from the start (POP3S, port 995).
    pub implicit_tls: bool,
}

impl SessionConfig {
    pub fn new(hostname: impl Into<String>) -> Self {
        SessionConfig {
            hostname: hostname.into(),
            max_auth_failures: 3,
            client: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            max_errors: 10,
            stls: false,
            plaintext_login: true,
            implicit_tls: false,
        }
    }
}

/// One message of a maildrop, as a session sees it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The store's UID: never changes, never reused in this mailbox.
    pub uid: u32,
    pub raw: Arc<Vec<u8>>,
}

/// The messages of a maildrop when the session opened it.
#[derive(Clone, Debug, Default)]
pub struct Maildrop {
    /// The mailbox's UIDVALIDITY: with the UID it makes the UIDL id.
    pub uid_validity: u32,
    pub messages: Vec<Entry>,
}

/// The mail host behind a POP3 server: its users and their maildrops.
pub trait Maildrops {
    /// Held while a session has the maildrop open; dropping it unlocks.
    type Lock;
    /// Checks a login from `client`: welcome (with the user's canonical
    /// name) if the password is right and the user's mailbox lives here,
    /// refused otherwise (never say which was wrong), or locked; and how
    /// long to wait before answering.
    fn login(&self, user: &str, password: &str, client: IpAddr) -> Attempt;
    /// Does `user` still have the app password named `name`? A session
    /// logged in with one that was revoked is ended by the server.
    fn app_password_valid(&self, _user: &str, _name: &str) -> bool {
        true
    }
    /// Locks the user's maildrop, or `None` if another session has it.
    fn lock(&self, user: &str) -> Option<Self::Lock>;
    /// The user's INBOX now.
    fn open(&self, user: &str) -> Maildrop;
    /// Removes messages for good (the UPDATE state); how many went.
    fn remove(&self, user: &str, uids: &[u32]) -> Result<usize, String>;
}

/// The state of a session (RFC 1939 §3), each carrying what it needs.
#[derive(Debug)]
enum State<L> {
    /// Not logged in yet; `user` is set after a USER command.
    Authorization { user: Option<String>, failures: u32 },
    /// Logged in: the maildrop is locked (`lock`), `deleted` holds the
    /// indexes (from 0) of the messages marked by DELE.
    Transaction { user: String, lock: L, maildrop: Maildrop, deleted: BTreeSet<usize> },
    /// After QUIT or a fatal error: nothing more is read.
    Closed,
}

/// The state's name as RFC 1939 writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Authorization,
    Transaction,
    Closed,
}

/// What the I/O layer does with one client line.
#[derive(Clone, Debug)]
pub struct Step {
    pub reply: Reply,
    /// The answer in a few words for students (the server's name is put
    /// in front by the I/O layer).
    pub summary: String,
    /// Why this moment matters, for the lesson.
    pub explain: Option<Explain>,
    /// Wait this long in simulated time before answering.
    pub delay: Option<Duration>,
    /// Close the connection after the answer.
    pub close: bool,
    /// After the answer, run the TLS handshake (STLS was accepted).
    pub start_tls: bool,
}

impl Step {
    fn new(reply: Reply, summary: impl Into<String>) -> Self {
        Step { reply, summary: summary.into(), explain: None, delay: None, close: false, start_tls: false }
    }

    fn explain(mut self, text: Explain) -> Self {
        self.explain = Some(text);
        self
    }

    fn close(mut self) -> Self {
        self.close = true;
        self
    }
}

/// A lesson attached to a key moment: a title and the explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Explain {
    pub title: &'static str,
    pub text: &'static str,
}

pub const EXPLAIN_LOCKED: Explain = Explain {
    title: "the maildrop is locked",
    text: "The server locks the maildrop for this session: a second POP3 session for the same mailbox is refused until this one ends (RFC 1939 §8), so two devices cannot delete the same messages at once.",
};
pub const EXPLAIN_UIDL: Explain = Explain {
    title: "what UIDL is for",
    text: "UIDL gives every message an ID that never changes (message numbers are only for this session). A device that leaves mail on the server remembers the IDs it has downloaded, so next time it fetches only the new ones.",
};
pub const EXPLAIN_DELE: Explain = Explain {
    title: "DELE only marks",
    text: "DELE only marks the message. It is removed when the client says QUIT; if the connection breaks first, nothing is deleted.",
};
pub const EXPLAIN_REMOVED: Explain = Explain {
    title: "the mail now lives only on the device",
    text: "POP3 moves mail rather than sharing it: these messages are gone from the server, and the only copy now lives on the device. Another device will never see them, and if this device is lost, so is the mail — unless someone makes backups.",
};
pub const EXPLAIN_AUTH_FAILED: Explain = Explain {
    title: "why a wrong password is slow",
    text: "A wrong password costs time: the server waits before answering and hangs up after three failures, so guessing passwords is slow. The answer never says whether the user or the password was wrong.",
};
pub const EXPLAIN_IN_USE: Explain = Explain {
    title: "one POP3 session at a time",
    text: "Another POP3 session has this maildrop open and locked. The server refuses a second one so the two cannot fight over the same messages.",
};
pub const EXPLAIN_STLS: Explain = Explain {
    title: "STLS: this connection becomes encrypted",
    text: "STLS (RFC 2595 §4) turns this very connection into an encrypted one: after the server's +OK both sides run a TLS handshake, and the password and the mail then cross the wire as ciphertext. Anything sent before it is forgotten; the client asks CAPA again.",
};
pub const EXPLAIN_TLS_REQUIRED: Explain = Explain {
    title: "no password before TLS",
    text: "This server refuses USER and PASS on an unencrypted connection: anyone on the path could read the password. The client must say STLS first (or use POP3S, port 995).",
};
pub const EXPLAIN_DROPPED: Explain = Explain {
    title: "no QUIT, no deletion",
    text: "The connection ended without QUIT, so the session never reached the UPDATE state: the messages marked for deletion stay on the server (RFC 1939 §6).",
};

/// One POP3 session. `L` is the backend's lock type.
#[derive(Debug)]
pub struct Session<L> {
    config: SessionConfig,
    state: State<L>,
    errors: u32,
    /// The connection is encrypted (POP3S, or after STLS).
    tls_active: bool,
    /// The app password this session logged in with, if any.
    app_password: Option<String>,
}

/// The octets a message takes on the wire (RFC 1939 §11: sizes are
/// counted with CRLF line ends, before byte-stuffing).
pub fn octets(raw: &[u8]) -> usize {
    let mut bare_lf = 0;
    let mut previous = 0u8;
    for &b in raw {
        if b == b'\n' && previous != b'\r' {
            bare_lf += 1;
        }
        previous = b;
    }
    let unterminated = if !raw.is_empty() && !raw.ends_with(b"\n") { 2 } else { 0 };
    raw.len() + bare_lf + unterminated
}

/// The headers and the first `lines` lines of the body (TOP, RFC 1939 §7).
pub fn top(raw: &[u8], lines: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = raw;
    // Header lines up to and including the empty line.
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        out.extend_from_slice(line);
        rest = tail;
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    for _ in 0..lines {
        if rest.is_empty() {
            break;
        }
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        out.extend_from_slice(line);
        rest = tail;
    }
    out
}

/// "1 message", "3 messages".
fn messages(n: usize) -> String {
    if n == 1 { "1 message".into() } else { format!("{n} messages") }
}

impl<L> Session<L> {
    pub fn new(config: SessionConfig) -> Self {
        let tls_active = config.implicit_tls;
        Session { config, state: State::Authorization { user: None, failures: 0 }, errors: 0, tls_active, app_password: None }
    }

    /// The handshake after STLS succeeded.
    pub fn tls_started(&mut self) {
        self.tls_active = true;
    }

    /// May the client send USER and PASS now?
    fn login_allowed(&self) -> bool {
        self.tls_active || self.config.plaintext_login
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn phase(&self) -> Phase {
        match self.state {
            State::Authorization { .. } => Phase::Authorization,
            State::Transaction { .. } => Phase::Transaction,
            State::Closed => Phase::Closed,
        }
    }

    /// The logged-in user.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Transaction { user, .. } => Some(user),
            _ => None,
        }
    }

    /// How many messages are marked for deletion.
    pub fn marked(&self) -> usize {
        match &self.state {
            State::Transaction { deleted, .. } => deleted.len(),
            _ => 0,
        }
    }

    /// The first thing the server says (RFC 1939 §4).
    pub fn greeting(&self) -> Step {
        Step::new(Reply::ok(format!("{} POP3 server ready (mailflow)", self.config.hostname)), "is ready to serve mail by POP3")
    }

    /// The message a command is about, if it names one that exists (so the
    /// trace can label the line with the message).
    pub fn target(&self, command: &Command) -> Option<Arc<Vec<u8>>> {
        let n = match command {
            Command::Retr(n) | Command::Dele(n) | Command::Top { msg: n, .. } | Command::List(Some(n)) | Command::Uidl(Some(n)) => *n,
            _ => return None,
        };
        match &self.state {
            State::Transaction { maildrop, .. } => maildrop.messages.get((n as usize).checked_sub(1)?).map(|e| e.raw.clone()),
            _ => None,
        }
    }

    /// The client sent a line longer than 255 octets; it was dropped.
    pub fn line_too_long(&mut self) -> Step {
        self.error(Reply::err("line too long (a command is at most 255 octets, RFC 2449)"))
    }

    /// The client was silent too long: log out without UPDATE (RFC 1939 §3).
    pub fn timeout(&mut self) -> Step {
        self.state = State::Closed;
        Step::new(Reply::err("autologout: idle for too long, nothing was deleted"), "hangs up: the client was idle too long (nothing is deleted)").close()
    }

    /// The app password this session logged in with, if it did.
    pub fn app_password(&self) -> Option<&str> {
        self.app_password.as_deref().filter(|_| self.phase() == Phase::Transaction)
    }

    /// The app password this session logged in with was revoked: the
    /// server hangs up, deleting nothing (no QUIT, no UPDATE state).
    pub fn revoked(&mut self) -> Step {
        self.state = State::Closed;
        Step::new(
            Reply::err_code(Code::Auth, "your app password was revoked; nothing was deleted"),
            "hangs up: the app password of this device was revoked (nothing is deleted)",
        )
        .close()
    }

    /// The server is stopping: nothing is deleted.
    pub fn shutdown(&mut self) -> Step {
        self.state = State::Closed;
        Step::new(Reply::err_code(Code::SysTemp, "server shutting down, nothing was deleted"), "is shutting down and hangs up (nothing is deleted)").close()
    }

    /// Counts a refused command; too many end the connection.
    fn error(&mut self, reply: Reply) -> Step {
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.state = State::Closed;
            return Step::new(Reply::err("too many errors, closing the connection"), "hangs up: too many bad commands").close();
        }
        let summary = format!("refuses: {}", reply.text);
        Step::new(reply, summary)
    }

    /// Handles one parsed client line.
    pub fn command<B: Maildrops<Lock = L>>(&mut self, input: Result<Command, ParseError>, backend: &B) -> Step {
        let command = match input {
            Ok(command) => command,
            Err(err) => return self.error(err.reply()),
        };
        // CAPA works in both states (RFC 2449 §5); everything else depends on the state.
        if command == Command::Capa && !matches!(self.state, State::Closed) {
            return self.capa();
        }
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Closed => Step::new(Reply::err("the session is over"), "says the session is over").close(),
            State::Authorization { user, failures } => self.authorization(command, user, failures, backend),
            State::Transaction { user, lock, maildrop, deleted } => self.transaction(command, user, lock, maildrop, deleted, backend),
        }
    }

    fn capa(&self) -> Step {
        // RFC 2449 §5: what is offered before login is announced after it too.
        let mut lines: Vec<String> = ["TOP", "UIDL"].map(String::from).to_vec();
        if self.login_allowed() {
            lines.push("USER".into());
        }
        lines.extend(["RESP-CODES", "PIPELINING"].map(String::from));
        let stls = self.config.stls && !self.tls_active && matches!(self.state, State::Authorization { .. });
        if stls {
            lines.push("STLS".into());
        }
        lines.push("IMPLEMENTATION mailflow".into());
        let summary = match (stls, self.login_allowed()) {
            (true, false) => "lists what it can do (CAPA): STLS, and no USER — no password before TLS",
            (true, true) => "lists what it can do (CAPA, RFC 2449), STLS among it",
            _ => "lists what it can do (CAPA, RFC 2449)",
        };
        Step::new(Reply::ok("capability list follows").with_lines(lines), summary)
    }

    fn authorization<B: Maildrops<Lock = L>>(&mut self, command: Command, user: Option<String>, failures: u32, backend: &B) -> Step {
        self.state = State::Authorization { user: None, failures };
        match command {
            Command::User(_) | Command::Pass(_) if !self.login_allowed() => Step::new(
                Reply::err_code(Code::Auth, "plaintext login is disabled: use STLS first"),
                "refuses: no password on an unencrypted connection; STLS first",
            )
            .explain(EXPLAIN_TLS_REQUIRED),
            Command::Stls if self.tls_active => self.error(Reply::err("TLS is already active")),
            Command::Stls if !self.config.stls => self.error(Reply::err("STLS is not offered here")),
            Command::Stls => {
                // A USER given before TLS is forgotten with everything else.
                let mut step = Step::new(Reply::ok("begin TLS negotiation"), "agrees: the TLS handshake starts now").explain(EXPLAIN_STLS);
                step.start_tls = true;
                step
            }
            Command::User(name) => {
                // Same answer whether or not the user exists: no hints for guessers.
                self.state = State::Authorization { user: Some(name.clone()), failures };
                Step::new(Reply::ok(format!("send the password for {name}")), format!("asks for the password of {name}"))
            }
            Command::Pass(password) => {
                let Some(name) = user else {
                    return self.error(Reply::err("send USER first"));
                };
                let attempt = backend.login(&name, &password, self.config.client);
                let delay = (!attempt.delay.is_zero()).then_some(attempt.delay);
                match attempt.verdict {
                    Verdict::Refused | Verdict::AppPasswordRequired | Verdict::Locked { .. } => {
                        let failures = failures + 1;
                        let max = self.config.max_auth_failures;
                        // RFC 3206: [AUTH] for credentials, [SYS/TEMP] for "not now, later".
                        let (reply, why) = match attempt.verdict {
                            Verdict::AppPasswordRequired => (
                                Reply::err_code(Code::Auth, "Application-specific password required: this account has two-factor sign-in; use an app password"),
                                "the main password of a two-factor account: a mail program needs an app password",
                            ),
                            Verdict::Locked { .. } => (
                                Reply::err_code(Code::SysTemp, "too many failed logins; temporarily locked, try again later"),
                                "too many failed logins, the account is locked for now",
                            ),
                            _ => (Reply::err_code(Code::Auth, "invalid user name or password"), "wrong user name or password"),
                        };
                        let pause = if delay.is_some() { " after a pause" } else { "" };
                        let mut step = Step::new(reply, format!("refuses the login{pause}: {why} (failure {failures} of {max} on this connection)"))
                            .explain(EXPLAIN_AUTH_FAILED);
                        step.delay = delay;
                        if failures >= max {
                            self.state = State::Closed;
                            step.summary = format!("refuses the login{pause} and hangs up: {failures} failed logins");
                            let code = step.reply.code.unwrap_or(Code::Auth);
                            step.reply = Reply::err_code(code, "too many failed logins on this connection, closing");
                            step.close = true;
                        } else {
                            self.state = State::Authorization { user: None, failures };
                        }
                        step
                    }
                    Verdict::Welcome { address: account, app_password } => match backend.lock(&account) {
                        None => Step::new(
                            Reply::err_code(Code::InUse, "maildrop already locked by another POP3 session"),
                            format!("refuses: {account}'s maildrop is in use by another session"),
                        )
                        .explain(EXPLAIN_IN_USE),
                        Some(lock) => {
                            let maildrop = backend.open(&account);
                            let (count, size) = (maildrop.messages.len(), maildrop.messages.iter().map(|e| octets(&e.raw)).sum::<usize>());
                            let step = Step::new(
                                Reply::ok(format!("{account} has {} ({size} octets)", messages(count))),
                                format!("welcomes {account}: {} waiting, {}; the maildrop is now locked", messages(count), human_bytes(size as u64)),
                            )
                            .explain(EXPLAIN_LOCKED);
                            self.state = State::Transaction { user: account, lock, maildrop, deleted: BTreeSet::new() };
                            self.app_password = app_password;
                            step
                        }
                    },
                }
            }
            Command::Quit => {
                self.state = State::Closed;
                Step::new(Reply::ok(format!("{} POP3 server signing off", self.config.hostname)), "says goodbye (nobody logged in, nothing changes)").close()
            }
            Command::Capa => self.capa(),
            _ => {
                self.state = State::Authorization { user, failures };
                self.error(Reply::err("not logged in: use USER and PASS first"))
            }
        }
    }

    fn transaction<B: Maildrops<Lock = L>>(
        &mut self,
        command: Command,
        user: String,
        lock: L,
        maildrop: Maildrop,
        mut deleted: BTreeSet<usize>,
        backend: &B,
    ) -> Step {
        // Looks up message `n` (from 1) that is not marked deleted.
        let find = |n: u32, deleted: &BTreeSet<usize>| -> Result<(usize, &Entry), Reply> {
            let index = (n as usize).checked_sub(1).filter(|&i| i < maildrop.messages.len()).ok_or_else(|| Reply::err(format!("no such message: {n}")))?;
            if deleted.contains(&index) {
                return Err(Reply::err(format!("message {n} already deleted")));
            }
            Ok((index, &maildrop.messages[index]))
        };
        let uidl = |entry: &Entry| format!("{}.{}", maildrop.uid_validity, entry.uid);
        let live = || maildrop.messages.iter().enumerate().filter(|(i, _)| !deleted.contains(i));
        let result: Result<Step, Reply> = match &command {
            Command::Stat => {
                let (count, size) = live().fold((0, 0), |(c, s), (_, e)| (c + 1, s + octets(&e.raw)));
                Ok(Step::new(Reply::ok(format!("{count} {size}")), format!("answers: {} waiting, {}", messages(count), human_bytes(size as u64))))
            }
            Command::List(None) => {
                let lines: Vec<String> = live().map(|(i, e)| format!("{} {}", i + 1, octets(&e.raw))).collect();
                let size: usize = live().map(|(_, e)| octets(&e.raw)).sum();
                let summary = format!("lists the size of each message: {}, {} in all", messages(lines.len()), human_bytes(size as u64));
                Ok(Step::new(Reply::ok(format!("{} ({size} octets)", messages(lines.len()))).with_lines(lines), summary))
            }
            Command::List(Some(n)) => find(*n, &deleted).map(|(_, e)| {
                let size = octets(&e.raw);
                Step::new(Reply::ok(format!("{n} {size}")), format!("answers: message {n} is {}", human_bytes(size as u64)))
            }),
            Command::Uidl(None) => {
                let lines: Vec<String> = live().map(|(i, e)| format!("{} {}", i + 1, uidl(e))).collect();
                let summary = format!("lists the unique ID of each message ({})", messages(lines.len()));
                Ok(Step::new(Reply::ok("unique-id listing follows").with_lines(lines), summary).explain(EXPLAIN_UIDL))
            }
            Command::Uidl(Some(n)) => {
                find(*n, &deleted).map(|(_, e)| Step::new(Reply::ok(format!("{n} {}", uidl(e))), format!("answers: message {n} has the unique ID {}", uidl(e))))
            }
            Command::Retr(n) => find(*n, &deleted).map(|(_, e)| {
                let size = octets(&e.raw);
                Step::new(Reply::ok(format!("{size} octets")).with_message(e.raw.clone()), format!("sends message {n} ({})", human_bytes(size as u64)))
            }),
            Command::Top { msg, lines } => find(*msg, &deleted).map(|(_, e)| {
                let summary = format!("sends the headers and the first {lines} body lines of message {msg}");
                Step::new(Reply::ok("top of message follows").with_message(Arc::new(top(&e.raw, *lines))), summary)
            }),
            Command::Dele(n) => find(*n, &deleted).map(|(index, _)| index).map(|index| {
                deleted.insert(index);
                Step::new(Reply::ok(format!("message {n} deleted")), format!("marks message {n} for deletion (it goes at QUIT)")).explain(EXPLAIN_DELE)
            }),
            Command::Rset => {
                let count = deleted.len();
                deleted.clear();
                let size: usize = maildrop.messages.iter().map(|e| octets(&e.raw)).sum();
                let reply = Reply::ok(format!("maildrop has {} ({size} octets)", messages(maildrop.messages.len())));
                Ok(Step::new(reply, format!("unmarks {}: nothing will be deleted", messages(count))))
            }
            Command::Noop => Ok(Step::new(Reply::ok(""), "is still here")),
            Command::Quit => {
                // The UPDATE state (RFC 1939 §6): only now is anything removed.
                let uids: Vec<u32> = deleted.iter().map(|&i| maildrop.messages[i].uid).collect();
                let name = &self.config.hostname;
                let step = if uids.is_empty() {
                    Step::new(Reply::ok(format!("{name} POP3 server signing off")), "says goodbye; nothing was marked, nothing is deleted")
                } else {
                    match backend.remove(&user, &uids) {
                        Ok(_) => Step::new(
                            Reply::ok(format!("{name} POP3 server signing off ({} deleted)", messages(uids.len()))),
                            format!("deletes {} for good and says goodbye", messages(uids.len())),
                        )
                        .explain(EXPLAIN_REMOVED),
                        Err(why) => Step::new(
                            Reply::err_code(Code::SysTemp, format!("some deleted messages not removed: {why}")),
                            format!("could not delete the marked messages: {why}"),
                        ),
                    }
                };
                drop(lock); // the maildrop is free again before the client hears goodbye
                return step.close();
            }
            Command::Capa => Ok(self.capa()),
            Command::User(_) | Command::Pass(_) => Err(Reply::err("already logged in")),
            Command::Stls => Err(Reply::err("STLS only before login (RFC 2595 §4)")),
        };
        self.state = State::Transaction { user, lock, maildrop, deleted };
        match result {
            Ok(step) => step,
            Err(reply) => self.error(reply),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::command::{COMMAND_LINE_MAX, Input, Receiver, parse};
    use super::*;
    use crate::transcripts::{Adapter, Sent, replay};
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::rc::Rc;

    const TRANSCRIPT_DIR: &str = "tests/transcripts/pop3";

    const MESSAGE_1: &[u8] =
        b"From: alice@school.test\r\nTo: bob@example.org\r\nSubject: Lunch?\r\n\r\nHi Bob,\r\n.hidden dot line\r\nlunch at noon?\r\n.\r\nAlice\r\n";
    const MESSAGE_2: &[u8] = b"From: carol@example.org\r\nSubject: Notes\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";

    /// bob@example.org/builder has two messages, carol@example.org/secret
    /// none. The lock and removals are shared, so tests can look.
    #[derive(Default)]
    struct Fake {
        locked: Rc<RefCell<HashSet<String>>>,
        removed: RefCell<Vec<u32>>,
    }

    struct FakeLock(Rc<RefCell<HashSet<String>>>, String);
    impl Drop for FakeLock {
        fn drop(&mut self) {
            self.0.borrow_mut().remove(&self.1);
        }
    }

    impl Maildrops for Fake {
        type Lock = FakeLock;
        fn login(&self, user: &str, password: &str, _client: std::net::IpAddr) -> crate::login::Attempt {
            let user = user.to_ascii_lowercase();
            let mut attempt = crate::login::Attempt::from_check(
                matches!((user.as_str(), password), ("bob@example.org", "builder") | ("carol@example.org", "secret")).then_some(user),
            );
            if attempt.verdict == Verdict::Refused {
                // A host's accounts throttle: a failure is answered late.
                attempt.delay = Duration::from_secs(1);
            }
            attempt
        }
        fn lock(&self, user: &str) -> Option<FakeLock> {
            self.locked.borrow_mut().insert(user.to_string()).then(|| FakeLock(self.locked.clone(), user.to_string()))
        }
        fn open(&self, user: &str) -> Maildrop {
            let messages = if user == "bob@example.org" {
                vec![Entry { uid: 7, raw: Arc::new(MESSAGE_1.to_vec()) }, Entry { uid: 9, raw: Arc::new(MESSAGE_2.to_vec()) }]
            } else {
                vec![]
            };
            Maildrop { uid_validity: 1700, messages }
        }
        fn remove(&self, _user: &str, uids: &[u32]) -> Result<usize, String> {
            self.removed.borrow_mut().extend_from_slice(uids);
            Ok(uids.len())
        }
    }

    /// What the server sends for a step, as a client would read it.
    fn wire_text(step: &Step) -> String {
        let mut text = step.reply.head_to_wire();
        if let super::super::reply::Body::Message(content) = &step.reply.body {
            text.push_str(&String::from_utf8_lossy(&crate::wire::dot::stuff(content)));
        }
        text
    }

    /// The POP3 side of the transcript harness (`crate::transcripts`): `C:` lines go to the
    /// session through a [`Receiver`], as the server's I/O layer cuts them. Directives:
    /// `! locked USER` (another session holds USER's maildrop),
    /// `! removed 7,9` / `! removed none` (what UPDATE removed so far),
    /// `! closed` (the server has hung up), `! delayed` (the last answer
    /// came after the failure delay).
    struct Pop3Replay {
        fake: Fake,
        held: Vec<FakeLock>,
        session: Option<Session<FakeLock>>,
        receiver: Receiver,
        last_delay: Option<Duration>,
    }

    impl Pop3Replay {
        fn new() -> Self {
            Self { fake: Fake::default(), held: Vec::new(), session: None, receiver: Receiver::new(COMMAND_LINE_MAX), last_delay: None }
        }
    }

    impl Adapter for Pop3Replay {
        fn directive(&mut self, key: &str, value: &str, _: &mut Sent) -> Result<(), String> {
            match key {
                "locked" => self.held.push(self.fake.lock(value).ok_or("already locked")?),
                "removed" => {
                    let want: Vec<u32> = if value == "none" { vec![] } else { value.split(',').filter_map(|v| v.trim().parse().ok()).collect() };
                    if *self.fake.removed.borrow() != want {
                        return Err(format!("removed {:?}, expected {want:?}", self.fake.removed.borrow()));
                    }
                }
                "closed" if !self.is_closed(0) => return Err("the session is still open".into()),
                "delayed" if self.last_delay.is_none() => return Err("the last answer was not delayed".into()),
                "closed" | "delayed" => {}
                _ => return Err(format!("bad directive {key:?}")),
            }
            Ok(())
        }

        fn connect(&mut self, _: usize, sent: &mut Sent) {
            let session = Session::new(SessionConfig::new("mx1.example.org"));
            sent.push(0, &wire_text(&session.greeting()));
            self.session = Some(session);
        }

        fn client_line(&mut self, _: usize, text: &str, sent: &mut Sent) -> Result<(), String> {
            let s = self.session.as_mut().ok_or("no session")?;
            // `\x00`-style escapes let a transcript send any byte.
            let bytes = unescape(text);
            for input in self.receiver.feed(&[bytes.as_slice(), b"\r\n"].concat()) {
                if s.phase() == Phase::Closed {
                    return Err("client spoke after the connection was closed".into());
                }
                let step = match input {
                    Input::Line(line) => s.command(parse(&line), &self.fake),
                    Input::TooLong => s.line_too_long(),
                };
                self.last_delay = step.delay;
                sent.push(0, &wire_text(&step));
            }
            Ok(())
        }

        fn is_closed(&self, _: usize) -> bool {
            self.session.as_ref().is_some_and(|s| s.phase() == Phase::Closed)
        }
    }

    /// `\xNN` → byte NN; `{N*c}` → N copies of the character c (for
    /// long lines).
    fn unescape(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\\'
                && bytes.get(i + 1) == Some(&b'x')
                && i + 4 <= bytes.len()
                && let Some(b) = std::str::from_utf8(&bytes[i + 2..i + 4]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 4;
                continue;
            }
            if bytes[i] == b'{'
                && let Some(end) = text[i..].find('}')
                && let Some((count, c)) = text[i + 1..i + end].split_once('*')
                && let Ok(count) = count.parse::<usize>()
            {
                out.extend(std::iter::repeat_n(c.as_bytes().first().copied().unwrap_or(b'x'), count));
                i += end + 1;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    }

    #[test]
    fn transcripts() {
        crate::transcripts::replay_all(TRANSCRIPT_DIR, 10, |text| replay(text, &mut Pop3Replay::new()).map(drop));
    }

    #[test]
    fn sizes_and_top() {
        assert_eq!(octets(b"a\r\nb\r\n"), 6);
        assert_eq!(octets(b"a\nb"), 6, "bare LF and the missing final line end are counted as sent");
        assert_eq!(octets(b""), 0);
        assert_eq!(top(MESSAGE_2, 0), b"From: carol@example.org\r\nSubject: Notes\r\n\r\n");
        assert_eq!(top(MESSAGE_2, 2), b"From: carol@example.org\r\nSubject: Notes\r\n\r\nline 1\r\nline 2\r\n");
        assert_eq!(top(MESSAGE_2, 99), MESSAGE_2);
        assert_eq!(top(b"no body at all", 5), b"no body at all");
    }

    #[test]
    fn lock_is_released_by_quit_and_by_dropping_the_session() {
        let fake = Fake::default();
        let login = |s: &mut Session<FakeLock>| {
            s.command(parse(b"USER bob@example.org"), &fake);
            s.command(parse(b"PASS builder"), &fake)
        };
        let mut first = Session::new(SessionConfig::new("mx"));
        assert!(login(&mut first).reply.is_ok());
        let mut second = Session::new(SessionConfig::new("mx"));
        assert_eq!(login(&mut second).reply.code, Some(Code::InUse));
        first.command(parse(b"DELE 1"), &fake);
        drop(first); // the connection broke: no UPDATE
        assert!(fake.removed.borrow().is_empty());
        assert!(login(&mut second).reply.is_ok(), "the lock went with the dropped session");
        assert_eq!(second.command(parse(b"QUIT"), &fake).reply.status_line(), "+OK mx POP3 server signing off");
        assert!(fake.locked.borrow().is_empty());
    }

    #[test]
    fn timeout_and_shutdown_delete_nothing() {
        let fake = Fake::default();
        let mut s: Session<FakeLock> = Session::new(SessionConfig::new("mx"));
        s.command(parse(b"USER bob@example.org"), &fake);
        s.command(parse(b"PASS builder"), &fake);
        s.command(parse(b"DELE 1"), &fake);
        assert_eq!(s.marked(), 1);
        let step = s.timeout();
        assert!(step.close && step.reply.status_line().starts_with("-ERR autologout"));
        assert_eq!(s.phase(), Phase::Closed);
        assert!(fake.removed.borrow().is_empty() && fake.locked.borrow().is_empty(), "no UPDATE, and the lock is free");
        let mut s: Session<FakeLock> = Session::new(SessionConfig::new("mx"));
        assert_eq!(s.shutdown().reply.status_line(), "-ERR [SYS/TEMP] server shutting down, nothing was deleted");
        assert!(s.command(parse(b"NOOP"), &fake).close);
    }

    #[test]
    fn stls_comes_before_any_password_where_plaintext_login_is_off() {
        let fake = Fake::default();
        let config = SessionConfig { stls: true, plaintext_login: false, ..SessionConfig::new("mx") };
        let mut s: Session<FakeLock> = Session::new(config);
        let capa = s.command(parse(b"CAPA"), &fake).reply.head_to_wire();
        assert!(capa.contains("STLS\r\n") && !capa.contains("USER\r\n"), "{capa}");
        for line in [&b"USER bob@example.org"[..], b"PASS builder"] {
            let step = s.command(parse(line), &fake);
            assert!(step.reply.status_line().starts_with("-ERR [AUTH] plaintext login is disabled"), "{}", step.reply.status_line());
        }
        let step = s.command(parse(b"STLS"), &fake);
        assert!(step.start_tls && step.reply.status_line() == "+OK begin TLS negotiation");
        s.tls_started();
        let capa = s.command(parse(b"CAPA"), &fake).reply.head_to_wire();
        assert!(!capa.contains("STLS") && capa.contains("USER\r\n"), "{capa}");
        assert!(!s.command(parse(b"STLS"), &fake).start_tls, "not twice");
        s.command(parse(b"USER bob@example.org"), &fake);
        assert!(s.command(parse(b"PASS builder"), &fake).reply.is_ok());
        assert!(s.command(parse(b"STLS"), &fake).reply.status_line().starts_with("-ERR STLS only before login"));
    }

    #[test]
    fn stls_is_refused_where_it_is_not_offered() {
        let fake = Fake::default();
        let mut s: Session<FakeLock> = Session::new(SessionConfig::new("mx"));
        let step = s.command(parse(b"STLS"), &fake);
        assert!(!step.start_tls && !step.reply.is_ok());
        assert!(!s.command(parse(b"CAPA"), &fake).reply.head_to_wire().contains("STLS"));
    }

    #[test]
    fn hostile_input_never_panics() {
        let fake = Fake::default();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let prefixes: [&[u8]; 12] = [b"USER ", b"PASS ", b"LIST ", b"UIDL ", b"RETR ", b"TOP ", b"DELE ", b"STAT", b"RSET", b"QUIT", b"CAPA", b"NOOP"];
        let alphabet = b"0123456789 -+bob@example.org\x00\xff\r";
        let mut s: Session<FakeLock> = Session::new(SessionConfig { max_errors: u32::MAX, ..SessionConfig::new("mx") });
        for i in 0..20_000u32 {
            if s.phase() == Phase::Closed || i % 40 == 0 {
                s = Session::new(SessionConfig { max_errors: u32::MAX, ..SessionConfig::new("mx") });
                if i % 80 == 0 {
                    s.command(parse(b"USER bob@example.org"), &fake);
                    s.command(parse(b"PASS builder"), &fake);
                }
            }
            let mut line = prefixes[next() as usize % prefixes.len()].to_vec();
            for _ in 0..next() % 12 {
                line.push(alphabet[next() as usize % alphabet.len()]);
            }
            let step = s.command(parse(&line), &fake);
            assert!(!step.reply.status_line().contains('\n'), "{line:?}");
            let _ = s.target(&Command::Retr((next() % 4) as u32));
        }
    }
}
