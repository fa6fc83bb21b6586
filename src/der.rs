//! The little DER this service writes and reads itself (RFC 5280 / RFC 3279 / RFC 8017 /
//! RFC 6960 structures): public keys as PKCS#1 and SubjectPublicKeyInfo, ECDSA signatures,
//! and the building blocks of OCSP responses.

/// Object identifier of rsaEncryption (1.2.840.113549.1.1.1), DER.
const RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// Object identifier of id-ecPublicKey (1.2.840.10045.2.1), DER.
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// Named curve P-256 (1.2.840.10045.3.1.7), DER.
pub(crate) const P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// Named curve P-384 (1.3.132.0.34), DER.
pub(crate) const P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// What kind of key a SubjectPublicKeyInfo holds, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Modulus bits.
    Rsa(usize),
    /// Curve bits: 256 (P-256), 384 (P-384), 521 (P-521).
    Ec(u16),
    Ed25519,
    /// Prime modulus bits.
    Dsa(usize),
}

impl KeyKind {
    /// The name profiles use: `p256`, `p384`, `p521`, `rsa2048` (the modulus bits),
    /// `ed25519`.
    pub(crate) fn name(self) -> String {
        match self {
            KeyKind::Rsa(bits) => format!("rsa{bits}"),
            KeyKind::Ec(bits) => format!("p{bits}"),
            KeyKind::Ed25519 => "ed25519".to_owned(),
            KeyKind::Dsa(bits) => format!("dsa{bits}"),
        }
    }
}

/// Why [`key_kind`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKindError {
    /// Not DER of a SubjectPublicKeyInfo.
    Invalid(&'static str),
    /// A well-formed key of a kind this service does not handle.
    Unsupported(&'static str),
}

/// Reads a whole SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
pub(crate) fn key_kind(spki: &[u8]) -> Result<KeyKind, KeyKindError> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    use KeyKindError::{Invalid, Unsupported};
    let (rest, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|_| Invalid("the public key is not a valid SubjectPublicKeyInfo"))?;
    if !rest.is_empty() {
        return Err(Invalid("bytes follow the SubjectPublicKeyInfo"));
    }
    match info.parsed() {
        Ok(PublicKey::RSA(rsa)) => Ok(KeyKind::Rsa(rsa.key_size())),
        Ok(PublicKey::EC(_)) => {
            let curve = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            use aws_lc_rs::agreement::{self, ParsedPublicKey, UnparsedPublicKey};
            let (bits, curve) = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => (256, &agreement::ECDH_P256),
                Some("1.3.132.0.34") => (384, &agreement::ECDH_P384),
                Some("1.3.132.0.35") => (521, &agreement::ECDH_P521),
                _ => return Err(Unsupported("EC keys on P-256, P-384 or P-521 only")),
            };
            // A point off its curve is refused here: an HSM's ECDH with one fails as if the
            // device had (CKR_GENERAL_ERROR), and it is no one's key.
            ParsedPublicKey::try_from(&UnparsedPublicKey::new(curve, spki))
                .map_err(|_| Invalid("the EC public key's point is not on its curve"))?;
            Ok(KeyKind::Ec(bits))
        }
        Ok(_) if info.algorithm.algorithm.to_id_string() == "1.3.101.112" => Ok(KeyKind::Ed25519),
        Ok(PublicKey::DSA(_)) => {
            let key = kmip::dsa::DsaKey::from_spki(spki)
                .ok_or(Invalid("the DSA public key lacks its domain parameters"))?;
            Ok(KeyKind::Dsa(key.bits()))
        }
        Ok(_) => Err(Unsupported("RSA, EC, DSA and Ed25519 public keys only")),
        Err(_) => Err(Invalid("the public key does not parse")),
    }
}

/// The curve size (bits) and uncompressed point of an EC SubjectPublicKeyInfo on P-256,
/// P-384 or P-521.
pub(crate) fn ec_point(spki: &[u8]) -> Option<(u16, Vec<u8>)> {
    use x509_parser::prelude::FromDer;
    let KeyKind::Ec(bits) = key_kind(spki).ok()? else { return None };
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).ok()?;
    Some((bits, info.subject_public_key.data.to_vec()))
}

/// A tag, the definite length and `body`.
pub(crate) fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

/// A positive INTEGER from big-endian magnitude bytes.
pub(crate) fn integer(v: &[u8]) -> Vec<u8> {
    let first = v.iter().position(|b| *b != 0).unwrap_or(v.len().saturating_sub(1));
    let v = &v[first.min(v.len())..];
    let mut body = Vec::with_capacity(v.len() + 1);
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(v);
    tlv(0x02, &body)
}

pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

pub(crate) fn bit_string(v: &[u8]) -> Vec<u8> {
    let mut body = vec![0];
    body.extend_from_slice(v);
    tlv(0x03, &body)
}

/// PKCS#1 RSAPublicKey (RFC 8017 §A.1.1).
pub(crate) fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    sequence(&[&integer(modulus), &integer(exponent)])
}

