//! DKIM keys: one per sending domain, made when the world starts.
//!
//! DKIM (RFC 6376) proves that a domain's mail server saw a message: the
//! server signs some headers and a hash of the body with a private key that
//! never leaves it, and publishes the public key in DNS as a TXT record at
//! `<selector>._domainkey.<domain>` (§3.6.2). Any receiver can fetch that
//! key and check the signature. The selector lets a domain have several
//! keys at once (to change keys without a gap); mailflow uses one,
//! [`SELECTOR`].
//!
//! Two kinds of key, chosen per domain in the scenario (`"dkim"`):
//! - **Ed25519** (RFC 8463): a 32-byte public key, fast to make and to use;
//! - **RSA-2048** (RFC 6376 §3.3, RFC 8301): what most of the Internet still
//!   signs with; its public key is too long for one TXT string (255 bytes,
//!   RFC 1035 §3.3.14), so the zone splits it and readers join it again.
//!
//! Keys are made fresh for each world. With `--data DIR` they are kept in
//! `DIR/dkim/<domain>.json` (readable by the owner only) and reused, so the
//! DNS record a student copied yesterday still matches today. The private
//! key never reaches the trace, the page or a log (`Debug` hides it).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use indexmap::IndexMap;
use mail_auth::common::crypto::{DkimKey as SigningKeyPair, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

use crate::dns::Zones;
use crate::dns::zone::ZoneError;
use crate::scenario::{DkimKey, RecordKind, RecordSpec, Scenario};

/// The selector of every key mailflow makes (`s=` in the signature, the
/// first label of the key's DNS name).
pub const SELECTOR: &str = "mailflow";

/// The headers a signature covers (RFC 6376 §5.4.1's list of the ones that
/// matter to a reader). A header named here but missing from a message is
/// skipped by the signer.
const SIGNED_HEADERS: [&str; 10] =
    ["From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"];

/// Why a key could not be made, loaded, kept or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot make a {algorithm} DKIM key for {domain}: {reason}")]
    Make { domain: String, algorithm: &'static str, reason: String },
    #[error("cannot read the DKIM key file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write the DKIM key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot DKIM-sign for {domain}: {reason}")]
    Sign { domain: String, reason: String },
    #[error("no DKIM key for {0}")]
    NoKey(String),
}

/// The algorithm of a key that exists (a scenario may also say "none").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Ed25519,
    Rsa2048,
}

impl Algorithm {
    /// `k=` in the DNS record.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa2048 => "rsa",
        }
    }

    /// `a=` in the signature.
    pub fn signature_algorithm(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519-sha256",
            Algorithm::Rsa2048 => "rsa-sha256",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "Ed25519",
            Algorithm::Rsa2048 => "RSA-2048",
        }
    }
}

/// One domain's key pair.
pub struct DomainKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: Algorithm,
    /// PKCS#8 DER; secret.
    private_pkcs8: Vec<u8>,
    /// What goes after `p=`: the raw 32 bytes (Ed25519, RFC 8463 §4.2) or
    /// the SubjectPublicKeyInfo DER (RSA, RFC 6376 §3.6.1).
    public: Vec<u8>,
    /// Built once: the signer owns the parsed key (parsing an RSA key for
    /// every message would cost more than signing it).
    signer: DkimSigner<SigningKeyPair, Done>,
}

impl fmt::Debug for DomainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainKey").field("domain", &self.domain).field("selector", &self.selector).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// The file a kept key lives in.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    domain: String,
    selector: String,
    algorithm: Algorithm,
    /// Base64 of the PKCS#8 DER private key.
    private_key: String,
}

