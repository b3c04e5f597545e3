//! The live event stream: `GET /api/stream?since=N&generation=G` upgraded
//! to a WebSocket.
//!
//! Every viewer reads the trace on its own from the sequence number it
//! asks for, so a tab opened mid-lesson or reconnecting after a network
//! hiccup gets the whole story exactly once and in order, and a slow
//! viewer only slows itself (nothing is dropped, unlike a broadcast
//! channel that lags). Messages, all JSON text frames:
//!
//! - `{"type":"hello","generation":G,"since":N,"file":..,"title":..}` —
//!   first, and again whenever the world is replaced; a page whose
//!   generation differs starts over from empty (then `since` is 0);
//! - `{"type":"events","generation":G,"events":[..]}` — the next events,
//!   batched when many are ready at once (fast mode makes thousands);
//! - `{"type":"status","generation":G,"paused":..,"speed":..,"waiting":[..],"events":N}`
//!   — the conductor's state, whenever pause, speed or the waiting hops change;
//! - `{"type":"refused","error":".."}` — only when every viewer's place is
//!   taken; the socket then closes with code 1013 "try again later"
//!   (RFC 6455 §7.4.1) and the same reason.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::json;

use super::state::{AppState, Session};

/// The most events sent in one frame.
const BATCH: usize = 512;

/// The largest frame a viewer may send (it has nothing to say but pings).
pub const MAX_INCOMING: usize = 4096;

/// RFC 6455 §7.4.1: "Try Again Later", the server is overloaded.
const TRY_AGAIN_LATER: u16 = 1013;

/// Turns a viewer away when all `limit` places are taken: one `refused`
/// frame with the reason, then a close frame with code 1013 and a short
/// reason (a close reason holds at most 123 bytes).
pub async fn refuse(mut socket: WebSocket, limit: usize) {
    let error = format!("this page already has {limit} live viewers, the most it serves at once; try again in a moment");
    let frame = json!({"type": "refused", "error": error});
    let _ = socket.send(Message::Text(frame.to_string().into())).await;
    let reason = format!("too many viewers ({limit}); try again later");
    let _ = socket.send(Message::Close(Some(CloseFrame { code: TRY_AGAIN_LATER, reason: reason.into() }))).await;
    // Wait briefly for the viewer's close frame, as the closing handshake asks.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async { while let Some(Ok(_)) = socket.next().await {} }).await;
}

/// Serves one viewer until it leaves or the server stops.
pub async fn serve(socket: WebSocket, state: Arc<AppState>, since: u64, generation: Option<u64>) {
    let (mut sink, mut incoming) = socket.split();
    let mut sessions = state.watch_session();
    let mut control = state.watch_control();
    let mut closing = state.watch_closing();
    let mut wanted = (generation, since);
    loop {
        let session = sessions.borrow_and_update().clone();
        // A viewer of an older world starts the new one from the beginning.
        let start = if wanted.0.is_none_or(|g| g == session.generation) { wanted.1 } else { 0 };
        wanted = (Some(session.generation), 0);
        let hello = json!({"type": "hello", "generation": session.generation, "since": start, "file": session.file, "title": session.world.scenario.title});
        if sink.send(Message::Text(hello.to_string().into())).await.is_err() {
            return;
        }
        let mut events = session.world.trace.subscribe(start);
        let mut waiting = session.world.conductor.watch_waiting();
        let mut trace_open = true;
        if sink.send(Message::Text(status(&session, &state).into())).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                // Subscription::next is cancel-safe: it only awaits a watch.
                event = events.next(), if trace_open => match event {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < BATCH {
                            match events.next().now_or_never() {
                                Some(Some(event)) => batch.push(event),
                                _ => break,
                            }
                        }
                        if sink.send(Message::Text(events_frame(session.generation, &session.json(&batch)).into())).await.is_err() {
                            return;
                        }
                    }
                    None => trace_open = false,
                },
                changed = sessions.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                Ok(()) = waiting.changed() => {
                    if sink.send(Message::Text(status(&session, &state).into())).await.is_err() {
                        return;
                    }
                }
                Ok(()) = control.changed() => {
                    if sink.send(Message::Text(status(&session, &state).into())).await.is_err() {
                        return;
                    }
                }
                message = incoming.next() => match message {
                    // The page sends nothing we need; pings are answered by
                    // the WebSocket layer as we read.
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
                _ = closing.changed() => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    }
}

/// One `events` frame from already serialized events.
pub fn events_frame(generation: u64, events: &[Arc<str>]) -> String {
    let size = events.iter().map(|e| e.len() + 1).sum::<usize>() + 64;
    let mut out = String::with_capacity(size);
    out.push_str(&format!("{{\"type\":\"events\",\"generation\":{generation},\"events\":["));
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}");
    out
}

/// The conductor's state as the page shows it.
pub fn status_value(session: &Session, state: &AppState) -> serde_json::Value {
    let control = state.control();
    let world = &session.world;
    json!({
        "type": "status",
        "generation": session.generation,
        "paused": control.paused,
        "speed": control.speed,
        "waiting": world.conductor.waiting().into_iter().take(5).collect::<Vec<_>>(),
        "events": world.trace.len(),
    })
}

fn status(session: &Session, state: &AppState) -> String {
    status_value(session, state).to_string()
}
