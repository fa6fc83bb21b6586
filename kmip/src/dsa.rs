//! The Transparent DSA key formats (KMIP 1.4 §2.1.7.2–3, KMIP 2.1 §3.5–3.6) as DER: a
//! public key as its SubjectPublicKeyInfo and a private key as PKCS#8 (RFC 5958), both with
//! the `id-dsa` algorithm and its Dss-Parms (RFC 3279 §2.3.2), so a server handles the
//! forms it already stores. Integers are non-negative big-endian magnitudes.

use crate::pkcs1::{push_integer, push_tlv, read_integer, read_tlv, sequence, whole_sequence};

/// `id-dsa` (1.2.840.10040.4.1, RFC 3279 §2.3.2) as a DER OBJECT IDENTIFIER.
const ID_DSA: [u8; 9] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x01];

/// A DSA key's domain parameters and its public value `y` or private value `x`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DsaKey {
    /// The prime modulus P.
    pub p: Vec<u8>,
    /// The prime divisor Q.
    pub q: Vec<u8>,
    /// The generator G.
    pub g: Vec<u8>,
    /// Y for a public key, X for a private key.
    pub value: Vec<u8>,
}

impl DsaKey {
    /// The SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of a public key: Dss-Parms, and the
    /// DSAPublicKey INTEGER in the BIT STRING.
    pub fn to_spki(&self) -> Vec<u8> {
        let mut y = vec![0]; // no unused bits
        push_integer(&mut y, &self.value);
        let mut body = self.algorithm();
        push_tlv(&mut body, 0x03, &y);
        sequence(&body)
    }

    /// The PKCS#8 PrivateKeyInfo (RFC 5958 §2, version 0) of a private key: Dss-Parms, and
    /// the private INTEGER in the OCTET STRING.
    pub fn to_pkcs8(&self) -> Vec<u8> {
        let mut x = Vec::new();
        push_integer(&mut x, &self.value);
        let mut body = vec![0x02, 0x01, 0x00];
        body.extend_from_slice(&self.algorithm());
        push_tlv(&mut body, 0x04, &x);
        sequence(&body)
    }

    /// Reads what [`DsaKey::to_spki`] writes; `None` for any other shape.
    pub fn from_spki(der: &[u8]) -> Option<DsaKey> {
        let body = whole_sequence(der)?;
        let (key, rest) = read_algorithm(body)?;
        let (tag, bits, rest) = read_tlv(rest)?;
        let (&unused, y) = bits.split_first()?;
        if tag != 0x03 || unused != 0 || !rest.is_empty() {
            return None;
        }
        let (value, rest) = read_integer(y)?;
        rest.is_empty().then_some(DsaKey { value, ..key })
    }

    /// Reads what [`DsaKey::to_pkcs8`] writes; `None` for any other shape.
    pub fn from_pkcs8(der: &[u8]) -> Option<DsaKey> {
        let body = whole_sequence(der)?;
        let (version, rest) = read_integer(body)?;
        if !version.is_empty() {
            return None;
        }
        let (key, rest) = read_algorithm(rest)?;
        let (tag, x, rest) = read_tlv(rest)?;
        // Attributes may follow the key (RFC 5958 §2); they carry nothing needed here.
        if tag != 0x04 || rest.first().is_some_and(|t| *t != 0xA0) {
            return None;
        }
        let (value, tail) = read_integer(x)?;
        tail.is_empty().then_some(DsaKey { value, ..key })
    }

    /// The key's size: the bits of its prime modulus P (KMIP's Cryptographic Length).
    pub fn bits(&self) -> usize {
        let top = self.p.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
        self.p.len().saturating_sub(1) * 8 + top
    }

    /// `AlgorithmIdentifier { id-dsa, Dss-Parms { p, q, g } }`.
    fn algorithm(&self) -> Vec<u8> {
        let mut alg = ID_DSA.to_vec();
        alg.extend_from_slice(&crate::pkcs1::encode(&[&self.p, &self.q, &self.g], false));
        sequence(&alg)
    }
}

