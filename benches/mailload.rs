//! mailload — a bounded load generator for mail retrieval servers.
//!
//! It measures how many complete IMAP or POP3 sessions per second a server
//! serves, the way a classroom of devices would use it: each of a fixed
//! number of clients opens a connection, logs in, reads its mail, logs
//! out, and starts again, until the time is up. Nothing is unbounded: the
//! number of clients is fixed, every read has a timeout, and the run ends
//! by itself.
//!
//! ```text
//! cargo bench --bench mailload -- imap --addr 127.66.0.2:10143 \
//!     --user 'reader{i}@bench.test' --pass bench-secret --clients 10 --seconds 10
//! cargo bench --bench mailload -- pop3 --addr 127.66.0.2:10110 ...
//! ```
//!
//! `{i}` in `--user` becomes the client's number (1 to `--clients`), so ten
//! clients can use ten mailboxes: a POP3 server locks a maildrop while a
//! session has it (RFC 1939 §8), so ten clients on one user would mostly
//! get `-ERR [IN-USE]`.
//!
//! An IMAP session (RFC 9051 / RFC 3501) is
//! `LOGIN`, `SELECT INBOX`, `FETCH 1:* (FLAGS BODY.PEEK[])`,
//! `STORE 1 +FLAGS (\Seen)`, `STORE 1 -FLAGS (\Seen)`, `LOGOUT`;
//! a POP3 session (RFC 1939) is `USER`, `PASS`, `STAT`, `RETR 1`, `QUIT`.
//! Both leave the mailbox as they found it, so every session does the same
//! work.
//!
//! Responses are parsed, not skimmed: IMAP literals (`{n}` at the end of a
//! line) are consumed by byte count, so a message body that contains a
//! line looking like a tagged reply cannot fool the reader; POP3
//! multi-line answers are read to the lone `.` and dot-unstuffed. Any
//! `NO`, `BAD`, `-ERR`, unexpected `BYE`, early close, timeout, or a FETCH
//! that returns fewer messages than SELECT announced counts as a protocol
//! error; the session is abandoned and the client starts a new one.
//!
//! The last line of the output is one machine-readable `RESULT` line for
//! scripts (`benches/retrieval.sh` reads it); `all_sessions` there also
//! counts the warm-up's sessions, for dividing a server's CPU time by.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest response line accepted (a guard against a runaway server).
const LINE_MAX: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Imap,
    Pop3,
}

#[derive(Clone, Debug)]
struct Options {
    protocol: Protocol,
    addr: SocketAddr,
    user: String,
    pass: String,
    clients: usize,
    seconds: f64,
    warmup: f64,
    timeout: Duration,
}

const USAGE: &str = "usage: mailload imap|pop3 --addr HOST:PORT --user USER --pass PASS \
[--clients 10] [--seconds 10] [--warmup 1] [--timeout 10]
  --user may contain {i}: it becomes the client's number, 1 to --clients";

fn parse_args() -> Result<Options, String> {
    // `cargo bench` passes `--bench` to every bench binary: not ours.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut protocol = None;
    let (mut addr, mut user, mut pass) = (None, None, None);
    let (mut clients, mut seconds, mut warmup, mut timeout) = (10usize, 10f64, 1f64, 10f64);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "imap" => protocol = Some(Protocol::Imap),
            "pop3" => protocol = Some(Protocol::Pop3),
            "--addr" => addr = Some(value("--addr")?.parse::<SocketAddr>().map_err(|e| format!("--addr: {e}"))?),
            "--user" => user = Some(value("--user")?),
            "--pass" => pass = Some(value("--pass")?),
            "--clients" => clients = value("--clients")?.parse().map_err(|e| format!("--clients: {e}"))?,
            "--seconds" => seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--warmup" => warmup = value("--warmup")?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--timeout" => timeout = value("--timeout")?.parse().map_err(|e| format!("--timeout: {e}"))?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let protocol = protocol.ok_or("say imap or pop3")?;
    let addr = addr.ok_or("--addr is required")?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: mailload only talks to loopback addresses"));
    }
    if !(1..=1000).contains(&clients) || !(0.1..=600.0).contains(&seconds) || !(0.0..=60.0).contains(&warmup) || !(0.1..=120.0).contains(&timeout) {
        return Err("--clients 1..1000, --seconds 0.1..600, --warmup 0..60, --timeout 0.1..120".into());
    }
    Ok(Options {
        protocol,
        addr,
        user: user.ok_or("--user is required")?,
        pass: pass.ok_or("--pass is required")?,
        clients,
        seconds,
        warmup,
        timeout: Duration::from_secs_f64(timeout),
    })
}

