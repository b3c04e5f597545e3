//! The six lesson cases against the real fake DNS (src/dns) on a random
//! 127.x address: honest mail, a spoof, a tampered body, a forward, a
//! domain with `p=none` or no DMARC at all, and a look-alike domain.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::conductor::Clock;
use crate::dns::{DnsHandler, DnsServer, Zones};
use crate::scenario::{RecordKind, RecordSpec, Scenario};
use crate::trace::Trace;

/// A /24 of loopback no other test in this process uses.
fn block() -> (u8, u8) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(7);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mixed = seed.wrapping_mul(2_654_435_761).wrapping_add(n.wrapping_mul(40_503));
    (100 + (mixed % 151) as u8, (mixed >> 8) as u8 ^ (n as u8))
}

fn txt(name: &str, text: &str) -> RecordSpec {
    RecordSpec {
        kind: RecordKind::TXT,
        name: Some(name.into()),
        preference: None,
        exchange: None,
        address: None,
        text: Some(text.into()),
        target: None,
        ttl: None,
    }
}

fn mx(exchange: &str) -> RecordSpec {
    RecordSpec { kind: RecordKind::MX, name: None, preference: Some(10), exchange: Some(exchange.into()), address: None, text: None, target: None, ttl: None }
}

struct Lab {
    prefix: String,
    keys: DomainKeys,
    checker: Checker,
    _dns: DnsServer,
}

impl Lab {
    fn ip(&self, n: u8) -> IpAddr {
        format!("{}.{n}", self.prefix).parse().unwrap()
    }

    async fn start() -> Lab {
        let (x, y) = block();
        let prefix = format!("127.{x}.{y}");
        let at = |n: u8| -> IpAddr { IpAddr::V4(Ipv4Addr::new(127, x, y, n)) };
        let reject = "v=DMARC1; p=reject";
        let domains = vec![
            ("school.test".to_string(), vec![mx("smtp.school.test"), txt("@", "v=spf1 mx -all"), txt("_dmarc", reject)]),
            ("example.org".to_string(), vec![mx("mx1.example.org"), txt("@", "v=spf1 mx -all"), txt("_dmarc", "v=DMARC1; p=quarantine")]),
            ("forward.test".to_string(), vec![mx("mx.forward.test"), txt("@", "v=spf1 mx -all")]),
            ("relaxed.test".to_string(), vec![mx("smtp.relaxed.test"), txt("@", "v=spf1 mx -all"), txt("_dmarc", "v=DMARC1; p=none")]),
            ("open.test".to_string(), vec![mx("smtp.open.test"), txt("@", "v=spf1 mx ~all")]),
            ("schoo1.test".to_string(), vec![mx("smtp.schoo1.test"), txt("@", "v=spf1 ip4:127.0.0.0/8 -all"), txt("_dmarc", reject)]),
        ];
        let hosts: Vec<(String, IpAddr)> =
            [("smtp.school.test", 2), ("mx1.example.org", 3), ("mx.forward.test", 4), ("smtp.relaxed.test", 5), ("smtp.open.test", 6), ("smtp.schoo1.test", 7)]
                .iter()
                .map(|(h, n)| (h.to_string(), at(*n)))
                .collect();
        let zones = Arc::new(Zones::new(&domains, &hosts).unwrap());
        let mut keys = DomainKeys::default();
        keys.insert(DomainKey::generate("school.test", Algorithm::Ed25519).unwrap());
        keys.insert(DomainKey::generate("relaxed.test", Algorithm::Rsa2048).unwrap());
        keys.insert(DomainKey::generate("schoo1.test", Algorithm::Ed25519).unwrap());
        for key in keys.iter() {
            zones.add(&key.domain, &[key.record()]).unwrap();
        }
        let names: HashMap<IpAddr, String> = hosts.iter().map(|(h, a)| (*a, h.clone())).collect();
        let handler = DnsHandler { zones: zones.clone(), trace: Trace::new(Clock::new()), nodes: Arc::new(names) };
        let dns = DnsServer::start(SocketAddr::new(at(1), 0), handler).await.expect("the fake DNS starts");
        let checker = Checker::new("mx1.example.org", dns.addr, at(3), Duration::from_secs(5), zones).unwrap();
        Lab { prefix, keys, checker, _dns: dns }
    }
}