/// An `id-dsa` AlgorithmIdentifier with its parameters (value left empty), and what follows.
fn read_algorithm(b: &[u8]) -> Option<(DsaKey, &[u8])> {
    let (tag, alg, rest) = read_tlv(b)?;
    let params = alg.strip_prefix(&ID_DSA[..])?;
    if tag != 0x30 {
        return None;
    }
    let [p, q, g]: [Vec<u8>; 3] = crate::pkcs1::decode(params, false)?.try_into().ok()?;
    Some((DsaKey { p, q, g, value: Vec::new() }, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &[u8]) -> DsaKey {
        DsaKey { p: vec![0xFC; 64], q: vec![0x96; 20], g: vec![0x67; 64], value: value.to_vec() }
    }

    #[test]
    fn round_trips_public_and_private_keys() {
        let public = key(&[0xB3; 64]);
        let spki = public.to_spki();
        // SEQUENCE { SEQUENCE { id-dsa, ... } ... } as `openssl pkey -pubin` reads it.
        assert_eq!(&spki[..2], [0x30, 0x81]);
        assert_eq!(&spki[6..15], ID_DSA);
        assert_eq!(DsaKey::from_spki(&spki), Some(public));
        let private = key(&[0x09; 20]);
        let pkcs8 = private.to_pkcs8();
        assert_eq!(DsaKey::from_pkcs8(&pkcs8), Some(private.clone()));
        assert_eq!(DsaKey::from_spki(&pkcs8), None);
        assert_eq!(DsaKey::from_pkcs8(&spki), None);
    }

    /// The public key of OASIS test case BL-M-12-21, and its SubjectPublicKeyInfo as
    /// `openssl pkey -pubout -outform DER` writes it from the matching private key.
    #[test]
    fn public_key_of_bl_m_12_is_encoded_as_openssl_does() {
        let h = |s: &str| crate::ttlv::text::unhex(s).unwrap();
        let key = DsaKey {
            p: h(
                "fca682ce8e12caba26efccf7110e526db078b05edecbcd1eb4a208f3ae1617ae01f35b91a47e6df63413c5e12ed0899bcd132acd50d99151bdc43ee737592e17",
            ),
            q: h("962eddcc369cba8ebb260ee6b6a126d9346e38c5"),
            g: h(
                "678471b27a9cf44ee91a49c5147db1a9aaf244f05a434d6486931d2d14271b9e35030b71fd73da179069b32e2935630e1c2062354d0da20a6c416e50be794ca4",
            ),
            value: h(
                "b3cb74d988dea7160a64a4edbb7f70404fa4c08a4208c19d76357a6a9df200cce79faecb22e3419be9b01128cbd998a2d9307101705e4a952462f34728ac5fcf",
            ),
        };
        let openssl = h(
            "3081f13081a806072a8648ce38040130819c024100fca682ce8e12caba26efccf7110e526db078b05edecbcd1eb4a208f3ae1617ae01f35b91a47e6df63413c5e12ed0899bcd132acd50d99151bdc43ee737592e17021500962eddcc369cba8ebb260ee6b6a126d9346e38c50240678471b27a9cf44ee91a49c5147db1a9aaf244f05a434d6486931d2d14271b9e35030b71fd73da179069b32e2935630e1c2062354d0da20a6c416e50be794ca4034400024100b3cb74d988dea7160a64a4edbb7f70404fa4c08a4208c19d76357a6a9df200cce79faecb22e3419be9b01128cbd998a2d9307101705e4a952462f34728ac5fcf",
        );
        assert_eq!(key.to_spki(), openssl);
        assert_eq!(key.bits(), 512);
        assert_eq!(DsaKey::from_spki(&openssl), Some(key));
    }

    #[test]
    fn refuses_other_algorithms_and_trailing_bytes() {
        let mut spki = key(&[1]).to_spki();
        spki[14] = 0x02; // another OID's last arc
        assert_eq!(DsaKey::from_spki(&spki), None);
        let mut spki = key(&[1]).to_spki();
        spki.push(0);
        assert_eq!(DsaKey::from_spki(&spki), None);
        assert_eq!(DsaKey::from_spki(&[]), None);
    }
}
