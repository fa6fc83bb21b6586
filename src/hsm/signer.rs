//! ECDSA P-256 (SHA-256) and P-384 (SHA-384) signing with a key that stays in the HSM,
//! offered to rcgen (certificates) and rustls (TLS handshakes). SoftHSM lacks
//! CKM_ECDSA_SHA256, so the message is hashed here and the HSM signs the digest with
//! CKM_ECDSA; its raw r‖s becomes DER.

use std::fmt;

use sha2::{Digest, Sha256, Sha384};

use super::{Hsm, HsmError};

/// The curves of HSM-held signing keys, each signing with the hash of its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    /// Bytes of one coordinate (and of r and s).
    fn size(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    /// CKA_EC_PARAMS: the curve's OID, DER.
    pub(super) fn params(self) -> &'static [u8] {
        match self {
            Curve::P256 => crate::der::P256,
            Curve::P384 => crate::der::P384,
        }
    }

    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Curve::P256 => Sha256::digest(msg).to_vec(),
            Curve::P384 => Sha384::digest(msg).to_vec(),
        }
    }

    /// ecdsa-with-SHA256 or -SHA384 as a DER AlgorithmIdentifier (RFC 5758 §3.2).
    pub(crate) fn signature_algorithm(self) -> &'static [u8] {
        match self {
            Curve::P256 => {
                &[0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]
            }
            Curve::P384 => {
                &[0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03]
            }
        }
    }

    /// aws-lc's verifier for signatures by this curve's keys (DER ECDSA-Sig-Value).
    pub(crate) fn verifier(self) -> &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1,
        }
    }
}

/// An EC key pair in the HSM: its label (handles last one connection to the HSM) and the
/// uncompressed public point.
#[derive(Clone)]
pub(crate) struct EcKey {
    label: String,
    point: Vec<u8>,
    curve: Curve,
}

impl EcKey {
    /// `ec_point` is CKA_EC_POINT: a DER OCTET STRING around the point (raw also accepted).
    pub(super) fn new(label: &str, ec_point: &[u8]) -> Result<EcKey, HsmError> {
        let point = match ec_point {
            [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
            raw => raw,
        };
        let curve = match point.len() {
            65 => Curve::P256,
            97 => Curve::P384,
            _ => return Err(HsmError::BadEcPoint),
        };
        if point[0] != 0x04 {
            return Err(HsmError::BadEcPoint);
        }
        Ok(EcKey { label: label.to_owned(), point: point.to_vec(), curve })
    }

    /// The label of both halves on the token.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    /// The uncompressed public point (0x04 ‖ X ‖ Y).
    pub(crate) fn public_point(&self) -> &[u8] {
        &self.point
    }
}

/// An HSM-held EC key usable as an rcgen or rustls signing key.
#[derive(Clone)]
pub(crate) struct EcSigner {
    hsm: Hsm,
    key: EcKey,
}

impl fmt::Debug for EcSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcSigner({:?} in HSM)", self.key.curve)
    }
}

impl EcSigner {
    pub(crate) fn new(hsm: Hsm, key: EcKey) -> Self {
        EcSigner { hsm, key }
    }

    /// Signs `msg` with ECDSA and the curve's hash (SHA-256 for P-256, SHA-384 for
    /// P-384); returns a DER ECDSA-Sig-Value.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, HsmError> {
        let digest = self.key.curve.digest(msg);
        let raw = self.hsm.with_session(|s| self.hsm.sign_ecdsa_raw(s, &self.key, &digest))?;
        if raw.len() != 2 * self.key.curve.size() {
            return Err(HsmError::BadSignature);
        }
        Ok(crate::der::ecdsa_signature(&raw))
    }

    pub(crate) fn curve(&self) -> Curve {
        self.key.curve
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        match self.key.curve {
            Curve::P256 => rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
            Curve::P384 => rustls::SignatureScheme::ECDSA_NISTP384_SHA384,
        }
    }
}

impl rcgen::PublicKeyData for EcSigner {
    fn der_bytes(&self) -> &[u8] {
        self.key.public_point()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.key.curve {
            Curve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Curve::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

impl rcgen::SigningKey for EcSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // rcgen's error type has no variant for an external signer's failure.
        EcSigner::sign(self, msg).map_err(|e| {
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
            .contains(&EcSigner::scheme(self))
            .then(|| Box::new(self.clone()) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

impl rustls::sign::Signer for EcSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        EcSigner::sign(self, message)
            .map_err(|e| rustls::Error::General(format!("HSM signing failed: {e}")))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        EcSigner::scheme(self)
    }
}