fn message(from: &str, body: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: bob@example.org\r\nSubject: Field trip\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@test>\r\n\r\n{body}\r\n")
        .into_bytes()
}

fn said(verdict: &Verdict, needle: &str) -> bool {
    verdict.steps.iter().any(|s| s.text.contains(needle))
}

fn story(verdict: &Verdict) -> String {
    verdict.steps.iter().map(|s| format!("  {}\n", s.text)).collect()
}

#[tokio::test]
async fn honest_signed_mail_passes_all_three() {
    let lab = Lab::start().await;
    let signed = lab.keys.sign("school.test", &message("Alice <alice@school.test>", "Bus leaves at 9.")).unwrap();
    assert!(signed.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256;"));
    let v = lab.checker.verify(&signed, lab.ip(2), "smtp.school.test", "alice@school.test").await;
    let s = story(&v);
    eprintln!("{s}\n{}", v.headers());
    assert_eq!((v.spf.result.as_str(), v.dkim_summary(), v.dmarc.result.as_str()), ("pass", "pass", "pass"), "{s}");
    assert!(v.spf_aligned && v.dkim_aligned);
    assert_eq!(v.disposition, Disposition::None);
    assert_eq!(v.reject_reply(), None);
    assert!(said(&v, "mx1.example.org asks DNS for school.test's SPF policy"), "{s}");
    assert!(said(&v, &format!("SPF: {} is among the addresses that 'mx' names for school.test", lab.ip(2))), "{s}");
    assert!(said(&v, "asks DNS for the DKIM public key at mailflow._domainkey.school.test"), "{s}");
    assert!(said(&v, "DMARC: From: domain school.test; SPF aligned yes, DKIM aligned yes → pass"), "{s}");
    // The records each check used, as the DNS served them.
    let used = |check: Check, rtype: &str, name: &str| v.lookups.iter().any(|l| l.check == check && l.rtype == rtype && l.name == name);
    assert!(used(Check::Spf, "TXT", "school.test") && used(Check::Spf, "MX", "school.test") && used(Check::Spf, "A", "smtp.school.test"), "{:#?}", v.lookups);
    assert!(used(Check::Dkim, "TXT", "mailflow._domainkey.school.test"), "{:#?}", v.lookups);
    assert!(used(Check::Dmarc, "TXT", "_dmarc.school.test"), "{:#?}", v.lookups);
    let key = v.lookups.iter().find(|l| l.name == "mailflow._domainkey.school.test").unwrap();
    assert!(key.records[0].contains("v=DKIM1; k=ed25519; p="), "{key:?}");
    let headers = v.headers();
    assert!(headers.starts_with("Authentication-Results: mx1.example.org;"), "{headers}");
    for needle in ["spf=pass", "dkim=pass", "header.d=school.test", "dmarc=pass", "policy.dmarc=reject", "\r\nReceived-SPF: pass"] {
        assert!(headers.contains(needle), "{needle} missing from {headers}");
    }
}

#[tokio::test]
async fn spoof_from_an_outside_address_is_rejected() {
    let lab = Lab::start().await;
    let spoof = message("Principal <principal@school.test>", "Send me the exam answers.");
    let v = lab.checker.verify(&spoof, lab.ip(9), "laptop.evil", "principal@school.test").await;
    let s = story(&v);
    eprintln!("{s}\n{}", v.headers());
    assert_eq!(v.spf.result, "fail", "{s}");
    assert!(v.dkim.is_empty());
    assert_eq!(v.dkim_summary(), "none");
    assert_eq!(v.dmarc.result, "fail");
    assert_eq!(v.disposition, Disposition::Reject);
    assert!(v.reject_reply().unwrap().starts_with("550 5.7.1 "));
    assert!(said(&v, &format!("SPF: {} is not among the addresses that 'mx' names for school.test ({}) → fail", lab.ip(9), lab.ip(2))), "{s}");
    assert!(said(&v, "DKIM: the message carries no DKIM signature → none"), "{s}");
    assert!(said(&v, "DMARC: From: domain school.test; SPF aligned no, DKIM aligned no; policy reject → reject"), "{s}");
    assert!(v.authentication_results.contains("spf=fail") && v.authentication_results.contains("dmarc=fail"));
    assert!(v.received_spf.starts_with("Received-SPF: fail"));
}

#[tokio::test]
async fn tampered_body_fails_dkim() {
    let lab = Lab::start().await;
    let signed = lab.keys.sign("school.test", &message("Alice <alice@school.test>", "Pay the trip to account 1234.")).unwrap();
    let text = String::from_utf8(signed).unwrap().replace("account 1234", "account 6666");
    let v = lab.checker.verify(text.as_bytes(), lab.ip(2), "smtp.school.test", "alice@school.test").await;
    let s = story(&v);
    eprintln!("{s}\n{}", v.headers());
    assert_eq!(v.dkim_summary(), "fail", "{s}");
    assert!(said(&v, "DKIM: the body hash in the signature does not match the body that arrived → fail"), "{s}");
    assert!(!v.dkim_aligned);
}

#[tokio::test]
async fn forwarded_mail_fails_spf_but_dkim_carries_dmarc() {
    let lab = Lab::start().await;
    let signed = lab.keys.sign("school.test", &message("Alice <alice@school.test>", "See you.")).unwrap();
    // The forwarder relays with the original envelope sender from its own address.
    let v = lab.checker.verify(&signed, lab.ip(4), "mx.forward.test", "alice@school.test").await;
    let s = story(&v);
    eprintln!("{s}\n{}", v.headers());
    assert_eq!((v.spf.result.as_str(), v.dkim_summary(), v.dmarc.result.as_str()), ("fail", "pass", "pass"), "{s}");
    assert!(!v.spf_aligned && v.dkim_aligned);
    assert_eq!(v.disposition, Disposition::None);
    assert!(said(&v, "SPF aligned no, DKIM aligned yes → pass"), "{s}");
}

#[tokio::test]
async fn without_an_enforcing_policy_the_spoof_is_delivered() {
    let lab = Lab::start().await;
    // p=none: DMARC fails, but the policy asks for nothing.
    let v = lab.checker.verify(&message("Boss <boss@relaxed.test>", "Wire the money."), lab.ip(9), "laptop.evil", "boss@relaxed.test").await;
    let s = story(&v);
    eprintln!("{s}\n{}", v.headers());
    assert_eq!((v.spf.result.as_str(), v.dmarc.result.as_str()), ("fail", "fail"), "{s}");
    assert_eq!(v.disposition, Disposition::None);
    assert_eq!(v.dmarc.detail.as_deref(), Some("none"));
    assert!(said(&v, "policy none → fail, delivered with the results in its header"), "{s}");
    assert!(v.authentication_results.contains("policy.dmarc=none"));

    // No DMARC record at all: the receiver decides alone (softfail here).
    let v = lab.checker.verify(&message("Boss <boss@open.test>", "Wire the money."), lab.ip(9), "laptop.evil", "boss@open.test").await;
    let s = story(&v);
    eprintln!("{s}\n{}", v.headers());
    assert_eq!((v.spf.result.as_str(), v.dmarc.result.as_str(), v.disposition), ("softfail", "none", Disposition::None), "{s}");
    assert!(said(&v, "DMARC: From: domain open.test publishes no DMARC policy → none"), "{s}");
    assert!(said(&v, "asks DNS for test's DMARC policy (_dmarc.test)"), "the tree walk goes up to the parent: {s}");

    // An honest RSA-2048 signature from the same kind of domain passes.
    let signed = lab.keys.sign("relaxed.test", &message("Boss <boss@relaxed.test>", "Lunch?")).unwrap();
    assert!(signed.starts_with(b"DKIM-Signature: v=1; a=rsa-sha256;"));
    let v = lab.checker.verify(&signed, lab.ip(5), "smtp.relaxed.test", "boss@relaxed.test").await;
    assert_eq!((v.spf.result.as_str(), v.dkim_summary(), v.dmarc.result.as_str()), ("pass", "pass", "pass"), "{}", story(&v));
}

#[tokio::test]
async fn a_lookalike_domain_with_its_own_records_passes_everything() {
    let lab = Lab::start().await;
    let signed = lab.keys.sign("schoo1.test", &message("Principal <principal@schoo1.test>", "Please log in here.")).unwrap();
    let v = lab.checker.verify(&signed, lab.ip(9), "laptop.schoo1.test", "principal@schoo1.test").await;
    let s = story(&v);
    eprintln!("{s}\n{}", v.headers());
    assert_eq!((v.spf.result.as_str(), v.dkim_summary(), v.dmarc.result.as_str(), v.disposition), ("pass", "pass", "pass", Disposition::None), "{s}");
    assert!(said(&v, &format!("SPF: {} is among the addresses that 'ip4:127.0.0.0/8' names → pass", lab.ip(9))), "{s}");
}

#[test]
fn garbage_never_panics() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let lab = Lab::start().await;
        for input in [&b""[..], b"\r\n\r\n", b"DKIM-Signature: v=1; a=rsa-sha256; d=; s=\r\n\r\nx", b"From: <>\r\n\r\n", &[0xff; 300]] {
            let v = lab.checker.verify(input, lab.ip(9), "", "").await;
            assert_eq!(v.disposition, Disposition::None);
        }
        // Fifty copies of a good signature: only the first few are checked.
        let signed = lab.keys.sign("school.test", &message("Alice <alice@school.test>", "Hi")).unwrap();
        let cut = signed.windows(2).position(|w| w == b"\r\n").unwrap();
        let mut many = Vec::new();
        let header = {
            // The signature header runs until the line that starts "From:".
            let from = signed.windows(7).position(|w| w == b"\r\nFrom:").unwrap() + 2;
            assert!(from > cut);
            signed[..from].to_vec()
        };
        for _ in 0..50 {
            many.extend_from_slice(&header);
        }
        many.extend_from_slice(&signed[header.len()..]);
        let v = lab.checker.verify(&many, lab.ip(2), "smtp.school.test", "alice@school.test").await;
        assert_eq!(v.dkim.len(), check::MAX_SIGNATURES);
        assert!(v.lookups.iter().filter(|l| l.check == Check::Dkim).count() <= check::MAX_SIGNATURES);
        assert_eq!(v.dkim_summary(), "pass");
    });
}

