//! The `one-user-two-devices` scenario end to end: Bob's laptop IDLEs,
//! Alice's message arrives, Bob's phone reads it, and the laptop is told
//! — read on the phone, read on the laptop.

use crate::imap_common;

use imap_common::*;
use mailflow::scenario::Scenario;
use mailflow::store::Flag;
use mailflow::trace::{Direction, Event, Kind};

fn line_to(events: &[std::sync::Arc<Event>], to: &str, text: &str) -> Option<u64> {
    events.iter().find(|e| e.to == to && matches!(&e.kind, Kind::Line { direction: Direction::ToClient, line } if line.contains(text))).map(|e| e.seq)
}

fn line_from<'a>(events: &'a [std::sync::Arc<Event>], from: &str, text: &str) -> Option<&'a Event> {
    events.iter().find(|e| e.from == from && matches!(&e.kind, Kind::Line { direction: Direction::ToServer, line } if line.contains(text))).map(|e| e.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_on_the_phone_read_on_the_laptop() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/one-user-two-devices.json");
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!scenario.teacher_notes.is_empty() && !scenario.description.is_empty());
    let world = start(scenario).await;
    world.run_to_end().await;
    let events = world.trace.since(0);
    let dump = || events.iter().map(|e| format!("{} {}→{} {:?} {}", e.seq, e.from, e.to, e.kind, e.summary)).collect::<Vec<_>>().join("\n");

    // The laptop logs in, finds nothing, and IDLEs.
    let idle = line_to(&events, "bob-laptop", "+ idling").unwrap_or_else(|| panic!("the laptop never idled:\n{}", dump()));
    // Alice's message lands in Bob's mailbox after that...
    let delivered = events.iter().find(|e| matches!(&e.kind, Kind::Delivered { mailbox, .. } if mailbox == "bob@example.org")).expect("delivered");
    assert!(delivered.seq > idle && delivered.sim_ms == 10_000);
    // ...and the idling laptop hears of it without asking (the push and
    // the delivery note race each other, so only the time is compared).
    let exists = line_to(&events, "bob-laptop", "* 1 EXISTS").unwrap_or_else(|| panic!("no EXISTS pushed to the laptop:\n{}", dump()));
    assert!(exists > idle && events[exists as usize].sim_ms == 10_000);
    // The phone downloads the message (BODY[]), which marks it \Seen.
    let download = line_from(&events, "bob-phone", "UID FETCH 1 BODY[]").unwrap_or_else(|| panic!("the phone never fetched:\n{}", dump()));
    assert!(
        events.iter().any(
            |e| e.to == "bob-phone" && matches!(&e.kind, Kind::Data { direction: Direction::ToClient, preview, .. } if preview.contains("Subject: Lunch?"))
        )
    );
    // The laptop is told the message is now \Seen, after the phone read it.
    let seen = line_to(&events, "bob-laptop", "* 1 FETCH (UID 1 FLAGS (\\Seen))").unwrap_or_else(|| panic!("the laptop never heard of \\Seen:\n{}", dump()));
    assert!(seen > download.seq);
    let pushed = &events[seen as usize];
    assert!(pushed.summary.contains("without being asked"), "{}", pushed.summary);
    assert!(events.iter().any(|e| e.from == "bob-laptop" && e.summary.contains("learns that message 1 is now read")), "the laptop notes what it learned");
    assert!(events.iter().any(|e| e.explain.as_deref().is_some_and(|x| x.contains("read on the phone"))), "the multi-device lesson is explained");
    // The laptop idled for its 10 simulated minutes, then said DONE.
    let done = line_from(&events, "bob-laptop", "DONE").unwrap_or_else(|| panic!("no DONE:\n{}", dump()));
    assert!(done.seq > seen);
    assert!(done.sim_ms >= 10 * 60 * 1000, "DONE at {} ms", done.sim_ms);
    assert!(line_from(&events, "bob-laptop", "LOGOUT").is_some());
    // The message stays on the server, read.
    let inbox = world.hosts["mx1.example.org"].store.inbox("bob@example.org");
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].flags.contains(&Flag::Seen));
    assert!(!events.iter().any(|e| matches!(e.kind, Kind::Failure { .. })), "no failures:\n{}", dump());
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_steps_flag_move_and_delete() {
    let steps = r#"[
      { "at": "0s", "send": { "client": "alice-laptop", "to": ["bob@example.org"], "subject": "one", "body": "1" } },
      { "at": "1m", "fetch": { "client": "bob-phone", "flag": true, "move_to": "Archive" } },
      { "at": "2m", "send": { "client": "alice-laptop", "to": ["bob@example.org"], "subject": "two", "body": "2" } },
      { "at": "3m", "fetch": { "client": "bob-phone", "delete": true } },
      { "at": "4m", "fetch": { "client": "bob-phone" } }
    ]"#;
    let world = start(scenario(steps, "")).await;
    world.run_to_end().await;
    let store = &world.hosts["mx1.example.org"].store;
    assert!(store.inbox("bob@example.org").is_empty(), "moved, then deleted");
    let archive = store.snapshot("bob@example.org", "Archive").expect("the folder was created");
    assert_eq!(archive.messages.len(), 1);
    let flags = &archive.messages[0].flags;
    assert!(flags.contains(&Flag::Seen) && flags.contains(&Flag::Flagged) && !flags.contains(&Flag::Deleted), "{flags:?}");
    let events = world.trace.since(0);
    let notes: Vec<&str> = events.iter().filter(|e| e.from == "bob-phone" && matches!(e.kind, Kind::Note)).map(|e| e.summary.as_str()).collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].contains("\"one\"") && notes[1].contains("\"two\"") && notes[2].contains("no new mail"), "{notes:?}");
    assert!(!events.iter().any(|e| matches!(e.kind, Kind::Failure { .. })));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_failure_in_the_trace() {
    let world = start(scenario(r#"[ { "at": "0s", "fetch": { "client": "bob-phone" } } ]"#, "")).await;
    // Change nothing in the world, but give the device a wrong password
    // through the client API directly.
    let node = world.node("bob-phone").unwrap();
    let device = mailflow::mua::Device { name: "bob-phone".into(), address: node.address.into(), user: "bob@example.org".into(), password: "wrong".into() };
    let mx = world.node("mx1.example.org").unwrap();
    let step = world.scenario.steps[0].fetch.clone().unwrap();
    let result = mailflow::imap::client::fetch(&world.net, &device, ("mx1.example.org", mx.address.into()), mailflow::scenario::Service::Imap, &step).await;
    assert!(result.unwrap_err().contains("login refused"));
    let events = world.trace.since(0);
    assert!(events.iter().any(|e| matches!(&e.kind, Kind::Failure { reason } if reason.contains("AUTHENTICATIONFAILED"))));
    assert!(events.iter().any(|e| matches!(&e.kind, Kind::Line { direction: Direction::ToClient, line } if line.contains("NO [AUTHENTICATIONFAILED]"))));
    world.shutdown().await;
}
