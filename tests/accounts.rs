//! Accounts under attack, with real clients (issue 12): Python's smtplib,
//! imaplib and poplib keep giving a wrong password and meet the growing
//! delay, then the lockout — during which even the right password is
//! refused, until it ends; the owner gets a notice. A two-factor account
//! refuses its main password over mail protocols with the hint real
//! providers give, and takes its app passwords (curl, swaks); revoking
//! one ends the open IMAP session with BYE. No secret reaches the trace
//! or a `--record` file.
//!
//! The throttle of these worlds is small (50 ms doubling to 200 ms, lock
//! after 3 failures for 2 s) so the tests stay quick; delays are checked
//! through the trace's `LoginDelay` events, never with a stopwatch.

use crate::common::{TempDir, run_mailflow};
use crate::smtp_common::{self, addr, run_tool, start, tool, wait_for};

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;

use mailflow::scenario::{Scenario, Service};
use mailflow::trace::{Direction, Kind};
use mailflow::world::World;
use tokio::io::{AsyncBufReadExt, BufReader};

const MX: &str = "mx1.example.org";
/// RFC 6238's SHA-1 test secret, in base32.
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const CAROL_MAIN: &str = "correct horse battery";
const CAROL_PHONE: &str = "qwertyuiopasdfgh";

/// The test scenario; `lock_after`: failures before a lock.
fn scenario_text(steps: &str, lock_after: u32) -> String {
    format!(
        r#"{{
  "title": "Accounts test",
  "settings": {{
    "throttle": {{ "first_delay": "50ms", "max_delay": "200ms", "lock_after": {lock_after}, "address_lock_after": 100, "lock_for": "2s" }},
    "tls": {{ "policy": "off" }}
  }},
  "domains": {{ "example.org": {{ "records": [ {{ "type": "MX", "preference": 10, "exchange": "mx1.example.org" }} ] }} }},
  "hosts": {{ "mx1.example.org": {{ "services": ["smtp", "submission", "imap", "pop3"], "domains": ["example.org"] }} }},
  "users": {{
    "bob@example.org": {{ "password": "builder" }},
    "carol@example.org": {{
      "password": "{CAROL_MAIN}",
      "two_factor": {{ "totp_secret": "{TOTP_SECRET}" }},
      "app_passwords": {{ "carol-phone": "{CAROL_PHONE}" }}
    }}
  }},
  "clients": {{
    "carol-phone": {{ "user": "carol@example.org", "fetch": "imap", "app_password": "carol-phone", "submit_to": "mx1.example.org" }}
  }},
  "steps": {steps}
}}"#
    )
}

/// A world that locks an account after 3 failures.
async fn world() -> Arc<World> {
    world_locking_after(3).await
}

async fn world_locking_after(lock_after: u32) -> Arc<World> {
    start(Scenario::parse("accounts.json", &scenario_text("[]", lock_after)).unwrap_or_else(|e| panic!("{e}"))).await
}

/// Runs a Python script with host and port as arguments; its stdout.
async fn python(script: &str, world: &World, service: Service) -> String {
    let at = addr(world, MX, service);
    let out = run_tool(&tool("python3"), &["-c", script, &at.ip().to_string(), &at.port().to_string()], None).await;
    assert!(out.status.success(), "python failed:\n{}\n{}", out.stdout, out.stderr);
    out.stdout
}

/// Starts a Python client (script arguments: host and port) that logs in,
/// prints `ready` and then waits (on stdin, or the server): the session
/// stays open for a revocation to end it. Returns it and its output lines.
async fn logged_in_client(script: &str, at: SocketAddr) -> (tokio::process::Child, tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) {
    let mut child = tokio::process::Command::new(tool("python3"))
        .args(["-c", script, &at.ip().to_string(), &at.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(smtp_common::WAIT_TIMEOUT, lines.next_line()).await.expect("in time").expect("a line");
    assert_eq!(ready.as_deref(), Some("ready"));
    (child, lines)
}

/// The delays the server waited before failed logins (ms, simulated?).
fn delays(world: &World) -> Vec<(u64, bool)> {
    smtp_common::events(world)
        .iter()
        .filter_map(|e| if let Kind::LoginDelay { delay_ms, simulated } = e.kind { Some((delay_ms, simulated)) } else { None })
        .collect()
}

/// The locks begun so far: (account, failures, simulated).
fn locks(world: &World) -> Vec<(Option<String>, u32, bool)> {
    smtp_common::events(world)
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::AccountLocked { account, failures, simulated, .. } => Some((account.clone(), *failures, *simulated)),
            _ => None,
        })
        .collect()
}

