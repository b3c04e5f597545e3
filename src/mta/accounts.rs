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
//! The web sign-in ([`Accounts::sign_in`]) is where the second factor is
//! asked for: the password plus the 6-digit code of the user's
//! authenticator (`totp.rs`, RFC 6238). Signed in, a user makes an app
//! password per device ([`Accounts::create_app_password`]) and revokes one
//! when the device is lost: the device is refused at its next login, and
//! its open IMAP/POP3 sessions end ([`Accounts::revocations`]).
//!
//! Two clocks: the world's own devices live on the simulated clock, and
//! outside programs (swaks, curl, Python) on real time. Their failures are
//! counted in two separate ledgers ([`Timeline`]), so a lock always ends
//! on the clock of whoever is locked out.
//!
//! A mailbox is named by its canonical address: the whole address in lower
//! case. RFC 5321 §2.4 lets a host treat the local part case-sensitively,
//! but no real provider does, and neither do we: `Bob@Example.org` and
//! `bob@example.org` are one mailbox.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::throttle::{Ledger, Rules};
use super::totp::Totp;
use crate::conductor::Clock;
pub use crate::login::{Attempt, Lock, Revocations, Verdict};

/// The most app passwords one account may have (real providers cap them too).
pub const MAX_APP_PASSWORDS: usize = 32;

/// One user's secrets.
#[derive(Clone, Debug, Default)]
pub struct Account {
    pub password: String,
    /// Two-factor sign-in is on (with this authenticator secret): the main
    /// password alone opens nothing over SMTP, IMAP or POP3; app passwords do.
    pub two_factor: Option<Totp>,
    /// App passwords by name (e.g. the device they were made for).
    pub app_passwords: Vec<(String, String)>,
}

impl From<&crate::scenario::User> for Account {
    /// A scenario user's secrets as the host keeps them. A secret that does
    /// not decode was already reported by `mailflow check`; here it just
    /// leaves two-factor sign-in off.
    fn from(user: &crate::scenario::User) -> Self {
        Account {
            password: user.password.clone(),
            two_factor: user.two_factor.as_ref().and_then(|t| Totp::from_base32(&t.totp_secret).ok()),
            app_passwords: user.app_passwords.iter().map(|(name, secret)| (name.clone(), secret.clone())).collect(),
        }
    }
}

/// Whose clock a login is on (see the module notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeline {
    /// The world's own devices: simulated time.
    World,
    /// Programs outside the world: real time.
    Outside,
}

/// Why a web sign-in failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignInError {
    #[error("wrong user name or password")]
    WrongCredentials,
    #[error("this account has two-factor sign-in: enter the 6-digit code from the authenticator")]
    CodeRequired,
    #[error("wrong or expired code")]
    WrongCode,
    #[error("too many failed sign-ins: the account is locked for now")]
    Locked,
}

/// Why an app password could not be made or revoked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    #[error("no account {0:?} on this host")]
    NoSuchAccount(String),
    #[error("an app password needs a name (the device it is for), at most 64 characters")]
    BadName,
    #[error("there is already an app password named {0:?}")]
    NameTaken(String),
    #[error("no app password named {0:?}")]
    NoSuchAppPassword(String),
    #[error("at most {MAX_APP_PASSWORDS} app passwords per account")]
    TooMany,
    #[error("no random numbers from the system: {0}")]
    Random(String),
}

/// What the page may show of an account: no secrets.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccountSummary {
    pub address: String,
    pub two_factor: bool,
    /// The names of its app passwords (never the passwords).
    pub app_passwords: Vec<String>,
    /// Locked (on the world's simulated clock) until this moment.
    pub locked_until: Option<Duration>,
}

/// The accounts of one mail host. Shared by its SMTP, IMAP and POP3
/// servers (and the web page), so everything changeable sits behind a lock.
pub struct Accounts {
    users: RwLock<HashMap<String, Account>>,
    rules: Rules,
    /// Failures so far: one set per timeline (index: `Timeline as usize`).
    ledgers: Mutex<[Ledgers; 2]>,
    /// Counts revocations of app passwords; sessions logged in with one
    /// watch it (see [`Revocations`]).
    revoked: watch::Sender<u64>,
    /// The world's clock, for [`Accounts::summary`]; `None` outside a world.
    clock: Option<Clock>,
    /// Where real time starts for outside clients.
    started: std::time::Instant,
}

