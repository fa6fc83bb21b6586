//! Hash (KMIP 1.4 §4.37, KMIP 2.1 §6.1.20): the digest of Data with the Hashing Algorithm
//! of the Cryptographic Parameters.

use super::encrypt::CryptographicParameters;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Hash request payload (single-part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Cryptographic Parameters (Hashing Algorithm).
    pub parameters: CryptographicParameters,
    /// Data to hash.
    pub data: Vec<u8>,
    /// Whether the request is part of a multi-part (streaming) operation.
    pub streaming: bool,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            parameters: super::opt_parameters(payload)?.ok_or(FieldError::Missing {
                parent: payload.tag,
                tag: Tag::CRYPTOGRAPHIC_PARAMETERS,
            })?,
            data: super::opt_bytes(payload, Tag::DATA)?.unwrap_or_default(),
            streaming: super::is_streaming(payload),
        })
    }
}

/// Encodes the response payload: the digest as Data.
pub fn response(digest: Vec<u8>) -> Vec<Ttlv> {
    vec![Ttlv::new(Tag::DATA, Value::ByteString(digest))]
}
