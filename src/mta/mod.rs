//! The mail host: a server's brain behind its SMTP ports.
//!
//! A [`MailHost`] decides who may log in and which recipients it accepts
//! (its [`Policy`]), keeps the mailboxes of its own domains (a [`Store`]),
//! and owns an outbound queue. Every accepted message is either stored at
//! once (the recipient lives here) or queued; a queued message gets a
//! delivery task that, per recipient domain:
//!
//! 1. asks DNS where the domain's mail goes (MX by preference, A fallback,
//!    null MX; see `dns::lookup`);
//! 2. tries those servers in order, over SMTP, from this host's address;
//! 3. on a temporary failure (server down, 4xx) waits and retries, each
//!    wait longer (`retry.rs`), all in simulated time;
//! 4. on a permanent failure (5xx, no such domain) or when the message is
//!    too old, sends a bounce (`bounce.rs`) back to the envelope sender
//!    through the same path — unless the sender is `<>`.
//!
//! Every change is a `queue` event, so the class sees the message wait.

pub mod bounce;
pub mod retry;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::conductor::Activity;
use crate::dns::{Lookup, MailRoute};
use crate::message::{ReceivedInfo, has_header, received_header, summarize};
use crate::net::Net;
use crate::scenario::{Host, RetrySettings, Service, SimDuration};
use crate::smtp::client::{GREETING_TIMEOUT, SmtpClient, mail_parameters};
use crate::smtp::reply::Reply;
use crate::smtp::server::{Accepted, Backend, HopInfo, human_bytes};
use crate::smtp::session::{Envelope, Policy, RcptVerdict, Role, SessionConfig};
use crate::store::Store;
use crate::trace::{Draft, Kind, MessageRef, Protocol, QueueState};
use bounce::Failure;

/// What a message's queue entry shows (for the page and the tests).
#[derive(Clone, Debug)]
pub struct QueueEntry {
    pub id: String,
    pub from: Option<String>,
    pub recipients: Vec<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// One mail server of the world.
pub struct MailHost {
    pub name: String,
    pub address: IpAddr,
    config: Host,
    /// The users whose mailbox is here: address → password.
    accounts: HashMap<String, String>,
    retry: RetrySettings,
    pub store: Store,
    net: Net,
    lookup: Lookup,
    queue: Mutex<BTreeMap<String, QueueEntry>>,
    /// Greylisting memory: (client address, sender, recipient) → first seen.
    greylist: Mutex<HashMap<(IpAddr, String, String), Duration>>,
    next_id: AtomicU64,
    up: watch::Sender<bool>,
}

/// A message in this host's queue, as its delivery task sees it.
struct Item {
    id: String,
    from: Option<String>,
    pending: Vec<String>,
    data: Arc<Vec<u8>>,
    message: Option<MessageRef>,
    arrived: Duration,
}

/// What became of one recipient in one attempt.
enum Outcome {
    Accepted,
    Temporary(String),
    Permanent(Failure),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}

impl MailHost {
    pub fn new(name: &str, address: IpAddr, config: Host, accounts: HashMap<String, String>, retry: RetrySettings, net: Net, lookup: Lookup) -> Arc<Self> {
        let (up, _) = watch::channel(!config.down);
        let store = Store::new(net.epoch);
        store.set_tracer(net.trace.clone(), name);
        for user in accounts.keys() {
            // Every account has an (empty) INBOX from the start, so a device
            // can log in and look before any mail arrives.
            store.ensure_user(user);
        }
        Arc::new(MailHost {
            name: name.to_string(),
            address,
            config,
            accounts: accounts.into_iter().map(|(a, p)| (a.to_lowercase(), p)).collect(),
            retry,
            store,
            net,
            lookup,
            queue: Mutex::new(BTreeMap::new()),
            greylist: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            up,
        })
    }

    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Follows the host's up/down switch (listeners close while down).
    pub fn watch_up(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// Switches the host on or off.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
        let summary = if up { format!("{} is switched on again", self.name) } else { format!("{} goes down: it refuses all connections", self.name) };
        let explain = (!up).then_some("Servers sending to it will get 'connection refused' and keep the mail in their queues.");
        self.emit(Kind::HostState { host: self.name.clone(), up }, summary, explain.map(str::to_string), None);
    }

