//! Shared helpers for the integration tests.
//!
//! Every test gets a loopback block of its own, `127.X.Y.0/24` with X in
//! 100..=250, so tests run in parallel without fighting over ports: a world
//! binds its DNS server on the block's first address (port 10053), and two
//! different blocks never collide. Blocks come from a tiny xorshift seeded
//! from the time, the process id and a counter, and a process never hands
//! out the same block twice.

#![allow(dead_code)] // each topic file uses a different part of this module

use std::collections::HashSet;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mailflow::conductor::Pace;
use mailflow::scenario::Scenario;
use mailflow::world::{Subnet, World, WorldError, WorldOptions};

/// Only to stop a hung test; never an assertion about speed.
pub const GENEROUS: Duration = Duration::from_secs(60);

/// The DNS port of a world (standard port 53 + 10000).
pub const DNS_PORT: u16 = 10053;

static COUNTER: AtomicU64 = AtomicU64::new(0);
static HANDED_OUT: Mutex<Option<HashSet<(u8, u8)>>> = Mutex::new(None);

/// A small xorshift64 generator: enough randomness for addresses and junk
/// packets, with no extra crate.
pub struct XorShift(u64);

impl XorShift {
    /// A generator with a fixed seed (reproducible junk).
    pub fn seeded(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    /// A generator seeded from the time, the pid and a per-process counter.
    pub fn fresh() -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let seed = nanos ^ (u64::from(std::process::id()) << 32) ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = XorShift::seeded(seed);
        rng.next(); // mix the seed before using it
        rng
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// One test's own loopback block, `127.X.Y.0/24`.
#[derive(Clone, Copy, Debug)]
pub struct Net {
    pub x: u8,
    pub y: u8,
}

impl Net {
    /// A block no other test of this process has.
    pub fn random() -> Net {
        let mut rng = XorShift::fresh();
        let mut taken = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        let taken = taken.get_or_insert_with(HashSet::new);
        loop {
            let x = 100 + (rng.next() % 151) as u8; // 100..=250
            let y = rng.next() as u8;
            if taken.insert((x, y)) {
                return Net { x, y };
            }
        }
    }

    pub fn subnet(&self) -> Subnet {
        self.to_string().parse().expect("127.X.Y.0/24 is a valid subnet")
    }

    /// The `n`-th address of the block (1 is the DNS server).
    pub fn addr(&self, n: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.x, self.y, n)
    }

    /// `127.X.Y`, for writing addresses into scenario text.
    pub fn prefix(&self) -> String {
        format!("127.{}.{}", self.x, self.y)
    }

    /// Where the world's DNS server listens.
    pub fn dns(&self) -> Ipv4Addr {
        self.addr(1)
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "127.{}.{}.0/24", self.x, self.y)
    }
}

/// Parses scenario text, panicking with every problem if it is not valid.
pub fn scenario(text: &str) -> Scenario {
    Scenario::parse("test.json", text).unwrap_or_else(|err| panic!("the test scenario is invalid:\n{err}"))
}

/// Starts a world with `Pace::Fast` on a block of its own. `text` may use
/// `NET` for the block's `127.X.Y` (e.g. `"NET.50"` for an address).
pub async fn start_world(text: &str) -> (Arc<World>, Net) {
    start_world_paced(text, Pace::Fast).await
}

/// Like [`start_world`], at any pace.
pub async fn start_world_paced(text: &str, pace: Pace) -> (Arc<World>, Net) {
    // Another process (a second `cargo test`) may hold the same block by
    // chance: then try another one.
    let mut last_error = None;
    for _ in 0..5 {
        let net = Net::random();
        match start_world_on(net, text, pace).await {
            Ok(world) => return (world, net),
            Err(err @ WorldError::Bind(_)) => last_error = Some(err),
            Err(err) => panic!("cannot start the test world: {err}"),
        }
    }
    panic!("cannot start the test world: {}", last_error.expect("tried at least once"));
}

/// Starts a world on the given block (`NET` in `text` as above).
pub async fn start_world_on(net: Net, text: &str, pace: Pace) -> Result<Arc<World>, WorldError> {
    let scenario = scenario(&text.replace("NET", &net.prefix()));
    let options = WorldOptions { subnet: net.subnet(), pace, network_timeout: Duration::from_secs(5), ..WorldOptions::default() };
    World::start(scenario, options).await
}

/// A fresh, empty directory under the system's temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let unique = format!("mailflow-test-{label}-{}-{:016x}", std::process::id(), XorShift::fresh().next());
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, text).expect("write a temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The repository root (where `scenarios/` is).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The built-in scenario's file.
pub fn default_scenario_file() -> PathBuf {
    repo().join("scenarios/alice-writes-to-bob.json")
}

/// What a finished run of the binary printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams when the exit status is not `ok`.
    pub fn expect_success(self, ok: bool) -> Output {
        assert_eq!(self.status.success(), ok, "unexpected exit status {}\n--- stdout:\n{}\n--- stderr:\n{}", self.status, self.stdout, self.stderr);
        self
    }
}

/// The real `mailflow` binary, run from the repository root.
pub fn mailflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailflow"));
    command.current_dir(repo()).env("NO_COLOR", "1").env_remove("RUST_LOG");
    command
}

/// Runs the binary with `args`, feeding `stdin` (then closing it), and
/// waits for it to end. A hang is killed after [`GENEROUS`].
pub fn run_mailflow(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = mailflow().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the mailflow binary");
    // Readers on threads of their own, so a full pipe never blocks the child.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("piped stdin");
        let _ = input.write_all(stdin);
        // Dropping `input` closes stdin: the child sees end of file.
    }
    let deadline = Instant::now() + GENEROUS;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mailflow {args:?} did not finish within {GENEROUS:?}; stderr:\n{}", stderr.join().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().expect("stdout reader"), stderr: stderr.join().expect("stderr reader") }
}

/// Runs `dig` with `args` (plus short timeouts so a dead server fails fast).
/// A missing `dig` fails the test: CI installs `bind9-dnsutils`.
pub async fn dig(args: &[String]) -> String {
    let output = tokio::process::Command::new("dig").args(["+time=3", "+tries=2"]).args(args).kill_on_drop(true).output();
    let output = match tokio::time::timeout(GENEROUS, output).await.expect("dig hung") {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            panic!("`dig` is not installed; these tests need a real DNS client: apt-get install bind9-dnsutils")
        }
        Err(err) => panic!("cannot run dig: {err}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "dig {args:?} failed ({}):\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    stdout
}

/// `dig @DNS -p 10053 ARGS...` against the world on `net`.
pub async fn dig_at(net: &Net, args: &[&str]) -> String {
    let mut all = vec![format!("@{}", net.dns()), "-p".to_string(), DNS_PORT.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    dig(&all).await
}

/// `dig +short` lines, trimmed, empty lines dropped.
pub fn short_lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}
