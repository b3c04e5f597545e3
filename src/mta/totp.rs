//! The second factor: time-based one-time passwords (TOTP, RFC 6238).
//!
//! When a user turns on two-factor sign-in, the provider makes a random
//! secret and shows it as a QR code; the phone's authenticator app keeps
//! it. From then on both sides compute, every 30 seconds, the same 6-digit
//! code: HMAC-SHA1 of the secret and the number of 30-second steps since
//! 1970 (RFC 6238 §4, built on HOTP, RFC 4226 §5). Nothing crosses the
//! network but the code, and a code is worthless a minute later — so a
//! phished password alone no longer opens the account.
//!
//! The arithmetic is the `totp-rs` crate's; this file holds the policy:
//! 6 digits, 30-second steps, one step of clock drift either way accepted
//! (RFC 6238 §5.2), and a `Debug` that never prints the secret.

use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds each code lives (RFC 6238 §5.2 recommends 30).
pub const STEP: u64 = 30;

/// One user's authenticator: the shared secret.
#[derive(Clone)]
pub struct Totp {
    totp: TOTP,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Totp(secret hidden)")
    }
}

/// Why a secret cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    #[error("expected base32 letters A-Z and digits 2-7 (RFC 4648)")]
    NotBase32,
    #[error("found {0} bits, expected at least 128 (RFC 4226 §4): 26 or more base32 letters")]
    TooShort(usize),
}

/// The secret's bytes from its base32 text (spaces, `=` padding and case
/// do not matter, as authenticator apps accept it).
pub fn secret_bytes(text: &str) -> Result<Vec<u8>, TotpError> {
    let cleaned: String = text.chars().filter(|c| !c.is_whitespace() && *c != '=').flat_map(char::to_uppercase).collect();
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)) {
        return Err(TotpError::NotBase32);
    }
    let bytes = Secret::Encoded(cleaned).to_bytes().map_err(|_| TotpError::NotBase32)?;
    if bytes.len() < 16 {
        return Err(TotpError::TooShort(bytes.len() * 8));
    }
    Ok(bytes)
}

impl Totp {
    /// An authenticator for a base32 secret (see [`secret_bytes`]).
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let bytes = secret_bytes(text)?;
        Ok(Totp { totp: TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP, bytes) })
    }

    /// The code shown at `unix_time` (seconds since 1970).
    pub fn code(&self, unix_time: u64) -> String {
        self.totp.generate(unix_time)
    }

    /// How many seconds the code of `unix_time` still lives.
    pub fn seconds_left(&self, unix_time: u64) -> u64 {
        STEP - unix_time % STEP
    }

    /// Is `code` right at `unix_time`, allowing one step of drift either way?
    pub fn check(&self, code: &str, unix_time: u64) -> bool {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let step = unix_time / STEP;
        // Compared in constant time by comparing all three, not stopping early.
        [step.saturating_sub(1), step, step + 1].iter().fold(false, |ok, &s| ok | constant_eq(&self.code(s * STEP), code))
    }
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 test secret "12345678901234567890"
    /// (in base32), 8-digit codes there; the last 6 digits here.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_match_rfc_6238_appendix_b() {
        let totp = Totp::from_base32(RFC_SECRET).unwrap();
        for (time, code) in [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"), (1234567890, "005924"), (2000000000, "279037")] {
            assert_eq!(totp.code(time), code, "at {time}");
            assert!(totp.check(code, time));
        }
        assert!(totp.check("287082", 59 + STEP), "one step of drift is forgiven");
        assert!(!totp.check("287082", 59 + 3 * STEP), "an old code is not");
        assert!(!totp.check("28708", 59) && !totp.check("abcdef", 59));
        assert_eq!(totp.seconds_left(59), 1);
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        assert_eq!(secret_bytes("not base32!"), Err(TotpError::NotBase32));
        assert_eq!(secret_bytes("JBSWY3DP"), Err(TotpError::TooShort(40)));
        assert!(secret_bytes("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").is_ok(), "spaces and case do not matter");
        let totp = Totp::from_base32(RFC_SECRET).unwrap();
        assert!(!format!("{totp:?}").contains(RFC_SECRET));
    }
}
