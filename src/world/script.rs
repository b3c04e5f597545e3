//! Running a scenario's steps on the simulated clock.
//!
//! The script sleeps (in simulated time) until each step's `at`, announces
//! the step, and starts its action as a task of its own, so a long action
//! (a message waiting 15 minutes for a retry) never delays the next step.
//! Steps due at the same time start in file order.

use std::sync::Arc;

use hickory_proto::rr::RecordType;

use super::World;
use crate::dns::MailRoute;
use crate::dns::zone::ZoneError;
use crate::mua::{Device, compose, deliver_direct, submit};
use crate::scenario::{FetchProtocol, FetchStep, LookupKind, RecordSpec, SendStep, Service, Step};
use crate::trace::{Draft, Kind, Protocol};

pub fn start(world: Arc<World>) -> tokio::task::JoinHandle<()> {
    // Taken before spawning, so the world never looks finished before the
    // script has even begun.
    let activity = world.conductor.clock().activity();
    tokio::spawn(async move {
        let steps = world.scenario.steps.clone();
        let mut order: Vec<usize> = (0..steps.len()).collect();
        order.sort_by_key(|&i| steps[i].at); // stable: ties keep file order
        for index in order {
            let step = steps[index].clone();
            activity.sleep_until(step.at.0).await;
            let action = step.actions().first().copied().unwrap_or("note").to_string();
            world.trace.emit(
                Draft::new("script", "script", Protocol::Sim, Kind::Step { index, action }, format!("step {}: {}", index + 1, describe(&step)))
                    .explain_opt(step.explain.clone()),
            );
            if let Some(quiz) = &step.quiz {
                // The story stops here until the answer is revealed: the
                // next steps wait, and so does every hop (world::quiz).
                super::quiz::run(&world, index, quiz).await;
                continue;
            }
            let (world, work) = (world.clone(), activity.clone());
            tokio::spawn(async move {
                run(&world, &step).await;
                drop(work);
            });
        }
    })
}

/// The step in a few words.
pub fn describe(step: &Step) -> String {
    if let Some(send) = &step.send {
        let mut all: Vec<&str> = send.to.iter().chain(&send.cc).chain(&send.bcc).map(String::as_str).collect();
        all.dedup();
        return format!("{} sends \"{}\" to {}", send.client, send.subject, all.join(", "));
    }
    if let Some(fetch) = &step.fetch {
        return format!("{} fetches new mail", fetch.client);
    }
    if let Some(host) = &step.down {
        return format!("{host} goes down");
    }
    if let Some(host) = &step.up {
        return format!("{host} comes back up");
    }
    if let Some(lookup) = &step.lookup {
        return format!("{} looks up the {:?} records of {}", lookup.from, lookup.kind, lookup.name);
    }
    if let Some(dns) = &step.dns {
        return format!("the DNS records of {} change", dns.domain);
    }
    if let Some(note) = &step.note {
        return note.clone();
    }
    if let Some(quiz) = &step.quiz {
        return format!("a question for the class ({} choices)", quiz.choices.len());
    }
    if let Some(revoke) = &step.revoke {
        return format!("{} revokes the app password {:?}", revoke.user, revoke.app_password);
    }
    if let Some(attack) = &step.attack {
        if !attack.passwords.is_empty() {
            return format!("{} tries a password it knows on {}", attack.from, attack.target);
        }
        return format!("{} starts guessing {}'s password", attack.from, attack.target);
    }
    "the teacher explains".into()
}