    /// The messages waiting in this host's queue.
    pub fn queue(&self) -> Vec<QueueEntry> {
        lock(&self.queue).values().cloned().collect()
    }

    /// Checks a user's password (SMTP AUTH, POP3 USER/PASS, IMAP LOGIN):
    /// only users whose mailbox is on this host can log in here.
    pub fn authenticate(&self, user: &str, password: &str) -> bool {
        self.accounts.get(&user.to_lowercase()).is_some_and(|p| p == password)
    }

    /// The user's canonical (lowercase) address if the password is right
    /// (POP3 and IMAP log in with this).
    pub fn login(&self, user: &str, password: &str) -> Option<String> {
        self.authenticate(user, password).then(|| user.to_lowercase())
    }

    /// The shared plumbing (trace, conductor, ports) of this host's world.
    pub fn net(&self) -> &Net {
        &self.net
    }

    fn is_final_for(&self, domain: &str) -> bool {
        self.config.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// The reserved mailbox every mail server must accept (RFC 5321
    /// §4.5.1): bare `postmaster`, or `postmaster@` one of our domains. It
    /// is delivered here even with no account of that name.
    fn is_postmaster(&self, recipient: &str) -> bool {
        match recipient.rsplit_once('@') {
            None => recipient.eq_ignore_ascii_case("postmaster"),
            Some((local, domain)) => local.eq_ignore_ascii_case("postmaster") && self.is_final_for(domain),
        }
    }

    fn is_backup_for(&self, domain: &str) -> bool {
        self.config.backup_for.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    fn new_id(&self) -> String {
        let short = self.name.split('.').next().unwrap_or("q").to_uppercase();
        format!("{short}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn emit(&self, kind: Kind, summary: String, explain: Option<String>, message: Option<MessageRef>) {
        self.net.trace.emit(Draft::new(&self.name, &self.name, Protocol::Smtp, kind, summary).explain_opt(explain).message(message));
    }

    fn queue_event(&self, item: &Item, state: QueueState, recipients: &[String], summary: String, explain: Option<&str>, retry_at: Option<Duration>) {
        let kind = Kind::Queue { queue_id: item.id.clone(), state, recipients: recipients.to_vec(), retry_at_ms: retry_at.map(|d| d.as_millis() as u64) };
        self.emit(kind, summary, explain.map(str::to_string), item.message.clone());
    }

    /// Puts a message into `recipient`'s mailbox here, with the
    /// `Return-Path:` header of final delivery (RFC 5321 §4.4).
    fn deliver_local(&self, from: Option<&str>, recipient: &str, data: &[u8], message: Option<MessageRef>) -> Outcome {
        let recipient = recipient.to_lowercase();
        if !self.accounts.contains_key(&recipient) && !self.is_postmaster(&recipient) {
            return Outcome::Permanent(Failure { recipient, status: "5.1.1".into(), remote_mta: None, diagnostic: "550 5.1.1 No such user here".into() });
        }
        // Exactly the size needed: this copy stays in the mailbox.
        let return_path = format!("Return-Path: <{}>\r\n", from.unwrap_or(""));
        let mut raw = Vec::with_capacity(return_path.len() + data.len());
        raw.extend_from_slice(return_path.as_bytes());
        raw.extend_from_slice(data);
        let bytes = raw.len() as u64;
        self.store.deliver(&recipient, raw, self.net.now());
        self.emit(
            Kind::Delivered { mailbox: recipient.clone(), bytes },
            format!("the message lands in {recipient}'s mailbox on {} ({})", self.name, human_bytes(bytes)),
            Some("It waits on the server until the recipient's device fetches it, by POP3 or IMAP.".into()),
            message,
        );
        Outcome::Accepted
    }

    /// Queues a message for delivery; returns its queue id. The activity
    /// is taken *now*, before the caller answers 250, so the simulated
    /// clock cannot jump past a message nobody is working on.
    pub fn enqueue(self: &Arc<Self>, from: Option<String>, recipients: Vec<String>, data: Vec<u8>, message: Option<MessageRef>) -> String {
        let id = self.new_id();
        self.enqueue_as(id, from, recipients, data, message)
    }

    fn enqueue_as(self: &Arc<Self>, id: String, from: Option<String>, recipients: Vec<String>, data: Vec<u8>, message: Option<MessageRef>) -> String {
        let activity = self.net.conductor.clock().activity();
        let item = Item { id: id.clone(), from: from.clone(), pending: recipients.clone(), data: Arc::new(data), message, arrived: self.net.now() };
        lock(&self.queue).insert(id.clone(), QueueEntry { id: id.clone(), from, recipients: recipients.clone(), attempts: 0, last_error: None });
        self.queue_event(
            &item,
            QueueState::Queued,
            &recipients,
            format!("{} puts the message in its queue as {id}, for {}", self.name, recipients.join(", ")),
            Some("The server now owns the message: it said 250 only after saving it, so nothing accepted is lost."),
            None,
        );
        let host = self.clone();
        tokio::spawn(async move { host.deliver(item, activity).await });
        id
    }

    /// The delivery task of one queued message (see the module docs).
    async fn deliver(self: Arc<Self>, mut item: Item, activity: Activity) {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Some(entry) = lock(&self.queue).get_mut(&item.id) {
                entry.attempts = attempt;
            }
            if attempt > 1 {
                let pending = item.pending.clone();
                self.queue_event(&item, QueueState::Attempt, &pending, format!("{}: attempt {attempt} for {}", item.id, pending.join(", ")), None, None);
            }
            let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for recipient in &item.pending {
                by_domain.entry(domain_of(recipient)).or_default().push(recipient.clone());
            }
            let mut failures = Vec::new();
            let mut still_pending = Vec::new();
            let mut last_reason = String::new();
            for (domain, recipients) in by_domain {
                let outcomes = if self.is_final_for(&domain) {
                    recipients.iter().map(|r| (r.clone(), self.deliver_local(item.from.as_deref(), r, &item.data, item.message.clone()))).collect()
                } else {
                    self.relay(&item, &domain, &recipients).await
                };
                for (recipient, outcome) in outcomes {
                    match outcome {
                        Outcome::Accepted => {}
                        Outcome::Temporary(reason) => {
                            last_reason = reason;
                            still_pending.push(recipient);
                        }
                        Outcome::Permanent(failure) => failures.push(failure),
                    }
                }
            }
            item.pending = still_pending;
            if !failures.is_empty() {
                self.bounce(&item, failures);
            }
            if item.pending.is_empty() {
                break;
            }
            if let Some(entry) = lock(&self.queue).get_mut(&item.id) {
                entry.last_error = Some(last_reason.clone());
            }
            let wait = retry::delay(&self.retry, attempt);
            let age = self.net.now().saturating_sub(item.arrived);
            if age + wait > self.retry.give_up_after.0 {
                let failures: Vec<Failure> = item
                    .pending
                    .iter()
                    .map(|r| Failure {
                        recipient: r.clone(),
                        status: "4.4.7".into(),
                        remote_mta: None,
                        diagnostic: format!("delivery time expired after {} in the queue; last error: {last_reason}", SimDuration(age)),
                    })
                    .collect();
                self.bounce(&item, failures);
                break;
            }
            let retry_at = self.net.now() + wait;
            let pending = item.pending.clone();
            self.queue_event(
                &item,
                QueueState::Deferred,
                &pending,
                format!("{} keeps {} and will try again in {} ({last_reason})", self.name, item.id, SimDuration(wait)),
                Some("A temporary failure: the message stays in the queue and is retried later, each wait longer than the last."),
                Some(retry_at),
            );
            activity.sleep(wait).await;
        }
        lock(&self.queue).remove(&item.id);
    }

    /// Hands the recipients of one domain to that domain's mail server.
    async fn relay(&self, item: &Item, domain: &str, recipients: &[String]) -> Vec<(String, Outcome)> {
        let all = |outcome: &dyn Fn(&str) -> Outcome| recipients.iter().map(|r| (r.clone(), outcome(r))).collect::<Vec<_>>();
        let permanent = |status: &str, diagnostic: String| {
            all(&|r: &str| Outcome::Permanent(Failure { recipient: r.to_string(), status: status.into(), remote_mta: None, diagnostic: diagnostic.clone() }))
        };
        let servers = match self.lookup.mail_route(domain, item.message.as_ref()).await {
            Err(err) => return all(&|_| Outcome::Temporary(err.to_string())),
            Ok(MailRoute::NullMx) => return permanent("5.1.10", format!("556 5.1.10 {domain} publishes a null MX: it accepts no mail")),
            Ok(MailRoute::NoSuchDomain) => return permanent("5.1.2", format!("550 5.1.2 {domain}: no such domain (DNS says it does not exist)")),
            Ok(MailRoute::Servers { servers, .. }) => servers,
        };
        // Never send to ourselves, and a backup MX only hands mail on to
        // servers preferred over itself (RFC 5321 §5.1), or mail would loop.
        let own = servers.iter().find(|s| s.name.eq_ignore_ascii_case(&self.name)).map(|s| s.preference);
        let candidates: Vec<_> = servers.into_iter().filter(|s| !s.name.eq_ignore_ascii_case(&self.name) && own.is_none_or(|p| s.preference < p)).collect();
        if candidates.is_empty() {
            return all(&|_| Outcome::Temporary(format!("no better mail server for {domain} is reachable; holding the message")));
        }
        let mut last_error = String::new();
        for server in &candidates {
            for address in &server.addresses {
                match self.transaction(&server.name, *address, item, recipients).await {
                    Ok(outcomes) => {
                        let accepted: Vec<String> = outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Accepted)).map(|(r, _)| r.clone()).collect();
                        if !accepted.is_empty() {
                            self.queue_event(
                                item,
                                QueueState::Relayed,
                                &accepted,
                                format!("{} hands {} on to {}", self.name, item.id, server.name),
                                None,
                                None,
                            );
                        }
                        return outcomes;
                    }
                    Err(reason) => {
                        self.emit(Kind::Note, format!("{}: {reason}; trying the next server", self.name), None, item.message.clone());
                        last_error = reason;
                    }
                }
            }
        }
        all(&|_| Outcome::Temporary(last_error.clone()))
    }

