//! The checks that JSON types alone cannot express: every name points at
//! something that exists, every record has the fields its type needs, and
//! nothing points off this machine.

use std::collections::HashSet;
use std::net::IpAddr;

use super::locate::FieldPath;
use super::model::*;

type Problems = Vec<(FieldPath, String)>;

/// Returns every problem found (empty when the scenario is sound).
pub fn check(s: &Scenario) -> Problems {
    let mut out = Problems::new();
    let root = FieldPath::root();
    if s.title.trim().is_empty() {
        out.push((root.key("title"), "found an empty title, expected a few words naming the lesson".into()));
    }

    // Names that have an address in the scenario: hosts, plus A/AAAA owners.
    let mut addressed: HashSet<String> = s.hosts.keys().cloned().collect();
    // A `dns` step may publish a new server and its MX at once, so its
    // addresses count too.
    let zones = s.domains.iter().map(|(d, z)| (d, &z.records));
    let changes = s.steps.iter().filter_map(|step| step.dns.as_ref()).map(|c| (&c.domain, &c.records));
    for (domain, records) in zones.chain(changes) {
        for record in records {
            if matches!(record.kind, RecordKind::A | RecordKind::AAAA) {
                addressed.insert(owner_name(domain, record.name.as_deref()));
            }
        }
    }

    for (domain, zone) in &s.domains {
        let path = root.key("domains").key(domain);
        if let Err(why) = check_name(domain) {
            out.push((path.clone(), format!("found {domain:?}, expected a domain name ({why})")));
        }
        for (i, record) in zone.records.iter().enumerate() {
            check_record(domain, record, &path.key("records").index(i), &addressed, &mut out);
        }
    }

    check_tls_settings(&s.settings.tls, root.key("settings").key("tls"), true, &mut out);
    let domain_list = quoted(s.domains.keys());
    for (name, host) in &s.hosts {
        let path = root.key("hosts").key(name);
        if let Err(why) = check_name(name) {
            out.push((path.clone(), format!("found {name:?}, expected a host name ({why})")));
        } else if zone_of(s, name).is_none() {
            out.push((path.clone(), format!("host {name:?} is not inside any domain of `domains` ({domain_list}), so it cannot get an A record")));
        }
        let mut seen = HashSet::new();
        for (i, service) in host.services.iter().enumerate() {
            if !seen.insert(service) {
                out.push((path.key("services").index(i), format!("{:?} is listed twice", service.name())));
            }
        }
        check_host_tls(s, host, &path, &mut out);
        for (field, list) in [("domains", &host.domains), ("backup_for", &host.backup_for)] {
            for (i, domain) in list.iter().enumerate() {
                if !s.domains.contains_key(domain) {
                    out.push((path.key(field).index(i), format!("found {domain:?}, expected one of the domains: {domain_list}")));
                }
            }
        }
        if let Some(address) = host.address
            && !address.is_loopback()
        {
            out.push((path.key("address"), format!("found {address}, expected a loopback address (127.x.x.x)")));
        }
    }

    let mut taken = std::collections::HashMap::new();
    for (name, host) in &s.hosts {
        if let Some(address) = host.address
            && let Some(other) = taken.insert(address, name)
        {
            out.push((root.key("hosts").key(name).key("address"), format!("{address} is already the address of {other:?}; every host needs its own")));
        }
    }

    let host_list = quoted(s.hosts.keys());
    for (address, user) in &s.users {
        let path = root.key("users").key(address);
        let Some((_, domain)) = address.rsplit_once('@').filter(|(local, d)| !local.is_empty() && check_name(d).is_ok()) else {
            out.push((path, format!("found {address:?}, expected a mail address like \"bob@example.org\"")));
            continue;
        };
        if !s.domains.contains_key(domain) {
            out.push((path.clone(), format!("the domain {domain:?} is not in `domains` ({domain_list})")));
        }
        check_second_factor(user, &path, &mut out);
        match &user.home {
            Some(home) if !s.hosts.contains_key(home) => {
                out.push((path.key("home"), format!("found {home:?}, expected one of the hosts: {host_list}")));
            }
            Some(_) => {}
            None if s.domains.contains_key(domain) && s.home_host(address).is_none() => {
                out.push((path.clone(), format!("no host lists {domain:?} in its `domains`, so this mailbox has no home; add it to a host or set `home`")));
            }
            None => {}
        }
        if let Some(forward) = &user.forward_to {
            let path = path.key("forward_to");
            if !is_address(forward) {
                out.push((path, format!("found {forward:?}, expected a mail address like \"bob@example.net\"")));
            } else if forward.rsplit_once('@').is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)) {
                out.push((path, format!("found {forward:?}, expected an address at another domain than {domain:?} (forwarding goes to another server)")));
            } else if let Some(cycle) = forward_cycle(s, address) {
                out.push((path, format!("forwarding goes round in a circle ({}): every message would travel forever", cycle.join(" → "))));
            }
        }
    }
    check_throttle(&s.settings.throttle, root.key("settings").key("throttle"), &mut out);

    let user_list = quoted(s.users.keys());
    for (name, client) in &s.clients {
        let path = root.key("clients").key(name);
        if s.hosts.contains_key(name) {
            out.push((path.clone(), format!("{name:?} is already a host name; give the device another name")));
        }
        if !s.users.contains_key(&client.user) {
            out.push((path.key("user"), format!("found {:?}, expected one of the users: {user_list}", client.user)));
        }
        if let Some(name) = &client.app_password
            && let Some(user) = s.users.get(&client.user)
            && !user.app_passwords.contains_key(name)
        {
            let names = quoted(user.app_passwords.keys());
            out.push((path.key("app_password"), format!("found {name:?}, expected one of the user's app passwords: {names}")));
        }
        if let Some(submit) = &client.submit_to {
            // Port 587 (STARTTLS) or port 465 (TLS from the first byte) will do.
            if s.hosts.get(submit).is_some_and(|h| h.services.contains(&Service::Submissions)) {
                check_service(s, submit, Service::Submissions, path.key("submit_to"), &mut out);
            } else {
                check_service(s, submit, Service::Submission, path.key("submit_to"), &mut out);
            }
        }
        if client.direct && client.submit_to.is_some() {
            out.push((
                path.key("direct"),
                "a device either submits to its own server (`submit_to`) or delivers straight to the MX (`direct`), not both".into(),
            ));
        }
        if let Some(protocol) = client.fetch {
            let service = match protocol {
                FetchProtocol::Pop3 => Service::Pop3,
                FetchProtocol::Imap => Service::Imap,
            };
            let from = client.fetch_from.clone().or_else(|| s.home_host(&client.user));
            match from {
                Some(host) => check_service(s, &host, service, path.key(if client.fetch_from.is_some() { "fetch_from" } else { "fetch" }), &mut out),
                None if s.users.contains_key(&client.user) => out.push((path.key("fetch"), "the user has no home host to fetch from; set `fetch_from`".into())),
                None => {}
            }
        } else if let Some(from) = &client.fetch_from {
            out.push((path.key("fetch_from"), format!("found {from:?} but no `fetch` protocol; add \"fetch\": \"imap\" or \"pop3\"")));
        }
    }

    for (i, step) in s.steps.iter().enumerate() {
        let path = root.key("steps").index(i);
        let actions = step.actions();
        if actions.len() != 1 && !(actions.is_empty() && step.explain.is_some()) {
            let found = if actions.is_empty() { "no action".to_string() } else { actions.join(" and ") };
            out.push((path.clone(), format!("found {found}, expected exactly one of: send, fetch, lookup, dns, down, up, note, quiz, attack, revoke")));
        }
        if let Some(send) = &step.send {
            let path = path.key("send");
            match s.clients.get(&send.client) {
                None => out.push((path.key("client"), format!("found {:?}, expected one of the clients: {}", send.client, quoted(s.clients.keys())))),
                Some(c) if c.submit_to.is_none() && !c.direct => {
                    out.push((path.key("client"), format!("client {:?} has no `submit_to` server (and is not `direct`), so it cannot send", send.client)))
                }
                Some(_) => {}
            }
            if send.to.is_empty() && send.cc.is_empty() && send.bcc.is_empty() {
                out.push((path.key("to"), "found no recipients, expected at least one address in `to`, `cc` or `bcc`".into()));
            }
            for (field, list) in [("to", &send.to), ("cc", &send.cc), ("bcc", &send.bcc)] {
                for (j, address) in list.iter().enumerate() {
                    if !is_address(address) {
                        out.push((path.key(field).index(j), format!("found {address:?}, expected a mail address like \"bob@example.org\"")));
                    }
                }
            }
            if let Some(from) = &send.from
                && !is_address(from)
            {
                out.push((path.key("from"), format!("found {from:?}, expected a mail address like \"principal@school.test\"")));
            }
            if let Some(attachment) = &send.attachment
                && attachment.size > 50 * 1024 * 1024
            {
                out.push((path.key("attachment").key("size"), format!("found {} bytes, expected at most 50 MiB", attachment.size)));
            }
        }
        if let Some(fetch) = &step.fetch {
            let path = path.key("fetch");
            match s.clients.get(&fetch.client) {
                None => out.push((path.key("client"), format!("found {:?}, expected one of the clients: {}", fetch.client, quoted(s.clients.keys())))),
                Some(c) => match c.fetch {
                    None => out.push((path.key("client"), format!("client {:?} has no `fetch` protocol, so it cannot fetch mail", fetch.client))),
                    Some(FetchProtocol::Pop3) if fetch.flag || fetch.delete || fetch.move_to.is_some() || fetch.idle.is_some() => {
                        out.push((path.clone(), "`flag`, `delete`, `move_to` and `idle` are IMAP features; this client uses POP3".into()))
                    }
                    Some(FetchProtocol::Imap) if fetch.keep => out.push((path.key("keep"), "`keep` is for POP3; IMAP always keeps mail on the server".into())),
                    Some(_) => {}
                },
            }
        }
        for (field, host) in [("down", &step.down), ("up", &step.up)] {
            if let Some(host) = host
                && !s.hosts.contains_key(host)
            {
                out.push((path.key(field), format!("found {host:?}, expected one of the hosts: {host_list}")));
            }
        }
        if let Some(lookup) = &step.lookup {
            if !s.hosts.contains_key(&lookup.from) && !s.clients.contains_key(&lookup.from) {
                out.push((
                    path.key("lookup").key("from"),
                    format!("found {:?}, expected a host ({host_list}) or a client ({})", lookup.from, quoted(s.clients.keys())),
                ));
            }
            if let Err(why) = check_name(&lookup.name) {
                out.push((path.key("lookup").key("name"), format!("found {:?}, expected a domain name ({why})", lookup.name)));
            }
        }
        if let Some(quiz) = &step.quiz {
            check_quiz(quiz, &path.key("quiz"), &mut out);
        }
        if let Some(attack) = &step.attack {
            check_attack(s, attack, path.key("attack"), &mut out);
        }
        if let Some(revoke) = &step.revoke {
            let path = path.key("revoke");
            match s.users.get(&revoke.user) {
                None => out.push((path.key("user"), format!("found {:?}, expected one of the users: {}", revoke.user, quoted(s.users.keys())))),
                Some(user) if !user.app_passwords.contains_key(&revoke.app_password) => out.push((
                    path.key("app_password"),
                    format!("found {:?}, expected one of {}'s app passwords: {}", revoke.app_password, revoke.user, quoted(user.app_passwords.keys())),
                )),
                Some(_) => {}
            }
        }
        if let Some(dns) = &step.dns {
            if !s.domains.contains_key(&dns.domain) {
                out.push((path.key("dns").key("domain"), format!("found {:?}, expected one of the domains: {domain_list}", dns.domain)));
            }
            for (j, record) in dns.records.iter().enumerate() {
                check_record(&dns.domain, record, &path.key("dns").key("records").index(j), &addressed, &mut out);
            }
        }
    }
    check_links(s, &root, &mut out);
    out
}

