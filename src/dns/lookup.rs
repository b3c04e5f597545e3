//! How a host asks DNS: a hickory-resolver pointed only at the world's DNS
//! server, sending from the host's own loopback address (so the server,
//! and `tcpdump`, see who asks), with its cache off so every lookup is
//! visible.
//!
//! Each lookup is two hops for the conductor and the trace: the question
//! (host → dns) and the answer (dns → host). [`Lookup::mail_route`] is what
//! a mail server does before relaying (RFC 5321 §5.1):
//! 1. ask for the domain's MX records and sort them by preference;
//! 2. a single MX of "." is a null MX (RFC 7505): the domain takes no mail;
//! 3. no MX at all: use the domain's own A/AAAA record as if it were an MX
//!    of preference 0 (the "implicit MX");
//! 4. find the address of each exchange.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use super::{describe_answer, describe_question, record_type_name};
use crate::conductor::Conductor;
use crate::trace::{Draft, Kind, MessageRef, Protocol, Trace};

/// Makes a resolver for each node of the world.
#[derive(Clone)]
pub struct Resolvers {
    pub dns: SocketAddr,
    pub trace: Trace,
    pub conductor: Conductor,
    /// How long one question may go unanswered.
    pub timeout: Duration,
}

impl Resolvers {
    /// The resolver of `node`, which sends its questions from `address`.
    pub fn for_node(&self, node: &str, address: IpAddr) -> Lookup {
        let mut server = NameServerConfig::udp_and_tcp(self.dns.ip());
        for connection in &mut server.connections {
            connection.port = self.dns.port();
            connection.bind_addr = Some(SocketAddr::new(address, 0));
        }
        let mut options = ResolverOpts::default();
        options.cache_size = 0; // every lookup goes on the wire, for the class to see
        options.timeout = self.timeout;
        options.attempts = 1;
        options.use_hosts_file = ResolveHosts::Never; // no /etc/hosts: only our DNS
        options.ndots = 0;
        let resolver = TokioResolver::builder_with_config(ResolverConfig::from_name_servers(vec![server]), TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .expect("a resolver with one name server always builds");
        Lookup { node: node.to_string(), resolver, trace: self.trace.clone(), conductor: self.conductor.clone() }
    }
}

/// What one DNS question came back with.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryOutcome {
    Records(Vec<Record>),
    /// The name exists but has no records of that type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// No usable answer (timeout, server failure).
    Failed(String),
}

/// One mail server for a domain, from its MX record (or the A fallback).
#[derive(Clone, Debug, PartialEq)]
pub struct MailServer {
    pub name: String,
    pub preference: u16,
    pub addresses: Vec<IpAddr>,
}

/// Where mail for a domain goes.
#[derive(Clone, Debug, PartialEq)]
pub enum MailRoute {
    /// Try these in order (lowest preference first). `implicit` is true
    /// when there was no MX and the domain's own address is used.
    Servers { servers: Vec<MailServer>, implicit: bool },
    /// The domain publishes a null MX: it accepts no mail (RFC 7505).
    NullMx,
    /// The domain does not exist, or has neither MX nor address.
    NoSuchDomain,
}

/// DNS could not say (try again later: a temporary failure).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("DNS lookup of {name} failed: {reason}")]
pub struct LookupError {
    pub name: String,
    pub reason: String,
}

/// One node's way of asking DNS.
pub struct Lookup {
    node: String,
    resolver: TokioResolver,
    trace: Trace,
    conductor: Conductor,
}

impl Lookup {
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Asks one question, traced and paced as two hops.
    pub async fn query(&self, name: &str, rtype: RecordType, message: Option<&MessageRef>) -> QueryOutcome {
        self.query_explained(name, rtype, message, None).await
    }

