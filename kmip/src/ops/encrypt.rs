//! Encrypt (KMIP 1.4 §4.29, KMIP 2.1 §6.1.18) and Decrypt (KMIP 1.4 §4.30, KMIP 2.1
//! §6.1.12), with the Cryptographic Parameters they use (KMIP 1.4 §3.6).

use crate::enums::{
    BlockCipherMode, CryptographicAlgorithm, DigitalSignatureAlgorithm, HashingAlgorithm,
    PaddingMethod,
};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// The parts of Cryptographic Parameters (KMIP 1.4 §3.6) the server uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CryptographicParameters {
    /// Block Cipher Mode.
    pub block_cipher_mode: Option<BlockCipherMode>,
    /// Padding Method.
    pub padding_method: Option<PaddingMethod>,
    /// Cryptographic Algorithm.
    pub algorithm: Option<CryptographicAlgorithm>,
    /// Tag Length, in bytes (authenticated encryption).
    pub tag_length: Option<i32>,
    /// Initial Counter Value: the first block's counter (counter modes and ChaCha20).
    pub initial_counter_value: Option<i32>,
    /// Random IV: the server generates the IV.
    pub random_iv: Option<bool>,
    /// Hashing Algorithm (signatures, and OAEP's hash).
    pub hashing_algorithm: Option<HashingAlgorithm>,
    /// Mask Generator Hashing Algorithm (OAEP's MGF1 hash; SHA-1 when absent, §3.6).
    pub mask_generator_hashing_algorithm: Option<HashingAlgorithm>,
    /// P Source: OAEP's encoding parameters (label), §3.6.
    pub p_source: Option<Vec<u8>>,
    /// Digital Signature Algorithm.
    pub digital_signature_algorithm: Option<DigitalSignatureAlgorithm>,
}

impl CryptographicParameters {
    /// Reads a Cryptographic Parameters structure (the item itself, whatever its tag).
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, FieldError> {
        let e = |tag| item.find(tag).map(Ttlv::as_enum).transpose();
        Ok(CryptographicParameters {
            block_cipher_mode: e(Tag::BLOCK_CIPHER_MODE)?.map(BlockCipherMode),
            padding_method: e(Tag::PADDING_METHOD)?.map(PaddingMethod),
            algorithm: e(Tag::CRYPTOGRAPHIC_ALGORITHM)?.map(CryptographicAlgorithm),
            tag_length: item.find(Tag::TAG_LENGTH).map(Ttlv::as_i32).transpose()?,
            initial_counter_value: item
                .find(Tag::INITIAL_COUNTER_VALUE)
                .map(Ttlv::as_i32)
                .transpose()?,
            random_iv: item.find(Tag::RANDOM_IV).map(Ttlv::as_bool).transpose()?,
            hashing_algorithm: e(Tag::HASHING_ALGORITHM)?.map(HashingAlgorithm),
            mask_generator_hashing_algorithm: e(Tag::MASK_GENERATOR_HASHING_ALGORITHM)?
                .map(HashingAlgorithm),
            p_source: item
                .find(Tag::P_SOURCE)
                .map(|p| p.as_bytes().map(<[u8]>::to_vec))
                .transpose()?,
            digital_signature_algorithm: e(Tag::DIGITAL_SIGNATURE_ALGORITHM)?
                .map(DigitalSignatureAlgorithm),
        })
    }

    /// Encodes the fields set, in KMIP 1.4 §3.6's order, as a structure tagged `tag`.
    pub fn to_ttlv(&self, tag: Tag) -> Ttlv {
        let e = |tag, v: Option<u32>| v.map(|v| Ttlv::new(tag, Value::Enumeration(v)));
        let items = [
            e(Tag::BLOCK_CIPHER_MODE, self.block_cipher_mode.map(|m| m.0)),
            e(Tag::PADDING_METHOD, self.padding_method.map(|m| m.0)),
            e(Tag::HASHING_ALGORITHM, self.hashing_algorithm.map(|h| h.0)),
            e(Tag::DIGITAL_SIGNATURE_ALGORITHM, self.digital_signature_algorithm.map(|d| d.0)),
            e(Tag::CRYPTOGRAPHIC_ALGORITHM, self.algorithm.map(|a| a.0)),
            self.random_iv.map(|r| Ttlv::new(Tag::RANDOM_IV, Value::Boolean(r))),
            self.tag_length.map(|l| Ttlv::new(Tag::TAG_LENGTH, Value::Integer(l))),
            self.initial_counter_value
                .map(|c| Ttlv::new(Tag::INITIAL_COUNTER_VALUE, Value::Integer(c))),
            e(
                Tag::MASK_GENERATOR_HASHING_ALGORITHM,
                self.mask_generator_hashing_algorithm.map(|h| h.0),
            ),
            self.p_source.clone().map(|p| Ttlv::new(Tag::P_SOURCE, Value::ByteString(p))),
        ];
        Ttlv::structure(tag, items.into_iter().flatten().collect())
    }

