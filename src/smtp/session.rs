//! The server side of one SMTP connection, as a pure state machine.
//!
//! This models an SMTP server receiving mail (RFC 5321 §3 and §4.1), either as a
//! mail-exchange MTA on port 25 (`Role::Relay`: anyone may deliver to *our* domains) or as
//! a submission server on port 587 (`Role::Submission`: logged-in users send anywhere;
//! AUTH per RFC 4954). It is where a message enters a server: the I/O layer feeds it one
//! line at a time and sends back the replies it returns (enhanced codes per RFC 3463,
//! SIZE per RFC 1870, PIPELINING per RFC 2920, STARTTLS per RFC 3207). When the message
//! body has arrived the session hands over an `Envelope`; only after the I/O layer has
//! stored it does the session produce the final `250`, so nothing accepted is ever lost.
//! Decisions about users and recipients come from a `Policy`, keeping this file free of I/O.
//!
//! Where the dialogue stands is one `State` value whose variants carry their own data
//! (before EHLO, greeted with an optional transaction, in an AUTH exchange, reading DATA,
//! storing, closed): each method takes the state out, decides, and puts the next one back, so
//! a command out of order can only get its `503`, never reach data that does not exist yet.

use super::command::{self, Command, MailParams};
use super::reply::{EnhancedCode, Reply};
use crate::login::{Attempt, Verdict};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::time::Duration;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const COMMAND_LINE_MAX: usize = 512;
/// RFC 5321 §4.5.3.1.6: a line of message text is at most 1000 octets including CRLF.
pub const TEXT_LINE_MAX: usize = 1000;
/// The largest message a server takes unless its scenario says otherwise
/// (announced as SIZE, RFC 1870; 10 MiB, as many providers' defaults).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;
/// RFC 4954 §4: lines of an AUTH exchange may be up to 12288 octets.
pub const AUTH_LINE_MAX: usize = 12288;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Port 25 MTA: accepts mail for its own domains from anyone, relays for no one.
    Relay,
    /// Port 587 MSA: users log in, then may send to any domain.
    Submission,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    pub role: Role,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_errors: usize,
    /// STARTTLS is offered (RFC 3207): the host has a certificate and this is not an
    /// implicit-TLS port.
    pub tls_available: bool,
    /// May a client log in (AUTH) before TLS? When not, AUTH is left out of the EHLO reply
    /// until the connection is encrypted and answered `530 5.7.0` (RFC 3207 §4, RFC 4954 §4).
    pub plaintext_login: bool,
    /// The host's policy is "required": no mail transaction before TLS either (MAIL gets
    /// `530 5.7.0`), only EHLO, STARTTLS and the harmless commands.
    pub tls_required: bool,
}

impl SessionConfig {
    pub fn new(hostname: impl Into<String>, role: Role) -> Self {
        let (max_message_size, max_recipients, max_errors) = (DEFAULT_MAX_MESSAGE_SIZE, 100, 10);
        let hostname = hostname.into();
        Self { hostname, role, max_message_size, max_recipients, max_errors, tls_available: false, plaintext_login: true, tls_required: false }
    }
}

/// The server's decisions, supplied from outside so the state machine stays pure.
pub trait Policy {
    /// SMTP AUTH: are these credentials right? The verdict (welcome,
    /// refused, app password required, locked) and how long to wait
    /// before answering (throttling).
    fn authenticate(&self, user: &str, password: &str) -> Attempt;
    /// Decide on one recipient. `authenticated` is the user who logged in, if any.
    /// `from` is empty for the null sender `<>`; `to` may be the bare `postmaster`, which
    /// every server must accept (RFC 5321 §4.5.1).
    fn check_recipient(&self, from: &str, to: &str, authenticated: Option<&str>) -> RcptVerdict;
    /// The mailbox an address names, so that one transaction delivers one
    /// copy per mailbox however the client spells it. By default only the
    /// domain is case-insensitive (RFC 5321 §2.4); a host knows how its own
    /// accounts match and says so.
    fn mailbox_key(&self, address: &str) -> String {
        match address.rsplit_once('@') {
            Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
            None => address.to_ascii_lowercase(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    Accept,
    /// 550 5.1.1: no such mailbox here.
    UnknownUser,
    /// 550 5.7.1: not our domain, and the client may not relay through us.
    RelayDenied,
    /// A 4xx reply, e.g. greylisting `451 4.7.1`.
    TempFail(Reply),
    Reject(Reply),
}

/// What the next line from the client is, so the I/O layer applies the right limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Command,
    /// A base64 line answering a `334` challenge.
    AuthResponse,
    /// The message text up to a line with a single dot: read it as a block, then call
    /// `data_finished`.
    DataBody,
}

impl Expect {
    /// Longest line allowed, in octets including CRLF.
    pub fn line_limit(self) -> usize {
        match self {
            Self::Command => COMMAND_LINE_MAX,
            Self::AuthResponse => AUTH_LINE_MAX,
            Self::DataBody => TEXT_LINE_MAX,
        }
    }
}

/// What the I/O layer does after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send the reply and keep reading (see `expecting()`).
    Reply(Reply),
    /// Send the reply, then close the connection.
    Close(Reply),
    /// Send the reply, start the TLS handshake, then call `tls_started()`.
    StartTls(Reply),
}

impl Step {
    pub fn reply(&self) -> &Reply {
        match self {
            Self::Reply(r) | Self::Close(r) | Self::StartTls(r) => r,
        }
    }
}

/// How reading the DATA body ended (the I/O layer undoes dot-stuffing and checks limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOutcome {
    Complete(Vec<u8>),
    TooLarge,
    LineTooLong,
}