    /// One SMTP conversation with the next server. `Err` means the
    /// message was not handed over at all (try another server).
    async fn transaction(&self, server: &str, address: IpAddr, item: &Item, recipients: &[String]) -> Result<Vec<(String, Outcome)>, String> {
        // Measured from before connecting: a slow server moves the clock as
        // soon as it accepts, which may be before `connect` returns here.
        let started = self.net.now();
        let (wire, _registration) = match self.net.dial(&self.name, self.address, (server, address), Service::Smtp, item.message.clone()).await {
            Ok(connected) => connected,
            Err(err) => return Err(format!("cannot connect to {server} ({address}): {err}")),
        };
        let mut client = SmtpClient::new(wire);
        let err = |e: crate::smtp::client::ClientError| format!("{server}: {e}");

        let greeting = client.read_reply().await.map_err(err)?;
        let waited = self.net.now().saturating_sub(started);
        if waited >= GREETING_TIMEOUT {
            return Err(format!("{server} did not greet within the 5 minutes a sender waits (RFC 5321 §4.5.3.2), so it hangs up"));
        }
        if !greeting.is_positive() {
            return Err(format!("{server} greeted with {}", one_line(&greeting)));
        }
        let mut hello = client.command(&format!("EHLO {}", self.name)).await.map_err(err)?;
        if !hello.is_positive() {
            hello = client.command(&format!("HELO {}", self.name)).await.map_err(err)?;
        }
        if !hello.is_positive() {
            return Err(format!("{server} refused our hello: {}", one_line(&hello)));
        }
        let parameters = mail_parameters(&hello, &item.data);
        let mail = client.command(&format!("MAIL FROM:<{}>{parameters}", item.from.as_deref().unwrap_or(""))).await.map_err(err)?;
        let judge = |reply: &Reply, recipient: &str| {
            if reply.is_positive() {
                Outcome::Accepted
            } else if reply.is_transient() {
                Outcome::Temporary(format!("{server} said {}", one_line(reply)))
            } else {
                let status = reply.enhanced.map(|e| e.to_string()).unwrap_or_else(|| "5.0.0".into());
                Outcome::Permanent(Failure { recipient: recipient.to_string(), status, remote_mta: Some(server.to_string()), diagnostic: one_line(reply) })
            }
        };
        if !mail.is_positive() {
            let _ = client.command("QUIT").await;
            return Ok(recipients.iter().map(|r| (r.clone(), judge(&mail, r))).collect());
        }
        let mut outcomes = Vec::new();
        let mut accepted = Vec::new();
        for recipient in recipients {
            let reply = client.command(&format!("RCPT TO:<{recipient}>")).await.map_err(err)?;
            if reply.is_positive() {
                accepted.push(recipient.clone());
            } else {
                outcomes.push((recipient.clone(), judge(&reply, recipient)));
            }
        }
        if accepted.is_empty() {
            let _ = client.command("QUIT").await;
            return Ok(outcomes);
        }
        let data = client.command("DATA").await.map_err(err)?;
        let final_reply = if data.code == 354 {
            let label = item.message.as_ref().map(|m| m.label.clone()).unwrap_or_else(|| "the message".into());
            client.message(&item.data, format!("{} sends {label} ({})", self.name, human_bytes(item.data.len() as u64))).await.map_err(err)?
        } else {
            data
        };
        outcomes.extend(accepted.iter().map(|r| (r.clone(), judge(&final_reply, r))));
        let _ = client.command("QUIT").await;
        Ok(outcomes)
    }

