//! The zone data of the fake DNS and how an authoritative server answers
//! from it (RFC 1034 §4.3.2, simplified to what mail lessons need).
//!
//! For a question (name, type) the server finds the zone that contains the
//! name, then answers with one of:
//! - the records of that type (and, for MX, the exchanges' addresses as
//!   "additional" records, as real servers do);
//! - a CNAME, followed to its target when that is in our zones;
//! - NOERROR with no records ("NODATA": the name exists, the type doesn't);
//! - NXDOMAIN: no such name. Names outside every scenario zone fall under
//!   an empty root zone, so they get NXDOMAIN too, never REFUSED.
//!
//! Negative answers carry the zone's SOA record, which tells resolvers how
//! long they may remember the "no". Zones are edited live (a scenario step);
//! each edit bumps the zone's serial, as a real zone change would.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::RwLock;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::scenario::{RecordKind, RecordSpec, validate::owner_name};

/// Default TTL of scenario records, in seconds.
pub const DEFAULT_TTL: u32 = 300;

/// What the server says to one question.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    /// The SOA record on negative answers.
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
}

#[derive(Clone, Debug)]
struct Zone {
    origin: Name,
    serial: u32,
    records: Vec<Record>,
}

impl Zone {
    fn soa(&self) -> Record {
        let mname = Name::from_ascii("dns.mailflow.").expect("valid name");
        let rname = Name::from_ascii("hostmaster").expect("valid").append_domain(&self.origin).unwrap_or_else(|_| self.origin.clone());
        // refresh, retry, expire are for secondary servers (we have none);
        // the last number is the negative-caching TTL (RFC 2308).
        Record::from_rdata(self.origin.clone(), DEFAULT_TTL, RData::SOA(SOA::new(mname, rname, self.serial, 3600, 600, 86400, 60)))
    }
}

/// All zones of one world, shared by the DNS server and the steps that
/// change them.
#[derive(Debug)]
pub struct Zones {
    // Readers (every query) vastly outnumber writers (a step); never held
    // across an await.
    zones: RwLock<BTreeMap<String, Zone>>,
}

#[derive(Debug, thiserror::Error)]
#[error("bad name {name:?}: {reason}")]
pub struct ZoneError {
    pub name: String,
    pub reason: String,
}

fn name(text: &str) -> Result<Name, ZoneError> {
    let fqdn = if text.ends_with('.') { text.to_string() } else { format!("{text}.") };
    Name::from_ascii(&fqdn).map_err(|e| ZoneError { name: text.to_string(), reason: e.to_string() })
}

/// Turns one scenario record into a DNS record.
pub fn to_record(domain: &str, spec: &RecordSpec) -> Result<Record, ZoneError> {
    let owner = name(&owner_name(domain, spec.name.as_deref()))?;
    let ttl = spec.ttl.unwrap_or(DEFAULT_TTL);
    let missing = |field: &str| ZoneError { name: owner.to_string(), reason: format!("missing `{field}`") };
    let rdata = match spec.kind {
        RecordKind::MX => {
            let exchange = spec.exchange.as_deref().ok_or_else(|| missing("exchange"))?;
            // A null MX's exchange is the root name "." (RFC 7505).
            let exchange = if exchange == "." { Name::root() } else { name(exchange)? };
            RData::MX(MX::new(spec.preference.unwrap_or(0), exchange))
        }
        RecordKind::A => match spec.address {
            Some(IpAddr::V4(a)) => RData::A(A(a)),
            _ => return Err(missing("address (IPv4)")),
        },
        RecordKind::AAAA => match spec.address {
            Some(IpAddr::V6(a)) => RData::AAAA(AAAA(a)),
            _ => return Err(missing("address (IPv6)")),
        },
        RecordKind::TXT => RData::TXT(TXT::new(split_txt(spec.text.as_deref().ok_or_else(|| missing("text"))?))),
        RecordKind::CNAME => RData::CNAME(CNAME(name(spec.target.as_deref().ok_or_else(|| missing("target"))?)?)),
    };
    Ok(Record::from_rdata(owner, ttl, rdata))
}