/// SubjectPublicKeyInfo of an RSA key from its PKCS#1 form (RFC 3279 §2.3.1).
pub(crate) fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    sequence(&[&sequence(&[RSA_ENCRYPTION, &[0x05, 0x00]]), &bit_string(pkcs1)])
}

/// SubjectPublicKeyInfo of an EC key: curve OID (DER) and uncompressed point (RFC 5480).
pub(crate) fn ec_spki(curve: &[u8], point: &[u8]) -> Vec<u8> {
    sequence(&[&sequence(&[EC_PUBLIC_KEY, curve]), &bit_string(point)])
}

/// DER `ECDSA-Sig-Value` from a raw r‖s signature (RFC 3279 §2.2.3).
pub(crate) fn ecdsa_signature(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    sequence(&[&integer(r), &integer(s)])
}

/// Reads one element with tag `tag` from the front of `input`: its contents and what
/// follows. `None` for another tag, an indefinite or oversized length, or a short input.
pub(crate) fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    let (&l, rest) = rest.split_first()?;
    if t != tag {
        return None;
    }
    let (len, rest) = if l < 0x80 {
        (l as usize, rest)
    } else {
        let n = (l & 0x7F) as usize;
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize), &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The parts of a PKCS#1 RSAPrivateKey (RFC 8017 A.1.2), big-endian without sign bytes.
pub(crate) struct RsaPrivateKey {
    pub(crate) modulus: Vec<u8>,
    pub(crate) public_exponent: Vec<u8>,
    pub(crate) private_exponent: Vec<u8>,
    pub(crate) prime1: Vec<u8>,
    pub(crate) prime2: Vec<u8>,
    pub(crate) exponent1: Vec<u8>,
    pub(crate) exponent2: Vec<u8>,
    pub(crate) coefficient: Vec<u8>,
}

/// Reads a two-prime PKCS#1 RSAPrivateKey; `None` if it is not one.
pub(crate) fn rsa_private_key(der: &[u8]) -> Option<RsaPrivateKey> {
    let (mut body, trailing) = read_tlv(der, 0x30)?;
    if !trailing.is_empty() {
        return None;
    }
    let mut next = || -> Option<Vec<u8>> {
        let (v, rest) = read_tlv(body, 0x02)?;
        body = rest;
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        Some(if v.is_empty() { vec![0] } else { v })
    };
    let version = next()?;
    if version != [0] {
        return None; // multi-prime keys (version 1) are not supported
    }
    let key = RsaPrivateKey {
        modulus: next()?,
        public_exponent: next()?,
        private_exponent: next()?,
        prime1: next()?,
        prime2: next()?,
        exponent1: next()?,
        exponent2: next()?,
        coefficient: next()?,
    };
    (key.modulus.len() >= 128).then_some(key)
}

/// The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (RFC 5208) for rsaEncryption; `None`
/// for another algorithm or a malformed structure.
pub(crate) fn pkcs8_rsa(der: &[u8]) -> Option<&[u8]> {
    let (body, _) = read_tlv(der, 0x30)?;
    let (_version, rest) = read_tlv(body, 0x02)?;
    let (algorithm, rest) = read_tlv(rest, 0x30)?;
    let (oid, _) = read_tlv(algorithm, 0x06)?;
    if oid != &RSA_ENCRYPTION[2..] {
        return None;
    }
    let (key, _) = read_tlv(rest, 0x04)?;
    Some(key)
}

/// A client's private key, as the HSM imports it.
pub(crate) enum PrivateKey {
    Rsa(RsaPrivateKey),
    Ec(EcPrivateKey),
}

impl PrivateKey {
    /// The public half as SubjectPublicKeyInfo.
    pub(crate) fn spki(&self) -> Vec<u8> {
        match self {
            PrivateKey::Rsa(k) => rsa_spki(&rsa_public_key(&k.modulus, &k.public_exponent)),
            PrivateKey::Ec(k) => ec_spki(k.curve, &k.point),
        }
    }
}

/// An EC private key as the HSM takes it (CKA_EC_PARAMS, CKA_VALUE) and its public point.
pub(crate) struct EcPrivateKey {
    /// The named curve's OID, DER ([`P256`] or [`P384`]).
    pub(crate) curve: &'static [u8],
    /// The private scalar, big-endian.
    pub(crate) scalar: Vec<u8>,
    /// The uncompressed public point, derived from the scalar.
    pub(crate) point: Vec<u8>,
}