    /// Tells the envelope sender about `failures` with a bounce, sent back
    /// through the same path; a message from `<>` is never bounced.
    fn bounce(self: &Arc<Self>, item: &Item, failures: Vec<Failure>) {
        let recipients: Vec<String> = failures.iter().map(|f| f.recipient.clone()).collect();
        let Some(sender) = item.from.clone() else {
            self.queue_event(
                item,
                QueueState::Dropped,
                &recipients,
                format!("{} cannot deliver {} and drops it: it was itself a bounce", self.name, item.id),
                Some("A bounce has the empty sender <>; if it fails, nobody is told, so two servers can never bounce mail back and forth forever."),
                None,
            );
            return;
        };
        let reasons: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.recipient, f.diagnostic)).collect();
        self.queue_event(
            item,
            QueueState::Bounced,
            &recipients,
            format!("{} gives up on {} ({}) and sends a bounce to {sender}", self.name, item.id, reasons.join("; ")),
            Some("A permanent failure: the sender gets a delivery status notification (RFC 3464) explaining what went wrong."),
            None,
        );
        let id = format!("{}.bounce@{}", self.next_id.fetch_add(1, Ordering::Relaxed), self.name);
        let date = self.net.date();
        let arrival = mail_builder::headers::date::Date::new(self.net.epoch + item.arrived.as_secs() as i64).to_rfc822();
        let raw = bounce::build(&bounce::BounceInput {
            reporting_mta: &self.name,
            to: &sender,
            failures: &failures,
            original: &item.data,
            date: &date,
            message_id: &id,
            arrival_date: &arrival,
        });
        let message = summarize(&raw).message_ref();
        self.enqueue(None, vec![sender], raw, message);
    }
}

