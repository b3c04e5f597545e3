//! The "POP3 vs IMAP" lesson end to end: the same two messages fetched by
//! IMAP on Bob's phone (kept on the server, marked \Seen) and then by POP3
//! on his old laptop (downloaded and deleted), so the phone finds nothing.

use crate::imap_common;

use imap_common::*;
use mailflow::scenario::Scenario;
use mailflow::trace::{Direction, Kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_keeps_pop3_takes_away() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pop3-vs-imap.json");
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let world = start(scenario).await;
    world.run_to_end().await;
    let events = world.trace.since(0);
    let story = || events.iter().map(|e| format!("{} {} {}→{} {}", e.seq, e.sim_ms, e.from, e.to, e.summary)).collect::<Vec<_>>().join("\n");
    let line = |from: &str, text: &str| {
        events
            .iter()
            .find(|e| e.from == from && matches!(&e.kind, Kind::Line { direction: Direction::ToServer, line } if line.contains(text)))
            .map(|e| (e.seq, e.sim_ms))
            .unwrap_or_else(|| panic!("{from} never sent {text:?}:\n{}", story()))
    };

    // Both messages reach Bob's mailbox before anyone fetches.
    let delivered: Vec<u64> =
        events.iter().filter(|e| matches!(&e.kind, Kind::Delivered { mailbox, .. } if mailbox == "bob@example.org")).map(|e| e.sim_ms).collect();
    assert_eq!(delivered, vec![0, 10_000], "{}", story());

    // At 1m the phone downloads both over IMAP (BODY[] marks them \Seen)...
    let (imap_fetch, at) = line("bob-phone", "UID FETCH 1,2 BODY[]");
    assert_eq!(at, 60_000);
    // ...at 2m the laptop takes both over POP3 and deletes them at QUIT...
    let (dele, at) = line("bob-old-laptop", "DELE 2");
    assert_eq!(at, 120_000);
    assert!(dele > imap_fetch);
    let quit_reply = events
        .iter()
        .find(|e| e.to == "bob-old-laptop" && e.seq > dele && matches!(&e.kind, Kind::Line { direction: Direction::ToClient, line } if line.starts_with("+OK")))
        .map(|e| e.seq);
    assert!(quit_reply.is_some(), "{}", story());
    // The removal is an event of its own, so a viewer can keep count.
    let removed = events.iter().find(|e| matches!(&e.kind, Kind::Removed { mailbox, folder, count: 2 } if mailbox == "bob@example.org" && folder == "INBOX"));
    assert!(removed.is_some_and(|e| e.from == "mx1.example.org" && e.sim_ms == 120_000 && e.seq > dele), "{}", story());
    // ...so at 3m the phone finds an empty INBOX.
    let empty = events.iter().find(|e| e.to == "bob-phone" && e.sim_ms == 180_000 && matches!(&e.kind, Kind::Line { line, .. } if line.contains("* 0 EXISTS")));
    assert!(empty.is_some(), "the phone should see 0 messages at 3m:\n{}", story());

    // What each leaves behind: the server has nothing, each device has copies.
    assert!(world.hosts["mx1.example.org"].store.inbox("bob@example.org").is_empty());
    assert_eq!(world.net.devices.messages("bob-phone").len(), 2);
    assert_eq!(world.net.devices.messages("bob-old-laptop").len(), 2);
}