/// A TXT record holds strings of at most 255 bytes each (RFC 1035 §3.3);
/// long texts such as DKIM keys are split, and readers join them again.
fn split_txt(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > 255 {
        let mut cut = 255;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        parts.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    parts.push(rest.to_string());
    parts
}

impl Zones {
    /// Builds the zones from the scenario's domains. `hosts` gives each
    /// host's address: it becomes the host's A record unless the scenario
    /// publishes one itself.
    pub fn new(domains: &[(String, Vec<RecordSpec>)], hosts: &[(String, IpAddr)]) -> Result<Zones, ZoneError> {
        let mut zones = BTreeMap::new();
        for (domain, specs) in domains {
            let mut records = Vec::new();
            for spec in specs {
                records.push(to_record(domain, spec)?);
            }
            zones.insert(domain.clone(), Zone { origin: name(domain)?, serial: 1, records });
        }
        for (host, address) in hosts {
            let owner = name(host)?;
            let Some(zone) = zones.values_mut().filter(|z| z.origin.zone_of(&owner)).max_by_key(|z| z.origin.num_labels()) else {
                continue;
            };
            let has_address = zone.records.iter().any(|r| r.name == owner && matches!(r.record_type(), RecordType::A | RecordType::AAAA));
            if !has_address {
                let rdata = match address {
                    IpAddr::V4(a) => RData::A(A(*a)),
                    IpAddr::V6(a) => RData::AAAA(AAAA(*a)),
                };
                zone.records.push(Record::from_rdata(owner, DEFAULT_TTL, rdata));
            }
        }
        Ok(Zones { zones: RwLock::new(zones) })
    }

    /// Replaces the records of `domain` that the scenario manages (host A
    /// records the world added are kept unless replaced). Returns the new
    /// records in zone-file form.
    pub fn replace(&self, domain: &str, specs: &[RecordSpec], hosts: &[(String, IpAddr)]) -> Result<Vec<String>, ZoneError> {
        let mut records = Vec::new();
        for spec in specs {
            records.push(to_record(domain, spec)?);
        }
        let origin = name(domain)?;
        for (host, address) in hosts {
            let owner = name(host)?;
            let has_address = records.iter().any(|r| r.name == owner && matches!(r.record_type(), RecordType::A | RecordType::AAAA));
            if origin.zone_of(&owner) && !has_address {
                let rdata = match address {
                    IpAddr::V4(a) => RData::A(A(*a)),
                    IpAddr::V6(a) => RData::AAAA(AAAA(*a)),
                };
                records.push(Record::from_rdata(owner, DEFAULT_TTL, rdata));
            }
        }
        let mut zones = self.zones.write().unwrap_or_else(|e| e.into_inner());
        let zone = zones.entry(domain.to_string()).or_insert(Zone { origin, serial: 0, records: Vec::new() });
        zone.records = records;
        zone.serial += 1;
        Ok(zone.records.iter().map(ToString::to_string).collect())
    }

    /// Every zone's records in zone-file form, for the banner and the page.
    pub fn listing(&self) -> Vec<(String, Vec<String>)> {
        let zones = self.zones.read().unwrap_or_else(|e| e.into_inner());
        zones.iter().map(|(d, z)| (d.clone(), std::iter::once(z.soa()).chain(z.records.iter().cloned()).map(|r| r.to_string()).collect())).collect()
    }

    /// Answers one question, as an authoritative server.
    pub fn answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        let zones = self.zones.read().unwrap_or_else(|e| e.into_inner());
        let qname = qname.to_lowercase();
        let Some(zone) = zones.values().filter(|z| z.origin.zone_of(&qname)).max_by_key(|z| z.origin.num_labels()) else {
            return root_nxdomain();
        };
        let mut answer = Answer::default();
        let mut name = qname.clone();
        let mut current = zone;
        // Follow at most a few CNAMEs so a loop in a scenario cannot hang us.
        for _ in 0..8 {
            let at_name: Vec<&Record> = current.records.iter().filter(|r| r.name == name).collect();
            if qtype == RecordType::SOA && name == current.origin {
                answer.answers.push(current.soa());
                return answer;
            }
            let matching: Vec<&Record> = at_name.iter().copied().filter(|r| qtype == RecordType::ANY || r.record_type() == qtype).collect();
            if !matching.is_empty() {
                answer.answers.extend(matching.iter().map(|r| (*r).clone()));
                if qtype == RecordType::MX {
                    for mx in &matching {
                        if let RData::MX(mx) = &mx.data {
                            answer.additionals.extend(current_addresses(&zones, &mx.exchange));
                        }
                    }
                }
                return answer;
            }
            let cname = at_name.iter().find_map(|r| match &r.data {
                RData::CNAME(target) => Some(((*r).clone(), target.0.clone())),
                _ => None,
            });
            if let Some((record, target)) = cname {
                answer.answers.push(record);
                match zones.values().filter(|z| z.origin.zone_of(&target)).max_by_key(|z| z.origin.num_labels()) {
                    Some(next) => {
                        current = next;
                        name = target.to_lowercase();
                        continue;
                    }
                    // The target is outside our zones: the resolver asks again.
                    None => return answer,
                }
            }
            // No records of this type. Does the name exist at all (itself or
            // as the parent of other names, an "empty non-terminal")?
            let exists = name == current.origin || current.records.iter().any(|r| r.name == name || name.zone_of(&r.name));
            if !exists && answer.answers.is_empty() {
                answer.rcode = ResponseCode::NXDomain;
            }
            answer.authority.push(current.soa());
            return answer;
        }
        answer
    }
}

fn current_addresses(zones: &BTreeMap<String, Zone>, host: &Name) -> Vec<Record> {
    zones.values().flat_map(|z| z.records.iter()).filter(|r| &r.name == host && matches!(r.record_type(), RecordType::A | RecordType::AAAA)).cloned().collect()
}