/// Failures counted so far. Bounded: a flood of made-up user names or of
/// addresses cannot grow the server's memory.
#[derive(Debug)]
struct Ledgers {
    accounts: Ledger<String>,
    addresses: Ledger<IpAddr>,
}

impl Ledgers {
    fn new() -> Self {
        Ledgers { accounts: Ledger::new(10_000), addresses: Ledger::new(10_000) }
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::new(std::iter::empty::<(String, Account)>(), Rules::default())
    }
}

impl std::fmt::Debug for Accounts {
    /// Addresses and rules only: never a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").field("addresses", &self.addresses()).field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl Accounts {
    /// Accounts from (address, account) pairs, throttled by `rules`.
    pub fn new(users: impl IntoIterator<Item = (String, Account)>, rules: Rules) -> Self {
        let users = users.into_iter().map(|(address, account)| (canonical(&address), account)).collect();
        let (revoked, _) = watch::channel(0);
        Accounts {
            users: RwLock::new(users),
            rules,
            ledgers: Mutex::new([Ledgers::new(), Ledgers::new()]),
            revoked,
            clock: None,
            started: std::time::Instant::now(),
        }
    }

    /// The same accounts, reading the world's simulated clock for
    /// [`Accounts::summary`] and [`Accounts::now`].
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Now on `timeline`'s clock: simulated time for the world, real time
    /// since these accounts were made for outside clients.
    pub fn now(&self, timeline: Timeline) -> Duration {
        match (timeline, &self.clock) {
            (Timeline::World, Some(clock)) => clock.now(),
            (Timeline::World, None) => Duration::ZERO,
            (Timeline::Outside, _) => self.started.elapsed(),
        }
    }

    /// The throttling rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    fn ledgers(&self) -> MutexGuard<'_, [Ledgers; 2]> {
        // A plain mutex: every use is a short count, never held across an await.
        self.ledgers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn users(&self) -> RwLockReadGuard<'_, HashMap<String, Account>> {
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    fn users_mut(&self) -> RwLockWriteGuard<'_, HashMap<String, Account>> {
        self.users.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Is there a mailbox for `address` here?
    pub fn exists(&self, address: &str) -> bool {
        self.users().contains_key(&canonical(address))
    }

    /// The canonical addresses of every account.
    pub fn addresses(&self) -> Vec<String> {
        self.users().keys().cloned().collect()
    }

    /// The password check alone, without throttling: the canonical address
    /// if `password` opens `user`'s mailbox over a mail protocol.
    pub fn check(&self, user: &str, password: &str) -> Option<String> {
        let address = canonical(user);
        let users = self.users();
        let account = users.get(&address)?;
        let opens = if account.two_factor.is_some() {
            account.app_passwords.iter().any(|(_, secret)| same_app_password(secret, password))
        } else {
            account.password == password
        };
        opens.then_some(address)
    }

    /// Checks a login from `client` at `now` on the world's simulated
    /// clock (see [`Accounts::login_on`]).
    pub fn login(&self, user: &str, password: &str, client: IpAddr, now: Duration) -> Attempt {
        self.login_on(Timeline::World, user, password, client, now)
    }

    /// Checks a login from `client` at `now` (on `timeline`'s clock).
    /// Locked accounts and addresses are refused before the password is
    /// even looked at, so guessing during a lock learns nothing.
    pub fn login_on(&self, timeline: Timeline, user: &str, password: &str, client: IpAddr, now: Duration) -> Attempt {
        let address = canonical(user);
        let mut all = self.ledgers();
        let ledgers = &mut all[timeline as usize];
        let locked = [ledgers.accounts.get(&address).and_then(|r| r.locked(now)), ledgers.addresses.get(&client).and_then(|r| r.locked(now))];
        if let Some(until) = locked.into_iter().flatten().max() {
            return Attempt { verdict: Verdict::Locked { until }, delay: Duration::ZERO, locked: None };
        }
        let (verdict, known) = {
            let users = self.users();
            let verdict = match users.get(&address) {
                Some(account) if account.password == password && account.two_factor.is_some() => Verdict::AppPasswordRequired,
                Some(account) if account.password == password => Verdict::Welcome { address: address.clone(), app_password: None },
                Some(account) => match account.app_passwords.iter().find(|(_, secret)| same_app_password(secret, password)) {
                    Some((name, _)) => Verdict::Welcome { address: address.clone(), app_password: Some(name.clone()) },
                    None => Verdict::Refused,
                },
                None => Verdict::Refused,
            };
            (verdict, users.contains_key(&address))
        };
        if let Verdict::Welcome { .. } = verdict {
            ledgers.accounts.forget(&address);
            return Attempt { verdict, delay: Duration::ZERO, locked: None };
        }
        // A failure (the main password of a 2FA account too: a phished
        // password must not become a free guessing oracle).
        let rules = &self.rules;
        let record = ledgers.accounts.entry(&address, now);
        let (delay, account_locks) = record.fail(now, rules, rules.lock_after);
        let account_failures = record.failures;
        let record = ledgers.addresses.entry(&client, now);
        let (address_delay, address_locks) = record.fail(now, rules, rules.address_lock_after);
        let address_failures = record.failures;
        let until = now + rules.lock_for;
        let locked = if account_locks && known {
            Some(Lock::Account { address, failures: account_failures, until })
        } else if address_locks {
            Some(Lock::Address { client, failures: address_failures, until })
        } else {
            None
        };
        Attempt { verdict, delay: delay.max(address_delay), locked }
    }

