//! Bounces: telling the sender a message could not be delivered, as a
//! delivery status notification (RFC 3464): a `multipart/report` with a
//! human explanation, a machine-readable status per recipient, and the
//! original message's headers. A bounce is sent with the null sender `<>`,
//! so a bounce that fails is never bounced again (no mail loops).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::queue::Item;
use crate::trace::QueueState;

/// One recipient that failed.
#[derive(Clone, Debug)]
pub struct Failure {
    pub recipient: String,
    /// Enhanced status code, e.g. "5.1.1" (RFC 3463).
    pub status: String,
    /// The server that refused, if one did.
    pub remote_mta: Option<String>,
    /// What it said, e.g. "550 5.1.1 No such user here".
    pub diagnostic: String,
}

/// What a bounce needs to know.
pub struct BounceInput<'a> {
    /// The server writing the bounce.
    pub reporting_mta: &'a str,
    /// The original envelope sender: the bounce goes there.
    pub to: &'a str,
    pub failures: &'a [Failure],
    pub original: &'a [u8],
    pub date: &'a str,
    pub message_id: &'a str,
    /// When the original arrived at this server (RFC 5322 date).
    pub arrival_date: &'a str,
}

/// Writes the bounce message (CRLF line ends).
pub fn build(input: &BounceInput) -> Vec<u8> {
    let boundary = format!("mailflow-report-{}", input.message_id.split('@').next().unwrap_or("x"));
    let mut out = String::new();
    let _ = write!(
        out,
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n\
         To: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a delivery status notification (RFC 3464).\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         This is the mail server {mta}.\r\n\
         \r\n\
         Your message could not be delivered to the following recipients:\r\n\r\n",
        mta = input.reporting_mta,
        to = input.to,
        date = input.date,
        id = input.message_id,
    );
    for failure in input.failures {
        let _ = write!(out, "  <{}>: {}\r\n", failure.recipient, failure.diagnostic);
    }
    let _ = write!(
        out,
        "\r\n--{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {mta}\r\n\
         Arrival-Date: {arrival}\r\n",
        mta = input.reporting_mta,
        arrival = input.arrival_date
    );
    for failure in input.failures {
        let _ = write!(out, "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\n", failure.recipient, failure.status);
        if let Some(remote) = &failure.remote_mta {
            let _ = write!(out, "Remote-MTA: dns; {remote}\r\n");
        }
        let _ = write!(out, "Diagnostic-Code: smtp; {}\r\n", failure.diagnostic);
    }
    let _ = write!(out, "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n");
    let mut bytes = out.into_bytes();
    let header_end = input.original.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 2).unwrap_or(input.original.len());
    bytes.extend_from_slice(&input.original[..header_end]);
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

/// A bounce ready to be queued: the sender it goes back to and its text.
pub struct Bounce {
    pub to: String,
    pub raw: Vec<u8>,
}

impl super::MailHost {
    /// Decides how the envelope sender hears about `failures` of `item`:
    /// a report (RFC 3464) to queue, or nothing for a message from `<>`
    /// (a failed bounce is dropped, never bounced again). Each case is an
    /// event; the caller queues the report like any message.
    pub(super) fn bounce(&self, item: &Item, failures: &[Failure]) -> Option<Bounce> {
        let recipients: Vec<String> = failures.iter().map(|f| f.recipient.clone()).collect();
        let Some(sender) = item.from.clone() else {
            self.queue_event(
                item,
                QueueState::Dropped,
                &recipients,
                format!("{} cannot deliver {} and drops it: it was itself a bounce", self.name, item.id),
                Some("A bounce has the empty sender <>; if it fails, nobody is told, so two servers can never bounce mail back and forth forever."),
                None,
            );
            return None;
        };
        let reasons: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.recipient, f.diagnostic)).collect();
        self.queue_event(
            item,
            QueueState::Bounced,
            &recipients,
            format!("{} gives up on {} ({}) and sends a bounce to {sender}", self.name, item.id, reasons.join("; ")),
            Some("A permanent failure: the sender gets a delivery status notification (RFC 3464) explaining what went wrong."),
            None,
        );
        let id = format!("{}.bounce@{}", self.next_id.fetch_add(1, Ordering::Relaxed), self.name);
        let arrival = mail_builder::headers::date::Date::new(self.net.epoch + item.arrived.as_secs() as i64).to_rfc822();
        let raw = build(&BounceInput {
            reporting_mta: &self.name,
            to: &sender,
            failures,
            original: &item.data,
            date: &self.net.date(),
            message_id: &id,
            arrival_date: &arrival,
        });
        Some(Bounce { to: sender, raw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_parseable_delivery_report() {
        let original = b"From: alice@school.test\r\nTo: nobody@example.org\r\nSubject: Hi\r\n\r\nsecret body\r\n";
        let failures = [Failure {
            recipient: "nobody@example.org".into(),
            status: "5.1.1".into(),
            remote_mta: Some("mx1.example.org".into()),
            diagnostic: "550 5.1.1 No such user".into(),
        }];
        let raw = build(&BounceInput {
            reporting_mta: "smtp.school.test",
            to: "alice@school.test",
            failures: &failures,
            original,
            date: "Thu, 26 Nov 2026 04:16:00 +0000",
            message_id: "b1@smtp.school.test",
            arrival_date: "Thu, 26 Nov 2026 04:15:00 +0000",
        });
        let message = mail_parser::MessageParser::new().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("Undelivered Mail Returned to Sender"));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("multipart/report; report-type=delivery-status"));
        assert!(text.contains("Status: 5.1.1") && text.contains("Final-Recipient: rfc822; nobody@example.org"));
        assert!(text.contains("Subject: Hi") && !text.contains("secret body"), "headers only, not the body");
        assert_eq!(message.parts.len(), 4, "the report and its three parts");
    }
}
