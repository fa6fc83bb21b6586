//! Hash (KMIP 1.4 §4.37, KMIP 2.1 §6.1.20): the digest of Data with the Hashing Algorithm
//! of the Cryptographic Parameters.

use super::encrypt::CryptographicParameters;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Hash request payload, single-part or one part of a multi-part operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Cryptographic Parameters (Hashing Algorithm).
    pub parameters: CryptographicParameters,
    /// Data to hash.
    pub data: Vec<u8>,
    /// The multi-part fields, when the request is part of a multi-part operation.
    pub stream: Option<super::Stream>,
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
            stream: super::Stream::read(payload)?,
        })
    }
}

/// Encodes the response payload: the digest as Data.
pub fn response(digest: Vec<u8>) -> Vec<Ttlv> {
    vec![Ttlv::new(Tag::DATA, Value::ByteString(digest))]
}

/// Encodes the response to a part of a multi-part Hash before the last: the first part's
/// Correlation Value (KMIP 2.1 §6.1.24).
pub fn part_response(correlation: Option<Vec<u8>>) -> Vec<Ttlv> {
    correlation
        .map(|c| Ttlv::new(Tag::CORRELATION_VALUE, Value::ByteString(c)))
        .into_iter()
        .collect()
}
