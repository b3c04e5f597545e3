//! `mailflow check` warnings about weak passwords of a scenario's users.
//!
//! How weak is "builder"? Not a matter of rules like "one digit, one
//! capital letter": attackers do not guess at random, they try the
//! passwords people actually choose first — leaked-password lists,
//! dictionary words, names, keyboard walks (`qwerty`), dates, l33t
//! spellings (`p4ssw0rd`). The zxcvbn estimator (Wheeler, "zxcvbn:
//! Low-Budget Password Strength Estimation", USENIX Security 2016) models
//! exactly that attacker and counts how many guesses it would need; that
//! count is what the warning shows, with what it means online: a server
//! that lets a robot try 10 passwords a second, and one that throttles to
//! 100 an hour (NIST SP 800-63B §5.2.2 asks servers to limit failed
//! attempts, and §5.1.1.2 to refuse passwords found in such lists).
//!
//! They are warnings, not errors: the demo's passwords are short so a
//! class can type them into `swaks` and `curl`, and the guessing lesson
//! needs a weak one. A user marked `"weak_on_purpose": true` is not warned
//! about. The password itself is never printed.

use crate::scenario::{FieldPath, Scenario};

/// Below this zxcvbn score a password is called weak. Score 3 means at
/// least 10^8 guesses: "safely unguessable" online, even unthrottled.
const STRONG_ENOUGH: u8 = 3;

/// What the estimator says about one password.
#[derive(Clone, Debug, PartialEq)]
pub struct Strength {
    /// zxcvbn's score, 0 (too guessable) to 4 (very unguessable).
    pub score: u8,
    /// The estimated number of guesses an informed attacker needs.
    pub guesses: u64,
    /// log10 of `guesses`, for "about 10^N".
    pub guesses_log10: f64,
    /// "2 minutes" at 10 guesses per second (an unthrottled server).
    pub unthrottled: String,
    /// "3 days" at 100 guesses per hour (a throttling server).
    pub throttled: String,
    /// zxcvbn's reason, e.g. "This is a top-10 common password."
    pub reason: Option<String>,
}

impl Strength {
    pub fn is_weak(&self) -> bool {
        self.score < STRONG_ENOUGH
    }
}

/// Estimates `password`'s strength for `user` (the address's parts count
/// as known words: "bob2024" is weak for bob@example.org).
pub fn strength(user: &str, password: &str) -> Strength {
    let (local, domain) = user.rsplit_once('@').unwrap_or((user, ""));
    let labels: Vec<&str> = domain.split('.').filter(|l| l.len() > 2).collect();
    let mut inputs = vec![local, user];
    inputs.extend(labels);
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    let times = entropy.crack_times();
    Strength {
        score: entropy.score() as u8,
        guesses: entropy.guesses(),
        guesses_log10: entropy.guesses_log10(),
        unthrottled: times.online_no_throttling_10_per_second().to_string(),
        throttled: times.online_throttling_100_per_hour().to_string(),
        reason: entropy.feedback().and_then(|f| f.warning()).map(|w| w.to_string()),
    }
}

/// A warning for every weak password of `s`'s users, at `users[...].password`.
pub fn warnings(s: &Scenario) -> Vec<(FieldPath, String)> {
    let mut out = Vec::new();
    for (address, user) in &s.users {
        if user.weak_on_purpose {
            continue;
        }
        let found = strength(address, &user.password);
        if found.is_weak() {
            out.push((FieldPath::root().key("users").key(address).key("password"), describe(address, &found)));
        }
    }
    out
}

/// The warning's words.
pub fn describe(address: &str, s: &Strength) -> String {
    let reason = s.reason.as_ref().map(|r| format!(" {}", r.trim())).unwrap_or_default();
    format!(
        "{address}'s password is weak: about 10^{:.0} guesses ({}; zxcvbn score {} of 4), {} for a robot trying 10 a second, {} at 100 an hour.{reason} \
         Choose a long passphrase, or set \"weak_on_purpose\": true if the lesson needs it",
        s.guesses_log10, s.guesses, s.score, s.unthrottled, s.throttled
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_words_are_weak_and_long_passphrases_are_not() {
        // (password, weak?)
        let table = [
            ("123456", true),
            ("password", true),
            ("builder", true),
            ("wonderland", true),
            ("bob2024", true),
            ("P@ssw0rd", true),
            ("qwertyuiop", true),
            ("correct horse battery staple", false),
            ("marble-tractor-violet-orbit-71", false),
        ];
        for (password, weak) in table {
            assert_eq!(strength("bob@example.org", password).is_weak(), weak, "{password}");
        }
    }

    #[test]
    fn the_address_counts_as_a_known_word() {
        let alone = strength("eve@example.org", "robertson1");
        let own = strength("robertson@example.org", "robertson1");
        assert!(own.guesses < alone.guesses, "{} < {}", own.guesses, alone.guesses);
    }

    #[test]
    fn the_warning_names_the_user_and_never_the_password() {
        let text = describe("bob@example.org", &strength("bob@example.org", "builder"));
        assert!(text.contains("bob@example.org") && text.contains("guesses") && !text.contains("builder"), "{text}");
    }
}
