//! TLS for the simulated Internet: the world's own certificate authority,
//! one certificate per mail host, and the rustls configurations that use
//! them.
//!
//! On the real Internet a server proves who it is with a certificate: its
//! name (and sometimes address), its public key, and a signature from a
//! certificate authority (CA) that the client already trusts (RFC 5280).
//! A world of mailflow is its own small Internet, so it has its own CA:
//! [`WorldCa`] makes one (rcgen), signs a certificate for every host with
//! the host's names and address as *subject alternative names* (the names
//! a client checks, RFC 6125), and builds
//!
//! - a rustls [`ServerConfig`] per host, for STARTTLS (RFC 2595 for IMAP
//!   and POP3, RFC 3207 for SMTP) and implicit TLS (RFC 8314: IMAPS 993,
//!   POP3S 995, submissions 465);
//! - a [`ClientConfig`] that trusts *only* the world's CA — never the
//!   machine's real roots — for the world's own devices and relays.
//!
//! With `--data DIR` the CA (certificate and key) is kept in `DIR/tls/`,
//! so a mail program told to trust `ca.pem` keeps working after a
//! restart. Host certificates are made fresh at every start (their
//! addresses come from the scenario); they stay valid because the CA does.
//!
//! For lessons a host can present a broken certificate on purpose
//! ([`CertFault`]): one for the wrong name, one that has expired, or one
//! signed by a CA nobody trusts. A careful client refuses each.
//!
//! Crypto: one backend, aws-lc-rs, for rcgen and rustls alike (rustls'
//! default provider, and the one the rest of the tree uses).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use time::OffsetDateTime;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

pub use crate::scenario::{CertFault, TlsPolicy};

/// The CA's name, as clients show it ("issued by").
pub const CA_NAME: &str = "mailflow world CA";
/// The CA of the "unknown CA" fault: an attacker's, trusted by nobody.
pub const IMPOSTOR_CA_NAME: &str = "Totally Trustworthy CA (not the world's)";
/// The name a "wrong name" certificate is made out to.
pub const WRONG_NAME: &str = "wrong-name.invalid";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    // Each cause is printed once (see `main`): a wrapped error is the
    // `source`, so the message does not repeat it.
    #[error("cannot make a certificate")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot set up TLS")]
    Rustls(#[from] rustls::Error),
    #[error("cannot use the CA in {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("without --data a world makes a new CA each time it starts; give the same --data DIR to `serve`/`demo` and to `ca`")]
    NoDataDir,
    #[error("the CA in {path} is unreadable ({why}); delete the folder to make a new one")]
    Corrupt { path: PathBuf, why: String },
}

/// The world's certificate authority.
pub struct WorldCa {
    /// The CA certificate, as clients load it (`-CAfile ca.pem`).
    pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    name: String,
    /// Where it is kept, if it is (`DIR/tls/ca.pem`).
    pub file: Option<PathBuf>,
}

/// A certificate and its key, ready to serve.
#[derive(Clone)]
pub struct HostCert {
    /// The certificate followed by the CA that signed it.
    pub chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    /// What it says, in words a student can compare with what a client shows.
    pub subject: String,
    pub issuer: String,
    /// The names (and address) it is valid for.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
    /// The certificate in PEM form.
    pub pem: String,
}

impl std::fmt::Debug for HostCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("HostCert").field("subject", &self.subject).field("issuer", &self.issuer).field("names", &self.names).finish()
    }
}

/// How long certificates live, counted from now.
const CA_DAYS: i64 = 3650;
const HOST_DAYS: i64 = 365;

impl WorldCa {
    /// A new CA, kept in memory only.
    pub fn generate() -> Result<WorldCa, TlsError> {
        Self::generate_named(CA_NAME)
    }

    fn generate_named(name: &str) -> Result<WorldCa, TlsError> {
        let key = KeyPair::generate()?;
        let params = ca_params(name);
        let cert = params.self_signed(&key)?;
        Ok(WorldCa { pem: cert.pem(), der: cert.der().clone(), issuer: Issuer::new(params, key), name: name.to_string(), file: None })
    }

