//! End-to-end benchmark: from a device's submission to the recipient's
//! mailbox, with every hop traced.
//!
//! It builds the world of the built-in scenario (Alice at school.test,
//! Bob at example.org) on a random loopback subnet, fast pace, without its
//! steps. Then alice-laptop submits N messages to smtp.school.test with
//! mailflow's own mail program (`mua::compose` + `mua::submit`: EHLO,
//! AUTH PLAIN, MAIL, RCPT, DATA, QUIT), from several tasks at once.
//! smtp.school.test queues each one, looks up the MX of example.org in the
//! fake DNS and relays it over SMTP to mx1.example.org, which stores it in
//! Bob's mailbox. The clock stops when all N are in the mailbox.
//!
//! Printed: messages/s from the first submission to the last message
//! stored, trace events per message, and an *estimate* of memory per
//! stored message (growth of the process's resident memory, VmRSS, divided
//! by N: it includes the trace's events, which are all kept, and whatever
//! the allocator holds on to). For scale, a baseline in the same run puts
//! the same N messages straight into a `Store`, with no SMTP and no trace.
//!
//! Run: `cargo bench --bench e2e` (N and tasks:
//! `MAILFLOW_E2E_MESSAGES=5000 MAILFLOW_E2E_TASKS=8 cargo bench --bench e2e`).
//! It is a figure printer, not a test: nothing here asserts a speed.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailflow::conductor::Pace;
use mailflow::mua::{Device, compose, submit};
use mailflow::scenario::{Scenario, SendStep};
use mailflow::store::Store;
use mailflow::trace::MessageRef;
use mailflow::world::{Subnet, World, WorldOptions};

const SENDER: &str = "alice@school.test";
const RECIPIENT: &str = "bob@example.org";
const DEVICE: &str = "alice-laptop";
const SUBMIT_TO: &str = "smtp.school.test";
const MAILBOX_HOST: &str = "mx1.example.org";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(default)
}

/// The resident memory of this process in KiB (Linux: /proc/self/status).
fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A loopback /16 of its own (127.20.0.0 ... 127.219.0.0), so the bench can
/// run beside a `mailflow demo` or the tests.
fn random_subnet() -> Subnet {
    use std::hash::{BuildHasher, RandomState};
    let octet = 20 + (RandomState::new().hash_one(std::process::id()) % 200) as u8;
    format!("127.{octet}.0.0/16").parse().expect("a loopback subnet")
}

fn main() {
    let n = env_number("MAILFLOW_E2E_MESSAGES", 2_000);
    let tasks = env_number("MAILFLOW_E2E_TASKS", 8);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(run(n, tasks));
}

