//! Intake: what this host accepts over SMTP, and how it takes it in.
//!
//! Recipients (RFC 5321 §3.3): a mailbox of one of our domains (or the
//! reserved `postmaster`, §4.5.1) from anyone; any address from a user who
//! logged in on the submission port (RFC 6409); a domain we are the backup
//! MX for; nothing else — a server that relays for anyone is an "open
//! relay", and spammers find those within hours. Greylisting (RFC 6647)
//! refuses a stranger's first try with a 4xx that real servers retry.
//!
//! A message that passed is stamped with a `Received:` line (RFC 5321
//! §4.4), given the `Date:` and `Message-ID:` a device forgot (RFC 6409
//! §8, submission only), then delivered here or queued, before the client
//! hears 250.
//!
//! Sender authentication is decided here too (the telling of it, and the
//! signing, live in `authentication.rs`), on both ends of the journey:
//! - **outgoing**: mail a logged-in user submits is DKIM-signed (RFC 6376
//!   §5) with the key of the user's domain, once, after the stamping and
//!   before it is queued, so every relay hop carries the same signature;
//! - **incoming**: mail another server brings to port 25 for one of our
//!   mailboxes is judged (SPF, RFC 7208; DKIM, RFC 6376 §6; DMARC, RFC
//!   7489 §6.6) before the client hears anything. The verdict goes on top
//!   as `Authentication-Results` (RFC 8601) and `Received-SPF` (RFC 7208
//!   §9.1), and the sender domain's DMARC policy decides: `reject` → `550
//!   5.7.1` at the end of DATA (nothing stored or queued: the sending
//!   server must bounce it); `quarantine` → the recipient's Junk folder,
//!   marked `$Junk`; `none` → the inbox. A host with `auth_checks: false`
//!   takes everything, as most servers did before these checks existed.

use std::net::IpAddr;
use std::sync::Arc;

use super::local::Folder;
use super::queue::Outcome;
use super::{MailHost, domain_of};
use crate::auth::{Disposition, Verdict};
use crate::message::{ReceivedInfo, has_header, received_header, summarize};
use crate::scenario::SimDuration;
use crate::smtp::reply::Reply;
use crate::smtp::server::{Accepted, HopInfo};
use crate::smtp::session::{Envelope, Policy, RcptVerdict, Role};
use crate::trace::Kind;

/// The policy of one SMTP connection to a host.
pub(super) struct HostPolicy {
    pub host: Arc<MailHost>,
    pub role: Role,
    pub peer: IpAddr,
}

impl HostPolicy {
    /// Greylisting: refuse the first try of a (client, sender, recipient)
    /// triple; accept a retry once the greylist delay has passed.
    fn greylisted(&self, from: &str, to: &str) -> Option<RcptVerdict> {
        let delay = self.host.config.greylist?.0;
        let now = self.host.net.now();
        let mut seen = self.host.greylist.lock().unwrap_or_else(|e| e.into_inner());
        let first = *seen.entry((self.peer, from.to_lowercase(), to.to_lowercase())).or_insert(now);
        (now.saturating_sub(first) < delay)
            .then(|| RcptVerdict::TempFail(Reply::new(451, (4, 7, 1), format!("Greylisted: please try again in {}", SimDuration(delay)))))
    }
}

impl Policy for HostPolicy {
    fn authenticate(&self, user: &str, password: &str) -> crate::login::Attempt {
        if self.role != Role::Submission {
            // Port 25 takes no logins (the session does not offer AUTH there).
            return crate::login::Attempt::at_once(crate::login::Verdict::Refused);
        }
        self.host.login(user, password, self.peer)
    }

