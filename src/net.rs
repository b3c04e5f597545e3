//! The plumbing every simulated machine shares: the trace it reports to,
//! the conductor it passes, the registry of its own connections, the DNS
//! resolvers, the port rule, the calendar that turns simulated time into
//! the dates written in mail headers, and what the devices hold.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::conductor::Conductor;
use crate::dns::Resolvers;
use crate::scenario::Service;
use tokio::net::TcpStream;

use crate::trace::{Draft, Kind, MessageRef, Protocol, Trace};
use crate::wire::{Endpoints, MessageSlot, Peers, Registration, Side, Wire};

/// The one port rule: the standard port plus the world's offset (10000 by
/// default, so SMTP's 25 becomes 10025 and no root is needed; 0 with
/// `--standard-ports`).
pub fn port(standard: u16, offset: u16) -> u16 {
    standard + offset
}

#[derive(Clone)]
pub struct Net {
    pub trace: Trace,
    pub conductor: Conductor,
    pub peers: Peers,
    pub resolvers: Resolvers,
    /// Added to every standard port.
    pub port_offset: u16,
    /// Real limit for connecting and for a silent peer (protects the
    /// servers from stuck clients; not part of the simulated story).
    pub network_timeout: Duration,
    /// The wall-clock second the simulation started at: header dates are
    /// this plus simulated time, so "15 minutes later" shows in `Date:`.
    pub epoch: i64,
    /// What each device has downloaded (POP3, IMAP).
    pub devices: Devices,
    /// The world's TLS: what its devices and relaying hosts trust, and
    /// which domains want their mail encrypted. None: nobody speaks TLS.
    pub tls: Option<Arc<crate::tls::WorldTls>>,
    /// Who else is on the world's links: eavesdroppers, men in the middle.
    pub links: Arc<crate::wire::links::Links>,
}

impl Net {
    pub fn new(trace: Trace, conductor: Conductor, resolvers: Resolvers, port_offset: u16, network_timeout: Duration) -> Self {
        let epoch = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Net {
            trace,
            conductor,
            peers: Peers::default(),
            resolvers,
            port_offset,
            network_timeout,
            epoch,
            devices: Devices::default(),
            tls: None,
            links: Arc::default(),
        }
    }

    /// The same plumbing, with the world's TLS for its senders.
    pub fn with_tls(self, tls: Arc<crate::tls::WorldTls>) -> Self {
        Net { tls: Some(tls), ..self }
    }

    /// The same plumbing, with the scenario's eavesdroppers and men in the middle.
    pub fn with_links(self, links: crate::wire::links::Links) -> Self {
        Net { links: Arc::new(links), ..self }
    }

    /// The port `service` listens on in this world (see [`port`]).
    pub fn port(&self, service: Service) -> u16 {
        port(service.standard_port(), self.port_offset)
    }

    /// Simulated now.
    pub fn now(&self) -> Duration {
        self.conductor.clock().now()
    }

    /// Simulated now as Unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.epoch + self.now().as_secs() as i64
    }

    /// Opens a client connection from `node` (at `from`) to the `service`
    /// of `server` (name, address), labelled with the message it carries.
    /// The wire is the client end: paced by the conductor, traced by the
    /// server. Keep the registration as long as the wire: it is how the
    /// server knows who is calling. A failure is traced as `connect_failed`.
    pub async fn dial(
        &self,
        node: &str,
        from: IpAddr,
        server: (&str, IpAddr),
        service: Service,
        message: Option<MessageRef>,
    ) -> std::io::Result<(Wire<TcpStream>, Registration)> {
        let protocol = match service {
            Service::Smtp | Service::Submission | Service::Submissions => Protocol::Smtp,
            Service::Imap | Service::Imaps => Protocol::Imap,
            Service::Pop3 | Service::Pop3s => Protocol::Pop3,
        };
        let target = SocketAddr::new(server.1, self.port(service));
        match self.peers.connect(node, from, target, message.clone(), self.network_timeout).await {
            Ok((stream, registration)) => {
                let ends = Endpoints { local: node.to_string(), peer: server.0.to_string(), protocol, side: Side::Client };
                // A man in the middle can only rewrite what is not yet encrypted.
                let strips = matches!(service, Service::Smtp | Service::Submission) && self.links.strips_starttls(node, server.0);
                let wire = Wire::new(stream, ends, self.trace.clone(), self.conductor.clone(), registration.message.clone(), self.network_timeout)
                    .stripping_starttls(strips);
                Ok((wire, registration))
            }
            Err(err) => {
                let summary = format!("{node} cannot connect to {} ({target}): {err}", server.0);
                self.trace.emit(Draft::new(node, server.0, protocol, Kind::ConnectFailed { reason: err.to_string() }, summary).message(message));
                Err(err)
            }
        }
    }

    /// The server end of an accepted connection, as every server of the
    /// world opens it: traced and paced, `idle_timeout` for a silent client,
    /// the world's write timeout for one that never reads, and the
    /// scenario's eavesdropper listening if it sits on this link.
    pub fn server_wire<S>(&self, stream: S, ends: Endpoints, slot: MessageSlot, idle_timeout: Duration) -> Wire<S>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let tapped = self.links.eavesdropped(&ends.local, &ends.peer);
        Wire::new(stream, ends, self.trace.clone(), self.conductor.clone(), slot, idle_timeout).with_write_timeout(self.network_timeout).eavesdropped(tapped)
    }

    /// Simulated now as an RFC 5322 date, e.g. "Thu, 26 Nov 2026 04:16:00 +0000".
    pub fn date(&self) -> String {
        mail_builder::headers::date::Date::new(self.timestamp()).to_rfc822()
    }
}

/// The devices' side of the story: the messages each one holds after
/// fetching, and the POP3 unique IDs (UIDL) it has already downloaded, so
/// "leave a copy on the server" does not download the same mail twice.
/// Cheap to clone; shared by every fetch of the world.
#[derive(Clone, Default)]
pub struct Devices {
    inner: Arc<Mutex<HashMap<String, DeviceMemory>>>,
}

#[derive(Default)]
struct DeviceMemory {
    messages: Vec<Arc<Vec<u8>>>,
    /// (server, UIDL id): ids are only unique per server.
    seen: HashSet<(String, String)>,
}

impl Devices {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, DeviceMemory>> {
        // A plain mutex: every use is a short copy, never held across an await.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `device` now holds this message.
    pub fn record(&self, device: &str, raw: Arc<Vec<u8>>) {
        self.lock().entry(device.to_string()).or_default().messages.push(raw);
    }

    /// The messages `device` holds, in the order it got them.
    pub fn messages(&self, device: &str) -> Vec<Arc<Vec<u8>>> {
        self.lock().get(device).map(|d| d.messages.clone()).unwrap_or_default()
    }

    /// Has `device` already downloaded the message with this UIDL id from `server`?
    pub fn knows_uidl(&self, device: &str, server: &str, uidl: &str) -> bool {
        self.lock().get(device).is_some_and(|d| d.seen.contains(&(server.to_string(), uidl.to_string())))
    }

    /// Remembers that `device` has downloaded this UIDL id from `server`.
    pub fn remember_uidl(&self, device: &str, server: &str, uidl: &str) {
        self.lock().entry(device.to_string()).or_default().seen.insert((server.to_string(), uidl.to_string()));
    }
}
