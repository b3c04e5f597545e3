//! Mailboxes: where delivered mail waits for its reader.
//!
//! Each mail host has one [`Store`]: per user, named mailboxes (INBOX,
//! plus folders a device creates over IMAP such as Sent or Junk). A
//! message has a UID that never changes and is never reused in its
//! mailbox; together with the mailbox's UIDVALIDITY it lets a device that
//! was offline tell exactly which messages it has already seen
//! (RFC 3501 §2.3.1.1). Flags (\Seen, \Answered, \Flagged, \Deleted,
//! \Draft and free keywords) live on the server, which is why reading a
//! message on the phone marks it read on the laptop too.
//!
//! POP3 and IMAP servers of the same host share the store. Every change
//! bumps the user's *version*; IMAP sessions watch it to tell their
//! client about new mail, flag changes and expunges (the multi-device
//! lesson), and IMAP IDLE waits on it.
//!
//! Each mailbox also keeps the list of *keywords* its messages have used
//! (flags without a backslash, such as `$Junk` or `$Label1`), in the order
//! they first appeared. IMAP announces that list in `* FLAGS` (RFC 3501
//! §7.2.6) and a client may only meet a keyword it was told about, so the
//! list only grows. Keywords are case-insensitive: the first spelling is
//! the one kept. A mailbox names at most [`MAX_KEYWORDS`] (the 26 letters a
//! Maildir file name can carry, as in Dovecot); a 27th is refused.
//!
//! With `--data DIR` every change is also written to disk as a Maildir
//! (`maildir.rs`, through the [`Persist`] hook) and loaded again at the
//! next start ([`Store::load`]); `backup.rs` exports and imports accounts
//! as Maildir or mbox (`mbox.rs`) — the "regular backups" lesson.

pub mod backup;
pub mod maildir;
pub mod mbox;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

/// The name of the mailbox new mail arrives in (case-insensitive).
pub const INBOX: &str = "INBOX";

/// The folder for suspected spam, where a DMARC `p=quarantine` puts mail
/// (RFC 7489 §6.3).
pub const JUNK: &str = "Junk";

/// The special-use attribute of a folder (RFC 6154 §2), which IMAP's LIST
/// shows so a mail program knows what the folder is for whatever its name
/// or language: only the Junk folder has one here.
pub fn special_use(folder: &str) -> Option<&'static str> {
    (folder == JUNK).then_some("\\Junk")
}

/// How many keywords one mailbox may use: a Maildir file name carries
/// keywords as the letters a to z (see `maildir.rs`).
pub const MAX_KEYWORDS: usize = maildir::MAX_KEYWORDS;

/// A message flag (RFC 3501 §2.3.2). `\Recent` is per session, not stored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    Keyword(String),
}

impl Flag {
    /// Parses `\Seen`, `\deleted`, or a keyword like `$Junk`.
    pub fn parse(text: &str) -> Option<Flag> {
        match text.to_ascii_lowercase().as_str() {
            "\\seen" => Some(Flag::Seen),
            "\\answered" => Some(Flag::Answered),
            "\\flagged" => Some(Flag::Flagged),
            "\\deleted" => Some(Flag::Deleted),
            "\\draft" => Some(Flag::Draft),
            _ if text.starts_with('\\') => None,
            _ if !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b)) => Some(Flag::Keyword(text.to_string())),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Keyword(k) => k,
        }
    }
}

/// One stored message.
#[derive(Clone, Debug)]
pub struct Message {
    pub uid: u32,
    /// The exact bytes delivered, headers included (CRLF line ends).
    pub raw: Arc<Vec<u8>>,
    pub flags: BTreeSet<Flag>,
    /// When it arrived, in simulated time since the start.
    pub arrived: Duration,
    /// The IMAP INTERNALDATE: arrival as Unix seconds (simulated calendar).
    pub internal_date: i64,
}

/// The older name, kept for readers of the SMTP code.
pub type StoredMessage = Message;

impl Message {
    pub fn size(&self) -> usize {
        self.raw.len()
    }
}

/// A mailbox's identity and contents at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    /// Messages in UID order (the IMAP sequence order).
    pub messages: Vec<Message>,
}

#[derive(Clone, Debug)]
struct Mailbox {
    uid_validity: u32,
    uid_next: u32,
    messages: Vec<Message>,
    /// Every keyword used here so far, first spelling, in order of first use.
    keywords: Vec<String>,
}

