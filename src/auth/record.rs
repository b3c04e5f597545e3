//! Which DNS questions the checks asked, and what the fake DNS answered.
//!
//! mail-auth asks DNS through its own hickory resolver (pointed at the
//! world's DNS), so our traced [`crate::dns::Lookup`] never sees those
//! questions. mail-auth does, however, consult a cache before each question
//! and fill it after each answer. [`Recorder`] plays that cache: it never
//! answers from memory (so every lookup really goes to the fake DNS, as the
//! class should see), and it writes down each question together with the
//! answer the zones give for it.
//!
//! The cache is handed a name only as a generic borrowed key, so the
//! recorder recognises it among the names it expects: every owner name of
//! the zones plus the names the checks derive from the message (the DMARC
//! tree walk, DKIM key names). A name it cannot place (one outside the
//! world's zones) is written down as such.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use hickory_proto::rr::{Name, RecordType};
use mail_auth::{MX, RecordSet, ResolverCache, Txt};
use serde::Serialize;

use crate::dns::Zones;

/// The check a lookup belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    Spf,
    Dkim,
    Dmarc,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Spf => "SPF",
            Check::Dkim => "DKIM",
            Check::Dmarc => "DMARC",
        }
    }
}

/// One question a check asked, with the answer (records in zone-file form).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DnsUse {
    pub check: Check,
    /// The name asked about, without the final dot ("?" when the name lay
    /// outside the zones and could not be recognised).
    pub name: String,
    /// "TXT", "MX", "A", "AAAA" or "PTR".
    pub rtype: String,
    /// "NOERROR" or "NXDOMAIN".
    pub rcode: String,
    pub records: Vec<String>,
    /// The answer in words, as DNS events word it.
    pub summary: String,
}

pub(crate) struct Recorder<'a> {
    zones: &'a Zones,
    names: HashSet<Box<str>>,
    client: IpAddr,
    state: Mutex<(Check, Vec<DnsUse>)>,
}

impl<'a> Recorder<'a> {
    /// `extra` names are ones the checks may ask about that the zones do
    /// not hold (parents for the DMARC walk, a missing key's name).
    pub(crate) fn new(zones: &'a Zones, extra: impl IntoIterator<Item = String>, client: IpAddr) -> Self {
        let mut names: HashSet<Box<str>> = HashSet::new();
        for (_, records) in zones.listing() {
            for record in records {
                if let Some(owner) = record.split_whitespace().next() {
                    names.insert(fqdn(owner).into());
                }
            }
        }
        names.extend(extra.into_iter().map(|n| fqdn(&n).into()));
        Recorder { zones, names, client, state: Mutex::new((Check::Spf, Vec::new())) }
    }

    pub(crate) fn set_check(&self, check: Check) {
        self.lock().0 = check;
    }

    pub(crate) fn take(&self) -> Vec<DnsUse> {
        std::mem::take(&mut self.lock().1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Check, Vec<DnsUse>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note<Q: Hash + Eq + ?Sized>(&self, name: &Q, rtype: RecordType)
    where
        Box<str>: Borrow<Q>,
    {
        let known = self.names.get(name).map(|n| n.to_string());
        let entry = match known.as_deref().and_then(|n| Name::from_ascii(n).ok()) {
            Some(qname) => self.answer(&qname, rtype),
            None => DnsUse {
                check: Check::Spf,
                name: "?".into(),
                rtype: rtype.to_string(),
                rcode: "NXDOMAIN".into(),
                records: Vec::new(),
                summary: "DNS answers: a name outside the world's zones does not exist (NXDOMAIN)".into(),
            },
        };
        let mut state = self.lock();
        let check = state.0;
        state.1.push(DnsUse { check, ..entry });
    }

    fn answer(&self, qname: &Name, rtype: RecordType) -> DnsUse {
        let answer = self.zones.answer(qname, rtype);
        let name = qname.to_string();
        DnsUse {
            check: Check::Spf,
            name: name.trim_end_matches('.').to_string(),
            rtype: rtype.to_string(),
            rcode: answer.rcode.to_string(),
            records: answer.answers.iter().map(ToString::to_string).collect(),
            summary: crate::dns::describe_answer(&name, rtype, answer.rcode, &answer.answers),
        }
    }
}

fn fqdn(name: &str) -> String {
    let mut name = name.to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name
}

macro_rules! recording_cache {
    ($value:ty, $rtype:expr) => {
        impl ResolverCache<Box<str>, $value> for Recorder<'_> {
            fn get<Q>(&self, name: &Q) -> Option<$value>
            where
                Box<str>: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.note(name, $rtype);
                None // never from memory: every lookup goes to the fake DNS
            }
            fn remove<Q>(&self, _: &Q) -> Option<$value>
            where
                Box<str>: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                None
            }
            fn insert(&self, _: Box<str>, _: $value, _: std::time::Instant) {}
        }
    };
}

recording_cache!(Txt, RecordType::TXT);
recording_cache!(RecordSet<MX>, RecordType::MX);
recording_cache!(RecordSet<Ipv4Addr>, RecordType::A);
recording_cache!(RecordSet<Ipv6Addr>, RecordType::AAAA);

impl ResolverCache<IpAddr, RecordSet<Box<str>>> for Recorder<'_> {
    fn get<Q>(&self, ip: &Q) -> Option<RecordSet<Box<str>>>
    where
        IpAddr: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // The only address SPF's `ptr` asks about is the client's.
        if self.client.borrow() == ip {
            let reverse = match self.client {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
                }
                IpAddr::V6(_) => "ip6.arpa.".to_string(),
            };
            if let Ok(qname) = Name::from_ascii(&reverse) {
                let entry = self.answer(&qname, RecordType::PTR);
                let mut state = self.lock();
                let check = state.0;
                state.1.push(DnsUse { check, ..entry });
            }
        }
        None
    }
    fn remove<Q>(&self, _: &Q) -> Option<RecordSet<Box<str>>>
    where
        IpAddr: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: IpAddr, _: RecordSet<Box<str>>, _: std::time::Instant) {}
}
