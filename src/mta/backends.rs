//! Where the three servers plug into the mail host. Each protocol defines
//! the trait it needs from a host (`smtp::server::Backend`,
//! `imap::session::Backend`, `pop3::session::Maildrops`), so the protocol
//! code never imports `mta`; this file is the one place those traits meet
//! the host. Logins all go through the host's accounts (`accounts.rs`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::MailHost;
use super::intake::HostPolicy;
use crate::smtp::server::{Accepted, HopInfo};
use crate::smtp::session::{Envelope, Policy, Role, SessionConfig};
use crate::store::{INBOX, MaildropLock, Store};

impl crate::smtp::server::Backend for Arc<MailHost> {
    fn name(&self) -> &str {
        &self.name
    }

    fn session_config(&self, role: Role) -> SessionConfig {
        let mut config = SessionConfig::new(self.name.clone(), role);
        config.max_message_size = self.max_message_size();
        if let Some(count) = self.config.max_recipients {
            config.max_recipients = count;
        }
        config
    }

    fn policy(&self, role: Role, peer: IpAddr) -> Box<dyn Policy + Send + Sync> {
        Box::new(HostPolicy { host: self.clone(), role, peer })
    }

    fn greeting_delay(&self) -> Option<Duration> {
        self.config.slow.map(|d| d.0)
    }

    async fn accept(&self, role: Role, envelope: Envelope, hop: &HopInfo) -> Accepted {
        self.take_in(role, envelope, hop).await
    }
}

impl crate::imap::session::Backend for Arc<MailHost> {
    fn hostname(&self) -> &str {
        &self.name
    }

    fn authenticate(&self, user: &str, password: &str, client: IpAddr) -> crate::login::Attempt {
        self.login(user, password, client)
    }

    fn revocations(&self) -> crate::login::Revocations {
        self.accounts.revocations()
    }

    fn app_password_valid(&self, user: &str, name: &str) -> bool {
        self.accounts.has_app_password(user, name)
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn now(&self) -> Duration {
        self.net.now()
    }

    fn max_message_size(&self) -> usize {
        MailHost::max_message_size(self)
    }
}

impl crate::pop3::session::Maildrops for MailHost {
    type Lock = MaildropLock;

    fn login(&self, user: &str, password: &str, client: IpAddr) -> crate::login::Attempt {
        MailHost::login(self, user, password, client)
    }

    fn app_password_valid(&self, user: &str, name: &str) -> bool {
        self.accounts.has_app_password(user, name)
    }

    fn lock(&self, user: &str) -> Option<MaildropLock> {
        self.store.lock_maildrop(user)
    }

    fn open(&self, user: &str) -> crate::pop3::session::Maildrop {
        use crate::pop3::session::{Entry, Maildrop};
        match self.store.snapshot(user, INBOX) {
            Ok(inbox) => {
                Maildrop { uid_validity: inbox.uid_validity, messages: inbox.messages.into_iter().map(|m| Entry { uid: m.uid, raw: m.raw }).collect() }
            }
            Err(_) => Maildrop::default(),
        }
    }

    fn remove(&self, user: &str, uids: &[u32]) -> Result<usize, String> {
        self.store.expunge(user, INBOX, Some(uids)).map(|removed| removed.len()).map_err(|e| e.to_string())
    }
}

impl crate::pop3::server::Backend for MailHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn revocations(&self) -> crate::login::Revocations {
        self.accounts.revocations()
    }
}
