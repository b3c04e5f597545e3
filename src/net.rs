//! The plumbing every simulated machine shares: the trace it reports to,
//! the conductor it passes, the registry of its own connections, the DNS
//! resolvers, the port rule, and the calendar that turns simulated time
//! into the dates written in mail headers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::conductor::Conductor;
use crate::dns::Resolvers;
use crate::scenario::Service;
use crate::trace::Trace;
use crate::wire::Peers;

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
}

impl Net {
    pub fn new(trace: Trace, conductor: Conductor, resolvers: Resolvers, port_offset: u16, network_timeout: Duration) -> Self {
        let epoch = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Net { trace, conductor, peers: Peers::default(), resolvers, port_offset, network_timeout, epoch }
    }

    pub fn port(&self, service: Service) -> u16 {
        service.standard_port() + self.port_offset
    }

    /// Simulated now.
    pub fn now(&self) -> Duration {
        self.conductor.clock().now()
    }

    /// Simulated now as Unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.epoch + self.now().as_secs() as i64
    }

    /// Simulated now as an RFC 5322 date, e.g. "Thu, 26 Nov 2026 04:16:00 +0000".
    pub fn date(&self) -> String {
        mail_builder::headers::date::Date::new(self.timestamp()).to_rfc822()
    }
}