    /// The world's CA: loaded from `DIR/tls/` if it is there, else made
    /// and saved there (the key readable by its owner only). Without a
    /// folder, a new CA in memory.
    pub fn load_or_create(data_dir: Option<&Path>) -> Result<WorldCa, TlsError> {
        let Some(dir) = data_dir else { return Self::generate() };
        let dir = dir.join("tls");
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| TlsError::Io { path, error }
        };
        if cert_path.exists() && key_path.exists() {
            let pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let corrupt = |why: String| TlsError::Corrupt { path: dir.clone(), why };
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| corrupt(e.to_string()))?;
            // The issuer is rebuilt from the same name and key, so what it
            // signs chains to the saved certificate.
            return Ok(WorldCa { pem, der, issuer: Issuer::new(ca_params(CA_NAME), key), name: CA_NAME.into(), file: Some(cert_path) });
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut ca = Self::generate()?;
        write_private(&key_path, &ca.issuer.key().serialize_pem()).map_err(io(&key_path))?;
        std::fs::write(&cert_path, &ca.pem).map_err(io(&cert_path))?;
        ca.file = Some(cert_path);
        Ok(ca)
    }

    /// The CA certificate in PEM form (what `mailflow ca` prints).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// Signs a certificate for a host: valid for `names` and `addresses`,
    /// named after the first name.
    pub fn issue(&self, names: &[String], addresses: &[IpAddr]) -> Result<HostCert, TlsError> {
        let now = OffsetDateTime::now_utc();
        self.issue_with(names, addresses, now - time::Duration::days(1), now + time::Duration::days(HOST_DAYS))
    }

    fn issue_with(&self, names: &[String], addresses: &[IpAddr], not_before: OffsetDateTime, not_after: OffsetDateTime) -> Result<HostCert, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let common_name = names.first().cloned().or_else(|| addresses.first().map(IpAddr::to_string)).unwrap_or_else(|| "mailflow host".into());
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name.clone());
        params.distinguished_name.push(DnType::OrganizationName, "mailflow world");
        for name in names {
            params.subject_alt_names.push(SanType::DnsName(name.clone().try_into()?));
        }
        params.subject_alt_names.extend(addresses.iter().map(|a| SanType::IpAddress(*a)));
        params.not_before = not_before;
        params.not_after = not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        let mut listed: Vec<String> = names.to_vec();
        listed.extend(addresses.iter().map(IpAddr::to_string));
        Ok(HostCert {
            chain: vec![cert.der().clone(), self.der.clone()],
            key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))),
            subject: format!("CN={common_name}, O=mailflow world"),
            issuer: format!("CN={}", self.issuer_name()),
            names: listed,
            not_after: not_after.unix_timestamp(),
            pem: cert.pem(),
        })
    }

    /// The CN this CA signs with (the world's, or the impostor's).
    fn issuer_name(&self) -> &str {
        &self.name
    }

    /// A certificate with something wrong, for lessons.
    pub fn faulty(&self, fault: CertFault, names: &[String], addresses: &[IpAddr]) -> Result<HostCert, TlsError> {
        let now = OffsetDateTime::now_utc();
        match fault {
            // Signed by our CA, but for another name: the client asked for
            // mx1.example.org and got wrong-name.invalid.
            CertFault::WrongName => self.issue_with(&[WRONG_NAME.to_string()], &[], now - time::Duration::days(1), now + time::Duration::days(HOST_DAYS)),
            // Right name, right CA, but it ran out a month ago.
            CertFault::Expired => self.issue_with(names, addresses, now - time::Duration::days(395), now - time::Duration::days(30)),
            // Right name, valid dates, but signed by a CA the client does
            // not know: what a man in the middle would present.
            CertFault::UnknownCa => WorldCa::generate_named(IMPOSTOR_CA_NAME)?.issue(names, addresses),
        }
    }

    /// A client configuration that trusts this CA and nothing else.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone())?;
        let config = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?.with_root_certificates(roots).with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// The crypto provider every config uses (aws-lc-rs; see the module docs).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl HostCert {
    /// A rustls server configuration presenting this certificate. TLS 1.3
    /// and 1.2 are both accepted (older mail programs still speak 1.2).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(Arc::new(config))
    }
}

/// CA parameters: the same name and settings every time, so an issuer
/// rebuilt from a saved key signs exactly as the original did.
fn ca_params(name: &str) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.distinguished_name.push(DnType::OrganizationName, "mailflow");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_DAYS);
    params
}

