//! Answers kept in wire format, one per question, so a question asked
//! again costs a hash look-up and a copy instead of decoding, answering
//! and encoding it again.
//!
//! Real authoritative servers do the same in spirit: NSD compiles its
//! zones and answers from prepared data. The cache is safe because an
//! answer depends only on the question and the zones: the same question
//! bytes (name, type, class, RFC 1035 §4.1.2) under the same zone
//! generation ([`Zones::generation`](super::Zones::generation)) get the
//! same answer. Only the parts of the header that come from the question
//! differ between two askers (RFC 1035 §4.1.1): the ID, and the RD and CD
//! flags a server copies back. [`Cached::reply_into`] patches those.
//!
//! Only plain questions are cached: a standard query with exactly one
//! question, no other records but an EDNS version 0 OPT record, a name
//! without compression pointers, class IN. Anything else takes the full path
//! through hickory (`server.rs`), which also answers junk with FORMERR.
//! The key is the question's bytes as sent, case included, so a traced
//! name is spelled as the asker spelled it.
//!
//! The cache is filled ahead: when the zones are new or change, the
//! answer to every (name, type) that has records is prepared at once, its
//! name in lower case (as resolvers and load generators ask), so even the
//! first question about a name in a 10,000-zone world is a look-up. Other
//! questions (NXDOMAIN, NODATA, mixed case) are kept the first time the
//! full path answers them.
//!
//! The cache is bounded: a client asking random names cannot grow it past
//! [`MAX_ENTRIES`]; when full it starts again empty.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::Zones;
use super::server::Exchange;

/// At most this many questions are cached (a few hundred bytes each).
pub const MAX_ENTRIES: usize = 100_000;

/// A plain question, found without decoding the whole message.
#[derive(Debug, PartialEq, Eq)]
pub struct PlainQuestion<'a> {
    /// The question section: name, type and class as sent.
    pub key: &'a [u8],
}

impl<'a> PlainQuestion<'a> {
    /// The question of `packet` if it is plain (see the module docs).
    pub fn parse(packet: &'a [u8]) -> Option<PlainQuestion<'a>> {
        let header = packet.get(..12)?;
        // QR = 0 (a query), OPCODE = 0 (QUERY): RFC 1035 §4.1.1.
        if header[2] & 0xF8 != 0 {
            return None;
        }
        // One question, no answer or authority records, and at most one
        // additional record: EDNS's OPT (checked below).
        if header[4..10] != [0, 1, 0, 0, 0, 0] || header[10] != 0 || header[11] > 1 {
            return None;
        }
        let mut at = 12;
        loop {
            let len = *packet.get(at)? as usize;
            at += 1;
            if len == 0 {
                break;
            }
            // 0xC0.. is a compression pointer, 0x40.. reserved: not plain.
            if len > 63 {
                return None;
            }
            at += len;
            if at - 12 > 255 {
                return None;
            }
        }
        let class = packet.get(at + 2..at + 4)?;
        if class != [0, 1] {
            return None;
        }
        let end = at + 4;
        let rest = &packet[end..];
        let plain = match header[11] {
            0 => rest.is_empty(),
            _ => is_edns0_opt(rest),
        };
        plain.then(|| PlainQuestion { key: &packet[12..end] })
    }
}

/// Whether `rest` is exactly one EDNS version 0 OPT record (RFC 6891
/// §6.1.2): root name, type 41, the sender's UDP size as class, extended
/// RCODE, version 0, flags, and its options. Our answers carry no OPT
/// record and stay within 512 bytes either way (the full path does the
/// same: `server.rs` builds answers without EDNS), so such a question gets
/// the same answer as one without it. Other versions take the full path.
fn is_edns0_opt(rest: &[u8]) -> bool {
    if rest.len() < 11 || rest[0] != 0 || rest[1..3] != [0, 41] || rest[6] != 0 {
        return false;
    }
    let options = u16::from_be_bytes([rest[9], rest[10]]) as usize;
    rest.len() == 11 + options
}

/// One cached answer.
pub struct Cached {
    /// The whole response as first sent (its ID and RD/CD flags are
    /// replaced for each asker).
    wire: Box<[u8]>,
    /// The trace's words for the question and answer, for outside askers.
    pub exchange: Exchange,
    /// The last outside asker and the question's summary in their name:
    /// a load of questions from one client does not format it every time.
    pub asked_by: Option<(IpAddr, String, String)>,
}

impl Cached {
    /// Writes the answer to `question` (a plain question) into `out`.
    pub fn reply_into(&self, question: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.wire);
        out[..2].copy_from_slice(&question[..2]);
        // RD (bit 0 of byte 2) and CD (bit 4 of byte 3) are copied from
        // the question, as hickory's `Metadata::response_from_request` does.
        out[2] = (out[2] & !0x01) | (question[2] & 0x01);
        out[3] = (out[3] & !0x10) | (question[3] & 0x10);
    }
}

