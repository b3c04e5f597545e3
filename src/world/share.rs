//! `--share ADDR`: the world's services published on one more address, the
//! teacher's address on the classroom network, so students' own mail
//! programs (Thunderbird, a phone's mail app, `dig`) can join in.
//!
//! Every simulated host listens on a loopback address of its own
//! (127.77.0.2, 127.77.0.3, ...), which no other computer can reach. With
//! `--share` each host's services are also served on ADDR, one port per
//! host and service, exactly as a home router forwards its ports to the
//! machines behind it (port forwarding, a kind of NAT): the student's mail
//! program talks to ADDR:20143 and the same IMAP server of the same host
//! answers, with the same mailboxes, and the class sees the same story.
//! The server still sees the student's real address, so the story names
//! the student's computer; a note before the first line says which
//! forwarded port it came through.
//!
//! The port rule, one a student can read off: `2HHSS`, where `HH` is the
//! host's number (01, 02, ... in the order of the scenario's `hosts`) and
//! `SS` the last two digits of the service's standard port. The fake DNS
//! is "host 00":
//!
//! | service                  | standard port | host 1 | host 2 |
//! |--------------------------|---------------|--------|--------|
//! | DNS (UDP and TCP)        | 53            | 20053 (one for the world) | |
//! | SMTP (server to server)  | 25            | 20125  | 20225  |
//! | submission (STARTTLS)    | 587           | 20187  | 20287  |
//! | submissions (TLS)        | 465           | 20165  | 20265  |
//! | IMAP (STARTTLS)          | 143           | 20143  | 20243  |
//! | IMAPS                    | 993           | 20193  | 20293  |
//! | POP3 (STLS)              | 110           | 20110  | 20210  |
//! | POP3S                    | 995           | 20195  | 20295  |
//!
//! Why fixed numbers rather than free ports the system picks: the table a
//! student copies into Thunderbird stays right after a restart or when the
//! teacher loads the next lesson, and a port tells which host it leads to.
//! Why 20000 and up: above the ports most programs use, and below the
//! range Linux hands out for outgoing connections (32768 and up), so
//! nothing the computer does by itself takes them. Two digits allow 99
//! hosts, far more than a lesson has.
//!
//! Host certificates carry ADDR as well (`listener::world_tls`), so a mail
//! program that checks the certificate against the server it typed (ADDR)
//! accepts it once it trusts the world's CA (served as `GET /ca.pem`).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::net::Net;
use crate::scenario::{Scenario, Service, TlsPolicy, TlsSettings};
use crate::trace::{Draft, Kind, Protocol};

/// The first port of the shared block: ports are `20000 + 100 × host + service digits`.
pub const BASE: u16 = 20_000;

/// The most hosts the port rule can number (two digits).
pub const MAX_HOSTS: usize = 99;

/// The fake DNS's port on the shared address ("host 00").
pub const DNS_PORT: u16 = BASE + 53;

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("--share {0}: give the address students will type (the computer's address on the classroom network), not a wildcard")]
    Unspecified(IpAddr),
    #[error("--share numbers hosts 01 to {MAX_HOSTS} in its ports (2HHSS); this scenario has {0} hosts")]
    TooManyHosts(usize),
}

/// The shared port of `service` on the `number`-th host (1-based).
pub fn port(number: usize, service: Service) -> u16 {
    BASE + 100 * number as u16 + service.standard_port() % 100
}

/// One forwarded port.
#[derive(Clone, Debug, Serialize)]
pub struct SharedService {
    pub host: String,
    pub service: Service,
    pub port: u16,
}

/// Which ports of the shared address lead where.
#[derive(Clone, Debug, Serialize)]
pub struct Share {
    pub address: IpAddr,
    pub dns_port: u16,
    pub services: Vec<SharedService>,
}

impl Share {
    /// The ports for every service of every host of `scenario` on `address`.
    pub fn plan(address: IpAddr, scenario: &Scenario) -> Result<Share, ShareError> {
        if address.is_unspecified() {
            return Err(ShareError::Unspecified(address));
        }
        if scenario.hosts.len() > MAX_HOSTS {
            return Err(ShareError::TooManyHosts(scenario.hosts.len()));
        }
        let services = scenario
            .hosts
            .iter()
            .enumerate()
            .flat_map(|(index, (name, host))| {
                Service::ALL.iter().filter(|service| host.services.contains(service)).map(move |&service| SharedService {
                    host: name.clone(),
                    service,
                    port: port(index + 1, service),
                })
            })
            .collect();
        Ok(Share { address, dns_port: DNS_PORT, services })
    }

