//! Forwarding, and a relay that tampers: the two journeys the
//! sender-authentication lessons need beyond a plain delivery.
//!
//! **Forwarding** (a user's `forward_to`): the user's home host takes the
//! message like any other (its checks run, its `Authentication-Results`
//! go on top), then sends it on to the other address from its own
//! address, keeping the original envelope sender, as a forwarder without
//! SRS (the Sender Rewriting Scheme) does. At the next server SPF
//! therefore fails (RFC 7208 §1.2: SPF checks the last hop, and the
//! forwarder is not among the sender domain's servers), while the DKIM
//! signature, which covers the headers and the body rather than the
//! path, still verifies, and DMARC passes on it (RFC 7489 §4.2 asks for
//! *either* aligned check, for exactly this reason).
//!
//! **Tampering** (a host's `tamper`): the host changes the body of every
//! message it relays on, as a gateway that stamps a "scanned" footer
//! does. The `bh=` body hash of a DKIM signature made before it no longer
//! matches, so DKIM fails at the next server (RFC 6376 §3.7).

use super::MailHost;
use crate::trace::{Kind, MessageRef};

/// The line a tampering host adds at the end of the body.
pub const FOOTER: &str = "-- \r\nScanned for viruses by the gateway. Have a nice day!\r\n";

impl MailHost {
    /// Splits the recipients taken here into those to deliver here and the
    /// forwarding addresses of those who forward; tells each forward.
    pub(super) fn forward(&self, local: Vec<String>, from: Option<&str>, message: Option<MessageRef>) -> (Vec<String>, Vec<String>) {
        let mut here = Vec::new();
        let mut onward = Vec::new();
        for recipient in local {
            match self.auth.forwards.get(&super::accounts::canonical(&recipient)) {
                Some(target) => {
                    self.emit(
                        Kind::Note,
                        format!("{} forwards {recipient}'s mail to {target}, keeping the envelope sender <{}>", self.name, from.unwrap_or("")),
                        Some(format!(
                            "{recipient} asked for every message to be sent on to {target}. {} sends it from its own address, but the envelope still names the original sender (no SRS rewriting), so the next server's SPF check will ask whether {} may send for that sender's domain — it may not. The DKIM signature travels inside the message and is not affected.",
                            self.name, self.name
                        )),
                        message.clone(),
                    );
                    onward.push(target.clone());
                }
                None => here.push(recipient),
            }
        }
        (here, onward)
    }

    /// The bytes to relay: `data` itself, or (for a tampering host) the
    /// same message with a footer added to its body, told as an event.
    pub(super) fn tampered(&self, data: &[u8], server: &str, message: Option<MessageRef>) -> Option<Vec<u8>> {
        if !self.config.tamper {
            return None;
        }
        let mut changed = data.to_vec();
        if !changed.ends_with(b"\r\n") {
            changed.extend_from_slice(b"\r\n");
        }
        changed.extend_from_slice(FOOTER.as_bytes());
        self.emit(
            Kind::Note,
            format!("{} changes the message's body before passing it to {server}: it adds a footer line", self.name),
            Some("A gateway that stamps \"scanned\" footers, or an attacker in the middle: the headers are the same, the body is not. The DKIM signature carries a hash of the body as it was signed (bh=), so the next server can tell.".into()),
            message,
        );
        Some(changed)
    }
}
