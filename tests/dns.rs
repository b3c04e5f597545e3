//! The fake DNS over real loopback sockets: what a mail server learns from
//! it (through the world's resolver) and what a student sees with `dig`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_proto::rr::{RData, RecordType};
use mailflow::dns::{MailRoute, MailServer, QueryOutcome, txt_text};
use mailflow::scenario::RecordSpec;
use mailflow::trace::{Event, Kind};
use mailflow::world::World;

use mailflow::conductor::Pace;

use crate::common::{Net, dig_at, short_lines, start_world, start_world_on};

/// MX records listed out of order (the resolver must sort them), a domain
/// with no MX whose host has the domain's own name, one with only an A
/// record at the apex, a null MX, a domain with no records, TXT records, a
/// CNAME.
const LESSONS: &str = r#"{
  "title": "DNS lessons",
  "domains": {
    "example.org": { "records": [
      { "type": "MX", "preference": 20, "exchange": "mx2.example.org" },
      { "type": "MX", "preference": 10, "exchange": "mx1.example.org" },
      { "type": "TXT", "text": "v=spf1 mx -all" },
      { "type": "TXT", "name": "long", "text": "LONG_TEXT" },
      { "type": "CNAME", "name": "www", "target": "mx1.example.org" }
    ] },
    "nomx.test": {},
    "apex.test": { "records": [ { "type": "A", "address": "NET.77" } ] },
    "nomail.test": { "records": [ { "type": "MX", "preference": 0, "exchange": "." } ] },
    "school.test": {}
  },
  "hosts": {
    "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] },
    "mx2.example.org": { "services": ["smtp"], "backup_for": ["example.org"] },
    "nomx.test": { "services": ["smtp"], "domains": ["nomx.test"] },
    "smtp.school.test": { "services": ["smtp", "submission"], "domains": ["school.test"] }
  }
}"#;

/// A TXT text longer than one 255-byte DNS string (like a DKIM key).
fn long_text() -> String {
    (0..40).map(|i| format!("part{i:02}-")).collect::<String>().repeat(2)
}

async fn lessons() -> (Arc<World>, Net) {
    start_world(&LESSONS.replace("LONG_TEXT", &long_text())).await
}

fn address_of(world: &World, node: &str) -> IpAddr {
    IpAddr::V4(world.node(node).unwrap_or_else(|| panic!("no node {node}")).address)
}

fn dns_events(world: &World) -> Vec<Arc<Event>> {
    world.trace.since(0).into_iter().filter(|e| matches!(e.kind, Kind::DnsQuery { .. } | Kind::DnsAnswer { .. })).collect()
}

// RFC 5321 §5.1: the MX with the lowest preference is tried first, whatever order DNS lists them in.
#[tokio::test(flavor = "multi_thread")]
async fn mail_route_orders_mx_by_preference() {
    let (world, _) = lessons().await;
    let lookup = world.lookup_for("smtp.school.test").expect("a node");
    let route = lookup.mail_route("example.org", None).await.expect("DNS answers");
    let expected = MailRoute::Servers {
        servers: vec![
            MailServer { name: "mx1.example.org".into(), preference: 10, addresses: vec![address_of(&world, "mx1.example.org")] },
            MailServer { name: "mx2.example.org".into(), preference: 20, addresses: vec![address_of(&world, "mx2.example.org")] },
        ],
        implicit: false,
    };
    assert_eq!(route, expected);
    world.shutdown().await;
}

// No MX at all: the domain's own address is the mail server ("implicit MX", preference 0).
#[tokio::test(flavor = "multi_thread")]
async fn mail_route_falls_back_to_the_a_record() {
    let (world, net) = lessons().await;
    let lookup = world.lookup_for("smtp.school.test").expect("a node");
    // A host named like its domain gets the domain's A record from the world...
    let route = lookup.mail_route("nomx.test", None).await.expect("DNS answers");
    let host = MailServer { name: "nomx.test".into(), preference: 0, addresses: vec![address_of(&world, "nomx.test")] };
    assert_eq!(route, MailRoute::Servers { servers: vec![host], implicit: true });
    // ...and an A record written in the scenario works the same way.
    let route = lookup.mail_route("apex.test", None).await.expect("DNS answers");
    let apex = MailServer { name: "apex.test".into(), preference: 0, addresses: vec![IpAddr::V4(net.addr(77))] };
    assert_eq!(route, MailRoute::Servers { servers: vec![apex], implicit: true });
    world.shutdown().await;
}

