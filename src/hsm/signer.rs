//! Signing with the service's own keys, which stay in the HSM (CA, TLS, audit): ECDSA
//! P-256 (SHA-256) and P-384 (SHA-384), or RSA PKCS#1 v1.5 with SHA-256, offered to rcgen
//! (certificates) and rustls (TLS handshakes). SoftHSM lacks CKM_ECDSA_SHA256 and
//! CKM_SHA256_RSA_PKCS for these, so the message is hashed here and the HSM signs the
//! digest (CKM_ECDSA, whose raw r‖s becomes DER) or its DigestInfo (CKM_RSA_PKCS).

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

/// The kinds of key the service keeps for itself: an EC curve, or RSA of a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigningKeyType {
    Ec(Curve),
    Rsa { bits: u32 },
}

/// sha256WithRSAEncryption, as a DER AlgorithmIdentifier (RFC 4055 §5).
const SHA256_WITH_RSA: &[u8] =
    &[0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B, 0x05, 0x00];

impl SigningKeyType {
    /// The signature algorithm as a DER AlgorithmIdentifier.
    pub(crate) fn signature_algorithm(self) -> &'static [u8] {
        match self {
            SigningKeyType::Ec(c) => c.signature_algorithm(),
            SigningKeyType::Rsa { .. } => SHA256_WITH_RSA,
        }
    }

    /// aws-lc's verifier for this key's signatures.
    pub(crate) fn verifier(self) -> &'static dyn aws_lc_rs::signature::VerificationAlgorithm {
        match self {
            SigningKeyType::Ec(c) => c.verifier(),
            SigningKeyType::Rsa { .. } => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }

    /// What the HSM signs for `msg`: the digest (ECDSA) or its DigestInfo (RSA PKCS#1 v1.5).
    fn to_be_signed(self, msg: &[u8]) -> Vec<u8> {
        match self {
            SigningKeyType::Ec(c) => c.digest(msg),
            SigningKeyType::Rsa { .. } => {
                [super::Hash::Sha256.digest_info_prefix(), &Sha256::digest(msg)[..]].concat()
            }
        }
    }
}

/// A key pair of the service in the HSM: its label (handles last one connection to the
/// HSM), its public key as a SubjectPublicKeyInfo's bits (the uncompressed EC point, or
/// PKCS#1 RSAPublicKey), and its type.
#[derive(Clone)]
pub(crate) struct HsmKey {
    label: String,
    public: Vec<u8>,
    kind: SigningKeyType,
}

impl HsmKey {
    /// `ec_point` is CKA_EC_POINT: a DER OCTET STRING around the point (raw also accepted).
    pub(super) fn ec(label: &str, ec_point: &[u8]) -> Result<HsmKey, HsmError> {
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
        Ok(HsmKey {
            label: label.to_owned(),
            public: point.to_vec(),
            kind: SigningKeyType::Ec(curve),
        })
    }

    /// An RSA key from its modulus and public exponent (big-endian).
    pub(super) fn rsa(label: &str, modulus: &[u8], exponent: &[u8]) -> HsmKey {
        let significant = modulus.iter().skip_while(|b| **b == 0).count();
        let bits = u32::try_from(significant * 8).unwrap_or(0);
        HsmKey {
            label: label.to_owned(),
            public: crate::der::rsa_public_key(modulus, exponent),
            kind: SigningKeyType::Rsa { bits },
        }
    }

    /// The label of both halves on the token.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    pub(crate) fn kind(&self) -> SigningKeyType {
        self.kind
    }

    /// The public key as a SubjectPublicKeyInfo carries it in its bit string.
    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public
    }
}

/// An HSM-held key of the service usable as an rcgen or rustls signing key.
#[derive(Clone)]
pub(crate) struct HsmSigner {
    hsm: Hsm,
    key: HsmKey,
}

impl fmt::Debug for HsmSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HsmSigner({:?} in HSM)", self.key.kind)
    }
}

impl HsmSigner {
    pub(crate) fn new(hsm: Hsm, key: HsmKey) -> Self {
        HsmSigner { hsm, key }
    }

    /// Signs `msg`: ECDSA with the curve's hash (a DER ECDSA-Sig-Value), or RSA PKCS#1 v1.5
    /// with SHA-256.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, HsmError> {
        let input = self.key.kind.to_be_signed(msg);
        let raw = self.hsm.with_session(|s| self.hsm.sign_own(s, &self.key, &input))?;
        match self.key.kind {
            SigningKeyType::Ec(curve) if raw.len() == 2 * curve.size() => {
                Ok(crate::der::ecdsa_signature(&raw))
            }
            SigningKeyType::Ec(_) => Err(HsmError::BadSignature),
            SigningKeyType::Rsa { .. } => Ok(raw),
        }
    }

    pub(crate) fn key_type(&self) -> SigningKeyType {
        self.key.kind
    }

    /// Whether a signature is a call of microseconds in this process (an EC key in
    /// SoftHSM), so work around it may stay on an async worker, as [`Hsm::run_short`]
    /// keeps such calls; RSA signatures take milliseconds, and another module's calls may
    /// wait on a device or the network.
    pub(crate) fn signs_quickly(&self) -> bool {
        self.hsm.is_softhsm() && matches!(self.key.kind, SigningKeyType::Ec(_))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        match self.key.kind {
            SigningKeyType::Ec(Curve::P256) => rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
            SigningKeyType::Ec(Curve::P384) => rustls::SignatureScheme::ECDSA_NISTP384_SHA384,
            SigningKeyType::Rsa { .. } => rustls::SignatureScheme::RSA_PKCS1_SHA256,
        }
    }
}

impl rcgen::PublicKeyData for HsmSigner {
    fn der_bytes(&self) -> &[u8] {
        self.key.public_key_bits()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.key.kind {
            SigningKeyType::Ec(Curve::P256) => &rcgen::PKCS_ECDSA_P256_SHA256,
            SigningKeyType::Ec(Curve::P384) => &rcgen::PKCS_ECDSA_P384_SHA384,
            SigningKeyType::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl rcgen::SigningKey for HsmSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // rcgen's error type has no variant for an external signer's failure.
        HsmSigner::sign(self, msg).map_err(|e| {
            tracing::error!(error = %e, "HSM signing failed");
            rcgen::Error::RemoteKeyError
        })
    }
}

// TLS handshakes sign on the connection's task: one CKM_ECDSA in SoftHSM takes tens of
// microseconds, less than moving the call to the blocking pool would cost.
impl rustls::sign::SigningKey for HsmSigner {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&HsmSigner::scheme(self))
            .then(|| Box::new(self.clone()) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        match self.key.kind {
            SigningKeyType::Ec(_) => rustls::SignatureAlgorithm::ECDSA,
            SigningKeyType::Rsa { .. } => rustls::SignatureAlgorithm::RSA,
        }
    }
}

impl rustls::sign::Signer for HsmSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        HsmSigner::sign(self, message)
            .map_err(|e| rustls::Error::General(format!("HSM signing failed: {e}")))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        HsmSigner::scheme(self)
    }
}