/// Everything a server needs to deliver one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub helo: String,
    /// `None` is the null sender `<>` of a bounce.
    pub from: Option<String>,
    pub recipients: Vec<String>,
    pub data: Vec<u8>,
    pub authenticated_user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataStep {
    /// Store or queue this, then call `message_stored`; that gives the reply to send.
    Accept(Envelope),
    /// The message was refused: send this reply.
    Reply(Reply),
}

/// Where one connection is in the dialogue (RFC 5321 §4.1.4 gives the order of commands).
/// Each state carries the data that exists only in it, so a state that makes no sense cannot
/// be written down: there is no transaction before EHLO, no message text outside DATA, and
/// no way to forget the EHLO name in the middle of a login.
#[derive(Debug)]
enum State {
    /// Connected (or just switched to TLS, RFC 3207 §4.2): the client must say EHLO or HELO.
    Fresh,
    /// After EHLO/HELO: commands are read; `txn` is the mail transaction, once MAIL started one.
    Greeted { hello: Hello, txn: Option<Transaction> },
    /// In an AUTH exchange (RFC 4954 §4): the next line answers a `334` challenge. AUTH is never
    /// allowed inside a transaction, so there is none to keep.
    Auth { hello: Hello, step: AuthStep },
    /// After `354`: the I/O layer reads the message text, then calls `data_finished`.
    Data { hello: Hello, txn: Transaction },
    /// The message was handed over; waiting for `message_stored` to say whether it is safe.
    Storing { hello: Hello },
    /// QUIT, too many errors, a timeout or shutdown: nothing more is read.
    Closed,
}

/// What the client said in EHLO/HELO.
#[derive(Debug)]
struct Hello {
    name: String,
    /// EHLO rather than HELO: only then may the client use extensions (MAIL parameters, AUTH).
    extended: bool,
}

#[derive(Debug)]
enum AuthStep {
    Plain,
    LoginUser,
    LoginPassword { user: String },
}

/// How one line of an AUTH exchange ended: with a final reply, or with the next challenge.
enum AuthOutcome {
    Done(Reply),
    Next(AuthStep, Reply),
}

/// One mail transaction: MAIL, then RCPTs, then DATA (RFC 5321 §3.3).
#[derive(Debug)]
struct Transaction {
    from: Option<String>,
    recipients: Vec<String>,
    rcpt_tried: bool,
}

/// One connection. What depends on the dialogue's step lives in `state`; what holds for the
/// whole connection (TLS, the logged-in user, the error count) are plain fields.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    tls: bool,
    user: Option<String>,
    errors: usize,
    /// The wait before the answer just computed (see [`Session::take_delay`]).
    delay: Duration,
}

fn ok(text: &str) -> Reply {
    Reply::new(250, (2, 0, 0), text)
}

fn bad_sequence(text: &str) -> Reply {
    Reply::new(503, (5, 5, 1), text)
}