// RFC 7505: a single MX of "." means "this domain takes no mail": give up at once, no fallback.
#[tokio::test(flavor = "multi_thread")]
async fn mail_route_sees_a_null_mx() {
    let (world, _) = lessons().await;
    let lookup = world.lookup_for("mx1.example.org").expect("a node");
    assert_eq!(lookup.mail_route("nomail.test", None).await, Ok(MailRoute::NullMx));
    // No A question follows a null MX.
    let asked: Vec<String> = dns_events(&world)
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::DnsQuery { name, rtype, .. } => Some(format!("{rtype} {name}")),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec!["MX nomail.test."]);
    world.shutdown().await;
}

// A domain that does not exist, or exists with neither MX nor address, cannot take mail.
#[tokio::test(flavor = "multi_thread")]
async fn mail_route_of_unknown_domains() {
    let (world, _) = lessons().await;
    let lookup = world.lookup_for("smtp.school.test").expect("a node");
    for domain in ["unknown.test", "nothere.example.org", "school.test"] {
        assert_eq!(lookup.mail_route(domain, None).await, Ok(MailRoute::NoSuchDomain), "{domain}");
    }
    world.shutdown().await;
}

// The three negative-or-not answers a student must tell apart: records, NODATA, NXDOMAIN; long TXT rejoined.
#[tokio::test(flavor = "multi_thread")]
async fn query_outcomes() {
    let (world, _) = lessons().await;
    let lookup = world.lookup_for("mx1.example.org").expect("a node");
    let texts = |outcome: QueryOutcome| match outcome {
        QueryOutcome::Records(records) => records
            .iter()
            .map(|r| match &r.data {
                RData::TXT(txt) => txt_text(txt),
                other => panic!("not a TXT record: {other:?}"),
            })
            .collect::<Vec<_>>(),
        other => panic!("expected records, got {other:?}"),
    };
    assert_eq!(texts(lookup.query("example.org", RecordType::TXT, None).await), vec!["v=spf1 mx -all"]);
    assert_eq!(texts(lookup.query("long.example.org", RecordType::TXT, None).await), vec![long_text()]);
    assert_eq!(lookup.query("example.org", RecordType::AAAA, None).await, QueryOutcome::NoData);
    assert_eq!(lookup.query("nothere.example.org", RecordType::A, None).await, QueryOutcome::NxDomain);
    // Outside every zone: NXDOMAIN from the empty root zone, not REFUSED.
    assert_eq!(lookup.query("www.example.com", RecordType::A, None).await, QueryOutcome::NxDomain);
    world.shutdown().await;
}

// A world node's lookup is two traced hops, node → dns and dns → node, traced once (by the asker).
#[tokio::test(flavor = "multi_thread")]
async fn internal_lookup_is_a_query_and_an_answer_event() {
    let (world, _) = lessons().await;
    let before = world.trace.len();
    let lookup = world.lookup_for("smtp.school.test").expect("a node");
    lookup.query("example.org", RecordType::MX, None).await;
    let events: Vec<Arc<Event>> = dns_events(&world).into_iter().filter(|e| e.seq >= before).collect();
    let [query, answer] = events.as_slice() else { panic!("expected a query and an answer, got {events:#?}") };
    assert_eq!((query.from.as_str(), query.to.as_str()), ("smtp.school.test", "dns"));
    assert_eq!((answer.from.as_str(), answer.to.as_str()), ("dns", "smtp.school.test"));
    assert!(matches!(&query.kind, Kind::DnsQuery { name, rtype, transport } if name == "example.org." && rtype == "MX" && transport == "UDP"), "{query:?}");
    let Kind::DnsAnswer { rcode, records, .. } = &answer.kind else { panic!("not an answer: {answer:?}") };
    assert_eq!(rcode, "No Error");
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(query.session.is_some() && query.session == answer.session, "one exchange, one session");
    assert!(query.summary.contains("smtp.school.test asks DNS: which servers take mail for example.org?"), "{}", query.summary);
    assert!(answer.summary.contains("mx1.example.org (preference 10)"), "{}", answer.summary);
    world.shutdown().await;
}

