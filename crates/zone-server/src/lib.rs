//! An authoritative DNS server answering from an RFC 1035 zone file, over UDP and TCP, on
//! one address: for tests and benchmarks that need a real name server on loopback (the
//! domain owner's check compared with checkdmarc, the milter's benchmark).
//!
//! The zone is read by `dmarc-dns`'s zone-file parser ([`ZoneFile`]), so the server answers
//! exactly what `--dns-zone FILE` answers, and hickory-server does the wire protocol.
//! Answers:
//!
//! * A, AAAA, MX, TXT, PTR, NS, SOA and CNAME records at a name, authoritative (AA set);
//!   a wildcard synthesises records for names that do not exist (RFC 4592);
//! * a CNAME is returned with the records of its target when the target is in the file
//!   (RFC 1034 §4.3.2), as many hops as [`dmarc_dns::zone::MAX_CNAME_CHAIN`];
//! * NXDOMAIN for a name that does not exist and NODATA (NOERROR, no answer) for one that
//!   exists without records of the type, both with the governing SOA in the authority
//!   section (RFC 2308 §2) when the file has one;
//! * other types (ANY, SRV, ...) get NODATA; other opcodes NOTIMP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dmarc_dns::ZoneFile;
use dmarc_proto::DnsError;
use hickory_server::Server;
use hickory_server::proto::op::{Edns, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// The TTL given to every record (the zone file's TTLs are not kept).
pub const TTL: u32 = 300;

/// Answers questions from a [`ZoneFile`].
#[derive(Debug, Clone)]
pub struct ZoneHandler {
    zone: Arc<ZoneFile>,
    answered: Arc<AtomicU64>,
}

impl ZoneHandler {
    /// A handler for `zone`.
    pub fn new(zone: Arc<ZoneFile>) -> Self {
        ZoneHandler {
            zone,
            answered: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Questions answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// The answer to one question: the response code, the answer records and the
    /// authority records.
    pub fn answer(
        &self,
        qname: &Name,
        qtype: RecordType,
    ) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        let mut answers = Vec::new();
        let mut current = qname.clone();
        for _ in 0..=dmarc_dns::zone::MAX_CNAME_CHAIN {
            let text = current.to_ascii();
            let node = match self.zone.node(&text) {
                Ok(node) => node,
                Err(DnsError::NxDomain) if answers.is_empty() => {
                    return (ResponseCode::NXDomain, answers, self.soa(&text));
                }
                // A CNAME whose target is not in the file: the answer is the chain so far.
                Err(DnsError::NxDomain | DnsError::NoData) if !answers.is_empty() => {
                    return (ResponseCode::NoError, answers, Vec::new());
                }
                Err(DnsError::NoData) => return (ResponseCode::NoError, answers, self.soa(&text)),
                Err(_) => return (ResponseCode::FormErr, Vec::new(), Vec::new()),
            };
            if let Some(target) = node.cname() {
                let Ok(target) = Name::from_ascii(format!("{target}.")) else {
                    return (ResponseCode::ServFail, Vec::new(), Vec::new());
                };
                answers.push(Record::from_rdata(
                    current.clone(),
                    TTL,
                    RData::CNAME(CNAME(target.clone())),
                ));
                if qtype == RecordType::CNAME {
                    return (ResponseCode::NoError, answers, Vec::new());
                }
                current = target;
                continue;
            }
            let mut push =
                |data: RData| answers.push(Record::from_rdata(current.clone(), TTL, data));
            let name = |s: &str| Name::from_ascii(format!("{s}.")).ok();
            match qtype {
                RecordType::A => node.a().iter().for_each(|a| push(RData::A(A(*a)))),
                RecordType::AAAA => node.aaaa().iter().for_each(|a| push(RData::AAAA(AAAA(*a)))),
                RecordType::MX => {
                    for m in node.mx() {
                        let exchange = if m.exchange.is_empty() {
                            Some(Name::root())
                        } else {
                            name(&m.exchange)
                        };
                        if let Some(e) = exchange {
                            push(RData::MX(MX::new(m.preference, e)));
                        }
                    }
                }
                RecordType::TXT => {
                    for t in node.txt() {
                        let strings: Vec<&[u8]> = if t.is_empty() {
                            vec![&[][..]]
                        } else {
                            t.chunks(255).collect()
                        };
                        push(RData::TXT(TXT::from_bytes(strings)));
                    }
                }
                RecordType::PTR => node
                    .ptr()
                    .iter()
                    .filter_map(|p| name(p))
                    .for_each(|p| push(RData::PTR(PTR(p)))),
                RecordType::NS => node
                    .ns()
                    .iter()
                    .filter_map(|p| name(p))
                    .for_each(|p| push(RData::NS(NS(p)))),
                RecordType::SOA => {
                    if let Some(s) = node.soa()
                        && let Some(soa) = soa_rdata(s)
                    {
                        push(RData::SOA(soa));
                    }
                }
                _ => {}
            }
            let authority = if answers.is_empty() {
                self.soa(&text)
            } else {
                Vec::new()
            };
            return (ResponseCode::NoError, answers, authority);
        }
        (ResponseCode::ServFail, Vec::new(), Vec::new())
    }

    fn soa(&self, name: &str) -> Vec<Record> {
        let Some((owner, soa)) = self.zone.soa_for(name) else {
            return Vec::new();
        };
        match (Name::from_ascii(format!("{owner}.")), soa_rdata(soa)) {
            (Ok(owner), Some(data)) => vec![Record::from_rdata(
                owner,
                soa.minimum.min(TTL),
                RData::SOA(data),
            )],
            _ => Vec::new(),
        }
    }
}

fn soa_rdata(s: &dmarc_dns::Soa) -> Option<SOA> {
    let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    Some(SOA::new(
        Name::from_ascii(format!("{}.", s.mname)).ok()?,
        Name::from_ascii(format!("{}.", s.rname)).ok()?,
        s.serial,
        clamp(s.refresh),
        clamp(s.retry),
        clamp(s.expire),
        s.minimum,
    ))
}

#[async_trait::async_trait]
impl RequestHandler for ZoneHandler {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.answered.fetch_add(1, Ordering::Relaxed);
        let builder = MessageResponseBuilder::from_message_request(request);
        let info = match request.request_info() {
            Ok(info) if request.metadata.op_code == OpCode::Query => info,
            Ok(_) => {
                let response = builder.error_msg(&request.metadata, ResponseCode::NotImp);
                return send(&mut response_handle, response).await;
            }
            Err(_) => {
                let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
                return send(&mut response_handle, response).await;
            }
        };
        let qname: Name = info.query.name().into();
        let (code, answers, authority) = self.answer(&qname, info.query.query_type());
        let mut metadata =
            hickory_server::proto::op::Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.response_code = code;
        let mut edns = Edns::new();
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(req) = request.edns.as_ref() {
            edns.set_max_payload(req.max_payload().max(512));
            builder.edns(&edns);
        }
        let response = builder.build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            authority.iter(),
            std::iter::empty(),
        );
        send(&mut response_handle, response).await
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => {
            let mut metadata = hickory_server::proto::op::Metadata::new(
                0,
                hickory_server::proto::op::MessageType::Response,
                OpCode::Query,
            );
            metadata.response_code = ResponseCode::ServFail;
            hickory_server::proto::op::Header {
                metadata,
                counts: hickory_server::proto::op::HeaderCounts::default(),
            }
            .into()
        }
    }
}

