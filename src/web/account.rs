//! The page's account view: what a mail provider's "account settings" web
//! page does, for the users of the running world (issue 12).
//!
//! | Method and path                    | What                                              |
//! |------------------------------------|---------------------------------------------------|
//! | `GET /api/accounts`                | every account: two-factor?, app password names, locked? (no secrets) |
//! | `POST /api/accounts/authenticator` | `{"user"}`: the code the user's authenticator app shows now, and its seconds left |
//! | `POST /api/accounts/sign-in`       | `{"user", "password", "code"}`: a web sign-in (RFC 6238 code for two-factor accounts) |
//! | `POST /api/accounts/app-passwords` | `{"session", "name"}`: a new app password, shown this once |
//! | `POST /api/accounts/revoke`        | `{"session", "name"}`: revoke one; its device is cut off |
//!
//! Why two factors on the web, but app passwords for mail: a web page can
//! ask for a code; SMTP, IMAP and POP3 cannot, so a provider that turns on
//! two-factor sign-in refuses the main password there and hands out one
//! random password per device instead, each revocable alone.
//!
//! The `POST`s pass the guard like every change (`guard.rs`): with a control
//! token set, only the teacher's page may sign in or see a code. A sign-in
//! opens a short web session (a random id kept here, in memory, for
//! [`SESSION_LIFE`]); app passwords are made and revoked within it. The
//! story gets an event for each (without the secrets); wrong sign-ins are
//! counted per user, and after [`MAX_FAILED_SIGN_INS`] the user waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::ApiError;
use crate::mta::MailHost;
use crate::mta::accounts::{Accounts, SignInError};
use crate::trace::{Draft, Kind, Protocol};
use crate::world::World;

/// How long a web sign-in lasts (real time).
pub const SESSION_LIFE: Duration = Duration::from_secs(30 * 60);
/// Wrong sign-ins for one user before the page makes them wait.
pub const MAX_FAILED_SIGN_INS: u32 = 5;
/// How long they wait.
const SIGN_IN_PAUSE: Duration = Duration::from_secs(60);
/// Open web sessions kept at most (the oldest goes first).
const MAX_SESSIONS: usize = 256;

type ApiResult = Result<Response, ApiError>;

/// Signed-in web sessions and failed sign-ins, for every world of this
/// process (a session names its user and the world generation it began in:
/// a restarted world forgets who was signed in).
#[derive(Default)]
struct Web {
    sessions: HashMap<String, WebSession>,
    failures: HashMap<String, (u32, Instant)>,
}

struct WebSession {
    user: String,
    generation: u64,
    until: Instant,
}

fn web() -> MutexGuard<'static, Web> {
    static WEB: OnceLock<Mutex<Web>> = OnceLock::new();
    // A plain mutex: every use is a short lookup, never held across an await.
    WEB.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| bad(format!("bad request body: {err}")))
}

/// The host that keeps `user`'s mailbox.
fn host_of<'w>(world: &'w World, user: &str) -> Result<&'w Arc<MailHost>, ApiError> {
    world
        .hosts
        .values()
        .find(|host| host.accounts().exists(user))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no account {user:?} in this world")))
}

/// The accounts of the host that keeps `user`'s mailbox, and its name.
fn accounts_of<'w>(world: &'w World, user: &str) -> Result<(&'w str, &'w Accounts), ApiError> {
    host_of(world, user).map(|host| (host.name.as_str(), host.accounts()))
}

