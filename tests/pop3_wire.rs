//! POP3 over real sockets: curl's `pop3://` client, and hostile input
//! that no polite client sends — the server must answer properly and keep
//! serving everyone else.

use crate::pop3_common;

use pop3_common::*;

async fn delivered_world() -> std::sync::Arc<mailflow::world::World> {
    let world = start(scenario(&format!("[{}, {}]", send_step("0s", "Lunch?"), send_step("1m", "Dinner?"))), None).await;
    world.run_to_end().await;
    assert_eq!(world.hosts[MX].store.inbox(BOB).len(), 2, "the SMTP deliveries must have put two messages in Bob's INBOX");
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_lists_and_fetches() {
    require("curl", "install it (apt install curl) to test against curl's POP3 client");
    let world = delivered_world().await;
    let addr = pop3_addr(&world);
    let inbox = world.hosts[MX].store.inbox(BOB);
    let base = format!("pop3://{}:{}", addr.ip(), addr.port());

    let list = run("curl", &["-sS", "--max-time", "30", &format!("{base}/"), "-u", "bob@example.org:builder"]).await;
    assert!(list.status.success(), "curl LIST failed: {}", String::from_utf8_lossy(&list.stderr));
    let expected = format!("1 {}\r\n2 {}\r\n", inbox[0].raw.len(), inbox[1].raw.len());
    assert_eq!(String::from_utf8_lossy(&list.stdout), expected);

    for n in [1, 2] {
        let retr = run("curl", &["-sS", "--max-time", "30", &format!("{base}/{n}"), "-u", "bob@example.org:builder"]).await;
        assert!(retr.status.success(), "curl RETR failed: {}", String::from_utf8_lossy(&retr.stderr));
        assert_eq!(retr.stdout, *inbox[n - 1].raw, "curl gets message {n} byte for byte");
    }

    let wrong = run("curl", &["-sS", "--max-time", "30", &format!("{base}/1"), "-u", "bob@example.org:wrong"]).await;
    assert!(!wrong.status.success(), "a wrong password must fail");
    assert!(wrong.stdout.is_empty(), "and show no mail");
    // curl only reads: both messages are still there.
    assert_eq!(world.hosts[MX].store.inbox(BOB).len(), 2);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_answered_and_others_are_still_served() {
    let world = delivered_world().await;
    let addr = pop3_addr(&world);
    let mut rude = Raw::connect(addr).await;

    // A 100 KB line: cut off, answered, forgotten.
    let mut huge = vec![b'A'; 100 * 1024];
    huge.extend_from_slice(b"\r\n");
    rude.send(&huge).await;
    assert!(rude.line().await.starts_with("-ERR line too long"));
    // NUL bytes, 8-bit junk, unknown commands, an empty line.
    rude.send(b"ST\x00AT\r\n").await;
    assert_eq!(rude.line().await, "-ERR unknown command ST?AT");
    rude.send(b"\xff\xfe\x00\x01\r\n").await;
    assert!(rude.line().await.starts_with("-ERR unknown command"));
    assert_eq!(rude.cmd("XYZZY").await, "-ERR unknown command XYZZY");
    assert_eq!(rude.cmd("").await, "-ERR empty command");
    // Commands in the wrong state.
    assert_eq!(rude.cmd("STAT").await, "-ERR not logged in: use USER and PASS first");
    assert_eq!(rude.cmd("RETR 1").await, "-ERR not logged in: use USER and PASS first");
    assert_eq!(rude.cmd("PASS builder").await, "-ERR send USER first");

    // Meanwhile a polite client gets everything right.
    let mut polite = Raw::connect(addr).await;
    assert!(polite.login(BOB, "builder").await.starts_with("+OK bob@example.org has 2 messages"));
    let inbox = world.hosts[MX].store.inbox(BOB);
    assert_eq!(polite.cmd("STAT").await, format!("+OK 2 {}", inbox[0].raw.len() + inbox[1].raw.len()));
    assert_eq!(polite.cmd("UIDL").await, "+OK unique-id listing follows");
    assert_eq!(polite.lines().await.len(), 2);
    assert_eq!(polite.cmd("USER carol@example.org").await, "-ERR already logged in");
    assert_eq!(polite.cmd("RETR 3").await, "-ERR no such message: 3");
    assert_eq!(polite.cmd("TOP 1 0").await, "+OK top of message follows");
    let top = polite.lines().await;
    assert!(top.iter().any(|l| l.starts_with("Subject: Lunch?")) && top.last().is_some_and(String::is_empty), "{top:?}");
    assert!(polite.cmd("QUIT").await.starts_with("+OK"));

    // A megabyte without any line end, then more garbage: the server drops
    // it line by line and finally hangs up on the rude client.
    rude.send(&vec![b'x'; 1024 * 1024]).await;
    rude.send(b"\r\n").await;
    assert!(rude.line().await.starts_with("-ERR line too long"));
    let mut answers = Vec::new();
    for i in 0..20 {
        rude.send(format!("JUNK{i}\r\n").as_bytes()).await;
        let line = rude.line().await;
        if rude.closed {
            break;
        }
        answers.push(line);
    }
    assert!(rude.closed, "the server hangs up on a client that only sends errors");
    assert_eq!(answers.last().map(String::as_str), Some("-ERR too many errors, closing the connection"));

    // And it still serves others afterwards.
    let mut again = Raw::connect(addr).await;
    assert!(again.login(BOB, "builder").await.starts_with("+OK"));
    assert!(again.cmd("QUIT").await.starts_with("+OK"));
    assert_eq!(world.hosts[MX].store.inbox(BOB).len(), 2, "nothing was deleted by any of this");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_are_answered_in_order() {
    let world = delivered_world().await;
    let mut client = Raw::connect(pop3_addr(&world)).await;
    client.send(b"USER bob@example.org\r\nPASS builder\r\nSTAT\r\nDELE 2\r\nNOOP\r\nQUIT\r\n").await;
    let mut lines = Vec::new();
    for _ in 0..6 {
        lines.push(client.line().await);
    }
    assert!(lines[0].starts_with("+OK send the password"), "{lines:?}");
    assert!(lines[1].starts_with("+OK bob@example.org has 2 messages"), "{lines:?}");
    assert!(lines[2].starts_with("+OK 2 "), "{lines:?}");
    assert_eq!(lines[3], "+OK message 2 deleted");
    assert_eq!(lines[4], "+OK");
    assert!(lines[5].ends_with("(1 message deleted)"), "{lines:?}");
    let left = world.hosts[MX].store.inbox(BOB);
    assert_eq!(left.len(), 1);
    assert!(String::from_utf8_lossy(&left[0].raw).contains("Subject: Lunch?"), "message 2 (Dinner) went, message 1 stayed");
    world.shutdown().await;
}
