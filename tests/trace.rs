//! The trace: the numbered story of a run, recorded and replayed, and seen
//! whole by a viewer that joins late.

use std::sync::Arc;

use mailflow::scenario::DEFAULT_SCENARIO;
use mailflow::trace::record::{RecordError, load, record};
use mailflow::trace::{Event, Kind, Subscription};
use mailflow::world::World;

use crate::common::{GENEROUS, TempDir, dig_at, start_world};

/// Runs the built-in scenario to the end (plus one outside `dig`) and
/// closes the trace.
async fn finished_world() -> Arc<World> {
    let (world, net) = start_world(DEFAULT_SCENARIO).await;
    world.run_to_end().await;
    dig_at(&net, &["+short", "MX", "example.org"]).await;
    world.shutdown().await;
    world
}

/// Every event a subscription yields until the trace is closed.
async fn drain(mut events: Subscription) -> Vec<Arc<Event>> {
    let mut all = Vec::new();
    while let Some(event) = tokio::time::timeout(GENEROUS, events.next()).await.expect("the trace was never closed") {
        all.push(event);
    }
    all
}

fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

// `--record` writes JSON lines that `replay` reads back as the very same events.
#[tokio::test(flavor = "multi_thread")]
async fn record_then_load_gives_the_same_events() {
    let dir = TempDir::new("record");
    let path = dir.join("trace.jsonl");
    let (world, _) = start_world(DEFAULT_SCENARIO).await;
    let recorder = tokio::spawn({
        let (events, path) = (world.trace.subscribe(0), path.clone());
        async move { record(events, &path).await }
    });
    world.run_to_end().await;
    world.shutdown().await;
    tokio::time::timeout(GENEROUS, recorder).await.expect("the recorder never ended").expect("the recorder task").expect("recording works");

    let loaded = load(&path).expect("the recording loads");
    let kept: Vec<Event> = world.trace.since(0).iter().map(|e| (**e).clone()).collect();
    assert!(kept.len() > 10, "a run of the default scenario has a story: {kept:#?}");
    assert_eq!(loaded, kept);
    // One event per line, tagged with its kind, for `jq` and the web page.
    let text = std::fs::read_to_string(&path).expect("read the recording");
    assert_eq!(text.lines().count(), kept.len());
    let first: serde_json::Value = serde_json::from_str(text.lines().next().expect("a line")).expect("JSON");
    assert_eq!((first["seq"].as_u64(), first["kind"].as_str()), (Some(0), Some("world_up")));
}

// A recording that is not a trace says which line is wrong.
#[test]
fn loading_a_broken_recording_names_the_line() {
    let dir = TempDir::new("broken-record");
    let good = r#"{"seq":0,"sim_ms":0,"wall_ms":0,"from":"world","to":"world","protocol":"sim","kind":"world_up","summary":"up"}"#;
    let path = dir.write("trace.jsonl", &format!("{good}\n\n{{\"seq\": \"not a number\"}}\n"));
    match load(&path) {
        Err(RecordError::BadLine { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected a bad line 3, got {other:?}"),
    }
    assert!(matches!(load(&dir.join("missing.jsonl")), Err(RecordError::Io { .. })));
}

// A browser tab opened after the lesson still gets the whole story: every event once, in order, no gaps.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_subscriber_sees_every_event_once_in_order() {
    let world = finished_world().await;
    let kept = world.trace.since(0);
    let late = drain(world.trace.subscribe(0)).await;
    assert_eq!(seqs(&late), (0..kept.len() as u64).collect::<Vec<_>>());
    assert_eq!(late, kept);
    // The outside dig is part of the story too.
    assert!(late.iter().any(|e| matches!(&e.kind, Kind::DnsQuery { transport, .. } if transport == "UDP") && e.from.starts_with("127.")));
}

// A subscriber that follows the run live sees the same story as one that joins after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_subscriber_sees_the_same_story() {
    let (world, _) = start_world(DEFAULT_SCENARIO).await;
    let live = tokio::spawn(drain(world.trace.subscribe(0)));
    world.run_to_end().await;
    world.shutdown().await;
    let live = tokio::time::timeout(GENEROUS, live).await.expect("the live subscriber never ended").expect("the subscriber task");
    assert_eq!(seqs(&live), (0..world.trace.len()).collect::<Vec<_>>());
    assert_eq!(live, world.trace.since(0));
}

// A reconnecting viewer asks for "from event k on" and gets exactly that.
#[tokio::test(flavor = "multi_thread")]
async fn subscribe_from_k_starts_at_k() {
    let world = finished_world().await;
    let total = world.trace.len();
    let k = total / 2;
    assert!(k > 0);
    let from_k = world.trace.subscribe(k);
    assert_eq!(from_k.position(), k);
    let events = drain(from_k).await;
    assert_eq!(seqs(&events), (k..total).collect::<Vec<_>>());
    // At or past the end of a closed trace there is nothing more.
    assert!(drain(world.trace.subscribe(total)).await.is_empty());
    assert!(drain(world.trace.subscribe(total + 5)).await.is_empty());
}
