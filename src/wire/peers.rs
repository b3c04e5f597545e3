//! Who is on the other end of a connection.
//!
//! A server only sees an address like 127.77.1.1:40312. Our own clients
//! (a device, a relaying MTA) register their address *before* connecting,
//! with their node name and the message they are carrying, so the server's
//! trace can say "alice-laptop" and label the message. Anything not
//! registered is an outside client (swaks, Thunderbird) and is named by its
//! address.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use crate::trace::MessageRef;

/// The message a connection is about; the client may set it mid-session.
pub type MessageSlot = Arc<Mutex<Option<MessageRef>>>;

/// What a server learns about a registered peer.
#[derive(Clone)]
pub struct PeerInfo {
    pub node: String,
    pub message: MessageSlot,
}

/// The world's registry of its own client connections. Cheap to clone.
#[derive(Clone, Default)]
pub struct Peers {
    map: Arc<Mutex<HashMap<SocketAddr, PeerInfo>>>,
}

impl Peers {
    pub fn lookup(&self, addr: SocketAddr) -> Option<PeerInfo> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&addr).cloned()
    }

    /// Is `ip` the address of one of the world's own nodes with a
    /// connection open now? (Outside programs use other addresses.)
    pub fn knows_address(&self, ip: IpAddr) -> bool {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).keys().any(|addr| addr.ip() == ip)
    }

    /// What a server calls the client at `addr` (its node name, or its
    /// address for an outside client) and the message slot it shares.
    pub fn identify(&self, addr: SocketAddr) -> (String, MessageSlot) {
        match self.lookup(addr) {
            Some(peer) => (peer.node, peer.message),
            None => (addr.ip().to_string(), MessageSlot::default()),
        }
    }

    /// Opens a TCP connection from `node` (at `from`) to `to`, registered
    /// for the connection's lifetime with the message it carries (set
    /// before connecting, so even the server's first event names it).
    /// Refuses anything off this machine.
    pub async fn connect(
        &self,
        node: &str,
        from: IpAddr,
        to: SocketAddr,
        message: Option<MessageRef>,
        timeout: Duration,
    ) -> io::Result<(TcpStream, Registration)> {
        if !to.ip().is_loopback() {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{to} is not a loopback address; mailflow never leaves this machine")));
        }
        let socket = if from.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.bind(SocketAddr::new(from, 0))?;
        let local = socket.local_addr()?;
        let registration = Registration { peers: self.clone(), addr: local, message: Arc::new(Mutex::new(message)) };
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(local, PeerInfo { node: node.to_string(), message: registration.message.clone() });
        match tokio::time::timeout(timeout, socket.connect(to)).await {
            Ok(Ok(stream)) => {
                // Small request/response lines: send them now, not in 40 ms.
                let _ = stream.set_nodelay(true);
                Ok((stream, registration))
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer from {to} within {}s", timeout.as_secs()))),
        }
    }
}

/// Keeps a client connection registered; unregisters when dropped.
pub struct Registration {
    peers: Peers,
    addr: SocketAddr,
    pub message: MessageSlot,
}

impl Registration {
    pub fn set_message(&self, message: Option<MessageRef>) {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.peers.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.addr);
    }
}