    /// Fills what `self` leaves open from `defaults` (the key's own attribute).
    pub fn or(self, defaults: &CryptographicParameters) -> CryptographicParameters {
        CryptographicParameters {
            block_cipher_mode: self.block_cipher_mode.or(defaults.block_cipher_mode),
            padding_method: self.padding_method.or(defaults.padding_method),
            algorithm: self.algorithm.or(defaults.algorithm),
            tag_length: self.tag_length.or(defaults.tag_length),
            initial_counter_value: self.initial_counter_value.or(defaults.initial_counter_value),
            random_iv: self.random_iv.or(defaults.random_iv),
            hashing_algorithm: self.hashing_algorithm.or(defaults.hashing_algorithm),
            mask_generator_hashing_algorithm: self
                .mask_generator_hashing_algorithm
                .or(defaults.mask_generator_hashing_algorithm),
            p_source: self.p_source.or_else(|| defaults.p_source.clone()),
            digital_signature_algorithm: self
                .digital_signature_algorithm
                .or(defaults.digital_signature_algorithm),
        }
    }
}

/// Encrypt or Decrypt request payload (KMIP 1.4 §4.29–4.30), single-part or one part of a
/// multi-part operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier of the key; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Cryptographic Parameters, overriding the key's.
    pub parameters: Option<CryptographicParameters>,
    /// Data.
    pub data: Vec<u8>,
    /// IV/Counter/Nonce.
    pub iv: Option<Vec<u8>>,
    /// Authenticated Encryption Additional Data.
    pub aad: Option<Vec<u8>>,
    /// Authenticated Encryption Tag (Decrypt).
    pub tag: Option<Vec<u8>>,
    /// The multi-part fields, when the request is part of a multi-part operation.
    pub stream: Option<super::Stream>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let bytes = |tag| super::opt_bytes(payload, tag);
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            parameters: super::opt_parameters(payload)?,
            data: bytes(Tag::DATA)?.unwrap_or_default(),
            iv: bytes(Tag::IV_COUNTER_NONCE)?,
            aad: bytes(Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA)?,
            tag: bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG)?,
            stream: super::Stream::read(payload)?,
        })
    }
}

/// Encodes an Encrypt or Decrypt response payload.
pub fn response(uid: &str, data: Vec<u8>, iv: Option<Vec<u8>>, tag: Option<Vec<u8>>) -> Vec<Ttlv> {
    part_response(uid, data, iv, tag, None)
}

/// Encodes the response to one part of a multi-part Encrypt or Decrypt: the first part's
/// carries the Correlation Value the next parts send.
pub fn part_response(
    uid: &str,
    data: Vec<u8>,
    iv: Option<Vec<u8>>,
    tag: Option<Vec<u8>>,
    correlation: Option<Vec<u8>>,
) -> Vec<Ttlv> {
    let mut out = vec![super::uid_item(uid), Ttlv::new(Tag::DATA, Value::ByteString(data))];
    if let Some(iv) = iv {
        out.push(Ttlv::new(Tag::IV_COUNTER_NONCE, Value::ByteString(iv)));
    }
    if let Some(c) = correlation {
        out.push(Ttlv::new(Tag::CORRELATION_VALUE, Value::ByteString(c)));
    }
    if let Some(tag) = tag {
        out.push(Ttlv::new(Tag::AUTHENTICATED_ENCRYPTION_TAG, Value::ByteString(tag)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip_in_spec_order() {
        let p = CryptographicParameters {
            block_cipher_mode: Some(BlockCipherMode::GCM),
            tag_length: Some(12),
            initial_counter_value: Some(1),
            p_source: Some(b"label".to_vec()),
            ..Default::default()
        };
        let t = p.to_ttlv(Tag::CRYPTOGRAPHIC_PARAMETERS);
        let tags: Vec<Tag> = t.children().iter().map(|c| c.tag).collect();
        // KMIP 1.4 §3.6: Tag Length, then Initial Counter Value, then P Source.
        assert_eq!(
            tags,
            [Tag::BLOCK_CIPHER_MODE, Tag::TAG_LENGTH, Tag::INITIAL_COUNTER_VALUE, Tag::P_SOURCE]
        );
        assert_eq!(CryptographicParameters::from_ttlv(&t), Ok(p.clone()));
        // The request's values win; what it leaves open comes from the key's.
        let asked =
            CryptographicParameters { initial_counter_value: Some(7), ..Default::default() };
        let merged = asked.or(&p);
        assert_eq!((merged.initial_counter_value, merged.tag_length), (Some(7), Some(12)));
    }
}
