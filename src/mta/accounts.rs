//! Who may log in, in one place: the accounts of the users whose mailbox
//! lives on this host. SMTP AUTH, IMAP LOGIN and POP3 USER/PASS all ask
//! here ([`Accounts::login`]), so a rule holds for every protocol at once:
//!
//! - the password (or, for an account with two-factor sign-in, one of its
//!   app passwords: mail protocols cannot ask for a code, so — as real
//!   providers do — the main password is refused there with a hint);
//! - throttling (`throttle.rs`): a growing delay after each failure, and a
//!   temporary lock after too many, per account and per client address.
//!
//! A mailbox is named by its canonical address: the whole address in lower
//! case. RFC 5321 §2.4 lets a host treat the local part case-sensitively,
//! but no real provider does, and neither do we: `Bob@Example.org` and
//! `bob@example.org` are one mailbox.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::throttle::{Ledger, Rules};

/// One user's secrets.
#[derive(Clone, Debug, Default)]
pub struct Account {
    pub password: String,
    /// Two-factor sign-in is on: the main password alone opens nothing
    /// over SMTP, IMAP or POP3; app passwords do.
    pub two_factor: bool,
    /// App passwords by name (e.g. the device they were made for).
    pub app_passwords: Vec<(String, String)>,
}

/// What a login attempt comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In, as this canonical address (and with this app password, if one).
    Welcome { address: String, app_password: Option<String> },
    /// Wrong user or password (a server never says which).
    Refused,
    /// The main password of a two-factor account: use an app password.
    AppPasswordRequired,
    /// Too many failures: locked until this moment (the caller's clock),
    /// whatever the password.
    Locked { until: Duration },
}

/// The verdict, how long to wait before giving it, and a lock that this
/// attempt started (for the story and the owner's notice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub verdict: Verdict,
    pub delay: Duration,
    pub locked: Option<Lock>,
}

/// A lock that has just begun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock {
    Account { address: String, until: Duration },
    Address { client: IpAddr, until: Duration },
}

/// The accounts of one mail host.
#[derive(Debug)]
pub struct Accounts {
    users: HashMap<String, Account>,
    rules: Rules,
    ledgers: Mutex<Ledgers>,
}

/// Failures counted so far. Bounded: a flood of made-up user names or of
/// addresses cannot grow the server's memory.
#[derive(Debug)]
struct Ledgers {
    accounts: Ledger<String>,
    addresses: Ledger<IpAddr>,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::new(std::iter::empty::<(String, Account)>(), Rules::default())
    }
}

impl Accounts {
    /// Accounts from (address, account) pairs, throttled by `rules`.
    pub fn new(users: impl IntoIterator<Item = (String, Account)>, rules: Rules) -> Self {
        let users = users.into_iter().map(|(address, account)| (canonical(&address), account)).collect();
        Accounts { users, rules, ledgers: Mutex::new(Ledgers { accounts: Ledger::new(10_000), addresses: Ledger::new(10_000) }) }
    }

    fn ledgers(&self) -> MutexGuard<'_, Ledgers> {
        // A plain mutex: every use is a short count, never held across an await.
        self.ledgers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Is there a mailbox for `address` here?
    pub fn exists(&self, address: &str) -> bool {
        self.users.contains_key(&canonical(address))
    }

    /// The canonical addresses of every account.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The password check alone, without throttling: the canonical address
    /// if `password` opens `user`'s mailbox over a mail protocol.
    pub fn check(&self, user: &str, password: &str) -> Option<String> {
        let address = canonical(user);
        let account = self.users.get(&address)?;
        let opens =
            if account.two_factor { account.app_passwords.iter().any(|(_, secret)| same_app_password(secret, password)) } else { account.password == password };
        opens.then_some(address)
    }

    /// Checks a login from `client` at `now` (a clock that moves for that
    /// client: simulated time for the world's devices, real time for
    /// outside programs). Locked accounts and addresses are refused before
    /// the password is even looked at, so guessing during a lock learns
    /// nothing.
    pub fn login(&self, user: &str, password: &str, client: IpAddr, now: Duration) -> Attempt {
        let address = canonical(user);
        let mut ledgers = self.ledgers();
        let locked = [ledgers.accounts.get(&address).and_then(|r| r.locked(now)), ledgers.addresses.get(&client).and_then(|r| r.locked(now))];
        if let Some(until) = locked.into_iter().flatten().max() {
            return Attempt { verdict: Verdict::Locked { until }, delay: Duration::ZERO, locked: None };
        }
        let verdict = match self.users.get(&address) {
            Some(account) if account.two_factor && account.password == password => Verdict::AppPasswordRequired,
            Some(account) if !account.two_factor && account.password == password => Verdict::Welcome { address: address.clone(), app_password: None },
            Some(account) => match account.app_passwords.iter().find(|(_, secret)| same_app_password(secret, password)) {
                Some((name, _)) => Verdict::Welcome { address: address.clone(), app_password: Some(name.clone()) },
                None => Verdict::Refused,
            },
            None => Verdict::Refused,
        };
        if let Verdict::Welcome { .. } = verdict {
            ledgers.accounts.forget(&address);
            return Attempt { verdict, delay: Duration::ZERO, locked: None };
        }
        // A failure (the main password of a 2FA account too: a phished
        // password must not become a free guessing oracle).
        let rules = &self.rules;
        let (delay, account_locks) = ledgers.accounts.entry(&address, now).fail(now, rules, rules.lock_after);
        let (address_delay, address_locks) = ledgers.addresses.entry(&client, now).fail(now, rules, rules.address_lock_after);
        let locked = if account_locks && self.users.contains_key(&address) {
            Some(Lock::Account { address, until: now + rules.lock_for })
        } else if address_locks {
            Some(Lock::Address { client, until: now + rules.lock_for })
        } else {
            None
        };
        Attempt { verdict, delay: delay.max(address_delay), locked }
    }
}

