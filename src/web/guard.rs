//! Only the teacher steers: the checks every state-changing request
//! passes, and the limits that keep one visitor from spoiling the page for
//! the class.
//!
//! Reading (`GET`: the page, the API's documents, the event stream) is open
//! to everyone who can reach the server. Every other method changes the
//! world — play, pause, step, restart, load a scenario, send mail, and
//! whatever is added later — so [`protect`] runs in front of all of them,
//! before any handler, in this order:
//!
//! 1. **Host** (RFC 9110 §7.2). A page of another site can point its own
//!    name at `127.0.0.1` after it has loaded (*DNS rebinding*); the browser
//!    then treats our server as that site and lets its script post to us.
//!    The one thing it cannot fake is the `Host` header, which still names
//!    the other site. So the host must be a loopback name (`localhost`,
//!    `127.x.y.z`, `[::1]`) or the very address the request arrived on.
//! 2. **Origin** (RFC 6454 §7, Fetch's "CORS-safelisted" requests). A
//!    browser sends a `text/plain`, form or multipart POST to any site
//!    without asking first; it only adds `Origin:` naming the page that
//!    made it. A foreign origin, or `null` (a sandboxed frame, a file), is
//!    refused with `403`. Tools such as curl send no `Origin` at all and
//!    pass, unless `Sec-Fetch-Site` says the request is from another site.
//! 3. **Token**: when the server has a control token (always, once the
//!    page is served beyond loopback: see [`super::access`]), the request
//!    must carry it (`Authorization: Bearer T` or `?token=T`); `403` else.
//!    The one exception is a student's quiz vote ([`super::quiz::VOTE_PATH`]):
//!    the class answers from read-only pages; it passes every other check.
//! 4. **Content-Type** must be `application/json` (`415` else): a JSON
//!    body is what a page of another site cannot send without the
//!    browser's permission (a CORS preflight, which we never grant).
//! 5. **Size**: the body is read here, up to a limit ([`Limits`]; `413`
//!    with the limit in the message), and within a time limit (`408`).
//!
//! Beside these, `/api/send` has a token bucket per client address (`429`
//! with `Retry-After`, RFC 6585 §4), so a visitor cannot fill the mailboxes
//! faster than the story can show it; wrong control tokens have one too
//! (once a client's guesses are used up, its next token is not even
//! compared until time refills them), so a short token chosen by hand
//! cannot be found by a script in the room; and the live stream takes at most
//! [`Limits::viewers`] WebSockets at once; the next one is closed with code
//! 1013 "try again later" (RFC 6455 §7.4.1) and the reason as text.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use super::api::ApiError;
use super::state::AppState;

/// How much anyone may ask of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest `POST /api/scenario` body (a scenario file is a few KiB).
    pub scenario_bytes: usize,
    /// The largest body of any other change (a composed message, a control).
    pub request_bytes: usize,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// Messages one client address may send at once through `/api/send`...
    pub send_burst: u32,
    /// ...and then one more per this much time.
    pub send_every: Duration,
    /// Wrong control tokens one client address may try at once...
    pub wrong_tokens: u32,
    /// ...and then one more per this much time (a short token chosen by
    /// hand must not be guessable by a script in the room).
    pub wrong_token_every: Duration,
    /// Live-stream WebSockets open at once, all viewers together.
    pub viewers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            scenario_bytes: 256 * 1024,
            request_bytes: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            send_burst: 10,
            send_every: Duration::from_secs(3),
            wrong_tokens: 20,
            wrong_token_every: Duration::from_secs(2),
            viewers: 200,
        }
    }
}

/// Client addresses the send limiter remembers at most; past that, idle
/// ones are forgotten first, so the table stays bounded.
const MAX_TRACKED_CLIENTS: usize = 4096;

/// The two ends of a connection, recorded when it is accepted (axum's
/// `ConnectInfo`): the local end is "the address the page was served on"
/// for the Host check, the remote end keys the send limiter.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        let remote = *stream.remote_addr();
        // A socket that was just accepted has a local address; if the OS
        // says otherwise, the unspecified address matches no Host.
        let local = stream.io().local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Peer { local, remote }
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

/// Whether a request may control: no token configured, or the right one in
/// `Authorization: Bearer T` or `?token=T`.
pub fn may_control(state: &AppState, headers: &HeaderMap, query: &TokenQuery) -> bool {
    let Some(expected) = &state.config.control_token else { return true };
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    [bearer, query.token.as_deref()].into_iter().flatten().any(|given| same(given.as_bytes(), expected.as_bytes()))
}