/// A running server.
pub struct Running {
    /// The address it listens on (UDP and TCP).
    pub addr: SocketAddr,
    server: Server<ZoneHandler>,
    handler: ZoneHandler,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("addr", &self.addr).finish()
    }
}

impl Running {
    /// Questions answered so far.
    pub fn answered(&self) -> u64 {
        self.handler.answered()
    }

    /// Stops accepting, finishes what is in flight.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.server
            .shutdown_gracefully()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Serves `zone` on `listen` (port 0: a port free for both UDP and TCP is chosen).
pub async fn serve(zone: ZoneFile, listen: SocketAddr) -> std::io::Result<Running> {
    let handler = ZoneHandler::new(Arc::new(zone));
    let mut server = Server::new(handler.clone());
    let (udp, tcp) = if listen.port() == 0 {
        let mut tries = 0;
        loop {
            let udp = tokio::net::UdpSocket::bind(listen).await?;
            let addr = udp.local_addr()?;
            match tokio::net::TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) if tries > 20 => return Err(e),
                Err(_) => tries += 1,
            }
        }
    } else {
        (
            tokio::net::UdpSocket::bind(listen).await?,
            tokio::net::TcpListener::bind(listen).await?,
        )
    };
    let addr = udp.local_addr()?;
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(10), 256);
    Ok(Running {
        addr,
        server,
        handler,
    })
}