/// `10 mx1.example.org.` lines of `dig +short MX`, sorted by preference
/// (a DNS server does not sort; the mail server does).
fn mx_lines(text: &str) -> Vec<String> {
    let mut lines = short_lines(text);
    lines.sort_by_key(|l| l.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(u16::MAX));
    lines
}

// The same facts with `dig` as a real client, over UDP and over TCP.
#[tokio::test(flavor = "multi_thread")]
async fn dig_reads_the_zone_over_udp_and_tcp() {
    let (world, net) = lessons().await;
    let expected = vec!["10 mx1.example.org.", "20 mx2.example.org."];
    assert_eq!(mx_lines(&dig_at(&net, &["+short", "MX", "example.org"]).await), expected);
    assert_eq!(mx_lines(&dig_at(&net, &["+short", "+tcp", "MX", "example.org"]).await), expected);
    assert_eq!(short_lines(&dig_at(&net, &["+short", "A", "mx2.example.org"]).await), vec![net.addr(3).to_string()]);
    assert_eq!(short_lines(&dig_at(&net, &["+short", "TXT", "example.org"]).await), vec!["\"v=spf1 mx -all\""]);
    assert_eq!(short_lines(&dig_at(&net, &["+short", "MX", "nomail.test"]).await), vec!["0 ."]);
    // The MX answer carries the exchanges' addresses as additional records, as real servers do.
    let full = dig_at(&net, &["MX", "example.org"]).await;
    assert!(full.contains(";; ADDITIONAL SECTION:"), "{full}");
    assert!(full.contains(&format!("mx1.example.org.\t300\tIN\tA\t{}", net.addr(2))), "{full}");
    world.shutdown().await;
}

// `dig MX` lists the exchanges lowest preference first, as the README says, though the scenario lists
// preference 20 first; equal preferences keep the scenario's order, the same on every query and transport.
#[tokio::test(flavor = "multi_thread")]
async fn dig_lists_mx_lowest_preference_first_and_stable() {
    let (world, net) = lessons().await;
    for transport in ["+notcp", "+tcp"] {
        let lines = short_lines(&dig_at(&net, &["+short", transport, "MX", "example.org"]).await);
        assert_eq!(lines, vec!["10 mx1.example.org.", "20 mx2.example.org."], "{transport}");
    }
    let records: Vec<RecordSpec> = serde_json::from_str(
        r#"[ { "type": "MX", "preference": 30, "exchange": "mx1.example.org" },
             { "type": "MX", "preference": 5, "exchange": "mx2.example.org" },
             { "type": "MX", "preference": 30, "exchange": "nomx.test" },
             { "type": "MX", "preference": 5, "exchange": "smtp.school.test" } ]"#,
    )
    .expect("valid records");
    world.zones.replace("example.org", &records, &world.host_addresses()).expect("the zone changes");
    let expected = vec!["5 mx2.example.org.", "5 smtp.school.test.", "30 mx1.example.org.", "30 nomx.test."];
    for _ in 0..5 {
        assert_eq!(short_lines(&dig_at(&net, &["+short", "MX", "example.org"]).await), expected);
    }
    world.shutdown().await;
}

// DNS names ignore case, and an alias (CNAME) is followed to the address within the same answer.
#[tokio::test(flavor = "multi_thread")]
async fn dig_follows_a_cname_and_ignores_case() {
    let (world, net) = lessons().await;
    assert_eq!(short_lines(&dig_at(&net, &["+short", "A", "WWW.Example.ORG"]).await), vec!["mx1.example.org.".to_string(), net.addr(2).to_string()]);
    assert_eq!(mx_lines(&dig_at(&net, &["+short", "MX", "EXAMPLE.org"]).await), vec!["10 mx1.example.org.", "20 mx2.example.org."]);
    world.shutdown().await;
}