/// `GET /api/accounts`: every account of every host, without secrets.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let world = state.session().world.clone();
    let accounts: Vec<serde_json::Value> = world
        .hosts
        .iter()
        .flat_map(|(name, host)| {
            host.accounts().summary().into_iter().map(move |a| {
                json!({
                    "host": name,
                    "address": a.address,
                    "two_factor": a.two_factor,
                    "app_passwords": a.app_passwords,
                    "locked_until_ms": a.locked_until.map(|d| d.as_millis() as u64),
                })
            })
        })
        .collect();
    Json(json!({ "accounts": accounts }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRequest {
    user: String,
}

/// `POST /api/accounts/authenticator`: what the user's phone app shows.
pub async fn authenticator(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let request: UserRequest = parse(&body)?;
    let world = state.session().world.clone();
    let (_, accounts) = accounts_of(&world, &request.user)?;
    let (code, seconds_left) = accounts
        .authenticator(&request.user, unix_now())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("{} has no two-factor sign-in, so no authenticator", request.user)))?;
    Ok(Json(json!({ "code": code, "seconds_left": seconds_left, "period": 30 })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInRequest {
    user: String,
    password: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /api/accounts/sign-in`: password, and the code for a two-factor
/// account. Opens a web session.
pub async fn sign_in(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let request: SignInRequest = parse(&body)?;
    let session = state.session();
    let world = session.world.clone();
    let (host, accounts) = accounts_of(&world, &request.user)?;
    let user = crate::mta::accounts::canonical(&request.user);
    {
        let web = web();
        if let Some((count, since)) = web.failures.get(&user)
            && *count >= MAX_FAILED_SIGN_INS
            && since.elapsed() < SIGN_IN_PAUSE
        {
            let wait = SIGN_IN_PAUSE - since.elapsed();
            return Err(
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("too many wrong sign-ins for {user}: wait {} s", wait.as_secs() + 1)).retry_after(wait)
            );
        }
    }
    let tell = |summary: String, explain: &str| world.trace.emit(Draft::new("web", host, Protocol::Sim, Kind::Note, summary).explain(explain));
    // Through the host, so a lock this starts is told and the owner warned.
    match host_of(&world, &user)?.sign_in(&user, &request.password, request.code.as_deref(), unix_now()) {
        Ok(()) => {
            let id = random_id().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
            let mut web = web();
            web.failures.remove(&user);
            let now = Instant::now();
            web.sessions.retain(|_, s| s.until > now);
            if web.sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = web.sessions.iter().min_by_key(|(_, s)| s.until).map(|(k, _)| k.clone())
            {
                web.sessions.remove(&oldest);
            }
            web.sessions.insert(id.clone(), WebSession { user: user.clone(), generation: session.generation, until: now + SESSION_LIFE });
            let two_factor = accounts.authenticator(&user, unix_now()).is_some();
            tell(
                format!("{user} signs in to {host}'s web page{}", if two_factor { " with password and authenticator code" } else { " with a password" }),
                "A web page can ask for a second factor: a 6-digit code from an app on the user's phone, computed from a shared secret and the time (TOTP, RFC 6238). A phished password alone no longer opens the account.",
            );
            let summary = accounts.summary().into_iter().find(|a| a.address == user);
            Ok(Json(json!({
                "session": id,
                "user": user,
                "two_factor": two_factor,
                "app_passwords": summary.map(|s| s.app_passwords).unwrap_or_default(),
            }))
            .into_response())
        }
        Err(err) => {
            let mut web = web();
            let entry = web.failures.entry(user.clone()).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= SIGN_IN_PAUSE {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
            entry.1 = Instant::now();
            drop(web);
            if err != SignInError::CodeRequired {
                tell(format!("a web sign-in as {user} fails: {err}"), "The page never says whether the user name or the password was wrong.");
            }
            let status = if err == SignInError::Locked { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::UNAUTHORIZED };
            Err(ApiError::new(status, err.to_string()))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppPasswordRequest {
    session: String,
    name: String,
}

/// The signed-in user of a web session, in the current world.
fn signed_in(state: &AppState, session: &str) -> Result<String, ApiError> {
    let generation = state.session().generation;
    let web = web();
    web.sessions
        .get(session)
        .filter(|s| s.until > Instant::now() && s.generation == generation)
        .map(|s| s.user.clone())
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "not signed in (or the sign-in has expired): sign in again"))
}

/// `POST /api/accounts/app-passwords`: a new app password for a device.
pub async fn create_app_password(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let request: AppPasswordRequest = parse(&body)?;
    let user = signed_in(&state, &request.session)?;
    let world = state.session().world.clone();
    let (host, accounts) = accounts_of(&world, &user)?;
    let secret = accounts.create_app_password(&user, &request.name).map_err(|e| bad(e.to_string()))?;
    let name = request.name.trim();
    world.trace.emit(
        Draft::new("web", host, Protocol::Sim, Kind::Note, format!("{user} makes an app password for {name:?}"))
            .explain("An app password is a long random password for one device's mail program. It is shown once; the device keeps it. If the device is lost, revoke its app password alone: the other devices keep working."),
    );
    // Shown in groups of four, as providers do; spaces do not matter when typed.
    let grouped = secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ");
    Ok((StatusCode::CREATED, Json(json!({ "name": name, "app_password": grouped }))).into_response())
}

/// `POST /api/accounts/revoke`: revoke an app password.
pub async fn revoke_app_password(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let request: AppPasswordRequest = parse(&body)?;
    let user = signed_in(&state, &request.session)?;
    let world = state.session().world.clone();
    let (host, accounts) = accounts_of(&world, &user)?;
    accounts.revoke_app_password(&user, &request.name).map_err(|e| bad(e.to_string()))?;
    world.trace.emit(
        Draft::new("web", host, Protocol::Sim, Kind::Note, format!("{user} revokes the app password {:?}", request.name))
            .explain("The device that held it is refused at its next login, and an open IMAP session of it is ended (BYE)."),
    );
    Ok(Json(json!({ "revoked": request.name })).into_response())
}

/// A web session id: 128 random bits in hex.
fn random_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
