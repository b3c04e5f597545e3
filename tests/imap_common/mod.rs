//! Shared helpers of the IMAP integration tests: a world on its own random
//! loopback subnet, real SMTP delivery through a scenario, and the outside
//! clients (python3's imaplib, curl) a student would use.
#![allow(dead_code)]

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mailflow::conductor::Pace;
use mailflow::scenario::{Scenario, Service};
use mailflow::world::{Subnet, World, WorldOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A random /24 in 127.X.Y.0 with X in 100..=250, so tests run in
/// parallel without sharing addresses.
pub fn random_subnet() -> Subnet {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    let r = hasher.finish();
    let x = 100 + (r % 151) as u8;
    let y = (r >> 8) as u8;
    format!("127.{x}.{y}.0/24").parse().expect("a valid subnet")
}

/// A scenario: Alice (school.test) can send to Bob and Carol, whose
/// mailboxes are on mx1.example.org with IMAP. `steps` is a JSON array.
/// Logins before TLS are allowed (`plaintext_login`): these tests are about
/// IMAP itself, spoken by clients in plaintext; `tls_retrieval.rs` tests TLS.
pub fn scenario(steps: &str, mx_extra: &str) -> Scenario {
    let text = format!(
        r#"{{
  "title": "IMAP test",
  "settings": {{ "tls": {{ "plaintext_login": true }} }},
  "domains": {{
    "school.test": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "smtp.school.test" }} ] }},
    "example.org": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "mx1.example.org" }} ] }}
  }},
  "hosts": {{
    "smtp.school.test": {{ "services": ["submission", "smtp"], "domains": ["school.test"] }},
    "mx1.example.org": {{ "services": ["smtp", "imap"], "domains": ["example.org"] {mx_extra} }}
  }},
  "users": {{
    "alice@school.test": {{ "password": "wonderland" }},
    "bob@example.org": {{ "password": "builder" }},
    "carol@example.org": {{ "password": "secret" }}
  }},
  "clients": {{
    "alice-laptop": {{ "user": "alice@school.test", "submit_to": "smtp.school.test" }},
    "bob-phone": {{ "user": "bob@example.org", "fetch": "imap" }}
  }},
  "steps": {steps}
}}"#
    );
    Scenario::parse("test.json", &text).unwrap_or_else(|e| panic!("test scenario: {e}"))
}

/// Alice sends "Lunch?" to Bob at 0s.
pub const ALICE_WRITES: &str = r#"[ { "at": "0s", "send": { "client": "alice-laptop", "to": ["bob@example.org"], "subject": "Lunch?", "body": "Hi Bob,\n\nlunch at noon tomorrow?\n\nAlice\n" } } ]"#;

pub async fn start(scenario: Scenario) -> Arc<World> {
    let options = WorldOptions { subnet: random_subnet(), pace: Pace::Fast, ..Default::default() };
    World::start(scenario, options).await.unwrap_or_else(|e| panic!("the world does not start: {e}"))
}

/// A world where Alice's message has been delivered to Bob by real SMTP.
pub async fn world_with_mail() -> Arc<World> {
    let world = start(scenario(ALICE_WRITES, "")).await;
    world.run_to_end().await;
    let inbox = world.hosts["mx1.example.org"].store.inbox("bob@example.org");
    assert_eq!(inbox.len(), 1, "Alice's message should be in Bob's INBOX after SMTP delivery");
    world
}

/// The IMAP address of mx1.example.org.
pub fn imap_addr(world: &World) -> SocketAddr {
    let node = world.node("mx1.example.org").expect("mx1 exists");
    SocketAddr::new(IpAddr::V4(node.address), world.port(Service::Imap))
}

/// Runs a python3 script with the IMAP host and port as arguments; the
/// test fails (not skips) if python3 is missing or the script fails.
pub async fn python(script: &str, addr: SocketAddr) -> String {
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .output()
        .await
        .unwrap_or_else(|e| panic!("python3 is needed for this test (apt-get install python3): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the python script failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    stdout
}

/// Runs curl; returns (exit code, stdout). Fails the test if curl is missing.
pub async fn curl(args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("curl is needed for this test (apt-get install curl): {e}"));
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A raw IMAP connection for tests that send what no client library would.
pub struct Raw {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        let (r, w) = stream.into_split();
        let mut raw = Raw { reader: BufReader::new(r), writer: w };
        let greeting = raw.line().await.expect("a greeting");
        assert!(greeting.starts_with("* OK"), "{greeting}");
        raw
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send");
    }

    /// The next line (without CRLF), or None when the server closed. A
    /// generous real-time limit only guards against a hang failing slowly.
    pub async fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(30), self.reader.read_until(b'\n', &mut buf)).await.expect("the server answers").ok()?;
        if n == 0 {
            return None;
        }
        Some(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string())
    }

    /// Sends a command line and returns every line up to the tagged one.
    pub async fn command(&mut self, tag: &str, line: &str) -> Vec<String> {
        self.send(format!("{tag} {line}\r\n").as_bytes()).await;
        self.until_tagged(tag).await
    }

    pub async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await.unwrap_or_else(|| panic!("the server closed the connection; so far: {lines:?}"));
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}