    /// The web sign-in: the password, and for a two-factor account the
    /// current code of the user's authenticator at `unix_time`. Throttled
    /// like the mail logins, on the world's clock: a wrong password or
    /// code counts against the account, and a locked account is refused.
    /// (Use [`MailHost::sign_in`](super::MailHost::sign_in) to have a lock
    /// told as an event and a notice.)
    pub fn sign_in(&self, user: &str, password: &str, code: Option<&str>, unix_time: u64) -> Result<(), SignInError> {
        self.sign_in_counted(user, password, code, unix_time).0
    }

    /// [`Accounts::sign_in`], and the lock this attempt started, if any.
    pub fn sign_in_counted(&self, user: &str, password: &str, code: Option<&str>, unix_time: u64) -> (Result<(), SignInError>, Option<Lock>) {
        let address = canonical(user);
        let now = self.now(Timeline::World);
        let mut all = self.ledgers();
        let ledgers = &mut all[Timeline::World as usize];
        if ledgers.accounts.get(&address).and_then(|r| r.locked(now)).is_some() {
            return (Err(SignInError::Locked), None);
        }
        let result = {
            let users = self.users();
            match users.get(&address).filter(|a| a.password == password) {
                None => Err(SignInError::WrongCredentials),
                Some(account) => match (&account.two_factor, code.map(str::trim).filter(|c| !c.is_empty())) {
                    (None, _) => Ok(()),
                    (Some(_), None) => Err(SignInError::CodeRequired),
                    (Some(totp), Some(code)) if totp.check(code, unix_time) => Ok(()),
                    (Some(_), Some(_)) => Err(SignInError::WrongCode),
                },
            }
        };
        match &result {
            Ok(()) => ledgers.accounts.forget(&address),
            // Asking for the code is not a failure: the password was right.
            Err(SignInError::CodeRequired) => {}
            Err(_) if self.exists(&address) => {
                let rules = &self.rules;
                let record = ledgers.accounts.entry(&address, now);
                let (_, locks) = record.fail(now, rules, rules.lock_after);
                if locks {
                    let failures = record.failures;
                    return (result, Some(Lock::Account { address, failures, until: now + rules.lock_for }));
                }
            }
            Err(_) => {}
        }
        (result, None)
    }

    /// What `user`'s authenticator shows at `unix_time`: the 6-digit code
    /// and the seconds it still lives. `None` without two-factor sign-in.
    pub fn authenticator(&self, user: &str, unix_time: u64) -> Option<(String, u64)> {
        let users = self.users();
        let totp = users.get(&canonical(user))?.two_factor.as_ref()?;
        Some((totp.code(unix_time), totp.seconds_left(unix_time)))
    }

