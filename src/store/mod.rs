//! Mailboxes: where delivered mail waits for its reader.
//!
//! Each mail host has one [`Store`] with a mailbox per user. Delivery puts
//! a message into the user's INBOX; POP3 and IMAP (on the same host) read
//! from the same store. Every message gets a UID that never changes and is
//! never reused in that mailbox (RFC 3501 §2.3.1.1), so devices can tell
//! which messages they have already seen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One stored message.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub uid: u32,
    /// The exact bytes delivered, headers included (CRLF line ends).
    pub raw: Arc<Vec<u8>>,
    /// When it arrived, in simulated time.
    pub arrived: Duration,
}

impl StoredMessage {
    pub fn size(&self) -> usize {
        self.raw.len()
    }
}

#[derive(Debug, Default)]
struct Mailbox {
    next_uid: u32,
    messages: Vec<StoredMessage>,
}

/// The mailboxes of one host. Cheap to clone; safe to share between the
/// SMTP, POP3 and IMAP servers of the host.
#[derive(Clone, Debug, Default)]
pub struct Store {
    // Keyed by user address. Operations are short and never await while
    // holding the lock.
    users: Arc<Mutex<BTreeMap<String, Mailbox>>>,
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Mailbox>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a message into `user`'s INBOX; returns its UID.
    pub fn deliver(&self, user: &str, raw: Vec<u8>, arrived: Duration) -> u32 {
        let mut users = self.lock();
        let mailbox = users.entry(user.to_lowercase()).or_default();
        mailbox.next_uid += 1;
        let uid = mailbox.next_uid;
        mailbox.messages.push(StoredMessage { uid, raw: Arc::new(raw), arrived });
        uid
    }

    /// The messages in `user`'s INBOX, oldest first.
    pub fn inbox(&self, user: &str) -> Vec<StoredMessage> {
        self.lock().get(&user.to_lowercase()).map(|m| m.messages.clone()).unwrap_or_default()
    }

    /// How many messages all mailboxes hold.
    pub fn total(&self) -> usize {
        self.lock().values().map(|m| m.messages.len()).sum()
    }
}