/// Why a session failed; every one counts as a protocol error.
#[derive(Debug)]
enum Failure {
    Connect(std::io::Error),
    Io(std::io::Error),
    Timeout(&'static str),
    Closed(&'static str),
    /// A refusal or an answer that breaks the protocol.
    Protocol(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "connect: {e}"),
            Failure::Io(e) => write!(f, "i/o: {e}"),
            Failure::Timeout(step) => write!(f, "timeout waiting for {step}"),
            Failure::Closed(step) => write!(f, "connection closed by the server during {step}"),
            Failure::Protocol(text) => write!(f, "{text}"),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

/// What one finished session did.
#[derive(Default, Clone, Copy)]
struct Done {
    messages: u64,
    bytes: u64,
}

/// One connection: a buffered reader over the socket, with a timeout on
/// every read so a stuck server ends the session instead of the run.
struct Conn {
    stream: BufReader<TcpStream>,
    timeout: Duration,
    line: Vec<u8>,
    scratch: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr, timeout: Duration) -> Result<Conn, Failure> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(Failure::Timeout("connect")),
            Ok(result) => result.map_err(Failure::Connect)?,
        };
        // Commands are small and each waits for its answer: send them now.
        stream.set_nodelay(true)?;
        Ok(Conn { stream: BufReader::with_capacity(64 * 1024, stream), timeout, line: Vec::with_capacity(512), scratch: Vec::new() })
    }

    async fn send(&mut self, command: &str) -> Result<(), Failure> {
        self.stream.get_mut().write_all(command.as_bytes()).await?;
        Ok(())
    }

