//! The "moving the mail server" lesson: an MX record changed while the
//! world runs redirects mail at once, and a message held by the old server
//! follows the new record at its next retry.

use crate::imap_common;

use imap_common::*;
use mailflow::scenario::Scenario;
use mailflow::trace::{Kind, QueueState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_follows_a_changed_mx_record() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/mx-change.json");
    let world = start(Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))).await;
    world.run_to_end().await;
    let events = world.trace.since(0);
    let story = || events.iter().map(|e| format!("{} {} {}", e.sim_ms, e.from, e.summary)).collect::<Vec<_>>().join("\n");
    let relayed = |from: &str| -> Vec<(u64, String)> {
        events
            .iter()
            .filter(|e| e.from == from && matches!(&e.kind, Kind::Queue { state: QueueState::Relayed, .. }))
            .map(|e| (e.sim_ms, e.summary.clone()))
            .collect()
    };

    // Before the change the school's server can only reach the old MX, which holds the message.
    let school = relayed("smtp.school.test");
    assert_eq!(school.len(), 2, "{}", story());
    assert!(school[0].0 == 0 && school[0].1.contains("old-mx.example.org"), "{}", story());
    assert!(events.iter().any(|e| e.from == "old-mx.example.org" && matches!(&e.kind, Kind::Queue { state: QueueState::Deferred, .. })));
    // The zone changes at 5m; the held message follows the new MX at once...
    assert!(events.iter().any(|e| e.sim_ms == 300_000 && matches!(&e.kind, Kind::DnsChange { domain, .. } if domain == "example.org")));
    let old = relayed("old-mx.example.org");
    assert!(old.len() == 1 && old[0].0 >= 300_000 && old[0].1.contains("new-mx.example.org"), "{}", story());
    // ...and the next message goes straight to the new server.
    assert!(school[1].0 == 360_000 && school[1].1.contains("new-mx.example.org"), "{}", story());
    assert_eq!(world.hosts["new-mx.example.org"].store.inbox("bob@example.org").len(), 2);
}