/// What the token of a request allows.
enum Verdict {
    Allowed,
    Refused,
    /// The client's wrong guesses are used up: its token was not compared.
    TooManyGuesses(Duration),
}

/// [`may_control`], counting wrong tokens per client: a request that
/// carries a token from a client whose guesses are used up is not even
/// compared. Every place that compares a token goes through here, so the
/// read-only `GET /api/state?token=...` is no way around the count.
fn token_verdict(state: &AppState, client: Option<IpAddr>, headers: &HeaderMap, query: &TokenQuery) -> Verdict {
    if state.config.control_token.is_none() {
        return Verdict::Allowed;
    }
    let guessing = headers.contains_key(header::AUTHORIZATION) || query.token.is_some();
    if !guessing {
        return Verdict::Refused;
    }
    if let Err(wait) = state.guard.peek_guesses(client) {
        return Verdict::TooManyGuesses(wait);
    }
    if may_control(state, headers, query) {
        return Verdict::Allowed;
    }
    match state.guard.wrong_token(client) {
        Ok(()) => Verdict::Refused,
        Err(wait) => Verdict::TooManyGuesses(wait),
    }
}

/// Whether `client` may control, for `GET /api/state` (counting wrong
/// tokens like the guard does).
pub fn may_control_counted(state: &AppState, client: Option<IpAddr>, headers: &HeaderMap, query: &TokenQuery) -> bool {
    matches!(token_verdict(state, client, headers, query), Verdict::Allowed)
}

/// Compares without stopping at the first difference, so the time an
/// answer takes does not tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits a `Host` value (or an origin's authority) into the lowercase
/// host, without IPv6 brackets, and the port if one is given. `None` if it
/// is not a host at all.
fn split_host(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Some(rest) = value.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            more => Some(more.strip_prefix(':')?.parse().ok()?),
        };
        return Some((ip.to_ascii_lowercase(), port));
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_ascii_lowercase(), Some(port.parse().ok()?))),
        Some(_) => None, // an IPv6 address needs brackets in a Host
        None => Some((value.to_ascii_lowercase(), None)),
    }
}

/// `localhost` or a loopback address literal: names no other site can
/// make a browser send us. `0.0.0.0` and `[::]` count too: a browser goes
/// to this very computer for them, and they are what the banner prints
/// for `--web 0.0.0.0:8025`.
fn is_loopback_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback() || ip.is_unspecified())
}

fn is_own_address(host: &str, local: Option<SocketAddr>) -> bool {
    local.is_some_and(|local| host.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical() == local.ip().to_canonical()))
}

/// Step 1: the `Host` names this server. `None` (no Host: an HTTP/1.0
/// tool, or a request made inside the process) passes; no browser omits it.
pub fn check_host(host: Option<&str>, local: Option<SocketAddr>) -> Result<(), ApiError> {
    let Some(value) = host else { return Ok(()) };
    match split_host(value) {
        Some((name, _)) if is_loopback_name(&name) || is_own_address(&name, local) => Ok(()),
        _ => {
            let served = local.map(|l| format!("this page's address ({})", l.ip())).unwrap_or_else(|| "this page's address".into());
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "refused: the Host header names {value:?}, which is neither {served} nor a loopback name (localhost, 127.0.0.1, [::1]); \
                     a page of another site that points its name at this computer (DNS rebinding) cannot steer"
                ),
            ))
        }
    }
}

/// Step 2: a browser's request comes from this page. `host` is the
/// request's Host.
pub fn check_origin(origin: Option<&str>, host: Option<&str>, fetch_site: Option<&str>) -> Result<(), ApiError> {
    let foreign = |from: &str| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("refused: this request comes from {from}, not from this page; only the mailflow page itself (and tools such as curl) may steer"),
        )
    };
    let Some(origin) = origin else {
        // Browsers send Origin with every POST; Sec-Fetch-Site is a second
        // witness for one that did not.
        return match fetch_site {
            Some(site @ ("cross-site" | "same-site")) => Err(foreign(&format!("another site (Sec-Fetch-Site: {site})"))),
            _ => Ok(()),
        };
    };
    let parsed = origin.strip_prefix("http://").map(|rest| (rest, 80)).or_else(|| origin.strip_prefix("https://").map(|rest| (rest, 443)));
    let Some((authority, default_port)) = parsed else { return Err(foreign(&format!("the origin {origin:?}"))) };
    let Some((origin_host, origin_port)) = split_host(authority) else { return Err(foreign(&format!("the origin {origin:?}"))) };
    let origin_port = origin_port.unwrap_or(default_port);
    let matches = match host.and_then(split_host) {
        Some((host, port)) => host == origin_host && port.unwrap_or(default_port) == origin_port,
        // No Host to compare with (a request made inside the process).
        None => is_loopback_name(&origin_host),
    };
    if matches { Ok(()) } else { Err(foreign(&format!("a page of {origin}"))) }
}