/// The eavesdropper's and the man in the middle's links join two nodes
/// of the world (hosts or clients).
fn check_links(s: &Scenario, root: &FieldPath, out: &mut Problems) {
    let known = |name: &String| s.hosts.contains_key(name) || s.clients.contains_key(name);
    let names = || format!("a host ({}) or a client ({})", quoted(s.hosts.keys()), quoted(s.clients.keys()));
    let tapped = s.eavesdropper.iter().flat_map(|e| e.links.iter().enumerate().map(|(i, l)| (root.key("eavesdropper").key("links").index(i), l)));
    let stripped = s.strip_starttls.iter().enumerate().map(|(i, l)| (root.key("strip_starttls").index(i), l));
    for (path, link) in tapped.chain(stripped) {
        for (j, name) in link.iter().enumerate() {
            if !known(name) {
                out.push((path.index(j), format!("found {name:?}, expected {}", names())));
            }
        }
        if link[0] == link[1] {
            out.push((path, format!("found the link {:?} → {:?}, expected two different nodes", link[0], link[1])));
        }
    }
}

/// Problems a lesson may have on purpose, reported by `mailflow check` as
/// warnings: SPF, DKIM and DMARC records receivers could not use (see
/// `auth::lint`).
pub fn warnings(s: &Scenario) -> Problems {
    let mut out = crate::auth::lint::scenario(s);
    out.extend(super::passwords::warnings(s));
    out
}

