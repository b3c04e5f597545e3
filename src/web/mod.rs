//! The web visualizer's server: the page, a JSON API, and a live event
//! stream, with axum.
//!
//! The page (the top-level `web/` folder, built into the binary) is a pure
//! function of the trace: it downloads the topology, follows the event
//! stream from sequence 0, and draws the story up to the event the viewer
//! has reached. Everything it shows can therefore be rewound and replayed
//! in the browser; only "step forward at the live edge", play, pause,
//! restart, loading a scenario and composing a message talk back to the
//! server ([`api`]).
//!
//! | Method and path            | What                                              |
//! |----------------------------|---------------------------------------------------|
//! | `GET /`                    | the page                                          |
//! | `GET /api/scenario`        | the running scenario (JSON, file name, text)      |
//! | `GET /api/scenarios`       | the scenario files one can switch to              |
//! | `GET /api/topology`        | nodes, edges, DNS zones                           |
//! | `GET /api/events?since=N`  | events from N on                                  |
//! | `GET /api/stream?since=N`  | WebSocket: events from N on, then live ([`stream`]) |
//! | `GET /api/state`           | paused?, speed, waiting hops, may I control?      |
//! | `GET /api/messages[/{id}]` | stored messages, headers, Received chain, hops    |
//! | `GET /api/messages/{id}/diagram.svg` (`.mmd`) | its hops as a sequence diagram ([`diagram`]) |
//! | `POST /api/control`        | `{"action": "play"/"pause"/"step"/"speed"/"restart", "speed": X}` |
//! | `POST /api/scenario`       | `{"name": "..."}` or `{"text": "...", "file": "..."}` |
//! | `POST /api/send`           | `{"client", "to", "subject", "body"}`             |
//! | `GET`/`POST /api/dns`      | the zones; change, add or remove a record ([`dns_edit`]) |
//! | `GET /api/share`, `/api/share/qr.svg`, `/ca.pem` | for students' own mail programs ([`share`]) |
//! | `GET /api/quiz`, `POST /api/quiz/vote`, `/reveal` | the open quiz ([`quiz`])  |
//! | `/api/accounts...`         | the account view: sign-in, app passwords ([`account`]) |
//!
//! Who may call the `POST`s: [`guard`] stands in front of every request
//! that is not a `GET` (a page of another site, a rebound DNS name, a
//! wrong or missing token, a body that is not JSON or too large are all
//! refused with a clear error), and [`access`] decides, from the address
//! the page is served on, whether a control token is needed.
//!
//! The router is built by [`app`] apart from any socket, so tests drive it
//! with `tower::ServiceExt::oneshot`.

pub mod access;
pub mod account;
pub mod api;
pub mod assets;
pub mod diagram;
pub mod dns_edit;
pub mod guard;
pub mod messages;
pub mod quiz;
pub mod share;
pub mod state;
pub mod stream;
pub mod topology;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use access::{Access, AccessError, beyond_loopback};
pub use guard::{Limits, Peer};
pub use state::{AppState, Control, Session, WebConfig};

/// The routes of the web server over `state`.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/scenario", get(api::scenario).post(api::load_scenario))
        .route("/api/scenarios", get(api::scenarios))
        .route("/api/topology", get(api::topology))
        .route("/api/events", get(api::events))
        .route("/api/stream", get(api::stream_events))
        .route("/api/state", get(api::status))
        .route("/api/messages", get(api::messages_list))
        .route("/api/messages/{id}", get(api::message))
        .route("/api/messages/{id}/diagram.svg", get(diagram::svg))
        .route("/api/messages/{id}/diagram.mmd", get(diagram::mermaid))
        .route("/api/control", post(api::control))
        .route("/api/dns", get(dns_edit::zones).post(dns_edit::edit))
        .route("/api/send", post(api::send))
        .route("/api/share", get(share::settings))
        .route("/api/share/qr.svg", get(share::qr))
        .route("/ca.pem", get(share::ca))
        .route("/api/quiz", get(quiz::current))
        .route(quiz::VOTE_PATH, post(quiz::vote))
        .route("/api/quiz/reveal", post(quiz::reveal))
        .route("/api/accounts", get(account::list))
        .route("/api/accounts/authenticator", post(account::authenticator))
        .route("/api/accounts/sign-in", post(account::sign_in))
        .route("/api/accounts/app-passwords", post(account::create_app_password))
        .route("/api/accounts/revoke", post(account::revoke_app_password))
        .fallback(get(api::asset))
        // Every route, including any added later: a change must pass the
        // guard whatever handler it is meant for.
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::protect))
        .with_state(state)
}

/// A running web server.
pub struct WebServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl WebServer {
    /// Listens on `addr` (port 0 picks a free port; read [`WebServer::addr`]).
    ///
    /// Refuses (`InvalidInput`) to listen beyond loopback without a control
    /// token: the room would steer the teacher's world (see [`access`]).
    pub async fn start(addr: SocketAddr, state: Arc<AppState>) -> std::io::Result<WebServer> {
        if beyond_loopback(addr.ip()) && state.config.control_token.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is beyond loopback: serving the page there needs a control token, or everyone who can reach it may steer", addr.ip()),
            ));
        }
        let listener = crate::world::listener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        // Each request learns both ends of its connection (guard::Peer).
        let router = app(state.clone()).into_make_service_with_connect_info::<Peer>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(WebServer { addr, state, stop, task })
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops the world, closes the streams and the server.
    pub async fn shutdown(self) {
        self.state.shutdown().await;
        self.stop.send_replace(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), self.task).await;
    }
}

/// Opens `url` in the desktop's browser; failing quietly (no desktop, no
/// xdg-open) is fine: the URL is in the banner.
pub fn open_browser(url: &str) {
    let _ = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
