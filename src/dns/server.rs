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

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use super::udp::UdpLoop;
use super::zone::{Answer, Zones};
use super::{describe_answer, describe_question, record_type_name};
use crate::trace::{Draft, Kind, Protocol, Trace};

/// Answers DNS questions from the world's zones.
#[derive(Clone)]
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
        if !self.nodes.contains_key(&src.ip()) {
            let exchange = Exchange::new(qname.to_string(), qtype, &answer);
            let who = src.ip().to_string();
            let summary = exchange.question_summary(&who);
            let session = self.trace.next_session();
            self.trace.emit_all(exchange.drafts(&who, summary, &transport_name(request.protocol()), session));
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

impl DnsHandler {
    /// Answers one UDP datagram the full way, as hickory's own server
    /// does: no reply to less than a header or to a response (no
    /// reflection), FORMERR to a message that does not decode, otherwise
    /// [`RequestHandler::handle_request`], which answers and traces it.
    /// The reply is at most 512 bytes (RFC 1035 §4.2.1; our answers carry
    /// no EDNS), cut short with TC set if the records do not fit.
    pub fn answer_datagram(&self, packet: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
        let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
        let capture = Capture::default();
        match Request::from_bytes(packet.to_vec(), src, hickory_server::net::xfer::Protocol::Udp) {
            Ok(request) if request.metadata.message_type == MessageType::Response => return None,
            Ok(request) => poll_ready(self.handle_request::<_, hickory_server::net::runtime::TokioTime>(&request, capture.clone())),
            Err(_) => {
                let none = Queries::read(&mut BinDecoder::new(&[]), 0).expect("zero questions decode from nothing");
                let response = MessageResponseBuilder::new(&none, None).error_msg(&header.metadata, ResponseCode::FormErr);
                poll_ready(capture.clone().send_response(response)).ok()?
            }
        };
        capture.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The trace's words for a plain question (its question section's
    /// bytes, see `cache.rs`), as [`RequestHandler::handle_request`] would
    /// trace it: the name lowercased, as hickory hands it to us.
    pub fn exchange_of(&self, question: &[u8]) -> Option<Exchange> {
        let query = Query::read(&mut BinDecoder::new(question)).ok()?;
        let qname = query.name().to_lowercase();
        let answer = self.zones.answer(&qname, query.query_type());
        Some(Exchange::new(qname.to_string(), query.query_type(), &answer))
    }
}

/// Runs a future that never waits: [`DnsHandler::handle_request`] with a
/// [`Capture`] awaits nothing that is not ready at once. Polled on the UDP
/// loop's own thread, outside tokio.
fn poll_ready<T>(work: impl std::future::Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = work.as_mut().poll(&mut context) {
            return value;
        }
        std::thread::yield_now();
    }
}

/// A response handler that keeps the encoded reply instead of sending it.
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Option<Vec<u8>>>>);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: hickory_server::zone_handler::MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(512);
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            // As hickory's UDP path does: a SERVFAIL header instead.
            Err(err) => {
                tracing::warn!(%err, "could not encode a DNS answer");
                bytes.clear();
                let mut metadata = Metadata::new(0, MessageType::Response, OpCode::Query);
                metadata.response_code = ResponseCode::ServFail;
                let header = Header { metadata, counts: HeaderCounts::default() };
                header.emit(&mut BinEncoder::new(&mut bytes))?;
                ResponseInfo::from(header)
            }
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(info)
    }
}

/// What the trace says about one outside question and its answer, apart
/// from who asked: worked out once per question, and kept by the answer
/// cache (`cache.rs`) so a repeated question costs no formatting.
#[derive(Clone, Debug)]
pub struct Exchange {
    name: String,
    qtype: RecordType,
    rtype: String,
    rcode: String,
    /// The answer's records in zone-file form.
    records: Vec<String>,
    summary: String,
}

impl Exchange {
    pub fn new(name: String, qtype: RecordType, answer: &Answer) -> Exchange {
        Exchange {
            rtype: record_type_name(qtype),
            rcode: answer.rcode.to_string(),
            records: answer.answers.iter().map(ToString::to_string).collect(),
            summary: describe_answer(&name, qtype, answer.rcode, &answer.answers),
            qtype,
            name,
        }
    }

    /// The question in words, as `who` asked it.
    pub fn question_summary(&self, who: &str) -> String {
        describe_question(who, &self.name, self.qtype)
    }

    /// The question event and the answer event of one exchange.
    pub fn drafts(&self, who: &str, question_summary: String, transport: &str, session: u64) -> [Draft; 2] {
        let question = Kind::DnsQuery { name: self.name.clone(), rtype: self.rtype.clone(), transport: transport.to_string() };
        let answer = Kind::DnsAnswer { name: self.name.clone(), rtype: self.rtype.clone(), rcode: self.rcode.clone(), records: self.records.clone() };
        [
            Draft::new(who, "dns", Protocol::Dns, question, question_summary).session(session),
            Draft::new("dns", who, Protocol::Dns, answer, self.summary.clone()).session(session),
        ]
    }

    #[cfg(test)]
    pub fn for_test() -> Exchange {
        Exchange::new("example.org.".into(), RecordType::MX, &Answer::default())
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
    /// TCP, through hickory-server.
    server: Server<DnsHandler>,
    /// UDP, through our own batched loop (`udp.rs`).
    udp: UdpLoop,
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
        let udp = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
        let addr = udp.local_addr().map_err(bind_err)?;
        let tcp = crate::world::listener::bind(addr).await.map_err(|error| BindError { addr, error })?;
        let mut server = Server::new(handler.clone());
        // Idle TCP connections are closed after 10 s: a slow or silent
        // client cannot hold the server.
        server.register_listener(tcp, Duration::from_secs(10), 64);
        let udp = UdpLoop::start(udp, handler).map_err(|error| BindError { addr, error })?;
        Ok(DnsServer { server, udp, addr })
    }

    pub async fn shutdown(mut self) {
        self.udp.stop().await;
        let _ = self.server.shutdown_gracefully().await;
    }
}