/// The circle `address`'s forwarding comes back to itself by, if it does.
fn forward_cycle(s: &Scenario, address: &str) -> Option<Vec<String>> {
    let key = |a: &str| a.to_ascii_lowercase();
    let users: std::collections::HashMap<String, &User> = s.users.iter().map(|(a, u)| (key(a), u)).collect();
    let mut path = vec![address.to_string()];
    let mut next = users.get(&key(address))?.forward_to.clone();
    while let Some(target) = next {
        path.push(target.clone());
        if key(&target) == key(address) {
            return Some(path);
        }
        if path.len() > users.len() + 1 {
            return None; // a circle that does not pass through `address`: reported at its own users
        }
        next = users.get(&key(&target)).and_then(|u| u.forward_to.clone());
    }
    None
}

/// A user's two-factor secret and app passwords (the secrets themselves
/// never appear in a problem: they would end up on the page).
fn check_second_factor(user: &User, path: &FieldPath, out: &mut Problems) {
    if let Some(two_factor) = &user.two_factor
        && let Err(why) = crate::mta::totp::secret_bytes(&two_factor.totp_secret)
    {
        out.push((path.key("two_factor").key("totp_secret"), format!("the secret cannot be used: {why}")));
    }
    for (name, password) in &user.app_passwords {
        let path = path.key("app_passwords").key(name);
        if name.trim().is_empty() || name.chars().count() > 64 {
            out.push((path.clone(), "expected a name of 1 to 64 characters (the device it is for)".into()));
        }
        if password.chars().filter(|c| !c.is_whitespace()).count() < 8 {
            out.push((path, "found an app password shorter than 8 characters; providers make them 16 random letters".into()));
        } else if *password == user.password {
            out.push((path, "found the account's main password; an app password must be a different one".into()));
        }
    }
}

