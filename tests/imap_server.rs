//! The IMAP server over real sockets: hostile input gets BAD/NO (or a
//! BYE) and never stops it serving others; one user can never reach
//! another's mail; the session transcripts hold over a socket too.

use crate::imap_common;

use imap_common::*;

async fn logged_in(addr: std::net::SocketAddr, user: &str, password: &str) -> Raw {
    let mut raw = Raw::connect(addr).await;
    let reply = raw.command("l1", &format!("LOGIN {user} {password}")).await;
    assert!(reply.last().unwrap().starts_with("l1 OK"), "{reply:?}");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_answers_and_others_are_still_served() {
    let world = world_with_mail().await;
    let addr = imap_addr(&world);
    let mut bad = Raw::connect(addr).await;
    // A well-behaved client, connected the whole time.
    let mut good = logged_in(addr, "bob@example.org", "builder").await;

    // Wrong state: nothing but CAPABILITY, NOOP, LOGOUT and logins before a login.
    for (tag, line) in [("a1", "SELECT INBOX"), ("a2", "FETCH 1 BODY[]"), ("a3", "UID STORE 1 +FLAGS (\\Deleted)"), ("a4", "IDLE")] {
        let reply = bad.command(tag, line).await;
        assert_eq!(reply, vec![format!("{tag} BAD Log in first (LOGIN or AUTHENTICATE)")]);
    }
    // A 100 KB line is dropped and answered with an untagged BAD.
    let mut long = b"a5 NOOP ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 100_000));
    long.extend_from_slice(b"\r\n");
    bad.send(&long).await;
    assert_eq!(bad.line().await.as_deref(), Some("* BAD Line too long"));
    // A huge literal announcement is refused before a byte is sent.
    let reply = bad.command("a6", "APPEND INBOX {999999999}").await;
    assert!(reply[0].starts_with("a6 NO [TOOBIG]"), "{reply:?}");
    // NUL bytes, binary junk and unknown commands.
    bad.send(b"a7 NO\0OP\r\n").await;
    assert!(bad.line().await.unwrap().starts_with("a7 BAD"));
    bad.send(b"\xff\xfe\x00\x01 \x80\r\n").await;
    assert!(bad.line().await.unwrap().starts_with("* BAD"));
    assert!(bad.command("a8", "XYZZY plugh").await[0].starts_with("a8 BAD XYZZY is not a command"));
    assert!(bad.command("a9", "FETCH").await[0].starts_with("a9 BAD"));
    // The hostile client is still served properly.
    assert!(bad.command("a11", "NOOP").await.last().unwrap().starts_with("a11 OK"));

    // Meanwhile the good client works normally.
    let select = good.command("g1", "SELECT INBOX").await;
    assert!(select.contains(&"* 1 EXISTS".to_string()), "{select:?}");
    assert!(good.command("g2", "FETCH 1 (FLAGS)").await.last().unwrap().starts_with("g2 OK"));

    // A non-synchronising literal over the limit cannot be stopped: BYE.
    let mut worse = Raw::connect(addr).await;
    worse.send(b"w1 APPEND INBOX {999999999+}\r\n").await;
    assert!(worse.line().await.unwrap().starts_with("* BYE [TOOBIG]"));
    assert_eq!(worse.line().await, None, "the server hangs up");
    // And a client that keeps sending nonsense is cut off after a while.
    let mut noisy = Raw::connect(addr).await;
    for i in 0..mailflow::imap::session::MAX_ERRORS {
        noisy.send(format!("n{i} GARBAGE\r\n").as_bytes()).await;
        let line = noisy.line().await.unwrap_or_default();
        assert!(line.starts_with(&format!("n{i} BAD GARBAGE")), "{line}");
    }
    assert_eq!(noisy.line().await.as_deref(), Some("* BYE Too many errors"));
    assert_eq!(noisy.line().await, None, "too many errors end the connection");
    // Still serving.
    let mut after = logged_in(addr, "bob@example.org", "builder").await;
    assert!(after.command("z1", "EXAMINE INBOX").await.last().unwrap().starts_with("z1 OK [READ-ONLY]"));
    assert!(good.command("g3", "LOGOUT").await.last().unwrap().starts_with("g3 OK"));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_never_reaches_another_users_mailbox() {
    let world = world_with_mail().await;
    let addr = imap_addr(&world);
    let mut carol = logged_in(addr, "carol@example.org", "secret").await;
    // Bob's INBOX holds Alice's message; Carol's INBOX is her own, empty.
    let select = carol.command("c1", "SELECT INBOX").await;
    assert!(select.contains(&"* 0 EXISTS".to_string()), "{select:?}");
    assert_eq!(carol.command("c2", "FETCH 1 BODY[]").await, vec!["c2 BAD No message 1 (the folder has 0)".to_string()]);
    assert_eq!(carol.command("c3", "UID FETCH 1:* BODY[]").await, vec!["c3 OK FETCH completed".to_string()]);
    assert_eq!(carol.command("c4", "UID SEARCH ALL").await[0], "* SEARCH");
    for (tag, name) in [("c5", "bob@example.org"), ("c6", "\"bob@example.org/INBOX\""), ("c7", "../bob@example.org/INBOX"), ("c8", "\"#shared/bob\""), ("c9", "~bob/INBOX")] {
        let reply = carol.command(tag, &format!("SELECT {name}")).await;
        assert_eq!(reply, vec![format!("{tag} NO No such mailbox")], "{name}");
        let reply = carol.command(tag, &format!("STATUS {name} (MESSAGES)")).await;
        assert_eq!(reply, vec![format!("{tag} NO No such mailbox")], "{name}");
    }
    let list = carol.command("d1", "LIST \"\" *").await;
    assert_eq!(list, vec!["* LIST (\\HasNoChildren) \"/\" \"INBOX\"".to_string(), "d1 OK LIST completed".to_string()]);
    // A folder Carol names after Bob is hers, not his.
    assert!(carol.command("d2", "CREATE bob@example.org").await[0].starts_with("d2 OK"));
    assert!(carol.command("d3", "COPY 1:* bob@example.org").await.last().unwrap().starts_with("d3 "));
    let store = &world.hosts["mx1.example.org"].store;
    assert_eq!(store.list("bob@example.org"), vec!["INBOX".to_string()]);
    assert_eq!(store.inbox("bob@example.org").len(), 1);
    assert!(store.inbox("bob@example.org")[0].flags.is_empty(), "nobody touched Bob's message");
    // Bob's password does not open Carol's mailbox, nor the other way round.
    let mut raw = Raw::connect(addr).await;
    assert!(raw.command("e1", "LOGIN carol@example.org builder").await[0].starts_with("e1 NO [AUTHENTICATIONFAILED]"));
    assert!(raw.command("e2", "LOGIN alice@school.test wonderland").await[0].starts_with("e2 NO"), "Alice's mailbox is not on mx1");
    world.shutdown().await;
}

/// Replays the transcripts that need no setup over a real connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts_hold_over_a_socket() {
    // The transcripts assume a 1000-byte limit for literals.
    let world = start(scenario("[]", ", \"max_message_size\": 1000")).await;
    let addr = imap_addr(&world);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts/imap");
    let mut replayed = 0;
    for name in ["02_wrong_state_and_errors.txt", "06_authenticate_plain.txt", "07_literals.txt"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("transcript");
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (r, mut w) = stream.into_split();
        let mut reader = tokio::io::BufReader::new(r);
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (prefix, rest) = line.split_once(':').unwrap();
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match prefix {
                "C" => w.write_all(format!("{rest}\r\n").as_bytes()).await.unwrap(),
                "L" => w.write_all(format!("{rest}\r\n").as_bytes()).await.unwrap(),
                "B" => w.write_all(rest.as_bytes()).await.unwrap(),
                "S" => {
                    let mut got = Vec::new();
                    tokio::time::timeout(std::time::Duration::from_secs(30), reader.read_until(b'\n', &mut got)).await.expect("an answer").unwrap();
                    let got = String::from_utf8_lossy(&got).trim_end_matches(['\r', '\n']).to_string();
                    assert!(got.starts_with(rest), "{name} line {}: expected {rest:?}, got {got:?}", n + 1);
                }
                other => panic!("{name}: unexpected {other}"),
            }
        }
        replayed += 1;
    }
    assert_eq!(replayed, 3);
    // Passwords sent in LOGIN literals and AUTHENTICATE lines are hidden.
    for event in world.trace.since(0) {
        let json = serde_json::to_string(event.as_ref()).unwrap();
        assert!(!json.contains("builder") && !json.contains("AGJvYkBleGFtcGxlLm9yZwBidWlsZGVy"), "a secret in the trace: {json}");
    }
    world.shutdown().await;
}
