//! Telling about a lockout: when throttling (`throttle.rs`) locks an
//! account or a client address, the class sees an event with the reason
//! (whose account or which address, after how many failures, until when),
//! and the account's owner finds a notice in their INBOX — as real
//! providers send "someone tried to sign in to your account": the owner is
//! the one person who can tell a forgetful self from an attacker, and
//! should change the password if it was not them.

use super::MailHost;
use super::accounts::{Lock, Timeline};
use crate::message::summarize;
use crate::scenario::SimDuration;
use crate::trace::Kind;

const EXPLAIN_LOCK: &str = "Guessing a password means trying thousands of them. After each failure the server answered more slowly, and now it stops answering \"wrong password\" at all: for a while, even the right password is refused with a \"try again later\" code (SMTP 454 4.7.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]). A guesser who could try a password a millisecond now gets a handful per hour. The owner is told, so a real person locked out knows why — and knows someone else is trying.";

impl MailHost {
    /// A lock has just begun: the event, and the owner's notice.
    pub(super) fn tell_lock(&self, lock: &Lock, timeline: Timeline) {
        let simulated = timeline == Timeline::World;
        let clock = if simulated { "" } else { " (real time: an outside program)" };
        let lock_for = SimDuration(self.accounts.rules().lock_for);
        let (kind, summary) = match lock {
            Lock::Account { address, failures, until } => (
                Kind::AccountLocked { account: Some(address.clone()), client: None, failures: *failures, until_ms: until.as_millis() as u64, simulated },
                format!("{} locks the account {address} for {lock_for}{clock}: {failures} failed logins", self.name),
            ),
            Lock::Address { client, failures, until } => (
                Kind::AccountLocked { account: None, client: Some(client.to_string()), failures: *failures, until_ms: until.as_millis() as u64, simulated },
                format!("{} locks out the address {client} for {lock_for}{clock}: {failures} failed logins from it", self.name),
            ),
        };
        self.emit(kind, summary, Some(EXPLAIN_LOCK.to_string()), None);
        if let Lock::Account { address, failures, .. } = lock {
            let notice = self.lock_notice(address, *failures, lock_for);
            let message = summarize(&notice).message_ref();
            let _ = self.deliver_local(None, address, &notice, message);
        }
    }

    /// The notice the owner finds in their INBOX (no password in it, of
    /// course: only that someone tried, how often, and what to do).
    fn lock_notice(&self, address: &str, failures: u32, lock_for: SimDuration) -> Vec<u8> {
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or(&self.name);
        let id = format!("{}.{}@{}", self.new_id(), self.net.timestamp(), self.name);
        format!(
            "From: \"Account security\" <postmaster@{domain}>\r\n\
             To: <{address}>\r\n\
             Subject: Someone tried to sign in to your account\r\n\
             Date: {date}\r\n\
             Message-ID: <{id}>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             \r\n\
             Someone tried to sign in to your account {address} and got the\r\n\
             password wrong {failures} times in a row.\r\n\
             \r\n\
             To protect your account, sign-ins are paused for {lock_for}.\r\n\
             \r\n\
             If this was you, wait and try again. If it was not, someone may be\r\n\
             guessing your password: choose a long one you use nowhere else, and\r\n\
             turn on two-factor sign-in.\r\n",
            date = self.net.date(),
        )
        .into_bytes()
    }
}