/// Throttling that could work: something to count up to.
fn check_throttle(throttle: &ThrottleSettings, path: FieldPath, out: &mut Problems) {
    for (field, count) in [("lock_after", throttle.lock_after), ("address_lock_after", throttle.address_lock_after)] {
        if count == 0 {
            out.push((path.key(field), "found 0, expected at least 1 failure before a lock".into()));
        }
    }
    if throttle.max_delay < throttle.first_delay {
        out.push((path.key("max_delay"), format!("found {}, expected at least `first_delay` ({})", throttle.max_delay, throttle.first_delay)));
    }
}

/// Is this a plain `local@domain` address?
pub fn is_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && local.len() <= 64 && !local.contains(|c: char| c.is_whitespace() || "<>()[]\\,;:\"@".contains(c)) && check_name(domain).is_ok()
        }
        None => false,
    }
}

/// TLS settings that contradict each other (world-wide or one host's).
fn check_tls_settings(tls: &TlsSettings, path: FieldPath, world: bool, out: &mut Problems) {
    match (tls.policy, tls.plaintext_login) {
        (Some(TlsPolicy::Required), Some(true)) => {
            out.push((path.key("plaintext_login"), "found true with policy \"required\", expected false (required TLS means no login before it)".into()))
        }
        (Some(TlsPolicy::Off), Some(false)) => {
            out.push((path.key("plaintext_login"), "found false with policy \"off\", expected true (without TLS every login is plaintext)".into()))
        }
        _ => {}
    }
    if world && tls.certificate.is_some() {
        out.push((path.key("certificate"), "found a broken certificate for every host, expected it under one host's `tls`".into()));
    }
}

