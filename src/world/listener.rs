//! A service's listening socket that follows its host's power switch:
//! while the host is down the socket is closed, so clients get
//! "connection refused" exactly as from a crashed server; when it comes
//! back up the socket is opened again.
//!
//! Also here: [`world_tls`], which gives each host the TLS its scenario
//! asks for (policy, login rule, certificate) before its listeners start,
//! and notes the domains that want their mail sent encrypted.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

use super::{Node, Role};
use crate::scenario::{Scenario, TlsSettings};
use crate::tls::{HostPolicy, TlsError, WorldTls};

/// The world's CA (kept in `data_dir/tls` if given) and a certificate for
/// every host whose TLS policy is not `off`, with the scenario's
/// world-wide defaults applied to each host. With `--share ADDR` every
/// host's certificate names ADDR too, since that is the server a student's
/// mail program connects to (see `share`).
pub fn world_tls(scenario: &Scenario, nodes: &[Node], data_dir: Option<&std::path::Path>, shared: Option<std::net::IpAddr>) -> Result<WorldTls, TlsError> {
    let hosts: Vec<_> = nodes
        .iter()
        .filter(|n| matches!(n.role, Role::Host { .. }))
        .filter_map(|n| {
            let config = scenario.hosts.get(&n.name)?;
            let (policy, plaintext_login) = TlsSettings::effective(config.tls.as_ref(), &scenario.settings.tls);
            let fault = config.tls.as_ref().and_then(|t| t.certificate);
            let addresses = std::iter::once(std::net::IpAddr::V4(n.address)).chain(shared).collect();
            Some((n.name.clone(), addresses, HostPolicy { policy, plaintext_login }, fault))
        })
        .collect();
    let require_tls = scenario.domains.iter().filter(|(_, zone)| zone.require_tls).map(|(domain, _)| domain.as_str());
    Ok(WorldTls::build(data_dir, &hosts)?.requiring_tls_for(require_tls))
}

/// Serves `addr` until `stop` turns true, calling `serve` for each
/// connection (each in its own task). `listener` is the socket bound at
/// start-up (None if the host starts down).
pub fn spawn<F, Fut>(listener: Option<TcpListener>, addr: SocketAddr, mut up: watch::Receiver<bool>, mut stop: watch::Receiver<bool>, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut listener = listener;
        loop {
            if *stop.borrow() {
                return;
            }
            match &listener {
                Some(socket) => tokio::select! {
                    accepted = socket.accept() => {
                        if let Ok((stream, peer)) = accepted {
                            tokio::spawn(serve(stream, peer));
                        }
                    }
                    _ = up.changed() => if !*up.borrow() { listener = None },
                    _ = stop.changed() => return,
                },
                None => tokio::select! {
                    changed = up.changed() => {
                        if changed.is_err() { return }
                        if *up.borrow() {
                            listener = bind(addr).await.map_err(|err| tracing::warn!(%addr, %err, "cannot listen again")).ok();
                        }
                    }
                    _ = stop.changed() => return,
                },
            }
        }
    });
}

/// How many connections the kernel may hold for us before we accept them.
/// `TcpListener::bind` asks for 128, like Rust's standard library; a burst
/// of more clients than that (a class of 500 starting their mail programs
/// at once) overflows the queue, and Linux then silently drops the
/// handshake's last ACK: each dropped client believes it is connected and
/// waits for a greeting that never comes (SMTP, POP3 and IMAP servers
/// speak first), for about a minute of SYN-ACK retries. The kernel caps
/// this at `net.core.somaxconn` (4096 on current Linux).
pub const BACKLOG: u32 = 1024;

/// Binds a listening socket with SO_REUSEADDR (so a host can come back up
/// on the same port at once) and a [`BACKLOG`] deep enough for a crowd.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
