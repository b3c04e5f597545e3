//! The mail host: a server's brain behind its SMTP, IMAP and POP3 ports.
//!
//! A message's journey through one host, file by file:
//!
//! 1. `intake.rs` — an SMTP client offers it: which recipients are taken
//!    (our users, relaying for logged-in users, backup MX, greylisting),
//!    and the `Received:` line stamped on top. Mail a logged-in user
//!    submits is DKIM-signed here; mail arriving from another server on
//!    port 25 is judged here (SPF, DKIM, DMARC: see [`crate::auth`]) and
//!    refused, put in Junk, or taken with its `Authentication-Results`.
//!    Local recipients go straight to `local.rs`; the rest join the queue.
//! 2. `delivery.rs` — each queued message gets a task that tries every
//!    pending recipient, and asks `queue.rs`'s pure rule what next: done,
//!    retry later (back-off, in simulated time), or give up.
//! 3. `relay.rs` — for a recipient elsewhere: ask DNS for the domain's MX
//!    servers, try them by preference over SMTP (`smtp::client`), fail over.
//! 4. `local.rs` — for a recipient here: into the mailbox (`store`).
//! 5. `bounce.rs` — a permanent failure or an expired message: the report
//!    (RFC 3464) that goes back to the sender, queued like any message.
//!
//! `accounts.rs` decides who may log in, for all three protocols
//! (throttled by `throttle.rs`, with two-factor codes from `totp.rs`; a
//! lockout is told by `lockout.rs`);
//! `backends.rs` is where the SMTP, IMAP and POP3 servers plug into this
//! host (so `imap/` and `pop3/` never import `mta`). Every change is an
//! event, so the class sees the message wait, move and land.

pub mod accounts;
mod authentication;
mod backends;
pub mod bounce;
mod delivery;
mod intake;
mod local;
mod lockout;
pub mod queue;
mod relay;
pub mod throttle;
pub mod totp;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::{Checker, DomainKeys};
use crate::dns::Lookup;
use crate::net::Net;
use crate::scenario::{Host, RetrySettings};
use crate::store::Store;
use crate::trace::{Draft, Kind, MessageRef, Protocol, QueueState};
use accounts::Accounts;
pub use queue::QueueEntry;
use queue::{Item, Queue};

/// One mail server of the world.
pub struct MailHost {
    pub name: String,
    pub address: IpAddr,
    config: Host,
    accounts: Accounts,
    retry: RetrySettings,
    pub store: Store,
    net: Net,
    lookup: Lookup,
    queue: Queue,
    /// Greylisting memory: (client address, sender, recipient) → first seen.
    greylist: Mutex<HashMap<(IpAddr, String, String), Duration>>,
    next_id: AtomicU64,
    up: watch::Sender<bool>,
    auth: HostAuth,
}

/// What a host needs for sender authentication (see [`crate::auth`]).
#[derive(Clone, Default)]
pub struct HostAuth {
    /// The world's DKIM keys: the host signs its logged-in users' mail
    /// with the key of their domain, if that domain signs.
    pub keys: Arc<DomainKeys>,
    /// Judges mail arriving on port 25; `None` when the host's checks are
    /// off (`auth_checks: false`) or it runs no port 25.
    pub checker: Option<Checker>,
}

impl MailHost {
    #[allow(clippy::too_many_arguments)]
    pub fn new(name: &str, address: IpAddr, config: Host, accounts: Accounts, retry: RetrySettings, net: Net, lookup: Lookup, auth: HostAuth) -> Arc<Self> {
        let (up, _) = watch::channel(!config.down);
        let accounts = accounts.with_clock(net.conductor.clock().clone());
        let store = Store::new(net.epoch);
        store.set_tracer(net.trace.clone(), name);
        for user in accounts.addresses() {
            // Every account has an (empty) INBOX from the start, so a device
            // can log in and look before any mail arrives.
            store.ensure_user(&user);
        }
        Arc::new(MailHost {
            name: name.to_string(),
            address,
            config,
            accounts,
            retry,
            store,
            net,
            lookup,
            queue: Queue::default(),
            greylist: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            up,
            auth,
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
        self.queue.entries()
    }

    /// The accounts of the users whose mailbox is here: logins, two-factor
    /// sign-in, app passwords (shared by this host's three servers).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Checks a login (SMTP AUTH, POP3 USER/PASS, IMAP LOGIN) from
    /// `client`, throttled: the verdict and how long to wait before giving
    /// it. Only users whose mailbox is on this host can log in here. The
    /// world's own devices are counted on the simulated clock, outside
    /// programs on real time (see `accounts.rs`). A lock this attempt
    /// starts is told at once (`lockout.rs`).
    pub fn login(&self, user: &str, password: &str, client: IpAddr) -> accounts::Attempt {
        let timeline = if self.net.peers.knows_address(client) { accounts::Timeline::World } else { accounts::Timeline::Outside };
        let now = self.accounts.now(timeline);
        let attempt = self.accounts.login_on(timeline, user, password, client, now);
        if let Some(lock) = &attempt.locked {
            self.tell_lock(lock, timeline);
        }
        attempt
    }

    /// The web sign-in (see [`Accounts::sign_in`]), with a lock it starts
    /// told as an event and a notice, like a mail login's.
    pub fn sign_in(&self, user: &str, password: &str, code: Option<&str>, unix_time: u64) -> Result<(), accounts::SignInError> {
        let (result, lock) = self.accounts.sign_in_counted(user, password, code, unix_time);
        if let Some(lock) = &lock {
            self.tell_lock(lock, accounts::Timeline::World);
        }
        result
    }

    /// The largest message this host takes (SMTP SIZE, IMAP APPEND): a
    /// message that could not be delivered cannot be uploaded either.
    pub fn max_message_size(&self) -> usize {
        self.config.max_message_size.unwrap_or(crate::smtp::session::DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// The shared plumbing (trace, conductor, ports) of this host's world.
    pub fn net(&self) -> &Net {
        &self.net
    }

    /// Is this host the final destination for `domain`?
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

    /// Is this host a backup MX for `domain` (it queues mail for it)?
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
}

/// The domain of an address, in lower case ("" if it has none).
fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}