async fn run(n: usize, tasks: usize) {
    // The built-in scenario's network, without its steps: the bench sends.
    let mut scenario = Scenario::default_scenario();
    scenario.steps.clear();
    let password = scenario.users[SENDER].password.clone();
    let subnet = random_subnet();
    let options = WorldOptions { subnet, pace: Pace::Fast, ..WorldOptions::default() };
    let world = World::start(scenario, options).await.expect("the world starts");

    let laptop = world.node(DEVICE).expect("the scenario has alice-laptop");
    let server = world.node(SUBMIT_TO).expect("the scenario has smtp.school.test");
    let device = Arc::new(Device { name: DEVICE.into(), address: IpAddr::V4(laptop.address), user: SENDER.into(), password });
    let server = (server.name.clone(), IpAddr::V4(server.address));
    let mailbox = world.hosts[MAILBOX_HOST].store.clone();

    // Write all messages first (about 1 KiB of text each, like the intake
    // benchmark), so both runs below time only the delivery.
    let body: String = (0..16).map(|i| format!("Line {i:02} of the benchmark message, long enough to look like a real one.\n")).collect();
    let messages: Vec<(Vec<u8>, Option<MessageRef>)> = (0..n)
        .map(|i| {
            let step = SendStep {
                client: DEVICE.into(),
                to: vec![RECIPIENT.into()],
                cc: vec![],
                bcc: vec![],
                subject: format!("Benchmark message {i}"),
                body: body.clone(),
                attachment: None,
                from: None,
            };
            compose(&device, &step, &world.net, world.next_message_number())
        })
        .collect();
    let average_size = messages.iter().map(|(raw, _)| raw.len()).sum::<usize>() / n;
    let messages = Arc::new(messages);

    println!("mailflow end-to-end benchmark: {n} messages of ~{average_size} bytes, {tasks} submitting tasks, subnet {subnet}");
    println!("path: {DEVICE} --submission (AUTH)--> {SUBMIT_TO} --queue, MX lookup, SMTP relay--> {MAILBOX_HOST} --> {RECIPIENT}'s mailbox");

    // --- mailflow: submission, queue, DNS, relay, mailbox; all traced ---
    let rss_before = vm_rss_kib();
    let events_before = world.trace.len();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut submitters = Vec::new();
    for _ in 0..tasks {
        let (world, device, server, messages, next, failures) =
            (world.clone(), device.clone(), server.clone(), messages.clone(), next.clone(), failures.clone());
        submitters.push(tokio::spawn(async move {
            let recipients = vec![RECIPIENT.to_string()];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((raw, message)) = messages.get(i) else { break };
                if submit(&world.net, &device, (&server.0, server.1), world.submission_service(&server.0), raw, message.clone(), &recipients).await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for submitter in submitters {
        submitter.await.expect("a submitting task");
    }
    let submitted = started.elapsed();
    let failed = failures.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} submissions failed: see the trace");
    // Relaying goes on after the last 250 from the submission server.
    let deadline = Instant::now() + Duration::from_secs(300);
    while mailbox.total() < n {
        assert!(Instant::now() < deadline, "only {} of {n} messages arrived within 5 minutes", mailbox.total());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let rss_after = vm_rss_kib();
    let events = world.trace.len() - events_before;
    let stored = mailbox.inbox(RECIPIENT).len();
    world.shutdown().await;

    // --- baseline: the same messages straight into a mailbox (the best
    // of 3 tries, each into a new Store: it takes milliseconds, so one
    // page-fault storm would otherwise decide the figure) ---
    let baseline = (0..3)
        .map(|_| {
            let store = Store::default();
            let baseline_started = Instant::now();
            for (raw, _) in messages.iter() {
                store.deliver(RECIPIENT, raw.clone(), Duration::ZERO).expect("delivered");
            }
            let elapsed = baseline_started.elapsed();
            assert_eq!(store.total(), n);
            elapsed
        })
        .min()
        .expect("three tries");

    let rate = n as f64 / elapsed.as_secs_f64();
    let baseline_rate = n as f64 / baseline.as_secs_f64();
    println!();
    println!(
        "end to end (submission -> mailbox): {rate:>10.0} messages/s  ({n} in {:.3} s; all submitted after {:.3} s)",
        elapsed.as_secs_f64(),
        submitted.as_secs_f64()
    );
    println!("stored in {RECIPIENT}'s mailbox:   {stored:>10}");
    println!("trace events per message:           {:>10.1}  ({events} events)", events as f64 / n as f64);
    match (rss_before, rss_after) {
        (Some(before), Some(after)) => println!(
            "memory per stored message:          {:>10.1} KiB  (estimate: VmRSS {before} -> {after} KiB over {n} messages; includes the kept trace events)",
            after.saturating_sub(before) as f64 / n as f64
        ),
        _ => println!("memory per stored message:          (no /proc/self/status here)"),
    }
    println!("baseline (Store::deliver, no SMTP): {baseline_rate:>10.0} messages/s  ({n} in {:.3} ms, best of 3)", baseline.as_secs_f64() * 1000.0);
    println!("ratio end to end / baseline:        {:>10.5}  (the baseline is only a floor for scale: no network, no trace)", rate / baseline_rate);
}
