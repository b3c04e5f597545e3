//! Login throttling: what makes password guessing slow, then stops it.
//!
//! A server cannot tell a forgetful user from a guesser by one wrong
//! password, so it counts. Failures are counted per account (someone is
//! guessing Bob's password) and per client address (one machine is
//! guessing everyone's). After each failure the answer comes a little
//! later — 1 s, 2 s, 4 s, … (the growing delay costs a person nothing and
//! a guesser everything) — and after `lock_after` failures the account
//! (or address) is locked for `lock_for`: even the right password is
//! refused until then, with a "try again later" code, not "wrong password".
//! A success clears the account's count.
//!
//! The rule is pure — time comes in as an argument — so each case is a
//! line of a table test; `accounts.rs` keeps the ledger and asks it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// The throttling rules (defaults in the spirit of real providers;
/// a scenario may tune them).
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// The delay after the first failure; it doubles with each one after.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Failures on one account before it is locked.
    pub lock_after: u32,
    /// Failures from one client address (any accounts) before it is locked out.
    pub address_lock_after: u32,
    pub lock_for: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(32),
            lock_after: 10,
            address_lock_after: 20,
            lock_for: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl Rules {
    /// No throttling at all: every failure answered at once, nothing ever
    /// locked (how servers were before guessing attacks were common).
    pub fn off() -> Self {
        Rules { first_delay: Duration::ZERO, max_delay: Duration::ZERO, lock_after: u32::MAX, address_lock_after: u32::MAX, ..Rules::default() }
    }
}

impl From<&crate::scenario::ThrottleSettings> for Rules {
    fn from(settings: &crate::scenario::ThrottleSettings) -> Self {
        if !settings.enabled {
            return Rules::off();
        }
        Rules {
            first_delay: settings.first_delay.0,
            max_delay: settings.max_delay.0,
            lock_after: settings.lock_after.max(1),
            address_lock_after: settings.address_lock_after.max(1),
            lock_for: settings.lock_for.0,
            window: settings.window.0,
        }
    }
}

/// What is remembered about one account or one address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub failures: u32,
    /// When the current count started (for the window).
    pub since: Duration,
    pub locked_until: Option<Duration>,
}

impl Record {
    /// Is it locked at `now`? The end of the lock, if so.
    pub fn locked(&self, now: Duration) -> Option<Duration> {
        self.locked_until.filter(|&until| now < until)
    }

    /// Counts one failure at `now` against a lock threshold. Returns the
    /// delay before the answer, and whether this failure started a lock.
    pub fn fail(&mut self, now: Duration, rules: &Rules, lock_after: u32) -> (Duration, bool) {
        if self.locked_until.is_some_and(|until| now >= until) || now.saturating_sub(self.since) > rules.window {
            // A lock that ran out, or old failures: start counting afresh.
            *self = Record { failures: 0, since: now, locked_until: None };
        }
        if self.failures == 0 {
            self.since = now;
        }
        self.failures = self.failures.saturating_add(1);
        let delay = rules.first_delay.saturating_mul(1 << (self.failures - 1).min(16)).min(rules.max_delay);
        let locks = self.failures >= lock_after && self.locked(now).is_none();
        if locks {
            self.locked_until = Some(now + rules.lock_for);
        }
        (delay, locks)
    }
}

/// Records by key, never more than `capacity` of them: a flood of
/// addresses cannot grow the server's memory without bound. When full,
/// the record whose count started longest ago (and is not locked) goes.
#[derive(Debug)]
pub struct Ledger<K> {
    records: HashMap<K, Record>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone> Ledger<K> {
    pub fn new(capacity: usize) -> Self {
        Ledger { records: HashMap::new(), capacity: capacity.max(1) }
    }

    pub fn get(&self, key: &K) -> Option<&Record> {
        self.records.get(key)
    }

    pub fn entry(&mut self, key: &K, now: Duration) -> &mut Record {
        if !self.records.contains_key(key) && self.records.len() >= self.capacity {
            let oldest = self.records.iter().filter(|(_, r)| r.locked(now).is_none()).min_by_key(|(_, r)| r.since).map(|(k, _)| k.clone());
            let victim = oldest.or_else(|| self.records.iter().min_by_key(|(_, r)| r.locked_until).map(|(k, _)| k.clone()));
            if let Some(victim) = victim {
                self.records.remove(&victim);
            }
        }
        self.records.entry(key.clone()).or_default()
    }

    pub fn forget(&mut self, key: &K) {
        self.records.remove(key);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn delays_grow_then_the_account_locks_then_it_opens_again() {
        let rules = Rules { lock_after: 5, max_delay: 16 * S, ..Rules::default() };
        let mut record = Record::default();
        // (seconds since start, expected delay in seconds, locks now?)
        let table = [(0, 1, false), (2, 2, false), (5, 4, false), (10, 8, false), (20, 16, true), (40, 16, false)];
        for (at, delay, locks) in table {
            assert_eq!(record.fail(at * S, &rules, rules.lock_after), (delay * S, locks), "failure at {at}s");
        }
        assert_eq!(record.locked(41 * S), Some(20 * S + rules.lock_for), "locked 15 minutes from the 5th failure");
        let after = 20 * S + rules.lock_for;
        assert_eq!(record.locked(after), None, "open again when the lock ends");
        assert_eq!(record.fail(after, &rules, rules.lock_after), (S, false), "a fresh count after the lock");
    }

    #[test]
    fn old_failures_are_forgotten() {
        let rules = Rules { lock_after: 5, ..Rules::default() };
        let mut record = Record::default();
        for at in 0..4 {
            record.fail(at * S, &rules, rules.lock_after);
        }
        let later = rules.window + 10 * S;
        assert_eq!(record.fail(later, &rules, rules.lock_after), (S, false));
        assert_eq!(record.failures, 1);
    }

    #[test]
    fn off_means_no_delay_and_no_lock() {
        let rules = Rules::off();
        let mut record = Record::default();
        for at in 0..1000 {
            assert_eq!(record.fail(at * S, &rules, rules.lock_after), (Duration::ZERO, false));
        }
    }

    #[test]
    fn the_ledger_is_bounded_and_keeps_the_locked() {
        let rules = Rules { lock_after: 1, ..Rules::default() };
        let mut ledger: Ledger<u32> = Ledger::new(3);
        ledger.entry(&0, Duration::ZERO).fail(Duration::ZERO, &rules, 1); // locked
        for key in 1..100u32 {
            let now = key * S;
            ledger.entry(&key, now).fail(now, &rules, 2);
        }
        assert_eq!(ledger.len(), 3);
        assert!(ledger.get(&0).is_some_and(|r| r.locked(S).is_some()), "a flood of others does not free a locked one");
    }
}
