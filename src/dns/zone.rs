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
//! MX records are answered lowest preference first, records of equal
//! preference in the order the scenario lists them. DNS itself promises no
//! order (RFC 1035 treats a record set as a set, and a mail server must sort
//! by preference itself, RFC 5321 §5.1), but a class reading `dig MX` sees
//! the order it will be tried in, the same every time.
//!
//! Negative answers carry the zone's SOA record, which tells resolvers how
//! long they may remember the "no". Zones are edited live (a scenario step);
//! each edit bumps the zone's serial, as a real zone change would.
//!
//! ## Answering from an index
//! A question must not cost more as a world grows: a lesson with 10,000
//! domains answers as fast as one with two. So the records are not searched
//! when a question comes; they are sorted into hash maps when a zone is
//! built or changed (rare: a scenario step), which is what real servers do
//! too (NSD compiles its zones into a database before it serves them):
//! - `deepest`: every name that exists → the deepest zone containing it,
//!   so the usual question (about a name that exists) finds its zone with
//!   one look-up;
//! - `by_origin`: zone apex → zone, for the other names. Their zone is
//!   found by trying the name and then each parent (`a.b.example.org`,
//!   `b.example.org`, `example.org`, `org`, the root): as many look-ups as
//!   the name has labels, the longest match first;
//! - per zone, `nodes`: owner name → its record sets, one per type, the MX
//!   set already sorted; and `existing`: every owner name and every name
//!   between it and the apex, so an "empty non-terminal" (`b.example.org`
//!   when only `a.b.example.org` has records) is NODATA, not NXDOMAIN;
//! - `addresses`: host name → its A and AAAA records from every zone, for
//!   the additional section of MX answers.
//!
//! hickory's `Name` hashes and compares ignoring ASCII case (RFC 4343), so
//! `MX1.Example.ORG` finds the records of `mx1.example.org` without being
//! lowercased first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::scenario::{RecordKind, RecordSpec, validate::owner_name};

/// Default TTL of scenario records, in seconds.
pub const DEFAULT_TTL: u32 = 300;

/// How many CNAMEs one answer follows, so a loop in a scenario cannot hang us.
const MAX_CNAME_CHAIN: usize = 8;

/// What the server says to one question.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    /// The SOA record on negative answers.
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
}

/// The records of one type at one name (an "RRset", RFC 2181 §5).
#[derive(Clone, Debug)]
struct RecordSet {
    rtype: RecordType,
    records: Vec<Record>,
}

#[derive(Clone, Debug)]
struct Zone {
    origin: Name,
    serial: u32,
    /// The records as the scenario lists them (for the banner and page).
    records: Vec<Record>,
    /// Built from `records` by [`Zone::index`]; see the module docs.
    soa: Record,
    nodes: HashMap<Name, Vec<RecordSet>>,
    existing: HashSet<Name>,
}

impl Zone {
    fn new(origin: Name, serial: u32, records: Vec<Record>) -> Zone {
        let mut zone = Zone { soa: soa(&origin, serial), origin, serial, records, nodes: HashMap::new(), existing: HashSet::new() };
        zone.index();
        zone
    }

    /// Sorts the records into record sets by owner name and type, MX sets
    /// by preference (a stable sort: equal preferences keep the scenario's
    /// order), and notes every name that exists.
    fn index(&mut self) {
        self.soa = soa(&self.origin, self.serial);
        self.nodes.clear();
        self.existing.clear();
        self.existing.insert(self.origin.clone());
        for record in &self.records {
            let sets = self.nodes.entry(record.name.clone()).or_default();
            match sets.iter_mut().find(|set| set.rtype == record.record_type()) {
                Some(set) => set.records.push(record.clone()),
                None => sets.push(RecordSet { rtype: record.record_type(), records: vec![record.clone()] }),
            }
            // The owner and each name between it and the apex exist.
            let mut name = record.name.clone();
            while name.num_labels() > self.origin.num_labels() && self.existing.insert(name.clone()) {
                name = name.base_name();
            }
        }
        for set in self.nodes.values_mut().flatten().filter(|set| set.rtype == RecordType::MX) {
            set.records.sort_by_key(|r| match &r.data {
                RData::MX(mx) => mx.preference,
                _ => u16::MAX,
            });
        }
    }
}