    async fn query_explained(&self, name: &str, rtype: RecordType, message: Option<&MessageRef>, explain: Option<String>) -> QueryOutcome {
        let fqdn = if name.ends_with('.') { name.to_string() } else { format!("{name}.") };
        let session = self.trace.next_session();
        let question = describe_question(&self.node, &fqdn, rtype);
        self.conductor.pass(&question).await;
        self.trace.emit(
            Draft::new(
                &self.node,
                "dns",
                Protocol::Dns,
                Kind::DnsQuery { name: fqdn.clone(), rtype: record_type_name(rtype), transport: "UDP".into() },
                question,
            )
            .message(message.cloned())
            .session(session),
        );
        let outcome = match self.resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(lookup) => QueryOutcome::Records(lookup.answers().to_vec()),
            Err(err) if err.is_nx_domain() => QueryOutcome::NxDomain,
            Err(err) if err.is_no_records_found() => QueryOutcome::NoData,
            Err(err) => QueryOutcome::Failed(err.to_string()),
        };
        let (kind, summary) = match &outcome {
            QueryOutcome::Failed(reason) => (
                Kind::DnsFailed { name: fqdn.clone(), rtype: record_type_name(rtype), reason: reason.clone() },
                format!("no answer from DNS about {}: {reason}", fqdn.trim_end_matches('.')),
            ),
            other => {
                let (rcode, records) = match other {
                    QueryOutcome::Records(r) => (ResponseCode::NoError, r.as_slice()),
                    QueryOutcome::NxDomain => (ResponseCode::NXDomain, &[][..]),
                    _ => (ResponseCode::NoError, &[][..]),
                };
                (
                    Kind::DnsAnswer {
                        name: fqdn.clone(),
                        rtype: record_type_name(rtype),
                        rcode: rcode.to_string(),
                        records: records.iter().map(ToString::to_string).collect(),
                    },
                    describe_answer(&fqdn, rtype, rcode, records),
                )
            }
        };
        // The answer is a hop of its own: in step mode the class sees the
        // question arrive before the answer comes back.
        self.conductor.pass(&summary).await;
        self.trace.emit(Draft::new("dns", &self.node, Protocol::Dns, kind, summary).explain_opt(explain).message(message.cloned()).session(session));
        outcome
    }

    /// Where to deliver mail for `domain`, as an MTA finds out (see the
    /// module docs). A DNS failure is a temporary error: the caller retries.
    pub async fn mail_route(&self, domain: &str, message: Option<&MessageRef>) -> Result<MailRoute, LookupError> {
        let fail = |reason: String| LookupError { name: domain.to_string(), reason };
        let mut mx: Vec<(u16, String)> = match self.query(domain, RecordType::MX, message).await {
            QueryOutcome::Records(records) => records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_string())),
                    _ => None,
                })
                .collect(),
            QueryOutcome::NxDomain => return Ok(MailRoute::NoSuchDomain),
            QueryOutcome::NoData => Vec::new(),
            QueryOutcome::Failed(reason) => return Err(fail(reason)),
        };
        if mx.len() == 1 && mx[0].1 == "." {
            self.narrate(domain, "null MX: this domain says it accepts no mail, so the sender gives up at once (RFC 7505)", message);
            return Ok(MailRoute::NullMx);
        }
        mx.retain(|(_, exchange)| exchange != ".");
        let implicit = mx.is_empty();
        if implicit {
            // RFC 5321 §5.1: no MX records, so the domain itself is the
            // mail server ("implicit MX", preference 0).
            mx.push((0, format!("{}.", domain.trim_end_matches('.'))));
        }
        // Lowest preference first; equal preferences keep DNS's order.
        mx.sort_by_key(|(preference, _)| *preference);
        let mut servers = Vec::new();
        for (preference, exchange) in mx {
            let explain =
                implicit.then(|| "There is no MX record, so by RFC 5321 §5.1 the domain's own address (its A record) is used as the mail server.".to_string());
            let mut addresses = Vec::new();
            let mut failure = None;
            for rtype in [RecordType::A, RecordType::AAAA] {
                // Ask AAAA only when there is no IPv4 address: loopback
                // lessons are IPv4, and one question less is easier to follow.
                if rtype == RecordType::AAAA && !addresses.is_empty() {
                    break;
                }
                match self.query_explained(&exchange, rtype, message, if rtype == RecordType::A { explain.clone() } else { None }).await {
                    QueryOutcome::Records(records) => addresses.extend(records.iter().filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    })),
                    QueryOutcome::Failed(reason) => failure = Some(reason),
                    QueryOutcome::NxDomain | QueryOutcome::NoData => {}
                }
            }
            if addresses.is_empty() {
                if let Some(reason) = failure {
                    return Err(fail(reason));
                }
                continue; // an exchange without an address is skipped
            }
            servers.push(MailServer { name: exchange.trim_end_matches('.').to_string(), preference, addresses });
        }
        if servers.is_empty() {
            return Ok(MailRoute::NoSuchDomain);
        }
        Ok(MailRoute::Servers { servers, implicit })
    }

    fn narrate(&self, domain: &str, text: &str, message: Option<&MessageRef>) {
        self.trace
            .emit(Draft::new(&self.node, &self.node, Protocol::Dns, Kind::Note, format!("{}: {text}", domain.trim_end_matches('.'))).message(message.cloned()));
    }
}
