//! Keys: published key records and their public keys (§3.6.1), a cache of parsed keys, and
//! private keys for signing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey, RsaParameters};
use base64::Engine;

use super::{Algorithm, HashAlgorithm, KeyType, Problem};

/// A key record (§3.6.1), parsed by [`parse_key_record`](super::parse_key_record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// `k=` (default `rsa`).
    pub key_type: KeyType,
    /// `h=`: the hash algorithms the key may be used with; `None` means any.
    pub hashes: Option<Vec<HashAlgorithm>>,
    /// Whether `s=` allows email (absent, `*` or `email`).
    pub for_email: bool,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
    /// `t=s`: the `i=` domain must equal `d=`.
    pub strict: bool,
    /// `p=`, decoded: SubjectPublicKeyInfo or bare RSAPublicKey for RSA, 32 raw bytes for
    /// Ed25519. Empty when the key is revoked.
    pub public_key: Vec<u8>,
}

impl KeyRecord {
    /// Whether `p=` is empty: the key has been revoked.
    pub fn is_revoked(&self) -> bool {
        self.public_key.is_empty()
    }
}

/// A key record with its parsed public key (`None` when revoked), or why it is unusable.
pub(crate) type ParsedKey = Result<(KeyRecord, Option<PublicKey>), Problem>;

/// A public key ready for verification: parsed once, usable for many signatures.
#[derive(Clone)]
pub struct PublicKey {
    inner: PublicKeyInner,
}

#[derive(Clone)]
enum PublicKeyInner {
    Rsa {
        sha256: Option<Arc<ParsedPublicKey>>,
        /// The PKCS#1 form, for the rarely used SHA-1 verification.
        pkcs1: Arc<[u8]>,
        bits: usize,
    },
    Ed25519(Arc<ParsedPublicKey>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            PublicKeyInner::Rsa { bits, .. } => write!(f, "PublicKey(rsa, {bits} bits)"),
            PublicKeyInner::Ed25519(_) => f.write_str("PublicKey(ed25519)"),
        }
    }
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), which some publishers put
/// in `p=` instead of the raw 32 bytes of RFC 8463 §4.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl PublicKey {
    /// Parses the `p=` bytes of a key of type `key_type`.
    pub fn parse(key_type: KeyType, der: &[u8]) -> Result<PublicKey, Problem> {
        match key_type {
            KeyType::Rsa => {
                // Accepts SubjectPublicKeyInfo and bare RSAPublicKey.
                let pk = aws_lc_rs::rsa::PublicKey::from_der(der)
                    .map_err(|e| Problem::BadPublicKey(format!("not an RSA public key ({e})")))?;
                let pkcs1: Arc<[u8]> = Arc::from(pk.as_ref());
                let bits = RsaParameters::public_modulus_len(&pkcs1)
                    .map_err(|_| Problem::BadPublicKey("unreadable RSA modulus".into()))?
                    as usize;
                // Keys outside 1024..=8192 bits cannot be used by aws-lc; the verifier
                // reports small ones as too small from `bits`.
                let sha256 = match ParsedPublicKey::new(
                    &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                    &*pkcs1,
                ) {
                    Ok(k) => Some(Arc::new(k)),
                    Err(_) if bits < 1024 => None,
                    Err(e) => return Err(Problem::BadPublicKey(format!("{e} ({bits} bits)"))),
                };
                Ok(PublicKey {
                    inner: PublicKeyInner::Rsa {
                        sha256,
                        pkcs1,
                        bits,
                    },
                })
            }
            KeyType::Ed25519 => {
                let raw = match der.len() {
                    32 => der,
                    44 if der.starts_with(&ED25519_SPKI_PREFIX) => {
                        der.get(12..).unwrap_or_default()
                    }
                    n => {
                        return Err(Problem::BadPublicKey(format!(
                            "an Ed25519 key is 32 bytes, not {n}"
                        )));
                    }
                };
                let k = ParsedPublicKey::new(&signature::ED25519, raw)
                    .map_err(|e| Problem::BadPublicKey(e.to_string()))?;
                Ok(PublicKey {
                    inner: PublicKeyInner::Ed25519(Arc::new(k)),
                })
            }
        }
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        match self.inner {
            PublicKeyInner::Rsa { .. } => KeyType::Rsa,
            PublicKeyInner::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// The RSA modulus size in bits (`None` for Ed25519).
    pub fn rsa_bits(&self) -> Option<usize> {
        match self.inner {
            PublicKeyInner::Rsa { bits, .. } => Some(bits),
            PublicKeyInner::Ed25519(_) => None,
        }
    }

    /// Checks `signature` over the canonicalised header data `data` (§3.7): for RSA the
    /// data is hashed with the algorithm's hash; for Ed25519 the SHA-256 of the data is
    /// signed (RFC 8463 §3).
    pub fn verify(&self, algorithm: Algorithm, data: &[u8], sig: &[u8]) -> bool {
        match (&self.inner, algorithm) {
            (PublicKeyInner::Rsa { sha256, .. }, Algorithm::RsaSha256) => sha256
                .as_ref()
                .is_some_and(|k| k.verify_sig(data, sig).is_ok()),
            (PublicKeyInner::Rsa { pkcs1, .. }, Algorithm::RsaSha1) => {
                signature::UnparsedPublicKey::new(
                    &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                    &**pkcs1,
                )
                .verify(data, sig)
                .is_ok()
            }
            (PublicKeyInner::Ed25519(k), Algorithm::Ed25519Sha256) => {
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
                k.verify_sig(digest.as_ref(), sig).is_ok()
            }
            _ => false,
        }
    }
}

/// A cache of parsed public keys, keyed by the key record bytes, shared between
/// verifications. Parsing an RSA key costs about as much as verifying a signature with it,
/// so a busy verifier keeps them. Bounded: it is emptied when it reaches its capacity.
#[derive(Debug)]
pub struct KeyCache {
    map: Mutex<HashMap<Vec<u8>, Arc<ParsedKey>>>,
    capacity: usize,
}

impl KeyCache {
    /// A cache holding at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        KeyCache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The parsed record for `txt`, from the cache or freshly parsed.
    pub(crate) fn get_or_parse(&self, txt: &[u8]) -> Arc<ParsedKey> {
        if let Ok(map) = self.map.lock()
            && let Some(hit) = map.get(txt)
        {
            return hit.clone();
        }
        let parsed = Arc::new(parse_record_and_key(txt));
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(txt.to_vec(), parsed.clone());
        }
        parsed
    }
}

