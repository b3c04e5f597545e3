//! The fake DNS: the Internet's phone book, shrunk to one process.
//!
//! A mail server learns where to send mail for `example.org` by asking DNS
//! for its MX records (RFC 5321 §5.1). In mailflow every such question goes
//! to one in-process DNS server on loopback (hickory-server), authoritative
//! for the scenario's zones; nothing ever asks a real DNS server.
//!
//! - `zone.rs`: the records and how an authoritative server answers;
//! - `server.rs`: the server on UDP and TCP, tracing outside questions;
//! - `udp.rs`: its UDP side, reading and answering questions in batches;
//! - `cache.rs`: answers kept in wire format per question, so a repeated
//!   question is not decoded, answered and encoded again;
//! - `lookup.rs`: the resolver every host uses (hickory-resolver pointed
//!   only at our server), with traced, paced lookups and the mail routing
//!   rules: MX by preference, A fallback, null MX.

pub mod cache;
pub mod lookup;
pub mod server;
pub mod udp;
pub mod zone;

pub use lookup::{Lookup, LookupError, MailRoute, MailServer, QueryOutcome, Resolvers};
pub use server::{DnsHandler, DnsServer};
pub use zone::Zones;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, Record, RecordType};

/// "MX", "A", ... for events.
pub fn record_type_name(rtype: RecordType) -> String {
    rtype.to_string()
}

/// The question in words a student understands.
pub fn describe_question(who: &str, name: &str, rtype: RecordType) -> String {
    let name = name.trim_end_matches('.');
    match rtype {
        RecordType::MX => format!("{who} asks DNS: which servers take mail for {name}? (MX)"),
        RecordType::A => format!("{who} asks DNS: what is the IPv4 address of {name}? (A)"),
        RecordType::AAAA => format!("{who} asks DNS: what is the IPv6 address of {name}? (AAAA)"),
        RecordType::TXT => format!("{who} asks DNS: what text records does {name} publish? (TXT)"),
        RecordType::CNAME => format!("{who} asks DNS: is {name} another name for something? (CNAME)"),
        other => format!("{who} asks DNS: {other} records of {name}?"),
    }
}

/// The answer in words a student understands.
pub fn describe_answer(name: &str, rtype: RecordType, rcode: ResponseCode, records: &[Record]) -> String {
    let name = name.trim_end_matches('.');
    if rcode == ResponseCode::NXDomain {
        return format!("DNS answers: {name} does not exist (NXDOMAIN)");
    }
    if rcode != ResponseCode::NoError {
        return format!("DNS answers with an error: {rcode}");
    }
    let asked: Vec<&Record> = records.iter().filter(|r| r.record_type() == rtype).collect();
    if asked.is_empty() && records.is_empty() {
        return format!("DNS answers: {name} exists but has no {rtype} records");
    }
    let parts: Vec<String> = records
        .iter()
        .map(|r| match &r.data {
            RData::MX(mx) if mx.exchange.is_root() => "null MX: this domain takes no mail".to_string(),
            RData::MX(mx) => format!("{} (preference {})", mx.exchange.to_string().trim_end_matches('.'), mx.preference),
            RData::A(a) => format!("{} is at {}", r.name.to_string().trim_end_matches('.'), a.0),
            RData::AAAA(a) => format!("{} is at {}", r.name.to_string().trim_end_matches('.'), a.0),
            RData::TXT(txt) => format!("\"{}\"", txt_text(txt)),
            RData::CNAME(c) => format!("{} is an alias of {}", r.name.to_string().trim_end_matches('.'), c.0.to_string().trim_end_matches('.')),
            other => other.to_string(),
        })
        .collect();
    format!("DNS answers: {}", parts.join(", "))
}

/// A TXT record's strings joined back into one text.
pub fn txt_text(txt: &hickory_proto::rr::rdata::TXT) -> String {
    txt.txt_data.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect()
}
