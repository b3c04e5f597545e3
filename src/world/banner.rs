//! The banner of `serve` and `demo`: every node with its address and
//! ports, and commands a student can paste to talk to the world: `dig` to
//! ask the fake DNS, and `swaks` and `curl` to submit a message as one of
//! the scenario's users, exactly as a mail program would (submission port,
//! AUTH PLAIN with the user's password). Where hosts offer TLS the
//! commands use it and trust the world's CA (see `banner/tls.rs`).

mod tls;

use std::fmt::Write as _;

use super::{Role, World};
use crate::scenario::{RecordKind, Scenario, Service};

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
    if world.nodes.iter().any(|n| tls::offers(world, &n.name)) {
        out.push_str(&tls::get_ca(world));
    }
    if let Some(submit) = submission_example(world) {
        let Submission { server, address, port, user, password, to } = submit;
        let (swaks_tls, curl_tls) = (tls::flags(world, &server, "swaks"), tls::flags(world, &server, "curl"));
        let (u, p, r) = (shell_word(&user), shell_word(&password), shell_word(&to));
        let credentials = single_quoted(&format!("{user}:{password}"));
        let _ = writeln!(out, "\nSend a message yourself, as {user} through {server} (submission, AUTH PLAIN):");
        let _ = writeln!(
            out,
            "  swaks --server {address} --port {port} --auth PLAIN --auth-user {u} --auth-password {p} --from {u} --to {r} --header \"Subject: Hello from swaks\"{swaks_tls}"
        );
        let _ = writeln!(out, "or with curl: first write message.txt, then upload it:");
        let text = format!("From: {user}\\r\\nTo: {to}\\r\\nSubject: Hello from curl\\r\\n\\r\\nThis message came by curl.\\r\\n");
        let _ = writeln!(out, "  printf {} > message.txt", shell_word(&text));
        let _ = writeln!(out, "  curl smtp://{address}:{port}{curl_tls} --mail-from {u} --mail-rcpt {r} --user {credentials} --upload-file message.txt");
    }
    // IMAP: the first host that serves it, logged in as its first user.
    let imap_host = world.nodes.iter().find(|n| matches!(&n.role, Role::Host { services } if services.contains(&Service::Imap)));
    if let Some(node) = imap_host {
        let user = s.users.iter().find(|(address, _)| s.home_host(address).as_deref() == Some(node.name.as_str()));
        if let Some((address, account)) = user {
            let port = world.port(Service::Imap);
            let t = tls::flags(world, &node.name, "curl");
            let _ = writeln!(out, "\nRead {address}'s mail over IMAP (it stays on {}):", node.name);
            let _ = writeln!(out, "  curl \"imap://{}:{port}/\"{t} -u {}", node.address, single_quoted(&format!("{address}:{}", account.mail_password())));
            let _ = writeln!(
                out,
                "  curl \"imap://{}:{port}/INBOX;UID=1\"{t} -u {}",
                node.address,
                single_quoted(&format!("{address}:{}", account.mail_password()))
            );
        }
    }
    // POP3: list the mailbox, then fetch message 1 (curl never sends DELE
    // unless asked, so this only reads).
    let pop3 = world.nodes.iter().filter(|n| matches!(&n.role, Role::Host { services } if services.contains(&Service::Pop3)));
    let mut first = true;
    for node in pop3.take(2) {
        let Some((user, account)) = s.users.iter().find(|(address, _)| s.home_host(address).as_deref() == Some(node.name.as_str())) else { continue };
        if first {
            let _ = writeln!(out, "\nFetch mail by POP3 yourself (list, then message 1):");
            first = false;
        }
        let base = format!("pop3://{}:{}", node.address, world.port(Service::Pop3));
        let credentials = single_quoted(&format!("{user}:{}", account.mail_password()));
        let t = tls::flags(world, &node.name, "curl");
        let _ = writeln!(out, "  curl {base}/{t} -u {credentials}");
        let _ = writeln!(out, "  curl {base}/1{t} -u {credentials}");
    }
    spoof_example(world, &mut out);
    out.push_str(&tls::commands(world));
    out
}

/// The forgery a student can try (issue 11): `From: principal@<domain>`
/// for a domain whose DMARC policy says reject, straight to port 25 of a
/// checking server of another domain, with no login. The reply is the
/// verdict: `550 5.7.1`.
fn spoof_example(world: &World, out: &mut String) {
    let s = &world.scenario;
    let rejects = |zone: &crate::scenario::Domain| {
        zone.records.iter().any(|r| {
            r.kind == RecordKind::TXT
                && r.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("_dmarc"))
                && r.text.as_deref().is_some_and(|t| t.split(';').any(|tag| tag.trim().eq_ignore_ascii_case("p=reject")))
        })
    };
    let Some(forged) = s.domains.iter().find(|(_, zone)| rejects(zone)).map(|(d, _)| d) else { return };
    let checking = |host: &str| s.hosts.get(host).is_some_and(|h| h.checks_senders() && h.services.contains(&Service::Smtp));
    let target = s.users.keys().find_map(|user| {
        let home = s.home_host(user)?;
        let elsewhere = !user.to_ascii_lowercase().ends_with(&format!("@{forged}"));
        (elsewhere && checking(&home)).then_some(())?;
        Some((user.clone(), world.node(&home)?.address))
    });
    let Some((to, address)) = target else { return };
    let from = format!("principal@{forged}");
    let _ = writeln!(out, "\nTry to forge a sender (port 25, no login; {forged} publishes DMARC p=reject, so the answer is 550 5.7.1):");
    let _ = writeln!(
        out,
        "  swaks --server {address} --port {} --from {} --to {} --header \"Subject: Forged\"",
        world.port(Service::Smtp),
        shell_word(&from),
        shell_word(&to)
    );
}

/// What the swaks and curl examples need.
struct Submission {
    server: String,
    address: String,
    port: u16,
    user: String,
    password: String,
    to: String,
}

/// The first device that can send, its user, its submission server, and a
/// recipient: a user of another domain if there is one (so the message
/// really travels), else any other user, else the sender.
fn submission_example(world: &World) -> Option<Submission> {
    let s = &world.scenario;
    let (user, server) = s.clients.values().find_map(|c| Some((c.user.clone(), c.submit_to.clone()?)))?;
    let password = s.users.get(&user)?.mail_password().to_string();
    let node = world.node(&server)?;
    Some(Submission { server, address: node.address.to_string(), port: world.port(Service::Submission), to: recipient_for(s, &user), user, password })
}

fn recipient_for(s: &Scenario, sender: &str) -> String {
    let domain = |a: &str| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    let others = || s.users.keys().filter(|u| !u.eq_ignore_ascii_case(sender));
    others().find(|u| domain(u) != domain(sender)).or_else(|| others().next()).cloned().unwrap_or_else(|| sender.to_string())
}

/// A word as the shell reads it: plain when it is safe, else in single quotes.
fn shell_word(word: &str) -> String {
    let safe = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe { word.to_string() } else { single_quoted(word) }
}

/// A word in single quotes, which the shell takes literally.
fn single_quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_survive_the_shell() {
        assert_eq!(shell_word("alice@school.test"), "alice@school.test");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word(""), "''");
    }
}