impl Default for KeyCache {
    /// A cache of 10 000 records.
    fn default() -> Self {
        KeyCache::new(10_000)
    }
}

/// Parses a key record and, unless it is revoked, its public key.
pub(crate) fn parse_record_and_key(txt: &[u8]) -> ParsedKey {
    let record = super::parse_key_record(txt)?;
    if record.is_revoked() {
        return Ok((record, None));
    }
    let key = PublicKey::parse(record.key_type, &record.public_key)?;
    Ok((record, Some(key)))
}

/// A private key for signing.
pub struct SigningKey {
    inner: SigningKeyInner,
}

enum SigningKeyInner {
    Rsa(signature::RsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            SigningKeyInner::Rsa(k) => {
                write!(f, "SigningKey(rsa, {} bits)", k.public_modulus_len() * 8)
            }
            SigningKeyInner::Ed25519(_) => f.write_str("SigningKey(ed25519)"),
        }
    }
}

/// What can go wrong with a private key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM or DER text is not a key this program can use.
    Unreadable(String),
    /// Key generation failed.
    Generation,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Unreadable(why) => write!(f, "unreadable private key: {why}"),
            KeyError::Generation => f.write_str("key generation failed"),
        }
    }
}

impl std::error::Error for KeyError {}

impl SigningKey {
    /// Generates an RSA key of 2048, 3072 or 4096 bits.
    pub fn generate_rsa(bits: usize) -> Result<SigningKey, KeyError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(KeyError::Generation),
        };
        let k = signature::RsaKeyPair::generate(size).map_err(|_| KeyError::Generation)?;
        Ok(SigningKey {
            inner: SigningKeyInner::Rsa(k),
        })
    }

    /// Generates an Ed25519 key.
    pub fn generate_ed25519() -> Result<SigningKey, KeyError> {
        let k = signature::Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?;
        Ok(SigningKey {
            inner: SigningKeyInner::Ed25519(k),
        })
    }

    /// An Ed25519 key from its 32-byte seed (RFC 8032 §5.1.5).
    pub fn ed25519_from_seed(seed: &[u8]) -> Result<SigningKey, KeyError> {
        let k = signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| KeyError::Unreadable(e.to_string()))?;
        Ok(SigningKey {
            inner: SigningKeyInner::Ed25519(k),
        })
    }

    /// Reads a key from PEM (`PRIVATE KEY`: PKCS#8 RSA or Ed25519; `RSA PRIVATE KEY`:
    /// PKCS#1), or from the base64 of a 32-byte Ed25519 seed (the form dkimpy and RFC 8463
    /// use). RSA keys must have 2048 to 8192 bits.
    pub fn from_pem(text: &[u8]) -> Result<SigningKey, KeyError> {
        let s = String::from_utf8_lossy(text);
        let mut label = None;
        let mut b64 = String::new();
        let mut inside = false;
        for line in s.lines() {
            let line = line.trim();
            if let Some(l) = line.strip_prefix("-----BEGIN ") {
                label = Some(l.trim_end_matches('-').to_string());
                inside = true;
            } else if line.starts_with("-----END ") {
                break;
            } else if inside && !line.contains(':') {
                b64.push_str(line);
            }
        }
        let engine = &base64::engine::general_purpose::STANDARD;
        match label.as_deref() {
            None => {
                let raw: String = s.split_whitespace().collect();
                let seed = engine.decode(raw).map_err(|e| {
                    KeyError::Unreadable(format!("no PEM block, and not base64: {e}"))
                })?;
                if seed.len() != 32 {
                    return Err(KeyError::Unreadable(
                        "no PEM block, and not a 32-byte Ed25519 seed".into(),
                    ));
                }
                SigningKey::ed25519_from_seed(&seed)
            }
            Some(label) => {
                let der = engine
                    .decode(&b64)
                    .map_err(|e| KeyError::Unreadable(format!("bad base64 in PEM: {e}")))?;
                SigningKey::from_der(label, &der)
            }
        }
    }

    fn from_der(label: &str, der: &[u8]) -> Result<SigningKey, KeyError> {
        let rsa_err = |e: aws_lc_rs::error::KeyRejected| {
            KeyError::Unreadable(format!(
                "RSA key rejected: {e} (2048 to 8192 bits are supported)"
            ))
        };
        match label {
            "RSA PRIVATE KEY" => Ok(SigningKey {
                inner: SigningKeyInner::Rsa(signature::RsaKeyPair::from_der(der).map_err(rsa_err)?),
            }),
            "PRIVATE KEY" => {
                if let Ok(k) = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                    return Ok(SigningKey {
                        inner: SigningKeyInner::Ed25519(k),
                    });
                }
                Ok(SigningKey {
                    inner: SigningKeyInner::Rsa(
                        signature::RsaKeyPair::from_pkcs8(der).map_err(rsa_err)?,
                    ),
                })
            }
            other => Err(KeyError::Unreadable(format!(
                "unsupported PEM block {other:?}"
            ))),
        }
    }

    /// The signing algorithm this key makes (rsa-sha256 or ed25519-sha256).
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            SigningKeyInner::Rsa(_) => Algorithm::RsaSha256,
            SigningKeyInner::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        let der: Vec<u8> = match &self.inner {
            SigningKeyInner::Rsa(k) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(k)
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec(),
            SigningKeyInner::Ed25519(k) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(k)
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec(),
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        Ok(out)
    }

    /// The key record to publish (§3.6.1): `v=DKIM1; k=rsa; p=...` with the public key as
    /// SubjectPublicKeyInfo for RSA and as the raw 32 bytes for Ed25519 (RFC 8463 §4).
    pub fn dns_record(&self) -> Result<String, KeyError> {
        let engine = &base64::engine::general_purpose::STANDARD;
        Ok(match &self.inner {
            SigningKeyInner::Rsa(k) => {
                let spki = k.public_key().as_der().map_err(|_| KeyError::Generation)?;
                format!("v=DKIM1; k=rsa; p={}", engine.encode(spki.as_ref()))
            }
            SigningKeyInner::Ed25519(k) => {
                format!(
                    "v=DKIM1; k=ed25519; p={}",
                    engine.encode(k.public_key().as_ref())
                )
            }
        })
    }
}

impl super::DkimSigner for SigningKey {
    fn algorithm(&self) -> Algorithm {
        SigningKey::algorithm(self)
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, super::SignError> {
        match &self.inner {
            SigningKeyInner::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    data,
                    &mut sig,
                )
                .map_err(|_| super::SignError::Crypto)?;
                Ok(sig)
            }
            SigningKeyInner::Ed25519(k) => {
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
                Ok(k.sign(digest.as_ref()).as_ref().to_vec())
            }
        }
    }
}