/// The answers of one zone generation, by question.
pub struct AnswerCache {
    generation: u64,
    entries: HashMap<Box<[u8]>, Cached>,
}

impl Default for AnswerCache {
    /// An empty cache of no generation: the first [`AnswerCache::refresh`]
    /// fills it.
    fn default() -> Self {
        AnswerCache { generation: u64::MAX, entries: HashMap::new() }
    }
}

impl AnswerCache {
    /// Makes the cache hold the answers of the zones as they are now:
    /// if they changed since it was filled, empties it and prepares the
    /// answer to every question with records.
    pub fn refresh(&mut self, zones: &Zones) {
        let generation = zones.generation();
        if generation == self.generation {
            return;
        }
        self.entries.clear();
        self.generation = generation;
        for (name, rtype) in zones.questions(MAX_ENTRIES) {
            let name = name.to_lowercase();
            let answer = zones.answer(&name, rtype);
            let mut response = Message::new(0, MessageType::Response, OpCode::Query);
            response.metadata.authoritative = true;
            response.metadata.response_code = answer.rcode;
            response.add_query(Query::query(name.clone(), rtype));
            response.add_answers(answer.answers.iter().cloned());
            response.add_authorities(answer.authority.iter().cloned());
            response.add_additionals(answer.additionals.iter().cloned());
            let (Ok(wire), Some(key)) = (response.to_vec(), question_bytes(&name, rtype)) else { continue };
            // Over 512 bytes it would need TC (RFC 1035 §4.2.1): full path.
            if wire.len() <= 512 {
                let exchange = Exchange::new(name.to_string(), rtype, &answer);
                self.entries.insert(key.into(), Cached { wire: wire.into(), exchange, asked_by: None });
            }
        }
    }

    /// The answer to the question `key`, if kept.
    pub fn get(&mut self, key: &[u8]) -> Option<&mut Cached> {
        self.entries.get_mut(key)
    }