/// App passwords are shown in groups ("abcd efgh ijkl mnop"); spaces and
/// case do not matter when typed back.
fn same_app_password(secret: &str, typed: &str) -> bool {
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect::<String>();
    let (secret, typed) = (squeeze(secret), squeeze(typed));
    !secret.is_empty() && secret == typed
}

/// The canonical form of an address: how mailboxes and logins are matched.
pub fn canonical(address: &str) -> String {
    address.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 77, 1, 1));

    fn bob() -> Accounts {
        let bob = Account { password: "builder".into(), ..Account::default() };
        let carol = Account { password: "correct horse".into(), two_factor: true, app_passwords: vec![("carol-phone".into(), "abcd efgh ijkl mnop".into())] };
        Accounts::new([("Bob@Example.org".to_string(), bob), ("carol@example.org".to_string(), carol)], Rules::default())
    }

    fn verdict(accounts: &Accounts, user: &str, password: &str, at: Duration) -> Verdict {
        accounts.login(user, password, HOME, at).verdict
    }

    #[test]
    fn logins_match_any_case_and_only_the_right_password() {
        let accounts = bob();
        let welcome = Verdict::Welcome { address: "bob@example.org".into(), app_password: None };
        assert_eq!(verdict(&accounts, "BOB@EXAMPLE.ORG", "builder", S), welcome);
        assert_eq!(verdict(&accounts, "bob@example.org", "Builder", S), Verdict::Refused);
        assert_eq!(verdict(&accounts, "eve@example.org", "builder", S), Verdict::Refused);
        assert!(accounts.exists("bOb@example.ORG") && !accounts.exists("bob"));
    }

    #[test]
    fn two_factor_accounts_take_app_passwords_only() {
        let accounts = bob();
        assert_eq!(verdict(&accounts, "carol@example.org", "correct horse", S), Verdict::AppPasswordRequired);
        let phone = Verdict::Welcome { address: "carol@example.org".into(), app_password: Some("carol-phone".into()) };
        assert_eq!(verdict(&accounts, "carol@example.org", "ABCDEFGHIJKLMNOP", S), phone);
        assert_eq!(verdict(&accounts, "carol@example.org", "", S), Verdict::Refused);
    }

    #[test]
    fn guessing_slows_down_then_locks_even_the_right_password() {
        let accounts = bob();
        let delays: Vec<u64> = (0..5).map(|i| accounts.login("bob@example.org", "guess", HOME, i * 30 * S).delay.as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16]);
        let locked = accounts.login("bob@example.org", "builder", HOME, 121 * S);
        let until = 120 * S + Rules::default().lock_for;
        assert_eq!(locked.verdict, Verdict::Locked { until });
        assert!(matches!(verdict(&accounts, "bob@example.org", "builder", until), Verdict::Welcome { .. }), "open when the lock ends");
    }

    #[test]
    fn the_fifth_failure_reports_the_lock_once() {
        let accounts = bob();
        let locks: Vec<bool> = (0..6).map(|i| accounts.login("bob@example.org", "guess", HOME, i * S).locked.is_some()).collect();
        assert_eq!(locks, [false, false, false, false, true, false]);
    }

    #[test]
    fn one_address_guessing_many_accounts_is_locked_out() {
        let accounts = bob();
        let attacker = IpAddr::V4(std::net::Ipv4Addr::new(127, 77, 9, 9));
        let mut lock = None;
        for i in 0..Rules::default().address_lock_after {
            let attempt = accounts.login(&format!("user{i}@example.org"), "123456", attacker, i * S);
            lock = lock.or(attempt.locked);
        }
        assert!(matches!(lock, Some(Lock::Address { client, .. }) if client == attacker));
        assert!(matches!(accounts.login("bob@example.org", "builder", attacker, 30 * S).verdict, Verdict::Locked { .. }));
        assert!(matches!(verdict(&accounts, "bob@example.org", "builder", 30 * S), Verdict::Welcome { .. }), "others still get in");
    }
}