impl Mailbox {
    fn new(uid_validity: u32, uid_next: u32, messages: Vec<Message>) -> Self {
        let mut mailbox = Mailbox { uid_validity, uid_next, messages, keywords: Vec::new() };
        // Loaded mail brings its keywords along (past the limit too: they
        // are on the messages already).
        let used: Vec<String> = mailbox.messages.iter().flat_map(|m| &m.flags).filter_map(keyword).map(str::to_string).collect();
        for k in used {
            if mailbox.known_keyword(&k).is_none() {
                mailbox.keywords.push(k);
            }
        }
        mailbox
    }

    /// The spelling this mailbox uses for keyword `k`, if it knows it.
    fn known_keyword(&self, k: &str) -> Option<&String> {
        self.keywords.iter().find(|known| known.eq_ignore_ascii_case(k))
    }

    /// `flags` with each keyword in this mailbox's spelling. With `learn`,
    /// keywords new to the mailbox join its list (refused past
    /// [`MAX_KEYWORDS`]); without, unknown keywords are kept as given.
    fn canonical(&mut self, flags: &BTreeSet<Flag>, learn: bool) -> Result<BTreeSet<Flag>, StoreError> {
        let new: BTreeSet<String> = flags.iter().filter_map(keyword).filter(|k| self.known_keyword(k).is_none()).map(|k| k.to_ascii_lowercase()).collect();
        if learn && self.keywords.len() + new.len() > MAX_KEYWORDS {
            return Err(StoreError::TooManyKeywords);
        }
        let mut out = BTreeSet::new();
        for flag in flags {
            out.insert(match flag {
                Flag::Keyword(k) => match self.known_keyword(k) {
                    Some(known) => Flag::Keyword(known.clone()),
                    None => {
                        if learn {
                            self.keywords.push(k.clone());
                        }
                        flag.clone()
                    }
                },
                system => system.clone(),
            });
        }
        Ok(out)
    }
}

/// The keyword of a flag, if it is one.
fn keyword(flag: &Flag) -> Option<&str> {
    match flag {
        Flag::Keyword(k) => Some(k),
        _ => None,
    }
}

#[derive(Debug)]
struct Account {
    // Keyed by the mailbox name as created; INBOX is always "INBOX".
    mailboxes: BTreeMap<String, Mailbox>,
    subscriptions: BTreeSet<String>,
    pop3_locked: bool,
    version: watch::Sender<u64>,
}

/// Why a store operation was refused (IMAP answers NO with this text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no such mailbox")]
    NoMailbox,
    #[error("mailbox already exists")]
    Exists,
    #[error("INBOX cannot be deleted or renamed away")]
    Inbox,
    #[error("no such user")]
    NoUser,
    #[error("bad mailbox name")]
    BadName,
    /// The name's stored form (a Maildir folder name) would pass the file
    /// system's 255-byte limit (IMAP answers `NO [LIMIT]`, RFC 5530).
    #[error("mailbox name too long to be stored")]
    NameTooLong,
    /// The change could not be written to disk, so it was not made (IMAP
    /// `NO [SERVERBUG]`, SMTP `451 4.3.0`): the client may try again.
    #[error("cannot save the change: {0}")]
    Storage(String),
    #[error("too many keywords in this mailbox (at most {MAX_KEYWORDS})")]
    TooManyKeywords,
}

/// Everything of one user's account at one moment, for saving and loading.
#[derive(Clone, Debug, Default)]
pub struct AccountSnapshot {
    /// Every mailbox, by name.
    pub mailboxes: Vec<Snapshot>,
    pub subscriptions: Vec<String>,
}

/// Where a store's changes are written (e.g. a Maildir per user on disk).
pub trait Persist: Send + Sync + std::fmt::Debug {
    /// Writes `user`'s whole account right after a change, durably: when
    /// this returns `Ok` the change survives a crash. Called with the store
    /// locked, so saves happen in the order of the changes. `touched` names
    /// the mailboxes the change touched: `Err` if one of them (or the
    /// subscription list) could not be saved — then the store undoes the
    /// change. A failure in another folder is reported but fails nothing,
    /// so one broken folder never stops mail arriving in the others.
    fn save(&self, user: &str, account: &AccountSnapshot, touched: &[String]) -> Result<(), String>;
}

/// The mailboxes of one host. Cheap to clone; safe to share between the
/// SMTP, POP3 and IMAP servers of the host.
#[derive(Clone, Debug)]
pub struct Store {
    // One lock for all users: operations are short and never await while
    // holding it, and a classroom host has a handful of users.
    users: Arc<Mutex<BTreeMap<String, Account>>>,
    /// Unix seconds at simulated time zero (for INTERNALDATE).
    epoch: i64,
    next_validity: Arc<Mutex<u32>>,
    /// Set once if the world keeps its mail on disk (`--data`).
    persist: Arc<OnceLock<Arc<dyn Persist>>>,
    /// Set once: where to report messages leaving a mailbox, and as which host.
    tracer: Arc<OnceLock<(crate::trace::Trace, String)>>,
    /// Called at once, inside the change, for each change to a user's
    /// mailboxes (see [`Store::observe`]).
    observers: Arc<Mutex<Vec<(String, u64, Callback)>>>,
}

