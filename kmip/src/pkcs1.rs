//! The Transparent RSA key formats (KMIP 1.4 §2.1.7.4–5, KMIP 2.1 §3.7–3.8) as PKCS#1
//! DER (RFC 8017 Appendix A.1): a Key Block in a transparent format carries the PKCS#1
//! encoding of its fields, so the rest of a server handles one representation. Only the
//! two DER shapes involved are read and written: a SEQUENCE of INTEGERs.

use crate::tag::Tag;

/// The fields of a Transparent RSA Public Key, in RSAPublicKey order.
pub const PUBLIC_FIELDS: [Tag; 2] = [Tag::MODULUS, Tag::PUBLIC_EXPONENT];

/// The fields of a Transparent RSA Private Key, in RSAPrivateKey order (after the version).
pub const PRIVATE_FIELDS: [Tag; 8] = [
    Tag::MODULUS,
    Tag::PUBLIC_EXPONENT,
    Tag::PRIVATE_EXPONENT,
    Tag::P,
    Tag::Q,
    Tag::PRIME_EXPONENT_P,
    Tag::PRIME_EXPONENT_Q,
    Tag::CRT_COEFFICIENT,
];

/// Most integers a sequence may hold (RSAPrivateKey has nine).
const MAX_INTEGERS: usize = 9;

/// DER of `SEQUENCE { INTEGER ... }` for non-negative big-endian magnitudes; a private key
/// gets its leading `version` 0 (two-prime) when `private` is set.
pub fn encode(integers: &[&[u8]], private: bool) -> Vec<u8> {
    let mut body = Vec::new();
    if private {
        body.extend_from_slice(&[0x02, 0x01, 0x00]);
    }
    for magnitude in integers {
        push_integer(&mut body, magnitude);
    }
    sequence(&body)
}

/// The non-negative integers of a DER `SEQUENCE { INTEGER ... }` as minimal big-endian
/// magnitudes, without a private key's leading version; `None` when `der` is not that
/// shape (or has trailing bytes, a negative integer, or more than nine integers).
pub fn decode(der: &[u8], private: bool) -> Option<Vec<Vec<u8>>> {
    let body = whole_sequence(der)?;
    let mut integers = Vec::new();
    let mut body = body;
    while !body.is_empty() {
        let (integer, rest) = read_integer(body)?;
        integers.push(integer);
        if integers.len() > MAX_INTEGERS {
            return None;
        }
        body = rest;
    }
    if private {
        if integers.first().is_none_or(|v| !v.is_empty()) {
            return None;
        }
        integers.remove(0);
    }
    Some(integers)
}

/// Appends a DER INTEGER holding the non-negative big-endian `magnitude`.
pub(crate) fn push_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed = strip_zeros(magnitude);
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    push_tlv(out, 0x02, &content);
}

/// A non-negative DER INTEGER at the start of `b` as its minimal magnitude, and what
/// follows it.
pub(crate) fn read_integer(b: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let (tag, content, rest) = read_tlv(b)?;
    if tag != 0x02 || content.first().is_none_or(|b| b & 0x80 != 0) {
        return None;
    }
    Some((strip_zeros(content).to_vec(), rest))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[first..]
}

pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant = strip_zeros(&bytes);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
}

/// DER `SEQUENCE { body }`.
pub(crate) fn sequence(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(&mut out, 0x30, body);
    out
}

/// The body of a DER SEQUENCE that is all of `der`.
pub(crate) fn whole_sequence(der: &[u8]) -> Option<&[u8]> {
    let (tag, body, rest) = read_tlv(der)?;
    (tag == 0x30 && rest.is_empty()).then_some(body)
}

/// One TLV: its tag, its content and what follows it.
pub(crate) fn read_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_public_and_private_shapes() {
        let n = [0x00, 0xC3, 0x01, 0x02];
        let e = [0x01, 0x00, 0x01];
        let der = encode(&[&n, &e], false);
        assert_eq!(
            der,
            [0x30, 0x0B, 0x02, 0x04, 0x00, 0xC3, 0x01, 0x02, 0x02, 0x03, 0x01, 0x00, 0x01]
        );
        assert_eq!(decode(&der, false), Some(vec![n[1..].to_vec(), e.to_vec()]));
        let parts: Vec<Vec<u8>> = (1..=8u8).map(|i| vec![i; 130]).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let der = encode(&refs, true);
        assert_eq!(&der[..4], [0x30, 0x82, 0x04, 0x2B]);
        assert_eq!(decode(&der, true), Some(parts));
    }

    #[test]
    fn refuses_other_shapes() {
        assert_eq!(decode(&[], false), None);
        assert_eq!(decode(&[0x30, 0x03, 0x02, 0x01, 0x80], false), None, "negative");
        assert_eq!(decode(&[0x30, 0x03, 0x04, 0x01, 0x01], false), None, "not INTEGER");
        assert_eq!(decode(&[0x30, 0x05, 0x02, 0x01], false), None, "truncated");
        assert_eq!(decode(&[0x30, 0x00, 0x00], false), None, "trailing bytes");
        assert_eq!(decode(&[0x30, 0x03, 0x02, 0x01, 0x01], true), None, "version 1");
    }
}
