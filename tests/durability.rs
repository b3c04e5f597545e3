//! "Nothing accepted is ever lost" with `--data`: a 250 (or an IMAP OK)
//! is given only once the message is durably in the Maildir; a change that
//! cannot be saved gets a temporary error and is not made; one broken
//! folder never stops the others; and a process killed in the middle of a
//! burst comes back with every acknowledged message, byte for byte.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use mailflow::conductor::Pace;
use mailflow::store::{Flag, INBOX};
use mailflow::world::{World, WorldOptions};

use crate::common::{GENEROUS, Net, TempDir, mailflow, scenario};
use crate::imap_common::Raw;
use crate::smtp_common::{RawSmtp, deliver_raw};

const MX: &str = "mx.example.org";
const BOB: &str = "bob@example.org";

/// One mail host; sender checks off (this is about the disk, and their DNS
/// questions would only slow the burst down).
const SCENARIO: &str = r#"{
  "title": "Durable mailboxes",
  "settings": { "tls": { "plaintext_login": true } },
  "domains": { "example.org": { "records": [ { "type": "MX", "preference": 10, "exchange": "mx.example.org" } ] } },
  "hosts": { "mx.example.org": { "services": ["smtp", "imap"], "domains": ["example.org"], "auth_checks": false } },
  "users": { "bob@example.org": { "password": "builder" } }
}"#;

/// bob's Maildir under a `--data` folder.
fn maildir(data: &Path) -> std::path::PathBuf {
    data.join(MX).join(BOB).join("Maildir")
}

async fn start_with_data(data: &Path) -> (Arc<World>, Net) {
    let mut last = String::new();
    for _ in 0..5 {
        let net = Net::random();
        let options = WorldOptions { subnet: net.subnet(), pace: Pace::Fast, data_dir: Some(data.to_path_buf()), ..WorldOptions::default() };
        match World::start(scenario(SCENARIO), options).await {
            Ok(world) => return (world, net),
            Err(err) => last = err.to_string(),
        }
    }
    panic!("no world could start: {last}");
}

fn port(world: &World, service: mailflow::scenario::Service) -> SocketAddr {
    SocketAddr::new(world.node(MX).expect("the host").address.into(), world.port(service))
}

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: alice@school.test\r\nTo: {BOB}\r\nMessage-ID: <m{n}@school.test>\r\nSubject: number {n}\r\n\r\nBody of message {n}: {}\r\n",
        "x".repeat(n % 97)
    )
    .into_bytes()
}

/// Replaces a folder's `cur/` directory by a plain file: every write into
/// it fails from now on (root ignores permissions, so chmod would not do).
fn break_folder(folder: &Path) {
    std::fs::remove_dir_all(folder.join("cur")).expect("remove cur/");
    std::fs::write(folder.join("cur"), b"not a directory").expect("put a file in its place");
}