/// A change callback; wrapped so `Store` can still derive `Debug`.
#[derive(Clone)]
struct Callback(Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Callback")
    }
}

/// Keeps a [`Store::observe`] callback registered; removes it when dropped.
pub struct Observer {
    observers: Arc<Mutex<Vec<(String, u64, Callback)>>>,
    id: u64,
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.observers.lock().unwrap_or_else(|e| e.into_inner()).retain(|(_, id, _)| *id != self.id);
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new(0)
    }
}

/// Holds the POP3 lock of a maildrop (RFC 1939 §8); released on drop.
pub struct MaildropLock {
    store: Store,
    user: String,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        if let Some(account) = self.store.lock().get_mut(&self.user) {
            account.pop3_locked = false;
        }
    }
}

fn key(user: &str) -> String {
    user.to_ascii_lowercase()
}

/// INBOX is case-insensitive (RFC 3501 §5.1); other names are kept as given.
fn mailbox_key(name: &str) -> String {
    if name.eq_ignore_ascii_case(INBOX) { INBOX.to_string() } else { name.to_string() }
}

impl Store {
    /// A store whose simulated time zero is the Unix second `epoch`.
    pub fn new(epoch: i64) -> Self {
        // UIDVALIDITY must change if a mailbox is ever recreated; basing it
        // on the start time keeps it unique across runs too.
        let first = (epoch.max(1) as u64 % u32::MAX as u64) as u32;
        Store {
            users: Arc::default(),
            epoch,
            next_validity: Arc::new(Mutex::new(first.max(1))),
            persist: Arc::default(),
            observers: Arc::default(),
            tracer: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Account>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_validity(&self) -> u32 {
        let mut next = self.next_validity.lock().unwrap_or_else(|e| e.into_inner());
        *next = next.wrapping_add(1).max(1);
        *next
    }

    fn new_mailbox(&self) -> Mailbox {
        Mailbox::new(self.new_validity(), 1, Vec::new())
    }

    /// Creates `user`'s account (with an empty INBOX) if it is missing.
    pub fn ensure_user(&self, user: &str) {
        let inbox = self.new_mailbox();
        let mut users = self.lock();
        users.entry(key(user)).or_insert_with(|| {
            let (version, _) = watch::channel(0);
            Account { mailboxes: BTreeMap::from([(INBOX.to_string(), inbox)]), subscriptions: BTreeSet::from([INBOX.to_string()]), pop3_locked: false, version }
        });
    }

    /// Runs `f` on `user`'s account. If `f` says it changed something, the
    /// change is saved first (with `--data`), and only then announced to
    /// the sessions watching. A change that cannot be saved is undone — the
    /// `touched` mailboxes are put back as they were — and reported as
    /// [`StoreError::Storage`]: nobody was told of it, and the client hears
    /// a temporary error, so nothing is acknowledged that is not on disk.
    fn with_account<T>(&self, user: &str, touched: &[&str], f: impl FnOnce(&mut Account, &Store) -> Result<(T, bool), StoreError>) -> Result<T, StoreError> {
        self.ensure_user(user);
        let mut users = self.lock();
        let account = users.get_mut(&key(user)).ok_or(StoreError::NoUser)?;
        let touched: Vec<String> = touched.iter().map(|name| mailbox_key(name)).collect();
        // Only with a disk to fail: a copy of what the change may touch.
        let before = self.persist.get().map(|_| {
            let mailboxes: Vec<(String, Option<Mailbox>)> = touched.iter().map(|name| (name.clone(), account.mailboxes.get(name).cloned())).collect();
            (mailboxes, account.subscriptions.clone())
        });
        let (value, changed) = f(account, self)?;
        if changed {
            if let Err(err) = self.save(user, account, &touched) {
                if let Some((mailboxes, subscriptions)) = before {
                    for (name, mailbox) in mailboxes {
                        match mailbox {
                            Some(mailbox) => account.mailboxes.insert(name, mailbox),
                            None => account.mailboxes.remove(&name),
                        };
                    }
                    account.subscriptions = subscriptions;
                }
                return Err(StoreError::Storage(err));
            }
            account.version.send_modify(|v| *v += 1);
            let user = key(user);
            for (_, _, callback) in self.observers.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(u, _, _)| *u == user) {
                (callback.0)();
            }
        }
        Ok(value)
    }

    /// Calls `callback` synchronously, inside each change to `user`'s
    /// mailboxes, until the returned guard is dropped. An IDLE session uses
    /// it to take a clock activity *before* the change is over, so the
    /// simulated clock waits until the news is pushed (a `watch` alone
    /// would wake the session later, maybe after the clock moved on).
    /// The callback must be quick and must not use the store.
    pub fn observe(&self, user: &str, callback: impl Fn() + Send + Sync + 'static) -> Observer {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.observers.lock().unwrap_or_else(|e| e.into_inner()).push((key(user), id, Callback(Arc::new(callback))));
        Observer { observers: self.observers.clone(), id }
    }

    /// Hands the account to the persistence hook, if there is one.
    fn save(&self, user: &str, account: &Account, touched: &[String]) -> Result<(), String> {
        match self.persist.get() {
            Some(persist) => persist.save(&key(user), &account_snapshot(account), touched),
            None => Ok(()),
        }
    }

    /// From now on, every change is also handed to `persist` (once per
    /// store; returns false if one was set already).
    pub fn set_persist(&self, persist: Arc<dyn Persist>) -> bool {
        self.persist.set(persist).is_ok()
    }

    /// Puts back `user`'s account as it was saved (at start-up, from disk).
    /// Replaces what the store had for the user; nothing is saved.
    pub fn load(&self, user: &str, saved: AccountSnapshot) {
        self.ensure_user(user);
        let highest = saved.mailboxes.iter().map(|m| m.uid_validity).max().unwrap_or(0);
        let mut mailboxes = BTreeMap::new();
        for mut snapshot in saved.mailboxes {
            snapshot.messages.sort_by_key(|m| m.uid);
            for message in &mut snapshot.messages {
                // Arrival before this run's time zero shows as zero.
                message.arrived = Duration::from_secs((message.internal_date - self.epoch).max(0) as u64);
            }
            // UIDs are never reused, even if the saved UIDNEXT was too low.
            let uid_next = snapshot.uid_next.max(snapshot.messages.last().map_or(1, |m| m.uid + 1));
            mailboxes.insert(mailbox_key(&snapshot.name), Mailbox::new(snapshot.uid_validity, uid_next, snapshot.messages));
        }
        if !mailboxes.contains_key(INBOX) {
            mailboxes.insert(INBOX.to_string(), self.new_mailbox());
        }
        {
            let mut next = self.next_validity.lock().unwrap_or_else(|e| e.into_inner());
            *next = (*next).max(highest);
        }
        let mut users = self.lock();
        if let Some(account) = users.get_mut(&key(user)) {
            account.mailboxes = mailboxes;
            account.subscriptions = saved.subscriptions.into_iter().collect();
            account.version.send_modify(|v| *v += 1);
        }
    }

    /// `user`'s whole account now (for backups and tests).
    pub fn account_snapshot(&self, user: &str) -> AccountSnapshot {
        self.lock().get(&key(user)).map(account_snapshot).unwrap_or_default()
    }

    /// Puts a message into `user`'s INBOX; returns its UID. With `--data`
    /// the message is on disk when this returns `Ok`.
    pub fn deliver(&self, user: &str, raw: Vec<u8>, arrived: Duration) -> Result<u32, StoreError> {
        self.append(user, INBOX, raw, BTreeSet::new(), arrived).map(|(_, uid)| uid)
    }

    /// Adds a message to a mailbox (delivery, IMAP APPEND, COPY); returns
    /// the mailbox's UIDVALIDITY and the new UID.
    pub fn append(&self, user: &str, mailbox: &str, mut raw: Vec<u8>, flags: BTreeSet<Flag>, arrived: Duration) -> Result<(u32, u32), StoreError> {
        // A mailbox keeps its messages for the whole run: give back the
        // spare room the bytes' Vec grew with (up to half of it).
        raw.shrink_to_fit();
        let internal_date = self.epoch + arrived.as_secs() as i64;
        self.with_account(user, &[mailbox], |account, _| {
            let mailbox = account.mailboxes.get_mut(&mailbox_key(mailbox)).ok_or(StoreError::NoMailbox)?;
            let flags = mailbox.canonical(&flags, true)?;
            let uid = mailbox.uid_next;
            mailbox.uid_next += 1;
            mailbox.messages.push(Message { uid, raw: Arc::new(raw), flags, arrived, internal_date });
            Ok(((mailbox.uid_validity, uid), true))
        })
    }

    /// The messages in `user`'s INBOX, oldest first.
    pub fn inbox(&self, user: &str) -> Vec<Message> {
        self.snapshot(user, INBOX).map(|s| s.messages).unwrap_or_default()
    }

    /// A mailbox's current state.
    pub fn snapshot(&self, user: &str, mailbox: &str) -> Result<Snapshot, StoreError> {
        self.with_account(user, &[], |account, _| {
            let name = mailbox_key(mailbox);
            let mb = account.mailboxes.get(&name).ok_or(StoreError::NoMailbox)?;
            Ok((Snapshot { name, uid_validity: mb.uid_validity, uid_next: mb.uid_next, messages: mb.messages.clone() }, false))
        })
    }

    /// The keywords `mailbox` has used, in order of first use (IMAP
    /// announces them in FLAGS). The list only grows.
    pub fn keywords(&self, user: &str, mailbox: &str) -> Result<Vec<String>, StoreError> {
        self.with_account(user, &[], |account, _| {
            let mb = account.mailboxes.get(&mailbox_key(mailbox)).ok_or(StoreError::NoMailbox)?;
            Ok((mb.keywords.clone(), false))
        })
    }

    /// Changes the flags of the messages with `uids` (IMAP STORE); returns
    /// the messages whose flags changed, with their new flags. Keywords
    /// added join the mailbox's list even if no message changed (the
    /// client was promised it can use them); past [`MAX_KEYWORDS`] nothing
    /// changes and the answer is [`StoreError::TooManyKeywords`].
    pub fn set_flags(
        &self,
        user: &str,
        mailbox: &str,
        uids: &[u32],
        change: FlagChange,
        flags: &BTreeSet<Flag>,
    ) -> Result<Vec<(u32, BTreeSet<Flag>)>, StoreError> {
        self.with_account(user, &[mailbox], |account, _| {
            let mb = account.mailboxes.get_mut(&mailbox_key(mailbox)).ok_or(StoreError::NoMailbox)?;
            let flags = mb.canonical(flags, change != FlagChange::Remove)?;
            let uids: BTreeSet<u32> = uids.iter().copied().collect();
            let mut changed = Vec::new();
            for message in mb.messages.iter_mut().filter(|m| uids.contains(&m.uid)) {
                let before = message.flags.clone();
                match change {
                    FlagChange::Add => message.flags.extend(flags.iter().cloned()),
                    FlagChange::Remove => message.flags.retain(|f| !flags.contains(f)),
                    FlagChange::Replace => message.flags = flags.clone(),
                }
                if message.flags != before {
                    changed.push((message.uid, message.flags.clone()));
                }
            }
            let any = !changed.is_empty();
            Ok((changed, any))
        })
    }

    /// Removes messages for good: those with `uids` (POP3 QUIT), or every
    /// message flagged \Deleted (IMAP EXPUNGE/CLOSE). Returns removed UIDs.
    pub fn expunge(&self, user: &str, mailbox: &str, uids: Option<&[u32]>) -> Result<Vec<u32>, StoreError> {
        self.with_account(user, &[mailbox], |account, _| {
            let mb = account.mailboxes.get_mut(&mailbox_key(mailbox)).ok_or(StoreError::NoMailbox)?;
            let uids: Option<BTreeSet<u32>> = uids.map(|u| u.iter().copied().collect());
            let mut removed = Vec::new();
            mb.messages.retain(|m| {
                let gone = match &uids {
                    Some(uids) => uids.contains(&m.uid),
                    None => m.flags.contains(&Flag::Deleted),
                };
                if gone {
                    removed.push(m.uid);
                }
                !gone
            });
            let any = !removed.is_empty();
            Ok((removed, any))
        })
        .inspect(|removed| self.report_removed(user, mailbox, removed.len()))
    }

    /// From now on, messages leaving a mailbox (POP3 QUIT, IMAP EXPUNGE)
    /// are reported in `trace` as events of `host`, so a viewer can keep
    /// count without asking the store.
    pub fn set_tracer(&self, trace: crate::trace::Trace, host: &str) {
        let _ = self.tracer.set((trace, host.to_string()));
    }

    fn report_removed(&self, user: &str, mailbox: &str, count: usize) {
        use crate::trace::{Draft, Kind, Protocol};
        let Some((trace, host)) = self.tracer.get().filter(|_| count > 0) else { return };
        let (user, folder) = (key(user), mailbox_key(mailbox));
        let summary = format!("{count} message{} leave{} {user}'s {folder} on {host}", if count == 1 { "" } else { "s" }, if count == 1 { "s" } else { "" });
        trace.emit(Draft::new(host, host, Protocol::Sim, Kind::Removed { mailbox: user, folder, count: count as u64 }, summary));
    }

    /// Copies messages to another mailbox (IMAP COPY); returns the target's
    /// UIDVALIDITY and (old UID, new UID) pairs.
    pub fn copy(&self, user: &str, from: &str, uids: &[u32], to: &str) -> Result<(u32, Vec<(u32, u32)>), StoreError> {
        let uids: BTreeSet<u32> = uids.iter().copied().collect();
        self.with_account(user, &[to], |account, _| {
            let source: Vec<Message> =
                account.mailboxes.get(&mailbox_key(from)).ok_or(StoreError::NoMailbox)?.messages.iter().filter(|m| uids.contains(&m.uid)).cloned().collect();
            let target = account.mailboxes.get_mut(&mailbox_key(to)).ok_or(StoreError::NoMailbox)?;
            let used: BTreeSet<Flag> = source.iter().flat_map(|m| m.flags.iter().filter(|f| keyword(f).is_some()).cloned()).collect();
            target.canonical(&used, true)?;
            let mut pairs = Vec::new();
            for mut message in source {
                message.flags = target.canonical(&message.flags, false)?;
                let old = message.uid;
                message.uid = target.uid_next;
                target.uid_next += 1;
                pairs.push((old, message.uid));
                target.messages.push(message);
            }
            let any = !pairs.is_empty();
            Ok(((target.uid_validity, pairs), any))
        })
    }

    /// Creates a mailbox (IMAP CREATE).
    pub fn create(&self, user: &str, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        self.with_account(user, &[name], |account, store| {
            let name = mailbox_key(name);
            if account.mailboxes.contains_key(&name) {
                return Err(StoreError::Exists);
            }
            account.mailboxes.insert(name, store.new_mailbox());
            Ok(((), true))
        })
    }

    /// Deletes a mailbox and its messages (IMAP DELETE).
    pub fn delete(&self, user: &str, name: &str) -> Result<(), StoreError> {
        self.with_account(user, &[name], |account, _| {
            let name = mailbox_key(name);
            if name == INBOX {
                return Err(StoreError::Inbox);
            }
            account.mailboxes.remove(&name).ok_or(StoreError::NoMailbox)?;
            account.subscriptions.remove(&name);
            Ok(((), true))
        })
    }

    /// Renames a mailbox (IMAP RENAME). Renaming INBOX moves its messages
    /// to the new name and leaves INBOX empty (RFC 3501 §6.3.5).
    pub fn rename(&self, user: &str, from: &str, to: &str) -> Result<(), StoreError> {
        check_name(to)?;
        self.with_account(user, &[from, to], |account, store| {
            let (from, to) = (mailbox_key(from), mailbox_key(to));
            if account.mailboxes.contains_key(&to) {
                return Err(StoreError::Exists);
            }
            let mut mailbox = account.mailboxes.remove(&from).ok_or(StoreError::NoMailbox)?;
            if from == INBOX {
                let mut moved = store.new_mailbox();
                moved.messages = std::mem::take(&mut mailbox.messages);
                for (i, m) in moved.messages.iter_mut().enumerate() {
                    m.uid = i as u32 + 1;
                }
                moved.uid_next = moved.messages.len() as u32 + 1;
                moved.keywords = mailbox.keywords.clone();
                account.mailboxes.insert(INBOX.to_string(), mailbox);
                account.mailboxes.insert(to, moved);
            } else {
                account.mailboxes.insert(to, mailbox);
            }
            Ok(((), true))
        })
    }

    /// The user's mailbox names, INBOX first.
    pub fn list(&self, user: &str) -> Vec<String> {
        self.with_account(user, &[], |account, _| Ok((account.mailboxes.keys().cloned().collect::<Vec<_>>(), false))).unwrap_or_default()
    }

    pub fn subscribe(&self, user: &str, name: &str, subscribed: bool) -> Result<(), StoreError> {
        self.with_account(user, &[], |account, _| {
            let name = mailbox_key(name);
            let changed = if subscribed { account.subscriptions.insert(name) } else { account.subscriptions.remove(&name) };
            Ok(((), changed))
        })
    }

    pub fn subscriptions(&self, user: &str) -> Vec<String> {
        self.with_account(user, &[], |account, _| Ok((account.subscriptions.iter().cloned().collect::<Vec<_>>(), false))).unwrap_or_default()
    }

    /// Follows changes to any of `user`'s mailboxes (new mail, flags,
    /// expunges): the value goes up on each change.
    pub fn watch(&self, user: &str) -> watch::Receiver<u64> {
        self.ensure_user(user);
        self.lock().get(&key(user)).map(|a| a.version.subscribe()).expect("ensured above")
    }

    /// Takes the POP3 lock of `user`'s maildrop, or `None` if another POP3
    /// session holds it (RFC 1939 §8: "-ERR [IN-USE]", RFC 2449).
    pub fn lock_maildrop(&self, user: &str) -> Option<MaildropLock> {
        self.ensure_user(user);
        let mut users = self.lock();
        let account = users.get_mut(&key(user))?;
        if account.pop3_locked {
            return None;
        }
        account.pop3_locked = true;
        Some(MaildropLock { store: self.clone(), user: key(user) })
    }

    /// How many messages all mailboxes of all users hold.
    pub fn total(&self) -> usize {
        self.lock().values().flat_map(|a| a.mailboxes.values()).map(|m| m.messages.len()).sum()
    }

    /// How many bytes the messages of all mailboxes hold, together.
    pub fn total_bytes(&self) -> usize {
        self.lock().values().flat_map(|a| a.mailboxes.values()).flat_map(|m| m.messages.iter()).map(Message::size).sum()
    }

    /// The users that have an account here.
    pub fn users(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// A name a mailbox may have: not empty, no wildcards or line breaks, at
/// most 200 bytes, and short enough as a Maildir folder name (each "." or
/// "%" is stored as three bytes) for the 255-byte limit of file names.
fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > 200 || name.contains(['\r', '\n', '*', '%']) {
        return Err(StoreError::BadName);
    }
    if maildir::folder_dir(name).len() > maildir::MAX_FILE_NAME {
        return Err(StoreError::NameTooLong);
    }
    Ok(())
}

fn account_snapshot(account: &Account) -> AccountSnapshot {
    AccountSnapshot {
        mailboxes: account
            .mailboxes
            .iter()
            .map(|(name, mb)| Snapshot { name: name.clone(), uid_validity: mb.uid_validity, uid_next: mb.uid_next, messages: mb.messages.clone() })
            .collect(),
        subscriptions: account.subscriptions.iter().cloned().collect(),
    }
}

/// How [`Store::set_flags`] applies its flags (IMAP STORE +FLAGS, -FLAGS, FLAGS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagChange {
    Add,
    Remove,
    Replace,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_grow_and_are_never_reused() {
        let store = Store::new(1_700_000_000);
        let a = store.deliver("Bob@example.org", b"one".to_vec(), Duration::ZERO);
        let b = store.deliver("bob@example.org", b"two".to_vec(), Duration::from_secs(60));
        assert_eq!((a, b), (Ok(1), Ok(2)));
        store.expunge("bob@example.org", INBOX, Some(&[2])).unwrap();
        assert_eq!(store.deliver("bob@example.org", b"three".to_vec(), Duration::ZERO), Ok(3));
        let inbox = store.snapshot("bob@example.org", "inbox").unwrap();
        assert_eq!(inbox.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(inbox.uid_next, 4);
        assert_eq!(inbox.messages[0].internal_date, 1_700_000_000);
    }

    #[test]
    fn flags_copy_expunge_and_folders() {
        let store = Store::default();
        let user = "bob@example.org";
        store.deliver(user, b"hello".to_vec(), Duration::ZERO).expect("delivered");
        let mut version = store.watch(user);
        version.borrow_and_update();
        let changed = store.set_flags(user, INBOX, &[1], FlagChange::Add, &BTreeSet::from([Flag::Seen, Flag::Deleted])).unwrap();
        assert_eq!(changed.len(), 1);
        assert!(version.has_changed().unwrap(), "other sessions hear about flag changes");
        store.create(user, "Archive").unwrap();
        assert_eq!(store.create(user, "Archive"), Err(StoreError::Exists));
        let (_, pairs) = store.copy(user, INBOX, &[1], "Archive").unwrap();
        assert_eq!(pairs, vec![(1, 1)]);
        assert_eq!(store.expunge(user, INBOX, None).unwrap(), vec![1]);
        assert_eq!(store.snapshot(user, "Archive").unwrap().messages.len(), 1);
        store.rename(user, "Archive", "Old").unwrap();
        assert_eq!(store.list(user), vec!["INBOX".to_string(), "Old".to_string()]);
        assert_eq!(store.delete(user, "inbox"), Err(StoreError::Inbox));
    }

    #[test]
    fn keywords_are_listed_once_case_insensitively_and_bounded() {
        let store = Store::default();
        let user = "bob@example.org";
        store.deliver(user, b"one".to_vec(), Duration::ZERO).expect("delivered");
        store.deliver(user, b"two".to_vec(), Duration::ZERO).expect("delivered");
        let kw = |names: &[&str]| names.iter().map(|n| Flag::Keyword(n.to_string())).collect::<BTreeSet<_>>();
        store.set_flags(user, INBOX, &[1], FlagChange::Add, &kw(&["$Label1"])).unwrap();
        // Another spelling is the same keyword: the first one is kept.
        let changed = store.set_flags(user, INBOX, &[2], FlagChange::Add, &kw(&["$LABEL1", "Work"])).unwrap();
        assert_eq!(changed, vec![(2, kw(&["$Label1", "Work"]))]);
        store.set_flags(user, INBOX, &[1, 2], FlagChange::Remove, &kw(&["$label1"])).unwrap();
        assert_eq!(store.inbox(user)[1].flags, kw(&["Work"]));
        // The list keeps keywords no message has any more, and those of a
        // STORE that changed nothing (expunged message).
        store.set_flags(user, INBOX, &[99], FlagChange::Add, &kw(&["$Ghost"])).unwrap();
        assert_eq!(store.keywords(user, INBOX).unwrap(), vec!["$Label1", "Work", "$Ghost"]);
        // COPY brings keywords along, into the target's spelling.
        store.create(user, "Archive").unwrap();
        store.append(user, "Archive", b"x".to_vec(), kw(&["WORK"]), Duration::ZERO).unwrap();
        store.copy(user, INBOX, &[2], "Archive").unwrap();
        assert_eq!(store.snapshot(user, "Archive").unwrap().messages[1].flags, kw(&["WORK"]));
        assert_eq!(store.keywords(user, "Archive").unwrap(), vec!["WORK"]);
        // At most MAX_KEYWORDS: one more is refused, and nothing changes.
        let many: Vec<String> = (4..=MAX_KEYWORDS).map(|i| format!("k{i}")).collect();
        store.set_flags(user, INBOX, &[1], FlagChange::Add, &kw(&many.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
        assert_eq!(store.keywords(user, INBOX).unwrap().len(), MAX_KEYWORDS);
        let before = store.inbox(user);
        assert_eq!(store.set_flags(user, INBOX, &[1, 2], FlagChange::Add, &kw(&["Work", "one-more"])), Err(StoreError::TooManyKeywords));
        assert_eq!(store.append(user, INBOX, b"y".to_vec(), kw(&["one-more"]), Duration::ZERO), Err(StoreError::TooManyKeywords));
        assert_eq!(store.inbox(user).iter().map(|m| &m.flags).collect::<Vec<_>>(), before.iter().map(|m| &m.flags).collect::<Vec<_>>());
        // Loading an account rebuilds the list from the messages' keywords.
        let other = Store::default();
        other.load(user, store.account_snapshot(user));
        assert_eq!(other.keywords(user, "Archive").unwrap(), vec!["WORK"]);
    }

    #[test]
    fn one_pop3_session_per_maildrop() {
        let store = Store::default();
        let first = store.lock_maildrop("bob@example.org");
        assert!(first.is_some());
        assert!(store.lock_maildrop("BOB@example.org").is_none());
        drop(first);
        assert!(store.lock_maildrop("bob@example.org").is_some());
    }

    /// A disk on which one folder cannot be written.
    #[derive(Debug)]
    struct BrokenFolder(&'static str);

    impl Persist for BrokenFolder {
        fn save(&self, _user: &str, _account: &AccountSnapshot, touched: &[String]) -> Result<(), String> {
            if touched.iter().any(|t| t == self.0) { Err("disk full".into()) } else { Ok(()) }
        }
    }

    #[test]
    fn a_change_that_cannot_be_saved_is_undone_and_never_announced() {
        let (store, bob) = (Store::new(0), "bob@example.org");
        store.ensure_user(bob);
        store.create(bob, "Work").expect("created");
        store.deliver(bob, b"first".to_vec(), Duration::ZERO).expect("delivered");
        store.set_persist(Arc::new(BrokenFolder("Work")));
        let version = store.watch(bob);
        let before = *version.borrow();
        let refused = store.append(bob, "Work", b"lost?".to_vec(), BTreeSet::new(), Duration::ZERO);
        assert_eq!(refused, Err(StoreError::Storage("disk full".into())));
        assert!(store.snapshot(bob, "Work").expect("Work").messages.is_empty(), "not half made");
        assert!(store.copy(bob, INBOX, &[1], "Work").is_err());
        assert!(store.rename(bob, "Work", "Play").is_err());
        assert_eq!(store.list(bob), ["INBOX", "Work"], "the rename was undone");
        assert_eq!(*version.borrow(), before, "no session heard of a change that did not happen");
        // Another folder's trouble does not stop INBOX.
        assert_eq!(store.deliver(bob, b"second".to_vec(), Duration::ZERO), Ok(2));
        // 90 dots would be 270 bytes on disk (each "." is stored as "%2E").
        assert_eq!(store.create(bob, &".".repeat(90)), Err(StoreError::NameTooLong));
        assert_eq!(store.create(bob, &".".repeat(80)), Ok(()));
    }
}
