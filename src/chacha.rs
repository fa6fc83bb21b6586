//! ChaCha20 (RFC 8439 §2.4, and Bernstein's original layout with a 64-bit nonce) and
//! AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8), computed in software: neither SoftHSM nor the
//! PKCS#11 binding offers them. The caller opens the key from its sealed form in the HSM
//! for the one operation and wipes it after; the cipher's own copy of the key is wiped
//! when it is dropped (`chacha20`'s `zeroize` feature), and so is a plaintext whose tag
//! did not match.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::{ChaCha20, ChaCha20Legacy};
use zeroize::Zeroize;

/// The Poly1305 tag's full length.
pub(crate) const TAG_LEN: usize = 16;
/// The shortest tag taken: as for GCM, 96 bits (the OASIS KMIP 2.1 case
/// CS-BC-M-CHACHA20POLY1305-1 truncates to it).
pub(crate) const MIN_TAG_LEN: usize = 12;
/// The nonce a server picks: RFC 8439's 96 bits.
pub(crate) const NONCE_LEN: usize = 12;
const BLOCK: u64 = 64;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChaChaError {
    KeyLength,
    NonceLength,
    TagLength,
    TooLong,
    /// The tag does not match: nothing about why.
    Authentication,
}

impl ChaChaError {
    /// What went wrong, for the client.
    pub(crate) fn message(&self) -> &'static str {
        match self {
            ChaChaError::KeyLength => "ChaCha20 keys are 256 bits",
            ChaChaError::NonceLength => {
                "ChaCha20 takes an 8- or 12-byte nonce, ChaCha20-Poly1305 a 12-byte nonce"
            }
            ChaChaError::TagLength => "ChaCha20-Poly1305 tags are 12 to 16 bytes",
            ChaChaError::TooLong => "the data runs past the end of the ChaCha20 key stream",
            ChaChaError::Authentication => {
                "the data does not decrypt or verify with this key and these parameters"
            }
        }
    }
}

/// XORs `data` with the ChaCha20 key stream from block `counter`. A 12-byte nonce is RFC
/// 8439's (32-bit counter); an 8-byte one is Bernstein's original (64-bit counter), as
/// the OASIS KMIP test cases use. Encryption and decryption are the same operation.
pub(crate) fn apply(
    key: &[u8],
    nonce: &[u8],
    counter: u64,
    data: &mut [u8],
) -> Result<(), ChaChaError> {
    let start = counter.checked_mul(BLOCK).ok_or(ChaChaError::TooLong)?;
    match nonce.len() {
        12 => run(ChaCha20::new_from_slices(key, nonce), start, data),
        8 => run(ChaCha20Legacy::new_from_slices(key, nonce), start, data),
        _ => Err(ChaChaError::NonceLength),
    }
}

fn run<C: StreamCipher + StreamCipherSeek, E>(
    cipher: Result<C, E>,
    start: u64,
    data: &mut [u8],
) -> Result<(), ChaChaError> {
    // The nonce's length is checked by the caller: only the key's can be wrong here.
    let mut cipher = cipher.map_err(|_| ChaChaError::KeyLength)?;
    cipher.try_seek(start).map_err(|_| ChaChaError::TooLong)?;
    cipher.try_apply_keystream(data).map_err(|_| ChaChaError::TooLong)
}

/// AEAD_CHACHA20_POLY1305 encryption: the ciphertext and its tag, cut to `tag_len` bytes.
pub(crate) fn seal(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    mut data: Vec<u8>,
    tag_len: usize,
) -> Result<(Vec<u8>, Vec<u8>), ChaChaError> {
    if !(MIN_TAG_LEN..=TAG_LEN).contains(&tag_len) {
        return Err(ChaChaError::TagLength);
    }
    let key = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| ChaChaError::KeyLength)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ChaChaError::NonceLength)?;
    let tag = LessSafeKey::new(key)
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut data)
        .map_err(|_| ChaChaError::TooLong)?;
    Ok((data, tag.as_ref()[..tag_len].to_vec()))
}