/// RFC 3207 §4: what a server that wants TLS first says to anything else.
fn tls_first() -> Reply {
    Reply::new(530, (5, 7, 0), "Must issue a STARTTLS command first")
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Self { config, state: State::Fresh, tls: false, user: None, errors: 0, delay: Duration::ZERO }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
    pub fn authenticated_user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    pub fn is_tls(&self) -> bool {
        self.tls
    }
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The first thing a server says when a client connects.
    pub fn greeting(&self) -> Reply {
        Reply::bare(220, format!("{} ESMTP mailflow", self.config.hostname))
    }

    /// What the next line is. Between `DataStep::Accept` and `message_stored` nothing is read.
    pub fn expecting(&self) -> Expect {
        match self.state {
            State::Auth { .. } => Expect::AuthResponse,
            State::Data { .. } => Expect::DataBody,
            _ => Expect::Command,
        }
    }

    /// Handles one line from the client: a command, or an AUTH response when `expecting()`
    /// says so.
    pub fn command(&mut self, line: &[u8], policy: &dyn Policy) -> Step {
        // The state is taken out and the next one put back: each arm owns what it moves on.
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Auth { hello, step } => {
                let outcome = self.auth_response(step, line, policy);
                let reply = self.settle_auth(hello, outcome);
                self.finish(reply)
            }
            State::Closed => Step::Close(Reply::new(421, (4, 7, 0), "Connection is closing")),
            // Only a buggy I/O layer gets here; not the client's fault, so not counted.
            state @ (State::Data { .. } | State::Storing { .. }) => {
                self.state = state;
                Step::Reply(bad_sequence("Bad sequence: the message is still in progress"))
            }
            state @ (State::Fresh | State::Greeted { .. }) => {
                self.state = state;
                self.dispatch(line, policy)
            }
        }
    }

    /// The client sent a line longer than `expecting().line_limit()`; the I/O layer dropped it.
    pub fn line_too_long(&mut self) -> Step {
        // An unreadable AUTH response ends the exchange.
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Auth { hello, .. } => State::Greeted { hello, txn: None },
            state => state,
        };
        self.finish(Reply::new(500, (5, 5, 2), "Line too long"))
    }

    /// The server is stopping: say so before closing (RFC 5321 §3.8).
    pub fn shutdown(&mut self) -> Reply {
        self.state = State::Closed;
        Reply::new(421, (4, 3, 2), format!("{} Service shutting down", self.config.hostname))
    }

    /// The client was silent too long (RFC 5321 §4.5.3.2).
    pub fn timeout(&mut self) -> Reply {
        self.state = State::Closed;
        Reply::new(421, (4, 4, 2), format!("{} Idle timeout", self.config.hostname))
    }

    /// The TLS handshake after `Step::StartTls` succeeded. RFC 3207 §4.2: forget everything
    /// learnt in plaintext, the client must say EHLO (and log in) again.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.reset_connection();
    }

    /// The DATA body has been read; see `DataOutcome`.
    pub fn data_finished(&mut self, outcome: DataOutcome) -> DataStep {
        let (hello, txn) = match std::mem::replace(&mut self.state, State::Closed) {
            State::Data { hello, txn } => (hello, txn),
            state => {
                self.state = state;
                return DataStep::Reply(bad_sequence("Bad sequence: no DATA in progress"));
            }
        };
        // Whatever happens, this transaction is over.
        match outcome {
            DataOutcome::Complete(data) if data.len() <= self.config.max_message_size => {
                let envelope = Envelope { helo: hello.name.clone(), from: txn.from, recipients: txn.recipients, data, authenticated_user: self.user.clone() };
                self.state = State::Storing { hello };
                DataStep::Accept(envelope)
            }
            outcome => {
                self.state = State::Greeted { hello, txn: None };
                DataStep::Reply(match outcome {
                    DataOutcome::LineTooLong => Reply::new(500, (5, 5, 2), "Line too long"),
                    _ => Reply::new(552, (5, 3, 4), "Message size exceeds fixed maximum message size"),
                })
            }
        }
    }

    /// The I/O layer has stored the message (`Ok(queue id)`) or failed to (`Err(reply to send)`,
    /// e.g. 451 4.3.0).
    /// Only now does the client hear 250: once it has, the server is responsible for the message.
    pub fn message_stored(&mut self, result: Result<String, Reply>) -> Reply {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Storing { hello } => self.state = State::Greeted { hello, txn: None },
            state => {
                self.state = state;
                return bad_sequence("Bad sequence: no message waiting to be stored");
            }
        }
        match result {
            Ok(id) => ok(&format!("OK queued as {id}")),
            Err(reply) => reply,
        }
    }

    /// Counts failures: a client that keeps getting 5xx is broken, probing us or guessing
    /// passwords, so the `max_errors`-th one closes the connection with 421 instead.
    fn finish(&mut self, reply: Reply) -> Step {
        if reply.is_permanent() {
            self.errors += 1;
            if self.errors >= self.config.max_errors {
                self.state = State::Closed;
                return Step::Close(Reply::new(421, (4, 7, 0), format!("{} Too many errors, closing", self.config.hostname)));
            }
        }
        Step::Reply(reply)
    }

    fn reset_connection(&mut self) {
        (self.state, self.user) = (State::Fresh, None);
    }

    /// A command in the `Fresh` or `Greeted` state.
    fn dispatch(&mut self, line: &[u8], policy: &dyn Policy) -> Step {
        let cmd = match command::parse(line) {
            Ok(cmd) => cmd,
            Err(e) => return self.finish(e.reply()),
        };
        let reply = match cmd {
            Command::Quit => {
                self.state = State::Closed;
                return Step::Close(Reply::new(221, (2, 0, 0), format!("{} Bye", self.config.hostname)));
            }
            Command::StartTls => match self.starttls() {
                Ok(reply) => return Step::StartTls(reply),
                Err(reply) => reply,
            },
            Command::Ehlo(name) => self.hello(name, true),
            Command::Helo(name) => self.hello(name, false),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to } => self.rcpt(to, policy),
            Command::Data => self.data(),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial, policy),
            Command::Rset => {
                if let State::Greeted { txn, .. } = &mut self.state {
                    *txn = None;
                }
                ok("OK")
            }
            Command::Noop => ok("OK"),
            // Confirming users would let spammers harvest addresses (RFC 5321 §3.5.3 allows 252).
            Command::Vrfy(_) => Reply::new(252, (2, 1, 5), "Cannot VRFY user, but will accept message and attempt delivery"),
            Command::Expn(_) => Reply::new(502, (5, 5, 1), "EXPN not available"),
            Command::Help(_) => Reply::multi(
                214,
                Some(EnhancedCode::new(2, 0, 0)),
                vec!["Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP AUTH STARTTLS".into(), "See RFC 5321".into()],
            ),
        };
        self.finish(reply)
    }

    fn hello(&mut self, name: String, extended: bool) -> Reply {
        let greeting = format!("{} greets {name}", self.config.hostname);
        // RFC 5321 §4.1.4: EHLO/HELO also reset any transaction.
        self.state = State::Greeted { hello: Hello { name, extended }, txn: None };
        if !extended {
            return Reply::bare(250, greeting);
        }
        let mut lines = vec![greeting, format!("SIZE {}", self.config.max_message_size)];
        lines.extend(["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"].map(String::from));
        if self.config.tls_available && !self.tls {
            lines.push("STARTTLS".into());
        }
        // Servers hide AUTH until after STARTTLS so passwords never cross the wire in clear
        // (RFC 3207 §4, RFC 4954 §4). A host whose scenario allows plaintext logins (the "why
        // TLS" lesson) shows it anyway, so the class can watch the password go by.
        if self.config.role == Role::Submission && self.login_allowed() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        Reply::multi(250, None, lines) // RFC 2034 §3: no enhanced codes on the EHLO reply
    }

    /// May the client log in now: over TLS, or where plaintext logins are allowed.
    fn login_allowed(&self) -> bool {
        self.tls || self.config.plaintext_login
    }

    fn starttls(&mut self) -> Result<Reply, Reply> {
        if self.tls {
            return Err(bad_sequence("TLS already active"));
        }
        if !self.config.tls_available {
            return Err(Reply::new(502, (5, 5, 1), "STARTTLS not available"));
        }
        if let State::Fresh = self.state {
            return Err(bad_sequence("Send EHLO first"));
        }
        self.reset_connection(); // nothing said in plaintext may carry over into TLS
        Ok(Reply::new(220, (2, 0, 0), "Ready to start TLS"))
    }

    fn mail(&mut self, from: Option<String>, params: MailParams) -> Reply {
        let State::Greeted { hello, txn } = &mut self.state else {
            return bad_sequence("Send EHLO or HELO first");
        };
        if txn.is_some() {
            return bad_sequence("Nested MAIL command");
        }
        if !hello.extended && !params.is_empty() {
            return Reply::new(555, (5, 5, 4), "MAIL parameters need EHLO, not HELO");
        }
        if self.config.tls_required && !self.tls {
            return tls_first();
        }
        if self.config.role == Role::Submission && self.user.is_none() {
            return Reply::new(530, (5, 7, 0), "Authentication required");
        }
        // RFC 1870 §6.1: refuse early, before the client sends megabytes for nothing.
        if params.size.is_some_and(|n| n > self.config.max_message_size as u64) {
            return Reply::new(552, (5, 3, 4), "Message size exceeds fixed maximum message size");
        }
        // A logged-in user may send only as themselves: otherwise any student with an account
        // could sign mail as another user. (The spoofing lesson goes through port 25, which
        // checks nothing about the sender.)
        if let Some(user) = &self.user
            && !from.as_deref().is_some_and(|f| f.eq_ignore_ascii_case(user))
        {
            return Reply::new(553, (5, 7, 1), format!("Sender address rejected: not owned by user {user}"));
        }
        let reply = Reply::new(250, (2, 1, 0), format!("Sender <{}> OK", from.as_deref().unwrap_or("")));
        *txn = Some(Transaction { from, recipients: Vec::new(), rcpt_tried: false });
        reply
    }

    fn rcpt(&mut self, to: String, policy: &dyn Policy) -> Reply {
        let State::Greeted { txn: Some(txn), .. } = &mut self.state else {
            return bad_sequence("Need MAIL before RCPT");
        };
        txn.rcpt_tried = true;
        let mailbox = policy.mailbox_key(&to);
        if txn.recipients.iter().any(|r| policy.mailbox_key(r) == mailbox) {
            return Reply::new(250, (2, 1, 5), format!("Recipient <{to}> OK (already listed)"));
        }
        // RFC 5321 §4.5.3.1.10: 452 tells the client to send the rest in another transaction.
        if txn.recipients.len() >= self.config.max_recipients {
            return Reply::new(452, (4, 5, 3), "Too many recipients");
        }
        match policy.check_recipient(txn.from.as_deref().unwrap_or(""), &to, self.user.as_deref()) {
            RcptVerdict::Accept => {
                let reply = Reply::new(250, (2, 1, 5), format!("Recipient <{to}> OK"));
                txn.recipients.push(to);
                reply
            }
            RcptVerdict::UnknownUser => Reply::new(550, (5, 1, 1), format!("<{to}>: Recipient address rejected: User unknown")),
            RcptVerdict::RelayDenied => Reply::new(550, (5, 7, 1), format!("<{to}>: Relay access denied")),
            RcptVerdict::TempFail(reply) | RcptVerdict::Reject(reply) => reply,
        }
    }

    fn data(&mut self) -> Reply {
        let (state, reply) = match std::mem::replace(&mut self.state, State::Closed) {
            State::Greeted { hello, txn: Some(txn) } if !txn.recipients.is_empty() => {
                (State::Data { hello, txn }, Reply::bare(354, "End data with <CR><LF>.<CR><LF>"))
            }
            State::Greeted { hello, txn: Some(txn) } => {
                let reply = if txn.rcpt_tried { Reply::new(554, (5, 5, 1), "No valid recipients") } else { bad_sequence("Need RCPT command") };
                (State::Greeted { hello, txn: Some(txn) }, reply)
            }
            state => (state, bad_sequence("Need MAIL command")),
        };
        self.state = state;
        reply
    }

    fn auth(&mut self, mechanism: &str, initial: Option<String>, policy: &dyn Policy) -> Reply {
        if self.config.role != Role::Submission {
            return Reply::new(502, (5, 5, 1), "AUTH not available on this port; use the submission port 587");
        }
        if !self.login_allowed() {
            // The password would cross the wire readable: not before TLS.
            return tls_first();
        }
        let hello = match std::mem::replace(&mut self.state, State::Closed) {
            State::Greeted { hello, txn: None } if hello.extended && self.user.is_none() => hello,
            state => {
                let reply = match &state {
                    State::Greeted { hello, .. } if !hello.extended => bad_sequence("Send EHLO first"),
                    State::Greeted { .. } if self.user.is_some() => bad_sequence("Already authenticated"),
                    State::Greeted { .. } => bad_sequence("AUTH is not allowed during a mail transaction"), // RFC 4954 §4
                    _ => bad_sequence("Send EHLO first"),
                };
                self.state = state;
                return reply;
            }
        };
        let step = match mechanism {
            "PLAIN" => AuthStep::Plain,
            "LOGIN" => AuthStep::LoginUser,
            _ => {
                self.state = State::Greeted { hello, txn: None };
                return Reply::new(504, (5, 5, 4), "Unrecognized authentication type");
            }
        };
        let outcome = match initial {
            Some(response) => self.auth_response(step, response.as_bytes(), policy),
            // PLAIN sends an empty challenge; LOGIN asks "Username:" in base64.
            None => {
                let challenge = if matches!(step, AuthStep::Plain) { "" } else { "VXNlcm5hbWU6" };
                AuthOutcome::Next(step, Reply::bare(334, challenge))
            }
        };
        self.settle_auth(hello, outcome)
    }

    /// After one step of AUTH: wait for the next answer, or back to commands.
    fn settle_auth(&mut self, hello: Hello, outcome: AuthOutcome) -> Reply {
        match outcome {
            AuthOutcome::Next(step, challenge) => {
                self.state = State::Auth { hello, step };
                challenge
            }
            AuthOutcome::Done(reply) => {
                self.state = State::Greeted { hello, txn: None };
                reply
            }
        }
    }

    fn auth_response(&mut self, step: AuthStep, line: &[u8], policy: &dyn Policy) -> AuthOutcome {
        let line = line.trim_ascii();
        if line == b"*" {
            return AuthOutcome::Done(Reply::new(501, (5, 7, 0), "Authentication cancelled")); // RFC 4954 §4
        }
        // "=" is an empty response (RFC 4954 §4).
        let decoded = if line == b"=" { Ok(Vec::new()) } else { BASE64.decode(line) };
        let Some(text) = decoded.ok().and_then(|d| String::from_utf8(d).ok()) else {
            return AuthOutcome::Done(Reply::new(501, (5, 5, 2), "Cannot decode response (bad base64)"));
        };
        AuthOutcome::Done(match step {
            AuthStep::Plain => {
                // RFC 4616: authzid NUL authcid NUL password.
                let parts: Vec<&str> = text.splitn(4, '\0').collect();
                let [authzid, user, password] = parts.as_slice() else {
                    return AuthOutcome::Done(Reply::new(501, (5, 5, 2), "Malformed PLAIN response"));
                };
                if !authzid.is_empty() && authzid != user {
                    // Logging in as one user to act as another is not allowed here.
                    return AuthOutcome::Done(Reply::new(535, (5, 7, 8), "Authentication credentials invalid"));
                }
                self.login(user, password, policy)
            }
            AuthStep::LoginUser => return AuthOutcome::Next(AuthStep::LoginPassword { user: text }, Reply::bare(334, "UGFzc3dvcmQ6")), // "Password:"
            AuthStep::LoginPassword { user } => self.login(&user, &text, policy),
        })
    }

    /// The login's answer (RFC 4954 §6): 235 in; 535 5.7.8 wrong
    /// credentials; 534 5.7.9 the main password of a two-factor account
    /// (as real providers answer: use an app password); 454 4.7.0 locked
    /// for now (a temporary failure: try again later). The wait before a
    /// failure's answer is left for the server ([`Session::take_delay`]).
    fn login(&mut self, user: &str, password: &str, policy: &dyn Policy) -> Reply {
        let attempt = policy.authenticate(user, password);
        self.delay = attempt.delay;
        match attempt.verdict {
            Verdict::Welcome { .. } => {
                self.user = Some(user.to_string());
                Reply::new(235, (2, 7, 0), "Authentication successful")
            }
            Verdict::Refused => Reply::new(535, (5, 7, 8), "Authentication credentials invalid"),
            Verdict::AppPasswordRequired => {
                Reply::new(534, (5, 7, 9), "Application-specific password required: this account has two-factor sign-in; use an app password")
            }
            Verdict::Locked { .. } => Reply::new(454, (4, 7, 0), "Temporary authentication failure: too many failed logins, try again later"),
        }
    }

    /// How long to wait before sending the answer just computed (a failed
    /// login's throttling delay); zero otherwise. Reading it clears it.
    pub fn take_delay(&mut self) -> Duration {
        std::mem::take(&mut self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::ReplyParser;
    use super::*;
    use crate::transcripts::{Adapter, CHUNK_SIZES, Chunked, Sent, replay, through_wire};
    use crate::wire::Wire;
    use crate::wire::dot::{Block, Unstuffer};

    /// Where the `*.txt` transcripts live, relative to the crate root.
    const TRANSCRIPT_DIR: &str = "tests/transcripts/smtp";

    /// alice@school.test/wonderland may log in; example.org is our domain, with bob and postmaster.
    struct FakePolicy;

    impl Policy for FakePolicy {
        fn authenticate(&self, user: &str, password: &str) -> crate::login::Attempt {
            crate::login::Attempt::from_check((user == "alice@school.test" && password == "wonderland").then(|| user.to_string()))
        }
        fn check_recipient(&self, _from: &str, to: &str, authenticated: Option<&str>) -> RcptVerdict {
            match to.rsplit_once('@') {
                None if to == "postmaster" => RcptVerdict::Accept,
                Some((local, "example.org")) if ["bob", "postmaster"].contains(&local.to_ascii_lowercase().as_str()) => RcptVerdict::Accept,
                Some((_, "example.org")) => RcptVerdict::UnknownUser,
                _ if authenticated.is_some() => RcptVerdict::Accept,
                _ => RcptVerdict::RelayDenied,
            }
        }
    }

    fn wire_lines(reply: &Reply) -> Vec<String> {
        reply.to_wire().split_terminator("\r\n").map(String::from).collect()
    }

    /// The SMTP side of the transcript harness (`crate::transcripts`). Directives:
    /// `! role relay|submission`, `! tls` (STARTTLS is offered), `! tls no_plaintext_login` (no
    /// AUTH before TLS), `! tls required` (no AUTH and no MAIL before TLS), `! max_recipients N`,
    /// `! max_message_size N`, `! max_errors N`. After a `354` the `C:` lines are the message
    /// text up to the line with a single dot, collected the way the server's `Wire::read_block`
    /// does (the same [`Unstuffer`] and limits), and handed over stored as queue id `Q<n>`.
    struct SmtpReplay {
        config: SessionConfig,
        session: Option<Session>,
        body: Option<Unstuffer>,
        /// Every message handed over, in order.
        stored: Vec<Envelope>,
    }

    impl SmtpReplay {
        fn new() -> Self {
            Self { config: SessionConfig::new("mail.example.org", Role::Relay), session: None, body: None, stored: Vec::new() }
        }
    }

    impl Adapter for SmtpReplay {
        fn directive(&mut self, key: &str, value: &str, _: &mut Sent) -> Result<(), String> {
            let number = value.parse::<usize>();
            match (key, number) {
                ("role", _) => self.config.role = if value == "submission" { Role::Submission } else { Role::Relay },
                ("tls", _) if value == "required" => (self.config.tls_available, self.config.plaintext_login, self.config.tls_required) = (true, false, true),
                ("tls", _) if value == "no_plaintext_login" => (self.config.tls_available, self.config.plaintext_login) = (true, false),
                ("tls", _) => self.config.tls_available = true,
                ("max_recipients", Ok(v)) => self.config.max_recipients = v,
                ("max_message_size", Ok(v)) => self.config.max_message_size = v,
                ("max_errors", Ok(v)) => self.config.max_errors = v,
                _ => return Err(format!("bad directive {key:?} {value:?}")),
            }
            Ok(())
        }

        fn connect(&mut self, _: usize, sent: &mut Sent) {
            let session = Session::new(self.config.clone());
            sent.push(0, &session.greeting().to_wire());
            self.session = Some(session);
        }

        fn client_line(&mut self, _: usize, text: &str, sent: &mut Sent) -> Result<(), String> {
            let s = self.session.as_mut().ok_or("no session")?;
            if let Some(body) = self.body.as_mut() {
                if !body.line(text.as_bytes(), false) {
                    return Ok(());
                }
                let outcome = match self.body.take().map(Unstuffer::finish) {
                    Some(Block::Complete(data)) => DataOutcome::Complete(data),
                    Some(Block::LineTooLong) => DataOutcome::LineTooLong,
                    _ => DataOutcome::TooLarge,
                };
                let reply = match s.data_finished(outcome) {
                    DataStep::Accept(envelope) => {
                        let reply = s.message_stored(Ok(format!("Q{}", envelope.recipients.len())));
                        self.stored.push(envelope);
                        reply
                    }
                    DataStep::Reply(reply) => reply,
                };
                sent.push(0, &reply.to_wire());
                return Ok(());
            }
            let step = s.command(text.as_bytes(), &FakePolicy);
            sent.push(0, &step.reply().to_wire());
            if let Step::StartTls(_) = step {
                s.tls_started();
            }
            if s.expecting() == Expect::DataBody {
                self.body = Some(Unstuffer::new(s.config().max_message_size, TEXT_LINE_MAX));
            }
            Ok(())
        }

        fn is_closed(&self, _: usize) -> bool {
            self.session.as_ref().is_some_and(Session::is_closed)
        }
    }

    /// Each login verdict gets its RFC 4954 answer, and a failure's delay
    /// is handed to the server once.
    #[test]
    fn login_verdicts_become_smtp_replies() {
        struct Fixed(Attempt);
        impl Policy for Fixed {
            fn authenticate(&self, _: &str, _: &str) -> Attempt {
                self.0.clone()
            }
            fn check_recipient(&self, _: &str, _: &str, _: Option<&str>) -> RcptVerdict {
                RcptVerdict::Accept
            }
        }
        let welcome = Verdict::Welcome { address: "alice@school.test".into(), app_password: None };
        let locked = Verdict::Locked { until: Duration::from_secs(900) };
        for (verdict, expected) in [
            (welcome, "235 2.7.0"),
            (Verdict::Refused, "535 5.7.8"),
            (Verdict::AppPasswordRequired, "534 5.7.9 Application-specific password required"),
            (locked, "454 4.7.0"),
        ] {
            let policy = Fixed(Attempt { verdict, delay: Duration::from_secs(4), locked: None });
            let mut session = Session::new(SessionConfig::new("mx.test", Role::Submission));
            session.command(b"EHLO laptop.test\r\n", &policy);
            let step = session.command(b"AUTH PLAIN AGFsaWNlQHNjaG9vbC50ZXN0AHdvbmRlcmxhbmQ=\r\n", &policy);
            assert!(step.reply().to_wire().starts_with(expected), "{expected}: {:?}", step.reply());
            assert_eq!((session.take_delay(), session.take_delay()), (Duration::from_secs(4), Duration::ZERO));
        }
    }

    #[test]
    fn transcripts() {
        crate::transcripts::replay_all(TRANSCRIPT_DIR, 15, |text| replay(text, &mut SmtpReplay::new()).map(drop));
    }

    /// The server's loop (`server::one_exchange`, without the backend and the trace texts)
    /// over a real [`Wire`]: lines are cut with the limit `expecting()` names, DATA is read
    /// with `read_block`; the messages accepted are returned, each "stored" as queue id
    /// `Q<recipients>`.
    /// STARTTLS is only noted (`tls_started`): the bytes stay in memory.
    async fn serve(wire: &mut Wire<Chunked>, mut session: Session) -> Vec<Envelope> {
        let mut stored = Vec::new();
        if wire.send(&session.greeting().to_wire(), "").await.is_err() {
            return stored;
        }
        loop {
            let expecting = session.expecting();
            let (reply, step) = if expecting == Expect::DataBody {
                let Ok(block) = wire.read_block(session.config().max_message_size, TEXT_LINE_MAX, |_, _| String::new()).await else {
                    return stored;
                };
                let outcome = match block {
                    Block::Complete(data) => DataOutcome::Complete(data),
                    Block::TooLarge => DataOutcome::TooLarge,
                    Block::LineTooLong => DataOutcome::LineTooLong,
                };
                let reply = match session.data_finished(outcome) {
                    DataStep::Accept(envelope) => {
                        let reply = session.message_stored(Ok(format!("Q{}", envelope.recipients.len())));
                        stored.push(envelope);
                        reply
                    }
                    DataStep::Reply(reply) => reply,
                };
                (reply, None)
            } else {
                let Ok(line) = wire.read_line(expecting.line_limit()).await else {
                    return stored;
                };
                let step = if line.overlong { session.line_too_long() } else { session.command(&line.bytes, &FakePolicy) };
                (step.reply().clone(), Some(step))
            };
            if wire.send(&reply.to_wire(), "").await.is_err() {
                return stored;
            }
            match step {
                Some(Step::Close(_)) => return stored,
                Some(Step::StartTls(_)) => session.tls_started(),
                _ => {}
            }
        }
    }

    /// Each transcript's client bytes, sent as one stream, re-fed through the server's framing
    /// in pieces of 1, 2, 4 … 512 bytes: the server must say exactly what the line-by-line
    /// replay said (which the transcript checks), and hand over the same messages, byte for
    /// byte, whatever the pieces.
    #[test]
    fn transcripts_in_any_chunking_through_the_servers_framing() {
        for (path, text) in crate::transcripts::transcripts(TRANSCRIPT_DIR, 15) {
            let mut adapter = SmtpReplay::new();
            let replayed = replay(&text, &mut adapter).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let expected = replayed.into_iter().next().unwrap_or_default();
            let input: String = text.lines().filter_map(|l| l.strip_prefix("C:")).map(|l| format!("{}\r\n", l.strip_prefix(' ').unwrap_or(l))).collect();
            for chunk in CHUNK_SIZES {
                let config = adapter.config.clone();
                let (stored, written) = through_wire(input.as_bytes(), chunk, async |wire| serve(wire, Session::new(config)).await);
                let got: Vec<String> = String::from_utf8_lossy(&written).split_terminator("\r\n").map(String::from).collect();
                assert_eq!(got, expected, "{} in pieces of {chunk}", path.display());
                assert_eq!(stored, adapter.stored, "{}: the messages, in pieces of {chunk}", path.display());
            }
        }
    }

    fn code(s: &mut Session, line: &str) -> u16 {
        s.command(line.as_bytes(), &FakePolicy).reply().code
    }

    #[test]
    fn timeouts_shutdown_and_misuse() {
        let mut s = Session::new(SessionConfig::new("mx.test", Role::Relay));
        assert_eq!(s.line_too_long().reply().code, 500);
        let early = s.data_finished(DataOutcome::Complete(vec![]));
        assert!(matches!(early, DataStep::Reply(r) if r.code == 503));
        assert_eq!(s.message_stored(Ok("x".into())).code, 503);
        assert_eq!(s.timeout().to_wire(), "421 4.4.2 mx.test Idle timeout\r\n");
        assert!(matches!(s.command(b"NOOP", &FakePolicy), Step::Close(_)));
        let mut s = Session::new(SessionConfig::new("mx.test", Role::Relay));
        let bye = s.shutdown().to_wire();
        assert_eq!(bye, "421 4.3.2 mx.test Service shutting down\r\n");
    }

    #[test]
    fn storage_failure_is_reported_and_resets() {
        let mut s = Session::new(SessionConfig::new("mx.test", Role::Relay));
        let lines = ["EHLO a.test", "MAIL FROM:<x@y.test>", "RCPT TO:<bob@example.org>", "DATA"];
        assert_eq!(lines.map(|l| code(&mut s, l)), [250, 250, 250, 354]);
        let step = s.data_finished(DataOutcome::Complete(b"hi\r\n".to_vec()));
        assert!(matches!(step, DataStep::Accept(e) if e.helo == "a.test"));
        let failed = Reply::new(451, (4, 3, 0), "disk full");
        assert_eq!(s.message_stored(Err(failed)).code, 451);
        assert_eq!(code(&mut s, "RCPT TO:<bob@example.org>"), 503);
    }

    /// The EHLO name is carried through a login and a stored message into the next transaction;
    /// STARTTLS forgets it and the login (RFC 3207 §4.2).
    #[test]
    fn the_hello_name_lives_as_long_as_the_greeted_state() {
        let config = SessionConfig { tls_available: true, ..SessionConfig::new("msa.test", Role::Submission) };
        let mut s = Session::new(config);
        let lines = ["EHLO laptop.test", "AUTH LOGIN", "YWxpY2VAc2Nob29sLnRlc3Q=", "d29uZGVybGFuZA=="];
        assert_eq!(lines.map(|l| code(&mut s, l)), [250, 334, 334, 235]);
        assert_eq!(s.expecting(), Expect::Command);
        for round in 0..2 {
            let lines = ["MAIL FROM:<alice@school.test>", "RCPT TO:<carol@elsewhere.test>", "DATA"];
            assert_eq!(lines.map(|l| code(&mut s, l)), [250, 250, 354], "round {round}");
            let DataStep::Accept(envelope) = s.data_finished(DataOutcome::Complete(b"hi\r\n".to_vec())) else { panic!("not accepted") };
            assert_eq!((envelope.helo.as_str(), envelope.authenticated_user.as_deref()), ("laptop.test", Some("alice@school.test")));
            assert_eq!(code(&mut s, "NOOP"), 503, "nothing is read while the message is being stored");
            assert_eq!(s.message_stored(Ok("Q1".into())).code, 250);
        }
        assert!(matches!(s.command(b"STARTTLS", &FakePolicy), Step::StartTls(_)));
        s.tls_started();
        assert_eq!(s.authenticated_user(), None);
        assert_eq!(code(&mut s, "MAIL FROM:<alice@school.test>"), 503);
    }

    /// Deterministic xorshift64 (no rand crate needed).
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, max_len: u64, alphabet: Option<&[u8]>) -> Vec<u8> {
            let len = self.next() % max_len;
            (0..len)
                .map(|_| {
                    let r = self.next();
                    alphabet.map_or(r as u8, |a| a.get(r as usize % a.len()).copied().unwrap_or(b'x'))
                })
                .collect()
        }
    }

    /// Every reply must be well-formed: the client-side parser reads it back unchanged.
    fn assert_round_trips(reply: &Reply) {
        let mut parser = ReplyParser::new();
        let mut parsed = None;
        for line in wire_lines(reply) {
            parsed = parser.feed(line.as_bytes()).expect("server reply parses");
        }
        assert_eq!(parsed.as_ref(), Some(reply));
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let fresh = |round: u32, max_errors: usize| {
            let role = if round.is_multiple_of(2) { Role::Relay } else { Role::Submission };
            Session::new(SessionConfig { tls_available: true, max_errors, ..SessionConfig::new("mx.test", role) })
        };
        // Pure garbage: always refused (4xx/5xx), eventually with 421.
        for round in 0..200 {
            let mut s = fresh(round, 10);
            if round % 4 >= 2 {
                s.command(b"EHLO client.test", &FakePolicy);
            }
            for _ in 0..20 {
                let line = rng.bytes(600, None);
                let step = s.command(&line, &FakePolicy);
                assert!(step.reply().code >= 400, "{line:?} got {step:?}");
                assert_round_trips(step.reply());
                if let Step::Close(_) = step {
                    break;
                }
            }
        }
        // Real verbs, often followed by noise, reach the argument parsers and the AUTH/DATA states.
        let prefixes: [&[u8]; 10] = [
            b"MAIL FROM:<",
            b"RCPT TO:<",
            b"EHLO ",
            b"AUTH PLAIN",
            b"AUTH LOGIN",
            b"MAIL FROM:<alice@school.test> ",
            b"RCPT TO:<bob@example.org>",
            b"DATA",
            b"STARTTLS",
            b"HELO ",
        ];
        let alphabet: &[u8] = b"<>@.:\"\\= ,[]-aZ09\x00\xff\xc3\xa9AGFsaWNl";
        let mut s = fresh(1, usize::MAX);
        for i in 0..20_000u32 {
            if s.is_closed() || i.is_multiple_of(50) {
                s = fresh(i / 50, usize::MAX);
                s.command(b"EHLO client.test", &FakePolicy);
                if (i / 50) % 4 == 1 {
                    s.command(b"AUTH PLAIN AGFsaWNlQHNjaG9vbC50ZXN0AHdvbmRlcmxhbmQ=", &FakePolicy);
                }
            }
            let mut line = prefixes.get(rng.next() as usize % prefixes.len()).copied().unwrap_or_default().to_vec();
            if !rng.next().is_multiple_of(3) {
                line.extend(rng.bytes(80, Some(alphabet)));
            }
            let _ = command::parse(&line);
            let step = s.command(&line, &FakePolicy);
            assert_round_trips(step.reply());
            if let Step::StartTls(_) = step {
                s.tls_started();
            }
            if s.expecting() == Expect::DataBody
                && let DataStep::Accept(_) = s.data_finished(DataOutcome::Complete(line))
            {
                assert_round_trips(&s.message_stored(Ok("Q1".into())));
            }
        }
        // And the client-side parser survives garbage too.
        let mut parser = ReplyParser::new();
        for _ in 0..5000 {
            let _ = parser.feed(&rng.bytes(80, Some(b"250- 2.1.0\xff12345")));
        }
    }
}
