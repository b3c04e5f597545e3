//! Sender authentication as the class sees it: the DKIM signature a
//! submission server puts on its users' mail (RFC 6376 §5), and the story
//! of the checks a receiving server ran (SPF, DKIM, DMARC; `crate::auth`
//! does the checking, `intake.rs` decides what to do with the verdict).

use super::{MailHost, domain_of};
use crate::auth::{Disposition, Verdict};
use crate::trace::{Draft, Kind, MessageRef, Protocol};

impl MailHost {
    /// DKIM-signs a message `user` submitted, with the key of the user's
    /// domain (a server signs only for the domains it answers for, so the
    /// signature means "this domain's server sent it"). A domain without a
    /// key, or a key that fails, leaves the message as it was.
    pub(super) fn dkim_sign(&self, user: &str, data: Vec<u8>, message: Option<MessageRef>) -> Vec<u8> {
        let domain = domain_of(user);
        let Some(key) = self.auth.keys.get(&domain) else { return data };
        match key.sign(&data) {
            Ok(signed) => {
                self.emit(
                    Kind::Note,
                    format!("{} signs the message with {domain}'s DKIM key ({}, selector {})", self.name, key.algorithm.signature_algorithm(), key.selector),
                    Some(format!(
                        "The DKIM-Signature header holds a hash of the body and a signature over the main headers. Any receiver can check it with the public key published in DNS at {}.",
                        key.dns_name()
                    )),
                    message,
                );
                signed
            }
            Err(err) => {
                self.emit(Kind::Failure { reason: err.to_string() }, format!("{} cannot sign the message: it goes out unsigned", self.name), None, message);
                data
            }
        }
    }

    /// Each step of the checks, in sentences, then the decision.
    /// Each DNS question the checks asked becomes a question and an answer
    /// between this host and the DNS server, worded for the check.
    pub(super) fn tell_verdict(&self, verdict: &Verdict, message: Option<MessageRef>) {
        let asks = format!("{} asks DNS for ", self.name);
        let mut lookups = verdict.lookups.iter();
        let mut steps = verdict.steps.iter().peekable();
        while let Some(step) = steps.next() {
            // The checker tells each lookup in two steps: the question, then the answer.
            if step.text.starts_with(&asks)
                && let Some(lookup) = lookups.next()
            {
                let name = format!("{}.", lookup.name);
                let query = Kind::DnsQuery { name: name.clone(), rtype: lookup.rtype.clone(), transport: "UDP".into() };
                self.net.trace.emit(Draft::new(&self.name, "dns", Protocol::Dns, query, step.text.clone()).message(message.clone()));
                let answer_text = steps.next().map(|s| s.text.clone()).unwrap_or_else(|| lookup.summary.clone());
                let answer = Kind::DnsAnswer { name, rtype: lookup.rtype.clone(), rcode: lookup.rcode.clone(), records: lookup.records.clone() };
                self.net.trace.emit(Draft::new("dns", &self.name, Protocol::Dns, answer, answer_text).message(message.clone()));
                continue;
            }
            self.emit(Kind::Note, step.text.clone(), None, message.clone());
        }
        let (summary, explain) = match verdict.disposition {
            Disposition::Reject => (
                format!("{} refuses the message: {}'s DMARC policy says reject", self.name, verdict.dmarc.domain),
                "Neither SPF nor DKIM proved that the From: domain sent it, and that domain asked receivers to refuse such mail. The sending server gets 550 5.7.1 and must tell its sender; nothing is stored here.",
            ),
            Disposition::Quarantine => (
                format!("{} puts the message in the recipient's Junk folder: {}'s DMARC policy says quarantine", self.name, verdict.dmarc.domain),
                "The From: domain could not be proved, and its policy asks for suspicion rather than refusal: the message is delivered, but into Junk, marked $Junk.",
            ),
            Disposition::None => (
                format!("{} takes the message (SPF {}, DKIM {}, DMARC {})", self.name, verdict.spf.result, verdict.dkim_summary(), verdict.dmarc.result),
                "The results go on top of the message as Authentication-Results, for the reader's mail program to show.",
            ),
        };
        self.emit(Kind::Note, summary, Some(explain.to_string()), message);
    }
}