/// A host's TLS against its services.
fn check_host_tls(s: &Scenario, host: &Host, path: &FieldPath, out: &mut Problems) {
    if let Some(tls) = &host.tls {
        check_tls_settings(tls, path.key("tls"), false, out);
    }
    let (policy, _) = TlsSettings::effective(host.tls.as_ref(), &s.settings.tls);
    if policy == TlsPolicy::Off {
        for (i, service) in host.services.iter().enumerate() {
            if service.implicit_tls() {
                out.push((
                    path.key("services").index(i),
                    format!("{:?} speaks TLS from the first byte, but this host's TLS policy is \"off\"", service.name()),
                ));
            }
        }
    }
}

/// An attack needs a machine to start from, an account, and a server that
/// runs the login it uses.
fn check_attack(s: &Scenario, attack: &AttackStep, path: FieldPath, out: &mut Problems) {
    if !s.hosts.contains_key(&attack.from) && !s.clients.contains_key(&attack.from) {
        out.push((
            path.key("from"),
            format!("found {:?}, expected a host ({}) or a client ({})", attack.from, quoted(s.hosts.keys()), quoted(s.clients.keys())),
        ));
    }
    if !s.users.contains_key(&attack.target) {
        out.push((path.key("target"), format!("found {:?}, expected one of the users: {}", attack.target, quoted(s.users.keys()))));
    }
    match attack.server.clone().or_else(|| s.home_host(&attack.target)) {
        Some(host) => {
            let field = if attack.server.is_some() { "server" } else { "target" };
            check_service(s, &host, attack.protocol.service(), path.key(field), out)
        }
        None if s.users.contains_key(&attack.target) => out.push((path.key("server"), "the user has no home host; set `server`".into())),
        None => {}
    }
    if attack.max_tries == Some(0) {
        out.push((path.key("max_tries"), "found 0, expected at least 1".into()));
    }
}

fn check_service(s: &Scenario, host: &str, service: Service, path: FieldPath, out: &mut Problems) {
    match s.hosts.get(host) {
        None => out.push((path, format!("found {host:?}, expected one of the hosts: {}", quoted(s.hosts.keys())))),
        Some(h) if !h.services.contains(&service) => out.push((path, format!("host {host:?} does not run {:?}; add it to its `services`", service.name()))),
        Some(_) => {}
    }
}

fn check_record(domain: &str, r: &RecordSpec, path: &FieldPath, addressed: &HashSet<String>, out: &mut Problems) {
    let kind = format!("{:?}", r.kind);
    let (needs, allowed): (&[&str], &[&str]) = match r.kind {
        RecordKind::MX => (&["preference", "exchange"], &["preference", "exchange"]),
        RecordKind::A | RecordKind::AAAA => (&["address"], &["address"]),
        RecordKind::TXT => (&["text"], &["text"]),
        RecordKind::CNAME => (&["target"], &["target"]),
    };
    let present = [
        ("preference", r.preference.is_some()),
        ("exchange", r.exchange.is_some()),
        ("address", r.address.is_some()),
        ("text", r.text.is_some()),
        ("target", r.target.is_some()),
    ];
    for (field, is_set) in present {
        if needs.contains(&field) && !is_set {
            out.push((path.clone(), format!("an {kind} record needs `{field}`")));
        }
        if is_set && !allowed.contains(&field) {
            out.push((path.key(field), format!("`{field}` does not belong to an {kind} record (it takes {})", allowed.join(", "))));
        }
    }
    let owner = owner_name(domain, r.name.as_deref());
    if let Err(why) = check_name(&owner) {
        out.push((path.key("name"), format!("found {:?}, expected a name inside {domain:?} ({why})", r.name.as_deref().unwrap_or(""))));
    }
    match (r.kind, r.address) {
        (RecordKind::A, Some(IpAddr::V6(a))) => out.push((path.key("address"), format!("found {a}, expected an IPv4 address"))),
        (RecordKind::AAAA, Some(IpAddr::V4(a))) => out.push((path.key("address"), format!("found {a}, expected an IPv6 address"))),
        (RecordKind::A, Some(IpAddr::V4(a))) if !a.is_loopback() => {
            out.push((path.key("address"), format!("found {a}, expected a loopback address (127.x.x.x): mailflow never sends traffic off this machine")))
        }
        _ => {}
    }
    if let Some(exchange) = &r.exchange {
        if exchange == "." {
            if r.preference.is_some_and(|p| p != 0) {
                out.push((path.key("preference"), "a null MX (exchange \".\") must have preference 0 (RFC 7505)".into()));
            }
        } else if !addressed.contains(exchange) {
            out.push((
                path.key("exchange"),
                format!("found {exchange:?}, expected one of the hosts or a name given an A record in `domains` (or \".\" for a null MX)"),
            ));
        }
    }
    if let Some(target) = &r.target
        && let Err(why) = check_name(target)
    {
        out.push((path.key("target"), format!("found {target:?}, expected a domain name ({why})")));
    }
    if let Some(text) = &r.text
        && text.len() > 2000
    {
        out.push((path.key("text"), format!("found {} characters, expected at most 2000", text.len())));
    }
}

