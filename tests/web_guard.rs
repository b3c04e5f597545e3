//! Only the teacher steers (issue 15), over real HTTP with curl: what a
//! page of another site, a DNS-rebinding page and a student of the room
//! can send, and how each is refused; the limits on uploads, on sending
//! mail and on live viewers. `127.0.0.2` (and other `127.x` addresses)
//! stand for the room's network, since nothing here may listen on a real
//! one.

use crate::common::{GENEROUS, TempDir, repo};
use crate::web_support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mailflow::conductor::Pace;
use mailflow::scenario::{DEFAULT_SCENARIO, DEFAULT_SCENARIO_NAME, Scenario};
use mailflow::web::{AppState, Control, Limits, WebServer};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A world at `pace` with its page on `ip` (port 0: any free port).
async fn serve(ip: &str, pace: Pace, token: Option<&str>, limits: Limits) -> (Arc<AppState>, WebServer) {
    let mut config = web_support::config(token);
    config.limits = limits;
    let state = AppState::start(config, Control::from_pace(pace), Scenario::default_scenario(), DEFAULT_SCENARIO_NAME.into(), DEFAULT_SCENARIO.into())
        .await
        .expect("the world starts");
    let server = WebServer::start(format!("{ip}:0").parse().unwrap(), state.clone()).await.expect("the page is served");
    (state, server)
}

/// One answer as curl saw it.
#[derive(Debug)]
struct Http {
    status: u16,
    head: String,
    body: String,
}

impl Http {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error text: {self:?}")).to_string()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    }
}

/// Runs curl (`-i`, no `Expect: 100-continue`) with `args`.
async fn curl(args: &[&str]) -> Http {
    let output = tokio::process::Command::new("curl").args(["-sS", "-i", "--max-time", "30", "-H", "Expect:"]).args(args).kill_on_drop(true).output();
    let output = match tokio::time::timeout(GENEROUS, output).await.expect("curl hung") {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!("curl is not installed: apt-get install curl"),
        Err(err) => panic!("cannot run curl: {err}"),
    };
    assert!(output.status.success(), "curl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut rest = text.as_str();
    loop {
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text}"));
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        return Http { status, head: head.to_string(), body: body.to_string() };
    }
}

/// `POST url` with `content_type`, `body` and extra curl arguments.
async fn post(url: &str, content_type: &str, body: &str, extra: &[&str]) -> Http {
    let content_type = format!("Content-Type: {content_type}");
    let mut args = vec!["-X", "POST", "-H", &content_type, "--data-binary", body];
    args.extend_from_slice(extra);
    args.push(url);
    curl(&args).await
}

