//! Sender-authentication benchmark: DKIM signatures per second and full
//! verifications (SPF + DKIM + DMARC, every lookup over loopback to the
//! fake DNS) per second, for Ed25519 and RSA-2048 keys.
//!
//! It starts the fake DNS (src/dns) on a random 127.x address with two
//! domains, `ed.test` (Ed25519 key) and `rsa.test` (RSA-2048 key), each
//! publishing `v=spf1 mx -all`, a DKIM key and `v=DMARC1; p=reject`. A
//! ~2 KB message is signed N times per key, then one signed message is
//! verified N times by the receiver `mx.example.org`, one after the other
//! (a receiver checks each message as its DATA ends). For scale, the same
//! run measures N bare DNS TXT questions to the same server: a
//! verification asks six (SPF TXT, MX, A; the DKIM key; `_dmarc.<domain>`
//! and `_dmarc.test`), so DNS round trips set most of its cost.
//!
//! Run: `cargo bench --bench auth` (N: `MAILFLOW_AUTH_N=2000`). Dependencies
//! are optimised in the dev profile too, so `cargo bench --bench auth
//! --profile dev` gives close figures without a release build.
//! It is a figure printer, not a test: nothing here asserts a speed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use mailflow::auth::{Algorithm, Checker, DomainKey, DomainKeys};
use mailflow::conductor::Clock;
use mailflow::dns::{DnsHandler, DnsServer, Zones};
use mailflow::scenario::{RecordKind, RecordSpec};
use mailflow::trace::Trace;

fn record(kind: RecordKind, name: Option<&str>, text: Option<&str>, exchange: Option<&str>) -> RecordSpec {
    RecordSpec {
        kind,
        name: name.map(Into::into),
        preference: exchange.map(|_| 10),
        exchange: exchange.map(Into::into),
        address: None,
        text: text.map(Into::into),
        target: None,
        ttl: None,
    }
}

fn message() -> Vec<u8> {
    let mut body = String::new();
    for i in 0..30 {
        body.push_str(&format!("Line {i:02} of the field trip plan: the bus leaves at nine, bring lunch and a coat.\r\n"));
    }
    format!(
        "From: Alice <alice@DOMAIN>\r\nTo: Bob <bob@example.org>\r\nSubject: Field trip\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@DOMAIN>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("MAILFLOW_AUTH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(1);
    let (x, y) = (100 + (seed % 151) as u8, (seed >> 8) as u8);
    let at = |n: u8| IpAddr::V4(Ipv4Addr::new(127, x, y, n));

    let mut domains = Vec::new();
    let mut hosts = Vec::new();
    for (i, domain) in ["ed.test", "rsa.test"].iter().enumerate() {
        let smtp = format!("smtp.{domain}");
        domains.push((
            domain.to_string(),
            vec![
                record(RecordKind::MX, None, None, Some(&smtp)),
                record(RecordKind::TXT, None, Some("v=spf1 mx -all"), None),
                record(RecordKind::TXT, Some("_dmarc"), Some("v=DMARC1; p=reject"), None),
            ],
        ));
        hosts.push((smtp, at(2 + i as u8)));
    }
    domains.push(("example.org".into(), vec![record(RecordKind::MX, None, None, Some("mx.example.org"))]));
    hosts.push(("mx.example.org".into(), at(9)));
    let zones = Arc::new(Zones::new(&domains, &hosts).expect("valid zones"));
    let mut keys = DomainKeys::default();
    // The first key pays aws-lc's one-time start-up; time the next ones.
    DomainKey::generate("warm.test", Algorithm::Ed25519).expect("an Ed25519 key");
    let made = Instant::now();
    keys.insert(DomainKey::generate("ed.test", Algorithm::Ed25519).expect("an Ed25519 key"));
    let ed_made = made.elapsed();
    let made = Instant::now();
    keys.insert(DomainKey::generate("rsa.test", Algorithm::Rsa2048).expect("an RSA key"));
    let rsa_made = made.elapsed();
    for key in keys.iter() {
        zones.add(&key.domain, &[key.record()]).expect("the key record");
    }
    let names: HashMap<IpAddr, String> = hosts.iter().map(|(h, a)| (*a, h.clone())).collect();
    let handler = DnsHandler { zones: zones.clone(), trace: Trace::new(Clock::new()), nodes: Arc::new(names) };
    let dns = DnsServer::start(SocketAddr::new(at(1), 0), handler).await.expect("the fake DNS starts");
    let checker = Checker::new("mx.example.org", dns.addr, at(9), Duration::from_secs(5), zones.clone()).expect("a checker");

    println!("mailflow auth benchmark: N = {n}, fake DNS at {}", dns.addr);
    println!("key generation: Ed25519 {:.2} ms, RSA-2048 {:.1} ms", ed_made.as_secs_f64() * 1e3, rsa_made.as_secs_f64() * 1e3);

    // Baseline: bare TXT questions to the same DNS server, from the same address.
    let mut server = NameServerConfig::udp_and_tcp(dns.addr.ip());
    for connection in &mut server.connections {
        connection.port = dns.addr.port();
        connection.bind_addr = Some(SocketAddr::new(at(9), 0));
    }
    let mut options = ResolverOpts::default();
    options.cache_size = 0;
    let resolver = TokioResolver::builder_with_config(ResolverConfig::from_name_servers(vec![server]), TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .expect("a resolver");
    for (domain, label, client) in [("ed.test", "Ed25519 ", at(2)), ("rsa.test", "RSA-2048", at(3))] {
        let message: Vec<u8> = String::from_utf8(message()).expect("ASCII").replace("DOMAIN", domain).into_bytes();
        let key = keys.get(domain).expect("the key");
        let started = Instant::now();
        let mut signed = Vec::new();
        for _ in 0..n {
            signed = key.sign(&message).expect("signed");
        }
        let sign_rate = per_second(n, started.elapsed());

        // The baseline just before, so a machine busy with other work
        // weighs on both figures alike.
        let name = Name::from_ascii(format!("{domain}.")).expect("a name");
        let started = Instant::now();
        for _ in 0..n {
            resolver.lookup(name.clone(), RecordType::TXT).await.expect("an answer");
        }
        let dns_rate = per_second(n, started.elapsed());

        let verdict = checker.verify(&signed, client, &format!("smtp.{domain}"), &format!("alice@{domain}")).await;
        assert_eq!((verdict.spf.result.as_str(), verdict.dkim_summary(), verdict.dmarc.result.as_str()), ("pass", "pass", "pass"), "{:#?}", verdict.steps);
        let questions = verdict.lookups.len();
        let started = Instant::now();
        for _ in 0..n {
            checker.verify(&signed, client, &format!("smtp.{domain}"), &format!("alice@{domain}")).await;
        }
        let verify_rate = per_second(n, started.elapsed());
        println!(
            "{label}: {sign_rate:>7.0} DKIM signatures/s  {verify_rate:>5.0} verifications/s (SPF+DKIM+DMARC, {questions} DNS questions each)  baseline {dns_rate:>5.0} bare DNS questions/s: a verification takes {:.2}x the time of {questions}",
            (dns_rate / questions as f64) / verify_rate
        );
    }
    dns.shutdown().await;
}
