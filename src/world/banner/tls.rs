//! The banner's TLS part: how to get the world's CA certificate
//! (`ca.pem`), the TLS options the banner's swaks and curl commands need,
//! and commands that show TLS itself: `openssl s_client` upgrading a
//! connection with STARTTLS (RFC 3207, RFC 2595), and curl on the
//! implicit-TLS ports (RFC 8314: smtps 465, imaps 993, pop3s 995).
//!
//! Every command trusts the world's CA and nothing else (`-CAfile`,
//! `--cacert`, `--tls-ca-path`), so it checks each server's certificate
//! the way the world's own devices do.

use std::fmt::Write as _;

use super::{World, single_quoted};
use crate::scenario::{Service, TlsPolicy};

/// Does `host` offer TLS (its policy is not `off`)?
pub fn offers(world: &World, host: &str) -> bool {
    world.tls.host(host).is_some_and(|tls| tls.policy.policy != TlsPolicy::Off)
}

/// How to get `ca.pem` into the current folder: `mailflow ca` for a world
/// kept in a `--data` folder (the same CA across restarts), else the
/// certificate itself, written out by `printf` (this world's CA is new at
/// every start). One line each, so it pastes as it is.
pub fn get_ca(world: &World) -> String {
    let mut out = String::new();
    match &world.options.data_dir {
        Some(dir) => {
            let _ = writeln!(out, "\nTrust the world's CA (kept in {}; the same after a restart):", dir.display());
            let _ = writeln!(out, "  mailflow ca --data {} -o ca.pem", single_quoted(&dir.display().to_string()));
        }
        None => {
            let _ = writeln!(
                out,
                "\nTrust the world's CA: save it as ca.pem (a new one at every start; with --data DIR it is kept: mailflow ca --data DIR -o ca.pem):"
            );
            let lines: Vec<String> = world.tls.ca.pem().lines().map(single_quoted).collect();
            let _ = writeln!(out, "  printf '%s\\n' {} > ca.pem", lines.join(" "));
        }
    }
    out
}

/// The options that make a command below use TLS with `host` and check
/// its certificate against ca.pem: `curl` (upgrade with STARTTLS, or fail)
/// or `swaks`. Empty when the host has no TLS.
pub fn flags(world: &World, host: &str, program: &str) -> &'static str {
    match (offers(world, host), program) {
        (false, _) => "",
        (true, "swaks") => " --tls --tls-verify --tls-ca-path ca.pem",
        (true, _) => " --ssl-reqd --cacert ca.pem",
    }
}

/// See TLS at work: STARTTLS by hand with openssl, and the implicit-TLS
/// ports with curl, on the first host that serves each.
pub fn commands(world: &World) -> String {
    let s = &world.scenario;
    let serving = |service: Service| world.nodes.iter().find(|n| offers(world, &n.name) && s.hosts.get(&n.name).is_some_and(|h| h.services.contains(&service)));
    let user_of = |host: &str| s.users.iter().find(|(address, _)| s.home_host(address).as_deref() == Some(host));
    let mut lines = Vec::new();
    for (service, proto) in [(Service::Submission, "smtp"), (Service::Imap, "imap"), (Service::Pop3, "pop3")] {
        if let Some(node) = serving(service) {
            lines.push(format!("openssl s_client -starttls {proto} -connect {}:{} -CAfile ca.pem -crlf -brief", node.address, world.port(service)));
        }
    }
    if let Some(node) = serving(Service::Submissions)
        && let Some((user, account)) =
            s.users.iter().find(|(address, _)| s.clients.values().any(|c| &c.user == *address && c.submit_to.as_deref() == Some(&node.name)))
    {
        let to = super::recipient_for(s, user);
        let text = format!("From: {user}\\r\\nTo: {to}\\r\\nSubject: Hello over smtps\\r\\n\\r\\nSent with TLS from the first byte.\\r\\n");
        lines.push(format!("printf {} > tls-message.txt", single_quoted(&text)));
        lines.push(format!(
            "curl --cacert ca.pem smtps://{}:{} --mail-from {user} --mail-rcpt {to} --user {} --upload-file tls-message.txt",
            node.address,
            world.port(Service::Submissions),
            single_quoted(&format!("{user}:{}", account.mail_password()))
        ));
    }
    for (service, scheme, path) in [(Service::Imaps, "imaps", "/INBOX;UID=1"), (Service::Pop3s, "pop3s", "/1")] {
        if let Some(node) = serving(service)
            && let Some((user, account)) = user_of(&node.name)
        {
            let url = format!("{scheme}://{}:{}{path}", node.address, world.port(service));
            lines.push(format!("curl --cacert ca.pem {} -u {}", single_quoted(&url), single_quoted(&format!("{user}:{}", account.mail_password()))));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nSee TLS yourself (the handshake, the certificate, then an encrypted session; in the folder with ca.pem):\n");
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
    out
}
