//! The world: a scenario brought to life on loopback.
//!
//! Building a world gives every node its own loopback address in one
//! subnet (default 127.77.0.0/16): the DNS server at the first address
//! (127.77.0.1), mail hosts after it (127.77.0.2, ...), people's devices in
//! the next block (127.77.1.1, ...). Linux routes all of 127.0.0.0/8 to the
//! loopback interface, so these are real, distinct addresses with no setup,
//! every host can use the same service ports, and a host's A record in DNS
//! is the address it really listens on.
//!
//! Ports follow one rule: the standard port + 10000 (DNS 10053, SMTP 10025,
//! submission 10587, IMAP 10143, POP3 10110), so no root is needed; with
//! `--standard-ports` they are 53, 25, 587, 143, 110.

pub mod attack;
mod banner;
pub mod listener;
pub mod quiz;
mod revoke;
mod script;
pub mod share;

pub use script::change_zone;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::watch;

use crate::auth::{Checker, DomainKeys};
use crate::conductor::{Conductor, Pace};
use crate::dns::{DnsHandler, DnsServer, Lookup, Resolvers, Zones};
use crate::mta::accounts::{Account, Accounts};
use crate::mta::throttle::Rules;
use crate::mta::{HostAuth, MailHost};
use crate::net::Net;
use crate::scenario::{Scenario, Service};
use crate::smtp::session::Role as SmtpRole;
use crate::tls::Offer;
use crate::trace::{Draft, Kind, Protocol, Trace};

/// A block of loopback addresses, e.g. `127.77.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub const DEFAULT: Subnet = Subnet { base: Ipv4Addr::new(127, 77, 0, 0), prefix: 16 };

    /// The `n`-th address after the network address (1 = the first).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix as u32);
        // The last address of the block is left unused, like a broadcast.
        (u64::from(n) < size - 1).then(|| Ipv4Addr::from(u32::from(self.base) + n))
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix as u32) };
        u32::from(address) & mask == u32::from(self.base)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = text.split_once('/').ok_or_else(|| format!("{text:?}: expected a subnet like 127.77.0.0/16"))?;
        let address: Ipv4Addr = address.parse().map_err(|_| format!("{address:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| format!("{prefix:?} is not a prefix length"))?;
        if !(8..=24).contains(&prefix) {
            return Err(format!("/{prefix}: expected a prefix between /8 and /24"));
        }
        if !address.is_loopback() {
            return Err(format!("{address} is not in 127.0.0.0/8: mailflow only uses loopback addresses"));
        }
        let mask = u32::MAX << (32 - prefix as u32);
        Ok(Subnet { base: Ipv4Addr::from(u32::from(address) & mask), prefix })
    }
}

/// How to build a world.
#[derive(Clone, Debug)]
pub struct WorldOptions {
    pub subnet: Subnet,
    /// Added to every standard port (10000 by default, 0 for the real ports).
    pub port_offset: u16,
    pub pace: Pace,
    /// Real-time limit for one DNS question, TCP connect and idle reads.
    pub network_timeout: Duration,
    /// Keep the mailboxes on disk here (`DIR/<host>/<user>/Maildir`):
    /// loaded at start, written on every change.
    pub data_dir: Option<PathBuf>,
    /// `--share ADDR`: also serve every host's services (and the DNS) on
    /// this address, a port per host and service (see [`share`]).
    pub share: Option<IpAddr>,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            subnet: Subnet::DEFAULT,
            port_offset: 10_000,
            pace: Pace::Live { speed: 1.0 },
            network_timeout: Duration::from_secs(10),
            data_dir: None,
            share: None,
        }
    }
}

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Dns,
    Host { services: Vec<Service> },
    Client { user: String },
}

