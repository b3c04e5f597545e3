//! The banner of `serve` and `demo`: every node with its address and
//! ports, and commands a student can paste to talk to the world.

use std::fmt::Write as _;

use super::{Role, World};
use crate::scenario::{RecordKind, Service, validate::home_host};

pub fn render(world: &World) -> String {
    let mut out = String::new();
    let s = &world.scenario;
    let _ = writeln!(out, "mailflow — {}", s.title);
    if !s.description.is_empty() {
        let _ = writeln!(out, "{}", s.description);
    }
    let offset = world.options.port_offset;
    let rule = if offset == 0 { "the standard ports".to_string() } else { format!("standard port + {offset}") };
    let _ = writeln!(out, "\nWorld {} — ports: {rule}", world.options.subnet);
    let width = world.nodes.iter().map(|n| n.name.len()).max().unwrap_or(4).max(4);
    for node in &world.nodes {
        let what = match &node.role {
            Role::Dns => format!("DNS {} (UDP and TCP)", world.dns_addr.port()),
            Role::Host { services } => {
                let list: Vec<String> = Service::ALL.iter().filter(|sv| services.contains(sv)).map(|sv| format!("{} {}", sv.name(), world.port(*sv))).collect();
                let down = s.hosts.get(&node.name).is_some_and(|h| h.down);
                format!("{}{}", list.join(", "), if down { "  (starts down)" } else { "" })
            }
            Role::Client { user } => format!("device of {user}"),
        };
        let _ = writeln!(out, "  {:width$}  {:15}  {what}", node.name, node.address.to_string());
    }
    let dns = world.dns_addr;
    let _ = writeln!(out, "\nAsk the fake DNS yourself:");
    for (domain, zone) in s.domains.iter().take(3) {
        let kind = if zone.records.iter().any(|r| r.kind == RecordKind::MX) { "MX" } else { "A" };
        let _ = writeln!(out, "  dig @{} -p {} {kind} {domain}", dns.ip(), dns.port());
    }
    if let Some(host) = s.hosts.keys().next() {
        let _ = writeln!(out, "  dig @{} -p {} A {host}", dns.ip(), dns.port());
    }
    // POP3: list the mailbox, then fetch message 1 (curl never sends DELE
    // unless asked, so this only reads).
    let pop3 = world.nodes.iter().filter(|n| matches!(&n.role, Role::Host { services } if services.contains(&Service::Pop3)));
    let mut first = true;
    for node in pop3.take(2) {
        let Some((user, account)) = s.users.iter().find(|(address, _)| home_host(s, address).as_deref() == Some(node.name.as_str())) else { continue };
        if first {
            let _ = writeln!(out, "\nFetch mail by POP3 yourself (list, then message 1):");
            first = false;
        }
        let base = format!("pop3://{}:{}", node.address, world.port(Service::Pop3));
        let _ = writeln!(out, "  curl {base}/ -u {user}:{}", account.password);
        let _ = writeln!(out, "  curl {base}/1 -u {user}:{}", account.password);
    }
    out
}