/// The delay, the lock and the owner's notice, as every protocol must show them.
async fn assert_throttled_then_locked(world: &World) {
    assert_eq!(delays(world), [(50, false), (100, false), (200, false)], "a growing delay, in real time for an outside program");
    assert_eq!(locks(world), [(Some("bob@example.org".to_string()), 3, false)], "locked at the 3rd failure, once");
    let notice = wait_for("the owner's notice", world, || {
        world.hosts[MX].store.inbox("bob@example.org").into_iter().find(|m| String::from_utf8_lossy(&m.raw).contains("Subject: Someone tried to sign in"))
    })
    .await;
    assert!(String::from_utf8_lossy(&notice.raw).contains("wrong 3 times"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtplib_meets_the_delay_then_the_lock_until_it_ends() {
    let world = world().await;
    let script = r#"
import smtplib, sys, base64, time
def plain(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="student.test", timeout=30)
s.ehlo()
for i in range(4):
    print(s.docmd("AUTH", "PLAIN " + plain("bob@example.org", "guess%d" % i))[0])
print("right:", s.docmd("AUTH", "PLAIN " + plain("bob@example.org", "builder"))[0])
for _ in range(100):
    code = s.docmd("AUTH", "PLAIN " + plain("bob@example.org", "builder"))[0]
    if code != 454:
        break
    time.sleep(0.2)
print("later:", code)
s.quit()
"#;
    let out = python(script, &world, Service::Submission).await;
    assert_eq!(out, "535\n535\n535\n454\nright: 454\nlater: 235\n", "535 5.7.8 until the lock, then 454 4.7.0 even for the right password, until it ends");
    assert_throttled_then_locked(&world).await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_meets_the_delay_then_the_lock_until_it_ends() {
    let world = world().await;
    let script = r#"
import imaplib, sys, time
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
def login(password):
    try:
        M.login("bob@example.org", password)
        return "OK"
    except imaplib.IMAP4.error as e:
        text = str(e)
        return "UNAVAILABLE" if "[UNAVAILABLE]" in text else "AUTHENTICATIONFAILED" if "[AUTHENTICATIONFAILED]" in text else text
for i in range(4):
    print(login("guess%d" % i))
print("right:", login("builder"))
for _ in range(100):
    result = login("builder")
    if result != "UNAVAILABLE":
        break
    time.sleep(0.2)
print("later:", result)
M.logout()
"#;
    let out = python(script, &world, Service::Imap).await;
    assert_eq!(out, "AUTHENTICATIONFAILED\nAUTHENTICATIONFAILED\nAUTHENTICATIONFAILED\nUNAVAILABLE\nright: UNAVAILABLE\nlater: OK\n");
    assert_throttled_then_locked(&world).await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_meets_the_delay_then_the_lock_until_it_ends() {
    let world = world().await;
    // POP3 hangs up after 3 failures on a connection: each try on a new one.
    let script = r#"
import poplib, sys, time
def login(password):
    p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=30)
    try:
        p.user("bob@example.org")
        p.pass_(password)
        p.quit()
        return "OK"
    except poplib.error_proto as e:
        text = e.args[0].decode()
        return "SYS/TEMP" if "[SYS/TEMP]" in text else "AUTH" if "[AUTH]" in text else text
for i in range(4):
    print(login("guess%d" % i))
print("right:", login("builder"))
for _ in range(100):
    result = login("builder")
    if result != "SYS/TEMP":
        break
    time.sleep(0.2)
print("later:", result)
"#;
    let out = python(script, &world, Service::Pop3).await;
    assert_eq!(out, "AUTH\nAUTH\nAUTH\nSYS/TEMP\nright: SYS/TEMP\nlater: OK\n", "-ERR [AUTH], then -ERR [SYS/TEMP] (RFC 3206) during the lock");
    assert_throttled_then_locked(&world).await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_factor_account_wants_an_app_password_on_every_protocol() {
    // Four main-password tries below: no lock may get in the way.
    let world = world_locking_after(10).await;
    let script = format!(
        r#"
import smtplib, imaplib, poplib, sys, base64
host = sys.argv[1]
s = smtplib.SMTP(host, {submission}, local_hostname="student.test", timeout=30)
s.ehlo()
token = base64.b64encode(b"\0carol@example.org\0{CAROL_MAIN}").decode()
code, text = s.docmd("AUTH", "PLAIN " + token)
print(code, text.decode().split(":")[0])
s.quit()
M = imaplib.IMAP4(host, {imap})
try:
    M.login("carol@example.org", "{CAROL_MAIN}")
except imaplib.IMAP4.error as e:
    print("imap:", "Application-specific password required" in str(e))
M.logout()
p = poplib.POP3(host, {pop3}, timeout=30)
p.user("carol@example.org")
try:
    p.pass_("{CAROL_MAIN}")
except poplib.error_proto as e:
    print("pop3:", e.args[0].decode().split(":")[0])
"#,
        submission = world.port(Service::Submission),
        imap = world.port(Service::Imap),
        pop3 = world.port(Service::Pop3),
    );
    let out = python(&script, &world, Service::Imap).await;
    assert_eq!(out, "534 5.7.9 Application-specific password required\nimap: True\npop3: -ERR [AUTH] Application-specific password required\n");

    // The app password works with curl (IMAP) and swaks (submission).
    let imap = addr(&world, MX, Service::Imap);
    let listed = run_tool(&tool("curl"), &["-sS", &format!("imap://{imap}/"), "-u", &format!("carol@example.org:{CAROL_PHONE}")], None).await;
    assert!(listed.status.success() && listed.stdout.contains("INBOX"), "curl with the app password: {} {}", listed.stdout, listed.stderr);
    let refused = run_tool(&tool("curl"), &["-sS", &format!("imap://{imap}/"), "-u", &format!("carol@example.org:{CAROL_MAIN}")], None).await;
    assert!(!refused.status.success(), "curl with the main password must fail");
    // A new one, made as on the provider's page, works at once.
    let laptop = world.hosts[MX].accounts().create_app_password("carol@example.org", "carol-laptop").expect("made");
    let submission = addr(&world, MX, Service::Submission);
    let sent = run_tool(
        &tool("swaks"),
        &[
            "--server",
            &submission.ip().to_string(),
            "--port",
            &submission.port().to_string(),
            "--auth",
            "PLAIN",
            "--auth-user",
            "carol@example.org",
            "--auth-password",
            &laptop,
            "--from",
            "carol@example.org",
            "--to",
            "bob@example.org",
            "--header",
            "Subject: From the laptop",
        ],
        None,
    )
    .await;
    assert!(sent.status.success(), "swaks with the new app password:\n{}\n{}", sent.stdout, sent.stderr);
    wait_for("carol's message to bob", &world, || {
        world.hosts[MX].store.inbox("bob@example.org").into_iter().find(|m| String::from_utf8_lossy(&m.raw).contains("Subject: From the laptop"))
    })
    .await;
    let summary = world.hosts[MX].accounts().summary();
    let carol = summary.iter().find(|a| a.address == "carol@example.org").expect("carol");
    assert!(carol.two_factor && carol.app_passwords == ["carol-phone", "carol-laptop"], "{carol:?}");
    assert_no_secrets(&world, &[&laptop]);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_app_password_ends_the_open_imap_session_with_bye() {
    let world = world().await;
    let imap = addr(&world, MX, Service::Imap);
    let script = format!(
        r#"
import imaplib, sys
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
M.login("carol@example.org", "{CAROL_PHONE}")
M.select("INBOX")
print("ready", flush=True)
print(M.readline().decode().strip(), flush=True)
"#
    );
    let (mut child, mut lines) = logged_in_client(&script, imap).await;
    world.hosts[MX].accounts().revoke_app_password("carol@example.org", "carol-phone").expect("revoked");
    let bye = tokio::time::timeout(smtp_common::WAIT_TIMEOUT, lines.next_line()).await.expect("in time").expect("a line");
    assert_eq!(bye.as_deref(), Some("* BYE Your app password was revoked; sign in again with a new one"));
    let _ = child.wait().await;
    // The device is refused at its next login.
    let again = run_tool(&tool("curl"), &["-sS", &format!("imap://{imap}/"), "-u", &format!("carol@example.org:{CAROL_PHONE}")], None).await;
    assert!(!again.status.success(), "a revoked app password opens nothing");
    let byes = smtp_common::events(&world);
    assert!(
        byes.iter().any(|e| matches!(&e.kind, Kind::Line { direction: Direction::ToClient, line } if line.starts_with("* BYE Your app password was revoked")))
    );
    world.shutdown().await;
}

/// No password, app password or TOTP secret in any event of the world.
fn assert_no_secrets(world: &World, extra: &[&str]) {
    let all: String = smtp_common::events(world).iter().map(|e| serde_json::to_string(&**e).expect("JSON")).collect();
    for secret in [CAROL_MAIN, CAROL_PHONE, TOTP_SECRET, "builder"].iter().chain(extra) {
        assert!(!all.contains(secret), "{secret:?} appears in the trace");
    }
}

// The world's own device logs in with its app password; `--record` keeps
// the story, and no secret is in it.
#[test]
fn a_device_with_an_app_password_fetches_and_the_record_keeps_no_secret() {
    let dir = TempDir::new("accounts-record");
    let steps = r#"[ { "at": "0s", "send": { "client": "carol-phone", "to": ["bob@example.org"], "subject": "Hi", "body": "From my phone" } },
                    { "at": "10s", "fetch": { "client": "carol-phone" } } ]"#;
    let file = dir.write("accounts.json", &scenario_text(steps, 3));
    let record = dir.join("trace.jsonl");
    let subnet = crate::common::Net::random().to_string();
    let out = run_mailflow(&["run", file.to_str().expect("UTF-8"), "--fast", "--subnet", &subnet, "--record", record.to_str().expect("UTF-8")], b"");
    assert!(out.status.success(), "{}", out.stderr);
    let recorded = std::fs::read_to_string(&record).expect("the record");
    assert!(recorded.contains(r#""kind":"delivered""#), "the story was recorded");
    assert!(recorded.contains("welcome, carol@example.org"), "the phone logged in with its app password");
    for secret in [CAROL_MAIN, CAROL_PHONE, TOTP_SECRET, "builder"] {
        assert!(!recorded.contains(secret), "{secret:?} appears in the --record file");
    }
}

// The world's own device whose app password was revoked is refused at its
// next logins; its waits pass on the simulated clock (the world's devices
// live in simulated time), and the third failure locks the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_device_waits_in_simulated_time() {
    let steps = r#"[ { "at": "0s", "fetch": { "client": "carol-phone" } }, { "at": "1s", "fetch": { "client": "carol-phone" } },
                    { "at": "2s", "fetch": { "client": "carol-phone" } }, { "at": "3s", "fetch": { "client": "carol-phone" } } ]"#;
    let world = start(Scenario::parse("accounts.json", &scenario_text(steps, 3)).unwrap_or_else(|e| panic!("{e}"))).await;
    world.hosts[MX].accounts().revoke_app_password("carol@example.org", "carol-phone").expect("revoked");
    smtp_common::run_to_end(&world).await;
    assert_eq!(delays(&world), [(50, true), (100, true), (200, true)], "simulated waits for the world's own device");
    assert_eq!(locks(&world), [(Some("carol@example.org".to_string()), 3, true)]);
    let events = smtp_common::events(&world);
    let refused = events.iter().filter(|e| matches!(&e.kind, Kind::Line { direction: Direction::ToClient, line } if line.contains(" NO [UNAVAILABLE]")));
    assert_eq!(refused.count(), 1, "the 4th fetch meets the lock:\n{}", smtp_common::story(&world));
    let summary = world.hosts[MX].accounts().summary();
    assert!(summary.iter().any(|a| a.address == "carol@example.org" && a.locked_until.is_some()), "{summary:?}");
    world.shutdown().await;
}

// A POP3 session logged in with an app password is hung up on when it is
// revoked (POP3 has no unsolicited answers: the server says -ERR and closes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_app_password_ends_the_open_pop3_session() {
    let world = world().await;
    let pop3 = addr(&world, MX, Service::Pop3);
    let script = format!(
        r#"
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=30)
p.user("carol@example.org")
p.pass_("{CAROL_PHONE}")
print("ready", flush=True)
sys.stdin.readline()
try:
    p.stat()
    print("still open")
except (poplib.error_proto, EOFError, OSError) as e:
    print("ended:", str(e.args[0].decode() if isinstance(e.args[0], bytes) else e.args[0]))
"#
    );
    let (mut child, mut lines) = logged_in_client(&script, pop3).await;
    world.hosts[MX].accounts().revoke_app_password("carol@example.org", "carol-phone").expect("revoked");
    wait_for("the POP3 server hangs up", &world, || {
        smtp_common::events(&world).into_iter().find(|e| e.summary.contains("the app password of this device was revoked"))
    })
    .await;
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"go\n").await.expect("written");
    let ended = tokio::time::timeout(smtp_common::WAIT_TIMEOUT, lines.next_line()).await.expect("in time").expect("a line");
    assert_eq!(ended.as_deref(), Some("ended: -ERR [AUTH] your app password was revoked; nothing was deleted"));
    let _ = child.wait().await;
    world.shutdown().await;
}