/// The full owner name of a record written as `name` inside `domain`.
pub fn owner_name(domain: &str, name: Option<&str>) -> String {
    match name {
        None | Some("@") | Some("") => domain.to_string(),
        Some(n) if n == domain || n.ends_with(&format!(".{domain}")) => n.to_string(),
        Some(n) => format!("{n}.{domain}"),
    }
}

/// Is this a plausible DNS name (RFC 1035 lengths, letters, digits, `-`,
/// and `_` for names like `_dmarc`)? Lowercase only, to keep lessons tidy.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label".into());
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters".into());
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')) {
            return Err(format!("{c:?} is not allowed; use lowercase letters, digits and '-'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'".into());
        }
    }
    Ok(())
}

/// The scenario domain that contains `name` (longest match).
pub fn zone_of<'a>(s: &'a Scenario, name: &str) -> Option<&'a str> {
    s.domains.keys().filter(|d| name == d.as_str() || name.ends_with(&format!(".{d}"))).max_by_key(|d| d.len()).map(String::as_str)
}

fn quoted<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<String> = names.map(|n| format!("{n:?}")).collect();
    if list.is_empty() { "none defined".into() } else { list.join(", ") }
}

/// The problems of one record changed while the world runs (the page's
/// DNS editor), as [`check`] finds them in a `dns` step: the fields its
/// type needs, a name inside `domain`, and addresses that stay on this
/// machine (A in 127.0.0.0/8, AAAA only `::1`). An MX may name a server
/// with no address: pointing mail nowhere is a lesson of its own.
pub fn check_live_record(domain: &str, record: &RecordSpec) -> Vec<String> {
    let mut out = Problems::new();
    let addressed: HashSet<String> = record.exchange.iter().cloned().collect();
    check_record(domain, record, &FieldPath::root(), &addressed, &mut out);
    if let (RecordKind::AAAA, Some(IpAddr::V6(a))) = (record.kind, record.address)
        && !a.is_loopback()
    {
        out.push((FieldPath::root().key("address"), format!("found {a}, expected ::1: mailflow never sends traffic off this machine")));
    }
    out.into_iter().map(|(path, message)| if path.0.is_empty() { message } else { format!("{path}: {message}") }).collect()
}

/// A quiz the page can show: a question, 2 to 5 distinct choices, the
/// answer among them, and an explanation for the reveal.
fn check_quiz(quiz: &QuizStep, path: &FieldPath, out: &mut Problems) {
    if quiz.question.trim().is_empty() {
        out.push((path.key("question"), "found an empty question, expected a sentence for the class".into()));
    }
    if !(2..=5).contains(&quiz.choices.len()) {
        out.push((path.key("choices"), format!("found {} choices, expected 2 to 5", quiz.choices.len())));
    }
    let mut seen = HashSet::new();
    for (i, choice) in quiz.choices.iter().enumerate() {
        if choice.trim().is_empty() {
            out.push((path.key("choices").index(i), "found an empty choice, expected a few words".into()));
        } else if !seen.insert(choice.as_str()) {
            out.push((path.key("choices").index(i), format!("{choice:?} is listed twice")));
        }
    }
    if quiz.answer_index().is_none() {
        out.push((path.key("answer"), format!("found {:?}, expected one of the choices: {}", quiz.answer, quoted(quiz.choices.iter()))));
    }
    if quiz.explanation.trim().is_empty() {
        out.push((path.key("explanation"), "found no explanation, expected a sentence saying why the answer is right (shown at the reveal)".into()));
    }
}
