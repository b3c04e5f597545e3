//! The mail program on a person's device (the MUA): it writes a message
//! (RFC 5322 headers and a MIME body, built with mail-builder) and submits
//! it to its own mail server over SMTP submission with AUTH (RFC 6409,
//! RFC 4954), with the same client dialogue a server relays with
//! (`smtp::client::send`): RCPT for every recipient (To, Cc and Bcc alike:
//! the envelope, not the headers, decides who gets it).
//!
//! Like a real mail program it protects the password: it asks for
//! STARTTLS when its server offers it (RFC 3207), or speaks TLS from the
//! first byte on port 465 (RFC 8314), and checks the server's certificate
//! against the world's CA and the server's name; a certificate that fails
//! the check stops the sending (the trace says why). A server that offers
//! no TLS at all (the "why TLS" lesson) gets the login in plaintext.
//!
//! [`deliver_direct`] is the simplified story some explanations of email
//! tell: the device looks up the recipient's MX itself and speaks SMTP to
//! its port 25. Real mail programs do not, and the lesson
//! `direct-to-mx.json` shows why: no server of the sender's own signs the
//! message (DKIM), the device's address is not one the sender's domain
//! names in SPF, so the MX's DMARC check refuses it; and if the MX does
//! not answer, nothing queues or retries the message (RFC 5321 §4.5.4.1
//! asks that of a server, not of a laptop that may be closed a minute later).

use std::net::IpAddr;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;

use crate::dns::{Lookup, MailRoute};
use crate::message::summarize;
use crate::net::Net;
use crate::scenario::{SendStep, Service};
use crate::smtp::client::{Handover, Login, Outgoing, Sender, SmtpClient, Unavailable, send};
use crate::tls::ClientMode;
use crate::trace::{Draft, Kind, MessageRef, Protocol, human_bytes};

/// A device, as the scenario describes it.
pub struct Device {
    pub name: String,
    pub address: IpAddr,
    pub user: String,
    pub password: String,
}

/// Writes the message of a `send` step. Returns the bytes and its label.
pub fn compose(device: &Device, step: &SendStep, net: &Net, sequence: u64) -> (Vec<u8>, Option<MessageRef>) {
    let domain = device.user.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
    // A `from` other than the user is a forgery; the Message-ID still
    // names the device's real domain, a clue a careful reader may spot.
    let sender = step.from.clone().unwrap_or_else(|| device.user.clone());
    let display = display_name(&sender);
    let mut builder = MessageBuilder::new()
        .from((display, sender))
        .subject(step.subject.clone())
        .date(net.timestamp())
        .message_id(format!("{sequence}.{}.{}@{domain}", net.timestamp(), device.name))
        .header("User-Agent", mail_builder::headers::raw::Raw::new(format!("mailflow ({})", device.name)))
        .text_body(step.body.clone());
    if !step.to.is_empty() {
        builder = builder.to(Address::new_list(step.to.iter().map(|a| Address::from(a.clone())).collect()));
    }
    if !step.cc.is_empty() {
        builder = builder.cc(Address::new_list(step.cc.iter().map(|a| Address::from(a.clone())).collect()));
    }
    if let Some(attachment) = &step.attachment {
        // A repeatable pattern, so tests can check every byte arrived.
        let bytes: Vec<u8> = (0..attachment.size).map(|i| (i % 251) as u8).collect();
        builder = builder.attachment("application/octet-stream", attachment.name.clone(), bytes);
    }
    let raw = builder.write_to_vec().unwrap_or_default();
    let message = summarize(&raw).message_ref();
    (raw, message)
}