    fn check_recipient(&self, from: &str, to: &str, authenticated: Option<&str>) -> RcptVerdict {
        if self.host.is_postmaster(to) {
            return RcptVerdict::Accept;
        }
        let domain = domain_of(to);
        let greylist = |verdict| if self.role == Role::Relay { self.greylisted(from, to).unwrap_or(verdict) } else { verdict };
        if self.host.is_final_for(&domain) {
            if self.host.accounts.exists(to) {
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

    fn mailbox_key(&self, address: &str) -> String {
        if self.host.is_postmaster(address) || self.host.is_final_for(&domain_of(address)) {
            // Our own mailboxes match as our accounts do (bare `postmaster`
            // is a mailbox of its own, as the store keeps it).
            super::accounts::canonical(address)
        } else {
            let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
            format!("{local}@{}", domain.to_ascii_lowercase())
        }
    }
}

impl MailHost {
    /// Takes responsibility for a message the SMTP session has read: stamps
    /// it, delivers the local recipients, queues the rest. Returns the
    /// queue id for the `250` (or the refusal) and the message's label.
    pub(super) async fn take_in(self: &Arc<Self>, role: Role, envelope: Envelope, hop: &HopInfo) -> Accepted {
        let id = self.new_id();
        let authenticated = envelope.authenticated_user.is_some();
        // Judged first, on the message exactly as it arrived: a refused
        // message gets no queue id and leaves nothing behind.
        let verdict = match &self.auth.checker {
            Some(checker) if role == Role::Relay && envelope.recipients.iter().any(|r| self.is_local(r)) => {
                let message = summarize(&envelope.data).message_ref();
                let verdict = checker.verify(&envelope.data, hop.peer_ip, &envelope.helo, envelope.from.as_deref().unwrap_or("")).await;
                self.tell_verdict(&verdict, message.clone());
                if let Some(reply) = verdict.reject_reply() {
                    let text = reply.strip_prefix("550 5.7.1 ").unwrap_or(&reply).to_string();
                    return Accepted { result: Err(Reply::new(550, (5, 7, 1), text)), message };
                }
                Some(verdict)
            }
            _ => None,
        };
        // The verdict on top (RFC 8601 §4: above the trace headers it
        // covers), then Received:, then (submission only) the headers the
        // device forgot.
        let mut prefix = verdict.as_ref().map(Verdict::headers).unwrap_or_default();
        prefix += &received_header(&ReceivedInfo {
            helo: &envelope.helo,
            peer_name: &hop.peer_name,
            peer_ip: hop.peer_ip,
            by: &self.name,
            // RFC 3848: S for TLS, A for a logged-in sender.
            with: match (hop.tls.is_some(), authenticated) {
                (true, true) => "ESMTPSA",
                (true, false) => "ESMTPS",
                (false, true) => "ESMTPA",
                (false, false) => "ESMTP",
            },
            id: &id,
            for_rcpt: (envelope.recipients.len() == 1).then(|| envelope.recipients[0].as_str()),
            date: &self.net.date(),
        });
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
        if role == Role::Submission
            && let Some(user) = envelope.authenticated_user.as_deref()
        {
            data = self.dkim_sign(user, data, message.clone());
        }
        let folder = match verdict.map(|v| v.disposition) {
            Some(Disposition::Quarantine) => Folder::Junk,
            _ => Folder::Inbox,
        };

        let (local, remote): (Vec<String>, Vec<String>) = envelope.recipients.into_iter().partition(|r| self.is_local(r));
        // Local recipients first, straight into their mailboxes. One that
        // cannot be stored now (a full or broken disk) is retried from the
        // queue if some copy was delivered; if none was, the client hears
        // 451 and keeps the message itself (RFC 5321 §4.2.5: a 250 is a
        // promise, so it is only given for what is safe).
        let (mut delivered, mut retry, mut last_error) = (0, Vec::new(), String::new());
        for recipient in local {
            match self.deliver_local_to(envelope.from.as_deref(), &recipient, &data, message.clone(), folder) {
                Outcome::Accepted => delivered += 1,
                Outcome::Temporary(reason) => {
                    last_error = reason;
                    retry.push(recipient);
                }
                // The policy already checked these users exist.
                Outcome::Permanent(failure) => return Accepted { result: Err(Reply::new(550, (5, 1, 1), failure.diagnostic)), message },
            }
        }
        if delivered == 0 && !retry.is_empty() && remote.is_empty() {
            self.emit(Kind::Note, format!("{} answers 451: {last_error}", self.name), None, message.clone());
            return Accepted { result: Err(Reply::new(451, (4, 3, 0), "Temporary storage failure, please try again later")), message };
        }
        let pending: Vec<String> = retry.into_iter().chain(remote).collect();
        if pending.is_empty() {
            return Accepted { result: Ok(id), message };
        }
        let id = self.enqueue_as(id, envelope.from, pending, data, message.clone());
        Accepted { result: Ok(id), message }
    }

    /// Is `recipient` a mailbox here (rather than mail to relay on)?
    fn is_local(&self, recipient: &str) -> bool {
        self.is_postmaster(recipient) || self.is_final_for(&domain_of(recipient))
    }
}
