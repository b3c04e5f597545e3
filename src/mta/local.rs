//! Final delivery: the message reaches a mailbox on this host (the end of
//! SMTP's part of the journey; POP3 and IMAP take it from here).

use super::MailHost;
use super::bounce::Failure;
use super::queue::Outcome;
use std::collections::BTreeSet;

use crate::store::{Flag, StoreError};
use crate::trace::{Kind, MessageRef, human_bytes};

/// Where in the recipient's mailbox a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folder {
    Inbox,
    /// The Junk folder (created if missing), with the `$Junk` keyword
    /// (the IANA IMAP keyword mail programs use for spam, RFC 5788): where
    /// a DMARC `p=quarantine` puts mail that failed (RFC 7489 §6.3).
    Junk,
}

use crate::store::JUNK;

impl MailHost {
    /// Puts a message into `recipient`'s `folder` here, with the
    /// `Return-Path:` header of final delivery (RFC 5321 §4.4). With
    /// `--data`, `Accepted` means the message is on disk; a failure to
    /// save it is `Temporary`, so it is tried again and never lost.
    pub(super) fn deliver_local_to(&self, from: Option<&str>, recipient: &str, data: &[u8], message: Option<MessageRef>, folder: Folder) -> Outcome {
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
        let stored = match folder {
            Folder::Inbox => self.store.deliver(&recipient, raw, self.net.now()),
            Folder::Junk => {
                match self.store.create(&recipient, JUNK) {
                    Ok(()) | Err(StoreError::Exists) => {}
                    Err(err) => return Outcome::Temporary(format!("{} cannot make the Junk folder of {recipient}: {err}", self.name)),
                }
                let flags = BTreeSet::from([Flag::Keyword("$Junk".into())]);
                self.store.append(&recipient, JUNK, raw, flags, self.net.now()).map(|(_, uid)| uid)
            }
        };
        if let Err(err) = stored {
            // Not on disk, so not delivered: the sender will try again.
            return Outcome::Temporary(format!("{} cannot store the message for {recipient}: {err}", self.name));
        }
        self.emit(
            Kind::Delivered { mailbox: recipient.clone(), bytes },
            match folder {
                Folder::Inbox => format!("the message lands in {recipient}'s mailbox on {} ({})", self.name, human_bytes(bytes)),
                Folder::Junk => format!("the message lands in {recipient}'s Junk folder on {} ({}), marked $Junk", self.name, human_bytes(bytes)),
            },
            Some("It waits on the server until the recipient's device fetches it, by POP3 or IMAP.".into()),
            message,
        );
        Outcome::Accepted
    }
}
