//! Helpers shared by the web tests: a world on a random loopback subnet,
//! requests through the router without a socket, and waiting for events.

#![allow(dead_code)]

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mailflow::conductor::Pace;
use mailflow::scenario::{DEFAULT_SCENARIO, DEFAULT_SCENARIO_NAME, Scenario};
use mailflow::trace::Kind;
use mailflow::web::{AppState, Control, WebConfig, app};
use mailflow::world::{Subnet, WorldOptions};
use serde_json::Value;
use tower::ServiceExt;

/// A /24 somewhere in 127.128.0.0–127.250.255.0, so tests (and other
/// checkouts' tests) run side by side.
pub fn random_subnet() -> Subnet {
    let n = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("127.{}.{}.0/24", 128 + n % 120, (n >> 8) % 256).parse().unwrap()
}

pub fn config(token: Option<&str>) -> WebConfig {
    WebConfig {
        world: WorldOptions { subnet: random_subnet(), network_timeout: Duration::from_secs(5), ..WorldOptions::default() },
        control_token: token.map(str::to_string),
        scenarios_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"),
        limits: Default::default(),
    }
}

/// The built-in scenario at `pace`, optionally with a control token.
pub async fn start(pace: Pace, token: Option<&str>) -> Arc<AppState> {
    let scenario = Scenario::default_scenario();
    AppState::start(config(token), Control::from_pace(pace), scenario, DEFAULT_SCENARIO_NAME.into(), DEFAULT_SCENARIO.into()).await.expect("the world starts")
}

/// A scenario text at `pace`.
pub async fn start_with(pace: Pace, text: &str) -> Arc<AppState> {
    let scenario = Scenario::parse("test.json", text).expect("a valid scenario");
    AppState::start(config(None), Control::from_pace(pace), scenario, "test.json".into(), text.into()).await.expect("the world starts")
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request through the router (no socket).
pub async fn call(state: &Arc<AppState>, request: Request<Body>) -> Reply {
    let response = app(state.clone()).oneshot(request).await.expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("a body").to_bytes().to_vec();
    Reply { status, headers, body }
}

pub async fn get(state: &Arc<AppState>, uri: &str) -> Reply {
    call(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

pub async fn post(state: &Arc<AppState>, uri: &str, body: Value) -> Reply {
    call(state, Request::post(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()).await
}

pub async fn post_with_token(state: &Arc<AppState>, uri: &str, token: &str, body: Value) -> Reply {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    call(state, request).await
}

/// Waits (up to 20 s) until the current world's trace has a `finished` event.
pub async fn until_finished(state: &Arc<AppState>) {
    let session = state.session();
    let mut events = session.world.trace.subscribe(0);
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = events.next().await {
            if matches!(event.kind, Kind::Finished) {
                return;
            }
        }
        panic!("the trace closed before the story finished");
    })
    .await
    .expect("the story finishes within 20 s");
}