    /// The shared port of `host`'s `service`, if it runs it.
    pub fn port_of(&self, host: &str, service: Service) -> Option<u16> {
        self.services.iter().find(|s| s.host == host && s.service == service).map(|s| s.port)
    }

    /// What each user types into a mail program (see [`Settings`]).
    pub fn settings(&self, scenario: &Scenario) -> Vec<Settings> {
        scenario.users.keys().filter_map(|user| self.settings_for(scenario, user)).collect()
    }

    fn settings_for(&self, scenario: &Scenario, user: &str) -> Option<Settings> {
        let home = scenario.home_host(user)?;
        let server = self.address.to_string();
        let security = |host: &str, service: Service| {
            let config = scenario.hosts.get(host);
            let (policy, _) = TlsSettings::effective(config.and_then(|h| h.tls.as_ref()), &scenario.settings.tls);
            match (policy, service.implicit_tls()) {
                (TlsPolicy::Off, _) => Security::None,
                (_, true) => Security::Tls,
                (_, false) => Security::StartTls,
            }
        };
        // A plaintext port with STARTTLS first (what Thunderbird proposes),
        // else the implicit-TLS one.
        let endpoint = |host: &str, plain: Service, implicit: Service, protocol: &'static str| {
            let (service, port) = [plain, implicit].into_iter().find_map(|s| Some((s, self.port_of(host, s)?)))?;
            Some(Endpoint { protocol, host: host.to_string(), server: server.clone(), port, security: security(host, service) })
        };
        let incoming: Vec<Endpoint> =
            [endpoint(&home, Service::Imap, Service::Imaps, "IMAP"), endpoint(&home, Service::Pop3, Service::Pop3s, "POP3")].into_iter().flatten().collect();
        // Outgoing: the submission server the user's device uses, else the home host.
        let submit_to = scenario.clients.values().filter(|c| c.user.eq_ignore_ascii_case(user)).find_map(|c| c.submit_to.clone());
        let outgoing = [submit_to.as_deref(), Some(home.as_str())]
            .into_iter()
            .flatten()
            .find_map(|host| endpoint(host, Service::Submission, Service::Submissions, "SMTP"));
        Some(Settings { user: user.to_string(), username: user.to_string(), mailbox_host: home, incoming, outgoing })
    }

    /// The table printed on the terminal: the forwarded ports, then each
    /// user's mail program settings with the password (the teacher hands
    /// each student one account; the page never shows passwords).
    pub fn render(&self, scenario: &Scenario, page: Option<&str>) -> String {
        let mut out = String::new();
        let a = self.address;
        let _ = writeln!(out, "Shared for students' own mail programs on {a} (ports 2HHSS: host number HH, last two digits SS of the standard port):");
        let _ = writeln!(out, "  {:24}  DNS {} (UDP and TCP): dig @{a} -p {} MX <domain>", "dns", self.dns_port, self.dns_port);
        for (host, _) in scenario.hosts.iter() {
            let list: Vec<String> = self.services.iter().filter(|s| &s.host == host).map(|s| format!("{} {}", s.service.name(), s.port)).collect();
            let _ = writeln!(out, "  {host:24}  {}", list.join(", "));
        }
        let _ = writeln!(out, "\nThunderbird settings (manual configuration), one account per student:");
        for settings in self.settings(scenario) {
            let password = scenario.users.get(&settings.user).map(|u| u.password.as_str()).unwrap_or("");
            let _ = writeln!(out, "  {}  (username {}, password {password}; mailbox on {})", settings.user, settings.username, settings.mailbox_host);
            if settings.incoming.is_empty() {
                let _ = writeln!(out, "    (no IMAP or POP3 on {}: this account can send, not read)", settings.mailbox_host);
            }
            for endpoint in settings.incoming.iter().chain(&settings.outgoing) {
                let _ = writeln!(
                    out,
                    "    {:8} server {}  port {}  {}  (normal password)",
                    if endpoint.protocol == "SMTP" { "outgoing" } else { endpoint.protocol },
                    endpoint.server,
                    endpoint.port,
                    endpoint.security.label()
                );
            }
        }
        if let Some(page) = page {
            let _ = writeln!(out, "\nThe CA certificate to trust (Thunderbird: Settings → Certificates → Import): {page}ca.pem");
            let _ = writeln!(out, "Students' page (read-only; also as a QR code on the page): {page}");
        }
        out
    }
}

