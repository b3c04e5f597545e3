//! The JSON API the page (and anyone with curl) uses.
//!
//! Reading is open to every viewer. Changing things — play, pause, step,
//! restart, loading a scenario, composing a message — passes
//! [`super::guard`] first (Host, Origin, the control token, JSON only, a
//! size limit), so by the time a handler here runs, the request comes from
//! the teacher's page or the teacher's own tools: a class can watch the
//! teacher's session from their own laptops without a student pressing
//! "restart" for everyone.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::guard::{self, Peer, TokenQuery};
use super::state::{AppState, Control, StartError};
use super::{messages, stream, topology};
use crate::mua::{Device, compose, submit};
use crate::scenario::{Scenario, ScenarioError, SendStep};
use crate::trace::{Draft, Kind, Protocol};

/// An error answer: a status and a JSON body with at least `error`.
#[derive(Debug)]
pub struct ApiError(StatusCode, Value, Option<Duration>);

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(status, json!({ "error": message.into() }), None)
    }

    /// Adds `Retry-After` (whole seconds, rounded up).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.2 = Some(wait);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0
    }

    /// The `error` text.
    pub fn message(&self) -> String {
        self.1["error"].as_str().unwrap_or_default().to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(self.1)).into_response();
        if let Some(wait) = self.2 {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, seconds.max(1).into());
        }
        response
    }
}

impl From<ScenarioError> for ApiError {
    fn from(err: ScenarioError) -> Self {
        let problems: Vec<Value> = err
            .problems
            .iter()
            .map(|p| json!({"file": p.file, "line": p.line, "column": p.column, "path": p.path.to_string(), "message": p.message}))
            .collect();
        ApiError(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": "the scenario has problems", "problems": problems}), None)
    }
}

impl From<StartError> for ApiError {
    fn from(err: StartError) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("the world could not start: {err}"))
    }
}

type ApiResult = Result<Response, ApiError>;

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, format!("bad request body: {err}")))
}