/// A reply on one line: "550 5.1.1 No such user here".
pub fn one_line(reply: &Reply) -> String {
    reply.to_wire().trim_end().replace("\r\n", " / ")
}

/// The policy of one SMTP connection to a host.
struct HostPolicy {
    host: Arc<MailHost>,
    role: Role,
    peer: IpAddr,
}

impl HostPolicy {
    /// Greylisting: refuse the first try of a (client, sender, recipient)
    /// triple; accept a retry once the greylist delay has passed.
    fn greylisted(&self, from: &str, to: &str) -> Option<RcptVerdict> {
        let delay = self.host.config.greylist?.0;
        let now = self.host.net.now();
        let mut seen = lock(&self.host.greylist);
        let first = *seen.entry((self.peer, from.to_lowercase(), to.to_lowercase())).or_insert(now);
        (now.saturating_sub(first) < delay)
            .then(|| RcptVerdict::TempFail(Reply::new(451, (4, 7, 1), format!("Greylisted: please try again in {}", SimDuration(delay)))))
    }
}

impl Policy for HostPolicy {
    fn authenticate(&self, user: &str, password: &str) -> bool {
        self.role == Role::Submission && self.host.authenticate(user, password)
    }

    fn check_recipient(&self, from: &str, to: &str, authenticated: Option<&str>) -> RcptVerdict {
        if self.host.is_postmaster(to) {
            return RcptVerdict::Accept;
        }
        let domain = domain_of(to);
        let greylist = |verdict| if self.role == Role::Relay { self.greylisted(from, to).unwrap_or(verdict) } else { verdict };
        if self.host.is_final_for(&domain) {
            if self.host.accounts.contains_key(&to.to_lowercase()) {
                return greylist(RcptVerdict::Accept);
            }
            return RcptVerdict::UnknownUser;
        }
        match self.role {
            Role::Submission if authenticated.is_some() => RcptVerdict::Accept,
            Role::Relay if self.host.is_backup_for(&domain) => greylist(RcptVerdict::Accept),
            _ => RcptVerdict::RelayDenied,
        }
    }
}