/// Tells the story that a connection came in through a forwarded port
/// `door` of the shared address, to `host`'s `service` at `inside`. The
/// server's own events follow, naming `peer`, the student's computer.
pub fn announce(net: &Net, host: &str, service: Service, door: SocketAddr, inside: SocketAddr, peer: SocketAddr) {
    let protocol = match service {
        Service::Smtp | Service::Submission | Service::Submissions => Protocol::Smtp,
        Service::Imap | Service::Imaps => Protocol::Imap,
        Service::Pop3 | Service::Pop3s => Protocol::Pop3,
    };
    let (name, _) = net.peers.identify(peer);
    let summary = format!("{name} comes in through the shared port {door}, forwarded to {host}'s {} ({inside})", service.name());
    let explain = "With --share the teacher's computer forwards one port per host and service to the simulated host, as a home router \
                   forwards ports to the machines behind it: a student's own mail program reaches the very same server and mailboxes.";
    net.trace.emit(Draft::new(name, host, protocol, Kind::Note, summary).explain(explain));
}

/// How a mail program protects a connection (Thunderbird's "Connection security").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Security {
    /// Plaintext, then the STARTTLS (STLS) command.
    #[serde(rename = "STARTTLS")]
    StartTls,
    /// TLS from the first byte (RFC 8314).
    #[serde(rename = "SSL/TLS")]
    Tls,
    /// The host runs no TLS: everything crosses the network readable.
    #[serde(rename = "None")]
    None,
}

impl Security {
    pub fn label(self) -> &'static str {
        match self {
            Security::StartTls => "STARTTLS",
            Security::Tls => "SSL/TLS",
            Security::None => "None",
        }
    }
}

/// One server a mail program talks to.
#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    /// "IMAP", "POP3" or "SMTP".
    pub protocol: &'static str,
    /// The simulated host behind the forwarded port.
    pub host: String,
    /// What the student types as the server: the shared address.
    pub server: String,
    pub port: u16,
    pub security: Security,
}

/// One user's mail program settings (no password: the page shows these).
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub user: String,
    pub username: String,
    pub mailbox_host: String,
    pub incoming: Vec<Endpoint>,
    pub outgoing: Option<Endpoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_follow_the_2hhss_rule_and_never_collide() {
        assert_eq!(port(1, Service::Smtp), 20125);
        assert_eq!(port(1, Service::Submission), 20187);
        assert_eq!(port(2, Service::Imap), 20243);
        assert_eq!(port(99, Service::Pop3s), 29995);
        let mut all: Vec<u16> = (1..=MAX_HOSTS).flat_map(|n| Service::ALL.map(|s| port(n, s))).collect();
        all.push(DNS_PORT);
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "every host and service has a port of its own");
    }

    #[test]
    fn the_demo_table_names_every_user_with_tls() {
        let scenario = Scenario::default_scenario();
        let share = Share::plan("127.0.0.2".parse().unwrap(), &scenario).unwrap();
        let settings = share.settings(&scenario);
        assert_eq!(settings.len(), scenario.users.len());
        let alice = settings.iter().find(|s| s.user == "alice@school.test").unwrap();
        let smtp = alice.outgoing.as_ref().expect("alice's laptop submits to smtp.school.test");
        assert_eq!((smtp.server.as_str(), smtp.port, smtp.security), ("127.0.0.2", 20187, Security::StartTls));
        let bob = settings.iter().find(|s| s.user == "bob@example.org").unwrap();
        assert_eq!(bob.incoming.iter().map(|e| (e.protocol, e.port)).collect::<Vec<_>>(), [("IMAP", 20243), ("POP3", 20210)]);
        let text = share.render(&scenario, Some("http://127.0.0.2:8025/"));
        assert!(text.contains("http://127.0.0.2:8025/ca.pem"), "{text}");
        assert!(matches!(Share::plan("0.0.0.0".parse().unwrap(), &scenario), Err(ShareError::Unspecified(_))));
    }
}
