//! POP3 against Python's `poplib`, a real outside client, after a real
//! SMTP delivery: Alice's laptop submits, her server relays by MX to
//! mx1.example.org, and Bob's mailbox there is read over POP3.

use crate::pop3_common;

use pop3_common::*;

/// One script, several scenes (argv: host port user password scene).
const SCRIPT: &str = r#"
import poplib, sys
host, port, user, password, scene = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def connect():
    return poplib.POP3(host, port, timeout=30)
def err(call):
    try:
        call()
        return "NO ERROR"
    except poplib.error_proto as e:
        text = e.args[0].decode(errors="replace") if isinstance(e.args[0], bytes) else str(e.args[0])
        return "CLOSED" if text == "-ERR EOF" else text
    except OSError:
        return "CLOSED"  # the server hung up (reset or broken pipe)
if scene == "retr":
    p = connect(); p.user(user); p.pass_(password)
    count, size = p.stat()
    resp, lines, octets = p.retr(1)
    uidl = p.uidl(1).decode()
    p.quit()
    sys.stdout.buffer.write(("%d %d %s\n" % (count, size, uidl)).encode())
    sys.stdout.buffer.write(b"\r\n".join(lines) + b"\r\n")
elif scene == "dele_quit":
    p = connect(); p.user(user); p.pass_(password)
    print(p.dele(1).decode()); print(p.quit().decode())
elif scene == "dele_drop":
    p = connect(); p.user(user); p.pass_(password)
    print(p.dele(1).decode())
    p.close()  # no QUIT: the connection just goes away
elif scene == "in_use":
    a = connect(); a.user(user); a.pass_(password)
    b = connect(); b.user(user)
    print("second:", err(lambda: b.pass_(password)))
    a.quit()
    b.user(user); b.pass_(password)
    print("after quit:", b.stat()[0])
    b.quit()
elif scene == "wrong_password":
    p = connect(); p.user(user)
    print("pass:", err(lambda: p.pass_("not-" + password)))
    print("stat:", err(lambda: p.stat()))
    print("retr:", err(lambda: p.retr(1)))
    p.user(user); print("pass2:", err(lambda: p.pass_("wrong")))
    p.user(user); print("pass3:", err(lambda: p.pass_("wrong")))
    print("after 3:", err(lambda: p.noop()))
elif scene == "other_user":
    p = connect(); p.user(user); p.pass_(password)
    print("stat:", p.stat())
    print("retr:", err(lambda: p.retr(1)))
    print("list:", p.list()[1])
    p.quit()
    q = connect(); q.user("bob@example.org")
    print("bob with carol's password:", err(lambda: q.pass_(password)))
    q.user("alice@school.test")
    print("alice, whose mailbox is elsewhere:", err(lambda: q.pass_("wonderland")))
    q.quit()
"#;

async fn scene(world: &mailflow::world::World, user: &str, password: &str, name: &str) -> String {
    let addr = pop3_addr(world);
    python(SCRIPT, &[&addr.ip().to_string(), &addr.port().to_string(), user, password, name]).await
}

async fn delivered_world() -> std::sync::Arc<mailflow::world::World> {
    let world = start(scenario(&format!("[{}]", send_step("0s", "Lunch?"))), None).await;
    world.run_to_end().await;
    assert_eq!(world.hosts[MX].store.inbox(BOB).len(), 1, "the SMTP delivery must have put one message in Bob's INBOX");
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retr_returns_exactly_the_stored_bytes() {
    let world = delivered_world().await;
    let stored = world.hosts[MX].store.inbox(BOB)[0].clone();
    let out = scene(&world, BOB, "builder", "retr").await;
    let (head, body) = out.split_once('\n').expect("a first line");
    let inbox = world.hosts[MX].store.snapshot(BOB, "INBOX").unwrap();
    assert_eq!(head, format!("1 {} +OK 1 {}.{}", stored.raw.len(), inbox.uid_validity, stored.uid));
    assert_eq!(body.as_bytes(), stored.raw.as_slice(), "RETR must give the stored message byte for byte");
    assert!(String::from_utf8_lossy(&stored.raw).contains("\r\n..two dots\r\n"), "the message has lines starting with dots");
    // Reading does not delete.
    pop3_disconnects(&world, 1).await;
    assert_eq!(world.hosts[MX].store.inbox(BOB).len(), 1);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dele_and_quit_removes_the_message() {
    let world = delivered_world().await;
    let out = scene(&world, BOB, "builder", "dele_quit").await;
    assert_eq!(out, "+OK message 1 deleted\n+OK mx1.example.org POP3 server signing off (1 message deleted)\n");
    assert!(world.hosts[MX].store.inbox(BOB).is_empty());
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_removes_nothing() {
    let world = delivered_world().await;
    let out = scene(&world, BOB, "builder", "dele_drop").await;
    assert_eq!(out, "+OK message 1 deleted\n");
    // Wait until the server has seen the connection end, then look.
    pop3_disconnects(&world, 1).await;
    assert_eq!(world.hosts[MX].store.inbox(BOB).len(), 1, "no QUIT, so no UPDATE state, so nothing deleted");
    assert!(world.hosts[MX].store.lock_maildrop(BOB).is_some(), "the maildrop is unlocked again");
    assert!(world.trace.since(0).iter().any(|e| e.summary.contains("hung up without QUIT")));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_session_gets_in_use() {
    let world = delivered_world().await;
    let out = scene(&world, BOB, "builder", "in_use").await;
    assert_eq!(out, "second: -ERR [IN-USE] maildrop already locked by another POP3 session\nafter quit: 1\n");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_gets_auth_and_no_access() {
    let world = delivered_world().await;
    let out = scene(&world, BOB, "builder", "wrong_password").await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pass: -ERR [AUTH] invalid user name or password");
    assert!(lines[1].starts_with("stat: -ERR not logged in"), "{out}");
    assert!(lines[2].starts_with("retr: -ERR not logged in"), "{out}");
    assert_eq!(lines[3], "pass2: -ERR [AUTH] invalid user name or password");
    assert_eq!(lines[4], "pass3: -ERR [AUTH] too many failed logins on this connection, closing");
    assert_eq!(lines[5], "after 3: CLOSED", "the server hung up after the third failure");
    // Each failure was answered later than the one before (throttling; an
    // outside program waits in real time, so the events are checked, not a clock).
    let delays: Vec<(u64, bool)> = world
        .trace
        .since(0)
        .iter()
        .filter_map(|e| match e.kind {
            mailflow::trace::Kind::LoginDelay { delay_ms, simulated } => Some((delay_ms, simulated)),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [(1000, false), (2000, false), (4000, false)]);
    assert_eq!(world.hosts[MX].store.inbox(BOB).len(), 1);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_read_another_users_mail() {
    let world = delivered_world().await;
    let out = scene(&world, "carol@example.org", "secret", "other_user").await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "stat: (0, 0)", "carol sees an empty maildrop: {out}");
    assert_eq!(lines[1], "retr: -ERR no such message: 1");
    assert_eq!(lines[2], "list: []");
    assert_eq!(lines[3], "bob with carol's password: -ERR [AUTH] invalid user name or password");
    assert_eq!(lines[4], "alice, whose mailbox is elsewhere: -ERR [AUTH] invalid user name or password");
    assert_eq!(world.hosts[MX].store.inbox(BOB).len(), 1);
    world.shutdown().await;
}