    /// Keeps `wire`, the full path's answer to the plain question `key`.
    /// (Should the zones have changed meanwhile, the next
    /// [`AnswerCache::refresh`] drops it.) Answers that were cut short (TC)
    /// are not kept: they are rare, and the full path decides them.
    pub fn insert(&mut self, key: &[u8], wire: &[u8], exchange: Exchange) {
        if wire.len() < 12 || wire[2] & 0x02 != 0 {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(key.into(), Cached { wire: wire.into(), exchange, asked_by: None });
    }

    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The question section for (name, type, class IN), as a client sends it.
fn question_bytes(name: &Name, rtype: RecordType) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    Query::query(name.clone(), rtype).emit(&mut BinEncoder::new(&mut bytes)).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{RecordKind, RecordSpec};

    fn query(flags: [u8; 2], counts: [u8; 8], rest: &[u8]) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, flags[0], flags[1]];
        q.extend_from_slice(&counts);
        q.extend_from_slice(rest);
        q
    }

    const ONE: [u8; 8] = [0, 1, 0, 0, 0, 0, 0, 0];
    const MX_EXAMPLE_ORG: &[u8] = b"\x07example\x03org\x00\x00\x0f\x00\x01";

    #[test]
    fn only_plain_questions_are_plain() {
        let plain = query([0x01, 0x00], ONE, MX_EXAMPLE_ORG);
        assert_eq!(PlainQuestion::parse(&plain), Some(PlainQuestion { key: MX_EXAMPLE_ORG }));
        // dig's usual question: EDNS 0, 1232 bytes, DO set, a cookie option.
        let edns = [MX_EXAMPLE_ORG, b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x0c\x00\x0a\x00\x08\x01\x02\x03\x04\x05\x06\x07\x08"].concat();
        assert_eq!(PlainQuestion::parse(&query([0x01, 0x20], [0, 1, 0, 0, 0, 0, 0, 1], &edns)), Some(PlainQuestion { key: MX_EXAMPLE_ORG }));
        let not_plain = [
            ("a response", query([0x81, 0x00], ONE, MX_EXAMPLE_ORG)),
            ("opcode NOTIFY", query([0x20, 0x00], ONE, MX_EXAMPLE_ORG)),
            ("two questions", query([0, 0], [0, 2, 0, 0, 0, 0, 0, 0], MX_EXAMPLE_ORG)),
            ("an additional record promised, none there", query([0, 0], [0, 1, 0, 0, 0, 0, 0, 1], MX_EXAMPLE_ORG)),
            (
                "an A record as additional",
                query([0, 0], [0, 1, 0, 0, 0, 0, 0, 1], &[MX_EXAMPLE_ORG, b"\x00\x00\x01\x00\x01\0\0\0\0\x00\x04\x7f\0\0\x01"].concat()),
            ),
            ("EDNS version 1", query([0, 0], [0, 1, 0, 0, 0, 0, 0, 1], &[MX_EXAMPLE_ORG, b"\x00\x00\x29\x04\xd0\x00\x01\x00\x00\x00\x00"].concat())),
            (
                "an OPT record cut short",
                query([0, 0], [0, 1, 0, 0, 0, 0, 0, 1], &[MX_EXAMPLE_ORG, b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x04\x00"].concat()),
            ),
            ("a compression pointer", query([0, 0], ONE, b"\xc0\x0c\x00\x0f\x00\x01")),
            ("class CH", query([0, 0], ONE, b"\x07example\x03org\x00\x00\x0f\x00\x03")),
            ("cut short", query([0, 0], ONE, b"\x07example\x03org\x00\x00\x0f")),
            ("a label past the end", query([0, 0], ONE, b"\x3fexample")),
            ("trailing bytes", query([0, 0], ONE, b"\x07example\x03org\x00\x00\x0f\x00\x01\x00")),
            ("a header only", query([0, 0], ONE, b"")),
        ];
        for (what, packet) in not_plain {
            assert_eq!(PlainQuestion::parse(&packet), None, "{what}");
        }
        let long_name: Vec<u8> = std::iter::repeat_n(&b"\x3f"[..], 5).flat_map(|len| [len, &[b'a'; 63][..]].concat()).chain([0, 0, 1, 0, 1]).collect();
        assert_eq!(PlainQuestion::parse(&query([0, 0], ONE, &long_name)), None, "a name over 255 octets");
    }

    fn mx(preference: u16, exchange: &str) -> RecordSpec {
        RecordSpec {
            kind: RecordKind::MX,
            name: None,
            preference: Some(preference),
            exchange: Some(exchange.into()),
            address: None,
            text: None,
            target: None,
            ttl: None,
        }
    }

    fn zones() -> Zones {
        let hosts = [("mx1.example.org".to_string(), "127.77.0.3".parse().unwrap()), ("mx2.example.org".to_string(), "127.77.0.4".parse().unwrap())];
        Zones::new(&[("example.org".to_string(), vec![mx(10, "mx1.example.org")])], &hosts).unwrap()
    }

    fn records(wire: &[u8]) -> (Vec<String>, Vec<String>) {
        let message = Message::from_vec(wire).expect("the cached answer decodes");
        let text = |records: &[hickory_proto::rr::Record]| records.iter().map(ToString::to_string).collect();
        (text(&message.answers), text(&message.additionals))
    }

    #[test]
    fn answers_are_prepared_ahead_take_the_askers_id_and_flags_and_follow_zone_changes() {
        let zones = zones();
        let mut cache = AnswerCache::default();
        cache.refresh(&zones);
        assert_eq!(cache.len(), 3, "example.org MX, mx1 A, mx2 A");
        let question = query([0x00, 0x10], ONE, MX_EXAMPLE_ORG); // no RD, CD set
        let mut out = Vec::new();
        cache.get(MX_EXAMPLE_ORG).expect("prepared ahead").reply_into(&question, &mut out);
        assert_eq!(&out[..4], &[0x12, 0x34, 0x84, 0x10], "the asker's ID; QR, AA; the asker's RD and CD");
        assert_eq!(records(&out), (vec!["example.org. 300 IN MX 10 mx1.example.org.".into()], vec!["mx1.example.org. 300 IN A 127.77.0.3".into()]));
        zones.replace("example.org", &[mx(5, "mx2.example.org")], &[("mx2.example.org".to_string(), "127.77.0.4".parse().unwrap())]).unwrap();
        cache.refresh(&zones);
        cache.get(MX_EXAMPLE_ORG).expect("prepared again").reply_into(&question, &mut out);
        assert_eq!(records(&out).0, ["example.org. 300 IN MX 5 mx2.example.org."], "a zone change is seen");
        let truncated = query([0x87, 0x00], ONE, b"\x03www\x07example\x03org\x00\x00\x01\x00\x01"); // TC set
        cache.insert(&truncated[12..], &truncated, Exchange::for_test());
        assert!(cache.get(&truncated[12..]).is_none(), "a truncated answer is not kept");
    }
}
