//! Who else is on a link: the scenario's eavesdroppers and men in the
//! middle, looked up by the two nodes a connection joins.
//!
//! A *link* is the path between two nodes (a device and its mail server,
//! a sending server and an MX). An eavesdropper on it reads what crosses
//! in plaintext (`eavesdrop.rs`); a man in the middle can also change it.
//! The one change modelled is the classic *STARTTLS stripping* attack:
//! STARTTLS is announced in plaintext, in the EHLO reply, so an attacker
//! who rewrites that line (real attacks replace it with `XXXXXXXA`) makes
//! the client believe the server has no TLS. A client doing opportunistic
//! TLS (RFC 7435) then carries on in plaintext without a word; only a
//! client that *requires* TLS (MTA-STS, RFC 8461 §5; REQUIRETLS, RFC
//! 8689) notices and refuses.

use crate::scenario::Scenario;

/// The links of a world that someone listens on or tampers with.
#[derive(Clone, Debug, Default)]
pub struct Links {
    /// An eavesdropper on every link.
    everywhere: bool,
    /// Pairs of node names (either order) with an eavesdropper.
    tapped: Vec<(String, String)>,
    /// Pairs of node names (either order) whose SMTP EHLO replies lose
    /// their STARTTLS on the way to the client.
    stripped: Vec<(String, String)>,
}

impl Links {
    /// The scenario's eavesdroppers and STARTTLS strippers.
    pub fn from_scenario(scenario: &Scenario) -> Links {
        let pairs = |links: &[[String; 2]]| links.iter().map(|[a, b]| (a.to_ascii_lowercase(), b.to_ascii_lowercase())).collect();
        let (everywhere, tapped) = match &scenario.eavesdropper {
            Some(e) => (e.all, pairs(&e.links)),
            None => (false, Vec::new()),
        };
        Links { everywhere, tapped, stripped: pairs(&scenario.strip_starttls) }
    }

    /// Is someone listening on the link between `a` and `b`?
    pub fn eavesdropped(&self, a: &str, b: &str) -> bool {
        self.everywhere || joins(&self.tapped, a, b)
    }

    /// Does a man in the middle strip STARTTLS between `a` and `b`?
    pub fn strips_starttls(&self, a: &str, b: &str) -> bool {
        joins(&self.stripped, a, b)
    }
}

fn joins(pairs: &[(String, String)], a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    pairs.iter().any(|(x, y)| (*x == a && *y == b) || (*x == b && *y == a))
}

/// The EHLO reply line as the man in the middle passes it on: `STARTTLS`
/// overwritten with `XXXXXXXA` (same length, so nothing else in the
/// packet has to change). None: the line is not the STARTTLS keyword.
pub fn strip_starttls(line: &[u8]) -> Option<Vec<u8>> {
    let (code, keyword) = (line.get(..4)?, line.get(4..)?);
    let is_250 = code == b"250-" || code == b"250 ";
    (is_250 && keyword.eq_ignore_ascii_case(b"STARTTLS")).then(|| [code, b"XXXXXXXA"].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_starttls_line_is_rewritten() {
        assert_eq!(strip_starttls(b"250-STARTTLS").as_deref(), Some(&b"250-XXXXXXXA"[..]));
        assert_eq!(strip_starttls(b"250 starttls").as_deref(), Some(&b"250 XXXXXXXA"[..]));
        assert_eq!(strip_starttls(b"250-PIPELINING"), None);
        assert_eq!(strip_starttls(b"220 ready"), None);
        assert_eq!(strip_starttls(b""), None);
    }

    #[test]
    fn links_are_found_in_either_direction() {
        let links = Links { everywhere: false, tapped: vec![("a".into(), "b".into())], stripped: vec![] };
        assert!(links.eavesdropped("a", "b") && links.eavesdropped("B", "A"));
        assert!(!links.eavesdropped("a", "c"));
        assert!(!links.strips_starttls("a", "b"));
        let all = Links { everywhere: true, ..Default::default() };
        assert!(all.eavesdropped("x", "y"));
    }
}
