//! The Transparent EC key formats (KMIP 2.1 §3.11–3.12; in KMIP 1.x also Transparent
//! ECDSA, ECDH and ECMQV Private and Public Key, §2.1.7.8–13) as DER: a public key as its
//! SubjectPublicKeyInfo (RFC 5480 §2), a private key as ECPrivateKey (RFC 5915), so a
//! server handles the forms it already reads. Only the NIST curves P-256, P-384 and P-521
//! are mapped.

use crate::enums::RecommendedCurve;
use crate::pkcs1::{push_tlv, read_tlv, sequence, whole_sequence};

/// `id-ecPublicKey` (1.2.840.10045.2.1) as a DER OBJECT IDENTIFIER.
const ID_EC_PUBLIC_KEY: [u8; 9] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

/// The named-curve OIDs (RFC 5480 §2.1.1.1) of the curves mapped, as DER.
const CURVES: [(RecommendedCurve, &[u8]); 3] = [
    (RecommendedCurve::P_256, &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]),
    (RecommendedCurve::P_384, &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]),
    (RecommendedCurve::P_521, &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23]),
];

/// The SubjectPublicKeyInfo of the point `q` (Q String: SEC 1 encoding) on `curve`; `None`
/// for a curve not mapped here.
pub fn to_spki(curve: RecommendedCurve, q: &[u8]) -> Option<Vec<u8>> {
    let (_, oid) = CURVES.iter().find(|(c, _)| *c == curve)?;
    let mut alg = ID_EC_PUBLIC_KEY.to_vec();
    alg.extend_from_slice(oid);
    let mut body = Vec::with_capacity(alg.len() + q.len() + 8);
    push_tlv(&mut body, 0x30, &alg);
    let mut bits = vec![0]; // no unused bits
    bits.extend_from_slice(q);
    push_tlv(&mut body, 0x03, &bits);
    Some(sequence(&body))
}

/// The curve and point (Q String) of an EC SubjectPublicKeyInfo on a mapped curve.
pub fn from_spki(der: &[u8]) -> Option<(RecommendedCurve, Vec<u8>)> {
    let body = whole_sequence(der)?;
    let (tag, alg, rest) = read_tlv(body)?;
    let oid = alg.strip_prefix(&ID_EC_PUBLIC_KEY[..]).filter(|_| tag == 0x30)?;
    let (curve, _) = CURVES.iter().find(|(_, o)| *o == oid)?;
    let (tag, bits, rest) = read_tlv(rest)?;
    let (&unused, q) = bits.split_first()?;
    (tag == 0x03 && unused == 0 && rest.is_empty()).then(|| (*curve, q.to_vec()))
}

/// Bytes of a private scalar on `curve` (RFC 5915 §3: ceiling(log2(n)/8)).
fn scalar_len(curve: RecommendedCurve) -> usize {
    match curve {
        RecommendedCurve::P_256 => 32,
        RecommendedCurve::P_384 => 48,
        _ => 66,
    }
}

/// The ECPrivateKey (RFC 5915 §3, version 1, with the curve and without the public key) of
/// the private scalar `d` (Transparent EC Private Key's D) on `curve`; `None` for a curve
/// not mapped here or a scalar longer than the curve's.
pub fn private_to_der(curve: RecommendedCurve, d: &[u8]) -> Option<Vec<u8>> {
    let (_, oid) = CURVES.iter().find(|(c, _)| *c == curve)?;
    let d = &d[d.iter().position(|b| *b != 0).unwrap_or(d.len())..];
    let len = scalar_len(curve);
    if d.len() > len {
        return None;
    }
    let mut scalar = vec![0; len - d.len()];
    scalar.extend_from_slice(d);
    let mut body = vec![0x02, 0x01, 0x01];
    push_tlv(&mut body, 0x04, &scalar);
    push_tlv(&mut body, 0xA0, oid);
    Some(sequence(&body))
}

/// The curve and private scalar of an ECPrivateKey naming a mapped curve (the public key,
/// if present, is skipped).
pub fn private_from_der(der: &[u8]) -> Option<(RecommendedCurve, Vec<u8>)> {
    let body = whole_sequence(der)?;
    let (tag, version, rest) = read_tlv(body)?;
    let (octets, scalar, rest) = read_tlv(rest)?;
    let (params, oid, _) = read_tlv(rest)?;
    if tag != 0x02 || version != [1] || octets != 0x04 || params != 0xA0 {
        return None;
    }
    let (curve, _) = CURVES.iter().find(|(_, o)| *o == oid)?;
    Some((*curve, scalar.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The P-256 public key of private key 1 (the generator) as `openssl ec -pubout
    /// -outform DER` writes it.
    #[test]
    fn p256_spki_is_encoded_as_openssl_does() {
        let hex = "3059301306072a8648ce3d020106082a8648ce3d030107034200046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
        let der = crate::ttlv::text::unhex(hex).unwrap();
        let (curve, q) = from_spki(&der).expect("P-256");
        assert_eq!(curve, RecommendedCurve::P_256);
        assert_eq!((q.len(), q[0]), (65, 0x04));
        assert_eq!(to_spki(curve, &q), Some(der));
    }

    /// Private key 1 on P-256 as the ECPrivateKey `openssl asn1parse -genconf` builds from
    /// version 1, the 32-byte scalar and the curve (which `openssl ec` reads as such).
    #[test]
    fn private_keys_are_ec_private_key_der() {
        let mut one = vec![0; 31];
        one.push(1);
        let der = private_to_der(RecommendedCurve::P_256, &[0, 0, 1]).unwrap();
        let mut expected = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
        expected.extend_from_slice(&one);
        expected.extend_from_slice(&[0xA0, 0x0A]);
        expected.extend_from_slice(CURVES[0].1);
        assert_eq!(der, expected);
        assert_eq!(private_from_der(&der), Some((RecommendedCurve::P_256, one)));
        assert_eq!(private_to_der(RecommendedCurve::P_256, &[1; 33]), None, "too long");
    }

    #[test]
    fn other_curves_and_shapes_are_refused() {
        assert_eq!(to_spki(RecommendedCurve::K_163, &[4]), None);
        let p384 = to_spki(RecommendedCurve::P_384, &[4; 97]).unwrap();
        assert_eq!(from_spki(&p384), Some((RecommendedCurve::P_384, vec![4; 97])));
        let mut trailing = p384.clone();
        trailing.push(0);
        assert_eq!(from_spki(&trailing), None);
        assert_eq!(from_spki(&[]), None);
    }
}
