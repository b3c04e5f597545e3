//! Relaying: handing a message to the mail server of another domain.
//!
//! For each recipient domain the host asks DNS where its mail goes (MX
//! records by preference, the A record when there is no MX, a "null MX"
//! that refuses all mail; RFC 5321 §5.1, RFC 7505, see `dns::lookup`),
//! then tries those servers in order over SMTP from its own address. A
//! server that cannot be reached, or breaks off before it has judged any
//! recipient, is skipped for the next one ("failover"); the first server
//! that answers decides.
//!
//! TLS: the host asks for STARTTLS whenever the next server offers it
//! (RFC 3207) and checks its certificate against the world's CA and the
//! MX host's name. A certificate that fails the check counts as a server
//! that could not be reached: the next MX is tried, then the message
//! waits in the queue. Mail for a domain that requires TLS (the scenario's
//! `require_tls`, standing for MTA-STS, RFC 8461) never goes in plaintext:
//! an MX without STARTTLS is skipped the same way.

use std::net::IpAddr;

use super::MailHost;
use super::bounce::Failure;
use super::queue::{Item, Outcome};
use crate::dns::MailRoute;
use crate::scenario::Service;
use crate::smtp::client::{Outgoing, Sender, SmtpClient, Unavailable, send};
use crate::smtp::reply::Reply;
use crate::tls::ClientMode;
use crate::trace::{Kind, QueueState, human_bytes};

impl MailHost {
    /// Hands the recipients of one domain to that domain's mail server.
    pub(super) async fn relay(&self, item: &Item, domain: &str, recipients: &[String]) -> Vec<(String, Outcome)> {
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
                match self.transaction(&server.name, *address, domain, item, recipients).await {
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
    async fn transaction(&self, server: &str, address: IpAddr, domain: &str, item: &Item, recipients: &[String]) -> Result<Vec<(String, Outcome)>, String> {
        let opened = self.net.now();
        let (wire, _registration) = match self.net.dial(&self.name, self.address, (server, address), Service::Smtp, item.message.clone()).await {
            Ok(connected) => connected,
            Err(err) => return Err(format!("cannot connect to {server} ({address}): {err}")),
        };
        let mut client = SmtpClient::new(wire).opened_at(opened);
        let label = item.message.as_ref().map(|m| m.label.clone()).unwrap_or_else(|| "the message".into());
        let tampered = self.tampered(&item.data, server, item.message.clone());
        let outgoing = Outgoing {
            from: item.from.as_deref(),
            recipients,
            data: tampered.as_deref().unwrap_or(&item.data),
            summary: format!("{} sends {label} ({})", self.name, human_bytes(item.data.len() as u64)),
        };
        let tls = self.net.tls.as_ref().map(|tls| {
            let mode = if tls.requires_tls(domain) { ClientMode::Required } else { ClientMode::Opportunistic };
            tls.client(server, mode)
        });
        let sender = Sender { hello: &self.name, login: None, tls };
        let handover = send(&mut client, self.net.conductor.clock(), &sender, &outgoing).await.map_err(|e| match e {
            Unavailable::Connection(e) => format!("{server}: {e}"),
            refused => format!("{server} {refused}"),
        })?;
        Ok(handover.verdicts().into_iter().map(|(recipient, reply)| (recipient.to_string(), judge(server, recipient, reply))).collect())
    }
}

/// What a server's reply means for one recipient: 2xx delivered, 4xx try
/// again later, 5xx bounce.
fn judge(server: &str, recipient: &str, reply: &Reply) -> Outcome {
    if reply.is_positive() {
        Outcome::Accepted
    } else if reply.is_transient() {
        Outcome::Temporary(format!("{server} said {}", reply.one_line()))
    } else {
        let status = reply.enhanced.map(|e| e.to_string()).unwrap_or_else(|| "5.0.0".into());
        Outcome::Permanent(Failure { recipient: recipient.to_string(), status, remote_mta: Some(server.to_string()), diagnostic: reply.one_line() })
    }
}
