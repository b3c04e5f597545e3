//! Junk sent to the fake DNS: the server must shrug it off, answer it with
//! FORMERR or not at all, and keep answering proper questions.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use mailflow::dns::QueryOutcome;
use mailflow::world::World;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::common::{DNS_PORT, Net, XorShift, dig_at, short_lines, start_world};

const SCENARIO: &str = r#"{
  "title": "Junk",
  "domains": { "example.org": { "records": [ { "type": "MX", "preference": 10, "exchange": "mx1.example.org" } ] } },
  "hosts": { "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] } }
}"#;

/// How long to wait for a reply to junk. Silence is a fine answer, so this
/// only bounds the wait; it asserts nothing about speed.
const REPLY_WAIT: Duration = Duration::from_millis(500);

/// RFC 1035 §4.1.1: the response code is the low 4 bits of byte 3.
const FORMERR: u8 = 1;

/// A 12-byte header: id, flags (a standard query, RD set), counts.
fn header(id: u16, questions: u16) -> Vec<u8> {
    let mut h = Vec::new();
    for word in [id, 0x0100, questions, 0, 0, 0] {
        h.extend_from_slice(&word.to_be_bytes());
    }
    h
}

fn dns_addr(net: &Net) -> SocketAddr {
    SocketAddr::new(net.dns().into(), DNS_PORT)
}

/// Any reply to junk must be FORMERR ("your message is malformed").
fn check_reply(what: &str, reply: &[u8]) {
    assert!(reply.len() >= 12, "{what}: a reply shorter than a DNS header: {reply:02x?}");
    assert!(reply[2] & 0x80 != 0, "{what}: the reply is not marked as a response: {reply:02x?}");
    assert_eq!(reply[3] & 0x0F, FORMERR, "{what}: the reply's rcode is not FORMERR: {reply:02x?}");
}

/// The world still answers: through a node's resolver (UDP) and through dig over TCP.
async fn still_answers(world: &World, net: &Net) {
    let lookup = world.lookup_for("mx1.example.org").expect("a node");
    let outcome = lookup.query("example.org", RecordType::MX, None).await;
    assert!(matches!(&outcome, QueryOutcome::Records(r) if r.len() == 1), "after the junk: {outcome:?}");
    assert_eq!(short_lines(&dig_at(net, &["+short", "+tcp", "MX", "example.org"]).await), vec!["10 mx1.example.org."]);
}

// Broken datagrams get FORMERR or silence, never a crash, a hang or a made-up answer.
#[tokio::test(flavor = "multi_thread")]
async fn udp_junk_is_ignored_or_formerr() {
    let (world, net) = start_world(SCENARIO).await;
    let mut rng = XorShift::seeded(0x5EED_0001);
    let mut truncated_name = header(0x1235, 1);
    truncated_name.extend_from_slice(b"\x07exa");
    let mut pointer_loop = header(0x1236, 1);
    pointer_loop.extend_from_slice(&[0xC0, 12, 0, 15, 0, 1]); // a name that points at itself
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("3 bytes", vec![1, 2, 3]),
        ("11 bytes, less than a header", header(0x1234, 0)[..11].to_vec()),
        ("a header promising 1 question, then nothing", header(0x1234, 1)),
        ("a question cut inside its name", truncated_name),
        ("a compression pointer loop", pointer_loop),
        ("a header with no question", header(0x1237, 0)),
        ("100 random bytes", rng.bytes(100)),
        ("a 4 KB junk datagram", rng.bytes(4096)),
    ];
    let socket = UdpSocket::bind((net.addr(201), 0)).await.expect("bind a client socket");
    let mut replies = 0;
    for (what, junk) in &cases {
        socket.send_to(junk, dns_addr(&net)).await.expect("send");
        let mut buffer = vec![0u8; 65_535];
        if let Ok(received) = tokio::time::timeout(REPLY_WAIT, socket.recv_from(&mut buffer)).await {
            let (len, _) = received.expect("receive");
            check_reply(what, &buffer[..len]);
            replies += 1;
        }
    }
    // Headers that parse get a FORMERR; they are most of the cases above.
    assert!(replies >= 1, "no junk was answered at all: is the server listening?");
    still_answers(&world, &net).await;
    world.shutdown().await;
}

/// Sends `bytes` on a fresh TCP connection, closes the sending half, and
/// returns whatever comes back before the server closes (or the wait ends).
async fn tcp_exchange(net: &Net, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(dns_addr(net)).await.expect("connect over TCP");
    stream.write_all(bytes).await.expect("send");
    let _ = stream.shutdown().await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(REPLY_WAIT, stream.read_to_end(&mut reply)).await;
    reply
}

// Over TCP, a message is a 2-byte length and the bytes; lies about the length must not wedge the server.
#[tokio::test(flavor = "multi_thread")]
async fn tcp_junk_is_ignored_or_formerr() {
    let (world, net) = start_world(SCENARIO).await;
    let mut rng = XorShift::seeded(0x5EED_0002);
    let junk = rng.bytes(40);
    let mut framed_junk = (junk.len() as u16).to_be_bytes().to_vec();
    framed_junk.extend_from_slice(&junk);
    let mut short_header = 12u16.to_be_bytes().to_vec();
    short_header.extend_from_slice(&header(0x2222, 1)); // one question promised, none sent
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a length of 256 with 10 bytes, then close", [&[1u8, 0][..], &[0xAB; 10]].concat()),
        ("half a length prefix", vec![0]),
        ("a zero length", vec![0, 0]),
        ("40 framed junk bytes", framed_junk),
        ("a framed header promising a question", short_header),
    ];
    for (what, bytes) in &cases {
        let reply = tcp_exchange(&net, bytes).await;
        if reply.len() >= 2 {
            let len = u16::from_be_bytes([reply[0], reply[1]]) as usize;
            assert_eq!(reply.len() - 2, len, "{what}: the reply's length prefix is wrong: {reply:02x?}");
            check_reply(what, &reply[2..]);
        } else {
            assert!(reply.is_empty(), "{what}: half a reply: {reply:02x?}");
        }
    }
    // A connection that stays open half-sent does not stop others from being served.
    let mut stuck = TcpStream::connect(dns_addr(&net)).await.expect("connect over TCP");
    stuck.write_all(&[0x10, 0x00, 0xFF]).await.expect("send");
    still_answers(&world, &net).await;
    drop(stuck);
    world.shutdown().await;
}