/// Step 4: the body is JSON.
pub fn check_content_type(value: Option<&str>) -> Result<(), ApiError> {
    let media = value.map(|v| v.split(';').next().unwrap_or("").trim());
    if media.is_some_and(|m| m.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    let given = value.map(|v| format!("Content-Type: {v}")).unwrap_or_else(|| "no Content-Type".into());
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "changes are sent as JSON with Content-Type: application/json, not {given} \
             (text, forms and multipart are what a page of another site may send without asking, so they are refused)"
        ),
    ))
}

/// The body limit of a path, and what the body is, for the `413` message.
fn body_limit(path: &str, limits: &Limits) -> (usize, &'static str) {
    if path == "/api/scenario" { (limits.scenario_bytes, "a scenario upload") } else { (limits.request_bytes, "a request") }
}

fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("{what} may be at most {} KiB ({limit} bytes); this one is larger, so it was not read", limit / 1024))
}

/// Reads a body of at most `limit` bytes.
async fn read_limited(body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, format!("the request body could not be read: {err}")))?;
        if out.len() + chunk.len() > limit {
            return Err(too_large(what, limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// The middleware in front of every route (see the module text): reading
/// passes, changing must pass steps 1 to 5.
pub async fn protect(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    match admit(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

async fn admit(state: &AppState, request: Request) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
    let text = |name: header::HeaderName| parts.headers.get(name).map(|v| v.to_str().unwrap_or("(not text)"));
    let local = parts.extensions.get::<ConnectInfo<Peer>>().map(|info| info.0.local);
    let host = text(header::HOST).or_else(|| parts.uri.authority().map(|a| a.as_str()));
    check_host(host, local)?;
    check_origin(text(header::ORIGIN), host, parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()))?;
    let query = Query::<TokenQuery>::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or(TokenQuery { token: None });
    let client = client_of(parts.extensions.get::<ConnectInfo<Peer>>());
    let verdict = if parts.uri.path() == super::quiz::VOTE_PATH { Verdict::Allowed } else { token_verdict(state, client, &parts.headers, &query) };
    match verdict {
        Verdict::Allowed => {}
        Verdict::Refused => return Err(ApiError::new(StatusCode::FORBIDDEN, "this page is read-only: controlling needs the teacher's token")),
        Verdict::TooManyGuesses(wait) => return Err(too_many_guesses(client, wait)),
    }
    check_content_type(text(header::CONTENT_TYPE))?;
    let limits = state.guard.limits();
    let (limit, what) = body_limit(parts.uri.path(), limits);
    let declared = text(header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(what, limit));
    }
    let bytes = tokio::time::timeout(limits.body_timeout, read_limited(body, limit, what))
        .await
        .map_err(|_| ApiError::new(StatusCode::REQUEST_TIMEOUT, format!("the request body did not arrive within {:?}", limits.body_timeout)))??;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn too_many_guesses(client: Option<IpAddr>, wait: Duration) -> ApiError {
    let who = client.map(|a| a.to_string()).unwrap_or_else(|| "this client".into());
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong control tokens from {who}; the next one is compared in {} s", wait.as_secs_f64().ceil()),
    )
    .retry_after(wait)
}

/// The client address of a request (for the send limiter); `None` inside
/// the process (tests that call the router directly).
pub fn client_of(info: Option<&ConnectInfo<Peer>>) -> Option<IpAddr> {
    info.map(|info| info.0.remote.ip().to_canonical())
}

/// One client's token bucket: `tokens` left, refilled by time.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per client address: `burst` at once, then one more per
/// `every`. Real time, not the simulated clock: it protects the server,
/// not the story.
struct Buckets {
    burst: f64,
    every: f64,
    table: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

impl Buckets {
    fn new(burst: u32, every: Duration) -> Buckets {
        Buckets { burst: f64::from(burst.max(1)), every: every.as_secs_f64().max(1e-9), table: Mutex::new(HashMap::new()) }
    }

    /// Takes one from `client`'s bucket, or says how long to wait.
    fn take(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        self.check(client, true)
    }

    /// Whether `client` has one left, without taking it.
    fn peek(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        if !self.table.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&client) {
            return Ok(()); // a full bucket
        }
        self.check(client, false)
    }

    fn check(&self, client: Option<IpAddr>, take: bool) -> Result<(), Duration> {
        let now = Instant::now();
        let (burst, every) = (self.burst, self.every);
        let refill = |bucket: &mut Bucket| {
            bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() / every).min(burst);
            bucket.at = now;
        };
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if !table.contains_key(&client) && table.len() >= MAX_TRACKED_CLIENTS {
            // Forget the clients whose bucket has filled up again: they
            // would start full anyway.
            table.retain(|_, bucket| {
                refill(bucket);
                bucket.tokens < burst
            });
            if table.len() >= MAX_TRACKED_CLIENTS {
                return Err(Duration::from_secs_f64(every));
            }
        }
        let bucket = table.entry(client).or_insert(Bucket { tokens: burst, at: now });
        refill(bucket);
        if bucket.tokens >= 1.0 {
            if take {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) * every))
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The shared state of the limits: send buckets, wrong-token buckets and
/// open viewers.
pub struct Guard {
    limits: Limits,
    sends: Buckets,
    guesses: Buckets,
    viewers: Arc<AtomicUsize>,
}

impl Guard {
    pub fn new(limits: Limits) -> Guard {
        let sends = Buckets::new(limits.send_burst, limits.send_every);
        let guesses = Buckets::new(limits.wrong_tokens, limits.wrong_token_every);
        Guard { limits, sends, guesses, viewers: Arc::new(AtomicUsize::new(0)) }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes one send from `client`'s bucket, or says how long to wait.
    pub fn take_send(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        self.sends.take(client)
    }

    /// Counts a wrong token from `client`.
    pub fn wrong_token(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        self.guesses.take(client)
    }

    /// Whether `client` may have its token compared at all: once its wrong
    /// guesses are used up, not even a right one is looked at until time
    /// has refilled them (else a script would just ignore the refusals).
    pub fn peek_guesses(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        self.guesses.peek(client)
    }

    /// A place among the live viewers, or `None` when all are taken. The
    /// place is given back when the returned value is dropped.
    pub fn viewer(&self) -> Option<ViewerSlot> {
        let max = self.limits.viewers;
        self.viewers.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok().map(|_| ViewerSlot(self.viewers.clone()))
    }

    /// Live viewers now.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Acquire)
    }
}

/// One open live stream; dropping it frees the place.
pub struct ViewerSlot(Arc<AtomicUsize>);

impl Drop for ViewerSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn hosts_that_name_this_server_pass() {
        for host in
            ["127.0.0.1:8025", "localhost:8025", "LOCALHOST", "localhost.:8025", "[::1]:8025", "127.9.9.9", "192.168.1.20:8025", "0.0.0.0:8025", "[::]:8025"]
        {
            assert!(check_host(Some(host), local("192.168.1.20:8025")).is_ok(), "{host}");
        }
        assert!(check_host(None, None).is_ok(), "no Host: not a browser");
        assert!(check_host(Some("[::1]:8025"), local("[::]:8025")).is_ok());
        assert!(check_host(Some("10.0.0.7:8025"), local("[::ffff:10.0.0.7]:8025")).is_ok(), "IPv4 arriving on an IPv6 socket");
    }

    #[test]
    fn foreign_hosts_are_refused() {
        for host in ["evil.example:8025", "evil.example", "127.0.0.1.evil.example", "x.localhost", "192.168.1.21:8025", "", "::1", "[::1", "a:b:c"] {
            let refused = check_host(Some(host), local("192.168.1.20:8025")).err().unwrap_or_else(|| panic!("{host:?} passed"));
            assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        }
        let message = check_host(Some("evil.example:8025"), local("127.0.0.2:8025")).err().unwrap().message();
        assert!(message.contains("DNS rebinding") && message.contains("127.0.0.2") && message.contains("evil.example"), "{message}");
    }

    #[test]
    fn origins() {
        let host = Some("127.0.0.1:8025");
        assert!(check_origin(Some("http://127.0.0.1:8025"), host, Some("same-origin")).is_ok());
        assert!(check_origin(Some("HTTP://127.0.0.1:8025"), host, None).is_err(), "scheme is case-sensitive as browsers send it");
        assert!(check_origin(Some("http://localhost"), Some("localhost:80"), None).is_ok(), "default port");
        // Only one server listens on a host and port: https there (a TLS
        // proxy in front) is this page too.
        assert!(check_origin(Some("https://127.0.0.1:8025"), host, None).is_ok());
        assert!(check_origin(Some("https://127.0.0.1"), host, None).is_err());
        assert!(check_origin(None, host, None).is_ok(), "curl sends no Origin");
        assert!(check_origin(None, host, Some("same-origin")).is_ok());
        assert!(check_origin(None, None, None).is_ok());
        assert!(check_origin(Some("http://127.0.0.1:1234"), None, None).is_ok(), "no Host: loopback origins only");
        for (origin, fetch_site) in [
            (Some("http://evil.example"), None),
            (Some("http://127.0.0.1:9999"), None),
            (Some("null"), None),
            (Some("http://"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
        ] {
            let refused = check_origin(origin, host, fetch_site).err().unwrap_or_else(|| panic!("{origin:?} {fetch_site:?} passed"));
            assert_eq!(refused.status(), StatusCode::FORBIDDEN);
            assert!(refused.message().contains("not from this page"));
        }
        assert!(check_origin(Some("http://evil.example"), None, None).is_err());
    }

    #[test]
    fn only_json_bodies() {
        for ok in ["application/json", "application/json; charset=utf-8", "Application/JSON"] {
            assert!(check_content_type(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x"), Some("application/jsonx"), None] {
            let refused = check_content_type(bad).err().unwrap();
            assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(refused.message().contains("application/json"));
        }
    }

    #[test]
    fn the_send_bucket_empties_per_client() {
        let guard = Guard::new(Limits { send_burst: 3, send_every: Duration::from_secs(3600), ..Limits::default() });
        let a = Some("127.0.0.2".parse().unwrap());
        let b = Some("127.0.0.3".parse().unwrap());
        for _ in 0..3 {
            assert!(guard.take_send(a).is_ok());
        }
        let wait = guard.take_send(a).unwrap_err();
        assert!(wait > Duration::from_secs(3000) && wait <= Duration::from_secs(3600), "{wait:?}");
        assert!(guard.take_send(b).is_ok(), "another client has its own bucket");
    }

    #[test]
    fn wrong_tokens_run_out_and_then_nothing_is_compared() {
        let guard = Guard::new(Limits { wrong_tokens: 2, wrong_token_every: Duration::from_secs(3600), ..Limits::default() });
        let student = Some("127.0.0.9".parse().unwrap());
        assert!(guard.peek_guesses(student).is_ok(), "a newcomer may try");
        assert!(guard.wrong_token(student).is_ok());
        assert!(guard.peek_guesses(student).is_ok(), "peeking takes nothing");
        assert!(guard.peek_guesses(student).is_ok());
        assert!(guard.wrong_token(student).is_ok());
        assert!(guard.peek_guesses(student).is_err(), "no guess left: not even compared");
        assert!(guard.peek_guesses(Some("127.0.0.10".parse().unwrap())).is_ok(), "others are not affected");
    }

    #[test]
    fn the_send_table_stays_bounded() {
        let guard = Guard::new(Limits { send_burst: 1, send_every: Duration::from_secs(3600), ..Limits::default() });
        for n in 0..MAX_TRACKED_CLIENTS as u32 {
            assert!(guard.take_send(Some(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n)))).is_ok());
        }
        assert!(guard.take_send(Some("192.0.2.1".parse().unwrap())).is_err(), "a full table of busy clients refuses newcomers");
        assert_eq!(guard.sends.len(), MAX_TRACKED_CLIENTS);
    }

    #[test]
    fn viewer_places_are_bounded_and_given_back() {
        let guard = Guard::new(Limits { viewers: 2, ..Limits::default() });
        let first = guard.viewer().unwrap();
        let _second = guard.viewer().unwrap();
        assert!(guard.viewer().is_none());
        drop(first);
        assert_eq!(guard.viewers(), 1);
        assert!(guard.viewer().is_some());
    }
}