/// Writes a file only its owner can read (a private key).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// What `mailflow ca` prints: the CA certificate of the world kept in
/// `data_dir` (made there if it is not yet, so it can be handed out
/// before the world first starts). Without a folder there is nothing to
/// print: such a world makes a new CA every time it starts.
pub fn ca_pem(data_dir: Option<&Path>) -> Result<String, TlsError> {
    match data_dir {
        Some(dir) => Ok(WorldCa::load_or_create(Some(dir))?.pem),
        None => Err(TlsError::NoDataDir),
    }
}

/// How one host offers TLS, after the scenario's defaults are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPolicy {
    pub policy: TlsPolicy,
    /// May a client log in (IMAP LOGIN, POP3 USER/PASS, SMTP AUTH) before TLS?
    pub plaintext_login: bool,
}

/// A host's TLS, as its servers use it.
#[derive(Debug)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub cert: HostCert,
    pub policy: HostPolicy,
}

impl ServerTls {
    /// May a client log in on a connection that is not (yet) encrypted?
    pub fn plaintext_login(&self) -> bool {
        self.policy.plaintext_login
    }
}

/// How a listener speaks TLS.
#[derive(Clone, Debug, Default)]
pub enum Offer {
    /// No TLS at all: the host's policy is `off`.
    #[default]
    None,
    /// Plaintext first; the client may upgrade (STARTTLS, STLS).
    StartTls(Arc<ServerTls>),
    /// TLS from the first byte (IMAPS, POP3S, submissions).
    Implicit(Arc<ServerTls>),
}

impl Offer {
    pub fn server(&self) -> Option<&Arc<ServerTls>> {
        match self {
            Offer::None => None,
            Offer::StartTls(tls) | Offer::Implicit(tls) => Some(tls),
        }
    }

    /// May a client log in before TLS on this listener?
    pub fn plaintext_login(&self) -> bool {
        self.server().is_none_or(|tls| tls.plaintext_login())
    }
}

/// The TLS of a whole world: its CA and each host's certificate, and
/// what the world's own senders (devices, relaying hosts) trust.
pub struct WorldTls {
    pub ca: WorldCa,
    hosts: std::collections::HashMap<String, Arc<ServerTls>>,
    /// Trusts the world's CA and nothing else.
    client: Arc<ClientConfig>,
    /// Recipient domains whose mail must travel encrypted (lower case).
    require_tls: std::collections::HashSet<String>,
}

/// How an SMTP client uses TLS on one connection (RFC 3207, RFC 8314).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMode {
    /// STARTTLS when the server offers it, plaintext when it does not
    /// ("opportunistic TLS", RFC 7435): what mail servers do by default.
    Opportunistic,
    /// STARTTLS or nothing: a server that does not offer it gets no mail
    /// (the recipient domain asked for TLS, as MTA-STS or REQUIRETLS let it).
    Required,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// What an SMTP client needs to speak TLS to one server.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    /// The name the server's certificate must carry (RFC 6125): the MX
    /// host's name for a relay, the submission server's for a device.
    pub server_name: String,
    pub mode: ClientMode,
}

impl WorldTls {
    /// Makes (or loads) the CA and a certificate for each host whose
    /// policy is not `off`: `(name, addresses, policy, fault)`.
    pub fn build(data_dir: Option<&Path>, hosts: &[(String, Vec<IpAddr>, HostPolicy, Option<CertFault>)]) -> Result<WorldTls, TlsError> {
        let ca = WorldCa::load_or_create(data_dir)?;
        let mut map = std::collections::HashMap::new();
        for (name, address, policy, fault) in hosts {
            if policy.policy == TlsPolicy::Off {
                continue;
            }
            let names = [name.clone()];
            let cert = match fault {
                Some(fault) => ca.faulty(*fault, &names, address)?,
                None => ca.issue(&names, address)?,
            };
            let config = cert.server_config()?;
            map.insert(name.clone(), Arc::new(ServerTls { config, cert, policy: *policy }));
        }
        let client = ca.client_config()?;
        Ok(WorldTls { ca, hosts: map, client, require_tls: Default::default() })
    }

