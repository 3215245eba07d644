//! Opening an authenticated IMAP session: TCP, TLS (implicit or STARTTLS), login.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::imap_proto::{Capability, Response, Status};
use async_imap::{Client, Session};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{ImapConfig, ImapError, Security, Trust};

/// The byte stream under the IMAP session: TLS, or plain TCP with `--imap-insecure-plaintext`.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub(crate) type ImapSession = Session<Transport>;

/// Builds the rustls client configuration once per run (reading the CA file, if any).
pub(crate) fn tls_config(trust: &Trust) -> Result<Arc<ClientConfig>, ImapError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Config(format!("TLS setup: {e}")))?;
    let config = match trust {
        Trust::SystemRoots => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(ImapError::Config(format!(
                    "no usable system CA certificates{}; pass --imap-ca-file",
                    if errors.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", errors.join("; "))
                    }
                )));
            }
            builder.with_root_certificates(roots)
        }
        Trust::CaFile(path) => {
            let shown = path.display();
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ImapError::Config(format!("--imap-ca-file {shown}: {e}")))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| ImapError::Config(format!("--imap-ca-file {shown}: {e}")))?;
                roots.add(cert).map_err(|e| {
                    ImapError::Config(format!("--imap-ca-file {shown}: unusable certificate: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(ImapError::Config(format!(
                    "--imap-ca-file {shown}: no PEM certificate found"
                )));
            }
            builder.with_root_certificates(roots)
        }
        Trust::DangerAcceptInvalidCerts => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider))),
    };
    Ok(Arc::new(config.with_no_client_auth()))
}

/// `--imap-danger-accept-invalid-certs`: any certificate is accepted, but the handshake
/// signatures are still checked so that the session keys belong to whoever holds the key of
/// the certificate shown.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects, secures the connection as configured, and logs in.
pub(crate) async fn open(
    config: &ImapConfig,
    tls: &Arc<ClientConfig>,
) -> Result<ImapSession, ImapError> {
    let server = &config.server;
    let address = format!("{}:{}", server.host, server.port);
    let tcp = within(
        config.connect_timeout,
        "connect",
        TcpStream::connect((server.host.as_str(), server.port)),
    )
    .await?
    .map_err(|source| ImapError::Connect {
        address: address.clone(),
        source,
    })?;
    keepalive(&tcp);
    let _ = tcp.set_nodelay(true);

    let client = match server.security {
        Security::ImplicitTls => {
            let stream = handshake(config, tls, tcp).await?;
            let mut client = Client::new(Transport::Tls(Box::new(stream)));
            greeting(config, &mut client).await?;
            client
        }
        Security::StartTls => {
            let mut client = Client::new(Transport::Plain(tcp));
            greeting(config, &mut client).await?;
            let started = within(
                config.command_timeout,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            if let Err(e) = started {
                return Err(match e {
                    async_imap::error::Error::No(reason)
                    | async_imap::error::Error::Bad(reason) => ImapError::StartTlsRefused {
                        host: server.host.clone(),
                        reason,
                    },
                    other => command_error("STARTTLS", other),
                });
            }
            // Anything the server sent after its OK and before the handshake is dropped with
            // the old client's buffer (RFC 3501 §6.2.1; the STARTTLS command-injection class
            // of bugs).
            let Transport::Plain(tcp) = client.into_inner() else {
                return Err(ImapError::Protocol("STARTTLS on a TLS stream".to_owned()));
            };
            let stream = handshake(config, tls, tcp).await?;
            Client::new(Transport::Tls(Box::new(stream)))
        }
        Security::Plaintext => {
            let mut client = Client::new(Transport::Plain(tcp));
            greeting(config, &mut client).await?;
            client
        }
    };
    login(config, client).await
}

fn keepalive(tcp: &TcpStream) {
    let params = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
    #[cfg(any(
        target_os = "linux",
        target_os = "macos",
        target_os = "windows",
        target_os = "freebsd"
    ))]
    let params = params.with_interval(Duration::from_secs(15));
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&params) {
        tracing::debug!("cannot enable TCP keepalive: {e}");
    }
}

