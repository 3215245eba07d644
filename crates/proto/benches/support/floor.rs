//! The DKIM floor the DKIM and receiver benchmarks compare with (included by both with
//! `#[path]`): one SHA-256 pass over each message's bytes plus one RSA-2048 verification of
//! header-sized data, with aws-lc-rs and a key parsed once.

use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey};

/// What the floor verifies: about the size of a signed header block's hash input.
const DATA: &[u8] = b"header data of a typical size ........................................";

/// A public key and a valid signature over [`DATA`].
pub struct Floor {
    public: ParsedPublicKey,
    sig: Vec<u8>,
}

impl Floor {
    /// A fresh RSA-2048 key pair; the signature is made once.
    pub fn new() -> Floor {
        let rsa = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("key");
        let mut sig = vec![0; rsa.public_modulus_len()];
        rsa.sign(
            &signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            DATA,
            &mut sig,
        )
        .expect("sign");
        let public = ParsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            rsa.public_key().as_ref(),
        )
        .expect("public key");
        Floor { public, sig }
    }

    /// The floor's work for one message.
    pub fn message(&self, message: &[u8]) {
        std::hint::black_box(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            message,
        ));
        self.public.verify_sig(DATA, &self.sig).expect("verify");
    }
}