    /// Reads one line (CRLF or LF ended) into `self.line`, ending included.
    async fn read_line(&mut self, step: &'static str) -> Result<(), Failure> {
        self.line.clear();
        let mut limited = (&mut self.stream).take(LINE_MAX as u64);
        match tokio::time::timeout(self.timeout, limited.read_until(b'\n', &mut self.line)).await {
            Err(_) => Err(Failure::Timeout(step)),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(0)) => Err(Failure::Closed(step)),
            Ok(Ok(_)) if self.line.last() != Some(&b'\n') => {
                if self.line.len() >= LINE_MAX {
                    Err(Failure::Protocol(format!("{step}: a response line longer than {LINE_MAX} bytes")))
                } else {
                    Err(Failure::Closed(step))
                }
            }
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Reads and discards exactly `n` bytes (an IMAP literal).
    async fn skip_bytes(&mut self, n: usize, step: &'static str) -> Result<(), Failure> {
        self.scratch.resize(n, 0);
        match tokio::time::timeout(self.timeout, self.stream.read_exact(&mut self.scratch[..n])).await {
            Err(_) => Err(Failure::Timeout(step)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Failure::Closed(step)),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

fn trimmed(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn show(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(trimmed(line));
    if text.len() > 120 { format!("{}…", &text[..text.floor_char_boundary(120)]) } else { text.into_owned() }
}

// ---------------------------------------------------------------- IMAP --

/// One complete IMAP response: its first line's start (enough to classify
/// it) and the literals it carried.
struct ImapResponse {
    head: Vec<u8>,
    literals: usize,
    literal_bytes: usize,
}

/// If `line` ends with a literal announcement `{n}` (before CRLF), its n.
fn literal_at_end(line: &[u8]) -> Result<Option<usize>, String> {
    let line = trimmed(line);
    let Some(body) = line.strip_suffix(b"}") else { return Ok(None) };
    let Some(open) = body.iter().rposition(|&b| b == b'{') else { return Ok(None) };
    let digits = &body[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits.len() > 9 {
        return Err(format!("a malformed literal announcement in {:?}", show(line)));
    }
    Ok(Some(std::str::from_utf8(digits).unwrap().parse().unwrap()))
}

impl Conn {
    /// Reads one IMAP response: a line, and while a line ends with `{n}`,
    /// exactly n bytes of literal and the line that continues after it
    /// (RFC 9051 §4.3).
    async fn imap_response(&mut self, step: &'static str) -> Result<ImapResponse, Failure> {
        self.read_line(step).await?;
        let mut response = ImapResponse { head: self.line[..self.line.len().min(256)].to_vec(), literals: 0, literal_bytes: 0 };
        loop {
            match literal_at_end(&self.line).map_err(Failure::Protocol)? {
                None => return Ok(response),
                Some(n) => {
                    self.skip_bytes(n, step).await?;
                    response.literals += 1;
                    response.literal_bytes += n;
                    self.read_line(step).await?;
                }
            }
        }
    }

    /// Sends `tag command` and reads responses up to the tagged one, which
    /// must be OK. `on_untagged` sees each untagged response on the way.
    async fn imap_command(
        &mut self,
        tag: &str,
        command: &str,
        step: &'static str,
        mut on_untagged: impl FnMut(&ImapResponse) -> Result<(), String>,
    ) -> Result<(), Failure> {
        self.send(&format!("{tag} {command}\r\n")).await?;
        loop {
            let response = self.imap_response(step).await?;
            let head = trimmed(&response.head);
            if let Some(rest) = head.strip_prefix(tag.as_bytes()).and_then(|r| r.strip_prefix(b" ")) {
                let status = rest.split(|&b| b == b' ').next().unwrap_or_default();
                return if status.eq_ignore_ascii_case(b"OK") { Ok(()) } else { Err(Failure::Protocol(format!("{step}: {}", show(head)))) };
            }
            if head.starts_with(b"* ") {
                if step != "LOGOUT" && head[2..].len() >= 3 && head[2..5].eq_ignore_ascii_case(b"BYE") {
                    return Err(Failure::Protocol(format!("{step}: unexpected {}", show(head))));
                }
                on_untagged(&response).map_err(|e| Failure::Protocol(format!("{step}: {e}")))?;
            } else if head.starts_with(b"+") {
                return Err(Failure::Protocol(format!("{step}: unexpected continuation request {}", show(head))));
            } else {
                return Err(Failure::Protocol(format!("{step}: a response that is neither tagged nor untagged: {}", show(head))));
            }
        }
    }
}

/// `* 20 EXISTS` → 20.
fn exists_count(head: &[u8]) -> Option<u64> {
    let rest = trimmed(head).strip_prefix(b"* ")?;
    let (number, word) = std::str::from_utf8(rest).ok()?.split_once(' ')?;
    word.eq_ignore_ascii_case("EXISTS").then(|| number.parse().ok()).flatten()
}

/// `* 3 FETCH (...)`?
fn is_fetch(head: &[u8]) -> bool {
    let Some(rest) = trimmed(head).strip_prefix(b"* ") else { return false };
    let mut words = rest.splitn(3, |&b| b == b' ');
    let number = words.next().unwrap_or_default();
    !number.is_empty() && number.iter().all(u8::is_ascii_digit) && words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"FETCH"))
}

fn imap_quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

async fn imap_session(options: &Options, user: &str) -> Result<Done, Failure> {
    let mut conn = Conn::open(options.addr, options.timeout).await?;
    conn.read_line("the greeting").await?;
    if !trimmed(&conn.line).get(..4).is_some_and(|g| g.eq_ignore_ascii_case(b"* OK")) {
        return Err(Failure::Protocol(format!("greeting: {}", show(&conn.line))));
    }
    let login = format!("LOGIN {} {}", imap_quoted(user), imap_quoted(&options.pass));
    conn.imap_command("a1", &login, "LOGIN", |_| Ok(())).await?;
    let mut exists = None;
    conn.imap_command("a2", "SELECT INBOX", "SELECT", |r| {
        if let Some(n) = exists_count(&r.head) {
            exists = Some(n);
        }
        Ok(())
    })
    .await?;
    let exists = exists.ok_or_else(|| Failure::Protocol("SELECT: no * n EXISTS response".into()))?;
    if exists == 0 {
        return Err(Failure::Protocol("SELECT: the mailbox is empty (seed it first)".into()));
    }
    let mut done = Done::default();
    conn.imap_command("a3", "FETCH 1:* (FLAGS BODY.PEEK[])", "FETCH", |r| {
        if is_fetch(&r.head) {
            if r.literals != 1 {
                return Err(format!("a FETCH response with {} literals, expected the body as one: {}", r.literals, show(&r.head)));
            }
            done.messages += 1;
            done.bytes += r.literal_bytes as u64;
        }
        Ok(())
    })
    .await?;
    if done.messages != exists {
        return Err(Failure::Protocol(format!("FETCH: {} messages fetched of the {exists} that SELECT announced", done.messages)));
    }
    conn.imap_command("a4", "STORE 1 +FLAGS (\\Seen)", "STORE +FLAGS", |_| Ok(())).await?;
    conn.imap_command("a5", "STORE 1 -FLAGS (\\Seen)", "STORE -FLAGS", |_| Ok(())).await?;
    let mut bye = false;
    conn.imap_command("a6", "LOGOUT", "LOGOUT", |r| {
        bye |= trimmed(&r.head).get(2..5).is_some_and(|w| w.eq_ignore_ascii_case(b"BYE"));
        Ok(())
    })
    .await?;
    if !bye {
        return Err(Failure::Protocol("LOGOUT: no * BYE before the tagged OK".into()));
    }
    Ok(done)
}

// ---------------------------------------------------------------- POP3 --

impl Conn {
    /// Sends a command and reads its one-line answer, which must be `+OK`.
    async fn pop3_command(&mut self, command: &str, step: &'static str) -> Result<(), Failure> {
        self.send(command).await?;
        self.pop3_status(step).await
    }

    async fn pop3_status(&mut self, step: &'static str) -> Result<(), Failure> {
        self.read_line(step).await?;
        if self.line.starts_with(b"+OK") { Ok(()) } else { Err(Failure::Protocol(format!("{step}: {}", show(&self.line)))) }
    }

    /// Reads a multi-line answer's body up to the lone `.` (RFC 1939 §3);
    /// the number of bytes after dot-unstuffing.
    async fn pop3_multiline(&mut self, step: &'static str) -> Result<u64, Failure> {
        let mut bytes = 0u64;
        loop {
            self.read_line(step).await?;
            let line = trimmed(&self.line);
            if line == b"." {
                return Ok(bytes);
            }
            let unstuffed = if line.starts_with(b".") { self.line.len() - 1 } else { self.line.len() };
            bytes += unstuffed as u64;
        }
    }
}

async fn pop3_session(options: &Options, user: &str) -> Result<Done, Failure> {
    let mut conn = Conn::open(options.addr, options.timeout).await?;
    conn.pop3_status("the greeting").await?;
    conn.pop3_command(&format!("USER {user}\r\n"), "USER").await?;
    conn.pop3_command(&format!("PASS {}\r\n", options.pass), "PASS").await?;
    conn.pop3_command("STAT\r\n", "STAT").await?;
    let count: u64 = std::str::from_utf8(trimmed(&conn.line))
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Failure::Protocol(format!("STAT: cannot read the count in {}", show(&conn.line))))?;
    if count == 0 {
        return Err(Failure::Protocol("STAT: the maildrop is empty (seed it first)".into()));
    }
    conn.pop3_command("RETR 1\r\n", "RETR").await?;
    let bytes = conn.pop3_multiline("RETR").await?;
    conn.pop3_command("QUIT\r\n", "QUIT").await?;
    Ok(Done { messages: 1, bytes })
}

// ----------------------------------------------------------- the run --

/// What one client counted.
#[derive(Default)]
struct Tally {
    sessions: u64,
    messages: u64,
    bytes: u64,
    latencies: Vec<Duration>,
    /// Sessions that ran (partly) during the warm-up, not counted above.
    warmup_sessions: u64,
    errors: u64,
    samples: Vec<String>,
}

async fn client(options: std::sync::Arc<Options>, number: usize, measure_from: Instant, until: Instant) -> Tally {
    let user = options.user.replace("{i}", &number.to_string());
    let mut tally = Tally::default();
    while Instant::now() < until {
        let start = Instant::now();
        let result = match options.protocol {
            Protocol::Imap => imap_session(&options, &user).await,
            Protocol::Pop3 => pop3_session(&options, &user).await,
        };
        let took = start.elapsed();
        match result {
            Ok(done) if start >= measure_from => {
                tally.sessions += 1;
                tally.messages += done.messages;
                tally.bytes += done.bytes;
                tally.latencies.push(took);
            }
            Ok(_) => tally.warmup_sessions += 1,
            Err(failure) => {
                tally.errors += 1;
                if tally.samples.len() < 3 {
                    tally.samples.push(format!("client {number} ({user}): {failure}"));
                }
                // Do not spin on a server that refuses at once.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(options: Options) {
    let options = std::sync::Arc::new(options);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(options.warmup);
    let until = measure_from + Duration::from_secs_f64(options.seconds);
    let protocol = match options.protocol {
        Protocol::Imap => "imap",
        Protocol::Pop3 => "pop3",
    };
    eprintln!(
        "mailload: {protocol} against {}, {} clients, {} s after {} s of warm-up, user {}",
        options.addr, options.clients, options.seconds, options.warmup, options.user
    );
    // All clients are tasks on this one thread (see main): the load
    // generator stays on the one core `taskset` gives it.
    let tasks: Vec<_> = (1..=options.clients).map(|n| tokio::spawn(client(options.clone(), n, measure_from, until))).collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a client task");
        total.sessions += tally.sessions;
        total.messages += tally.messages;
        total.bytes += tally.bytes;
        total.latencies.extend(tally.latencies);
        total.warmup_sessions += tally.warmup_sessions;
        total.errors += tally.errors;
        total.samples.extend(tally.samples);
    }
    // Sessions still running at `until` were allowed to finish and are
    // counted, so the measured time runs to the last one's end.
    let seconds = measure_from.elapsed().as_secs_f64();
    total.latencies.sort();
    let (p50, p95) = (percentile(&total.latencies, 50.0), percentile(&total.latencies, 95.0));
    let per_s = |n: u64| n as f64 / seconds;
    println!("{protocol} {}: {} clients for {seconds:.2} s", options.addr, options.clients);
    println!("  sessions      {:>9}   {:>10.1} /s", total.sessions, per_s(total.sessions));
    println!("  fetched msgs  {:>9}   {:>10.1} /s", total.messages, per_s(total.messages));
    println!("  fetched bytes {:>9}   {:>10.1} KiB/s", total.bytes, per_s(total.bytes) / 1024.0);
    println!("  errors        {:>9}   (warm-up sessions not counted: {})", total.errors, total.warmup_sessions);
    println!("  latency       p50 {:.2} ms, p95 {:.2} ms", ms(p50), ms(p95));
    for sample in &total.samples {
        println!("  error: {sample}");
    }
    println!(
        "RESULT protocol={protocol} addr={} clients={} seconds={seconds:.3} sessions={} all_sessions={} sessions_per_s={:.1} fetch_msgs={} fetch_msgs_per_s={:.1} fetch_bytes_per_s={:.0} errors={} p50_ms={:.3} p95_ms={:.3}",
        options.addr,
        options.clients,
        total.sessions,
        total.sessions + total.warmup_sessions,
        per_s(total.sessions),
        total.messages,
        per_s(total.messages),
        per_s(total.bytes),
        total.errors,
        ms(p50),
        ms(p95)
    );
}

fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("mailload: {problem}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    // One thread: the server gets the other core, and a single-threaded
    // runtime has no cross-thread wake-ups to pay for.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(run(options));
    std::process::ExitCode::SUCCESS
}
