//! Helpers shared by the POP3 integration tests: a world on its own random
//! loopback subnet, a tiny raw POP3 client, and running outside tools
//! (python3, curl) — a missing tool fails the test with a clear message.
#![allow(dead_code)] // each test file uses a different part of this

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mailflow::conductor::Pace;
use mailflow::scenario::{Scenario, Service};
use mailflow::trace::{Kind, Protocol};
use mailflow::world::{Subnet, World, WorldError, WorldOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A guard against hangs (never a measurement): anything a test waits for
/// must happen within this, or the test fails saying what it waited for.
pub const GUARD: Duration = Duration::from_secs(60);

pub const MX: &str = "mx1.example.org";
pub const BOB: &str = "bob@example.org";

/// The message Alice sends: dots and "From " at line starts, to exercise
/// byte-stuffing and mbox quoting.
pub const BODY: &str = "Hi Bob,\n.\n..two dots\nFrom the start of a line\n\nAlice\n";

/// Two domains, Alice's submission server and Bob's mail host running
/// SMTP and POP3; Bob's laptop fetches by POP3. `steps` is a JSON array.
/// Logins before TLS are allowed (`plaintext_login`): these tests are about
/// POP3 itself, spoken by clients in plaintext; `tls_retrieval.rs` tests TLS.
pub fn scenario(steps: &str) -> Scenario {
    let text = format!(
        r#"{{
  "title": "POP3 test",
  "settings": {{ "tls": {{ "plaintext_login": true }} }},
  "domains": {{
    "school.test": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "smtp.school.test" }} ] }},
    "example.org": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "mx1.example.org" }} ] }}
  }},
  "hosts": {{
    "smtp.school.test": {{ "services": ["submission", "smtp"], "domains": ["school.test"] }},
    "mx1.example.org": {{ "services": ["smtp", "pop3"], "domains": ["example.org"] }}
  }},
  "users": {{
    "alice@school.test": {{ "password": "wonderland" }},
    "bob@example.org": {{ "password": "builder" }},
    "carol@example.org": {{ "password": "secret" }}
  }},
  "clients": {{
    "alice-laptop": {{ "user": "alice@school.test", "submit_to": "smtp.school.test" }},
    "bob-laptop": {{ "user": "bob@example.org", "fetch": "pop3" }}
  }},
  "steps": {steps}
}}"#
    );
    Scenario::parse("pop3-test.json", &text).unwrap_or_else(|e| panic!("test scenario is invalid:\n{e}"))
}

/// A `send` step from Alice to Bob at `at`.
pub fn send_step(at: &str, subject: &str) -> String {
    let body = serde_json::to_string(BODY).unwrap();
    format!(r#"{{ "at": "{at}", "send": {{ "client": "alice-laptop", "to": ["bob@example.org"], "subject": "{subject}", "body": {body} }} }}"#)
}

pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A random 127.X.Y.0/24 with X in 100..=250.
pub fn random_subnet() -> Subnet {
    let r = random_u64();
    let x = 100 + (r % 151) as u8;
    let y = (r >> 8) as u8;
    format!("127.{x}.{y}.0/24").parse().expect("a valid subnet")
}

/// Starts a world on a random subnet (another one if the first is taken).
pub async fn start(scenario: Scenario, data_dir: Option<PathBuf>) -> Arc<World> {
    let mut last = None;
    for _ in 0..5 {
        let options = WorldOptions { subnet: random_subnet(), pace: Pace::Fast, data_dir: data_dir.clone(), ..Default::default() };
        match World::start(scenario.clone(), options).await {
            Ok(world) => return world,
            Err(err @ (WorldError::Listen { .. } | WorldError::Bind(_))) => last = Some(err),
            Err(err) => panic!("cannot start the world: {err}"),
        }
    }
    panic!("no free subnet after 5 tries: {last:?}")
}

/// Where the mail host's POP3 server listens.
pub fn pop3_addr(world: &World) -> SocketAddr {
    let node = world.node(MX).expect("the mail host");
    SocketAddr::new(IpAddr::V4(node.address), world.port(Service::Pop3))
}

/// Waits until the trace shows `count` POP3 connections closed (so the
/// server has finished with them, e.g. released its lock or not deleted).
pub async fn pop3_disconnects(world: &World, count: usize) {
    let mut events = world.trace.subscribe(0);
    let mut seen = 0;
    let wait = async {
        while seen < count {
            match events.next().await {
                Some(e) if e.protocol == Protocol::Pop3 && matches!(e.kind, Kind::Disconnect) => seen += 1,
                Some(_) => {}
                None => break,
            }
        }
    };
    tokio::time::timeout(GUARD, wait).await.unwrap_or_else(|_| panic!("waited for {count} POP3 disconnects, saw {seen}"));
    assert!(seen >= count, "the trace closed after {seen} of {count} POP3 disconnects");
}

/// Fails the test (not skips it) when a tool the test needs is missing.
pub fn require(tool: &str, hint: &str) {
    let found = std::process::Command::new(tool).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(found, "this test needs `{tool}`, which is not installed or does not run; {hint}");
}

/// Runs a program with a guard; returns its output.
pub async fn run(program: &str, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(program).args(args).kill_on_drop(true).output();
    match tokio::time::timeout(GUARD, child).await {
        Ok(Ok(output)) => output,
        Ok(Err(err)) => panic!("cannot run {program}: {err}"),
        Err(_) => panic!("{program} {args:?} did not finish within {GUARD:?}"),
    }
}

/// Runs a Python script (with `sys.argv[1:]` = `args`); fails the test if
/// python3 is missing or the script fails.
pub async fn python(script: &str, args: &[&str]) -> String {
    require("python3", "install it (apt install python3) to test against Python's poplib");
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let output = run("python3", &all).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "python3 failed: {}\nstdout:\n{stdout}\nstderr:\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    stdout
}

/// A raw POP3 connection for tests that send what no client would.
pub struct Raw {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    /// The server closed the connection.
    pub closed: bool,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = tokio::time::timeout(GUARD, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
        let (read, writer) = stream.into_split();
        let mut raw = Raw { reader: BufReader::new(read), writer, closed: false };
        let greeting = raw.line().await;
        assert!(greeting.starts_with("+OK"), "greeting: {greeting:?}");
        raw
    }

    /// The next line from the server, without CRLF ("" at end of stream).
    pub async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(GUARD, self.reader.read_until(b'\n', &mut buf)).await.expect("the server answers in time");
        // A reset is the server hanging up too (it closed while our last
        // line was on its way).
        let n = match read {
            Ok(n) => n,
            Err(err) if matches!(err.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => 0,
            Err(err) => panic!("read: {err}"),
        };
        if n == 0 {
            self.closed = true;
            return String::new();
        }
        String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string()
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        // A server that already hung up may reset the connection: that is
        // for the test to see in what it reads next, not a failure here.
        let _ = self.writer.write_all(bytes).await;
    }

    /// Sends a command line and returns the status line.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.line().await
    }

    /// Reads a multi-line answer's lines up to the final ".".
    pub async fn lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self.line().await;
            if line == "." {
                return out;
            }
            assert!(!self.closed, "connection closed inside a multi-line answer");
            out.push(line);
        }
    }

    pub async fn login(&mut self, user: &str, password: &str) -> String {
        let user = self.cmd(&format!("USER {user}")).await;
        assert!(user.starts_with("+OK"), "{user}");
        self.cmd(&format!("PASS {password}")).await
    }
}

/// A fresh, empty temporary folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mailflow-{name}-{}-{:x}", std::process::id(), random_u64()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    dir
}