/// Reads an EC private key on P-256 or P-384 from PKCS#8 (RFC 5208) or ECPrivateKey (RFC
/// 5915, SEC1) DER; the scalar is checked and the public point derived by aws-lc.
pub(crate) fn ec_private_key(der: &[u8]) -> Option<EcPrivateKey> {
    use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
    use aws_lc_rs::signature::{
        EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    };
    [(&ECDSA_P256_SHA256_ASN1_SIGNING, P256), (&ECDSA_P384_SHA384_ASN1_SIGNING, P384)]
        .into_iter()
        .find_map(|(alg, curve)| {
            let pair = EcdsaKeyPair::from_private_key_der(alg, der).ok()?;
            let scalar: EcPrivateKeyBin<'_> = pair.private_key().as_be_bytes().ok()?;
            Some(EcPrivateKey {
                curve,
                scalar: scalar.as_ref().to_vec(),
                point: pair.public_key().as_ref().to_vec(),
            })
        })
}

/// The tag of the element at the front of `input`.
pub(crate) fn peek_tag(input: &[u8]) -> Option<u8> {
    input.first().copied()
}

/// Raw r‖s (each `half` bytes) from a DER `ECDSA-Sig-Value`; `None` if it is not one.
pub(crate) fn ecdsa_raw(der: &[u8], half: usize) -> Option<Vec<u8>> {
    let read = read_tlv;
    let (body, trailing) = read(der, 0x30)?;
    if !trailing.is_empty() {
        return None;
    }
    let (r, rest) = read(body, 0x02)?;
    let (s, rest) = read(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = vec![0u8; 2 * half];
    for (k, value) in [r, s].into_iter().enumerate() {
        let value = &value[value.iter().position(|b| *b != 0).unwrap_or(value.len())..];
        if value.len() > half {
            return None;
        }
        let end = (k + 1) * half;
        out[end - value.len()..end].copy_from_slice(value);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    #[test]
    fn ecdsa_signatures_round_trip_and_are_minimal() {
        let mut raw = vec![0u8; 64];
        raw[31] = 1;
        raw[32..].fill(0x80);
        let der = ecdsa_signature(&raw);
        assert_eq!(&der[..5], &[0x30, 3 + 35, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 33, 0x00]);
        assert_eq!(ecdsa_raw(&der, 32), Some(raw));
        assert_eq!(ecdsa_raw(&der[..der.len() - 1], 32), None);
        assert_eq!(ecdsa_raw(b"\x30\x00", 32), None);
    }

    /// The readers take keys and signatures from clients (KMIP Register, CSRs).
    #[test]
    fn readers_never_panic_on_mutated_input() {
        let spki =
            rcgen::PublicKeyData::subject_public_key_info(&rcgen::KeyPair::generate().unwrap());
        let rsa = rsa_spki(&rsa_public_key(&[0xC5; 64], &[1, 0, 1]));
        let signature = ecdsa_signature(&[0x80; 64]);
        for base in [&spki[..], &rsa[..], &signature[..]] {
            for m in crate::util::mutations(base, 5280, 20_000) {
                let _ = key_kind(&m);
                let _ = ec_point(&m);
                let _ = rsa_private_key(&m);
                let _ = pkcs8_rsa(&m);
                let _ = ec_private_key(&m);
                let _ = ecdsa_raw(&m, 32);
            }
        }
    }

    #[test]
    fn ec_points_must_be_on_their_curve() {
        let real =
            rcgen::PublicKeyData::subject_public_key_info(&rcgen::KeyPair::generate().unwrap());
        assert_eq!(key_kind(&real), Ok(KeyKind::Ec(256)));
        let (_, point) = ec_point(&real).unwrap();
        let mut off = point.clone();
        off[64] ^= 1;
        for bad in [off, [[4u8].as_slice(), &[1u8; 64]].concat()] {
            assert!(matches!(key_kind(&ec_spki(P256, &bad)), Err(KeyKindError::Invalid(_))));
        }
    }

    #[test]
    fn spki_parses_with_x509_parser() {
        let pkcs1 = rsa_public_key(&[0xC5; 256], &[1, 0, 1]);
        let spki = rsa_spki(&pkcs1);
        let (rest, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).unwrap();
        assert!(rest.is_empty());
        assert_eq!(parsed.subject_public_key.data.as_ref(), pkcs1.as_slice());
        let point = [4u8; 65];
        let spki = ec_spki(P256, &point);
        let (_, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).unwrap();
        assert_eq!(parsed.subject_public_key.data.as_ref(), &point[..]);
    }

    #[test]
    fn rsa_private_keys_from_pkcs8() {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let pkcs8 = kp.serialize_der();
        let pkcs1 = pkcs8_rsa(&pkcs8).expect("PKCS#8 around an RSA key");
        let key = rsa_private_key(pkcs1).expect("a two-prime RSAPrivateKey");
        let spki = rsa_spki(&rsa_public_key(&key.modulus, &key.public_exponent));
        assert_eq!(spki, rcgen::PublicKeyData::subject_public_key_info(&kp));
        assert_eq!(key.modulus.len(), 256);
        assert!(rsa_private_key(&pkcs1[..pkcs1.len() - 1]).is_none(), "truncated");
        assert!(pkcs8_rsa(&rcgen::KeyPair::generate().unwrap().serialize_der()).is_none(), "EC");
    }
}
