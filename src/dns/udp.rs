//! The fake DNS's UDP side: one thread that reads questions in batches
//! and sends the answers in batches.
//!
//! A DNS question over UDP is one datagram and its answer another (RFC
//! 1035 §4.2.1). Reading and sending them one system call each costs more
//! than answering them: on loopback, a `sendto` also delivers the datagram
//! to the receiver and wakes it. So, like NSD, this loop uses Linux's
//! `recvmmsg` (take up to [`BATCH`] waiting datagrams at once) and
//! `sendmmsg` (send all their answers at once). tokio offers neither, so
//! the socket lives on a thread of its own, blocking in `recvmmsg` until
//! at least one question is there. Under load a batch fills up; one lone
//! `dig` is answered at once, alone.
//!
//! What is answered is decided elsewhere: a plain question asked before
//! comes from the wire-format cache (`cache.rs`); anything else goes the
//! full way through hickory and our handler (`server.rs`), and a plain
//! question's answer is then cached. Every question from outside the
//! world is still traced, a question event and an answer event each; the
//! events of one batch are recorded together.
//!
//! TCP (and the world's own resolvers' TCP fallback) stays with
//! hickory-server.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::cache::{AnswerCache, PlainQuestion};
use super::server::DnsHandler;
use crate::trace::Draft;

/// Datagrams taken and answered per system call, at most.
pub const BATCH: usize = 32;

/// The largest question read; a longer datagram is dropped (questions are
/// a few dozen bytes; hickory's server reads at most 4,096 too).
const MAX_QUESTION: usize = 4096;

/// How often the thread looks up from an idle socket to see whether it
/// must stop (a stop also wakes it at once with an empty datagram).
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// The running UDP loop; stops when dropped or stopped.
pub struct UdpLoop {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl UdpLoop {
    /// Answers every datagram that reaches `socket` with `handler`.
    pub fn start(socket: UdpSocket, handler: DnsHandler) -> io::Result<UdpLoop> {
        socket.set_read_timeout(Some(IDLE_CHECK))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("dns-udp".into()).spawn(move || serve(&socket, handler, &stopped))?;
        Ok(UdpLoop { stop, addr, thread: Some(thread) })
    }

    /// Stops the loop and waits until its socket is closed, so the address
    /// can be bound again at once.
    pub async fn stop(mut self) {
        self.signal();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    fn signal(&self) {
        self.stop.store(true, Ordering::Release);
        // Wake the thread from `recvmmsg` instead of waiting for IDLE_CHECK.
        let any = SocketAddr::new(self.addr.ip(), 0);
        if let Ok(waker) = UdpSocket::bind(any) {
            let _ = waker.send_to(&[], self.addr);
        }
    }
}

impl Drop for UdpLoop {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.signal();
        }
    }
}

/// Decides the answer to each datagram and collects the batch's events.
struct Answerer {
    handler: DnsHandler,
    cache: AnswerCache,
    drafts: Vec<Draft>,
}

