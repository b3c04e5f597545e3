//! The picture's skeleton: which machines exist, where each is drawn, and
//! which protocol links them.
//!
//! Nodes are placed in five columns that follow a message from left to
//! right: the senders' devices, the outgoing (submission) servers, DNS in
//! the middle, the receiving (MX) servers, and the recipients' devices.
//! Edges are the paths mail can take: device → its submission server
//! (SMTP 587), outgoing server → each MX host the DNS zones name (SMTP 25),
//! a backup MX → the primary, device → the server it fetches from (POP3 or
//! IMAP), and every mail host → DNS.

use serde::Serialize;

use crate::dns::Zones;
use crate::scenario::{FetchProtocol, RecordKind, Service};
use crate::world::{Role, World};

/// The columns of the picture, left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    Senders,
    Outgoing,
    Dns,
    Mx,
    Recipients,
}

#[derive(Debug, Serialize)]
pub struct Topology {
    pub title: String,
    pub subnet: String,
    pub nodes: Vec<NodeView>,
    pub edges: Vec<Edge>,
    /// Every zone's records in zone-file form, as DNS served them when the
    /// story began (the page replays `dns_change` events from there).
    pub zones: Vec<ZoneView>,
}

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub name: String,
    /// dns, host or client.
    pub role: &'static str,
    pub column: Column,
    pub address: String,
    /// Service name → port, e.g. {"smtp": 10025}.
    pub ports: indexmap::IndexMap<String, u16>,
    pub services: Vec<String>,
    /// Up now (hosts can be switched off by a step).
    pub up: bool,
    /// Up when the story starts (the page replays host_state events from here).
    pub starts_up: bool,
    /// Hosts: the domains whose mailboxes live here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backup_for: Vec<String>,
    /// Clients: whose device it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch_from: Option<String>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// smtp, dns, pop3 or imap: the colour on screen.
    pub protocol: &'static str,
    /// submission, relay, backup, fetch or lookup.
    pub purpose: &'static str,
    pub port: u16,
}

#[derive(Debug, Serialize)]
pub struct ZoneView {
    pub domain: String,
    pub records: Vec<String>,
}

/// Builds the topology of `world`.
pub fn build(world: &World) -> Topology {
    let scenario = &world.scenario;
    let mut nodes = Vec::new();
    for node in &world.nodes {
        let mut view = NodeView {
            name: node.name.clone(),
            role: "dns",
            column: Column::Dns,
            address: node.address.to_string(),
            ports: Default::default(),
            services: Vec::new(),
            up: true,
            starts_up: true,
            domains: Vec::new(),
            backup_for: Vec::new(),
            user: None,
            submit_to: None,
            fetch: None,
            fetch_from: None,
        };
        match &node.role {
            Role::Dns => {
                view.ports.insert("dns".into(), world.dns_addr.port());
                view.services.push("dns".into());
            }
            Role::Host { services } => {
                view.role = "host";
                view.column = if services.contains(&Service::Submission) { Column::Outgoing } else { Column::Mx };
                for service in Service::ALL.iter().filter(|s| services.contains(s)) {
                    view.ports.insert(service.name().into(), world.port(*service));
                    view.services.push(service.name().into());
                }
                let config = &scenario.hosts[&node.name];
                view.up = world.hosts.get(&node.name).is_none_or(|h| h.is_up());
                view.starts_up = !config.down;
                view.domains = config.domains.clone();
                view.backup_for = config.backup_for.clone();
            }
            Role::Client { user } => {
                view.role = "client";
                let client = &scenario.clients[&node.name];
                // A device that sends is drawn on the left, one that only
                // reads on the right.
                view.column = if client.submit_to.is_some() || client.deliver_direct { Column::Senders } else { Column::Recipients };
                view.user = Some(user.clone());
                view.submit_to = client.submit_to.clone();
                view.fetch = client.fetch.map(|f| fetch_name(f).to_string());
                view.fetch_from = client.fetch.and(client.fetch_from.clone().or_else(|| scenario.home_host(user)));
            }
        }
        nodes.push(view);
    }
    let edges = edges(world, &nodes);
    // The zones as they were at the start, built again from the scenario;
    // if that fails (it did not when the world started), the zones now.
    let domains: Vec<_> = scenario.domains.iter().map(|(d, z)| (d.clone(), z.records.clone())).collect();
    let listing = Zones::new(&domains, &world.host_addresses()).map(|z| z.listing()).unwrap_or_else(|_| world.zones.listing());
    let zones = listing.into_iter().map(|(domain, records)| ZoneView { domain, records }).collect();
    Topology { title: scenario.title.clone(), subnet: world.options.subnet.to_string(), nodes, edges, zones }
}