    /// Makes a new app password named `name` for `user` and returns it —
    /// the only time it is ever shown: 16 random lowercase letters (about
    /// 75 bits: no guessing attack gets anywhere near it).
    pub fn create_app_password(&self, user: &str, name: &str) -> Result<String, AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(AccountError::BadName);
        }
        let secret = random_letters(16)?;
        let mut users = self.users_mut();
        let account = users.get_mut(&canonical(user)).ok_or_else(|| AccountError::NoSuchAccount(user.to_string()))?;
        if account.app_passwords.iter().any(|(n, _)| n == name) {
            return Err(AccountError::NameTaken(name.to_string()));
        }
        if account.app_passwords.len() >= MAX_APP_PASSWORDS {
            return Err(AccountError::TooMany);
        }
        account.app_passwords.push((name.to_string(), secret.clone()));
        Ok(secret)
    }

    /// Revokes `user`'s app password `name`: its device is refused at its
    /// next login, and its open sessions are told to end.
    pub fn revoke_app_password(&self, user: &str, name: &str) -> Result<(), AccountError> {
        {
            let mut users = self.users_mut();
            let account = users.get_mut(&canonical(user)).ok_or_else(|| AccountError::NoSuchAccount(user.to_string()))?;
            let before = account.app_passwords.len();
            account.app_passwords.retain(|(n, _)| n != name);
            if account.app_passwords.len() == before {
                return Err(AccountError::NoSuchAppPassword(name.to_string()));
            }
        }
        self.revoked.send_modify(|count| *count += 1);
        Ok(())
    }

    /// Does `user` still have the app password `name`?
    pub fn has_app_password(&self, user: &str, name: &str) -> bool {
        self.users().get(&canonical(user)).is_some_and(|a| a.app_passwords.iter().any(|(n, _)| n == name))
    }

    /// Wakes whoever holds it at each revocation (see [`Revocations`]).
    pub fn revocations(&self) -> Revocations {
        Revocations(self.revoked.subscribe())
    }

    /// Every account as the page may show it, sorted by address; locks
    /// are those of the world's devices, on the simulated clock.
    pub fn summary(&self) -> Vec<AccountSummary> {
        let now = self.now(Timeline::World);
        let ledgers = self.ledgers();
        let mut list: Vec<AccountSummary> = self
            .users()
            .iter()
            .map(|(address, account)| AccountSummary {
                address: address.clone(),
                two_factor: account.two_factor.is_some(),
                app_passwords: account.app_passwords.iter().map(|(name, _)| name.clone()).collect(),
                locked_until: ledgers[Timeline::World as usize].accounts.get(address).and_then(|r| r.locked(now)),
            })
            .collect();
        list.sort_by(|a, b| a.address.cmp(&b.address));
        list
    }
}

