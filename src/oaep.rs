//! EME-OAEP encoding and decoding (RFC 8017 §7.1) for any hash and MGF1 hash, around the
//! raw RSA operation (CKM_RSA_X_509) the HSM performs: SoftHSM's own OAEP mechanism offers
//! SHA-1 only. Decoding runs without early exits until the end, so a padding error and a
//! label mismatch look alike (Manger's attack, RFC 8017 §7.1.2 note).

use aws_lc_rs::digest::{self, Algorithm};

pub(crate) use crate::hsm::Hash;

fn algorithm(hash: Hash) -> &'static Algorithm {
    match hash {
        Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        Hash::Sha256 => &digest::SHA256,
        Hash::Sha384 => &digest::SHA384,
        Hash::Sha512 => &digest::SHA512,
    }
}

/// Why encoding or decoding failed. Decoding failures carry no detail on purpose.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OaepError {
    /// The message is longer than the key size allows with this hash.
    TooLong { max: usize },
    /// The modulus is too small for this hash.
    KeyTooSmall,
    /// Not a valid OAEP encoding for this key, hash and label.
    Decoding,
}

/// MGF1 (RFC 8017 §B.2.1): `len` bytes from `seed`.
fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + algorithm(hash).output_len());
    let mut counter = 0u32;
    while out.len() < len {
        let mut ctx = digest::Context::new(algorithm(hash));
        ctx.update(seed);
        ctx.update(&counter.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn xor(a: &mut [u8], b: &[u8]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x ^= y);
}

/// EM for a `k`-byte modulus (§7.1.1 step 2), with a fresh random seed.
pub(crate) fn encode(
    k: usize,
    hash: Hash,
    mgf: Hash,
    label: &[u8],
    message: &[u8],
) -> Result<Vec<u8>, OaepError> {
    let h = algorithm(hash).output_len();
    let max = k.checked_sub(2 * h + 2).ok_or(OaepError::KeyTooSmall)?;
    if message.len() > max {
        return Err(OaepError::TooLong { max });
    }
    let mut db = digest::digest(algorithm(hash), label).as_ref().to_vec();
    db.resize(k - message.len() - h - 2, 0);
    db.push(0x01);
    db.extend_from_slice(message);
    let mut seed = crate::util::random_bytes(h);
    xor(&mut db, &mgf1(mgf, &seed, k - h - 1));
    xor(&mut seed, &mgf1(mgf, &db, h));
    Ok([&[0u8][..], &seed, &db].concat())
}

/// `0xFF` when `a == b`, else `0`, without branching on the values.
fn eq_mask(a: u8, b: u8) -> u8 {
    let x = u32::from(a ^ b);
    // x == 0 → borrow out of the subtraction sets the top bit.
    (x.wrapping_sub(1) >> 8) as u8
}

/// The message in `em` (the raw RSA decryption, `k` bytes), §7.1.2 step 3.
pub(crate) fn decode(em: &[u8], hash: Hash, mgf: Hash, label: &[u8]) -> Result<Vec<u8>, OaepError> {
    let h = algorithm(hash).output_len();
    let k = em.len();
    if k < 2 * h + 2 {
        return Err(OaepError::Decoding);
    }
    let (y, rest) = (em[0], &em[1..]);
    let (masked_seed, masked_db) = rest.split_at(h);
    let mut seed = masked_seed.to_vec();
    xor(&mut seed, &mgf1(mgf, masked_db, h));
    let mut db = masked_db.to_vec();
    xor(&mut db, &mgf1(mgf, &seed, k - h - 1));
    let lhash = digest::digest(algorithm(hash), label);
    // Everything below accumulates into `good` (0xFF while all is well).
    let mut good = eq_mask(y, 0);
    for (a, b) in db[..h].iter().zip(lhash.as_ref()) {
        good &= eq_mask(*a, *b);
    }
    let mut found = 0u8;
    let mut start = 0usize;
    for (i, &b) in db[h..].iter().enumerate() {
        let one = eq_mask(b, 1);
        let zero = eq_mask(b, 0);
        let first = one & !found;
        start |= (i + 1) & usize::from(first & 1).wrapping_neg();
        // Before the separator, only zero bytes.
        good &= found | zero | one;
        found |= one;
    }
    good &= found;
    if good != 0xFF {
        return Err(OaepError::Decoding);
    }
    Ok(db[h + start..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_does_not_decode() {
        for (hash, mgf) in [
            (Hash::Sha1, Hash::Sha1),
            (Hash::Sha256, Hash::Sha256),
            (Hash::Sha384, Hash::Sha1),
            (Hash::Sha512, Hash::Sha512),
        ] {
            for message in [&b""[..], b"x", &[0u8; 62], &[1u8; 30]] {
                let em = encode(256, hash, mgf, b"label", message).unwrap();
                assert_eq!(em.len(), 256);
                assert_eq!(decode(&em, hash, mgf, b"label").unwrap(), message);
                assert_eq!(decode(&em, hash, mgf, b"other"), Err(OaepError::Decoding));
                let mut bad = em.clone();
                bad[0] = 1;
                assert_eq!(decode(&bad, hash, mgf, b"label"), Err(OaepError::Decoding));
                let mut flipped = em.clone();
                flipped[200] ^= 0x40;
                assert_eq!(decode(&flipped, hash, mgf, b"label"), Err(OaepError::Decoding));
            }
        }
        let max = 256 - 2 * 64 - 2;
        assert_eq!(
            encode(256, Hash::Sha512, Hash::Sha512, b"", &vec![0; max + 1]),
            Err(OaepError::TooLong { max })
        );
        assert_eq!(encode(64, Hash::Sha512, Hash::Sha512, b"", b""), Err(OaepError::KeyTooSmall));
        assert_eq!(decode(&[0; 10], Hash::Sha256, Hash::Sha256, b""), Err(OaepError::Decoding));
    }
}
