//! Final delivery: the message reaches a mailbox on this host (the end of
//! SMTP's part of the journey; POP3 and IMAP take it from here).

use super::MailHost;
use super::bounce::Failure;
use super::queue::Outcome;
use crate::trace::{Kind, MessageRef, human_bytes};

impl MailHost {
    /// Puts a message into `recipient`'s mailbox here, with the
    /// `Return-Path:` header of final delivery (RFC 5321 §4.4). With
    /// `--data`, `Accepted` means the message is on disk; a failure to
    /// save it is `Temporary`, so it is tried again and never lost.
    pub(super) fn deliver_local(&self, from: Option<&str>, recipient: &str, data: &[u8], message: Option<MessageRef>) -> Outcome {
        let recipient = super::accounts::canonical(recipient);
        if !self.accounts.exists(&recipient) && !self.is_postmaster(&recipient) {
            return Outcome::Permanent(Failure { recipient, status: "5.1.1".into(), remote_mta: None, diagnostic: "550 5.1.1 No such user here".into() });
        }
        // Exactly the size needed: this copy stays in the mailbox.
        let return_path = format!("Return-Path: <{}>\r\n", from.unwrap_or(""));
        let mut raw = Vec::with_capacity(return_path.len() + data.len());
        raw.extend_from_slice(return_path.as_bytes());
        raw.extend_from_slice(data);
        let bytes = raw.len() as u64;
        if let Err(err) = self.store.deliver(&recipient, raw, self.net.now()) {
            // Not on disk, so not delivered: the sender will try again.
            return Outcome::Temporary(format!("{} cannot store the message for {recipient}: {err}", self.name));
        }
        self.emit(
            Kind::Delivered { mailbox: recipient.clone(), bytes },
            format!("the message lands in {recipient}'s mailbox on {} ({})", self.name, human_bytes(bytes)),
            Some("It waits on the server until the recipient's device fetches it, by POP3 or IMAP.".into()),
            message,
        );
        Outcome::Accepted
    }
}