/// The SOA record of a zone: refresh, retry and expire are for secondary
/// servers (we have none); the last number is the negative-caching TTL
/// (RFC 2308).
fn soa(origin: &Name, serial: u32) -> Record {
    let mname = Name::from_ascii("dns.mailflow.").expect("valid name");
    let rname = Name::from_ascii("hostmaster").expect("valid").append_domain(origin).unwrap_or_else(|_| origin.clone());
    Record::from_rdata(origin.clone(), DEFAULT_TTL, RData::SOA(SOA::new(mname, rname, serial, 3600, 600, 86400, 60)))
}

/// The zones and their indexes, behind one lock.
#[derive(Debug, Default)]
struct Catalog {
    /// The zones, in no particular order (a zone is never removed).
    zones: Vec<Zone>,
    /// Domain as the scenario spells it → index in `zones`; sorted, for
    /// the listing.
    by_domain: BTreeMap<String, usize>,
    /// Zone apex → index in `zones`: one hash look-up per label of a
    /// question, however many zones there are.
    by_origin: HashMap<Name, usize>,
    /// Host name → its A and AAAA records, from every zone.
    addresses: HashMap<Name, Vec<Record>>,
    /// Every name that exists in some zone → the deepest zone containing
    /// it: a question about an existing name (the usual case) finds its
    /// zone with one look-up instead of one per label.
    deepest: HashMap<Name, usize>,
}

impl Catalog {
    /// The deepest zone containing `name`: the name itself, then each
    /// parent, so the longest match wins.
    fn zone_of(&self, name: &Name) -> Option<&Zone> {
        match self.deepest.get(name) {
            Some(&i) => self.zones.get(i),
            None => self.walk_to_zone(name).and_then(|i| self.zones.get(i)),
        }
    }

    /// The deepest zone containing `name`, by trying the name and each
    /// parent in turn.
    fn walk_to_zone(&self, name: &Name) -> Option<usize> {
        (0..=name.num_labels()).rev().find_map(|labels| self.by_origin.get(&name.trim_to(labels as usize)).copied())
    }

    /// Adds or replaces the zone of `domain`.
    fn put(&mut self, domain: &str, zone: Zone) {
        match self.by_domain.get(domain) {
            Some(&i) => self.zones[i] = zone,
            None => {
                self.by_domain.insert(domain.to_string(), self.zones.len());
                self.by_origin.insert(zone.origin.clone(), self.zones.len());
                self.zones.push(zone);
            }
        }
    }

    /// Rebuilds the indexes across zones (after any zone changed).
    fn index_across_zones(&mut self) {
        self.deepest.clear();
        for name in self.zones.iter().flat_map(|z| z.existing.iter()) {
            if !self.deepest.contains_key(name)
                && let Some(i) = self.walk_to_zone(name)
            {
                self.deepest.insert(name.clone(), i);
            }
        }
        self.addresses.clear();
        for record in self.zones.iter().flat_map(|z| z.records.iter()) {
            if matches!(record.record_type(), RecordType::A | RecordType::AAAA) {
                self.addresses.entry(record.name.clone()).or_default().push(record.clone());
            }
        }
    }
}