async fn run(world: &World, step: &Step) {
    if let Some(send) = &step.send {
        send_message(world, send).await;
    }
    if let Some(fetch) = &step.fetch {
        fetch_mail(world, fetch).await;
    }
    if let Some(host) = step.down.as_ref().and_then(|h| world.hosts.get(h)) {
        host.set_up(false);
    }
    if let Some(host) = step.up.as_ref().and_then(|h| world.hosts.get(h)) {
        host.set_up(true);
    }
    if let Some(lookup) = &step.lookup {
        let Some(resolver) = world.lookup_for(&lookup.from) else { return };
        match lookup.kind {
            LookupKind::MX => {
                // The whole mail-routing story, as an MTA does it.
                let route = resolver.mail_route(&lookup.name, None).await;
                let summary = match route {
                    Ok(MailRoute::Servers { servers, implicit }) => {
                        let list: Vec<String> = servers
                            .iter()
                            .map(|s| format!("{} ({})", s.name, s.addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")))
                            .collect();
                        format!("mail for {} goes to {}{}", lookup.name, list.join(", then "), if implicit { " (no MX: the domain's own address)" } else { "" })
                    }
                    Ok(MailRoute::NullMx) => format!("{} accepts no mail (null MX)", lookup.name),
                    Ok(MailRoute::NoSuchDomain) => format!("mail for {} cannot be delivered: no such domain", lookup.name),
                    Err(err) => format!("{err}; a mail server would try again later"),
                };
                world.trace.emit(Draft::new(&lookup.from, &lookup.from, Protocol::Dns, Kind::Note, summary));
            }
            other => {
                let rtype = match other {
                    LookupKind::A => RecordType::A,
                    LookupKind::AAAA => RecordType::AAAA,
                    LookupKind::TXT => RecordType::TXT,
                    LookupKind::CNAME => RecordType::CNAME,
                    LookupKind::MX => RecordType::MX,
                };
                resolver.query(&lookup.name, rtype, None).await;
            }
        }
    }
    if let Some(dns) = &step.dns {
        let _ = change_zone(world, &dns.domain, &dns.records, format!("the zone {} now has new records", dns.domain));
    }
    if let Some(plan) = step.attack.as_ref().and_then(|a| super::attack::Plan::new(world, a)) {
        super::attack::start(world.net.clone(), plan);
    }
    if let Some(revoke) = &step.revoke {
        super::revoke::revoke(world, revoke);
    }
    // A `note` step says everything in its step event; nothing to run.
}

/// Replaces the records of `domain` while the world runs, and tells the
/// story: a `dns` step and the page's DNS editor (`web::dns_edit`) both
/// change zones here, so both are a `dns_change` event (or a `failure`)
/// with `summary`. The domain's DKIM key stays published unless `records`
/// has a key record of its own at that name (a lesson may revoke it).
/// Returns the zone's new records in zone-file form.
pub fn change_zone(world: &World, domain: &str, records: &[RecordSpec], summary: String) -> Result<Vec<String>, ZoneError> {
    let mut records = records.to_vec();
    for key in world.dkim.records_for(domain) {
        let key_name = crate::scenario::validate::owner_name(domain, key.name.as_deref());
        let own =
            records.iter().any(|r| r.kind == key.kind && crate::scenario::validate::owner_name(domain, r.name.as_deref()).eq_ignore_ascii_case(&key_name));
        if !own {
            records.push(key);
        }
    }
    match world.zones.replace(domain, &records, &world.host_addresses()) {
        Ok(records) => {
            world.trace.emit(
                Draft::new("dns", "dns", Protocol::Dns, Kind::DnsChange { domain: domain.to_string(), records: records.clone() }, summary)
                    .explain("DNS changes take effect for the next question; real resolvers may still remember old answers until their TTL runs out."),
            );
            Ok(records)
        }
        Err(err) => {
            world.trace.emit(Draft::new(
                "dns",
                "dns",
                Protocol::Dns,
                Kind::Failure { reason: err.to_string() },
                format!("the zone {domain} could not be changed"),
            ));
            Err(err)
        }
    }
}

/// A device writes a message and submits it to its server.
async fn send_message(world: &World, send: &SendStep) {
    let (Some(client), Some(node)) = (world.scenario.clients.get(&send.client), world.node(&send.client)) else { return };
    let password = world.scenario.device_password(client);
    let device = Device { name: send.client.clone(), address: node.address.into(), user: client.user.clone(), password };
    let (raw, message) = compose(&device, send, &world.net, world.next_message_number());
    let recipients: Vec<String> = send.to.iter().chain(&send.cc).chain(&send.bcc).cloned().collect();
    if client.direct
        && let Some(lookup) = world.lookup_for(&send.client)
    {
        // Failures are in the trace already; the story goes on.
        let _ = deliver_direct(&world.net, &device, &lookup, &raw, message, &recipients).await;
        return;
    }
    let Some(server) = client.submit_to.as_ref().and_then(|s| world.node(s)) else { return };
    let service = world.submission_service(&server.name);
    // Failures are in the trace already; the story goes on.
    let _ = submit(&world.device_net(&send.client), &device, (&server.name, server.address.into()), service, &raw, message, &recipients).await;
}

/// A device fetches its user's mail with its protocol.
async fn fetch_mail(world: &World, fetch: &FetchStep) {
    let (Some(client), Some(node)) = (world.scenario.clients.get(&fetch.client), world.node(&fetch.client)) else { return };
    let Some(server_name) = client.fetch_from.clone().or_else(|| world.scenario.home_host(&client.user)) else { return };
    let Some(server) = world.node(&server_name) else { return };
    let password = world.scenario.device_password(client);
    let device = Device { name: fetch.client.clone(), address: node.address.into(), user: client.user.clone(), password };
    let server = (server.name.as_str(), server.address.into());
    let net = world.device_net(&fetch.client);
    // Failures are in the trace already; the story goes on.
    let _ = match client.fetch {
        Some(FetchProtocol::Pop3) => crate::pop3::client::fetch(&net, &device, server, world.retrieval_service(server.0, Service::Pop3), fetch).await,
        Some(FetchProtocol::Imap) => crate::imap::client::fetch(&net, &device, server, world.retrieval_service(server.0, Service::Imap), fetch).await,
        None => return,
    };
}
