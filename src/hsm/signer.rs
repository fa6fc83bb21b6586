//! ECDSA P-256 signing with a key that stays in the HSM, offered to rcgen (certificates)
//! and rustls (TLS handshakes). SoftHSM lacks CKM_ECDSA_SHA256, so the message is hashed
//! here and the HSM signs the digest with CKM_ECDSA; its raw r‖s becomes DER.

use std::fmt;

use cryptoki::object::ObjectHandle;
use sha2::{Digest, Sha256};

use super::{Hsm, HsmError};

/// A P-256 key pair in the HSM: the private key's handle and the uncompressed public point.
#[derive(Clone)]
pub(crate) struct EcKey {
    pub(super) private: ObjectHandle,
    point: Vec<u8>,
}

impl EcKey {
    /// `ec_point` is CKA_EC_POINT: a DER OCTET STRING around the point (raw also accepted).
    pub(super) fn new(private: ObjectHandle, ec_point: &[u8]) -> Result<EcKey, HsmError> {
        let point = match ec_point {
            [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
            raw if raw.len() == 65 => raw,
            _ => return Err(HsmError::BadEcPoint),
        };
        if point[0] != 0x04 {
            return Err(HsmError::BadEcPoint);
        }
        Ok(EcKey { private, point: point.to_vec() })
    }

    /// The uncompressed public point (0x04 ‖ X ‖ Y).
    pub(crate) fn public_point(&self) -> &[u8] {
        &self.point
    }
}

/// An HSM-held P-256 key usable as an rcgen or rustls signing key.
#[derive(Clone)]
pub(crate) struct EcSigner {
    hsm: Hsm,
    key: EcKey,
}

impl fmt::Debug for EcSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EcSigner(P-256 in HSM)")
    }
}

impl EcSigner {
    pub(crate) fn new(hsm: Hsm, key: EcKey) -> Self {
        EcSigner { hsm, key }
    }

    /// Signs `msg` with ECDSA-SHA256; returns a DER ECDSA-Sig-Value.
    pub(crate) fn sign_sha256(&self, msg: &[u8]) -> Result<Vec<u8>, HsmError> {
        let digest = Sha256::digest(msg);
        let raw = self.hsm.with_session(|s| self.hsm.sign_ecdsa_raw(s, &self.key, &digest))?;
        if raw.len() != 64 {
            return Err(HsmError::BadSignature);
        }
        Ok(crate::der::ecdsa_signature(&raw))
    }
}

impl rcgen::PublicKeyData for EcSigner {
    fn der_bytes(&self) -> &[u8] {
        self.key.public_point()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for EcSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // rcgen's error type has no variant for an external signer's failure.
        self.sign_sha256(msg).map_err(|e| {
            tracing::error!(error = %e, "HSM signing failed");
            rcgen::Error::RemoteKeyError
        })
    }
}

// TLS handshakes sign on the connection's task: one CKM_ECDSA in SoftHSM takes tens of
// microseconds, less than moving the call to the blocking pool would cost.
impl rustls::sign::SigningKey for EcSigner {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&rustls::SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(self.clone()) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

impl rustls::sign::Signer for EcSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.sign_sha256(message)
            .map_err(|e| rustls::Error::General(format!("HSM signing failed: {e}")))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        rustls::SignatureScheme::ECDSA_NISTP256_SHA256
    }
}