fn mend_folder(folder: &Path) {
    std::fs::remove_file(folder.join("cur")).expect("remove the file");
    std::fs::create_dir(folder.join("cur")).expect("cur/ again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_cannot_be_saved_is_refused_and_other_folders_keep_working() {
    let data = TempDir::new("durability-folders");
    let (world, _net) = start_with_data(data.path()).await;
    let (smtp, imap) = (port(&world, mailflow::scenario::Service::Smtp), port(&world, mailflow::scenario::Service::Imap));
    let store = &world.hosts[MX].store;

    let mut client = Raw::connect(imap).await;
    client.command("a1", "LOGIN bob@example.org builder").await;
    let created = client.command("a2", "CREATE Work").await;
    assert!(created.last().is_some_and(|l| l.starts_with("a2 OK")), "{created:?}");
    // 90 dots are stored as 90 × "%2E": past the 255-byte name limit.
    let long = client.command("a3", &format!("CREATE {}", ".".repeat(90))).await;
    assert!(long.last().is_some_and(|l| l.starts_with("a3 NO [LIMIT]")), "{long:?}");

    // A broken folder does not stop delivery into INBOX, and what got 250 is on disk.
    break_folder(&maildir(data.path()).join(".Work"));
    assert_eq!(deliver_raw(smtp, "alice@school.test", &[BOB], &message(1)).await.code, 250);
    let on_disk = std::fs::read_dir(maildir(data.path()).join("cur")).expect("INBOX cur/").count();
    assert_eq!(on_disk, 1, "the acknowledged message is a file in INBOX");

    // Copying into the broken folder fails with SERVERBUG and changes nothing.
    client.command("a4", "SELECT INBOX").await;
    let copy = client.command("a5", "COPY 1 Work").await;
    assert!(copy.last().is_some_and(|l| l.starts_with("a5 NO [SERVERBUG]")), "{copy:?}");
    assert_eq!(store.snapshot(BOB, "Work").expect("Work").messages.len(), 0);

    // INBOX itself broken: 451, and the message is not there (the sender keeps it).
    break_folder(&maildir(data.path()));
    let refused = deliver_raw(smtp, "alice@school.test", &[BOB], &message(2)).await;
    assert_eq!((refused.code, refused.text().starts_with("451 4.3.0")), (451, true), "{:?}", refused.lines);
    assert_eq!(store.snapshot(BOB, INBOX).expect("INBOX").messages.len(), 1, "nothing half-accepted");
    let store_flag = client.command("a6", "STORE 1 +FLAGS (\\Flagged)").await;
    assert!(store_flag.last().is_some_and(|l| l.starts_with("a6 NO [SERVERBUG]")), "{store_flag:?}");

    // Mended, the same message goes through.
    mend_folder(&maildir(data.path()));
    assert_eq!(deliver_raw(smtp, "alice@school.test", &[BOB], &message(2)).await.code, 250);
    assert_eq!(store.snapshot(BOB, INBOX).expect("INBOX").messages.len(), 2);
    world.shutdown().await;
}

/// Starts `mailflow serve` on `data`; returns it once its banner is out.
fn serve(data: &Path, net: Net, file: &Path) -> Option<std::process::Child> {
    let mut child = mailflow()
        .args(["serve", file.to_str().expect("utf-8 path"), "--fast", "--quiet", "--no-web", "--subnet", &net.to_string(), "--data"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mailflow serve");
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    // Read stdout for the child's whole life, not just up to the line we
    // wait for: the banner's last line is a separate write, and a closed
    // pipe would make that `println!` panic and take the server down
    // mid-test (it did, on a busy machine, after the senders had started).
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        match lines.recv_timeout(GENEROUS) {
            Ok(line) if line == "Ask the fake DNS yourself:" => return Some(child),
            Ok(_) => continue,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Waits until `count` messages got their 250. Every wait is bounded: a
/// sender that stops early (its connection refused, a reply it did not
/// expect) fails the test with the reason instead of hanging it.
async fn wait_for_count(acknowledged: &Mutex<Vec<Vec<u8>>>, count: usize, senders: &[tokio::task::JoinHandle<()>], stopped: &Mutex<Vec<String>>) {
    let deadline = tokio::time::Instant::now() + GENEROUS;
    while acknowledged.lock().unwrap().len() < count {
        let got = acknowledged.lock().unwrap().len();
        assert!(!senders.iter().all(|s| s.is_finished()), "every sender stopped after {got} acknowledged messages: {:?}", stopped.lock().unwrap());
        assert!(tokio::time::Instant::now() < deadline, "only {got} of {count} messages acknowledged within {GENEROUS:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_in_a_burst_it_comes_back_with_every_acknowledged_message() {
    let dir = TempDir::new("durability-crash");
    let file = dir.write("world.json", SCENARIO);
    let data = dir.join("data");
    let (mut child, net) = (0..5)
        .find_map(|_| {
            let net = Net::random();
            serve(&data, net, &file).map(|child| (child, net))
        })
        .expect("mailflow serve starts");
    let smtp: SocketAddr = (net.addr(2), 10025).into();
    let imap: SocketAddr = (net.addr(2), 10143).into();

    // Four senders deliver as fast as they can; each remembers what got 250.
    // A 4xx is tried again, as a sending server would; anything else ends
    // the sender, and why is kept for the failure message.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stopped = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for sender in 0..4 {
        let (acknowledged, stopped) = (acknowledged.clone(), stopped.clone());
        senders.push(tokio::spawn(async move {
            let mut n = sender;
            loop {
                let text = message(n);
                let sent = text.clone();
                let attempt = async move {
                    let mut smtp_conn = RawSmtp::connect(smtp).await;
                    smtp_conn.expect("EHLO outside.test", "250").await;
                    smtp_conn.expect("MAIL FROM:<alice@school.test>", "250").await;
                    smtp_conn.expect(&format!("RCPT TO:<{BOB}>"), "250").await;
                    smtp_conn.expect("DATA", "354").await;
                    smtp_conn.write(&text).await;
                    smtp_conn.write(b".\r\n").await;
                    smtp_conn.try_reply().await
                };
                // A killed server makes the helpers above panic: that ends this sender.
                let why = match tokio::spawn(attempt).await {
                    Ok(Some(reply)) if reply.code == 250 => {
                        acknowledged.lock().unwrap().push(sent);
                        n += 4;
                        continue;
                    }
                    Ok(Some(reply)) if reply.code / 100 == 4 => continue,
                    Ok(Some(reply)) => format!("refused: {:?}", reply.lines),
                    Ok(None) => "the connection closed before the reply".to_string(),
                    Err(err) => format!("{err}"),
                };
                stopped.lock().unwrap().push(why);
                return;
            }
        }));
    }
    // Meanwhile a device flags the first ten messages; remember if it got OK.
    wait_for_count(&acknowledged, 40, &senders, &stopped).await;
    let mut device = Raw::connect(imap).await;
    device.command("a1", "LOGIN bob@example.org builder").await;
    device.command("a2", "SELECT INBOX").await;
    let flagged = device.command("a3", "UID STORE 1:10 +FLAGS.SILENT (\\Flagged)").await;
    let flags_acknowledged = flagged.last().is_some_and(|l| l.starts_with("a3 OK"));
    wait_for_count(&acknowledged, 120, &senders, &stopped).await;
    child.kill().expect("SIGKILL"); // no clean shutdown: the middle of a burst
    let _ = child.wait();
    for sender in senders {
        let _ = sender.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    // Back up on the same --data: every acknowledged message, byte for byte.
    let (world, _) = start_with_data(&data).await;
    let inbox = world.hosts[MX].store.snapshot(BOB, INBOX).expect("INBOX").messages;
    for sent in &acknowledged {
        let found = inbox.iter().filter(|m| m.raw.ends_with(sent)).count();
        assert_eq!(found, 1, "a message that got 250 is there exactly once: {}", String::from_utf8_lossy(&sent[..80]));
    }
    assert!(flags_acknowledged, "the flag change was acknowledged: {flagged:?}");
    for uid in 1..=10 {
        let message = inbox.iter().find(|m| m.uid == uid).expect("the flagged messages are there");
        assert!(message.flags.contains(&Flag::Flagged), "UID {uid} keeps its flag");
    }
    world.shutdown().await;
}
