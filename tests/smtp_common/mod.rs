//! Helpers shared by the SMTP integration tests (`tests/smtp_*.rs`).
//!
//! Every test builds its own world on its own random loopback subnet
//! (127.X.Y.0/24, X in 100..=250), so tests run in parallel without
//! sharing a port. Nothing here measures time: waits poll for a condition
//! and give up only after a generous timeout, so a slow machine is slow,
//! not red, and a hang is a clear failure instead of a stuck CI run.

#![allow(dead_code)] // each test crate uses its own part of this module

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailflow::conductor::Pace;
use mailflow::scenario::{Scenario, Service};
use mailflow::store::StoredMessage;
use mailflow::trace::{Direction, Event, Kind, QueueState};
use mailflow::world::{Subnet, World, WorldOptions};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest a whole scenario may take (real time) before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a single wait (a reply, a delivery, a tool) may take.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository root (scenario files live under it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A random /24 in 127.100.0.0–127.250.255.0 not used before by this
/// process. Another process may still hold it; `start` then tries again.
pub fn random_subnet() -> Subnet {
    static USED: Mutex<Option<HashSet<(u8, u8)>>> = Mutex::new(None);
    let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
    let used = used.get_or_insert_with(HashSet::new);
    loop {
        // RandomState is seeded randomly per process: no rand crate needed.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        hasher.write_u32(std::process::id());
        let n = hasher.finish();
        let x = 100 + (n % 151) as u8;
        let y = (n >> 16) as u8;
        if used.insert((x, y)) {
            return format!("127.{x}.{y}.0/24").parse().expect("a valid subnet");
        }
    }
}

/// Loads `scenarios/NAME.json`.
pub fn scenario(name: &str) -> Scenario {
    let path = root().join("scenarios").join(format!("{name}.json"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads `scenarios/NAME.json`, lets `edit` change its JSON, and checks
/// the result like any scenario file.
pub fn scenario_with(name: &str, edit: impl FnOnce(&mut Value)) -> Scenario {
    let path = root().join("scenarios").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut json: Value = serde_json::from_str(&text).expect("scenario JSON");
    edit(&mut json);
    let text = serde_json::to_string_pretty(&json).expect("JSON");
    Scenario::parse(&format!("{name} (edited by the test)"), &text).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a world at fast pace on a fresh random subnet (trying another
/// subnet if an address is taken by some other process).
pub async fn start(scenario: Scenario) -> Arc<World> {
    let mut last = String::new();
    for _ in 0..8 {
        let options = WorldOptions { subnet: random_subnet(), pace: Pace::Fast, ..Default::default() };
        match World::start(scenario.clone(), options).await {
            Ok(world) => return world,
            Err(err) => last = err.to_string(),
        }
    }
    panic!("no free subnet for a test world: {last}");
}

/// Starts a world and runs its steps to the end.
pub async fn run(scenario: Scenario) -> Arc<World> {
    let world = start(scenario).await;
    run_to_end(&world).await;
    world
}

/// Runs the steps until nothing is left to happen (fails on a hang).
pub async fn run_to_end(world: &Arc<World>) {
    if tokio::time::timeout(RUN_TIMEOUT, world.run_to_end()).await.is_err() {
        panic!("the scenario did not finish within {RUN_TIMEOUT:?}; the trace so far:\n{}", story(world));
    }
}

/// The whole trace as the terminal prints it, for failure messages.
pub fn story(world: &World) -> String {
    world.trace.since(0).iter().map(|e| mailflow::trace::printer::format(e)).collect::<Vec<_>>().join("\n")
}

/// Polls `check` until it gives a value (fails after WAIT_TIMEOUT).
pub async fn wait_for<T>(what: &str, world: &World, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; the trace so far:\n{}", story(world));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The address of `host`'s `service` in this world.
pub fn addr(world: &World, host: &str, service: Service) -> SocketAddr {
    let node = world.node(host).unwrap_or_else(|| panic!("no node {host}"));
    SocketAddr::new(node.address.into(), world.port(service))
}

/// The messages in `user`'s INBOX on `host`.
pub fn inbox(world: &World, host: &str, user: &str) -> Vec<StoredMessage> {
    world.hosts.get(host).unwrap_or_else(|| panic!("no host {host}")).store.inbox(user)
}

/// A stored message as text (lossy for 8-bit bytes).
pub fn text(message: &StoredMessage) -> String {
    String::from_utf8_lossy(&message.raw).into_owned()
}

/// The header block of a raw message (up to the empty line).
pub fn headers(raw: &[u8]) -> String {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 2).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// The body of a raw message (after the empty line).
pub fn body(raw: &[u8]) -> &[u8] {
    let start = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(raw.len());
    &raw[start..]
}

/// How many header fields called `name` the message has.
pub fn count_header(raw: &[u8], name: &str) -> usize {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    headers(raw).lines().filter(|l| l.to_ascii_lowercase().starts_with(&prefix)).count()
}

// ----- reading the trace -----

pub fn events(world: &World) -> Vec<Arc<Event>> {
    world.trace.since(0)
}

/// Queue events of `host` in `state`.
pub fn queue_events(world: &World, host: &str, state: QueueState) -> Vec<Arc<Event>> {
    events(world).into_iter().filter(|e| e.from == host && matches!(&e.kind, Kind::Queue { state: s, .. } if *s == state)).collect()
}

/// Deliveries into `mailbox` (on any host).
pub fn deliveries(world: &World, mailbox: &str) -> Vec<Arc<Event>> {
    events(world).into_iter().filter(|e| matches!(&e.kind, Kind::Delivered { mailbox: m, .. } if m == mailbox)).collect()
}

/// Lines `host` sent to its clients that start with `prefix` (e.g. "451 4.7.1").
pub fn server_lines(world: &World, host: &str, prefix: &str) -> Vec<Arc<Event>> {
    events(world)
        .into_iter()
        .filter(|e| e.from == host && matches!(&e.kind, Kind::Line { direction: Direction::ToClient, line } if line.starts_with(prefix)))
        .collect()
}

/// DNS answers about `name` (without the final dot) of type `rtype`: (rcode, records).
pub fn dns_answers(world: &World, name: &str, rtype: &str) -> Vec<(String, Vec<String>)> {
    let fqdn = format!("{name}.");
    events(world)
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::DnsAnswer { name: n, rtype: t, rcode, records } if *n == fqdn && t == rtype => Some((rcode.clone(), records.clone())),
            _ => None,
        })
        .collect()
}

/// Connections `from` could not make to `to`.
pub fn connect_failures(world: &World, from: &str, to: &str) -> Vec<Arc<Event>> {
    events(world).into_iter().filter(|e| e.from == from && e.to == to && matches!(e.kind, Kind::ConnectFailed { .. })).collect()
}

// ----- a raw SMTP client, for what polite clients never send -----

/// One SMTP reply: its code and its lines (as sent, without CRLF).
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The first line, e.g. "550 5.7.1 <x@y>: Relay access denied".
    pub fn text(&self) -> &str {
        self.lines.first().map(String::as_str).unwrap_or("")
    }
}

/// A bare TCP connection that speaks SMTP by hand.
pub struct RawSmtp {
    stream: BufReader<TcpStream>,
}

impl RawSmtp {
    /// Connects and reads the greeting (must be 220).
    pub async fn connect(addr: SocketAddr) -> RawSmtp {
        let stream = tokio::time::timeout(WAIT_TIMEOUT, TcpStream::connect(addr)).await.expect("connect timed out").expect("connect");
        let mut smtp = RawSmtp { stream: BufReader::new(stream) };
        let greeting = smtp.reply().await;
        assert_eq!(greeting.code, 220, "greeting: {greeting:?}");
        smtp
    }

    /// Reads one reply (all its lines).
    pub async fn reply(&mut self) -> Reply {
        self.try_reply().await.expect("the server closed the connection instead of replying")
    }

    /// Reads one reply, or None if the server closed the connection.
    pub async fn try_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(WAIT_TIMEOUT, self.stream.read_line(&mut line)).await.expect("no reply within the timeout");
            if read.expect("read") == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("not a reply line: {line:?}"));
            lines.push(line);
            if last {
                return Some(Reply { code, lines });
            }
        }
    }

    /// Writes raw bytes as they are.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.expect("write");
        self.stream.get_mut().flush().await.expect("flush");
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.write(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends a command and checks the reply starts with `expected`
    /// (e.g. "250" or "550 5.7.1").
    pub async fn expect(&mut self, line: &str, expected: &str) -> Reply {
        let reply = self.cmd(line).await;
        assert!(reply.text().starts_with(expected), "{line:?}: expected {expected:?}, got {reply:?}");
        reply
    }

    /// Gives up the connection without QUIT.
    pub fn into_stream(self) -> TcpStream {
        self.stream.into_inner()
    }
}

/// A complete delivery over port 25 (EHLO to QUIT); returns the final reply to the body.
pub async fn deliver_raw(addr: SocketAddr, from: &str, to: &[&str], message: &[u8]) -> Reply {
    let mut smtp = RawSmtp::connect(addr).await;
    smtp.expect("EHLO outside.test", "250").await;
    smtp.expect(&format!("MAIL FROM:<{from}>"), "250").await;
    for rcpt in to {
        smtp.expect(&format!("RCPT TO:<{rcpt}>"), "250").await;
    }
    smtp.expect("DATA", "354").await;
    smtp.write(message).await;
    smtp.write(b".\r\n").await;
    let reply = smtp.reply().await;
    smtp.expect("QUIT", "221").await;
    reply
}

// ----- outside programs (swaks, curl, python3) -----

/// The path of a program the test needs. A missing program fails the test
/// with a clear message: CI installs them (it must not silently skip).
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("`{name}` is not installed, and this test needs it as a real client; install it (Debian: apt-get install swaks curl python3)")
    })
}

/// Output of a finished program.
pub struct ToolOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a program to its end (fails on a hang), in `dir` if given.
pub async fn run_tool(program: &Path, args: &[&str], dir: Option<&Path>) -> ToolOutput {
    let mut command = tokio::process::Command::new(program);
    command.args(args).stdin(std::process::Stdio::null()).kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = tokio::time::timeout(WAIT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} did not finish within {WAIT_TIMEOUT:?}", program.display()))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    ToolOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A fresh empty directory under the target dir, for files a test writes.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = base.join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
