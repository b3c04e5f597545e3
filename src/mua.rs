//! The mail program on a person's device (the MUA): it writes a message
//! (RFC 5322 headers and a MIME body, built with mail-builder) and submits
//! it to its own mail server over SMTP submission with AUTH (RFC 6409,
//! RFC 4954): connect, EHLO, AUTH PLAIN, MAIL, RCPT for every recipient
//! (To, Cc and Bcc alike: the envelope, not the headers, decides who gets
//! it), DATA, QUIT.

use std::net::IpAddr;

use base64::Engine as _;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;

use crate::message::summarize;
use crate::mta::one_line;
use crate::net::Net;
use crate::scenario::{SendStep, Service};
use crate::smtp::client::{ClientError, SmtpClient, mail_parameters};
use crate::smtp::server::human_bytes;
use crate::trace::{Draft, Kind, MessageRef, Protocol};

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
    let display = display_name(&device.user);
    let mut builder = MessageBuilder::new()
        .from((display, device.user.clone()))
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

/// Submits a composed message from `device` to `server`; every problem is
/// reported in the trace (and returned).
pub async fn submit(net: &Net, device: &Device, server: (&str, IpAddr), raw: &[u8], message: Option<MessageRef>, recipients: &[String]) -> Result<(), String> {
    let fail = |summary: String| {
        net.trace.emit(
            Draft::new(&device.name, server.0, Protocol::Smtp, Kind::Failure { reason: summary.clone() }, format!("{} could not send: {summary}", device.name))
                .message(message.clone()),
        );
        summary
    };
    let Ok((wire, _registration)) = net.dial(&device.name, device.address, server, Service::Submission, message.clone()).await else {
        return Err(format!("cannot connect to {}", server.0));
    };
    let mut client = SmtpClient::new(wire);
    let result = conversation(&mut client, device, raw, &message, recipients).await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(refused)) => {
            let _ = client.command("QUIT").await;
            Err(fail(refused))
        }
        Err(err) => Err(fail(err.to_string())),
    }
}

/// The submission dialogue. The outer error is the connection failing, the
/// inner one the server refusing.
async fn conversation<S>(
    client: &mut SmtpClient<S>,
    device: &Device,
    raw: &[u8],
    message: &Option<MessageRef>,
    recipients: &[String],
) -> Result<Result<(), String>, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let greeting = client.read_reply().await?;
    if !greeting.is_positive() {
        return Ok(Err(format!("the server greeted with {}", one_line(&greeting))));
    }
    let ehlo = client.command(&format!("EHLO {}", device.name)).await?;
    if !ehlo.is_positive() {
        return Ok(Err(format!("EHLO refused: {}", one_line(&ehlo))));
    }
    // AUTH PLAIN (RFC 4616): base64 of "\0user\0password" — encoded, not
    // encrypted! Real clients do this only after STARTTLS.
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{}\0{}", device.user, device.password));
    let auth = client.command(&format!("AUTH PLAIN {token}")).await?;
    if !auth.is_positive() {
        return Ok(Err(format!("login refused: {}", one_line(&auth))));
    }
    let parameters = mail_parameters(&ehlo, raw);
    let mail = client.command(&format!("MAIL FROM:<{}>{parameters}", device.user)).await?;
    if !mail.is_positive() {
        return Ok(Err(format!("sender refused: {}", one_line(&mail))));
    }
    let mut accepted = 0;
    let mut refused = Vec::new();
    for recipient in recipients {
        let reply = client.command(&format!("RCPT TO:<{recipient}>")).await?;
        if reply.is_positive() {
            accepted += 1;
        } else {
            refused.push(format!("{recipient}: {}", one_line(&reply)));
        }
    }
    if accepted == 0 {
        return Ok(Err(format!("every recipient was refused ({})", refused.join("; "))));
    }
    let data = client.command("DATA").await?;
    if data.code != 354 {
        return Ok(Err(format!("DATA refused: {}", one_line(&data))));
    }
    let label = message.as_ref().map(|m| m.label.clone()).unwrap_or_else(|| "the message".into());
    let done = client.message(raw, format!("{} sends {label} ({})", device.name, human_bytes(raw.len() as u64))).await?;
    if !done.is_positive() {
        return Ok(Err(format!("message refused: {}", one_line(&done))));
    }
    client.command("QUIT").await?;
    if !refused.is_empty() {
        return Ok(Err(format!("sent, but some recipients were refused: {}", refused.join("; "))));
    }
    Ok(Ok(()))
}