/// `count` random lowercase letters from the system's random source,
/// each letter equally likely (bytes of 234 and over are thrown away, so
/// `% 26` favours no letter).
fn random_letters(count: usize) -> Result<String, AccountError> {
    let mut out = String::with_capacity(count);
    while out.len() < count {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AccountError::Random(e.to_string()))?;
        out.extend(bytes.iter().filter(|&&b| b < 234).map(|b| (b'a' + b % 26) as char).take(count - out.len()));
    }
    Ok(out)
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
    /// RFC 6238's test secret (see `totp.rs`).
    const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn rules() -> Rules {
        Rules { lock_after: 5, ..Rules::default() }
    }

    fn bob() -> Accounts {
        let bob = Account { password: "builder".into(), ..Account::default() };
        let carol = Account {
            password: "correct horse".into(),
            two_factor: Some(Totp::from_base32(SECRET).unwrap()),
            app_passwords: vec![("carol-phone".into(), "abcd efgh ijkl mnop".into())],
        };
        Accounts::new([("Bob@Example.org".to_string(), bob), ("carol@example.org".to_string(), carol)], rules())
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
        let until = 120 * S + rules().lock_for;
        assert_eq!(locked.verdict, Verdict::Locked { until });
        assert!(matches!(verdict(&accounts, "bob@example.org", "builder", until), Verdict::Welcome { .. }), "open when the lock ends");
    }

    #[test]
    fn the_fifth_failure_reports_the_lock_once() {
        let accounts = bob();
        let locks: Vec<Option<Lock>> = (0..6).map(|i| accounts.login("bob@example.org", "guess", HOME, i * S).locked).collect();
        let until = 4 * S + rules().lock_for;
        assert_eq!(locks[4], Some(Lock::Account { address: "bob@example.org".into(), failures: 5, until }));
        assert!(locks.iter().enumerate().all(|(i, lock)| lock.is_some() == (i == 4)));
    }

    #[test]
    fn the_world_and_outside_clients_are_counted_apart() {
        let accounts = bob();
        for i in 0..5 {
            accounts.login_on(Timeline::World, "bob@example.org", "guess", HOME, i * S);
        }
        assert!(matches!(accounts.login_on(Timeline::World, "bob@example.org", "builder", HOME, 10 * S).verdict, Verdict::Locked { .. }));
        assert!(matches!(accounts.login_on(Timeline::Outside, "bob@example.org", "builder", HOME, 10 * S).verdict, Verdict::Welcome { .. }));
    }

    #[test]
    fn one_address_guessing_many_accounts_is_locked_out() {
        let accounts = bob();
        let attacker = IpAddr::V4(std::net::Ipv4Addr::new(127, 77, 9, 9));
        let mut lock = None;
        for i in 0..rules().address_lock_after {
            let attempt = accounts.login(&format!("user{i}@example.org"), "123456", attacker, i * S);
            lock = lock.or(attempt.locked);
        }
        assert!(matches!(lock, Some(Lock::Address { client, failures: 20, .. }) if client == attacker));
        assert!(matches!(accounts.login("bob@example.org", "builder", attacker, 30 * S).verdict, Verdict::Locked { .. }));
        assert!(matches!(verdict(&accounts, "bob@example.org", "builder", 30 * S), Verdict::Welcome { .. }), "others still get in");
    }

    #[test]
    fn web_sign_in_wants_the_current_code_on_a_two_factor_account() {
        let accounts = bob();
        assert_eq!(accounts.sign_in("bob@example.org", "builder", None, 59), Ok(()));
        assert_eq!(accounts.sign_in("bob@example.org", "nope", None, 59), Err(SignInError::WrongCredentials));
        assert_eq!(accounts.sign_in("carol@example.org", "correct horse", None, 59), Err(SignInError::CodeRequired));
        assert_eq!(accounts.sign_in("carol@example.org", "correct horse", Some("000000"), 59), Err(SignInError::WrongCode));
        assert_eq!(accounts.authenticator("carol@example.org", 59), Some(("287082".to_string(), 1)));
        assert_eq!(accounts.sign_in("carol@example.org", "correct horse", Some("287082"), 59), Ok(()));
        assert_eq!(accounts.sign_in("carol@example.org", "wrong", Some("287082"), 59), Err(SignInError::WrongCredentials));
        assert_eq!(accounts.authenticator("bob@example.org", 59), None);
    }

    #[test]
    fn wrong_web_sign_ins_lock_the_account_too() {
        let accounts = bob();
        for _ in 0..4 {
            assert_eq!(accounts.sign_in_counted("carol@example.org", "correct horse", Some("000000"), 59), (Err(SignInError::WrongCode), None));
        }
        let (result, lock) = accounts.sign_in_counted("carol@example.org", "correct horse", Some("111111"), 59);
        assert_eq!(result, Err(SignInError::WrongCode));
        assert!(matches!(lock, Some(Lock::Account { failures: 5, .. })));
        assert_eq!(accounts.sign_in("carol@example.org", "correct horse", Some("287082"), 59), Err(SignInError::Locked), "even the right code");
    }

    #[test]
    fn app_passwords_are_made_used_and_revoked() {
        let accounts = bob();
        let revocations = accounts.revocations();
        let secret = accounts.create_app_password("carol@example.org", "carol-laptop").unwrap();
        assert!(secret.len() == 16 && secret.bytes().all(|b| b.is_ascii_lowercase()));
        assert_ne!(secret, accounts.create_app_password("carol@example.org", "carol-tablet").unwrap(), "random each time");
        assert_eq!(accounts.create_app_password("carol@example.org", "carol-laptop"), Err(AccountError::NameTaken("carol-laptop".into())));
        assert_eq!(accounts.create_app_password("carol@example.org", " "), Err(AccountError::BadName));
        let laptop = Verdict::Welcome { address: "carol@example.org".into(), app_password: Some("carol-laptop".into()) };
        assert_eq!(verdict(&accounts, "carol@example.org", &secret, S), laptop);
        assert!(!revocations.0.has_changed().unwrap());
        accounts.revoke_app_password("carol@example.org", "carol-laptop").unwrap();
        assert!(revocations.0.has_changed().unwrap(), "sessions hear of it");
        assert!(!accounts.has_app_password("carol@example.org", "carol-laptop"));
        assert_eq!(verdict(&accounts, "carol@example.org", &secret, S), Verdict::Refused);
        assert_eq!(accounts.revoke_app_password("carol@example.org", "carol-laptop"), Err(AccountError::NoSuchAppPassword("carol-laptop".into())));
        let summary = accounts.summary();
        assert_eq!(summary[1].app_passwords, ["carol-phone", "carol-tablet"]);
        assert!(summary[1].two_factor && !summary[0].two_factor);
        let shown = format!("{summary:?}");
        assert!(!shown.contains("abcd") && !shown.contains(&secret), "no secret in the summary");
    }
}
