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
        Ok(der_signature(&raw[..32], &raw[32..]))
    }
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` from big-endian r and s (RFC 3279 §2.2.3).
fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, v: &[u8]) {
        let first = v.iter().position(|b| *b != 0).unwrap_or(v.len() - 1);
        let v = &v[first..];
        let pad = v[0] & 0x80 != 0;
        out.push(0x02);
        out.push((v.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::with_capacity(72);
    integer(&mut body, r);
    integer(&mut body, s);
    let mut out = vec![0x30, body.len() as u8];
    out.extend_from_slice(&body);
    out
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

#[cfg(test)]
mod tests {
    use super::der_signature;

    #[test]
    fn der_signature_is_minimal_and_positive() {
        let mut r = [0u8; 32];
        r[31] = 1;
        let s = [0x80u8; 32];
        let der = der_signature(&r, &s);
        assert_eq!(&der[..5], &[0x30, 3 + 35, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 33, 0x00]);
        assert_eq!(der.len(), 2 + 3 + 35);
    }
}