// NXDOMAIN is an answer, not a failure: authoritative, with the SOA for negative caching.
#[tokio::test(flavor = "multi_thread")]
async fn dig_sees_nxdomain_and_nodata() {
    let (world, net) = lessons().await;
    for name in ["nothere.example.org", "www.example.com"] {
        let text = dig_at(&net, &["A", name]).await;
        assert!(text.contains("status: NXDOMAIN"), "{name}:\n{text}");
        assert!(text.contains("flags: qr aa"), "an authoritative answer:\n{text}");
        assert!(text.contains("ANSWER: 0, AUTHORITY: 1"), "the SOA comes with the no:\n{text}");
    }
    let text = dig_at(&net, &["AAAA", "example.org"]).await;
    assert!(text.contains("status: NOERROR") && text.contains("ANSWER: 0"), "NODATA:\n{text}");
    world.shutdown().await;
}

// A zone edited while the world runs is what the very next question gets.
#[tokio::test(flavor = "multi_thread")]
async fn dig_sees_a_zone_change() {
    let (world, net) = lessons().await;
    assert_eq!(mx_lines(&dig_at(&net, &["+short", "MX", "example.org"]).await).len(), 2);
    let records: Vec<RecordSpec> = serde_json::from_str(r#"[ { "type": "MX", "preference": 5, "exchange": "mx2.example.org" } ]"#).expect("valid records");
    world.zones.replace("example.org", &records, &world.host_addresses()).expect("the zone changes");
    assert_eq!(short_lines(&dig_at(&net, &["+short", "MX", "example.org"]).await), vec!["5 mx2.example.org."]);
    // The hosts' A records stay, and the TXT record is gone with the rest.
    assert_eq!(short_lines(&dig_at(&net, &["+short", "A", "mx1.example.org"]).await), vec![net.addr(2).to_string()]);
    assert!(short_lines(&dig_at(&net, &["+short", "TXT", "example.org"]).await).is_empty());
    world.shutdown().await;
}

// Outside clients are traced by the server, under their own address, for each transport.
#[tokio::test(flavor = "multi_thread")]
async fn dig_queries_are_traced_with_the_client_address() {
    let (world, net) = lessons().await;
    let client: Ipv4Addr = net.addr(200); // not a node of the world
    let bind = client.to_string();
    dig_at(&net, &["-b", &bind, "+short", "MX", "example.org"]).await;
    dig_at(&net, &["-b", &bind, "+short", "+tcp", "A", "nothere.example.org"]).await;
    let events = dns_events(&world);
    let seen: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            let what = match &e.kind {
                Kind::DnsQuery { name, rtype, transport } => format!("query {rtype} {name} {transport}"),
                Kind::DnsAnswer { name, rtype, rcode, .. } => format!("answer {rtype} {name} {rcode}"),
                _ => unreachable!(),
            };
            (e.from.clone(), e.to.clone(), what)
        })
        .collect();
    let expected = [
        (bind.as_str(), "dns", "query MX example.org. UDP"),
        ("dns", bind.as_str(), "answer MX example.org. No Error"),
        (bind.as_str(), "dns", "query A nothere.example.org. TCP"),
        ("dns", bind.as_str(), "answer A nothere.example.org. Non-Existent Domain"),
    ];
    let expected: Vec<(String, String, String)> = expected.iter().map(|(f, t, w)| (f.to_string(), t.to_string(), w.to_string())).collect();
    assert_eq!(seen, expected);
    assert!(events[0].summary.starts_with(&format!("{bind} asks DNS: which servers take mail for example.org?")), "{}", events[0].summary);
    assert_eq!(events[0].session, events[1].session);
    assert_ne!(events[1].session, events[2].session);
    world.shutdown().await;
}

