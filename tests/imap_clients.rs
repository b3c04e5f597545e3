//! Real IMAP clients against a served world, after a real SMTP delivery:
//! Python's imaplib (what scripts use) and curl (what the banner shows).
//! A missing python3 or curl fails these tests with a clear message.

use crate::imap_common;

use imap_common::*;
use mailflow::store::Flag;
use mailflow::trace::{Direction, Kind, Protocol};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_select_search_fetch_store_copy_append_expunge() {
    let world = world_with_mail().await;
    let addr = imap_addr(&world);
    let script = r#"
import imaplib, sys
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
assert b'IDLE' in M.capabilities or 'IDLE' in M.capabilities, M.capabilities
try:
    M.login('bob@example.org', 'wrong')
    raise SystemExit('a wrong password was accepted')
except imaplib.IMAP4.error as e:
    assert 'AUTHENTICATIONFAILED' in str(e), e
typ, _ = M.login('bob@example.org', 'builder'); assert typ == 'OK'
typ, data = M.select('INBOX'); assert (typ, data) == ('OK', [b'1']), (typ, data)
typ, data = M.search(None, 'UNSEEN'); assert data == [b'1'], data
typ, data = M.search(None, 'FROM', 'alice', 'SUBJECT', 'Lunch'); assert data == [b'1'], data
typ, data = M.search(None, 'OR', 'SEEN', 'NOT', 'FROM', 'alice'); assert data == [b''], data
typ, data = M.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])'); assert b'Subject: Lunch?' in data[0][1], data
typ, data = M.fetch('1', '(FLAGS)'); assert b'\\Seen' not in data[0], data
typ, data = M.fetch('1', '(RFC822)'); body = data[0][1]
assert b'Received: from' in body and b'lunch at noon' in body, body
typ, data = M.fetch('1', '(FLAGS)'); assert b'\\Seen' in data[0], data
typ, data = M.fetch('1', '(ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)'); assert b'"Lunch?"' in data[0] and b'"TEXT" "PLAIN"' in data[0], data
typ, data = M.uid('SEARCH', None, 'ALL'); assert data == [b'1'], data
typ, data = M.uid('FETCH', '1', '(BODY[TEXT]<0.6>)'); assert data[0][1] == b'Hi Bob', data
typ, data = M.store('1', '+FLAGS', '(\\Flagged)'); assert typ == 'OK' and b'\\Flagged' in data[0], data
typ, data = M.search(None, 'FLAGGED'); assert data == [b'1'], data
typ, data = M.create('Archive'); assert typ == 'OK', data
typ, data = M.copy('1', 'Archive'); assert typ == 'OK', data
typ, data = M.append('INBOX', '(\\Seen)', None, b'Subject: appended\r\n\r\nhello again\r\n'); assert typ == 'OK', data
typ, data = M.noop(); assert M.untagged_responses.get('EXISTS', [b'2'])[-1] == b'2'
typ, data = M.store('1', '+FLAGS', '(\\Deleted)'); assert typ == 'OK'
typ, data = M.expunge(); assert data == [b'1'], data
typ, data = M.uid('SEARCH', None, 'ALL'); assert data == [b'2'], data
typ, data = M.status('Archive', '(MESSAGES UNSEEN)'); assert b'MESSAGES 1' in data[0] and b'UNSEEN 0' in data[0], data
typ, data = M.list(); names = b' '.join(data); assert b'"INBOX"' in names and b'"Archive"' in names, data
typ, data = M.select('Archive', readonly=True); assert data == [b'1'], data
typ, data = M.fetch('1', '(FLAGS)'); assert b'\\Flagged' in data[0] and b'\\Seen' in data[0], data
M.close()
M.logout()
print('ALL OK')
"#;
    let out = python(script, addr).await;
    assert!(out.contains("ALL OK"), "{out}");
    // The server's store agrees with what the client saw.
    let store = &world.hosts["mx1.example.org"].store;
    let inbox = store.inbox("bob@example.org");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].uid, 2);
    assert!(inbox[0].flags.contains(&Flag::Seen));
    let archive = store.snapshot("bob@example.org", "Archive").unwrap();
    assert!(archive.messages[0].flags.contains(&Flag::Flagged));
    // Every line was traced once, by the server, with a summary.
    let events = world.trace.since(0);
    let imap: Vec<_> = events.iter().filter(|e| e.protocol == Protocol::Imap).collect();
    assert!(
        imap.iter().any(|e| matches!(&e.kind, Kind::Line { direction: Direction::ToServer, line } if line.contains("LOGIN bob@example.org ********"))),
        "passwords are masked"
    );
    assert!(!imap.iter().any(|e| matches!(&e.kind, Kind::Line { line, .. } if line.contains("builder"))), "the password never reaches the trace");
    assert!(imap.iter().any(|e| matches!(&e.kind, Kind::Data { direction: Direction::ToClient, .. }) && e.summary.contains("the whole message")));
    assert!(imap.iter().all(|e| !e.summary.is_empty()));
    assert!(imap.iter().any(|e| e.explain.as_deref().is_some_and(|x| x.contains("UIDVALIDITY"))), "the UID lesson is explained");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_see_each_others_changes_by_noop_and_idle() {
    let world = world_with_mail().await;
    let addr = imap_addr(&world);
    let script = r#"
import imaplib, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
A = imaplib.IMAP4(host, port); A.login('bob@example.org', 'builder'); A.select('INBOX')
B = imaplib.IMAP4(host, port); B.login('bob@example.org', 'builder'); B.select('INBOX')
uids_a = A.uid('SEARCH', None, 'ALL')[1]
# A flags the message; B hears it at its next command (NOOP).
A.store('1', '+FLAGS', '(\\Flagged)')
typ, _ = B.noop()
fetches = B.untagged_responses.pop('FETCH', [])
assert any(b'\\Flagged' in f for f in fetches), fetches
# New mail from A reaches B as EXISTS.
A.append('INBOX', None, None, b'Subject: second\r\n\r\nx\r\n')
B.noop()
assert B.untagged_responses.pop('EXISTS', [])[-1] == b'2'
# IDLE on a raw socket: the server pushes A's changes at once.
s = socket.create_connection((host, port)); f = s.makefile('rb')
def line():
    return f.readline().rstrip(b'\r\n')
assert line().startswith(b'* OK')
s.sendall(b'c1 LOGIN bob@example.org builder\r\n')
while not line().startswith(b'c1 OK'): pass
s.sendall(b'c2 SELECT INBOX\r\n')
while not line().startswith(b'c2 OK'): pass
s.sendall(b'c3 IDLE\r\n')
assert line() == b'+ idling'
A.store('2', '+FLAGS', '(\\Seen)')
pushed = line(); assert pushed == b'* 2 FETCH (UID 2 FLAGS (\\Seen))', pushed
A.append('INBOX', None, None, b'Subject: third\r\n\r\ny\r\n')
pushed = line(); assert pushed == b'* 3 EXISTS', pushed
A.store('1', '+FLAGS', '(\\Deleted)'); A.expunge()
while True:
    # The \\Deleted flag may be pushed before the expunge, or not at all
    # if both changes came before the server looked.
    pushed = line()
    if pushed == b'* 1 EXPUNGE': break
    assert pushed.startswith(b'* 1 FETCH (UID 1 FLAGS'), pushed
s.sendall(b'DONE\r\n')
assert line() == b'c3 OK IDLE terminated'
s.sendall(b'c4 LOGOUT\r\n'); s.close()
# UIDs are the same in every session, and survive the expunge.
C = imaplib.IMAP4(host, port); C.login('bob@example.org', 'builder'); C.select('INBOX')
assert uids_a == [b'1'], uids_a
assert C.uid('SEARCH', None, 'ALL')[1] == [b'2 3'], C.uid('SEARCH', None, 'ALL')
assert A.uid('SEARCH', None, 'ALL')[1] == [b'2 3']
typ, data = C.fetch('1', '(UID)'); assert b'UID 2' in data[0], data
for M in (A, B, C): M.logout()
print('ALL OK')
"#;
    let out = python(script, addr).await;
    assert!(out.contains("ALL OK"), "{out}");
    let events = world.trace.since(0);
    let pushed = events
        .iter()
        .find(|e| matches!(&e.kind, Kind::Line { direction: Direction::ToClient, line } if line == "* 2 FETCH (UID 2 FLAGS (\\Seen))"))
        .expect("the IDLE push is traced");
    assert!(pushed.summary.contains("without being asked"), "{}", pushed.summary);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_lists_and_fetches_like_the_banner_says() {
    let world = world_with_mail().await;
    let addr = imap_addr(&world);
    let banner = world.banner();
    // The banner's command upgrades with STARTTLS and checks the certificate (`tls_lessons.rs` runs it).
    let printed = format!("curl \"imap://{}:{}/INBOX;UID=1\" --ssl-reqd --cacert ca.pem -u 'bob@example.org:builder'", addr.ip(), addr.port());
    assert!(banner.contains(&printed), "{banner}");
    let base = format!("imap://{}:{}", addr.ip(), addr.port());
    let (code, list) = curl(&[&format!("{base}/"), "-u", "bob@example.org:builder"]).await;
    assert_eq!(code, 0, "curl list failed: {list}");
    assert!(list.contains("\"INBOX\""), "{list}");
    let (code, message) = curl(&[&format!("{base}/INBOX;UID=1"), "-u", "bob@example.org:builder"]).await;
    assert_eq!(code, 0, "curl fetch failed: {message}");
    assert!(message.contains("Subject: Lunch?") && message.contains("lunch at noon"), "{message}");
    let (code, search) = curl(&[&format!("{base}/INBOX"), "-u", "bob@example.org:builder", "-X", "SEARCH SEEN"]).await;
    assert_eq!(code, 0);
    assert!(search.contains("SEARCH 1"), "curl's fetch marked the message read: {search}");
    // curl exits with 67 when the login is refused.
    let (code, _) = curl(&[&format!("{base}/"), "-u", "bob@example.org:nope"]).await;
    assert_eq!(code, 67, "a wrong password must be refused");
    world.shutdown().await;
}
