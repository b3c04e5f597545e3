//! Who may log in, in one place: the accounts of the users whose mailbox
//! lives on this host. SMTP AUTH, IMAP LOGIN and POP3 USER/PASS all ask
//! here, so a rule added once (a lockout, an app password, two-factor
//! sign-in) holds for every protocol at the same time.
//!
//! A mailbox is named by its canonical address: the whole address in lower
//! case. RFC 5321 §2.4 lets a host treat the local part case-sensitively,
//! but no real provider does, and neither do we: `Bob@Example.org` and
//! `bob@example.org` are one mailbox.

use std::collections::HashMap;

/// The accounts of one mail host.
#[derive(Debug, Default)]
pub struct Accounts {
    /// Canonical address → password.
    passwords: HashMap<String, String>,
}

impl Accounts {
    /// Accounts from (address, password) pairs.
    pub fn new(users: impl IntoIterator<Item = (String, String)>) -> Self {
        Accounts { passwords: users.into_iter().map(|(address, password)| (canonical(&address), password)).collect() }
    }

    /// Is there a mailbox for `address` here?
    pub fn exists(&self, address: &str) -> bool {
        self.passwords.contains_key(&canonical(address))
    }

    /// Checks a login. The account's canonical address if the password is
    /// right, `None` if the user is unknown or the password wrong (a server
    /// never says which: that would tell a guesser which users exist).
    pub fn check(&self, user: &str, password: &str) -> Option<String> {
        let address = canonical(user);
        (self.passwords.get(&address)? == password).then_some(address)
    }

    /// The canonical addresses of every account.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.passwords.keys().map(String::as_str)
    }
}

/// The canonical form of an address: how mailboxes and logins are matched.
pub fn canonical(address: &str) -> String {
    address.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_match_any_case_and_only_the_right_password() {
        let accounts = Accounts::new([("Bob@Example.org".to_string(), "builder".to_string())]);
        assert_eq!(accounts.check("bob@example.org", "builder").as_deref(), Some("bob@example.org"));
        assert_eq!(accounts.check("BOB@EXAMPLE.ORG", "builder").as_deref(), Some("bob@example.org"));
        assert_eq!(accounts.check("bob@example.org", "Builder"), None);
        assert_eq!(accounts.check("eve@example.org", "builder"), None);
        assert!(accounts.exists("bOb@example.ORG") && !accounts.exists("bob"));
        assert_eq!(accounts.addresses().collect::<Vec<_>>(), ["bob@example.org"]);
    }
}