fn fetch_name(protocol: FetchProtocol) -> &'static str {
    match protocol {
        FetchProtocol::Pop3 => "pop3",
        FetchProtocol::Imap => "imap",
    }
}

fn edges(world: &World, nodes: &[NodeView]) -> Vec<Edge> {
    let scenario = &world.scenario;
    let mut edges: Vec<Edge> = Vec::new();
    let mut add = |edge: Edge| {
        if edge.from != edge.to && !edges.iter().any(|e| e.from == edge.from && e.to == edge.to && e.protocol == edge.protocol) {
            edges.push(edge);
        }
    };
    let smtp = world.port(Service::Smtp);
    for node in nodes.iter().filter(|n| n.role == "client") {
        if let Some(server) = &node.submit_to {
            add(Edge { from: node.name.clone(), to: server.clone(), protocol: "smtp", purpose: "submission", port: world.port(Service::Submission) });
        }
        if let (Some(protocol), Some(server)) = (node.fetch.as_deref(), &node.fetch_from) {
            let (protocol, service) = if protocol == "pop3" { ("pop3", Service::Pop3) } else { ("imap", Service::Imap) };
            add(Edge { from: node.name.clone(), to: server.clone(), protocol, purpose: "fetch", port: world.port(service) });
        }
    }
    // Relays follow the MX records: an outgoing server may hand mail to
    // any host a domain names as its mail exchange.
    let outgoing: Vec<&NodeView> = nodes.iter().filter(|n| n.column == Column::Outgoing).collect();
    for (domain, zone) in &scenario.domains {
        let mut exchanges: Vec<(u16, &str)> = zone
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::MX)
            .filter_map(|r| Some((r.preference.unwrap_or(0), r.exchange.as_deref()?.trim_end_matches('.'))))
            .filter(|(_, name)| scenario.hosts.contains_key(*name))
            .collect();
        exchanges.sort();
        for (_, exchange) in &exchanges {
            for from in &outgoing {
                add(Edge { from: from.name.clone(), to: exchange.to_string(), protocol: "smtp", purpose: "relay", port: smtp });
            }
        }
        // A backup MX passes what it kept on to the domain's home.
        for (name, host) in &scenario.hosts {
            if host.backup_for.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
                for (home, _) in scenario.hosts.iter().filter(|(_, h)| h.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))) {
                    add(Edge { from: name.clone(), to: home.clone(), protocol: "smtp", purpose: "backup", port: smtp });
                }
            }
        }
    }
    for node in nodes.iter().filter(|n| n.role == "host") {
        add(Edge { from: node.name.clone(), to: "dns".into(), protocol: "dns", purpose: "lookup", port: world.dns_addr.port() });
    }
    // A device that delivers itself asks DNS and talks to the other
    // domains' MX hosts directly (the `direct-to-mx` lesson).
    for (name, client) in scenario.clients.iter().filter(|(_, c)| c.deliver_direct) {
        add(Edge { from: name.clone(), to: "dns".into(), protocol: "dns", purpose: "lookup", port: world.dns_addr.port() });
        let own = client.user.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        for (_, zone) in scenario.domains.iter().filter(|(d, _)| !d.eq_ignore_ascii_case(own)) {
            for exchange in zone.records.iter().filter(|r| r.kind == RecordKind::MX).filter_map(|r| Some(r.exchange.as_deref()?.trim_end_matches('.'))) {
                if scenario.hosts.contains_key(exchange) {
                    add(Edge { from: name.clone(), to: exchange.to_string(), protocol: "smtp", purpose: "direct", port: smtp });
                }
            }
        }
    }
    edges
}
