//! The live stream over a real socket: a viewer that joins mid-run, one
//! that reconnects, and one that sees the world replaced, each get every
//! event exactly once and in order.

use crate::web_support;

use std::time::Duration;

use futures_util::StreamExt;
use mailflow::conductor::Pace;
use mailflow::web::WebServer;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use web_support::*;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &WebServer, query: &str) -> Socket {
    let url = format!("ws://{}/api/stream?{query}", server.addr);
    tokio_tungstenite::connect_async(url).await.expect("the stream accepts").0
}

/// The next JSON frame (10 s at most).
async fn frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the stream stays open")
            .expect("a good frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON frames");
        }
    }
}

/// Reads frames until `done` says so; returns the events of `generation`.
async fn events_until(socket: &mut Socket, generation: u64, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
    let mut events = Vec::new();
    while !done(&events) {
        let frame = frame(socket).await;
        if frame["type"] == "events" {
            assert_eq!(frame["generation"], generation);
            events.extend(frame["events"].as_array().unwrap().iter().cloned());
        }
    }
    events
}

fn is_finished(events: &[Value]) -> bool {
    events.last().is_some_and(|e| e["kind"] == "finished")
}

fn assert_exactly_once_in_order(events: &[Value], from: u64) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"].as_u64(), Some(from + i as u64), "event {i} of the stream");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_joining_mid_run_gets_every_event_once_in_order() {
    // Live at speed 20: each hop waits 25 ms, so the story takes a while.
    let state = start(Pace::Live { speed: 20.0 }, None).await;
    let server = WebServer::start("127.0.0.1:0".parse().unwrap(), state.clone()).await.unwrap();
    let trace = state.session().world.trace.clone();
    tokio::time::timeout(Duration::from_secs(10), async {
        while trace.len() < 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let mut socket = connect(&server, "since=0").await;
    let hello = frame(&mut socket).await;
    assert_eq!((hello["type"].as_str(), hello["generation"].as_u64(), hello["since"].as_u64()), (Some("hello"), Some(1), Some(0)));
    let joined_at = trace.len();
    let events = events_until(&mut socket, 1, is_finished).await;
    assert!(joined_at < events.len() as u64, "the viewer joined mid-run ({joined_at} of {} events)", events.len());
    assert_exactly_once_in_order(&events, 0);
    let recorded: Vec<Value> = trace.since(0).iter().map(|e| serde_json::to_value(&**e).unwrap()).collect();
    assert_eq!(events, recorded, "the stream is the trace");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_viewer_continues_where_it_left_off() {
    let state = start(Pace::Live { speed: 20.0 }, None).await;
    let server = WebServer::start("127.0.0.1:0".parse().unwrap(), state.clone()).await.unwrap();
    let mut socket = connect(&server, "since=0").await;
    let first = events_until(&mut socket, 1, |events| events.len() >= 12).await;
    drop(socket);
    let next = first.len();
    let mut socket = connect(&server, &format!("since={next}&generation=1")).await;
    assert_eq!(frame(&mut socket).await["since"], next as u64);
    let rest = events_until(&mut socket, 1, is_finished).await;
    let mut all = first;
    all.extend(rest);
    assert_exactly_once_in_order(&all, 0);
    assert_eq!(all.len() as u64, state.session().world.trace.len());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_world_restarts_the_stream_with_a_new_generation() {
    let state = start(Pace::Fast, None).await;
    until_finished(&state).await;
    let server = WebServer::start("127.0.0.1:0".parse().unwrap(), state.clone()).await.unwrap();
    let mut socket = connect(&server, "since=0").await;
    let old = events_until(&mut socket, 1, is_finished).await;
    state.restart().await.expect("the world restarts");
    // A stale generation from an old tab also starts from the beginning.
    let mut stale = connect(&server, "since=5&generation=1").await;
    for socket in [&mut socket, &mut stale] {
        let hello = loop {
            let frame = frame(socket).await;
            if frame["type"] == "hello" && frame["generation"] == 2 {
                break frame;
            }
        };
        assert_eq!(hello["since"], 0);
        let new = events_until(socket, 2, is_finished).await;
        assert_exactly_once_in_order(&new, 0);
        assert_eq!(new.len(), old.len());
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_frames_follow_the_conductor() {
    let state = start(Pace::Step, None).await;
    let server = WebServer::start("127.0.0.1:0".parse().unwrap(), state.clone()).await.unwrap();
    let mut socket = connect(&server, "since=0").await;
    // Sooner or later the first hop waits for a step and the page is told.
    let waiting = loop {
        let frame = frame(&mut socket).await;
        if frame["type"] == "status" && !frame["waiting"].as_array().unwrap().is_empty() {
            break frame;
        }
    };
    assert_eq!(waiting["paused"], true);
    state.set_control(mailflow::web::Control { paused: false, speed: 0.0 });
    loop {
        let frame = frame(&mut socket).await;
        if frame["type"] == "status" && frame["paused"] == false {
            break;
        }
    }
    server.shutdown().await;
}