fn scenario(dkim_school: &str) -> Scenario {
    let text = format!(
        r#"{{
  "title": "keys",
  "domains": {{
    "school.test": {{ {dkim_school} "records": [ {{ "type": "TXT", "text": "v=spf1 mx -all" }} ] }},
    "example.org": {{ "dkim": "rsa2048" }},
    "quiet.test": {{ "dkim": "none" }},
    "elsewhere.test": {{}}
  }},
  "hosts": {{
    "smtp.school.test": {{ "services": ["smtp"], "domains": ["school.test"] }},
    "mx.example.org": {{ "services": ["smtp"] }},
    "mx.quiet.test": {{ "services": ["smtp"], "domains": ["quiet.test"] }}
  }}
}}"#
    );
    Scenario::parse("keys.json", &text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn keys_follow_the_scenario_and_are_kept_under_data() {
    let s = scenario("");
    assert_eq!(key_kind(&s, "school.test"), Some(Algorithm::Ed25519), "a host's domain signs by default");
    assert_eq!(key_kind(&s, "example.org"), Some(Algorithm::Rsa2048));
    assert_eq!(key_kind(&s, "quiet.test"), None);
    assert_eq!(key_kind(&s, "elsewhere.test"), None, "no mailboxes here, nothing to sign");

    let dir = std::env::temp_dir().join(format!("mailflow-auth-{}-{}", std::process::id(), block().1));
    let first = DomainKeys::for_scenario(&s, Some(&dir)).unwrap();
    assert_eq!(first.len(), 2);
    let again = DomainKeys::for_scenario(&s, Some(&dir)).unwrap();
    assert_eq!(first.published(), again.published(), "kept keys are reused");
    let fresh = DomainKeys::for_scenario(&s, None).unwrap();
    assert_ne!(first.published(), fresh.published(), "without --data every world makes new keys");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("dkim/school.test.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read a private key");
    }
    // Switching the algorithm makes a new key.
    let switched = DomainKeys::for_scenario(&scenario(r#""dkim": "rsa2048","#), Some(&dir)).unwrap();
    assert!(switched.get("school.test").unwrap().dns_text().starts_with("v=DKIM1; k=rsa; p="));
    assert!(!format!("{:?}", switched.get("school.test").unwrap()).contains("private"), "Debug hides the key");
    let _ = std::fs::remove_dir_all(&dir);

    // Published once, and not over a record the scenario writes itself.
    let zones = Zones::new(&[("school.test".into(), vec![]), ("example.org".into(), vec![])], &[]).unwrap();
    first.publish(&zones, &s).unwrap();
    let listing = format!("{:?}", zones.listing());
    assert!(listing.contains("mailflow._domainkey.school.test."), "{listing}");
    assert_eq!(first.records_for("school.test").len(), 1);
    assert!(first.records_for("quiet.test").is_empty());
}

#[tokio::test]
async fn a_bounce_is_checked_by_its_helo_name_and_the_verdict_is_json() {
    let lab = Lab::start().await;
    // A bounce has MAIL FROM:<>: SPF checks the HELO name instead (RFC 7208 §2.4).
    let v = lab.checker.verify(&message("MAILER-DAEMON <postmaster@school.test>", "Undeliverable"), lab.ip(2), "school.test", "").await;
    let s = story(&v);
    assert_eq!((v.spf.result.as_str(), v.spf.domain.as_str()), ("pass", "school.test"), "{s}");
    assert!(v.authentication_results.contains("smtp.mailfrom=<>"), "{}", v.authentication_results);
    assert!(said(&v, &format!("SPF: {} is among the addresses that 'mx' names for school.test", lab.ip(2))), "{s}");
    // The page's authentication view takes the verdict as it is.
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["disposition"], "none");
    assert_eq!(json["lookups"][0]["check"], "spf");
    assert_eq!(json["lookups"][0]["rtype"], "TXT");
    assert!(json["steps"].as_array().unwrap().len() >= 6);
}

#[test]
fn a_scenario_record_at_the_key_name_is_not_overwritten() {
    let s = Scenario::parse(
        "own.json",
        r#"{ "title": "own key", "domains": { "school.test": { "records": [ { "type": "TXT", "name": "mailflow._domainkey", "text": "v=DKIM1; p=" } ] } },
             "hosts": { "smtp.school.test": { "services": ["smtp"], "domains": ["school.test"] } } }"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keys = DomainKeys::for_scenario(&s, None).unwrap();
    let domains: Vec<(String, Vec<RecordSpec>)> = s.domains.iter().map(|(d, z)| (d.clone(), z.records.clone())).collect();
    let zones = Zones::new(&domains, &[]).unwrap();
    keys.publish(&zones, &s).unwrap();
    let listing = format!("{:?}", zones.listing());
    assert_eq!(listing.matches("mailflow._domainkey.school.test.").count(), 1, "{listing}");
    assert!(listing.contains("v=DKIM1; p="), "the lesson's revoked key stays: {listing}");
}