impl Backend for Arc<MailHost> {
    fn name(&self) -> &str {
        &self.name
    }

    fn session_config(&self, role: Role) -> SessionConfig {
        let mut config = SessionConfig::new(self.name.clone(), role);
        if let Some(size) = self.config.max_message_size {
            config.max_message_size = size;
        }
        if let Some(count) = self.config.max_recipients {
            config.max_recipients = count;
        }
        config
    }

    fn policy(&self, role: Role, peer: IpAddr) -> Box<dyn Policy + Send + Sync> {
        Box::new(HostPolicy { host: self.clone(), role, peer })
    }

    fn greeting_delay(&self) -> Option<Duration> {
        self.config.slow.map(|d| d.0)
    }

    fn accept(&self, role: Role, envelope: Envelope, hop: &HopInfo) -> Accepted {
        let id = self.new_id();
        let mut prefix = String::new();
        let authenticated = envelope.authenticated_user.is_some();
        // Received: first, then (submission only) the headers the device
        // forgot: RFC 6409 §8 lets a submission server add Date and Message-ID.
        prefix.push_str(&received_header(&ReceivedInfo {
            helo: &envelope.helo,
            peer_name: &hop.peer_name,
            peer_ip: hop.peer_ip,
            by: &self.name,
            with: if authenticated { "ESMTPA" } else { "ESMTP" },
            id: &id,
            for_rcpt: (envelope.recipients.len() == 1).then(|| envelope.recipients[0].as_str()),
            date: &self.net.date(),
        }));
        let mut added_message_id = None;
        if role == Role::Submission {
            if !has_header(&envelope.data, "Date") {
                prefix.push_str(&format!("Date: {}\r\n", self.net.date()));
            }
            if !has_header(&envelope.data, "Message-ID") {
                let message_id = format!("{id}.{}@{}", self.net.timestamp(), self.name);
                prefix.push_str(&format!("Message-ID: <{message_id}>\r\n"));
                added_message_id = Some(message_id);
            }
        }
        // The label comes from the client's own headers: parsing the
        // Received: line we just wrote would cost time and tell nothing
        // new. Only a Message-ID we added ourselves has to be filled in.
        let mut summary = summarize(&envelope.data);
        if added_message_id.is_some() {
            summary.message_id = added_message_id;
        }
        let message = summary.message_ref();
        let mut data = Vec::with_capacity(prefix.len() + envelope.data.len());
        data.extend_from_slice(prefix.as_bytes());
        data.extend_from_slice(&envelope.data);

        let (local, remote): (Vec<String>, Vec<String>) =
            envelope.recipients.into_iter().partition(|r| self.is_postmaster(r) || self.is_final_for(&domain_of(r)));
        for recipient in &local {
            // The policy already checked these users exist.
            if let Outcome::Permanent(failure) = self.deliver_local(envelope.from.as_deref(), recipient, &data, message.clone()) {
                return Accepted { result: Err(Reply::new(550, (5, 1, 1), failure.diagnostic)), message };
            }
        }
        if remote.is_empty() {
            return Accepted { result: Ok(id), message };
        }
        let id = self.enqueue_as(id, envelope.from, remote, data, message.clone());
        Accepted { result: Ok(id), message }
    }
}