// Without `-b`, dig sends from whatever loopback address the kernel picks; it is still an outsider, traced by address.
#[tokio::test(flavor = "multi_thread")]
async fn dig_from_the_default_address_is_traced_too() {
    let (world, net) = lessons().await;
    dig_at(&net, &["+short", "TXT", "example.org"]).await;
    let events = dns_events(&world);
    let [query, answer] = events.as_slice() else { panic!("expected a query and an answer, got {events:#?}") };
    let from: Ipv4Addr = query.from.parse().unwrap_or_else(|_| panic!("{:?} is not an address", query.from));
    assert!(from.is_loopback(), "{from}");
    assert!(world.nodes.iter().all(|n| n.address != from), "{from} is a node's address");
    assert_eq!((answer.from.as_str(), answer.to.as_str()), ("dns", query.from.as_str()));
    world.shutdown().await;
}

// Shutting a world down frees its DNS port, so the lesson can restart on the same addresses.
#[tokio::test(flavor = "multi_thread")]
async fn a_world_restarts_on_the_same_block() {
    let (world, net) = lessons().await;
    // A TCP client still connected must not keep the port busy.
    let lingering = tokio::net::TcpStream::connect((net.dns(), crate::common::DNS_PORT)).await.expect("connect over TCP");
    world.shutdown().await;
    let again = restart_on(net).await;
    assert_eq!(short_lines(&dig_at(&net, &["+short", "TXT", "long.example.org"]).await), vec!["\"short\""]);
    drop(lingering);
    again.shutdown().await;
}

/// Starts the lessons world again on `net`. Other tests of this process
/// start `dig` and `mailflow` meanwhile; between fork and exec such a child
/// briefly holds a copy of every open socket, ours included, so the port
/// may look busy for a moment after shutdown. Retry a bounded number of
/// times; a port that stays busy fails the test.
async fn restart_on(net: Net) -> Arc<World> {
    let mut last = None;
    for _ in 0..100 {
        match start_world_on(net, &LESSONS.replace("LONG_TEXT", "short"), Pace::Fast).await {
            Ok(world) => return world,
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the block is still busy after shutdown: {}", last.expect("tried"));
}

// Plain questions (no EDNS, as dnsperf sends them) come from answers prepared ahead or kept after the first time:
// the same answers as the full path gives, each question still traced, and a zone change seen by the next question.
#[tokio::test(flavor = "multi_thread")]
async fn plain_questions_answered_from_the_cache_are_right_traced_and_follow_changes() {
    let (world, net) = lessons().await;
    let client: Ipv4Addr = net.addr(201);
    let bind = client.to_string();
    let ask = |edns: bool, rtype: &'static str, name: &'static str| {
        let (net, bind) = (net, bind.clone());
        async move {
            let edns = if edns { "+edns" } else { "+noedns" };
            let out = dig_at(&net, &["-b", &bind, edns, "+noall", "+answer", "+comments", rtype, name]).await;
            let status = out.lines().find_map(|l| l.split("status: ").nth(1)).map(|s| s.split(',').next().unwrap_or("").to_string());
            let answers: Vec<String> =
                out.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
            (status, answers)
        }
    };
    // Twice each: the second plain question of a name not prepared ahead is answered from what the first kept.
    let questions = [("MX", "example.org"), ("A", "mx1.example.org"), ("A", "MX1.Example.ORG"), ("A", "nothere.example.org"), ("TXT", "nomx.test")];
    for (rtype, name) in questions {
        let full = ask(true, rtype, name).await;
        assert!(full.0.is_some(), "dig printed no status for {rtype} {name}");
        for _ in 0..2 {
            assert_eq!(ask(false, rtype, name).await, full, "{rtype} {name} without EDNS");
        }
    }
    let traced = dns_events(&world).iter().filter(|e| e.from == bind || e.to == bind).count();
    assert_eq!(traced, questions.len() * 3 * 2, "every question is a query event and an answer event");
    let records: Vec<RecordSpec> = serde_json::from_str(r#"[ { "type": "MX", "preference": 5, "exchange": "mx2.example.org" } ]"#).expect("valid records");
    world.zones.replace("example.org", &records, &world.host_addresses()).expect("the zone changes");
    let (status, answers) = ask(false, "MX", "example.org").await;
    assert_eq!(status.as_deref(), Some("NOERROR"));
    assert_eq!(answers, ["example.org. 300 IN MX 5 mx2.example.org."]);
    world.shutdown().await;
}