async fn handshake(
    config: &ImapConfig,
    tls: &Arc<ClientConfig>,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let host = &config.server.host;
    let name = ServerName::try_from(host.clone())
        .map_err(|e| ImapError::Config(format!("{host:?} is not a valid TLS server name: {e}")))?;
    within(
        config.connect_timeout,
        "TLS handshake",
        TlsConnector::from(tls.clone()).connect(name, tcp),
    )
    .await?
    .map_err(|source| ImapError::Tls {
        host: host.clone(),
        source,
    })
}

/// Reads the server greeting (RFC 3501 §7.1): `* OK` to go on, `* BYE` to give up.
/// `* PREAUTH` is refused: it would skip STARTTLS and our own login.
async fn greeting(config: &ImapConfig, client: &mut Client<Transport>) -> Result<(), ImapError> {
    let response = within(config.command_timeout, "greeting", client.read_response())
        .await?
        .map_err(|e| command_error("greeting", e.into()))?
        .ok_or_else(|| ImapError::Closed("the greeting".to_owned()))?;
    match response.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ImapError::Protocol(format!(
            "the server refused the connection: {}",
            outcome.information.as_deref().unwrap_or("BYE")
        ))),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(ImapError::Protocol(
            "the server sent PREAUTH; refusing a session without STARTTLS and login".to_owned(),
        )),
        other => Err(ImapError::Protocol(format!(
            "unexpected greeting {other:?}"
        ))),
    }
}

/// Asks for the capabilities (RFC 3501 §6.1.1) on a not-yet-authenticated connection.
async fn capabilities(
    config: &ImapConfig,
    client: &mut Client<Transport>,
) -> Result<Vec<String>, ImapError> {
    let (tx, rx) = async_channel::bounded(16);
    within(
        config.command_timeout,
        "CAPABILITY",
        client.run_command_and_check_ok("CAPABILITY", Some(tx)),
    )
    .await?
    .map_err(|e| command_error("CAPABILITY", e))?;
    let mut caps = Vec::new();
    while let Ok(response) = rx.try_recv() {
        if let async_imap::types::UnsolicitedResponse::Other(data) = response
            && let Response::Capabilities(list) = data.parsed()
        {
            caps.extend(list.iter().map(|c| match c {
                Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
                Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
                Capability::Atom(a) => a.to_ascii_uppercase(),
            }));
        }
    }
    Ok(caps)
}

/// `AUTHENTICATE PLAIN` (RFC 4616) response: no authorization identity.
struct Plain<'a> {
    user: &'a str,
    password: &'a str,
}

impl async_imap::Authenticator for Plain<'_> {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.user.len() + self.password.len() + 2);
        out.push(0);
        out.extend_from_slice(self.user.as_bytes());
        out.push(0);
        out.extend_from_slice(self.password.as_bytes());
        out
    }
}

async fn login(
    config: &ImapConfig,
    mut client: Client<Transport>,
) -> Result<ImapSession, ImapError> {
    let caps = capabilities(config, &mut client).await?;
    let user = config.server.user.as_str();
    let password = config.password.expose();
    let failed = |reason: String| ImapError::Login {
        host: config.server.host.clone(),
        user: user.to_owned(),
        reason,
    };
    let has = |c: &str| caps.iter().any(|x| x == c);
    let result = if has("AUTH=PLAIN") {
        within(
            config.command_timeout,
            "AUTHENTICATE PLAIN",
            client.authenticate("PLAIN", Plain { user, password }),
        )
        .await?
    } else if has("LOGINDISABLED") {
        return Err(failed(
            "the server disables LOGIN and does not offer AUTH=PLAIN".to_owned(),
        ));
    } else if !user.is_ascii() || !password.is_ascii() {
        return Err(failed(
            "the server lacks AUTH=PLAIN and LOGIN cannot carry non-ASCII credentials".to_owned(),
        ));
    } else {
        within(
            config.command_timeout,
            "LOGIN",
            client.login(user, password),
        )
        .await?
    };
    result.map_err(|(e, _client)| match e {
        async_imap::error::Error::No(reason) | async_imap::error::Error::Bad(reason) => {
            failed(reason)
        }
        other => command_error("login", other),
    })
}

/// Runs `fut` with a deadline.
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, ImapError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| ImapError::Timeout {
            what: what.to_owned(),
            after: limit,
        })
}

pub(crate) fn command_error(command: &str, source: async_imap::error::Error) -> ImapError {
    ImapError::Command {
        command: command.to_owned(),
        source,
    }
}
