//! The receiving side: SPF, DKIM and DMARC for one arriving message, and
//! the verdict in headers, an SMTP decision, and sentences for the class.
//!
//! The three checks, in the order a receiver runs them:
//! 1. **SPF** (RFC 7208): the envelope sender's domain (`MAIL FROM`, or the
//!    `HELO` name for a bounce) publishes which addresses may send its mail;
//!    is the connecting client's address among them? It checks the
//!    envelope, which forwarding changes hop by hop, so a forwarded message
//!    fails SPF at the last hop.
//! 2. **DKIM** (RFC 6376 §6): each `DKIM-Signature` names a domain (`d=`)
//!    and selector (`s=`); the receiver fetches the public key from DNS and
//!    checks the signature and the body hash (`bh=`). It survives
//!    forwarding, but not a changed body.
//! 3. **DMARC** (RFC 7489): the domain in the `From:` header the reader sees
//!    publishes a policy at `_dmarc.<domain>`. DMARC passes when SPF or DKIM
//!    passed *for a domain aligned with* that `From:` domain (the same, or
//!    within the same organisation); otherwise the policy says what to do:
//!    `p=reject`, `p=quarantine` (the Junk folder) or `p=none` (deliver).
//!
//! The results go into an `Authentication-Results` header (RFC 8601) and a
//! `Received-SPF` header (RFC 7208 §9.1) that the receiver adds on top.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dkim::DkimError;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::spf::{Macro, Mechanism, Qualifier, Spf};
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput, DmarcResult, Error as AuthError, MessageAuthenticator, Parameters,
    ReceivedSpf, SpfOutput, SpfResult,
};
use serde::Serialize;

use super::record::{Check, DnsUse, Recorder};
use crate::dns::Zones;

/// Signatures checked per message (more are ignored, as receivers do).
pub const MAX_SIGNATURES: usize = 5;

/// The checker of one receiving host could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the authentication checker of {host}: {reason}")]
pub struct CheckerError {
    pub host: String,
    pub reason: String,
}

/// What the receiving server does with the message, from DMARC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// Nothing special: deliver to the inbox (DMARC passed, or the policy
    /// is `p=none`, or the domain has no DMARC policy).
    None,
    /// Deliver into the Junk folder (`p=quarantine`).
    Quarantine,
    /// Refuse at the end of DATA with `550 5.7.1` (`p=reject`).
    Reject,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// As in `Authentication-Results`: "pass", "fail", "softfail",
    /// "neutral", "none", "temperror", "permerror".
    pub result: String,
    /// The domain the check was about.
    pub domain: String,
    /// DKIM: the selector; DMARC: the policy found ("reject", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One line of the story, for the page and the trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoryStep {
    pub check: Check,
    pub text: String,
}

/// Everything the receiver concluded about one message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The receiving host (the `authserv-id` of RFC 8601 §2.5).
    pub host: String,
    pub spf: CheckResult,
    /// One per signature; empty when the message carries none.
    pub dkim: Vec<CheckResult>,
    pub dmarc: CheckResult,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
    pub disposition: Disposition,
    /// The whole `Authentication-Results:` header, CRLF-terminated.
    pub authentication_results: String,
    /// The whole `Received-SPF:` header, CRLF-terminated.
    pub received_spf: String,
    /// What happened, in sentences.
    pub steps: Vec<StoryStep>,
    /// Each DNS question the checks asked and what came back.
    pub lookups: Vec<DnsUse>,
}

impl Verdict {
    /// The headers to put on top of the message before it is stored.
    pub fn headers(&self) -> String {
        format!("{}{}", self.authentication_results, self.received_spf)
    }

    /// The SMTP reply that refuses the message, when DMARC says reject.
    pub fn reject_reply(&self) -> Option<String> {
        (self.disposition == Disposition::Reject).then(|| {
            format!("550 5.7.1 Message rejected: DMARC policy of {} says reject (SPF {}, DKIM {})", self.dmarc.domain, self.spf.result, self.dkim_summary())
        })
    }