/// All zones of one world, shared by the DNS server and the steps that
/// change them.
#[derive(Debug)]
pub struct Zones {
    // Readers (every query) vastly outnumber writers (a step); never held
    // across an await.
    catalog: RwLock<Catalog>,
    // Bumped (under the write lock) whenever a zone changes, so answers
    // cached outside (the UDP loop's wire-format cache, `cache.rs`) know
    // when they are stale.
    generation: AtomicU64,
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

/// A host's address as its A or AAAA record.
fn address_record(owner: Name, address: IpAddr) -> Record {
    let rdata = match address {
        IpAddr::V4(a) => RData::A(A(a)),
        IpAddr::V6(a) => RData::AAAA(AAAA(a)),
    };
    Record::from_rdata(owner, DEFAULT_TTL, rdata)
}

fn has_address(records: &[Record], owner: &Name) -> bool {
    records.iter().any(|r| &r.name == owner && matches!(r.record_type(), RecordType::A | RecordType::AAAA))
}

impl Zones {
    /// Builds the zones from the scenario's domains. `hosts` gives each
    /// host's address: it becomes the host's A record unless the scenario
    /// publishes one itself.
    pub fn new(domains: &[(String, Vec<RecordSpec>)], hosts: &[(String, IpAddr)]) -> Result<Zones, ZoneError> {
        let mut records_of: Vec<(String, Name, Vec<Record>)> = Vec::new();
        let mut by_origin = HashMap::new();
        for (domain, specs) in domains {
            let mut records = Vec::new();
            for spec in specs {
                records.push(to_record(domain, spec)?);
            }
            let origin = name(domain)?;
            // A domain listed twice: the later one wins, as before.
            match by_origin.get(&origin) {
                Some(&i) => records_of[i] = (domain.clone(), origin, records),
                None => {
                    by_origin.insert(origin.clone(), records_of.len());
                    records_of.push((domain.clone(), origin, records));
                }
            }
        }
        for (host, address) in hosts {
            let owner = name(host)?;
            // The deepest zone containing the host, found as `zone_of` does.
            let Some(&i) = (0..=owner.num_labels()).rev().find_map(|labels| by_origin.get(&owner.trim_to(labels as usize))) else {
                continue;
            };
            let records = &mut records_of[i].2;
            if !has_address(records, &owner) {
                records.push(address_record(owner, *address));
            }
        }
        let mut catalog = Catalog::default();
        for (domain, origin, records) in records_of {
            catalog.put(&domain, Zone::new(origin, 1, records));
        }
        catalog.index_across_zones();
        Ok(Zones { catalog: RwLock::new(catalog), generation: AtomicU64::new(0) })
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
            if origin.zone_of(&owner) && !has_address(&records, &owner) {
                records.push(address_record(owner, *address));
            }
        }
        let mut catalog = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        let serial = catalog.by_domain.get(domain).map_or(1, |&i| catalog.zones[i].serial + 1);
        let zone = Zone::new(origin, serial, records);
        let listing = zone.records.iter().map(ToString::to_string).collect();
        catalog.put(domain, zone);
        catalog.index_across_zones();
        self.generation.fetch_add(1, Ordering::Release);
        Ok(listing)
    }

    /// A number that changes whenever any zone changes: an answer computed
    /// under one generation is still right while the generation is the same.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every question with records to answer: each owner name of every
    /// zone with each record type it has, at most `limit` of them (the DNS
    /// server prepares their answers ahead, `cache.rs`).
    pub fn questions(&self, limit: usize) -> Vec<(Name, RecordType)> {
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let all = catalog.zones.iter().flat_map(|zone| zone.nodes.iter().flat_map(|(name, sets)| sets.iter().map(move |set| (name.clone(), set.rtype))));
        all.take(limit).collect()
    }

    /// Every zone's records in zone-file form, for the banner and the page.
    pub fn listing(&self) -> Vec<(String, Vec<String>)> {
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        catalog
            .by_domain
            .iter()
            .map(|(d, &i)| {
                let z = &catalog.zones[i];
                (d.clone(), std::iter::once(&z.soa).chain(z.records.iter()).map(|r| r.to_string()).collect())
            })
            .collect()
    }

