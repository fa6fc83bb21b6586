//! Key derivation functions built on a PRF the caller supplies (the HSM's HMAC, keyed by the
//! derivation key): these only arrange the PRF's inputs and outputs, so the derivation key
//! is used inside the HSM alone. PBKDF2 (RFC 8018 §5.2), HKDF-Expand (RFC 5869 §2.3) and the
//! KDFs of NIST SP 800-108r1 §4 in counter, feedback and double-pipeline mode.

/// A PRF keyed elsewhere: the MAC of its input.
pub(crate) type Prf<'a, E> = dyn FnMut(&[u8]) -> Result<Vec<u8>, E> + 'a;

/// PBKDF2 (RFC 8018 §5.2) with `prf` keyed by the password: `len` bytes.
pub(crate) fn pbkdf2<E>(
    prf: &mut Prf<'_, E>,
    salt: &[u8],
    iterations: u32,
    len: usize,
) -> Result<Vec<u8>, E> {
    let mut out = Vec::with_capacity(len);
    let mut block = 1u32;
    while out.len() < len {
        let mut u = prf(&[salt, &block.to_be_bytes()].concat())?;
        let mut t = u.clone();
        for _ in 1..iterations {
            u = prf(&u)?;
            t.iter_mut().zip(&u).for_each(|(t, u)| *t ^= u);
        }
        out.extend_from_slice(&t);
        block += 1;
    }
    out.truncate(len);
    Ok(out)
}