impl DomainKey {
    /// Makes a new key pair.
    pub fn generate(domain: &str, algorithm: Algorithm) -> Result<DomainKey, KeyError> {
        let fail = |reason: String| KeyError::Make { domain: domain.to_string(), algorithm: algorithm.label(), reason };
        let pkcs8 = match algorithm {
            Algorithm::Ed25519 => Ed25519Key::generate_pkcs8().map_err(|e| fail(e.to_string()))?,
            Algorithm::Rsa2048 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|e| fail(e.to_string()))?;
                pair.as_der().map_err(|e| fail(e.to_string()))?.as_ref().to_vec()
            }
        };
        Self::from_pkcs8(domain, SELECTOR, algorithm, pkcs8).map_err(fail)
    }

    fn from_pkcs8(domain: &str, selector: &str, algorithm: Algorithm, pkcs8: Vec<u8>) -> Result<DomainKey, String> {
        let (key, public): (SigningKeyPair, Vec<u8>) = match algorithm {
            Algorithm::Ed25519 => {
                let key = Ed25519Key::from_pkcs8_der(&pkcs8).map_err(|e| e.to_string())?;
                let public = key.public_key();
                (key.into(), public)
            }
            Algorithm::Rsa2048 => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
                let public = pair.public_key().as_der().map_err(|e| e.to_string())?.as_ref().to_vec();
                let key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_slice()))).map_err(|e| e.to_string())?;
                (key.into(), public)
            }
        };
        let signer = DkimSigner::from_key(key).domain(domain).selector(selector).headers(SIGNED_HEADERS);
        Ok(DomainKey { domain: domain.to_string(), selector: selector.to_string(), algorithm, private_pkcs8: pkcs8, public, signer })
    }

    /// The key kept in `path`, if it is there, readable, for `domain` and of
    /// `algorithm` (a scenario that switches algorithm gets a new key).
    fn load(path: &Path, domain: &str, algorithm: Algorithm) -> Result<Option<DomainKey>, KeyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(KeyError::Read { path: path.to_path_buf(), reason: err.to_string() }),
        };
        let read = |reason: String| KeyError::Read { path: path.to_path_buf(), reason };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| read(e.to_string()))?;
        if file.domain != domain || file.algorithm != algorithm {
            return Ok(None);
        }
        let pkcs8 = BASE64.decode(file.private_key.trim()).map_err(|e| read(e.to_string()))?;
        DomainKey::from_pkcs8(domain, &file.selector, algorithm, pkcs8).map(Some).map_err(read)
    }

    fn save(&self, path: &Path) -> Result<(), KeyError> {
        let write = |source| KeyError::Write { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        let file = KeyFile {
            domain: self.domain.clone(),
            selector: self.selector.clone(),
            algorithm: self.algorithm,
            private_key: BASE64.encode(&self.private_pkcs8),
        };
        let text = serde_json::to_string_pretty(&file).expect("a key file is plain JSON");
        // Written to a temporary name and renamed, so a crash never leaves
        // half a key; created readable by the owner only.
        let tmp = path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&tmp).map_err(write)?;
        std::io::Write::write_all(&mut out, text.as_bytes()).map_err(write)?;
        drop(out);
        std::fs::rename(&tmp, path).map_err(write)
    }

    /// Where the public key is published: `<selector>._domainkey.<domain>`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record's text (RFC 6376 §3.6.1), e.g.
    /// `v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=`.
    pub fn dns_text(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.algorithm.key_type(), BASE64.encode(&self.public))
    }

    /// The record as the scenario would write it, for [`Zones::add`].
    pub fn record(&self) -> RecordSpec {
        RecordSpec {
            kind: RecordKind::TXT,
            name: Some(format!("{}._domainkey", self.selector)),
            preference: None,
            exchange: None,
            address: None,
            text: Some(self.dns_text()),
            target: None,
            ttl: None,
        }
    }

    /// The `DKIM-Signature:` header line(s) for `message` (CRLF-terminated,
    /// folded), relaxed/relaxed canonicalization (RFC 6376 §3.4.2, §3.4.4),
    /// which survives the header re-folding relays do.
    pub fn signature_header(&self, message: &[u8]) -> Result<String, KeyError> {
        let fail = |reason: String| KeyError::Sign { domain: self.domain.clone(), reason };
        self.signer.sign(message).map(|s| s.to_header()).map_err(|e| fail(e.to_string()))
    }

    /// `message` with a `DKIM-Signature:` header in front (RFC 6376 §5.6).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let header = self.signature_header(message)?;
        let mut signed = Vec::with_capacity(header.len() + message.len());
        signed.extend_from_slice(header.as_bytes());
        signed.extend_from_slice(message);
        Ok(signed)
    }
}