/// AEAD_CHACHA20_POLY1305 decryption of `data` with its tag (whole or cut to 12 to 15
/// bytes); the plaintext only when the tag matches. The tag is recomputed by sealing the
/// decrypted data again (the same ciphertext, so the same tag), which also checks a
/// truncated tag; the comparison takes constant time.
pub(crate) fn open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: Vec<u8>,
    tag: &[u8],
) -> Result<Vec<u8>, ChaChaError> {
    if nonce.len() != NONCE_LEN {
        return Err(ChaChaError::NonceLength);
    }
    let mut plain = data;
    // RFC 8439 §2.8: block 0 makes the Poly1305 key, the text starts at block 1.
    apply(key, nonce, 1, &mut plain)?;
    let (_, expected) = seal(key, nonce, aad, plain.clone(), tag.len())?;
    if verify_slices_are_equal(&expected, tag).is_err() {
        plain.zeroize();
        return Err(ChaChaError::Authentication);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::test_vectors::{bytes, vectors};

    #[test]
    fn matches_rfc8439() {
        let cases = vectors(include_str!("chacha/rfc8439-sections-2.4.2-2.8.2.txt"));
        let [stream, aead] = &cases[..] else { panic!("two cases") };

        let (key, nonce) = (bytes(stream, "key"), bytes(stream, "nonce"));
        let counter = stream["counter"].parse().unwrap_or(0);
        let mut data = bytes(stream, "plaintext");
        apply(&key, &nonce, counter, &mut data).unwrap();
        assert_eq!(data, bytes(stream, "ciphertext"));
        apply(&key, &nonce, counter, &mut data).unwrap();
        assert_eq!(data, bytes(stream, "plaintext"));

        let (key, nonce, aad) = (bytes(aead, "key"), bytes(aead, "nonce"), bytes(aead, "aad"));
        let plain = bytes(aead, "plaintext");
        let (ciphertext, tag) = seal(&key, &nonce, &aad, plain.clone(), TAG_LEN).unwrap();
        assert_eq!((&ciphertext, &tag), (&bytes(aead, "ciphertext"), &bytes(aead, "tag")));
        assert_eq!(open(&key, &nonce, &aad, ciphertext.clone(), &tag), Ok(plain.clone()));
        // A tag cut to 12 bytes is the full tag's start, and opens too.
        let (_, short) = seal(&key, &nonce, &aad, plain.clone(), MIN_TAG_LEN).unwrap();
        assert_eq!(short, tag[..MIN_TAG_LEN]);
        assert_eq!(open(&key, &nonce, &aad, ciphertext.clone(), &short), Ok(plain));

        // A changed byte anywhere, or other additional data, fails the tag.
        let fails = |data: &[u8], aad: &[u8], tag: &[u8]| {
            open(&key, &nonce, aad, data.to_vec(), tag) == Err(ChaChaError::Authentication)
        };
        let mut bad = ciphertext.clone();
        bad[0] ^= 1;
        assert!(fails(&bad, &aad, &tag));
        let mut bad_tag = tag.clone();
        bad_tag[15] ^= 1;
        assert!(fails(&ciphertext, &aad, &bad_tag));
        let mut cut = tag[..13].to_vec();
        cut[12] ^= 1;
        assert!(fails(&ciphertext, &aad, &cut));
        assert!(fails(&ciphertext, b"other", &tag));
    }

    #[test]
    fn matches_the_64_bit_nonce_vectors() {
        let cases = vectors(include_str!("chacha/draft-agl-tls-chacha20poly1305-04-section-7.txt"));
        assert_eq!(cases.len(), 4);
        for case in cases {
            let (key, nonce) = (bytes(&case, "key"), bytes(&case, "nonce"));
            let expected = bytes(&case, "keystream");
            let mut data = vec![0; expected.len()];
            apply(&key, &nonce, 0, &mut data).unwrap();
            assert_eq!(data, expected);
            // Starting at block 1 gives the stream's second block.
            let mut two = vec![0; 68];
            apply(&key, &nonce, 0, &mut two).unwrap();
            let mut second = vec![0; 4];
            apply(&key, &nonce, 1, &mut second).unwrap();
            assert_eq!(second[..], two[64..]);
        }
    }

    #[test]
    fn refuses_bad_lengths() {
        let key = [0; 32];
        let mut data = vec![0; 64];
        assert_eq!(apply(&key, &[0; 16], 0, &mut data), Err(ChaChaError::NonceLength));
        assert_eq!(apply(&key[..16], &[0; 12], 0, &mut data), Err(ChaChaError::KeyLength));
        assert_eq!(seal(&key, &[0; 8], b"", vec![1], 16), Err(ChaChaError::NonceLength));
        assert_eq!(seal(&key[..16], &[0; 12], b"", vec![1], 16), Err(ChaChaError::KeyLength));
        for bad in [0, 1, 11, 17, 32] {
            assert_eq!(seal(&key, &[0; 12], b"", vec![1], bad), Err(ChaChaError::TagLength));
            let answer = open(&key, &[0; 12], b"", vec![1], &vec![0; bad]);
            assert_eq!(answer, Err(ChaChaError::TagLength));
        }
        assert_eq!(open(&key, &[0; 8], b"", vec![1], &[0; 16]), Err(ChaChaError::NonceLength));
        // RFC 8439's counter is 32 bits: block 2^32 does not exist, nor does a run past it.
        assert_eq!(apply(&key, &[0; 12], 1 << 32, &mut data), Err(ChaChaError::TooLong));
        let near_end = u64::from(u32::MAX) - 1;
        assert_eq!(apply(&key, &[0; 12], near_end, &mut data[..1]), Ok(()));
        assert_eq!(apply(&key, &[0; 12], near_end, &mut [0; 200]), Err(ChaChaError::TooLong));
        assert_eq!(apply(&key, &[0; 8], u64::MAX, &mut data), Err(ChaChaError::TooLong));
    }
}