/// The empty root zone's "no such name".
fn root_nxdomain() -> Answer {
    let root = Zone { origin: Name::root(), serial: 1, records: Vec::new() };
    Answer { rcode: ResponseCode::NXDomain, authority: vec![root.soa()], ..Answer::default() }
}

impl Zones {
    /// Adds records to `domain`'s zone and keeps the ones it has (the world
    /// publishes the DKIM public keys it made this way: `auth::DomainKeys`).
    /// A later [`Zones::replace`] of that domain drops them again.
    pub fn add(&self, domain: &str, specs: &[RecordSpec]) -> Result<(), ZoneError> {
        let records = specs.iter().map(|spec| to_record(domain, spec)).collect::<Result<Vec<_>, _>>()?;
        let origin = name(domain)?;
        let mut zones = self.zones.write().unwrap_or_else(|e| e.into_inner());
        let zone = zones.entry(domain.to_string()).or_insert(Zone { origin, serial: 0, records: Vec::new() });
        zone.records.extend(records);
        zone.serial += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::RecordKind;

    fn spec(kind: RecordKind) -> RecordSpec {
        RecordSpec { kind, name: None, preference: None, exchange: None, address: None, text: None, target: None, ttl: None }
    }

    fn zones() -> Zones {
        let mx = |pref, ex: &str| RecordSpec { preference: Some(pref), exchange: Some(ex.into()), ..spec(RecordKind::MX) };
        let domains = vec![
            (
                "example.org".to_string(),
                vec![
                    mx(20, "mx2.example.org"),
                    mx(10, "mx1.example.org"),
                    RecordSpec { text: Some("v=spf1 mx -all".into()), ..spec(RecordKind::TXT) },
                    RecordSpec { name: Some("www".into()), target: Some("mx1.example.org".into()), ..spec(RecordKind::CNAME) },
                    RecordSpec { name: Some("a.b".into()), text: Some("deep".into()), ..spec(RecordKind::TXT) },
                ],
            ),
            ("nomail.test".to_string(), vec![mx(0, ".")]),
        ];
        let hosts = vec![("mx1.example.org".to_string(), "127.77.0.3".parse().unwrap()), ("mx2.example.org".to_string(), "127.77.0.4".parse().unwrap())];
        Zones::new(&domains, &hosts).unwrap()
    }

    fn ask(zones: &Zones, q: &str, t: RecordType) -> Answer {
        zones.answer(&Name::from_ascii(q).unwrap(), t)
    }

    #[test]
    fn answers_like_an_authoritative_server() {
        let z = zones();
        let mx = ask(&z, "example.org.", RecordType::MX);
        assert_eq!(mx.rcode, ResponseCode::NoError);
        assert_eq!(mx.answers.len(), 2);
        assert_eq!(mx.additionals.len(), 2, "exchange addresses ride along");

        let a = ask(&z, "MX1.Example.ORG.", RecordType::A);
        assert_eq!(a.answers[0].to_string(), "mx1.example.org. 300 IN A 127.77.0.3");

        let nodata = ask(&z, "mx1.example.org.", RecordType::MX);
        assert_eq!((nodata.rcode, nodata.answers.len(), nodata.authority.len()), (ResponseCode::NoError, 0, 1));

        let nx = ask(&z, "nobody.example.org.", RecordType::A);
        assert_eq!(nx.rcode, ResponseCode::NXDomain);

        let empty_non_terminal = ask(&z, "b.example.org.", RecordType::TXT);
        assert_eq!(empty_non_terminal.rcode, ResponseCode::NoError);

        let outside = ask(&z, "google.com.", RecordType::A);
        assert_eq!(outside.rcode, ResponseCode::NXDomain);

        let cname = ask(&z, "www.example.org.", RecordType::A);
        assert_eq!(cname.answers.len(), 2, "the CNAME and its target's A");

        let null = ask(&z, "nomail.test.", RecordType::MX);
        assert!(matches!(&null.answers[0].data, RData::MX(mx) if mx.exchange.is_root()));
    }

    #[test]
    fn replacing_records_bumps_the_serial_and_keeps_host_addresses() {
        let z = zones();
        let hosts = vec![("mx1.example.org".to_string(), "127.77.0.3".parse().unwrap())];
        let new = RecordSpec { preference: Some(5), exchange: Some("mx1.example.org".into()), ..spec(RecordKind::MX) };
        z.replace("example.org", &[new], &hosts).unwrap();
        let mx = ask(&z, "example.org.", RecordType::MX);
        assert_eq!(mx.answers.len(), 1);
        assert_eq!(ask(&z, "mx1.example.org.", RecordType::A).answers.len(), 1);
        let soa = ask(&z, "example.org.", RecordType::SOA);
        assert!(matches!(&soa.answers[0].data, RData::SOA(soa) if soa.serial == 2));
    }
}