impl Answerer {
    /// Writes the answer to `packet` into `out`; false if it gets none.
    fn answer(&mut self, packet: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> bool {
        self.cache.refresh(&self.handler.zones);
        let plain = PlainQuestion::parse(packet);
        if let Some(question) = &plain
            && let Some(hit) = self.cache.get(question.key)
        {
            hit.reply_into(packet, out);
            if !self.handler.nodes.contains_key(&src.ip()) {
                let ip = src.ip();
                let (who, summary) = match &hit.asked_by {
                    Some((last, who, summary)) if *last == ip => (who, summary),
                    _ => {
                        let who = ip.to_string();
                        let summary = hit.exchange.question_summary(&who);
                        let (_, who, summary) = hit.asked_by.insert((ip, who, summary));
                        (&*who, &*summary)
                    }
                };
                let session = self.handler.trace.next_session();
                self.drafts.extend(hit.exchange.drafts(who, summary.clone(), "UDP", session));
            }
            return true;
        }
        // The full path traces as it answers: record this batch's earlier
        // events first, so the trace keeps the order of the questions.
        self.flush();
        let Some(reply) = self.handler.answer_datagram(packet, src) else {
            return false;
        };
        if let Some(question) = plain
            && let Some(exchange) = self.handler.exchange_of(question.key)
        {
            self.cache.insert(question.key, &reply, exchange);
        }
        *out = reply;
        true
    }

    /// Records the events collected so far.
    fn flush(&mut self) {
        if !self.drafts.is_empty() {
            self.handler.trace.emit_all(self.drafts.drain(..));
        }
    }
}

/// The loop: read a batch, answer each, send the answers, until stopped.
fn serve(socket: &UdpSocket, handler: DnsHandler, stop: &AtomicBool) {
    let fd = socket.as_raw_fd();
    let mut answerer = Answerer { handler, cache: AnswerCache::default(), drafts: Vec::new() };
    answerer.cache.refresh(&answerer.handler.zones);
    let mut buffers = vec![[0u8; MAX_QUESTION]; BATCH];
    // SAFETY (all `zeroed` below): these are plain C structs for which all
    // zero bytes is a valid value.
    let mut names: Vec<libc::sockaddr_storage> = (0..BATCH).map(|_| unsafe { zeroed() }).collect();
    let mut iovecs: Vec<libc::iovec> = (0..BATCH).map(|_| unsafe { zeroed() }).collect();
    let mut headers: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { zeroed() }).collect();
    let mut replies: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(512)).collect();
    let mut reply_names: Vec<(libc::sockaddr_storage, libc::socklen_t)> = (0..BATCH).map(|_| (unsafe { zeroed() }, 0)).collect();
    while !stop.load(Ordering::Acquire) {
        for i in 0..BATCH {
            iovecs[i] = libc::iovec { iov_base: buffers[i].as_mut_ptr().cast(), iov_len: MAX_QUESTION };
            let header = &mut headers[i];
            header.msg_hdr.msg_name = (&raw mut names[i]).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = &raw mut iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = std::ptr::null_mut();
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        // SAFETY: every header points at its own live buffer, address and
        // iovec, sized as declared; the kernel writes only within them.
        let received = unsafe { libc::recvmmsg(fd, headers.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_WAITFORONE, std::ptr::null_mut()) };
        if received < 0 {
            let error = io::Error::last_os_error();
            if !matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) {
                tracing::warn!(%error, "the DNS server could not read from its UDP socket");
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        let mut answered = 0;
        for i in 0..received as usize {
            let header = &headers[i].msg_hdr;
            if header.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            // No answer to port 0 (hickory's server refuses it too).
            let Some(src) = socket_addr(&names[i]).filter(|src| src.port() != 0) else { continue };
            let len = headers[i].msg_len as usize;
            if answerer.answer(&buffers[i][..len], src, &mut replies[answered]) {
                reply_names[answered] = (names[i], header.msg_namelen);
                answered += 1;
            }
        }
        answerer.flush();
        send_all(fd, &mut replies[..answered], &mut reply_names[..answered]);
    }
}

/// Sends each reply to its address with as few `sendmmsg` calls as the
/// kernel allows. A reply the kernel refuses is dropped, as a lost
/// datagram would be: the client asks again.
fn send_all(fd: libc::c_int, replies: &mut [Vec<u8>], names: &mut [(libc::sockaddr_storage, libc::socklen_t)]) {
    let count = replies.len();
    // SAFETY: plain C structs, all zero is valid.
    let mut iovecs: Vec<libc::iovec> = (0..count).map(|_| unsafe { zeroed() }).collect();
    let mut headers: Vec<libc::mmsghdr> = (0..count).map(|_| unsafe { zeroed() }).collect();
    for i in 0..count {
        iovecs[i] = libc::iovec { iov_base: replies[i].as_mut_ptr().cast(), iov_len: replies[i].len() };
        headers[i].msg_hdr.msg_name = (&raw mut names[i].0).cast();
        headers[i].msg_hdr.msg_namelen = names[i].1;
        headers[i].msg_hdr.msg_iov = &raw mut iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    let mut sent = 0;
    while sent < count {
        // SAFETY: headers[sent..] point at live replies, addresses and
        // iovecs; the kernel only reads them.
        let done = unsafe { libc::sendmmsg(fd, headers[sent..].as_mut_ptr(), (count - sent) as libc::c_uint, 0) };
        if done > 0 {
            sent += done as usize;
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            sent += 1;
        }
    }
}

/// The sender's address of a received datagram.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET), and
            // sockaddr_storage is large and aligned enough for it.
            let v4 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)), u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a sockaddr_in6 (family AF_INET6).
            let v6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(v6.sin6_port), v6.sin6_flowinfo, v6.sin6_scope_id)))
        }
        _ => None,
    }
}