/// "alice@school.test" → "Alice".
fn display_name(address: &str) -> String {
    let local = address.split('@').next().unwrap_or(address);
    let mut chars = local.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

/// Submits a composed message from `device` to `server` on `service`
/// (`submission`, port 587, or `submissions`, port 465); every problem is
/// reported in the trace (and returned).
pub async fn submit(
    net: &Net,
    device: &Device,
    server: (&str, IpAddr),
    service: Service,
    raw: &[u8],
    message: Option<MessageRef>,
    recipients: &[String],
) -> Result<(), String> {
    let fail = |summary: String| {
        net.trace.emit(
            Draft::new(&device.name, server.0, Protocol::Smtp, Kind::Failure { reason: summary.clone() }, format!("{} could not send: {summary}", device.name))
                .message(message.clone()),
        );
        summary
    };
    let opened = net.now();
    let Ok((wire, _registration)) = net.dial(&device.name, device.address, server, service, message.clone()).await else {
        return Err(format!("cannot connect to {}", server.0));
    };
    let mut client = SmtpClient::new(wire).opened_at(opened);
    let mode = if service.implicit_tls() { ClientMode::Implicit } else { ClientMode::Opportunistic };
    let tls = net.tls.as_ref().map(|tls| tls.client(server.0, mode));
    let sender = Sender { hello: &device.name, login: Some(Login { user: &device.user, password: &device.password }), tls };
    let label = message.as_ref().map(|m| m.label.clone()).unwrap_or_else(|| "the message".into());
    // As mail programs do, the envelope sender is the address the message
    // is written from (the user's own, unless the lesson forges one).
    let envelope_from = summarize(raw).from.unwrap_or_else(|| device.user.clone());
    let outgoing =
        Outgoing { from: Some(&envelope_from), recipients, data: raw, summary: format!("{} sends {label} ({})", device.name, human_bytes(raw.len() as u64)) };
    let handover = match send(&mut client, net.conductor.clock(), &sender, &outgoing).await {
        Ok(handover) => handover,
        Err(Unavailable::Connection(err)) => return Err(fail(err.to_string())),
        Err(refused) => return Err(fail(format!("the server {refused}"))),
    };
    judge(&handover).map_err(fail)
}

/// What a person would read in their mail program after sending.
fn judge(handover: &Handover) -> Result<(), String> {
    if !handover.mail.is_positive() {
        return Err(format!("sender refused: {}", handover.mail.one_line()));
    }
    let refused: Vec<String> = handover.rcpt.iter().filter(|(_, r)| !r.is_positive()).map(|(to, r)| format!("{to}: {}", r.one_line())).collect();
    match (&handover.data, &handover.end) {
        (None, _) => return Err(format!("every recipient was refused ({})", refused.join("; "))),
        (Some(data), None) => return Err(format!("DATA refused: {}", data.one_line())),
        (_, Some(end)) if !end.is_positive() => return Err(format!("message refused: {}", end.one_line())),
        _ => {}
    }
    if !refused.is_empty() {
        return Err(format!("sent, but some recipients were refused: {}", refused.join("; ")));
    }
    Ok(())
}

/// Delivers a composed message without a server of its own (a `direct`
/// device, as spam robots and the simplified story of email send): for each
/// recipient domain it asks DNS for the MX, as a mail server would (RFC 5321
/// §5.1), and hands the message to the first mail server that answers, on
/// port 25, with no login. A failure is final: there is no queue on a device.
pub async fn deliver_direct(net: &Net, device: &Device, lookup: &Lookup, raw: &[u8], message: Option<MessageRef>, recipients: &[String]) -> Result<(), String> {
    let fail = |to: &str, summary: String| {
        net.trace.emit(
            Draft::new(&device.name, to, Protocol::Smtp, Kind::Failure { reason: summary.clone() }, format!("{} could not deliver: {summary}", device.name))
                .message(message.clone())
                .explain("A device has no queue: nobody will try again later. A mail server would keep the message and retry for days."),
        );
        summary
    };
    // The envelope sender is the message's From: address, forged or not:
    // nothing on port 25 checks it except SPF, DKIM and DMARC.
    let envelope_from = summarize(raw).from.unwrap_or_else(|| device.user.clone());
    let mut domains: Vec<&str> = recipients.iter().filter_map(|r| r.rsplit_once('@').map(|(_, d)| d)).collect();
    domains.dedup();
    let mut problems = Vec::new();
    for domain in domains {
        let to_domain: Vec<String> = recipients.iter().filter(|r| r.rsplit_once('@').is_some_and(|(_, d)| d == domain)).cloned().collect();
        let servers = match lookup.mail_route(domain, message.as_ref()).await {
            Ok(MailRoute::Servers { servers, .. }) => servers,
            Ok(MailRoute::NullMx) => {
                problems.push(fail(domain, format!("{domain} accepts no mail (null MX)")));
                continue;
            }
            Ok(MailRoute::NoSuchDomain) => {
                problems.push(fail(domain, format!("{domain} does not exist")));
                continue;
            }
            Err(err) => {
                problems.push(fail(domain, err.to_string()));
                continue;
            }
        };
        let mut outcome = Err(format!("no mail server of {domain} answered"));
        'servers: for server in &servers {
            for &address in &server.addresses {
                let opened = net.now();
                let Ok((wire, _registration)) = net.dial(&device.name, device.address, (&server.name, address), Service::Smtp, message.clone()).await else {
                    outcome = Err(format!("cannot connect to {} ({address})", server.name));
                    continue;
                };
                let mut client = SmtpClient::new(wire).opened_at(opened);
                let tls = net.tls.as_ref().map(|tls| tls.client(&server.name, ClientMode::Opportunistic));
                let sender = Sender { hello: &device.name, login: None, tls };
                let label = message.as_ref().map(|m| m.label.clone()).unwrap_or_else(|| "the message".into());
                let outgoing = Outgoing {
                    from: Some(&envelope_from),
                    recipients: &to_domain,
                    data: raw,
                    summary: format!("{} sends {label} straight to {} ({})", device.name, server.name, human_bytes(raw.len() as u64)),
                };
                outcome = match send(&mut client, net.conductor.clock(), &sender, &outgoing).await {
                    Ok(handover) => judge(&handover),
                    Err(Unavailable::Connection(err)) => Err(err.to_string()),
                    Err(refused) => Err(format!("{} {refused}", server.name)),
                };
                break 'servers;
            }
        }
        if let Err(problem) = outcome {
            problems.push(fail(domain, problem));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}
