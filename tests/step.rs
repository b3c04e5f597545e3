//! Step mode: every hop (a DNS question, a DNS answer) waits for the
//! teacher's step, so the class sees the question leave before the answer
//! comes back.

use std::sync::Arc;
use std::time::Duration;

use mailflow::conductor::Pace;
use mailflow::trace::{Event, Kind, Subscription};
use mailflow::world::World;

use crate::common::{GENEROUS, Net, start_world_paced};

const SCENARIO: &str = r#"{
  "title": "Step by step",
  "domains": {
    "school.test": {},
    "example.org": { "records": [ { "type": "MX", "preference": 10, "exchange": "mx1.example.org" } ] }
  },
  "hosts": {
    "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] },
    "smtp.school.test": { "services": ["smtp"], "domains": ["school.test"] }
  },
  "steps": [
    { "at": "0s", "note": "Watch the question leave and the answer come back." },
    { "at": "1s", "lookup": { "from": "smtp.school.test", "name": "example.org", "type": "MX" } }
  ]
}"#;

/// A chance for a hop that should be held to slip through anyway; a
/// correct conductor holds it for ever, so this is no timing assertion.
const SETTLE: Duration = Duration::from_millis(100);

async fn step_world() -> (Arc<World>, Net) {
    start_world_paced(SCENARIO, Pace::Step).await
}

fn is_dns(event: &Event) -> bool {
    matches!(event.kind, Kind::DnsQuery { .. } | Kind::DnsAnswer { .. })
}

fn dns_count(world: &World) -> usize {
    world.trace.since(0).iter().filter(|e| is_dns(e)).count()
}

/// Waits until some hop waits for a step, and returns the waiting hops.
async fn hops_waiting(world: &World) -> Vec<String> {
    let mut changes = world.conductor.watch_waiting();
    loop {
        let waiting = world.conductor.waiting();
        if !waiting.is_empty() {
            return waiting;
        }
        tokio::time::timeout(GENEROUS, changes.changed()).await.expect("no hop came to wait for a step").expect("the conductor is alive");
    }
}

/// The next DNS event of the trace.
async fn next_dns_event(events: &mut Subscription) -> Arc<Event> {
    loop {
        let event = tokio::time::timeout(GENEROUS, events.next()).await.expect("no event came").expect("the trace ended early");
        if is_dns(&event) {
            return event;
        }
    }
}

// Each step lets exactly one hop move: the question appears, then (one step later) the answer, and so on.
#[tokio::test(flavor = "multi_thread")]
async fn each_step_moves_one_dns_hop() {
    let (world, net) = step_world().await;
    let mut events = world.trace.subscribe(0);
    let run = tokio::spawn({
        let world = world.clone();
        async move { world.run_to_end().await }
    });
    let hops = [
        ("smtp.school.test asks DNS: which servers take mail for example.org? (MX)", "dns_query"),
        ("DNS answers: mx1.example.org (preference 10)", "dns_answer"),
        ("smtp.school.test asks DNS: what is the IPv4 address of mx1.example.org? (A)", "dns_query"),
        (&*format!("DNS answers: mx1.example.org is at {}", net.addr(2)), "dns_answer"),
    ];
    for (moved, (hop, kind)) in hops.iter().enumerate() {
        assert_eq!(hops_waiting(&world).await, vec![hop.to_string()], "hop {moved}");
        tokio::time::sleep(SETTLE).await;
        assert_eq!(dns_count(&world), moved, "hop {moved} ({hop}) moved before its step");
        if moved == 0 {
            // The step itself is announced before its first hop waits.
            assert!(world.trace.since(0).iter().any(|e| matches!(e.kind, Kind::Step { index: 1, .. })), "the lookup step was not announced");
        }
        assert!(world.conductor.step(), "a hop was waiting");
        let event = next_dns_event(&mut events).await;
        let json = serde_json::to_value(&*event).expect("events serialize");
        assert_eq!(json["kind"], *kind, "hop {moved}: {event:?}");
        assert_eq!(event.summary, *hop);
        assert_eq!(event.sim_ms, 1000, "stepping takes no simulated time");
    }
    tokio::time::timeout(GENEROUS, run).await.expect("the run did not finish").expect("the run task");
    assert_eq!(dns_count(&world), hops.len());
    assert!(world.conductor.waiting().is_empty());
    assert!(!world.conductor.step(), "nothing is left to step");
    let last = world.trace.since(0).last().cloned().expect("events");
    assert_eq!(last.kind, Kind::Finished);
    world.shutdown().await;
}

// A step pressed while nothing waits is not saved up: the next hop still waits for its own step.
#[tokio::test(flavor = "multi_thread")]
async fn steps_pressed_early_do_not_carry_over() {
    let (world, _) = step_world().await;
    assert!(!world.conductor.step(), "nothing waits yet");
    assert!(!world.conductor.step(), "nothing waits yet");
    let steps = world.start_steps();
    assert_eq!(hops_waiting(&world).await.len(), 1);
    tokio::time::sleep(SETTLE).await;
    assert_eq!(dns_count(&world), 0, "an early step let a hop through");
    world.conductor.set_pace(Pace::Fast);
    steps.await.expect("the script task");
    world.shutdown().await;
}

// Leaving step mode (the teacher presses play) releases the waiting hop and the story plays to the end.
#[tokio::test(flavor = "multi_thread")]
async fn leaving_step_mode_plays_the_rest() {
    let (world, _) = step_world().await;
    let run = tokio::spawn({
        let world = world.clone();
        async move { world.run_to_end().await }
    });
    hops_waiting(&world).await;
    assert_eq!(dns_count(&world), 0);
    world.conductor.set_pace(Pace::Fast);
    tokio::time::timeout(GENEROUS, run).await.expect("the run did not finish").expect("the run task");
    assert_eq!(dns_count(&world), 4);
    assert!(world.conductor.waiting().is_empty());
    world.shutdown().await;
}

// A hop whose task is given up (aborted, timed out) while it waits must leave the queue, or
// the next step would be spent on a ghost and the prompt would name a hop that no longer exists.
#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_hop_leaves_the_queue() {
    let conductor = mailflow::conductor::Conductor::new(Pace::Step);
    let mut changes = conductor.watch_waiting();
    let ghost = tokio::spawn({
        let conductor = conductor.clone();
        async move { conductor.pass("a hop that will be given up").await }
    });
    while conductor.waiting().is_empty() {
        tokio::time::timeout(GENEROUS, changes.changed()).await.expect("the hop never waited").expect("the conductor is alive");
    }
    ghost.abort();
    assert!(ghost.await.expect_err("aborted").is_cancelled());
    assert!(conductor.waiting().is_empty(), "a ghost hop still waits: {:?}", conductor.waiting());
    assert!(!conductor.step(), "a step was spent on a ghost hop");

    // The next real hop waits for its own step.
    let real = tokio::spawn({
        let conductor = conductor.clone();
        async move { conductor.pass("a real hop").await }
    });
    while conductor.waiting().is_empty() {
        tokio::time::timeout(GENEROUS, changes.changed()).await.expect("the hop never waited").expect("the conductor is alive");
    }
    tokio::time::sleep(SETTLE).await;
    assert!(!real.is_finished(), "the real hop moved without a step");
    assert!(conductor.step());
    tokio::time::timeout(GENEROUS, real).await.expect("the real hop never moved").expect("the hop task");
}