/// `GET /api/scenario`: the running scenario (without quiz answers and
/// teacher notes for the class when there is a teacher: see [`super::quiz`]).
pub async fn scenario(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Json<Value> {
    let session = state.session();
    let scenario = without_secrets(&session.world.scenario);
    let text = text_without_secrets(&session.world.scenario, &session.text);
    let value = json!({"generation": session.generation, "file": session.file, "scenario": scenario, "text": text});
    if super::quiz::must_redact(&state, peer.as_ref(), &headers, query.token) { Json(super::quiz::redact(value)) } else { Json(value) }
}

/// The scenario as the page may see it: every user's secrets hidden — the
/// password, the two-factor secret, the app passwords — since the page
/// needs none of them and they would let anyone watching sign in. (The
/// terminal's banner still prints a password to paste into swaks: that is
/// the teacher's screen, not the class's.)
fn without_secrets(scenario: &Scenario) -> Value {
    let mut value = serde_json::to_value(scenario).unwrap_or_default();
    if let Some(users) = value.get_mut("users").and_then(Value::as_object_mut) {
        for user in users.values_mut() {
            for pointer in ["/password", "/two_factor/totp_secret"] {
                if let Some(secret) = user.pointer_mut(pointer) {
                    *secret = json!(HIDDEN);
                }
            }
            if let Some(apps) = user.get_mut("app_passwords").and_then(Value::as_object_mut) {
                apps.values_mut().for_each(|v| *v = json!(HIDDEN));
            }
        }
    }
    value
}

/// What a hidden secret reads as.
const HIDDEN: &str = "(hidden)";

/// The file as written, with the same secrets hidden: each one's JSON
/// string is replaced where it stands, so lines and columns stay where the
/// teacher's editor has them.
fn text_without_secrets(scenario: &Scenario, text: &str) -> String {
    let mut out = text.to_string();
    for user in scenario.users.values() {
        let secrets = std::iter::once(user.password.as_str())
            .chain(user.two_factor.iter().map(|t| t.totp_secret.as_str()))
            .chain(user.app_passwords.values().map(String::as_str));
        for secret in secrets.filter(|s| !s.is_empty()) {
            if let Ok(quoted) = serde_json::to_string(secret) {
                out = out.replace(&quoted, &format!("\"{HIDDEN}\""));
            }
        }
    }
    out
}

/// `GET /api/scenarios`: the files a teacher can choose from.
pub async fn scenarios(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut list = Vec::new();
    if let Ok(dir) = std::fs::read_dir(&state.config.scenarios_dir) {
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        files.sort();
        for file in files {
            let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            match Scenario::load(&file) {
                Ok(s) => list.push(json!({
                    "name": name, "file": file.display().to_string(), "title": s.title, "description": s.description, "valid": true,
                    "level": s.level.map(|l| l.name()), "minutes": s.minutes, "teaches": s.teaches,
                })),
                Err(err) => list.push(json!({"name": name, "file": file.display().to_string(), "title": name, "valid": false, "error": err.to_string()})),
            }
        }
    }
    Json(json!({ "scenarios": list }))
}

/// `GET /api/topology`.
pub async fn topology(State(state): State<Arc<AppState>>) -> Json<Value> {
    let session = state.session();
    let mut value = serde_json::to_value(topology::build(&session.world)).expect("topology serializes");
    value["generation"] = json!(session.generation);
    Json(value)
}

#[derive(Deserialize)]
pub struct SinceQuery {
    #[serde(default)]
    since: u64,
    generation: Option<u64>,
}

/// `GET /api/events?since=N`: the events from N on (all of them by default).
pub async fn events(State(state): State<Arc<AppState>>, Query(query): Query<SinceQuery>) -> Json<Value> {
    let session = state.session();
    let events = session.world.trace.since(query.since);
    Json(json!({"generation": session.generation, "since": query.since, "events": events}))
}

/// `GET /api/state`: pause, speed, waiting hops, and whether this viewer
/// may control: it has the token (if one is needed) and reached the page
/// by a name the guard accepts (a page on a rebound DNS name is told it is
/// read-only, as its changes would be refused).
pub async fn status(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Json<Value> {
    let session = state.session();
    let mut value = stream::status_value(&session, &state);
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let good_host = guard::check_host(host, peer.as_ref().map(|p| p.0.0.local)).is_ok();
    value["can_control"] = json!(good_host && guard::may_control_counted(&state, guard::client_of(peer.as_ref().map(|p| &p.0)), &headers, &query));
    value["token_required"] = json!(state.config.control_token.is_some());
    value["file"] = json!(session.file);
    value["title"] = json!(session.world.scenario.title);
    Json(value)
}

/// `GET /api/stream?since=N&generation=G` (WebSocket). Past
/// [`Limits::viewers`](super::guard::Limits) open streams, the socket is
/// opened and closed again at once with the reason ([`stream::refuse`]),
/// which a browser's script can read (an HTTP error it could not).
pub async fn stream_events(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>, Query(query): Query<SinceQuery>) -> Response {
    // The page sends nothing but pings and close frames: a large frame is
    // not a viewer's.
    let ws = ws.max_message_size(stream::MAX_INCOMING).max_frame_size(stream::MAX_INCOMING);
    match state.guard.viewer() {
        Some(place) => ws.on_upgrade(move |socket| async move {
            stream::serve(socket, state, query.since, query.generation).await;
            drop(place);
        }),
        None => {
            let limit = state.guard.limits().viewers;
            ws.on_upgrade(move |socket| stream::refuse(socket, limit))
        }
    }
}

/// `GET /api/messages`.
pub async fn messages_list(State(state): State<Arc<AppState>>) -> Json<Value> {
    let session = state.session();
    Json(json!({"generation": session.generation, "messages": messages::list(&session.world)}))
}

/// `GET /api/messages/{id}`.
pub async fn message(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    let session = state.session();
    match messages::detail(&session.world, &id) {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no message with Message-ID <{id}>"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlRequest {
    action: String,
    #[serde(default)]
    speed: Option<f64>,
}

/// `POST /api/control`: play, pause, step, speed, restart.
pub async fn control(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let request: ControlRequest = parse_body(&body)?;
    let current = state.control();
    let mut stepped = None;
    match request.action.as_str() {
        "play" => state.set_control(Control { paused: false, speed: request.speed.unwrap_or(current.speed) }),
        "pause" => state.set_control(Control { paused: true, ..current }),
        "step" => stepped = Some(state.step().await),
        "speed" => {
            let speed = request
                .speed
                .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 100.0)
                .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "speed needs a number from 0 (no waiting) to 100"))?;
            state.set_control(Control { speed, ..current });
        }
        "restart" => {
            state.restart().await?;
        }
        other => return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("unknown action {other:?}: expected play, pause, step, speed or restart"))),
    }
    let session = state.session();
    let mut value = stream::status_value(&session, &state);
    if let Some(stepped) = stepped {
        value["stepped"] = json!(stepped);
    }
    Ok(Json(value).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadRequest {
    /// A file of the scenarios folder, with or without `.json`.
    #[serde(default)]
    name: Option<String>,
    /// An uploaded scenario's text...
    #[serde(default)]
    text: Option<String>,
    /// ...and its file name (for error messages).
    #[serde(default)]
    file: Option<String>,
}

/// `POST /api/scenario`: load a scenario by name or from uploaded text.
pub async fn load_scenario(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let request: LoadRequest = parse_body(&body)?;
    let (file, text) = match (request.name, request.text) {
        (Some(name), None) => {
            let stem = name.strip_suffix(".json").unwrap_or(&name);
            if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || stem.starts_with('.') {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("{name:?} is not a scenario name (letters, digits, - _ .)")));
            }
            let path = state.config.scenarios_dir.join(format!("{stem}.json"));
            let text = std::fs::read_to_string(&path)
                .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("no scenario {stem:?} in {}", state.config.scenarios_dir.display())))?;
            (path.display().to_string(), text)
        }
        (None, Some(text)) => (request.file.unwrap_or_else(|| "uploaded.json".into()), text),
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "give either \"name\" (a file of the scenarios folder) or \"text\" (a scenario's JSON)")),
    };
    let scenario = Scenario::parse(&file, &text)?;
    let session = state.replace(scenario, file, text).await?;
    Ok(Json(json!({"generation": session.generation, "file": session.file, "title": session.world.scenario.title})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    client: String,
    to: Recipients,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Recipients {
    One(String),
    Many(Vec<String>),
}

impl Recipients {
    fn list(self) -> Vec<String> {
        let all = match self {
            Recipients::One(text) => text.split([',', ';', ' ']).map(str::to_string).collect(),
            Recipients::Many(list) => list,
        };
        all.into_iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect()
    }
}

/// `POST /api/send`: a device of the scenario writes and submits a message.
/// Each client address may send [`Limits::send_burst`](super::guard::Limits)
/// messages at once, then one per `send_every` (`429` and `Retry-After`).
pub async fn send(State(state): State<Arc<AppState>>, peer: Option<Extension<ConnectInfo<Peer>>>, body: Bytes) -> ApiResult {
    let request: SendRequest = parse_body(&body)?;
    let session = state.session();
    let world = session.world.clone();
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let client = world.scenario.clients.get(&request.client).ok_or_else(|| bad(format!("no client {:?} in this scenario", request.client)))?;
    let server_name = client.submit_to.clone().ok_or_else(|| bad(format!("{} does not send mail (it has no submit_to)", request.client)))?;
    let (Some(node), Some(server)) = (world.node(&request.client), world.node(&server_name)) else {
        return Err(bad(format!("{} is not on the network", request.client)));
    };
    let to = request.to.list();
    if to.is_empty() {
        return Err(bad("give at least one recipient".into()));
    }
    if let Some(wrong) = to.iter().find(|a| !crate::scenario::validate::is_address(a)) {
        return Err(bad(format!("{wrong:?} is not a mail address")));
    }
    // Only a message that would really go out takes from the bucket.
    let client_address = guard::client_of(peer.as_ref().map(|p| &p.0));
    state.guard.take_send(client_address).map_err(|wait| {
        let limits = state.guard.limits();
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many messages from {}: {} at once, then one every {} s; try again in {} s",
                client_address.map(|a| a.to_string()).unwrap_or_else(|| "this client".into()),
                limits.send_burst,
                limits.send_every.as_secs_f64(),
                wait.as_secs_f64().ceil()
            ),
        )
        .retry_after(wait)
    })?;
    let password = world.scenario.device_password(client);
    let device = Device { name: request.client.clone(), address: node.address.into(), user: client.user.clone(), password };
    let step = SendStep {
        client: request.client.clone(),
        to: to.clone(),
        cc: Vec::new(),
        bcc: Vec::new(),
        subject: request.subject,
        body: request.body,
        attachment: None,
        from: None,
    };
    let server = (server.name.clone(), std::net::IpAddr::from(server.address));
    let (raw, message) = compose(&device, &step, &world.net, world.next_message_number());
    world.trace.emit(
        Draft::new(
            &device.name,
            &device.name,
            Protocol::Sim,
            Kind::Note,
            format!("{} sends \"{}\" to {} (written on the web page)", device.name, step.subject, to.join(", ")),
        )
        .message(message.clone()),
    );
    let reply = json!({"message": message});
    // The simulated clock must not jump ahead while the device is talking.
    let activity = world.conductor.clock().activity();
    session.spawn(async move {
        let service = world.submission_service(&server.0);
        let _ = submit(&world.device_net(&device.name), &device, (&server.0, server.1), service, &raw, message, &to).await;
        drop(activity);
    });
    Ok((StatusCode::ACCEPTED, Json(reply)).into_response())
}

/// Everything else: the page's files.
pub async fn asset(uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match super::assets::get(path) {
        Some((mime, bytes)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "no-cache"),
                // The page makes no request outside this server.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'",
                ),
            ],
            bytes,
        )
            .into_response(),
        None if path.starts_with("api/") => ApiError::new(StatusCode::NOT_FOUND, format!("no API endpoint /{path}")).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