    /// Answers one question, as an authoritative server. The cost depends
    /// on the name's length and the size of the answer, not on how many
    /// zones or records the world has.
    pub fn answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let Some(mut zone) = catalog.zone_of(qname) else {
            return root_nxdomain();
        };
        let mut answer = Answer::default();
        let mut name = qname.clone();
        for _ in 0..MAX_CNAME_CHAIN {
            if qtype == RecordType::SOA && name == zone.origin {
                answer.answers.push(zone.soa.clone());
                return answer;
            }
            let sets = zone.nodes.get(&name).map(Vec::as_slice).unwrap_or_default();
            let found = match qtype {
                RecordType::ANY => sets.iter().fold(0, |n, set| {
                    answer.answers.extend_from_slice(&set.records);
                    n + set.records.len()
                }),
                _ => match sets.iter().find(|set| set.rtype == qtype) {
                    Some(set) => {
                        answer.answers.extend_from_slice(&set.records);
                        set.records.len()
                    }
                    None => 0,
                },
            };
            if found > 0 {
                if qtype == RecordType::MX {
                    for record in &answer.answers[answer.answers.len() - found..] {
                        if let RData::MX(mx) = &record.data
                            && let Some(addresses) = catalog.addresses.get(&mx.exchange)
                        {
                            answer.additionals.extend_from_slice(addresses);
                        }
                    }
                }
                return answer;
            }
            let cname = sets.iter().find(|set| set.rtype == RecordType::CNAME).and_then(|set| set.records.first()).and_then(|r| match &r.data {
                RData::CNAME(target) => Some((r.clone(), target.0.clone())),
                _ => None,
            });
            if let Some((record, target)) = cname {
                answer.answers.push(record);
                match catalog.zone_of(&target) {
                    Some(next) => {
                        zone = next;
                        name = target;
                        continue;
                    }
                    // The target is outside our zones: the resolver asks again.
                    None => return answer,
                }
            }
            // No records of this type. Does the name exist at all (itself or
            // as the parent of other names, an "empty non-terminal")?
            if !zone.existing.contains(&name) && answer.answers.is_empty() {
                answer.rcode = ResponseCode::NXDomain;
            }
            answer.authority.push(zone.soa.clone());
            return answer;
        }
        answer
    }
}

/// The empty root zone's "no such name".
fn root_nxdomain() -> Answer {
    Answer { rcode: ResponseCode::NXDomain, authority: vec![soa(&Name::root(), 1)], ..Answer::default() }
}