/// A machine of the simulated network.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub address: Ipv4Addr,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("subnet {subnet} has no room for {needed} nodes")]
    SubnetTooSmall { subnet: Subnet, needed: usize },
    #[error("host {host}: address {address} is outside the world's subnet {subnet}")]
    OutsideSubnet { host: String, address: Ipv4Addr, subnet: Subnet },
    #[error("host {host}: address {address} belongs to the DNS server")]
    AddressTaken { host: String, address: Ipv4Addr },
    // Each cause is printed once: wrapped errors are `transparent`, and an
    // io::Error named in the message is not also a `source`.
    #[error(transparent)]
    Zone(#[from] crate::dns::zone::ZoneError),
    #[error(transparent)]
    Bind(#[from] crate::dns::server::BindError),
    #[error("cannot listen for {service} on {addr}: {error} (is another mailflow running? try --subnet)")]
    Listen { service: &'static str, addr: SocketAddr, error: std::io::Error },
    #[error("cannot use the mail data folder {path}: {error}")]
    Data { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Dkim(#[from] crate::auth::KeyError),
    #[error(transparent)]
    Checker(#[from] crate::auth::CheckerError),
    #[error(transparent)]
    Share(#[from] share::ShareError),
}

/// A running world: addresses, DNS, trace, conductor.
pub struct World {
    pub scenario: Arc<Scenario>,
    pub options: WorldOptions,
    pub trace: Trace,
    pub conductor: Conductor,
    pub zones: Arc<Zones>,
    pub dns_addr: SocketAddr,
    pub nodes: Vec<Node>,
    /// The mail servers, by host name.
    pub hosts: IndexMap<String, Arc<MailHost>>,
    pub net: Net,
    /// The world's CA and host certificates (see `listener::world_tls`).
    pub tls: Arc<crate::tls::WorldTls>,
    /// The DKIM keys of the domains that sign (see `auth::keys`).
    pub dkim: Arc<DomainKeys>,
    resolvers: Resolvers,
    dns_server: tokio::sync::Mutex<Option<DnsServer>>,
    stop: watch::Sender<bool>,
    messages_sent: std::sync::atomic::AtomicU64,
    /// `--share`: which ports of the shared address lead where.
    pub share: Option<share::Share>,
    /// The fake DNS's second socket, on the shared address.
    shared_dns: tokio::sync::Mutex<Option<DnsServer>>,
    /// The open quiz and its votes (see `quiz.rs`).
    pub quiz: quiz::QuizDesk,
}

impl World {
    /// Builds the world of `scenario` and starts its DNS server.
    pub async fn start(scenario: Scenario, options: WorldOptions) -> Result<Arc<World>, WorldError> {
        let conductor = Conductor::start(options.pace);
        let trace = Trace::new(conductor.clock().clone());
        let nodes = assign_addresses(&scenario, options.subnet)?;
        let shared = options.share.map(|address| share::Share::plan(address, &scenario)).transpose()?;
        // Certificates before any server starts, so a bad CA folder stops nothing half-way.
        let tls = Arc::new(listener::world_tls(&scenario, &nodes, options.data_dir.as_deref(), options.share)?);
        let host_addresses: Vec<(String, IpAddr)> =
            nodes.iter().filter(|n| matches!(n.role, Role::Host { .. })).map(|n| (n.name.clone(), IpAddr::V4(n.address))).collect();
        let domains: Vec<_> = scenario.domains.iter().map(|(d, z)| (d.clone(), z.records.clone())).collect();
        let zones = Arc::new(Zones::new(&domains, &host_addresses)?);
        // DKIM keys (RFC 6376 §3.6.2): made (or, with --data, loaded) before
        // the DNS server answers, so the first question already finds them.
        let dkim = Arc::new(DomainKeys::for_scenario(&scenario, options.data_dir.as_deref())?);
        dkim.publish(&zones, &scenario)?;
        let names: HashMap<IpAddr, String> = nodes.iter().map(|n| (IpAddr::V4(n.address), n.name.clone())).collect();
        let dns_addr = SocketAddr::new(IpAddr::V4(nodes[0].address), crate::net::port(53, options.port_offset));
        let names = Arc::new(names);
        let handler = DnsHandler { zones: zones.clone(), trace: trace.clone(), nodes: names.clone() };
        let dns_server = DnsServer::start(dns_addr, handler).await?;
        let shared_dns = match &shared {
            Some(plan) => {
                let handler = DnsHandler { zones: zones.clone(), trace: trace.clone(), nodes: names };
                Some(DnsServer::start(SocketAddr::new(plan.address, plan.dns_port), handler).await?)
            }
            None => None,
        };
        let resolvers = Resolvers { dns: dns_server.addr, trace: trace.clone(), conductor: conductor.clone(), timeout: options.network_timeout };
        let net = Net::new(trace.clone(), conductor.clone(), resolvers.clone(), options.port_offset, options.network_timeout)
            .with_tls(tls.clone())
            .with_links(crate::wire::links::Links::from_scenario(&scenario));
        let (stop, _) = watch::channel(false);

        let mut hosts = IndexMap::new();
        for node in &nodes {
            let Role::Host { services } = &node.role else { continue };
            let config = scenario.hosts[&node.name].clone();
            let accounts = Accounts::new(
                scenario
                    .users
                    .iter()
                    .filter(|(address, _)| scenario.home_host(address).as_deref() == Some(node.name.as_str()))
                    .map(|(address, user)| (address.clone(), Account::from(user))),
                Rules::from(&scenario.settings.throttle),
            );
            let lookup = resolvers.for_node(&node.name, IpAddr::V4(node.address));
            // The checker asks the DNS server from the host's own address,
            // so the class sees the receiving host ask about the sender.
            let checker = if config.checks_senders() && services.contains(&Service::Smtp) {
                Some(Checker::new(&node.name, dns_server.addr, IpAddr::V4(node.address), options.network_timeout, zones.clone())?)
            } else {
                None
            };
            let forwards = scenario
                .users
                .iter()
                .filter(|(address, _)| scenario.home_host(address).as_deref() == Some(node.name.as_str()))
                .filter_map(|(address, user)| Some((crate::mta::accounts::canonical(address), user.forward_to.clone()?)))
                .collect();
            let auth = HostAuth { keys: dkim.clone(), checker, forwards: Arc::new(forwards) };
            let host = MailHost::new(&node.name, IpAddr::V4(node.address), config, accounts, scenario.settings.retry.clone(), net.clone(), lookup, auth);
            if let Some(dir) = &options.data_dir {
                // Before any listener starts, so nothing is delivered into
                // a store that is about to be replaced by what is on disk.
                let path = dir.join(&node.name);
                crate::store::maildir::attach(&host.store, &path, &node.name, Some(trace.clone())).map_err(|error| WorldError::Data { path, error })?;
            }
            for &service in services {
                let addr = SocketAddr::new(IpAddr::V4(node.address), net.port(service));
                let socket = listener::bind(addr).await.map_err(|error| WorldError::Listen { service: service.name(), addr, error })?;
                let socket = host.is_up().then_some(socket);
                let (host2, net2, stop2) = (host.clone(), net.clone(), stop.subscribe());
                let offer = tls.offer(&node.name, service.implicit_tls());
                listener::spawn(socket, addr, host.watch_up(), stop.subscribe(), move |stream, peer| {
                    serve(service, host2.clone(), net2.clone(), stream, peer, stop2.clone(), offer.clone())
                });
                // `--share`: the same server behind one more socket, a
                // forwarded port of the shared address (see `share`).
                if let Some(plan) = &shared
                    && let Some(port) = plan.port_of(&node.name, service)
                {
                    let door = SocketAddr::new(plan.address, port);
                    let socket = listener::bind(door).await.map_err(|error| WorldError::Listen { service: service.name(), addr: door, error })?;
                    let socket = host.is_up().then_some(socket);
                    let (host2, net2, stop2) = (host.clone(), net.clone(), stop.subscribe());
                    let offer = tls.offer(&node.name, service.implicit_tls());
                    listener::spawn(socket, door, host.watch_up(), stop.subscribe(), move |stream, peer| {
                        share::announce(&net2, &host2.name, service, door, addr, peer);
                        serve(service, host2.clone(), net2.clone(), stream, peer, stop2.clone(), offer.clone())
                    });
                }
            }
            hosts.insert(node.name.clone(), host);
        }

        let world = World {
            scenario: Arc::new(scenario),
            options,
            trace,
            conductor,
            zones,
            dns_addr: dns_server.addr,
            nodes,
            hosts,
            net,
            tls,
            dkim,
            resolvers,
            dns_server: tokio::sync::Mutex::new(Some(dns_server)),
            stop,
            messages_sent: std::sync::atomic::AtomicU64::new(1),
            share: shared,
            shared_dns: tokio::sync::Mutex::new(shared_dns),
            quiz: quiz::QuizDesk::default(),
        };
        world.trace.emit(Draft::new("world", "world", Protocol::Sim, Kind::WorldUp, format!("the world of \"{}\" is up", world.scenario.title)));
        Ok(Arc::new(world))
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The port a service listens on in this world.
    pub fn port(&self, service: Service) -> u16 {
        self.net.port(service)
    }

    /// How a device submits to `host`: port 587 (STARTTLS) where the host
    /// serves it, else port 465 (TLS from the first byte).
    pub fn submission_service(&self, host: &str) -> Service {
        let serves = |service| self.scenario.hosts.get(host).is_some_and(|h| h.services.contains(&service));
        if serves(Service::Submission) || !serves(Service::Submissions) { Service::Submission } else { Service::Submissions }
    }

    /// The port a device reads mail from on `host`: `plain` (IMAP 143,
    /// POP3 110, upgraded with STARTTLS/STLS) if the host serves it, else
    /// its implicit-TLS twin (IMAPS 993, POP3S 995) if it serves that.
    pub fn retrieval_service(&self, host: &str, plain: Service) -> Service {
        let serves = |service| self.scenario.hosts.get(host).is_some_and(|h| h.services.contains(&service));
        let implicit = if plain == Service::Pop3 { Service::Pop3s } else { Service::Imaps };
        if serves(plain) || !serves(implicit) { plain } else { implicit }
    }

    /// The plumbing the device `client` uses: the world's, without TLS for
    /// a mail program that never asks for it (`"tls": false`).
    pub fn device_net(&self, client: &str) -> Net {
        let mut net = self.net.clone();
        if self.scenario.clients.get(client).is_some_and(|c| c.tls == Some(false)) {
            net.tls = None;
        }
        net
    }

    /// The DNS resolver of a node, sending from the node's address.
    pub fn lookup_for(&self, node: &str) -> Option<Lookup> {
        let node = self.node(node)?;
        Some(self.resolvers.for_node(&node.name, IpAddr::V4(node.address)))
    }

    /// The host addresses, for zone edits that keep host A records.
    pub fn host_addresses(&self) -> Vec<(String, IpAddr)> {
        self.nodes.iter().filter(|n| matches!(n.role, Role::Host { .. })).map(|n| (n.name.clone(), IpAddr::V4(n.address))).collect()
    }

    /// Starts the scenario's steps; see `script.rs`.
    pub fn start_steps(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        script::start(self.clone())
    }

    /// Runs the steps and waits until nothing is left to happen.
    pub async fn run_to_end(self: &Arc<Self>) {
        let steps = self.start_steps();
        let _ = steps.await;
        self.conductor.clock().until_idle().await;
        self.trace.emit(Draft::new("world", "world", Protocol::Sim, Kind::Finished, "all steps are done and nothing is pending"));
    }

    /// The banner printed by `serve` and `demo`.
    pub fn banner(&self) -> String {
        banner::render(self)
    }

    /// A new number for a message a device writes.
    pub fn next_message_number(&self) -> u64 {
        self.messages_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the servers (open SMTP sessions get 421). The trace is closed
    /// so followers end.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        if let Some(server) = self.dns_server.lock().await.take() {
            server.shutdown().await;
        }
        if let Some(server) = self.shared_dns.lock().await.take() {
            server.shutdown().await;
        }
        self.trace.close();
    }
}

/// Serves one connection to one of a host's services.
/// `offer`: how this listener speaks TLS (see `listener::world_tls`).
async fn serve(service: Service, host: Arc<MailHost>, net: Net, stream: tokio::net::TcpStream, peer: SocketAddr, stop: watch::Receiver<bool>, offer: Offer) {
    match service {
        Service::Smtp => crate::smtp::server::serve_connection(host, SmtpRole::Relay, net, stream, peer, stop, offer).await,
        Service::Submission | Service::Submissions => crate::smtp::server::serve_connection(host, SmtpRole::Submission, net, stream, peer, stop, offer).await,
        Service::Imap | Service::Imaps => crate::imap::server::serve_connection(host, net, stream, peer, stop, offer).await,
        Service::Pop3 | Service::Pop3s => crate::pop3::server::serve_connection(host, net, stream, peer, stop, offer).await,
    }
}

/// Gives every node its address (see the module docs).
fn assign_addresses(scenario: &Scenario, subnet: Subnet) -> Result<Vec<Node>, WorldError> {
    let needed = 1 + scenario.hosts.len() + scenario.clients.len();
    let too_small = || WorldError::SubnetTooSmall { subnet, needed };
    let mut nodes = vec![Node { name: "dns".into(), address: subnet.nth(1).ok_or_else(too_small)?, role: Role::Dns }];
    let fixed: Vec<Ipv4Addr> = scenario.hosts.values().filter_map(|h| h.address).collect();
    let mut next = 2;
    for (name, host) in &scenario.hosts {
        let address = match host.address {
            Some(address) if Some(address) == subnet.nth(1) => return Err(WorldError::AddressTaken { host: name.clone(), address }),
            Some(address) if subnet.contains(address) => address,
            Some(address) => return Err(WorldError::OutsideSubnet { host: name.clone(), address, subnet }),
            None => loop {
                let candidate = subnet.nth(next).ok_or_else(too_small)?;
                next += 1;
                if !fixed.contains(&candidate) {
                    break candidate;
                }
            },
        };
        nodes.push(Node { name: name.clone(), address, role: Role::Host { services: host.services.clone() } });
    }
    // Devices start in the next block of 256 when the subnet has room, so
    // servers are 127.77.0.x and devices 127.77.1.x.
    let mut next = if subnet.prefix <= 23 { 257.max(next) } else { next };
    for (name, client) in &scenario.clients {
        let address = loop {
            let candidate = subnet.nth(next).ok_or_else(too_small)?;
            next += 1;
            if !fixed.contains(&candidate) {
                break candidate;
            }
        };
        nodes.push(Node { name: name.clone(), address, role: Role::Client { user: client.user.clone() } });
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_count() {
        let s: Subnet = "127.88.3.4/16".parse().unwrap();
        assert_eq!(s, Subnet { base: Ipv4Addr::new(127, 88, 0, 0), prefix: 16 });
        assert_eq!(s.nth(1), Some(Ipv4Addr::new(127, 88, 0, 1)));
        assert_eq!(s.nth(257), Some(Ipv4Addr::new(127, 88, 1, 1)));
        assert!(s.contains(Ipv4Addr::new(127, 88, 200, 1)) && !s.contains(Ipv4Addr::new(127, 89, 0, 1)));
        let small: Subnet = "127.0.9.0/24".parse().unwrap();
        assert_eq!(small.nth(255), None);
        for bad in ["10.0.0.0/16", "127.0.0.0", "127.0.0.0/30", "127.x.0.0/16"] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }
}