    /// The DKIM result in one word ("pass" if any signature passed).
    pub fn dkim_summary(&self) -> &str {
        if self.dkim.iter().any(|d| d.result == "pass") { "pass" } else { self.dkim.first().map(|d| d.result.as_str()).unwrap_or("none") }
    }
}

/// The checks of one receiving host; cheap to share.
#[derive(Clone)]
pub struct Checker {
    host: String,
    authenticator: MessageAuthenticator,
    zones: Arc<Zones>,
}

impl Checker {
    /// A checker for `host`, asking the world's DNS at `dns` from the
    /// host's own `address` (so SPF's questions come from the receiver, as
    /// in life), with no cache and the same timeout as the host's resolver.
    /// `zones` is the world's zone data; the checker only reads it to show
    /// the records each check used.
    pub fn new(host: &str, dns: SocketAddr, address: IpAddr, timeout: Duration, zones: Arc<Zones>) -> Result<Checker, CheckerError> {
        let mut server = NameServerConfig::udp_and_tcp(dns.ip());
        for connection in &mut server.connections {
            connection.port = dns.port();
            connection.bind_addr = Some(SocketAddr::new(address, 0));
        }
        let mut options = ResolverOpts::default();
        options.cache_size = 0;
        options.timeout = timeout;
        options.attempts = 1;
        options.use_hosts_file = ResolveHosts::Never;
        options.ndots = 0;
        let authenticator = MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![server]), options)
            .map_err(|e| CheckerError { host: host.to_string(), reason: e.to_string() })?;
        Ok(Checker { host: host.to_string(), authenticator, zones })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs SPF, DKIM and DMARC for `message` as it arrived from
    /// `client_ip`, which said `HELO helo` and `MAIL FROM:<mail_from>`
    /// (empty for a bounce). Never fails: a broken message or a silent DNS
    /// shows up as `permerror`/`temperror` results.
    pub async fn verify(&self, message: &[u8], client_ip: IpAddr, helo: &str, mail_from: &str) -> Verdict {
        let mut parsed = AuthenticatedMessage::parse(message);
        if let Some(m) = parsed.as_mut() {
            // Each signature costs a DNS question; a hostile message with
            // thousands of them must not keep the receiver busy.
            m.dkim_headers.truncate(MAX_SIGNATURES);
        }
        let from_domain =
            parsed.as_ref().and_then(|m| m.from.first()).and_then(|f| f.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
        let mail_from_domain = mail_from.rsplit_once('@').map(|(_, d)| d).unwrap_or(helo).to_ascii_lowercase();
        let signatures: Vec<(String, String)> = parsed
            .as_ref()
            .map(|m| m.dkim_headers.iter().map(|h| (h.header.d.to_ascii_lowercase(), h.header.s.to_ascii_lowercase())).collect())
            .unwrap_or_default();

        // Names the checks may ask about that the zones may not hold.
        let mut expected = vec![mail_from_domain.clone(), helo.to_ascii_lowercase()];
        for (d, s) in &signatures {
            expected.push(format!("{s}._domainkey.{d}"));
            expected.push(d.clone());
        }
        for domain in [&from_domain].into_iter().chain(signatures.iter().map(|(d, _)| d)).chain([&mail_from_domain]) {
            let mut rest = domain.as_str();
            loop {
                expected.push(format!("_dmarc.{rest}"));
                match rest.split_once('.') {
                    Some((_, parent)) if !parent.is_empty() => rest = parent,
                    _ => break,
                }
            }
        }
        let recorder = Recorder::new(&self.zones, expected, client_ip);
        let mut steps = Vec::new();

        // SPF
        recorder.set_check(Check::Spf);
        let spf_params = Parameters::new(SpfParameters::verify_mail_from(client_ip, helo, &self.host, mail_from))
            .with_txt_cache(&recorder)
            .with_mx_cache(&recorder)
            .with_ipv4_cache(&recorder)
            .with_ipv6_cache(&recorder)
            .with_ptr_cache(&recorder);
        let spf = self.authenticator.verify_spf(spf_params).await;
        let spf_lookups = recorder.take();
        self.tell_lookups(&spf_lookups, &mut steps);
        steps.push(StoryStep { check: Check::Spf, text: self.explain_spf(&spf, client_ip, &mail_from_domain, mail_from.is_empty()) });

        // DKIM
        recorder.set_check(Check::Dkim);
        let dkim: Vec<DkimOutput> = match &parsed {
            Some(m) => {
                let params = Parameters::new(m)
                    .with_txt_cache(&recorder)
                    .with_mx_cache(&recorder)
                    .with_ipv4_cache(&recorder)
                    .with_ipv6_cache(&recorder)
                    .with_ptr_cache(&recorder);
                self.authenticator.verify_dkim(params).await
            }
            None => Vec::new(),
        };
        // mail-auth (like Gmail and OpenDKIM) reports a body that does not
        // match its hash as "neutral"; RFC 6376 §6.1.3 calls it PERMFAIL
        // ("body hash did not verify"), which RFC 8601 §2.7.1 writes as
        // "fail". The lesson says fail, and so does the header.
        let dkim: Vec<DkimOutput> = dkim
            .into_iter()
            .map(|output| {
                let body_mismatch = matches!(output.result(), DkimResult::Neutral(AuthError::Dkim(DkimError::FailedBodyHashMatch)));
                // The same signature, borrowed from the message (which
                // outlives this list) rather than from `output`.
                let signature = parsed.as_ref().and_then(|m| m.dkim_headers.iter().map(|h| &h.header).find(|s| Some(*s) == output.signature()));
                match signature {
                    Some(signature) if body_mismatch => DkimOutput::fail(AuthError::Dkim(DkimError::FailedBodyHashMatch)).with_signature(signature),
                    _ => output,
                }
            })
            .collect();
        let dkim_lookups = recorder.take();
        self.tell_lookups(&dkim_lookups, &mut steps);
        if dkim.is_empty() {
            steps.push(StoryStep { check: Check::Dkim, text: "DKIM: the message carries no DKIM signature → none".into() });
        }
        for output in &dkim {
            steps.push(StoryStep { check: Check::Dkim, text: explain_dkim(output) });
        }

        // DMARC
        recorder.set_check(Check::Dmarc);
        let dmarc = match &parsed {
            Some(m) => {
                let params = Parameters::new(DmarcParameters::new(m, &dkim, &mail_from_domain, &spf))
                    .with_txt_cache(&recorder)
                    .with_mx_cache(&recorder)
                    .with_ipv4_cache(&recorder)
                    .with_ipv6_cache(&recorder)
                    .with_ptr_cache(&recorder);
                self.authenticator.verify_dmarc(params).await
            }
            None => DmarcOutput::default(),
        };
        let dmarc_lookups = recorder.take();
        self.tell_lookups(&dmarc_lookups, &mut steps);
        let spf_aligned = dmarc.spf_result() == &DmarcResult::Pass;
        let dkim_aligned = dmarc.dkim_result() == &DmarcResult::Pass;
        let has_record = dmarc.dmarc_record().is_some();
        let dmarc_word = dmarc_result_word(&dmarc);
        let disposition = match (dmarc_word, dmarc.policy()) {
            ("fail", Policy::Reject) => Disposition::Reject,
            ("fail", Policy::Quarantine) => Disposition::Quarantine,
            _ => Disposition::None,
        };
        let shown_domain = if from_domain.is_empty() { "(none)" } else { from_domain.as_str() };
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let dmarc_text = if parsed.is_none() || from_domain.is_empty() {
            "DMARC: the message has no usable From: address, so there is no domain to check → none".to_string()
        } else if !has_record && dmarc_word == "none" {
            format!("DMARC: From: domain {shown_domain} publishes no DMARC policy → none (the receiver decides alone: delivered)")
        } else {
            let outcome = match (dmarc_word, disposition) {
                ("pass", _) => " → pass".to_string(),
                (_, Disposition::Reject) => "; policy reject → reject (refused with 550 5.7.1)".to_string(),
                (_, Disposition::Quarantine) => "; policy quarantine → quarantine (delivered into Junk)".to_string(),
                (word, Disposition::None) => format!("; policy {} → {word}, delivered with the results in its header", policy_word(dmarc.policy())),
            };
            format!("DMARC: From: domain {shown_domain}; SPF aligned {}, DKIM aligned {}{outcome}", yes_no(spf_aligned), yes_no(dkim_aligned))
        };
        steps.push(StoryStep { check: Check::Dmarc, text: dmarc_text });

        let mut authentication_results = AuthenticationResults::new(&self.host)
            .with_spf_mailfrom_result(&spf, client_ip, mail_from, helo)
            .with_dkim_results(&dkim, &from_domain)
            .with_dmarc_result(&dmarc)
            .to_header();
        if dkim.is_empty() {
            // mail-auth leaves DKIM out when there is no signature; RFC 8601
            // §2.7.1 has a word for it, and the reader should see all three.
            authentication_results = authentication_results.replacen(";\r\n\tdmarc=", ";\r\n\tdkim=none (no signature);\r\n\tdmarc=", 1);
        }
        let received_spf = ReceivedSpf::new(&spf, client_ip, helo, mail_from, &self.host).to_header();

        let mut lookups = spf_lookups;
        lookups.extend(dkim_lookups);
        lookups.extend(dmarc_lookups);
        Verdict {
            host: self.host.clone(),
            spf: CheckResult { result: spf_word(spf.result()).into(), domain: spf.domain().to_string(), detail: None },
            dkim: dkim
                .iter()
                .map(|o| CheckResult {
                    result: dkim_word(o.result()).into(),
                    domain: o.signature().map(|s| s.d.clone()).unwrap_or_default(),
                    detail: o.signature().map(|s| s.s.clone()),
                })
                .collect(),
            dmarc: CheckResult { result: dmarc_word.into(), domain: from_domain.clone(), detail: has_record.then(|| policy_word(dmarc.policy()).to_string()) },
            spf_aligned,
            dkim_aligned,
            disposition,
            authentication_results,
            received_spf,
            steps,
            lookups,
        }
    }

    fn tell_lookups(&self, lookups: &[DnsUse], steps: &mut Vec<StoryStep>) {
        for lookup in lookups {
            let what = match (lookup.check, lookup.rtype.as_str()) {
                (Check::Spf, "TXT") => format!("{}'s SPF policy", lookup.name),
                (Check::Dkim, "TXT") => format!("the DKIM public key at {}", lookup.name),
                (Check::Dmarc, "TXT") => match lookup.name.strip_prefix("_dmarc.") {
                    Some(domain) => format!("{domain}'s DMARC policy ({})", lookup.name),
                    None => format!("the text records of {}", lookup.name),
                },
                (_, "MX") => format!("the mail servers (MX) of {}", lookup.name),
                (_, "A") | (_, "AAAA") => format!("the address of {}", lookup.name),
                (_, "PTR") => format!("the name of the client's address ({})", lookup.name),
                (_, other) => format!("{other} records of {}", lookup.name),
            };
            steps.push(StoryStep { check: lookup.check, text: format!("{} asks DNS for {what}", self.host) });
            steps.push(StoryStep { check: lookup.check, text: lookup.summary.clone() });
        }
    }

    /// One sentence on why SPF came out as it did. mail-auth gives only the
    /// result; the reason is found by walking the policy again over the
    /// same zone data (RFC 7208 §5), for the mechanisms a lesson uses.
    fn explain_spf(&self, spf: &SpfOutput, ip: IpAddr, domain: &str, bounce: bool) -> String {
        let word = spf_word(spf.result());
        let identity = if bounce { format!("{domain} (the HELO name: a bounce has no sender)") } else { domain.to_string() };
        match spf.result() {
            SpfResult::None => return format!("SPF: {identity} publishes no SPF policy → none"),
            SpfResult::PermError => {
                return format!("SPF: the SPF policy of {identity} is broken (a syntax error, a missing include, or more than 10 DNS lookups) → permerror");
            }
            SpfResult::TempError => return format!("SPF: DNS did not answer while checking {identity} → temperror"),
            _ => {}
        }
        match self.walk_spf(domain, ip, 0) {
            Some(Walk { matched: Some(mechanism), missed }) if mechanism == "all" => {
                if missed.is_empty() {
                    format!("SPF: the policy of {identity} ends in '{}all' and names no other sender → {word}", qualifier_sign(spf.result()))
                } else {
                    format!("SPF: {ip} is not among the addresses that {} → {word}", missed.join(", nor "))
                }
            }
            Some(Walk { matched: Some(mechanism), .. }) => format!("SPF: {ip} is among the addresses that {mechanism} → {word}"),
            Some(Walk { matched: None, missed }) if !missed.is_empty() => {
                format!("SPF: {ip} is not among the addresses that {}, and the policy says nothing more → {word}", missed.join(", nor "))
            }
            _ => format!("SPF: the SPF policy of {identity} gives {word} for {ip}"),
        }
    }

    /// Replays the SPF policy of `domain` for `ip` over the zones: which
    /// mechanism matched, and the ones that did not, in words. `None` when
    /// the policy uses what this replay does not follow (macros, ptr,
    /// exists, redirect).
    fn walk_spf(&self, domain: &str, ip: IpAddr, depth: usize) -> Option<Walk> {
        if depth > 10 {
            return None;
        }
        let spf = self.txt(domain).into_iter().find_map(|text| Spf::parse(text.as_bytes()).ok())?;
        if spf.redirect.is_some() {
            return None;
        }
        let mut missed = Vec::new();
        for directive in spf.directives.iter() {
            let (matched, description) = match &directive.mechanism {
                Mechanism::All => (true, "all".to_string()),
                Mechanism::Ip4 { addr, mask } => {
                    let hit = matches!(ip, IpAddr::V4(v4) if u32::from(v4) & mask == u32::from(*addr) & mask);
                    (hit, format!("'ip4:{addr}/{}' names", mask.count_ones()))
                }
                Mechanism::Ip6 { addr, mask } => {
                    let hit = matches!(ip, IpAddr::V6(v6) if u128::from(v6) & mask == u128::from(*addr) & mask);
                    (hit, format!("'ip6:{addr}/{}' names", mask.count_ones()))
                }
                Mechanism::A { macro_string, .. } => {
                    let target = literal(macro_string, domain)?;
                    let addresses = self.addresses(&target);
                    (addresses.contains(&ip), format!("'a' names for {target} ({})", list(&addresses)))
                }
                Mechanism::Mx { macro_string, .. } => {
                    let target = literal(macro_string, domain)?;
                    let addresses: Vec<IpAddr> = self.exchanges(&target).iter().flat_map(|mx| self.addresses(mx)).collect();
                    (addresses.contains(&ip), format!("'mx' names for {target} ({})", list(&addresses)))
                }
                Mechanism::Include { macro_string } => {
                    let target = literal(macro_string, domain)?;
                    let inner = self.walk_spf(&target, ip, depth + 1)?;
                    let hit = inner.matched.as_deref().is_some_and(|m| m != "all") && directive.qualifier == Qualifier::Pass;
                    (hit, format!("'include:{target}' names"))
                }
                Mechanism::Ptr { .. } | Mechanism::Exists { .. } => return None,
            };
            if matched {
                let described = if description == "all" { description } else { description.replacen(" names", " name", 1).replacen("' name", "' names", 1) };
                return Some(Walk { matched: Some(described), missed });
            }
            missed.push(description);
        }
        Some(Walk { matched: None, missed })
    }

    fn txt(&self, domain: &str) -> Vec<String> {
        let Ok(name) = Name::from_ascii(format!("{}.", domain.trim_end_matches('.'))) else { return Vec::new() };
        self.zones
            .answer(&name, RecordType::TXT)
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(crate::dns::txt_text(txt)),
                _ => None,
            })
            .collect()
    }

    fn exchanges(&self, domain: &str) -> Vec<String> {
        let Ok(name) = Name::from_ascii(format!("{}.", domain.trim_end_matches('.'))) else { return Vec::new() };
        self.zones
            .answer(&name, RecordType::MX)
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) if !mx.exchange.is_root() => Some(mx.exchange.to_string()),
                _ => None,
            })
            .collect()
    }

    fn addresses(&self, host: &str) -> Vec<IpAddr> {
        let Ok(name) = Name::from_ascii(format!("{}.", host.trim_end_matches('.'))) else { return Vec::new() };
        [RecordType::A, RecordType::AAAA]
            .into_iter()
            .flat_map(|t| self.zones.answer(&name, t).answers)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect()
    }
}