impl Zones {
    /// Adds records to `domain`'s zone and keeps the ones it has (the world
    /// publishes the DKIM public keys it made this way: `auth::DomainKeys`).
    /// A later [`Zones::replace`] of that domain drops them again.
    pub fn add(&self, domain: &str, specs: &[RecordSpec]) -> Result<(), ZoneError> {
        let added = specs.iter().map(|spec| to_record(domain, spec)).collect::<Result<Vec<_>, _>>()?;
        let origin = name(domain)?;
        let mut catalog = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        let (serial, mut records) = match catalog.by_domain.get(domain) {
            Some(&i) => (catalog.zones[i].serial + 1, catalog.zones[i].records.clone()),
            None => (1, Vec::new()),
        };
        records.extend(added);
        catalog.put(domain, Zone::new(origin, serial, records));
        catalog.index_across_zones();
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

impl Zones {
    /// The records of `domain` now, each as its zone-file line and as the
    /// scenario record that publishes it (the page's DNS editor changes
    /// records in that form). `None` if the world serves no such zone.
    pub fn records_of(&self, domain: &str) -> Option<Vec<(String, RecordSpec)>> {
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let zone = &catalog.zones[*catalog.by_domain.get(domain)?];
        let origin = zone.origin.to_string();
        Some(zone.records.iter().filter_map(|r| Some((r.to_string(), to_spec(origin.trim_end_matches('.'), r)?))).collect())
    }
}

/// A DNS record back in the scenario's form ([`to_record`] undone).
fn to_spec(domain: &str, record: &Record) -> Option<RecordSpec> {
    let owner = record.name.to_string();
    let owner = owner.trim_end_matches('.');
    let mut spec = RecordSpec {
        kind: RecordKind::A,
        name: (!owner.eq_ignore_ascii_case(domain)).then(|| owner.to_string()),
        preference: None,
        exchange: None,
        address: None,
        text: None,
        target: None,
        ttl: (record.ttl != DEFAULT_TTL).then_some(record.ttl),
    };
    match &record.data {
        RData::MX(mx) => {
            spec.kind = RecordKind::MX;
            spec.preference = Some(mx.preference);
            spec.exchange = Some(if mx.exchange.is_root() { ".".into() } else { mx.exchange.to_string().trim_end_matches('.').to_string() });
        }
        RData::A(a) => spec.address = Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => {
            spec.kind = RecordKind::AAAA;
            spec.address = Some(IpAddr::V6(a.0));
        }
        RData::TXT(txt) => {
            spec.kind = RecordKind::TXT;
            spec.text = Some(super::txt_text(txt));
        }
        RData::CNAME(c) => {
            spec.kind = RecordKind::CNAME;
            spec.target = Some(c.0.to_string().trim_end_matches('.').to_string());
        }
        _ => return None,
    }
    Some(spec)
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
        let exchanges: Vec<String> = mx.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(exchanges, ["10 mx1.example.org.", "20 mx2.example.org."], "lowest preference first, though the scenario lists 20 first");
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
    fn mx_answers_are_sorted_by_preference_and_stable() {
        let mx = |pref, ex: &str| RecordSpec { preference: Some(pref), exchange: Some(ex.into()), ..spec(RecordKind::MX) };
        let a = |name: &str, last: u8| RecordSpec { name: Some(name.into()), address: Some(IpAddr::from([127, 77, 0, last])), ..spec(RecordKind::A) };
        let records = vec![mx(30, "e.example.org"), mx(10, "b.example.org"), mx(20, "c.example.org"), mx(10, "a.example.org"), mx(20, "d.example.org")];
        let mut specs = records.clone();
        specs.extend(["a", "b", "c", "d", "e"].iter().zip(10..).map(|(n, last)| a(n, last)));
        let z = Zones::new(&[("example.org".to_string(), specs)], &[]).unwrap();
        let expected = ["10 b.example.org.", "10 a.example.org.", "20 c.example.org.", "20 d.example.org.", "30 e.example.org."];
        for _ in 0..3 {
            let answer = ask(&z, "example.org.", RecordType::MX);
            let found: Vec<String> = answer.answers.iter().map(|r| r.data.to_string()).collect();
            assert_eq!(found, expected, "equal preferences keep the scenario's order");
            let additional: Vec<String> = answer.additionals.iter().map(|r| r.name.to_string()).collect();
            assert_eq!(additional, ["b.example.org.", "a.example.org.", "c.example.org.", "d.example.org.", "e.example.org."]);
        }
        // A zone change is sorted the same way.
        z.replace("example.org", &records[..3], &[]).unwrap();
        let found: Vec<String> = ask(&z, "example.org.", RecordType::MX).answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(found, ["10 b.example.org.", "20 c.example.org.", "30 e.example.org."]);
    }

    #[test]
    fn nested_zones_and_many_zones_answer_from_the_index() {
        let txt = |name: &str, text: &str| RecordSpec { name: Some(name.into()), text: Some(text.into()), ..spec(RecordKind::TXT) };
        let mut domains: Vec<(String, Vec<RecordSpec>)> = (0..2000).map(|i| (format!("d{i}.example.org"), vec![txt("@", &format!("zone {i}"))])).collect();
        domains.push(("example.org".to_string(), vec![txt("x.d7", "in the parent zone"), txt("deep.a.b", "deep")]));
        let z = Zones::new(&domains, &[]).unwrap();
        let text = |q: &str| ask(&z, q, RecordType::TXT).answers.iter().map(|r| r.data.to_string()).collect::<Vec<_>>().join(" ");
        assert_eq!(text("D1999.Example.Org."), "zone 1999");
        assert_eq!(text("d0.example.org."), "zone 0");
        // The deepest zone owns the name, as before: d7's zone has no x.d7.
        assert_eq!(ask(&z, "x.d7.example.org.", RecordType::TXT).rcode, ResponseCode::NXDomain);
        // Empty non-terminals exist; names below a leaf do not.
        assert_eq!(ask(&z, "a.b.example.org.", RecordType::TXT).rcode, ResponseCode::NoError);
        assert_eq!(ask(&z, "b.example.org.", RecordType::TXT).rcode, ResponseCode::NoError);
        assert_eq!(ask(&z, "x.deep.a.b.example.org.", RecordType::TXT).rcode, ResponseCode::NXDomain);
        let soa = ask(&z, "nothere.d5.example.org.", RecordType::A);
        assert_eq!((soa.rcode, soa.authority[0].name.to_string()), (ResponseCode::NXDomain, "d5.example.org.".to_string()));
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

    // The editor's view of a zone turns back into the same zone.
    #[test]
    fn records_of_a_zone_round_trip() {
        let zones = zones();
        let listing = zones.records_of("example.org").expect("example.org is served");
        assert!(!listing.is_empty());
        for (line, spec) in &listing {
            assert_eq!(&to_record("example.org", spec).unwrap().to_string(), line, "{spec:?}");
        }
        assert!(zones.records_of("nowhere.test").is_none());
    }
}