    /// Mail to these domains must travel encrypted, with a certificate the
    /// sender can verify: senders never fall back to plaintext for them.
    pub fn requiring_tls_for<'a>(mut self, domains: impl IntoIterator<Item = &'a str>) -> Self {
        self.require_tls = domains.into_iter().map(str::to_ascii_lowercase).collect();
        self
    }

    /// Does mail to `domain` have to travel encrypted?
    pub fn requires_tls(&self, domain: &str) -> bool {
        self.require_tls.contains(&domain.to_ascii_lowercase())
    }

    /// The client configuration of the world's own senders: trusts the
    /// world's CA, and only it.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// What a sender needs to reach `server_name` with TLS in `mode`.
    pub fn client(&self, server_name: &str, mode: ClientMode) -> ClientTls {
        ClientTls { config: self.client.clone(), server_name: server_name.to_string(), mode }
    }

    /// How `host` offers TLS on a listener (`implicit`: IMAPS, POP3S, 465).
    pub fn offer(&self, host: &str, implicit: bool) -> Offer {
        match (self.hosts.get(host), implicit) {
            (None, _) => Offer::None,
            (Some(tls), false) => Offer::StartTls(tls.clone()),
            (Some(tls), true) => Offer::Implicit(tls.clone()),
        }
    }

    pub fn host(&self, host: &str) -> Option<&Arc<ServerTls>> {
        self.hosts.get(host)
    }
}

/// How long a TLS handshake may take (real time).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// Handshakes `cert` against a client trusting `ca`, asking for `name`.
    async fn handshake(ca: &WorldCa, cert: &HostCert, name: &str) -> Result<(), String> {
        let (client, server) = tokio::io::duplex(1 << 16);
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let connector = TlsConnector::from(ca.client_config().unwrap());
        let name = ServerName::try_from(name.to_string()).unwrap();
        let server = tokio::spawn(async move {
            let mut tls = acceptor.accept(server).await.map_err(|e| e.to_string())?;
            tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())
        });
        let mut tls = connector.connect(name, client).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"hello");
        server.await.unwrap()
    }

    #[tokio::test]
    async fn a_host_certificate_is_trusted_for_its_name_and_address() {
        let ca = WorldCa::generate().unwrap();
        let cert = ca.issue(&["mx1.example.org".into()], &["127.77.0.3".parse().unwrap()]).unwrap();
        assert_eq!(cert.subject, "CN=mx1.example.org, O=mailflow world");
        handshake(&ca, &cert, "mx1.example.org").await.unwrap();
        handshake(&ca, &cert, "127.77.0.3").await.unwrap();
        let err = handshake(&ca, &cert, "mx2.example.org").await.unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
    }

    #[tokio::test]
    async fn each_fault_is_refused_for_its_own_reason() {
        let ca = WorldCa::generate().unwrap();
        let names = ["mx1.example.org".to_string()];
        let cases = [(CertFault::WrongName, "not valid for name"), (CertFault::Expired, "expired"), (CertFault::UnknownCa, "UnknownIssuer")];
        for (fault, why) in cases {
            let cert = ca.faulty(fault, &names, &[]).unwrap();
            let err = handshake(&ca, &cert, "mx1.example.org").await.unwrap_err();
            assert!(err.contains(why), "{fault:?}: {err}");
        }
    }

    #[test]
    fn the_ca_is_kept_in_the_data_folder() {
        let dir = std::env::temp_dir().join(format!("mailflow-ca-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = WorldCa::load_or_create(Some(&dir)).unwrap();
        let again = WorldCa::load_or_create(Some(&dir)).unwrap();
        assert_eq!(first.pem(), again.pem());
        assert!(first.pem().starts_with("-----BEGIN CERTIFICATE-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("tls/ca-key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is private");
        }
        assert_eq!(ca_pem(Some(&dir)).unwrap(), first.pem());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_reloaded_ca_signs_certificates_old_clients_trust() {
        let dir = std::env::temp_dir().join(format!("mailflow-ca-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = WorldCa::load_or_create(Some(&dir)).unwrap();
        let again = WorldCa::load_or_create(Some(&dir)).unwrap();
        let cert = again.issue(&["imap.example.org".into()], &[]).unwrap();
        // A client that trusted the CA before the restart.
        handshake(&first, &cert, "imap.example.org").await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