/// HKDF-Expand (RFC 5869 §2.3) with `prf` keyed by the pseudorandom key: `len` bytes, at
/// most 255 outputs of the PRF (the caller checks).
pub(crate) fn hkdf_expand<E>(prf: &mut Prf<'_, E>, info: &[u8], len: usize) -> Result<Vec<u8>, E> {
    let mut out = Vec::with_capacity(len);
    let mut t = Vec::new();
    let mut i = 1u8;
    while out.len() < len {
        t = prf(&[&t[..], info, &[i]].concat())?;
        out.extend_from_slice(&t);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// The modes of the SP 800-108r1 KDFs (§4.1, §4.2, §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sp800108 {
    Counter,
    /// K(0) is the IV (empty when none is given).
    Feedback {
        iv: Vec<u8>,
    },
    DoublePipeline,
}

/// The SP 800-108r1 KDF in `mode` with `prf` keyed by the derivation key: `len` bytes. The
/// fixed input is `label ‖ 0x00 ‖ context` (KMIP's Derivation Data) followed by [L]₃₂, the
/// output length in bits; the counter [i]₃₂ comes first (after K(i-1) or A(i) in the
/// feedback and double-pipeline modes).
pub(crate) fn sp800_108<E>(
    prf: &mut Prf<'_, E>,
    mode: &Sp800108,
    label_context: &[u8],
    len: usize,
) -> Result<Vec<u8>, E> {
    let bits = u32::try_from(len * 8).unwrap_or(u32::MAX);
    let fixed = [label_context, &bits.to_be_bytes()].concat();
    let mut out = Vec::with_capacity(len);
    let mut previous = match mode {
        Sp800108::Feedback { iv } => iv.clone(),
        Sp800108::Counter => Vec::new(),
        Sp800108::DoublePipeline => fixed.clone(),
    };
    let mut i = 1u32;
    while out.len() < len {
        let counter = i.to_be_bytes();
        let k = match mode {
            Sp800108::Counter => prf(&[&counter[..], &fixed].concat())?,
            Sp800108::Feedback { .. } => prf(&[&previous[..], &counter, &fixed].concat())?,
            Sp800108::DoublePipeline => {
                previous = prf(&previous)?;
                prf(&[&previous[..], &counter, &fixed].concat())?
            }
        };
        if let Sp800108::Feedback { .. } = mode {
            previous.clone_from(&k);
        }
        out.extend_from_slice(&k);
        i += 1;
    }
    out.truncate(len);
    Ok(out)
}

/// The ANSI X9.63 KDF (SEC 1 §3.6.1, NIST SP 800-56A's one-step KDF with the counter after
/// Z): Hash(Z ‖ [i]₃₂ ‖ SharedInfo) for i = 1, 2, ..., concatenated and cut to `len` bytes.
/// `digest` is the hash (computed in the HSM by the caller).
pub(crate) fn x963<E>(
    digest: &mut Prf<'_, E>,
    z: &[u8],
    shared_info: &[u8],
    len: usize,
) -> Result<Vec<u8>, E> {
    let mut out = Vec::with_capacity(len);
    let mut i = 1u32;
    while out.len() < len {
        out.extend(digest(&[z, &i.to_be_bytes(), shared_info].concat())?);
        i += 1;
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::test_vectors::{bytes, vectors};
    use aws_lc_rs::hmac;

    type Never = std::convert::Infallible;

    fn prf(algorithm: hmac::Algorithm, key: &[u8]) -> impl FnMut(&[u8]) -> Result<Vec<u8>, Never> {
        let key = hmac::Key::new(algorithm, key);
        move |data| Ok(hmac::sign(&key, data).as_ref().to_vec())
    }

    #[test]
    fn pbkdf2_matches_rfc7914_section11() {
        for case in vectors(include_str!("kdf/rfc7914-section11-pbkdf2-sha256.txt")) {
            let mut prf = prf(hmac::HMAC_SHA256, &bytes(&case, "P"));
            let c: u32 = case["c"].parse().unwrap_or(0);
            let dk = bytes(&case, "DK");
            assert_eq!(pbkdf2(&mut prf, &bytes(&case, "S"), c, dk.len()), Ok(dk));
        }
    }

    #[test]
    fn hkdf_expand_matches_rfc5869_appendix_a() {
        for case in vectors(include_str!("kdf/rfc5869-appendix-a-sha256.txt")) {
            let mut prf = prf(hmac::HMAC_SHA256, &bytes(&case, "PRK"));
            let okm = bytes(&case, "OKM");
            assert_eq!(hkdf_expand(&mut prf, &bytes(&case, "info"), okm.len()), Ok(okm));
            // The extract step is one HMAC keyed by the salt (RFC 5869 §2.2).
            let mut extract = prf_salt(&bytes(&case, "salt"));
            assert_eq!(extract(&bytes(&case, "IKM")), Ok(bytes(&case, "PRK")));
        }
    }

    #[test]
    fn x963_matches_nist_cavs() {
        for case in vectors(include_str!("kdf/nist-cavs-ansx963-2001-sha256.txt")) {
            let mut sha256 = |data: &[u8]| -> Result<Vec<u8>, Never> {
                Ok(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref().to_vec())
            };
            let key = bytes(&case, "key_data");
            let got = x963(&mut sha256, &bytes(&case, "Z"), &bytes(&case, "SharedInfo"), key.len());
            assert_eq!(got, Ok(key));
        }
    }

    fn prf_salt(salt: &[u8]) -> impl FnMut(&[u8]) -> Result<Vec<u8>, Never> {
        let salt = if salt.is_empty() { vec![0; 32] } else { salt.to_vec() };
        prf(hmac::HMAC_SHA256, &salt)
    }

    /// SP 800-108 has no vectors of its own in an RFC; the counter mode here is checked
    /// against its definition computed by hand, and each mode's blocks against the others'.
    #[test]
    fn sp800_108_modes_follow_their_definitions() {
        let key = [7u8; 32];
        let data = b"label\0context";
        let mut h = prf(hmac::HMAC_SHA256, &key);
        let fixed = [&data[..], &400u32.to_be_bytes()].concat();
        let k1 = h(&[&1u32.to_be_bytes()[..], &fixed].concat()).unwrap_or_default();
        let k2 = h(&[&2u32.to_be_bytes()[..], &fixed].concat()).unwrap_or_default();
        let counter = sp800_108(&mut h, &Sp800108::Counter, data, 50);
        assert_eq!(counter, Ok([&k1[..], &k2[..18]].concat()));

        let iv = vec![9u8; 32];
        let f1 = h(&[&iv[..], &1u32.to_be_bytes(), &fixed].concat()).unwrap_or_default();
        let f2 = h(&[&f1[..], &2u32.to_be_bytes(), &fixed].concat()).unwrap_or_default();
        let feedback = sp800_108(&mut h, &Sp800108::Feedback { iv }, data, 50);
        assert_eq!(feedback, Ok([&f1[..], &f2[..18]].concat()));

        let a1 = h(&fixed).unwrap_or_default();
        let a2 = h(&a1).unwrap_or_default();
        let d1 = h(&[&a1[..], &1u32.to_be_bytes(), &fixed].concat()).unwrap_or_default();
        let d2 = h(&[&a2[..], &2u32.to_be_bytes(), &fixed].concat()).unwrap_or_default();
        let pipeline = sp800_108(&mut h, &Sp800108::DoublePipeline, data, 50);
        assert_eq!(pipeline, Ok([&d1[..], &d2[..18]].concat()));
    }
}
