//! The fake DNS server: hickory-server's UDP and TCP transport with a
//! request handler of our own that answers from [`Zones`].
//!
//! Why our own handler and not hickory's `Catalog`: we must trace every
//! answer for the class and edit zones while the world runs; answering
//! from our small zone model (`zone.rs`) keeps both trivial, while
//! hickory still does the wire format, UDP and TCP framing, and the FORMERR
//! answers to malformed packets.
//!
//! Questions from the simulation's own hosts are traced by their resolver
//! (`lookup.rs`), which also lets the conductor pace question and answer as
//! two hops. Questions from anyone else (`dig` in a student's terminal) are
//! traced here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::serialize::binary::BinDecoder;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tokio::net::UdpSocket;

use super::zone::Zones;
use super::{describe_answer, describe_question, record_type_name};
use crate::trace::{Draft, Kind, Protocol, Trace};

/// Answers DNS questions from the world's zones.
pub struct DnsHandler {
    pub zones: Arc<Zones>,
    pub trace: Trace,
    /// The world's own addresses (their lookups are traced by the asker).
    pub nodes: Arc<HashMap<IpAddr, String>>,
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response_handle: R) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = false;
        let builder = MessageResponseBuilder::new(&request.queries, None);

        let query = match request.request_info() {
            Ok(info) if request.metadata.op_code == OpCode::Query && request.metadata.message_type == MessageType::Query => info.query.clone(),
            Ok(_) => return send_error(&mut response_handle, builder, metadata, ResponseCode::NotImp).await,
            // Zero or several questions in one message: not a thing we do.
            // The FORMERR carries no question: hickory would echo the
            // questions' bytes as they came, and a compression pointer
            // among them (RFC 1035 §4.1.4) would then point into *our*
            // header and make the answer undecodable (found by fuzzing).
            Err(_) => {
                let none = Queries::read(&mut BinDecoder::new(&[]), 0).expect("zero questions decode from nothing");
                return send_error(&mut response_handle, MessageResponseBuilder::new(&none, None), metadata, ResponseCode::FormErr).await;
            }
        };
        let qname = query.name().into();
        let qtype = query.query_type();
        let answer = self.zones.answer(&qname, qtype);
        metadata.response_code = answer.rcode;

        let src = request.src();
        let external = !self.nodes.contains_key(&src.ip());
        let session = external.then(|| self.trace.next_session());
        if let Some(session) = session {
            let who = src.ip().to_string();
            let name = qname.to_string();
            let rtype = record_type_name(qtype);
            self.trace.emit(
                Draft::new(
                    &who,
                    "dns",
                    Protocol::Dns,
                    Kind::DnsQuery { name: name.clone(), rtype: rtype.clone(), transport: transport_name(request.protocol()) },
                    describe_question(&who, &name, qtype),
                )
                .session(session),
            );
            let records: Vec<String> = answer.answers.iter().map(ToString::to_string).collect();
            self.trace.emit(
                Draft::new(
                    "dns",
                    &who,
                    Protocol::Dns,
                    Kind::DnsAnswer { name: name.clone(), rtype, rcode: answer.rcode.to_string(), records },
                    describe_answer(&name, qtype, answer.rcode, &answer.answers),
                )
                .session(session),
            );
        }

        let response = builder.build(metadata, answer.answers.iter(), answer.authority.iter(), std::iter::empty(), answer.additionals.iter());
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(err) => {
                tracing::warn!(%err, "could not send a DNS answer");
                failed(metadata)
            }
        }
    }
}

/// "UDP" or "TCP", spelled as the resolver's own events spell it (hickory
/// writes "udp"), so one event field never has two spellings.
fn transport_name(protocol: hickory_server::net::xfer::Protocol) -> String {
    protocol.to_string().to_uppercase()
}

async fn send_error<R: ResponseHandler>(handle: &mut R, builder: MessageResponseBuilder<'_>, mut metadata: Metadata, code: ResponseCode) -> ResponseInfo {
    metadata.response_code = code;
    match handle.send_response(builder.build_no_records(metadata)).await {
        Ok(info) => info,
        Err(_) => failed(metadata),
    }
}

fn failed(mut metadata: Metadata) -> ResponseInfo {
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}

/// A running DNS server; stops when dropped or shut down.
pub struct DnsServer {
    server: Server<DnsHandler>,
    pub addr: SocketAddr,
}

/// The DNS port could not be opened. The message includes the cause, so
/// it is not also exposed as `source()`: error printers that walk the
/// chain (anyhow's `{:#}`) would print it twice (the thiserror rule: a
/// cause is in the message or in `source`, never both).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for DNS on {addr}: {error}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub error: std::io::Error,
}

impl DnsServer {
    /// Listens on UDP and TCP at `addr` (port 0 picks a free port, the same
    /// for both).
    pub async fn start(addr: SocketAddr, handler: DnsHandler) -> Result<DnsServer, BindError> {
        let bind_err = |error| BindError { addr, error };
        let udp = UdpSocket::bind(addr).await.map_err(bind_err)?;
        let addr = udp.local_addr().map_err(bind_err)?;
        let tcp = crate::world::listener::bind(addr).await.map_err(|error| BindError { addr, error })?;
        let mut server = Server::new(handler);
        server.register_socket(udp);
        // Idle TCP connections are closed after 10 s: a slow or silent
        // client cannot hold the server.
        server.register_listener(tcp, Duration::from_secs(10), 64);
        Ok(DnsServer { server, addr })
    }

    pub async fn shutdown(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}