struct Walk {
    /// "'mx' names for school.test (127.77.0.2)", or "all".
    matched: Option<String>,
    missed: Vec<String>,
}

fn literal(macro_string: &Macro, domain: &str) -> Option<String> {
    match macro_string {
        Macro::None => Some(domain.to_string()),
        Macro::Literal(bytes) => Some(String::from_utf8_lossy(bytes).trim_end_matches('.').to_string()),
        _ => None,
    }
}

fn list(addresses: &[IpAddr]) -> String {
    if addresses.is_empty() { "none".into() } else { addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ") }
}

fn qualifier_sign(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Fail => "-",
        SpfResult::SoftFail => "~",
        SpfResult::Neutral => "?",
        _ => "+",
    }
}

fn explain_dkim(output: &DkimOutput) -> String {
    let Some(signature) = output.signature() else {
        return format!("DKIM: a DKIM-Signature header could not be read → {}", dkim_word(output.result()));
    };
    let who = format!("{} (selector {}, {})", signature.d, signature.s, signature.a.name());
    match output.result() {
        DkimResult::Pass => format!("DKIM: the signature by {who} matches the key in DNS; the signed headers and the body arrived unchanged → pass"),
        DkimResult::Fail(AuthError::Dkim(DkimError::FailedBodyHashMatch)) => {
            "DKIM: the body hash in the signature does not match the body that arrived → fail".to_string()
        }
        DkimResult::Fail(AuthError::Crypto(_)) => {
            format!("DKIM: the signature by {who} does not match the signed headers with the key in DNS (a header was changed, or someone else signed) → fail")
        }
        DkimResult::Fail(err) | DkimResult::Neutral(err) => format!("DKIM: the signature by {who} does not verify ({err}) → {}", dkim_word(output.result())),
        DkimResult::PermError(AuthError::Dns(_)) => {
            format!("DKIM: {} publishes no key at {}._domainkey.{} → permerror", signature.d, signature.s, signature.d)
        }
        DkimResult::PermError(err) => format!("DKIM: the signature by {who} cannot be checked ({err}) → permerror"),
        DkimResult::TempError(_) => format!("DKIM: DNS did not answer for the key of {who} → temperror"),
        DkimResult::None => "DKIM: no signature → none".into(),
    }
}

fn spf_word(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_word(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

fn dmarc_result_word(dmarc: &DmarcOutput) -> &'static str {
    match dmarc.result() {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None if dmarc.dmarc_record().is_some() => "fail",
        DmarcResult::None => "none",
    }
}

fn policy_word(policy: Policy) -> &'static str {
    match policy {
        Policy::Reject => "reject",
        Policy::Quarantine => "quarantine",
        Policy::None | Policy::Unspecified => "none",
    }
}