fn api(server: &WebServer, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

/// Messages composed on the page so far (each leaves a note in the trace).
fn composed(state: &AppState) -> usize {
    state.session().world.trace.since(0).iter().filter(|e| e.summary.contains("written on the web page")).count()
}

const SEND: &str = r#"{"client": "alice-laptop", "to": "bob@example.org", "subject": "Hi", "body": "from somewhere"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_site_cannot_steer() {
    // On loopback without a token: the teacher's own machine, open to any
    // page it serves itself — but not to other sites' pages.
    let (state, server) = serve("127.0.0.1", Pace::Step, None, Limits::default()).await;
    let evil = ["-H", "Origin: http://evil.example"];
    // The "simple" requests a browser sends cross-site without asking.
    for (path, body) in [
        ("/api/send", SEND),
        ("/api/control", r#"{"action": "play"}"#),
        ("/api/control", r#"{"action": "restart"}"#),
        ("/api/scenario", r#"{"name": "mx-change"}"#),
    ] {
        for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json"] {
            let reply = post(&api(&server, path), content_type, body, &evil).await;
            assert_eq!(reply.status, 403, "{path} {content_type}: {reply:?}");
            assert!(reply.error().contains("a page of http://evil.example, not from this page"), "{}", reply.error());
        }
    }
    // Any other change, including endpoints added later, passes the same guard.
    let reply = post(&api(&server, "/api/quiz/reveal"), "text/plain", "{}", &evil).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    // A sandboxed frame or a file says `Origin: null`; a browser that
    // leaves Origin out still says where the request comes from.
    assert_eq!(post(&api(&server, "/api/control"), "application/json", r#"{"action": "play"}"#, &["-H", "Origin: null"]).await.status, 403);
    assert_eq!(post(&api(&server, "/api/control"), "application/json", r#"{"action": "play"}"#, &["-H", "Sec-Fetch-Site: cross-site"]).await.status, 403);
    // Another program on this computer (another port) is another origin too.
    assert_eq!(post(&api(&server, "/api/control"), "application/json", r#"{"action": "play"}"#, &["-H", "Origin: http://127.0.0.1:1"]).await.status, 403);
    assert_eq!(composed(&state), 0, "no message went out");
    assert!(state.control().paused, "the story did not move");
    assert_eq!(state.session().generation, 1, "no restart, no new scenario");

    // Without an Origin (curl), the body must still be JSON.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let reply = post(&api(&server, "/api/control"), content_type, r#"{"action": "play"}"#, &[]).await;
        assert_eq!(reply.status, 415, "{reply:?}");
        assert!(reply.error().contains("Content-Type: application/json"), "{}", reply.error());
    }
    assert!(state.control().paused);

    // The page itself (same origin) and curl with JSON steer.
    let own = format!("Origin: http://{}", server.addr);
    let reply =
        post(&api(&server, "/api/control"), "application/json", r#"{"action": "speed", "speed": 2}"#, &["-H", &own, "-H", "Sec-Fetch-Site: same-origin"]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = post(&api(&server, "/api/control"), "application/json; charset=utf-8", r#"{"action": "play", "speed": 0}"#, &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(!state.control().paused);
    // Reading stays open to every page.
    assert_eq!(curl(&["-H", "Origin: http://evil.example", &api(&server, "/api/state")]).await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_dns_name_cannot_steer() {
    let (state, server) = serve("127.0.0.1", Pace::Step, None, Limits::default()).await;
    let port = server.addr.port();
    // What a rebinding page sends: its own name in Host, and as its origin.
    let host = format!("Host: evil.example:{port}");
    let origin = format!("Origin: http://evil.example:{port}");
    for (path, body) in [("/api/send", SEND), ("/api/control", r#"{"action": "play"}"#), ("/api/scenario", r#"{"name": "mx-change"}"#)] {
        let reply = post(&api(&server, path), "application/json", body, &["-H", &host, "-H", &origin]).await;
        assert_eq!(reply.status, 403, "{path}: {reply:?}");
        let error = reply.error();
        assert!(error.contains("evil.example") && error.contains("DNS rebinding"), "{error}");
        // Host alone (no Origin) is refused as well.
        assert_eq!(post(&api(&server, path), "application/json", body, &["-H", &host]).await.status, 403);
    }
    assert_eq!(composed(&state), 0);
    assert!(state.control().paused);
    assert_eq!(state.session().generation, 1);
    // Loopback names pass.
    for name in ["localhost", "127.0.0.1", "LocalHost"] {
        let host = format!("Host: {name}:{port}");
        let origin = format!("Origin: http://{name}:{port}");
        let reply = post(&api(&server, "/api/control"), "application/json", r#"{"action": "speed", "speed": 3}"#, &["-H", &host, "-H", &origin]).await;
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
    }
    // Reading is open whatever the Host; a rebound page is told it is read-only.
    assert_eq!(curl(&["-H", &host, &api(&server, "/api/topology")]).await.status, 200);
    assert_eq!(curl(&["-H", &host, &api(&server, "/api/state")]).await.json()["can_control"], false);
    assert_eq!(curl(&[&api(&server, "/api/state")]).await.json()["can_control"], true);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_only_the_token_steers() {
    // Without a token, the server will not listen beyond loopback at all.
    let state = web_support::start(Pace::Step, None).await;
    let refused = WebServer::start("127.0.0.2:0".parse().unwrap(), state.clone()).await.err().expect("refused without a token");
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    assert!(refused.to_string().contains("needs a control token"), "{refused}");
    state.shutdown().await;

    let (state, server) = serve("127.0.0.2", Pace::Step, Some("teach-7b"), Limits::default()).await;
    // The room reads everything.
    for path in ["/", "/api/state", "/api/scenario", "/api/topology", "/api/events", "/api/messages"] {
        assert_eq!(curl(&[&api(&server, path)]).await.status, 200, "{path}");
    }
    assert_eq!(curl(&[&api(&server, "/api/state")]).await.json()["can_control"], false);
    assert_eq!(curl(&[&api(&server, "/api/state")]).await.json()["token_required"], true);
    assert_eq!(curl(&[&api(&server, "/api/state?token=teach-7b")]).await.json()["can_control"], true);
    // A student's request, from another address of "the room", with no
    // token or a wrong one, is refused.
    for (path, body) in [("/api/send", SEND), ("/api/control", r#"{"action": "restart"}"#), ("/api/scenario", r#"{"name": "mx-change"}"#)] {
        for extra in [&[][..], &["-H", "Authorization: Bearer teach-7c"][..], &["-H", "Authorization: teach-7b"][..]] {
            let mut args = vec!["--interface", "127.0.0.3"];
            args.extend_from_slice(extra);
            let reply = post(&api(&server, path), "application/json", body, &args).await;
            assert_eq!(reply.status, 403, "{path} {extra:?}: {reply:?}");
            assert!(reply.error().contains("read-only"), "{}", reply.error());
        }
        assert_eq!(post(&format!("{}?token=wrong", api(&server, path)), "application/json", body, &[]).await.status, 403);
    }
    assert_eq!(composed(&state), 0);
    assert_eq!(state.session().generation, 1);
    assert!(state.control().paused);
    // The teacher's page (token in the header) and the teacher's URL
    // (token in the query) steer; the page's own address is a good Host.
    let own = format!("Origin: http://{}", server.addr);
    let reply =
        post(&api(&server, "/api/control"), "application/json", r#"{"action": "speed", "speed": 2}"#, &["-H", "Authorization: Bearer teach-7b", "-H", &own])
            .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = post(&api(&server, "/api/control?token=teach-7b"), "application/json", r#"{"action": "play", "speed": 0}"#, &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(!state.control().paused);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_token_is_slowed_down() {
    let limits = Limits { wrong_tokens: 3, wrong_token_every: Duration::from_secs(3600), ..Limits::default() };
    let (state, server) = serve("127.0.0.2", Pace::Step, Some("abc"), limits).await;
    let url = api(&server, "/api/control");
    let play = r#"{"action": "play"}"#;
    for guess in ["aaa", "aab", "aac"] {
        let reply = post(&url, "application/json", play, &["--interface", "127.0.0.7", "-H", &format!("Authorization: Bearer {guess}")]).await;
        assert_eq!(reply.status, 403, "{reply:?}");
    }
    let reply = post(&url, "application/json", play, &["--interface", "127.0.0.7", "-H", "Authorization: Bearer aad"]).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    assert!(reply.error().contains("too many wrong control tokens from 127.0.0.7"), "{}", reply.error());
    assert!(reply.header("retry-after").is_some());
    // Its guesses used up, not even the right token is compared, and the
    // read-only state is no oracle either...
    let reply = post(&format!("{url}?token=abc"), "application/json", play, &["--interface", "127.0.0.7"]).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    let asked = curl(&["--interface", "127.0.0.7", &api(&server, "/api/state?token=abc")]).await.json();
    assert_eq!(asked["can_control"], false);
    // (and asking it counts as guessing: another client runs out there too)
    for guess in ["x1", "x2", "x3"] {
        assert_eq!(curl(&["--interface", "127.0.0.9", &api(&server, &format!("/api/state?token={guess}"))]).await.json()["can_control"], false);
    }
    assert_eq!(curl(&["--interface", "127.0.0.9", &api(&server, "/api/state?token=abc")]).await.json()["can_control"], false);
    assert_eq!(curl(&["--interface", "127.0.0.10", &api(&server, "/api/state?token=abc")]).await.json()["can_control"], true);
    assert!(state.control().paused);
    // ...while the teacher, at another address, steers.
    let reply = post(&url, "application/json", play, &["--interface", "127.0.0.8", "-H", "Authorization: Bearer abc"]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(!state.control().paused);
    server.shutdown().await;
}

/// Starts the binary with `args`, reads its stdout until the web lines
/// have been printed; returns (the child, everything printed so far).
async fn start_binary(args: &[&str]) -> (tokio::process::Child, String) {
    let subnet = web_support::random_subnet().to_string();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailflow"))
        .args(args)
        .args(["--subnet", &subnet, "--quiet", "--scenarios", &repo().join("scenarios").display().to_string()])
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    tokio::time::timeout(GENEROUS, async {
        // The banner ends with an empty line after the web lines.
        let mut seen_web = false;
        while let Some(line) = lines.next_line().await.expect("stdout reads") {
            printed.push_str(&line);
            printed.push('\n');
            seen_web |= line.starts_with("Web page: ");
            if seen_web && line.is_empty() {
                return;
            }
        }
        panic!("the binary ended before printing its web page:\n{printed}");
    })
    .await
    .unwrap_or_else(|_| panic!("no web page printed:\n{printed}"));
    (child, printed)
}

fn line_value<'a>(printed: &'a str, prefix: &str) -> Option<&'a str> {
    printed.lines().find_map(|line| line.strip_prefix(prefix)).map(str::trim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_beyond_loopback_prints_a_generated_teacher_url() {
    let (mut child, printed) = start_binary(&["demo", "--fast", "--web", "127.0.0.2:0"]).await;
    let url = line_value(&printed, "Web page: ").expect("the page's address").to_string();
    assert!(url.starts_with("http://127.0.0.2:"), "{printed}");
    let teacher = line_value(&printed, "Teacher's page (steers the world; keep this address to yourself): ").unwrap_or_else(|| panic!("{printed}")).to_string();
    let token = teacher.strip_prefix(&format!("{url}?token=")).unwrap_or_else(|| panic!("{teacher}")).to_string();
    assert_eq!(token.len(), 32, "{token}");
    assert_eq!(printed.matches(&token).count(), 1, "the token is printed once, in the teacher's URL:\n{printed}");
    assert!(printed.contains("served beyond loopback (127.0.0.2): the class can open it, read-only; a control token was generated"), "{printed}");

    let control = format!("{url}api/control");
    let state = curl(&[&format!("{url}api/state")]).await.json();
    assert_eq!((state["can_control"].as_bool(), state["token_required"].as_bool()), (Some(false), Some(true)));
    let reply = post(&control, "application/json", r#"{"action": "pause"}"#, &[]).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let reply = post(&control, "application/json", r#"{"action": "pause"}"#, &["-H", &format!("Authorization: Bearer {token}")]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["paused"], true);
    child.kill().await.expect("stop the binary");

    // Two runs, two tokens.
    let (mut again, printed) = start_binary(&["demo", "--fast", "--web", "127.0.0.2:0"]).await;
    assert!(!printed.contains(&token), "a new token each time");
    again.kill().await.expect("stop the binary");

    // A given token is used as is.
    let (mut given, printed) = start_binary(&["demo", "--fast", "--web", "127.0.0.2:0", "--control-token", "class-7b"]).await;
    assert!(
        line_value(&printed, "Teacher's page (steers the world; keep this address to yourself): ").is_some_and(|u| u.ends_with("/?token=class-7b")),
        "{printed}"
    );
    assert!(printed.contains("your --control-token is required"), "{printed}");
    given.kill().await.expect("stop the binary");

    // On loopback without a token, as before: no teacher's URL, open.
    let (mut local, printed) = start_binary(&["demo", "--fast", "--web", "127.0.0.1:0"]).await;
    assert!(!printed.contains("Teacher's page"), "{printed}");
    assert!(printed.contains("only this computer can reach it"), "{printed}");
    let url = line_value(&printed, "Web page: ").unwrap().to_string();
    assert_eq!(post(&format!("{url}api/control"), "application/json", r#"{"action": "pause"}"#, &[]).await.status, 200);
    local.kill().await.expect("stop the binary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_limit_are_413() {
    let limits = Limits::default();
    let (state, server) = serve("127.0.0.1", Pace::Fast, None, limits.clone()).await;
    let files = TempDir::new("web-guard");
    let huge = json!({"file": "huge.json", "text": "x".repeat(limits.scenario_bytes)}).to_string();
    let path = files.write("huge.json", &huge);
    let data = format!("@{}", path.display());
    // With a Content-Length, and chunked (no length known in advance).
    for extra in [&[][..], &["-H", "Transfer-Encoding: chunked"][..]] {
        let mut args = vec!["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", &data];
        args.extend_from_slice(extra);
        let url = api(&server, "/api/scenario");
        args.push(&url);
        let reply = curl(&args).await;
        assert_eq!(reply.status, 413, "{extra:?}: {reply:?}");
        assert!(reply.error().contains("a scenario upload may be at most 256 KiB (262144 bytes)"), "{}", reply.error());
    }
    // Other changes have a smaller limit.
    let long = json!({"client": "alice-laptop", "to": "bob@example.org", "subject": "long", "body": "y".repeat(limits.request_bytes)}).to_string();
    let reply = post(&api(&server, "/api/send"), "application/json", &long, &[]).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(reply.error().contains("a request may be at most 64 KiB"), "{}", reply.error());
    assert_eq!(state.session().generation, 1);
    assert_eq!(composed(&state), 0);
    // A real scenario file is far below the limit.
    let text = std::fs::read_to_string(repo().join("scenarios/mx-change.json")).unwrap();
    let reply = post(&api(&server, "/api/scenario"), "application/json", &json!({"file": "mx-change.json", "text": text}).to_string(), &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_mail_is_rate_limited_per_client() {
    // Two at once, then one an hour: the third is refused whatever the
    // machine's speed.
    let limits = Limits { send_burst: 2, send_every: Duration::from_secs(3600), ..Limits::default() };
    let (state, server) = serve("127.0.0.1", Pace::Fast, None, limits).await;
    let url = api(&server, "/api/send");
    for _ in 0..2 {
        let reply = post(&url, "application/json", SEND, &["--interface", "127.0.0.5"]).await;
        assert_eq!(reply.status, 202, "{reply:?}");
    }
    // Bad requests take nothing from the bucket, but the third message is refused.
    assert_eq!(post(&url, "application/json", r#"{"client": "nobody", "to": "bob@example.org"}"#, &["--interface", "127.0.0.5"]).await.status, 400);
    let reply = post(&url, "application/json", SEND, &["--interface", "127.0.0.5"]).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    let error = reply.error();
    assert!(error.contains("too many messages from 127.0.0.5: 2 at once, then one every 3600 s"), "{error}");
    let retry: u64 = reply.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    // Another client has its own allowance.
    assert_eq!(post(&url, "application/json", SEND, &["--interface", "127.0.0.6"]).await.status, 202);
    assert_eq!(composed(&state), 3);
    server.shutdown().await;
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn viewer(server: &WebServer) -> Socket {
    tokio_tungstenite::connect_async(format!("ws://{}/api/stream?since=0", server.addr)).await.expect("the stream accepts").0
}

async fn next_message(socket: &mut Socket) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a frame within 10 s").and_then(Result::ok)
}

async fn first_frame(socket: &mut Socket) -> Value {
    loop {
        match next_message(socket).await.expect("a frame") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_viewers_past_the_bound_are_turned_away_clearly() {
    let (state, server) = serve("127.0.0.1", Pace::Fast, None, Limits { viewers: 2, ..Limits::default() }).await;
    let mut first = viewer(&server).await;
    let mut second = viewer(&server).await;
    assert_eq!(first_frame(&mut first).await["type"], "hello");
    assert_eq!(first_frame(&mut second).await["type"], "hello");
    assert_eq!(state.guard.viewers(), 2);

    let mut third = viewer(&server).await;
    let refused = first_frame(&mut third).await;
    assert_eq!(refused["type"], "refused", "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("already has 2 live viewers"), "{refused}");
    let close = loop {
        match next_message(&mut third).await {
            Some(Message::Close(frame)) => break frame.expect("a close reason"),
            Some(_) => continue,
            None => panic!("the refused stream ended without a close frame"),
        }
    };
    assert_eq!(close.code, CloseCode::Again, "1013: try again later");
    assert!(close.reason.contains("too many viewers (2)"), "{}", close.reason);

    // A viewer that leaves gives its place back.
    first.close(None).await.expect("close");
    drop(first);
    tokio::time::timeout(GENEROUS, async {
        while state.guard.viewers() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the place is freed");
    let mut fourth = viewer(&server).await;
    assert_eq!(first_frame(&mut fourth).await["type"], "hello");
    // A viewer may not send large frames (it has nothing to say).
    let _ = second.send(Message::Text("z".repeat(64 * 1024).into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match second.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a 64 KiB frame from a viewer ends its stream");
    server.shutdown().await;
}
