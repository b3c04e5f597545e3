//! Who really sent this? Sender authentication with SPF, DKIM and DMARC.
//!
//! SMTP lets anyone write any sender: `MAIL FROM:<principal@school.test>`
//! and `From: principal@school.test` are just text. Three DNS-published
//! policies let a receiver check the claim:
//!
//! | check | RFC | what the domain publishes | what the receiver checks |
//! |-------|-----|---------------------------|--------------------------|
//! | SPF   | 7208 | `v=spf1 mx -all` at the domain | the client's address against the envelope sender's list |
//! | DKIM  | 6376 | a public key at `<selector>._domainkey.<domain>` | the `DKIM-Signature` over headers and body |
//! | DMARC | 7489 | `v=DMARC1; p=reject` at `_dmarc.<domain>` | that SPF or DKIM passed for the `From:` domain, else the policy |
//!
//! The work is done by mail-auth (the library inside the Stalwart mail
//! server). Its resolver is hickory pointed only at the world's fake DNS,
//! so every TXT, MX and A lookup of every check really crosses loopback to
//! our DNS server, and [`Verdict::lookups`] lists each one with its answer.
//!
//! - [`keys`]: per-domain DKIM keys (Ed25519 or RSA-2048), kept under
//!   `--data`, published as TXT records; signing;
//! - [`check`]: the three checks for one arriving message, the headers
//!   (`Authentication-Results`, RFC 8601; `Received-SPF`), the DMARC
//!   disposition, and the story in sentences;
//! - [`lint`]: `mailflow check` warnings for records that do not parse;
//! - `record`: writes down each DNS question the checks ask.
//!
//! # Wiring it into the mail host (for `src/world` and `src/mta/`)
//!
//! When the world starts, after the zones are built and before any host
//! sends:
//! ```ignore
//! let keys = auth::DomainKeys::for_scenario(&scenario, options.data_dir.as_deref())?;
//! keys.publish(&zones, &scenario)?;            // mailflow._domainkey.<domain> TXT
//! // a `dns` step that replaces a domain's records must keep the key:
//! //   specs.extend(keys.records_for(domain)); zones.replace(domain, &specs, ..)
//! ```
//! **Outgoing** (the MSA, after accepting a submission from an
//! authenticated user of `domain`, before queueing): sign once, so every
//! relay hop carries the same signature:
//! ```ignore
//! let bytes = match keys.get(sender_domain) { Some(key) => key.sign(&bytes)?, None => bytes };
//! ```
//! **Incoming** (`mta/intake.rs`, at the end of DATA on port 25, for mail
//! that arrives from another server, when the host's checking switch is
//! on). Build one [`Checker`] per receiving host at start-up:
//! ```ignore
//! let checker = auth::Checker::new(host_name, world.dns_addr, host_address, options.network_timeout, zones.clone())?;
//! // at the end of DATA:
//! let verdict = checker.verify(&message, peer.ip(), &helo, &mail_from).await;
//! for step in &verdict.steps { trace a Kind::Note from host to host (check name + text) }
//! // (or turn verdict.lookups into DnsQuery/DnsAnswer pairs, host ↔ dns)
//! match verdict.disposition {
//!     Disposition::Reject => reply verdict.reject_reply() ("550 5.7.1 ..."), store nothing,
//!     Disposition::Quarantine => store verdict.headers() + message into "Junk" with \Junk/$Junk,
//!     Disposition::None => store verdict.headers() + message into INBOX,
//! }
//! ```
//! The page's authentication view can take the `Verdict` as JSON (it is
//! `Serialize`): three results, the DNS records each check used, the
//! disposition and the sentences.
//!
//! Timing: signatures carry the wall-clock time (`t=`) and no expiry, so
//! the simulated clock (which may run hours ahead) never expires them.

pub mod check;
pub mod keys;
pub mod lint;
mod record;

pub use check::{CheckResult, Checker, CheckerError, Disposition, StoryStep, Verdict};
pub use keys::{Algorithm, DomainKey, DomainKeys, KeyError, SELECTOR, key_kind};
pub use record::{Check, DnsUse};

#[cfg(test)]
mod tests;
