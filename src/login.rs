//! What a login comes to: the words the mail host and its three servers
//! (SMTP AUTH, IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS) share.
//!
//! The host's accounts (`mta::accounts`) decide; each protocol's session
//! turns the [`Verdict`] into its own reply (SMTP `535 5.7.8`, IMAP
//! `NO [AUTHENTICATIONFAILED]`, POP3 `-ERR [AUTH]`, …) and hands the
//! [`Attempt::delay`] to its server, which waits that long before
//! answering. These types live here, outside `mta`, so the protocol code
//! never imports the mail host.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::watch;

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

impl Attempt {
    /// A plain answer with no wait (test backends, hosts without accounts).
    pub fn at_once(verdict: Verdict) -> Self {
        Attempt { verdict, delay: Duration::ZERO, locked: None }
    }

    /// The old yes/no check: welcome for `address`, or refused.
    pub fn from_check(address: Option<String>) -> Self {
        Attempt::at_once(match address {
            Some(address) => Verdict::Welcome { address, app_password: None },
            None => Verdict::Refused,
        })
    }
}

/// A lock that has just begun, and why: whose account or which address,
/// after how many failures, until when (the caller's clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock {
    Account { address: String, failures: u32, until: Duration },
    Address { client: IpAddr, failures: u32, until: Duration },
}

/// Tells a server when app passwords were revoked, so a session logged in
/// with one can end (IMAP `* BYE`, POP3 `-ERR`). The count goes up with
/// each revocation; the session then asks whether its own still exists.
#[derive(Clone, Debug)]
pub struct Revocations(pub watch::Receiver<u64>);

impl Revocations {
    /// One that never fires (backends without accounts).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(0);
        // Keep the sender alive for ever, so `changed` waits instead of failing.
        std::mem::forget(tx);
        Revocations(rx)
    }

    /// Waits for the next revocation.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            // The accounts are gone (the world shut down): nothing more will come.
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves when the app password a session logged in with (`grant`:
/// the host's revocations, the user, the app password's name) is revoked;
/// never if the session did not log in with one. Other revocations on the
/// host are waited past, so a command in progress is only cut short when
/// the session ends anyway. The IMAP and POP3 servers select on this.
pub async fn until_revoked(grant: &mut Option<(Revocations, String, String)>, still_valid: impl Fn(&str, &str) -> bool) {
    let Some((revocations, user, name)) = grant else { return std::future::pending().await };
    loop {
        revocations.changed().await;
        if !still_valid(user, name) {
            return;
        }
    }
}

/// Waits `delay` before a failed login's answer, and tells the class. For
/// the world's own devices (`world`: a registered connection, see
/// `wire::peers`) the wait passes on the simulated clock, as a slow
/// server's does; an outside program (swaks, curl, Python) really waits.
/// Only `server.rs` files call this: the sessions just say how long.
pub async fn hold<S>(wire: &crate::wire::Wire<S>, world: bool, delay: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if delay.is_zero() {
        return;
    }
    let shown = crate::scenario::SimDuration(delay);
    let clock = if world { "simulated time" } else { "real time" };
    wire.emit(
        crate::trace::Kind::LoginDelay { delay_ms: delay.as_millis() as u64, simulated: world },
        format!("{} waits {shown} ({clock}) before answering a failed login: each failure makes the next answer slower", wire.ends.local),
    );
    if world {
        wire.conductor().advance(delay).await;
    } else {
        tokio::time::sleep(delay).await;
    }
}
