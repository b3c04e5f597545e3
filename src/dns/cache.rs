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
//! question, no other sections (so no EDNS OPT record), a name without
//! compression pointers, class IN. Anything else takes the full path
//! through hickory (`server.rs`), which also answers junk with FORMERR.
//! The key is the question's bytes as sent, case included, so a traced
//! name is spelled as the asker spelled it.
//!
//! The cache is bounded: a client asking random names cannot grow it past
//! [`MAX_ENTRIES`]; when full it starts again empty.

use std::collections::HashMap;
use std::net::IpAddr;

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
        // One question, no answer, authority or additional records.
        if header[4..12] != [0, 1, 0, 0, 0, 0, 0, 0] {
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
        if class != [0, 1] || packet.len() != at + 4 {
            return None;
        }
        Some(PlainQuestion { key: &packet[12..] })
    }
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
#[derive(Default)]
pub struct AnswerCache {
    generation: u64,
    entries: HashMap<Box<[u8]>, Cached>,
}

impl AnswerCache {
    /// The answer to `key`, if it was cached under `generation`. A newer
    /// generation empties the cache.
    pub fn get(&mut self, generation: u64, key: &[u8]) -> Option<&mut Cached> {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
            return None;
        }
        self.entries.get_mut(key)
    }

    /// Keeps `wire`, the answer to the plain question `key` computed under
    /// `generation`. Answers that were cut short (TC) are not kept: they
    /// are rare, and the full path decides them.
    pub fn insert(&mut self, generation: u64, key: &[u8], wire: &[u8], exchange: Exchange) {
        if generation != self.generation || wire.len() < 12 || wire[2] & 0x02 != 0 {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(key.into(), Cached { wire: wire.into(), exchange, asked_by: None });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let not_plain = [
            ("a response", query([0x81, 0x00], ONE, MX_EXAMPLE_ORG)),
            ("opcode NOTIFY", query([0x20, 0x00], ONE, MX_EXAMPLE_ORG)),
            ("two questions", query([0, 0], [0, 2, 0, 0, 0, 0, 0, 0], MX_EXAMPLE_ORG)),
            ("an EDNS OPT record", query([0, 0], [0, 1, 0, 0, 0, 0, 0, 1], MX_EXAMPLE_ORG)),
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

    #[test]
    fn a_cached_answer_takes_the_askers_id_and_flags_and_a_zone_change_drops_it() {
        let exchange = Exchange::for_test();
        let mut cache = AnswerCache::default();
        let mut wire = query([0x85, 0x00], ONE, MX_EXAMPLE_ORG); // QR, AA, RD
        wire[..2].copy_from_slice(&[0xAA, 0xBB]);
        cache.insert(0, MX_EXAMPLE_ORG, &wire, exchange.clone());
        let question = query([0x00, 0x10], ONE, MX_EXAMPLE_ORG); // no RD, CD
        let mut out = Vec::new();
        cache.get(0, MX_EXAMPLE_ORG).expect("cached").reply_into(&question, &mut out);
        assert_eq!(&out[..4], &[0x12, 0x34, 0x84, 0x10]);
        assert_eq!(&out[4..], &wire[4..]);
        assert!(cache.get(1, MX_EXAMPLE_ORG).is_none(), "a new zone generation");
        cache.insert(0, MX_EXAMPLE_ORG, &wire, exchange.clone());
        assert!(cache.is_empty(), "an answer of an old generation is not kept");
        wire[2] |= 0x02;
        cache.insert(1, MX_EXAMPLE_ORG, &wire, exchange);
        assert!(cache.is_empty(), "a truncated answer is not kept");
    }
}
