//! Who may steer: the decision `serve` and `demo` make before the page
//! starts, and what the terminal says about it.
//!
//! On the teacher's own machine (the page on `127.0.0.1` or `::1`, the
//! addresses `localhost` names) only the teacher's browser can reach the
//! page, so by default anyone who can open it may steer, as before. Once
//! the page listens further out — `--web 0.0.0.0:8025` or a LAN address,
//! to show it to the room — every student's laptop can reach the same
//! buttons. Then a *control token* is required: the teacher's
//! `--control-token T`, or one generated here from the operating system's
//! random source when none was given. The token appears in one place only,
//! the teacher's URL printed on the terminal (`…/?token=T`); the page sends
//! it back as `Authorization: Bearer T` with every change, and everybody
//! else's page is read-only ([`super::guard`] checks it).
//!
//! Why another `127.x.y.z` counts as "beyond loopback" here: in mailflow
//! each loopback address stands for a machine of its own (the world's
//! hosts are `127.77.0.2`, `127.77.0.3`, …), and the tests use
//! `127.0.0.2` to stand for the room's network, since nothing may listen
//! on a real one. Only the addresses of `localhost` itself are "the
//! teacher's own machine". The check runs on the address actually served,
//! so a later `--share ADDR` passes its address through the same function.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How many random bytes a generated token has (128 bits: not guessable,
/// even by a room that tries for the whole lesson).
const TOKEN_BYTES: usize = 16;

/// Why no control token could be made.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("the control token must not be empty")]
    EmptyToken,
    #[error("the control token may only use letters, digits and - . _ ~ (it becomes part of the teacher's URL)")]
    TokenCharacters,
    #[error("cannot generate a control token: the operating system's random source failed ({0})")]
    Random(getrandom::Error),
}

/// Whether a page served on `ip` can be reached from other machines (or,
/// for another `127.x` address, from what stands for one in mailflow).
/// `0.0.0.0` and `::` listen on every interface, so they are beyond too.
pub fn beyond_loopback(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4 != Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 != Ipv6Addr::LOCALHOST,
    }
}

/// The decision: whether a token is needed, and which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The token that steers, if any ([`super::WebConfig::control_token`]).
    pub token: Option<String>,
    /// It was generated here (so the terminal is the only place it exists).
    pub generated: bool,
    /// The address beyond loopback the page is served on, if it is.
    pub beyond: Option<IpAddr>,
}

impl Access {
    /// Decides for a page served on `served_on` (the `--web` address; `None`
    /// is the default, `127.0.0.1`) with the token given on the command
    /// line, if any. Beyond loopback without a token, one is generated.
    pub fn decide(served_on: impl IntoIterator<Item = IpAddr>, given: Option<String>) -> Result<Access, AccessError> {
        if let Some(token) = &given {
            check_token(token)?;
        }
        let beyond = served_on.into_iter().find(|ip| beyond_loopback(*ip));
        match (given, beyond) {
            (Some(token), beyond) => Ok(Access { token: Some(token), generated: false, beyond }),
            (None, Some(_)) => Ok(Access { token: Some(generate_token()?), generated: true, beyond }),
            (None, None) => Ok(Access { token: None, generated: false, beyond: None }),
        }
    }

    /// The teacher's URL: the page's `url` with `?token=T`, if there is a token.
    pub fn teacher_url(&self, url: &str) -> Option<String> {
        self.token.as_ref().map(|token| format!("{url}?token={token}"))
    }

    /// The lines for the terminal banner, starting with `Web page: URL`.
    pub fn banner(&self, url: &str) -> String {
        let mut out = format!("Web page: {url}\n");
        let Some(teacher) = self.teacher_url(url) else {
            let _ = writeln!(out, "  only this computer can reach it; whoever opens it may steer (play, pause, step, restart, compose).");
            return out;
        };
        if let Some(ip) = self.beyond {
            let how = if self.generated { "a control token was generated (give your own with --control-token)" } else { "your --control-token is required" };
            let _ = writeln!(out, "  served beyond loopback ({ip}): the class can open it, read-only; {how}.");
        } else {
            let _ = writeln!(out, "  read-only for everyone without the control token.");
        }
        let _ = writeln!(out, "Teacher's page (steers the world; keep this address to yourself): {teacher}");
        out
    }
}

/// A token fit for a URL query: unreserved characters only (RFC 3986 §2.3),
/// so the printed teacher's URL works when pasted as is.
fn check_token(token: &str) -> Result<(), AccessError> {
    if token.is_empty() {
        return Err(AccessError::EmptyToken);
    }
    if !token.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)) {
        return Err(AccessError::TokenCharacters);
    }
    Ok(())
}

/// 128 random bits from the operating system (getrandom), as 32 hex digits.
pub fn generate_token() -> Result<String, AccessError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(AccessError::Random)?;
    Ok(bytes.iter().fold(String::with_capacity(TOKEN_BYTES * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn which_addresses_are_beyond_loopback() {
        for own in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(!beyond_loopback(ip(own)), "{own}");
        }
        for room in ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "127.0.0.2", "127.77.0.1", "fe80::1"] {
            assert!(beyond_loopback(ip(room)), "{room}");
        }
    }

    #[test]
    fn loopback_without_a_token_stays_open() {
        for served in [vec![], vec![ip("127.0.0.1")], vec![ip("::1")]] {
            let access = Access::decide(served, None).unwrap();
            assert_eq!(access, Access { token: None, generated: false, beyond: None });
            assert_eq!(access.teacher_url("http://127.0.0.1:8025/"), None);
            assert!(access.banner("http://127.0.0.1:8025/").starts_with("Web page: http://127.0.0.1:8025/\n"));
        }
    }

    #[test]
    fn beyond_loopback_generates_a_random_token() {
        let a = Access::decide([ip("0.0.0.0")], None).unwrap();
        let b = Access::decide([ip("127.0.0.2")], None).unwrap();
        let (ta, tb) = (a.token.clone().unwrap(), b.token.clone().unwrap());
        assert!(a.generated && b.generated);
        assert_eq!(ta.len(), 32);
        assert!(ta.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(ta, tb, "two generated tokens differ");
        let banner = a.banner("http://0.0.0.0:8025/");
        assert!(banner.starts_with("Web page: http://0.0.0.0:8025/\n"), "{banner}");
        assert!(banner.contains("read-only"), "{banner}");
        assert!(banner.contains(&format!("Teacher's page (steers the world; keep this address to yourself): http://0.0.0.0:8025/?token={ta}")), "{banner}");
        assert_eq!(banner.matches(&ta).count(), 1, "the token is printed once, in the teacher's URL");
    }

    #[test]
    fn a_given_token_is_used_and_checked() {
        let access = Access::decide([ip("10.1.2.3")], Some("class-7b".into())).unwrap();
        assert_eq!((access.token.as_deref(), access.generated), (Some("class-7b"), false));
        assert!(access.banner("http://10.1.2.3:8025/").contains("your --control-token is required"));
        let local = Access::decide([ip("127.0.0.1")], Some("t".into())).unwrap();
        assert_eq!((local.token.as_deref(), local.beyond), (Some("t"), None));
        assert_eq!(local.teacher_url("http://127.0.0.1:8025/").as_deref(), Some("http://127.0.0.1:8025/?token=t"));
        assert!(matches!(Access::decide([], Some(String::new())), Err(AccessError::EmptyToken)));
        assert!(matches!(Access::decide([], Some("a b&c".into())), Err(AccessError::TokenCharacters)));
    }
}