/// The keys of one world, by domain.
#[derive(Debug, Default, Clone)]
pub struct DomainKeys {
    keys: IndexMap<String, Arc<DomainKey>>,
}

/// The key kind `domain` signs with under `scenario`, if it signs: what
/// the domain's `dkim` says, or Ed25519 when a host keeps its mailboxes.
pub fn key_kind(scenario: &Scenario, domain: &str) -> Option<Algorithm> {
    let configured = scenario.domains.get(domain).and_then(|d| d.dkim);
    match configured {
        Some(DkimKey::Ed25519) => Some(Algorithm::Ed25519),
        Some(DkimKey::Rsa2048) => Some(Algorithm::Rsa2048),
        Some(DkimKey::None) => None,
        None => scenario.hosts.values().any(|h| h.domains.iter().any(|d| d == domain)).then_some(Algorithm::Ed25519),
    }
}

impl DomainKeys {
    /// Makes (or, with `data_dir`, loads and keeps) a key for every domain
    /// of `scenario` that signs (see [`key_kind`]).
    pub fn for_scenario(scenario: &Scenario, data_dir: Option<&Path>) -> Result<DomainKeys, KeyError> {
        let mut keys = DomainKeys::default();
        for domain in scenario.domains.keys() {
            let Some(algorithm) = key_kind(scenario, domain) else { continue };
            let key = match data_dir {
                Some(dir) => {
                    let path = dir.join("dkim").join(format!("{domain}.json"));
                    match DomainKey::load(&path, domain, algorithm)? {
                        Some(key) => key,
                        None => {
                            let key = DomainKey::generate(domain, algorithm)?;
                            key.save(&path)?;
                            key
                        }
                    }
                }
                None => DomainKey::generate(domain, algorithm)?,
            };
            keys.insert(key);
        }
        Ok(keys)
    }

    pub fn insert(&mut self, key: DomainKey) {
        self.keys.insert(key.domain.clone(), Arc::new(key));
    }

    pub fn get(&self, domain: &str) -> Option<&Arc<DomainKey>> {
        self.keys.get(&domain.to_ascii_lowercase())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<DomainKey>> {
        self.keys.values()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `message` signed by `domain`'s key.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.get(domain).ok_or_else(|| KeyError::NoKey(domain.to_string()))?.sign(message)
    }

    /// The TXT record(s) to publish for `domain` (empty when it does not
    /// sign). Append them to a `dns` step's records before
    /// [`Zones::replace`], or the key disappears from DNS.
    pub fn records_for(&self, domain: &str) -> Vec<RecordSpec> {
        self.get(domain).map(|key| vec![key.record()]).unwrap_or_default()
    }

    /// Every key's (name, text), for the banner and the page.
    pub fn published(&self) -> Vec<(String, String)> {
        self.keys.values().map(|k| (k.dns_name(), k.dns_text())).collect()
    }

    /// Publishes every public key in `zones`, except where the scenario
    /// already publishes a TXT record of its own at that name (a lesson may
    /// want a wrong or revoked key there).
    pub fn publish(&self, zones: &Zones, scenario: &Scenario) -> Result<(), ZoneError> {
        for key in self.keys.values() {
            let own = scenario.domains.get(&key.domain).is_some_and(|zone| {
                zone.records.iter().any(|r| {
                    r.kind == RecordKind::TXT && crate::scenario::validate::owner_name(&key.domain, r.name.as_deref()).eq_ignore_ascii_case(&key.dns_name())
                })
            });
            if !own {
                zones.add(&key.domain, &[key.record()])?;
            }
        }
        Ok(())
    }
}
